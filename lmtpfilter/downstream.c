/*
 * downstream - the LMTP client towards Dovecot
 *
 * Owns: one connection (netio) and its state. Every read and write has the
 * session's timeout. Replies: a reply is known by its code and enhanced
 * status code whatever its length; of a multi-line reply the last line
 * counts. Each line is parsed from its start (at most DOWNSTREAM_LINE_MAX
 * bytes of it; the text is cut to a relayable length by reply.c) and the
 * rest of a longer line is read and dropped, which keeps us in step with
 * Dovecot. Only a line that is not a reply at all is a protocol error.
 * Limits: DOWNSTREAM_REPLY_BYTES_MAX per reply; beyond it the reply keeps
 * the code read so far and the connection is given up (never reused), so
 * a 2xx Dovecot gave is never turned into a 4xx here.
 *
 * Round trips: MAIL goes out in one write with the first RCPT (Dovecot
 * offers PIPELINING), and when Dovecot offers CHUNKING (RFC 3030) the
 * message goes as one BDAT LAST, command and bytes in one stream, instead of
 * DATA, a wait for 354, then the dot-stuffed bytes. A transaction therefore
 * costs Dovecot two waits for input, as a pipelining client talking to it
 * directly does.
 */
#include "lmtpfilter/downstream.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/message_view.h"
#include "lmtpfilter/metrics.h"
#include "lmtpfilter/spool.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

/* The start of a reply line that is parsed; the rest of a longer line is
 * read and dropped. 64 KB holds the code, the enhanced code and far more
 * text than a reply line may carry on. */
#define DOWNSTREAM_LINE_MAX (NETIO_BUFFER_SIZE - 2)
/* Bytes of one reply, all its lines, read before the connection is given
 * up: far above anything a real LMTP server says, low enough that an
 * endless line cannot hold the session. */
#define DOWNSTREAM_REPLY_BYTES_MAX (1024 * 1024)
#define DOWNSTREAM_CHUNK 65536           /* spool bytes read per step while streaming */

struct downstream *downstream_new(void)
{
	struct downstream *ds = g_new0(struct downstream, 1);
	ds->io.fd = -1;
	return ds;
}

void downstream_free(struct downstream **dsp)
{
	if (*dsp == NULL)
		return;
	netio_close(&(*dsp)->io);
	g_free(*dsp);
	*dsp = NULL;
}

void downstream_fail_reply(const struct downstream *ds, struct lmtp_reply *reply_r)
{
	GString *text = g_string_new("Mailbox delivery temporarily unavailable: ");
	g_string_append(text, ds->error[0] ? ds->error : "downstream failure");
	reply_set(reply_r, 451, "4.4.1", text->str);
	g_string_free(text, TRUE);
}

static int downstream_failed(struct downstream *ds, const char *what, const char *why, struct lmtp_reply *reply_r)
{
	if (!ds->broken)
		metrics_downstream_failure(what, why);
	/* the first failure is the one that explains the later ones */
	if (!ds->broken || ds->error[0] == '\0')
		snprintf(ds->error, sizeof(ds->error), "%s: %s", what, why);
	ds->broken = true;
	netio_close(&ds->io);
	ds->connected = false;
	ds->in_transaction = false;
	if (reply_r != NULL)
		downstream_fail_reply(ds, reply_r);
	return -1;
}

/* read_line - one reply line into line_r, parsed from its start; the rest
 * of a longer line is dropped, counted against *budget. Returns 0, 1 when
 * the budget ran out before the line's end (line_r is parsed), -1 on an
 * I/O error or a line that is not a reply (the connection is failed). */
static int read_line(struct downstream *ds, const char *what, struct lmtp_reply *line_r, size_t *budget)
{
	char *part;
	size_t len;
	bool more;
	enum netio_status st = netio_read_line_part(&ds->io, DOWNSTREAM_LINE_MAX, &part, &len, &more);

	if (st != NETIO_OK)
		return downstream_failed(ds, what, netio_status_text(st), NULL);
	if (reply_parse_line(part, len, line_r) < 0)
		return downstream_failed(ds, what, "malformed reply", NULL);
	*budget -= MIN(*budget, len + 2);
	while (more) {
		if (*budget == 0)
			return 1;
		st = netio_read_line_part(&ds->io, DOWNSTREAM_LINE_MAX, &part, &len, &more);
		if (st != NETIO_OK)
			return downstream_failed(ds, what, netio_status_text(st), NULL);
		*budget -= MIN(*budget, len);
	}
	return 0;
}

/* Read one (possibly multi-line) reply: 0 when it came from Dovecot, -1 on
 * an I/O or protocol failure (*reply_r is then our 4xx). A reply longer
 * than DOWNSTREAM_REPLY_BYTES_MAX keeps the code read so far (0), and the
 * connection is given up. With chunking_r (reading the LHLO reply), notes
 * whether CHUNKING is offered. */
static int downstream_read_reply_ext(struct downstream *ds, const char *what, struct lmtp_reply *reply_r,
				     bool *chunking_r)
{
	size_t budget = DOWNSTREAM_REPLY_BYTES_MAX;

	if (!ds->connected) {
		(void)downstream_failed(ds, what, "not connected", NULL);
		downstream_fail_reply(ds, reply_r);
		return -1;
	}
	for (;;) {
		struct lmtp_reply line;
		int ret = read_line(ds, what, &line, &budget);

		if (ret < 0) {
			downstream_fail_reply(ds, reply_r);
			return -1;
		}
		*reply_r = line;
		if (chunking_r != NULL && line.code == 250 && g_ascii_strcasecmp(line.text, "CHUNKING") == 0)
			*chunking_r = true;
		if (ret == 0 && line.last)
			return 0;
		if (ret > 0 || budget == 0) {
			(void)downstream_failed(ds, what, "reply too long", NULL);
			return 0;
		}
	}
}

static int downstream_read_reply(struct downstream *ds, const char *what, struct lmtp_reply *reply_r)
{
	return downstream_read_reply_ext(ds, what, reply_r, NULL);
}

/* Buffer one command line; -1 (with *reply_r a 4xx, if given) on failure. */
static int downstream_queue(struct downstream *ds, const char *what, const char *line, struct lmtp_reply *reply_r)
{
	if (!ds->connected)
		return downstream_failed(ds, what, "not connected", reply_r);
	enum netio_status st = netio_write(&ds->io, line, strlen(line));
	if (st != NETIO_OK)
		return downstream_failed(ds, what, netio_status_text(st), reply_r);
	return 0;
}

/* Send what is buffered; -1 (with *reply_r a 4xx, if given) on failure. */
static int downstream_send(struct downstream *ds, const char *what, struct lmtp_reply *reply_r)
{
	if (!ds->connected)
		return downstream_failed(ds, what, "not connected", reply_r);
	enum netio_status st = netio_flush(&ds->io);
	if (st != NETIO_OK)
		return downstream_failed(ds, what, netio_status_text(st), reply_r);
	return 0;
}

/* Send one command line and read its reply. */
static int downstream_command(struct downstream *ds, const char *what, const char *line, struct lmtp_reply *reply_r)
{
	if (downstream_queue(ds, what, line, reply_r) < 0 || downstream_send(ds, what, reply_r) < 0)
		return -1;
	return downstream_read_reply(ds, what, reply_r);
}

int downstream_connect(struct downstream *ds, const struct endpoint *ep, const char *lhlo_name,
		       int timeout_ms, struct lmtp_reply *reply_r)
{
	g_autofree char *error = NULL;
	char line[600];

	netio_close(&ds->io);
	ds->connected = ds->broken = ds->in_transaction = ds->chunking = ds->used = false;
	ds->error[0] = '\0';
	int fd = netio_connect(ep, timeout_ms, &error);
	if (fd == -1)
		return downstream_failed(ds, "connect", error, reply_r);
	netio_init(&ds->io, fd, timeout_ms);
	/* The wait for the rest of a reply Dovecot split is one recv, not a
	 * poll and a read. */
	(void)netio_wait_in_read(&ds->io);
	ds->connected = true;
	if (downstream_read_reply(ds, "greeting", reply_r) < 0)
		return -1;
	if (reply_r->code != 220)
		return downstream_failed(ds, "greeting", reply_r->text, reply_r);
	snprintf(line, sizeof(line), "LHLO %s\r\n", lhlo_name);
	if (downstream_queue(ds, "LHLO", line, reply_r) < 0 || downstream_send(ds, "LHLO", reply_r) < 0 ||
	    downstream_read_reply_ext(ds, "LHLO", reply_r, &ds->chunking) < 0)
		return -1;
	if (reply_r->code != 250)
		return downstream_failed(ds, "LHLO", reply_r->text, reply_r);
	return 0;
}

/* format_rcpt - the RCPT command line, allocated: never cut, whatever the
 * lengths (a cut line would lose its CRLF and run into the next command).
 * Concatenated, not printf-formatted: one per recipient. */
static char *format_rcpt(const char *rcpt, const char *orcpt)
{
	if (orcpt != NULL)
		return g_strconcat("RCPT TO:<", rcpt, "> ORCPT=", orcpt, "\r\n", NULL);
	return g_strconcat("RCPT TO:<", rcpt, ">\r\n", NULL);
}

int downstream_begin(struct downstream *ds, const char *from, bool body8bit, const char *rcpt,
		     const char *orcpt, struct lmtp_reply *mail_r, struct lmtp_reply *rcpt_r)
{
	char *mail = g_strconcat("MAIL FROM:<", from, ">", body8bit ? " BODY=8BITMIME" : "", "\r\n", NULL);
	char *line = format_rcpt(rcpt, orcpt);
	bool failed;

	ds->used = true;
	failed = downstream_queue(ds, "MAIL", mail, mail_r) < 0 || downstream_queue(ds, "RCPT", line, mail_r) < 0 ||
		 downstream_send(ds, "MAIL", mail_r) < 0 || downstream_read_reply(ds, "MAIL", mail_r) < 0;
	g_free(mail);
	g_free(line);
	if (failed) {
		*rcpt_r = *mail_r;
		return -1;
	}
	ds->in_transaction = mail_r->code / 100 == 2;
	if (downstream_read_reply(ds, "RCPT", rcpt_r) < 0) {
		*mail_r = *rcpt_r;
		return -1;
	}
	/* Without a transaction Dovecot answered the RCPT with a "need MAIL"
	 * error: the recipient's answer is the refusal of MAIL. */
	if (!ds->in_transaction)
		*rcpt_r = *mail_r;
	return 0;
}

int downstream_rcpt_queue(struct downstream *ds, const char *rcpt, const char *orcpt)
{
	char *line = format_rcpt(rcpt, orcpt);
	int ret = downstream_queue(ds, "RCPT", line, NULL);

	g_free(line);
	return ret;
}

int downstream_rcpt_reply(struct downstream *ds, struct lmtp_reply *reply_r)
{
	/* netio sends what is queued before it waits for the reply. */
	return downstream_read_reply(ds, "RCPT", reply_r);
}

int downstream_rset(struct downstream *ds)
{
	struct lmtp_reply reply;

	if (!ds->connected)
		return -1;
	if (downstream_command(ds, "RSET", "RSET\r\n", &reply) < 0)
		return -1;
	ds->in_transaction = false;
	if (reply.code != 250)
		return downstream_failed(ds, "RSET", reply.text, NULL);
	return 0;
}

/* Stream bytes with dot-stuffing: a '.' at the start of any line (after any
 * LF, so that no line can end the data early) is doubled. */
static enum netio_status stream_stuffed(struct netio *io, const char *data, size_t len, bool *bol)
{
	enum netio_status st;
	size_t i = 0, start = 0;

	while (i < len) {
		if (*bol && data[i] == '.') {
			if ((st = netio_write(io, data + start, i - start)) != NETIO_OK ||
			    (st = netio_write(io, ".", 1)) != NETIO_OK)
				return st;
			start = i;
		}
		*bol = false;
		const char *lf = memchr(data + i, '\n', len - i);
		if (lf == NULL)
			break;
		i = (size_t)(lf - data) + 1;
		*bol = true;
	}
	return netio_write(io, data + start, len - start);
}

/* Write the view's bytes, dot-stuffed (DATA) or as they are (BDAT), taking
 * spooled ranges straight from memory when the spool is there. *last_r is
 * the last byte written, '\n' when there was none. */
static int downstream_write_view(struct downstream *ds, const char *what, const struct message_view *view,
				 const struct spool *spool, bool stuff, char *last_r)
{
	const char *mem = spool_memory(spool);
	char *buf = NULL;
	bool bol = true;
	enum netio_status st = NETIO_OK;
	g_autofree char *error = NULL;

	*last_r = '\n';
	for (size_t i = 0; i < view->count && st == NETIO_OK; i++) {
		const struct view_segment *seg = &view->segs[i];
		const char *bytes = seg->text != NULL ? seg->text : mem != NULL ? mem + seg->offset : NULL;

		if (seg->length == 0)
			continue;
		if (bytes != NULL) {
			st = stuff ? stream_stuffed(&ds->io, bytes, seg->length, &bol)
				   : netio_write(&ds->io, bytes, seg->length);
			*last_r = bytes[seg->length - 1];
			continue;
		}
		if (buf == NULL)
			buf = g_malloc(DOWNSTREAM_CHUNK);
		for (uint64_t done = 0; done < seg->length && st == NETIO_OK;) {
			size_t want = seg->length - done < DOWNSTREAM_CHUNK ? (size_t)(seg->length - done) : DOWNSTREAM_CHUNK;
			ssize_t n = spool_read(spool, seg->offset + done, buf, want, &error);
			if (n <= 0) {
				g_free(buf);
				return downstream_failed(ds, what, n < 0 ? error : "spool truncated", NULL);
			}
			st = stuff ? stream_stuffed(&ds->io, buf, (size_t)n, &bol) : netio_write(&ds->io, buf, (size_t)n);
			*last_r = buf[n - 1];
			done += (uint64_t)n;
		}
	}
	g_free(buf);
	if (st != NETIO_OK)
		return downstream_failed(ds, what, netio_status_text(st), NULL);
	return 0;
}

/* Finish the message: its final line end if it lacks one, the end marker
 * (the dot for DATA, nothing for BDAT), then send what is buffered. */
static int downstream_end_view(struct downstream *ds, const char *what, char last, const char *end)
{
	enum netio_status st = NETIO_OK;

	if (last != '\n')
		st = netio_write(&ds->io, "\r\n", 2);
	if (st == NETIO_OK && *end != '\0')
		st = netio_write(&ds->io, end, strlen(end));
	if (st == NETIO_OK)
		st = netio_flush(&ds->io);
	if (st != NETIO_OK)
		return downstream_failed(ds, what, netio_status_text(st), NULL);
	return 0;
}

/* The view's last byte, '\n' for an empty view; -1 on a spool failure. */
static int view_last_byte(const struct message_view *view, const struct spool *spool, char **error_r)
{
	for (size_t i = view->count; i-- > 0;) {
		const struct view_segment *seg = &view->segs[i];
		if (seg->length == 0)
			continue;
		if (seg->text != NULL)
			return (unsigned char)seg->text[seg->length - 1];
		char c;
		ssize_t n = spool_read(spool, seg->offset + seg->length - 1, &c, 1, error_r);
		if (n != 1) {
			if (n == 0)
				*error_r = g_strdup("spool truncated");
			return -1;
		}
		return (unsigned char)c;
	}
	return '\n';
}

/* DATA's bytes: dot-stuffed, ending in a line end and the final dot. */
static int downstream_send_view(struct downstream *ds, const struct message_view *view, const struct spool *spool)
{
	char last;

	if (downstream_write_view(ds, "DATA", view, spool, true, &last) < 0)
		return -1;
	return downstream_end_view(ds, "DATA", last, ".\r\n");
}

/* BDAT <size> LAST and the view's bytes as they are (RFC 3030), with the
 * same final line end that DATA would add, so both carry identical bytes. */
static int downstream_send_chunk(struct downstream *ds, const struct message_view *view, const struct spool *spool)
{
	g_autofree char *error = NULL;
	int last = view_last_byte(view, spool, &error);
	char written;

	if (last < 0)
		return downstream_failed(ds, "BDAT", error, NULL);
	uint64_t size = message_view_size(view) + (last != '\n' ? 2 : 0);
	enum netio_status st = netio_printf(&ds->io, "BDAT %llu LAST\r\n", (unsigned long long)size);
	if (st != NETIO_OK)
		return downstream_failed(ds, "BDAT", netio_status_text(st), NULL);
	if (downstream_write_view(ds, "BDAT", view, spool, false, &written) < 0)
		return -1;
	return downstream_end_view(ds, "BDAT", written, "");
}

int downstream_data(struct downstream *ds, const struct message_view *view, const struct spool *spool,
		    struct lmtp_reply *replies, size_t count)
{
	struct lmtp_reply reply;
	size_t got = 0;

	if (ds->chunking && ds->connected) {
		if (downstream_send_chunk(ds, view, spool) < 0)
			goto fail;
	} else {
		if (downstream_command(ds, "DATA", "DATA\r\n", &reply) < 0)
			goto fail;
		if (reply.code != 354) {
			/* Dovecot refused DATA itself: that reply is every recipient's. */
			for (size_t i = 0; i < count; i++)
				replies[i] = reply;
			ds->in_transaction = false;
			return 0;
		}
		if (downstream_send_view(ds, view, spool) < 0)
			goto fail;
	}
	/* One reply per recipient after the final dot or BDAT LAST (RFC 2033, RFC 3030). */
	for (; got < count; got++)
		if (downstream_read_reply(ds, "end of data", &replies[got]) < 0)
			goto fail;
	ds->in_transaction = false;
	return 0;
fail:
	for (size_t i = got; i < count; i++)
		downstream_fail_reply(ds, &replies[i]);
	return -1;
}

void downstream_quit(struct downstream *ds)
{
	if (ds->connected && !ds->broken) {
		if (netio_write(&ds->io, "QUIT\r\n", 6) == NETIO_OK)
			(void)netio_flush(&ds->io);
	}
	netio_close(&ds->io);
	ds->connected = false;
}
