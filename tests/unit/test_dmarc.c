/*
 * test_dmarc - DMARC evaluation against an in-memory DNS source
 *
 * Each case sets the _dmarc TXT records it needs in a small table, served
 * by the in-memory zone (zone_fixture), and
 * checks result, disposition, alignment, header.from and the names looked
 * up. Uses the real Public Suffix List (LMTPFILTER_PSL). Broken From
 * fields (repeated, several domains, oversized, nested groups on a
 * session-sized stack) must not escape the policy of a domain they name.
 * Every case runs twice: /dmarc/treewalk/... (RFC 9989 tree walk) and
 * /dmarc/psl/... (public suffix list); where the names looked up differ,
 * both lists are given.
 */
#include <glib.h>
#include <pthread.h>
#include <string.h>

#include "lmtpfilter/dmarc.h"
#include "zone_fixture.h"

#define FAKE_TXT_MAX 4
#define FAKE_ZONE_MAX 8
#define FAKE_TEMPFAIL "<tempfail>"
#define THREADS 8
#define THREAD_CHECKS 200
#define PCT_DRAWS 200
#define NO_DKIM { VERDICT_NONE }, { NULL }
#define A50 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

struct fake_rr {
	const char *name;
	const char *txt[FAKE_TXT_MAX];  /* FAKE_TEMPFAIL as txt[0]: the lookup fails */
};

static struct test_zone *test_zone;
static struct dmarc_checker *checker;
static struct dmarc_checker *checkers[2];       /* by enum dmarc_discovery_mode */
static enum dmarc_discovery_mode mode;

/* use_zone - the test zone holds Z's records (a FAKE_TEMPFAIL name fails
 * every lookup, a name without text exists without records); the log of
 * names asked starts empty. */
static void use_zone(const struct fake_rr *z)
{
	test_zone_clear(test_zone);
	for (const struct fake_rr *rr = z; rr->name != NULL; rr++) {
		if (g_strcmp0(rr->txt[0], FAKE_TEMPFAIL) == 0)
			test_zone_add_tempfail(test_zone, rr->name);
		else if (rr->txt[0] == NULL)
			test_zone_add_nodata(test_zone, rr->name);
		for (size_t i = 0; i < FAKE_TXT_MAX && rr->txt[i] != NULL &&
		     g_strcmp0(rr->txt[0], FAKE_TEMPFAIL) != 0; i++)
			test_zone_add(test_zone, rr->name, TEST_ZONE_TXT, rr->txt[i]);
	}
}

/* queried - the I-th query: "NAME" for TXT, "A NAME" for an existence test. */
static const char *queried(guint i)
{
	const char *q = test_zone_asked(test_zone, i);

	return g_str_has_prefix(q, "TXT ") ? q + strlen("TXT ") : q;
}

/* A message: one From value, SPF identity, up to two DKIM results. */
struct msg {
	const char *from;
	enum verdict spf;
	const char *spf_domain;
	enum verdict dkim[2];
	const char *dkim_domain[2];
};

static void check(const struct msg *m, struct dmarc_outcome *out)
{
	char *from[1] = { (char *)m->from };
	char *dkim_domains[2] = { (char *)m->dkim_domain[0], (char *)m->dkim_domain[1] };
	struct dmarc_input in = {
		.from_values = from, .from_count = m->from != NULL ? 1 : 0,
		.spf_result = m->spf, .spf_domain = m->spf_domain,
		.dkim_count = m->dkim_domain[1] != NULL ? 2 : m->dkim_domain[0] != NULL ? 1 : 0,
		.dkim_results = m->dkim, .dkim_domains = dkim_domains,
	};

	g_assert_cmpint(dmarc_check(checker, &in, out), ==, 0);
}

static void assert_outcome(const struct dmarc_outcome *out, enum verdict result,
			   const char *dis, const char *header_from)
{
	if (out->result != result)
		g_error("result %s (%s), expected %s", verdict_name(out->result), out->reason,
			verdict_name(result));
	g_assert_cmpstr(out->disposition, ==, dis);
	g_assert_cmpstr(out->header_from, ==, header_from);
}

static void assert_queried(const char *const *names)
{
	size_t n = 0;

	for (; names[n] != NULL; n++) {
		g_assert_cmpuint(n, <, test_zone_asked_count(test_zone));
		g_assert_cmpstr(queried(n), ==, names[n]);
	}
	g_assert_cmpuint(test_zone_asked_count(test_zone), ==, n);
}

/* assert_queried_by_mode - the names looked up under psl, or under the walk. */
static void assert_queried_by_mode(const char *const *psl, const char *const *walk)
{
	assert_queried(mode == DMARC_DISCOVERY_PSL ? psl : walk);
}

#define QUERIED(...) ((const char *[]){ __VA_ARGS__, NULL })

static void assert_comment(const struct dmarc_outcome *out, const char *expected)
{
	char comment[DMARC_REASON_MAX];

	dmarc_outcome_comment(out, comment, sizeof(comment));
	if (strcmp(comment, expected) != 0)
		g_error("comment \"%s\" (%s), expected \"%s\"", comment, out->reason, expected);
}

/* A spoof from an outside server: its own envelope passes SPF, no DKIM. */
static void check_spoof(char *const *from, size_t count, struct dmarc_outcome *out)
{
	struct dmarc_input in = { .from_values = from, .from_count = count,
				  .spf_result = VERDICT_PASS, .spf_domain = "attacker.example" };

	g_assert_cmpint(dmarc_check(checker, &in, out), ==, 0);
}

/* "g:g:...g:" depth times, inner, then ";" depth times (g_free). */
static char *nested_groups(size_t depth, const char *inner)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < depth; i++)
		g_string_append(s, "g:");
	g_string_append(s, inner);
	for (size_t i = 0; i < depth; i++)
		g_string_append_c(s, ';');
	return g_string_free(s, FALSE);
}

static const struct fake_rr zone_example[] = {
	{ "_dmarc.example.com", { "v=DMARC1; p=reject; rua=mailto:d@example.com" } },
	{ "_dmarc.strict.example", { "v=DMARC1; p=reject; adkim=s; aspf=s" } },
	{ "_dmarc.monitor.example", { "v=DMARC1; p=none" } },
	{ "_dmarc.example.co.uk", { "v=DMARC1; p=quarantine" } },
	{ "_dmarc.sub.example", { "v=DMARC1; p=none; sp=reject" } },
	{ NULL, { NULL } },
};

static void test_spf_aligned_pass(void)
{
	struct msg m = { "Alice <alice@Example.COM>", VERDICT_PASS, "example.com", NO_DKIM };
	struct dmarc_outcome out;

	use_zone(zone_example);
	check(&m, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "example.com");
	g_assert_true(out.spf_aligned);
	g_assert_false(out.dkim_aligned);
	g_assert_cmpstr(out.aligned_by, ==, "spf:example.com");
	g_assert_cmpstr(out.policy, ==, "reject");
	/* The walk goes on past a record without psd=: the Organizational
	 * Domain is the record nearest the top. */
	assert_queried_by_mode(QUERIED("_dmarc.example.com"),
			       QUERIED("_dmarc.example.com", "_dmarc.com"));
	g_assert_cmpstr(out.org_domain, ==, "example.com");
	g_assert_cmpstr(out.policy_domain, ==, "example.com");
}

static void test_dkim_aligned_spf_fail(void)
{
	/* A mailing list: its envelope, the author's intact signature. */
	struct msg m = { "alice@example.com", VERDICT_FAIL, "lists.example.org",
			 { VERDICT_FAIL, VERDICT_PASS }, { "lists.example.org", "example.com" } };
	struct dmarc_outcome out;

	use_zone(zone_example);
	check(&m, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "example.com");
	g_assert_true(out.dkim_aligned);
	g_assert_false(out.spf_aligned);
	g_assert_cmpstr(out.aligned_by, ==, "dkim:example.com");
}

static void test_unaligned_pass_fails(void)
{
	/* Both pass, neither for the From domain: p=reject applies. */
	struct msg m = { "alice@example.com", VERDICT_PASS, "attacker.example",
			 { VERDICT_PASS }, { "attacker.example" } };
	struct dmarc_outcome out;

	use_zone(zone_example);
	check(&m, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "example.com");
	g_assert_false(out.dkim_aligned || out.spf_aligned);
	g_assert_cmpstr(out.aligned_by, ==, "");
}

static void test_relaxed_subdomain(void)
{
	struct msg dkim = { "alice@example.com", VERDICT_NONE, NULL,
			    { VERDICT_PASS }, { "mail.example.com" } };
	struct msg spf = { "alice@news.example.com", VERDICT_PASS, "bounce.example.com", NO_DKIM };
	struct dmarc_outcome out;

	use_zone(zone_example);
	check(&dkim, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "example.com");
	g_assert_cmpstr(out.aligned_by, ==, "dkim:mail.example.com");
	check(&spf, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "news.example.com");
	g_assert_cmpstr(out.aligned_by, ==, "spf:bounce.example.com");
}

static void test_strict_subdomain_fails(void)
{
	struct msg sub = { "alice@strict.example", VERDICT_PASS, "bounce.strict.example",
			   { VERDICT_PASS }, { "mail.strict.example" } };
	struct msg parent = { "alice@mail.strict.example", VERDICT_PASS, "strict.example",
			      { VERDICT_PASS }, { "strict.example" } };
	struct msg exact = { "alice@strict.example", VERDICT_FAIL, "other.example",
			     { VERDICT_PASS }, { "STRICT.example." } };
	struct dmarc_outcome out;

	use_zone(zone_example);
	check(&sub, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "strict.example");
	g_assert_false(out.dkim_aligned || out.spf_aligned);
	/* From a subdomain, signed by the parent: still not identical. */
	check(&parent, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "mail.strict.example");
	check(&exact, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "strict.example");
	g_assert_cmpstr(out.aligned_by, ==, "dkim:strict.example");
}

static void test_no_record(void)
{
	struct msg m = { "bob@norecord.example", VERDICT_PASS, "norecord.example", NO_DKIM };
	struct msg sub = { "bob@a.norecord.example", VERDICT_PASS, "norecord.example", NO_DKIM };
	struct dmarc_outcome out;
	char line[256];

	use_zone(zone_example);
	check(&m, &out);
	assert_outcome(&out, VERDICT_NONE, "", "norecord.example");
	g_assert_cmpstr(out.policy, ==, "");
	assert_queried_by_mode(QUERIED("_dmarc.norecord.example"),
			       QUERIED("_dmarc.norecord.example", "_dmarc.example"));
	dmarc_outcome_format(&out, line, sizeof(line));
	g_assert_true(g_str_has_prefix(line, "dmarc=none (no DMARC record for norecord.example"));
	g_assert_true(g_str_has_suffix(line, ") header.from=norecord.example"));
	use_zone(zone_example);
	check(&sub, &out);
	assert_outcome(&out, VERDICT_NONE, "", "a.norecord.example");
	assert_queried_by_mode(QUERIED("_dmarc.a.norecord.example", "_dmarc.norecord.example"),
			       QUERIED("_dmarc.a.norecord.example", "_dmarc.norecord.example",
				       "_dmarc.example"));
}

static void test_p_none_fail(void)
{
	struct msg m = { "x@monitor.example", VERDICT_FAIL, "monitor.example", NO_DKIM };
	struct dmarc_outcome out;
	char line[256];

	use_zone(zone_example);
	check(&m, &out);
	assert_outcome(&out, VERDICT_FAIL, "none", "monitor.example");
	g_assert_cmpstr(out.policy, ==, "none");
	g_assert_false(out.pct_sampled_out);
	dmarc_outcome_format(&out, line, sizeof(line));
	g_assert_cmpstr(line, ==, "dmarc=fail (p=none dis=none) header.from=monitor.example");
}

static void test_organizational_record(void)
{
	struct msg fail = { "x@a.b.example.co.uk", VERDICT_NONE, NULL, NO_DKIM };
	struct msg pass = { "x@a.b.example.co.uk", VERDICT_NONE, NULL,
			    { VERDICT_PASS }, { "example.co.uk" } };
	struct msg other = { "x@a.b.example.co.uk", VERDICT_NONE, NULL,
			     { VERDICT_PASS }, { "other.co.uk" } };
	struct dmarc_outcome out;

	use_zone(zone_example);
	check(&fail, &out);
	assert_outcome(&out, VERDICT_FAIL, "quarantine", "a.b.example.co.uk");
	g_assert_cmpstr(out.policy, ==, "quarantine");
	/* By the list straight to the organisational domain; the walk goes
	 * up to the top, one label at a time. */
	assert_queried_by_mode(QUERIED("_dmarc.a.b.example.co.uk", "_dmarc.example.co.uk"),
			       QUERIED("_dmarc.a.b.example.co.uk", "_dmarc.b.example.co.uk",
				       "_dmarc.example.co.uk", "_dmarc.co.uk", "_dmarc.uk"));
	check(&pass, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "a.b.example.co.uk");
	/* Same public suffix is not the same organisation. */
	check(&other, &out);
	assert_outcome(&out, VERDICT_FAIL, "quarantine", "a.b.example.co.uk");
}

static void test_psl_rules(void)
{
	static const char *const cases[][2] = {
		{ "a.b.example.co.uk", "example.co.uk" },
		{ "example.co.uk", "example.co.uk" },
		{ "co.uk", "co.uk" },
		{ "Mail.Example.COM.", "example.com" },
		{ "x.y.example.test", "example.test" },  /* not in the list: "*" rule */
		{ "a.foo.bar.ck", "foo.bar.ck" },        /* *.ck */
		{ "a.www.ck", "www.ck" },                /* !www.ck */
		{ "x.y.city.kawasaki.jp", "city.kawasaki.jp" },
		{ "x.y.kawasaki.jp", "x.y.kawasaki.jp" },
	};
	char org[DMARC_DOMAIN_MAX];

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_assert_cmpint(dmarc_organizational_domain(checker, cases[i][0], org,
							    sizeof(org)), ==, 0);
		g_assert_cmpstr(org, ==, cases[i][1]);
	}
	g_assert_cmpint(dmarc_organizational_domain(checker, "a..b", org, sizeof(org)), ==, -1);
	g_assert_cmpint(dmarc_organizational_domain(checker, "", org, sizeof(org)), ==, -1);
	g_assert_cmpint(dmarc_organizational_domain(checker, "a b.com", org, sizeof(org)), ==, -1);
}

static void test_multiple_from_fields(void)
{
	/* Broken, but example.com passes for every field: pass, marked. */
	char *from[2] = { "alice@example.com", "alice@example.com" };
	struct dmarc_input in = { .from_values = from, .from_count = 2,
				  .spf_result = VERDICT_PASS, .spf_domain = "example.com" };
	struct dmarc_outcome out;

	use_zone(zone_example);
	g_assert_cmpint(dmarc_check(checker, &in, &out), ==, 0);
	assert_outcome(&out, VERDICT_PASS, "none", "example.com");
	g_assert_true(out.from_invalid);
	assert_comment(&out, "p=reject dis=none from=invalid");
	g_assert_nonnull(strstr(out.reason, "2 From fields"));
	assert_queried_by_mode(QUERIED("_dmarc.example.com"),
			       QUERIED("_dmarc.example.com", "_dmarc.com"));
}

static void test_from_two_domains(void)
{
	/* example.com passes, attacker.example has no policy: nothing fails,
	 * not everything passes. */
	struct msg m = { "alice@example.com, mallory@attacker.example", VERDICT_PASS,
			 "example.com", NO_DKIM };
	struct dmarc_outcome out;
	char line[256];

	use_zone(zone_example);
	check(&m, &out);
	assert_outcome(&out, VERDICT_PERMERROR, "", "");
	g_assert_true(out.from_invalid);
	dmarc_outcome_format(&out, line, sizeof(line));
	g_assert_true(g_str_has_prefix(line, "dmarc=permerror (From addresses in different domains: "
				       "example.com, attacker.example; no DMARC record for "
				       "attacker.example"));
	assert_queried_by_mode(QUERIED("_dmarc.example.com", "_dmarc.attacker.example"),
			       QUERIED("_dmarc.example.com", "_dmarc.com", "_dmarc.attacker.example",
				       "_dmarc.example"));
}

static void test_from_same_domain_twice(void)
{
	struct msg m = { "Alice <alice@example.com>, bob@EXAMPLE.com", VERDICT_PASS,
			 "example.com", NO_DKIM };
	struct dmarc_outcome out;

	use_zone(zone_example);
	check(&m, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "example.com");
}

static void test_no_from(void)
{
	struct msg m = { NULL, VERDICT_PASS, "example.com", NO_DKIM };
	struct msg empty = { "", VERDICT_PASS, "example.com", NO_DKIM };
	struct msg local = { "alice", VERDICT_PASS, "example.com", NO_DKIM };
	struct dmarc_outcome out;

	use_zone(zone_example);
	check(&m, &out);
	assert_outcome(&out, VERDICT_PERMERROR, "", "");
	g_assert_cmpstr(out.reason, ==, "no From field");
	check(&empty, &out);
	assert_outcome(&out, VERDICT_PERMERROR, "", "");
	check(&local, &out);
	assert_outcome(&out, VERDICT_PERMERROR, "", "");
	g_assert_cmpuint(test_zone_asked_count(test_zone), ==, 0);
}

static void test_rfc2047_display_name(void)
{
	/* The display name decodes to "ceo@bank.example <ceo@bank.example>":
	 * the address that counts is the real one. Folded, with a comment. */
	struct msg m = { "=?UTF-8?B?Y2VvQGJhbmsuZXhhbXBsZSA8Y2VvQGJhbmsuZXhhbXBsZT4=?=\r\n"
			 " (the boss) <alice@example.com>", VERDICT_PASS, "example.com", NO_DKIM };
	struct msg q = { "=?iso-8859-1?q?J=F6rg?= <joerg@monitor.example>", VERDICT_NONE, NULL,
			 NO_DKIM };
	struct msg unquoted = { "alice@example.com <mallory@attacker.example>", VERDICT_PASS,
				"example.com", NO_DKIM };
	struct msg idn = { "=?UTF-8?Q?B=C3=BCcher?= <info@b\xc3\xbc" "cher.example>", VERDICT_NONE,
			   NULL, NO_DKIM };
	struct msg literal = { "x@[192.0.2.1]", VERDICT_NONE, NULL, NO_DKIM };
	struct dmarc_outcome out;

	use_zone(zone_example);
	check(&m, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "example.com");
	check(&q, &out);
	assert_outcome(&out, VERDICT_FAIL, "none", "monitor.example");
	/* An unquoted "@" in the phrase is no RFC 5322 phrase: both domains
	 * count. example.com passes, attacker.example has no policy. */
	check(&unquoted, &out);
	assert_outcome(&out, VERDICT_PERMERROR, "", "");
	g_assert_nonnull(strstr(out.reason, "names example.com beside its address in "
				"attacker.example"));
	/* An internationalised domain is looked up and reported in A-labels. */
	use_zone(zone_example);
	check(&idn, &out);
	assert_outcome(&out, VERDICT_NONE, "", "xn--bcher-kva.example");
	assert_queried_by_mode(QUERIED("_dmarc.xn--bcher-kva.example"),
			       QUERIED("_dmarc.xn--bcher-kva.example", "_dmarc.example"));
	check(&literal, &out);
	assert_outcome(&out, VERDICT_PERMERROR, "", "");
}

static void test_group_syntax(void)
{
	struct msg group = { "Team: alice@example.com, Bob <bob@example.com>;", VERDICT_PASS,
			     "example.com", NO_DKIM };
	struct msg mixed = { "Team: alice@example.com;, eve@attacker.example", VERDICT_PASS,
			     "example.com", NO_DKIM };
	struct msg empty = { "undisclosed-recipients:;", VERDICT_PASS, "example.com", NO_DKIM };
	struct dmarc_outcome out;

	use_zone(zone_example);
	check(&group, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "example.com");
	check(&mixed, &out);
	assert_outcome(&out, VERDICT_PERMERROR, "", "");
	check(&empty, &out);
	assert_outcome(&out, VERDICT_PERMERROR, "", "");
	g_assert_cmpstr(out.reason, ==, "From field without an address");
}

static const struct fake_rr zone_tempfail[] = {
	{ "_dmarc.slow.example", { FAKE_TEMPFAIL } },
	{ "_dmarc.x.ok.example", { FAKE_TEMPFAIL } },
	{ "_dmarc.y.ok.example", { "not dmarc", "v=spf1 -all" } },
	{ "_dmarc.ok.example", { FAKE_TEMPFAIL } },
	{ NULL, { NULL } },
};

static void test_dns_tempfail(void)
{
	struct msg m = { "a@slow.example", VERDICT_PASS, "slow.example", NO_DKIM };
	struct msg sub = { "a@x.ok.example", VERDICT_PASS, "ok.example", NO_DKIM };
	struct msg org = { "a@y.ok.example", VERDICT_PASS, "ok.example", NO_DKIM };
	struct dmarc_outcome out;
	char line[256];

	use_zone(zone_tempfail);
	check(&m, &out);
	assert_outcome(&out, VERDICT_TEMPERROR, "", "slow.example");
	dmarc_outcome_format(&out, line, sizeof(line));
	g_assert_cmpstr(line, ==, "dmarc=temperror (DNS failure for _dmarc.slow.example) "
			"header.from=slow.example");
	/* A failure on the first lookup is not answered by the second. */
	use_zone(zone_tempfail);
	check(&sub, &out);
	assert_outcome(&out, VERDICT_TEMPERROR, "", "x.ok.example");
	assert_queried((const char *[]){ "_dmarc.x.ok.example", NULL });
	/* Non-DMARC TXT records are no record; then the organisational lookup fails. */
	use_zone(zone_tempfail);
	check(&org, &out);
	assert_outcome(&out, VERDICT_TEMPERROR, "", "y.ok.example");
	assert_queried((const char *[]){ "_dmarc.y.ok.example", "_dmarc.ok.example", NULL });
}

static const struct fake_rr zone_pct[] = {
	{ "_dmarc.q0.example", { "v=DMARC1; p=quarantine; pct=0" } },
	{ "_dmarc.r0.example", { "v=DMARC1; p=reject; pct=0" } },
	{ "_dmarc.r50.example", { "v=DMARC1; p=reject; pct=50" } },
	{ "_dmarc.r100.example", { "v=DMARC1; p=reject; pct=100" } },
	{ NULL, { NULL } },
};

/* pct= is no longer part of DMARC (RFC 9989, which wins over RFC 7489 in
 * both modes): reported as published, never applied. */
static void test_pct(void)
{
	struct msg q0 = { "a@q0.example", VERDICT_FAIL, "q0.example", NO_DKIM };
	struct msg r0 = { "a@r0.example", VERDICT_FAIL, "r0.example", NO_DKIM };
	struct msg r50 = { "a@r50.example", VERDICT_FAIL, "r50.example", NO_DKIM };
	struct dmarc_outcome out;
	GString *json = g_string_new(NULL);

	use_zone(zone_pct);
	check(&q0, &out);
	assert_outcome(&out, VERDICT_FAIL, "quarantine", "q0.example");
	g_assert_false(out.pct_sampled_out);
	g_assert_cmpint(out.pct, ==, 0);
	assert_comment(&out, "p=quarantine dis=quarantine");
	check(&r0, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "r0.example");
	for (unsigned i = 0; i < PCT_DRAWS; i++) {
		check(&r50, &out);
		assert_outcome(&out, VERDICT_FAIL, "reject", "r50.example");
		g_assert_false(out.pct_sampled_out);
	}
	dmarc_outcome_append_json(&out, json);
	g_assert_nonnull(strstr(json->str, "\"pct_not_applied\":50,"));
	g_string_free(json, TRUE);
}

static void test_sp_for_subdomain(void)
{
	struct msg sub = { "a@news.sub.example", VERDICT_FAIL, "news.sub.example", NO_DKIM };
	struct msg top = { "a@sub.example", VERDICT_FAIL, "sub.example", NO_DKIM };
	struct dmarc_outcome out;
	char comment[128];

	use_zone(zone_example);
	check(&sub, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "news.sub.example");
	g_assert_cmpstr(out.policy, ==, "none");
	g_assert_cmpstr(out.sp, ==, "reject");
	dmarc_outcome_comment(&out, comment, sizeof(comment));
	g_assert_cmpstr(comment, ==, "p=none sp=reject dis=reject");
	check(&top, &out);
	assert_outcome(&out, VERDICT_FAIL, "none", "sub.example");
}

static const struct fake_rr zone_records[] = {
	{ "_dmarc.two.example", { "v=DMARC1; p=reject", "v=DMARC1; p=none" } },
	{ "_dmarc.bad.example", { "v=DMARC1; p=bogus" } },
	{ "_dmarc.nop.example", { "v=DMARC1; rua=mailto:x@nop.example" } },
	{ "_dmarc.case.example", { "v=dmarc1; p=reject" } },
	{ "_dmarc.split.example", { "v=DMARC1; p=reject; rua=mailto:" A50 A50 "@split.example,"
				     "mailto:" A50 A50 "@split.example; sp=quarantine" } },
	{ "_dmarc.mixed.example", { "v=spf1 -all", "v=DMARC1;p=quarantine" } },
	{ NULL, { NULL } },
};

static void test_record_selection(void)
{
	struct msg two = { "a@two.example", VERDICT_FAIL, "two.example", NO_DKIM };
	struct msg bad = { "a@bad.example", VERDICT_FAIL, "bad.example", NO_DKIM };
	struct msg nop = { "a@nop.example", VERDICT_FAIL, "nop.example", NO_DKIM };
	struct msg lower = { "a@case.example", VERDICT_FAIL, "case.example", NO_DKIM };
	struct msg split = { "a@x.split.example", VERDICT_FAIL, "split.example", NO_DKIM };
	struct msg mixed = { "a@mixed.example", VERDICT_FAIL, "mixed.example", NO_DKIM };
	struct dmarc_outcome out;

	use_zone(zone_records);
	check(&two, &out);
	assert_outcome(&out, VERDICT_NONE, "", "two.example");
	g_assert_nonnull(strstr(out.reason, "several DMARC records"));
	/* RFC 9989 §4.10.1: a bad p= without rua= means DMARC does not apply;
	 * no p= but a valid rua= is p=none. */
	check(&bad, &out);
	assert_outcome(&out, VERDICT_NONE, "", "bad.example");
	g_assert_nonnull(strstr(out.reason, "DMARC does not apply"));
	check(&nop, &out);
	assert_outcome(&out, VERDICT_FAIL, "none", "nop.example");
	g_assert_cmpstr(out.applied, ==, "p-none-fallback");
	assert_comment(&out, "p=none dis=none");
	/* The version value is case-sensitive: not a DMARC record. */
	check(&lower, &out);
	assert_outcome(&out, VERDICT_NONE, "", "case.example");
	/* A record longer than one TXT string, found at the organisational domain. */
	check(&split, &out);
	assert_outcome(&out, VERDICT_FAIL, "quarantine", "x.split.example");
	check(&mixed, &out);
	assert_outcome(&out, VERDICT_FAIL, "quarantine", "mixed.example");
}

/* ---- RFC 9989: t=y, np=, the walk's organisational domain ----------- */

static const struct fake_rr zone_9989[] = {
	{ "_dmarc.treject.example", { "v=DMARC1; p=reject; t=y" } },
	{ "_dmarc.tquar.example", { "v=DMARC1; p=quarantine; t=y" } },
	{ "_dmarc.np.example", { "v=DMARC1; p=none; np=reject" } },
	{ "www.np.example", { NULL } },
	{ "slow.np.example", { FAKE_TEMPFAIL } },
	{ "_dmarc.corp.example", { "v=DMARC1; p=reject" } },
	{ "_dmarc.group.example.com", { "v=DMARC1; p=reject; psd=n" } },
	{ "_dmarc.example.com", { "v=DMARC1; p=reject" } },
	{ NULL, { NULL } },
};

/* t=y: the policy applied is one level below the published one. */
static void test_testing(void)
{
	struct msg rej = { "a@treject.example", VERDICT_PASS, "attacker.example", NO_DKIM };
	struct msg quar = { "a@tquar.example", VERDICT_PASS, "attacker.example", NO_DKIM };
	struct msg pass = { "a@treject.example", VERDICT_PASS, "treject.example", NO_DKIM };
	struct dmarc_outcome out;
	char line[256];

	use_zone(zone_9989);
	check(&rej, &out);
	assert_outcome(&out, VERDICT_FAIL, "quarantine", "treject.example");
	g_assert_true(out.testing && out.testing_lowered);
	g_assert_cmpstr(out.policy, ==, "reject");
	g_assert_cmpstr(out.published, ==, "reject");
	g_assert_nonnull(strstr(out.reason, "t=y"));
	dmarc_outcome_format(&out, line, sizeof(line));
	g_assert_cmpstr(line, ==, "dmarc=fail (p=reject dis=quarantine testing) "
			"header.from=treject.example");
	check(&quar, &out);
	assert_outcome(&out, VERDICT_FAIL, "none", "tquar.example");
	assert_comment(&out, "p=quarantine dis=none testing");
	check(&pass, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "treject.example");
	assert_comment(&out, "p=reject dis=none testing");
}

/* np=: for a subdomain that does not exist (NXDOMAIN), asked once. */
static void test_np(void)
{
	struct msg ghost = { "a@ghost.np.example", VERDICT_PASS, "attacker.example", NO_DKIM };
	struct msg www = { "a@www.np.example", VERDICT_PASS, "attacker.example", NO_DKIM };
	struct msg slow = { "a@slow.np.example", VERDICT_PASS, "attacker.example", NO_DKIM };
	struct msg top = { "a@np.example", VERDICT_PASS, "attacker.example", NO_DKIM };
	struct dmarc_outcome out;

	use_zone(zone_9989);
	check(&ghost, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "ghost.np.example");
	g_assert_cmpstr(out.applied, ==, "np");
	assert_comment(&out, "p=none np=reject dis=reject");
	assert_queried_by_mode(QUERIED("_dmarc.ghost.np.example", "_dmarc.np.example",
				       "A ghost.np.example"),
			       QUERIED("_dmarc.ghost.np.example", "_dmarc.np.example",
				       "_dmarc.example", "A ghost.np.example"));
	{
		GString *json = g_string_new(NULL);

		dmarc_outcome_append_json(&out, json);
		g_assert_nonnull(strstr(json->str, "\"author_exists\":false"));
		g_string_free(json, TRUE);
	}
	check(&www, &out);
	assert_outcome(&out, VERDICT_FAIL, "none", "www.np.example");
	g_assert_cmpstr(out.applied, ==, "p");
	/* Whether the name exists is unknown: temperror, never p=. */
	check(&slow, &out);
	assert_outcome(&out, VERDICT_TEMPERROR, "", "slow.np.example");
	g_assert_nonnull(strstr(out.reason, "slow.np.example"));
	/* The Author Domain's own record: p=, no existence query. */
	use_zone(zone_9989);
	check(&top, &out);
	assert_outcome(&out, VERDICT_FAIL, "none", "np.example");
	for (guint i = 0; i < test_zone_asked_count(test_zone); i++)
		g_assert_false(g_str_has_prefix(queried(i), "A "));
}

/* Relaxed alignment across the Organizational Domain: found by the
 * records (tree walk) or by the list. */
static void test_walk_org_domain(void)
{
	struct msg deep = { "a@x.y.corp.example", VERDICT_NONE, NULL,
			    { VERDICT_PASS }, { "mail.corp.example" } };
	struct msg group = { "a@a.group.example.com", VERDICT_NONE, NULL,
			     { VERDICT_PASS }, { "example.com" } };
	struct dmarc_outcome out;

	use_zone(zone_9989);
	check(&deep, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "x.y.corp.example");
	g_assert_cmpstr(out.aligned_by, ==, "dkim:mail.corp.example");
	g_assert_cmpstr(out.org_domain, ==, "corp.example");
	g_assert_cmpstr(out.policy_domain, ==, "corp.example");
	/* psd=n makes group.example.com an Organizational Domain of its own:
	 * a signature of example.com no longer aligns (the list says it does). */
	check(&group, &out);
	if (mode == DMARC_DISCOVERY_PSL) {
		assert_outcome(&out, VERDICT_PASS, "none", "a.group.example.com");
		g_assert_cmpstr(out.org_domain, ==, "example.com");
	} else {
		assert_outcome(&out, VERDICT_FAIL, "reject", "a.group.example.com");
		g_assert_cmpstr(out.org_domain, ==, "group.example.com");
	}
}

/* Alignment that a DNS failure leaves open is temperror, not fail. */
static const struct fake_rr zone_align_fail[] = {
	{ "_dmarc.corp.example", { "v=DMARC1; p=reject" } },
	{ "_dmarc.mail.corp.example", { FAKE_TEMPFAIL } },
	{ NULL, { NULL } },
};

static void test_alignment_temperror(void)
{
	struct msg m = { "a@corp.example", VERDICT_NONE, NULL,
			 { VERDICT_PASS }, { "mail.corp.example" } };
	struct dmarc_outcome out;

	use_zone(zone_align_fail);
	check(&m, &out);
	if (mode == DMARC_DISCOVERY_PSL) {
		assert_outcome(&out, VERDICT_PASS, "none", "corp.example");
	} else {
		assert_outcome(&out, VERDICT_TEMPERROR, "", "corp.example");
		g_assert_nonnull(strstr(out.reason, "mail.corp.example"));
	}
}

static void test_json(void)
{
	struct msg rej = { "a@treject.example", VERDICT_PASS, "attacker.example", NO_DKIM };
	struct dmarc_outcome out;
	GString *json = g_string_new("{");

	use_zone(zone_9989);
	check(&rej, &out);
	dmarc_outcome_append_json(&out, json);
	g_string_append(json, "\"end\":1}");
	g_assert_nonnull(strstr(json->str, "\"testing\":true,\"testing_lowered\":true"));
	g_assert_nonnull(strstr(json->str, "\"published\":\"reject\""));
	g_assert_nonnull(strstr(json->str, mode == DMARC_DISCOVERY_PSL ?
				"\"discovery\":{\"mode\":\"psl\"" :
				"\"discovery\":{\"mode\":\"treewalk\""));
	g_assert_nonnull(strstr(json->str, "\"name\":\"_dmarc.treject.example\""));
	g_string_free(json, TRUE);
}

/* A record whose text makes the discovery's JSON too long loses its text
 * and rua= (the discovery stays); a shorter one keeps them. Rendered
 * only by dmarc_outcome_append_json, after dmarc_check returned. */
static void test_json_long_record(void)
{
	struct msg longer = { "a@long.example", VERDICT_PASS, "attacker.example", NO_DKIM };
	struct msg shorter = { "a@short.example", VERDICT_PASS, "attacker.example", NO_DKIM };
	GString *text = g_string_new("v=DMARC1; p=reject; rua=mailto:r@long.example; x=");
	GString *json = g_string_new(NULL);
	struct dmarc_outcome out;

	while (text->len < 3000)
		g_string_append_c(text, '\x01');       /* six bytes each in JSON */
	use_zone(zone_example);
	test_zone_add(test_zone, "_dmarc.long.example", TEST_ZONE_TXT, text->str);
	test_zone_add(test_zone, "_dmarc.short.example", TEST_ZONE_TXT,
		      "v=DMARC1; p=reject; rua=mailto:r@short.example");
	check(&longer, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "long.example");
	dmarc_outcome_append_json(&out, json);
	g_assert_nonnull(strstr(json->str, "\"policy_domain\":\"long.example\",\"record\":{\"raw\":\"\","));
	g_assert_nonnull(strstr(json->str, "\"rua\":[]"));
	g_assert_cmpuint(json->len, <, DMARC_DISCOVERY_JSON_MAX + 1024);
	check(&shorter, &out);
	g_string_truncate(json, 0);
	dmarc_outcome_append_json(&out, json);
	g_assert_nonnull(strstr(json->str, "\"raw\":\"v=DMARC1; p=reject; rua=mailto:r@short.example\""));
	g_assert_nonnull(strstr(json->str, "\"rua\":[\"mailto:r@short.example\"]"));
	g_string_free(json, TRUE);
	g_string_free(text, TRUE);
}

/* ---- broken From fields: every domain named is evaluated ------------- */

static const struct fake_rr zone_broken[] = {
	{ "_dmarc.example.com", { "v=DMARC1; p=reject" } },
	{ "_dmarc.monitor.example", { "v=DMARC1; p=none" } },
	{ "_dmarc.example.co.uk", { "v=DMARC1; p=quarantine" } },
	{ "_dmarc.slow.example", { FAKE_TEMPFAIL } },
	{ NULL, { NULL } },
};

/* A spoof of example.com (p=reject) must fail with reject, whatever is wrong with From. */
static void assert_spoof_fails(char *const *from, size_t count, const char *what)
{
	struct dmarc_outcome out;
	char line[256];

	use_zone(zone_broken);
	check_spoof(from, count, &out);
	if (out.result != VERDICT_FAIL)
		g_error("%s: %s (%s)", what, verdict_name(out.result), out.reason);
	assert_outcome(&out, VERDICT_FAIL, "reject", "example.com");
	g_assert_cmpstr(out.policy, ==, "reject");
	g_assert_true(out.from_invalid);
	dmarc_outcome_format(&out, line, sizeof(line));
	g_assert_cmpstr(line, ==, "dmarc=fail (p=reject dis=reject from=invalid) "
			"header.from=example.com");
}

static void test_broken_from_spoofs(void)
{
	char *identical[2] = { "CEO <ceo@example.com>", "CEO <ceo@example.com>" };
	char *second[1] = { "CEO <ceo@example.com>, helper@outside.example" };
	char *no_domain[1] = { "ceo@example.com, ceo" };
	char *dropped[] = { "x@outside.example, ceo@@example.com",
			    "x@outside.example; CEO <ceo@example.com>",
			    "x@outside.example (, ceo@example.com",
			    "ceo@example.com <x@outside.example>" };
	GString *long_name = g_string_new("\"");
	GString *many = g_string_new(NULL);
	char *over[1], *sixty_five[1];

	assert_spoof_fails(identical, 2, "two identical From fields");
	assert_spoof_fails(second, 1, "a second domain");
	assert_queried_by_mode(QUERIED("_dmarc.example.com", "_dmarc.outside.example"),
			       QUERIED("_dmarc.example.com", "_dmarc.com", "_dmarc.outside.example",
				       "_dmarc.example"));
	assert_spoof_fails(no_domain, 1, "an address without a domain");
	/* Addresses GMime's parser drops without a word must still count. */
	for (size_t i = 0; i < G_N_ELEMENTS(dropped); i++)
		assert_spoof_fails(&dropped[i], 1, dropped[i]);
	while (long_name->len <= 16384)
		g_string_append(long_name, "Chief Executive ");
	g_string_append(long_name, "\" <ceo@example.com>");
	over[0] = long_name->str;
	assert_spoof_fails(over, 1, "a From over 16 KB");
	for (int i = 0; i < 65; i++)
		g_string_append_printf(many, "%sceo%d@example.com", i > 0 ? ", " : "", i);
	sixty_five[0] = many->str;
	assert_spoof_fails(sixty_five, 1, "65 addresses");
	g_string_free(long_name, TRUE);
	g_string_free(many, TRUE);
}

static void test_broken_from_pass_needs_every_domain(void)
{
	char *two[1] = { "alice@example.com, bob@monitor.example" };
	enum verdict both[2] = { VERDICT_PASS, VERDICT_PASS };
	char *signers[2] = { "example.com", "monitor.example" };
	struct dmarc_input in = { .from_values = two, .from_count = 1,
				  .spf_result = VERDICT_NONE, .dkim_count = 2,
				  .dkim_results = both, .dkim_domains = signers };
	struct dmarc_outcome out;

	use_zone(zone_broken);
	g_assert_cmpint(dmarc_check(checker, &in, &out), ==, 0);
	assert_outcome(&out, VERDICT_PASS, "none", "example.com");
	assert_comment(&out, "p=reject dis=none from=invalid");
	/* Only example.com signed: monitor.example fails, its p=none applies. */
	in.dkim_count = 1;
	g_assert_cmpint(dmarc_check(checker, &in, &out), ==, 0);
	assert_outcome(&out, VERDICT_FAIL, "none", "monitor.example");
	assert_comment(&out, "p=none dis=none from=invalid");
}

static void test_broken_from_strictest_policy(void)
{
	char *three[1] = { "a@monitor.example, b@a.b.example.co.uk, c@example.com" };
	char *reversed[2] = { "c@example.com", "a@monitor.example" };
	char *two[1] = { "a@monitor.example, b@a.b.example.co.uk" };
	struct dmarc_outcome out;

	use_zone(zone_broken);
	check_spoof(three, 1, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "example.com");
	check_spoof(reversed, 2, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "example.com");
	check_spoof(two, 1, &out);
	assert_outcome(&out, VERDICT_FAIL, "quarantine", "a.b.example.co.uk");
	assert_comment(&out, "p=quarantine dis=quarantine from=invalid");
}

static void test_broken_from_temperror(void)
{
	char *with_fail[1] = { "a@slow.example, ceo@example.com" };
	char *with_pass[2] = { "a@slow.example", "ceo@example.com" };
	struct dmarc_input pass = { .from_values = with_pass, .from_count = 2,
				    .spf_result = VERDICT_PASS, .spf_domain = "example.com" };
	struct dmarc_outcome out;

	use_zone(zone_broken);
	/* A failure with a policy is known despite the DNS failure. */
	check_spoof(with_fail, 1, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "example.com");
	g_assert_cmpint(dmarc_check(checker, &pass, &out), ==, 0);
	assert_outcome(&out, VERDICT_TEMPERROR, "", "");
	g_assert_nonnull(strstr(out.reason, "DNS failure for _dmarc.slow.example"));
}

static void test_broken_from_too_many_domains(void)
{
	GString *last = g_string_new(NULL), *first = g_string_new("ceo@example.com");
	char *from[1];
	struct dmarc_outcome out;

	for (int i = 0; i < 9; i++) {
		g_string_append_printf(last, "x@d%d.example, ", i);
		g_string_append_printf(first, ", x@d%d.example", i);
	}
	g_string_append(last, "ceo@example.com");
	/* example.com is beyond the domains evaluated: never a pass, at least quarantine. */
	from[0] = last->str;
	use_zone(zone_broken);
	check_spoof(from, 1, &out);
	assert_outcome(&out, VERDICT_FAIL, "quarantine", "");
	assert_comment(&out, "dis=quarantine from=invalid");
	/* Each of the 8 evaluated: its own name, and the walk's "example". */
	g_assert_cmpuint(test_zone_asked_count(test_zone), ==, mode == DMARC_DISCOVERY_PSL ? 8 : 16);
	from[0] = first->str;
	check_spoof(from, 1, &out);
	assert_outcome(&out, VERDICT_FAIL, "reject", "example.com");
	g_string_free(last, TRUE);
	g_string_free(first, TRUE);
}

static void test_broken_from_scan(void)
{
	/* Each is broken by a second field without a domain: the scan decides. */
	static const struct { const char *from, *header_from; } cases[] = {
		{ "\"ceo@bank.example\" <x>", "" },            /* quoted: no address */
		{ "(ceo@bank.example) x", "" },                /* a comment */
		{ "x@[192.0.2.1]", "" },                       /* a domain literal */
		{ "\"unclosed <ceo@example.com>", "example.com" },
		{ "(unclosed <ceo@example.com>", "example.com" },
		{ "[unclosed <ceo@example.com>", "example.com" },
		{ "ceo@ (the boss) EXAMPLE.com.", "example.com" },
		{ "Team: \"a\\\"b\" <ceo@example.com>;", "example.com" },
		{ "=?UTF-8?Q?ceo@example.com?= <x>", "" },     /* not a domain name */
	};
	struct dmarc_outcome out;

	use_zone(zone_broken);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *from[2] = { (char *)cases[i].from, "x" };

		check_spoof(from, 2, &out);
		if (strcmp(out.header_from, cases[i].header_from) != 0)
			g_error("%s: header.from \"%s\" (%s)", cases[i].from, out.header_from,
				out.reason);
		g_assert_cmpint(out.result, ==, cases[i].header_from[0] != '\0' ?
				VERDICT_FAIL : VERDICT_PERMERROR);
	}
}

/* Broken Froms that name no usable domain: permerror, no lookup. */
static void test_broken_from_naming_none(void)
{
	static const char *const cases[][2] = {
		{ "undisclosed:;", "undisclosed:;" },
		{ "ceo", NULL },
		{ "ceo, bob", NULL },
		{ "x@[192.0.2.1], y@[192.0.2.2]", NULL },
		{ "x@exa_mple..com, y@", NULL },
	};
	struct dmarc_outcome out;
	char line[256];

	use_zone(zone_broken);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *from[2] = { (char *)cases[i][0], (char *)cases[i][1] };

		check_spoof(from, cases[i][1] != NULL ? 2 : 1, &out);
		assert_outcome(&out, VERDICT_PERMERROR, "", "");
		g_assert_true(out.from_invalid);
	}
	g_assert_cmpuint(test_zone_asked_count(test_zone), ==, 0);
	dmarc_outcome_format(&out, line, sizeof(line));
	g_assert_cmpstr(line, ==, "dmarc=permerror (unparsable From field)");
}

static void test_unclosed_comment(void)
{
	/* GMime 3.2 leaks the address it parsed before such a comment (the
	 * sanitizer build's leak checker sees it): never handed over. */
	static const char *const cases[] = {
		"x@[192.0.2.1] (", "x@[192.0.2.1], y@[192.0.2.2] ((",
	};
	struct msg named = { "(a\\) x@example.com", VERDICT_PASS, "example.com", NO_DKIM };
	struct dmarc_outcome out;

	use_zone(zone_example);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct msg m = { cases[i], VERDICT_PASS, "example.com", NO_DKIM };

		check(&m, &out);
		assert_outcome(&out, VERDICT_PERMERROR, "", "");
		g_assert_cmpstr(out.reason, ==, "From field with an unclosed comment");
	}
	/* Still an invalid From, read by the scan: example.com passes. */
	check(&named, &out);
	assert_outcome(&out, VERDICT_PASS, "none", "example.com");
	assert_comment(&out, "p=reject dis=none from=invalid");
}

/* The depths tried, and the stack the daemon gives each session thread. */
static const size_t nesting_depths[] = { 3000, 10000 };
#define WORKER_STACK (512 * 1024)

static void *nested_main(void *data)
{
	struct dmarc_outcome out;

	for (size_t i = 0; i < G_N_ELEMENTS(nesting_depths); i++) {
		char *spoof = nested_groups(nesting_depths[i], "ceo@example.com");
		char *empty = nested_groups(nesting_depths[i], "");

		check_spoof(&spoof, 1, &out);
		assert_outcome(&out, VERDICT_FAIL, "reject", "example.com");
		assert_comment(&out, "p=reject dis=reject from=invalid");
		/* 3,000 levels fit the length bound: the colon bound stops them. */
		g_assert_nonnull(strstr(out.reason, nesting_depths[i] == 3000 ? "colons" : "bytes"));
		check_spoof(&empty, 1, &out);
		assert_outcome(&out, VERDICT_PERMERROR, "", "");
		g_free(spoof);
		g_free(empty);
	}
	return NULL;
}

static void test_nested_groups(void)
{
	pthread_attr_t attr;
	pthread_t thread;

	use_zone(zone_broken);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	g_assert_cmpint(pthread_create(&thread, &attr, nested_main, NULL), ==, 0);
	pthread_attr_destroy(&attr);
	g_assert_cmpint(pthread_join(thread, NULL), ==, 0);
}

static gpointer thread_main(gpointer data)
{
	struct msg pass = { "a@example.com", VERDICT_FAIL, "x.example",
			    { VERDICT_PASS }, { "mail.example.com" } };
	struct msg strict = { "a@strict.example", VERDICT_PASS, "b.strict.example", NO_DKIM };
	struct msg org = { "x@a.b.example.co.uk", VERDICT_PASS, "example.co.uk", NO_DKIM };
	struct dmarc_outcome out;

	for (unsigned i = 0; i < THREAD_CHECKS; i++) {
		check(&pass, &out);
		if (out.result != VERDICT_PASS)
			return GINT_TO_POINTER(1);
		check(&strict, &out);
		if (out.result != VERDICT_FAIL || strcmp(out.disposition, "reject") != 0)
			return GINT_TO_POINTER(2);
		check(&org, &out);
		if (out.result != VERDICT_PASS || strcmp(out.header_from, "a.b.example.co.uk") != 0)
			return GINT_TO_POINTER(3);
	}
	return NULL;
}

static void test_threads(void)
{
	GThread *threads[THREADS];

	use_zone(zone_example);
	for (unsigned i = 0; i < THREADS; i++)
		threads[i] = g_thread_new("dmarc", thread_main, NULL);
	for (unsigned i = 0; i < THREADS; i++)
		g_assert_null(g_thread_join(threads[i]));
}

static void test_bad_psl(void)
{
	struct dns_source dns;
	struct dmarc_checker *c = NULL;
	char *error = NULL;

	test_zone_source(test_zone, &dns);
	g_assert_cmpint(dmarc_checker_new_with_psl(&dns, "/nonexistent/psl.dat", &c, &error),
			==, -1);
	g_assert_null(c);
	g_assert_nonnull(strstr(error, "/nonexistent/psl.dat"));
	g_free(error);
}

static bool names_example_com(void *ctx, const char *domain)
{
	(*(int *)ctx)++;
	return strcmp(domain, "example.com") == 0;
}

/* The local-domain test of a broken From reads it by the linear scan:
 * 10,000 nested groups and an unclosed comment name their domains, and
 * nothing is parsed recursively. */
static void test_from_names(void)
{
	GString *nested = g_string_new(NULL);
	int calls = 0;

	for (int i = 0; i < 10000; i++)
		g_string_append(nested, "g:");
	g_string_append(nested, "ceo@EXAMPLE.com");
	for (int i = 0; i < 10000; i++)
		g_string_append_c(nested, ';');
	char *values[] = { nested->str, "x@other.example (unclosed" };
	g_assert_true(dmarc_from_names(values, 2, names_example_com, &calls));
	g_assert_cmpint(calls, ==, 1);
	char *others[] = { "a@other.example", "\"quoted@example.com\" <b@third.example>" };
	calls = 0;
	g_assert_false(dmarc_from_names(others, 2, names_example_com, &calls));
	g_assert_cmpint(calls, ==, 2);
	g_string_free(nested, TRUE);
}

struct mode_case {
	enum dmarc_discovery_mode mode;
	void (*fn)(void);
};

static void run_in_mode(gconstpointer data)
{
	const struct mode_case *c = data;

	mode = c->mode;
	checker = checkers[c->mode];
	c->fn();
}

/* add_both - the test under /dmarc/treewalk/NAME and /dmarc/psl/NAME. */
static void add_both(const char *name, void (*fn)(void))
{
	for (int m = DMARC_DISCOVERY_TREEWALK; m <= DMARC_DISCOVERY_PSL; m++) {
		struct mode_case *c = g_new0(struct mode_case, 1);
		g_autofree char *path = g_strdup_printf("/dmarc/%s/%s",
							dmarc_discovery_mode_name(m), name);

		c->mode = m;
		c->fn = fn;
		g_test_add_data_func_full(path, c, run_in_mode, g_free);
	}
}

int main(int argc, char **argv)
{
	struct dns_source dns;
	char *error = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	test_zone = test_zone_new();
	test_zone_source(test_zone, &dns);
	for (int m = DMARC_DISCOVERY_TREEWALK; m <= DMARC_DISCOVERY_PSL; m++) {
		if (dmarc_checker_new(&dns, &checkers[m], &error) < 0)
			g_error("%s", error);
		dmarc_checker_set_discovery(checkers[m], m);
	}
	add_both("spf-aligned-pass", test_spf_aligned_pass);
	add_both("dkim-aligned-spf-fail", test_dkim_aligned_spf_fail);
	add_both("unaligned-pass-fails", test_unaligned_pass_fails);
	add_both("relaxed-subdomain", test_relaxed_subdomain);
	add_both("strict-subdomain-fails", test_strict_subdomain_fails);
	add_both("no-record", test_no_record);
	add_both("p-none-fail", test_p_none_fail);
	add_both("organizational-record", test_organizational_record);
	add_both("psl-rules", test_psl_rules);
	add_both("multiple-from-fields", test_multiple_from_fields);
	add_both("from-two-domains", test_from_two_domains);
	add_both("from-same-domain-twice", test_from_same_domain_twice);
	add_both("no-from", test_no_from);
	add_both("rfc2047-display-name", test_rfc2047_display_name);
	add_both("group-syntax", test_group_syntax);
	add_both("dns-tempfail", test_dns_tempfail);
	add_both("pct", test_pct);
	add_both("sp-for-subdomain", test_sp_for_subdomain);
	add_both("record-selection", test_record_selection);
	add_both("testing", test_testing);
	add_both("np", test_np);
	add_both("walk-org-domain", test_walk_org_domain);
	add_both("alignment-temperror", test_alignment_temperror);
	add_both("json", test_json);
	add_both("json-long-record", test_json_long_record);
	add_both("broken-from-spoofs", test_broken_from_spoofs);
	add_both("broken-from-pass-needs-every-domain", test_broken_from_pass_needs_every_domain);
	add_both("broken-from-strictest-policy", test_broken_from_strictest_policy);
	add_both("broken-from-temperror", test_broken_from_temperror);
	add_both("broken-from-too-many-domains", test_broken_from_too_many_domains);
	add_both("broken-from-scan", test_broken_from_scan);
	add_both("broken-from-naming-none", test_broken_from_naming_none);
	add_both("unclosed-comment", test_unclosed_comment);
	add_both("nested-groups", test_nested_groups);
	add_both("threads", test_threads);
	g_test_add_func("/dmarc/from-names", test_from_names);
	g_test_add_func("/dmarc/bad-psl", test_bad_psl);
	ret = g_test_run();
	for (int m = DMARC_DISCOVERY_TREEWALK; m <= DMARC_DISCOVERY_PSL; m++) {
		dmarc_checker_free(&checkers[m]);
		g_assert_null(checkers[m]);
	}
	test_zone_free(&test_zone);
	return ret;
}
