/*
 * verdict_history - the history records of one evaluated message
 *
 * Owns: which policy domains a message is recorded for (the From domain's,
 * or each domain a broken From names, that published a DMARC record; none
 * for "no policy", an authenticated submission or a DNS failure before a
 * record was found) and the RFC 9990 disposition and override reason of
 * each. The disposition is what the message got: quarantine when an
 * annotate group filed it there (whatever other groups did: the strictest
 * treatment a recipient saw), pass for a DMARC pass, else none. The
 * override says why that differs from the policy after t=y:
 *  - local_policy: a failure under p=quarantine|reject that no group
 *    quarantined (mode=observe, or quarantine_on without "dmarc"), or a
 *    p=reject failure quarantined rather than rejected (we never reject);
 *  - test_mode: t=y lowered the policy;
 *  - trusted_forwarder: a trusted ARC sealer vouched for the message (the
 *    sealer is the comment);
 *  - other: a broken From quarantined a message for which this domain passed.
 */
#include "lmtpfilter/verdict_history.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/evaluate.h"
#include "lmtpfilter/history.h"

#include <glib.h>
#include <string.h>

/* verdict_history_auth - an RFC 8601 result as the history spells it. */
static enum history_auth verdict_history_auth(enum verdict v)
{
	switch (v) {
	case VERDICT_PASS: return HISTORY_AUTH_PASS;
	case VERDICT_FAIL: return HISTORY_AUTH_FAIL;
	case VERDICT_SOFTFAIL: return HISTORY_AUTH_SOFTFAIL;
	case VERDICT_NEUTRAL: return HISTORY_AUTH_NEUTRAL;
	case VERDICT_TEMPERROR: return HISTORY_AUTH_TEMPERROR;
	case VERDICT_PERMERROR: return HISTORY_AUTH_PERMERROR;
	case VERDICT_POLICY: return HISTORY_AUTH_POLICY;
	case VERDICT_NONE: break;
	}
	return HISTORY_AUTH_NONE;
}

/* verdict_history_policy - p=/sp=/np= as published; "" is unset. */
static enum history_policy verdict_history_policy(const char *name)
{
	int p = name[0] != '\0' ? history_policy_parse(name) : -1;
	return p < 0 ? HISTORY_POLICY_UNSET : (enum history_policy)p;
}

static bool verdict_history_strict(const char *disposition)
{
	return strcmp(disposition, "quarantine") == 0 || strcmp(disposition, "reject") == 0;
}

/* verdict_history_quarantined - the override of a quarantined message:
 * none when this domain's policy (after t=y) asked for quarantine. */
static void verdict_history_quarantined(const struct dmarc_author_outcome *a, struct history_record *r)
{
	r->disposition = HISTORY_DISPOSITION_QUARANTINE;
	if (a->result == VERDICT_FAIL && strcmp(a->disposition, "reject") == 0) {
		r->override = HISTORY_OVERRIDE_LOCAL_POLICY;
		r->override_comment = "quarantined, not rejected";
	} else if (a->result == VERDICT_FAIL && verdict_history_strict(a->disposition)) {
		if (a->testing_lowered)     /* p=reject, t=y */
			r->override = HISTORY_OVERRIDE_TEST_MODE;
	} else if (a->result == VERDICT_PASS) {
		r->override = HISTORY_OVERRIDE_OTHER;
		r->override_comment = "another domain of the From field failed";
	} else {
		/* Only a broken From quarantines without this domain's policy. */
		r->override = HISTORY_OVERRIDE_LOCAL_POLICY;
		r->override_comment = "invalid From field";
	}
}

/* verdict_history_disposition - the disposition and override of one domain. */
static void verdict_history_disposition(const struct dmarc_author_outcome *a,
					const struct verdict_history_groups *g, struct history_record *r)
{
	if (g->quarantined) {
		verdict_history_quarantined(a, r);
		return;
	}
	if (a->result == VERDICT_PASS) {
		r->disposition = HISTORY_DISPOSITION_PASS;
		return;
	}
	r->disposition = HISTORY_DISPOSITION_NONE;
	if (a->result != VERDICT_FAIL)
		return;
	if (verdict_history_strict(a->disposition) && g->arc_sealer != NULL) {
		r->override = HISTORY_OVERRIDE_TRUSTED_FORWARDER;
		r->override_comment = g->arc_sealer;
	} else if (verdict_history_strict(a->disposition)) {
		r->override = HISTORY_OVERRIDE_LOCAL_POLICY;
		r->override_comment = g->observed ? "mode=observe" : "quarantine_on";
	} else if (a->testing_lowered) {
		r->override = HISTORY_OVERRIDE_TEST_MODE;
	}
}

/* verdict_history_auth_results - the DKIM signatures and the SPF identity. */
static void verdict_history_auth_results(const struct message_verdict *v, struct history_record *r)
{
	for (size_t i = 0; i < v->dkim.count && r->dkim_count < HISTORY_DKIM_MAX; i++) {
		const struct dkim_sig_result *s = &v->dkim.sigs[i];
		r->dkim[r->dkim_count++] = (struct history_dkim){
			.domain = s->domain, .selector = s->selector, .result = verdict_history_auth(s->result) };
	}
	if (v->spf_ran) {
		r->spf_domain = v->spf_mailfrom.domain;
		r->spf_scope_helo = g_strcmp0(v->spf_mailfrom.identity, "helo") == 0;
		r->spf_result = verdict_history_auth(v->spf_mailfrom.result);
	}
}

/* verdict_history_one - append the record of one domain. */
static int verdict_history_one(struct history *history, const struct message_verdict *v,
			       const struct dmarc_author_outcome *a, const char *envelope_from, time_t t,
			       const struct verdict_history_groups *g)
{
	struct history_record r = {
		.time = t, .source_ip = v->facts.client_ip, .envelope_from = envelope_from,
		.header_from = a->header_from, .policy_domain = a->policy_domain,
		.org_domain = a->org_domain, .p = verdict_history_policy(a->policy),
		.sp = verdict_history_policy(a->sp), .np = verdict_history_policy(a->np),
		.adkim = a->adkim == 's' ? 's' : 'r', .aspf = a->aspf == 's' ? 's' : 'r',
		.testing = a->testing,
		.psd = a->psd == 'y' ? HISTORY_PSD_Y : a->psd == 'n' ? HISTORY_PSD_N : HISTORY_PSD_U,
		.discovery = v->dmarc.mode == DMARC_DISCOVERY_PSL ? HISTORY_DISCOVERY_PSL
				: HISTORY_DISCOVERY_TREEWALK,
		.dkim_aligned = a->dkim_aligned, .spf_aligned = a->spf_aligned,
	};

	verdict_history_disposition(a, g, &r);
	verdict_history_auth_results(v, &r);
	return history_append(history, &r);
}

size_t verdict_history_append(struct history *history, const struct message_verdict *v,
			      const char *mail_from, time_t t, const struct verdict_history_groups *groups)
{
	const struct dmarc_outcome *d = &v->dmarc;
	struct dmarc_author_outcome single;
	const struct dmarc_author_outcome *authors = d->authors;
	size_t count = d->author_count, appended = 0;
	const char *at;

	if (history == NULL || groups->count == 0 || !(v->evaluated & CHECK_DMARC))
		return 0;
	at = strrchr(mail_from, '@');
	g_autofree char *envelope_from = g_ascii_strdown(at != NULL ? at + 1 : "", -1);
	if (!d->from_invalid) {
		dmarc_outcome_author(d, &single);
		authors = &single;
		count = 1;
	}
	for (size_t i = 0; i < count; i++) {
		/* No record, no policy domain to report to. */
		if (authors[i].policy_domain[0] == '\0' || authors[i].policy[0] == '\0')
			continue;
		if (verdict_history_one(history, v, &authors[i], envelope_from, t, groups) == 0)
			appended++;
	}
	return appended;
}
