/*
 * trail - connection facts (client IP, HELO, reverse name, authentication)
 * of the hop where a message entered the organisation, read from the
 * Received fields our own MTAs wrote.
 */
#ifndef LMTPFILTER_MIME_TRAIL_H
#define LMTPFILTER_MIME_TRAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "mime/header_block.h"

/* Received fields examined at most per message; a longer trusted walk gives no facts */
#define TRAIL_HOPS_MAX 100

enum facts_source { FACTS_NONE = 0, FACTS_XFORWARD, FACTS_TRAIL, FACTS_OPTIONS };

struct conn_facts {
	enum facts_source source;
	char client_ip[64];   /* IPv4 dotted or IPv6 text; "IPv6:" removed, ::ffff:a.b.c.d as a.b.c.d */
	char helo[256];       /* "" when unknown */
	char rdns[256];       /* "" when unknown or unverified (Postfix "unknown", Sendmail "may be forged") */
	bool authenticated;
	char auth_user[256];
	bool all_trusted;     /* every hop inside trusted networks: locally generated */
	char reason[160];     /* why no facts (source NONE) or why all_trusted */
};

typedef bool (*trail_trusted_fn)(void *ctx, const char *ip);

/* trail_facts - walk the Received fields of block top-down. The topmost
 * one must be written by one of our MTAs ("by" host in mta_hostnames,
 * ASCII case-insensitive, trailing dot ignored). Hops of ours whose client
 * IP is trusted (trusted(ctx, ip)) are walked past; below such a hop a
 * field written by another host is skipped only when its own client is
 * trusted too (a content filter on localhost), else the trail ends there
 * without facts. The walk stops at the first hop of ours whose client is
 * untrusted or that is authenticated (an RFC 3848 protocol such as ESMTPSA
 * in its "with" clause): its facts, source FACTS_TRAIL. Fields below that
 * hop are the sender's text and are never read. If every hop is trusted, or the bottom hop
 * is a local submission ("Postfix, from userid N"), all_trusted is set
 * with a reason (facts of the last hop of ours, if any). Missing or
 * garbled fields give source FACTS_NONE with a reason, never a guess.
 * At most TRAIL_HOPS_MAX Received fields are examined. Returns 0; -1 only
 * for a NULL argument. */
int trail_facts(const struct header_block *block, char *const *mta_hostnames, size_t mta_count,
		trail_trusted_fn trusted, void *ctx, struct conn_facts *facts_r);

struct received_hop {
	char from_helo[256];
	char from_rdns[256];
	char from_ip[64];        /* normalised as in conn_facts; "" when no valid address literal */
	char by_host[256];
	char with_proto[32];
	bool authenticated;      /* "with" ESMTPA / ESMTPSA / LMTPA ... (RFC 3848); never from a comment */
	char auth_user[256];     /* Postfix "(Authenticated sender: u)" of an authenticated hop, else "" */
	bool local_submission;   /* no "from" clause and "(Postfix, from userid N)": injected on the host */
};

/* trail_parse_received - parse one unfolded Received value (everything
 * after the colon) into hop facts. Understands the Postfix, Sendmail, Exim
 * and Dovecot forms: "from H (R [IP])", "from H ([IP])", "(R [IP]
 * (may be forged))", "from R ([IP] helo=H)", "from [IP] (helo=H)",
 * "[IPv6:...]", "unknown". Returns 0, or -1 when the field is garbled
 * (unbalanced comment, bracket or quote, a clause keyword without its
 * value, a repeated from/by/with clause, a value longer than its slot);
 * then *hop_r is zeroed. */
int trail_parse_received(const char *value, struct received_hop *hop_r);

#endif
