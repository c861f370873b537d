/*
 * resolver - the one caching DNS resolver shared by every check (libunbound)
 *
 * One context for the whole process, safe to use from every worker thread.
 * Each lookup has a real deadline (dns_timeout): an asynchronous query that
 * is cancelled when the deadline passes. Timeouts and SERVFAIL are temporary
 * errors; NXDOMAIN and NODATA are answers.
 */
#ifndef LMTPFILTER_RESOLVER_H
#define LMTPFILTER_RESOLVER_H

#include <stddef.h>

struct resolver;

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

/* servers: "IP" or "IP@PORT", NULL/0 = /etc/resolv.conf. timeout_ms > 0. */
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

#endif
