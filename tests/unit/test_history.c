/*
 * test_history - the DMARC history: records written through history_append
 * read back whole; torn, corrupt and foreign bytes skipped and counted;
 * concurrent appenders never interleave; a full disk drops and counts.
 */
#include "lmtpfilter/history.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define DAY0 1795910400         /* 2026-11-29 00:00:00 UTC */

static char *tmp_dir;

struct collected {
	GPtrArray *lines;       /* one summary text per record read */
};

static char *summary(const struct history_record *r)
{
	GString *s = g_string_new(NULL);

	g_string_printf(s, "%lld %s %s %s %s %s %s/%s/%s %c%c %c %d%d %s %s %s %s %s %s",
			(long long)r->time, r->source_ip, r->envelope_from, r->header_from,
			r->policy_domain, r->org_domain, history_policy_name(r->p), history_policy_name(r->sp),
			history_policy_name(r->np), r->adkim, r->aspf, r->testing ? 'y' : 'n',
			r->dkim_aligned, r->spf_aligned, history_disposition_name(r->disposition),
			history_override_name(r->override), r->override_comment, r->spf_domain,
			r->spf_scope_helo ? "helo" : "mfrom", history_auth_name(r->spf_result));
	for (size_t i = 0; i < r->dkim_count; i++)
		g_string_append_printf(s, " %s:%s:%s", r->dkim[i].domain, r->dkim[i].selector,
				       history_auth_name(r->dkim[i].result));
	return g_string_free(s, FALSE);
}

static void collect(const struct history_record *r, void *context)
{
	struct collected *c = context;

	g_ptr_array_add(c->lines, summary(r));
}

static struct history_record sample(time_t t, const char *ip)
{
	return (struct history_record){
		.time = t, .source_ip = ip, .envelope_from = "bounce.example.org",
		.header_from = "example.org", .policy_domain = "example.org", .org_domain = "example.org",
		.p = HISTORY_POLICY_REJECT, .sp = HISTORY_POLICY_QUARANTINE, .np = HISTORY_POLICY_UNSET,
		.adkim = 's', .aspf = 'r', .testing = true, .psd = HISTORY_PSD_N,
		.dkim_aligned = true, .spf_aligned = false, .disposition = HISTORY_DISPOSITION_NONE,
		.override = HISTORY_OVERRIDE_TRUSTED_FORWARDER, .override_comment = "arc.example.net",
		.dkim = { { "example.org", "s1", HISTORY_AUTH_PASS }, { "esp.example", "k2", HISTORY_AUTH_FAIL } },
		.dkim_count = 2, .spf_domain = "bounce.example.org", .spf_result = HISTORY_AUTH_SOFTFAIL,
	};
}

static char *fresh_dir(void)
{
	static unsigned serial;
	char *d = g_strdup_printf("%s/h%u", tmp_dir, serial++);

	g_mkdir(d, 0700);
	return d;
}

static GPtrArray *read_all(const char *path, struct history_read_stats *st)
{
	struct collected c = { g_ptr_array_new_with_free_func(g_free) };
	char *error = NULL;

	memset(st, 0, sizeof(*st));
	if (history_read_file(path, collect, &c, st, &error) < 0)
		g_error("%s", error);
	return c.lines;
}

static void test_round_trip(void)
{
	char *dir = fresh_dir(), *error = NULL;
	struct history *h;
	struct history_record r = sample(DAY0 + 3600, "192.0.2.1");
	struct history_read_stats st;

	g_assert_cmpint(history_open(dir, &h, &error), ==, 0);
	g_assert_cmpint(history_append(h, &r), ==, 0);
	r.time = DAY0 + 86399;
	r.source_ip = "2001:db8::1";
	g_assert_cmpint(history_append(h, &r), ==, 0);
	r.time = DAY0 + 86400;          /* the next day's file */
	g_assert_cmpint(history_append(h, &r), ==, 0);
	history_close(&h);
	g_assert_null(h);

	char *day0 = history_day_file(dir, DAY0), *day1 = history_day_file(dir, DAY0 + 86400);
	g_assert_true(g_str_has_suffix(day0, "/2026-11-29.dmh"));
	GPtrArray *lines = read_all(day0, &st);
	g_assert_cmpuint(st.records, ==, 2);
	g_assert_cmpuint(st.skipped, ==, 0);
	g_assert_cmpstr(lines->pdata[0], ==,
			"1795914000 192.0.2.1 bounce.example.org example.org example.org example.org "
			"reject/quarantine/- sr y 10 none trusted_forwarder arc.example.net "
			"bounce.example.org mfrom softfail example.org:s1:pass esp.example:k2:fail");
	g_ptr_array_unref(lines);
	lines = read_all(day1, &st);
	g_assert_cmpuint(st.records, ==, 1);
	g_ptr_array_unref(lines);
	g_free(day0);
	g_free(day1);
	g_free(dir);
}

/* A record with a control byte (it would break the framing) or too long is
 * dropped and counted, never written. */
static void test_refused_fields(void)
{
	char *dir = fresh_dir(), *error = NULL, buf[HISTORY_RECORD_MAX];
	struct history *h;
	struct history_record r = sample(DAY0, "192.0.2.1");
	struct history_stats st;

	r.header_from = "evil\x01.example";
	g_assert_cmpuint(history_encode(&r, buf, sizeof(buf)), ==, 0);
	g_assert_cmpint(history_open(dir, &h, &error), ==, 0);
	g_assert_cmpint(history_append(h, &r), ==, -1);
	r.header_from = "tab\there.example";
	g_assert_cmpint(history_append(h, &r), ==, -1);
	history_get_stats(h, &st);
	g_assert_cmpuint(st.dropped, ==, 2);
	g_assert_cmpuint(st.appended, ==, 0);
	history_close(&h);
	g_free(dir);
}

/* write_bytes - append raw bytes to path. */
static void write_bytes(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "ab");

	g_assert_nonnull(f);
	g_assert_cmpuint(fwrite(data, 1, len, f), ==, len);
	fclose(f);
}

/* Torn (cut short, as by a crash mid-write), corrupted (a flipped byte),
 * and foreign bytes between records: each bad record is skipped and
 * counted, every whole one is read. */
static void test_torn_and_corrupt(void)
{
	char *dir = fresh_dir(), buf[HISTORY_RECORD_MAX];
	char *path = g_strdup_printf("%s/2026-11-29.dmh", dir);
	struct history_record r = sample(DAY0, "192.0.2.1");
	struct history_read_stats st;
	size_t n = history_encode(&r, buf, sizeof(buf));

	g_assert_cmpuint(n, >, 100);
	write_bytes(path, buf, n);                      /* whole */
	write_bytes(path, buf, n / 2);                  /* torn, then a whole one */
	write_bytes(path, buf, n);
	buf[40] ^= 0x04;                                /* corrupt */
	write_bytes(path, buf, n);
	buf[40] ^= 0x04;
	write_bytes(path, "garbage\n", 8);
	write_bytes(path, buf, n);                      /* whole */
	write_bytes(path, buf, 10);                     /* torn tail (header cut) */
	GPtrArray *lines = read_all(path, &st);
	g_assert_cmpuint(st.records, ==, 3);
	g_assert_cmpuint(st.skipped, ==, 3);
	g_ptr_array_unref(lines);

	char *error = NULL;
	g_assert_cmpint(history_read_file("/nonexistent/x.dmh", collect, NULL, &st, &error), ==, -1);
	g_assert_nonnull(error);
	g_free(error);
	g_free(path);
	g_free(dir);
}

struct appender {
	struct history *h;
	unsigned index;
};

#define THREADS 8
#define PER_THREAD 2000

static gpointer append_many(gpointer data)
{
	struct appender *a = data;
	char ip[32];

	g_snprintf(ip, sizeof(ip), "198.51.100.%u", a->index + 1);
	struct history_record r = sample(DAY0 + 60, ip);
	for (unsigned i = 0; i < PER_THREAD; i++)
		history_append(a->h, &r);
	return NULL;
}

/* Threads appending at once: every record arrives whole. */
static void test_concurrent(void)
{
	char *dir = fresh_dir(), *error = NULL;
	struct history *h;
	struct appender a[THREADS];
	GThread *t[THREADS];
	struct history_read_stats st;

	g_assert_cmpint(history_open(dir, &h, &error), ==, 0);
	for (unsigned i = 0; i < THREADS; i++) {
		a[i] = (struct appender){ h, i };
		t[i] = g_thread_new("append", append_many, &a[i]);
	}
	for (unsigned i = 0; i < THREADS; i++)
		g_thread_join(t[i]);
	history_close(&h);
	char *path = history_day_file(dir, DAY0);
	GPtrArray *lines = read_all(path, &st);
	g_assert_cmpuint(st.records, ==, THREADS * PER_THREAD);
	g_assert_cmpuint(st.skipped, ==, 0);
	g_ptr_array_unref(lines);
	g_free(path);
	g_free(dir);
}

/* A full disk (here: a file size limit, EFBIG like ENOSPC): the append
 * returns at once, the record is dropped and counted, and what was written
 * before stays readable. */
static void test_full_disk(void)
{
	char *dir = fresh_dir(), *error = NULL;
	struct history *h;
	struct history_record r = sample(DAY0, "192.0.2.1");
	struct history_stats st;
	struct history_read_stats rst;
	struct rlimit old, small;

	signal(SIGXFSZ, SIG_IGN);
	g_assert_cmpint(getrlimit(RLIMIT_FSIZE, &old), ==, 0);
	small = old;
	small.rlim_cur = 1000;
	g_assert_cmpint(history_open(dir, &h, &error), ==, 0);
	g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &small), ==, 0);
	gint64 start = g_get_monotonic_time();
	for (int i = 0; i < 100; i++)
		history_append(h, &r);
	gint64 took = g_get_monotonic_time() - start;
	g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &old), ==, 0);
	history_get_stats(h, &st);
	g_assert_cmpuint(st.appended + st.dropped, ==, 100);
	g_assert_cmpuint(st.dropped, >=, 90);
	g_assert_cmpint(took, <, G_USEC_PER_SEC);
	history_close(&h);
	char *path = history_day_file(dir, DAY0);
	GPtrArray *lines = read_all(path, &rst);
	g_assert_cmpuint(rst.records, ==, st.appended);
	g_assert_cmpuint(rst.skipped, <=, 1);          /* at most one short write */
	g_ptr_array_unref(lines);
	g_free(path);

	g_assert_cmpint(history_open("/nonexistent/dir", &h, &error), ==, -1);
	g_free(error);
	g_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	tmp_dir = g_dir_make_tmp("test_history.XXXXXX", NULL);
	g_test_add_func("/history/round-trip", test_round_trip);
	g_test_add_func("/history/refused-fields", test_refused_fields);
	g_test_add_func("/history/torn-and-corrupt", test_torn_and_corrupt);
	g_test_add_func("/history/concurrent", test_concurrent);
	g_test_add_func("/history/full-disk", test_full_disk);
	int rc = g_test_run();
	char *cmd = g_strdup_printf("rm -rf '%s'", tmp_dir);
	if (system(cmd) != 0)
		rc = 1;
	g_free(cmd);
	g_free(tmp_dir);
	return rc;
}
