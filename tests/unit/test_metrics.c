/*
 * test_metrics - the HTTP request parser (a table of requests and the status
 * each earns), the text rendering (families, labels, histogram buckets) and
 * the stats summary of a rendered text.
 */
#include "lmtpfilter/config.h"
#include "lmtpfilter/metrics.h"
#include "lmtpfilter/metrics_http.h"
#include "lmtpfilter/stats.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

struct parse_case {
	const char *request;
	int status;
};

static const struct parse_case parse_cases[] = {
	{ "GET /metrics HTTP/1.0\r\n\r\n", 200 },
	{ "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n", 200 },
	{ "GET /metrics HTTP/1.0\n\n", 200 },
	{ "GET /metrics?name[]=x HTTP/1.0\r\n\r\n", 200 },
	{ "GET /metrics HTTP/1.0\r\n", 0 },
	{ "GET /metrics HTTP/1.0\r\nHost: x\r\n", 0 },
	{ "GET /met", 0 },
	{ "", 0 },
	{ "GET / HTTP/1.0\r\n\r\n", 404 },
	{ "GET /metrics/ HTTP/1.0\r\n\r\n", 404 },
	{ "GET /metricsx HTTP/1.0\r\n\r\n", 404 },
	{ "GET /Metrics HTTP/1.0\r\n\r\n", 404 },
	{ "POST /metrics HTTP/1.0\r\n\r\n", 405 },
	{ "HEAD /metrics HTTP/1.0\r\n\r\n", 405 },
	{ "DELETE / HTTP/1.1\r\n\r\n", 405 },
	{ "get /metrics HTTP/1.0\r\n\r\n", 405 },     /* methods are case-sensitive */
	{ "G3T /metrics HTTP/1.0\r\n\r\n", 400 },
	{ "GET /metrics HTTP/2.0\r\n\r\n", 400 },
	{ "GET /metrics\r\n\r\n", 400 },
	{ "GET  /metrics HTTP/1.0\r\n\r\n", 400 },
	{ "GET metrics HTTP/1.0\r\n\r\n", 400 },
	{ "GET /metrics HTTP/1.0 \r\n\r\n", 400 },
	{ "\r\n\r\n", 400 },
	{ "GARBAGEGARBAGEGARBAGE /metrics HTTP/1.0\r\n\r\n", 400 },
	{ "GET /metrics HTTP/1.0\r\nX: \001\r\n\r\n", 400 },
	{ "\026\003\001\002\000\001\000\001\374\003\003", 400 },  /* a TLS ClientHello */
};

static void test_parse_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		size_t len = strlen(c->request);
		if (c->request[0] == '\026')
			len = 11;
		int got = metrics_http_parse(c->request, len);
		if (got != c->status)
			g_test_message("row %zu \"%s\": got %d, want %d", i, g_strescape(c->request, NULL), got, c->status);
		g_assert_cmpint(got, ==, c->status);
	}
}

static void test_parse_nul_and_bound(void)
{
	static const char nul_request[] = "GET /metrics\0 HTTP/1.0\r\n\r\n";
	char big[METRICS_HTTP_REQUEST_MAX];

	g_assert_cmpint(metrics_http_parse(nul_request, sizeof(nul_request) - 1), ==, 400);
	/* A header block that never ends is refused once the bound is reached. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /metrics HTTP/1.0\r\nX: ", 26);
	g_assert_cmpint(metrics_http_parse(big, sizeof(big) - 1), ==, 0);
	g_assert_cmpint(metrics_http_parse(big, sizeof(big)), ==, 400);
}

/* config_two_domains - defaults off, example.com annotate, example.net
 * off, example.org observe. */
static struct config *config_two_domains(void)
{
	struct config *c = config_defaults();

	c->domain_count = 3;
	c->domains = g_new0(struct domain_policy, 3);
	c->domains[0] = (struct domain_policy){ .domain = g_strdup("example.com"), .mode = DOMAIN_MODE_ANNOTATE };
	c->domains[1] = (struct domain_policy){ .domain = g_strdup("example.net"), .mode = DOMAIN_MODE_OFF };
	c->domains[2] = (struct domain_policy){ .domain = g_strdup("example.org"), .mode = DOMAIN_MODE_OBSERVE };
	return c;
}

/* count_reply - metrics_recipient_reply for address's policy in c. */
static void count_reply(const struct config *c, const char *address, int code, enum disposition_reason reason)
{
	metrics_recipient_reply(config_policy_for(c, address), code, reason);
}

static void assert_has_line(const char *text, const char *line)
{
	char *needle = g_strdup_printf("\n%s\n", line);
	if (strstr(text, needle) == NULL)
		g_error("missing line \"%s\" in:\n%s", line, text);
	g_free(needle);
}

static void test_render(void)
{
	struct config *c = config_two_domains();
	GString *out = g_string_new(NULL);

	metrics_config(c);
	g_assert_cmpuint(c->domains[0].metrics_slot, !=, c->domains[1].metrics_slot);
	metrics_set_enabled(true);
	count_reply(c, "alice@EXAMPLE.com", 250, DISPOSITION_DELIVER);
	count_reply(c, "alice@example.com", 250, DISPOSITION_DMARC_REJECT);
	count_reply(c, "nobody@example.com", 550, DISPOSITION_DELIVER);
	count_reply(c, "spoofed@example.com", 451, DISPOSITION_SPF_FAIL);  /* not delivered: a defer */
	count_reply(c, "bob@example.net", 451, DISPOSITION_DELIVER);
	count_reply(c, "x@elsewhere.org", 250, DISPOSITION_DELIVER);
	count_reply(c, "x@elsewhere.org", 354, DISPOSITION_DELIVER);   /* no fate: not counted */
	count_reply(c, "carol@example.org", 250, DISPOSITION_FROM_INVALID);
	metrics_result(METRICS_DKIM, VERDICT_PASS);
	metrics_result(METRICS_DKIM, VERDICT_PASS);
	metrics_transaction(3);        /* 3 ms: above le=0.0025 */
	metrics_transaction(120000);   /* past the last bound */
	metrics_dns(METRICS_DNS_TIMEOUT, g_get_monotonic_time());
	metrics_dns_unsent_error();    /* held down: an error, no latency */
	metrics_downstream_failure("connect", "Connection refused");
	metrics_downstream_failure("DATA", "timeout");
	metrics_render(out);
	assert_has_line(out->str, "lmtpfilter_recipients_total{domain=\"example.com\",mode=\"annotate\",action=\"deliver\"} 1");
	assert_has_line(out->str, "lmtpfilter_recipients_total{domain=\"example.com\",mode=\"annotate\",action=\"quarantine\"} 1");
	assert_has_line(out->str, "lmtpfilter_recipients_total{domain=\"example.com\",mode=\"annotate\",action=\"reject\"} 1");
	assert_has_line(out->str, "lmtpfilter_recipients_total{domain=\"example.com\",mode=\"annotate\",action=\"defer\"} 1");
	assert_has_line(out->str, "lmtpfilter_recipients_total{domain=\"example.net\",mode=\"off\",action=\"defer\"} 1");
	assert_has_line(out->str, "lmtpfilter_recipients_total{domain=\"example.org\",mode=\"observe\",action=\"quarantine\"} 1");
	assert_has_line(out->str, "lmtpfilter_quarantine_total{domain=\"example.com\",mode=\"annotate\",reason=\"dmarc-reject\"} 1");
	assert_has_line(out->str, "lmtpfilter_quarantine_total{domain=\"example.com\",mode=\"annotate\",reason=\"spf-fail\"} 0");
	assert_has_line(out->str, "lmtpfilter_quarantine_total{domain=\"example.org\",mode=\"observe\",reason=\"from-invalid\"} 1");
	assert_has_line(out->str, "lmtpfilter_recipients_total{domain=\"default\",mode=\"off\",action=\"deliver\"} 1");
	assert_has_line(out->str, "lmtpfilter_results_total{method=\"dkim\",result=\"pass\"} 2");
	assert_has_line(out->str, "lmtpfilter_transaction_seconds_bucket{le=\"0.0025\"} 0");
	assert_has_line(out->str, "lmtpfilter_transaction_seconds_bucket{le=\"0.005\"} 1");
	assert_has_line(out->str, "lmtpfilter_transaction_seconds_bucket{le=\"60\"} 1");
	assert_has_line(out->str, "lmtpfilter_transaction_seconds_bucket{le=\"+Inf\"} 2");
	assert_has_line(out->str, "lmtpfilter_transaction_seconds_count 2");
	assert_has_line(out->str, "lmtpfilter_dns_queries_total{outcome=\"timeout\"} 1");
	assert_has_line(out->str, "lmtpfilter_dns_queries_total{outcome=\"error\"} 1");
	assert_has_line(out->str, "lmtpfilter_dns_query_seconds_count 1");
	assert_has_line(out->str, "lmtpfilter_downstream_failures_total{reason=\"connect\"} 1");
	assert_has_line(out->str, "lmtpfilter_downstream_failures_total{reason=\"timeout\"} 1");
	g_assert_null(strstr(out->str, "elsewhere"));
	g_assert_null(strstr(out->str, "EXAMPLE"));

	/* A reload keeps the slots of known names and adds new ones. */
	struct config *again = config_two_domains();
	metrics_config(again);
	g_assert_cmpuint(again->domains[0].metrics_slot, ==, c->domains[0].metrics_slot);
	config_unref(&again);
	config_unref(&c);
	g_string_free(out, TRUE);
}

static void test_stats_print(void)
{
	static const char text[] =
		"lmtpfilter_recipients_total{domain=\"example.com\",mode=\"annotate\",action=\"deliver\"} 7\n"
		"lmtpfilter_recipients_total{domain=\"example.com\",mode=\"annotate\",action=\"quarantine\"} 2\n"
		"lmtpfilter_recipients_total{domain=\"example.org\",mode=\"observe\",action=\"quarantine\"} 3\n"
		"lmtpfilter_quarantine_total{domain=\"example.com\",mode=\"annotate\",reason=\"dmarc-reject\"} 2\n"
		"lmtpfilter_quarantine_total{domain=\"default\",mode=\"annotate\",reason=\"spf-fail\"} 1\n"
		"lmtpfilter_quarantine_total{domain=\"example.org\",mode=\"observe\",reason=\"dmarc-reject\"} 3\n"
		"lmtpfilter_results_total{method=\"spf\",result=\"pass\"} 4\n"
		"lmtpfilter_dns_queries_total{outcome=\"timeout\"} 1\n"
		"lmtpfilter_dns_query_seconds_bucket{le=\"0.001\"} 0\n"
		"lmtpfilter_dns_query_seconds_bucket{le=\"0.01\"} 10\n"
		"lmtpfilter_dns_query_seconds_bucket{le=\"+Inf\"} 10\n"
		"lmtpfilter_sessions 2\n";
	char *buf = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&buf, &size);

	stats_print(text, out);
	fclose(out);
	g_assert_nonnull(strstr(buf, "example.com                      annotate          7          2                -         0         0"));
	g_assert_nonnull(strstr(buf, "example.org                      observe           0          -                3         0         0"));
	g_assert_nonnull(strstr(buf, "  dmarc-quarantine=0 dmarc-reject=2 spf-fail=1 from-invalid=0\n"));
	g_assert_nonnull(strstr(buf, "  would (observe): dmarc-quarantine=0 dmarc-reject=3 spf-fail=0 from-invalid=0\n"));
	g_assert_nonnull(strstr(buf, "spf    pass=4"));
	g_assert_nonnull(strstr(buf, "timeout=1"));
	g_assert_nonnull(strstr(buf, "dns latency: p50 5.5 ms, p99 9.9 ms"));
	g_assert_nonnull(strstr(buf, "running 2, refused 0"));
	free(buf);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/metrics/parse/table", test_parse_table);
	g_test_add_func("/metrics/parse/nul-and-bound", test_parse_nul_and_bound);
	g_test_add_func("/metrics/render", test_render);
	g_test_add_func("/metrics/stats-print", test_stats_print);
	return g_test_run();
}
