/*
 * fuzz_authres - the Authentication-Results side of the header code on
 * arbitrary bytes: the authserv-id parser (normalize_authserv_id), the id
 * comparison (authres_id_same: reflexive where not empty, symmetric), and
 * the renderers fed hostile ids, comments and values: what they write is
 * ASCII, every line ends in CRLF and every fold in CRLF TAB, it parses
 * back as exactly one field, and the finder takes our own A-R for ours.
 */
#include "mime/authres.h"
#include "mime/header_block.h"
#include "mime/normalize.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static const char *const known_ids[] = { "mail.example.com", "MAIL.example.com.", "mx.xn--bcher-kva.example", "" };

/* check_layout - ASCII, CRLF line ends, folds followed by a tab, final CRLF */
static void check_layout(const char *field)
{
	size_t len = strlen(field);

	CHECK(len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)field[i];

		CHECK(c < 0x80 && c != 0x7f);
		CHECK(c >= 0x20 || c == '\r' || c == '\n' || c == '\t');
		if (c == '\r')
			CHECK(field[i + 1] == '\n');
		if (c == '\n') {
			CHECK(i > 0 && field[i - 1] == '\r');
			CHECK(i + 1 == len || field[i + 1] == '\t');
		}
	}
}

/* parse_back - the rendered field is one field called name; its edits */
static size_t parse_back(const char *field, const char *name, const char *authserv_id)
{
	struct header_block *block = NULL;
	struct normalize_edit *edits = NULL;
	g_autofree char *error = NULL;
	size_t count = 0;

	CHECK(header_block_parse(field, strlen(field), &block, &error) == 0);
	CHECK(block->count == 1 && block->skipped_lines == 0);
	CHECK(block->body_offset == strlen(field));
	CHECK(header_name_is(&block->headers[0], name));
	normalize_find(block, authserv_id, NULL, 0, &edits, &count);
	g_free(edits);
	header_block_free(&block);
	return count;
}

static void check_parser(const uint8_t *data, size_t size)
{
	bool well_formed = true;
	char *id = normalize_authserv_id((const char *)data, size, &well_formed);

	CHECK(id != NULL || !well_formed);
	if (id != NULL) {
		CHECK(*id != '\0' && strlen(id) <= size);
		CHECK(strchr(id, '\r') == NULL && strchr(id, '\n') == NULL);
		for (size_t i = 0; i < G_N_ELEMENTS(known_ids); i++)
			CHECK(authres_id_same(id, known_ids[i]) == authres_id_same(known_ids[i], id));
	}
	g_free(id);
}

/* is_plain - printable ASCII: the renderer keeps such an id as it is */
static bool is_plain(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static void check_render(const char *id, const char *text, const char *value)
{
	struct authres *ar = authres_new(id);
	struct received_spf rs = { .result = VERDICT_FAIL, .receiver = id, .client_ip = value,
				   .envelope_from = text, .helo = value, .identity = "mailfrom",
				   .mechanism = text };
	char *field;

	authres_add(ar, "spf", VERDICT_FAIL, text, "smtp.mailfrom", value, "smtp.helo", text, NULL);
	authres_add(ar, text, VERDICT_PASS, NULL, value, text, NULL);
	field = authres_render(ar);
	check_layout(field);
	size_t edits = parse_back(field, "Authentication-Results", id);
	/* our own field, read back, is ours whenever the id survives as written */
	if (is_plain(id) && authres_id_same(id, id))
		CHECK(edits == 1);
	g_free(field);
	authres_free(&ar);

	field = received_spf_render(&rs);
	check_layout(field);
	CHECK(parse_back(field, "Received-SPF", id) == 1);
	g_free(field);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = g_strndup((const char *)data, size);
	size_t n = strlen(s);
	char **parts;

	check_parser(data, size);
	/* Reflexive where an ASCII id has more than blanks and dots; symmetric. */
	if (g_str_is_ascii(s) && strspn(s, " \t\r\n\f\v.") < n)
		CHECK(authres_id_same(s, s));
	for (size_t i = 0; i < G_N_ELEMENTS(known_ids); i++)
		CHECK(authres_id_same(s, known_ids[i]) == authres_id_same(known_ids[i], s));
	/* id | comment | value, split at the first two '|' of the C string */
	parts = g_strsplit(s, "|", 3);
	if (n <= 4096)
		check_render(parts[0] != NULL ? parts[0] : "",
			     parts[0] != NULL && parts[1] != NULL ? parts[1] : "x",
			     parts[0] != NULL && parts[1] != NULL && parts[2] != NULL ? parts[2] : "v");
	g_strfreev(parts);
	g_free(s);
	return 0;
}
