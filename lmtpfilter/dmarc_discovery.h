/*
 * dmarc_discovery - where a DMARC policy comes from (RFC 9989 §4.10)
 *
 * Given the Author Domain, finds the DMARC Policy Record that applies, the
 * Policy Domain that published it, the Organizational Domain, which of
 * p=/sp=/np= applies, and the policy after t=y; and, for relaxed alignment,
 * the Organizational Domain of any other name by the same rules. Every DNS
 * query goes through the shared resolver (which caches by TTL), and every
 * query made is listed in the result, with what it gave.
 *
 * Two modes: DMARC_DISCOVERY_TREEWALK is the RFC 9989 DNS tree walk;
 * DMARC_DISCOVERY_PSL is the RFC 7489 §6.6.3 discovery (the Author Domain,
 * then its Organizational Domain from a public suffix list supplied by the
 * caller). In both, the record's tags mean what RFC 9989 says.
 *
 * Results are never a silent "none": a DNS failure anywhere is
 * DMARC_DISCOVERY_TEMPERROR with the name that failed in `reason`.
 */
#ifndef LMTPFILTER_DMARC_DISCOVERY_H
#define LMTPFILTER_DMARC_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "lmtpfilter/dmarc_record.h"
#include "lmtpfilter/dns_source.h"

/* RFC 9989 §4.10: no more than eight DMARC queries per tree walk. */
#define DMARC_DISCOVERY_WALK_QUERIES_MAX 8
/* Every query one discovery can make: the walk plus the one that tells
 * whether the Author Domain exists (for np=, RFC 9989 §3.2.13). */
#define DMARC_DISCOVERY_STEPS_MAX (DMARC_DISCOVERY_WALK_QUERIES_MAX + 1)
/* A domain in presentation form (RFC 1035 §2.3.4: 253) plus NUL, and room
 * for "_dmarc." before it. */
#define DMARC_DISCOVERY_NAME_MAX 264
#define DMARC_DISCOVERY_REASON_MAX 256

enum dmarc_discovery_mode {
	DMARC_DISCOVERY_TREEWALK = 0,
	DMARC_DISCOVERY_PSL,
};

enum dmarc_discovery_status {
	DMARC_DISCOVERY_FOUND = 0,      /* a record applies */
	DMARC_DISCOVERY_NONE,           /* DMARC does not apply to this domain */
	DMARC_DISCOVERY_TEMPERROR,      /* a DNS failure: try again later */
	DMARC_DISCOVERY_PERMERROR,      /* not a usable domain name */
};

/* Which tag of the applying record gave the policy. */
enum dmarc_applies {
	DMARC_APPLIES_NOTHING = 0,
	DMARC_APPLIES_P,
	DMARC_APPLIES_SP,
	DMARC_APPLIES_NP,
	DMARC_APPLIES_P_NONE_FALLBACK,  /* invalid p/sp/np with a valid rua= (§4.10.1) */
};

/* What one query gave. */
enum dmarc_step_result {
	DMARC_STEP_RECORD = 0,          /* TXT: exactly one DMARC record */
	DMARC_STEP_NO_RECORD,           /* TXT: NXDOMAIN, NODATA or no DMARC record */
	DMARC_STEP_MULTIPLE,            /* TXT: several DMARC records, all discarded */
	DMARC_STEP_EXISTS,              /* existence: the name exists */
	DMARC_STEP_NXDOMAIN,            /* existence: the name does not exist */
	DMARC_STEP_TEMPFAIL,            /* timeout, SERVFAIL, ... */
};

struct dmarc_discovery_step {
	char name[DMARC_DISCOVERY_NAME_MAX];  /* the name queried */
	int rrtype;                     /* 16 (TXT) for the walk, 1 (A) for existence */
	enum dns_status dns;
	enum dmarc_step_result result;
};

/* The caller's public suffix list for DMARC_DISCOVERY_PSL: writes the
 * Organizational Domain of DOMAIN (lower case) into BUF, returns 0 or -1. */
struct dmarc_discovery_psl {
	int (*org_domain)(const void *ctx, const char *domain, char *buf, size_t size);
	const void *ctx;
};

struct dmarc_discovery_options {
	enum dmarc_discovery_mode mode;
	struct dmarc_discovery_psl psl;  /* needed for DMARC_DISCOVERY_PSL only */
};

struct dmarc_discovery {
	enum dmarc_discovery_status status;
	enum dmarc_discovery_mode mode;
	char domain[DMARC_DISCOVERY_NAME_MAX];        /* the name asked about, normalised */
	char org_domain[DMARC_DISCOVERY_NAME_MAX];    /* "" only on errors */
	char policy_domain[DMARC_DISCOVERY_NAME_MAX]; /* where the record was found, or "" */
	bool has_record;                /* record below is set (also for NONE by §4.10.1) */
	struct dmarc_record record;     /* the applying record */
	enum dmarc_applies applies;
	enum dmarc_request published;   /* the policy the applying tag asks for */
	enum dmarc_request policy;      /* what is applied: after t=y, one level lower */
	bool testing_lowered;           /* t=y lowered the policy */
	int author_exists;              /* 1, 0, or -1 when not asked (np= could not matter) */
	char reason[DMARC_DISCOVERY_REASON_MAX];      /* why: for logs and the A-R comment */
	struct dmarc_discovery_step steps[DMARC_DISCOVERY_STEPS_MAX];
	size_t step_count;
};

/* dmarc_discover - the policy discovery for the Author Domain FROM_DOMAIN
 * (A-labels or U-labels, any case, trailing dot allowed). Always fills
 * *out (status as above); release it with dmarc_discovery_clear. Returns 0,
 * or -1 only for NULL arguments. */
int dmarc_discover(struct resolver *resolver, const struct dmarc_discovery_options *options,
		   const char *from_domain, struct dmarc_discovery *out);

/* dmarc_discover_org_domain - the Organizational Domain of DOMAIN (an SPF
 * or DKIM identifier, or the Author Domain) for relaxed alignment: the walk
 * of RFC 9989 §4.10.2 starting at DOMAIN itself. Fills out->org_domain and
 * the steps; status FOUND (chosen by records), NONE (no record on the way:
 * DOMAIN is its own), TEMPERROR or PERMERROR. No record or policy is set.
 * Returns 0, or -1 only for NULL arguments. */
int dmarc_discover_org_domain(struct resolver *resolver,
			      const struct dmarc_discovery_options *options,
			      const char *domain, struct dmarc_discovery *out);

/* dmarc_discover_with - dmarc_discover through the DNS source DNS (TXT
 * for the walk, A for the existence of the Author Domain). */
int dmarc_discover_with(const struct dns_source *dns,
			const struct dmarc_discovery_options *options,
			const char *from_domain, struct dmarc_discovery *out);

/* dmarc_discover_org_domain_with - dmarc_discover_org_domain through DNS. */
int dmarc_discover_org_domain_with(const struct dns_source *dns,
				   const struct dmarc_discovery_options *options,
				   const char *domain, struct dmarc_discovery *out);

/* dmarc_discovery_clear - free what a discovery holds; safe twice. */
void dmarc_discovery_clear(struct dmarc_discovery *discovery);

/* dmarc_discovery_append_json - append D as one JSON object to OUT (a
 * GString): mode, status, domains, the record's tags (pct= as reported,
 * not applied), the tag that applied and why, and every query with its DNS
 * status and what it gave. Bytes outside printable ASCII are escaped. */
struct _GString;
void dmarc_discovery_append_json(const struct dmarc_discovery *d, struct _GString *out);

/* Names for logs and JSON. */
const char *dmarc_discovery_status_name(enum dmarc_discovery_status status);
const char *dmarc_applies_name(enum dmarc_applies applies);
const char *dmarc_step_result_name(enum dmarc_step_result result);
const char *dmarc_discovery_mode_name(enum dmarc_discovery_mode mode);

#endif
