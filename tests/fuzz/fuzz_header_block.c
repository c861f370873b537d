/*
 * fuzz_header_block - header_block_parse on arbitrary bytes, checked
 * against its own contract (fields in order, inside the block, names and
 * values where the header says they are), against a plain search for the
 * empty line that ends the block, and against spool_header_block, which
 * must find the same end in a memory spool and in a file spool where the
 * input starts a few bytes before a 64 KB read boundary.
 */
#include "lmtpfilter/spool.h"
#include "mime/header_block.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_READ_STEP 65536     /* spool_header_block's read piece */
#define FUZZ_PAD_SLACK 8         /* the input starts 0..7 bytes before a boundary */

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* block_end - the offset after the first empty line, or len when there is
 * none (*found_r false): the reference */
static size_t block_end(const uint8_t *d, size_t len, bool *found_r)
{
	size_t pos = 0;

	*found_r = true;
	while (pos < len) {
		const uint8_t *lf = memchr(d + pos, '\n', len - pos);
		size_t end = lf != NULL ? (size_t)(lf - d) + 1 : len;

		if (lf != NULL && (end - pos == 1 || (end - pos == 2 && d[pos] == '\r')))
			return end;
		pos = end;
	}
	*found_r = false;
	return len;
}

static void check_field(const struct raw_header *h, const uint8_t *d, size_t body_offset)
{
	const char *buf = (const char *)d;
	const char *field_end = buf + h->offset + h->length;
	const char *value_end = h->value + h->value_len;

	CHECK(h->offset + h->length <= body_offset && h->length > 0);
	CHECK(h->name == buf + h->offset);
	CHECK(d[h->offset] != ' ' && d[h->offset] != '\t');
	CHECK(memchr(h->name, ':', h->name_len) == NULL);
	CHECK(h->value[-1] == ':' && h->value >= h->name + h->name_len);
	CHECK(value_end <= field_end);
	/* after the value only the field's final line end */
	size_t rest = (size_t)(field_end - value_end);
	CHECK(rest == 0 || (rest == 1 && value_end[0] == '\n') ||
	      (rest == 2 && value_end[0] == '\r' && value_end[1] == '\n'));
	if (h->name_len > 0)
		CHECK(h->name[h->name_len - 1] != ' ' && h->name[h->name_len - 1] != '\t');
	/* a name that is exactly ours also reads as ours */
	if (header_name_is(h, "Authentication-Results"))
		CHECK(header_name_reads_as(h, "Authentication-Results"));
}

static void check_block(const struct header_block *block, const uint8_t *d, size_t len, bool *found_r)
{
	size_t end = 0;

	CHECK(block->body_offset == block_end(d, len, found_r));
	CHECK(block->leading_continuation <= block->body_offset);
	if (block->leading_continuation > 0)
		CHECK(d[0] == ' ' || d[0] == '\t');
	else if (len > 0 && block->body_offset > 0)
		CHECK(d[0] != ' ' && d[0] != '\t');
	for (size_t i = 0; i < block->count; i++) {
		const struct raw_header *h = &block->headers[i];

		CHECK(h->offset >= end);
		CHECK(h->offset >= block->leading_continuation);
		check_field(h, d, block->body_offset);
		end = h->offset + h->length;
		g_free(header_value_unfold(h));
	}
}

/* pad_lines - FUZZ_READ_STEP bytes of 64-byte header lines "XXpp...\r\n" */
static const char *pad_lines(void)
{
	static char *pad;

	if (pad == NULL) {
		pad = g_malloc(FUZZ_READ_STEP);
		for (size_t i = 0; i < FUZZ_READ_STEP; i++)
			pad[i] = i % 64 == 63 ? '\n' : i % 64 == 62 ? '\r' : i % 64 < 2 ? 'X' : 'p';
	}
	return pad;
}

/* check_spool - spool_header_block finds the block's end as well, with
 * pad bytes of header lines before the input and, when the input has no
 * empty line (tail), a read step of header lines and the empty line after
 * it: the block then goes on past the read after the one the input is in. */
static void check_spool(const uint8_t *d, size_t len, size_t body_offset, size_t pad, bool tail,
			size_t limit)
{
	struct spool *spool = spool_new(g_get_tmp_dir(), limit);
	const char *block;
	g_autofree char *error = NULL;
	size_t got, whole = pad / 64 * 64, want = pad + body_offset;
	int complete;

	CHECK(spool != NULL);
	CHECK(spool_append(spool, pad_lines(), whole, &error) == 0);
	if (pad > whole) {
		/* the last pad line shortened, still a whole line */
		CHECK(pad - whole >= 4);
		CHECK(spool_append(spool, pad_lines(), pad - whole - 2, &error) == 0);
		CHECK(spool_append(spool, "\r\n", 2, &error) == 0);
	}
	CHECK(spool_append(spool, d, len, &error) == 0);
	if (tail) {
		/* "X" first: glued to whatever the input ends with, no empty line */
		CHECK(spool_append(spool, "X", 1, &error) == 0);
		CHECK(spool_append(spool, pad_lines(), FUZZ_READ_STEP, &error) == 0);
		CHECK(spool_append(spool, "\r\nbody", 6, &error) == 0);
		want += 1 + FUZZ_READ_STEP + 2;
	}
	CHECK(spool_finish(spool, &error) == 0);
	CHECK(spool_header_block(spool, &block, &got, &complete, &error) == 0);
	CHECK(complete && got == want);
	spool_free(&spool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct header_block *block = NULL;
	g_autofree char *error = NULL;
	bool found;

	CHECK(header_block_parse((const char *)data, size, &block, &error) == 0);
	check_block(block, data, size, &found);
	check_spool(data, size, block->body_offset, 0, false, 1u << 20);
	if (size > 0) {
		/* The input starts 4..11 bytes before a read boundary: its first
		 * line ends close to it, on one side or the other. */
		size_t pad = FUZZ_READ_STEP - 4 - data[0] % FUZZ_PAD_SLACK;
		check_spool(data, size, block->body_offset, pad, !found, 1024);
	}
	header_block_free(&block);
	return 0;
}
