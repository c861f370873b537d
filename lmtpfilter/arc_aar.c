/*
 * arc_aar - what an ARC-Authentication-Results value vouches for
 *
 * Owns: a small reader of the RFC 8601 value inside an AAR. The value is
 * first cleaned (comments, nested or not, become a space; CR, LF and tab
 * become spaces; quoted strings are kept whole), then split at the ';'
 * outside quotes: "i=N", the authserv-id, then one result each. A result
 * is "method[/version]=result" and "ptype.property=value" words (white
 * space around '=' allowed, as CFWS is). What it cannot read vouches for
 * nothing. Limits: ARC_AAR_VALUE_MAX bytes, ARC_AAR_RESULTS_MAX results,
 * ARC_AAR_PROPS_MAX properties each.
 */
#include "lmtpfilter/arc_aar.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

#define AAR_DOMAIN_MAX 256      /* a domain name and its NUL */

struct aar_result {
	const char *method;         /* lower case, version removed */
	const char *result;
	const char *keys[ARC_AAR_PROPS_MAX];
	const char *values[ARC_AAR_PROPS_MAX];   /* unquoted */
	size_t count;
};

/* aar_clean - the value with comments and line breaks turned into spaces,
 * quoted strings kept (g_free). */
static char *aar_clean(const char *value, size_t len)
{
	GString *out = g_string_sized_new(len + 1);
	unsigned depth = 0;
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		char c = value[i];
		if (c == '\\' && (quoted || depth > 0) && i + 1 < len) {
			if (quoted)
				g_string_append_len(out, value + i, 2);
			i++;
		} else if (quoted) {
			g_string_append_c(out, c == '\r' || c == '\n' || c == '\t' ? ' ' : c);
			quoted = c != '"';
		} else if (c == '(') {
			depth++;
		} else if (c == ')' && depth > 0) {
			if (--depth == 0)
				g_string_append_c(out, ' ');
		} else if (depth == 0) {
			g_string_append_c(out, c == '\r' || c == '\n' || c == '\t' ? ' ' : c);
			quoted = c == '"';
		}
	}
	return g_string_free(out, FALSE);
}

/* aar_squeeze - remove the blanks around '=' outside quotes, in place. */
static void aar_squeeze(char *s)
{
	char *w = s;
	bool quoted = false;

	for (char *r = s; *r; r++) {
		if (*r == '"' && (r == s || r[-1] != '\\'))
			quoted = !quoted;
		if (!quoted && *r == ' ') {
			char *next = r;
			while (*next == ' ')
				next++;
			if (*next == '=' || (w > s && w[-1] == '=')) {
				r = next - 1;
				continue;
			}
		}
		*w++ = *r;
	}
	*w = '\0';
}

/* aar_split - cut s at the separator (or at any blank when sep is ' ')
 * outside quotes; the pieces are written into pieces_r, at most max. */
static size_t aar_split(char *s, char sep, char **pieces_r, size_t max)
{
	size_t n = 0;
	bool quoted = false;
	char *start = s;

	for (char *p = s;; p++) {
		if (*p == '"' && (p == s || p[-1] != '\\'))
			quoted = !quoted;
		if (*p != '\0' && (quoted || *p != sep))
			continue;
		bool end = *p == '\0';
		*p = '\0';
		char *piece = g_strstrip(start);
		if (piece[0] != '\0' && n < max)
			pieces_r[n++] = piece;
		if (end)
			return n;
		start = p + 1;
	}
}

/* aar_unquote - a value without its quotes and escapes, in place. */
static char *aar_unquote(char *v)
{
	size_t len = strlen(v);
	char *w = v;

	if (len < 2 || v[0] != '"' || v[len - 1] != '"')
		return v;
	v[len - 1] = '\0';
	for (char *r = v + 1; *r; r++) {
		if (*r == '\\' && r[1] != '\0')
			r++;
		*w++ = *r;
	}
	*w = '\0';
	return v;
}

/* aar_result_parse - one result; false when it is not "method=result ...". */
static bool aar_result_parse(char *text, struct aar_result *r_r)
{
	char *words[ARC_AAR_PROPS_MAX + 1];
	size_t n;

	aar_squeeze(text);
	n = aar_split(text, ' ', words, G_N_ELEMENTS(words));
	memset(r_r, 0, sizeof(*r_r));
	char *eq = n > 0 ? strchr(words[0], '=') : NULL;
	if (eq == NULL)
		return false;
	*eq = '\0';
	char *slash = strchr(words[0], '/');
	if (slash != NULL)
		*slash = '\0';
	r_r->method = words[0];
	r_r->result = eq + 1;
	for (size_t i = 1; i < n; i++) {
		char *peq = strchr(words[i], '=');
		if (peq == NULL)
			continue;
		*peq = '\0';
		r_r->keys[r_r->count] = words[i];
		r_r->values[r_r->count] = aar_unquote(peq + 1);
		r_r->count++;
	}
	return true;
}

static const char *aar_prop(const struct aar_result *r, const char *key)
{
	for (size_t i = 0; i < r->count; i++)
		if (g_ascii_strcasecmp(r->keys[i], key) == 0 && r->values[i][0] != '\0')
			return r->values[i];
	return NULL;
}

/* aar_domain_aligned - is the domain of an address or name (the text after
 * its last '@') aligned with from_domain? */
static bool aar_domain_aligned(const char *method, const char *value, const char *from_domain,
			       arc_aar_aligned_fn *aligned, void *ctx)
{
	const char *at = value != NULL ? strrchr(value, '@') : NULL;
	const char *d = at != NULL ? at + 1 : value;
	char domain[AAR_DOMAIN_MAX];
	size_t len = d != NULL ? strlen(d) : 0;

	if (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(domain))
		return false;
	for (size_t i = 0; i < len; i++)
		domain[i] = g_ascii_tolower(d[i]);
	domain[len] = '\0';
	return aligned(ctx, method, domain, from_domain);
}

/* aar_result_vouches - does this one result vouch? Then what_r says it. */
static bool aar_result_vouches(const struct aar_result *r, const char *from_domain, arc_aar_aligned_fn *aligned,
			       void *ctx, char *what_r, size_t what_size)
{
	if (g_ascii_strcasecmp(r->result, "pass") != 0)
		return false;
	if (g_ascii_strcasecmp(r->method, "dmarc") == 0) {
		const char *hf = aar_prop(r, "header.from");
		if (hf == NULL || g_ascii_strcasecmp(hf, from_domain) != 0)
			return false;    /* a pass for another author domain, or for none named */
		snprintf(what_r, what_size, "dmarc=pass");
		return true;
	}
	if (g_ascii_strcasecmp(r->method, "spf") == 0) {
		const char *mf = aar_prop(r, "smtp.mailfrom");
		if (!aar_domain_aligned("spf", mf, from_domain, aligned, ctx))
			return false;
		snprintf(what_r, what_size, "spf=pass smtp.mailfrom=%s", mf);
		return true;
	}
	if (g_ascii_strcasecmp(r->method, "dkim") == 0) {
		const char *d = aar_prop(r, "header.d");
		const char *key = "header.d";
		if (d == NULL) {
			d = aar_prop(r, "header.i");
			key = "header.i";
		}
		if (!aar_domain_aligned("dkim", d, from_domain, aligned, ctx))
			return false;
		snprintf(what_r, what_size, "dkim=pass %s=%s", key, d);
		return true;
	}
	return false;
}

bool arc_aar_vouches(const char *value, size_t len, const char *from_domain, arc_aar_aligned_fn *aligned,
		     void *ctx, char *what_r, size_t what_size)
{
	char *parts[ARC_AAR_RESULTS_MAX + 2];
	bool found = false;

	if (what_size > 0)
		what_r[0] = '\0';
	if (value == NULL || len > ARC_AAR_VALUE_MAX || from_domain == NULL || from_domain[0] == '\0')
		return false;
	char *clean = aar_clean(value, len);
	size_t n = aar_split(clean, ';', parts, G_N_ELEMENTS(parts));
	/* parts[0] is "i=N" (arc_fields.c checked it), parts[1] the authserv-id. */
	for (size_t i = 2; i < n && !found; i++) {
		struct aar_result r;
		if (aar_result_parse(parts[i], &r))
			found = aar_result_vouches(&r, from_domain, aligned, ctx, what_r, what_size);
	}
	g_free(clean);
	return found;
}
