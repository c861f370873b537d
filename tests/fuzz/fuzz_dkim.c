/*
 * Fuzz target: DKIM verification with our body hashes against libopendkim's
 * own body code, on signed messages whose bodies the input edits.
 *
 * Input: byte 0 picks a signed fixture from tests/unit/data/dkim, byte 1
 * the size of the pieces the message is read in; every following pair of
 * bytes is one edit of the body (where, and what: a space, a tab, a CRLF,
 * a bare CR or LF, another byte, a deletion, a CRLF turned into LF), or of
 * the header when byte 1 is odd and the edit's what/8 is a multiple of 4
 * (then every bare LF becomes CRLF, as the DATA reader stores it).
 * Most white-space edits keep relaxed signatures valid, most others break
 * them. Our verifier reading the message in pieces and reading it whole
 * (where a header in the first read goes to libopendkim a field at a
 * time, not through its byte parser) must agree on every signature's
 * result and reason, and, with the header as signed, so must
 * libopendkim's own body code.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "lmtpfilter/dkim.h"

/* The fixtures' t= is 1700000000. */
#define FUZZ_VERIFY_TIME 1700000100u

static const char *const fixtures[] = {
	"rsa_relaxed.eml", "rsa_simple.eml", "ed25519.eml", "two_sigs.eml", "length.eml",
};

static struct dkim_verifier *fast, *library;
static char *keys;          /* the key file, for the whole run */
static GBytes *messages[G_N_ELEMENTS(fixtures)];

struct pieces {
	const unsigned char *data;
	size_t len;
	size_t piece;
};

static ssize_t pieces_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
	struct pieces *p = ctx;

	if (offset >= p->len)
		return 0;
	len = MIN(len, MIN(p->piece, p->len - (size_t)offset));
	memcpy(buf, p->data + offset, len);
	return (ssize_t)len;
}

static void setup(void)
{
	char *dir = g_build_filename(LMTPFILTER_SOURCE_DIR, "tests", "unit", "data", "dkim", NULL);
	struct dkim_verifier_options opts = { .fixed_time = FUZZ_VERIFY_TIME };
	char *error = NULL;

	keys = g_build_filename(dir, "keys.txt", NULL);
	opts.key_file = keys;
	if (dkim_verifier_new(NULL, &opts, &fast, &error) < 0)
		abort();
	opts.library_body = true;
	if (dkim_verifier_new(NULL, &opts, &library, &error) < 0)
		abort();
	for (size_t i = 0; i < G_N_ELEMENTS(fixtures); i++) {
		char *path = g_build_filename(dir, fixtures[i], NULL);
		char *data;
		gsize len;

		if (!g_file_get_contents(path, &data, &len, NULL))
			abort();
		messages[i] = g_bytes_new_take(data, len);
		g_free(path);
	}
	g_free(dir);
}

/* edit - apply one two-byte edit to the body part of msg (after head), or
 * with in_header to the header's fields (before head - 2). */
static void edit(GString *msg, size_t head, uint8_t where, uint8_t what, bool in_header)
{
	/* head is where the fixture's body began: header edits move it */
	size_t start = in_header ? 0 : MIN(head, msg->len);
	size_t end = in_header ? MIN(head - 2, msg->len) : msg->len;
	size_t pos = start + ((end - start) * where) / 256;
	char byte = (char)what;

	switch (what % 8) {
	case 0:
		g_string_insert_c(msg, (gssize)pos, ' ');
		break;
	case 1:
		g_string_insert_c(msg, (gssize)pos, '\t');
		break;
	case 2:
		g_string_insert_len(msg, (gssize)pos, "\r\n", 2);
		break;
	case 3:
		if (pos < msg->len)
			g_string_erase(msg, (gssize)pos, 1);
		break;
	case 4:
		g_string_insert_c(msg, (gssize)pos, '\r');
		break;
	case 5:
		g_string_insert_c(msg, (gssize)pos, '\n');
		break;
	case 6:
		g_string_insert_c(msg, (gssize)pos, byte);
		break;
	default:
		for (size_t i = pos; i + 1 < msg->len; i++) {
			if (msg->str[i] == '\r' && msg->str[i + 1] == '\n') {
				g_string_erase(msg, (gssize)i, 1);
				break;
			}
		}
		break;
	}
}

static void verify(struct dkim_verifier *v, GString *msg, size_t piece,
		   struct dkim_outcome *out)
{
	struct pieces p = { (const unsigned char *)msg->str, msg->len, piece };
	char *error = NULL;

	if (dkim_verify_message(v, pieces_read, &p, msg->len, out, &error) < 0)
		abort();
}

/* stored - msg as the DATA reader stores it: every bare LF a CRLF. Only
 * such messages reach DKIM (libopendkim's byte parser asserts on a bare LF
 * that starts a message). */
static void stored(GString *msg)
{
	for (size_t i = 0; i < msg->len; i++) {
		if (msg->str[i] == '\n' && (i == 0 || msg->str[i - 1] != '\r')) {
			g_string_insert_c(msg, (gssize)i, '\r');
			i++;
		}
	}
}

static void same_results(const struct dkim_outcome *a, const struct dkim_outcome *b)
{
	if (a->count != b->count || a->ignored != b->ignored)
		abort();
	for (size_t i = 0; i < a->count; i++) {
		if (a->sigs[i].result != b->sigs[i].result ||
		    strcmp(a->sigs[i].reason, b->sigs[i].reason) != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_outcome a, b, c;
	bool header_edited = false;
	GString *msg;
	const char *text;
	const char *blank;
	gsize len;
	size_t head, piece;

	if (fast == NULL)
		setup();
	if (size < 2)
		return 0;
	text = g_bytes_get_data(messages[data[0] % G_N_ELEMENTS(fixtures)], &len);
	blank = g_strstr_len(text, (gssize)len, "\r\n\r\n");
	if (blank == NULL)
		abort();
	head = (size_t)(blank - text) + 4;
	piece = 1 + (size_t)data[1] * 37;
	msg = g_string_new_len(text, (gssize)len);
	for (size_t i = 2; i + 1 < size; i += 2) {
		bool in_header = (data[1] & 1) != 0 && (data[i + 1] / 8) % 4 == 0;

		header_edited |= in_header;
		edit(msg, head, data[i], data[i + 1], in_header);
	}
	/* Body edits keep their bare LFs: that is the FIXCRLF pass's job. */
	if (header_edited)
		stored(msg);

	/* The library's verifier reads the message whole: the result must not
	 * depend on where reads end either. */
	verify(fast, msg, piece, &a);
	verify(fast, msg, msg->len, &c);
	same_results(&a, &c);
	if (!header_edited) {
		verify(library, msg, msg->len, &b);
		same_results(&a, &b);
	}
	g_string_free(msg, TRUE);
	return 0;
}
