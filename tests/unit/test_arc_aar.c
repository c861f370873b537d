/* What an ARC-Authentication-Results value vouches for: a table of AAR
 * values (comments, quoting, folding, versions, odd spacing) against a
 * From domain, with relaxed alignment by a fixed organisational domain. */
#include "lmtpfilter/arc_aar.h"

#include <glib.h>
#include <string.h>

/* org - the last two labels (the table's domains need no suffix list). */
static const char *org(const char *d)
{
	const char *last = strrchr(d, '.');
	if (last == NULL)
		return d;
	for (const char *p = last - 1; p > d; p--)
		if (*p == '.')
			return p + 1;
	return d;
}

static const char *last_method;

static bool aligned(void *ctx, const char *method, const char *a, const char *b)
{
	(*(int *)ctx)++;
	last_method = method;
	return strcmp(org(a), org(b)) == 0;
}

/* The callback learns which identifier it judges, so that aspf=s and
 * adkim=s of the From domain can be applied to each. */
static void test_method_passed(void)
{
	char what[ARC_AAR_WHAT_MAX];
	int calls = 0;
	const char *spf = "i=1; l.example.net; spf=pass smtp.mailfrom=a@mail.example.com";
	const char *dkim = "i=1; l.example.net; dkim=pass header.d=mail.example.com";

	g_assert_true(arc_aar_vouches(spf, strlen(spf), "example.com", aligned, &calls, what, sizeof(what)));
	g_assert_cmpstr(last_method, ==, "spf");
	g_assert_true(arc_aar_vouches(dkim, strlen(dkim), "example.com", aligned, &calls, what, sizeof(what)));
	g_assert_cmpstr(last_method, ==, "dkim");
}

static const struct {
	const char *aar;
	const char *from;
	const char *what;       /* NULL: vouches for nothing */
} cases[] = {
	{ "i=1; lists.example.net; dmarc=pass header.from=example.com", "example.com", "dmarc=pass" },
	/* A DMARC pass that names no author vouches for nobody. */
	{ "i=1; lists.example.net; dmarc=pass", "example.com", NULL },
	{ "i=2; lists.example.net; dmarc=pass header.from=other.org", "example.com", NULL },
	{ "i=1; lists.example.net; dmarc=fail header.from=example.com", "example.com", NULL },
	{ "i=1; lists.example.net;\r\n\tspf=pass smtp.mailfrom=bounce@mail.example.com;\r\n\tdkim=fail header.d=example.com",
	  "example.com", "spf=pass smtp.mailfrom=bounce@mail.example.com" },
	{ "i=1; lists.example.net; spf=pass smtp.mailfrom=bounce@elsewhere.org", "example.com", NULL },
	{ "i=1; lists.example.net; spf=pass smtp.helo=mail.example.com", "example.com", NULL },
	{ "i=1; lists.example.net 1; dkim/1=pass (good sig) header.d=Example.COM header.s=sel", "example.com",
	  "dkim=pass header.d=Example.COM" },
	{ "i=1; lists.example.net; dkim=pass header.i=@sub.example.com", "example.com", "dkim=pass header.i=@sub.example.com" },
	{ "i=1; lists.example.net; dkim=pass header.d=example.net", "example.com", NULL },
	{ "i=1; lists.example.net; dkim = pass\r\n header.d = \"example.com\"", "example.com",
	  "dkim=pass header.d=example.com" },
	/* a result inside a comment or a quoted string is no result */
	{ "i=1; lists.example.net; (dmarc=pass) dmarc=fail", "example.com", NULL },
	{ "i=1; lists.example.net; dmarc=fail (nested (comment; dmarc=pass)) header.from=example.com", "example.com",
	  NULL },
	{ "i=1; lists.example.net; dkim=fail reason=\"x; dmarc=pass\"", "example.com", NULL },
	{ "i=1; \"odd;id\"; dmarc=pass header.from=example.com", "example.com", "dmarc=pass" },
	{ "i=1; lists.example.net; none", "example.com", NULL },
	{ "i=1; lists.example.net; dmarc=passed", "example.com", NULL },
	{ "i=1", "example.com", NULL },
	{ "", "example.com", NULL },
	{ "i=1; lists.example.net; dmarc=pass", "", NULL },
	{ "i=1; lists.example.net; spf=fail smtp.mailfrom=a@example.com; dmarc=pass header.from=example.com",
	  "example.com", "dmarc=pass" },
	{ "i=1; lists.example.net; dmarc=pass header.from=example.com (unclosed", "example.com", "dmarc=pass" },
	{ "i=1; lists.example.net; dkim=pass header.d=", "example.com", NULL },
	{ "i=1; lists.example.net; dkim=pass header.d=@", "example.com", NULL },
};

static void test_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char what[ARC_AAR_WHAT_MAX];
		int calls = 0;
		bool got = arc_aar_vouches(cases[i].aar, strlen(cases[i].aar), cases[i].from, aligned, &calls, what,
					   sizeof(what));
		if (got != (cases[i].what != NULL) || (got && strcmp(what, cases[i].what) != 0))
			g_test_fail_printf("%s: got %s \"%s\", expected %s", cases[i].aar, got ? "true" : "false", what,
					   cases[i].what != NULL ? cases[i].what : "false");
	}
}

/* Over ARC_AAR_VALUE_MAX: not read at all. */
static void test_too_long(void)
{
	GString *s = g_string_new("i=1; lists.example.net; dmarc=pass;");
	char what[ARC_AAR_WHAT_MAX];
	int calls = 0;

	while (s->len <= ARC_AAR_VALUE_MAX)
		g_string_append(s, " x=y");
	g_assert_false(arc_aar_vouches(s->str, s->len, "example.com", aligned, &calls, what, sizeof(what)));
	g_assert_cmpstr(what, ==, "");
	g_string_free(s, TRUE);
}

/* Many results: only the first ARC_AAR_RESULTS_MAX are looked at. */
static void test_many_results(void)
{
	GString *s = g_string_new("i=1; lists.example.net");
	char what[ARC_AAR_WHAT_MAX];
	int calls = 0;

	for (int i = 0; i < ARC_AAR_RESULTS_MAX * 2; i++)
		g_string_append(s, "; spf=pass smtp.mailfrom=a@other.org");
	g_string_append(s, "; dmarc=pass");
	g_assert_false(arc_aar_vouches(s->str, s->len, "example.com", aligned, &calls, what, sizeof(what)));
	g_assert_cmpint(calls, ==, ARC_AAR_RESULTS_MAX);
	g_string_free(s, TRUE);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/arc_aar/table", test_table);
	g_test_add_func("/arc_aar/method-passed", test_method_passed);
	g_test_add_func("/arc_aar/too-long", test_too_long);
	g_test_add_func("/arc_aar/many-results", test_many_results);
	return g_test_run();
}
