/*
 * log - one line per event, key=value fields, to stderr or syslog
 *
 * A thread may name what it works for (a session: its id, its client):
 * those fields then begin every line it logs, from whatever module.
 */
#ifndef LMTPFILTER_LOG_H
#define LMTPFILTER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_open(bool use_syslog, bool debug);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* Bytes of the fields a thread's lines begin with (log_set_thread_fields):
 * a session id, a client name and a quoted queue id fit several times. */
#define LOG_FIELDS_MAX 512

/* log_set_thread_fields - key=value fields that begin every later line of
 * the calling thread (copied, cut at LOG_FIELDS_MAX); NULL or "": none. */
void log_set_thread_fields(const char *fields);

/* log_quote - a value made safe for one key=value field (quoted if it has
 * spaces, control bytes escaped); returns a pointer into buf. */
const char *log_quote(const char *value, char *buf, size_t size);

#endif
