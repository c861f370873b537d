/*
 * spf - SPF (RFC 7208) with libspf2, on our own DNS source
 *
 * Owns: one SPF_server_t with our DNS layer (shared by all threads, which
 * libspf2 documents as safe) and, per evaluation, a small context kept in a
 * thread-local pointer while libspf2 runs.
 *
 * What the wrapper adds, because libspf2 1.2.10 falls short
 * (notes/LIBRARIES.md): it counts DNS-querying terms across includes and
 * redirects (libspf2 resets its counter per include) and void lookups
 * (libspf2 has no such limit); it checks every record against the RFC 7208
 * grammar before libspf2 sees it (libspf2 accepts bad labels, bad macros,
 * duplicate modifiers, non-ASCII); it drops exp= so no attacker-chosen
 * explanation is ever looked up; it moves redirect= to the end of the
 * record (libspf2 evaluates it in place); and it converts IPv4-mapped IPv6
 * clients. Names go through the RFC's own rules before any query: an
 * expansion over 253 characters loses labels from the left (7.3), a name
 * that is no DNS name (an empty label, one over 63 octets) is never asked
 * and does not exist (4.3, 4.8), a null MX (RFC 7505) names no host, and a
 * DNS error on a "ptr" lookup is no match (5.5). libspf2's free "pass" for
 * loopback clients is not used: the record decides for every address
 * (relays in trusted_networks are walked past before SPF is asked).
 * A record found invalid, or a limit passed, makes libspf2 see an
 * empty record from then on (no further DNS traffic) and the result is
 * permerror. libspf2's error handler would abort() the process: ours
 * unwinds the evaluation instead and gives temperror.
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "lmtpfilter/spf.h"
#include "mime/ipaddr.h"
#include "lmtpfilter/log.h"

#include <glib.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SPF_MX_NAMES_MAX 10         /* RFC 7208 4.6.4: MX names per "mx" term */
#define SPF_PTR_NAMES_MAX 10        /* RFC 7208 4.6.4: PTR names looked at per "ptr" term */
#define SPF_RECORD_MAX 4096         /* longest record text we accept */
#define SPF_TRACKED_NAMES_MAX 64    /* MX / PTR host names remembered per evaluation */
#define SPF_NAME_MAX 253            /* RFC 7208 7.3, RFC 1035: longest name in text, no final dot */
#define SPF_LABEL_MAX 63            /* RFC 1035 2.3.4: longest label */
#define SPF_EMPTY_RECORD "v=spf1"

struct spf_checker {
	struct dns_source dns;
	SPF_dns_server_t layer;
	SPF_server_t *server;
	char *receiver;
};

/* One evaluation: what the DNS layer counts and decides. */
struct spf_eval {
	struct spf_checker *checker;
	unsigned txt_lookups;
	unsigned mechanisms;
	unsigned voids;
	const char *perm;                 /* set: the result is permerror, for this reason */
	bool client_v6;
	bool dns_error;
	char *hosts[SPF_TRACKED_NAMES_MAX]; /* names from MX / PTR answers: their A lookups are free */
	size_t host_count;
	char *ptr_hosts[SPF_TRACKED_NAMES_MAX]; /* names from PTR answers: a DNS error skips them */
	size_t ptr_host_count;
	char *any_addr[SPF_TRACKED_NAMES_MAX]; /* names of a//0-style terms (and their MX hosts) */
	size_t any_addr_count;
	char *any_mx[SPF_TRACKED_NAMES_MAX];   /* domains of mx//0-style terms */
	size_t any_mx_count;
	unsigned char client_addr[16];
	sigjmp_buf abort_jmp;
};

static __thread struct spf_eval *spf_current;

/* ---- record syntax (RFC 7208 section 12) ---- */

static bool is_alpha(int c) { return g_ascii_isalpha(c); }
static bool is_alnum(int c) { return g_ascii_isalnum(c); }

/* macro-string up to end; returns false on a bad macro. *had_macro_r tells
 * whether it ended in a macro-expand (then no toplabel is needed). */
static bool check_macro_string(const char *s, size_t len, bool exp, bool *ends_in_macro_r)
{
	*ends_in_macro_r = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c != '%') {
			if (c < 0x21 || c > 0x7e)
				return false;
			*ends_in_macro_r = false;
			continue;
		}
		if (++i >= len)
			return false;
		if (s[i] == '%' || s[i] == '_' || s[i] == '-') {
			*ends_in_macro_r = false;   /* literal expansions, not a domain end */
			continue;
		}
		if (s[i] != '{' || ++i >= len)
			return false;
		char letter = g_ascii_tolower(s[i]);
		if (!strchr("slodiphv", letter) && !(exp && strchr("crt", letter)))
			return false;
		for (i++; i < len && g_ascii_isdigit(s[i]); i++)
			;
		if (i < len && g_ascii_tolower(s[i]) == 'r')
			i++;
		for (; i < len && strchr(".-+,/_=", s[i]); i++)
			;
		if (i >= len || s[i] != '}')
			return false;
		*ends_in_macro_r = true;
	}
	return true;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool check_toplabel(const char *s, size_t len)
{
	bool alpha = false;

	if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
		if (is_alpha(s[i]) || s[i] == '-')
			alpha = true;
	}
	return alpha;
}

/* domain-spec = macro-string domain-end */
static bool check_domain_spec(const char *s, size_t len)
{
	bool macro_end;

	if (len == 0 || !check_macro_string(s, len, false, &macro_end))
		return false;
	if (macro_end)
		return true;
	if (s[len - 1] == '.')
		len--;
	const char *dot = g_strrstr_len(s, (gssize)len, ".");
	if (dot == NULL)
		return false;
	/* Every label must be non-empty (no ".." and no leading dot). */
	for (size_t i = 0; i + 1 < len; i++)
		if (s[i] == '.' && s[i + 1] == '.')
			return false;
	if (s[0] == '.')
		return false;
	return check_toplabel(dot + 1, len - (size_t)(dot + 1 - s));
}

static bool check_cidr(const char *s, size_t len, unsigned max)
{
	if (len < 2 || s[0] != '/' || len > 4)
		return false;
	unsigned v = 0;
	for (size_t i = 1; i < len; i++) {
		if (!g_ascii_isdigit(s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (len > 2 && s[1] == '0')
		return false;       /* no leading zeros */
	return v <= max;
}

/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] */
static bool check_dual_cidr(const char *s, size_t len)
{
	const char *v6 = g_strstr_len(s, (gssize)len, "//");
	size_t v4len = v6 != NULL ? (size_t)(v6 - s) : len;

	if (v4len > 0 && !check_cidr(s, v4len, 32))
		return false;
	if (v6 != NULL && !check_cidr(v6 + 1, len - v4len - 1, 128))
		return false;
	return true;
}

/* Split "name[:domain-spec][cidr]" for a / mx. */
static bool check_a_mx(const char *arg, size_t len)
{
	/* The CIDR suffix is found from the end: a domain-spec may contain '/'. */
	size_t dlen = len;
	for (int pass = 0; pass < 2; pass++) {
		size_t i = dlen;
		while (i > 0 && g_ascii_isdigit(arg[i - 1]))
			i--;
		if (i == dlen || i == 0 || arg[i - 1] != '/')
			break;
		dlen = i - 1;
		if (dlen > 0 && arg[dlen - 1] == '/' && pass == 0)
			dlen--;
		else
			break;
	}
	const char *slash = dlen < len ? arg + dlen : NULL;

	if (dlen > 0) {
		if (arg[0] != ':' || !check_domain_spec(arg + 1, dlen - 1))
			return false;
	}
	return slash == NULL || check_dual_cidr(slash, len - dlen);
}

static bool check_ip(const char *arg, size_t len, int family)
{
	char buf[64];
	unsigned char addr[16];

	if (len < 2 || arg[0] != ':')
		return false;
	const char *slash = memchr(arg, '/', len);
	size_t alen = (slash != NULL ? (size_t)(slash - arg) : len) - 1;
	if (alen == 0 || alen >= sizeof(buf))
		return false;
	memcpy(buf, arg + 1, alen);
	buf[alen] = '\0';
	if (inet_pton(family, buf, addr) != 1)
		return false;
	return slash == NULL || check_cidr(slash, len - alen - 1, family == AF_INET ? 32 : 128);
}

static bool check_term(const char *t, size_t len, bool *redirect, bool *exp, const char **reason_r)
{
	size_t i = 0;

	/* A modifier: name "=" macro-string. */
	const char *eq = memchr(t, '=', len);
	const char *colon = memchr(t, ':', len);
	const char *slash = memchr(t, '/', len);
	if (eq != NULL && (colon == NULL || eq < colon) && (slash == NULL || eq < slash)) {
		size_t nlen = (size_t)(eq - t);
		bool macro_end;
		if (nlen == 0 || !is_alpha(t[0])) {
			*reason_r = "bad modifier name";
			return false;
		}
		for (size_t k = 1; k < nlen; k++)
			if (!is_alnum(t[k]) && !strchr("-_.", t[k])) {
				*reason_r = "bad modifier name";
				return false;
			}
		const char *v = eq + 1;
		size_t vlen = len - nlen - 1;
		if (nlen == 8 && g_ascii_strncasecmp(t, "redirect", 8) == 0) {
			if (*redirect) {
				*reason_r = "more than one redirect=";
				return false;
			}
			*redirect = true;
			if (!check_domain_spec(v, vlen)) {
				*reason_r = "bad redirect= domain";
				return false;
			}
		} else if (nlen == 3 && g_ascii_strncasecmp(t, "exp", 3) == 0) {
			if (*exp) {
				*reason_r = "more than one exp=";
				return false;
			}
			*exp = true;
			if (!check_domain_spec(v, vlen)) {
				*reason_r = "bad exp= domain";
				return false;
			}
		} else if (!check_macro_string(v, vlen, false, &macro_end)) {
			*reason_r = "bad macro in modifier";
			return false;
		}
		return true;
	}
	if (strchr("+-~?", t[0]))
		i++;
	const char *m = t + i;
	size_t mlen = len - i;
	static const char *const names[] = { "all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists" };
	size_t n;
	for (n = 0; n < G_N_ELEMENTS(names); n++) {
		size_t k = strlen(names[n]);
		if (mlen >= k && g_ascii_strncasecmp(m, names[n], k) == 0 &&
		    (mlen == k || m[k] == ':' || m[k] == '/'))
			break;
	}
	const char *arg = n < G_N_ELEMENTS(names) ? m + strlen(names[n]) : NULL;
	size_t alen = arg != NULL ? mlen - strlen(names[n]) : 0;
	bool ok;
	switch (n) {
	case 0: ok = alen == 0; break;                                          /* all */
	case 1: case 7: ok = alen > 1 && arg[0] == ':' && check_domain_spec(arg + 1, alen - 1); break;
	case 2: case 3: ok = check_a_mx(arg, alen); break;                      /* a, mx */
	case 4: ok = alen == 0 || (arg[0] == ':' && check_domain_spec(arg + 1, alen - 1)); break;
	case 5: ok = check_ip(arg, alen, AF_INET); break;
	case 6: ok = check_ip(arg, alen, AF_INET6); break;
	default: ok = false; break;
	}
	if (!ok)
		*reason_r = n < G_N_ELEMENTS(names) ? "bad mechanism argument" : "unknown mechanism";
	return ok;
}

/* spf_record_error - why RECORD fails the strict syntax check (static
 * text), or NULL if it passes. */
static const char *spf_record_error(const char *record)
{
	size_t len = strlen(record);
	bool redirect = false, exp = false;
	const char *error = NULL;

	if (len > SPF_RECORD_MAX) {
		return "record too long";
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)record[i] >= 0x80 || ((unsigned char)record[i] < 0x20)) {
			return "non-ASCII or control character in record";
		}
	}
	if (len < 6 || g_ascii_strncasecmp(record, "v=spf1", 6) != 0 || (len > 6 && record[6] != ' ')) {
		return "not an SPF record";
	}
	for (size_t i = 6; i < len;) {
		while (i < len && record[i] == ' ')
			i++;
		size_t start = i;
		while (i < len && record[i] != ' ')
			i++;
		if (i > start && !check_term(record + start, i - start, &redirect, &exp, &error))
			return error;
	}
	return NULL;
}

int spf_record_check(const char *record, char **error_r)
{
	const char *error = spf_record_error(record);

	if (error == NULL)
		return 0;
	*error_r = g_strdup(error);
	return -1;
}

/* ---- record rewrite: what libspf2 sees ---- */

/* Split a / mx arguments "[:domain][/cidr4][//cidr6]" from the end, since a
 * domain-spec may itself contain '/' and ':'. */
static void split_a_mx(const char *arg, GString *domain, int *cidr4, int *cidr6)
{
	size_t len = strlen(arg);
	*cidr4 = *cidr6 = -1;
	for (int pass = 0; pass < 2; pass++) {
		size_t i = len;
		while (i > 0 && g_ascii_isdigit(arg[i - 1]))
			i--;
		if (i == len || i == 0 || arg[i - 1] != '/')
			break;
		int v = atoi(arg + i);
		if (i >= 2 && arg[i - 2] == '/' && pass == 0 && *cidr6 < 0) {
			*cidr6 = v;
			len = i - 2;
		} else {
			*cidr4 = v;
			len = i - 1;
			break;
		}
	}
	g_string_append_len(domain, arg, (gssize)len);
}

static void eval_track_host(struct spf_eval *ev, const char *name);

/* Remember a name whose address records stand for "any address" (a or mx
 * with a /0 prefix, which libspf2 refuses): see spf_layer_lookup. */
static void eval_any_address(struct spf_eval *ev, const char *name, bool mx)
{
	char **list = mx ? ev->any_mx : ev->any_addr;
	size_t *count = mx ? &ev->any_mx_count : &ev->any_addr_count;
	if (*count < SPF_TRACKED_NAMES_MAX)
		list[(*count)++] = g_ascii_strdown(name, -1);
}

static bool name_in(char *const *list, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (g_ascii_strcasecmp(list[i], name) == 0)
			return true;
	return false;
}

/* One term for the client's address family, appended to out (or dropped).
 * record_domain is the domain whose record this is (the default for a/mx). */
static void rewrite_term(GString *out, const char *term, struct spf_eval *ev, const char *record_domain)
{
	const char *q = strchr("+-~?", *term) && *term ? term : NULL;
	const char *m = q != NULL ? term + 1 : term;
	char qual[2] = { q != NULL ? *q : '\0', '\0' };
	bool client_v6 = ev->client_v6;

	if (g_ascii_strncasecmp(m, "ip4:", 4) == 0 || g_ascii_strncasecmp(m, "ip6:", 4) == 0) {
		bool v6 = m[2] == '6';
		if (v6 != client_v6)
			return;   /* never matches a client of the other family */
		const char *slash = strrchr(m, '/');
		if (slash != NULL && strcmp(slash, "/0") == 0) {
			/* libspf2 refuses /0: the same networks as two halves. */
			g_string_append_printf(out, v6 ? " %sip6:::/1 %sip6:8000::/1" : " %sip4:0.0.0.0/1 %sip4:128.0.0.0/1",
					       qual, qual);
			return;
		}
	} else if ((g_ascii_strncasecmp(m, "a", 1) == 0 && (m[1] == '\0' || m[1] == ':' || m[1] == '/')) ||
		   (g_ascii_strncasecmp(m, "mx", 2) == 0 && (m[2] == '\0' || m[2] == ':' || m[2] == '/'))) {
		bool mx = g_ascii_tolower(m[0]) == 'm';
		GString *domain = g_string_new(NULL);
		int cidr4, cidr6;
		split_a_mx(m + (mx ? 2 : 1), domain, &cidr4, &cidr6);
		int cidr = client_v6 ? cidr6 : cidr4;
		const char *target = domain->len > 1 ? domain->str + 1 : record_domain;
		if (cidr == 0 && strchr(target, '%') == NULL) {
			/* A /0 prefix matches any address the name has. libspf2
			 * refuses /0, so it gets a full-length prefix and the
			 * lookup answers the client's own address when the name
			 * has any address at all. */
			eval_any_address(ev, target, mx);
			cidr = client_v6 ? 128 : 32;
		} else if (cidr == 0) {
			cidr = -1;
		}
		g_string_append_c(out, ' ');
		g_string_append(out, qual);
		g_string_append(out, mx ? "mx" : "a");
		g_string_append(out, domain->str);
		if (cidr >= 0)
			g_string_append_printf(out, client_v6 ? "//%d" : "/%d", cidr);
		g_string_free(domain, TRUE);
		return;
	}
	/* a copy, not " %s": once for every term of every record */
	g_string_append_c(out, ' ');
	g_string_append(out, term);
}

/* The record as libspf2 gets it: no exp= (never fetched), no unknown
 * modifiers (RFC 7208 6: ignored; libspf2 rejects some valid names),
 * redirect= last (ignored with "all", RFC 7208 6.1), and terms of the
 * other address family left out. */
static char *spf_record_rewrite(const char *record, struct spf_eval *ev, const char *domain)
{
	GString *out = g_string_new("v=spf1");
	char *redirect = NULL;
	bool has_all = false;
	gchar **terms = g_strsplit(record + 6, " ", -1);

	for (gchar **t = terms; *t != NULL; t++) {
		const char *term = *t;
		const char *m = *term && strchr("+-~?", *term) ? term + 1 : term;
		const char *eq = strchr(term, '=');
		const char *sep = strpbrk(term, ":/");
		if (*term == '\0')
			continue;
		if (eq != NULL && (sep == NULL || eq < sep)) {
			if (g_ascii_strncasecmp(term, "redirect=", 9) == 0) {
				g_free(redirect);
				redirect = g_strdup(term);
			}
			continue;
		}
		if (g_ascii_strcasecmp(m, "all") == 0)
			has_all = true;
		rewrite_term(out, term, ev, domain);
	}
	if (redirect != NULL && !has_all) {
		g_string_append_c(out, ' ');
		g_string_append(out, redirect);
	}
	g_free(redirect);
	g_strfreev(terms);
	return g_string_free(out, FALSE);
}

/* ---- the DNS layer ---- */

static bool is_spf_record(const char *txt, size_t len)
{
	return len >= 6 && g_ascii_strncasecmp(txt, "v=spf1", 6) == 0 && (len == 6 || txt[6] == ' ');
}

/* A name in uncompressed wire format to dotted text; false if malformed. */
static bool wire_name(const unsigned char *p, size_t len, char *out, size_t size)
{
	size_t o = 0, i = 0;

	while (i < len && p[i] != 0) {
		size_t l = p[i++];
		if (l > 63 || i + l > len || o + l + 2 > size)
			return false;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, p + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
	return i < len;
}

static void eval_track_host(struct spf_eval *ev, const char *name)
{
	if (ev->host_count < SPF_TRACKED_NAMES_MAX)
		ev->hosts[ev->host_count++] = g_ascii_strdown(name, -1);
}

static bool eval_tracked_host(const struct spf_eval *ev, const char *name)
{
	for (size_t i = 0; i < ev->host_count; i++)
		if (g_ascii_strcasecmp(ev->hosts[i], name) == 0)
			return true;
	return false;
}

static bool is_reverse_name(const char *name)
{
	size_t len = strlen(name);
	return (len > 13 && g_ascii_strcasecmp(name + len - 13, ".in-addr.arpa") == 0) ||
	       (len > 9 && g_ascii_strcasecmp(name + len - 9, ".ip6.arpa") == 0);
}

/* Count the lookup against the RFC limits; false once they are passed. */
static bool eval_count(struct spf_eval *ev, const char *name, ns_type type)
{
	bool counts;

	switch (type) {
	case ns_t_txt:
		counts = ev->txt_lookups++ > 0;          /* the first is the record itself */
		break;
	case ns_t_mx:
		counts = true;
		break;
	case ns_t_ptr:
		counts = is_reverse_name(name);
		break;
	default:                                     /* A / AAAA: free for MX and PTR host names */
		counts = !eval_tracked_host(ev, name);
		break;
	}
	if (counts && ++ev->mechanisms > SPF_DNS_MECHANISMS_MAX && ev->perm == NULL)
		ev->perm = "too many DNS lookups (more than 10)";
	return ev->perm == NULL;
}

static SPF_dns_rr_t *rr_status(SPF_dns_server_t *layer, const char *domain, ns_type type, SPF_dns_stat_t st)
{
	return SPF_dns_rr_new_init(layer, domain, type, 0, st);
}

/* An MX or PTR record's host name into libspf2's record idx; false when
 * malformed or the root (a null MX, RFC 7505: no host, no match). */
static bool rr_fill_host(SPF_dns_rr_t *rr, int idx, ns_type type, const unsigned char *data, size_t len,
			 struct spf_eval *ev, const char *owner)
{
	char name[NS_MAXDNAME];
	size_t skip = type == ns_t_mx ? 2 : 0;

	if (len <= skip || !wire_name(data + skip, len - skip, name, sizeof(name)) || name[0] == '\0')
		return false;
	if (SPF_dns_rr_buf_realloc(rr, idx, strlen(name) + 1) != SPF_E_SUCCESS)
		return false;
	strcpy(type == ns_t_mx ? rr->rr[idx]->mx : rr->rr[idx]->ptr, name);
	eval_track_host(ev, name);
	if (type == ns_t_ptr && ev->ptr_host_count < SPF_TRACKED_NAMES_MAX)
		ev->ptr_hosts[ev->ptr_host_count++] = g_ascii_strdown(name, -1);
	if (type == ns_t_mx && name_in(ev->any_mx, ev->any_mx_count, owner))
		eval_any_address(ev, name, false);
	return true;
}

/* Fill one libspf2 record from rdata; false when malformed (then skipped). */
static bool rr_fill(SPF_dns_rr_t *rr, int idx, ns_type type, const unsigned char *data, size_t len,
		    struct spf_eval *ev, const char *owner)
{
	switch (type) {
	case ns_t_a:
		if (len != 4 || SPF_dns_rr_buf_realloc(rr, idx, sizeof(struct in_addr)) != SPF_E_SUCCESS)
			return false;
		memcpy(&rr->rr[idx]->a, data, 4);
		return true;
	case ns_t_aaaa:
		if (len != 16 || SPF_dns_rr_buf_realloc(rr, idx, sizeof(struct in6_addr)) != SPF_E_SUCCESS)
			return false;
		memcpy(&rr->rr[idx]->aaaa, data, 16);
		return true;
	case ns_t_mx:
	case ns_t_ptr:
		return rr_fill_host(rr, idx, type, data, len, ev, owner);
	case ns_t_txt: {
		GString *txt = g_string_new(NULL);
		for (size_t i = 0; i < len;) {
			size_t l = data[i++];
			if (i + l > len)
				break;
			g_string_append_len(txt, (const char *)data + i, (gssize)l);
			i += l;
		}
		char *text = txt->str;
		char *rewritten = NULL;
		if (is_spf_record(txt->str, txt->len)) {
			const char *error = NULL;
			if (memchr(txt->str, '\0', txt->len) != NULL) {
				error = "NUL byte in record";
			} else {
				error = spf_record_error(txt->str);
			}
			if (error != NULL) {
				if (ev->perm == NULL)
					ev->perm = error;
				text = SPF_EMPTY_RECORD;
			} else {
				text = rewritten = spf_record_rewrite(txt->str, ev, owner);
			}
		}
		bool ok = SPF_dns_rr_buf_realloc(rr, idx, strlen(text) + 1) == SPF_E_SUCCESS;
		if (ok)
			strcpy(rr->rr[idx]->txt, text);
		g_free(rewritten);
		g_string_free(txt, TRUE);
		return ok;
	}
	default:
		return false;
	}
}

/* spf_name_prepare - name as it is asked, into out (size > SPF_NAME_MAX):
 * one final dot dropped, and over SPF_NAME_MAX characters, labels removed
 * from the left until it fits (RFC 7208 7.3: only a macro expansion can be
 * that long). False when it is no DNS name: empty, an empty label, a label
 * over SPF_LABEL_MAX (RFC 7208 4.3, 4.8: never asked, it does not exist). */
static bool spf_name_prepare(const char *name, char *out, size_t size)
{
	size_t len = strlen(name);

	if (len > 0 && name[len - 1] == '.')
		len--;
	while (len > SPF_NAME_MAX) {
		const char *dot = memchr(name, '.', len);
		if (dot == NULL)
			return false;
		len -= (size_t)(dot + 1 - name);
		name = dot + 1;
	}
	if (len == 0 || len >= size)
		return false;
	memcpy(out, name, len);
	out[len] = '\0';
	for (size_t start = 0, i = 0; i <= len; i++) {
		if (i < len && out[i] != '.')
			continue;
		if (i == start || i - start > SPF_LABEL_MAX)
			return false;
		start = i + 1;
	}
	return true;
}

/* A void lookup (RFC 7208 4.6.4); the record lookup of the checked domain itself is not one. */
static void eval_void(struct spf_eval *ev, ns_type type)
{
	if (!(type == ns_t_txt && ev->txt_lookups == 1) && ++ev->voids > SPF_VOID_LOOKUPS_MAX && ev->perm == NULL)
		ev->perm = "too many void DNS lookups (more than 2)";
}

/* eval_error_skips - RFC 7208 5.5: a DNS error on the PTR lookup makes
 * "ptr" fail to match, one on the address lookup of a name from a PTR
 * answer skips that name; every other DNS error is temperror. */
static bool eval_error_skips(const struct spf_eval *ev, const char *name, ns_type type)
{
	if (type == ns_t_ptr)
		return is_reverse_name(name);
	return (type == ns_t_a || type == ns_t_aaaa) && name_in(ev->ptr_hosts, ev->ptr_host_count, name);
}

/* Build libspf2's answer from a positive one. */
static SPF_dns_rr_t *rr_from_answer(SPF_dns_server_t *layer, struct spf_eval *ev, const char *domain,
				    ns_type type, const struct dns_answer *answer)
{
	if (type == ns_t_mx && answer->count > SPF_MX_NAMES_MAX && ev->perm == NULL)
		ev->perm = "too many MX names (more than 10)";
	SPF_dns_rr_t *rr = SPF_dns_rr_new_init(layer, domain, type, 0, NETDB_SUCCESS);
	int n = 0;
	/* RFC 7208 5.5: only the first 10 PTR names are looked at. */
	size_t count = type == ns_t_ptr ? MIN(answer->count, SPF_PTR_NAMES_MAX) : answer->count;
	for (size_t i = 0; rr != NULL && i < count; i++)
		if (rr_fill(rr, n, type, answer->data[i], answer->len[i], ev, domain))
			n++;
	if (rr != NULL && n > 0 && (type == ns_t_a || type == ns_t_aaaa) &&
	    (type == ns_t_aaaa) == ev->client_v6 && name_in(ev->any_addr, ev->any_addr_count, domain)) {
		/* A /0 term: any address of the name matches, so answer the client's. */
		memcpy(type == ns_t_a ? (void *)&rr->rr[0]->a : (void *)&rr->rr[0]->aaaa, ev->client_addr,
		       type == ns_t_a ? 4 : 16);
		n = 1;
	}
	if (rr != NULL) {
		rr->num_rr = n;
		if (n == 0)
			rr->herrno = NO_DATA;
	}
	return rr;
}

static SPF_dns_rr_t *spf_layer_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type, int should_cache)
{
	struct spf_checker *c = layer->hook;
	struct spf_eval *ev = spf_current;
	struct dns_answer *answer = NULL;
	char name[SPF_NAME_MAX + 1];

	if (ev == NULL || !eval_count(ev, domain, type))
		return rr_status(layer, domain, type, NO_DATA);
	if (!spf_name_prepare(domain, name, sizeof(name))) {
		eval_void(ev, type);
		return rr_status(layer, domain, type, HOST_NOT_FOUND);
	}
	c->dns.query(c->dns.ctx, name, type, &answer);
	if (answer == NULL || answer->status == DNS_TEMPFAIL) {
		c->dns.free_answer(c->dns.ctx, &answer);
		if (eval_error_skips(ev, name, type))
			return rr_status(layer, domain, type, NO_DATA);
		ev->dns_error = true;
		return rr_status(layer, domain, type, TRY_AGAIN);
	}
	if (answer->status != DNS_OK) {
		eval_void(ev, type);
		SPF_dns_stat_t st = answer->status == DNS_NXDOMAIN ? HOST_NOT_FOUND : NO_DATA;
		c->dns.free_answer(c->dns.ctx, &answer);
		return rr_status(layer, domain, type, st);
	}
	SPF_dns_rr_t *rr = rr_from_answer(layer, ev, domain, type, answer);
	c->dns.free_answer(c->dns.ctx, &answer);
	return rr;
}

/* ---- libspf2 message handlers: never abort ---- */

static void spf_error_unwind(const char *file, int line, const char *msg) __attribute__((noreturn));
static void spf_error_unwind(const char *file, int line, const char *msg)
{
	log_error("libspf2: %s (%s:%d)", msg != NULL ? msg : "?", file != NULL ? file : "?", line);
	if (spf_current != NULL)
		siglongjmp(spf_current->abort_jmp, 1);
	/* Outside an evaluation (set-up): nothing to unwind to; end this thread's work. */
	pthread_exit(NULL);
}

static void spf_log_quiet(const char *file, int line, const char *msg)
{
	log_debug("libspf2: %s", msg != NULL ? msg : "?");
}

int spf_checker_new(const struct dns_source *dns, const char *receiver, struct spf_checker **checker_r,
		    char **error_r)
{
	struct spf_checker *c = g_new0(struct spf_checker, 1);

	SPF_error_handler = spf_error_unwind;
	SPF_warning_handler = spf_log_quiet;
	SPF_info_handler = spf_log_quiet;
	SPF_debug_handler = spf_log_quiet;
	c->dns = *dns;
	c->receiver = g_strdup(receiver != NULL ? receiver : "localhost");
	c->layer.destroy = NULL;          /* owned here, not by libspf2 */
	c->layer.lookup = spf_layer_lookup;
	c->layer.name = "lmtpfilter";
	c->layer.hook = c;
	c->server = SPF_server_new_dns(&c->layer, 0);
	/* The limits are ours (counted across includes); libspf2's own, per
	 * record, must never be the tighter ones. */
	if (c->server != NULL) {
		c->server->max_dns_mech = 1000;
		c->server->max_dns_ptr = 1000;
		c->server->max_dns_mx = 1000;
	}
	if (c->server == NULL || SPF_server_set_rec_dom(c->server, c->receiver) != SPF_E_SUCCESS) {
		*error_r = g_strdup("libspf2: cannot create the SPF server");
		spf_checker_free(&c);
		return -1;
	}
	*checker_r = c;
	return 0;
}

void spf_checker_free(struct spf_checker **checkerp)
{
	struct spf_checker *c = *checkerp;

	if (c == NULL)
		return;
	if (c->server != NULL)
		SPF_server_free(c->server);
	g_free(c->receiver);
	g_free(c);
	*checkerp = NULL;
}

static enum verdict map_result(SPF_result_t result, SPF_errcode_t err, const struct spf_eval *ev)
{
	if (ev->perm != NULL)
		return VERDICT_PERMERROR;
	switch (result) {
	case SPF_RESULT_PASS: return VERDICT_PASS;
	case SPF_RESULT_FAIL: return VERDICT_FAIL;
	case SPF_RESULT_SOFTFAIL: return VERDICT_SOFTFAIL;
	case SPF_RESULT_NEUTRAL: return VERDICT_NEUTRAL;
	case SPF_RESULT_NONE: return VERDICT_NONE;
	case SPF_RESULT_TEMPERROR: return VERDICT_TEMPERROR;
	case SPF_RESULT_PERMERROR: return VERDICT_PERMERROR;
	default:
		/* INVALID: a DNS failure, or a record that did not compile. */
		return err == SPF_E_DNS_ERROR || ev->dns_error ? VERDICT_TEMPERROR : VERDICT_PERMERROR;
	}
}

static void outcome_init(struct spf_outcome *o, const char *identity, const char *sender)
{
	memset(o, 0, sizeof(*o));
	o->identity = identity;
	g_strlcpy(o->sender, sender, sizeof(o->sender));
	const char *at = strrchr(sender, '@');
	g_strlcpy(o->domain, at != NULL ? at + 1 : sender, sizeof(o->domain));
}

/* spf_query - SPF_request_query_mailfrom without its free "pass" for
 * 127.0.0.0/8 and ::1 clients ("localhost is always allowed"): behind a
 * content filter re-injecting on loopback, or with trusted_networks not
 * listing loopback, that pass would go to every spoof. The rest is
 * libspf2's own sequence: the record of the current domain, then its
 * interpretation. */
static SPF_errcode_t spf_query(SPF_server_t *server, SPF_request_t *req, SPF_response_t **resp_r)
{
	SPF_record_t *record = NULL;
	SPF_response_t *resp = SPF_response_new(req);
	SPF_errcode_t err;

	*resp_r = resp;
	if (resp == NULL)
		return SPF_E_NO_MEMORY;
	req->cur_dom = req->use_helo ? req->helo_dom : req->env_from_dp;
	err = SPF_server_get_record(server, req, resp, &record);
	if (err != SPF_E_SUCCESS) {
		if (record != NULL)
			SPF_record_free(record);
		SPF_i_done(resp, resp->result, resp->reason, resp->err);
		return err;
	}
	resp->spf_record_exp = record;
	err = SPF_record_interpret(record, req, resp, 0);
	SPF_record_free(record);
	return err;
}

/* spf_perm_reason - the text for a permerror libspf2 found. libspf2
 * leaves the response's code at SPF_E_SUCCESS ("No errors") when the
 * record did not compile (e.g. a domain-spec over its 255-character
 * limit): then the first error it recorded, else the code the query
 * returned, else a generic text. */
static const char *spf_perm_reason(SPF_response_t *resp, SPF_errcode_t err)
{
	SPF_errcode_t code = resp != NULL ? SPF_response_errcode(resp) : SPF_E_SUCCESS;

	for (int i = 0; resp != NULL && code == SPF_E_SUCCESS && i < SPF_response_messages(resp); i++) {
		SPF_error_t *e = SPF_response_message(resp, i);
		if (SPF_error_errorp(e))
			code = SPF_error_code(e);
	}
	if (code == SPF_E_SUCCESS)
		code = err;
	return code != SPF_E_SUCCESS ? SPF_strerror(code) : "invalid SPF record";
}

/* One evaluation of sender (user@domain) for the client. */
static void spf_evaluate(struct spf_checker *c, const char *ip, const char *helo, const char *sender,
			 struct spf_outcome *out)
{
	struct spf_eval ev = { .checker = c };
	SPF_request_t *req = SPF_request_new(c->server);
	SPF_response_t *resp = NULL;
	SPF_errcode_t err;

	ev.client_v6 = strchr(ip, ':') != NULL;
	if (inet_pton(ev.client_v6 ? AF_INET6 : AF_INET, ip, ev.client_addr) != 1)
		memset(ev.client_addr, 0, sizeof(ev.client_addr));
	if (ev.client_v6)
		err = SPF_request_set_ipv6_str(req, ip);
	else
		err = SPF_request_set_ipv4_str(req, ip);
	if (err != SPF_E_SUCCESS) {
		out->result = VERDICT_PERMERROR;
		g_strlcpy(out->reason, "bad client address", sizeof(out->reason));
		SPF_request_free(req);
		return;
	}
	if (helo[0] != '\0')
		SPF_request_set_helo_dom(req, helo);
	SPF_request_set_env_from(req, sender);

	spf_current = &ev;
	if (sigsetjmp(ev.abort_jmp, 0) == 0) {
		err = spf_query(c->server, req, &resp);
		out->result = map_result(resp != NULL ? SPF_response_result(resp) : SPF_RESULT_INVALID, err, &ev);
		if (ev.perm != NULL)
			g_strlcpy(out->reason, ev.perm, sizeof(out->reason));
		else if (out->result == VERDICT_TEMPERROR)
			g_strlcpy(out->reason, "DNS lookup failed", sizeof(out->reason));
		else if (out->result == VERDICT_PERMERROR)
			g_strlcpy(out->reason, spf_perm_reason(resp, err), sizeof(out->reason));
	} else {
		/* libspf2 reported an internal error: unwound here, partial state leaked. */
		resp = NULL;
		out->result = VERDICT_TEMPERROR;
		g_strlcpy(out->reason, "internal SPF error", sizeof(out->reason));
	}
	spf_current = NULL;
	if (resp != NULL)
		SPF_response_free(resp);
	SPF_request_free(req);
	for (size_t i = 0; i < ev.host_count; i++)
		g_free(ev.hosts[i]);
	for (size_t i = 0; i < ev.ptr_host_count; i++)
		g_free(ev.ptr_hosts[i]);
	for (size_t i = 0; i < ev.any_addr_count; i++)
		g_free(ev.any_addr[i]);
	for (size_t i = 0; i < ev.any_mx_count; i++)
		g_free(ev.any_mx[i]);
}

/* The client address as libspf2 wants it: IPv4-mapped IPv6 as IPv4. */
static const char *spf_client_ip(const char *ip, char *buf, size_t size)
{
	return ipaddr_normalise(ip, strlen(ip), buf, size) == 0 ? buf : ip;
}

int spf_check(struct spf_checker *checker, const char *client_ip, const char *helo, const char *mail_from,
	      struct spf_outcome *mailfrom_r, struct spf_outcome *helo_r)
{
	char ipbuf[IPADDR_TEXT_MAX];
	char *postmaster = NULL;
	const char *ip = spf_client_ip(client_ip != NULL ? client_ip : "", ipbuf, sizeof(ipbuf));

	helo = helo != NULL ? helo : "";
	mail_from = mail_from != NULL ? mail_from : "";
	if (mail_from[0] == '\0') {
		postmaster = g_strconcat("postmaster@", helo, NULL);
		outcome_init(mailfrom_r, "helo", postmaster);
	} else {
		outcome_init(mailfrom_r, "mailfrom", mail_from);
	}
	outcome_init(helo_r, "helo", helo);
	const char *at = strrchr(mailfrom_r->sender, '@');
	if (at == NULL || at[1] == '\0' || strchr(at + 1, '.') == NULL) {
		/* No domain to ask (a bare local part, or a HELO that is no domain). */
		mailfrom_r->result = VERDICT_NONE;
		g_strlcpy(mailfrom_r->reason, "no domain to check", sizeof(mailfrom_r->reason));
		g_free(postmaster);
		return mailfrom_r->sender[0] == '\0' ? -1 : 0;
	}
	spf_evaluate(checker, ip, helo, mailfrom_r->sender, mailfrom_r);
	if (postmaster != NULL)
		*helo_r = *mailfrom_r;
	g_free(postmaster);
	return 0;
}
