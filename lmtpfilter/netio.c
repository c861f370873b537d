/*
 * netio - a buffered stream socket with a deadline on every read and write
 *
 * Owns: one descriptor and its two fixed buffers (no allocation per line).
 * Deadlines: each wait ends after timeout_ms, or at the overall deadline
 * when that comes first; past the deadline no read starts and no write
 * waits (a last reply still goes out when the socket takes it at once).
 * Waits: the wait for an answer to what was just sent is a poll, then a
 * recv. The wait for the rest of what the peer began to send (a message
 * in pieces, a reply split in two), when bounded by timeout_ms alone,
 * happens inside recv if the socket allows it (netio_wait_in_read): one
 * system call instead of two. Not after a send: on a unix socket the
 * peer reading what we sent wakes a task blocked in recv (the write-space
 * wakeup is not filtered by event; poll's is), and on this path that
 * measured 2.6 more context switches per message and 8-10 % more CPU
 * than a poll and a recv. A recv that times out does so early and poll
 * waits out the rest, so a wait never outlasts its end. Sends never
 * block, and buffered replies leave in one send before any wait.
 * Limits: NETIO_BUFFER_SIZE per direction; lines longer than the caller's
 * maximum are discarded up to their LF and reported, never truncated
 * silently, or read in pieces of that maximum (netio_read_line_part).
 */
#include "lmtpfilter/netio.h"
#include "lmtpfilter/config.h"

#include <errno.h>
#include <glib.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Subtracted from the receive timeout for the kernel's rounding to a
 * tick (4 ms at HZ=250) on top of its timer wheel's up to 1/8 late. */
#define NETIO_RCVTIMEO_TICK_MS 10

void netio_init(struct netio *io, int fd, int timeout_ms)
{
	io->fd = fd;
	io->timeout_ms = timeout_ms;
	io->wake_fd = -1;
	io->deadline_ms = 0;
	io->err = 0;
	io->rpos = io->rlen = 0;
	io->wlen = 0;
	io->sent = false;
	io->timed_reads = false;
}

/* netio_recv_timeout_ms - the receive timeout for a wait of timeout_ms.
 * The kernel times SO_RCVTIMEO on its timer wheel, which fires late by up
 * to 1/8 of a long timeout (plus a tick) and never early: 7/8 of the wait,
 * less NETIO_RCVTIMEO_TICK_MS, always ends within it, and the rest of the
 * wait is a poll to the exact end (netio_read_more). 0: too short to use. */
static int netio_recv_timeout_ms(int timeout_ms)
{
	int ms = timeout_ms / 8 * 7 - NETIO_RCVTIMEO_TICK_MS;

	return ms > 0 ? ms : 0;
}

/* netio_wait_in_read - a blocking descriptor whose reads time out within
 * timeout_ms: the receive timeout first, so that no blocking read can
 * ever happen without it. */
bool netio_wait_in_read(struct netio *io)
{
	int ms = netio_recv_timeout_ms(io->timeout_ms);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	int flags;

	if (ms == 0 || setsockopt(io->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return false;
	if ((flags = fcntl(io->fd, F_GETFL)) < 0 || fcntl(io->fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		return false;
	io->timed_reads = true;
	return true;
}

void netio_close(struct netio *io)
{
	if (io->fd != -1)
		close(io->fd);
	io->fd = -1;
}

const char *netio_status_text(enum netio_status status)
{
	switch (status) {
	case NETIO_OK: return "ok";
	case NETIO_EOF: return "connection closed";
	case NETIO_TIMEOUT: return "timeout";
	case NETIO_ERROR: return "i/o error";
	case NETIO_WOKEN: return "interrupted";
	}
	return "?";
}

long long netio_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void netio_set_deadline(struct netio *io, int ms)
{
	io->deadline_ms = ms > 0 ? netio_now_ms() + ms : 0;
}

/* The end of the next wait: timeout_ms from now, or the deadline if sooner. */
static long long netio_wait_end(const struct netio *io)
{
	long long end = netio_now_ms() + io->timeout_ms;

	return io->deadline_ms != 0 && io->deadline_ms < end ? io->deadline_ms : end;
}

static bool netio_past_deadline(const struct netio *io)
{
	return io->deadline_ms != 0 && netio_now_ms() >= io->deadline_ms;
}

/* Wait until fd is ready for events, the deadline passes, or wake_fd fires. */
static enum netio_status netio_wait(struct netio *io, short events, long long deadline, bool wakeable)
{
	for (;;) {
		struct pollfd pfd[2] = { { .fd = io->fd, .events = events } };
		nfds_t n = 1;
		if (wakeable && io->wake_fd != -1) {
			pfd[1].fd = io->wake_fd;
			pfd[1].events = POLLIN;
			n = 2;
		}
		long long left = deadline - netio_now_ms();
		if (left <= 0)
			return NETIO_TIMEOUT;
		int r = poll(pfd, n, left > 1000000 ? 1000000 : (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			io->err = errno;
			return NETIO_ERROR;
		}
		if (r == 0)
			continue;
		if (n == 2 && (pfd[1].revents & POLLIN) && !(pfd[0].revents & (POLLIN | POLLHUP)))
			return NETIO_WOKEN;
		if (pfd[0].revents)
			return NETIO_OK;
	}
}

/* netio_received - account for what recv returned: NETIO_OK with bytes
 * buffered, NETIO_EOF, NETIO_ERROR; NETIO_TIMEOUT for "nothing now" (EAGAIN,
 * EINTR), which the caller tells apart by errno. */
static enum netio_status netio_received(struct netio *io, ssize_t n)
{
	if (n > 0) {
		io->rlen += (size_t)n;
		io->sent = false;
		return NETIO_OK;
	}
	if (n == 0)
		return NETIO_EOF;
	if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
		return NETIO_TIMEOUT;
	io->err = errno;
	return errno == ECONNRESET ? NETIO_EOF : NETIO_ERROR;
}

/* netio_read_polling - read without blocking, poll when nothing is there. */
static enum netio_status netio_read_polling(struct netio *io, long long deadline, bool wakeable)
{
	enum netio_status st;

	/* Right after sending (a reply, a command) the peer has rarely answered
	 * yet: wait first instead of a read that would only say EAGAIN. */
	if (io->sent && (st = netio_wait(io, POLLIN, deadline, wakeable)) != NETIO_OK)
		return st;
	for (;;) {
		ssize_t n = recv(io->fd, io->rbuf + io->rlen, sizeof(io->rbuf) - io->rlen, MSG_DONTWAIT);
		st = netio_received(io, n);
		if (st != NETIO_TIMEOUT)
			return st;
		if (errno == EINTR)
			continue;
		if ((st = netio_wait(io, POLLIN, deadline, wakeable)) != NETIO_OK)
			return st;
	}
}

/* netio_read_may_block - the next wait may happen inside recv: the socket
 * times its reads out after timeout_ms (netio_wait_in_read), nothing was
 * sent since the last read (the peer reading it would wake the recv for
 * nothing, see the top of this file), nothing else may end the wait (no
 * wake descriptor) and the deadline is not nearer. */
static bool netio_read_may_block(const struct netio *io, bool wakeable)
{
	if (!io->timed_reads || io->sent || (wakeable && io->wake_fd != -1))
		return false;
	return io->deadline_ms == 0 || io->deadline_ms - netio_now_ms() >= io->timeout_ms;
}

static enum netio_status netio_read_more(struct netio *io, bool wakeable)
{
	enum netio_status st;

	if (io->rpos > 0) {
		memmove(io->rbuf, io->rbuf + io->rpos, io->rlen - io->rpos);
		io->rlen -= io->rpos;
		io->rpos = 0;
	}
	if (io->rlen == sizeof(io->rbuf))
		return NETIO_OK;
	/* Before blocking, send the replies to everything read so far. */
	if (io->wlen > 0 && (st = netio_flush(io)) != NETIO_OK)
		return st;
	if (netio_past_deadline(io))
		return NETIO_TIMEOUT;
	long long deadline = netio_wait_end(io);
	if (netio_read_may_block(io, wakeable)) {
		/* One call instead of a poll and a read while the rest comes
		 * in time. SO_RCVTIMEO ends it before the wait's end (see
		 * netio_recv_timeout_ms); that, or a signal, falls back to the
		 * polling wait, which keeps to the exact end. */
		ssize_t n = recv(io->fd, io->rbuf + io->rlen, sizeof(io->rbuf) - io->rlen, 0);
		st = netio_received(io, n);
		if (st != NETIO_TIMEOUT)
			return st;
	}
	return netio_read_polling(io, deadline, wakeable);
}

bool netio_has_line(const struct netio *io)
{
	return memchr(io->rbuf + io->rpos, '\n', io->rlen - io->rpos) != NULL;
}

enum netio_status netio_fill(struct netio *io)
{
	if (netio_pending(io) > 0)
		return NETIO_OK;
	return netio_read_more(io, false);
}

enum netio_status netio_fill_more(struct netio *io)
{
	return netio_read_more(io, false);
}

enum netio_status netio_read_line(struct netio *io, size_t max, char **line_r, size_t *len_r,
				  enum netio_line *kind_r)
{
	bool discarding = false;
	bool first = true;

	if (max > sizeof(io->rbuf) - 2)
		max = sizeof(io->rbuf) - 2;
	for (;;) {
		char *start = io->rbuf + io->rpos;
		size_t avail = io->rlen - io->rpos;
		char *lf = memchr(start, '\n', avail);
		if (lf != NULL) {
			size_t len = (size_t)(lf - start);
			io->rpos += len + 1;
			if (discarding) {
				*line_r = start;
				*len_r = 0;
				*kind_r = NETIO_LINE_TOO_LONG;
				return NETIO_OK;
			}
			*kind_r = NETIO_LINE_BARE_LF;
			if (len > 0 && start[len - 1] == '\r') {
				len--;
				*kind_r = NETIO_LINE_OK;
			}
			if (len > max) {
				*kind_r = NETIO_LINE_TOO_LONG;
				len = 0;
			}
			start[len] = '\0';
			*line_r = start;
			*len_r = len;
			return NETIO_OK;
		}
		if (avail > max + 1) {
			/* Too long: drop what we have and keep reading to the LF. */
			discarding = true;
			io->rpos = io->rlen;
		}
		/* Only the wait for the start of a new line may be interrupted. */
		enum netio_status st = netio_read_more(io, first && avail == 0);
		first = false;
		if (st != NETIO_OK)
			return st;
	}
}

enum netio_status netio_read_line_part(struct netio *io, size_t max, char **part_r, size_t *len_r,
				       bool *more_r)
{
	if (max > sizeof(io->rbuf) - 2)
		max = sizeof(io->rbuf) - 2;
	for (;;) {
		char *start = io->rbuf + io->rpos;
		size_t avail = io->rlen - io->rpos;
		/* max bytes and a CRLF: enough to tell whether the line ends */
		char *lf = memchr(start, '\n', avail < max + 2 ? avail : max + 2);
		size_t len = lf != NULL ? (size_t)(lf - start) : avail;
		size_t content = len > 0 && lf != NULL && start[len - 1] == '\r' ? len - 1 : len;

		if (lf != NULL && content <= max) {
			io->rpos += len + 1;
			*part_r = start;
			*len_r = content;
			*more_r = false;
			return NETIO_OK;
		}
		if (len > max) {
			io->rpos += max;
			*part_r = start;
			*len_r = max;
			*more_r = true;
			return NETIO_OK;
		}
		enum netio_status st = netio_read_more(io, false);
		if (st != NETIO_OK)
			return st;
	}
}

static enum netio_status netio_write_raw(struct netio *io, const char *data, size_t len)
{
	long long deadline = netio_wait_end(io);

	while (len > 0) {
		ssize_t n = send(io->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			io->sent = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			io->err = errno;
			return errno == EPIPE || errno == ECONNRESET ? NETIO_EOF : NETIO_ERROR;
		}
		enum netio_status st = netio_wait(io, POLLOUT, deadline, false);
		if (st != NETIO_OK)
			return st;
	}
	return NETIO_OK;
}

enum netio_status netio_flush(struct netio *io)
{
	enum netio_status st = netio_write_raw(io, io->wbuf, io->wlen);
	io->wlen = 0;
	return st;
}

enum netio_status netio_write(struct netio *io, const void *data, size_t len)
{
	enum netio_status st;

	if (io->wlen + len > sizeof(io->wbuf)) {
		if ((st = netio_flush(io)) != NETIO_OK)
			return st;
		if (len >= sizeof(io->wbuf))
			return netio_write_raw(io, data, len);
	}
	memcpy(io->wbuf + io->wlen, data, len);
	io->wlen += len;
	return NETIO_OK;
}

enum netio_status netio_printf(struct netio *io, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return NETIO_ERROR;
	return netio_write(io, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static int connect_wait(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return -1;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int r;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	int err = 0;
	socklen_t elen = sizeof(err);
	if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

int netio_connect(const struct endpoint *ep, int timeout_ms, char **error_r)
{
	if (ep->is_unix) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		if (strlen(ep->path) >= sizeof(sun.sun_path)) {
			*error_r = g_strdup("socket path too long");
			return -1;
		}
		strcpy(sun.sun_path, ep->path);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd == -1 || connect_wait(fd, (struct sockaddr *)&sun, sizeof(sun), timeout_ms) < 0) {
			*error_r = g_strdup(g_strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		return fd;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res, *ai;
	int gai = getaddrinfo(ep->host, ep->port, &hints, &res);
	if (gai != 0) {
		*error_r = g_strdup(gai_strerror(gai));
		return -1;
	}
	int fd = -1, last_errno = 0;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect_wait(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms) == 0)
			break;
		last_errno = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	/* the text is made only on failure: the last connect's reason */
	if (fd == -1)
		*error_r = last_errno != 0 ? g_strdup(g_strerror(last_errno)) : g_strdup("no address");
	return fd;
}
