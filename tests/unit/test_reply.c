/*
 * test_reply - formatting our replies (single and multi-line, cleaning and
 * cutting the text), parsing Dovecot's (codes, separators, enhanced status
 * codes, malformed lines, lines of any length and content), reading lines
 * in pieces (netio), and the downstream client reading long, multi-line and
 * hostile replies from a scripted server on a unix socket.
 */
#include "lmtpfilter/config.h"
#include "lmtpfilter/downstream.h"
#include "lmtpfilter/message_view.h"
#include "lmtpfilter/netio.h"
#include "lmtpfilter/reply.h"
#include "lmtpfilter/spool.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TEST_TIMEOUT_MS 5000

static void assert_format(int code, const char *enhanced, const char *text, const char *expected)
{
	char buf[REPLY_LINE_MAX + 32];
	size_t len = reply_format(buf, sizeof(buf), code, enhanced, text);

	g_assert_cmpstr(buf, ==, expected);
	g_assert_cmpuint(len, ==, strlen(expected));
}

static void test_format(void)
{
	assert_format(250, "2.1.0", "Ok", "250 2.1.0 Ok\r\n");
	assert_format(250, NULL, "mx.example.com", "250 mx.example.com\r\n");
	assert_format(250, "", "Ok", "250 Ok\r\n");
	assert_format(354, NULL, "Start mail input; end with <CRLF>.<CRLF>",
		      "354 Start mail input; end with <CRLF>.<CRLF>\r\n");
	assert_format(250, "2.0.0", NULL, "250 2.0.0\r\n");
	assert_format(250, NULL, NULL, "250\r\n");
	assert_format(250, NULL, "", "250\r\n");
	/* CR, LF and other controls cannot split or corrupt the reply */
	assert_format(550, "5.7.1", "evil\r\n250 ok", "550 5.7.1 evil  250 ok\r\n");
	assert_format(451, "4.3.0", "a\tb\x01" "c\x7f", "451 4.3.0 a b c \r\n");
	/* an invalid code is never sent as such */
	assert_format(99, NULL, "x", "451 x\r\n");
	assert_format(600, NULL, "x", "451 x\r\n");
	assert_format(-250, NULL, "x", "451 x\r\n");
	/* UTF-8 passes unchanged */
	assert_format(250, "2.1.5", "J\xc3\xbcrgen ok", "250 2.1.5 J\xc3\xbcrgen ok\r\n");
}

static void test_format_long(void)
{
	char *text = g_malloc(2 * REPLY_LINE_MAX);
	char buf[2 * REPLY_LINE_MAX];
	size_t len;

	memset(text, 'x', 2 * REPLY_LINE_MAX - 1);
	text[2 * REPLY_LINE_MAX - 1] = '\0';
	len = reply_format(buf, sizeof(buf), 550, "5.1.1", text);
	g_assert_cmpuint(len, ==, REPLY_LINE_MAX);
	g_assert_cmpuint(strlen(buf), ==, len);
	g_assert_true(g_str_has_prefix(buf, "550 5.1.1 xxx"));
	g_assert_true(g_str_has_suffix(buf, "x\r\n"));

	/* a small buffer: cut to fit, still a complete line */
	len = reply_format(buf, 20, 550, "5.1.1", text);
	g_assert_cmpuint(len, ==, 19);
	g_assert_cmpstr(buf, ==, "550 5.1.1 xxxxxxx\r\n");
	g_assert_cmpuint(reply_format(buf, 5, 550, NULL, "x"), ==, 0);
	g_assert_cmpstr(buf, ==, "");
	g_assert_cmpuint(reply_format(buf, 6, 550, NULL, "x"), ==, 5);
	g_assert_cmpstr(buf, ==, "550\r\n");
	g_assert_cmpuint(reply_format(buf, 0, 550, NULL, "x"), ==, 0);
	g_free(text);
}

/* A cut never leaves half a UTF-8 character behind. */
static void test_format_utf8_cut(void)
{
	char buf[32];
	/* "250 " + 9 bytes of text fit before CRLF in 16 bytes with NUL */
	const char *text = "abcdefgh\xc3\xbc" "z";  /* ü at bytes 8-9 */
	size_t len = reply_format(buf, 16, 250, NULL, text);

	g_assert_cmpstr(buf, ==, "250 abcdefgh\r\n");
	g_assert_cmpuint(len, ==, 14);
	g_assert_true(g_utf8_validate(buf, -1, NULL));
	/* three-byte character (€) cut after its first byte and after its second */
	g_assert_cmpuint(reply_format(buf, 16, 250, NULL, "abcdefgh\xe2\x82\xac"), ==, 14);
	g_assert_cmpstr(buf, ==, "250 abcdefgh\r\n");
	g_assert_cmpuint(reply_format(buf, 16, 250, NULL, "abcdefg\xe2\x82\xac"), ==, 13);
	g_assert_cmpstr(buf, ==, "250 abcdefg\r\n");
	/* a character that fits whole stays */
	g_assert_cmpuint(reply_format(buf, 16, 250, NULL, "abcdefg\xc3\xbc"), ==, 15);
	g_assert_cmpstr(buf, ==, "250 abcdefg\xc3\xbc\r\n");
}

static void test_format_multi(void)
{
	static const char *const lines[] = { "mx.example.com", "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME" };
	char buf[256];
	size_t len;

	len = reply_format_multi(buf, sizeof(buf), 250, lines, G_N_ELEMENTS(lines));
	g_assert_cmpstr(buf, ==, "250-mx.example.com\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n");
	g_assert_cmpuint(len, ==, strlen(buf));

	len = reply_format_multi(buf, sizeof(buf), 250, lines, 1);
	g_assert_cmpstr(buf, ==, "250 mx.example.com\r\n");
	g_assert_cmpuint(len, ==, strlen(buf));

	len = reply_format_multi(buf, sizeof(buf), 250, lines, 0);
	g_assert_cmpstr(buf, ==, "250\r\n");

	static const char *const dirty[] = { "a\r\n250 b", "", "c" };
	len = reply_format_multi(buf, sizeof(buf), 250, dirty, G_N_ELEMENTS(dirty));
	g_assert_cmpstr(buf, ==, "250-a  250 b\r\n250-\r\n250 c\r\n");

	static const char *const empty_last[] = { "a", "" };
	len = reply_format_multi(buf, sizeof(buf), 250, empty_last, G_N_ELEMENTS(empty_last));
	g_assert_cmpstr(buf, ==, "250-a\r\n250\r\n");
	g_assert_cmpuint(len, ==, strlen(buf));
}

/* When buf is too small, the reply is shorter but still well-formed. */
static void test_format_multi_small(void)
{
	static const char *const lines[] = { "mx.example.com", "PIPELINING", "ENHANCEDSTATUSCODES" };
	char buf[64];
	size_t len;

	/* "250-mx.example.com\r\n" is 20 bytes, "250-PIPELINING\r\n" 16: 36 + NUL */
	len = reply_format_multi(buf, 37, 250, lines, G_N_ELEMENTS(lines));
	g_assert_cmpstr(buf, ==, "250-mx.example.com\r\n250 PIPELINING\r\n");
	g_assert_cmpuint(len, ==, 36);
	len = reply_format_multi(buf, 36, 250, lines, G_N_ELEMENTS(lines));
	g_assert_cmpstr(buf, ==, "250 mx.example.com\r\n");
	g_assert_cmpuint(len, ==, 20);
	/* not even the first line whole: it is cut */
	len = reply_format_multi(buf, 12, 250, lines, G_N_ELEMENTS(lines));
	g_assert_cmpstr(buf, ==, "250 mx.ex\r\n");
	g_assert_cmpuint(len, ==, 11);
}

struct parse_case {
	const char *line;
	int ret;
	int code;
	const char *enhanced;
	const char *text;
	bool last;
};

static const struct parse_case parse_cases[] = {
	{ "250 2.1.0 Ok", 0, 250, "2.1.0", "Ok", true },
	{ "250-2.1.5 Ok", 0, 250, "2.1.5", "Ok", false },
	{ "250-mail.example.com", 0, 250, "", "mail.example.com", false },
	{ "220 mail.example.com Dovecot ready.", 0, 220, "", "mail.example.com Dovecot ready.", true },
	{ "354 OK", 0, 354, "", "OK", true },
	{ "250", 0, 250, "", "", true },
	{ "250 ", 0, 250, "", "", true },
	{ "250-", 0, 250, "", "", false },
	{ "552 5.2.2 <u@example.com> Quota exceeded (mailbox for user is full)", 0, 552, "5.2.2",
	  "<u@example.com> Quota exceeded (mailbox for user is full)", true },
	{ "451 4.3.0 <u@example.com> Temporary internal error", 0, 451, "4.3.0",
	  "<u@example.com> Temporary internal error", true },
	{ "550 5.1.1", 0, 550, "5.1.1", "", true },
	{ "550 5.100.100 x", 0, 550, "5.100.100", "x", true },
	/* control characters in the text become spaces */
	{ "250 2.1.0\tOk\x01", 0, 250, "2.1.0", "Ok ", true },
	/* enhanced code class must match the reply code */
	{ "250 5.1.1 odd", 0, 250, "", "5.1.1 odd", true },
	{ "550 2.0.0 odd", 0, 550, "", "2.0.0 odd", true },
	{ "354 3.0.0 go", 0, 354, "", "3.0.0 go", true },
	/* things that only look like an enhanced code */
	{ "250 2.1 short", 0, 250, "", "2.1 short", true },
	{ "250 2.1.0.1 long", 0, 250, "", "2.1.0.1 long", true },
	{ "250 2.1.0x", 0, 250, "", "2.1.0x", true },
	{ "250 2.1000.0 big", 0, 250, "", "2.1000.0 big", true },
	{ "250 2..0 empty", 0, 250, "", "2..0 empty", true },
	{ "250 2.1.", 0, 250, "", "2.1.", true },
	/* malformed */
	{ "", -1, 0, "", "", false },
	{ "25", -1, 0, "", "", false },
	{ "2500 Ok", -1, 0, "", "", false },
	{ "25O Ok", -1, 0, "", "", false },
	{ "abc Ok", -1, 0, "", "", false },
	{ "150 Ok", -1, 0, "", "", false },
	{ "650 Ok", -1, 0, "", "", false },
	{ "050 Ok", -1, 0, "", "", false },
	{ "250_Ok", -1, 0, "", "", false },
	{ " 250 Ok", -1, 0, "", "", false },
	/* odd bytes in the text are cleaned, never a reason to drop the code */
	{ "250 Ok\r", 0, 250, "", "Ok ", true },
	{ "250 O\nk", 0, 250, "", "O k", true },
	{ "250 2.0.0 a\rb\x1b[1m\x7f", 0, 250, "2.0.0", "a b [1m ", true },
	{ "250 2.0.0 \xff\xfe x", 0, 250, "2.0.0", "?? x", true },
	{ "250 2.0.0 J\xc3\xbcrgen \xe2\x82\xac", 0, 250, "2.0.0", "J\xc3\xbcrgen \xe2\x82\xac", true },
	/* overlong, surrogate, C1 control, cut sequence at the end */
	{ "250 \xc0\xaf \xed\xa0\x80 \xc2\x85 \xe2\x82", 0, 250, "", "?? ???   ??", true },
	{ "250 Saved without enhanced code", 0, 250, "", "Saved without enhanced code", true },
	{ "250\x80", -1, 0, "", "", false },
	{ "2\x0050 Ok", -1, 0, "", "", false },
};

static void test_parse_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct lmtp_reply r;
		int ret = reply_parse_line(c->line, strlen(c->line), &r);

		if (ret != c->ret)
			g_error("\"%s\": expected %d, got %d", c->line, c->ret, ret);
		if (ret < 0)
			continue;
		if (r.code != c->code || strcmp(r.enhanced, c->enhanced) != 0 ||
		    strcmp(r.text, c->text) != 0 || r.last != c->last)
			g_error("\"%s\": got code=%d enhanced=\"%s\" text=\"%s\" last=%d", c->line, r.code,
				r.enhanced, r.text, r.last);
	}
}

static void test_parse_nul(void)
{
	static const char line[] = "250 2.0.0 O\0k";
	struct lmtp_reply r;

	g_assert_cmpint(reply_parse_line(line, sizeof(line) - 1, &r), ==, 0);
	g_assert_cmpstr(r.enhanced, ==, "2.0.0");
	g_assert_cmpstr(r.text, ==, "O k");
	/* only len bytes are read: the same bytes cut before the NUL parse */
	g_assert_cmpint(reply_parse_line(line, 11, &r), ==, 0);
	g_assert_cmpstr(r.text, ==, "O");
}

/* assert_relayable - r formats into one legal reply line (at most
 * REPLY_LINE_MAX bytes with CRLF, no control bytes, valid UTF-8) that
 * parses back to the same code and enhanced code. */
static void assert_relayable(const struct lmtp_reply *r)
{
	char buf[REPLY_LINE_MAX + 32];
	struct lmtp_reply back;
	size_t len = reply_format(buf, sizeof(buf), r->code, r->enhanced, r->text);

	g_assert_cmpuint(len, <=, REPLY_LINE_MAX);
	g_assert_true(g_str_has_suffix(buf, "\r\n"));
	for (size_t i = 0; i + 2 < len; i++)
		g_assert_true((unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f);
	g_assert_true(g_utf8_validate(buf, (gssize)len, NULL));
	g_assert_cmpint(reply_parse_line(buf, len - 2, &back), ==, 0);
	g_assert_cmpint(back.code, ==, r->code);
	g_assert_cmpstr(back.enhanced, ==, r->enhanced);
}

/* A line of any length keeps its code and enhanced code; its text is cut
 * to what the reply holds, and relaying it gives a legal line. */
static void test_parse_length(void)
{
	static const size_t lengths[] = { REPLY_LINE_MAX, REPLY_LINE_MAX + 1, 540, 5000, 65534, 65535, 100000 };

	for (size_t i = 0; i < G_N_ELEMENTS(lengths); i++) {
		char *line = g_malloc(lengths[i]);
		struct lmtp_reply r;

		memset(line, 'y', lengths[i]);
		memcpy(line, "250 2.0.0 <", 11);
		g_assert_cmpint(reply_parse_line(line, lengths[i], &r), ==, 0);
		g_assert_cmpint(r.code, ==, 250);
		g_assert_cmpstr(r.enhanced, ==, "2.0.0");
		g_assert_true(r.last);
		/* the buffer holds what follows "250 ", the enhanced code with it */
		g_assert_cmpuint(strlen(r.text), ==, MIN(lengths[i] - 4, sizeof(r.text) - 1) - 6);
		g_assert_true(g_str_has_prefix(r.text, "<yyy"));
		assert_relayable(&r);
		/* a continuation line the same */
		line[3] = '-';
		g_assert_cmpint(reply_parse_line(line, lengths[i], &r), ==, 0);
		g_assert_false(r.last);
		g_assert_cmpstr(r.enhanced, ==, "2.0.0");
		g_free(line);
	}
}

/* The cut falls before a UTF-8 character that does not fit whole, and
 * odd bytes count as the one byte that replaces them. */
static void test_parse_cut_utf8(void)
{
	struct lmtp_reply r;
	GString *line = g_string_new("550 5.1.1 ");

	/* "5.1.1 " and text: sizeof(r.text) - 2 bytes, then a two-byte character */
	while (line->len < 4 + sizeof(r.text) - 2)
		g_string_append_c(line, 'n');
	g_string_append(line, "\xc3\xbc" "tail");
	g_assert_cmpint(reply_parse_line(line->str, line->len, &r), ==, 0);
	g_assert_cmpstr(r.enhanced, ==, "5.1.1");
	g_assert_cmpuint(strlen(r.text), ==, sizeof(r.text) - 2 - 6);
	g_assert_true(g_utf8_validate(r.text, -1, NULL));
	assert_relayable(&r);
	/* one byte less before it: the character fits */
	g_string_erase(line, 10, 1);
	g_assert_cmpint(reply_parse_line(line->str, line->len, &r), ==, 0);
	g_assert_cmpuint(strlen(r.text), ==, sizeof(r.text) - 1 - 6);
	g_assert_true(g_str_has_suffix(r.text, "\xc3\xbc"));
	assert_relayable(&r);
	g_string_free(line, TRUE);

	/* every byte value in the text: relayable, whatever it holds */
	char all[4 + 256];
	memcpy(all, "451 ", 4);
	for (int c = 0; c < 256; c++)
		all[4 + c] = (char)c;
	g_assert_cmpint(reply_parse_line(all, sizeof(all), &r), ==, 0);
	g_assert_cmpint(r.code, ==, 451);
	assert_relayable(&r);
}

/* The lines of a multi-line reply parse alike, long or not; only the
 * separator tells the last one. */
static void test_parse_multi_line(void)
{
	char *lines[] = { g_strnfill(3000, 'm'), g_strdup("more"), g_strnfill(70000, 'z') };
	struct lmtp_reply r;

	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
		bool last = i + 1 == G_N_ELEMENTS(lines);
		char *line = g_strdup_printf("452%c4.2.2 %s", last ? ' ' : '-', lines[i]);

		g_assert_cmpint(reply_parse_line(line, strlen(line), &r), ==, 0);
		g_assert_cmpint(r.code, ==, 452);
		g_assert_cmpstr(r.enhanced, ==, "4.2.2");
		g_assert_true(r.last == last);
		g_assert_cmpuint(r.text[0], ==, lines[i][0]);
		assert_relayable(&r);
		g_free(line);
		g_free(lines[i]);
	}
}

/* What we parse from Dovecot we can relay: format(parse(x)) parses back
 * to the same reply. */
static void test_round_trip(void)
{
	static const char *const lines[] = {
		"552 5.2.2 <u@example.com> Quota exceeded",
		"250 2.0.0 <u@example.com> Ok: saved",
		"451 Temporary failure",
		"250 5.1.1 mismatch kept as text",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
		struct lmtp_reply a, b;
		char buf[REPLY_LINE_MAX + 1];
		size_t len;

		g_assert_cmpint(reply_parse_line(lines[i], strlen(lines[i]), &a), ==, 0);
		len = reply_format(buf, sizeof(buf), a.code, a.enhanced, a.text);
		g_assert_cmpuint(len, ==, strlen(lines[i]) + 2);
		g_assert_cmpint(reply_parse_line(buf, len - 2, &b), ==, 0);
		g_assert_cmpint(a.code, ==, b.code);
		g_assert_cmpstr(a.enhanced, ==, b.enhanced);
		g_assert_cmpstr(a.text, ==, b.text);
	}
}

/* ---- lines in pieces ---- */

static void assert_part(struct netio *io, size_t max, const char *expected, bool more)
{
	char *part;
	size_t len;
	bool more_r;

	g_assert_cmpint(netio_read_line_part(io, max, &part, &len, &more_r), ==, NETIO_OK);
	g_assert_cmpuint(len, ==, strlen(expected));
	g_assert_true(memcmp(part, expected, len) == 0);
	g_assert_true(more_r == more);
}

/* Pieces of at most max bytes; CRLF, bare LF and a CR right at a piece's
 * end are told apart; EOF in the middle of a line is EOF. */
static void test_netio_part(void)
{
	static const char input[] = "abcd\r\n" "abcde\r\n" "abcdef\n" "ab\rcd\r\n" "\r\n" "abcd\rx\r\n"
				    "abcdefghij\r\n" "tails";
	int sv[2];
	struct netio io;
	char *part;
	size_t len;
	bool more;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==, 0);
	g_assert_cmpint(write(sv[1], input, sizeof(input) - 1), ==, (ssize_t)sizeof(input) - 1);
	close(sv[1]);
	netio_init(&io, sv[0], TEST_TIMEOUT_MS);
	assert_part(&io, 4, "abcd", false);
	assert_part(&io, 4, "abcd", true);
	assert_part(&io, 4, "e", false);
	assert_part(&io, 4, "abcd", true);
	assert_part(&io, 4, "ef", false);
	assert_part(&io, 4, "ab\rc", true);
	assert_part(&io, 4, "d", false);
	assert_part(&io, 4, "", false);
	assert_part(&io, 4, "abcd", true);
	assert_part(&io, 4, "\rx", false);
	assert_part(&io, 4, "abcd", true);
	assert_part(&io, 4, "efgh", true);
	assert_part(&io, 4, "ij", false);
	assert_part(&io, 4, "tail", true);
	g_assert_cmpint(netio_read_line_part(&io, 4, &part, &len, &more), ==, NETIO_EOF);
	netio_close(&io);
}

/* ---- the downstream client against a scripted server ---- */

struct peer {
	char *dir;
	struct endpoint ep;
	int listen_fd;
	GString *script;     /* sent whole on accept; what arrives is read and dropped */
	GThread *thread;
};

static gpointer peer_main(gpointer data)
{
	struct peer *p = data;
	int fd = accept(p->listen_fd, NULL, NULL);
	char buf[4096];

	g_assert_cmpint(fd, >=, 0);
	for (size_t off = 0; off < p->script->len;) {
		ssize_t n = send(fd, p->script->str + off, p->script->len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;  /* the client gave up on us */
		off += (size_t)n;
	}
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

static struct peer *peer_start(GString *script)
{
	struct peer *p = g_new0(struct peer, 1);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	p->dir = g_dir_make_tmp("test-reply-XXXXXX", NULL);
	g_assert_nonnull(p->dir);
	p->ep.is_unix = true;
	p->ep.path = g_build_filename(p->dir, "lmtp", NULL);
	g_strlcpy(sun.sun_path, p->ep.path, sizeof(sun.sun_path));
	p->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	g_assert_cmpint(bind(p->listen_fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
	g_assert_cmpint(listen(p->listen_fd, 1), ==, 0);
	p->script = script;
	p->thread = g_thread_new("peer", peer_main, p);
	return p;
}

static void peer_stop(struct peer **pp)
{
	struct peer *p = *pp;

	g_thread_join(p->thread);
	close(p->listen_fd);
	g_unlink(p->ep.path);
	g_rmdir(p->dir);
	g_free(p->ep.path);
	g_free(p->dir);
	g_string_free(p->script, TRUE);
	g_free(p);
	*pp = NULL;
}

static void append_line(GString *s, const char *start, char fill, size_t count, const char *end)
{
	g_string_append(s, start);
	for (size_t i = 0; i < count; i++)
		g_string_append_c(s, fill);
	g_string_append(s, end);
}

static void assert_reply(const struct lmtp_reply *r, int code, const char *enhanced, const char *text_start)
{
	g_assert_cmpint(r->code, ==, code);
	g_assert_cmpstr(r->enhanced, ==, enhanced);
	if (!g_str_has_prefix(r->text, text_start))
		g_error("reply text \"%.60s\" does not start with \"%s\"", r->text, text_start);
	assert_relayable(r);
}

/* deliver - a small message as BDAT, replies into replies[0..count). */
static int deliver(struct downstream *ds, struct lmtp_reply *replies, size_t count)
{
	static const char message[] = "Subject: x\r\n\r\nhello\r\n";
	struct spool *spool = spool_new(g_get_tmp_dir(), 1 << 20);
	struct message_view view;
	g_autofree char *error = NULL;
	int ret;

	g_assert_cmpint(spool_finish(spool, &error), ==, 0);
	message_view_init(&view);
	message_view_add_text(&view, message, sizeof(message) - 1);
	ret = downstream_data(ds, &view, spool, replies, count);
	message_view_clear(&view);
	spool_free(&spool);
	return ret;
}

/* connect_and_begin - greeting, LHLO, MAIL and a first RCPT that the
 * script answers "250 2.1.5 OK" (all from script_start). */
static struct downstream *connect_and_begin(struct peer *p)
{
	struct downstream *ds = downstream_new();
	struct lmtp_reply r, mail;

	g_assert_cmpint(downstream_connect(ds, &p->ep, "test", TEST_TIMEOUT_MS, &r), ==, 0);
	g_assert_cmpint(downstream_begin(ds, "s@example.org", false, "r0@example.com", NULL, &mail, &r), ==, 0);
	assert_reply(&r, 250, "2.1.5", "OK");
	return ds;
}

static const char script_start[] = "220 fake\r\n250-fake\r\n250 CHUNKING\r\n250 2.1.0 OK\r\n250 2.1.5 OK\r\n";

/* Long lines, a long multi-line LHLO, odd bytes, no enhanced code: every
 * reply is Dovecot's, each in its place, and the connection stays in step. */
static void test_downstream_long_replies(void)
{
	GString *s = g_string_new("220 fake ready\r\n");
	struct lmtp_reply r, mail, replies[4];
	static const char odd[] = "250 2.1.5 a\0b\rc\xff\n";

	append_line(s, "250-", 'h', 70000, "\r\n");
	for (int i = 0; i < 150; i++)
		g_string_append(s, "250-X-LINE\r\n");
	append_line(s, "250-CHUNKING\r\n250-", 'x', 3000, "\r\n250 PIPELINING\r\n");
	g_string_append(s, "250 2.1.0 OK\r\n");
	append_line(s, "550 5.1.1 <", 'n', 1000, "@example.com> User doesn't exist\r\n");
	append_line(s, "250-2.1.5 ", 'm', 5000, "\r\n250 2.1.5 OK\r\n");
	append_line(s, "250 2.1.5 ", 'y', 100000, "\r\n");
	g_string_append_len(s, odd, sizeof(odd) - 1);
	g_string_append(s, "250 OK no enhanced code\r\n");
	append_line(s, "250 2.0.0 <", 's', 600, "> abc Saved\r\n");
	g_string_append(s, "250-2.0.0 first\r\n250 2.0.0 <r3> Saved\r\n");
	append_line(s, "250 2.0.0 ", 'z', 100000, "\r\n");
	g_string_append(s, "452 4.2.2 Mailbox full\r\n250 2.0.0 OK\r\n");
	struct peer *p = peer_start(s);
	struct downstream *ds = downstream_new();

	g_assert_cmpint(downstream_connect(ds, &p->ep, "test", TEST_TIMEOUT_MS, &r), ==, 0);
	assert_reply(&r, 250, "", "PIPELINING");
	g_assert_true(ds->chunking);
	g_assert_cmpint(downstream_begin(ds, "s@example.org", false, "n@example.com", NULL, &mail, &r), ==, 0);
	assert_reply(&mail, 250, "2.1.0", "OK");
	assert_reply(&r, 550, "5.1.1", "<nnnn");
	for (int i = 1; i <= 4; i++) {
		char rcpt[32];
		g_snprintf(rcpt, sizeof(rcpt), "r%d@example.com", i);
		g_assert_cmpint(downstream_rcpt_queue(ds, rcpt, NULL), ==, 0);
	}
	const char *const rcpt_texts[] = { "OK", "yyyy", "a b c?", "OK no enhanced code" };
	for (int i = 0; i < 4; i++) {
		g_assert_cmpint(downstream_rcpt_reply(ds, &r), ==, 0);
		assert_reply(&r, 250, i == 3 ? "" : "2.1.5", rcpt_texts[i]);
	}
	g_assert_cmpint(deliver(ds, replies, 4), ==, 0);
	assert_reply(&replies[0], 250, "2.0.0", "<ssss");
	assert_reply(&replies[1], 250, "2.0.0", "<r3> Saved");
	assert_reply(&replies[2], 250, "2.0.0", "zzzz");
	assert_reply(&replies[3], 452, "4.2.2", "Mailbox full");
	/* in step: the next reply read is RSET's */
	g_assert_cmpint(downstream_rset(ds), ==, 0);
	g_assert_false(ds->broken);
	downstream_quit(ds);
	downstream_free(&ds);
	peer_stop(&p);
}

/* More than DOWNSTREAM_REPLY_BYTES_MAX in one reply, in one line or in
 * many: the 2xx read so far stands, the connection is given up and the
 * later recipient, whose reply cannot be read, gets our 4xx. */
static void test_downstream_reply_over_budget(void)
{
	for (int multi = 0; multi < 2; multi++) {
		GString *s = g_string_new(script_start);
		struct lmtp_reply r, replies[2];

		g_string_append(s, "250 2.1.5 OK\r\n");
		if (multi) {
			for (int i = 0; i < 300; i++)
				append_line(s, "250-2.0.0 ", 'w', 4000, "\r\n");
			g_string_append(s, "250 2.0.0 end\r\n");
		} else {
			append_line(s, "250 2.0.0 ", 'z', 2 * 1024 * 1024, "\r\n");
		}
		g_string_append(s, "250 2.0.0 second\r\n");
		struct peer *p = peer_start(s);
		struct downstream *ds = connect_and_begin(p);

		g_assert_cmpint(downstream_rcpt_queue(ds, "r1@example.com", NULL), ==, 0);
		g_assert_cmpint(downstream_rcpt_reply(ds, &r), ==, 0);
		g_assert_cmpint(deliver(ds, replies, 2), ==, -1);
		assert_reply(&replies[0], 250, "2.0.0", multi ? "wwww" : "zzzz");
		assert_reply(&replies[1], 451, "4.4.1", "Mailbox delivery temporarily unavailable");
		g_assert_true(ds->broken);
		g_assert_nonnull(strstr(ds->error, "reply too long"));
		downstream_free(&ds);
		peer_stop(&p);
	}
}

/* A line that is no reply: nothing says the message was stored. */
static void test_downstream_malformed_reply(void)
{
	GString *s = g_string_new(script_start);
	struct lmtp_reply replies[2];

	g_string_append(s, "250 2.1.5 OK\r\nhello there\r\n250 2.0.0 second\r\n");
	struct peer *p = peer_start(s);
	struct downstream *ds = connect_and_begin(p);
	struct lmtp_reply r;

	g_assert_cmpint(downstream_rcpt_queue(ds, "r1@example.com", NULL), ==, 0);
	g_assert_cmpint(downstream_rcpt_reply(ds, &r), ==, 0);
	g_assert_cmpint(deliver(ds, replies, 2), ==, -1);
	assert_reply(&replies[0], 451, "4.4.1", "Mailbox delivery temporarily unavailable");
	assert_reply(&replies[1], 451, "4.4.1", "Mailbox delivery temporarily unavailable");
	g_assert_nonnull(strstr(ds->error, "malformed reply"));
	downstream_free(&ds);
	peer_stop(&p);
}

/* A 512-byte reply line of 8-bit text right after its enhanced code (found
 * by fuzz_lmtp_parser against an older reply.c): relayed as a legal line
 * that parses back to the same code and enhanced code. */
static void test_round_trip_8bit_at_the_limit(void)
{
	static const char line[] =
		"\x32\x32\x33\x20\x32\x2e\x30\x2e\x33\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\x80\x80\xbf\xa3\x80\x80\x80\x80"
		"\x80\x80\x80\x80\x80\x80\xbf\xa3\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\x80\x80\xbf\xa3\x80\x80\x80"
		"\x80\x80\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\x80"
		"\x80\xbf\xa3\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\xbf\xa3\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\x80\x80\xbf\xa3\x80\x80\x80\x80\x80\x80"
		"\x80\x80\x80\x80\xbf\xa3\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba\xba"
		"\xba\xba\xba\xba\xba\xba\xba\xba\xba\x80\x80\xbf\xa3\x80\x80\x80"
		"\x80\x80\x80\x80\x80\x80\x80\xbf\xa3\x80\x80\x80\x80\xbf\xa3\x09";
	struct lmtp_reply a, b;
	char buf[REPLY_LINE_MAX + 1];
	size_t len;

	g_assert_cmpuint(sizeof(line) - 1, ==, 512);
	g_assert_cmpint(reply_parse_line(line, sizeof(line) - 1, &a), ==, 0);
	g_assert_cmpint(a.code, ==, 223);
	len = reply_format(buf, sizeof(buf), a.code, a.enhanced, a.text);
	g_assert_cmpuint(len, <=, REPLY_LINE_MAX);
	g_assert_true(strpbrk(buf, "\r\n") == buf + len - 2);
	g_assert_cmpint(reply_parse_line(buf, len - 2, &b), ==, 0);
	g_assert_cmpint(b.code, ==, a.code);
	g_assert_cmpstr(b.enhanced, ==, a.enhanced);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/reply/format", test_format);
	g_test_add_func("/reply/format_long", test_format_long);
	g_test_add_func("/reply/format_utf8_cut", test_format_utf8_cut);
	g_test_add_func("/reply/format_multi", test_format_multi);
	g_test_add_func("/reply/format_multi_small", test_format_multi_small);
	g_test_add_func("/reply/parse_table", test_parse_table);
	g_test_add_func("/reply/parse_nul", test_parse_nul);
	g_test_add_func("/reply/parse_length", test_parse_length);
	g_test_add_func("/reply/parse_cut_utf8", test_parse_cut_utf8);
	g_test_add_func("/reply/parse_multi_line", test_parse_multi_line);
	g_test_add_func("/reply/round_trip", test_round_trip);
	g_test_add_func("/reply/round_trip_8bit_at_the_limit", test_round_trip_8bit_at_the_limit);
	g_test_add_func("/reply/netio_part", test_netio_part);
	g_test_add_func("/reply/downstream_long_replies", test_downstream_long_replies);
	g_test_add_func("/reply/downstream_reply_over_budget", test_downstream_reply_over_budget);
	g_test_add_func("/reply/downstream_malformed_reply", test_downstream_malformed_reply);
	return g_test_run();
}
