/* The disposition table: every reason, DMARC pass over SPF fail, temperror,
 * quarantine_on subsets, p / sp / none, and the header's text. */
#include "lmtpfilter/config.h"
#include "lmtpfilter/disposition.h"
#include "lmtpfilter/evaluate.h"

#include <glib.h>
#include <string.h>

#define ALL_CHECKS (CHECK_SPF | CHECK_DKIM | CHECK_DMARC)
#define ALL_REASONS (QUARANTINE_ON_DMARC | QUARANTINE_ON_SPF | QUARANTINE_ON_FROM)

/* A verdict: SPF result, DMARC result with p=, sp= and the applied disposition. */
static void verdict_set(struct message_verdict *v, enum verdict spf, enum verdict dmarc, const char *p, const char *sp,
			const char *dis)
{
	memset(v, 0, sizeof(*v));
	v->evaluated = ALL_CHECKS;
	v->facts.source = FACTS_XFORWARD;
	g_strlcpy(v->facts.client_ip, "192.0.2.1", sizeof(v->facts.client_ip));
	v->spf_ran = true;
	v->spf_mailfrom.result = spf;
	v->spf_mailfrom.identity = "mailfrom";
	g_strlcpy(v->spf_mailfrom.sender, "user@example.org", sizeof(v->spf_mailfrom.sender));
	v->dmarc.result = dmarc;
	g_strlcpy(v->dmarc.header_from, "example.com", sizeof(v->dmarc.header_from));
	g_strlcpy(v->dmarc.policy, p, sizeof(v->dmarc.policy));
	g_strlcpy(v->dmarc.sp, sp, sizeof(v->dmarc.sp));
	g_strlcpy(v->dmarc.disposition, dis, sizeof(v->dmarc.disposition));
}

static const char *decide(const struct message_verdict *v, unsigned checks, unsigned on)
{
	struct disposition d;
	disposition_decide(v, checks, on, &d);
	g_assert_cmpint(disposition_quarantines(&d), ==, d.reason != DISPOSITION_DELIVER);
	return disposition_reason_name(d.reason);
}

static void test_dmarc_reasons(void)
{
	struct message_verdict v;

	verdict_set(&v, VERDICT_PASS, VERDICT_FAIL, "reject", "", "reject");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "dmarc-reject");
	verdict_set(&v, VERDICT_PASS, VERDICT_FAIL, "quarantine", "", "quarantine");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "dmarc-quarantine");
	/* p=none asks for reports only, also with an SPF fail. */
	verdict_set(&v, VERDICT_FAIL, VERDICT_FAIL, "none", "", "none");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
	/* A subdomain under sp=: the applied disposition decides, not p=. */
	verdict_set(&v, VERDICT_NONE, VERDICT_FAIL, "reject", "quarantine", "quarantine");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "dmarc-quarantine");
	verdict_set(&v, VERDICT_NONE, VERDICT_FAIL, "reject", "none", "none");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
	verdict_set(&v, VERDICT_NONE, VERDICT_FAIL, "none", "reject", "reject");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "dmarc-reject");
	/* pct= sampled out: dmarc.c applies "none". */
	verdict_set(&v, VERDICT_NONE, VERDICT_FAIL, "reject", "", "none");
	v.dmarc.pct_sampled_out = true;
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
}

static void test_dmarc_pass_wins(void)
{
	struct message_verdict v;

	/* Forwarded: SPF fails at our border, the aligned DKIM signature survives. */
	verdict_set(&v, VERDICT_FAIL, VERDICT_PASS, "reject", "", "none");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
	verdict_set(&v, VERDICT_FAIL, VERDICT_PASS, "", "", "none");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
}

static void test_spf_fail(void)
{
	struct message_verdict v;

	/* The From domain publishes no DMARC policy. */
	verdict_set(&v, VERDICT_FAIL, VERDICT_NONE, "", "", "");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "spf-fail");
	/* An unusable record is no policy either. */
	verdict_set(&v, VERDICT_FAIL, VERDICT_PERMERROR, "", "", "");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "spf-fail");
	/* softfail, neutral, none, permerror never quarantine. */
	const enum verdict mild[] = { VERDICT_SOFTFAIL, VERDICT_NEUTRAL, VERDICT_NONE, VERDICT_PERMERROR, VERDICT_PASS };
	for (size_t i = 0; i < G_N_ELEMENTS(mild); i++) {
		verdict_set(&v, mild[i], VERDICT_NONE, "", "", "");
		g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
	}
	/* DMARC not among the checks: SPF alone decides. */
	verdict_set(&v, VERDICT_FAIL, VERDICT_NONE, "", "", "");
	g_assert_cmpstr(decide(&v, CHECK_SPF, ALL_REASONS), ==, "spf-fail");
	/* SPF not among the checks (evaluated for another group): not read. */
	g_assert_cmpstr(decide(&v, CHECK_DKIM | CHECK_DMARC, ALL_REASONS), ==, "deliver");
	/* SPF did not apply (authenticated submission, locally generated). */
	v.spf_ran = false;
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
}

static void test_temperror(void)
{
	struct message_verdict v;

	verdict_set(&v, VERDICT_TEMPERROR, VERDICT_NONE, "", "", "");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
	/* DMARC temperror: a policy may exist, so SPF fail alone does not quarantine. */
	verdict_set(&v, VERDICT_FAIL, VERDICT_TEMPERROR, "", "", "");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
	verdict_set(&v, VERDICT_TEMPERROR, VERDICT_TEMPERROR, "", "", "");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
}

static void test_from_invalid(void)
{
	struct message_verdict v;

	/* As today's dmarc.c reports it: permerror, no policy, names one of our domains. */
	verdict_set(&v, VERDICT_PASS, VERDICT_PERMERROR, "", "", "");
	v.dmarc.from_invalid = true;
	v.dmarc.header_from[0] = '\0';
	g_strlcpy(v.dmarc.reason, "2 From fields", sizeof(v.dmarc.reason));
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
	v.from_names_ours = true;
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "from-invalid");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, QUARANTINE_ON_DMARC | QUARANTINE_ON_SPF), ==, "deliver");
	/* As the strictest named domain reports it: fail with dis=reject. */
	verdict_set(&v, VERDICT_PASS, VERDICT_FAIL, "reject", "", "reject");
	v.dmarc.from_invalid = true;
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "from-invalid");
	g_assert_cmpstr(decide(&v, ALL_CHECKS, QUARANTINE_ON_FROM), ==, "from-invalid");
	/* Without "from", a broken From is not filed as a DMARC failure either. */
	g_assert_cmpstr(decide(&v, ALL_CHECKS, QUARANTINE_ON_DMARC), ==, "dmarc-reject");
	/* A broken From naming only p=none domains, none of them ours. */
	verdict_set(&v, VERDICT_PASS, VERDICT_FAIL, "none", "", "none");
	v.dmarc.from_invalid = true;
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "deliver");
	/* ... but its SPF fails and no named domain has a policy. */
	verdict_set(&v, VERDICT_FAIL, VERDICT_PERMERROR, "", "", "");
	v.dmarc.from_invalid = true;
	g_assert_cmpstr(decide(&v, ALL_CHECKS, ALL_REASONS), ==, "spf-fail");
}

static void test_quarantine_on_subsets(void)
{
	struct message_verdict reject, spf;

	verdict_set(&reject, VERDICT_FAIL, VERDICT_FAIL, "reject", "", "reject");
	verdict_set(&spf, VERDICT_FAIL, VERDICT_NONE, "", "", "");
	for (unsigned on = 0; on <= ALL_REASONS; on++) {
		g_assert_cmpstr(decide(&reject, ALL_CHECKS, on), ==, (on & QUARANTINE_ON_DMARC) ? "dmarc-reject" : "deliver");
		g_assert_cmpstr(decide(&spf, ALL_CHECKS, on), ==, (on & QUARANTINE_ON_SPF) ? "spf-fail" : "deliver");
	}
}

static void test_render(void)
{
	struct message_verdict v;
	struct disposition d;

	verdict_set(&v, VERDICT_NONE, VERDICT_FAIL, "reject", "", "reject");
	disposition_decide(&v, ALL_CHECKS, ALL_REASONS, &d);
	char *text = disposition_render(&d);
	g_assert_cmpstr(text, ==, "X-Disposition-Quarantine: dmarc-reject (dmarc=fail p=reject\r\n"
				  "\theader.from=example.com)\r\n");
	g_free(text);
	verdict_set(&v, VERDICT_FAIL, VERDICT_NONE, "", "", "");
	disposition_decide(&v, ALL_CHECKS, ALL_REASONS, &d);
	text = disposition_render(&d);
	g_assert_cmpstr(text, ==, "X-Disposition-Quarantine: spf-fail (spf=fail smtp.mailfrom=user@example.org\r\n"
				  "\theader.from=example.com)\r\n");
	g_free(text);
	/* Comment delimiters from the sender's text are not passed on. */
	verdict_set(&v, VERDICT_PASS, VERDICT_PERMERROR, "", "", "");
	v.dmarc.from_invalid = true;
	v.from_names_ours = true;
	g_strlcpy(v.dmarc.reason, "odd (text) \\ here", sizeof(v.dmarc.reason));
	disposition_decide(&v, ALL_CHECKS, ALL_REASONS, &d);
	g_assert_null(strchr(d.details, '('));
	g_assert_null(strchr(d.details, ')'));
	g_assert_null(strchr(d.details, '\\'));
	verdict_set(&v, VERDICT_PASS, VERDICT_PASS, "reject", "", "none");
	disposition_decide(&v, ALL_CHECKS, ALL_REASONS, &d);
	g_assert_null(disposition_render(&d));
}

/* arc_set - a DMARC reject whose ARC chain passes, sealed last by
 * lists.example.net, whose AAR vouched (as evaluate.c would set it). */
static void arc_set(struct message_verdict *v, enum verdict arc, bool vouches)
{
	verdict_set(v, VERDICT_FAIL, VERDICT_FAIL, "reject", "", "reject");
	v->evaluated |= CHECK_ARC;
	v->arc.result = arc;
	g_strlcpy(v->arc.sealer_domain, "lists.example.net", sizeof(v->arc.sealer_domain));
	v->arc_vouches = vouches;
}

static const char *decide_arc(const struct message_verdict *v, unsigned checks, bool trusted, struct disposition *d)
{
	disposition_decide_arc(v, checks, ALL_REASONS, trusted, d);
	return disposition_reason_name(d->reason);
}

/* Rule 1b: only a passing chain, a trusted sealer and an AAR that vouches
 * turn a DMARC reject into a delivery, and the disposition says why. */
static void test_arc_override(void)
{
	struct message_verdict v;
	struct disposition d;
	unsigned arc_checks = ALL_CHECKS | CHECK_ARC;

	arc_set(&v, VERDICT_PASS, true);
	g_assert_cmpstr(decide_arc(&v, arc_checks, true, &d), ==, "deliver");
	g_assert_true(d.arc_override);
	g_assert_cmpstr(d.override, ==, "trusted ARC sealer d=lists.example.net");
	g_assert_cmpstr(d.override_sealer, ==, "lists.example.net");
	/* untrusted sealer, AAR showing failure, failed or temperror chain */
	g_assert_cmpstr(decide_arc(&v, arc_checks, false, &d), ==, "dmarc-reject");
	g_assert_false(d.arc_override);
	g_assert_cmpstr(d.override, ==, "");
	arc_set(&v, VERDICT_PASS, false);
	g_assert_cmpstr(decide_arc(&v, arc_checks, true, &d), ==, "dmarc-reject");
	arc_set(&v, VERDICT_FAIL, true);
	g_assert_cmpstr(decide_arc(&v, arc_checks, true, &d), ==, "dmarc-reject");
	arc_set(&v, VERDICT_TEMPERROR, true);
	g_assert_cmpstr(decide_arc(&v, arc_checks, true, &d), ==, "dmarc-reject");
	arc_set(&v, VERDICT_NONE, true);
	g_assert_cmpstr(decide_arc(&v, arc_checks, true, &d), ==, "dmarc-reject");
	/* ARC not among the domain's checks */
	arc_set(&v, VERDICT_PASS, true);
	g_assert_cmpstr(decide_arc(&v, ALL_CHECKS, true, &d), ==, "dmarc-reject");
	/* a broken From is never vouched for */
	arc_set(&v, VERDICT_PASS, true);
	v.dmarc.from_invalid = true;
	g_assert_cmpstr(decide_arc(&v, arc_checks, true, &d), ==, "from-invalid");
	/* a DMARC temperror is no fail to override (and never quarantines) */
	arc_set(&v, VERDICT_PASS, true);
	v.dmarc.result = VERDICT_TEMPERROR;
	g_assert_cmpstr(decide_arc(&v, arc_checks, true, &d), ==, "deliver");
	g_assert_false(d.arc_override);
	/* disposition_decide never trusts a sealer */
	arc_set(&v, VERDICT_PASS, true);
	disposition_decide(&v, arc_checks, ALL_REASONS, &d);
	g_assert_cmpstr(disposition_reason_name(d.reason), ==, "dmarc-reject");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/disposition/dmarc", test_dmarc_reasons);
	g_test_add_func("/disposition/dmarc-pass-wins", test_dmarc_pass_wins);
	g_test_add_func("/disposition/spf-fail", test_spf_fail);
	g_test_add_func("/disposition/temperror", test_temperror);
	g_test_add_func("/disposition/from-invalid", test_from_invalid);
	g_test_add_func("/disposition/quarantine-on", test_quarantine_on_subsets);
	g_test_add_func("/disposition/render", test_render);
	g_test_add_func("/disposition/arc-override", test_arc_override);
	return g_test_run();
}
