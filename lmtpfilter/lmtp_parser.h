/*
 * lmtp_parser - one LMTP (RFC 2033) command line into a struct lmtp_command
 *
 * Pure functions, no allocation: every string of a parsed command points
 * into the command's own storage. A parse error carries the exact reply to
 * send (code, enhanced status code, text).
 */
#ifndef LMTPFILTER_LMTP_PARSER_H
#define LMTPFILTER_LMTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LMTP_LINE_MAX 2048   /* longest command line accepted, without CRLF (RFC 5321 says 512; XFORWARD/ORCPT need more) */
#define LMTP_PARAMS_MAX 16   /* parameters of one MAIL, RCPT or XFORWARD */
#define LMTP_PATH_MAX 512    /* longest address, without the angle brackets and source route */

enum lmtp_verb {
	LMTP_VERB_UNKNOWN = 0,
	LMTP_VERB_LHLO,
	LMTP_VERB_HELO,
	LMTP_VERB_EHLO,
	LMTP_VERB_MAIL,
	LMTP_VERB_RCPT,
	LMTP_VERB_DATA,
	LMTP_VERB_BDAT,
	LMTP_VERB_RSET,
	LMTP_VERB_NOOP,
	LMTP_VERB_QUIT,
	LMTP_VERB_VRFY,
	LMTP_VERB_HELP,
	LMTP_VERB_XFORWARD,
};

struct lmtp_param {
	char *keyword;  /* upper-cased */
	char *value;    /* NULL if no '='; xtext-decoded for XFORWARD, as sent otherwise */
};

struct lmtp_command {
	enum lmtp_verb verb;
	/* LHLO/VRFY argument; also the free text of HELO, EHLO, BDAT, NOOP
	 * and HELP when one was given; NULL otherwise */
	char *arg;
	/* MAIL/RCPT address without <>, source route removed; "" for <>
	 * (the null sender, MAIL only); NULL for other verbs */
	char *path;
	struct lmtp_param params[LMTP_PARAMS_MAX];
	size_t param_count;
	uint64_t size;  /* MAIL SIZE= value, 0 if not given */
	char storage[LMTP_LINE_MAX + 1];   /* all strings point in here */
};

/* A parse error: the reply to send. Strings are static. */
struct lmtp_error {
	int code;
	const char *enhanced;
	const char *text;
};

/* lmtp_command_parse - parse one command line (without the CRLF; len may
 * include NUL bytes). Verbs and parameter keywords are case-insensitive.
 * Returns 0, or -1 with *error_r set: 500 5.5.2 for a line that is too
 * long, empty, or holds a NUL, CR or LF; 500 5.5.1 for an unknown verb;
 * 501 5.5.4 for bad arguments or parameters; 501 5.1.7 / 501 5.1.3 for a
 * bad sender / recipient address; 555 5.5.4 for a parameter we do not
 * support; 552 5.3.4 for a SIZE beyond 2^64-1. *cmd is only meaningful
 * after success. */
int lmtp_command_parse(const char *line, size_t len, struct lmtp_command *cmd,
		       struct lmtp_error *error_r);

/* lmtp_command_param - the parameter with this keyword (case-insensitive),
 * or NULL. */
const struct lmtp_param *lmtp_command_param(const struct lmtp_command *cmd, const char *keyword);

/* lmtp_verb_name - the verb as written in the protocol ("MAIL"), or
 * "UNKNOWN". */
const char *lmtp_verb_name(enum lmtp_verb verb);

#endif
