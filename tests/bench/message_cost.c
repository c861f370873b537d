/*
 * message_cost - CPU time of one message's whole evaluation, as the daemon
 * does it after DATA, in one process with warm caches
 *
 *     message_cost CONFIG COUNT CLIENT_IP HELO MAIL_FROM RCPT MESSAGE...
 *
 * Builds the engine from CONFIG as the daemon does (resolver, SPF, DKIM,
 * DMARC and ARC checkers on its dns_servers), then for each MESSAGE (read
 * into memory once) runs COUNT times what a session runs after DATA: the
 * message into a fresh spool, a filter transaction with the XFORWARD facts
 * (CLIENT_IP, HELO), filter_prepare for RCPT's policy, the history hook
 * and the log fields. Prints per message the first run's log fields and
 * the CPU microseconds per message over the runs after the first (which
 * fill the DNS and key caches). Under callgrind with
 * --toggle-collect=bench_warm, the instructions collected divided by
 * COUNT - 1 are the per-message cost; tests/bench/message-cost sets it up. No network I/O but DNS; prints figures, not pass/fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "lmtpfilter/config.h"
#include "lmtpfilter/engine.h"
#include "lmtpfilter/filter.h"
#include "lmtpfilter/log.h"
#include "lmtpfilter/message_view.h"
#include "lmtpfilter/spool.h"

struct bench_tx {
	const struct config *config;
	struct xforward xforward;
	const char *mail_from, *rcpt;
};

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_message - one message as a session handles it after DATA; the log
 * fields into fields_r when not NULL (g_free). 0 or -1. */
static int bench_message(struct engine *engine, const struct bench_tx *b, const char *data, size_t size,
			 char **fields_r)
{
	const struct domain_policy *policy = config_policy_for(b->config, b->rcpt);
	struct spool *spool = spool_new(b->config->spool_dir, b->config->spool_memory_limit);
	struct spool_text text = { 0 };
	g_autofree char *error = NULL;
	int rc = 0;

	if (spool_append_text(spool, data, size, &text, NULL, &error) < 0 || spool_finish(spool, &error) < 0) {
		fprintf(stderr, "message_cost: spool: %s\n", error);
		spool_free(&spool);
		return -1;
	}
	struct tx_facts facts = { .mail_from = b->mail_from, .xforward = &b->xforward, .peer = "bench",
				  .spool = spool };
	struct filter_tx *ftx = filter_tx_new(engine, b->config, &facts);
	struct message_view view;
	struct lmtp_reply fail;

	message_view_init(&view);
	if (filter_prepare(ftx, policy, &view, NULL, &fail) < 0) {
		fprintf(stderr, "message_cost: %s\n", fail.text);
		rc = -1;
	}
	filter_tx_history(ftx);
	const char *fields = filter_log_fields(ftx);
	if (fields_r != NULL)
		*fields_r = g_strdup(fields);
	message_view_clear(&view);
	filter_tx_free(&ftx);
	spool_free(&spool);
	return rc;
}

/* bench_warm - bench_message for the runs after the first. Not inlined:
 * the callgrind runs of tests/bench/message-cost collect inside it only,
 * so that the first run's DNS lookups and key parses are left out. */
__attribute__((noinline)) static int bench_warm(struct engine *engine, const struct bench_tx *b, const char *data,
						size_t size)
{
	return bench_message(engine, b, data, size, NULL);
}

/* bench_file - COUNT evaluations of one file; 0 or -1. */
static int bench_file(struct engine *engine, const struct bench_tx *b, const char *path, long count)
{
	gchar *data = NULL, *fields = NULL;
	gsize size = 0;
	double t0 = 0;

	if (!g_file_get_contents(path, &data, &size, NULL)) {
		fprintf(stderr, "message_cost: cannot read %s\n", path);
		return -1;
	}
	for (long n = 0; n < count; n++) {
		if (n == 1)
			t0 = cpu_seconds();
		if ((n == 0 ? bench_message(engine, b, data, size, &fields) : bench_warm(engine, b, data, size)) < 0)
			return -1;
	}
	printf("%s\t%zu bytes\t%.1f us\t%s\n", path, (size_t)size,
	       (cpu_seconds() - t0) * 1e6 / (double)(count - 1), fields);
	g_free(fields);
	g_free(data);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_tx b = { 0 };
	struct config *config = NULL;
	struct engine engine;
	char *error = NULL;
	long count;

	if (argc < 8 || (count = strtol(argv[2], NULL, 10)) < 2) {
		fprintf(stderr, "usage: message_cost CONFIG COUNT(>=2) CLIENT_IP HELO MAIL_FROM RCPT MESSAGE...\n");
		return 2;
	}
	log_open(false, false);
	if (config_load(argv[1], &config, &error) < 0) {
		fprintf(stderr, "message_cost: %s\n", error);
		return 1;
	}
	b.config = config;
	b.xforward.present = true;
	g_strlcpy(b.xforward.addr, argv[3], sizeof(b.xforward.addr));
	g_strlcpy(b.xforward.name, argv[4], sizeof(b.xforward.name));
	g_strlcpy(b.xforward.helo, argv[4], sizeof(b.xforward.helo));
	g_strlcpy(b.xforward.proto, "ESMTP", sizeof(b.xforward.proto));
	g_strlcpy(b.xforward.source, "REMOTE", sizeof(b.xforward.source));
	b.mail_from = argv[5];
	b.rcpt = argv[6];
	int rc = 0;
	if (engine_init(&engine, config, &error) < 0) {
		fprintf(stderr, "message_cost: %s\n", error);
		rc = 1;
	}
	for (int i = 7; rc == 0 && i < argc; i++)
		if (bench_file(&engine, &b, argv[i], count) < 0)
			rc = 1;
	engine_deinit(&engine);
	return rc;
}
