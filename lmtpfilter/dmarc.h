/*
 * dmarc - RFC 7489 evaluation of the RFC5322.From domain (libopendmarc + PSL)
 *
 * One checker per process (libopendmarc keeps its Public Suffix List in a
 * global table); dmarc_check may then be called from every worker thread.
 * DNS goes through a pluggable source: production uses the shared resolver,
 * tests an in-memory table.
 */
#ifndef LMTPFILTER_DMARC_H
#define LMTPFILTER_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "lmtpfilter/resolver.h"
#include "lmtpfilter/verdict.h"

/* Sizes of the fixed buffers in struct dmarc_outcome. */
#define DMARC_DOMAIN_MAX 256
#define DMARC_POLICY_NAME_MAX 16
#define DMARC_ALIGNED_BY_MAX 300
#define DMARC_REASON_MAX 160

struct dmarc_input {
	/* Raw values (folded, possibly RFC 2047 encoded) of every From: field. */
	char *const *from_values;
	size_t from_count;
	/* SPF result of the identity checked, and that identity's domain:
	 * the MAIL FROM domain, or the HELO domain for the null sender
	 * (then spf_is_helo is true). spf_domain may be NULL. */
	enum verdict spf_result;
	const char *spf_domain;
	bool spf_is_helo;
	/* One result and d= domain per DKIM signature. */
	size_t dkim_count;
	const enum verdict *dkim_results;
	char *const *dkim_domains;
	/* Client address, only handed to libopendmarc (may be NULL). */
	const char *client_ip;
};

struct dmarc_outcome {
	enum verdict result;        /* pass fail none temperror permerror */
	char header_from[DMARC_DOMAIN_MAX];  /* "" when no single From domain */
	char policy[DMARC_POLICY_NAME_MAX];  /* p=: none quarantine reject, or "" */
	char sp[DMARC_POLICY_NAME_MAX];      /* sp= as published, or "" */
	char disposition[DMARC_POLICY_NAME_MAX]; /* none quarantine reject */
	bool spf_aligned;
	bool dkim_aligned;
	char aligned_by[DMARC_ALIGNED_BY_MAX]; /* "dkim:example.com", "spf:example.com" or "" */
	char reason[DMARC_REASON_MAX];       /* human-readable, for logs and the A-R comment */
	bool pct_sampled_out;       /* failed, but pct= spared it the full policy */
	/* The From field is broken: missing, repeated, addresses in several
	 * domains, unparsable or over a bound. Then every domain it names was
	 * evaluated (RFC 9989, "Denial of DMARC Processing Attacks"): pass
	 * only if all pass, else the failing one with the strictest
	 * disposition; header_from is the domain reported. */
	bool from_invalid;
};

/* A DNS source for TXT lookups. query_txt returns 0 and fills *answer_r
 * (status DNS_TEMPFAIL on any failure), or -1 for invalid arguments;
 * free_answer releases what query_txt returned. */
struct dmarc_dns {
	int (*query_txt)(void *ctx, const char *name, struct dns_answer **answer_r);
	void (*free_answer)(void *ctx, struct dns_answer **answer);
	void *ctx;
};

struct dmarc_checker;

/* dmarc_dns_for_resolver - a DNS source that asks the shared resolver.
 * The resolver must outlive every checker using the source. */
void dmarc_dns_for_resolver(struct resolver *resolver, struct dmarc_dns *dns_r);

/* dmarc_checker_new - load the Public Suffix List (LMTPFILTER_PSL) and
 * initialise libopendmarc. Call once at startup, before threads exist.
 * *dns is copied. Returns 0, or -1 with *error_r (g_malloc'd). */
int dmarc_checker_new(const struct dmarc_dns *dns, struct dmarc_checker **checker_r,
		      char **error_r);
/* dmarc_checker_new_with_psl - the same with an explicit list path. */
int dmarc_checker_new_with_psl(const struct dmarc_dns *dns, const char *psl_path,
			       struct dmarc_checker **checker_r, char **error_r);
void dmarc_checker_free(struct dmarc_checker **checker);

/* dmarc_check - evaluate one message. Always fills *out_r (never guesses:
 * anything it cannot evaluate becomes none/permerror/temperror with a reason;
 * a broken From naming no usable domain is permerror).
 * Returns 0, or -1 only for invalid arguments (then out_r says permerror).
 * Thread-safe once the checker exists. */
int dmarc_check(struct dmarc_checker *checker, const struct dmarc_input *in,
		struct dmarc_outcome *out_r);

/* dmarc_from_names - does a domain that the From values name satisfy
 * match(ctx, domain)? The domains are found by the same linear scan that
 * evaluates a broken From (no address parser, so no depth or size can hurt
 * it); at most DMARC_AUTHOR_DOMAINS_MAX are looked at, as dmarc_check does.
 * Domains are lower-case A-labels without a trailing dot. */
bool dmarc_from_names(char *const *from_values, size_t from_count,
		      bool (*match)(void *ctx, const char *domain), void *ctx);

/* dmarc_organizational_domain - RFC 7489 §3.2 organisational domain of
 * domain by the checker's Public Suffix List (wildcard and exception rules,
 * implicit "*" rule), lower-case without a trailing dot, into buf.
 * Returns 0, or -1 if domain is not a usable domain name. */
int dmarc_organizational_domain(const struct dmarc_checker *checker, const char *domain,
				char *buf, size_t buf_size);

/* dmarc_outcome_comment - the A-R comment text: "p=reject sp=none dis=reject"
 * (sp= only when published) when a policy record was evaluated, followed by
 * " from=invalid" for a broken From; else the reason. Characters not
 * allowed in an RFC 5322 comment are replaced.
 * Always NUL-terminates buf (truncating). */
void dmarc_outcome_comment(const struct dmarc_outcome *out, char *buf, size_t buf_size);

/* dmarc_outcome_header_from - the header.from property value, or NULL when
 * there was no single From domain (the property is then omitted). */
const char *dmarc_outcome_header_from(const struct dmarc_outcome *out);

/* dmarc_outcome_format - the whole A-R method entry:
 * "dmarc=fail (p=reject dis=none) header.from=example.com". Truncates. */
void dmarc_outcome_format(const struct dmarc_outcome *out, char *buf, size_t buf_size);

#endif
