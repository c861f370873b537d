/*
 * dmarc - DMARC evaluation of the RFC5322.From domain (RFC 9989)
 *
 * Phases of dmarc_check: extract the one From domain (mime/from: GMime's
 * address parser, RFC 2047, groups, comments; only within the bounds it
 * survives), discover the policy (dmarc_discovery: the RFC 9989 tree walk, or with
 * DMARC_DISCOVERY_PSL the Author Domain then its organisational domain by
 * the Public Suffix List loaded here) through the checker's DNS source,
 * decide alignment, then the disposition: the tag that applies (p=, sp=,
 * or np= for a subdomain that does not exist), one level lower for t=y.
 *
 * Where RFC 9989 and RFC 7489 differ, RFC 9989 wins in both modes: the
 * record's tags are read by its grammar (dmarc_record: a bad tag is
 * dropped, a record without a valid p= is p=none if it has a valid rua=,
 * else DMARC does not apply), several records at one name are discarded,
 * np= and t=y apply, and pct= is reported but never applied. libopendmarc
 * 1.4.2 predates all of that (it cannot read np=, psd= or t=, rejects
 * records RFC 9989 keeps, and misaligns, see below), so it no longer
 * takes part in the evaluation.
 *
 * Owns: the Public Suffix List loaded into hash sets and the discovery
 * mode, both fixed before threads use the checker; per message nothing is
 * shared, so dmarc_check is thread-safe. Every DNS query goes through the
 * checker's source (in production the shared resolver, which caches).
 *
 * Alignment: strict = same domain; relaxed = same Organizational Domain,
 * found for the SPF or DKIM identifier by the same discovery as for the
 * Author Domain (RFC 9989 §4.10.2; a walk only for an identifier at or
 * below the Author Domain's Organizational Domain, the only ones that can
 * share it). With the list: our list code, not libopendmarc's, which
 * passes subdomains under adkim=s / aspf=s and drops wildcard rules and
 * the implicit "*" rule.
 *
 * A broken From (several fields, addresses in different domains, an
 * address without a domain, too many addresses, over a bound, unparsable,
 * or naming a domain that GMime's parse dropped) must not escape DMARC:
 * every domain it names is found by a linear scan of the raw fields (no
 * GMime, whatever the nesting) and evaluated as above, each with its own
 * discovery; any failure gives fail with the strictest disposition among
 * the failures, pass needs a pass for every domain (RFC 9989, "Denial of
 * DMARC Processing Attacks"). The outcome says from_invalid; the A-R
 * comment "from=invalid".
 *
 * Results, stated in `reason`:
 * - no From, or a broken From naming no usable domain: permerror;
 * - a broken From whose domains neither fail nor all pass (no record,
 *   invalid record): permerror; with a DNS failure: temperror;
 * - a broken From naming more than DMARC_AUTHOR_DOMAINS_MAX domains: the
 *   first ones are evaluated and the disposition is at least quarantine;
 * - no record that applies, or one that says DMARC does not apply: none;
 * - a DNS failure on any query the result depends on (the walk, whether
 *   the Author Domain exists for np=, an identifier's organisational
 *   domain when nothing else aligned): temperror, never a silent none.
 *
 * Limits: mime/from's bounds on what GMime is handed (FROM_FIELD_MAX
 * bytes, FROM_COLONS_MAX colons, FROM_ADDRESSES_MAX addresses),
 * DMARC_AUTHOR_DOMAINS_MAX domains of a broken From,
 * DMARC_DKIM_SIGNATURES_MAX signatures, DMARC_PSL_LINE_MAX bytes per list
 * line; the discovery's own bounds (eight queries per walk).
 */
#include "lmtpfilter/dmarc.h"
#include "lmtpfilter/dmarc_record.h"
#include "mime/from.h"

#include <stddef.h>
#include <sys/types.h>
#include <netinet/in.h>

#include <errno.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifndef LMTPFILTER_PSL
#define LMTPFILTER_PSL "/usr/share/publicsuffix/public_suffix_list.dat"
#endif

/* DMARC_AUTHOR_DOMAINS_MAX (dmarc.h): domains of a broken From evaluated. */
#define DMARC_DKIM_SIGNATURES_MAX 16    /* DKIM results considered */
#define DMARC_NAME_MAX 253              /* DNS name, presentation form */
#define DMARC_LABEL_MAX 63
#define DMARC_LABELS_MAX 127
#define DMARC_PSL_LINE_MAX 1024

struct dmarc_checker {
	struct dns_source dns;
	GHashTable *psl_rules;          /* "co.uk" */
	GHashTable *psl_wildcards;      /* "ck" for "*.ck" */
	GHashTable *psl_exceptions;     /* "www.ck" for "!www.ck" */
	enum dmarc_discovery_mode mode; /* set before threads exist */
};

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

/* ---- the From domain -------------------------------------------------- */

struct dmarc_from_scan {
	char domain[DMARC_DOMAIN_MAX];
	size_t mailboxes;
	char error[DMARC_REASON_MAX];   /* why the From is broken, or "" */
	char other[DMARC_DOMAIN_MAX];   /* a second, different domain */
};

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

/* dmarc_from_parse - one From value's mailboxes (mime/from: GMime's
 * parser within the bounds it survives), their domains normalised, in
 * order: the first that is no usable domain stops the reading. Returns
 * -1 with the reason in scan->error. */
static int dmarc_from_parse(const char *value, struct dmarc_from_scan *scan)
{
	struct from_list list;
	g_autofree char *error = NULL;

	if (from_parse(value, &list, &error) < 0)
		dmarc_copy(scan->error, sizeof(scan->error), error);
	for (size_t i = 0; i < list.count; i++) {
		char domain[DMARC_DOMAIN_MAX];

		if (dmarc_domain_normalize(list.domains[i], domain, sizeof(domain)) < 0) {
			dmarc_copy(scan->error, sizeof(scan->error), "invalid From domain");
			break;
		}
		scan->mailboxes++;
		if (scan->domain[0] == '\0')
			dmarc_copy(scan->domain, sizeof(scan->domain), domain);
		else if (strcmp(scan->domain, domain) != 0 && scan->other[0] == '\0')
			dmarc_copy(scan->other, sizeof(scan->other), domain);
	}
	from_list_clear(&list);
	return scan->error[0] != '\0' ? -1 : 0;
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
	struct dmarc_from_scan scan = { .mailboxes = 0 };
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

/* ---- policy discovery (dmarc_discovery) -------------------------------- */

/* dmarc_psl_org - the list's organisational domain, for DMARC_DISCOVERY_PSL. */
static int dmarc_psl_org(const void *ctx, const char *domain, char *buf, size_t size)
{
	return dmarc_organizational_domain(ctx, domain, buf, size);
}

/* dmarc_discovery_setup - the discovery's DNS source and options. */
static void dmarc_discovery_setup(struct dmarc_checker *c, struct dns_source *dns,
				  struct dmarc_discovery_options *options)
{
	*dns = c->dns;
	options->mode = c->mode;
	options->psl.org_domain = dmarc_psl_org;
	options->psl.ctx = c;
}

/* ---- evaluation ------------------------------------------------------- */

/* dmarc_request_policy - p=/sp=/np= as a policy name, "" unless valid. */
static const char *dmarc_request_policy(enum dmarc_request r)
{
	switch (r) {
	case DMARC_REQUEST_NONE:
	case DMARC_REQUEST_QUARANTINE:
	case DMARC_REQUEST_REJECT:
		return dmarc_request_name(r);
	default:
		return "";
	}
}

/* dmarc_outcome_text - S and its NUL onto out->discovery_text at *used;
 * false if it does not fit. */
static bool dmarc_outcome_text(struct dmarc_outcome *out, size_t *used, const char *s)
{
	size_t len = strlen(s) + 1;

	if (len > sizeof(out->discovery_text) - *used)
		return false;
	memcpy(out->discovery_text + *used, s, len);
	*used += len;
	return true;
}

/* dmarc_outcome_keep - the discovery into the outcome for
 * dmarc_outcome_append_json: a copy without heap memory, so outcomes copy
 * by value. Texts that do not fit discovery_text would make the JSON
 * longer than DMARC_DISCOVERY_JSON_MAX, which then drops them anyway. */
static void dmarc_outcome_keep(const struct dmarc_discovery *d, struct dmarc_outcome *out)
{
	const struct dmarc_record *r = &d->record;
	size_t used = 0;
	bool fits;

	out->discovered = true;
	out->discovery = *d;
	out->discovery.record.raw = NULL;
	out->discovery.record.rua = NULL;
	if (!d->has_record)
		return;
	fits = dmarc_outcome_text(out, &used, r->raw != NULL ? r->raw : "");
	for (size_t i = 0; i < r->rua_count && fits; i++)
		fits = dmarc_outcome_text(out, &used, r->rua[i]);
	out->discovery_text_kept = fits;
}

/* dmarc_outcome_discovered - what the discovery found, into the outcome. */
static void dmarc_outcome_discovered(struct dmarc_discovery *d, struct dmarc_outcome *out)
{
	const struct dmarc_record *r = &d->record;

	dmarc_copy(out->org_domain, sizeof(out->org_domain), d->org_domain);
	dmarc_copy(out->policy_domain, sizeof(out->policy_domain), d->policy_domain);
	dmarc_copy(out->applied, sizeof(out->applied), dmarc_applies_name(d->applies));
	dmarc_copy(out->published, sizeof(out->published), dmarc_request_policy(d->published));
	out->testing_lowered = d->testing_lowered;
	if (d->has_record) {
		dmarc_copy(out->policy, sizeof(out->policy),
			   d->applies == DMARC_APPLIES_P_NONE_FALLBACK ? "none" :
			   dmarc_request_policy(r->p));
		dmarc_copy(out->sp, sizeof(out->sp), dmarc_request_policy(r->sp));
		dmarc_copy(out->np, sizeof(out->np), dmarc_request_policy(r->np));
		out->testing = r->testing;
		out->psd = r->psd == DMARC_PSD_YES ? 'y' : r->psd == DMARC_PSD_NO ? 'n' : 'u';
		out->pct = r->pct;
		out->adkim = r->adkim == DMARC_ALIGN_STRICT ? 's' : 'r';
		out->aspf = r->aspf == DMARC_ALIGN_STRICT ? 's' : 'r';
	}
	dmarc_outcome_keep(d, out);
}

/* dmarc_within - name is org or a name below it. */
static bool dmarc_within(const char *name, const char *org)
{
	size_t n = strlen(name), o = strlen(org);

	if (n == o)
		return strcmp(name, org) == 0;
	return n > o && name[n - o - 1] == '.' && strcmp(name + n - o, org) == 0;
}

/* dmarc_identifier_aligned - RFC 9989 §3.2.10: strict = identical;
 * relaxed = the same Organizational Domain, found for the identifier as
 * for the Author Domain (tree walk or list). Only a name at or below the
 * Author Domain's Organizational Domain can have it, so only those cost a
 * walk. ID is normalised. 1 aligned, 0 not, -1 a DNS failure left it open. */
static int dmarc_identifier_aligned(struct dmarc_checker *c, const struct dmarc_discovery *d,
				    const char *id, enum dmarc_alignment mode)
{
	struct dmarc_discovery_options options;
	struct dns_source dns;
	struct dmarc_discovery *o;
	int aligned;

	if (strcmp(id, d->domain) == 0)
		return 1;
	if (mode == DMARC_ALIGN_STRICT || !dmarc_within(id, d->org_domain))
		return 0;
	dmarc_discovery_setup(c, &dns, &options);
	o = g_new0(struct dmarc_discovery, 1);
	(void)dmarc_discover_org_domain_with(&dns, &options, id, o);
	if (o->status == DMARC_DISCOVERY_TEMPERROR)
		aligned = -1;
	else
		aligned = o->status != DMARC_DISCOVERY_PERMERROR &&
			  strcmp(o->org_domain, d->org_domain) == 0;
	dmarc_discovery_clear(o);
	g_free(o);
	return aligned;
}

/* dmarc_decide_alignment - DKIM then SPF identifiers against the Author
 * Domain. Returns false (temperror written) when nothing aligned and a
 * DNS failure left an identifier open. */
static bool dmarc_decide_alignment(struct dmarc_checker *c, const struct dmarc_input *in,
				   const struct dmarc_discovery *d, struct dmarc_outcome *out)
{
	char id[DMARC_DOMAIN_MAX], open[DMARC_DOMAIN_MAX] = "";
	int r;

	for (size_t i = 0; i < in->dkim_count && i < DMARC_DKIM_SIGNATURES_MAX; i++) {
		if (in->dkim_results[i] != VERDICT_PASS ||
		    dmarc_domain_normalize(in->dkim_domains[i], id, sizeof(id)) < 0)
			continue;
		r = dmarc_identifier_aligned(c, d, id, d->record.adkim);
		if (r < 0 && open[0] == '\0')
			dmarc_copy(open, sizeof(open), id);
		if (r <= 0)
			continue;
		out->dkim_aligned = true;
		g_snprintf(out->aligned_by, sizeof(out->aligned_by), "dkim:%s", id);
		break;
	}
	if (in->spf_result == VERDICT_PASS &&
	    dmarc_domain_normalize(in->spf_domain, id, sizeof(id)) == 0) {
		r = dmarc_identifier_aligned(c, d, id, d->record.aspf);
		if (r < 0 && open[0] == '\0')
			dmarc_copy(open, sizeof(open), id);
		if (r > 0) {
			out->spf_aligned = true;
			if (!out->dkim_aligned)
				g_snprintf(out->aligned_by, sizeof(out->aligned_by), "spf:%s", id);
		}
	}
	if (out->dkim_aligned || out->spf_aligned || open[0] == '\0')
		return true;
	out->result = VERDICT_TEMPERROR;
	dmarc_reason(out, "DNS failure finding the organizational domain of %s", open);
	return false;
}

/* dmarc_evaluate - a record applies: alignment, then the disposition
 * (the tag that applies, after t=y; pct= is never applied, RFC 9989). */
static void dmarc_evaluate(struct dmarc_checker *c, const struct dmarc_input *in,
			   const struct dmarc_discovery *d, struct dmarc_outcome *out)
{
	if (!dmarc_decide_alignment(c, in, d, out))
		return;
	if (out->dkim_aligned || out->spf_aligned) {
		out->result = VERDICT_PASS;
		dmarc_copy(out->disposition, sizeof(out->disposition), "none");
		dmarc_reason(out, "aligned %s", out->aligned_by);
		return;
	}
	out->result = VERDICT_FAIL;
	dmarc_copy(out->disposition, sizeof(out->disposition), dmarc_request_name(d->policy));
	if (d->testing_lowered)
		dmarc_reason(out, "no aligned SPF or DKIM pass for %s; t=y: %s=%s applied as %s",
			     out->header_from, dmarc_applies_name(d->applies),
			     dmarc_request_name(d->published), dmarc_request_name(d->policy));
	else
		dmarc_reason(out, "no aligned SPF or DKIM pass for %s (%s=%s)", out->header_from,
			     dmarc_applies_name(d->applies), dmarc_request_name(d->published));
}

/* dmarc_evaluate_domain - the whole evaluation for one From domain, into
 * an outcome the caller cleared (all zero but result and header_from): it
 * is some 20 KB, and dmarc_check has just cleared it once. */
static void dmarc_evaluate_domain(struct dmarc_checker *c, const struct dmarc_input *in,
				  const char *domain, struct dmarc_outcome *out)
{
	struct dmarc_discovery_options options;
	struct dns_source dns;
	struct dmarc_discovery *d = g_new0(struct dmarc_discovery, 1);

	out->result = VERDICT_PERMERROR;
	out->mode = c->mode;
	out->pct = -1;
	dmarc_copy(out->header_from, sizeof(out->header_from), domain);
	dmarc_discovery_setup(c, &dns, &options);
	(void)dmarc_discover_with(&dns, &options, domain, d);
	switch (d->status) {
	case DMARC_DISCOVERY_FOUND:
		dmarc_evaluate(c, in, d, out);
		break;
	case DMARC_DISCOVERY_NONE:
		out->result = VERDICT_NONE;
		dmarc_copy(out->reason, sizeof(out->reason), d->reason);
		break;
	case DMARC_DISCOVERY_TEMPERROR:
		out->result = VERDICT_TEMPERROR;
		dmarc_copy(out->reason, sizeof(out->reason), d->reason);
		break;
	case DMARC_DISCOVERY_PERMERROR:
		dmarc_reason(out, "invalid From domain");
		break;
	}
	if (out->result == VERDICT_PASS || out->result == VERDICT_FAIL)
		dmarc_outcome_discovered(d, out);
	else
		dmarc_outcome_keep(d, out);
	dmarc_discovery_clear(d);
	g_free(d);
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

void dmarc_outcome_init(struct dmarc_outcome *out)
{
	memset(out, 0, offsetof(struct dmarc_outcome, discovery_text));
}

/* dmarc_tally_fresh - an outcome without a policy or a From domain. */
static void dmarc_tally_fresh(struct dmarc_outcome *out, enum verdict result, const char *detail)
{
	dmarc_outcome_init(out);
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

void dmarc_outcome_author(const struct dmarc_outcome *one, struct dmarc_author_outcome *a)
{
	memset(a, 0, sizeof(*a));
	a->result = one->result;
	dmarc_copy(a->header_from, sizeof(a->header_from), one->header_from);
	dmarc_copy(a->policy_domain, sizeof(a->policy_domain), one->policy_domain);
	dmarc_copy(a->org_domain, sizeof(a->org_domain), one->org_domain);
	dmarc_copy(a->policy, sizeof(a->policy), one->policy);
	dmarc_copy(a->sp, sizeof(a->sp), one->sp);
	dmarc_copy(a->np, sizeof(a->np), one->np);
	dmarc_copy(a->disposition, sizeof(a->disposition), one->disposition);
	a->testing = one->testing;
	a->testing_lowered = one->testing_lowered;
	a->psd = one->psd;
	a->adkim = one->adkim;
	a->aspf = one->aspf;
	a->spf_aligned = one->spf_aligned;
	a->dkim_aligned = one->dkim_aligned;
}

/* dmarc_evaluate_authors - a broken From: every domain it names (at most
 * DMARC_AUTHOR_DOMAINS_MAX) evaluated on its own, then one outcome, so
 * that breaking the field never escapes a policy (RFC 9989, "Denial of
 * DMARC Processing Attacks": the strictest policy among those that fail). */
static void dmarc_evaluate_authors(struct dmarc_checker *c, const struct dmarc_input *in,
				   const struct dmarc_authors *a, struct dmarc_outcome *out)
{
	struct dmarc_tally *t = g_new0(struct dmarc_tally, 1);
	struct dmarc_outcome *one = g_new(struct dmarc_outcome, 1);   /* cleared per domain */
	/* On the heap, like the outcomes: a worker's stack is small. */
	struct dmarc_author_outcome *authors = g_new0(struct dmarc_author_outcome, DMARC_AUTHOR_DOMAINS_MAX);
	char problem[DMARC_REASON_MAX];

	dmarc_copy(problem, sizeof(problem), out->reason);
	for (size_t i = 0; i < a->count; i++) {
		dmarc_outcome_init(one);
		dmarc_evaluate_domain(c, in, a->domain[i], one);
		dmarc_tally_add(t, one);
		dmarc_outcome_author(one, &authors[i]);
	}
	dmarc_tally_decide(t, a->count, a->incomplete, problem, out);
	memcpy(out->authors, authors, a->count * sizeof(authors[0]));
	out->author_count = a->count;
	g_free(authors);
	g_free(one);
	g_free(t);
}

int dmarc_check(struct dmarc_checker *c, const struct dmarc_input *in,
		struct dmarc_outcome *out_r)
{
	struct dmarc_authors *authors;
	char from[DMARC_DOMAIN_MAX];

	dmarc_outcome_init(out_r);
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
		/* out_r is still clear but for result and header_from. */
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

/* dmarc_comment_tag - " NAME=VALUE" when VALUE is set. */
static const char *dmarc_comment_tag(char *buf, size_t size, const char *name, const char *value)
{
	if (value[0] == '\0')
		return "";
	g_snprintf(buf, size, "%s=%s ", name, value);
	return buf;
}

void dmarc_outcome_comment(const struct dmarc_outcome *out, char *buf, size_t buf_size)
{
	char p[DMARC_POLICY_NAME_MAX + 4], sp[DMARC_POLICY_NAME_MAX + 4];
	char np[DMARC_POLICY_NAME_MAX + 4];

	if (buf_size == 0)
		return;
	if (out->disposition[0] != '\0' && (out->policy[0] != '\0' || out->from_invalid)) {
		g_snprintf(buf, buf_size, "%s%s%sdis=%s%s%s",
			   dmarc_comment_tag(p, sizeof(p), "p", out->policy),
			   dmarc_comment_tag(sp, sizeof(sp), "sp", out->sp),
			   dmarc_comment_tag(np, sizeof(np), "np", out->np),
			   out->disposition, out->testing ? " testing" : "",
			   out->from_invalid ? " from=invalid" : "");
		return;
	}
	g_strlcpy(buf, out->reason, buf_size);
	for (char *c = buf; *c != '\0'; c++) {
		unsigned char ch = (unsigned char)*c;

		if (ch < 0x20 || ch >= 0x7f || ch == '(' || ch == ')' || ch == '\\')
			*c = '?';
	}
}

/* dmarc_json_string - S as a JSON string: bytes outside printable ASCII,
 * '"' and '\\' escaped. */
static void dmarc_json_string(GString *o, const char *s)
{
	g_string_append_c(o, '"');
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			g_string_append_printf(o, "\\%c", *c);
		else if (*c < 0x20 || *c > 0x7e)
			g_string_append_printf(o, "\\u%04x", *c);
		else
			g_string_append_c(o, (char)*c);
	}
	g_string_append_c(o, '"');
}

static void dmarc_json_member(GString *o, const char *key, const char *value)
{
	dmarc_json_string(o, key);
	g_string_append_c(o, ':');
	dmarc_json_string(o, value);
	g_string_append_c(o, ',');
}

/* dmarc_outcome_discovery_json - the kept discovery as JSON, or null.
 * Whatever makes it DMARC_DISCOVERY_JSON_MAX bytes or more (an escaped
 * record text can be long) is dropped whole: the record's text and rua=
 * first, then the discovery. */
static void dmarc_outcome_discovery_json(const struct dmarc_outcome *out, GString *o)
{
	struct dmarc_discovery d;
	g_autofree char **rua = NULL;
	GString *s;

	if (!out->discovered) {
		g_string_append(o, "null");
		return;
	}
	d = out->discovery;
	if (out->discovery_text_kept) {
		const char *p = out->discovery_text;

		d.record.raw = (char *)p;
		rua = g_new0(char *, d.record.rua_count + 1);
		for (size_t i = 0; i < d.record.rua_count; i++)
			rua[i] = (char *)(p += strlen(p) + 1);
		d.record.rua = rua;
	} else {
		d.record.rua_count = 0;
	}
	s = g_string_new(NULL);
	dmarc_discovery_append_json(&d, s);
	if (s->len >= DMARC_DISCOVERY_JSON_MAX && d.has_record) {
		d.record.raw = NULL;
		d.record.rua = NULL;
		d.record.rua_count = 0;
		g_string_truncate(s, 0);
		dmarc_discovery_append_json(&d, s);
	}
	g_string_append(o, s->len < DMARC_DISCOVERY_JSON_MAX ? s->str : "null");
	g_string_free(s, TRUE);
}

void dmarc_outcome_append_json(const struct dmarc_outcome *out, GString *o)
{
	char flag[2] = "";

	dmarc_json_member(o, "discovery_mode", dmarc_discovery_mode_name(out->mode));
	dmarc_json_member(o, "np", out->np);
	dmarc_json_member(o, "applied", out->applied);
	dmarc_json_member(o, "published", out->published);
	g_string_append_printf(o, "\"testing\":%s,\"testing_lowered\":%s,\"from_invalid\":%s,",
			       out->testing ? "true" : "false",
			       out->testing_lowered ? "true" : "false",
			       out->from_invalid ? "true" : "false");
	flag[0] = out->psd;
	dmarc_json_member(o, "psd", flag);
	flag[0] = out->adkim;
	dmarc_json_member(o, "adkim", flag);
	flag[0] = out->aspf;
	dmarc_json_member(o, "aspf", flag);
	if (out->pct >= 0)
		g_string_append_printf(o, "\"pct_not_applied\":%d,", out->pct);
	else
		g_string_append(o, "\"pct_not_applied\":null,");
	dmarc_json_member(o, "org_domain", out->org_domain);
	dmarc_json_member(o, "policy_domain", out->policy_domain);
	g_string_append(o, "\"discovery\":");
	dmarc_outcome_discovery_json(out, o);
	g_string_append_c(o, ',');
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

int dmarc_checker_new_with_psl(const struct dns_source *dns, const char *psl_path,
			       struct dmarc_checker **checker_r, char **error_r)
{
	struct dmarc_checker *c;

	*checker_r = NULL;
	if (dns == NULL || dns->query == NULL || dns->free_answer == NULL ||
	    psl_path == NULL) {
		*error_r = g_strdup("dmarc: no DNS source or Public Suffix List");
		return -1;
	}
	c = g_new0(struct dmarc_checker, 1);
	c->dns = *dns;
	c->psl_rules = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c->psl_wildcards = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c->psl_exceptions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (dmarc_psl_load(c, psl_path, error_r) < 0) {
		g_hash_table_destroy(c->psl_rules);
		g_hash_table_destroy(c->psl_wildcards);
		g_hash_table_destroy(c->psl_exceptions);
		g_free(c);
		return -1;
	}
	from_init();
	*checker_r = c;
	return 0;
}

int dmarc_checker_new(const struct dns_source *dns, struct dmarc_checker **checker_r,
		      char **error_r)
{
	return dmarc_checker_new_with_psl(dns, LMTPFILTER_PSL, checker_r, error_r);
}

void dmarc_checker_set_discovery(struct dmarc_checker *checker, enum dmarc_discovery_mode mode)
{
	if (checker != NULL)
		checker->mode = mode;
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
	g_free(c);
}
