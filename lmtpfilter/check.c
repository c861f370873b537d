/*
 * check - "lmtpfilter check": evaluate one stored message with the daemon's
 * engine and print the rewritten header block, or the verdict as JSON
 *
 * The message is read into a spool the way DATA is (a bare LF becomes
 * CRLF), evaluated with the checks of the first --rcpt's domain (or of
 * [defaults]) whatever that domain's mode, and printed with the line ends
 * it came with. Without --client-ip the facts come from the Received trail.
 * --client-ip is trusted as the daemon trusts the client Postfix names in
 * XFORWARD: an address in trusted_networks is a relay of ours, so the
 * facts come from the trail below it, exactly as in the daemon.
 *
 * Owns: the command line of "check" and the JSON of the verdict (facts,
 * SPF, each DKIM signature, DMARC, the ARC chain with each set's result,
 * and the disposition with its reason and any ARC override).
 */
#include "lmtpfilter/check.h"
#include "lmtpfilter/disposition.h"
#include "lmtpfilter/evaluate.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/engine.h"
#include "lmtpfilter/filter.h"
#include "lmtpfilter/message_view.h"
#include "lmtpfilter/spool.h"
#include "mime/header_block.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHECK_READ_CHUNK 65536

struct check_options {
	char *client_ip, *helo, *mail_from;
	char **rcpts;
	gboolean json;
	char **args;
};

/* Read fd into the spool, turning bare LF into CRLF; *had_crlf_r tells
 * whether the input used CRLF (for printing it back the same way). */
static int check_read(int fd, struct spool *spool, bool *had_crlf_r, char **error_r)
{
	char buf[CHECK_READ_CHUNK];
	struct spool_text text = { 0 };

	*had_crlf_r = false;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = g_strdup(g_strerror(errno));
			return -1;
		}
		if (n == 0)
			return spool_finish(spool, error_r);
		if (spool_append_text(spool, buf, (size_t)n, &text, NULL, error_r) < 0)
			return -1;
		*had_crlf_r = text.crlf_seen;
	}
}

/* Print text, with CRLF turned into LF unless the input had CRLF. */
static void check_print(GString *out, const char *text, size_t len, bool crlf)
{
	for (size_t i = 0; i < len; i++) {
		if (!crlf && text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
			continue;
		g_string_append_c(out, text[i]);
	}
}

/* The rewritten header block: the view clipped at the original header's end. */
static char *check_header_text(struct filter_tx *ftx, const struct message_view *view, struct spool *spool, bool crlf)
{
	uint64_t end = filter_header_length(ftx);
	GString *out = g_string_new(NULL);

	for (size_t i = 0; i < view->count; i++) {
		const struct view_segment *seg = &view->segs[i];
		if (seg->text != NULL) {
			check_print(out, seg->text, seg->length, crlf);
			continue;
		}
		if (seg->offset >= end)
			continue;
		uint64_t len = MIN(seg->length, end - seg->offset);
		char *buf = g_malloc(len + 1);
		g_autofree char *error = NULL;
		ssize_t n = spool_read(spool, seg->offset, buf, len, &error);
		if (n > 0)
			check_print(out, buf, (size_t)n, crlf);
		g_free(buf);
	}
	return g_string_free(out, FALSE);
}

/* The envelope sender when not given: the Return-Path of a stored message. */
static char *check_return_path(struct spool *spool)
{
	const char *block;
	g_autofree char *error = NULL;
	size_t len;
	int complete;
	struct header_block *hb = NULL;
	char *from = NULL;

	if (spool_header_block(spool, &block, &len, &complete, &error) < 0 ||
	    header_block_parse(block, len, &hb, &error) < 0)
		return g_strdup("");
	for (size_t i = 0; i < hb->count && from == NULL; i++) {
		if (!header_name_is(&hb->headers[i], "Return-Path"))
			continue;
		char *v = header_value_unfold(&hb->headers[i]);
		char *lt = strchr(v, '<'), *gt = lt != NULL ? strchr(lt, '>') : NULL;
		from = lt != NULL && gt != NULL ? g_strndup(lt + 1, (size_t)(gt - lt - 1)) : g_strdup(g_strstrip(v));
		g_free(v);
	}
	header_block_free(&hb);
	return from != NULL ? from : g_strdup("");
}

/* ---- JSON ---- */

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

static void json_bool(GString *out, const char *key, bool value)
{
	json_string(out, key);
	g_string_append_printf(out, ":%s,", value ? "true" : "false");
}

static void json_facts(GString *o, const struct conn_facts *c)
{
	g_string_append(o, "\"facts\":{");
	json_field(o, "source", facts_source_name(c->source), true);
	json_field(o, "client_ip", c->client_ip, true);
	json_field(o, "helo", c->helo, true);
	json_field(o, "rdns", c->rdns, true);
	json_bool(o, "authenticated", c->authenticated);
	json_bool(o, "all_trusted", c->all_trusted);
	json_field(o, "auth_user", c->auth_user, true);
	json_field(o, "reason", c->reason, false);
	g_string_append(o, "}");
}

static void json_spf(GString *o, const struct message_verdict *v, const char *mail_from)
{
	const struct spf_outcome *s = &v->spf_mailfrom;
	bool ran = v->spf_ran;

	g_string_append(o, ",\"spf\":{");
	json_field(o, "result", ran ? verdict_name(s->result) : "none", true);
	json_field(o, "identity", ran ? s->identity : "", true);
	json_field(o, "sender", ran ? s->sender : mail_from, true);
	json_field(o, "domain", ran ? s->domain : "", true);
	json_field(o, "mechanism", ran ? s->mechanism : "", true);
	json_field(o, "reason", ran ? s->reason : "", true);
	json_field(o, "helo_result", ran ? verdict_name(v->spf_helo.result) : "none", false);
	g_string_append(o, "}");
}

static void json_dkim(GString *o, const struct dkim_outcome *dkim)
{
	g_string_append(o, ",\"dkim\":[");
	for (size_t i = 0; i < dkim->count; i++) {
		const struct dkim_sig_result *s = &dkim->sigs[i];
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

static void json_dmarc(GString *o, const struct dmarc_outcome *d)
{
	g_string_append(o, ",\"dmarc\":{");
	json_field(o, "result", verdict_name(d->result), true);
	json_field(o, "header_from", d->header_from, true);
	json_field(o, "policy", d->policy, true);
	json_field(o, "sp", d->sp, true);
	json_field(o, "disposition", d->disposition, true);
	json_bool(o, "spf_aligned", d->spf_aligned);
	json_bool(o, "dkim_aligned", d->dkim_aligned);
	json_bool(o, "from_invalid", d->from_invalid);
	json_field(o, "aligned_by", d->aligned_by, true);
	dmarc_outcome_append_json(d, o);
	json_field(o, "reason", d->reason, false);
	g_string_append(o, "}");
}

/* json_arc - the chain (arc_outcome_json) with what its newest AAR
 * vouches for. */
static void json_arc(GString *o, const struct message_verdict *v)
{
	g_string_append(o, ",\"arc\":");
	arc_outcome_json(&v->arc, o);
	g_string_append(o, ",\"arc_vouched_by\":");
	json_string(o, v->arc_vouches ? v->arc_vouched_by : "");
}

/* check_json - the verdict and the disposition as one JSON object, with
 * the rewritten header block as its "headers" member (g_free). */
static char *check_json(const struct message_verdict *v, unsigned checks, const struct disposition *d, const char *mail_from,
			const char *headers)
{
	GString *o = g_string_new("{");

	json_facts(o, &v->facts);
	if (checks & CHECK_SPF)
		json_spf(o, v, mail_from);
	if (checks & CHECK_DKIM)
		json_dkim(o, &v->dkim);
	if (checks & CHECK_DMARC)
		json_dmarc(o, &v->dmarc);
	if (checks & CHECK_ARC)
		json_arc(o, v);
	g_string_append(o, ",\"disposition\":{");
	json_bool(o, "quarantine", disposition_quarantines(d));
	json_field(o, "reason", disposition_reason_name(d->reason), true);
	json_field(o, "override", d->override, true);
	json_field(o, "override_sealer", d->override_sealer, true);
	json_field(o, "details", d->details, false);
	g_string_append(o, "},");
	json_field(o, "headers", headers, false);
	g_string_append(o, "}\n");
	return g_string_free(o, FALSE);
}

static int check_parse_options(int argc, char **argv, struct check_options *o)
{
	GOptionEntry entries[] = {
		{ "client-ip", 0, 0, G_OPTION_ARG_STRING, &o->client_ip, "the connecting client's address", "IP" },
		{ "helo", 0, 0, G_OPTION_ARG_STRING, &o->helo, "the client's HELO name", "NAME" },
		{ "mail-from", 0, 0, G_OPTION_ARG_STRING, &o->mail_from, "the envelope sender (default: Return-Path)", "ADDR" },
		{ "rcpt", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->rcpts, "a recipient (the first one's domain picks the checks)", "ADDR" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &o->json, "print the verdict as JSON", NULL },
		{ G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->args, NULL, "[MSG|-]" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	GOptionContext *ctx = g_option_context_new("[MSG|-] - evaluate one stored message");
	GError *error = NULL;

	g_option_context_add_main_entries(ctx, entries, NULL);
	bool ok = g_option_context_parse(ctx, &argc, &argv, &error);
	g_option_context_free(ctx);
	if (!ok) {
		fprintf(stderr, "lmtpfilter check: %s\n", error->message);
		g_error_free(error);
		return -1;
	}
	if (o->args != NULL && g_strv_length(o->args) > 1) {
		fprintf(stderr, "lmtpfilter check: one message at a time\n");
		return -1;
	}
	if (o->client_ip != NULL) {
		unsigned char addr[16];
		if (inet_pton(AF_INET, o->client_ip, addr) != 1 && inet_pton(AF_INET6, o->client_ip, addr) != 1) {
			fprintf(stderr, "lmtpfilter check: --client-ip: not an IP address: %s\n", o->client_ip);
			return -1;
		}
	}
	return 0;
}

static void check_options_free(struct check_options *o)
{
	g_free(o->client_ip);
	g_free(o->helo);
	g_free(o->mail_from);
	g_strfreev(o->rcpts);
	g_strfreev(o->args);
}

/* check_output - prepare the message as annotate would and print the
 * header block or the JSON; returns the exit code. */
static int check_output(struct filter_tx *ftx, const struct domain_policy *policy, struct spool *spool, bool crlf,
		       bool json, const char *mail_from)
{
	struct message_view view;
	struct lmtp_reply fail;
	int rc = 0;

	message_view_init(&view);
	if (filter_prepare(ftx, policy, &view, NULL, &fail) < 0) {
		fprintf(stderr, "lmtpfilter check: %s\n", fail.text);
		rc = 2;
	} else {
		char *headers = check_header_text(ftx, &view, spool, crlf);
		if (json) {
			struct disposition d;
			const struct message_verdict *v = filter_verdict(ftx, policy->checks);
			filter_disposition(ftx, policy, &d);
			char *text = check_json(v, policy->checks, &d, mail_from, headers);
			fputs(text, stdout);
			g_free(text);
		} else {
			fputs(headers, stdout);
		}
		g_free(headers);
	}
	message_view_clear(&view);
	return rc;
}

static int check_run(struct engine *engine, struct config *config, struct check_options *o)
{
	const char *path = o->args != NULL && o->args[0] != NULL ? o->args[0] : "-";
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	g_autofree char *error = NULL;
	bool crlf;

	if (fd == -1) {
		fprintf(stderr, "lmtpfilter check: %s: %s\n", path, g_strerror(errno));
		return 2;
	}
	struct spool *spool = spool_new(config->spool_dir, config->spool_memory_limit);
	int r = check_read(fd, spool, &crlf, &error);
	if (fd != STDIN_FILENO)
		close(fd);
	if (r < 0) {
		fprintf(stderr, "lmtpfilter check: %s: %s\n", path, error);
		spool_free(&spool);
		return 2;
	}

	struct conn_facts cli = { .source = FACTS_OPTIONS };
	bool given = o->client_ip != NULL && !config_is_trusted_ip(config, o->client_ip);
	if (given) {
		g_strlcpy(cli.client_ip, o->client_ip, sizeof(cli.client_ip));
		g_strlcpy(cli.helo, o->helo != NULL ? o->helo : "", sizeof(cli.helo));
	}
	char *mail_from = o->mail_from != NULL ? g_strdup(o->mail_from) : check_return_path(spool);
	struct tx_facts facts = { .mail_from = mail_from, .peer = "check", .spool = spool,
				  .cli = given ? &cli : NULL };
	const struct domain_policy *found = o->rcpts != NULL && o->rcpts[0] != NULL
		? config_policy_for(config, o->rcpts[0]) : &config->defaults;
	/* An administrator asking wants the verdict whatever the mode. */
	struct domain_policy policy = { .domain = found->domain, .mode = DOMAIN_MODE_ANNOTATE, .checks = found->checks,
					.quarantine_on = found->quarantine_on,
					.arc_trusted_sealers = found->arc_trusted_sealers };

	struct filter_tx *ftx = filter_tx_new(engine, config, &facts);
	int rc = check_output(ftx, &policy, spool, crlf, o->json, mail_from);
	filter_tx_free(&ftx);
	g_free(mail_from);
	spool_free(&spool);
	return rc;
}

int check_main(const char *config_file, int argc, char **argv)
{
	struct check_options o = { 0 };
	struct config *config;
	struct engine engine;
	char *error = NULL;

	if (check_parse_options(argc, argv, &o) < 0) {
		check_options_free(&o);
		return 1;
	}
	if (config_load(config_file, &config, &error) < 0) {
		fprintf(stderr, "lmtpfilter: %s\n", error);
		g_free(error);
		check_options_free(&o);
		return 1;
	}
	int rc;
	if (engine_init(&engine, config, &error) < 0) {
		fprintf(stderr, "lmtpfilter check: %s\n", error);
		g_free(error);
		rc = 2;
	} else {
		rc = check_run(&engine, config, &o);
	}
	engine_deinit(&engine);
	check_options_free(&o);
	return rc;
}
