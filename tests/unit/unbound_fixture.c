/*
 * unbound_fixture - a real unbound on a free loopback port for unit tests
 */
#include "unbound_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#define UNBOUND_START_MS 10000

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
