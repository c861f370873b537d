/* Spool: bodies move from memory to a file at the limit, read back exactly. */
#include "lmtpfilter/spool.h"

#include <glib.h>
#include <errno.h>
#include <string.h>

static void fill(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (seed + i * 7) % 26);
}

static void check_content(struct spool *spool, const char *expect, size_t len)
{
	char *got = g_malloc(len + 1);
	g_autofree char *error = NULL;
	size_t have = 0;
	/* Odd read sizes cross the memory / file / write-buffer boundaries. */
	while (have < len) {
		ssize_t n = spool_read(spool, have, got + have, MIN(len - have, 4093), &error);
		g_assert_cmpint(n, >, 0);
		have += (size_t)n;
	}
	g_assert_cmpint(spool_read(spool, len, got, 1, &error), ==, 0);
	g_assert_true(memcmp(got, expect, len) == 0);
	g_free(got);
}

static void test_memory_only(void)
{
	struct spool *spool = spool_new(g_get_tmp_dir(), 1000);
	g_autofree char *error = NULL;
	char data[900];

	fill(data, sizeof(data), 1);
	g_assert_cmpint(spool_append(spool, data, 500, &error), ==, 0);
	g_assert_cmpint(spool_append(spool, data + 500, 400, &error), ==, 0);
	g_assert_cmpint(spool_finish(spool, &error), ==, 0);
	g_assert_cmpint(spool_fd(spool), ==, -1);
	g_assert_nonnull(spool_memory(spool));
	g_assert_cmpuint(spool_size(spool), ==, 900);
	check_content(spool, data, sizeof(data));
	spool_free(&spool);
	g_assert_null(spool);
}

static void test_spills_to_file(void)
{
	struct spool *spool = spool_new(g_get_tmp_dir(), 1000);
	g_autofree char *error = NULL;
	size_t len = 300000;
	char *data = g_malloc(len);

	fill(data, len, 3);
	for (size_t off = 0; off < len; off += 777)
		g_assert_cmpint(spool_append(spool, data + off, MIN(777, len - off), &error), ==, 0);
	/* Readable before finish too (the tail is in the write buffer). */
	g_assert_cmpuint(spool_size(spool), ==, len);
	check_content(spool, data, len);
	g_assert_cmpint(spool_finish(spool, &error), ==, 0);
	g_assert_cmpint(spool_fd(spool), >=, 0);
	g_assert_null(spool_memory(spool));
	check_content(spool, data, len);

	/* Reset: next message starts in memory again, nothing of the old one left. */
	spool_reset(spool);
	g_assert_cmpuint(spool_size(spool), ==, 0);
	g_assert_cmpint(spool_append(spool, "hello", 5, &error), ==, 0);
	g_assert_cmpint(spool_fd(spool), ==, -1);
	check_content(spool, "hello", 5);
	spool_free(&spool);
	g_free(data);
}

static void test_header_block(void)
{
	const char *msg = "From: a@b\r\nSubject: x\r\n\r\nbody\r\n";
	const char *block;
	g_autofree char *error = NULL;
	size_t len;
	int complete;

	for (size_t limit = 0; limit <= 64; limit += 64) {
		struct spool *spool = spool_new(g_get_tmp_dir(), limit);
		g_assert_cmpint(spool_append(spool, msg, strlen(msg), &error), ==, 0);
		g_assert_cmpint(spool_finish(spool, &error), ==, 0);
		g_assert_cmpint(spool_header_block(spool, &block, &len, &complete, &error), ==, 0);
		g_assert_true(complete);
		g_assert_cmpuint(len, ==, strlen("From: a@b\r\nSubject: x\r\n\r\n"));
		g_assert_true(memcmp(block, msg, len) == 0);
		spool_free(&spool);
	}
}

static void test_header_block_without_body(void)
{
	const char *msg = "From: a@b\r\nSubject: x\r\n";
	struct spool *spool = spool_new(g_get_tmp_dir(), 0);
	const char *block;
	g_autofree char *error = NULL;
	size_t len;
	int complete;

	g_assert_cmpint(spool_append(spool, msg, strlen(msg), &error), ==, 0);
	g_assert_cmpint(spool_finish(spool, &error), ==, 0);
	g_assert_cmpint(spool_header_block(spool, &block, &len, &complete, &error), ==, 0);
	g_assert_true(complete);
	g_assert_cmpuint(len, ==, strlen(msg));
	spool_free(&spool);
}

static void test_header_block_too_large(void)
{
	struct spool *spool = spool_new(g_get_tmp_dir(), 1024);
	const char *block;
	g_autofree char *error = NULL;
	size_t len;
	int complete;
	char line[] = "X-Filler: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n";

	for (size_t done = 0; done <= SPOOL_HEADER_MAX; done += strlen(line))
		g_assert_cmpint(spool_append(spool, line, strlen(line), &error), ==, 0);
	g_assert_cmpint(spool_append(spool, "\r\nbody\r\n", 8, &error), ==, 0);
	g_assert_cmpint(spool_finish(spool, &error), ==, 0);
	g_assert_cmpint(spool_header_block(spool, &block, &len, &complete, &error), ==, 0);
	g_assert_false(complete);
	g_assert_cmpuint(len, <=, SPOOL_HEADER_MAX);
	spool_free(&spool);
}

/* Boundary tests: the file spool reads its header block in pieces of
 * SPOOL_READ_STEP bytes (the step of spool_header_block); a line end or
 * the empty line that ends the block may fall on either side of a piece. */
#define SPOOL_READ_STEP 65536
#define BOUNDARY_SLACK 3       /* offsets -3..+3 around each multiple */
#define BOUNDARY_MULTIPLES 3   /* 64 KB, 128 KB, 192 KB */

/* add_line - one header line of exactly len bytes (len >= 6 with CRLF,
 * >= 5 with LF), "X-Fnnn: aaa...", ending in eol */
static void add_line(GString *s, size_t len, const char *eol)
{
	size_t start = s->len;

	g_string_append_printf(s, "X-F%zu: ", s->len % 1000);
	if (s->len - start + strlen(eol) + 1 > len)
		g_string_truncate(s, start), g_string_append(s, "X: ");
	while (s->len - start + strlen(eol) < len)
		g_string_append_c(s, 'a' + (char)(s->len % 26));
	g_string_append(s, eol);
	g_assert_cmpuint(s->len - start, ==, len);
}

/* header_up_to - header lines of line_len bytes up to exactly target,
 * the last one shortened or lengthened to land there */
static void header_up_to(GString *s, size_t target, size_t line_len, const char *eol)
{
	size_t min = strlen(eol) + 4;

	while (s->len + line_len + min <= target)
		add_line(s, line_len, eol);
	if (target - s->len > 0)
		add_line(s, target - s->len, eol);
	g_assert_cmpuint(s->len, ==, target);
}

/* check_header_block - the message in a file spool (and, as a reference,
 * in a memory spool) gives the complete header block of header_len bytes */
static void check_header_block(const GString *msg, size_t header_len, const char *what)
{
	for (size_t limit = 1024; limit != 0; limit = limit == 1024 ? 16u * 1024 * 1024 : 0) {
		struct spool *spool = spool_new(g_get_tmp_dir(), limit);
		const char *block;
		g_autofree char *error = NULL;
		size_t len;
		int complete;

		/* Appended in odd pieces, as the DATA reader does. */
		for (size_t off = 0; off < msg->len; off += 4093)
			g_assert_cmpint(spool_append(spool, msg->str + off, MIN(4093, msg->len - off), &error), ==, 0);
		g_assert_cmpint(spool_finish(spool, &error), ==, 0);
		g_assert_cmpint(spool_fd(spool) >= 0, ==, limit == 1024);
		g_assert_cmpint(spool_header_block(spool, &block, &len, &complete, &error), ==, 0);
		if (!complete || len != header_len)
			g_error("%s (%s spool): complete=%d len=%zu, want complete, len=%zu", what,
				limit == 1024 ? "file" : "memory", complete, len, header_len);
		g_assert_true(memcmp(block, msg->str, len) == 0);
		spool_free(&spool);
	}
}

/* A header line starts at each offset -3..+3 around every 64 KB multiple. */
static void test_header_line_across_read_boundary(void)
{
	static const size_t line_lens[] = { 7, 60, 78, 200, 999, 4000 };
	static const char *eols[] = { "\r\n", "\n" };

	for (size_t e = 0; e < G_N_ELEMENTS(eols); e++)
		for (size_t l = 0; l < G_N_ELEMENTS(line_lens); l++)
			for (size_t m = 1; m <= BOUNDARY_MULTIPLES; m++)
				for (int d = -BOUNDARY_SLACK; d <= BOUNDARY_SLACK; d++) {
					GString *msg = g_string_new(NULL);
					size_t at = m * SPOOL_READ_STEP + (size_t)d;
					char *what;

					header_up_to(msg, at, line_lens[l], eols[e]);
					/* The lines after the boundary: a few of each length. */
					for (size_t i = 0; i < 5; i++)
						add_line(msg, line_lens[(l + i) % G_N_ELEMENTS(line_lens)], eols[e]);
					g_string_append(msg, eols[e]);
					size_t header_len = msg->len;
					g_string_append(msg, "body line");
					g_string_append(msg, eols[e]);
					what = g_strdup_printf("line at %zu%+d, lines of %zu, %s", m * SPOOL_READ_STEP, d,
							       line_lens[l], e == 0 ? "CRLF" : "LF");
					check_header_block(msg, header_len, what);
					g_free(what);
					g_string_free(msg, TRUE);
				}
}

/* The empty line that ends the block, at each offset around every multiple. */
static void test_empty_line_across_read_boundary(void)
{
	static const char *eols[] = { "\r\n", "\n" };

	for (size_t e = 0; e < G_N_ELEMENTS(eols); e++)
		for (size_t m = 1; m <= BOUNDARY_MULTIPLES; m++)
			for (int d = -BOUNDARY_SLACK; d <= BOUNDARY_SLACK; d++) {
				GString *msg = g_string_new(NULL);
				char *what;

				header_up_to(msg, m * SPOOL_READ_STEP + (size_t)d, 78, eols[e]);
				g_string_append(msg, eols[e]);
				size_t header_len = msg->len;
				g_string_append(msg, "body line");
				g_string_append(msg, eols[e]);
				g_string_append(msg, eols[e]);
				what = g_strdup_printf("empty line at %zu%+d, %s", m * SPOOL_READ_STEP, d,
						       e == 0 ? "CRLF" : "LF");
				check_header_block(msg, header_len, what);
				g_free(what);
				g_string_free(msg, TRUE);
			}
}

/* An empty message: no bytes at all (the memory spool has no buffer yet). */
static void test_header_block_of_empty_message(void)
{
	for (size_t limit = 0; limit <= 1024; limit += 1024) {
		struct spool *spool = spool_new(g_get_tmp_dir(), limit);
		const char *block = NULL;
		g_autofree char *error = NULL;
		size_t len = 99;
		int complete = 0;

		g_assert_cmpint(spool_finish(spool, &error), ==, 0);
		g_assert_cmpint(spool_header_block(spool, &block, &len, &complete, &error), ==, 0);
		g_assert_nonnull(block);
		g_assert_cmpuint(len, ==, 0);
		g_assert_true(complete);
		spool_free(&spool);
	}
}

/* Empty appends, first of all and later, add nothing (check.c makes them
 * for a message that starts with an empty line). */
static void test_empty_appends(void)
{
	for (size_t limit = 0; limit <= 1024; limit += 1024) {
		struct spool *spool = spool_new(g_get_tmp_dir(), limit);
		g_autofree char *error = NULL;

		g_assert_cmpint(spool_append(spool, "", 0, &error), ==, 0);
		g_assert_cmpint(spool_append(spool, "\r\nbody", 6, &error), ==, 0);
		g_assert_cmpint(spool_append(spool, "", 0, &error), ==, 0);
		g_assert_cmpint(spool_finish(spool, &error), ==, 0);
		g_assert_cmpuint(spool_size(spool), ==, 6);
		check_content(spool, "\r\nbody", 6);
		spool_free(&spool);
	}
}

static void test_bad_dir(void)
{
	struct spool *spool = spool_new("/nonexistent/dir", 10);
	g_autofree char *error = NULL;

	g_assert_cmpint(spool_append(spool, "0123456789", 10, &error), ==, 0);
	g_assert_cmpint(spool_append(spool, "x", 1, &error), ==, -1);
	g_assert_nonnull(error);
	/* The cause is in the error, so a log tells EMFILE from ENOSPC. */
	g_assert_nonnull(strstr(error, "/nonexistent/dir"));
	g_assert_nonnull(strstr(error, g_strerror(ENOENT)));
	spool_free(&spool);
}

/* spool_append_text: every bare LF stored as CRLF, CRLF and lone CR kept,
 * the same whatever the pieces the input comes in. */
static void test_append_text(void)
{
	static const struct {
		const char *in, *out;
		bool crlf_seen;
	} cases[] = {
		{ "", "", false },
		{ "a\r\nb\r\n", "a\r\nb\r\n", true },
		{ "a\nb\n", "a\r\nb\r\n", false },
		{ "\n\n", "\r\n\r\n", false },
		{ "a\r\nb\nc", "a\r\nb\r\nc", true },
		{ "lone\rcr\n", "lone\rcr\r\n", false },
		{ "\r\r\n\n", "\r\r\n\r\n", true },
		{ "no line end", "no line end", false },
	};

	for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
		size_t len = strlen(cases[c].in);
		/* split 0: one piece; split k: pieces of k bytes */
		for (size_t split = 0; split <= len; split++) {
			struct spool *spool = spool_new("/tmp", 1 << 20);
			struct spool_text text = { 0 };
			g_autofree char *error = NULL;
			size_t total = 0, stored;
			size_t step = split == 0 ? MAX(len, 1) : split;

			for (size_t at = 0; at < len; at += step) {
				size_t n = MIN(step, len - at);
				g_assert_cmpint(spool_append_text(spool, cases[c].in + at, n, &text, &stored, &error), ==, 0);
				total += stored;
			}
			g_assert_cmpuint(total, ==, strlen(cases[c].out));
			g_assert_cmpuint(spool_size(spool), ==, strlen(cases[c].out));
			check_content(spool, cases[c].out, strlen(cases[c].out));
			g_assert_true(text.crlf_seen == cases[c].crlf_seen);
			spool_free(&spool);
		}
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/spool/memory-only", test_memory_only);
	g_test_add_func("/spool/spills-to-file", test_spills_to_file);
	g_test_add_func("/spool/header-block", test_header_block);
	g_test_add_func("/spool/header-block-without-body", test_header_block_without_body);
	g_test_add_func("/spool/header-block-too-large", test_header_block_too_large);
	g_test_add_func("/spool/header-line-across-read-boundary", test_header_line_across_read_boundary);
	g_test_add_func("/spool/empty-line-across-read-boundary", test_empty_line_across_read_boundary);
	g_test_add_func("/spool/header-block-of-empty-message", test_header_block_of_empty_message);
	g_test_add_func("/spool/empty-appends", test_empty_appends);
	g_test_add_func("/spool/bad-dir", test_bad_dir);
	g_test_add_func("/spool/append-text", test_append_text);
	return g_test_run();
}
