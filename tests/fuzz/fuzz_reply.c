/*
 * fuzz_reply - the downstream reply reader on arbitrary bytes. Checks what
 * relaying relies on: every line (of any length and content) that parses
 * gives a reply whose text is clean UTF-8 within its buffer and which
 * formats into one legal reply line parsing back to the same code;
 * netio_read_line_part's pieces put together are the lines that were
 * sent; and the downstream client reading the bytes as a sequence of
 * (multi-line) replies returns only such replies, at most one per line,
 * and stops at the end of the input.
 */
#include "lmtpfilter/downstream.h"
#include "lmtpfilter/netio.h"
#include "lmtpfilter/reply.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_TIMEOUT_MS 1000   /* nothing waits: the input is all there, then EOF */
#define FUZZ_PIECE_MAX 64      /* small pieces, so that lines cross piece boundaries */

static void check_clean(const char *text, size_t size)
{
	const char *nul = memchr(text, '\0', size);

	if (nul == NULL || !g_utf8_validate(text, nul - text, NULL))
		__builtin_trap();
	for (const char *p = text; p < nul; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			__builtin_trap();
}

/* check_relayable - r formats into one legal line that parses back. */
static void check_relayable(const struct lmtp_reply *r)
{
	char buf[REPLY_LINE_MAX + 1];
	struct lmtp_reply back;
	size_t len;

	if (r->code < 200 || r->code > 599)
		__builtin_trap();
	if (r->enhanced[0] != '\0' && r->enhanced[0] != '0' + r->code / 100)
		__builtin_trap();
	check_clean(r->text, sizeof(r->text));
	len = reply_format(buf, sizeof(buf), r->code, r->enhanced, r->text);
	if (len < 5 || len > REPLY_LINE_MAX || len != strlen(buf) || strpbrk(buf, "\r\n") != buf + len - 2)
		__builtin_trap();
	buf[len - 2] = '\0';
	check_clean(buf, len - 1);
	if (reply_parse_line(buf, len - 2, &back) < 0 || back.code != r->code || !back.last ||
	    strcmp(back.enhanced, r->enhanced) != 0)
		__builtin_trap();
}

static void check_lines(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct lmtp_reply r;

	while (p < end) {
		const char *lf = memchr(p, '\n', end - p);
		size_t len = (lf != NULL ? lf : end) - p;

		if (reply_parse_line(p, len, &r) == 0)
			check_relayable(&r);
		p += len + 1;
	}
}

/* feed - the bytes that fit into a socket pair's buffer, then EOF;
 * returns the reading end and the count in *sent_r. */
static int feed(const uint8_t *data, size_t size, size_t *sent_r)
{
	int sv[2];
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		__builtin_trap();
	n = size > 0 ? send(sv[1], data, size, MSG_NOSIGNAL) : 0;
	*sent_r = n > 0 ? (size_t)n : 0;
	close(sv[1]);
	return sv[0];
}

/* Pieces put together give each line whole, without its line end (one CR
 * before the LF); the trailing bytes without LF come back at most in part. */
static void check_pieces(const uint8_t *data, size_t size)
{
	size_t sent, pos = 0, max = size > 0 ? 1 + data[0] % FUZZ_PIECE_MAX : 1;
	struct netio io;
	GString *line = g_string_new(NULL);
	char *part;
	size_t len;
	bool more;

	netio_init(&io, feed(data, size, &sent), FUZZ_TIMEOUT_MS);
	while (netio_read_line_part(&io, max, &part, &len, &more) == NETIO_OK) {
		if (len > max)
			__builtin_trap();
		g_string_append_len(line, part, len);
		if (more)
			continue;
		const uint8_t *lf = memchr(data + pos, '\n', sent - pos);
		if (lf == NULL)
			__builtin_trap();
		size_t n = lf - (data + pos);
		if (n > 0 && lf[-1] == '\r')
			n--;
		if (line->len != n || memcmp(line->str, data + pos, n) != 0)
			__builtin_trap();
		pos = lf - data + 1;
		g_string_truncate(line, 0);
	}
	if (pos + line->len > sent || memcmp(line->str, data + pos, line->len) != 0)
		__builtin_trap();
	netio_close(&io);
	g_string_free(line, TRUE);
}

/* The downstream client reads the bytes as replies until they run out. */
static void check_downstream(const uint8_t *data, size_t size)
{
	struct downstream *ds = downstream_new();
	size_t sent, lines = 0, replies = 0;
	struct lmtp_reply r;

	netio_init(&ds->io, feed(data, size, &sent), FUZZ_TIMEOUT_MS);
	ds->connected = true;
	for (size_t i = 0; i < sent; i++)
		lines += data[i] == '\n';
	while (downstream_rcpt_reply(ds, &r) == 0) {
		check_relayable(&r);
		if (++replies > lines)
			__builtin_trap();
	}
	/* what ended it is ours: a 4xx saying why */
	if (r.code != 451 || strcmp(r.enhanced, "4.4.1") != 0 || ds->connected)
		__builtin_trap();
	check_relayable(&r);
	downstream_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lmtp_reply r;

	if (reply_parse_line((const char *)data, size, &r) == 0)
		check_relayable(&r);
	check_lines(data, size);
	check_pieces(data, size);
	check_downstream(data, size);
	return 0;
}
