/*
 * netio - a buffered stream socket with a deadline on every read and write
 *
 * Used by both sides: the LMTP session towards Postfix and the downstream
 * client towards Dovecot. Writes are buffered and flushed before blocking on
 * a read, which is what makes PIPELINING cheap. Every wait is bounded by
 * timeout_ms; an optional wake descriptor interrupts an idle wait (shutdown).
 * An optional overall deadline (netio_set_deadline) bounds a whole exchange
 * however the bytes trickle in: past it every read and write is a timeout.
 */
#ifndef LMTPFILTER_NETIO_H
#define LMTPFILTER_NETIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NETIO_BUFFER_SIZE 65536

enum netio_status {
	NETIO_OK = 0,
	NETIO_EOF,          /* the peer closed the connection */
	NETIO_TIMEOUT,      /* nothing within timeout_ms */
	NETIO_ERROR,        /* read/write error (errno kept in err) */
	NETIO_WOKEN,        /* wake_fd became readable while idle */
};

enum netio_line {
	NETIO_LINE_OK = 0,  /* CRLF-terminated */
	NETIO_LINE_BARE_LF, /* terminated by LF without CR */
	NETIO_LINE_TOO_LONG,/* longer than the limit: the rest up to LF was discarded */
};

struct netio {
	int fd;
	int timeout_ms;
	int wake_fd;                /* -1: none */
	long long deadline_ms;      /* netio_now_ms() time no wait may pass; 0: none */
	int err;
	char rbuf[NETIO_BUFFER_SIZE];
	size_t rpos, rlen;
	char wbuf[NETIO_BUFFER_SIZE];
	size_t wlen;
	bool sent;                  /* bytes went out since the last read returned data */
	bool timed_reads;           /* blocking descriptor, SO_RCVTIMEO = timeout_ms */
};

void netio_init(struct netio *io, int fd, int timeout_ms);
/* netio_wait_in_read - let a read that may wait timeout_ms for the rest
 * of what the peer began to send (nothing sent since, no wake_fd in play,
 * no nearer deadline) wait inside recv: the descriptor becomes blocking
 * with SO_RCVTIMEO = timeout_ms, one system call instead of a poll and a
 * read. Every other read and every send still never blocks
 * (MSG_DONTWAIT) and waits in poll as before. False when the socket
 * refused (then nothing changed but perhaps the receive timeout). */
bool netio_wait_in_read(struct netio *io);
/* netio_set_deadline - from now on, reads and the waits of writes (flushes
 * too) end with NETIO_TIMEOUT once ms milliseconds have passed, on top of
 * timeout_ms per wait; ms 0 removes the deadline. */
void netio_set_deadline(struct netio *io, int ms);
/* netio_close - close the descriptor (no flush). */
void netio_close(struct netio *io);

/* netio_read_line - the next line without its line end, at most max bytes.
 * *line_r points into the read buffer and stays valid until the next read. */
enum netio_status netio_read_line(struct netio *io, size_t max, char **line_r, size_t *len_r,
				  enum netio_line *kind_r);
/* netio_read_line_part - the next piece of a line of any length, without
 * its line end: the whole line when it has at most max bytes (max is at
 * most NETIO_BUFFER_SIZE - 2), else its next max bytes, with *more_r true
 * until the piece that ends the line. *part_r points into the read buffer,
 * is not NUL-terminated and stays valid until the next read. A bare LF
 * ends a line too. Never interrupted by wake_fd. */
enum netio_status netio_read_line_part(struct netio *io, size_t max, char **part_r, size_t *len_r,
				       bool *more_r);
/* netio_fill - make sure unread bytes are buffered (reads once if empty). */
enum netio_status netio_fill(struct netio *io);
/* netio_fill_more - read more bytes even though some are buffered. */
enum netio_status netio_fill_more(struct netio *io);
/* netio_pending - unread bytes in the buffer. */
static inline size_t netio_pending(const struct netio *io) { return io->rlen - io->rpos; }
/* netio_has_line - a whole line (up to LF) is buffered: reading it will not wait. */
bool netio_has_line(const struct netio *io);

/* netio_write - buffer bytes (flushing as needed); netio_flush - send them. */
enum netio_status netio_write(struct netio *io, const void *data, size_t len);
enum netio_status netio_printf(struct netio *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum netio_status netio_flush(struct netio *io);

const char *netio_status_text(enum netio_status status);
/* netio_now_ms - the monotonic clock in milliseconds (deadlines, durations). */
long long netio_now_ms(void);

/* Connect to "unix:PATH" or "inet:HOST:PORT" (see config endpoints) with a
 * deadline; returns the fd or -1 with *error_r (g_malloc'd). */
struct endpoint;
int netio_connect(const struct endpoint *ep, int timeout_ms, char **error_r);

#endif
