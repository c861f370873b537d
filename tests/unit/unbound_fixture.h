/*
 * unbound_fixture - a real unbound on a free loopback port for unit tests
 *
 * Answers only what the test gives it (local-zone / local-data lines under
 * "server:"); every other name is refused by a static root zone, so no test
 * ever reaches the network.
 */
#ifndef LMTPFILTER_TESTS_UNBOUND_FIXTURE_H
#define LMTPFILTER_TESTS_UNBOUND_FIXTURE_H

#include <glib.h>

struct test_unbound {
	GPid pid;
	char *dir;
	int port;
	char server[64];      /* "127.0.0.1@PORT", as the resolver takes it */
};

/* test_unbound_start - start it with these extra server: lines and wait
 * until it answers; fails the test if it does not. */
void test_unbound_start(struct test_unbound *u, const char *zone_lines);
void test_unbound_stop(struct test_unbound *u);

/* test_free_port - a loopback port nothing listens on (SOCK_STREAM or
 * SOCK_DGRAM). */
int test_free_port(int type);

/* test_silent_dns - a UDP socket on loopback that never answers; its
 * port in *port_r. Close the returned descriptor when done. */
int test_silent_dns(int *port_r);

/* A UDP port on loopback that drops every query while silent and relays
 * queries to an upstream port (and the replies back) while not: a DNS
 * server that stops answering and comes back. */
struct test_dns_relay;

/* test_dns_relay_start - relay to 127.0.0.1:upstream_port; its own
 * "127.0.0.1@PORT" in relay->server. */
struct test_dns_relay *test_dns_relay_start(int upstream_port, gboolean silent);
void test_dns_relay_set_silent(struct test_dns_relay *relay, gboolean silent);
const char *test_dns_relay_server(const struct test_dns_relay *relay);
/* test_dns_relay_drop_label - also drop, while relaying, every query for
 * a name with this label (up to 63 characters): names that time out
 * behind a server that answers the rest. */
void test_dns_relay_drop_label(struct test_dns_relay *relay, const char *label);
/* test_dns_relay_dropped - queries dropped while silent so far. */
unsigned test_dns_relay_dropped(struct test_dns_relay *relay);
void test_dns_relay_stop(struct test_dns_relay **relay);

#endif
