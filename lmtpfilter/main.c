/*
 * main - the command line: run the daemon, check the configuration, print
 * versions, evaluate one stored message ("check"), or make the DMARC
 * aggregate reports of a day ("report")
 *
 * Exit codes: 0 ok, 1 bad configuration or usage, 2 runtime failure.
 */
#include "lmtpfilter/check.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/engine.h"
#include "lmtpfilter/filter.h"
#include "lmtpfilter/log.h"
#include "lmtpfilter/report.h"
#include "lmtpfilter/metrics.h"
#include "lmtpfilter/metrics_http.h"
#include "lmtpfilter/server.h"
#include "lmtpfilter/stats.h"

#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <spf2/spf.h>

#include <glib.h>
#include <gmime/gmime.h>
#include <opendkim/dkim.h>
#include <stdio.h>
#include <string.h>
#include <unbound.h>

#define DEFAULT_CONFIG "/etc/lmtpfilter/lmtpfilter.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: lmtpfilter [-c FILE] [-s] [-d]          run the daemon in the foreground\n"
		"       lmtpfilter [-c FILE] -t                 check the configuration\n"
		"       lmtpfilter [-c FILE] check [--client-ip IP] [--helo NAME] [--mail-from ADDR]\n"
		"                  [--rcpt ADDR]... [--json] [MSG|-]\n"
		"                                               evaluate one stored message\n"
		"       lmtpfilter [-c FILE] report [--period YYYY-MM-DD] [--out DIR] [--send]\n"
		"                  [--history DIR]...           DMARC aggregate reports of one UTC day\n"
		"       lmtpfilter [-c FILE] stats              summarise the running daemon's metrics\n"
		"       lmtpfilter --version                    print versions\n"
		"options:\n"
		"  -c FILE   configuration file (default " DEFAULT_CONFIG ")\n"
		"  -s        log to syslog instead of stderr\n"
		"  -d        log debugging details\n");
}

static void print_version(void)
{
	int spf_major, spf_minor, spf_patch;

	SPF_get_lib_version(&spf_major, &spf_minor, &spf_patch);
	printf("lmtpfilter %s\n", LMTPFILTER_VERSION);
	printf("built with GMime %u.%u.%u, GLib %u.%u.%u, libspf2 %d.%d.%d, libopendkim %u.%u.%u, libunbound %s\n",
	       GMIME_MAJOR_VERSION, GMIME_MINOR_VERSION, GMIME_MICRO_VERSION,
	       GLIB_MAJOR_VERSION, GLIB_MINOR_VERSION, GLIB_MICRO_VERSION,
	       spf_major, spf_minor, spf_patch,
	       (unsigned)(OPENDKIM_LIB_VERSION >> 24), (unsigned)((OPENDKIM_LIB_VERSION >> 16) & 0xff),
	       (unsigned)((OPENDKIM_LIB_VERSION >> 8) & 0xff), ub_version());
}

/* metrics_start - serve metrics_listen, if set, and start counting. */
static int metrics_start(const struct config *config, struct metrics_http **http_r)
{
	char *error = NULL;

	if (!config->metrics_enabled)
		return 0;
	if (metrics_http_start(&config->metrics_listen, config->listen_mode, http_r, &error) < 0) {
		log_error("metrics_listen: %s", error);
		g_free(error);
		return -1;
	}
	metrics_set_enabled(true);
	return 0;
}

static int run_daemon(const char *file)
{
	struct config *config;
	struct engine engine;
	char *error = NULL;

	if (config_load(file, &config, &error) < 0) {
		fprintf(stderr, "lmtpfilter: %s\n", error);
		g_free(error);
		return 1;
	}
	server_block_signals();
	if (engine_init(&engine, config, &error) < 0 || engine_open_history(&engine, &error) < 0) {
		log_error("%s", error);
		g_free(error);
		engine_deinit(&engine);
		return 2;
	}
	struct metrics_http *http = NULL;
	if (metrics_start(engine.config, &http) < 0) {
		engine_deinit(&engine);
		return 2;
	}
	int rc = server_run(&engine, file);
	metrics_http_stop(&http);
	engine_deinit(&engine);
	return rc;
}

static int check_config(const char *file)
{
	struct config *config;
	char *error = NULL;

	if (config_load(file, &config, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		g_free(error);
		return 1;
	}
	printf("%s: configuration ok\n", file);
	config_unref(&config);
	return 0;
}

int main(int argc, char **argv)
{
	const char *file = DEFAULT_CONFIG;
	bool test = false, use_syslog = false, debug = false;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			print_version();
			return 0;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "-c") == 0) {
			if (++i == argc) {
				fprintf(stderr, "lmtpfilter: -c needs a file name\n");
				return 1;
			}
			file = argv[i];
		} else if (strcmp(a, "-t") == 0) {
			test = true;
		} else if (strcmp(a, "-s") == 0) {
			use_syslog = true;
		} else if (strcmp(a, "-d") == 0) {
			debug = true;
		} else if (strcmp(a, "check") == 0) {
			log_open(false, debug);
			g_mime_init();
			return check_main(file, argc - i, argv + i);
		} else if (strcmp(a, "report") == 0) {
			log_open(false, debug);
			g_mime_init();
			return report_main(file, argc - i, argv + i);
		} else if (strcmp(a, "stats") == 0) {
			return stats_main(file, argc - i, argv + i);
		} else {
			fprintf(stderr, "lmtpfilter: unknown argument \"%s\"\n", a);
			usage(stderr);
			return 1;
		}
	}
	log_open(use_syslog, debug);
	g_mime_init();
	if (test)
		return check_config(file);
	return run_daemon(file);
}
