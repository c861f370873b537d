/*
 * dns_source - where a check's DNS answers come from
 *
 * One interface for every check that asks DNS (libspf2 through spf.c,
 * the DMARC discovery, libopendkim through dkim.c, ARC's keys in arc.c):
 * a query by name and record type that always answers with a struct
 * dns_answer, and the call that frees it. In the daemon the source is
 * the shared resolver (dns_source_for_resolver); the unit tests and fuzz
 * targets plug in an in-memory zone.
 */
#ifndef LMTPFILTER_DNS_SOURCE_H
#define LMTPFILTER_DNS_SOURCE_H

#include "lmtpfilter/resolver.h"

/* query returns 0 and fills *answer_r (status DNS_TEMPFAIL on any
 * failure), or -1 for invalid arguments; free_answer releases what query
 * returned (a NULL *answer too) and sets *answer to NULL. */
struct dns_source {
	int (*query)(void *ctx, const char *name, int rrtype, struct dns_answer **answer_r);
	void (*free_answer)(void *ctx, struct dns_answer **answer);
	void *ctx;
};

/* dns_source_for_resolver - a source that asks the shared resolver (with
 * its deadline and answer cache). The resolver must outlive every user of
 * the source. */
void dns_source_for_resolver(struct resolver *resolver, struct dns_source *source_r);

#endif
