/*
 * dmarc - RFC 7489 evaluation of the RFC5322.From domain
 *
 * Phases of dmarc_check: extract the one From domain (GMime's address
 * parser: RFC 2047, groups, comments; only within the bounds it survives),
 * discover the policy record (_dmarc.<from>, then _dmarc.<organisational
 * domain>) through the checker's DNS source, hand record, SPF and DKIM
 * results to libopendmarc, decide alignment, then the disposition (p= or
 * sp=, sampled by pct=).
 *
 * Owns: the Public Suffix List loaded into hash sets, and one reference on
 * libopendmarc's process-wide state (its own copy of the list, read under
 * its own mutexes). Per message everything lives in one libopendmarc
 * policy context created and freed inside dmarc_check, so concurrent checks
 * share nothing mutable: the per-message calls (connect_init, store_*,
 * get_policy_to_enforce, fetch_*) touch only that context, and the list
 * lookups they make lock libopendmarc's table. Only library_init/shutdown
 * are not thread-safe; they run under our own mutex, in checker_new/free.
 *
 * Alignment is decided here, not by libopendmarc 1.4.2, whose
 * opendmarc_policy_check_alignment (a) passes subdomains under adkim=s /
 * aspf=s, and (b) derives organisational domains without the list's
 * wildcard rules and without the implicit "*" rule (x.example.test has
 * none, which makes any domain "align"). Strict = same domain; relaxed =
 * same organisational domain by our list code (RFC 7489 §3.2). The library
 * still parses the record and gives p, sp, adkim, aspf and pct.
 *
 * A broken From (several fields, addresses in different domains, an
 * address without a domain, too many addresses, over a bound, unparsable,
 * or naming a domain that GMime's parse dropped) must not escape DMARC:
 * every domain it names is found by a linear scan of the raw fields (no
 * GMime, whatever the nesting) and evaluated as above; any failure gives
 * fail with the strictest disposition among the failures, pass needs a
 * pass for every domain (RFC 9989, "Denial of DMARC Processing Attacks").
 * The outcome says from_invalid; the A-R comment "from=invalid".
 *
 * Choices where RFC 7489 leaves room, stated in `reason`:
 * - no From, or a broken From naming no usable domain: permerror (§6.6.1);
 * - a broken From whose domains neither fail nor all pass (no record,
 *   invalid record): permerror; with a DNS failure: temperror;
 * - a broken From naming more than DMARC_AUTHOR_DOMAINS_MAX domains: the
 *   first ones are evaluated and the disposition is at least quarantine;
 * - several DMARC records at the name: none (§6.6.3);
 * - a record that libopendmarc rejects (bad p=, bad v=): permerror;
 * - DNS failure on either _dmarc lookup: temperror;
 * - pct=: one uniform random draw per message (GLib's global generator,
 *   thread-safe); a message outside the sample gets the next weaker policy
 *   (reject -> quarantine, quarantine -> none; §6.6.4), result stays fail.
 *
 * Limits: DMARC_FROM_FIELD_MAX bytes and DMARC_FROM_COLONS_MAX colons of
 * From handed to GMime, DMARC_FROM_ADDRESSES_MAX addresses,
 * DMARC_AUTHOR_DOMAINS_MAX domains of a broken From,
 * DMARC_DKIM_SIGNATURES_MAX signatures, DMARC_RECORD_MAX bytes of record,
 * DMARC_PSL_LINE_MAX bytes per list line.
 */
#include "lmtpfilter/dmarc.h"

#include <sys/types.h>
#include <netinet/in.h>

#include <errno.h>
#include <gmime/gmime.h>
#include <glib.h>
#include <opendmarc/dmarc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifndef LMTPFILTER_PSL
#define LMTPFILTER_PSL "/usr/share/publicsuffix/public_suffix_list.dat"
#endif

/* Bounds on what GMime's address parser is given: it recurses once per
 * group level (no limit of its own; 3,000 levels in 9 KB overflow a
 * worker's stack) and its cost grows with the field. A From beyond them,
 * or with a comment that never closes (see dmarc_from_comments_close), is
 * an invalid From, read only by the linear domain scan. */
#define DMARC_FROM_FIELD_MAX 16384      /* raw From bytes; real ones are < 1 KB */
#define DMARC_FROM_COLONS_MAX 32        /* ':' anywhere in it, >= group depth; real: 0-3 */
#define DMARC_FROM_ADDRESSES_MAX 64     /* mailboxes in the From field */
/* Domains of a broken From evaluated, each up to two DNS lookups (RFC 9989
 * asks to limit them against a denial of service); naming more makes the
 * evaluation incomplete, which never passes. */
#define DMARC_AUTHOR_DOMAINS_MAX 8
#define DMARC_GROUP_DEPTH_MAX 2         /* groups inside groups (GMime is lenient) */
#define DMARC_DKIM_SIGNATURES_MAX 16    /* DKIM results considered */
#define DMARC_RECORD_MAX 4096           /* bytes of one DMARC TXT record */
#define DMARC_RECORDS_MAX 32            /* TXT records looked at per name */
#define DMARC_NAME_MAX 253              /* DNS name, presentation form */
#define DMARC_LABEL_MAX 63
#define DMARC_LABELS_MAX 127
#define DMARC_PSL_LINE_MAX 1024
#define DMARC_PCT_FULL 100
#define DMARC_RRTYPE_TXT 16

struct dmarc_checker {
	struct dmarc_dns dns;
	GHashTable *psl_rules;          /* "co.uk" */
	GHashTable *psl_wildcards;      /* "ck" for "*.ck" */
	GHashTable *psl_exceptions;     /* "www.ck" for "!www.ck" */
};

enum dmarc_lookup {
	DMARC_LOOKUP_FOUND,
	DMARC_LOOKUP_NONE,
	DMARC_LOOKUP_MULTIPLE,
	DMARC_LOOKUP_TEMPFAIL,
};

/* libopendmarc's process-wide state: initialised by the first checker. */
static GMutex dmarc_library_lock;
static unsigned dmarc_library_users;

/* ---- small helpers ---------------------------------------------------- */

static void dmarc_reason(struct dmarc_outcome *out, const char *fmt, ...)
	G_GNUC_PRINTF(2, 3);

static void dmarc_reason(struct dmarc_outcome *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

static void dmarc_copy(char *dst, size_t size, const char *src)
{
	g_strlcpy(dst, src != NULL ? src : "", size);
}

/* dmarc_domain_normalize - lower-case, strip one trailing dot, check LDH
 * (plus '_') labels of 1..63 bytes and a total of at most 253. */
static int dmarc_domain_normalize(const char *in, char *buf, size_t buf_size)
{
	size_t len, label = 0;

	if (in == NULL)
		return -1;
	len = strlen(in);
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DMARC_NAME_MAX || len >= buf_size)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (g_ascii_isalnum(c) || c == '-' || c == '_') {
			if (++label > DMARC_LABEL_MAX)
				return -1;
		} else {
			return -1;
		}
		buf[i] = (char)g_ascii_tolower(c);
	}
	buf[len] = '\0';
	return label == 0 ? -1 : 0;
}

static const char *dmarc_policy_name(int p)
{
	switch (p) {
	case DMARC_RECORD_P_NONE: return "none";
	case DMARC_RECORD_P_QUARANTINE: return "quarantine";
	case DMARC_RECORD_P_REJECT: return "reject";
	default: return "";
	}
}

/* ---- Public Suffix List ----------------------------------------------- */

static void dmarc_psl_add(struct dmarc_checker *c, const char *rule)
{
	GHashTable *set = c->psl_rules;
	char *ascii;

	if (g_str_has_prefix(rule, "!")) {
		set = c->psl_exceptions;
		rule++;
	} else if (g_str_has_prefix(rule, "*.")) {
		set = c->psl_wildcards;
		rule += 2;
	}
	ascii = g_hostname_to_ascii(rule);
	if (ascii == NULL)
		return;
	g_hash_table_add(set, g_ascii_strdown(ascii, -1));
	g_free(ascii);
}

static int dmarc_psl_load(struct dmarc_checker *c, const char *path, char **error_r)
{
	char line[DMARC_PSL_LINE_MAX];
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		*error_r = g_strdup_printf("Public Suffix List %s: %s", path, g_strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *rule = g_strstrip(line);

		if (rule[0] == '\0' || g_str_has_prefix(rule, "//"))
			continue;
		rule[strcspn(rule, " \t")] = '\0';
		dmarc_psl_add(c, rule);
	}
	fclose(f);
	if (g_hash_table_size(c->psl_rules) == 0) {
		*error_r = g_strdup_printf("Public Suffix List %s: no rules", path);
		return -1;
	}
	return 0;
}

/* dmarc_psl_suffix_labels - how many labels of the domain (split into
 * labels[0..n-1], left to right) form its public suffix. */
static size_t dmarc_psl_suffix_labels(const struct dmarc_checker *c,
				      char *const *labels, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		g_autofree char *suffix = g_strjoinv(".", (char **)labels + i);

		if (g_hash_table_contains(c->psl_exceptions, suffix))
			return n - i - 1;
	}
	for (size_t i = 0; i < n; i++) {
		g_autofree char *suffix = g_strjoinv(".", (char **)labels + i);

		if (g_hash_table_contains(c->psl_rules, suffix))
			return n - i;
		if (i + 1 < n) {
			g_autofree char *parent = g_strjoinv(".", (char **)labels + i + 1);

			if (g_hash_table_contains(c->psl_wildcards, parent))
				return n - i;
		}
	}
	return 1;       /* the implicit "*" rule */
}

int dmarc_organizational_domain(const struct dmarc_checker *c, const char *domain,
				char *buf, size_t buf_size)
{
	char norm[DMARC_DOMAIN_MAX];
	char **labels;
	size_t n, suffix, keep;

	if (c == NULL || buf == NULL || dmarc_domain_normalize(domain, norm, sizeof(norm)) < 0)
		return -1;
	labels = g_strsplit(norm, ".", DMARC_LABELS_MAX + 1);
	n = g_strv_length(labels);
	if (n > DMARC_LABELS_MAX) {
		g_strfreev(labels);
		return -1;
	}
	suffix = dmarc_psl_suffix_labels(c, labels, n);
	keep = suffix < n ? suffix + 1 : n;
	{
		g_autofree char *org = g_strjoinv(".", labels + (n - keep));

		g_strlcpy(buf, org, buf_size);
	}
	g_strfreev(labels);
	return 0;
}

/* dmarc_aligned - RFC 7489 §3.1: strict = identical, relaxed = same
 * organisational domain. Both domains already normalised. */
static bool dmarc_aligned(const struct dmarc_checker *c, const char *from,
			  const char *other, int mode)
{
	char org_from[DMARC_DOMAIN_MAX], org_other[DMARC_DOMAIN_MAX];

	if (strcmp(from, other) == 0)
		return true;
	if (mode == DMARC_RECORD_A_STRICT)
		return false;
	if (dmarc_organizational_domain(c, from, org_from, sizeof(org_from)) < 0 ||
	    dmarc_organizational_domain(c, other, org_other, sizeof(org_other)) < 0)
		return false;
	return strcmp(org_from, org_other) == 0;
}

/* ---- the From domain -------------------------------------------------- */

struct dmarc_from_scan {
	char domain[DMARC_DOMAIN_MAX];
	size_t mailboxes;
	const char *error;              /* static text, or NULL */
	char other[DMARC_DOMAIN_MAX];   /* a second, different domain */
};

static void dmarc_from_mailbox(InternetAddressMailbox *mb, struct dmarc_from_scan *scan)
{
	const char *addr = internet_address_mailbox_get_idn_addr(mb);
	const char *at = addr != NULL ? strrchr(addr, '@') : NULL;
	char domain[DMARC_DOMAIN_MAX];

	if (++scan->mailboxes > DMARC_FROM_ADDRESSES_MAX) {
		scan->error = "too many From addresses";
		return;
	}
	if (at == NULL || at[1] == '\0') {
		scan->error = "From address without a domain";
		return;
	}
	if (dmarc_domain_normalize(at + 1, domain, sizeof(domain)) < 0) {
		scan->error = "invalid From domain";
		return;
	}
	if (scan->domain[0] == '\0')
		dmarc_copy(scan->domain, sizeof(scan->domain), domain);
	else if (strcmp(scan->domain, domain) != 0 && scan->other[0] == '\0')
		dmarc_copy(scan->other, sizeof(scan->other), domain);
}

static void dmarc_from_list(InternetAddressList *list, unsigned depth,
			    struct dmarc_from_scan *scan)
{
	int n = internet_address_list_length(list);

	for (int i = 0; i < n && scan->error == NULL; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			dmarc_from_mailbox(INTERNET_ADDRESS_MAILBOX(ia), scan);
		} else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			if (depth >= DMARC_GROUP_DEPTH_MAX) {
				scan->error = "nested groups in From";
				return;
			}
			dmarc_from_list(internet_address_group_get_members(
						INTERNET_ADDRESS_GROUP(ia)), depth + 1, scan);
		}
	}
}

/* ---- the domains a From names: a scan that needs no valid syntax ------- */

/* Ends a domain after "@": white space, specials (RFC 5322 §3.2.3). */
#define DMARC_DOMAIN_STOP " \t\r\n<>()[],;:@\"\\"

enum dmarc_span { DMARC_SPAN_QUOTE, DMARC_SPAN_COMMENT, DMARC_SPAN_LITERAL, DMARC_SPANS };

struct dmarc_authors {
	char domain[DMARC_AUTHOR_DOMAINS_MAX][DMARC_DOMAIN_MAX];
	size_t count;
	bool incomplete;                /* it named more than were kept */
	bool unclosed[DMARC_SPANS];     /* such a span never closes: read on as text */
};

/* dmarc_authors_add - one candidate domain (len bytes at token): A-labels,
 * normalised, once. Anything that is no usable domain name is ignored. */
static void dmarc_authors_add(struct dmarc_authors *a, const char *token, size_t len)
{
	char raw[DMARC_DOMAIN_MAX], norm[DMARC_DOMAIN_MAX];
	g_autofree char *ascii = NULL;

	if (len == 0 || len >= sizeof(raw))
		return;
	memcpy(raw, token, len);
	raw[len] = '\0';
	ascii = g_hostname_to_ascii(raw);
	if (ascii == NULL || dmarc_domain_normalize(ascii, norm, sizeof(norm)) < 0)
		return;
	for (size_t i = 0; i < a->count; i++)
		if (strcmp(a->domain[i], norm) == 0)
			return;
	if (a->count == DMARC_AUTHOR_DOMAINS_MAX) {
		a->incomplete = true;
		return;
	}
	dmarc_copy(a->domain[a->count++], sizeof(a->domain[0]), norm);
}

/* dmarc_span_end - past the quoted string, comment or domain literal that
 * opens at p (backslash escapes; comments nest), or NULL if it never
 * closes. A span type that failed once is plain text from then on, so the
 * scan stays linear. */
static const char *dmarc_span_end(struct dmarc_authors *a, const char *p)
{
	static const char closers[DMARC_SPANS] = { '"', ')', ']' };
	enum dmarc_span type = *p == '"' ? DMARC_SPAN_QUOTE :
			       *p == '(' ? DMARC_SPAN_COMMENT : DMARC_SPAN_LITERAL;
	char open = *p;
	size_t depth = 1;

	if (a->unclosed[type])
		return NULL;
	for (p++; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == closers[type] && --depth == 0)
			return p + 1;
		else if (type == DMARC_SPAN_COMMENT && *p == open)
			depth++;
	}
	a->unclosed[type] = true;
	return NULL;
}

/* dmarc_authors_at - the domain after an "@" (p points past it), CFWS
 * allowed before it. Returns where to read on. */
static const char *dmarc_authors_at(struct dmarc_authors *a, const char *p)
{
	size_t len;

	for (;;) {
		const char *end;

		p += strspn(p, " \t\r\n");
		if (*p != '(' || (end = dmarc_span_end(a, p)) == NULL)
			break;
		p = end;
	}
	len = strcspn(p, DMARC_DOMAIN_STOP);
	dmarc_authors_add(a, p, len);
	return p + len;
}

/* dmarc_authors_scan - every domain that follows an "@" outside quoted
 * strings, comments and domain literals, in one linear pass that needs no
 * well-formed syntax (and no recursion): what a broken From names. */
static void dmarc_authors_scan(struct dmarc_authors *a, const char *value)
{
	const char *p = value;

	while ((p = strpbrk(p, "@\"([")) != NULL) {
		const char *end;

		if (*p == '@')
			p = dmarc_authors_at(a, p + 1);
		else if ((end = dmarc_span_end(a, p)) != NULL)
			p = end;
		else
			p++;
	}
}

bool dmarc_from_names(char *const *from_values, size_t from_count,
		      bool (*match)(void *ctx, const char *domain), void *ctx)
{
	struct dmarc_authors *a = g_new0(struct dmarc_authors, 1);
	bool found = false;

	for (size_t i = 0; from_values != NULL && i < from_count; i++)
		if (from_values[i] != NULL)
			dmarc_authors_scan(a, from_values[i]);
	for (size_t i = 0; i < a->count && !found; i++)
		found = match(ctx, a->domain[i]);
	g_free(a);
	return found;
}

/* dmarc_from_colons - the ':' in a From value, wherever they are: GMime
 * (in its lenient mode) opens a group at one, also inside a quoted string
 * it cannot close, so this bounds the nesting it will see. */
static size_t dmarc_from_colons(const char *value)
{
	size_t n = 0;

	for (const char *p = strchr(value, ':'); p != NULL; p = strchr(p + 1, ':'))
		n++;
	return n;
}

/* dmarc_comment_end - past the comment opening at p, read as GMime's
 * skip_comment reads it (a backslash takes the next byte, parentheses
 * nest), or NULL if it never closes. */
static const char *dmarc_comment_end(const char *p)
{
	size_t depth = 1;

	for (p++; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p + 1;
	}
	return NULL;
}

/* dmarc_from_comments_close - whether a comment GMime may start at any
 * '(' closes: after a domain literal GMime 3.2 leaks the parsed address
 * (up to the whole field) when the comment that follows never closes.
 * Linear: every '(' inside a comment that closes closes as well. */
static bool dmarc_from_comments_close(const char *value)
{
	for (const char *p = strchr(value, '('); p != NULL; p = strchr(p, '(')) {
		if ((p = dmarc_comment_end(p)) == NULL)
			return false;
	}
	return true;
}

/* dmarc_from_parse - one From value through GMime's address parser, once
 * it is within the bounds that parser survives. Returns -1 with the
 * reason (static text) in scan->error. */
static int dmarc_from_parse(const char *value, struct dmarc_from_scan *scan)
{
	InternetAddressList *list;
	char *unfolded;

	if (strlen(value) > DMARC_FROM_FIELD_MAX) {
		scan->error = "From field over " G_STRINGIFY(DMARC_FROM_FIELD_MAX) " bytes";
		return -1;
	}
	if (dmarc_from_colons(value) > DMARC_FROM_COLONS_MAX) {
		scan->error = "From field with over " G_STRINGIFY(DMARC_FROM_COLONS_MAX) " colons";
		return -1;
	}
	if (!dmarc_from_comments_close(value)) {
		scan->error = "From field with an unclosed comment";
		return -1;
	}
	unfolded = g_strdup(value);
	g_strdelimit(unfolded, "\r\n", ' ');
	list = internet_address_list_parse(NULL, unfolded);
	g_free(unfolded);
	if (list == NULL) {
		scan->error = "unparsable From field";
		return -1;
	}
	dmarc_from_list(list, 0, scan);
	g_object_unref(list);
	return scan->error != NULL ? -1 : 0;
}

/* dmarc_from_other - a domain the scan found besides the parsed one. */
static const char *dmarc_from_other(const struct dmarc_authors *a, const char *domain)
{
	for (size_t i = 0; i < a->count; i++)
		if (strcmp(a->domain[i], domain) != 0)
			return a->domain[i];
	return NULL;
}

/* dmarc_from_domain - the single RFC5322.From domain, or -1 with the
 * reason the From field is broken written into out. authors holds what
 * the scan found; a domain there that GMime's addresses lack (it skips
 * what it cannot parse) makes the field broken too. */
static int dmarc_from_domain(const struct dmarc_input *in, const struct dmarc_authors *authors,
			     struct dmarc_outcome *out)
{
	struct dmarc_from_scan scan = { .error = NULL };
	const char *other;

	if (in->from_count == 0 || in->from_values == NULL) {
		dmarc_reason(out, "no From field");
		return -1;
	}
	if (in->from_count > 1) {
		dmarc_reason(out, "%zu From fields", in->from_count);
		return -1;
	}
	if (in->from_values[0] == NULL) {
		dmarc_reason(out, "no From field");
		return -1;
	}
	if (dmarc_from_parse(in->from_values[0], &scan) < 0) {
		dmarc_reason(out, "%s", scan.error);
		return -1;
	}
	if (scan.mailboxes == 0) {
		dmarc_reason(out, "From field without an address");
		return -1;
	}
	if (scan.other[0] != '\0') {
		dmarc_reason(out, "From addresses in different domains: %s, %s",
			     scan.domain, scan.other);
		return -1;
	}
	if ((other = dmarc_from_other(authors, scan.domain)) != NULL) {
		dmarc_reason(out, "From field names %s beside its address in %s", other,
			     scan.domain);
		return -1;
	}
	dmarc_copy(out->header_from, sizeof(out->header_from), scan.domain);
	return 0;
}

/* ---- policy discovery ------------------------------------------------- */

/* dmarc_txt_join - the character-strings of one TXT rdata joined, or NULL
 * if malformed, too long or containing NUL. */
static char *dmarc_txt_join(const unsigned char *rdata, size_t len)
{
	GString *s = g_string_new(NULL);
	size_t pos = 0;

	while (pos < len) {
		size_t chunk = rdata[pos++];

		if (chunk > len - pos || s->len + chunk > DMARC_RECORD_MAX ||
		    memchr(rdata + pos, '\0', chunk) != NULL) {
			g_string_free(s, TRUE);
			return NULL;
		}
		g_string_append_len(s, (const char *)rdata + pos, (gssize)chunk);
		pos += chunk;
	}
	return g_string_free(s, FALSE);
}

/* dmarc_is_record - starts with the version tag: "v" *WSP "=" *WSP "DMARC1"
 * followed by *WSP and ";" or the end (RFC 7489 §6.4). */
static bool dmarc_is_record(const char *txt)
{
	const char *p = txt;

	if (*p != 'v' && *p != 'V')
		return false;
	for (p++; *p == ' ' || *p == '\t'; p++)
		;
	if (*p++ != '=')
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "DMARC1", 6) != 0)
		return false;
	for (p += 6; *p == ' ' || *p == '\t'; p++)
		;
	return *p == ';' || *p == '\0';
}

static enum dmarc_lookup dmarc_fetch_record(struct dmarc_checker *c, const char *domain,
					    char **record_r)
{
	g_autofree char *name = g_strconcat("_dmarc.", domain, NULL);
	struct dns_answer *answer = NULL;
	enum dmarc_lookup ret = DMARC_LOOKUP_NONE;
	size_t found = 0;

	*record_r = NULL;
	if (c->dns.query_txt(c->dns.ctx, name, &answer) < 0 || answer == NULL) {
		if (answer != NULL)
			c->dns.free_answer(c->dns.ctx, &answer);
		return DMARC_LOOKUP_TEMPFAIL;
	}
	if (answer->status == DNS_TEMPFAIL)
		ret = DMARC_LOOKUP_TEMPFAIL;
	for (size_t i = 0; answer->status == DNS_OK && i < answer->count &&
	     i < DMARC_RECORDS_MAX; i++) {
		char *txt = dmarc_txt_join(answer->data[i], answer->len[i]);

		if (txt != NULL && dmarc_is_record(txt)) {
			found++;
			g_free(*record_r);
			*record_r = txt;
		} else {
			g_free(txt);
		}
	}
	c->dns.free_answer(c->dns.ctx, &answer);
	if (ret == DMARC_LOOKUP_TEMPFAIL || found == 0) {
		g_free(*record_r);
		*record_r = NULL;
		return ret;
	}
	if (found > 1) {
		g_free(*record_r);
		*record_r = NULL;
		return DMARC_LOOKUP_MULTIPLE;
	}
	return DMARC_LOOKUP_FOUND;
}

/* dmarc_discover - RFC 7489 §6.6.3: the From domain's record, else the
 * organisational domain's. Returns true with *record_r when a policy
 * applies; otherwise fills the outcome (none / temperror). */
static bool dmarc_discover(struct dmarc_checker *c, const char *from, const char *org,
			   char **record_r, bool *at_org_r, struct dmarc_outcome *out)
{
	const char *names[2] = { from, org };
	size_t tries = strcmp(from, org) == 0 ? 1 : 2;

	for (size_t i = 0; i < tries; i++) {
		switch (dmarc_fetch_record(c, names[i], record_r)) {
		case DMARC_LOOKUP_FOUND:
			*at_org_r = i == 1;
			return true;
		case DMARC_LOOKUP_TEMPFAIL:
			out->result = VERDICT_TEMPERROR;
			dmarc_reason(out, "DNS failure looking up _dmarc.%s", names[i]);
			return false;
		case DMARC_LOOKUP_MULTIPLE:
			out->result = VERDICT_NONE;
			dmarc_reason(out, "several DMARC records at _dmarc.%s", names[i]);
			return false;
		case DMARC_LOOKUP_NONE:
			break;
		}
	}
	out->result = VERDICT_NONE;
	dmarc_reason(out, "no DMARC record for %s", from);
	return false;
}

/* ---- evaluation ------------------------------------------------------- */

static int dmarc_spf_outcome(enum verdict v)
{
	switch (v) {
	case VERDICT_PASS: return DMARC_POLICY_SPF_OUTCOME_PASS;
	case VERDICT_FAIL:
	case VERDICT_SOFTFAIL: return DMARC_POLICY_SPF_OUTCOME_FAIL;
	case VERDICT_TEMPERROR: return DMARC_POLICY_SPF_OUTCOME_TMPFAIL;
	default: return DMARC_POLICY_SPF_OUTCOME_NONE;
	}
}

static int dmarc_dkim_outcome(enum verdict v)
{
	switch (v) {
	case VERDICT_PASS: return DMARC_POLICY_DKIM_OUTCOME_PASS;
	case VERDICT_FAIL: return DMARC_POLICY_DKIM_OUTCOME_FAIL;
	case VERDICT_TEMPERROR: return DMARC_POLICY_DKIM_OUTCOME_TMPFAIL;
	default: return DMARC_POLICY_DKIM_OUTCOME_NONE;
	}
}

struct dmarc_record_info {
	int p, sp, adkim, aspf, pct;
};

/* dmarc_library_evaluate - record, SPF and DKIM into libopendmarc; the
 * record's tags back. Returns -1 (permerror written) if it rejects the record. */
static int dmarc_library_evaluate(const struct dmarc_input *in, const char *from,
				  const char *org, bool at_org, char *record,
				  struct dmarc_record_info *info, struct dmarc_outcome *out)
{
	const char *ip = in->client_ip != NULL ? in->client_ip : "0.0.0.0";
	DMARC_POLICY_T *pctx = opendmarc_policy_connect_init((u_char *)ip,
							      strchr(ip, ':') != NULL);
	int status, lib_dkim = 0, lib_spf = 0;

	if (pctx == NULL) {
		out->result = VERDICT_TEMPERROR;
		dmarc_reason(out, "libopendmarc: out of memory");
		return -1;
	}
	(void)opendmarc_policy_store_from_domain(pctx, (u_char *)from);
	status = opendmarc_policy_store_dmarc(pctx, (u_char *)record, (u_char *)from,
					      at_org ? (u_char *)org : NULL);
	if (status != DMARC_PARSE_OKAY) {
		out->result = VERDICT_PERMERROR;
		dmarc_reason(out, "invalid DMARC record at _dmarc.%s: %s", at_org ? org : from,
			     opendmarc_policy_status_to_str(status));
		opendmarc_policy_connect_shutdown(pctx);
		return -1;
	}
	/* Stored after the record: store_dkim reads adkim. Rejected values
	 * (unusable domains) simply do not count. */
	if (in->spf_domain != NULL && in->spf_domain[0] != '\0')
		(void)opendmarc_policy_store_spf(pctx, (u_char *)in->spf_domain,
						 dmarc_spf_outcome(in->spf_result),
						 in->spf_is_helo ? DMARC_POLICY_SPF_ORIGIN_HELO :
						 DMARC_POLICY_SPF_ORIGIN_MAILFROM, NULL);
	for (size_t i = 0; i < in->dkim_count && i < DMARC_DKIM_SIGNATURES_MAX; i++) {
		if (in->dkim_domains[i] != NULL && in->dkim_domains[i][0] != '\0')
			(void)opendmarc_policy_store_dkim(pctx, (u_char *)in->dkim_domains[i], NULL,
							  dmarc_dkim_outcome(in->dkim_results[i]),
							  NULL);
	}
	/* The library's own verdict and alignment are computed (and kept for
	 * nothing but the record's tags): see the file comment for why our
	 * alignment decides. */
	(void)opendmarc_get_policy_to_enforce(pctx);
	(void)opendmarc_policy_fetch_alignment(pctx, &lib_dkim, &lib_spf);
	(void)opendmarc_policy_fetch_p(pctx, &info->p);
	(void)opendmarc_policy_fetch_sp(pctx, &info->sp);
	(void)opendmarc_policy_fetch_adkim(pctx, &info->adkim);
	(void)opendmarc_policy_fetch_aspf(pctx, &info->aspf);
	(void)opendmarc_policy_fetch_pct(pctx, &info->pct);
	opendmarc_policy_connect_shutdown(pctx);
	return 0;
}

static void dmarc_decide_alignment(struct dmarc_checker *c, const struct dmarc_input *in,
				   const char *from, const struct dmarc_record_info *info,
				   struct dmarc_outcome *out)
{
	char d[DMARC_DOMAIN_MAX];

	for (size_t i = 0; i < in->dkim_count && i < DMARC_DKIM_SIGNATURES_MAX; i++) {
		if (in->dkim_results[i] != VERDICT_PASS ||
		    dmarc_domain_normalize(in->dkim_domains[i], d, sizeof(d)) < 0 ||
		    !dmarc_aligned(c, from, d, info->adkim))
			continue;
		out->dkim_aligned = true;
		g_snprintf(out->aligned_by, sizeof(out->aligned_by), "dkim:%s", d);
		break;
	}
	if (in->spf_result == VERDICT_PASS &&
	    dmarc_domain_normalize(in->spf_domain, d, sizeof(d)) == 0 &&
	    dmarc_aligned(c, from, d, info->aspf)) {
		out->spf_aligned = true;
		if (!out->dkim_aligned)
			g_snprintf(out->aligned_by, sizeof(out->aligned_by), "spf:%s", d);
	}
}

/* dmarc_disposition - the policy to apply to a failing message, sampled by pct. */
static int dmarc_disposition(const struct dmarc_record_info *info, bool at_org,
			     struct dmarc_outcome *out)
{
	int policy = at_org && info->sp != DMARC_RECORD_P_UNSPECIFIED ? info->sp : info->p;

	if (policy == DMARC_RECORD_P_NONE || info->pct >= DMARC_PCT_FULL ||
	    g_random_int_range(0, DMARC_PCT_FULL) < info->pct)
		return policy;
	out->pct_sampled_out = true;
	return policy == DMARC_RECORD_P_REJECT ? DMARC_RECORD_P_QUARANTINE : DMARC_RECORD_P_NONE;
}

static void dmarc_evaluate(struct dmarc_checker *c, const struct dmarc_input *in,
			   const char *org, struct dmarc_outcome *out)
{
	const char *from = out->header_from;
	struct dmarc_record_info info = { .p = 0 };
	char *record = NULL;
	bool at_org = false;
	int dis;

	if (!dmarc_discover(c, from, org, &record, &at_org, out))
		return;
	if (dmarc_library_evaluate(in, from, org, at_org, record, &info, out) < 0) {
		g_free(record);
		return;
	}
	g_free(record);
	dmarc_copy(out->policy, sizeof(out->policy), dmarc_policy_name(info.p));
	dmarc_copy(out->sp, sizeof(out->sp), dmarc_policy_name(info.sp));
	dmarc_decide_alignment(c, in, from, &info, out);
	if (out->dkim_aligned || out->spf_aligned) {
		out->result = VERDICT_PASS;
		dmarc_copy(out->disposition, sizeof(out->disposition), "none");
		dmarc_reason(out, "aligned %s", out->aligned_by);
		return;
	}
	out->result = VERDICT_FAIL;
	dis = dmarc_disposition(&info, at_org, out);
	dmarc_copy(out->disposition, sizeof(out->disposition), dmarc_policy_name(dis));
	dmarc_reason(out, "no aligned SPF or DKIM pass for %s%s", from,
		     out->pct_sampled_out ? " (outside pct sample)" : "");
}

/* dmarc_evaluate_domain - the whole evaluation for one From domain. */
static void dmarc_evaluate_domain(struct dmarc_checker *c, const struct dmarc_input *in,
				  const char *domain, struct dmarc_outcome *out)
{
	char org[DMARC_DOMAIN_MAX];

	memset(out, 0, sizeof(*out));
	out->result = VERDICT_PERMERROR;
	dmarc_copy(out->header_from, sizeof(out->header_from), domain);
	if (dmarc_organizational_domain(c, domain, org, sizeof(org)) < 0) {
		dmarc_reason(out, "invalid From domain");
		return;
	}
	dmarc_evaluate(c, in, org, out);
}

/* ---- a broken From: every domain it names ----------------------------- */

struct dmarc_tally {
	struct dmarc_outcome fail;      /* the failure with the strictest disposition */
	struct dmarc_outcome pass;      /* the first pass */
	char temperror[DMARC_REASON_MAX]; /* the first temperror's reason */
	char other[DMARC_REASON_MAX];   /* the first none/permerror's reason */
	size_t fails, passes, temperrors;
};

/* dmarc_strictness - how much a disposition asks for: none < quarantine < reject. */
static int dmarc_strictness(const char *disposition)
{
	if (strcmp(disposition, "reject") == 0)
		return 3;
	if (strcmp(disposition, "quarantine") == 0)
		return 2;
	return strcmp(disposition, "none") == 0 ? 1 : 0;
}

/* dmarc_tally_add - count one domain's outcome, keep the ones that may decide. */
static void dmarc_tally_add(struct dmarc_tally *t, const struct dmarc_outcome *one)
{
	switch (one->result) {
	case VERDICT_FAIL:
		if (t->fails++ == 0 ||
		    dmarc_strictness(one->disposition) > dmarc_strictness(t->fail.disposition))
			t->fail = *one;
		break;
	case VERDICT_PASS:
		if (t->passes++ == 0)
			t->pass = *one;
		break;
	case VERDICT_TEMPERROR:
		if (t->temperrors++ == 0)
			dmarc_copy(t->temperror, sizeof(t->temperror), one->reason);
		break;
	default:
		if (t->other[0] == '\0')
			dmarc_copy(t->other, sizeof(t->other), one->reason);
		break;
	}
}

/* dmarc_tally_fresh - an outcome without a policy or a From domain. */
static void dmarc_tally_fresh(struct dmarc_outcome *out, enum verdict result, const char *detail)
{
	memset(out, 0, sizeof(*out));
	out->result = result;
	dmarc_copy(out->reason, sizeof(out->reason), detail);
}

/* dmarc_tally_decide - one outcome for the message. Any failure decides
 * (the strictest disposition; an incomplete evaluation at least
 * quarantine); then temperror; pass only if every domain passed; else
 * permerror. problem says why the From is broken and opens the reason. */
static void dmarc_tally_decide(const struct dmarc_tally *t, size_t count, bool incomplete,
			       const char *problem, struct dmarc_outcome *out)
{
	if (t->fails > 0)
		*out = t->fail;
	else if (incomplete)
		dmarc_tally_fresh(out, VERDICT_FAIL, "");
	else if (t->temperrors > 0)
		dmarc_tally_fresh(out, VERDICT_TEMPERROR, t->temperror);
	else if (t->passes == count)
		*out = t->pass;
	else
		dmarc_tally_fresh(out, VERDICT_PERMERROR, t->other);
	if (incomplete && dmarc_strictness(out->disposition) < dmarc_strictness("quarantine")) {
		dmarc_copy(out->disposition, sizeof(out->disposition), "quarantine");
		dmarc_reason(out, "more than %d From domains, not all evaluated",
			     DMARC_AUTHOR_DOMAINS_MAX);
	}
	out->from_invalid = true;
	{
		g_autofree char *detail = g_strdup(out->reason);

		dmarc_reason(out, "%s; %s", problem, detail);
	}
}

/* dmarc_evaluate_authors - a broken From: every domain it names (at most
 * DMARC_AUTHOR_DOMAINS_MAX) evaluated on its own, then one outcome, so
 * that breaking the field never escapes a policy (RFC 9989, "Denial of
 * DMARC Processing Attacks": the strictest policy among those that fail). */
static void dmarc_evaluate_authors(struct dmarc_checker *c, const struct dmarc_input *in,
				   const struct dmarc_authors *a, struct dmarc_outcome *out)
{
	struct dmarc_tally *t = g_new0(struct dmarc_tally, 1);
	struct dmarc_outcome *one = g_new0(struct dmarc_outcome, 1);
	char problem[DMARC_REASON_MAX];

	dmarc_copy(problem, sizeof(problem), out->reason);
	for (size_t i = 0; i < a->count; i++) {
		dmarc_evaluate_domain(c, in, a->domain[i], one);
		dmarc_tally_add(t, one);
	}
	dmarc_tally_decide(t, a->count, a->incomplete, problem, out);
	g_free(one);
	g_free(t);
}

int dmarc_check(struct dmarc_checker *c, const struct dmarc_input *in,
		struct dmarc_outcome *out_r)
{
	struct dmarc_authors *authors;
	char from[DMARC_DOMAIN_MAX];

	memset(out_r, 0, sizeof(*out_r));
	out_r->result = VERDICT_PERMERROR;
	if (c == NULL || in == NULL || (in->dkim_count > 0 &&
	    (in->dkim_results == NULL || in->dkim_domains == NULL))) {
		dmarc_reason(out_r, "invalid arguments");
		return -1;
	}
	authors = g_new0(struct dmarc_authors, 1);
	for (size_t i = 0; in->from_values != NULL && i < in->from_count; i++)
		if (in->from_values[i] != NULL)
			dmarc_authors_scan(authors, in->from_values[i]);
	if (dmarc_from_domain(in, authors, out_r) == 0) {
		dmarc_copy(from, sizeof(from), out_r->header_from);
		dmarc_evaluate_domain(c, in, from, out_r);
	} else {
		/* Broken: permerror unless it names a domain. */
		out_r->from_invalid = true;
		if (authors->count > 0)
			dmarc_evaluate_authors(c, in, authors, out_r);
	}
	g_free(authors);
	return 0;
}

/* ---- rendering -------------------------------------------------------- */

void dmarc_outcome_comment(const struct dmarc_outcome *out, char *buf, size_t buf_size)
{
	if (buf_size == 0)
		return;
	if (out->disposition[0] != '\0' && (out->policy[0] != '\0' || out->from_invalid)) {
		g_snprintf(buf, buf_size, "%s%s%s%s%s%sdis=%s%s",
			   out->policy[0] != '\0' ? "p=" : "", out->policy,
			   out->policy[0] != '\0' ? " " : "",
			   out->sp[0] != '\0' ? "sp=" : "", out->sp, out->sp[0] != '\0' ? " " : "",
			   out->disposition, out->from_invalid ? " from=invalid" : "");
		return;
	}
	g_strlcpy(buf, out->reason, buf_size);
	for (char *p = buf; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch < 0x20 || ch >= 0x7f || ch == '(' || ch == ')' || ch == '\\')
			*p = '?';
	}
}

const char *dmarc_outcome_header_from(const struct dmarc_outcome *out)
{
	return out->header_from[0] != '\0' ? out->header_from : NULL;
}

void dmarc_outcome_format(const struct dmarc_outcome *out, char *buf, size_t buf_size)
{
	char comment[DMARC_REASON_MAX];
	const char *from = dmarc_outcome_header_from(out);

	dmarc_outcome_comment(out, comment, sizeof(comment));
	g_snprintf(buf, buf_size, "dmarc=%s (%s)%s%s", verdict_name(out->result), comment,
		   from != NULL ? " header.from=" : "", from != NULL ? from : "");
}

/* ---- checker life cycle ----------------------------------------------- */

static int dmarc_library_ref(const char *psl_path, char **error_r)
{
	OPENDMARC_LIB_T lib;
	int status;

	g_mutex_lock(&dmarc_library_lock);
	if (dmarc_library_users > 0) {
		dmarc_library_users++;
		g_mutex_unlock(&dmarc_library_lock);
		return 0;
	}
	memset(&lib, 0, sizeof(lib));
	lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
	g_strlcpy((char *)lib.tld_source_file, psl_path, sizeof(lib.tld_source_file));
	status = opendmarc_policy_library_init(&lib);
	if (status != DMARC_PARSE_OKAY) {
		g_mutex_unlock(&dmarc_library_lock);
		*error_r = g_strdup_printf("libopendmarc initialisation with %s failed (%d)",
					   psl_path, status);
		return -1;
	}
	dmarc_library_users = 1;
	g_mutex_unlock(&dmarc_library_lock);
	return 0;
}

static void dmarc_library_unref(void)
{
	OPENDMARC_LIB_T lib;

	g_mutex_lock(&dmarc_library_lock);
	if (dmarc_library_users > 0 && --dmarc_library_users == 0) {
		memset(&lib, 0, sizeof(lib));
		(void)opendmarc_policy_library_shutdown(&lib);
	}
	g_mutex_unlock(&dmarc_library_lock);
}

int dmarc_checker_new_with_psl(const struct dmarc_dns *dns, const char *psl_path,
			       struct dmarc_checker **checker_r, char **error_r)
{
	struct dmarc_checker *c;

	*checker_r = NULL;
	if (dns == NULL || dns->query_txt == NULL || dns->free_answer == NULL ||
	    psl_path == NULL) {
		*error_r = g_strdup("dmarc: no DNS source or Public Suffix List");
		return -1;
	}
	c = g_new0(struct dmarc_checker, 1);
	c->dns = *dns;
	c->psl_rules = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c->psl_wildcards = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c->psl_exceptions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (dmarc_psl_load(c, psl_path, error_r) < 0 ||
	    dmarc_library_ref(psl_path, error_r) < 0) {
		g_hash_table_destroy(c->psl_rules);
		g_hash_table_destroy(c->psl_wildcards);
		g_hash_table_destroy(c->psl_exceptions);
		g_free(c);
		return -1;
	}
	g_mime_init();
	*checker_r = c;
	return 0;
}

int dmarc_checker_new(const struct dmarc_dns *dns, struct dmarc_checker **checker_r,
		      char **error_r)
{
	return dmarc_checker_new_with_psl(dns, LMTPFILTER_PSL, checker_r, error_r);
}

void dmarc_checker_free(struct dmarc_checker **checker)
{
	struct dmarc_checker *c = *checker;

	if (c == NULL)
		return;
	*checker = NULL;
	g_hash_table_destroy(c->psl_rules);
	g_hash_table_destroy(c->psl_wildcards);
	g_hash_table_destroy(c->psl_exceptions);
	dmarc_library_unref();
	g_free(c);
}

/* ---- production DNS source -------------------------------------------- */

static int dmarc_resolver_query_txt(void *ctx, const char *name, struct dns_answer **answer_r)
{
	return resolver_query(ctx, name, DMARC_RRTYPE_TXT, answer_r);
}

static void dmarc_resolver_free_answer(void *ctx, struct dns_answer **answer)
{
	dns_answer_free(answer);
}

void dmarc_dns_for_resolver(struct resolver *resolver, struct dmarc_dns *dns_r)
{
	dns_r->query_txt = dmarc_resolver_query_txt;
	dns_r->free_answer = dmarc_resolver_free_answer;
	dns_r->ctx = resolver;
}
