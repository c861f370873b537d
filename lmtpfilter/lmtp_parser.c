/*
 * lmtp_parser - LMTP command lines (RFC 2033 over RFC 5321 syntax)
 *
 * Owns nothing: the line is copied into the command's storage and cut up
 * in place (NUL terminators, upper-cased keywords, xtext decoded in place).
 * A table maps each verb to its argument parser; MAIL, RCPT and XFORWARD
 * have a table of the parameters they accept.
 *
 * Limits: LMTP_LINE_MAX bytes per line, LMTP_PARAMS_MAX parameters,
 * LMTP_PATH_MAX bytes per address. Addresses are checked the way a
 * tolerant MTA does: RFC 5321 paths, but dots may appear anywhere in an
 * unquoted local part, '_' is allowed in domains, UTF-8 is allowed
 * (SMTPUTF8), and a mailbox without a domain ("postmaster") is accepted.
 */
#include "lmtpfilter/lmtp_parser.h"

#include <glib.h>
#include <string.h>

struct verb_def {
	const char *name;
	enum lmtp_verb verb;
	int (*parse)(struct lmtp_command *cmd, char *args, struct lmtp_error *error_r);
};

struct param_def {
	const char *keyword;
	/* value is NULL when the parameter had no '=' */
	int (*check)(struct lmtp_command *cmd, char *value, struct lmtp_error *error_r);
};

/* What was wrong with a <path>; the texts depend on sender vs recipient. */
enum path_problem {
	PATH_OK = 0,
	PATH_SYNTAX,
	PATH_NO_BRACKETS,
	PATH_TOO_LONG,
	PATH_NULL,
};

static int fail(struct lmtp_error *error_r, int code, const char *enhanced, const char *text)
{
	error_r->code = code;
	error_r->enhanced = enhanced;
	error_r->text = text;
	return -1;
}

static int fail_param_syntax(struct lmtp_error *error_r)
{
	return fail(error_r, 501, "5.5.4", "Syntax error in parameters");
}

/* ---- character classes ---- */

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static bool is_atext(unsigned char c)
{
	return g_ascii_isalnum(c) || c >= 0x80 || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* letters, digits, hyphen, underscore and UTF-8 (U-labels) */
static bool is_label_char(unsigned char c)
{
	return g_ascii_isalnum(c) || c == '-' || c == '_' || c >= 0x80;
}

/* RFC 5321 dcontent: printable US-ASCII except "[", "\", "]" */
static bool is_dcontent(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '[' && c != ']' && c != '\\';
}

/* RFC 5321 esmtp-value, widened to UTF-8 by RFC 6531 */
static bool is_esmtp_value_char(unsigned char c)
{
	return (c >= 33 && c <= 126 && c != '=') || c >= 0x80;
}

/* ---- addresses ---- */

/* scan_domain - a domain or an address literal; returns the end or NULL. */
static const char *scan_domain(const char *p)
{
	const char *start;

	if (*p == '[') {
		start = ++p;
		while (is_dcontent((unsigned char)*p))
			p++;
		if (p == start || *p != ']')
			return NULL;
		return p + 1;
	}
	for (;;) {
		start = p;
		while (is_label_char((unsigned char)*p))
			p++;
		if (p == start)
			return NULL;
		if (*p != '.')
			return p;
		p++;
	}
}

/* scan_local_part - a dot-string or a quoted string; returns the end or NULL. */
static const char *scan_local_part(const char *p)
{
	const char *start = p;

	if (*p != '"') {
		while (is_atext((unsigned char)*p) || *p == '.')
			p++;
		return p == start ? NULL : p;
	}
	for (p++;; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			return p + 1;
		if (c == '\\') {
			c = (unsigned char)*++p;
			if (c == '\0' || is_ctl(c))
				return NULL;
		} else if (c == '\0' || is_ctl(c)) {
			return NULL;  /* unbalanced quote or control character */
		}
	}
}

/* scan_source_route - "@a,@b:" (RFC 5321 A-d-l), obsolete but legal;
 * returns the end (after ':') or NULL. */
static const char *scan_source_route(const char *p)
{
	for (;;) {
		if (*p != '@')
			return NULL;
		p = scan_domain(p + 1);
		if (p == NULL)
			return NULL;
		if (*p == ':')
			return p + 1;
		if (*p != ',')
			return NULL;
		p++;
	}
}

/* path_parse - "<[route:]mailbox>" or "<>" at p, cut in place.
 * *path_r is the mailbox (NUL-terminated), *rest_r follows the '>'. */
static enum path_problem path_parse(char *p, char **path_r, char **rest_r)
{
	const char *q;
	char *mailbox, *end;

	if (*p != '<')
		return PATH_NO_BRACKETS;
	p++;
	if (*p == '>') {
		*p = '\0';
		*path_r = p;
		*rest_r = p + 1;
		return PATH_NULL;
	}
	q = p;
	if (*q == '@' && (q = scan_source_route(q)) == NULL)
		return PATH_SYNTAX;
	mailbox = (char *)q;
	q = scan_local_part(q);
	if (q != NULL && *q == '@')
		q = scan_domain(q + 1);
	if (q == NULL || *q != '>')
		return PATH_SYNTAX;
	end = (char *)q;
	if ((size_t)(end - mailbox) > LMTP_PATH_MAX)
		return PATH_TOO_LONG;
	if (!g_utf8_validate(mailbox, end - mailbox, NULL))
		return PATH_SYNTAX;
	*end = '\0';
	*path_r = mailbox;
	*rest_r = end + 1;
	return PATH_OK;
}

/* ---- parameter values ---- */

/* xtext (RFC 3461): "+XX" hex escapes, no '=' (checked as esmtp-value). */
static bool xtext_valid(const char *value)
{
	for (const char *p = value; *p != '\0'; p++) {
		if (*p != '+')
			continue;
		if (!g_ascii_isxdigit(p[1]) || !g_ascii_isxdigit(p[2]))
			return false;
		p += 2;
	}
	return true;
}

/* xtext_decode - decode in place; false for a bad escape or a control
 * character in the result (the values end up in headers and logs). */
static bool xtext_decode(char *value)
{
	char *out = value;

	for (const char *p = value; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '+') {
			if (!g_ascii_isxdigit(p[1]) || !g_ascii_isxdigit(p[2]))
				return false;
			c = (unsigned char)(g_ascii_xdigit_value(p[1]) * 16 + g_ascii_xdigit_value(p[2]));
			p += 2;
		}
		if (is_ctl(c))
			return false;
		*out++ = (char)c;
	}
	*out = '\0';
	return true;
}

static int check_size(struct lmtp_command *cmd, char *value, struct lmtp_error *error_r)
{
	uint64_t size = 0;

	if (value == NULL)
		return fail(error_r, 501, "5.5.4", "SIZE needs a value");
	for (const char *p = value; *p != '\0'; p++) {
		if (!g_ascii_isdigit(*p))
			return fail(error_r, 501, "5.5.4", "SIZE value must be digits only");
		if (size > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return fail(error_r, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		size = size * 10 + (uint64_t)(*p - '0');
	}
	cmd->size = size;
	return 0;
}

static int check_body(struct lmtp_command *cmd, char *value, struct lmtp_error *error_r)
{
	if (value == NULL || (g_ascii_strcasecmp(value, "7BIT") != 0 &&
			      g_ascii_strcasecmp(value, "8BITMIME") != 0))
		return fail(error_r, 501, "5.5.4", "BODY must be 7BIT or 8BITMIME");
	return 0;
}

static int check_ret(struct lmtp_command *cmd, char *value, struct lmtp_error *error_r)
{
	if (value == NULL || (g_ascii_strcasecmp(value, "FULL") != 0 &&
			      g_ascii_strcasecmp(value, "HDRS") != 0))
		return fail(error_r, 501, "5.5.4", "RET must be FULL or HDRS");
	return 0;
}

static int check_envid(struct lmtp_command *cmd, char *value, struct lmtp_error *error_r)
{
	if (value == NULL || !xtext_valid(value))
		return fail(error_r, 501, "5.5.4", "ENVID must be xtext");
	return 0;
}

static int check_smtputf8(struct lmtp_command *cmd, char *value, struct lmtp_error *error_r)
{
	if (value != NULL)
		return fail(error_r, 501, "5.5.4", "SMTPUTF8 takes no value");
	return 0;
}

static int check_auth(struct lmtp_command *cmd, char *value, struct lmtp_error *error_r)
{
	if (value == NULL || (strcmp(value, "<>") != 0 && !xtext_valid(value)))
		return fail(error_r, 501, "5.5.4", "AUTH must be <> or an xtext mailbox");
	return 0;
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2) */
static int check_orcpt(struct lmtp_command *cmd, char *value, struct lmtp_error *error_r)
{
	const char *p = value;

	if (value != NULL) {
		while (g_ascii_isalnum(*p) || *p == '-')
			p++;
	}
	if (value == NULL || p == value || *p != ';' || p[1] == '\0' || !xtext_valid(p + 1))
		return fail(error_r, 501, "5.5.4", "ORCPT must be addr-type;xtext");
	return 0;
}

/* NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1) */
static int check_notify(struct lmtp_command *cmd, char *value, struct lmtp_error *error_r)
{
	static const char *const words[] = { "SUCCESS", "FAILURE", "DELAY" };
	const char *p = value;

	if (value != NULL && g_ascii_strcasecmp(value, "NEVER") == 0)
		return 0;
	while (p != NULL) {
		size_t n = strcspn(p, ",");
		bool known = false;

		for (size_t i = 0; i < G_N_ELEMENTS(words); i++)
			known = known || (strlen(words[i]) == n && g_ascii_strncasecmp(p, words[i], n) == 0);
		if (!known)
			break;  /* also an empty item: ",," or a trailing comma */
		p += n;
		if (*p == '\0')
			return 0;
		p++;
	}
	return fail(error_r, 501, "5.5.4", "NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY");
}

static int check_xforward(struct lmtp_command *cmd, char *value, struct lmtp_error *error_r)
{
	if (value == NULL)
		return fail(error_r, 501, "5.5.4", "XFORWARD attributes need a value");
	if (!xtext_decode(value))
		return fail(error_r, 501, "5.5.4", "Bad xtext in XFORWARD value");
	return 0;
}

static const struct param_def mail_params[] = {
	{ "SIZE", check_size }, { "BODY", check_body }, { "RET", check_ret },
	{ "ENVID", check_envid }, { "SMTPUTF8", check_smtputf8 }, { "AUTH", check_auth },
};

static const struct param_def rcpt_params[] = {
	{ "ORCPT", check_orcpt }, { "NOTIFY", check_notify },
};

static const struct param_def xforward_params[] = {
	{ "NAME", check_xforward }, { "ADDR", check_xforward }, { "PORT", check_xforward },
	{ "PROTO", check_xforward }, { "HELO", check_xforward }, { "IDENT", check_xforward },
	{ "SOURCE", check_xforward },
};

/* ---- parameters ---- */

static bool keyword_valid(const char *keyword)
{
	if (!g_ascii_isalnum(*keyword))
		return false;
	for (const char *p = keyword + 1; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '-')
			return false;
	return true;
}

static const struct param_def *param_def_find(const struct param_def *defs, size_t count, const char *keyword)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(defs[i].keyword, keyword) == 0)
			return &defs[i];
	return NULL;
}

/* param_add - one "KEYWORD[=value]" token, already NUL-terminated. */
static int param_add(struct lmtp_command *cmd, char *token, const struct param_def *defs, size_t count,
		     const struct lmtp_error *unknown, struct lmtp_error *error_r)
{
	char *value = strchr(token, '=');
	const struct param_def *def;

	if (value != NULL) {
		*value++ = '\0';
		if (*value == '\0')
			return fail(error_r, 501, "5.5.4", "Syntax error in parameters: empty value");
		for (const char *p = value; *p != '\0'; p++)
			if (!is_esmtp_value_char((unsigned char)*p))
				return fail(error_r, 501, "5.5.4", "Syntax error in parameters: bad character in value");
	}
	if (!keyword_valid(token))
		return fail_param_syntax(error_r);
	for (char *p = token; *p != '\0'; p++)
		*p = g_ascii_toupper(*p);
	def = param_def_find(defs, count, token);
	if (def == NULL)
		return fail(error_r, unknown->code, unknown->enhanced, unknown->text);
	if (lmtp_command_param(cmd, token) != NULL)
		return fail(error_r, 501, "5.5.4", "Duplicate parameter");
	if (cmd->param_count == LMTP_PARAMS_MAX)
		return fail(error_r, 501, "5.5.4", "Too many parameters");
	if (def->check(cmd, value, error_r) < 0)
		return -1;
	cmd->params[cmd->param_count++] = (struct lmtp_param){ .keyword = token, .value = value };
	return 0;
}

/* params_parse - space-separated parameters from p to the end of the line. */
static int params_parse(struct lmtp_command *cmd, char *p, const struct param_def *defs, size_t count,
			const struct lmtp_error *unknown, struct lmtp_error *error_r)
{
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return 0;
		char *token = p;
		p += strcspn(p, " ");
		if (*p != '\0')
			*p++ = '\0';
		if (param_add(cmd, token, defs, count, unknown, error_r) < 0)
			return -1;
	}
}

/* ---- verbs ---- */

static int parse_no_args(struct lmtp_command *cmd, char *args, struct lmtp_error *error_r)
{
	if (*args != '\0')
		return fail(error_r, 501, "5.5.4", "Syntax error: this command takes no arguments");
	return 0;
}

static int parse_optional_text(struct lmtp_command *cmd, char *args, struct lmtp_error *error_r)
{
	cmd->arg = *args != '\0' ? args : NULL;
	return 0;
}

static int parse_lhlo(struct lmtp_command *cmd, char *args, struct lmtp_error *error_r)
{
	const char *end;

	if (*args == '\0')
		return fail(error_r, 501, "5.5.4", "Syntax: LHLO hostname");
	end = scan_domain(args);
	if (end == NULL || *end != '\0')
		return fail(error_r, 501, "5.5.4", "Syntax error: LHLO needs a host name or address literal");
	cmd->arg = args;
	return 0;
}

static int parse_vrfy(struct lmtp_command *cmd, char *args, struct lmtp_error *error_r)
{
	if (*args == '\0')
		return fail(error_r, 501, "5.5.4", "Syntax: VRFY address");
	cmd->arg = args;
	return 0;
}

/* "FROM:" / "TO:", then the path (a space after the colon is tolerated),
 * then parameters. */
static int parse_path_command(struct lmtp_command *cmd, char *args, bool is_mail, struct lmtp_error *error_r)
{
	const char *prefix = is_mail ? "FROM:" : "TO:";
	const char *enhanced = is_mail ? "5.1.7" : "5.1.3";
	size_t prefix_len = strlen(prefix);
	char *p, *rest = NULL;
	enum path_problem problem;

	if (g_ascii_strncasecmp(args, prefix, prefix_len) != 0)
		return fail(error_r, 501, "5.5.4", is_mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
	p = args + prefix_len;
	while (*p == ' ')
		p++;
	if (*p == '\0')
		return fail(error_r, 501, "5.5.4", is_mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
	problem = path_parse(p, &cmd->path, &rest);
	if (problem == PATH_NULL && is_mail)
		problem = PATH_OK;
	if (problem == PATH_OK && *rest != '\0' && *rest != ' ')
		problem = PATH_SYNTAX;
	switch (problem) {
	case PATH_OK:
		break;
	case PATH_NO_BRACKETS:
		return fail(error_r, 501, enhanced, is_mail ? "Bad sender address syntax: angle brackets required"
							  : "Bad recipient address syntax: angle brackets required");
	case PATH_TOO_LONG:
		return fail(error_r, 501, enhanced, is_mail ? "Sender address too long" : "Recipient address too long");
	case PATH_NULL:
		return fail(error_r, 501, enhanced, "Null recipient address not allowed");
	case PATH_SYNTAX:
	default:
		return fail(error_r, 501, enhanced, is_mail ? "Bad sender address syntax" : "Bad recipient address syntax");
	}
	static const struct lmtp_error unsupported = { 555, "5.5.4", "Unsupported parameter" };
	if (is_mail)
		return params_parse(cmd, rest, mail_params, G_N_ELEMENTS(mail_params), &unsupported, error_r);
	return params_parse(cmd, rest, rcpt_params, G_N_ELEMENTS(rcpt_params), &unsupported, error_r);
}

static int parse_mail(struct lmtp_command *cmd, char *args, struct lmtp_error *error_r)
{
	return parse_path_command(cmd, args, true, error_r);
}

static int parse_rcpt(struct lmtp_command *cmd, char *args, struct lmtp_error *error_r)
{
	return parse_path_command(cmd, args, false, error_r);
}

static int parse_xforward(struct lmtp_command *cmd, char *args, struct lmtp_error *error_r)
{
	static const struct lmtp_error unknown = { 501, "5.5.4", "Unknown XFORWARD attribute" };

	if (*args == '\0')
		return fail(error_r, 501, "5.5.4", "Syntax: XFORWARD attribute=value...");
	return params_parse(cmd, args, xforward_params, G_N_ELEMENTS(xforward_params), &unknown, error_r);
}

static const struct verb_def verbs[] = {
	{ "LHLO", LMTP_VERB_LHLO, parse_lhlo },
	{ "HELO", LMTP_VERB_HELO, parse_optional_text },
	{ "EHLO", LMTP_VERB_EHLO, parse_optional_text },
	{ "MAIL", LMTP_VERB_MAIL, parse_mail },
	{ "RCPT", LMTP_VERB_RCPT, parse_rcpt },
	{ "DATA", LMTP_VERB_DATA, parse_no_args },
	{ "BDAT", LMTP_VERB_BDAT, parse_optional_text },
	{ "RSET", LMTP_VERB_RSET, parse_no_args },
	{ "NOOP", LMTP_VERB_NOOP, parse_optional_text },
	{ "QUIT", LMTP_VERB_QUIT, parse_no_args },
	{ "VRFY", LMTP_VERB_VRFY, parse_vrfy },
	{ "HELP", LMTP_VERB_HELP, parse_optional_text },
	{ "XFORWARD", LMTP_VERB_XFORWARD, parse_xforward },
};

static const struct verb_def *verb_find(const char *word, size_t len)
{
	for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++)
		if (strlen(verbs[i].name) == len && g_ascii_strncasecmp(word, verbs[i].name, len) == 0)
			return &verbs[i];
	return NULL;
}

/* ---- public ---- */

int lmtp_command_parse(const char *line, size_t len, struct lmtp_command *cmd, struct lmtp_error *error_r)
{
	const struct verb_def *def;
	char *args;
	size_t verb_len;

	cmd->verb = LMTP_VERB_UNKNOWN;
	cmd->arg = NULL;
	cmd->path = NULL;
	cmd->param_count = 0;
	cmd->size = 0;
	cmd->storage[0] = '\0';
	if (len > LMTP_LINE_MAX)
		return fail(error_r, 500, "5.5.2", "Line too long");
	if (len > 0 && memchr(line, '\0', len) != NULL)
		return fail(error_r, 500, "5.5.2", "Syntax error: NUL byte in command");
	if (len > 0 && (memchr(line, '\r', len) != NULL || memchr(line, '\n', len) != NULL))
		return fail(error_r, 500, "5.5.2", "Syntax error: bare CR or LF in command");
	if (len > 0)
		memcpy(cmd->storage, line, len);
	while (len > 0 && (cmd->storage[len - 1] == ' ' || cmd->storage[len - 1] == '\t'))
		len--;
	cmd->storage[len] = '\0';
	if (len == 0)
		return fail(error_r, 500, "5.5.2", "Syntax error: empty command");

	verb_len = strcspn(cmd->storage, " ");
	def = verb_find(cmd->storage, verb_len);
	if (def == NULL)
		return fail(error_r, 500, "5.5.1", "Command unrecognized");
	args = cmd->storage + verb_len;
	if (*args != '\0')
		*args++ = '\0';
	while (*args == ' ')
		args++;
	cmd->verb = def->verb;
	return def->parse(cmd, args, error_r);
}

const struct lmtp_param *lmtp_command_param(const struct lmtp_command *cmd, const char *keyword)
{
	for (size_t i = 0; i < cmd->param_count; i++)
		if (g_ascii_strcasecmp(cmd->params[i].keyword, keyword) == 0)
			return &cmd->params[i];
	return NULL;
}

const char *lmtp_verb_name(enum lmtp_verb verb)
{
	for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "UNKNOWN";
}
