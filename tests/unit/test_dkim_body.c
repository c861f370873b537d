/*
 * test_dkim_body - DKIM body canonicalisation and body hash
 *
 * The streaming canonicaliser is compared with a plain whole-buffer
 * implementation of RFC 6376 3.4.3 and 3.4.4 written here line by line, on
 * the RFC's own example and on random CRLF bodies cut into random pieces
 * (also between a CR and its LF). Body hashes are checked against known
 * values.
 */
#include <string.h>

#include <glib.h>

#include "lmtpfilter/dkim_body.h"

#define RANDOM_BODIES 3000
#define RANDOM_TOKENS_MAX 200

/* ---- reference: whole body at once, straight from the RFC ---------------- */

static GString *reference_simple(const char *body, size_t len)
{
	size_t end = len;

	/* "ignores all empty lines at the end of the message body" */
	while (end >= 2 && body[end - 2] == '\r' && body[end - 1] == '\n')
		end -= 2;
	/* the last line's CRLF, or the CRLF an empty body becomes */
	return g_string_append(g_string_new_len(body, (gssize)end), "\r\n");
}

static GString *reference_relaxed(const char *body, size_t len)
{
	char *text = g_strndup(body, len);
	char **lines = g_strsplit(text, "\r\n", -1);
	guint n = g_strv_length(lines);
	GString *out = g_string_new(NULL);
	guint last = 0;

	/* the body is empty or ends in CRLF: then the last element is the empty rest */
	if (n > 0) {
		g_assert_cmpstr(lines[n - 1], ==, "");
		n--;
	}
	for (guint i = 0; i < n; i++) {
		GString *line = g_string_new(NULL);
		bool wsp = false;

		/* "reduce all sequences of WSP within a line to a single SP" */
		for (const char *p = lines[i]; *p != '\0'; p++) {
			if (*p == ' ' || *p == '\t') {
				wsp = true;
				continue;
			}
			if (wsp)
				g_string_append_c(line, ' ');
			wsp = false;
			g_string_append_c(line, *p);
		}
		/* "ignore all whitespace at the end of lines" (wsp is dropped) */
		g_free(lines[i]);
		lines[i] = g_string_free(line, FALSE);
		if (lines[i][0] != '\0')
			last = i + 1;
	}
	/* "ignore all empty lines at the end of the message body" */
	for (guint i = 0; i < last; i++)
		g_string_append_printf(out, "%s\r\n", lines[i]);
	g_strfreev(lines);
	g_free(text);
	return out;
}

/* ---- the streaming canonicaliser ------------------------------------------ */

static void sink_to_string(void *ctx, const unsigned char *data, size_t len)
{
	g_string_append_len(ctx, (const char *)data, (gssize)len);
}

/* canonicalise - feed body in pieces ending at the given cut offsets. */
static GString *canonicalise(enum dkim_body_canon canon, const char *body, size_t len,
			     const size_t *cuts, size_t ncuts)
{
	GString *out = g_string_new(NULL);
	struct dkim_body_canonicaliser *c = dkim_body_canonicaliser_new(canon, sink_to_string, out);
	size_t from = 0;

	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : len;

		dkim_body_canonicalise(c, (const unsigned char *)body + from, to - from);
		from = to;
	}
	dkim_body_canonicaliser_finish(c);
	dkim_body_canonicaliser_free(&c);
	return out;
}

static void assert_canon(enum dkim_body_canon canon, const char *body, const char *expect)
{
	GString *got = canonicalise(canon, body, strlen(body), NULL, 0);

	g_assert_cmpstr(got->str, ==, expect);
	g_string_free(got, TRUE);
}

/* RFC 6376 3.4.5 and the edge cases of 3.4.3 / 3.4.4. */
static void test_examples(void)
{
	assert_canon(DKIM_BODY_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n");
	assert_canon(DKIM_BODY_RELAXED, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n");
	assert_canon(DKIM_BODY_SIMPLE, "", "\r\n");
	assert_canon(DKIM_BODY_RELAXED, "", "");
	assert_canon(DKIM_BODY_SIMPLE, "\r\n\r\n", "\r\n");
	assert_canon(DKIM_BODY_RELAXED, "\r\n \t\r\n", "");
	assert_canon(DKIM_BODY_RELAXED, "a\r\n \r\nb\r\n", "a\r\n\r\nb\r\n");
	assert_canon(DKIM_BODY_RELAXED, "\tx\r\n", " x\r\n");
	assert_canon(DKIM_BODY_SIMPLE, "x \r\n \r\n", "x \r\n \r\n");
}

/* A random body of tokens that keep it CRLF-clean, ending in CRLF. */
static GString *random_body(GRand *rand)
{
	static const char *const tokens[] = {
		"a", "bc", " ", "\t", "  ", " \t ", "\r\n", "\r\n", "\r\n\r\n", ".", "\xc3\xa9", "\x01",
		"Lorem ipsum dolor sit amet", "\r\n \r\n",
	};
	GString *body = g_string_new(NULL);
	gint32 n = g_rand_int_range(rand, 0, RANDOM_TOKENS_MAX);

	for (gint32 i = 0; i < n; i++)
		g_string_append(body, tokens[g_rand_int_range(rand, 0, G_N_ELEMENTS(tokens))]);
	if (body->len > 0 && !g_str_has_suffix(body->str, "\r\n"))
		g_string_append(body, "\r\n");
	return body;
}

static void test_random_pieces(void)
{
	GRand *rand = g_rand_new_with_seed(20261128);

	for (int i = 0; i < RANDOM_BODIES; i++) {
		GString *body = random_body(rand);
		size_t cuts[8];
		size_t ncuts = (size_t)g_rand_int_range(rand, 0, G_N_ELEMENTS(cuts) + 1);

		for (size_t k = 0; k < ncuts; k++)
			cuts[k] = (size_t)g_rand_int_range(rand, 0, (gint32)body->len + 1);
		/* cut offsets in order */
		for (size_t a = 0; a < ncuts; a++)
			for (size_t b = a + 1; b < ncuts; b++)
				if (cuts[b] < cuts[a]) {
					size_t t = cuts[a];

					cuts[a] = cuts[b];
					cuts[b] = t;
				}
		for (int canon = DKIM_BODY_SIMPLE; canon <= DKIM_BODY_RELAXED; canon++) {
			GString *expect = canon == DKIM_BODY_SIMPLE
				? reference_simple(body->str, body->len)
				: reference_relaxed(body->str, body->len);
			GString *got = canonicalise(canon, body->str, body->len, cuts, ncuts);

			if (!g_string_equal(expect, got))
				g_error("body %d (%s) differs:\n%s\n---\n%s\n---\n%s", i,
					canon == DKIM_BODY_SIMPLE ? "simple" : "relaxed",
					body->str, expect->str, got->str);
			g_string_free(expect, TRUE);
			g_string_free(got, TRUE);
		}
		g_string_free(body, TRUE);
	}
	g_rand_free(rand);
}

/* Long runs: more held-back line ends than one batch writes at a time. */
static void test_long_runs(void)
{
	GString *body = g_string_new("x\r\n");
	GString *expect, *got;

	for (int i = 0; i < 1000; i++)
		g_string_append(body, "\r\n");
	g_string_append(body, "y\r\n");
	for (int i = 0; i < 1000; i++)
		g_string_append(body, " \r\n");
	for (int canon = DKIM_BODY_SIMPLE; canon <= DKIM_BODY_RELAXED; canon++) {
		expect = canon == DKIM_BODY_SIMPLE ? reference_simple(body->str, body->len)
			: reference_relaxed(body->str, body->len);
		got = canonicalise(canon, body->str, body->len, NULL, 0);
		g_assert_true(g_string_equal(expect, got));
		g_string_free(expect, TRUE);
		g_string_free(got, TRUE);
	}
	g_string_free(body, TRUE);
}

/* Body hashes: the sha256 of the empty relaxed body and of simple's CRLF,
 * and the sha1 of CRLF (RFC 6376 3.4.3/3.4.4 values that signers publish). */
static void test_hashes(void)
{
	struct dkim_body_hash *h;

	h = dkim_body_hash_new(DKIM_BODY_RELAXED, false);
	dkim_body_hash_update(h, (const unsigned char *)"\r\n", 2);
	g_assert_cmpstr(dkim_body_hash_base64(h), ==, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	g_assert_cmpstr(dkim_body_hash_base64(h), ==, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	dkim_body_hash_free(&h);

	h = dkim_body_hash_new(DKIM_BODY_SIMPLE, false);
	g_assert_cmpstr(dkim_body_hash_base64(h), ==, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
	dkim_body_hash_free(&h);

	h = dkim_body_hash_new(DKIM_BODY_SIMPLE, true);
	dkim_body_hash_update(h, (const unsigned char *)"\r\n\r\n", 4);
	g_assert_cmpstr(dkim_body_hash_base64(h), ==, "uoq1oCgLlTqpdDX/iUbLy7J1Wic=");
	dkim_body_hash_free(&h);
	dkim_body_hash_free(&h);
}

/* reference_clean - the whole buffer, byte by byte: every LF after a CR,
 * every CR before a LF, and no CR left waiting at the end. */
static bool reference_clean(const unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
			return false;
		if (buf[i] == '\r' && (i + 1 == len || buf[i + 1] != '\n'))
			return false;
	}
	return true;
}

/* The line-end check on random bytes rich in CR and LF, cut into pieces
 * that fall on and off eight-byte boundaries, against the reference. */
static void test_crlf_clean(void)
{
	static const unsigned char alphabet[] = { 'a', ' ', '\r', '\n', '\r', '\n', 0x80, 0 };
	GRand *rand = g_rand_new_with_seed(1128);
	size_t clean = 0;

	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)g_rand_int_range(rand, 0, 70);
		unsigned char buf[80];
		unsigned char last = 0;
		size_t from = 0;
		bool ok = true;

		for (size_t k = 0; k < len; k++) {
			/* mostly well-formed: CRLF pairs and letters */
			if (g_rand_int_range(rand, 0, 4) != 0 && k + 1 < len) {
				buf[k++] = '\r';
				buf[k] = '\n';
			} else {
				buf[k] = alphabet[g_rand_int_range(rand, 0, sizeof(alphabet))];
			}
		}
		while (from < len && ok) {
			size_t step = (size_t)g_rand_int_range(rand, 1, 20);
			size_t to = MIN(len, from + step);

			ok = dkim_body_crlf_clean(buf + from, to - from, &last);
			from = to;
		}
		if (ok && last == '\r')
			ok = false;     /* the caller's check at the end */
		g_assert_cmpint(ok, ==, reference_clean(buf, len));
		clean += ok;
	}
	g_assert_cmpuint(clean, >, 1000);
	g_assert_cmpuint(clean, <, 19000);
	g_rand_free(rand);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dkim-body/examples", test_examples);
	g_test_add_func("/dkim-body/random-pieces", test_random_pieces);
	g_test_add_func("/dkim-body/long-runs", test_long_runs);
	g_test_add_func("/dkim-body/hashes", test_hashes);
	g_test_add_func("/dkim-body/crlf-clean", test_crlf_clean);
	return g_test_run();
}
