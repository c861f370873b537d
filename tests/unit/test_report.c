/*
 * test_report - the report command's pure parts: the rua= tag of a DMARC
 * record, mailto: URIs, and which addresses need the external-destination
 * verification (the whole command runs in tests/integration/test_report.py).
 */
#include "lmtpfilter/report.h"

#include <glib.h>
#include <string.h>

struct rua_case {
	const char *record;
	int rc;
	const char *uris;       /* joined with '|' */
};

static const struct rua_case rua_cases[] = {
	{ "v=DMARC1; p=none; rua=mailto:a@example.com", 0, "mailto:a@example.com" },
	{ "v=DMARC1;p=reject;rua=mailto:a@example.com,mailto:b@example.net!10m", 0,
	  "mailto:a@example.com|mailto:b@example.net!10m" },
	{ "v = DMARC1 ; rua = mailto:a@x.example , https://r.example/x ; ruf=mailto:f@x.example", 0,
	  "mailto:a@x.example|https://r.example/x" },
	{ "v=DMARC1; p=none", 0, "" },
	{ "v=DMARC1; p=none; rua=", 0, "" },
	{ "v=DMARC1; RUA=mailto:up@example.com;", 0, "mailto:up@example.com" },
	{ "v=DMARC1; rua=mailto:first@example.com; rua=mailto:second@example.com", 0, "mailto:first@example.com" },
	{ "v=spf1 -all", -1, "" },
	{ "p=none; v=DMARC1; rua=mailto:a@example.com", -1, "" },
	{ "v=dmarc1; rua=mailto:a@example.com", -1, "" },
	{ "", -1, "" },
	{ "v=DMARC1", 0, "" },
};

static void test_rua_parse(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(rua_cases); i++) {
		GPtrArray *uris = NULL;
		int rc = report_rua_parse(rua_cases[i].record, &uris);
		g_ptr_array_add(uris, NULL);
		char *joined = g_strjoinv("|", (char **)uris->pdata);
		if (rc != rua_cases[i].rc || strcmp(joined, rua_cases[i].uris) != 0)
			g_test_fail_printf("\"%s\": got %d \"%s\", expected %d \"%s\"", rua_cases[i].record,
					   rc, joined, rua_cases[i].rc, rua_cases[i].uris);
		g_free(joined);
		g_ptr_array_unref(uris);
	}
}

static void test_mailto(void)
{
	static const char *const cases[][2] = {
		{ "mailto:dmarc@example.com", "dmarc@example.com" },
		{ "MAILTO:dmarc@example.com", "dmarc@example.com" },
		{ "mailto:dmarc@example.com!10m", "dmarc@example.com" },
		{ "mailto:dmarc@example.com?subject=x", "dmarc@example.com" },
		{ "mailto:d%2Bm@example.com", "d+m@example.com" },
		{ "https://example.com/report", NULL },
		{ "mailto:", NULL },
		{ "mailto:nobody", NULL },
		{ "mailto:@example.com", NULL },
		{ "mailto:a@", NULL },
		{ "mailto:a@b@example.com", NULL },
		{ "mailto:a%2C b@example.com", NULL },
		{ "mailto:a@example.com%0Abcc:x@evil.example", NULL },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *got = report_mailto(cases[i][0]);
		if (g_strcmp0(got, cases[i][1]) != 0)
			g_test_fail_printf("%s: got %s, expected %s", cases[i][0], got ? got : "NULL",
					   cases[i][1] ? cases[i][1] : "NULL");
		g_free(got);
	}
}

static void test_is_external(void)
{
	g_assert_false(report_is_external("a@example.com", "example.com"));
	g_assert_false(report_is_external("a@EXAMPLE.com", "example.com"));
	g_assert_false(report_is_external("a@reports.example.com", "example.com"));
	g_assert_true(report_is_external("a@badexample.com", "example.com"));
	g_assert_true(report_is_external("a@example.net", "example.com"));
	g_assert_true(report_is_external("a@com", "example.com"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/report/rua-parse", test_rua_parse);
	g_test_add_func("/report/mailto", test_mailto);
	g_test_add_func("/report/is-external", test_is_external);
	return g_test_run();
}
