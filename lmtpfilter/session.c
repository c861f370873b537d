/*
 * session - one LMTP connection from Postfix (RFC 2033): the dialogue
 *
 * Owns: the client connection, the current transaction (reset on RSET and
 * at its end), the spool, and the fan-out that relays each RCPT to Dovecot
 * and delivers the message (fanout.c). Replies go out in command order:
 * before any reply of its own the session lets the fan-out answer the
 * RCPTs still in flight.
 *
 * DATA is spooled whole (dot-unstuffed) before anything is sent on, so a
 * client that vanishes mid-DATA delivers nothing. What goes wrong while the
 * message is read (too big, spool failure) is the transaction's one sticky
 * error: the message is read to the final dot all the same, then every
 * accepted recipient gets that error's reply.
 *
 * Limits: LMTP_LINE_MAX per command line, max_recipients, max_message_size
 * (the body is read to the final dot, then 552 5.3.4), SESSION_ERRORS_MAX
 * bad commands. Deadlines, totals however the bytes trickle in: the next
 * command line must be whole within `timeout` of the daemon starting to
 * wait for it (after the greeting or the previous reply), and the message
 * within `data_timeout` of the 354; past either the client gets 421 4.4.2
 * and the connection closes, and a half-received message is not delivered.
 * Every single wait, towards Dovecot too, is bounded by `timeout`.
 *
 * Logging: every line the session's thread writes begins with session=
 * (a random id), peer= (the client) and, once XFORWARD gave one, ident=
 * (Postfix's queue id, forgotten with the transaction).
 */
#include "lmtpfilter/session.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/engine.h"
#include "lmtpfilter/fanout.h"
#include "lmtpfilter/filter.h"
#include "lmtpfilter/lmtp_parser.h"
#include "lmtpfilter/log.h"
#include "lmtpfilter/message_view.h"
#include "lmtpfilter/metrics.h"
#include "lmtpfilter/netio.h"
#include "lmtpfilter/reply.h"
#include "lmtpfilter/spool.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_ERRORS_MAX 20      /* bad commands before the connection is dropped */
#define SESSION_LOG_RCPTS_MAX 2000 /* bytes of the rcpts= log field */
#define SESSION_ID_SIZE 13         /* 12 hex digits: 48 random bits tell sessions apart in the logs */

/* What went wrong with the message while it was read. The first error
 * sticks: the rest of the message is read and dropped, and after the final
 * dot every accepted recipient gets its reply. */
struct tx_error {
	int code;                    /* 0: none */
	const char *enhanced;
	const char *text;
	const char *status;          /* status= of the transaction's log line */
};

struct transaction {
	bool active;                 /* MAIL accepted */
	struct tx_error error;
	char *mail_from;
	bool body8bit;
	uint64_t declared_size;
	struct xforward xforward;
	long long start_ms;
};

struct session {
	struct engine *engine;
	struct config *config;
	struct netio io;
	char id[SESSION_ID_SIZE];
	char peer[128];
	bool trusted;
	bool lhlo_seen;
	bool quit;
	unsigned errors;
	struct transaction tx;
	struct spool *spool;
	struct fanout *fanout;
};

/* ---- replies ---- */

static void reply_write(struct session *s, int code, const char *enhanced, const char *text)
{
	char buf[REPLY_LINE_MAX + 32];
	size_t len = reply_format(buf, sizeof(buf), code, enhanced, text);

	(void)netio_write(&s->io, buf, len);
}

static void reply(struct session *s, int code, const char *enhanced, const char *text)
{
	/* Replies go out in command order: pipelined RCPTs answer first. */
	fanout_settle(s->fanout);
	reply_write(s, code, enhanced, text);
}

static void reply_relay(struct session *s, const struct lmtp_reply *r)
{
	reply(s, r->code, r->enhanced[0] ? r->enhanced : NULL, r->text);
}

/* session_answer - a recipient's reply from the fan-out, in its turn. */
static void session_answer(void *ctx, const struct lmtp_reply *r)
{
	reply_write(ctx, r->code, r->enhanced[0] ? r->enhanced : NULL, r->text);
}

/* ---- transaction ---- */

/* fields_add - append TEXT to the string in BUF (USED bytes), cut where
 * BUF ends as snprintf would; returns the new length. */
static size_t fields_add(char *buf, size_t size, size_t used, const char *text)
{
	size_t n = strlen(text);

	if (n > size - 1 - used)
		n = size - 1 - used;
	memcpy(buf + used, text, n);
	buf[used + n] = '\0';
	return used + n;
}

/* session_log_fields - what begins every line of this session's thread:
 * its id, its client, and the queue id while the transaction has one.
 * Built by copies, not snprintf: this runs at every transaction's turn. */
static void session_log_fields(struct session *s)
{
	char fields[LOG_FIELDS_MAX], q[200];
	const char *ident = s->tx.xforward.ident;
	size_t n = fields_add(fields, sizeof(fields), 0, "session=");

	n = fields_add(fields, sizeof(fields), n, s->id);
	n = fields_add(fields, sizeof(fields), n, " peer=");
	n = fields_add(fields, sizeof(fields), n, s->peer);
	if (ident[0]) {
		n = fields_add(fields, sizeof(fields), n, " ident=");
		fields_add(fields, sizeof(fields), n, log_quote(ident, q, sizeof(q)));
	}
	log_set_thread_fields(fields);
}

static void transaction_clear(struct session *s)
{
	g_free(s->tx.mail_from);
	memset(&s->tx, 0, sizeof(s->tx));
	spool_reset(s->spool);
	session_log_fields(s);
}

/* transaction_fail - the transaction's error, unless it has one already. */
static void transaction_fail(struct session *s, int code, const char *enhanced, const char *text,
			     const char *status)
{
	if (s->tx.error.code == 0)
		s->tx.error = (struct tx_error){ code, enhanced, text, status };
}

/* End the downstream transactions without delivering (RSET, QUIT, errors). */
static void transaction_abort(struct session *s)
{
	fanout_abort(s->fanout);
	transaction_clear(s);
}

/* log_transaction - the transaction's one line; session=, peer= and ident=
 * (when known, else ident=- here) come first from the thread's fields. */
static void log_transaction(struct session *s, struct filter_tx *ftx, const char *status)
{
	struct transaction *tx = &s->tx;
	GString *rcpts = g_string_new(NULL);
	char q1[600], q2[600];

	metrics_transaction(netio_now_ms() - tx->start_ms);
	fanout_log_rcpts(s->fanout, rcpts, SESSION_LOG_RCPTS_MAX);
	log_info("%sclient=%s from=%s rcpts=%s size=%llu%s status=%s ms=%lld",
		 tx->xforward.ident[0] ? "" : "ident=- ", tx->xforward.addr[0] ? tx->xforward.addr : "-",
		 log_quote(tx->mail_from, q1, sizeof(q1)), log_quote(rcpts->str, q2, sizeof(q2)),
		 (unsigned long long)spool_size(s->spool), ftx != NULL ? filter_log_fields(ftx) : "",
		 status, netio_now_ms() - tx->start_ms);
	g_string_free(rcpts, TRUE);
}

/* ---- commands ---- */

static void cmd_lhlo(struct session *s, const struct lmtp_command *cmd)
{
	char size[64];
	const char *lines[8];
	size_t n = 0;
	char buf[1024];

	transaction_abort(s);
	s->lhlo_seen = true;
	snprintf(size, sizeof(size), "SIZE %zu", s->config->max_message_size);
	lines[n++] = s->engine->hostname;
	lines[n++] = "PIPELINING";
	lines[n++] = "ENHANCEDSTATUSCODES";
	lines[n++] = "8BITMIME";
	lines[n++] = size;
	if (s->config->xforward && s->trusted)
		lines[n++] = "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE";
	size_t len = reply_format_multi(buf, sizeof(buf), 250, lines, n);
	(void)netio_write(&s->io, buf, len);
}

static void xforward_set(struct xforward *xf, const char *key, const char *value)
{
	struct { const char *key; char *dst; size_t size; } fields[] = {
		{ "NAME", xf->name, sizeof(xf->name) }, { "ADDR", xf->addr, sizeof(xf->addr) },
		{ "PORT", xf->port, sizeof(xf->port) }, { "PROTO", xf->proto, sizeof(xf->proto) },
		{ "HELO", xf->helo, sizeof(xf->helo) }, { "IDENT", xf->ident, sizeof(xf->ident) },
		{ "SOURCE", xf->source, sizeof(xf->source) },
	};
	/* Postfix's placeholders for unknown values mean "not known". */
	if (value == NULL || strcmp(value, "[UNAVAILABLE]") == 0 || strcmp(value, "[TEMPUNAVAIL]") == 0)
		value = "";
	if (g_ascii_strcasecmp(key, "ADDR") == 0 && g_ascii_strncasecmp(value, "IPv6:", 5) == 0)
		value += 5;
	for (size_t i = 0; i < G_N_ELEMENTS(fields); i++)
		if (g_ascii_strcasecmp(key, fields[i].key) == 0)
			g_strlcpy(fields[i].dst, value, fields[i].size);
	xf->present = true;
}

static void cmd_xforward(struct session *s, const struct lmtp_command *cmd)
{
	if (!s->config->xforward || !s->trusted) {
		reply(s, 550, "5.7.0", "XFORWARD not permitted");
		return;
	}
	if (s->tx.active) {
		reply(s, 503, "5.5.1", "XFORWARD not permitted inside a mail transaction");
		return;
	}
	for (size_t i = 0; i < cmd->param_count; i++)
		xforward_set(&s->tx.xforward, cmd->params[i].keyword, cmd->params[i].value);
	session_log_fields(s);
	reply(s, 250, "2.0.0", "Ok");
}

static void cmd_mail(struct session *s, const struct lmtp_command *cmd)
{
	struct lmtp_reply r;

	if (s->tx.active) {
		reply(s, 503, "5.5.1", "Nested MAIL command");
		return;
	}
	const struct lmtp_param *p = lmtp_command_param(cmd, "SIZE");
	if (p != NULL && p->value != NULL) {
		s->tx.declared_size = g_ascii_strtoull(p->value, NULL, 10);
		if (s->tx.declared_size > s->config->max_message_size) {
			reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
			return;
		}
	}
	p = lmtp_command_param(cmd, "BODY");
	s->tx.body8bit = p != NULL && p->value != NULL && g_ascii_strcasecmp(p->value, "8BITMIME") == 0;
	/* Dovecot unreachable: say so now rather than at every RCPT. */
	if (fanout_open(s->fanout, &r) < 0) {
		reply_relay(s, &r);
		return;
	}
	s->tx.mail_from = g_strdup(cmd->path);
	fanout_begin(s->fanout, s->tx.mail_from, s->tx.body8bit);
	s->tx.start_ms = netio_now_ms();
	s->tx.active = true;
	reply(s, 250, "2.1.0", "Ok");
}

static void cmd_rcpt(struct session *s, const struct lmtp_command *cmd)
{
	size_t max = s->config->max_recipients;

	if (!s->tx.active) {
		reply(s, 503, "5.5.1", "Need MAIL command");
		return;
	}
	if (fanout_accepted(s->fanout) + fanout_pending(s->fanout) >= max)
		fanout_settle(s->fanout);
	if (fanout_accepted(s->fanout) >= max) {
		metrics_recipient_reply(config_policy_for(s->config, cmd->path), 452, DISPOSITION_DELIVER);
		reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	const struct lmtp_param *orcpt = lmtp_command_param(cmd, "ORCPT");
	/* While more commands are already here (PIPELINING), Dovecot's reply
	 * is read later. */
	fanout_rcpt(s->fanout, cmd->path, orcpt != NULL ? orcpt->value : NULL, netio_has_line(&s->io));
}

/* data_span - the bytes at p (n of them) up to the next line that starts
 * with a dot, or all of them: one spool append per buffer in the common
 * case, not one per line. A span ending at a line end leaves *bol_r set. */
static size_t data_span(const char *p, size_t n, bool *bol_r)
{
	for (size_t from = 0;;) {
		const char *lf = memchr(p + from, '\n', n - from);
		if (lf == NULL) {
			*bol_r = false;
			return n;
		}
		from = (size_t)(lf - p) + 1;
		if (from == n || p[from] == '.') {
			*bol_r = true;
			return from;
		}
	}
}

/* data_spool_failed - the spool could not keep the message: logged, and
 * the transaction's error. */
static void data_spool_failed(struct session *s, const char *error)
{
	log_error("error=\"%s\"", error != NULL ? error : "spool error");
	transaction_fail(s, 452, "4.3.1", "Insufficient system storage", "spool-error");
}

/* data_store - keep a span of the message, or make "too big" or the
 * spool's failure the transaction's error. *size counts the bytes stored. */
static void data_store(struct session *s, const char *p, size_t len, uint64_t *size, struct spool_text *text)
{
	uint64_t max = s->config->max_message_size;
	g_autofree char *error = NULL;
	size_t stored;

	/* Never fewer bytes stored than read: too big already? */
	if (*size + len > max) {
		transaction_fail(s, 552, "5.3.4", "Message size exceeds fixed maximum message size", "too-big");
	} else if (spool_append_text(s->spool, p, len, text, &stored, &error) < 0) {
		data_spool_failed(s, error);
	} else if ((*size += stored) > max) {
		transaction_fail(s, 552, "5.3.4", "Message size exceeds fixed maximum message size", "too-big");
	}
}

/*
 * Read the DATA body to the final dot into the spool, dot-unstuffing.
 * A bare LF ends a line like CRLF does and is stored as CRLF
 * (spool_append_text), so the stored message has one line-end convention
 * and no line can end the data early downstream. Returns NETIO_OK at the
 * final dot; a message read but not kept has set the transaction's error.
 */
static enum netio_status data_read(struct session *s)
{
	struct netio *io = &s->io;
	uint64_t size = 0;
	struct spool_text text = { 0 };
	bool bol = true;

	for (;;) {
		enum netio_status st = netio_fill(io);
		if (st != NETIO_OK)
			return st;
		char *p = io->rbuf + io->rpos;
		size_t n = netio_pending(io);

		if (bol && p[0] == '.') {
			if (n >= 2 && p[1] == '\n') {
				io->rpos += 2;
				return NETIO_OK;
			}
			if (n >= 3 && p[1] == '\r' && p[2] == '\n') {
				io->rpos += 3;
				return NETIO_OK;
			}
			if (n == 1 || (n == 2 && p[1] == '\r')) {
				/* Not enough to tell the final dot from a stuffed one. */
				if ((st = netio_fill_more(io)) != NETIO_OK)
					return st;
				continue;
			}
			io->rpos++;   /* a stuffed dot: drop it */
			p++;
			n--;
		}
		size_t take = data_span(p, n, &bol);

		if (s->tx.error.code == 0)
			data_store(s, p, take, &size, &text);
		io->rpos += take;
	}
}

/* data_read_timed - data_read within data_timeout of now (the 354 is sent
 * under that deadline too); on a timeout *text_r says which limit struck. */
static enum netio_status data_read_timed(struct session *s, char *text_r, size_t size)
{
	long long start = netio_now_ms();

	netio_set_deadline(&s->io, (int)s->config->data_timeout * 1000);
	enum netio_status st = data_read(s);
	netio_set_deadline(&s->io, 0);
	if (st != NETIO_TIMEOUT)
		return st;
	if (netio_now_ms() - start >= (long long)s->config->data_timeout * 1000)
		snprintf(text_r, size, "Timeout: message not received within %u s, closing connection",
			 s->config->data_timeout);
	else
		snprintf(text_r, size, "Timeout: no data for %u s, closing connection", s->config->timeout);
	return st;
}

/* session_prepare - the bytes for one recipient group (fanout_prepare_fn). */
static int session_prepare(void *ctx, const struct domain_policy *policy, struct message_view *view,
			   enum disposition_reason *reason_r, struct lmtp_reply *fail_r)
{
	return filter_prepare(ctx, policy, view, reason_r, fail_r);
}

static void cmd_data(struct session *s, const struct lmtp_command *cmd)
{
	struct transaction *tx = &s->tx;
	g_autofree char *error = NULL;
	char timeout_text[128];

	if (!tx->active) {
		reply(s, 503, "5.5.1", "Need MAIL command");
		return;
	}
	if (fanout_accepted(s->fanout) == 0) {
		reply(s, 503, "5.5.1", "No valid recipients");
		return;
	}
	reply(s, 354, NULL, "Start mail input; end with <CRLF>.<CRLF>");
	enum netio_status st = data_read_timed(s, timeout_text, sizeof(timeout_text));
	if (st != NETIO_OK) {
		if (st == NETIO_TIMEOUT) {
			fanout_give_up(s->fanout, 421);
			reply(s, 421, "4.4.2", timeout_text);
		}
		log_transaction(s, NULL, st == NETIO_TIMEOUT ? "timeout-in-data" : "disconnect-in-data");
		transaction_abort(s);
		s->quit = true;
		return;
	}
	if (tx->error.code == 0 && spool_finish(s->spool, &error) < 0)
		data_spool_failed(s, error);
	if (tx->error.code != 0) {
		fanout_refuse(s->fanout, tx->error.code, tx->error.enhanced, tx->error.text);
		log_transaction(s, NULL, tx->error.status);
		transaction_abort(s);
		return;
	}

	struct tx_facts facts = {
		.mail_from = tx->mail_from,
		.xforward = tx->xforward.present ? &tx->xforward : NULL,
		.peer = s->peer,
		.spool = s->spool,
	};
	struct filter_tx *ftx = filter_tx_new(s->engine, s->config, &facts);
	fanout_deliver(s->fanout, s->spool, session_prepare, ftx);
	filter_tx_history(ftx);
	log_transaction(s, ftx, "done");
	filter_tx_free(&ftx);
	fanout_end(s->fanout);
	transaction_clear(s);
}

static void cmd_rset(struct session *s, const struct lmtp_command *cmd)
{
	transaction_abort(s);
	reply(s, 250, "2.0.0", "Ok");
}

static void cmd_noop(struct session *s, const struct lmtp_command *cmd)
{
	reply(s, 250, "2.0.0", "Ok");
}

static void cmd_quit(struct session *s, const struct lmtp_command *cmd)
{
	reply(s, 221, "2.0.0", "Bye");
	s->quit = true;
}

static void cmd_vrfy(struct session *s, const struct lmtp_command *cmd)
{
	reply(s, 252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_helo(struct session *s, const struct lmtp_command *cmd)
{
	reply(s, 500, "5.5.1", "This is an LMTP server: use LHLO");
}

static void cmd_unimplemented(struct session *s, const struct lmtp_command *cmd)
{
	reply(s, 502, "5.5.1", "Command not implemented");
}

static const struct {
	enum lmtp_verb verb;
	bool needs_lhlo;
	void (*proceed)(struct session *, const struct lmtp_command *);
} commands[] = {
	{ LMTP_VERB_LHLO, false, cmd_lhlo },
	{ LMTP_VERB_HELO, false, cmd_helo },
	{ LMTP_VERB_EHLO, false, cmd_helo },
	{ LMTP_VERB_XFORWARD, true, cmd_xforward },
	{ LMTP_VERB_MAIL, true, cmd_mail },
	{ LMTP_VERB_RCPT, true, cmd_rcpt },
	{ LMTP_VERB_DATA, true, cmd_data },
	{ LMTP_VERB_BDAT, false, cmd_unimplemented },
	{ LMTP_VERB_RSET, false, cmd_rset },
	{ LMTP_VERB_NOOP, false, cmd_noop },
	{ LMTP_VERB_QUIT, false, cmd_quit },
	{ LMTP_VERB_VRFY, false, cmd_vrfy },
	{ LMTP_VERB_HELP, false, cmd_unimplemented },
};

static void session_error(struct session *s, int code, const char *enhanced, const char *text)
{
	reply(s, code, enhanced, text);
	if (++s->errors >= SESSION_ERRORS_MAX) {
		reply(s, 421, "4.7.0", "Too many errors, closing connection");
		s->quit = true;
	}
}

static void session_command(struct session *s, const char *line, size_t len, enum netio_line kind)
{
	struct lmtp_command *cmd = g_alloca(sizeof(*cmd));
	struct lmtp_error error;

	if (kind == NETIO_LINE_TOO_LONG) {
		session_error(s, 500, "5.5.2", "Line too long");
		return;
	}
	if (kind == NETIO_LINE_BARE_LF) {
		session_error(s, 500, "5.5.2", "Syntax error: bare <LF> received, lines must end with <CRLF>");
		return;
	}
	if (lmtp_command_parse(line, len, cmd, &error) < 0) {
		session_error(s, error.code, error.enhanced, error.text);
		return;
	}
	if (cmd->verb != LMTP_VERB_RCPT)
		fanout_settle(s->fanout);
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		if (commands[i].verb != cmd->verb)
			continue;
		if (commands[i].needs_lhlo && !s->lhlo_seen) {
			session_error(s, 503, "5.5.1", "Send LHLO first");
			return;
		}
		commands[i].proceed(s, cmd);
		return;
	}
	session_error(s, 500, "5.5.1", "Command unrecognized");
}

/* session_read_command - the next command line, whole within `timeout` of
 * now (the flush of the replies before it included), however it trickles. */
static enum netio_status session_read_command(struct session *s, char **line_r, size_t *len_r,
					      enum netio_line *kind_r)
{
	netio_set_deadline(&s->io, (int)s->config->timeout * 1000);
	enum netio_status st = netio_read_line(&s->io, LMTP_LINE_MAX, line_r, len_r, kind_r);
	netio_set_deadline(&s->io, 0);
	return st;
}

void session_run(struct engine *engine, int fd, const char *peer, bool trusted)
{
	struct session *s = g_new0(struct session, 1);
	char greeting[300];

	s->engine = engine;
	s->config = engine_config(engine);
	g_strlcpy(s->peer, peer, sizeof(s->peer));
	snprintf(s->id, sizeof(s->id), "%08x%04x", g_random_int(), g_random_int() & 0xffff);
	session_log_fields(s);
	s->trusted = trusted;
	s->spool = spool_new(s->config->spool_dir, s->config->spool_memory_limit);
	s->fanout = fanout_new(s->config, engine->hostname, session_answer, s);
	netio_init(&s->io, fd, (int)s->config->timeout * 1000);
	/* The message's pieces after the first are then read in one call per
	 * wait, not two. */
	(void)netio_wait_in_read(&s->io);

	snprintf(greeting, sizeof(greeting), "%s LMTP lmtpfilter ready", engine->hostname);
	reply(s, 220, NULL, greeting);
	while (!s->quit) {
		char *line;
		size_t len;
		enum netio_line kind;
		/* Only an idle session gives way to a shutdown; a transaction finishes. */
		s->io.wake_fd = s->tx.active ? -1 : engine->shutdown_fd;
		enum netio_status st = session_read_command(s, &line, &len, &kind);
		if (st == NETIO_TIMEOUT) {
			char text[128];
			snprintf(text, sizeof(text), "Timeout: no complete command within %u s, closing connection",
				 s->config->timeout);
			reply(s, 421, "4.4.2", text);
			break;
		}
		if (st == NETIO_WOKEN) {
			reply(s, 421, "4.3.2", "Service shutting down, closing connection");
			break;
		}
		if (st != NETIO_OK)
			break;
		session_command(s, line, len, kind);
	}
	(void)netio_flush(&s->io);
	if (s->tx.active)
		log_transaction(s, NULL, "aborted");
	transaction_abort(s);
	fanout_free(&s->fanout);
	netio_close(&s->io);
	spool_free(&s->spool);
	log_set_thread_fields(NULL);
	config_unref(&s->config);
	g_free(s);
}
