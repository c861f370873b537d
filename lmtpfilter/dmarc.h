/*
 * dmarc - DMARC evaluation of the RFC5322.From domain (RFC 9989)
 *
 * One checker per process; dmarc_check may then be called from every
 * worker thread. The policy and the organisational domains come from
 * dmarc_discovery: the RFC 9989 tree walk (the default) or, with
 * DMARC_DISCOVERY_PSL, the RFC 7489 public suffix list loaded here.
 * DNS goes through a struct dns_source: production uses the shared
 * resolver, tests an in-memory zone. The source must outlive the checker.
 */
#ifndef LMTPFILTER_DMARC_H
#define LMTPFILTER_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "lmtpfilter/dmarc_discovery.h"
#include "mime/verdict.h"

/* Sizes of the fixed buffers in struct dmarc_outcome. */
#define DMARC_DOMAIN_MAX 256
#define DMARC_POLICY_NAME_MAX 16
#define DMARC_ALIGNED_BY_MAX 300
#define DMARC_REASON_MAX 160
/* The discovery as JSON (dmarc_discovery_append_json) is at most this
 * long: nine queries, the domains and the reason fit in 6 KB; a long
 * record text is dropped rather than cut (dmarc.c). */
#define DMARC_DISCOVERY_JSON_MAX 8192
/* Domains of a broken From evaluated one by one (each one discovery, at
 * most DMARC_DISCOVERY_STEPS_MAX queries, most of them shared and cached;
 * RFC 9989 asks to limit them against a denial of service); naming more
 * makes the evaluation incomplete, which never passes. */
#define DMARC_AUTHOR_DOMAINS_MAX 8

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
	/* Client address (may be NULL); not used by the evaluation. */
	const char *client_ip;
};

/* One Author Domain of a broken From as evaluated on its own: what the
 * aggregate-report history records per policy domain. */
struct dmarc_author_outcome {
	enum verdict result;
	char header_from[DMARC_DOMAIN_MAX];
	char policy_domain[DMARC_DOMAIN_MAX]; /* "" without a record */
	char org_domain[DMARC_DOMAIN_MAX];
	char policy[DMARC_POLICY_NAME_MAX], sp[DMARC_POLICY_NAME_MAX], np[DMARC_POLICY_NAME_MAX];
	char disposition[DMARC_POLICY_NAME_MAX]; /* after t=y */
	bool testing, testing_lowered;
	char psd, adkim, aspf;
	bool spf_aligned, dkim_aligned;
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

	/* What the discovery found (RFC 9989 §4.10), for pass and fail; the
	 * record's tags as published. policy, sp, disposition above keep
	 * their meaning: disposition is the policy applied, after t=y. */
	enum dmarc_discovery_mode mode;
	char np[DMARC_POLICY_NAME_MAX];      /* np= as published, or "" */
	char applied[DMARC_POLICY_NAME_MAX]; /* tag that gave the policy: p sp np p-none-fallback */
	char published[DMARC_POLICY_NAME_MAX]; /* what that tag asks for, before t=y */
	bool testing;               /* t=y published */
	bool testing_lowered;       /* t=y lowered the policy one level */
	char psd;                   /* 'y' 'n' 'u', or 0 without a record */
	char adkim, aspf;           /* 'r' 's', or 0 without a record */
	int pct;                    /* pct= as published (-1: absent); reported, never applied */
	char org_domain[DMARC_DOMAIN_MAX];   /* Organizational Domain of header_from */
	char policy_domain[DMARC_DOMAIN_MAX]; /* where the applying record was found */
	/* The discovery behind the outcome, for dmarc_outcome_append_json
	 * alone, which renders it when asked (check --json), never per
	 * message: a copy without heap memory (record.raw and record.rua
	 * NULL), the record's text and rua= URIs kept apart in
	 * discovery_text when they fit (else the JSON leaves them out, as it
	 * would for its own bound). */
	bool discovered;
	struct dmarc_discovery discovery;
	bool discovery_text_kept;
	size_t author_count;        /* entries of authors[] */

	/* The bulk, last and valid only as far as discovery_text_kept and
	 * author_count say: dmarc_outcome_init leaves it alone (over half
	 * of the structure; clearing it for every message cost 4 % of a
	 * message's instructions). */
	char discovery_text[DMARC_DISCOVERY_JSON_MAX]; /* raw NUL rua NUL rua NUL ... */
	/* With from_invalid: each domain the broken From names, evaluated
	 * on its own (the fields above hold the one that decided). */
	struct dmarc_author_outcome authors[DMARC_AUTHOR_DOMAINS_MAX];
};

/* dmarc_outcome_init - an empty outcome (result 0, every text ""): all of
 * it cleared but the bulk at its end. */
void dmarc_outcome_init(struct dmarc_outcome *out);

struct dmarc_checker;

/* dmarc_checker_new - load the Public Suffix List (LMTPFILTER_PSL); the
 * discovery is the tree walk until dmarc_checker_set_discovery. Call once
 * at startup, before threads exist.
 * *dns is copied. Returns 0, or -1 with *error_r (g_malloc'd). */
int dmarc_checker_new(const struct dns_source *dns, struct dmarc_checker **checker_r,
		      char **error_r);
/* dmarc_checker_new_with_psl - the same with an explicit list path. */
int dmarc_checker_new_with_psl(const struct dns_source *dns, const char *psl_path,
			       struct dmarc_checker **checker_r, char **error_r);
void dmarc_checker_free(struct dmarc_checker **checker);

/* dmarc_checker_set_discovery - tree walk (RFC 9989) or public suffix
 * list (RFC 7489 §3.2) for the policy and organisational domains; the
 * record's tags mean what RFC 9989 says in both (pct= never applied).
 * Call before threads use the checker. */
void dmarc_checker_set_discovery(struct dmarc_checker *checker, enum dmarc_discovery_mode mode);

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

/* dmarc_outcome_comment - the A-R comment text:
 * "p=reject sp=none np=reject dis=quarantine testing" (sp=, np= only when
 * published, "testing" for t=y) when a policy record was evaluated,
 * followed by " from=invalid" for a broken From; else the reason. Characters not
 * allowed in an RFC 5322 comment are replaced.
 * Always NUL-terminates buf (truncating). */
void dmarc_outcome_comment(const struct dmarc_outcome *out, char *buf, size_t buf_size);

/* dmarc_outcome_header_from - the header.from property value, or NULL when
 * there was no single From domain (the property is then omitted). */
const char *dmarc_outcome_header_from(const struct dmarc_outcome *out);

/* dmarc_outcome_append_json - the outcome's RFC 9989 details as JSON
 * object members, each followed by a comma, for check --json: discovery
 * mode, np=, the tag applied and its policy before t=y, testing, psd=,
 * adkim=, aspf=, pct= (as pct_not_applied), the organisational and policy
 * domains, and "discovery": every query of the walk. */
void dmarc_outcome_append_json(const struct dmarc_outcome *out, struct _GString *o);

/* dmarc_outcome_author - one domain's outcome (not a broken From's
 * summary) as a struct dmarc_author_outcome. */
void dmarc_outcome_author(const struct dmarc_outcome *out, struct dmarc_author_outcome *author_r);

/* dmarc_outcome_format - the whole A-R method entry:
 * "dmarc=fail (p=reject dis=none) header.from=example.com". Truncates. */
void dmarc_outcome_format(const struct dmarc_outcome *out, char *buf, size_t buf_size);

#endif
