/*
 * test_resolver - the shared resolver against a real unbound on loopback
 *
 * Starts `unbound -d` (unbound_fixture.c) with local-data for a .test zone, then
 * checks record types, NXDOMAIN vs NODATA, refused zones, a silent server
 * (the deadline must hold) and concurrent lookups from several threads.
 * The outage tests put a relay (silent or forwarding on cue) between the
 * resolver and unbound: after RESOLVER_DOWN_AFTER_TIMEOUTS timeouts lookups
 * must fail at once, cached answers still serve, one probe goes out per
 * hold-down, a server that answers again is used within the hold-down, and
 * timeouts for some names only (a slow authority) hold nothing down.
 */
#include <errno.h>
#include <glib.h>
#include <string.h>
#include <unbound.h>
#include <unistd.h>

#include "lmtpfilter/resolver.h"
#include "unbound_fixture.h"

#define TEST_TIMEOUT_MS 1500
#define TEST_THREADS 8
#define TEST_THREAD_LOOKUPS 40
#define TEST_OUTAGE_TIMEOUT_MS 400   /* dns_timeout of the outage tests */
#define TEST_FAST_MS 100             /* "at once": a quarter of that deadline */
#define TEST_FAST_LOOKUPS 20         /* lookups made while the servers are down */
#define TEST_SLACK_MS 1000           /* scheduling slack on a shared machine */
#define TEST_POLL_MS 50

#define T_A 1
#define T_PTR 12
#define T_MX 15
#define T_TXT 16
#define T_AAAA 28

static struct test_unbound server;
static const char *server_spec;

static void start_unbound(void)
{
	test_unbound_start(&server,
		"  local-zone: \"refused.test.\" refuse\n"
		"  local-data: \"www.example.test. 300 IN A 192.0.2.1\"\n"
		"  local-data: \"short.example.test. 1 IN A 192.0.2.9\"\n"
		"  local-data: 'www.example.test. 300 IN TXT \"v=spf1 \" \"-all\"'\n"
		"  local-data: \"example.test. 300 IN MX 10 mx.example.test.\"\n"
		"  local-data: \"mx.example.test. 300 IN AAAA 2001:db8::25\"\n"
		"  local-data: \"example.test. 300 IN SOA ns.example.test. h.example.test. 1 3600 600 86400 300\"\n"
		"  local-data-ptr: \"192.0.2.1 www.example.test.\"\n");
	server_spec = server.server;
}

static void stop_unbound(void)
{
	test_unbound_stop(&server);
}

static struct resolver *new_resolver(const char *spec, unsigned timeout_ms)
{
	char *servers[] = { (char *)spec };
	struct resolver *r = NULL;
	char *error = NULL;

	g_assert_cmpint(resolver_new(servers, 1, timeout_ms, &r, &error), ==, 0);
	g_assert_null(error);
	return r;
}

static struct dns_answer *lookup(struct resolver *r, const char *name, int type)
{
	struct dns_answer *a = NULL;

	g_assert_cmpint(resolver_query(r, name, type, &a), ==, 0);
	g_assert_nonnull(a);
	return a;
}

static void test_record_types(void)
{
	struct resolver *r = new_resolver(server_spec, TEST_TIMEOUT_MS);
	struct dns_answer *a;

	a = lookup(r, "www.example.test", T_A);
	g_assert_cmpint(a->status, ==, DNS_OK);
	g_assert_cmpuint(a->count, ==, 1);
	g_assert_cmpuint(a->len[0], ==, 4);
	g_assert_cmpmem(a->data[0], 4, "\xc0\x00\x02\x01", 4);
	g_assert_nonnull(a->packet);
	g_assert_cmpuint(a->packet_len, >, 12);
	dns_answer_free(&a);
	g_assert_null(a);

	a = lookup(r, "www.example.test", T_TXT);
	g_assert_cmpint(a->status, ==, DNS_OK);
	g_assert_cmpmem(a->data[0], a->len[0], "\x07v=spf1 \x04-all", 13);
	dns_answer_free(&a);

	a = lookup(r, "example.test", T_MX);
	g_assert_cmpint(a->status, ==, DNS_OK);
	g_assert_cmpuint(a->count, ==, 1);
	g_assert_cmpmem(a->data[0], 2, "\x00\x0a", 2);
	dns_answer_free(&a);

	a = lookup(r, "mx.example.test", T_AAAA);
	g_assert_cmpint(a->status, ==, DNS_OK);
	g_assert_cmpuint(a->len[0], ==, 16);
	dns_answer_free(&a);

	/* A documentation-range reverse zone reaches the server. */
	a = lookup(r, "1.2.0.192.in-addr.arpa", T_PTR);
	g_assert_cmpint(a->status, ==, DNS_OK);
	g_assert_cmpmem(a->data[0], a->len[0], "\x03www\x07" "example\x04test\x00", 18);
	dns_answer_free(&a);
	resolver_free(&r);
	g_assert_null(r);
}

static void test_negative(void)
{
	struct resolver *r = new_resolver(server_spec, TEST_TIMEOUT_MS);
	struct dns_answer *a;

	a = lookup(r, "nothere.example.test", T_A);
	g_assert_cmpint(a->status, ==, DNS_NXDOMAIN);
	g_assert_cmpuint(a->count, ==, 0);
	dns_answer_free(&a);

	a = lookup(r, "www.example.test", T_AAAA);
	g_assert_cmpint(a->status, ==, DNS_NODATA);
	dns_answer_free(&a);

	a = lookup(r, "x.refused.test", T_TXT);
	g_assert_cmpint(a->status, ==, DNS_TEMPFAIL);
	dns_answer_free(&a);
	resolver_free(&r);
}

static void test_cache_counter(void)
{
	struct resolver *r = new_resolver(server_spec, TEST_TIMEOUT_MS);
	struct dns_answer *a;

	g_assert_cmpuint(resolver_queries_sent(r), ==, 0);
	a = lookup(r, "www.example.test", T_A);
	dns_answer_free(&a);
	g_assert_cmpuint(resolver_queries_sent(r), ==, 1);
	a = lookup(r, "WWW.example.test.", T_A);
	g_assert_cmpint(a->status, ==, DNS_OK);
	dns_answer_free(&a);
	g_assert_cmpuint(resolver_queries_sent(r), ==, 1);
	a = lookup(r, "www.example.test", T_TXT);
	dns_answer_free(&a);
	g_assert_cmpuint(resolver_queries_sent(r), ==, 2);
	resolver_free(&r);
}

/* Answers are served from the resolver's own cache until their TTL runs
 * out; failures are never cached. */
static void test_answer_cache(void)
{
	struct resolver *r = new_resolver(server_spec, TEST_TIMEOUT_MS);
	struct dns_answer *a, *b;

	a = lookup(r, "www.example.test", T_TXT);
	b = lookup(r, "www.example.test", T_TXT);
	g_assert_cmpuint(resolver_queries_sent(r), ==, 1);
	g_assert_cmpint(b->status, ==, DNS_OK);
	g_assert_cmpuint(b->count, ==, a->count);
	g_assert_cmpmem(b->data[0], b->len[0], a->data[0], a->len[0]);
	g_assert_nonnull(b->packet);
	g_assert_cmpmem(b->packet, b->packet_len, a->packet, a->packet_len);
	dns_answer_free(&a);
	dns_answer_free(&b);

	/* negative answers too */
	a = lookup(r, "nothing.example.test", T_A);
	g_assert_cmpint(a->status, ==, DNS_NXDOMAIN);
	dns_answer_free(&a);
	a = lookup(r, "nothing.example.test", T_A);
	g_assert_cmpint(a->status, ==, DNS_NXDOMAIN);
	dns_answer_free(&a);
	g_assert_cmpuint(resolver_queries_sent(r), ==, 2);

	/* a failure is asked again */
	a = lookup(r, "x.refused.test", T_TXT);
	dns_answer_free(&a);
	a = lookup(r, "x.refused.test", T_TXT);
	g_assert_cmpint(a->status, ==, DNS_TEMPFAIL);
	dns_answer_free(&a);
	g_assert_cmpuint(resolver_queries_sent(r), ==, 4);

	/* TTL 1: cached for a second, then asked again */
	a = lookup(r, "short.example.test", T_A);
	dns_answer_free(&a);
	a = lookup(r, "short.example.test", T_A);
	dns_answer_free(&a);
	g_assert_cmpuint(resolver_queries_sent(r), ==, 5);
	g_usleep(1100 * 1000);
	a = lookup(r, "short.example.test", T_A);
	g_assert_cmpint(a->status, ==, DNS_OK);
	dns_answer_free(&a);
	g_assert_cmpuint(resolver_queries_sent(r), ==, 6);
	resolver_free(&r);
}

static void test_silent_server(void)
{
	int port, fd = test_silent_dns(&port);
	char spec[64];
	struct resolver *r;
	struct dns_answer *a;
	gint64 start, elapsed_ms;

	g_snprintf(spec, sizeof(spec), "127.0.0.1@%d", port);
	r = new_resolver(spec, TEST_TIMEOUT_MS);

	start = g_get_monotonic_time();
	a = lookup(r, "www.example.test", T_A);
	elapsed_ms = (g_get_monotonic_time() - start) / 1000;
	g_assert_cmpint(a->status, ==, DNS_TEMPFAIL);
	g_assert_cmpint(elapsed_ms, <, TEST_TIMEOUT_MS + 1000);
	dns_answer_free(&a);

	/* A second lookup after a timeout still honours the deadline. */
	start = g_get_monotonic_time();
	a = lookup(r, "other.example.test", T_TXT);
	elapsed_ms = (g_get_monotonic_time() - start) / 1000;
	g_assert_cmpint(a->status, ==, DNS_TEMPFAIL);
	g_assert_cmpint(elapsed_ms, <, TEST_TIMEOUT_MS + 1000);
	dns_answer_free(&a);
	resolver_free(&r);
	close(fd);
}

static gpointer concurrent_worker(gpointer data)
{
	struct resolver *r = data;
	int bad = 0;

	for (int i = 0; i < TEST_THREAD_LOOKUPS; i++) {
		struct dns_answer *a = NULL;
		char name[64];

		switch (i % 3) {
		case 0:
			resolver_query(r, "www.example.test", T_A, &a);
			if (a->status != DNS_OK || a->len[0] != 4 || memcmp(a->data[0], "\xc0\x00\x02\x01", 4) != 0)
				bad++;
			break;
		case 1:
			g_snprintf(name, sizeof(name), "n%d-%p.example.test", i, (void *)g_thread_self());
			resolver_query(r, name, T_A, &a);
			if (a->status != DNS_NXDOMAIN)
				bad++;
			break;
		default:
			resolver_query(r, "example.test", T_MX, &a);
			if (a->status != DNS_OK || a->count != 1)
				bad++;
			break;
		}
		dns_answer_free(&a);
	}
	return GINT_TO_POINTER(bad);
}

static void test_concurrent(void)
{
	struct resolver *r = new_resolver(server_spec, TEST_TIMEOUT_MS);
	GThread *threads[TEST_THREADS];
	int bad = 0;

	for (int i = 0; i < TEST_THREADS; i++)
		threads[i] = g_thread_new("lookup", concurrent_worker, r);
	for (int i = 0; i < TEST_THREADS; i++)
		bad += GPOINTER_TO_INT(g_thread_join(threads[i]));
	g_assert_cmpint(bad, ==, 0);
	resolver_free(&r);
}

static void test_bad_arguments(void)
{
	struct resolver *r = NULL;
	char *error = NULL;
	char *servers[] = { "not-an-address" };

	g_assert_cmpint(resolver_new(servers, 1, TEST_TIMEOUT_MS, &r, &error), ==, -1);
	g_assert_nonnull(error);
	g_assert_null(r);
	g_free(error);
}

/* resolver_answer_from_result maps libunbound's result and copies every
 * record exactly: an empty one (rdata allocated to its length, here 0
 * bytes past a 4-byte one) is not read past its end. */
static void test_answer_from_result(void)
{
	unsigned char *rdata = g_malloc(4);
	char *data[3];
	int len[3] = { 4, 0, 0 };
	struct ub_result res = { .qname = "x.example.test", .qtype = T_A, .qclass = 1,
				 .data = data, .len = len, .havedata = 1 };
	struct dns_answer *a;

	memcpy(rdata, "\xc0\x00\x02\x01", 4);
	data[0] = (char *)rdata;
	data[1] = (char *)rdata + 4;
	data[2] = NULL;
	a = resolver_answer_from_result(T_A, 0, &res);
	g_assert_cmpint(a->status, ==, DNS_OK);
	g_assert_cmpuint(a->count, ==, 2);
	g_assert_cmpmem(a->data[0], a->len[0], "\xc0\x00\x02\x01", 4);
	g_assert_cmpuint(a->len[1], ==, 0);
	g_assert_null(a->packet);
	dns_answer_free(&a);

	res.rcode = 2;
	a = resolver_answer_from_result(T_A, 0, &res);
	g_assert_cmpint(a->status, ==, DNS_TEMPFAIL);
	dns_answer_free(&a);
	res.rcode = 3;
	res.nxdomain = 1;
	a = resolver_answer_from_result(T_A, 0, &res);
	g_assert_cmpint(a->status, ==, DNS_NXDOMAIN);
	dns_answer_free(&a);
	a = resolver_answer_from_result(T_A, UB_SERVFAIL, NULL);
	g_assert_cmpint(a->status, ==, DNS_TEMPFAIL);
	dns_answer_free(&a);
	g_free(rdata);
}

/* ---- outages: remembering a server that stopped answering ---- */

/* timed_lookup - status of one lookup; its duration in *ms_r. */
static enum dns_status timed_lookup(struct resolver *r, const char *name, int type, gint64 *ms_r)
{
	gint64 start = g_get_monotonic_time();
	struct dns_answer *a = lookup(r, name, type);
	enum dns_status status = a->status;

	*ms_r = (g_get_monotonic_time() - start) / 1000;
	dns_answer_free(&a);
	return status;
}

/* time_out - n lookups of fresh names that each run into the deadline. */
static void time_out(struct resolver *r, int n, const char *tag)
{
	for (int i = 0; i < n; i++) {
		char name[64];
		gint64 ms;

		g_snprintf(name, sizeof(name), "%s-timeout-%d.example.test", tag, i);
		g_assert_cmpint(timed_lookup(r, name, T_A, &ms), ==, DNS_TEMPFAIL);
		g_assert_cmpint(ms, >=, TEST_OUTAGE_TIMEOUT_MS - 50);
	}
}

/* assert_fails_fast - n lookups of fresh names, each DNS_TEMPFAIL far
 * under the deadline, none of them reaching the relay. */
static void assert_fails_fast(struct resolver *r, struct test_dns_relay *relay, int n,
			      const char *tag)
{
	unsigned dropped = test_dns_relay_dropped(relay);

	for (int i = 0; i < n; i++) {
		char name[64];
		gint64 ms;

		g_snprintf(name, sizeof(name), "%s-fast-%d.example.test", tag, i);
		g_assert_cmpint(timed_lookup(r, name, T_TXT, &ms), ==, DNS_TEMPFAIL);
		g_assert_cmpint(ms, <, TEST_FAST_MS);
	}
	g_assert_cmpuint(test_dns_relay_dropped(relay), ==, dropped);
}

static void test_outage_fails_fast(void)
{
	struct test_dns_relay *relay = test_dns_relay_start(server.port, FALSE);
	struct resolver *r = new_resolver(test_dns_relay_server(relay), TEST_OUTAGE_TIMEOUT_MS);
	struct resolver_stats st;
	gint64 ms;

	/* An answer from before the outage. */
	g_assert_cmpint(timed_lookup(r, "www.example.test", T_A, &ms), ==, DNS_OK);
	test_dns_relay_set_silent(relay, TRUE);
	time_out(r, RESOLVER_DOWN_AFTER_TIMEOUTS, "fast");
	assert_fails_fast(r, relay, TEST_FAST_LOOKUPS, "fast");

	/* The cache still answers while the servers are down. */
	g_assert_cmpint(timed_lookup(r, "WWW.example.test.", T_A, &ms), ==, DNS_OK);
	g_assert_cmpint(ms, <, TEST_FAST_MS);

	resolver_stats(r, &st);
	g_assert_true(st.servers_down);
	g_assert_cmpuint(st.downs, ==, 1);
	g_assert_cmpuint(st.timeouts, ==, RESOLVER_DOWN_AFTER_TIMEOUTS);
	g_assert_cmpuint(st.fast_failures, ==, TEST_FAST_LOOKUPS);
	g_assert_cmpuint(st.hold_ms, ==, RESOLVER_HOLD_MIN_MS);
	g_assert_cmpuint(st.queries_sent, ==, 1 + RESOLVER_DOWN_AFTER_TIMEOUTS);
	resolver_free(&r);
	test_dns_relay_stop(&relay);
}

/* wait_for_answer - look up fresh names until one gets a real answer;
 * returns the ms that took. Every lookup before it fails fast except at
 * most one probe per hold-down. */
static gint64 wait_for_answer(struct resolver *r, gint64 limit_ms, const char *tag)
{
	gint64 start = g_get_monotonic_time(), elapsed_ms = 0;
	int slow = 0;

	for (int i = 0; elapsed_ms < limit_ms; i++) {
		char name[64];
		gint64 ms;

		g_snprintf(name, sizeof(name), "%s-back-%d.example.test", tag, i);
		if (timed_lookup(r, name, T_A, &ms) == DNS_NXDOMAIN)
			return (g_get_monotonic_time() - start) / 1000;
		if (ms >= TEST_FAST_MS)
			slow++;
		g_assert_cmpint(slow, <=, 1 + elapsed_ms / RESOLVER_HOLD_MIN_MS);
		g_usleep(TEST_POLL_MS * 1000);
		elapsed_ms = (g_get_monotonic_time() - start) / 1000;
	}
	g_assert_not_reached();
	return -1;
}

static void test_outage_recovers(void)
{
	struct test_dns_relay *relay = test_dns_relay_start(server.port, TRUE);
	struct resolver *r = new_resolver(test_dns_relay_server(relay), TEST_OUTAGE_TIMEOUT_MS);
	struct resolver_stats st;
	gint64 ms;

	time_out(r, RESOLVER_DOWN_AFTER_TIMEOUTS, "rec");
	assert_fails_fast(r, relay, TEST_FAST_LOOKUPS, "rec1");

	/* The server comes back during the first hold-down: used again by
	 * the probe at its end. */
	test_dns_relay_set_silent(relay, FALSE);
	ms = wait_for_answer(r, RESOLVER_HOLD_MIN_MS + TEST_OUTAGE_TIMEOUT_MS + TEST_SLACK_MS, "rec1");
	g_test_message("server back after the first hold-down: answers again after %" G_GINT64_FORMAT " ms", ms);
	resolver_stats(r, &st);
	g_assert_false(st.servers_down);
	g_assert_cmpuint(st.probes, ==, 2);        /* the one that confirmed, the one that found it back */
	g_assert_cmpint(timed_lookup(r, "www.example.test", T_A, &ms), ==, DNS_OK);

	/* Down again; this time the first probe fails and the hold-down
	 * doubles; the server then comes back within the longer one. */
	test_dns_relay_set_silent(relay, TRUE);
	time_out(r, RESOLVER_DOWN_AFTER_TIMEOUTS, "rec2");
	g_usleep((RESOLVER_HOLD_MIN_MS + TEST_POLL_MS) * 1000);
	time_out(r, 1, "rec2-probe");
	assert_fails_fast(r, relay, TEST_FAST_LOOKUPS, "rec2");
	resolver_stats(r, &st);
	g_assert_true(st.servers_down);
	g_assert_cmpuint(st.downs, ==, 2);
	g_assert_cmpuint(st.hold_ms, ==, 2 * RESOLVER_HOLD_MIN_MS);
	test_dns_relay_set_silent(relay, FALSE);
	ms = wait_for_answer(r, 2 * RESOLVER_HOLD_MIN_MS + TEST_OUTAGE_TIMEOUT_MS + TEST_SLACK_MS, "rec2");
	g_test_message("server back after a failed probe: answers again after %" G_GINT64_FORMAT " ms", ms);
	resolver_free(&r);
	test_dns_relay_stop(&relay);
}

struct probe_race {
	struct resolver *resolver;
	int index;
	gint64 ms;
};

static gpointer probe_race_worker(gpointer data)
{
	struct probe_race *p = data;
	char name[64];

	g_snprintf(name, sizeof(name), "race-%d.example.test", p->index);
	g_assert_cmpint(timed_lookup(p->resolver, name, T_A, &p->ms), ==, DNS_TEMPFAIL);
	return NULL;
}

/* When a hold-down ends, lookups from many threads at once send one
 * probe; the others keep failing at once while it runs. */
static void test_outage_one_probe(void)
{
	struct test_dns_relay *relay = test_dns_relay_start(server.port, TRUE);
	struct resolver *r = new_resolver(test_dns_relay_server(relay), TEST_OUTAGE_TIMEOUT_MS);
	struct probe_race race[TEST_THREADS];
	GThread *threads[TEST_THREADS];
	struct resolver_stats st;
	unsigned long probes;
	int slow = 0;

	time_out(r, RESOLVER_DOWN_AFTER_TIMEOUTS, "race");
	resolver_stats(r, &st);
	probes = st.probes;
	g_usleep((RESOLVER_HOLD_MIN_MS + TEST_POLL_MS) * 1000);
	for (int i = 0; i < TEST_THREADS; i++) {
		race[i] = (struct probe_race){ .resolver = r, .index = i };
		threads[i] = g_thread_new("probe", probe_race_worker, &race[i]);
	}
	for (int i = 0; i < TEST_THREADS; i++) {
		g_thread_join(threads[i]);
		if (race[i].ms >= TEST_FAST_MS)
			slow++;
	}
	g_assert_cmpint(slow, ==, 1);
	resolver_stats(r, &st);
	g_assert_cmpuint(st.probes, ==, probes + 1);
	g_assert_cmpuint(st.fast_failures, ==, TEST_THREADS - 1);
	g_assert_true(st.servers_down);
	resolver_free(&r);
	test_dns_relay_stop(&relay);
}

/* SERVFAIL from a live server (here: its REFUSED, which libunbound turns
 * into SERVFAIL) is neither a timeout nor proof that the servers are
 * back: two timeouts, a SERVFAIL, one more timeout make three. */
static void test_outage_servfail_is_neutral(void)
{
	struct test_dns_relay *relay = test_dns_relay_start(server.port, TRUE);
	struct resolver *r = new_resolver(test_dns_relay_server(relay), TEST_OUTAGE_TIMEOUT_MS);
	struct resolver_stats st;
	gint64 ms;

	time_out(r, RESOLVER_DOWN_AFTER_TIMEOUTS - 1, "neutral");
	test_dns_relay_set_silent(relay, FALSE);
	g_assert_cmpint(timed_lookup(r, "x.refused.test", T_TXT, &ms), ==, DNS_TEMPFAIL);
	g_assert_cmpint(ms, <, TEST_OUTAGE_TIMEOUT_MS);
	resolver_stats(r, &st);
	g_assert_false(st.servers_down);
	g_assert_cmpuint(st.consecutive_timeouts, ==, RESOLVER_DOWN_AFTER_TIMEOUTS - 1);
	test_dns_relay_set_silent(relay, TRUE);
	time_out(r, 1, "neutral-last");
	assert_fails_fast(r, relay, TEST_FAST_LOOKUPS, "neutral");
	resolver_free(&r);
	test_dns_relay_stop(&relay);
}

/* Timeouts for names behind a slow authority, while the server answers
 * everything else: the probe after the third finds it alive, nothing is
 * held down and other names are still resolved. */
static void test_outage_slow_names_only(void)
{
	struct test_dns_relay *relay = test_dns_relay_start(server.port, FALSE);
	struct resolver *r = new_resolver(test_dns_relay_server(relay), TEST_OUTAGE_TIMEOUT_MS);
	struct resolver_stats st;
	gint64 ms;

	test_dns_relay_drop_label(relay, "slow");
	for (int i = 0; i < 2 * RESOLVER_DOWN_AFTER_TIMEOUTS; i++) {
		char name[64];

		g_snprintf(name, sizeof(name), "n%d.slow.example.test", i);
		g_assert_cmpint(timed_lookup(r, name, T_A, &ms), ==, DNS_TEMPFAIL);
		g_assert_cmpint(ms, >=, TEST_OUTAGE_TIMEOUT_MS - 50);
	}
	g_assert_cmpint(timed_lookup(r, "www.example.test", T_A, &ms), ==, DNS_OK);
	g_assert_cmpint(ms, <, TEST_FAST_MS);
	resolver_stats(r, &st);
	g_assert_false(st.servers_down);
	g_assert_cmpuint(st.downs, ==, 0);
	g_assert_cmpuint(st.probes, ==, 2);
	g_assert_cmpuint(st.fast_failures, ==, 0);
	resolver_free(&r);
	test_dns_relay_stop(&relay);
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	start_unbound();
	g_test_add_func("/resolver/record-types", test_record_types);
	g_test_add_func("/resolver/negative", test_negative);
	g_test_add_func("/resolver/cache-counter", test_cache_counter);
	g_test_add_func("/resolver/answer-cache", test_answer_cache);
	g_test_add_func("/resolver/silent-server", test_silent_server);
	g_test_add_func("/resolver/concurrent", test_concurrent);
	g_test_add_func("/resolver/outage/fails-fast", test_outage_fails_fast);
	g_test_add_func("/resolver/outage/recovers", test_outage_recovers);
	g_test_add_func("/resolver/outage/one-probe", test_outage_one_probe);
	g_test_add_func("/resolver/outage/servfail-is-neutral", test_outage_servfail_is_neutral);
	g_test_add_func("/resolver/outage/slow-names-only", test_outage_slow_names_only);
	g_test_add_func("/resolver/bad-arguments", test_bad_arguments);
	g_test_add_func("/resolver/answer-from-result", test_answer_from_result);
	ret = g_test_run();
	stop_unbound();
	return ret;
}
