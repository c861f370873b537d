/*
 * dkim_cost - CPU time of one DKIM verification, without network or DNS
 *
 *     dkim_cost KEY_FILE COUNT MESSAGE...
 *
 * Verifies each MESSAGE (read into memory once) COUNT times through
 * dkim_verify_message, keys from KEY_FILE (libopendkim's file query
 * method, "NAME TXT-VALUE" per line), and prints per message the result of
 * the first run and the CPU microseconds per verification, measured over
 * the runs after the first (which pays one-time library start-up).
 * Used by tests/bench/dkim-cost; prints figures, not pass/fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "lmtpfilter/dkim.h"
#include "tests/tools/memory_message.h"

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct dkim_verifier_options opts = { 0 };
	struct dkim_verifier *v = NULL;
	char *error = NULL;
	long count;

	if (argc < 4 || (count = strtol(argv[2], NULL, 10)) < 2) {
		fprintf(stderr, "usage: dkim_cost KEY_FILE COUNT(>=2) MESSAGE...\n");
		return 2;
	}
	opts.key_file = argv[1];
	if (dkim_verifier_new(NULL, &opts, &v, &error) < 0) {
		fprintf(stderr, "dkim_cost: %s\n", error);
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		struct memory_message m;
		struct dkim_outcome out;
		gchar *data = NULL;
		gsize size = 0;
		GError *gerr = NULL;
		double t0 = 0;

		if (!g_file_get_contents(argv[i], &data, &size, &gerr)) {
			fprintf(stderr, "dkim_cost: %s\n", gerr->message);
			return 1;
		}
		m.data = data;
		m.size = size;
		for (long n = 0; n < count; n++) {
			if (n == 1)
				t0 = cpu_seconds();
			if (dkim_verify_message(v, memory_message_read, &m, m.size, &out, &error) < 0) {
				fprintf(stderr, "dkim_cost: %s: %s\n", argv[i], error);
				return 1;
			}
		}
		printf("%s\t%zu bytes\t%s\t%.1f us\n", argv[i], m.size,
		       out.count > 0 ? verdict_name(out.sigs[0].result) : "none",
		       (cpu_seconds() - t0) * 1e6 / (double)(count - 1));
		g_free(data);
	}
	dkim_verifier_free(&v);
	return 0;
}
