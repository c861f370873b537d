/*
 * server - listeners, the accept loop, the bounded worker threads, signals
 *
 * The model: one blocking session per connection on its own thread, at most
 * max_connections at once (the connection past the limit is told 421 4.3.2
 * and closed). Postfix bounds its LMTP connections per transport, libspf2
 * and libopendkim call DNS synchronously, and every read and write has a
 * deadline: a small pool of blocking sessions is simple and enough.
 *
 * Out of descriptors (EMFILE, ENFILE) the accept loop gives up its reserve
 * descriptor for a moment to accept the waiting connection, tells it 421
 * 4.3.2 and closes it, so the listen queue never fills with clients that
 * hear nothing. When even that fails, or on ENOBUFS / ENOMEM, it stops
 * polling the listeners for a pause that doubles up to
 * SERVER_ACCEPT_PAUSE_MAX_MS, so a queued connection that cannot be taken
 * never makes it spin; service resumes by itself once accept works again.
 * Such trouble is logged at most once per SERVER_ACCEPT_LOG_INTERVAL_MS, with
 * counts, and its end once after each such line.
 *
 * Owns: the listening sockets (unix sockets it created are unlinked at
 * exit; sockets from systemd are left alone), the signalfd, the reserve
 * descriptor, the count of running sessions.
 */
#include "lmtpfilter/server.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/engine.h"
#include "lmtpfilter/log.h"
#include "lmtpfilter/metrics.h"
#include "lmtpfilter/netio.h"
#include "lmtpfilter/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#define SERVER_LISTEN_MAX 16
#define SERVER_BACKLOG 128
#define SERVER_SHUTDOWN_GRACE 60       /* seconds running transactions get at SIGTERM */
#define SERVER_THREAD_STACK (512 * 1024)
/* Pauses of the listeners while accept fails for lack of a resource: short
 * at first (the shortage may pass at once), never longer than the delay a
 * client sees once resources are back. */
#define SERVER_ACCEPT_PAUSE_MIN_MS 10
#define SERVER_ACCEPT_PAUSE_MAX_MS 1000
/* One log line per interval while accept keeps failing, however busy. */
#define SERVER_ACCEPT_LOG_INTERVAL_MS 60000
#define SERVER_RESERVE_PATH "/dev/null"

struct listener {
	int fd;
	bool is_unix;
	bool from_systemd;
	char *path;                /* unix socket we created */
};

struct worker {
	struct engine *engine;
	int fd;
	bool trusted;
	char peer[128];
};

/* The accept loop's response to resource shortage. */
struct accept_state {
	int reserve_fd;              /* given up to answer 421 when descriptors run out; -1: none */
	long long pause_ms;          /* current pause of the listeners; 0: none */
	long long resume_ms;         /* when the pause ends (netio_now_ms clock) */
	long long logged_ms;         /* when trouble was last logged; 0: never */
	bool troubled;               /* accept has failed since it last worked */
	bool reported;               /* trouble logged, its end not yet */
	unsigned long failures;      /* failed accepts since the last log line */
	unsigned long turned_away;   /* connections told 421 for want of descriptors, likewise */
};

static pthread_mutex_t active_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t active_cond = PTHREAD_COND_INITIALIZER;
static unsigned active_sessions;

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	metrics_sessions_add(1);
	session_run(w->engine, w->fd, w->peer, w->trusted);
	metrics_sessions_add(-1);
	g_free(w);
	pthread_mutex_lock(&active_lock);
	active_sessions--;
	pthread_cond_broadcast(&active_cond);
	pthread_mutex_unlock(&active_lock);
	return NULL;
}

/* A unix socket path: replace a stale socket, but never a live one or a non-socket. */
static int listen_unix(const struct endpoint *ep, unsigned mode, struct listener *l, char **error_r)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;

	if (strlen(ep->path) >= sizeof(sun.sun_path)) {
		*error_r = g_strdup_printf("%s: socket path too long", ep->path);
		return -1;
	}
	strcpy(sun.sun_path, ep->path);
	if (lstat(ep->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = g_strdup_printf("%s: exists and is not a socket", ep->path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe != -1 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			*error_r = g_strdup_printf("%s: another process is listening on it", ep->path);
			return -1;
		}
		if (probe != -1)
			close(probe);
		unlink(ep->path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	/* Bind with a restrictive umask, then set the configured mode. */
	mode_t old = umask(0177);
	int r = fd == -1 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || chmod(ep->path, mode) < 0 || listen(fd, SERVER_BACKLOG) < 0) {
		*error_r = g_strdup_printf("%s: %s", ep->path, g_strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	l->fd = fd;
	l->is_unix = true;
	l->path = g_strdup(ep->path);
	return 0;
}

static int listen_inet(const struct endpoint *ep, struct listener *l, char **error_r)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *res;
	int one = 1;
	int gai = getaddrinfo(ep->host, ep->port, &hints, &res);

	if (gai != 0) {
		*error_r = g_strdup_printf("inet:%s:%s: %s", ep->host, ep->port, gai_strerror(gai));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd != -1)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd != -1 && res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (fd == -1 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, SERVER_BACKLOG) < 0) {
		*error_r = g_strdup_printf("inet:%s:%s: %s", ep->host, ep->port, g_strerror(errno));
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	l->fd = fd;
	return 0;
}

/* listeners_open - systemd's sockets, else the configured ones; returns 0,
 * or the exit code: 1 when there is nothing to listen on (a configuration
 * mistake), 2 when a configured socket cannot be opened. */
static int listeners_open(const struct config *config, struct listener *ls, size_t *count_r, char **error_r)
{
	size_t n = 0;
	int sd = sd_listen_fds(1);

	for (int i = 0; i < sd && n < SERVER_LISTEN_MAX; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		ls[n] = (struct listener){ .fd = fd, .from_systemd = true,
					   .is_unix = sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) > 0 };
		n++;
	}
	if (sd <= 0) {
		for (size_t i = 0; i < config->listen_count && n < SERVER_LISTEN_MAX; i++) {
			const struct endpoint *ep = &config->listen[i];
			/* listen_inet sets only fd: nothing else may be left to chance
			 * (is_unix would make a TCP client trusted, path be unlinked). */
			ls[n] = (struct listener){ .fd = -1 };
			int r = ep->is_unix ? listen_unix(ep, config->listen_mode, &ls[n], error_r)
					    : listen_inet(ep, &ls[n], error_r);
			if (r < 0) {
				*count_r = n;
				return 2;
			}
			n++;
		}
	}
	*count_r = n;
	if (n == 0) {
		*error_r = g_strdup_printf("%s: nothing to listen on: set listen, or start with systemd socket "
					   "activation (LISTEN_FDS)", config->file != NULL ? config->file : "configuration");
		return 1;
	}
	return 0;
}

static void listeners_close(struct listener *ls, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (ls[i].fd != -1)
			close(ls[i].fd);
		if (ls[i].path != NULL)
			unlink(ls[i].path);
		g_free(ls[i].path);
		ls[i].fd = -1;
	}
}

/* peer_describe - the peer's printable name for the log, and whether
 * XFORWARD is believed from it. A local client is named by the process
 * that connected (SO_PEERCRED): unix:pid=PID,uid=UID. */
static void peer_describe(const struct config *config, const struct listener *l, int fd,
			  const struct sockaddr_storage *ss, char *peer, size_t size, bool *trusted_r)
{
	if (l->is_unix || ss->ss_family == AF_UNIX) {
		struct ucred cred;
		socklen_t len = sizeof(cred);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred))
			snprintf(peer, size, "unix:pid=%ld,uid=%lu", (long)cred.pid, (unsigned long)cred.uid);
		else
			g_strlcpy(peer, "unix", size);
		*trusted_r = true;
		return;
	}
	char host[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof(host));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host, sizeof(host));
	g_strlcpy(peer, host, size);
	*trusted_r = config_is_trusted_ip(config, host);
}

/* server_refuse - turn a connection away with a 421 (never blocking) and
 * close it; why NULL: the caller accounts for it instead of a log line. */
static void server_refuse(int fd, const char *peer, const char *reply, const char *why)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "421 4.3.2 %s, try again later\r\n", reply);
	ssize_t r = send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);

	(void)r;
	metrics_session_refused();
	if (why != NULL)
		log_warning("peer=%s error=\"%s\"", peer, why);
	close(fd);
}

/* accept_error_transient - the failed accept concerned only that connection
 * (gone already, or refused by the network): nothing to wait for. */
static bool accept_error_transient(int err)
{
	switch (err) {
	case EAGAIN: case EINTR: case ECONNABORTED: case EPERM: case EPROTO:
	case ENETDOWN: case ENETUNREACH: case ENONET: case EHOSTDOWN: case EHOSTUNREACH:
	case ENOPROTOOPT: case EOPNOTSUPP:
		return true;
	default:
		return false;
	}
}

/* accept_turn_away - out of descriptors: free the reserve for a moment to
 * take the first waiting connection and tell it 421. Returns false when
 * even that found no descriptor. */
static bool accept_turn_away(struct accept_state *as, const struct listener *l)
{
	if (as->reserve_fd == -1)
		as->reserve_fd = open(SERVER_RESERVE_PATH, O_RDONLY | O_CLOEXEC);
	if (as->reserve_fd == -1)
		return false;
	close(as->reserve_fd);
	int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd != -1)
		server_refuse(fd, "-", "Out of resources", NULL);
	as->reserve_fd = open(SERVER_RESERVE_PATH, O_RDONLY | O_CLOEXEC);
	return fd != -1;
}

/* accept_trouble - accept failed with err: answer or pause, and log the
 * condition at most once per interval. */
static void accept_trouble(struct accept_state *as, const struct listener *l, int err)
{
	long long now = netio_now_ms();

	as->troubled = true;
	as->failures++;
	if ((err == EMFILE || err == ENFILE) && accept_turn_away(as, l)) {
		as->turned_away++;
	} else {
		as->pause_ms = as->pause_ms == 0 ? SERVER_ACCEPT_PAUSE_MIN_MS
						 : MIN(as->pause_ms * 2, SERVER_ACCEPT_PAUSE_MAX_MS);
		as->resume_ms = now + as->pause_ms;
	}
	/* However often the shortage comes and goes: one line per interval. */
	if (as->logged_ms == 0 || now - as->logged_ms >= SERVER_ACCEPT_LOG_INTERVAL_MS) {
		log_error("accept: %s: refusing new connections with 421 4.3.2 or pausing up to %d ms "
			  "(failures=%lu turned_away=%lu since the last report)", g_strerror(err),
			  SERVER_ACCEPT_PAUSE_MAX_MS, as->failures, as->turned_away);
		as->logged_ms = now;
		as->reported = true;
		as->failures = as->turned_away = 0;
	}
}

/* accept_state_init - no trouble yet, and the reserve descriptor opened. */
static void accept_state_init(struct accept_state *as)
{
	*as = (struct accept_state){ .reserve_fd = open(SERVER_RESERVE_PATH, O_RDONLY | O_CLOEXEC) };
	if (as->reserve_fd == -1)
		log_warning("%s: %s: no reserve descriptor to refuse connections with", SERVER_RESERVE_PATH,
			    g_strerror(errno));
}

/* accept_recovered - accept works again: end the pause; say so when the
 * trouble was logged (the counts of unlogged trouble wait for the next line). */
static void accept_recovered(struct accept_state *as)
{
	if (!as->troubled)
		return;
	as->troubled = false;
	as->pause_ms = 0;
	if (!as->reported)
		return;
	log_info("accept: accepting connections again (failures=%lu turned_away=%lu since the last report)",
		 as->failures, as->turned_away);
	as->reported = false;
	as->failures = as->turned_away = 0;
}

static void server_accept(struct engine *engine, const struct listener *l, struct accept_state *as)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	/* A reserve lost to a short-lived descriptor elsewhere (a new thread's
	 * malloc arena reads /sys) is taken back before the next connection. */
	if (as->reserve_fd == -1)
		as->reserve_fd = open(SERVER_RESERVE_PATH, O_RDONLY | O_CLOEXEC);
	int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		if (!accept_error_transient(errno))
			accept_trouble(as, l, errno);
		return;
	}
	accept_recovered(as);
	struct config *config = engine_config(engine);
	struct worker *w = g_new0(struct worker, 1);
	w->engine = engine;
	w->fd = fd;
	peer_describe(config, l, fd, &ss, w->peer, sizeof(w->peer), &w->trusted);

	pthread_mutex_lock(&active_lock);
	bool full = active_sessions >= config->max_connections;
	if (!full)
		active_sessions++;
	pthread_mutex_unlock(&active_lock);
	config_unref(&config);
	if (full) {
		server_refuse(w->fd, w->peer, "Too many connections", "too many connections");
		g_free(w);
		return;
	}
	pthread_attr_t attr;
	pthread_t thread;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, SERVER_THREAD_STACK);
	if (pthread_create(&thread, &attr, worker_main, w) != 0) {
		server_refuse(w->fd, w->peer, "Cannot start a session", "cannot create thread");
		g_free(w);
		pthread_mutex_lock(&active_lock);
		active_sessions--;
		pthread_mutex_unlock(&active_lock);
	}
	pthread_attr_destroy(&attr);
}

static void server_reload(struct engine *engine, const char *config_file)
{
	struct config *config;
	char *error = NULL;

	if (config_load(config_file, &config, &error) < 0) {
		log_error("reload failed, keeping the running configuration: %s", error);
		g_free(error);
		return;
	}
	engine_set_config(engine, config);
	log_info("configuration reloaded from %s", config_file);
}

/* Tell idle sessions to go and wait for the others, within the grace period. */
static void server_drain(struct engine *engine)
{
	uint64_t one = 1;
	ssize_t r = write(engine->shutdown_fd, &one, sizeof(one));
	(void)r;
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += SERVER_SHUTDOWN_GRACE;
	pthread_mutex_lock(&active_lock);
	while (active_sessions > 0)
		if (pthread_cond_timedwait(&active_cond, &active_lock, &deadline) != 0)
			break;
	unsigned left = active_sessions;
	pthread_mutex_unlock(&active_lock);
	if (left > 0)
		log_warning("exiting with %u session(s) still running after %d s", left, SERVER_SHUTDOWN_GRACE);
}

static void server_signal_mask(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGHUP);
}

void server_block_signals(void)
{
	sigset_t mask;

	server_signal_mask(&mask);
	/* Threads inherit the blocked mask: only the signalfd sees these. */
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A DMARC history file reaching a file-size limit (RLIMIT_FSIZE) must
	 * fail that write with EFBIG, which history_append drops and counts,
	 * not kill the daemon with SIGXFSZ: mail never waits on the history. */
	signal(SIGXFSZ, SIG_IGN);
}

/* server_poll_setup - what to poll: the listeners unless accept is paused,
 * always the signalfd. Returns poll's timeout: the rest of the pause, or -1. */
static int server_poll_setup(struct accept_state *as, const struct listener *ls, size_t count, int sfd,
			     struct pollfd *pfd)
{
	long long left = as->pause_ms > 0 ? as->resume_ms - netio_now_ms() : 0;
	bool paused = left > 0;

	for (size_t i = 0; i < count; i++)
		pfd[i] = (struct pollfd){ .fd = paused ? -1 : ls[i].fd, .events = POLLIN };
	pfd[count] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	return paused ? (int)left : -1;
}

int server_run(struct engine *engine, const char *config_file)
{
	struct listener ls[SERVER_LISTEN_MAX];
	size_t count = 0;
	char *error = NULL;
	sigset_t mask;

	server_block_signals();
	server_signal_mask(&mask);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	struct config *config = engine_config(engine);
	int r = listeners_open(config, ls, &count, &error);
	config_unref(&config);
	if (r != 0 || sfd == -1) {
		log_error("%s", error != NULL ? error : "signalfd failed");
		g_free(error);
		listeners_close(ls, count);
		return r != 0 ? r : 2;
	}
	sd_notify(0, "READY=1");
	log_info("ready listeners=%zu", count);

	struct accept_state as;
	accept_state_init(&as);
	bool running = true;
	while (running) {
		struct pollfd pfd[SERVER_LISTEN_MAX + 1];
		int wait_ms = server_poll_setup(&as, ls, count, sfd, pfd);
		if (poll(pfd, count + 1, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", g_strerror(errno));
			break;
		}
		if (pfd[count].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					sd_notify(0, "RELOADING=1");
					server_reload(engine, config_file);
					sd_notify(0, "READY=1");
				} else {
					running = false;
				}
			}
		}
		for (size_t i = 0; running && i < count; i++)
			if (pfd[i].revents & POLLIN)
				server_accept(engine, &ls[i], &as);
	}
	if (as.reserve_fd != -1)
		close(as.reserve_fd);
	sd_notify(0, "STOPPING=1");
	log_info("shutting down");
	listeners_close(ls, count);
	server_drain(engine);
	close(sfd);
	return 0;
}
