/*
 * server - listeners, the accept loop, the bounded worker threads, signals
 */
#ifndef LMTPFILTER_SERVER_H
#define LMTPFILTER_SERVER_H

struct engine;

/* server_run - listen (or take systemd's sockets), serve until SIGTERM or
 * SIGINT, then stop accepting and let running transactions finish within
 * SERVER_SHUTDOWN_GRACE seconds. SIGHUP reloads config_file for new
 * connections. Returns the process exit code. */
int server_run(struct engine *engine, const char *config_file);

/* server_block_signals - block SIGTERM, SIGINT and SIGHUP (and ignore
 * SIGPIPE) in the calling thread; call before any thread is created so
 * that every thread inherits it and only server_run's signalfd sees them. */
void server_block_signals(void);

#endif
