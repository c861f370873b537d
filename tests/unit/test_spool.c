/* Spool: bodies move from memory to a file at the limit, read back exactly. */
#include "lmtpfilter/spool.h"

#include <glib.h>
#include <string.h>

static void fill(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (seed + i * 7) % 26);
}

static void check_content(struct spool *spool, const char *expect, size_t len)
{
	char *got = g_malloc(len + 1);
	const char *error = NULL;
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
	const char *error = NULL;
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
	const char *error = NULL;
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
	const char *error = NULL, *block;
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
	const char *error = NULL, *block;
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
	const char *error = NULL, *block;
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

static void test_bad_dir(void)
{
	struct spool *spool = spool_new("/nonexistent/dir", 10);
	const char *error = NULL;

	g_assert_cmpint(spool_append(spool, "0123456789", 10, &error), ==, 0);
	g_assert_cmpint(spool_append(spool, "x", 1, &error), ==, -1);
	g_assert_nonnull(error);
	spool_free(&spool);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/spool/memory-only", test_memory_only);
	g_test_add_func("/spool/spills-to-file", test_spills_to_file);
	g_test_add_func("/spool/header-block", test_header_block);
	g_test_add_func("/spool/header-block-without-body", test_header_block_without_body);
	g_test_add_func("/spool/header-block-too-large", test_header_block_too_large);
	g_test_add_func("/spool/bad-dir", test_bad_dir);
	return g_test_run();
}
