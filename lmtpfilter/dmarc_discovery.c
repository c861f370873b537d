/*
 * dmarc_discovery - where a DMARC policy comes from (RFC 9989 §4.10)
 *
 * The tree walk (§4.10): query _dmarc.<start>; unless a single record there
 * says psd=y or psd=n, go on at the parent, or, for a name of eight labels
 * or more, at its right-most seven labels, then one label shorter each time
 * down to the top-level label: at most DMARC_DISCOVERY_WALK_QUERIES_MAX
 * queries whatever the length. A name counts as having a record only when
 * exactly one of its TXT records starts with v=DMARC1; several are all
 * discarded (§4.10 step 2).
 *
 * The Organizational Domain (§4.10.2), from the records the walk found,
 * longest name first: a psd=n record's name; else one label below a psd=y
 * record's name (unless that record is at the start); else the name with
 * the fewest labels; with no record at all, the start itself.
 *
 * The record that applies (§4.10.1): the Author Domain's own, else the
 * Organizational Domain's, else the Public Suffix Domain's (a psd=y record
 * met on the way). One walk from the Author Domain serves both, so the
 * policy costs no query beyond the Organizational Domain's walk. If the
 * Organizational Domain lies between the names a long walk skipped, it was
 * not queried and is not queried: the PSD record then applies (the query
 * bound wins).
 *
 * Which tag (§4.7, §4.10.1): p= for the Author Domain's own record; for a
 * subdomain of the policy domain sp= if the Author Domain exists, np= if it
 * does not, each falling back to sp= then p=. A domain does not exist when
 * a query for it gets NXDOMAIN (§3.2.13 after RFC 8020; §A.4: any RR, of
 * any type, makes it exist). NXDOMAIN is a property of the name, not of the
 * type, so one query of type A decides, asked only when np= is published;
 * a NODATA or an answer for _dmarc.<author> already proves existence. A
 * CNAME makes the name exist even if its target does not.
 *
 * A record without a valid p=, or with an invalid sp= or np=, acts as
 * "p=none" if it has a valid rua=, and otherwise DMARC does not apply
 * (§4.10.1; §4.7's "treated as p=none" refers to that rule). t=y lowers
 * the policy one level (§4.7 "t"). pct= is parsed for reports only.
 *
 * DNS failures: §4.10.1 leaves their handling to the receiver; here any
 * failure on a query the result depends on is temperror (the result RFC
 * 9989 §9.2 names for a transient DNS error), with the name in `reason`.
 *
 * DNS: every query goes through a struct dns_source; dmarc_discover
 * and dmarc_discover_org_domain use the shared resolver as that source.
 *
 * Owns: nothing beyond the struct dmarc_discovery it fills.
 */
#include "lmtpfilter/dmarc_discovery.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DISCOVERY_RRTYPE_A 1
#define DISCOVERY_RRTYPE_TXT 16
#define DISCOVERY_DOMAIN_MAX 253       /* RFC 1035 §2.3.4, presentation form */
#define DISCOVERY_LABEL_MAX 63
#define DISCOVERY_WALK_LONG_LABELS 8   /* §4.10 step 4: from this many labels on, */
#define DISCOVERY_WALK_KEEP_LABELS 7   /* the walk goes on at the right-most 7 */
#define DISCOVERY_TXT_MAX 65535        /* one TXT RR's rdata */
#define DISCOVERY_PREFIX "_dmarc."

/* What the walk saw at each name it queried. */
struct walk {
	char names[DMARC_DISCOVERY_WALK_QUERIES_MAX][DMARC_DISCOVERY_NAME_MAX];
	struct dmarc_record records[DMARC_DISCOVERY_WALK_QUERIES_MAX];
	bool found[DMARC_DISCOVERY_WALK_QUERIES_MAX];
	enum dns_status dns[DMARC_DISCOVERY_WALK_QUERIES_MAX];
	size_t count;                   /* names queried */
	int last;                       /* index of the shortest name with a record, or -1 */
};

static void walk_clear(struct walk *w)
{
	for (size_t i = 0; i < w->count; i++)
		dmarc_record_clear(&w->records[i]);
}

static void reason_set(struct dmarc_discovery *out, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void reason_set(struct dmarc_discovery *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* reason_add - append "; TEXT" to the reason. */
static void reason_add(struct dmarc_discovery *out, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void reason_add(struct dmarc_discovery *out, const char *fmt, ...)
{
	size_t used = strlen(out->reason);
	va_list ap;

	if (used + 2 >= sizeof(out->reason))
		return;
	g_strlcpy(out->reason + used, "; ", sizeof(out->reason) - used);
	used += 2;
	va_start(ap, fmt);
	g_vsnprintf(out->reason + used, sizeof(out->reason) - used, fmt, ap);
	va_end(ap);
}

/* discovery_normalize - A-labels, lower case, no trailing dot, every label
 * 1..63 bytes of letters, digits, '-' or '_', at most 253 bytes. */
static int discovery_normalize(const char *in, char *out, size_t size)
{
	g_autofree char *ascii = g_hostname_to_ascii(in);
	size_t len, label = 0;

	if (ascii == NULL)
		return -1;
	len = strlen(ascii);
	if (len > 0 && ascii[len - 1] == '.')
		ascii[--len] = '\0';
	if (len == 0 || len > DISCOVERY_DOMAIN_MAX || len >= size)
		return -1;
	for (size_t i = 0; i <= len; i++) {
		char c = ascii[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > DISCOVERY_LABEL_MAX)
				return -1;
			label = 0;
		} else if (g_ascii_isalnum(c) || c == '-' || c == '_') {
			label++;
		} else {
			return -1;
		}
		out[i] = g_ascii_tolower(c);
	}
	return 0;
}

static size_t label_count(const char *name)
{
	size_t n = 1;

	for (; *name != '\0'; name++)
		n += *name == '.';
	return n;
}

/* name_suffix - the right-most KEEP labels of NAME (all of it if fewer). */
static const char *name_suffix(const char *name, size_t keep)
{
	size_t skip = label_count(name);
	const char *p = name;

	while (skip > keep) {
		p = strchr(p, '.') + 1;
		skip--;
	}
	return p;
}

/* walk_next - the name after CUR in a walk that started at START, or NULL
 * at the end (§4.10 steps 4 and 7). */
static const char *walk_next(const char *start, const char *cur)
{
	size_t n = label_count(cur);

	if (n <= 1)
		return NULL;
	if (cur == start && n >= DISCOVERY_WALK_LONG_LABELS)
		return name_suffix(start, DISCOVERY_WALK_KEEP_LABELS);
	return strchr(cur, '.') + 1;
}

static void step_add(struct dmarc_discovery *out, const char *name, int rrtype,
		       enum dns_status dns, enum dmarc_step_result result)
{
	struct dmarc_discovery_step *s;

	if (out->step_count >= DMARC_DISCOVERY_STEPS_MAX)
		return;
	s = &out->steps[out->step_count];
	g_strlcpy(s->name, name, sizeof(s->name));
	s->rrtype = rrtype;
	s->dns = dns;
	s->result = result;
	out->step_count++;
}

/* txt_join - the character-strings of one TXT rdata, joined (§4.5).
 * Returns false on a malformed rdata. */
static bool txt_join(const unsigned char *data, size_t len, GString *text)
{
	size_t i = 0;

	g_string_truncate(text, 0);
	while (i < len) {
		size_t n = data[i++];

		if (n > len - i)
			return false;
		g_string_append_len(text, (const char *)data + i, (gssize)n);
		i += n;
	}
	return true;
}

/* dmarc_records - how many TXT records of ANSWER are DMARC records; the
 * first one is parsed into *record_r when there is exactly one. */
static size_t dmarc_records(const struct dns_answer *answer, struct dmarc_record *record_r)
{
	GString *text = g_string_sized_new(256);
	struct dmarc_record rec;
	size_t found = 0;

	memset(record_r, 0, sizeof(*record_r));
	for (size_t i = 0; i < answer->count; i++) {
		if (answer->len[i] > DISCOVERY_TXT_MAX || !txt_join(answer->data[i], answer->len[i], text))
			continue;
		if (dmarc_record_parse(text->str, text->len, &rec) < 0)
			continue;
		if (++found == 1)
			*record_r = rec;
		else
			dmarc_record_clear(&rec);
	}
	if (found != 1)
		dmarc_record_clear(record_r);
	g_string_free(text, TRUE);
	return found;
}

/* lookup_record - query _dmarc.DOMAIN; logs the step. */
static enum dmarc_step_result lookup_record(const struct dns_source *dns,
					    const char *domain,
					    struct dmarc_discovery *out,
					    struct dmarc_record *record_r, enum dns_status *dns_r)
{
	char name[DMARC_DISCOVERY_NAME_MAX];
	struct dns_answer *answer = NULL;
	enum dmarc_step_result result = DMARC_STEP_NO_RECORD;
	size_t found = 0;

	memset(record_r, 0, sizeof(*record_r));
	/* DISCOVERY_PREFIX "%s", cut where name ends, without a printf per query */
	g_strlcpy(name, DISCOVERY_PREFIX, sizeof(name));
	g_strlcpy(name + strlen(DISCOVERY_PREFIX), domain, sizeof(name) - strlen(DISCOVERY_PREFIX));
	if (dns->query(dns->ctx, name, DISCOVERY_RRTYPE_TXT, &answer) < 0 || answer == NULL) {
		*dns_r = DNS_TEMPFAIL;
		step_add(out, name, DISCOVERY_RRTYPE_TXT, DNS_TEMPFAIL, DMARC_STEP_TEMPFAIL);
		return DMARC_STEP_TEMPFAIL;
	}
	*dns_r = answer->status;
	if (answer->status == DNS_TEMPFAIL)
		result = DMARC_STEP_TEMPFAIL;
	else if (answer->status == DNS_OK && (found = dmarc_records(answer, record_r)) > 0)
		result = found == 1 ? DMARC_STEP_RECORD : DMARC_STEP_MULTIPLE;
	step_add(out, name, DISCOVERY_RRTYPE_TXT, answer->status, result);
	dns->free_answer(dns->ctx, &answer);
	return result;
}

/* walk_run - the tree walk from START; false on a DNS failure (reason set). */
static bool walk_run(const struct dns_source *dns, const char *start,
		     struct dmarc_discovery *out, struct walk *w)
{
	memset(w, 0, sizeof(*w));
	w->last = -1;
	/* walk_next already keeps to the bound; the count guards the arrays. */
	for (const char *cur = start; cur != NULL && w->count < DMARC_DISCOVERY_WALK_QUERIES_MAX;
	     cur = walk_next(start, cur)) {
		size_t i = w->count++;
		enum dmarc_step_result r;

		g_strlcpy(w->names[i], cur, sizeof(w->names[i]));
		r = lookup_record(dns, cur, out, &w->records[i], &w->dns[i]);
		if (r == DMARC_STEP_TEMPFAIL) {
			reason_set(out, "DNS failure for " DISCOVERY_PREFIX "%s", cur);
			return false;
		}
		if (r != DMARC_STEP_RECORD)
			continue;
		w->found[i] = true;
		w->last = (int)i;
		if (w->records[i].psd != DMARC_PSD_UNKNOWN)
			break;          /* §4.10 steps 2 and 6: psd=y or psd=n stops the walk */
	}
	return true;
}

/* walk_org_domain - §4.10.2 selection; writes the Organizational Domain. */
static void walk_org_domain(const struct walk *w, const char *start, char *org, size_t size)
{
	const struct dmarc_record *last;

	if (w->last < 0) {
		g_strlcpy(org, start, size);
		return;
	}
	last = &w->records[w->last];
	if (last->psd == DMARC_PSD_YES && w->last > 0)
		g_strlcpy(org, name_suffix(start, label_count(w->names[w->last]) + 1), size);
	else
		g_strlcpy(org, w->names[w->last], size);
}

/* walk_index - the index of NAME among the names queried, or -1. */
static int walk_index(const struct walk *w, const char *name)
{
	for (size_t i = 0; i < w->count; i++)
		if (strcmp(w->names[i], name) == 0)
			return (int)i;
	return -1;
}

/* walk_policy_index - §4.10.1: the record that applies, or -1. */
static int walk_policy_index(const struct walk *w, const char *org)
{
	int i;

	if (w->count > 0 && w->found[0])
		return 0;
	if ((i = walk_index(w, org)) >= 0 && w->found[i])
		return i;
	if (w->last >= 0 && w->records[w->last].psd == DMARC_PSD_YES)
		return w->last;
	return -1;
}

/* same_name - A and B are one name (case, a trailing dot aside). */
static bool same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && g_ascii_strncasecmp(a, b, la) == 0;
}

/* author_exists - 1, 0, or -1 on a DNS failure (reason set). DMARC_DNS is
 * what the query for _dmarc.<domain> got, if it was made (else -1). */
static int author_exists(const struct dns_source *dns, const char *domain, int dmarc_dns,
			 struct dmarc_discovery *out)
{
	struct dns_answer *answer = NULL;
	enum dns_status st = DNS_TEMPFAIL;
	int exists = -1;

	if (dmarc_dns == DNS_OK || dmarc_dns == DNS_NODATA)
		return 1;       /* a name below it exists, so it does (RFC 8020) */
	if (dns->query(dns->ctx, domain, DISCOVERY_RRTYPE_A, &answer) == 0 && answer != NULL)
		st = answer->status;
	if (st == DNS_OK || st == DNS_NODATA)
		exists = 1;
	else if (st == DNS_NXDOMAIN)
		exists = answer->canonname != NULL && !same_name(answer->canonname, domain);
	step_add(out, domain, DISCOVERY_RRTYPE_A, st,
		 exists < 0 ? DMARC_STEP_TEMPFAIL : exists ? DMARC_STEP_EXISTS : DMARC_STEP_NXDOMAIN);
	dns->free_answer(dns->ctx, &answer);
	if (exists < 0)
		reason_set(out, "DNS failure for %s (does it exist, for np=)", domain);
	return exists;
}

static enum dmarc_request request_lowered(enum dmarc_request r)
{
	switch (r) {
	case DMARC_REQUEST_REJECT: return DMARC_REQUEST_QUARANTINE;
	case DMARC_REQUEST_QUARANTINE: return DMARC_REQUEST_NONE;
	default: return r;
	}
}

/* record_usable - §4.10.1 for a record with a bad p=, sp= or np=: false
 * (DMARC does not apply) or the p=none fallback set in OUT. */
static bool record_usable(struct dmarc_discovery *out)
{
	const struct dmarc_record *r = &out->record;

	if (r->p != DMARC_REQUEST_ABSENT && r->p != DMARC_REQUEST_INVALID &&
	    r->sp != DMARC_REQUEST_INVALID && r->np != DMARC_REQUEST_INVALID)
		return true;
	if (r->rua_count == 0) {
		out->status = DMARC_DISCOVERY_NONE;
		reason_add(out, "no valid p=, sp= or np= and no valid rua=: DMARC does not apply");
		return false;
	}
	out->applies = DMARC_APPLIES_P_NONE_FALLBACK;
	out->published = out->policy = DMARC_REQUEST_NONE;
	reason_add(out, "no valid p=, sp= or np= but a valid rua=: treated as p=none");
	return false;
}

/* subdomain_tag - sp= or np= for an Author Domain below the policy domain. */
static int subdomain_tag(const struct dns_source *dns, int dmarc_dns,
			 struct dmarc_discovery *out)
{
	const struct dmarc_record *r = &out->record;
	int exists = -1;

	if (r->np != DMARC_REQUEST_ABSENT &&
	    (exists = author_exists(dns, out->domain, dmarc_dns, out)) < 0)
		return -1;
	out->author_exists = exists;
	if (exists == 0 && r->np != DMARC_REQUEST_ABSENT) {
		out->applies = DMARC_APPLIES_NP;
		out->published = r->np;
	} else if (r->sp != DMARC_REQUEST_ABSENT) {
		out->applies = DMARC_APPLIES_SP;
		out->published = r->sp;
	} else {
		out->applies = DMARC_APPLIES_P;
		out->published = r->p;
	}
	reason_add(out, "%s %s: %s=%s", out->domain,
		   exists < 0 ? "is a subdomain" : exists ? "exists" : "does not exist",
		   dmarc_applies_name(out->applies), dmarc_request_name(out->published));
	return 0;
}

/* policy_apply - which tag, then t=y. 0, or -1 on a DNS failure. */
static int policy_apply(const struct dns_source *dns, int dmarc_dns,
			struct dmarc_discovery *out)
{
	out->status = DMARC_DISCOVERY_FOUND;
	if (!record_usable(out))
		return 0;
	if (strcmp(out->domain, out->policy_domain) == 0) {
		out->applies = DMARC_APPLIES_P;
		out->published = out->record.p;
		reason_add(out, "p=%s", dmarc_request_name(out->published));
	} else if (subdomain_tag(dns, dmarc_dns, out) < 0) {
		out->status = DMARC_DISCOVERY_TEMPERROR;
		return -1;
	}
	out->policy = out->published;
	if (out->record.testing && out->published != DMARC_REQUEST_NONE) {
		out->policy = request_lowered(out->published);
		out->testing_lowered = true;
		reason_add(out, "t=y: %s applied as %s", dmarc_request_name(out->published),
			   dmarc_request_name(out->policy));
	}
	return 0;
}

/* reason_discarded - name the first query whose several DMARC records
 * were all discarded (§4.10 step 2), for a result of none. */
static void reason_discarded(struct dmarc_discovery *out)
{
	for (size_t i = 0; i < out->step_count; i++) {
		if (out->steps[i].result == DMARC_STEP_MULTIPLE) {
			reason_add(out, "several DMARC records at %s, all discarded",
				   out->steps[i].name);
			return;
		}
	}
}

/* discover_treewalk - RFC 9989 §4.10.1 on a normalised out->domain. */
static void discover_treewalk(const struct dns_source *dns, struct dmarc_discovery *out)
{
	struct walk w;
	int pi;

	if (!walk_run(dns, out->domain, out, &w)) {
		out->status = DMARC_DISCOVERY_TEMPERROR;
		walk_clear(&w);
		return;
	}
	walk_org_domain(&w, out->domain, out->org_domain, sizeof(out->org_domain));
	pi = walk_policy_index(&w, out->org_domain);
	if (pi < 0) {
		out->status = DMARC_DISCOVERY_NONE;
		reason_set(out, "no DMARC record for %s, its organizational domain %s or a PSD",
			   out->domain, out->org_domain);
		reason_discarded(out);
		walk_clear(&w);
		return;
	}
	g_strlcpy(out->policy_domain, w.names[pi], sizeof(out->policy_domain));
	dmarc_record_copy(&w.records[pi], &out->record);
	out->has_record = true;
	reason_set(out, "record at " DISCOVERY_PREFIX "%s (%s), organizational domain %s",
		   out->policy_domain,
		   pi == 0 ? "author domain" : strcmp(out->policy_domain, out->org_domain) == 0 ?
		   "organizational domain" : "public suffix domain", out->org_domain);
	(void)policy_apply(dns, w.count > 0 ? (int)w.dns[0] : -1, out);
	walk_clear(&w);
}

/* psl_org_domain - the caller's list, or -1 (reason set). */
static int psl_org_domain(const struct dmarc_discovery_options *o, const char *domain,
			  struct dmarc_discovery *out)
{
	char org[DMARC_DISCOVERY_NAME_MAX];

	if (o->psl.org_domain == NULL || o->psl.org_domain(o->psl.ctx, domain, org, sizeof(org)) < 0 ||
	    discovery_normalize(org, out->org_domain, sizeof(out->org_domain)) < 0) {
		out->status = DMARC_DISCOVERY_PERMERROR;
		reason_set(out, "no organizational domain for %s in the public suffix list", domain);
		return -1;
	}
	return 0;
}

/* discover_psl - RFC 7489 §6.6.3: the Author Domain, then its
 * Organizational Domain by the public suffix list. */
static void discover_psl(const struct dns_source *dns,
			 const struct dmarc_discovery_options *o, struct dmarc_discovery *out)
{
	enum dns_status dns0 = DNS_TEMPFAIL, dns1;
	enum dmarc_step_result r;
	struct dmarc_record rec;

	if (psl_org_domain(o, out->domain, out) < 0)
		return;
	r = lookup_record(dns, out->domain, out, &rec, &dns0);
	if (r != DMARC_STEP_RECORD && r != DMARC_STEP_TEMPFAIL &&
	    strcmp(out->org_domain, out->domain) != 0)
		r = lookup_record(dns, out->org_domain, out, &rec, &dns1);
	if (r == DMARC_STEP_TEMPFAIL) {
		out->status = DMARC_DISCOVERY_TEMPERROR;
		reason_set(out, "DNS failure for %s", out->steps[out->step_count - 1].name);
		return;
	}
	if (r != DMARC_STEP_RECORD) {
		out->status = DMARC_DISCOVERY_NONE;
		reason_set(out, "no DMARC record for %s or its organizational domain %s",
			   out->domain, out->org_domain);
		reason_discarded(out);
		return;
	}
	g_strlcpy(out->policy_domain, out->step_count == 1 ? out->domain : out->org_domain,
		  sizeof(out->policy_domain));
	out->record = rec;
	out->has_record = true;
	reason_set(out, "record at " DISCOVERY_PREFIX "%s (public suffix list)", out->policy_domain);
	(void)policy_apply(dns, (int)dns0, out);
}

/* discovery_begin - reset OUT and normalise DOMAIN; false if unusable. */
static bool discovery_begin(const struct dmarc_discovery_options *options, const char *domain,
			    struct dmarc_discovery *out)
{
	memset(out, 0, sizeof(*out));
	out->mode = options->mode;
	out->author_exists = -1;
	if (discovery_normalize(domain, out->domain, sizeof(out->domain)) < 0) {
		out->status = DMARC_DISCOVERY_PERMERROR;
		reason_set(out, "not a usable domain name");
		return false;
	}
	return true;
}

int dmarc_discover_with(const struct dns_source *dns,
			const struct dmarc_discovery_options *options,
			const char *from_domain, struct dmarc_discovery *out)
{
	if (dns == NULL || dns->query == NULL || dns->free_answer == NULL || options == NULL ||
	    from_domain == NULL || out == NULL)
		return -1;
	if (!discovery_begin(options, from_domain, out))
		return 0;
	if (options->mode == DMARC_DISCOVERY_PSL)
		discover_psl(dns, options, out);
	else
		discover_treewalk(dns, out);
	return 0;
}

int dmarc_discover_org_domain_with(const struct dns_source *dns,
				   const struct dmarc_discovery_options *options,
				   const char *domain, struct dmarc_discovery *out)
{
	struct walk w;

	if (dns == NULL || dns->query == NULL || dns->free_answer == NULL || options == NULL ||
	    domain == NULL || out == NULL)
		return -1;
	if (!discovery_begin(options, domain, out))
		return 0;
	if (options->mode == DMARC_DISCOVERY_PSL) {
		if (psl_org_domain(options, out->domain, out) == 0)
			reason_set(out, "public suffix list");
		return 0;
	}
	if (!walk_run(dns, out->domain, out, &w)) {
		out->status = DMARC_DISCOVERY_TEMPERROR;
	} else {
		walk_org_domain(&w, out->domain, out->org_domain, sizeof(out->org_domain));
		out->status = w.last < 0 ? DMARC_DISCOVERY_NONE : DMARC_DISCOVERY_FOUND;
		reason_set(out, "%s", w.last < 0 ? "no DMARC record on the way: the name itself" :
			   "chosen by the records found");
	}
	walk_clear(&w);
	return 0;
}

/* resolver_source_query - the shared resolver as a discovery DNS source. */
int dmarc_discover(struct resolver *resolver, const struct dmarc_discovery_options *options,
		   const char *from_domain, struct dmarc_discovery *out)
{
	struct dns_source dns;

	if (resolver == NULL)
		return -1;
	dns_source_for_resolver(resolver, &dns);
	return dmarc_discover_with(&dns, options, from_domain, out);
}

int dmarc_discover_org_domain(struct resolver *resolver,
			      const struct dmarc_discovery_options *options,
			      const char *domain, struct dmarc_discovery *out)
{
	struct dns_source dns;

	if (resolver == NULL)
		return -1;
	dns_source_for_resolver(resolver, &dns);
	return dmarc_discover_org_domain_with(&dns, options, domain, out);
}

void dmarc_discovery_clear(struct dmarc_discovery *discovery)
{
	if (discovery == NULL)
		return;
	dmarc_record_clear(&discovery->record);
	discovery->has_record = false;
}

/* ---- JSON ------------------------------------------------------------ */

/* json_str - a JSON string; every byte outside 0x20..0x7e (and '"', '\\')
 * escaped, so that any record text gives valid JSON. */
static void json_str(GString *out, const char *s)
{
	g_string_append_c(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(out, "\\%c", *p);
		else if (*p < 0x20 || *p > 0x7e)
			g_string_append_printf(out, "\\u%04x", *p);
		else
			g_string_append_c(out, (char)*p);
	}
	g_string_append_c(out, '"');
}

static void json_key(GString *out, const char *key, const char *value)
{
	json_str(out, key);
	g_string_append_c(out, ':');
	json_str(out, value);
	g_string_append_c(out, ',');
}

static const char *dns_status_name(enum dns_status st)
{
	switch (st) {
	case DNS_OK: return "answer";
	case DNS_NXDOMAIN: return "nxdomain";
	case DNS_NODATA: return "nodata";
	case DNS_TEMPFAIL: break;
	}
	return "tempfail";
}

static void json_record(GString *out, const struct dmarc_record *r)
{
	g_string_append(out, "{");
	json_key(out, "raw", r->raw != NULL ? r->raw : "");
	json_key(out, "p", dmarc_request_name(r->p));
	json_key(out, "sp", dmarc_request_name(r->sp));
	json_key(out, "np", dmarc_request_name(r->np));
	json_key(out, "adkim", r->adkim == DMARC_ALIGN_STRICT ? "s" : "r");
	json_key(out, "aspf", r->aspf == DMARC_ALIGN_STRICT ? "s" : "r");
	json_key(out, "t", r->testing ? "y" : "n");
	json_key(out, "psd", r->psd == DMARC_PSD_YES ? "y" : r->psd == DMARC_PSD_NO ? "n" : "u");
	if (r->pct >= 0)
		g_string_append_printf(out, "\"pct_not_applied\":%d,", r->pct);
	else
		g_string_append(out, "\"pct_not_applied\":null,");
	g_string_append(out, "\"rua\":[");
	for (size_t i = 0; i < r->rua_count; i++) {
		if (i > 0)
			g_string_append_c(out, ',');
		json_str(out, r->rua[i]);
	}
	g_string_append_printf(out, "],\"ignored_tags\":%u}", r->ignored_tags);
}

static void json_steps(GString *out, const struct dmarc_discovery *d)
{
	g_string_append(out, "\"queries\":[");
	for (size_t i = 0; i < d->step_count; i++) {
		const struct dmarc_discovery_step *s = &d->steps[i];

		g_string_append(out, i > 0 ? ",{" : "{");
		json_key(out, "name", s->name);
		json_key(out, "type", s->rrtype == DISCOVERY_RRTYPE_A ? "A" : "TXT");
		json_key(out, "dns", dns_status_name(s->dns));
		json_str(out, "found");
		g_string_append_c(out, ':');
		json_str(out, dmarc_step_result_name(s->result));
		g_string_append_c(out, '}');
	}
	g_string_append_c(out, ']');
}

void dmarc_discovery_append_json(const struct dmarc_discovery *d, GString *out)
{
	g_string_append_c(out, '{');
	json_key(out, "mode", dmarc_discovery_mode_name(d->mode));
	json_key(out, "status", dmarc_discovery_status_name(d->status));
	json_key(out, "domain", d->domain);
	json_key(out, "org_domain", d->org_domain);
	json_key(out, "policy_domain", d->policy_domain);
	g_string_append(out, "\"record\":");
	if (d->has_record)
		json_record(out, &d->record);
	else
		g_string_append(out, "null");
	g_string_append_c(out, ',');
	json_key(out, "applies", dmarc_applies_name(d->applies));
	json_key(out, "published", dmarc_request_name(d->published));
	json_key(out, "policy", dmarc_request_name(d->policy));
	g_string_append_printf(out, "\"testing_lowered\":%s,\"author_exists\":%s,",
			       d->testing_lowered ? "true" : "false",
			       d->author_exists < 0 ? "null" : d->author_exists ? "true" : "false");
	json_key(out, "reason", d->reason);
	json_steps(out, d);
	g_string_append_c(out, '}');
}

const char *dmarc_discovery_status_name(enum dmarc_discovery_status status)
{
	switch (status) {
	case DMARC_DISCOVERY_FOUND: return "found";
	case DMARC_DISCOVERY_NONE: return "none";
	case DMARC_DISCOVERY_TEMPERROR: return "temperror";
	case DMARC_DISCOVERY_PERMERROR: return "permerror";
	}
	return "";
}

const char *dmarc_applies_name(enum dmarc_applies applies)
{
	switch (applies) {
	case DMARC_APPLIES_P: return "p";
	case DMARC_APPLIES_SP: return "sp";
	case DMARC_APPLIES_NP: return "np";
	case DMARC_APPLIES_P_NONE_FALLBACK: return "p-none-fallback";
	case DMARC_APPLIES_NOTHING: break;
	}
	return "";
}

const char *dmarc_step_result_name(enum dmarc_step_result result)
{
	switch (result) {
	case DMARC_STEP_RECORD: return "record";
	case DMARC_STEP_NO_RECORD: return "no-record";
	case DMARC_STEP_MULTIPLE: return "multiple-records";
	case DMARC_STEP_EXISTS: return "exists";
	case DMARC_STEP_NXDOMAIN: return "nxdomain";
	case DMARC_STEP_TEMPFAIL: return "tempfail";
	}
	return "";
}

const char *dmarc_discovery_mode_name(enum dmarc_discovery_mode mode)
{
	return mode == DMARC_DISCOVERY_PSL ? "psl" : "treewalk";
}
