/*
 * test_lmtp_parser - lmtp_command_parse on a table of command lines: each
 * verb, MAIL/RCPT/XFORWARD parameters, addresses, and the exact reply for
 * every kind of bad input; plus lines that a C string cannot hold (NUL)
 * and lines at and beyond the length limits.
 */
#include "lmtpfilter/lmtp_parser.h"

#include <glib.h>
#include <string.h>

struct parse_case {
	const char *line;
	enum lmtp_verb verb;     /* expected verb on success */
	int code;                /* 0: success expected; else the error reply */
	const char *enhanced;    /* error enhanced code */
	const char *path;        /* expected path (NULL: none) */
	const char *arg;         /* expected arg (NULL: none) */
	const char *params;      /* "KEY=value|KEY" (NULL or "": none) */
};

#define OK(line, verb, path, arg, params) { line, verb, 0, NULL, path, arg, params }
#define ERR(line, code, enhanced) { line, LMTP_VERB_UNKNOWN, code, enhanced, NULL, NULL, NULL }

static const struct parse_case cases[] = {
	/* greetings */
	OK("LHLO mx.example.com", LMTP_VERB_LHLO, NULL, "mx.example.com", NULL),
	OK("lhlo mx.example.com", LMTP_VERB_LHLO, NULL, "mx.example.com", NULL),
	OK("LhLo [192.0.2.1]", LMTP_VERB_LHLO, NULL, "[192.0.2.1]", NULL),
	OK("LHLO mail_host.example.com  ", LMTP_VERB_LHLO, NULL, "mail_host.example.com", NULL),
	ERR("LHLO", 501, "5.5.4"),
	ERR("LHLO    ", 501, "5.5.4"),
	ERR("LHLO two words", 501, "5.5.4"),
	ERR("LHLO bad..domain", 501, "5.5.4"),
	ERR("LHLO [unclosed", 501, "5.5.4"),
	OK("HELO client.example", LMTP_VERB_HELO, NULL, "client.example", NULL),
	OK("EHLO client.example", LMTP_VERB_EHLO, NULL, "client.example", NULL),
	OK("ehlo", LMTP_VERB_EHLO, NULL, NULL, NULL),

	/* no-argument commands */
	OK("DATA", LMTP_VERB_DATA, NULL, NULL, NULL),
	OK("data", LMTP_VERB_DATA, NULL, NULL, NULL),
	OK("DATA ", LMTP_VERB_DATA, NULL, NULL, NULL),
	ERR("DATA now", 501, "5.5.4"),
	OK("RSET", LMTP_VERB_RSET, NULL, NULL, NULL),
	ERR("RSET x", 501, "5.5.4"),
	OK("QUIT", LMTP_VERB_QUIT, NULL, NULL, NULL),
	OK("Quit", LMTP_VERB_QUIT, NULL, NULL, NULL),
	ERR("QUIT now", 501, "5.5.4"),
	OK("NOOP", LMTP_VERB_NOOP, NULL, NULL, NULL),
	OK("NOOP anything at all", LMTP_VERB_NOOP, NULL, "anything at all", NULL),
	OK("HELP", LMTP_VERB_HELP, NULL, NULL, NULL),
	OK("HELP MAIL", LMTP_VERB_HELP, NULL, "MAIL", NULL),
	OK("VRFY user@example.com", LMTP_VERB_VRFY, NULL, "user@example.com", NULL),
	ERR("VRFY", 501, "5.5.4"),
	OK("BDAT 100 LAST", LMTP_VERB_BDAT, NULL, "100 LAST", NULL),

	/* unknown commands */
	ERR("FOO", 500, "5.5.1"),
	ERR("MAILFROM:<a@b>", 500, "5.5.1"),
	ERR("DATAX", 500, "5.5.1"),
	ERR(" DATA", 500, "5.5.1"),
	ERR("STARTTLS", 500, "5.5.1"),
	ERR("", 500, "5.5.2"),
	ERR("   ", 500, "5.5.2"),

	/* MAIL */
	OK("MAIL FROM:<user@example.com>", LMTP_VERB_MAIL, "user@example.com", NULL, NULL),
	OK("mail from:<user@example.com>", LMTP_VERB_MAIL, "user@example.com", NULL, NULL),
	OK("MAIL FROM: <user@example.com>", LMTP_VERB_MAIL, "user@example.com", NULL, NULL),
	OK("MAIL FROM:<>", LMTP_VERB_MAIL, "", NULL, NULL),
	OK("MAIL FROM:<> BODY=8BITMIME", LMTP_VERB_MAIL, "", NULL, "BODY=8BITMIME"),
	OK("MAIL FROM:<u@example.com> SIZE=12345 BODY=7BIT", LMTP_VERB_MAIL, "u@example.com", NULL,
	   "SIZE=12345|BODY=7BIT"),
	OK("MAIL FROM:<u@example.com> size=1 body=8bitmime", LMTP_VERB_MAIL, "u@example.com", NULL,
	   "SIZE=1|BODY=8bitmime"),
	OK("MAIL FROM:<u@example.com>  SIZE=1   RET=HDRS ENVID=QQ314159+2Bx SMTPUTF8 AUTH=<>",
	   LMTP_VERB_MAIL, "u@example.com", NULL, "SIZE=1|RET=HDRS|ENVID=QQ314159+2Bx|SMTPUTF8|AUTH=<>"),
	OK("MAIL FROM:<u@example.com> AUTH=joe+40example.com", LMTP_VERB_MAIL, "u@example.com", NULL,
	   "AUTH=joe+40example.com"),
	OK("MAIL FROM:<u@example.com> SIZE=18446744073709551615", LMTP_VERB_MAIL, "u@example.com", NULL,
	   "SIZE=18446744073709551615"),
	OK("MAIL FROM:<first.last.@docomo.ne.jp>", LMTP_VERB_MAIL, "first.last.@docomo.ne.jp", NULL, NULL),
	OK("MAIL FROM:<postmaster>", LMTP_VERB_MAIL, "postmaster", NULL, NULL),
	OK("MAIL FROM:<\"john doe\"@example.com>", LMTP_VERB_MAIL, "\"john doe\"@example.com", NULL, NULL),
	OK("MAIL FROM:<\"a\\\"b>c\"@example.com>", LMTP_VERB_MAIL, "\"a\\\"b>c\"@example.com", NULL, NULL),
	OK("MAIL FROM:<user@[192.0.2.1]>", LMTP_VERB_MAIL, "user@[192.0.2.1]", NULL, NULL),
	OK("MAIL FROM:<user@[IPv6:2001:db8::1]>", LMTP_VERB_MAIL, "user@[IPv6:2001:db8::1]", NULL, NULL),
	OK("MAIL FROM:<@relay.example:user@example.com>", LMTP_VERB_MAIL, "user@example.com", NULL, NULL),
	OK("MAIL FROM:<@a.example,@b.example:user@example.com>", LMTP_VERB_MAIL, "user@example.com", NULL, NULL),
	OK("MAIL FROM:<j\xc3\xbcrgen@m\xc3\xbcller.example> SMTPUTF8", LMTP_VERB_MAIL,
	   "j\xc3\xbcrgen@m\xc3\xbcller.example", NULL, "SMTPUTF8"),
	ERR("MAIL FROM:<u@example.com> SIZE=18446744073709551616", 552, "5.3.4"),
	ERR("MAIL FROM:<u@example.com> SIZE=99999999999999999999999", 552, "5.3.4"),
	ERR("MAIL FROM:<u@example.com> SIZE=12k", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> SIZE=-1", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> SIZE", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> SIZE=", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> BODY=BINARYMIME", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> BODY", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> RET=ALL", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> ENVID=bad+zz", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> SMTPUTF8=yes", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> AUTH", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> SIZE=1 SIZE=2", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> size=1 SIZE=1", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> FOO=bar", 555, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> ORCPT=rfc822;u@example.com", 555, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> -BAD", 501, "5.5.4"),
	ERR("MAIL FROM:<u@example.com> A=b=c", 501, "5.5.4"),
	ERR("MAIL FROM:u@example.com", 501, "5.1.7"),
	ERR("MAIL FROM:<u@example.com", 501, "5.1.7"),
	ERR("MAIL FROM:<u@example.com>x", 501, "5.1.7"),
	ERR("MAIL FROM:<u @example.com>", 501, "5.1.7"),
	ERR("MAIL FROM:<u\t@example.com>", 501, "5.1.7"),
	ERR("MAIL FROM:<u\x01@example.com>", 501, "5.1.7"),
	ERR("MAIL FROM:<\"unbalanced@example.com>", 501, "5.1.7"),
	ERR("MAIL FROM:<\"ctl\x7f\"@example.com>", 501, "5.1.7"),
	ERR("MAIL FROM:<u@[192.0.2.1>", 501, "5.1.7"),
	ERR("MAIL FROM:<u@example..com>", 501, "5.1.7"),
	ERR("MAIL FROM:<u@>", 501, "5.1.7"),
	ERR("MAIL FROM:<@example.com>", 501, "5.1.7"),
	ERR("MAIL FROM:<@relay.example,user@example.com>", 501, "5.1.7"),
	ERR("MAIL FROM:<a<b@example.com>", 501, "5.1.7"),
	ERR("MAIL FROM:<bad\xff@example.com>", 501, "5.1.7"),
	ERR("MAIL FROM:", 501, "5.5.4"),
	ERR("MAIL TO:<u@example.com>", 501, "5.5.4"),
	ERR("MAIL", 501, "5.5.4"),
	ERR("MAIL FROM <u@example.com>", 501, "5.5.4"),

	/* RCPT */
	OK("RCPT TO:<user@example.com>", LMTP_VERB_RCPT, "user@example.com", NULL, NULL),
	OK("rcpt to: <user@example.com>", LMTP_VERB_RCPT, "user@example.com", NULL, NULL),
	OK("RCPT TO:<user@example.com> ORCPT=rfc822;user+2Btag@example.com", LMTP_VERB_RCPT,
	   "user@example.com", NULL, "ORCPT=rfc822;user+2Btag@example.com"),
	OK("RCPT TO:<user@example.com> NOTIFY=SUCCESS,FAILURE,DELAY", LMTP_VERB_RCPT,
	   "user@example.com", NULL, "NOTIFY=SUCCESS,FAILURE,DELAY"),
	OK("RCPT TO:<user@example.com> notify=never", LMTP_VERB_RCPT, "user@example.com", NULL, "NOTIFY=never"),
	OK("RCPT TO:<@hop.example:user@example.com>", LMTP_VERB_RCPT, "user@example.com", NULL, NULL),
	OK("RCPT TO:<\"a b\"@example.com>", LMTP_VERB_RCPT, "\"a b\"@example.com", NULL, NULL),
	OK("RCPT TO:<Postmaster>", LMTP_VERB_RCPT, "Postmaster", NULL, NULL),
	ERR("RCPT TO:<>", 501, "5.1.3"),
	ERR("RCPT TO:<> ORCPT=rfc822;a@b", 501, "5.1.3"),
	ERR("RCPT TO:user@example.com", 501, "5.1.3"),
	ERR("RCPT TO:<user@example.com", 501, "5.1.3"),
	ERR("RCPT TO:<us er@example.com>", 501, "5.1.3"),
	ERR("RCPT TO:<\"open@example.com>", 501, "5.1.3"),
	ERR("RCPT TO:<user@example.com> SIZE=10", 555, "5.5.4"),
	ERR("RCPT TO:<user@example.com> BODY=8BITMIME", 555, "5.5.4"),
	ERR("RCPT TO:<user@example.com> NOTIFY=NEVER,SUCCESS", 501, "5.5.4"),
	ERR("RCPT TO:<user@example.com> NOTIFY=SUCCESS,", 501, "5.5.4"),
	ERR("RCPT TO:<user@example.com> NOTIFY=SOMETIMES", 501, "5.5.4"),
	ERR("RCPT TO:<user@example.com> ORCPT=user@example.com", 501, "5.5.4"),
	ERR("RCPT TO:<user@example.com> ORCPT=rfc822;", 501, "5.5.4"),
	ERR("RCPT TO:<user@example.com> ORCPT=rfc822;a+4@b", 501, "5.5.4"),
	ERR("RCPT TO:<user@example.com> NOTIFY=NEVER NOTIFY=NEVER", 501, "5.5.4"),
	ERR("RCPT FROM:<user@example.com>", 501, "5.5.4"),
	ERR("RCPT TO:", 501, "5.5.4"),

	/* XFORWARD */
	OK("XFORWARD NAME=mail.example.org ADDR=192.0.2.7 PORT=25 PROTO=ESMTP", LMTP_VERB_XFORWARD, NULL, NULL,
	   "NAME=mail.example.org|ADDR=192.0.2.7|PORT=25|PROTO=ESMTP"),
	OK("xforward helo=a+20b+2Bc ident=4ABC123 source=REMOTE", LMTP_VERB_XFORWARD, NULL, NULL,
	   "HELO=a b+c|IDENT=4ABC123|SOURCE=REMOTE"),
	OK("XFORWARD NAME=[UNAVAILABLE] ADDR=[TEMPUNAVAIL]", LMTP_VERB_XFORWARD, NULL, NULL,
	   "NAME=[UNAVAILABLE]|ADDR=[TEMPUNAVAIL]"),
	OK("XFORWARD ADDR=IPv6:2001:db8::1", LMTP_VERB_XFORWARD, NULL, NULL, "ADDR=IPv6:2001:db8::1"),
	OK("XFORWARD HELO=x+3dy+3Dz", LMTP_VERB_XFORWARD, NULL, NULL, "HELO=x=y=z"),
	ERR("XFORWARD", 501, "5.5.4"),
	ERR("XFORWARD FOO=bar", 501, "5.5.4"),
	ERR("XFORWARD NAME", 501, "5.5.4"),
	ERR("XFORWARD NAME=", 501, "5.5.4"),
	ERR("XFORWARD HELO=bad+2", 501, "5.5.4"),
	ERR("XFORWARD HELO=bad+G1", 501, "5.5.4"),
	ERR("XFORWARD HELO=a+0D+0AX-Injected:+20yes", 501, "5.5.4"),
	ERR("XFORWARD HELO=nul+00", 501, "5.5.4"),
	ERR("XFORWARD NAME=a NAME=b", 501, "5.5.4"),
	ERR("XFORWARD name=a NAME=b", 501, "5.5.4"),
};

/* params_string - the parameters as "KEY=value|KEY" for comparison. */
static char *params_string(const struct lmtp_command *cmd)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < cmd->param_count; i++) {
		if (i > 0)
			g_string_append_c(s, '|');
		g_string_append(s, cmd->params[i].keyword);
		if (cmd->params[i].value != NULL)
			g_string_append_printf(s, "=%s", cmd->params[i].value);
	}
	return g_string_free(s, FALSE);
}

static bool in_storage(const struct lmtp_command *cmd, const char *p)
{
	return p >= cmd->storage && p < cmd->storage + sizeof(cmd->storage) &&
	       memchr(p, '\0', cmd->storage + sizeof(cmd->storage) - p) != NULL;
}

static void check_case(const struct parse_case *c)
{
	struct lmtp_command *cmd = g_new0(struct lmtp_command, 1);
	struct lmtp_error error = { 0 };
	int ret = lmtp_command_parse(c->line, strlen(c->line), cmd, &error);

	if (c->code != 0) {
		if (ret != -1 || error.code != c->code || g_strcmp0(error.enhanced, c->enhanced) != 0)
			g_error("\"%s\": expected %d %s, got ret=%d %d %s %s", c->line, c->code, c->enhanced,
				ret, error.code, error.enhanced, error.text);
		g_assert_nonnull(error.text);
		g_assert_cmpuint(strlen(error.text), >, 0);
		g_free(cmd);
		return;
	}
	if (ret != 0)
		g_error("\"%s\": expected success, got %d %s %s", c->line, error.code, error.enhanced, error.text);
	g_assert_cmpint(cmd->verb, ==, c->verb);
	g_assert_cmpstr(cmd->path, ==, c->path);
	g_assert_cmpstr(cmd->arg, ==, c->arg);
	char *params = params_string(cmd);
	g_assert_cmpstr(params, ==, c->params != NULL ? c->params : "");
	g_free(params);
	/* every string points into the command's own storage */
	if (cmd->path != NULL)
		g_assert_true(in_storage(cmd, cmd->path));
	if (cmd->arg != NULL)
		g_assert_true(in_storage(cmd, cmd->arg));
	for (size_t i = 0; i < cmd->param_count; i++) {
		g_assert_true(in_storage(cmd, cmd->params[i].keyword));
		if (cmd->params[i].value != NULL)
			g_assert_true(in_storage(cmd, cmd->params[i].value));
	}
	g_free(cmd);
}

static void test_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
		check_case(&cases[i]);
}

static int parse_bytes(const char *line, size_t len, struct lmtp_error *error_r)
{
	struct lmtp_command *cmd = g_new0(struct lmtp_command, 1);
	int ret = lmtp_command_parse(line, len, cmd, error_r);
	g_free(cmd);
	return ret;
}

static void assert_error(const char *line, size_t len, int code, const char *enhanced, const char *text_part)
{
	struct lmtp_error error = { 0 };

	g_assert_cmpint(parse_bytes(line, len, &error), ==, -1);
	g_assert_cmpint(error.code, ==, code);
	g_assert_cmpstr(error.enhanced, ==, enhanced);
	g_assert_nonnull(strstr(error.text, text_part));
}

static void test_nul_byte(void)
{
	static const char line[] = "MAIL FROM:<a@example.com>\0 SIZE=1";

	assert_error(line, sizeof(line) - 1, 500, "5.5.2", "NUL");
	assert_error("\0", 1, 500, "5.5.2", "NUL");
	/* the same line without the NUL would have been fine */
	struct lmtp_error error;
	g_assert_cmpint(parse_bytes(line, strlen(line), &error), ==, 0);
}

static void test_bare_cr_lf(void)
{
	assert_error("DATA\r", 5, 500, "5.5.2", "bare CR or LF");
	assert_error("NOOP a\rb", 8, 500, "5.5.2", "bare CR or LF");
	assert_error("RCPT TO:<a@example.com>\nRCPT TO:<b@example.com>", 47, 500, "5.5.2", "bare CR or LF");
}

static void test_line_length(void)
{
	char *line = g_malloc(LMTP_LINE_MAX + 2);
	struct lmtp_command *cmd = g_new0(struct lmtp_command, 1);
	struct lmtp_error error;

	/* exactly LMTP_LINE_MAX bytes is accepted */
	memset(line, 'x', LMTP_LINE_MAX + 1);
	memcpy(line, "NOOP ", 5);
	g_assert_cmpint(lmtp_command_parse(line, LMTP_LINE_MAX, cmd, &error), ==, 0);
	g_assert_cmpuint(strlen(cmd->arg), ==, LMTP_LINE_MAX - 5);
	/* one more is not */
	assert_error(line, LMTP_LINE_MAX + 1, 500, "5.5.2", "too long");
	g_free(line);
	g_free(cmd);
}

static void test_path_length(void)
{
	GString *line = g_string_new("RCPT TO:<");
	struct lmtp_error error;
	size_t local = LMTP_PATH_MAX - strlen("@example.com");

	for (size_t i = 0; i < local; i++)
		g_string_append_c(line, 'a');
	g_string_append(line, "@example.com>");
	g_assert_cmpint(parse_bytes(line->str, line->len, &error), ==, 0);

	g_string_insert_c(line, strlen("RCPT TO:<"), 'a');
	assert_error(line->str, line->len, 501, "5.1.3", "too long");
	g_string_free(line, TRUE);

	/* the source route does not count towards the address */
	line = g_string_new("MAIL FROM:<@relay.example.net:");
	for (size_t i = 0; i < local; i++)
		g_string_append_c(line, 'b');
	g_string_append(line, "@example.com>");
	g_assert_cmpint(parse_bytes(line->str, line->len, &error), ==, 0);
	g_string_insert_c(line, strlen("MAIL FROM:<@relay.example.net:"), 'b');
	assert_error(line->str, line->len, 501, "5.1.7", "too long");
	g_string_free(line, TRUE);
}

/* Many repeated parameters are refused as duplicates, not stored past
 * the parameter array. */
static void test_many_params(void)
{
	GString *line = g_string_new("XFORWARD");

	for (int i = 0; i < 2 * LMTP_PARAMS_MAX; i++)
		g_string_append(line, " NAME=x");
	assert_error(line->str, line->len, 501, "5.5.4", "Duplicate");
	g_string_free(line, TRUE);
}

static void test_size_value(void)
{
	struct lmtp_command *cmd = g_new0(struct lmtp_command, 1);
	struct lmtp_error error;
	const char *line = "MAIL FROM:<a@example.com> SIZE=0000052428800";

	g_assert_cmpint(lmtp_command_parse(line, strlen(line), cmd, &error), ==, 0);
	g_assert_cmpuint(cmd->size, ==, 52428800);
	line = "MAIL FROM:<a@example.com>";
	g_assert_cmpint(lmtp_command_parse(line, strlen(line), cmd, &error), ==, 0);
	g_assert_cmpuint(cmd->size, ==, 0);
	line = "MAIL FROM:<a@example.com> SIZE=18446744073709551615";
	g_assert_cmpint(lmtp_command_parse(line, strlen(line), cmd, &error), ==, 0);
	g_assert_cmpuint(cmd->size, ==, G_MAXUINT64);
	g_free(cmd);
}

static void test_param_lookup(void)
{
	struct lmtp_command *cmd = g_new0(struct lmtp_command, 1);
	struct lmtp_error error;
	const char *line = "MAIL FROM:<a@example.com> body=8BITMIME SMTPUTF8";
	const struct lmtp_param *p;

	g_assert_cmpint(lmtp_command_parse(line, strlen(line), cmd, &error), ==, 0);
	p = lmtp_command_param(cmd, "Body");
	g_assert_nonnull(p);
	g_assert_cmpstr(p->keyword, ==, "BODY");
	g_assert_cmpstr(p->value, ==, "8BITMIME");
	p = lmtp_command_param(cmd, "smtputf8");
	g_assert_nonnull(p);
	g_assert_null(p->value);
	g_assert_null(lmtp_command_param(cmd, "SIZE"));
	g_free(cmd);
}

/* A command struct reused after a failed parse holds nothing stale. */
static void test_reuse(void)
{
	struct lmtp_command *cmd = g_new0(struct lmtp_command, 1);
	struct lmtp_error error;
	const char *line = "RCPT TO:<a@example.com> NOTIFY=NEVER";

	g_assert_cmpint(lmtp_command_parse(line, strlen(line), cmd, &error), ==, 0);
	g_assert_cmpuint(cmd->param_count, ==, 1);
	line = "DATA";
	g_assert_cmpint(lmtp_command_parse(line, strlen(line), cmd, &error), ==, 0);
	g_assert_cmpint(cmd->verb, ==, LMTP_VERB_DATA);
	g_assert_cmpuint(cmd->param_count, ==, 0);
	g_assert_null(cmd->path);
	g_assert_null(cmd->arg);
	g_free(cmd);
}

static void test_verb_names(void)
{
	g_assert_cmpstr(lmtp_verb_name(LMTP_VERB_LHLO), ==, "LHLO");
	g_assert_cmpstr(lmtp_verb_name(LMTP_VERB_MAIL), ==, "MAIL");
	g_assert_cmpstr(lmtp_verb_name(LMTP_VERB_XFORWARD), ==, "XFORWARD");
	g_assert_cmpstr(lmtp_verb_name(LMTP_VERB_UNKNOWN), ==, "UNKNOWN");
	g_assert_cmpstr(lmtp_verb_name((enum lmtp_verb)999), ==, "UNKNOWN");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/lmtp_parser/table", test_table);
	g_test_add_func("/lmtp_parser/nul_byte", test_nul_byte);
	g_test_add_func("/lmtp_parser/bare_cr_lf", test_bare_cr_lf);
	g_test_add_func("/lmtp_parser/line_length", test_line_length);
	g_test_add_func("/lmtp_parser/path_length", test_path_length);
	g_test_add_func("/lmtp_parser/many_params", test_many_params);
	g_test_add_func("/lmtp_parser/size_value", test_size_value);
	g_test_add_func("/lmtp_parser/param_lookup", test_param_lookup);
	g_test_add_func("/lmtp_parser/reuse", test_reuse);
	g_test_add_func("/lmtp_parser/verb_names", test_verb_names);
	return g_test_run();
}
