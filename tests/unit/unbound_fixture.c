/*
 * unbound_fixture - a real unbound on a free loopback port for unit tests
 *
 * Also a silent UDP port and a relay that is silent or forwards on cue.
 */
#include "unbound_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#define UNBOUND_START_MS 10000
#define RELAY_PACKET_MAX 65536
#define RELAY_IDS 65536            /* DNS message ids: a reply goes back to the asker of its id */

/* bound_socket - a socket of this type bound to a free loopback port. */
static int bound_socket(int type, int *port_r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, type, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sin, &len), ==, 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

int test_free_port(int type)
{
	int port;

	close(bound_socket(type, &port));
	return port;
}

int test_silent_dns(int *port_r)
{
	return bound_socket(SOCK_DGRAM, port_r);
}

static gboolean tcp_port_open(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	gboolean ok;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/* The server dies with the test, even on a failed assertion. */
static void unbound_child_setup(gpointer data)
{
	(void)data;
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

void test_unbound_start(struct test_unbound *u, const char *zone_lines)
{
	char *argv[] = { "unbound", "-d", "-c", NULL, NULL };
	GError *error = NULL;
	char *conf, *path;
	gint64 deadline;

	u->dir = g_dir_make_tmp("lmtpfilter-unbound.XXXXXX", &error);
	g_assert_no_error(error);
	u->port = test_free_port(SOCK_STREAM);
	g_snprintf(u->server, sizeof(u->server), "127.0.0.1@%d", u->port);
	conf = g_strdup_printf(
		"server:\n  interface: 127.0.0.1\n  port: %d\n  username: \"\"\n"
		"  chroot: \"\"\n  directory: \"%s\"\n  pidfile: \"\"\n  do-daemonize: no\n"
		"  use-syslog: no\n  logfile: \"\"\n  verbosity: 0\n  do-ip6: no\n"
		"  module-config: \"iterator\"\n  access-control: 127.0.0.0/8 allow\n"
		"  local-zone: \".\" static\n%s",
		u->port, u->dir, zone_lines);
	path = g_build_filename(u->dir, "unbound.conf", NULL);
	g_file_set_contents(path, conf, -1, &error);
	g_assert_no_error(error);
	argv[3] = path;
	g_spawn_async(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
		      unbound_child_setup, NULL, &u->pid, &error);
	g_assert_no_error(error);
	deadline = g_get_monotonic_time() + UNBOUND_START_MS * 1000;
	while (!tcp_port_open(u->port)) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_assert_cmpint(waitpid(u->pid, NULL, WNOHANG), ==, 0);
		g_usleep(20000);
	}
	g_free(conf);
	g_free(path);
}

void test_unbound_stop(struct test_unbound *u)
{
	char *path = g_build_filename(u->dir, "unbound.conf", NULL);

	kill(u->pid, SIGTERM);
	waitpid(u->pid, NULL, 0);
	g_spawn_close_pid(u->pid);
	g_unlink(path);
	g_rmdir(u->dir);
	g_free(path);
	g_free(u->dir);
	u->dir = NULL;
}

struct test_dns_relay {
	int client_fd;                  /* where queries arrive */
	int upstream_fd;                /* connected to the upstream server */
	int wake_pipe[2];
	gint silent;
	gint dropped;
	GMutex lock;                    /* protects drop_label */
	unsigned char drop_label[64];   /* length byte + label, wire format; empty: none */
	GThread *thread;
	char server[64];
	struct sockaddr_in askers[RELAY_IDS];
};

/* relay_packet - one datagram from fd into buf, or -1. */
static ssize_t relay_packet(int fd, unsigned char *buf, struct sockaddr_in *from)
{
	socklen_t len = sizeof(*from);

	return recvfrom(fd, buf, RELAY_PACKET_MAX, 0, (struct sockaddr *)from, &len);
}

/* relay_drops - whether a query names the label to drop. */
static bool relay_drops(struct test_dns_relay *r, const unsigned char *query, size_t len)
{
	bool drop;

	g_mutex_lock(&r->lock);
	drop = r->drop_label[0] != 0 &&
	       memmem(query, len, r->drop_label, r->drop_label[0] + 1u) != NULL;
	g_mutex_unlock(&r->lock);
	return drop;
}

static gpointer relay_thread(gpointer data)
{
	struct test_dns_relay *r = data;
	unsigned char *buf = g_malloc(RELAY_PACKET_MAX);
	struct pollfd fds[3] = {
		{ .fd = r->client_fd, .events = POLLIN },
		{ .fd = r->upstream_fd, .events = POLLIN },
		{ .fd = r->wake_pipe[0], .events = POLLIN },
	};
	struct sockaddr_in from;
	ssize_t n;

	while (poll(fds, 3, -1) >= 0 && fds[2].revents == 0) {
		if ((fds[0].revents & POLLIN) && (n = relay_packet(r->client_fd, buf, &from)) >= 2) {
			if (g_atomic_int_get(&r->silent) || relay_drops(r, buf, (size_t)n)) {
				g_atomic_int_inc(&r->dropped);
			} else {
				r->askers[(buf[0] << 8) | buf[1]] = from;
				(void)!send(r->upstream_fd, buf, (size_t)n, 0);
			}
		}
		if ((fds[1].revents & POLLIN) && (n = relay_packet(r->upstream_fd, buf, &from)) >= 2) {
			struct sockaddr_in *to = &r->askers[(buf[0] << 8) | buf[1]];

			if (to->sin_family == AF_INET && !g_atomic_int_get(&r->silent))
				(void)!sendto(r->client_fd, buf, (size_t)n, 0, (struct sockaddr *)to, sizeof(*to));
		}
	}
	g_free(buf);
	return NULL;
}

struct test_dns_relay *test_dns_relay_start(int upstream_port, gboolean silent)
{
	struct test_dns_relay *r = g_new0(struct test_dns_relay, 1);
	struct sockaddr_in up = { .sin_family = AF_INET, .sin_port = htons((uint16_t)upstream_port) };
	int port;

	up.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->client_fd = bound_socket(SOCK_DGRAM, &port);
	r->upstream_fd = socket(AF_INET, SOCK_DGRAM, 0);
	g_assert_cmpint(r->upstream_fd, >=, 0);
	g_assert_cmpint(connect(r->upstream_fd, (struct sockaddr *)&up, sizeof(up)), ==, 0);
	g_assert_cmpint(pipe2(r->wake_pipe, O_CLOEXEC), ==, 0);
	r->silent = silent ? 1 : 0;
	g_mutex_init(&r->lock);
	g_snprintf(r->server, sizeof(r->server), "127.0.0.1@%d", port);
	r->thread = g_thread_new("dns-relay", relay_thread, r);
	return r;
}

void test_dns_relay_set_silent(struct test_dns_relay *relay, gboolean silent)
{
	g_atomic_int_set(&relay->silent, silent ? 1 : 0);
}

void test_dns_relay_drop_label(struct test_dns_relay *relay, const char *label)
{
	size_t len = strlen(label);

	g_assert_cmpuint(len, <, sizeof(relay->drop_label));
	g_mutex_lock(&relay->lock);
	memcpy(relay->drop_label + 1, label, len);
	relay->drop_label[0] = (unsigned char)len;
	g_mutex_unlock(&relay->lock);
}

const char *test_dns_relay_server(const struct test_dns_relay *relay)
{
	return relay->server;
}

unsigned test_dns_relay_dropped(struct test_dns_relay *relay)
{
	return (unsigned)g_atomic_int_get(&relay->dropped);
}

void test_dns_relay_stop(struct test_dns_relay **relay)
{
	struct test_dns_relay *r = *relay;

	if (r == NULL)
		return;
	*relay = NULL;
	(void)!write(r->wake_pipe[1], "x", 1);
	g_thread_join(r->thread);
	close(r->wake_pipe[0]);
	close(r->wake_pipe[1]);
	close(r->client_fd);
	close(r->upstream_fd);
	g_mutex_clear(&r->lock);
	g_free(r);
}
