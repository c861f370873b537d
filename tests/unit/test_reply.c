/*
 * test_reply - formatting our replies (single and multi-line, cleaning and
 * cutting the text) and parsing Dovecot's (codes, separators, enhanced
 * status codes, malformed lines).
 */
#include "lmtpfilter/reply.h"

#include <glib.h>
#include <string.h>

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
	{ "250 Ok\r", -1, 0, "", "", false },
	{ "250 O\nk", -1, 0, "", "", false },
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

	g_assert_cmpint(reply_parse_line(line, sizeof(line) - 1, &r), ==, -1);
	/* only len bytes are read: the same bytes cut before the NUL parse */
	g_assert_cmpint(reply_parse_line(line, 11, &r), ==, 0);
	g_assert_cmpstr(r.text, ==, "O");
}

static void test_parse_length(void)
{
	char line[REPLY_LINE_MAX + 2];
	struct lmtp_reply r;

	memset(line, 'y', sizeof(line));
	memcpy(line, "250 ", 4);
	g_assert_cmpint(reply_parse_line(line, REPLY_LINE_MAX, &r), ==, 0);
	g_assert_cmpuint(strlen(r.text), ==, REPLY_LINE_MAX - 4);
	g_assert_cmpint(reply_parse_line(line, REPLY_LINE_MAX + 1, &r), ==, -1);
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
	g_test_add_func("/reply/round_trip", test_round_trip);
	return g_test_run();
}
