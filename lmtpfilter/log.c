/*
 * log - one line per event, key=value fields, to stderr or syslog
 *
 * Lines are written with one write(2) each so that lines of concurrent
 * sessions never interleave.
 *
 * Owns: the destination, and per thread the fields its lines begin with
 * (after the level), so that every line a session writes, a check's
 * warning as much as the transaction line, carries its session id.
 */
#include "lmtpfilter/log.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* One line, whole: the fields, a transaction's rcpts and quoted values. */
#define LOG_LINE_MAX 4200
_Static_assert(LOG_FIELDS_MAX * 4 < LOG_LINE_MAX, "a thread's fields leave room for the message");

static bool log_syslog;
static bool log_debug_enabled;
static __thread char log_thread_fields[LOG_FIELDS_MAX];

void log_set_thread_fields(const char *fields)
{
	size_t n = fields != NULL ? strnlen(fields, sizeof(log_thread_fields) - 1) : 0;

	/* a copy cut where the buffer ends, as snprintf "%s" would, without it */
	if (n > 0)
		memcpy(log_thread_fields, fields, n);
	log_thread_fields[n] = '\0';
}

void log_open(bool use_syslog, bool debug)
{
	log_syslog = use_syslog;
	log_debug_enabled = debug;
	if (use_syslog)
		openlog("lmtpfilter", LOG_PID, LOG_MAIL);
}

static int syslog_priority(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR: return LOG_ERR;
	case LOG_LEVEL_WARNING: return LOG_WARNING;
	case LOG_LEVEL_INFO: return LOG_INFO;
	default: return LOG_DEBUG;
	}
}

static const char *level_prefix(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR: return "error: ";
	case LOG_LEVEL_WARNING: return "warning: ";
	default: return "";
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char name[] = "lmtpfilter: ";
	char out[LOG_LINE_MAX];
	va_list ap;

	if (level == LOG_LEVEL_DEBUG && !log_debug_enabled)
		return;
	/* "lmtpfilter: " (not for syslog, which names us itself), the level,
	 * the message and a newline, formatted once into one buffer. */
	size_t start = log_syslog ? sizeof(name) - 1 : 0;
	memcpy(out, name, sizeof(name) - 1);
	size_t len = sizeof(name) - 1;
	const char *prefix = level_prefix(level);
	memcpy(out + len, prefix, strlen(prefix));
	len += strlen(prefix);
	if (log_thread_fields[0] != '\0') {
		size_t flen = strlen(log_thread_fields);
		memcpy(out + len, log_thread_fields, flen);
		out[len + flen] = ' ';
		len += flen + 1;
	}
	va_start(ap, fmt);
	int n = vsnprintf(out + len, sizeof(out) - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len += (size_t)n < sizeof(out) - len - 1 ? (size_t)n : sizeof(out) - len - 2;
	if (log_syslog) {
		out[len] = '\0';
		syslog(syslog_priority(level), "%s", out + start);
		return;
	}
	out[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, out, len);
	(void)w;
}

const char *log_quote(const char *value, char *buf, size_t size)
{
	size_t o = 0;
	bool quote = false;

	if (size < 4)
		return "";
	if (value == NULL)
		value = "";
	for (const char *p = value; *p; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20)
			quote = true;
	if (*value == '\0')
		quote = true;
	if (quote)
		buf[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)value; *p && o + 6 < size; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *p);
		} else if (*p == '"' || *p == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)*p;
		} else {
			buf[o++] = (char)*p;
		}
	}
	if (quote)
		buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
