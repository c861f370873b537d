/*
 * filter - the seam between the LMTP proxy and the checks
 *
 * Owns: the process-wide checkers (resolver, SPF, DKIM, DMARC; built once
 * before the workers start) and, per transaction, the facts and verdicts,
 * each computed at most once and only when a recipient group needs it.
 *
 * For mode=off the view is the original bytes. For mode=annotate it is our
 * Authentication-Results and Received-SPF, then the original bytes with the
 * insertions normalize_find asks for ("X-Original-" before every field that
 * claims to be, or reads as, one of ours; a name before continuation lines
 * that open the block): nothing else changes, so signatures that verified
 * before still verify after.
 */
#include "lmtpfilter/filter.h"
#include "lmtpfilter/dkim.h"
#include "lmtpfilter/dmarc.h"
#include "lmtpfilter/engine.h"
#include "lmtpfilter/log.h"
#include "lmtpfilter/resolver.h"
#include "lmtpfilter/spf.h"
#include "lmtpfilter/spool.h"
#include "mime/authres.h"
#include "mime/header_block.h"
#include "mime/normalize.h"
#include "mime/trail.h"

#include <arpa/inet.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#define FILTER_FROM_MAX 16       /* From values handed to DMARC; more are joined into the last */

struct filter_checks {
	struct resolver *resolver;
	struct spf_checker *spf;
	struct dkim_verifier *dkim;
	struct dmarc_checker *dmarc;
};

struct filter_tx {
	struct engine *engine;
	const struct config *config;
	struct tx_facts facts;

	bool header_done;
	const char *header;
	size_t header_len;
	bool header_complete;
	struct header_block *block;

	bool conn_done;
	struct conn_facts conn;

	bool spf_done, spf_ran;
	struct spf_outcome spf_mailfrom, spf_helo;
	bool dkim_done;
	struct dkim_outcome dkim;
	bool dmarc_done;
	struct dmarc_outcome dmarc;

	char log_fields[512];
};

/* ---- process-wide ---- */

int filter_engine_init(struct engine *engine, const struct config *config, char **error_r)
{
	struct filter_checks *c = g_new0(struct filter_checks, 1);
	struct spf_dns spf_dns;
	struct dmarc_dns dmarc_dns;

	engine->checks = c;
	if (resolver_new(config->dns_servers, config->dns_server_count, config->dns_timeout * 1000,
			 &c->resolver, error_r) < 0)
		return -1;
	spf_dns_for_resolver(c->resolver, &spf_dns);
	if (spf_checker_new(&spf_dns, config->authserv_id, &c->spf, error_r) < 0)
		return -1;
	if (dkim_verifier_new(c->resolver, NULL, &c->dkim, error_r) < 0)
		return -1;
	dmarc_dns_for_resolver(c->resolver, &dmarc_dns);
	if (dmarc_checker_new(&dmarc_dns, &c->dmarc, error_r) < 0)
		return -1;
	return 0;
}

void filter_engine_deinit(struct engine *engine)
{
	struct filter_checks *c = engine->checks;

	if (c == NULL)
		return;
	if (c->resolver != NULL)
		log_info("resolver dns_queries=%lu", resolver_queries_sent(c->resolver));
	dmarc_checker_free(&c->dmarc);
	dkim_verifier_free(&c->dkim);
	spf_checker_free(&c->spf);
	resolver_free(&c->resolver);
	g_free(c);
	engine->checks = NULL;
}

struct resolver *filter_engine_resolver(struct engine *engine)
{
	return engine->checks != NULL ? ((struct filter_checks *)engine->checks)->resolver : NULL;
}

/* ---- per transaction ---- */

struct filter_tx *filter_tx_new(struct engine *engine, const struct config *config, const struct tx_facts *facts)
{
	struct filter_tx *ftx = g_new0(struct filter_tx, 1);
	ftx->engine = engine;
	ftx->config = config;
	ftx->facts = *facts;
	return ftx;
}

void filter_tx_free(struct filter_tx **ftxp)
{
	struct filter_tx *ftx = *ftxp;

	if (ftx == NULL)
		return;
	header_block_free(&ftx->block);
	g_free(ftx);
	*ftxp = NULL;
}

static int filter_header(struct filter_tx *ftx, const char **error_r)
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

static bool trusted_ip(void *ctx, const char *ip)
{
	return config_is_trusted_ip(ctx, ip);
}

/* filter_authenticated_submission - the one place that decides whether
 * the message is an authenticated submission, whichever way the facts
 * came (XFORWARD, the trail, the command line). XFORWARD carries no
 * authentication flag, so the sign is always the Received line our MTA
 * wrote for the border hop (trail_facts: our authenticated protocol, never
 * words the client could have put there); when XFORWARD or the command
 * line named the client, that line must be about the same client. Then
 * neither SPF nor DMARC applies to the message. */
static void filter_authenticated_submission(struct conn_facts *c, const struct conn_facts *trail)
{
	c->authenticated = false;
	c->auth_user[0] = '\0';
	if (trail->source != FACTS_TRAIL || !trail->authenticated)
		return;
	if (c->source != FACTS_TRAIL && strcmp(trail->client_ip, c->client_ip) != 0)
		return;
	c->authenticated = true;
	g_strlcpy(c->auth_user, trail->auth_user, sizeof(c->auth_user));
}

/* Who handed the message to us: XFORWARD from Postfix, else the trail. */
static void filter_conn_facts(struct filter_tx *ftx)
{
	const struct xforward *xf = ftx->facts.xforward;
	const struct config *config = ftx->config;
	struct conn_facts trail;
	struct conn_facts *c = &ftx->conn;

	if (ftx->conn_done)
		return;
	ftx->conn_done = true;
	trail_facts(ftx->block, config->mta_hostnames, config->mta_hostname_count, trusted_ip,
		    (void *)config, &trail);
	if (ftx->facts.cli != NULL) {
		*c = *ftx->facts.cli;
	} else if (xf == NULL || xf->addr[0] == '\0' || config_is_trusted_ip(config, xf->addr)) {
		/* No XFORWARD, or it names a relay we trust: the trail knows more. */
		*c = trail;
	} else {
		memset(c, 0, sizeof(*c));
		c->source = FACTS_XFORWARD;
		const char *ip = xf->addr;
		if (g_ascii_strncasecmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.') != NULL)
			ip += 7;
		g_strlcpy(c->client_ip, ip, sizeof(c->client_ip));
		g_strlcpy(c->helo, xf->helo, sizeof(c->helo));
		if (g_ascii_strcasecmp(xf->name, "unknown") != 0)
			g_strlcpy(c->rdns, xf->name, sizeof(c->rdns));
	}
	filter_authenticated_submission(c, &trail);
}

static bool filter_spf_applies(const struct filter_tx *ftx)
{
	const struct conn_facts *c = &ftx->conn;
	return c->source != FACTS_NONE && !c->all_trusted && !c->authenticated;
}

/* filter_dmarc_applies - DMARC protects our users from mail that claims
 * their domain; a message our MTA accepted after authentication is theirs. */
static bool filter_dmarc_applies(const struct filter_tx *ftx)
{
	return !ftx->conn.authenticated;
}

static void filter_spf(struct filter_tx *ftx)
{
	struct filter_checks *checks = ftx->engine->checks;

	if (ftx->spf_done)
		return;
	ftx->spf_done = true;
	filter_conn_facts(ftx);
	if (!filter_spf_applies(ftx))
		return;
	if (spf_check(checks->spf, ftx->conn.client_ip, ftx->conn.helo, ftx->facts.mail_from,
		      &ftx->spf_mailfrom, &ftx->spf_helo) < 0) {
		ftx->spf_mailfrom.result = VERDICT_TEMPERROR;
		g_strlcpy(ftx->spf_mailfrom.reason, "internal error", sizeof(ftx->spf_mailfrom.reason));
	}
	ftx->spf_ran = true;
}

static void filter_dkim(struct filter_tx *ftx)
{
	struct filter_checks *checks = ftx->engine->checks;
	char *error = NULL;

	if (ftx->dkim_done)
		return;
	ftx->dkim_done = true;
	if (dkim_verify_message(checks->dkim, dkim_spool_read, ftx->facts.spool, spool_size(ftx->facts.spool),
				&ftx->dkim, &error) < 0) {
		/* Not "none": there may be signatures we could not check. */
		log_warning("dkim error=\"%s\"", error != NULL ? error : "?");
		memset(&ftx->dkim, 0, sizeof(ftx->dkim));
		ftx->dkim.count = 1;
		ftx->dkim.sigs[0].result = VERDICT_TEMPERROR;
		g_strlcpy(ftx->dkim.sigs[0].reason, "verification failed", sizeof(ftx->dkim.sigs[0].reason));
		g_free(error);
	}
}

/* filter_from_values - the From fields as Dovecot reads them (by its
 * reading of names, NUL bytes as spaces): a domain hidden from us must be
 * hidden from Sieve too. Fields past FILTER_FROM_MAX are joined to the
 * last value, so DMARC still scans every domain they name. */
static size_t filter_from_values(const struct filter_tx *ftx, char **from)
{
	GString *last = NULL;
	size_t count = 0;

	for (size_t i = 0; i < ftx->block->count; i++) {
		const struct raw_header *h = &ftx->block->headers[i];
		char *value;

		if (!header_name_reads_as(h, "From"))
			continue;
		value = header_value_unfold(h);
		if (count < FILTER_FROM_MAX - 1)
			from[count++] = value;
		else {
			last = last == NULL ? g_string_new(NULL) : g_string_append_c(last, ',');
			g_string_append(last, value);
			g_free(value);
		}
	}
	if (last != NULL)
		from[count++] = g_string_free(last, FALSE);
	return count;
}

static void filter_dmarc(struct filter_tx *ftx)
{
	struct filter_checks *checks = ftx->engine->checks;
	char *from[FILTER_FROM_MAX];
	size_t from_count = 0;
	enum verdict dkim_results[DKIM_SIGNATURES_MAX];
	char *dkim_domains[DKIM_SIGNATURES_MAX];

	if (ftx->dmarc_done)
		return;
	ftx->dmarc_done = true;
	filter_spf(ftx);
	if (!filter_dmarc_applies(ftx)) {
		/* Rendered "dmarc=none (authenticated submission)": no policy, no disposition. */
		memset(&ftx->dmarc, 0, sizeof(ftx->dmarc));
		ftx->dmarc.result = VERDICT_NONE;
		g_strlcpy(ftx->dmarc.reason, "authenticated submission", sizeof(ftx->dmarc.reason));
		return;
	}
	filter_dkim(ftx);
	from_count = filter_from_values(ftx, from);
	for (size_t i = 0; i < ftx->dkim.count; i++) {
		dkim_results[i] = ftx->dkim.sigs[i].result;
		dkim_domains[i] = ftx->dkim.sigs[i].domain;
	}
	const struct spf_outcome *spf = &ftx->spf_mailfrom;
	struct dmarc_input in = {
		.from_values = from, .from_count = from_count,
		.spf_result = ftx->spf_ran ? spf->result : VERDICT_NONE,
		.spf_domain = ftx->spf_ran ? spf->domain : NULL,
		.spf_is_helo = ftx->spf_ran && g_strcmp0(spf->identity, "helo") == 0,
		.dkim_count = ftx->dkim.count, .dkim_results = dkim_results, .dkim_domains = dkim_domains,
		.client_ip = ftx->conn.client_ip[0] ? ftx->conn.client_ip : NULL,
	};
	if (dmarc_check(checks->dmarc, &in, &ftx->dmarc) < 0) {
		ftx->dmarc.result = VERDICT_TEMPERROR;
		g_strlcpy(ftx->dmarc.reason, "internal error", sizeof(ftx->dmarc.reason));
	}
	for (size_t i = 0; i < from_count; i++)
		g_free(from[i]);
}

/* Evaluate what the check set needs. */
void filter_evaluate(struct filter_tx *ftx, unsigned checks)
{
	filter_conn_facts(ftx);
	if (checks & CHECK_SPF)
		filter_spf(ftx);
	if (checks & CHECK_DKIM)
		filter_dkim(ftx);
	if (checks & CHECK_DMARC)
		filter_dmarc(ftx);
}

/* ---- rendering ---- */

static void render_spf(struct filter_tx *ftx, struct authres *ar, GString *out)
{
	const struct conn_facts *c = &ftx->conn;
	const char *id = ftx->config->authserv_id;
	const char *from = ftx->facts.mail_from;
	struct received_spf rs = { .receiver = id, .client_ip = c->client_ip[0] ? c->client_ip : NULL,
				   .envelope_from = from, .helo = c->helo[0] ? c->helo : NULL };
	char comment[300];

	if (c->authenticated) {
		authres_add(ar, "auth", VERDICT_PASS, NULL, "smtp.auth", c->auth_user[0] ? c->auth_user : NULL, NULL);
		snprintf(comment, sizeof(comment), "authenticated submission, SPF not applied");
	} else if (c->source == FACTS_NONE) {
		snprintf(comment, sizeof(comment), "no trustworthy connection facts: %s", c->reason);
	} else if (c->all_trusted) {
		snprintf(comment, sizeof(comment), "locally generated: %s", c->reason);
	}
	if (!ftx->spf_ran) {
		char arc[200];
		snprintf(arc, sizeof(arc), "%s", c->authenticated ? "authenticated submission"
					  : c->source == FACTS_NONE ? c->reason : c->all_trusted ? "locally generated" : "");
		authres_add(ar, "spf", VERDICT_NONE, arc[0] ? arc : NULL,
			    "smtp.mailfrom", from[0] ? from : NULL, "smtp.helo", c->helo[0] ? c->helo : NULL, NULL);
		rs.result = VERDICT_NONE;
		rs.comment = comment;
		rs.identity = from[0] ? "mailfrom" : "helo";
	} else {
		const struct spf_outcome *s = &ftx->spf_mailfrom;
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

static void render_dkim(struct filter_tx *ftx, struct authres *ar)
{
	if (ftx->dkim.count == 0) {
		authres_add(ar, "dkim", VERDICT_NONE, "message not signed", NULL);
		return;
	}
	for (size_t i = 0; i < ftx->dkim.count; i++) {
		const struct dkim_sig_result *s = &ftx->dkim.sigs[i];
		authres_add(ar, "dkim", s->result, s->reason[0] ? s->reason : NULL,
			    "header.d", s->domain[0] ? s->domain : NULL, "header.i", s->identity[0] ? s->identity : NULL,
			    "header.s", s->selector[0] ? s->selector : NULL, "header.a", s->algorithm[0] ? s->algorithm : NULL,
			    "header.b", s->b[0] ? s->b : NULL, NULL);
	}
}

static void render_dmarc(struct filter_tx *ftx, struct authres *ar)
{
	char comment[300];

	dmarc_outcome_comment(&ftx->dmarc, comment, sizeof(comment));
	authres_add(ar, "dmarc", ftx->dmarc.result, comment[0] ? comment : NULL,
		    "header.from", ftx->dmarc.header_from[0] ? ftx->dmarc.header_from : NULL, NULL);
}

/* filter_render_headers - our Authentication-Results and Received-SPF for the check set. */
char *filter_render_headers(struct filter_tx *ftx, unsigned checks)
{
	struct authres *ar = authres_new(ftx->config->authserv_id);
	GString *spf = g_string_new(NULL);

	filter_evaluate(ftx, checks);
	if (checks & CHECK_SPF)
		render_spf(ftx, ar, spf);
	if (checks & CHECK_DKIM)
		render_dkim(ftx, ar);
	if (checks & CHECK_DMARC)
		render_dmarc(ftx, ar);
	char *text = authres_render(ar);
	authres_free(&ar);
	char *all = g_strconcat(text, spf->str, NULL);
	g_free(text);
	g_string_free(spf, TRUE);
	return all;
}

static void filter_set_log_fields(struct filter_tx *ftx, unsigned checks)
{
	GString *s = g_string_new(NULL);

	if (ftx->conn.client_ip[0])
		g_string_append_printf(s, " facts=%s", ftx->conn.source == FACTS_XFORWARD ? "xforward" : "trail");
	if ((checks & CHECK_SPF) && ftx->spf_done)
		g_string_append_printf(s, " spf=%s", ftx->spf_ran ? verdict_name(ftx->spf_mailfrom.result)
						 : ftx->conn.authenticated ? "auth" : "none");
	if ((checks & CHECK_DKIM) && ftx->dkim_done) {
		g_string_append(s, " dkim=");
		if (ftx->dkim.count == 0)
			g_string_append(s, "none");
		for (size_t i = 0; i < ftx->dkim.count; i++)
			g_string_append_printf(s, "%s%s", i ? "," : "", verdict_name(ftx->dkim.sigs[i].result));
	}
	if ((checks & CHECK_DMARC) && ftx->dmarc_done)
		g_string_append_printf(s, " dmarc=%s", verdict_name(ftx->dmarc.result));
	g_strlcpy(ftx->log_fields, s->str, sizeof(ftx->log_fields));
	g_string_free(s, TRUE);
}

int filter_prepare(struct filter_tx *ftx, const struct domain_policy *policy, struct message_view *view,
		   struct lmtp_reply *fail_r)
{
	const struct config *config = ftx->config;
	uint64_t size = spool_size(ftx->facts.spool);
	const char *error = NULL;
	struct normalize_edit *edits = NULL;
	size_t edit_count = 0;

	if (policy->mode == DOMAIN_MODE_OFF) {
		message_view_add_range(view, 0, size);
		return 0;
	}
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
	char *headers = filter_render_headers(ftx, policy->checks);
	filter_set_log_fields(ftx, policy->checks);
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

const char *filter_log_fields(struct filter_tx *ftx)
{
	return ftx->log_fields;
}

/* ---- JSON for "lmtpfilter check --json" ---- */

static void json_string(GString *out, const char *s)
{
	g_string_append_c(out, '"');
	for (const unsigned char *p = (const unsigned char *)(s != NULL ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			g_string_append_printf(out, "\\u%04x", *p);
		else
			g_string_append_c(out, (char)*p);
	}
	g_string_append_c(out, '"');
}

static void json_field(GString *out, const char *key, const char *value, bool comma)
{
	json_string(out, key);
	g_string_append_c(out, ':');
	json_string(out, value);
	if (comma)
		g_string_append_c(out, ',');
}

static const char *facts_source_name(enum facts_source source)
{
	switch (source) {
	case FACTS_XFORWARD: return "xforward";
	case FACTS_TRAIL: return "trail";
	case FACTS_OPTIONS: return "options";
	case FACTS_NONE: break;
	}
	return "none";
}

char *filter_json(struct filter_tx *ftx, unsigned checks, const char *headers)
{
	GString *o = g_string_new("{");
	const struct conn_facts *c = &ftx->conn;

	filter_evaluate(ftx, checks);
	g_string_append(o, "\"facts\":{");
	json_field(o, "source", facts_source_name(c->source), true);
	json_field(o, "client_ip", c->client_ip, true);
	json_field(o, "helo", c->helo, true);
	json_field(o, "rdns", c->rdns, true);
	g_string_append_printf(o, "\"authenticated\":%s,\"all_trusted\":%s,",
			       c->authenticated ? "true" : "false", c->all_trusted ? "true" : "false");
	json_field(o, "auth_user", c->auth_user, true);
	json_field(o, "reason", c->reason, false);
	g_string_append(o, "}");
	if (checks & CHECK_SPF) {
		const struct spf_outcome *s = &ftx->spf_mailfrom;
		g_string_append(o, ",\"spf\":{");
		json_field(o, "result", ftx->spf_ran ? verdict_name(s->result) : "none", true);
		json_field(o, "identity", ftx->spf_ran ? s->identity : "", true);
		json_field(o, "sender", ftx->spf_ran ? s->sender : ftx->facts.mail_from, true);
		json_field(o, "domain", ftx->spf_ran ? s->domain : "", true);
		json_field(o, "mechanism", ftx->spf_ran ? s->mechanism : "", true);
		json_field(o, "reason", ftx->spf_ran ? s->reason : "", true);
		json_field(o, "helo_result", ftx->spf_ran ? verdict_name(ftx->spf_helo.result) : "none", false);
		g_string_append(o, "}");
	}
	if (checks & CHECK_DKIM) {
		g_string_append(o, ",\"dkim\":[");
		for (size_t i = 0; i < ftx->dkim.count; i++) {
			const struct dkim_sig_result *s = &ftx->dkim.sigs[i];
			g_string_append(o, i ? ",{" : "{");
			json_field(o, "result", verdict_name(s->result), true);
			json_field(o, "domain", s->domain, true);
			json_field(o, "identity", s->identity, true);
			json_field(o, "selector", s->selector, true);
			json_field(o, "algorithm", s->algorithm, true);
			json_field(o, "b", s->b, true);
			json_field(o, "reason", s->reason, false);
			g_string_append(o, "}");
		}
		g_string_append(o, "]");
	}
	if (checks & CHECK_DMARC) {
		const struct dmarc_outcome *d = &ftx->dmarc;
		g_string_append(o, ",\"dmarc\":{");
		json_field(o, "result", verdict_name(d->result), true);
		json_field(o, "header_from", d->header_from, true);
		json_field(o, "policy", d->policy, true);
		json_field(o, "sp", d->sp, true);
		json_field(o, "disposition", d->disposition, true);
		g_string_append_printf(o, "\"spf_aligned\":%s,\"dkim_aligned\":%s,",
				       d->spf_aligned ? "true" : "false", d->dkim_aligned ? "true" : "false");
		json_field(o, "aligned_by", d->aligned_by, true);
		json_field(o, "reason", d->reason, false);
		g_string_append(o, "}");
	}
	g_string_append(o, ",");
	json_field(o, "headers", headers, false);
	g_string_append(o, "}\n");
	return g_string_free(o, FALSE);
}

size_t filter_header_length(struct filter_tx *ftx)
{
	const char *error;
	return filter_header(ftx, &error) == 0 ? ftx->header_len : 0;
}
