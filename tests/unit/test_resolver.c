/*
 * test_resolver - the shared resolver against a real unbound on loopback
 *
 * Starts `unbound -d` (unbound_fixture.c) with local-data for a .test zone, then
 * checks record types, NXDOMAIN vs NODATA, refused zones, a silent server
 * (the deadline must hold) and concurrent lookups from several threads.
 */
#include <errno.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "lmtpfilter/resolver.h"
#include "unbound_fixture.h"

#define TEST_TIMEOUT_MS 1500
#define TEST_THREADS 8
#define TEST_THREAD_LOOKUPS 40

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
	g_test_add_func("/resolver/bad-arguments", test_bad_arguments);
	ret = g_test_run();
	stop_unbound();
	return ret;
}
