/*
 * fuzz_lmtp_parser - lmtp_command_parse and reply_parse_line on arbitrary
 * bytes, checking what callers rely on: a parsed command's strings lie in
 * its storage and hold no CR/LF; an error is a 4xx/5xx reply with a
 * matching enhanced code; a parsed reply formats back into one clean line
 * that parses to the same reply.
 */
#include "lmtpfilter/lmtp_parser.h"
#include "lmtpfilter/reply.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

static void check_string(const struct lmtp_command *cmd, const char *s, size_t max)
{
	const char *end = cmd->storage + sizeof(cmd->storage);
	const char *nul;

	if (s < cmd->storage || s >= end)
		__builtin_trap();
	nul = memchr(s, '\0', end - s);
	if (nul == NULL || (size_t)(nul - s) > max)
		__builtin_trap();
	if (strpbrk(s, "\r\n") != NULL)
		__builtin_trap();
}

static void check_command(const uint8_t *data, size_t size)
{
	static struct lmtp_command cmd;
	struct lmtp_error error;

	if (lmtp_command_parse((const char *)data, size, &cmd, &error) < 0) {
		if (error.code < 400 || error.code > 599 || error.enhanced == NULL || error.text == NULL ||
		    error.enhanced[0] != '0' + error.code / 100 || error.text[0] == '\0')
			__builtin_trap();
		return;
	}
	if (cmd.verb == LMTP_VERB_UNKNOWN || cmd.param_count > LMTP_PARAMS_MAX)
		__builtin_trap();
	if (cmd.path != NULL) {
		check_string(&cmd, cmd.path, LMTP_PATH_MAX);
		if (cmd.verb != LMTP_VERB_MAIL && cmd.path[0] == '\0')
			__builtin_trap();
		for (const char *p = cmd.path; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				__builtin_trap();
	}
	if (cmd.arg != NULL)
		check_string(&cmd, cmd.arg, LMTP_LINE_MAX);
	for (size_t i = 0; i < cmd.param_count; i++) {
		const struct lmtp_param *p = &cmd.params[i];

		check_string(&cmd, p->keyword, LMTP_LINE_MAX);
		for (const char *k = p->keyword; *k != '\0'; k++)
			if (g_ascii_islower(*k))
				__builtin_trap();
		if (lmtp_command_param(&cmd, p->keyword) != p)  /* no duplicates */
			__builtin_trap();
		if (p->value == NULL)
			continue;
		check_string(&cmd, p->value, LMTP_LINE_MAX);
		if (cmd.verb == LMTP_VERB_XFORWARD)
			for (const char *v = p->value; *v != '\0'; v++)
				if ((unsigned char)*v < 0x20 || *v == 0x7f)
					__builtin_trap();
	}
}

static void check_reply(const uint8_t *data, size_t size)
{
	struct lmtp_reply a, b;
	char buf[REPLY_LINE_MAX + 1];
	size_t len;

	if (reply_parse_line((const char *)data, size, &a) < 0)
		return;
	if (a.code < 200 || a.code > 599 || memchr(a.text, '\0', sizeof(a.text)) == NULL)
		__builtin_trap();
	if (a.enhanced[0] != '\0' && a.enhanced[0] != '0' + a.code / 100)
		__builtin_trap();
	len = reply_format(buf, sizeof(buf), a.code, a.enhanced, a.text);
	if (len < 5 || len > REPLY_LINE_MAX || len != strlen(buf) || memcmp(buf + len - 2, "\r\n", 2) != 0)
		__builtin_trap();
	if (strpbrk(buf, "\r\n") != buf + len - 2)
		__builtin_trap();
	if (reply_parse_line(buf, len - 2, &b) < 0 || b.code != a.code || !b.last ||
	    strcmp(a.enhanced, b.enhanced) != 0)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_command(data, size);
	check_reply(data, size);
	return 0;
}
