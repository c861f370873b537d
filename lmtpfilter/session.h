/*
 * session - one LMTP connection from Postfix (RFC 2033), proxied to Dovecot
 */
#ifndef LMTPFILTER_SESSION_H
#define LMTPFILTER_SESSION_H

#include <stdbool.h>

struct engine;

/* session_run - serve the connection on fd until QUIT, error, timeout or
 * shutdown, then close fd. peer is a printable client name for the log;
 * trusted tells whether XFORWARD is believed from it. */
void session_run(struct engine *engine, int fd, const char *peer, bool trusted);

#endif
