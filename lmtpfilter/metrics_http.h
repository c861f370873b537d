/*
 * metrics_http - the HTTP/1.0 responder for GET /metrics, and its client
 *
 * One thread of its own polls the listening socket and at most
 * METRICS_HTTP_CLIENTS_MAX connections, each with a deadline and a request
 * bound; it shares nothing with the sessions but metrics' atomic counters,
 * so a stuck, garbage-sending or flooding scraper costs the mail path no
 * lock and no wait.
 */
#ifndef LMTPFILTER_METRICS_HTTP_H
#define LMTPFILTER_METRICS_HTTP_H

#include "lmtpfilter/config.h"

#include <stddef.h>

#define METRICS_HTTP_REQUEST_MAX 4096     /* request line and headers: a scraper sends a few hundred bytes */
#define METRICS_HTTP_CLIENTS_MAX 16       /* connections served at once; more are closed at once */
#define METRICS_HTTP_DEADLINE_MS 5000     /* a connection's whole life, request to last response byte */
#define METRICS_HTTP_RESPONSE_MAX (64u * 1024 * 1024) /* what the stats client reads at most */

struct metrics_http;

/* metrics_http_parse - judge the request bytes received so far: 0 while the
 * header block is incomplete (and below METRICS_HTTP_REQUEST_MAX), else
 * the status to answer: 200 for GET /metrics (a query string is allowed),
 * 404 for another path, 405 for another method, 400 for anything malformed
 * (bad request line or version, control bytes, NUL, too long). */
int metrics_http_parse(const char *buf, size_t len);

/* metrics_http_start - listen on ep (unix sockets get mode) and start the
 * responder thread; returns 0, or -1 with *error_r (g_malloc'd). */
int metrics_http_start(const struct endpoint *ep, unsigned mode, struct metrics_http **http_r, char **error_r);
/* metrics_http_stop - stop the thread, close everything, *http = NULL. */
void metrics_http_stop(struct metrics_http **http);

/* metrics_http_fetch - GET /metrics from ep within timeout_ms; returns the
 * body (g_free), or NULL with *error_r (g_malloc'd). */
char *metrics_http_fetch(const struct endpoint *ep, int timeout_ms, char **error_r);

#endif
