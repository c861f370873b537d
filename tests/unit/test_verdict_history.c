/*
 * test_verdict_history - the history records of one verdict: which policy
 * domains get one, and the disposition and override reason of each, for
 * the cases the end-to-end test (test_report.py) cannot reach: the trusted
 * ARC sealer, quarantine_on without "dmarc", p=reject with t=y, a passing
 * domain of a broken From, no policy, DMARC not evaluated.
 */
#include "lmtpfilter/config.h"
#include "lmtpfilter/evaluate.h"
#include "lmtpfilter/history.h"
#include "lmtpfilter/verdict_history.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#define T0 1795910400         /* 2026-11-29 00:00:00 UTC */

struct fixture {
	char *dir;
	struct history *history;
	struct message_verdict *v;
};

static void setup(struct fixture *f, gconstpointer data)
{
	char *error = NULL;

	(void)data;
	f->dir = g_dir_make_tmp("verdict_history-XXXXXX", NULL);
	g_assert_cmpint(history_open(f->dir, &f->history, &error), ==, 0);
	f->v = g_new0(struct message_verdict, 1);
	f->v->evaluated = CHECK_SPF | CHECK_DKIM | CHECK_DMARC;
	g_strlcpy(f->v->facts.client_ip, "192.0.2.7", sizeof(f->v->facts.client_ip));
	f->v->spf_ran = true;
	f->v->spf_mailfrom.result = VERDICT_FAIL;
	f->v->spf_mailfrom.identity = "mailfrom";
	g_strlcpy(f->v->spf_mailfrom.domain, "example.org", sizeof(f->v->spf_mailfrom.domain));
}

static void teardown(struct fixture *f, gconstpointer data)
{
	char *path = history_day_file(f->dir, T0);

	(void)data;
	history_close(&f->history);
	g_unlink(path);
	g_rmdir(f->dir);
	g_free(path);
	g_free(f->dir);
	g_free(f->v);
}

/* outcome - a failing (or passing) one-domain outcome of domain. */
static void outcome(struct dmarc_outcome *d, const char *domain, enum verdict result, const char *p,
		    const char *disposition, bool lowered)
{
	memset(d, 0, sizeof(*d));
	d->result = result;
	g_strlcpy(d->header_from, domain, sizeof(d->header_from));
	g_strlcpy(d->policy_domain, domain, sizeof(d->policy_domain));
	g_strlcpy(d->org_domain, domain, sizeof(d->org_domain));
	g_strlcpy(d->policy, p, sizeof(d->policy));
	g_strlcpy(d->disposition, disposition, sizeof(d->disposition));
	d->testing = d->testing_lowered = lowered;
	d->adkim = d->aspf = 'r';
	d->psd = 'u';
}

static void collect(const struct history_record *r, void *context)
{
	g_ptr_array_add(context, g_strdup_printf("%s %s %s %s %s", r->policy_domain,
						 history_disposition_name(r->disposition),
						 history_override_name(r->override),
						 r->override_comment != NULL && r->override_comment[0] ? r->override_comment : "-",
						 r->envelope_from));
}

/* records - what the day file holds, one summary line each, joined by "|". */
static char *records(struct fixture *f)
{
	GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
	struct history_read_stats st = { 0 };
	char *path = history_day_file(f->dir, T0), *error = NULL;

	if (history_read_file(path, collect, lines, &st, &error) < 0)
		g_clear_pointer(&error, g_free);
	g_assert_cmpuint(st.skipped, ==, 0);
	g_ptr_array_add(lines, NULL);
	char *all = g_strjoinv("|", (char **)lines->pdata);
	g_ptr_array_unref(lines);
	g_free(path);
	return all;
}

static void check(struct fixture *f, const struct verdict_history_groups *g, size_t count, const char *want)
{
	g_assert_cmpuint(verdict_history_append(f->history, f->v, "Bounce@Example.ORG", T0, g), ==, count);
	char *got = records(f);
	g_assert_cmpstr(got, ==, want);
	g_free(got);
}

static void test_trusted_sealer(struct fixture *f, gconstpointer data)
{
	struct verdict_history_groups g = { .count = 1, .arc_sealer = "arc.example.net" };

	(void)data;
	outcome(&f->v->dmarc, "example.org", VERDICT_FAIL, "reject", "reject", false);
	check(f, &g, 1, "example.org none trusted_forwarder arc.example.net example.org");
}

static void test_quarantine_on_without_dmarc(struct fixture *f, gconstpointer data)
{
	struct verdict_history_groups g = { .count = 1 };

	(void)data;
	outcome(&f->v->dmarc, "example.org", VERDICT_FAIL, "quarantine", "quarantine", false);
	check(f, &g, 1, "example.org none local_policy quarantine_on example.org");
}

static void test_reject_lowered_by_testing(struct fixture *f, gconstpointer data)
{
	struct verdict_history_groups g = { .count = 2, .quarantined = true, .observed = true };

	(void)data;
	/* p=reject t=y: quarantine applies, and an annotate group filed it
	 * (the observe group's delivery does not make it "none"). */
	outcome(&f->v->dmarc, "example.org", VERDICT_FAIL, "reject", "quarantine", true);
	check(f, &g, 1, "example.org quarantine policy_test_mode - example.org");
}

static void test_broken_from(struct fixture *f, gconstpointer data)
{
	struct verdict_history_groups g = { .count = 1, .quarantined = true };
	struct dmarc_outcome one;

	(void)data;
	outcome(&f->v->dmarc, "example.org", VERDICT_FAIL, "quarantine", "quarantine", false);
	f->v->dmarc.from_invalid = true;
	dmarc_outcome_author(&f->v->dmarc, &f->v->dmarc.authors[0]);
	outcome(&one, "example.net", VERDICT_PASS, "reject", "reject", false);
	dmarc_outcome_author(&one, &f->v->dmarc.authors[1]);
	outcome(&one, "nopolicy.example", VERDICT_NONE, "", "", false);
	one.policy_domain[0] = '\0';
	dmarc_outcome_author(&one, &f->v->dmarc.authors[2]);
	f->v->dmarc.author_count = 3;
	check(f, &g, 2, "example.org quarantine - - example.org|"
		     "example.net quarantine other another domain of the From field failed example.org");
}

static void test_no_record(struct fixture *f, gconstpointer data)
{
	struct verdict_history_groups g = { .count = 1 };

	(void)data;
	outcome(&f->v->dmarc, "example.org", VERDICT_NONE, "", "", false);
	f->v->dmarc.policy_domain[0] = '\0';
	g_assert_cmpuint(verdict_history_append(f->history, f->v, "", T0, &g), ==, 0);
	/* evaluated, but no group that checks DMARC (or DMARC never ran) */
	outcome(&f->v->dmarc, "example.org", VERDICT_PASS, "reject", "reject", false);
	g.count = 0;
	g_assert_cmpuint(verdict_history_append(f->history, f->v, "", T0, &g), ==, 0);
	g.count = 1;
	f->v->evaluated &= ~(unsigned)CHECK_DMARC;
	g_assert_cmpuint(verdict_history_append(f->history, f->v, "", T0, &g), ==, 0);
	g_assert_cmpuint(verdict_history_append(NULL, f->v, "", T0, &g), ==, 0);
	char *got = records(f);
	g_assert_cmpstr(got, ==, "");
	g_free(got);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/verdict_history/trusted-sealer", struct fixture, NULL, setup, test_trusted_sealer, teardown);
	g_test_add("/verdict_history/quarantine-on-without-dmarc", struct fixture, NULL, setup,
		   test_quarantine_on_without_dmarc, teardown);
	g_test_add("/verdict_history/reject-lowered-by-testing", struct fixture, NULL, setup,
		   test_reject_lowered_by_testing, teardown);
	g_test_add("/verdict_history/broken-from", struct fixture, NULL, setup, test_broken_from, teardown);
	g_test_add("/verdict_history/no-record", struct fixture, NULL, setup, test_no_record, teardown);
	return g_test_run();
}
