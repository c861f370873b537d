/* Normalisation: which Authentication-Results and Received-SPF get renamed. */
#include "mime/header_block.h"
#include "mime/normalize.h"

#include <glib.h>
#include <string.h>

static char *aliases[] = { "mx2.example.com", "Old.Example.COM" };

/* Apply the edits to the block and return the result. */
static char *normalized(const char *in)
{
	struct header_block *block = NULL;
	struct normalize_edit *edits = NULL;
	size_t count = 99;
	const char *error = NULL;
	GString *out = g_string_new(NULL);
	size_t pos = 0, len = strlen(in);

	g_assert_cmpint(header_block_parse(in, len, &block, &error), ==, 0);
	g_assert_cmpint(normalize_find(block, "mail.example.com", aliases, G_N_ELEMENTS(aliases), &edits, &count), ==,
			(int)count);
	for (size_t i = 0; i < count; i++) {
		g_assert_cmpuint(edits[i].offset, >=, pos);
		g_string_append_len(out, in + pos, (gssize)(edits[i].offset - pos));
		g_string_append(out, edits[i].text);
		pos = edits[i].offset;
	}
	g_string_append_len(out, in + pos, (gssize)(len - pos));
	g_free(edits);
	header_block_free(&block);
	return g_string_free(out, FALSE);
}

static const struct {
	const char *name, *in, *out;
} cases[] = {
	{ "ours-top",
	  "Authentication-Results: mail.example.com; spf=pass\r\nFrom: a@b\r\n\r\nbody\r\n",
	  "X-Original-Authentication-Results: mail.example.com; spf=pass\r\nFrom: a@b\r\n\r\nbody\r\n" },
	{ "foreign-kept",
	  "Authentication-Results: mx.google.com; spf=fail\r\nFrom: a@b\r\n\r\n",
	  "Authentication-Results: mx.google.com; spf=fail\r\nFrom: a@b\r\n\r\n" },
	{ "lookalike-kept",
	  "Authentication-Results: mail.example.com.evil.test; spf=pass\r\n\r\n",
	  "Authentication-Results: mail.example.com.evil.test; spf=pass\r\n\r\n" },
	{ "case-and-spacing",
	  "From: a@b\r\nauthentication-results   :MAIL.EXAMPLE.COM;spf=pass\r\n\r\n",
	  "From: a@b\r\nX-Original-authentication-results   :MAIL.EXAMPLE.COM;spf=pass\r\n\r\n" },
	{ "folded-id-on-next-line",
	  "Subject: x\r\nAuthentication-Results:\r\n\t(forged)\r\n  mail.example.com\r\n ; spf=pass\r\n\r\n",
	  "Subject: x\r\nX-Original-Authentication-Results:\r\n\t(forged)\r\n  mail.example.com\r\n ; spf=pass\r\n\r\n" },
	{ "version-and-comment",
	  "Authentication-Results: (nested (comment)) mail.example.com 1; dkim=pass\r\n\r\n",
	  "X-Original-Authentication-Results: (nested (comment)) mail.example.com 1; dkim=pass\r\n\r\n" },
	{ "quoted-id",
	  "Authentication-Results: \"mail.example.com\"; dkim=pass\r\n\r\n",
	  "X-Original-Authentication-Results: \"mail.example.com\"; dkim=pass\r\n\r\n" },
	{ "alias",
	  "Authentication-Results: old.example.com; spf=pass\r\nAuthentication-Results: mx2.example.com; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: old.example.com; spf=pass\r\nX-Original-Authentication-Results: mx2.example.com; spf=pass\r\n\r\n" },
	{ "unreadable-renamed",
	  "Authentication-Results: (only a comment)\r\n\r\n",
	  "X-Original-Authentication-Results: (only a comment)\r\n\r\n" },
	{ "received-spf-any",
	  "Received-SPF: pass (forged)\r\nReceived: from x by mail.example.com\r\nreceived-spf : fail\r\n\r\n",
	  "X-Original-Received-SPF: pass (forged)\r\nReceived: from x by mail.example.com\r\nX-Original-received-spf : fail\r\n\r\n" },
	{ "lf-only",
	  "Authentication-Results: mail.example.com; spf=pass\nX: y\n\n",
	  "X-Original-Authentication-Results: mail.example.com; spf=pass\nX: y\n\n" },
	{ "body-not-touched",
	  "From: a@b\r\n\r\nAuthentication-Results: mail.example.com; spf=pass\r\n",
	  "From: a@b\r\n\r\nAuthentication-Results: mail.example.com; spf=pass\r\n" },
	{ "after-junk-line",
	  "From: a@b\r\nthis line has no colon\r\nAuthentication-Results: mail.example.com; spf=pass\r\n\r\n",
	  "From: a@b\r\nthis line has no colon\r\nX-Original-Authentication-Results: mail.example.com; spf=pass\r\n\r\n" },
	{ "garbled-ours-renamed",
	  "Authentication-Results: mail.example.com/trusted; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: mail.example.com/trusted; spf=pass\r\n\r\n" },
	{ "garbled-no-semicolon-renamed",
	  "Authentication-Results: mail.example.com spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: mail.example.com spf=pass\r\n\r\n" },
	{ "garbled-foreign-renamed",
	  "Authentication-Results: mx.google.com dkim=pass\r\n\r\n",
	  "X-Original-Authentication-Results: mx.google.com dkim=pass\r\n\r\n" },
	{ "unclosed-quote-renamed",
	  "Authentication-Results: \"mail.example.com; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: \"mail.example.com; spf=pass\r\n\r\n" },
	{ "empty-value-renamed",
	  "Authentication-Results:\r\nFrom: a@b\r\n\r\n",
	  "X-Original-Authentication-Results:\r\nFrom: a@b\r\n\r\n" },
	{ "comment-glued-to-id",
	  "Authentication-Results: mail.example.com(x);spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: mail.example.com(x);spf=pass\r\n\r\n" },
	{ "foreign-none-kept",
	  "Authentication-Results: mx.other.example 1; none\r\n\r\n",
	  "Authentication-Results: mx.other.example 1; none\r\n\r\n" },
	{ "foreign-utf8-kept",
	  "Authentication-Results: mx.b\xc3\xbc" "cher.example; spf=pass\r\n\r\n",
	  "Authentication-Results: mx.b\xc3\xbc" "cher.example; spf=pass\r\n\r\n" },
	{ "several-mixed",
	  "Received-SPF: pass\r\nAuthentication-Results: mx.google.com; spf=pass\r\nFrom: a@b\r\n"
	  "Authentication-Results: mail.example.com; dmarc=pass\r\n\r\n",
	  "X-Original-Received-SPF: pass\r\nAuthentication-Results: mx.google.com; spf=pass\r\nFrom: a@b\r\n"
	  "X-Original-Authentication-Results: mail.example.com; dmarc=pass\r\n\r\n" },
	{ "already-renamed-kept",
	  "X-Original-Authentication-Results: mail.example.com; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: mail.example.com; spf=pass\r\n\r\n" },
};

static void test_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *got = normalized(cases[i].in);
		if (strcmp(got, cases[i].out) != 0)
			g_error("%s: got\n%s\nexpected\n%s", cases[i].name, got, cases[i].out);
		g_free(got);
	}
}

static void test_deep_in_a_long_trail(void)
{
	GString *in = g_string_new(NULL), *out;
	for (int i = 0; i < 1000; i++)
		g_string_append_printf(in, "Received: from h%d by relay%d.example.net; Sat, 1 Jan 2026 00:00:00 +0000\r\n", i, i);
	out = g_string_new(in->str);
	g_string_append(in, "Authentication-Results: mail.example.com; dmarc=pass\r\n\r\nbody\r\n");
	g_string_append(out, "X-Original-Authentication-Results: mail.example.com; dmarc=pass\r\n\r\nbody\r\n");
	char *got = normalized(in->str);
	g_assert_cmpstr(got, ==, out->str);
	g_free(got);
	g_string_free(in, TRUE);
	g_string_free(out, TRUE);
}

static void test_authserv_id(void)
{
	bool ok = false;
	char *id = normalize_authserv_id(" (c) mx.example.org 1 ; spf=pass", 32, &ok);
	g_assert_cmpstr(id, ==, "mx.example.org");
	g_assert_true(ok);
	g_free(id);
	id = normalize_authserv_id(" mx.example.org@x; spf=pass", 27, &ok);
	g_assert_cmpstr(id, ==, "mx.example.org");
	g_assert_false(ok);
	g_free(id);
	ok = true;
	g_assert_null(normalize_authserv_id("  ; spf=pass", 12, &ok));
	g_assert_false(ok);
	g_assert_null(normalize_authserv_id("((((", 4, NULL));
}

static void test_no_aliases(void)
{
	const char *in = "Authentication-Results: mail.example.com; spf=pass\r\n"
			 "Authentication-Results: mx2.example.com; spf=pass\r\n\r\n";
	struct header_block *block = NULL;
	struct normalize_edit *edits = NULL;
	size_t count = 0;
	const char *error = NULL;

	g_assert_cmpint(header_block_parse(in, strlen(in), &block, &error), ==, 0);
	g_assert_cmpint(normalize_find(block, "mail.example.com", NULL, 0, &edits, &count), ==, 1);
	g_assert_cmpuint(count, ==, 1);
	g_assert_cmpuint(edits[0].offset, ==, 0);
	g_free(edits);
	header_block_free(&block);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/normalize/table", test_table);
	g_test_add_func("/normalize/deep-in-a-long-trail", test_deep_in_a_long_trail);
	g_test_add_func("/normalize/authserv-id", test_authserv_id);
	g_test_add_func("/normalize/no-aliases", test_no_aliases);
	return g_test_run();
}
