/*
 * dns_source - the DNS source interface and its resolver implementation
 *
 * Owns nothing: a source is three words the caller copies; the resolver
 * behind dns_source_for_resolver belongs to whoever created it.
 */
#include "lmtpfilter/dns_source.h"

static int dns_source_resolver_query(void *ctx, const char *name, int rrtype,
				     struct dns_answer **answer_r)
{
	return resolver_query(ctx, name, rrtype, answer_r);
}

static void dns_source_resolver_free(void *ctx, struct dns_answer **answer)
{
	dns_answer_free(answer);
}

void dns_source_for_resolver(struct resolver *resolver, struct dns_source *source_r)
{
	source_r->query = dns_source_resolver_query;
	source_r->free_answer = dns_source_resolver_free;
	source_r->ctx = resolver;
}
