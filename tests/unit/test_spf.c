/*
 * test_spf - the SPF module against an in-memory DNS zone
 *
 * Each case sets up a few records (zone_fixture), runs spf_check and compares the verdict:
 * the plain results, DNS failures, record syntax errors, the RFC 7208
 * lookup limits across includes, IPv4-mapped clients, the null sender
 * (HELO identity), redirect placement and exp= never being fetched,
 * macro expansions over 253 characters, names that are no DNS names,
 * null MX, DNS errors under "ptr", permerror texts and loopback clients
 * (no free pass). The cases whose defect only showed on real DNS also run
 * through the daemon's resolver against a real unbound (unbound_fixture).
 */
#include <glib.h>
#include <stdbool.h>
#include <string.h>

#include "lmtpfilter/spf.h"
#include "unbound_fixture.h"
#include "zone_fixture.h"

#define T_A TEST_ZONE_A
#define T_PTR TEST_ZONE_PTR
#define T_MX TEST_ZONE_MX
#define T_TXT TEST_ZONE_TXT
#define T_AAAA TEST_ZONE_AAAA
#define T_TEMPFAIL (-1)   /* zone entry: every lookup of the name fails */
#define RESOLVER_TIMEOUT_MS 2000
#define DNS_NAME_MAX 253          /* RFC 1035: longest name in text */
/* A local part of 60 letters: "%{l}" four times plus ".t.trunc.test" is
 * 256 characters, so the expansion loses its first label (RFC 7208 7.3). */
#define LONG_LOCAL "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define TRUNCATED_NAME LONG_LOCAL "." LONG_LOCAL "." LONG_LOCAL ".t.trunc.test"

struct zone_entry {
	const char *name;
	int type;
	const char *value;     /* A/AAAA address, TXT text, MX/PTR host name */
};

/* The zone every case uses. */
static const struct zone_entry spf_zone[] = {
	{ "ex.test", T_TXT, "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all" },
	{ "soft.test", T_TXT, "v=spf1 ~all" },
	{ "neutral.test", T_TXT, "v=spf1 ?all" },
	{ "nomatch.test", T_TXT, "v=spf1 ip4:203.0.113.1" },
	{ "nospf.test", T_A, "192.0.2.1" },
	{ "nospf.test", T_TXT, "some other text" },
	{ "tmp.test", T_TEMPFAIL, NULL },
	{ "inctmp.test", T_TXT, "v=spf1 include:tmp.test -all" },
	{ "bad.test", T_TXT, "v=spf1 foo:bar -all" },
	{ "badlabel.test", T_TXT, "v=spf1 a:museum -all" },
	{ "two.test", T_TXT, "v=spf1 -all" },
	{ "two.test", T_TXT, "v=spf1 +all" },
	/* Ten DNS terms before the match: allowed. Eleven: permerror. */
	{ "ten.test", T_TXT, "v=spf1 a:h1.test a:h2.test a:h3.test a:h4.test a:h5.test "
			     "a:h6.test a:h7.test a:h8.test a:h9.test mx:h10.test ip4:192.0.2.5 -all" },
	{ "eleven.test", T_TXT, "v=spf1 a:h1.test a:h2.test a:h3.test a:h4.test a:h5.test "
				"a:h6.test a:h7.test a:h8.test a:h9.test a:h10.test a:h11.test "
				"ip4:192.0.2.5 -all" },
	/* 2 includes + 5 + 5 terms inside them = 12: the count spans includes. */
	{ "split.test", T_TXT, "v=spf1 include:i1.test include:i2.test ip4:192.0.2.5 -all" },
	{ "i1.test", T_TXT, "v=spf1 a:h1.test a:h2.test a:h3.test a:h4.test a:h5.test" },
	{ "i2.test", T_TXT, "v=spf1 a:h6.test a:h7.test a:h8.test a:h9.test a:h10.test" },
	{ "h1.test", T_A, "203.0.113.1" }, { "h2.test", T_A, "203.0.113.2" },
	{ "h3.test", T_A, "203.0.113.3" }, { "h4.test", T_A, "203.0.113.4" },
	{ "h5.test", T_A, "203.0.113.5" }, { "h6.test", T_A, "203.0.113.6" },
	{ "h7.test", T_A, "203.0.113.7" }, { "h8.test", T_A, "203.0.113.8" },
	{ "h9.test", T_A, "203.0.113.9" }, { "h10.test", T_MX, "h1.test" },
	{ "h10.test", T_A, "203.0.113.10" }, { "h11.test", T_A, "203.0.113.11" },
	/* Void lookups: two allowed, the third is permerror. */
	{ "void2.test", T_TXT, "v=spf1 a:v1.test a:v2.test ip4:192.0.2.5 -all" },
	{ "void3.test", T_TXT, "v=spf1 a:v1.test a:v2.test mx:v3.test ip4:192.0.2.5 -all" },
	{ "mail.helo.test", T_TXT, "v=spf1 ip4:192.0.2.25 -all" },
	{ "redir.test", T_TXT, "v=spf1 redirect=two-all.test ip4:192.0.2.5" },
	{ "two-all.test", T_TXT, "v=spf1 -all" },
	{ "exp.test", T_TXT, "v=spf1 -all exp=explain.test" },
	{ "explain.test", T_TXT, "Go away %{i}" },
	{ "trunc.test", T_TXT, "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.t.trunc.test -all" },
	{ TRUNCATED_NAME, T_A, "127.0.0.2" },
	/* A label of 64 octets: no DNS name, never asked. */
	{ "longlabel.test", T_TXT, "v=spf1 a:a123456789012345678901234567890123456789012345678901234567890123.test ?all" },
	{ "nullmx.test", T_TXT, "v=spf1 mx -all" },
	{ "nullmx.test", T_MX, "." },
	{ "ptrerr.test", T_TXT, "v=spf1 ptr ?all" },
	{ "5.2.0.192.in-addr.arpa", T_PTR, "broken.test" },
	{ "5.2.0.192.in-addr.arpa", T_PTR, "mail.ptrerr.test" },
	{ "broken.test", T_TEMPFAIL, NULL },
	{ "mail.ptrerr.test", T_A, "192.0.2.5" },
	{ "6.2.0.192.in-addr.arpa", T_TEMPFAIL, NULL },
	{ "lo.test", T_TXT, "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all" },
	/* Valid syntax, but a domain-spec over libspf2's 255-character limit. */
	{ "bigterm.test", T_TXT, "v=spf1 a:" LONG_LOCAL "." LONG_LOCAL "." LONG_LOCAL "." LONG_LOCAL "."
				 LONG_LOCAL ".test -all" },
	{ NULL, 0, NULL },
};

struct fixture {
	struct test_zone *zone;
	struct spf_checker *checker;
};

static void fixture_setup(struct fixture *f, gconstpointer data)
{
	struct dns_source dns;
	char *error = NULL;

	(void)data;
	f->zone = test_zone_new();
	for (const struct zone_entry *e = spf_zone; e->name != NULL; e++) {
		if (e->type == T_TEMPFAIL)
			test_zone_add_tempfail(f->zone, e->name);
		else
			test_zone_add(f->zone, e->name, e->type, e->value);
	}
	test_zone_source(f->zone, &dns);
	g_assert_cmpint(spf_checker_new(&dns, "mx.receiver.test", &f->checker, &error), ==, 0);
	g_assert_null(error);
}

static void fixture_teardown(struct fixture *f, gconstpointer data)
{
	(void)data;
	spf_checker_free(&f->checker);
	g_assert_null(f->checker);
	test_zone_free(&f->zone);
}

static enum verdict check(struct fixture *f, const char *ip, const char *mail_from)
{
	struct spf_outcome mf, helo;

	g_assert_cmpint(spf_check(f->checker, ip, "mail.client.test", mail_from, &mf, &helo), ==, 0);
	g_assert_cmpstr(mf.identity, ==, "mailfrom");
	g_assert_cmpstr(mf.sender, ==, mail_from);
	return mf.result;
}

static bool was_asked(const struct fixture *f, const char *name)
{
	return test_zone_was_asked(f->zone, name);
}

static void test_results(struct fixture *f, gconstpointer data)
{
	(void)data;
	g_assert_cmpint(check(f, "192.0.2.5", "user@ex.test"), ==, VERDICT_PASS);
	g_assert_cmpint(check(f, "2001:db8::5", "user@ex.test"), ==, VERDICT_PASS);
	g_assert_cmpint(check(f, "198.51.100.1", "user@ex.test"), ==, VERDICT_FAIL);
	g_assert_cmpint(check(f, "198.51.100.1", "user@soft.test"), ==, VERDICT_SOFTFAIL);
	g_assert_cmpint(check(f, "198.51.100.1", "user@neutral.test"), ==, VERDICT_NEUTRAL);
	/* No term matched and no all: neutral. */
	g_assert_cmpint(check(f, "198.51.100.1", "user@nomatch.test"), ==, VERDICT_NEUTRAL);
	g_assert_cmpint(check(f, "198.51.100.1", "user@nospf.test"), ==, VERDICT_NONE);
	g_assert_cmpint(check(f, "198.51.100.1", "user@nowhere.test"), ==, VERDICT_NONE);
}

static void test_outcome_fields(struct fixture *f, gconstpointer data)
{
	struct spf_outcome mf, helo;

	(void)data;
	g_assert_cmpint(spf_check(f->checker, "198.51.100.1", "mail.client.test", "User@Ex.test", &mf, &helo), ==, 0);
	g_assert_cmpint(mf.result, ==, VERDICT_FAIL);
	g_assert_cmpstr(mf.domain, ==, "Ex.test");
	g_assert_cmpstr(mf.sender, ==, "User@Ex.test");
}

static void test_temperror(struct fixture *f, gconstpointer data)
{
	(void)data;
	g_assert_cmpint(check(f, "192.0.2.5", "user@tmp.test"), ==, VERDICT_TEMPERROR);
	g_assert_cmpint(check(f, "192.0.2.5", "user@inctmp.test"), ==, VERDICT_TEMPERROR);
}

static void test_permerror_syntax(struct fixture *f, gconstpointer data)
{
	(void)data;
	g_assert_cmpint(check(f, "192.0.2.5", "user@bad.test"), ==, VERDICT_PERMERROR);
	g_assert_cmpint(check(f, "192.0.2.5", "user@badlabel.test"), ==, VERDICT_PERMERROR);
	g_assert_cmpint(check(f, "192.0.2.5", "user@two.test"), ==, VERDICT_PERMERROR);
}

static void test_record_check(void)
{
	static const char *const good[] = {
		"v=spf1", "v=spf1 -all", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all",
		"v=spf1 a mx/24//64 ptr:ex.test include:_spf.ex.test ?all",
		"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", "v=spf1 redirect=_spf.ex.test",
		"v=spf1 ip4:0.0.0.0/0 -all", "v=spf1 foo.bar=%{d} -all", "V=SPF1 A:EX.TEST -ALL",
	};
	static const char *const bad[] = {
		"v=spf1 foo:bar", "v=spf1 a:museum", "v=spf1 a:ex.test/33", "v=spf1 ip4:192.0.2.256",
		"v=spf1 ip4:192.0.2.1/033", "v=spf1 exists:%{q}.ex.test", "v=spf1 a:%{d.ex.test",
		"v=spf1 redirect=a.test redirect=b.test", "v=spf1 exp=a.test exp=b.test",
		"v=spf1 a:caf\xc3\xa9.test", "v=spf1 -redirect=ex.test", "v=spf1 1foo=bar",
		"v=spf1 include", "v=spf1 ip6:2001:db8::/129",
	};
	char *error;

	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		error = NULL;
		if (spf_record_check(good[i], &error) != 0)
			g_error("rejected \"%s\": %s", good[i], error);
		g_assert_null(error);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		error = NULL;
		if (spf_record_check(bad[i], &error) == 0)
			g_error("accepted \"%s\"", bad[i]);
		g_assert_nonnull(error);
		g_free(error);
	}
}

static void test_lookup_limit(struct fixture *f, gconstpointer data)
{
	(void)data;
	g_assert_cmpint(check(f, "192.0.2.5", "user@ten.test"), ==, VERDICT_PASS);
	g_assert_cmpint(check(f, "192.0.2.5", "user@eleven.test"), ==, VERDICT_PERMERROR);
	g_assert_cmpint(check(f, "192.0.2.5", "user@split.test"), ==, VERDICT_PERMERROR);
}

static void test_void_limit(struct fixture *f, gconstpointer data)
{
	(void)data;
	g_assert_cmpint(check(f, "192.0.2.5", "user@void2.test"), ==, VERDICT_PASS);
	g_assert_cmpint(check(f, "192.0.2.5", "user@void3.test"), ==, VERDICT_PERMERROR);
}

static void test_ipv4_mapped(struct fixture *f, gconstpointer data)
{
	(void)data;
	g_assert_cmpint(check(f, "::ffff:192.0.2.5", "user@ex.test"), ==, VERDICT_PASS);
	g_assert_cmpint(check(f, "::FFFF:198.51.100.1", "user@ex.test"), ==, VERDICT_FAIL);
}

static void test_null_sender(struct fixture *f, gconstpointer data)
{
	struct spf_outcome mf, helo;

	(void)data;
	g_assert_cmpint(spf_check(f->checker, "192.0.2.25", "mail.helo.test", "", &mf, &helo), ==, 0);
	g_assert_cmpint(mf.result, ==, VERDICT_PASS);
	g_assert_cmpstr(mf.sender, ==, "postmaster@mail.helo.test");
	g_assert_cmpstr(mf.domain, ==, "mail.helo.test");
	g_assert_cmpint(helo.result, ==, VERDICT_PASS);
	g_assert_cmpstr(helo.identity, ==, "helo");

	g_assert_cmpint(spf_check(f->checker, "198.51.100.1", "mail.helo.test", NULL, &mf, &helo), ==, 0);
	g_assert_cmpint(mf.result, ==, VERDICT_FAIL);
	g_assert_cmpint(helo.result, ==, VERDICT_FAIL);

	/* A HELO that is no domain name has no policy to check. */
	g_assert_cmpint(spf_check(f->checker, "192.0.2.25", "[192.0.2.25]", "", &mf, &helo), ==, 0);
	g_assert_cmpint(mf.result, ==, VERDICT_NONE);
}

static void test_redirect_last(struct fixture *f, gconstpointer data)
{
	(void)data;
	/* redirect= written first still applies only after ip4 failed to match. */
	g_assert_cmpint(check(f, "192.0.2.5", "user@redir.test"), ==, VERDICT_PASS);
	g_assert_cmpint(check(f, "198.51.100.1", "user@redir.test"), ==, VERDICT_FAIL);
}

static void test_no_exp_lookup(struct fixture *f, gconstpointer data)
{
	(void)data;
	g_assert_cmpint(check(f, "198.51.100.1", "user@exp.test"), ==, VERDICT_FAIL);
	g_assert_true(was_asked(f, "exp.test"));
	g_assert_false(was_asked(f, "explain.test"));
}

static void test_macro_truncated_from_the_left(struct fixture *f, gconstpointer data)
{
	(void)data;
	g_assert_cmpint(check(f, "192.0.2.5", LONG_LOCAL "@trunc.test"), ==, VERDICT_PASS);
	g_assert_true(was_asked(f, TRUNCATED_NAME));
	for (guint i = 0; i < test_zone_asked_count(f->zone); i++)
		g_assert_cmpuint(strlen(strchr(test_zone_asked(f->zone, i), ' ') + 1), <=, DNS_NAME_MAX);
}

static void test_invalid_names_not_asked(struct fixture *f, gconstpointer data)
{
	(void)data;
	/* RFC 7208 4.3: the checked domain itself; 4.8: a term's target. */
	g_assert_cmpint(check(f, "192.0.2.5", "user@a..ex.test"), ==, VERDICT_NONE);
	g_assert_cmpint(check(f, "192.0.2.5", "user@longlabel.test"), ==, VERDICT_NEUTRAL);
	g_assert_false(was_asked(f, "a..ex.test"));
	g_assert_false(was_asked(f, "a123456789012345678901234567890123456789012345678901234567890123.test"));
}

static void test_null_mx_is_no_match(struct fixture *f, gconstpointer data)
{
	(void)data;
	g_assert_cmpint(check(f, "192.0.2.5", "user@nullmx.test"), ==, VERDICT_FAIL);
	/* The root is no host: no address lookup for it. */
	for (guint i = 0; i < test_zone_asked_count(f->zone); i++) {
		const char *q = strchr(test_zone_asked(f->zone, i), ' ') + 1;
		g_assert_cmpstr(q, !=, "");
		g_assert_cmpstr(q, !=, ".");
	}
}

static void test_ptr_dns_errors(struct fixture *f, gconstpointer data)
{
	(void)data;
	/* RFC 7208 5.5: a name whose address lookup fails is skipped... */
	g_assert_cmpint(check(f, "192.0.2.5", "user@ptrerr.test"), ==, VERDICT_PASS);
	/* ...and a failed PTR lookup is no match. */
	g_assert_cmpint(check(f, "192.0.2.6", "user@ptrerr.test"), ==, VERDICT_NEUTRAL);
}

static void test_permerror_text(struct fixture *f, gconstpointer data)
{
	static const char *const domains[] = { "two.test", "bigterm.test", "bad.test" };
	struct spf_outcome mf, helo;

	(void)data;
	/* libspf2 says "No errors" for a record it could not compile. */
	for (size_t i = 0; i < G_N_ELEMENTS(domains); i++) {
		char *from = g_strconcat("user@", domains[i], NULL);
		g_assert_cmpint(spf_check(f->checker, "192.0.2.5", "mail.client.test", from, &mf, &helo), ==, 0);
		g_assert_cmpint(mf.result, ==, VERDICT_PERMERROR);
		g_assert_cmpstr(mf.reason, !=, "");
		if (strstr(mf.reason, "No error") != NULL)
			g_error("%s: permerror reason \"%s\"", from, mf.reason);
		g_free(from);
	}
}

static void test_loopback_client_is_evaluated(struct fixture *f, gconstpointer data)
{
	(void)data;
	/* libspf2 alone says "pass (localhost is always allowed)". */
	g_assert_cmpint(check(f, "127.0.0.1", "user@ex.test"), ==, VERDICT_FAIL);
	g_assert_cmpint(check(f, "127.1.2.3", "user@ex.test"), ==, VERDICT_FAIL);
	g_assert_cmpint(check(f, "::1", "user@ex.test"), ==, VERDICT_FAIL);
	g_assert_cmpint(check(f, "::ffff:127.0.0.1", "user@ex.test"), ==, VERDICT_FAIL);
	g_assert_true(was_asked(f, "ex.test"));
	/* A record that lists loopback passes it, like any other address. */
	g_assert_cmpint(check(f, "127.0.0.1", "user@lo.test"), ==, VERDICT_PASS);
	g_assert_cmpint(check(f, "::1", "user@lo.test"), ==, VERDICT_PASS);
}

/* ---- the same cases through the daemon's resolver and a real unbound ---- */

static struct test_unbound real_dns;

static const char real_zone[] =
	"  local-data: 'trunc.test. 300 IN TXT \"v=spf1 exists:%{l}.%{l}.%{l}.%{l}.t.trunc.test -all\"'\n"
	"  local-data: '" TRUNCATED_NAME ". 300 IN A 127.0.0.2'\n"
	"  local-data: 'nullmx.test. 300 IN TXT \"v=spf1 mx -all\"'\n"
	"  local-data: 'nullmx.test. 300 IN MX 0 .'\n"
	"  local-data: 'longlabel.test. 300 IN TXT \"v=spf1 "
	"a:a123456789012345678901234567890123456789012345678901234567890123.test ?all\"'\n"
	"  local-data: 'ex.test. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"'\n"
	/* Two strings (255 at most each), glued together by the receiver. */
	"  local-data: 'bigterm.test. 300 IN TXT \"v=spf1 a:" LONG_LOCAL "." LONG_LOCAL "." LONG_LOCAL ".\" \""
	LONG_LOCAL "." LONG_LOCAL ".test -all\"'\n";

struct real_fixture {
	struct resolver *resolver;
	struct spf_checker *checker;
};

static void real_setup(struct real_fixture *f, gconstpointer data)
{
	char *servers[] = { real_dns.server };
	struct dns_source dns;
	char *error = NULL;

	(void)data;
	g_assert_cmpint(resolver_new(servers, 1, RESOLVER_TIMEOUT_MS, &f->resolver, &error), ==, 0);
	dns_source_for_resolver(f->resolver, &dns);
	g_assert_cmpint(spf_checker_new(&dns, "mx.receiver.test", &f->checker, &error), ==, 0);
	g_assert_null(error);
}

static void real_teardown(struct real_fixture *f, gconstpointer data)
{
	(void)data;
	spf_checker_free(&f->checker);
	resolver_free(&f->resolver);
}

static struct spf_outcome real_check(struct real_fixture *f, const char *ip, const char *mail_from)
{
	struct spf_outcome mf, helo;

	g_assert_cmpint(spf_check(f->checker, ip, "mail.client.test", mail_from, &mf, &helo), ==, 0);
	return mf;
}

static void test_real_dns(struct real_fixture *f, gconstpointer data)
{
	(void)data;
	/* Each was temperror: the resolver cannot ask a name over 253
	 * characters, one with a 64-octet label, or the root's address. */
	g_assert_cmpstr(verdict_name(real_check(f, "192.0.2.5", LONG_LOCAL "@trunc.test").result), ==, "pass");
	g_assert_cmpstr(verdict_name(real_check(f, "192.0.2.5", "user@longlabel.test").result), ==, "neutral");
	g_assert_cmpstr(verdict_name(real_check(f, "192.0.2.5", "user@a..ex.test").result), ==, "none");
	g_assert_cmpstr(verdict_name(real_check(f, "192.0.2.5", "user@nullmx.test").result), ==, "fail");
	struct spf_outcome big = real_check(f, "192.0.2.5", "user@bigterm.test");
	g_assert_cmpstr(verdict_name(big.result), ==, "permerror");
	g_assert_null(strstr(big.reason, "No error"));
	g_assert_cmpstr(verdict_name(real_check(f, "127.0.0.1", "user@ex.test").result), ==, "fail");
}

#define ADD(path, fn) g_test_add(path, struct fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/spf/results", test_results);
	ADD("/spf/outcome-fields", test_outcome_fields);
	ADD("/spf/temperror", test_temperror);
	ADD("/spf/permerror-syntax", test_permerror_syntax);
	g_test_add_func("/spf/record-check", test_record_check);
	ADD("/spf/lookup-limit", test_lookup_limit);
	ADD("/spf/void-limit", test_void_limit);
	ADD("/spf/ipv4-mapped", test_ipv4_mapped);
	ADD("/spf/null-sender", test_null_sender);
	ADD("/spf/redirect-last", test_redirect_last);
	ADD("/spf/no-exp-lookup", test_no_exp_lookup);
	ADD("/spf/macro-truncated-from-the-left", test_macro_truncated_from_the_left);
	ADD("/spf/invalid-names-not-asked", test_invalid_names_not_asked);
	ADD("/spf/null-mx-is-no-match", test_null_mx_is_no_match);
	ADD("/spf/ptr-dns-errors", test_ptr_dns_errors);
	ADD("/spf/permerror-text", test_permerror_text);
	ADD("/spf/loopback-client-is-evaluated", test_loopback_client_is_evaluated);
	g_test_add("/spf/real-dns", struct real_fixture, NULL, real_setup, test_real_dns, real_teardown);
	test_unbound_start(&real_dns, real_zone);
	int rc = g_test_run();
	test_unbound_stop(&real_dns);
	return rc;
}
