/*
 * metrics_http - HTTP/1.0 GET /metrics on metrics_listen, and the client
 * the stats command uses
 *
 * Owns: the listening socket, the responder thread and its connections
 * (struct conn: request bytes, response, deadline). The thread runs at a
 * lower scheduling priority than the sessions, never blocks (every socket
 * is non-blocking; poll waits at most until the nearest deadline), reads
 * at most METRICS_HTTP_REQUEST_MAX bytes per connection and answers once,
 * then closes. Past METRICS_HTTP_CLIENTS_MAX connections a new one is
 * closed unanswered.
 */
#include "lmtpfilter/metrics_http.h"
#include "lmtpfilter/metrics.h"
#include "lmtpfilter/netio.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define METRICS_HTTP_BACKLOG 16
#define METRICS_HTTP_NICE 10          /* below the sessions: a scrape flood yields the CPU to mail */
#define METRICS_HTTP_METHOD_MAX 16    /* longest method token accepted as a method at all */

struct conn {
	int fd;                       /* -1: free */
	char in[METRICS_HTTP_REQUEST_MAX];
	size_t in_len;
	GString *out;                 /* NULL while reading the request */
	size_t out_done;
	long long deadline_ms;
};

struct metrics_http {
	int listen_fd;
	int stop_fd;                  /* eventfd: readable once stopping */
	char *unix_path;              /* unlinked on stop */
	GThread *thread;
	struct conn conns[METRICS_HTTP_CLIENTS_MAX];
};

/* ---- the request parser ---- */

/* header_end - length of the request through its empty line, or 0. */
static size_t header_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* bytes_clean - no NUL or control byte other than CR, LF and TAB. */
static bool bytes_clean(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* request_line - the status the request line "METHOD SP TARGET SP VERSION" earns. */
static int request_line(const char *line, size_t len)
{
	const char *sp1 = memchr(line, ' ', len);
	if (sp1 == NULL || sp1 == line || (size_t)(sp1 - line) > METRICS_HTTP_METHOD_MAX)
		return 400;
	const char *target = sp1 + 1;
	const char *sp2 = memchr(target, ' ', len - (size_t)(target - line));
	if (sp2 == NULL || sp2 == target || target[0] != '/')
		return 400;
	const char *version = sp2 + 1;
	size_t vlen = len - (size_t)(version - line);
	if (vlen != 8 || (memcmp(version, "HTTP/1.0", 8) != 0 && memcmp(version, "HTTP/1.1", 8) != 0))
		return 400;
	for (const char *p = line; p < sp1; p++)
		if (!g_ascii_isalpha(*p))
			return 400;
	if ((size_t)(sp1 - line) != 3 || memcmp(line, "GET", 3) != 0)
		return 405;
	size_t tlen = (size_t)(sp2 - target);
	const char *query = memchr(target, '?', tlen);
	size_t plen = query != NULL ? (size_t)(query - target) : tlen;
	return plen == 8 && memcmp(target, "/metrics", 8) == 0 ? 200 : 404;
}

/* metrics_http_parse - judge the request bytes received so far. */
int metrics_http_parse(const char *buf, size_t len)
{
	size_t end = header_end(buf, len);

	if (!bytes_clean(buf, end != 0 ? end : len))
		return 400;
	if (end == 0)
		return len >= METRICS_HTTP_REQUEST_MAX ? 400 : 0;
	const char *lf = memchr(buf, '\n', end);
	size_t line_len = (size_t)(lf - buf);
	if (line_len > 0 && buf[line_len - 1] == '\r')
		line_len--;
	return request_line(buf, line_len);
}

/* ---- the responder ---- */

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	default: return "Bad Request";
	}
}

/* conn_answer - build the response for status; reading ends. */
static void conn_answer(struct conn *c, int status)
{
	GString *body = g_string_new(NULL);

	if (status == 200)
		metrics_render(body);
	else
		g_string_append_printf(body, "%d %s\n", status, status_text(status));
	c->out = g_string_new(NULL);
	g_string_append_printf(c->out, "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			       "Connection: close\r\n\r\n", status, status_text(status),
			       status == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
			       body->len, status == 405 ? "Allow: GET\r\n" : "");
	g_string_append_len(c->out, body->str, (gssize)body->len);
	g_string_free(body, TRUE);
	c->out_done = 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	if (c->out != NULL)
		g_string_free(c->out, TRUE);
	c->fd = -1;
	c->out = NULL;
	c->in_len = 0;
}

/* conn_read - take what arrived; answer once the request is judged. */
static void conn_read(struct conn *c)
{
	ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(c);
		return;
	}
	if (n < 0)
		return;
	c->in_len += (size_t)n;
	int status = metrics_http_parse(c->in, c->in_len);
	if (status != 0)
		conn_answer(c, status);
}

/* conn_write - send what the socket takes; close when all is sent. */
static void conn_write(struct conn *c)
{
	ssize_t n = send(c->fd, c->out->str + c->out_done, c->out->len - c->out_done, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->out_done += (size_t)n;
	if (c->out_done == c->out->len) {
		shutdown(c->fd, SHUT_WR);
		conn_close(c);
	}
}

/* http_accept - take every waiting connection; those past the limit are closed. */
static void http_accept(struct metrics_http *h)
{
	int fd;

	while ((fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
		struct conn *free_conn = NULL;
		for (size_t i = 0; i < METRICS_HTTP_CLIENTS_MAX && free_conn == NULL; i++)
			if (h->conns[i].fd == -1)
				free_conn = &h->conns[i];
		if (free_conn == NULL) {
			close(fd);
			continue;
		}
		free_conn->fd = fd;
		free_conn->in_len = 0;
		free_conn->deadline_ms = netio_now_ms() + METRICS_HTTP_DEADLINE_MS;
	}
}

/* http_poll_setup - fill pfd; returns poll's timeout (the nearest deadline). */
static int http_poll_setup(struct metrics_http *h, struct pollfd *pfd)
{
	long long now = netio_now_ms(), wait = -1;

	pfd[0] = (struct pollfd){ .fd = h->stop_fd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = h->listen_fd, .events = POLLIN };
	for (size_t i = 0; i < METRICS_HTTP_CLIENTS_MAX; i++) {
		struct conn *c = &h->conns[i];
		pfd[i + 2] = (struct pollfd){ .fd = c->fd, .events = c->out != NULL ? POLLOUT : POLLIN };
		if (c->fd == -1)
			continue;
		long long left = c->deadline_ms > now ? c->deadline_ms - now : 0;
		if (wait < 0 || left < wait)
			wait = left;
	}
	return (int)wait;
}

static void http_serve(struct metrics_http *h, const struct pollfd *pfd)
{
	long long now = netio_now_ms();

	for (size_t i = 0; i < METRICS_HTTP_CLIENTS_MAX; i++) {
		struct conn *c = &h->conns[i];
		short ev = pfd[i + 2].revents;
		if (c->fd != -1 && (ev & (POLLERR | POLLNVAL)))
			conn_close(c);
		else if (c->fd != -1 && c->out == NULL && (ev & (POLLIN | POLLHUP)))
			conn_read(c);
		else if (c->fd != -1 && c->out != NULL && (ev & (POLLOUT | POLLHUP)))
			conn_write(c);
		if (c->fd != -1 && now >= c->deadline_ms)
			conn_close(c);
	}
	if (pfd[1].revents & POLLIN)
		http_accept(h);
}

static gpointer http_thread(gpointer data)
{
	struct metrics_http *h = data;
	struct pollfd pfd[METRICS_HTTP_CLIENTS_MAX + 2];

	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), METRICS_HTTP_NICE);
	for (;;) {
		int wait = http_poll_setup(h, pfd);
		if (poll(pfd, G_N_ELEMENTS(pfd), wait) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN)
			break;
		http_serve(h, pfd);
	}
	for (size_t i = 0; i < METRICS_HTTP_CLIENTS_MAX; i++)
		conn_close(&h->conns[i]);
	return NULL;
}

/* ---- sockets ---- */

/* socket_unix - a listening or connected unix socket on path. */
static int socket_unix(const char *path, bool do_listen, unsigned mode, char **error_r)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = g_strdup_printf("unix:%s: socket path too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (do_listen ? SOCK_NONBLOCK : 0), 0);
	int r = -1;
	if (fd != -1 && do_listen) {
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path);
		mode_t old = umask(0177);
		r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
		umask(old);
		if (r == 0)
			r = chmod(path, mode) == 0 && listen(fd, METRICS_HTTP_BACKLOG) == 0 ? 0 : -1;
	} else if (fd != -1) {
		r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	}
	if (r < 0) {
		*error_r = g_strdup_printf("unix:%s: %s", path, g_strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* socket_inet - a listening or connected TCP socket on host:port. */
static int socket_inet(const struct endpoint *ep, bool do_listen, char **error_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res;
	int one = 1;

	if (do_listen)
		hints.ai_flags |= AI_PASSIVE;
	int gai = getaddrinfo(ep->host, ep->port, &hints, &res);
	if (gai != 0) {
		*error_r = g_strdup_printf("inet:%s:%s: %s", ep->host, ep->port, gai_strerror(gai));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | (do_listen ? SOCK_NONBLOCK : 0), 0);
	int r = -1;
	if (fd != -1 && do_listen) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		r = bind(fd, res->ai_addr, res->ai_addrlen) == 0 && listen(fd, METRICS_HTTP_BACKLOG) == 0 ? 0 : -1;
	} else if (fd != -1) {
		r = connect(fd, res->ai_addr, res->ai_addrlen);
	}
	if (r < 0) {
		*error_r = g_strdup_printf("inet:%s:%s: %s", ep->host, ep->port, g_strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* metrics_http_start - listen on ep and start the responder thread. */
int metrics_http_start(const struct endpoint *ep, unsigned mode, struct metrics_http **http_r, char **error_r)
{
	int fd = ep->is_unix ? socket_unix(ep->path, true, mode, error_r) : socket_inet(ep, true, error_r);

	if (fd == -1)
		return -1;
	struct metrics_http *h = g_new0(struct metrics_http, 1);
	h->listen_fd = fd;
	h->stop_fd = eventfd(0, EFD_CLOEXEC);
	h->unix_path = ep->is_unix ? g_strdup(ep->path) : NULL;
	for (size_t i = 0; i < METRICS_HTTP_CLIENTS_MAX; i++)
		h->conns[i].fd = -1;
	h->thread = g_thread_new("metrics", http_thread, h);
	*http_r = h;
	return 0;
}

/* metrics_http_stop - stop the thread and close everything. */
void metrics_http_stop(struct metrics_http **http)
{
	struct metrics_http *h = *http;
	uint64_t one = 1;

	if (h == NULL)
		return;
	ssize_t r = write(h->stop_fd, &one, sizeof(one));
	(void)r;
	g_thread_join(h->thread);
	close(h->listen_fd);
	close(h->stop_fd);
	if (h->unix_path != NULL)
		unlink(h->unix_path);
	g_free(h->unix_path);
	g_free(h);
	*http = NULL;
}

/* ---- the client ---- */

/* fetch_read - the whole response within the deadline, or NULL. */
static GString *fetch_read(int fd, int timeout_ms, char **error_r)
{
	GString *in = g_string_new(NULL);
	long long deadline = netio_now_ms() + timeout_ms;
	char buf[16384];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - netio_now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			*error_r = g_strdup_printf("no complete answer within %d ms", timeout_ms);
			break;
		}
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return in;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || in->len + (size_t)n > METRICS_HTTP_RESPONSE_MAX) {
			*error_r = g_strdup(n < 0 ? g_strerror(errno) : "answer too long");
			break;
		}
		g_string_append_len(in, buf, n);
	}
	g_string_free(in, TRUE);
	return NULL;
}

/* metrics_http_fetch - GET /metrics from ep. */
char *metrics_http_fetch(const struct endpoint *ep, int timeout_ms, char **error_r)
{
	static const char request[] = "GET /metrics HTTP/1.0\r\nUser-Agent: lmtpfilter-stats\r\n\r\n";
	int fd = ep->is_unix ? socket_unix(ep->path, false, 0, error_r) : socket_inet(ep, false, error_r);

	if (fd == -1)
		return NULL;
	if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(request) - 1)) {
		*error_r = g_strdup_printf("cannot send the request: %s", g_strerror(errno));
		close(fd);
		return NULL;
	}
	GString *in = fetch_read(fd, timeout_ms, error_r);
	close(fd);
	if (in == NULL)
		return NULL;
	const char *body = strstr(in->str, "\r\n\r\n");
	if (strncmp(in->str, "HTTP/1.0 200 ", 13) != 0 || body == NULL) {
		char *line = g_strndup(in->str, strcspn(in->str, "\r\n"));
		*error_r = g_strdup_printf("unexpected answer \"%s\"", line);
		g_free(line);
		g_string_free(in, TRUE);
		return NULL;
	}
	char *text = g_strdup(body + 4);
	g_string_free(in, TRUE);
	return text;
}
