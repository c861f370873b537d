/*
 * arc_cost - CPU time of one ARC chain verification, without network or DNS
 *
 *     arc_cost KEY_FILE COUNT MESSAGE...
 *
 * Verifies each MESSAGE (read into memory once) COUNT times through
 * arc_verify_message, keys from KEY_FILE ("NAME TXT-VALUE" per line), and
 * prints per message the result of the first run and the CPU microseconds
 * per verification over the runs after the first (which pays the key
 * parse that dkim_keycache.c then serves from its cache). Prints figures,
 * not pass/fail. A last line "# keycache hits=H misses=M" shows that the
 * RSA keys came from dkim_keycache.c after the first parse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "lmtpfilter/arc.h"
#include "lmtpfilter/dkim_keycache.h"
#include "tests/tools/memory_message.h"

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_one - COUNT verifications of one file; 0 or -1. */
static int bench_one(struct arc_verifier *v, const char *path, long count)
{
	struct arc_outcome *out = g_new0(struct arc_outcome, 1);
	struct memory_message m;
	gchar *data = NULL;
	gsize size = 0;
	char *error = NULL;
	double t0 = 0;

	if (!g_file_get_contents(path, &data, &size, NULL)) {
		fprintf(stderr, "arc_cost: cannot read %s\n", path);
		return -1;
	}
	m.data = data;
	m.size = size;
	for (long n = 0; n < count; n++) {
		if (n == 1)
			t0 = cpu_seconds();
		arc_outcome_clear(out);
		if (arc_verify_message(v, memory_message_read, &m, m.size, out, &error) < 0) {
			fprintf(stderr, "arc_cost: %s: %s\n", path, error);
			return -1;
		}
	}
	printf("%s\t%zu bytes\t%zu sets\t%s\t%.1f us\n", path, m.size, out->set_count,
	       verdict_name(out->result), (cpu_seconds() - t0) * 1e6 / (double)(count - 1));
	arc_outcome_clear(out);
	g_free(out);
	g_free(data);
	return 0;
}

int main(int argc, char **argv)
{
	struct arc_verifier_options opts = { 0 };
	struct arc_verifier *v = NULL;
	char *error = NULL;
	long count;

	if (argc < 4 || (count = strtol(argv[2], NULL, 10)) < 2) {
		fprintf(stderr, "usage: arc_cost KEY_FILE COUNT(>=2) MESSAGE...\n");
		return 2;
	}
	opts.key_file = argv[1];
	if (arc_verifier_new(NULL, &opts, &v, &error) < 0) {
		fprintf(stderr, "arc_cost: %s\n", error);
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		if (bench_one(v, argv[i], count) < 0)
			return 1;
	}
	{
		struct dkim_keycache_stats st;

		dkim_keycache_get_stats(&st);
		printf("# keycache hits=%llu misses=%llu\n", (unsigned long long)st.hits,
		       (unsigned long long)st.misses);
	}
	arc_verifier_free(&v);
	return 0;
}
