/*
 * resolver - the one caching DNS resolver shared by every check (libunbound)
 *
 * One context for the whole process, safe to use from every worker thread.
 * Each lookup has a real deadline (dns_timeout): an asynchronous query that
 * is cancelled when the deadline passes. Timeouts and SERVFAIL are temporary
 * errors; NXDOMAIN and NODATA are answers.
 *
 * Servers that stopped answering are remembered: after a few timeouts in a
 * row and a probe that got no answer either, lookups the answer cache
 * cannot serve fail at once (DNS_TEMPFAIL) for a short hold-down that grows
 * up to a bound; then one lookup probes, and the first reply from a server
 * ends it. State changes are logged.
 */
#ifndef LMTPFILTER_RESOLVER_H
#define LMTPFILTER_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Servers that stopped answering (resolver.c explains). Three timeouts in
 * a row rather than one: a lost packet or one slow authority must not fail
 * every check. The hold-down starts short (a restarted server is back in
 * seconds) and doubles per failed probe up to a bound that caps how long
 * recovery can take. */
#define RESOLVER_DOWN_AFTER_TIMEOUTS 3
#define RESOLVER_HOLD_MIN_MS 2000
#define RESOLVER_HOLD_MAX_MS 10000

struct resolver;
struct ub_result;

enum dns_status {
	DNS_OK = 0,        /* at least one record of the asked type */
	DNS_NXDOMAIN,      /* the name does not exist */
	DNS_NODATA,        /* the name exists, no record of that type */
	DNS_TEMPFAIL,      /* timeout, SERVFAIL, REFUSED, network error */
};

struct dns_answer {
	enum dns_status status;
	int rrtype;
	size_t count;                   /* records of rrtype (after CNAMEs) */
	unsigned char **data;           /* rdata of each record, wire format */
	size_t *len;                    /* rdata lengths */
	unsigned char *packet;          /* the whole reply, wire format (may be NULL on TEMPFAIL) */
	size_t packet_len;
	char *canonname;                /* after CNAMEs, may be NULL */
	void *priv;
};

/* resolver_new - servers: "IP" or "IP@PORT", NULL/0 = /etc/resolv.conf.
 * timeout_ms > 0. 0, or -1 with *error_r (g_malloc'd). */
int resolver_new(char *const *servers, size_t server_count, unsigned timeout_ms,
		 struct resolver **resolver_r, char **error_r);
void resolver_free(struct resolver **resolver);

/* resolver_query - blocking lookup with the resolver's deadline.
 * Always fills *answer_r (status DNS_TEMPFAIL on any failure); free it with
 * dns_answer_free. Returns 0, or -1 only for invalid arguments. */
int resolver_query(struct resolver *resolver, const char *name, int rrtype,
		   struct dns_answer **answer_r);
void dns_answer_free(struct dns_answer **answer);

/* Counters for the benchmark and logs: queries sent to the network / answered from cache. */
unsigned long resolver_queries_sent(struct resolver *resolver);

/* What the resolver knows about its servers, for logs and metrics. */
struct resolver_stats {
	bool servers_down;              /* in a hold-down: lookups fail at once */
	unsigned consecutive_timeouts;
	unsigned hold_ms;               /* current hold-down, 0 while up */
	uint64_t down_ms;               /* since the servers were last marked down */
	unsigned long queries_sent;     /* lookups sent (as resolver_queries_sent) */
	unsigned long timeouts;         /* lookups that ran into the deadline */
	unsigned long fast_failures;    /* lookups failed at once in a hold-down */
	unsigned long probes;           /* probes of the servers sent */
	unsigned long downs;            /* times the servers were marked down */
};

/* resolver_stats - a consistent snapshot of the counters. */
void resolver_stats(struct resolver *resolver, struct resolver_stats *stats_r);

/* resolver_preload - serve a copy of answer for (name, rrtype) from the
 * answer cache for ttl seconds, as if a server had sent it (tests, the fuzz
 * target). A DNS_TEMPFAIL answer or ttl <= 0 only drops what was kept. */
void resolver_preload(struct resolver *resolver, const char *name, int rrtype,
		      const struct dns_answer *answer, int ttl);

/* resolver_answer_from_result - our answer from a result libunbound
 * delivered (err: its error code; result may be NULL): what every lookup
 * goes through, exposed for the fuzz target. Free with dns_answer_free. */
struct dns_answer *resolver_answer_from_result(int rrtype, int err, const struct ub_result *result);

#endif
