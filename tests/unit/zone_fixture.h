/*
 * zone_fixture - an in-memory DNS zone for unit tests, as a struct dns_source
 *
 * Records are added by name, type and a value in text form; a name can
 * also be made to exist without records (NODATA) or to fail every lookup
 * (TEMPFAIL). Any other name is NXDOMAIN, except an empty non-terminal: a
 * name with a name below it in the zone exists (RFC 8020), as on real DNS.
 * Names compare without case and without a trailing dot. Every query is
 * logged as "TYPE name" ("TXT _dmarc.example.com", "A host.test"), in
 * order; queries may come from several threads at once.
 */
#ifndef LMTPFILTER_TESTS_ZONE_FIXTURE_H
#define LMTPFILTER_TESTS_ZONE_FIXTURE_H

#include <glib.h>
#include <stdbool.h>

#include "lmtpfilter/dns_source.h"

#define TEST_ZONE_A 1
#define TEST_ZONE_PTR 12
#define TEST_ZONE_MX 15
#define TEST_ZONE_TXT 16
#define TEST_ZONE_AAAA 28

struct test_zone;

/* test_zone_new - an empty zone; test_zone_free frees it and NULLs *zone. */
struct test_zone *test_zone_new(void);
void test_zone_free(struct test_zone **zone);

/* test_zone_add - one record: an address for A and AAAA, the text for
 * TXT (split into 255-byte strings), a host name for MX (preference 10;
 * "." is the null MX) and PTR. */
void test_zone_add(struct test_zone *zone, const char *name, int rrtype, const char *value);
/* test_zone_add_nodata - NAME exists, with no record of any type. */
void test_zone_add_nodata(struct test_zone *zone, const char *name);
/* test_zone_add_tempfail - every lookup of NAME fails (DNS_TEMPFAIL). */
void test_zone_add_tempfail(struct test_zone *zone, const char *name);
/* test_zone_clear - drop every record and the log. */
void test_zone_clear(struct test_zone *zone);

/* test_zone_source - the zone as a DNS source; the zone must outlive it. */
void test_zone_source(struct test_zone *zone, struct dns_source *source_r);

/* The log: how many queries, the I-th ("TYPE name"), whether NAME was
 * asked for any type; test_zone_forget empties it. Not while queries run. */
guint test_zone_asked_count(struct test_zone *zone);
const char *test_zone_asked(struct test_zone *zone, guint i);
bool test_zone_was_asked(struct test_zone *zone, const char *name);
void test_zone_forget(struct test_zone *zone);

#endif
