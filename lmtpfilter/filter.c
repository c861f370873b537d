/*
 * filter - the seam between the LMTP proxy and the checks
 *
 * Owns: per transaction, the parsed header block, the evaluation (the
 * verdict is computed by evaluate.c, at most once per check), the bytes each
 * recipient group gets, our header fields and the log fields. Rendering
 * only reads the verdict and the disposition.
 *
 * For mode=off and mode=observe the view is the original bytes (observe
 * evaluates and logs what annotate would do). For mode=annotate it is our
 * Authentication-Results, Received-SPF and, when the disposition says so,
 * X-Disposition-Quarantine, then the original bytes with the insertions
 * normalize_find asks for ("X-Original-" before every field that claims to
 * be, or reads as, one of ours; a name before continuation lines that open
 * the block): nothing else changes, so signatures that verified before
 * still verify after.
 *
 * The DMARC history: filter_history_note sums, per group that evaluated
 * DMARC, what it did with the message; filter_tx_history appends the
 * message's records once, after every group (verdict_history.c).
 */
#include "lmtpfilter/filter.h"
#include "lmtpfilter/engine.h"
#include "lmtpfilter/log.h"
#include "lmtpfilter/metrics.h"
#include "lmtpfilter/spool.h"
#include "lmtpfilter/verdict_history.h"
#include "mime/authres.h"
#include "mime/header_block.h"
#include "mime/normalize.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define FILTER_LOG_FIELDS_MAX 512    /* bytes of the check fields on the transaction line */
#define FILTER_GROUP_LOG_MAX 8       /* groups whose action is logged (the session's group limit) */

struct filter_tx {
	struct engine *engine;
	const struct config *config;
	struct tx_facts facts;

	bool header_done;
	const char *header;
	size_t header_len;
	bool header_complete;
	struct header_block *block;

	struct evaluation *ev;
	unsigned logged_checks;               /* union of the evaluated groups' checks */
	const char *actions[FILTER_GROUP_LOG_MAX];
	const char *reasons[FILTER_GROUP_LOG_MAX];
	const char *overrides[FILTER_GROUP_LOG_MAX];  /* ARC sealer that overrode DMARC, or NULL */
	size_t action_count;
	char log_fields[FILTER_LOG_FIELDS_MAX];
	struct verdict_history_groups history_groups;
};

struct filter_tx *filter_tx_new(struct engine *engine, const struct config *config, const struct tx_facts *facts)
{
	struct filter_tx *ftx = g_new0(struct filter_tx, 1);
	ftx->engine = engine;
	ftx->config = config;
	ftx->facts = *facts;
	return ftx;
}

/* filter_count_results - each result of the verdict, once per message
 * however many recipient groups read it: dkim per signature (none when
 * unsigned), spf none when SPF did not apply; a check no group needed
 * did not run and is not counted. */
static void filter_count_results(const struct filter_tx *ftx)
{
	const struct message_verdict *v = ftx->ev != NULL ? evaluation_verdict(ftx->ev) : NULL;

	if (v == NULL)
		return;
	if (v->evaluated & CHECK_SPF)
		metrics_result(METRICS_SPF, v->spf_ran ? v->spf_mailfrom.result : VERDICT_NONE);
	if ((v->evaluated & CHECK_DKIM) && v->dkim.count == 0)
		metrics_result(METRICS_DKIM, VERDICT_NONE);
	for (size_t i = 0; (v->evaluated & CHECK_DKIM) && i < v->dkim.count; i++)
		metrics_result(METRICS_DKIM, v->dkim.sigs[i].result);
	if (v->evaluated & CHECK_DMARC)
		metrics_result(METRICS_DMARC, v->dmarc.result);
	if (v->evaluated & CHECK_ARC)
		metrics_result(METRICS_ARC, v->arc.result);
}

void filter_tx_free(struct filter_tx **ftxp)
{
	struct filter_tx *ftx = *ftxp;

	if (ftx == NULL)
		return;
	filter_count_results(ftx);
	evaluation_free(&ftx->ev);
	header_block_free(&ftx->block);
	g_free(ftx);
	*ftxp = NULL;
}

/* filter_header - read and parse the header block, once; 0, or -1 with
 * *error_r (g_malloc'd) the first time, untouched on a repeated call. */
static int filter_header(struct filter_tx *ftx, char **error_r)
{
	int complete;

	if (ftx->header_done)
		return ftx->block != NULL ? 0 : -1;
	ftx->header_done = true;
	if (spool_header_block(ftx->facts.spool, &ftx->header, &ftx->header_len, &complete, error_r) < 0)
		return -1;
	ftx->header_complete = complete;
	return header_block_parse(ftx->header, ftx->header_len, &ftx->block, error_r);
}

const struct message_verdict *filter_verdict(struct filter_tx *ftx, unsigned checks)
{
	g_autofree char *error = NULL;

	if (ftx->ev == NULL) {
		if (filter_header(ftx, &error) < 0)
			return NULL;
		struct evaluation_input in = { .mail_from = ftx->facts.mail_from, .xforward = ftx->facts.xforward,
					       .cli = ftx->facts.cli, .spool = ftx->facts.spool, .block = ftx->block };
		ftx->ev = evaluation_new(&ftx->engine->checkers, ftx->config, &in);
	}
	return evaluation_run(ftx->ev, checks);
}

void filter_disposition(struct filter_tx *ftx, const struct domain_policy *policy, struct disposition *out_r)
{
	const struct message_verdict *v = evaluation_verdict(ftx->ev);
	bool trusted = (v->evaluated & CHECK_ARC) &&
		       config_arc_sealer_trusted(ftx->config, policy, v->arc.sealer_domain);

	disposition_decide_arc(v, policy->checks, policy->quarantine_on, trusted, out_r);
}

/* ---- rendering ---- */

/* render_spf_none - spf=none and its Received-SPF when SPF did not apply. */
static void render_spf_none(const struct message_verdict *v, const char *from, struct authres *ar, struct received_spf *rs,
			    char *comment, size_t size)
{
	const struct conn_facts *c = &v->facts;
	const char *why = c->authenticated ? "authenticated submission"
			  : c->source == FACTS_NONE ? c->reason : c->all_trusted ? "locally generated" : "";

	authres_add(ar, "spf", VERDICT_NONE, why[0] ? why : NULL, "smtp.mailfrom", from[0] ? from : NULL,
		    "smtp.helo", c->helo[0] ? c->helo : NULL, NULL);
	if (c->authenticated)
		snprintf(comment, size, "authenticated submission, SPF not applied");
	else if (c->source == FACTS_NONE)
		snprintf(comment, size, "no trustworthy connection facts: %s", c->reason);
	else if (c->all_trusted)
		snprintf(comment, size, "locally generated: %s", c->reason);
	rs->result = VERDICT_NONE;
	rs->comment = comment;
	rs->identity = from[0] ? "mailfrom" : "helo";
}

static void render_spf(const struct filter_tx *ftx, const struct message_verdict *v, struct authres *ar, GString *out)
{
	const struct conn_facts *c = &v->facts;
	const char *from = ftx->facts.mail_from;
	struct received_spf rs = { .receiver = ftx->config->authserv_id, .client_ip = c->client_ip[0] ? c->client_ip : NULL,
				   .envelope_from = from, .helo = c->helo[0] ? c->helo : NULL };
	char comment[300] = "";

	if (c->authenticated)
		authres_add(ar, "auth", VERDICT_PASS, NULL, "smtp.auth", c->auth_user[0] ? c->auth_user : NULL, NULL);
	if (!v->spf_ran) {
		render_spf_none(v, from, ar, &rs, comment, sizeof(comment));
	} else {
		const struct spf_outcome *s = &v->spf_mailfrom;
		authres_add(ar, "spf", s->result, s->reason[0] ? s->reason : NULL,
			    "smtp.mailfrom", s->sender[0] ? s->sender : NULL, "smtp.helo", c->helo[0] ? c->helo : NULL, NULL);
		rs.result = s->result;
		rs.identity = s->identity;
		rs.mechanism = s->mechanism[0] ? s->mechanism : NULL;
		rs.envelope_from = s->sender;
	}
	char *text = received_spf_render(&rs);
	g_string_append(out, text);
	g_free(text);
}

static void render_dkim(const struct message_verdict *v, struct authres *ar)
{
	if (v->dkim.count == 0) {
		authres_add(ar, "dkim", VERDICT_NONE, "message not signed", NULL);
		return;
	}
	for (size_t i = 0; i < v->dkim.count; i++) {
		const struct dkim_sig_result *s = &v->dkim.sigs[i];
		authres_add(ar, "dkim", s->result, s->reason[0] ? s->reason : NULL,
			    "header.d", s->domain[0] ? s->domain : NULL, "header.i", s->identity[0] ? s->identity : NULL,
			    "header.s", s->selector[0] ? s->selector : NULL, "header.a", s->algorithm[0] ? s->algorithm : NULL,
			    "header.b", s->b[0] ? s->b : NULL, NULL);
	}
}

/* render_dmarc - the dmarc entry; under an ARC override "dis=none" and
 * the sealer in its comment. */
static void render_dmarc(const struct message_verdict *v, const struct disposition *d, struct authres *ar)
{
	char comment[300];

	if (d->arc_override) {
		struct dmarc_outcome dm = v->dmarc;
		char base[200];
		g_strlcpy(dm.disposition, "none", sizeof(dm.disposition));
		dmarc_outcome_comment(&dm, base, sizeof(base));
		g_snprintf(comment, sizeof(comment), "%s, %s", base, d->override);
	} else {
		dmarc_outcome_comment(&v->dmarc, comment, sizeof(comment));
	}
	authres_add(ar, "dmarc", v->dmarc.result, comment[0] ? comment : NULL,
		    "header.from", v->dmarc.header_from[0] ? v->dmarc.header_from : NULL, NULL);
}

/* render_arc - arc=RESULT, the reason in the comment when it is not a
 * pass, header.oldest-pass with a pass, and smtp.remote-ip (RFC 8617 4.4
 * and its IANA registration). */
static void render_arc(const struct message_verdict *v, struct authres *ar)
{
	const struct arc_outcome *a = &v->arc;
	char oldest[16] = "";

	if (a->result == VERDICT_PASS)
		g_snprintf(oldest, sizeof(oldest), "%u", a->oldest_pass);
	authres_add(ar, "arc", a->result, a->result != VERDICT_PASS && a->result != VERDICT_NONE && a->reason[0] ?
		    a->reason : NULL, "header.oldest-pass", oldest,
		    "smtp.remote-ip", v->facts.client_ip[0] ? v->facts.client_ip : NULL, NULL);
}

/* filter_render_headers - our Authentication-Results, Received-SPF and
 * X-Disposition-Quarantine for the check set (g_free). */
static char *filter_render_headers(const struct filter_tx *ftx, const struct message_verdict *v, unsigned checks,
				   const struct disposition *d)
{
	struct authres *ar = authres_new(ftx->config->authserv_id);
	GString *spf = g_string_new(NULL);

	if (checks & CHECK_SPF)
		render_spf(ftx, v, ar, spf);
	if (checks & CHECK_DKIM)
		render_dkim(v, ar);
	if (checks & CHECK_DMARC)
		render_dmarc(v, d, ar);
	if (checks & CHECK_ARC)
		render_arc(v, ar);
	char *text = authres_render(ar);
	authres_free(&ar);
	char *quarantine = disposition_render(d);
	char *all = g_strconcat(text, spf->str, quarantine != NULL ? quarantine : "", NULL);
	g_free(quarantine);
	g_free(text);
	g_string_free(spf, TRUE);
	return all;
}

/* ---- the log line ---- */

/* log_join - " key=a,b" of the distinct values, in order. */
static void log_join(GString *s, const char *key, const char *const *values, size_t count)
{
	bool any = false;

	for (size_t i = 0; i < count; i++) {
		if (values[i] == NULL)
			continue;
		size_t j;
		for (j = 0; j < i && g_strcmp0(values[j], values[i]) != 0; j++)
			;
		if (j < i)
			continue;
		if (!any) {
			g_string_append_c(s, ' ');
			g_string_append(s, key);
		}
		g_string_append_c(s, any ? ',' : '=');
		g_string_append(s, values[i]);
		any = true;
	}
}

/* log_field - " key=value" (appends, not printf: once per group). */
static void log_field(GString *s, const char *key, const char *value)
{
	g_string_append_c(s, ' ');
	g_string_append(s, key);
	g_string_append_c(s, '=');
	g_string_append(s, value);
}

static void filter_set_log_fields(struct filter_tx *ftx)
{
	const struct message_verdict *v = evaluation_verdict(ftx->ev);
	unsigned checks = ftx->logged_checks & v->evaluated;
	GString *s = g_string_new(NULL);

	if (v->facts.client_ip[0])
		log_field(s, "facts", facts_source_name(v->facts.source));
	if (checks & CHECK_SPF)
		log_field(s, "spf", v->spf_ran ? verdict_name(v->spf_mailfrom.result)
					: v->facts.authenticated ? "auth" : "none");
	if (checks & CHECK_DKIM) {
		g_string_append(s, " dkim=");
		if (v->dkim.count == 0)
			g_string_append(s, "none");
		for (size_t i = 0; i < v->dkim.count; i++) {
			if (i)
				g_string_append_c(s, ',');
			g_string_append(s, verdict_name(v->dkim.sigs[i].result));
		}
	}
	if (checks & CHECK_DMARC)
		log_field(s, "dmarc", verdict_name(v->dmarc.result));
	if (checks & CHECK_ARC)
		log_field(s, "arc", verdict_name(v->arc.result));
	log_join(s, "action", ftx->actions, ftx->action_count);
	log_join(s, "reason", ftx->reasons, ftx->action_count);
	log_join(s, "arc_override", ftx->overrides, ftx->action_count);
	g_strlcpy(ftx->log_fields, s->str, sizeof(ftx->log_fields));
	g_string_free(s, TRUE);
}

/* filter_log_group - remember what this group's recipients get. */
static void filter_log_group(struct filter_tx *ftx, const struct domain_policy *policy, const struct disposition *d)
{
	bool quarantine = disposition_quarantines(d);
	bool observe = policy->mode == DOMAIN_MODE_OBSERVE;

	ftx->logged_checks |= policy->checks;
	if (ftx->action_count < FILTER_GROUP_LOG_MAX) {
		ftx->actions[ftx->action_count] = !quarantine ? "deliver" : observe ? "would-quarantine" : "quarantine";
		ftx->reasons[ftx->action_count] = quarantine ? disposition_reason_name(d->reason) : NULL;
		/* The sealer as the verdict holds it: it outlives the transaction's log line. */
		ftx->overrides[ftx->action_count] = d->arc_override ? evaluation_verdict(ftx->ev)->arc.sealer_domain : NULL;
		ftx->action_count++;
	}
	filter_set_log_fields(ftx);
}

/* ---- the DMARC history ---- */

/* filter_history_note - what a group that evaluated DMARC did with it. */
static void filter_history_note(struct filter_tx *ftx, const struct domain_policy *policy, const struct disposition *d)
{
	struct verdict_history_groups *g = &ftx->history_groups;

	if (!(policy->checks & CHECK_DMARC))
		return;
	g->count++;
	if (policy->mode == DOMAIN_MODE_OBSERVE)
		g->observed = true;
	else if (disposition_quarantines(d))
		g->quarantined = true;
	/* The trusted ARC sealer that set the disposition to none: the
	 * verdict's newest sealer (it outlives d, a copy on our caller's stack). */
	if (d->arc_override)
		g->arc_sealer = evaluation_verdict(ftx->ev)->arc.sealer_domain;
}

void filter_tx_history(struct filter_tx *ftx)
{
	if (ftx->engine->history == NULL || ftx->ev == NULL)
		return;
	verdict_history_append(ftx->engine->history, evaluation_verdict(ftx->ev), ftx->facts.mail_from, time(NULL),
			       &ftx->history_groups);
}

/* ---- the bytes of a group ---- */

/* filter_observe - evaluate and log for mode=observe; never changes the
 * bytes, and a header block we cannot read only goes unevaluated. */
static void filter_observe(struct filter_tx *ftx, const struct domain_policy *policy,
			   enum disposition_reason *reason_r)
{
	struct disposition d;

	if (filter_verdict(ftx, policy->checks) == NULL) {
		log_warning("peer=%s observe: cannot read the header block, not evaluated", ftx->facts.peer);
		return;
	}
	filter_disposition(ftx, policy, &d);
	filter_log_group(ftx, policy, &d);
	filter_history_note(ftx, policy, &d);
	*reason_r = d.reason;
}

static int filter_annotate(struct filter_tx *ftx, const struct domain_policy *policy, struct message_view *view,
			   enum disposition_reason *reason_r, struct lmtp_reply *fail_r)
{
	const struct config *config = ftx->config;
	uint64_t size = spool_size(ftx->facts.spool);
	g_autofree char *error = NULL;
	struct normalize_edit *edits = NULL;
	size_t edit_count = 0;
	struct disposition d;

	if (filter_header(ftx, &error) < 0) {
		log_error("cannot read the header block: %s", error != NULL ? error : "?");
		reply_set(fail_r, 451, "4.3.0", "Temporary failure while reading the message");
		return -1;
	}
	if (!ftx->header_complete) {
		/* Forged results past the part we can scan could not be removed. */
		reply_set(fail_r, 552, "5.3.4", "Message header too large");
		return -1;
	}
	if (normalize_find(ftx->block, config->authserv_id, config->authserv_id_aliases,
			   config->authserv_id_alias_count, &edits, &edit_count) < 0) {
		reply_set(fail_r, 451, "4.3.0", "Temporary failure while processing the message");
		return -1;
	}
	const struct message_verdict *v = filter_verdict(ftx, policy->checks);
	filter_disposition(ftx, policy, &d);
	filter_log_group(ftx, policy, &d);
	filter_history_note(ftx, policy, &d);
	*reason_r = d.reason;
	char *headers = filter_render_headers(ftx, v, policy->checks, &d);
	message_view_add_text(view, headers, strlen(headers));
	g_free(headers);
	uint64_t pos = 0;
	for (size_t i = 0; i < edit_count; i++) {
		message_view_add_range(view, pos, edits[i].offset - pos);
		message_view_add_text(view, edits[i].text, strlen(edits[i].text));
		pos = edits[i].offset;
	}
	message_view_add_range(view, pos, size - pos);
	g_free(edits);
	return 0;
}

int filter_prepare(struct filter_tx *ftx, const struct domain_policy *policy, struct message_view *view,
		   enum disposition_reason *reason_r, struct lmtp_reply *fail_r)
{
	enum disposition_reason unused;

	if (reason_r == NULL)
		reason_r = &unused;
	*reason_r = DISPOSITION_DELIVER;
	switch (policy->mode) {
	case DOMAIN_MODE_ANNOTATE:
		return filter_annotate(ftx, policy, view, reason_r, fail_r);
	case DOMAIN_MODE_OBSERVE:
		filter_observe(ftx, policy, reason_r);
		break;
	case DOMAIN_MODE_OFF:
		break;
	}
	message_view_add_range(view, 0, spool_size(ftx->facts.spool));
	return 0;
}

const char *filter_log_fields(struct filter_tx *ftx)
{
	return ftx->log_fields;
}

size_t filter_header_length(struct filter_tx *ftx)
{
	g_autofree char *error = NULL;

	return filter_header(ftx, &error) == 0 ? ftx->header_len : 0;
}
