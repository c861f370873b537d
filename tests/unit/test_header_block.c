/*
 * test_header_block - field splitting with exact offsets, on odd input
 * too, checked against a table and against GMime's own offsets.
 */
#include "mime/header_block.h"

#include <glib.h>
#include <gmime/gmime.h>
#include <string.h>

#define MAX_FIELDS 8

struct want_field {
	const char *name;
	const char *value;   /* raw, as written */
	size_t offset;
	size_t length;
	size_t name_len;     /* 0: strlen (for names and values with NUL bytes) */
	size_t value_len;
};

struct block_case {
	const char *label;
	const char *input;
	size_t input_len;    /* 0: strlen */
	size_t body_offset;
	size_t skipped;
	struct want_field fields[MAX_FIELDS];
};

#define F(name, value, offset, length) { name, value, offset, length, 0, 0 }

static const struct block_case block_cases[] = {
	{ "crlf", "From: a@b\r\nSubject: hi\r\n\r\nbody\r\n", 0, 26, 0,
	  { F("From", " a@b", 0, 11), F("Subject", " hi", 11, 13) } },
	{ "lf", "From: a@b\nSubject: hi\n\nbody\n", 0, 23, 0,
	  { F("From", " a@b", 0, 10), F("Subject", " hi", 10, 12) } },
	{ "mixed line ends", "A: 1\r\nB: 2\nC: 3\r\n\nx", 0, 18, 0,
	  { F("A", " 1", 0, 6), F("B", " 2", 6, 5), F("C", " 3", 11, 6) } },
	{ "space and tab before colon", "Authentication-Results : x\nReceived-SPF\t:y\n\n", 0, 44, 0,
	  { F("Authentication-Results", " x", 0, 27), F("Received-SPF", "y", 27, 16) } },
	{ "no space after colon, empty value", "A:b\nB:\nC:\r\n\r\n", 0, 13, 0,
	  { F("A", "b", 0, 4), F("B", "", 4, 3), F("C", "", 7, 4) } },
	{ "folded over several lines", "X: one\r\n two\r\n\tthree\r\nY: 4\r\n\r\n", 0, 30, 0,
	  { F("X", " one\r\n two\r\n\tthree", 0, 22), F("Y", " 4", 22, 6) } },
	{ "8-bit bytes", "X-8bit: caf\xc3\xa9\n\xff\xfe: z\n\n", 0, 21, 0,
	  { F("X-8bit", " caf\xc3\xa9", 0, 14), F("\xff\xfe", " z", 14, 6) } },
	{ "NUL bytes kept", "X-Nul: a\0b\nY\0: c\n\n", 18, 18, 0,
	  { { "X-Nul", " a\0b", 0, 11, 0, 4 }, { "Y\0", " c", 11, 6, 2, 0 } } },
	{ "line without colon skipped, block goes on", "A: 1\nnot a field\n cont of junk\nAuthentication-Results: f\n\n", 0, 58, 1,
	  { F("A", " 1", 0, 5), F("Authentication-Results", " f", 31, 26) } },
	{ "continuation before any field", " lead\nA: 1\n\n", 0, 12, 1,
	  { F("A", " 1", 6, 5) } },
	{ "no empty line", "A: 1\nB: 2", 0, 9, 0,
	  { F("A", " 1", 0, 5), F("B", " 2", 5, 4) } },
	{ "folded last field without line end", "A: 1\n 2", 0, 7, 0,
	  { F("A", " 1\n 2", 0, 7) } },
	{ "empty input", "", 0, 0, 0, { F(NULL, NULL, 0, 0) } },
	{ "empty line first", "\r\nA: body\r\n", 0, 2, 0, { F(NULL, NULL, 0, 0) } },
	{ "lone CR line is junk, not the end", "A: 1\n\r\r\nB: 2\n\n", 0, 14, 1,
	  { F("A", " 1", 0, 5), F("B", " 2", 8, 5) } },
	{ "mbox From_ line", "From someone Mon Jan  1 00:00:00 2024\nA: 1\n\n", 0, 44, 0,
	  { F("From someone Mon Jan  1 00", "00:00 2024", 0, 38), F("A", " 1", 38, 5) } },
	{ "colon only in a continuation", "junk\n x: y\nA: 1\n\n", 0, 17, 1,
	  { F("A", " 1", 11, 5) } },
};

static void check_case(const struct block_case *c)
{
	size_t len = c->input_len != 0 ? c->input_len : strlen(c->input);
	struct header_block *block = NULL;
	g_autofree char *error = NULL;
	size_t n = 0;

	g_test_message("case: %s", c->label);
	g_assert_cmpint(header_block_parse(c->input, len, &block, &error), ==, 0);
	while (n < MAX_FIELDS && c->fields[n].name != NULL)
		n++;
	if (block->count != n)
		g_error("%s: %zu fields, want %zu", c->label, block->count, n);
	for (size_t i = 0; i < n; i++) {
		const struct raw_header *h = &block->headers[i];
		const struct want_field *w = &c->fields[i];
		size_t wname = w->name_len != 0 ? w->name_len : strlen(w->name);
		size_t wvalue = w->value_len != 0 ? w->value_len : strlen(w->value);

		g_assert_cmpuint(h->name_len, ==, wname);
		g_assert_true(memcmp(h->name, w->name, wname) == 0);
		g_assert_cmpuint(h->value_len, ==, wvalue);
		g_assert_true(memcmp(h->value, w->value, wvalue) == 0);
		g_assert_cmpuint(h->offset, ==, w->offset);
		g_assert_cmpuint(h->length, ==, w->length);
	}
	g_assert_cmpuint(block->body_offset, ==, c->body_offset);
	g_assert_cmpuint(block->skipped_lines, ==, c->skipped);
	header_block_free(&block);
	g_assert_null(block);
}

static void test_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(block_cases); i++)
		check_case(&block_cases[i]);
}

/* the fields tile the block: consecutive, except for skipped junk lines */
static void test_fields_tile_block(void)
{
	const char *in = "Received: from a\r\n\tby b; x\r\nSubject: s\r\nTo: t\r\n\r\nbody";
	struct header_block *block = NULL;
	g_autofree char *error = NULL;
	size_t pos = 0;

	header_block_parse(in, strlen(in), &block, &error);
	for (size_t i = 0; i < block->count; i++) {
		g_assert_cmpuint(block->headers[i].offset, ==, pos);
		pos += block->headers[i].length;
	}
	g_assert_cmpuint(pos + 2, ==, block->body_offset);
	header_block_free(&block);
}

static void test_name_is(void)
{
	const char *in = "authentication-RESULTS \t: x\nAuthentication-Results-X: y\nReceived: z\n\n";
	struct header_block *block = NULL;
	g_autofree char *error = NULL;

	header_block_parse(in, strlen(in), &block, &error);
	g_assert_cmpuint(block->count, ==, 3);
	g_assert_true(header_name_is(&block->headers[0], "Authentication-Results"));
	g_assert_false(header_name_is(&block->headers[1], "Authentication-Results"));
	g_assert_false(header_name_is(&block->headers[2], "Received-SPF"));
	g_assert_true(header_name_is(&block->headers[2], "RECEIVED"));
	g_assert_false(header_name_is(&block->headers[2], "Receive"));
	header_block_free(&block);
}

/* header_name_reads_as: names as Dovecot reads them (it drops blanks
 * before the colon and stops the name at a NUL), and a little more */
static void test_name_reads_as(void)
{
	static const struct {
		const char *field;
		size_t len;
		bool reads_as;
	} cases[] = {
#define C(s, r) { s, sizeof(s) - 1, r }
		C("Authentication-Results: x\n", true),
		C("AUTHENTICATION-results \t: x\n", true),
		C("Authentication-Results\0: x\n", true),
		C("Authentication-Results\0junk: x\n", true),
		C("Authentication-Results\0 : x\n", true),
		C("Authentication-Results \0: x\n", true),
		C("Authentication-Results\x01\x7f: x\n", true),
		C("Authentication-Results\r: x\n", true),
		C("\x1f" "Authentication-Results: x\n", true),
		C("Authentication\0-Results: x\n", false),
		C("\0Authentication-Results: x\n", false),
		C("Authentication-\rResults: x\n", false),
		C("Authentication-Results\xff: x\n", false),
		C("Authentication -Results: x\n", false),
		C("Authentication-Result: x\n", false),
		C("Authentication-Results-X: x\n", false),
		C(": x\n", false),
#undef C
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct header_block *block = NULL;
		g_autofree char *error = NULL;

		header_block_parse(cases[i].field, cases[i].len, &block, &error);
		g_assert_cmpuint(block->count, ==, 1);
		if (header_name_reads_as(&block->headers[0], "Authentication-Results") != cases[i].reads_as)
			g_error("case %zu: reads_as should be %d", i, cases[i].reads_as);
		header_block_free(&block);
	}
}

/* leading_continuation: the bytes of the white-space lines that open the block */
static void test_leading_continuation(void)
{
	static const struct {
		const char *in;
		size_t leading;
	} cases[] = {
		{ " a\r\nFrom: x\r\n\r\n", 4 },
		{ "\tAuthentication-Results: y\n  more\n\tand more\nFrom: x\n\n", 44 },
		{ " \r\n\r\nbody", 3 },
		{ " no line end", 12 },
		{ "From: x\r\n cont\r\n\r\n", 0 },
		{ "junk\r\n cont\r\nFrom: x\r\n\r\n", 0 },
		{ "\r\n body", 0 },
		{ "", 0 },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct header_block *block = NULL;
		g_autofree char *error = NULL;

		header_block_parse(cases[i].in, strlen(cases[i].in), &block, &error);
		if (block->leading_continuation != cases[i].leading)
			g_error("case %zu: leading_continuation %zu, want %zu", i, block->leading_continuation,
				cases[i].leading);
		header_block_free(&block);
	}
}

static void test_unfold(void)
{
	const char *in = "X: a\r\n b\n\tc\r\n  d\0e\n\n";
	struct header_block *block = NULL;
	g_autofree char *error = NULL;
	char *v;

	header_block_parse(in, 20, &block, &error);
	g_assert_cmpuint(block->count, ==, 1);
	v = header_value_unfold(&block->headers[0]);
	g_assert_cmpstr(v, ==, " a b\tc  d e");
	g_free(v);
	header_block_free(&block);
}

/* a forged field is found at any position, also after thousands of fields */
static void test_many_fields(void)
{
	GString *s = g_string_new("");
	struct header_block *block = NULL;
	g_autofree char *error = NULL;
	size_t forged = 0;
	gint64 t0, t1, t2, t3;

	for (int i = 0; i < 10000; i++) {
		if (i == 5000)
			g_string_append(s, "Authentication-Results: ours;\n\tspf=pass\n");
		g_string_append_printf(s, "Received: from h%d by x; Mon, 1 Jan 2024\n", i);
	}
	g_string_append(s, "AUTHENTICATION-RESULTS : ours; dkim=pass\n\nbody\n");
	t0 = g_get_monotonic_time();
	header_block_parse(s->str, s->len, &block, &error);
	t1 = g_get_monotonic_time();
	g_assert_cmpuint(block->count, ==, 10002);
	for (size_t i = 0; i < block->count; i++) {
		if (header_name_is(&block->headers[i], "Authentication-Results")) {
			g_assert_true(memcmp(s->str + block->headers[i].offset, block->headers[i].name, 1) == 0);
			forged++;
		}
	}
	g_assert_cmpuint(forged, ==, 2);
	g_assert_cmpuint(block->body_offset, ==, s->len - 5);
	header_block_free(&block);

	/* twice the fields: report the ratio (linear means about 2) */
	g_string_prepend(s, s->str);
	t2 = g_get_monotonic_time();
	header_block_parse(s->str, s->len, &block, &error);
	t3 = g_get_monotonic_time();
	g_test_message("10,002 fields: %" G_GINT64_FORMAT " us; 20,004 fields: %" G_GINT64_FORMAT " us",
		       t1 - t0, t3 - t2);
	header_block_free(&block);
	g_string_free(s, TRUE);
}

/* On input GMime handles exactly, our offsets and raw names equal its own. */
static void test_agrees_with_gmime(void)
{
	static const char *inputs[] = {
		"From: a@b\r\nSubject : hi\r\nX-8bit: caf\xc3\xa9\r\nX-Fold: one\r\n two\r\n\tthree\r\n\r\nbody\r\n",
		"Received: x\nFrom: a@b\nSubject:hi\nX-Tab\t: v\nX-Empty:\n\nbody\n",
		"A: 1\nnot a field\nB: 2\n\nbody\n",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(inputs); i++) {
		GMimeStream *stream = g_mime_stream_mem_new_with_buffer(inputs[i], strlen(inputs[i]));
		GMimeParser *parser = g_mime_parser_new_with_stream(stream);
		GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
		GMimeHeaderList *list = g_mime_object_get_header_list(GMIME_OBJECT(msg));
		struct header_block *block = NULL;
		g_autofree char *error = NULL;

		header_block_parse(inputs[i], strlen(inputs[i]), &block, &error);
		g_assert_cmpint(g_mime_header_list_get_count(list), ==, (int)block->count);
		/* GMime's headers_end is where the empty line starts */
		gint64 end = g_mime_parser_get_headers_end(parser);
		size_t empty_line = inputs[i][end] == '\r' ? 2 : 1;
		g_assert_cmpint(end + (gint64)empty_line, ==, (gint64)block->body_offset);
		for (size_t j = 0; j < block->count; j++) {
			GMimeHeader *h = g_mime_header_list_get_header_at(list, (int)j);
			const char *raw_value = g_mime_header_get_raw_value(h);
			const struct raw_header *r = &block->headers[j];
			size_t line_end = r->offset + r->length - (size_t)(r->value - inputs[i]) - r->value_len;

			g_assert_cmpint(g_mime_header_get_offset(h), ==, (gint64)r->offset);
			g_assert_true(strncmp(raw_value, r->value, r->value_len) == 0);
			g_assert_cmpuint(strlen(raw_value), ==, r->value_len + line_end);
		}
		header_block_free(&block);
		g_object_unref(msg);
		g_object_unref(parser);
		g_object_unref(stream);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_mime_init();
	g_test_add_func("/header_block/table", test_table);
	g_test_add_func("/header_block/fields_tile_block", test_fields_tile_block);
	g_test_add_func("/header_block/name_is", test_name_is);
	g_test_add_func("/header_block/name_reads_as", test_name_reads_as);
	g_test_add_func("/header_block/leading_continuation", test_leading_continuation);
	g_test_add_func("/header_block/unfold", test_unfold);
	g_test_add_func("/header_block/many_fields", test_many_fields);
	g_test_add_func("/header_block/agrees_with_gmime", test_agrees_with_gmime);
	return g_test_run();
}
