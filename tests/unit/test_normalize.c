/* Normalisation: which Authentication-Results and Received-SPF get renamed. */
#include "mime/header_block.h"
#include "mime/normalize.h"

#include <glib.h>
#include <string.h>

static char *aliases[] = { "mx2.example.com", "Old.Example.COM" };

/* Apply the edits to the block (len bytes; 0: strlen) and return the
 * result, *out_len_r bytes. */
static char *normalized_len(const char *in, size_t len, size_t *out_len_r);

static char *normalized(const char *in)
{
	size_t out_len;

	return normalized_len(in, 0, &out_len);
}

static char *normalized_len(const char *in, size_t in_len, size_t *out_len_r)
{
	struct header_block *block = NULL;
	struct normalize_edit *edits = NULL;
	size_t count = 99;
	g_autofree char *error = NULL;
	GString *out = g_string_new(NULL);
	size_t pos = 0, len = in_len != 0 ? in_len : strlen(in);

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
	*out_len_r = out->len;
	return g_string_free(out, FALSE);
}

static const struct {
	const char *name, *in, *out;
} cases[] = {
	{ "ours-top",
	  "Authentication-Results: mail.example.com; spf=pass\r\nFrom: a@b\r\n\r\nbody\r\n",
	  "X-Original-Authentication-Results: mail.example.com; spf=pass\r\nFrom: a@b\r\n\r\nbody\r\n" },
	{ "disposition-renamed",
	  "X-Disposition-Quarantine: spf-fail (forged)\r\nx-disposition-quarantine : dmarc-reject\r\nFrom: a@b\r\n\r\n",
	  "X-Original-X-Disposition-Quarantine: spf-fail (forged)\r\nX-Original-x-disposition-quarantine : dmarc-reject\r\nFrom: a@b\r\n\r\n" },
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
	/* RFC 8601 2.5: the id compares case-insensitively; a trailing dot
	 * names the same host; CFWS and a version may surround it. */
	{ "trailing-dot",
	  "Authentication-Results: mail.example.com.; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: mail.example.com.; spf=pass\r\n\r\n" },
	{ "trailing-dots-odd-case",
	  "Authentication-Results: MAIL.Example.COM.. ; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: MAIL.Example.COM.. ; spf=pass\r\n\r\n" },
	{ "comment-trailing-dot-version",
	  "Authentication-Results: (ok) (really (ok)) mail.example.com. 1 (v); spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: (ok) (really (ok)) mail.example.com. 1 (v); spf=pass\r\n\r\n" },
	{ "quoted-trailing-dot",
	  "Authentication-Results: \"Mail.Example.Com.\"; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: \"Mail.Example.Com.\"; spf=pass\r\n\r\n" },
	{ "quoted-with-blanks-and-escapes",
	  "Authentication-Results: \" mail\\.example.com \"; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: \" mail\\.example.com \"; spf=pass\r\n\r\n" },
	{ "alias-trailing-dot",
	  "Authentication-Results: MX2.example.com.; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: MX2.example.com.; spf=pass\r\n\r\n" },
	{ "encoded-word-id-renamed",
	  /* Sieve decodes RFC 2047 before matching: it reads mail.example.com. */
	  "Authentication-Results: =?utf-8?q?mail.example.com?=; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: =?utf-8?q?mail.example.com?=; spf=pass\r\n\r\n" },
	{ "shorter-lookalike-kept",
	  "Authentication-Results: mail.example.co; spf=pass\r\nAuthentication-Results: ail.example.com; spf=pass\r\n\r\n",
	  "Authentication-Results: mail.example.co; spf=pass\r\nAuthentication-Results: ail.example.com; spf=pass\r\n\r\n" },
	{ "x-disposition-quarantine",
	  "X-Disposition-Quarantine: dmarc-reject (forged)\r\nx-disposition-quarantine : spf-fail\r\n"
	  "X-Disposition-Quarantine-Note: kept\r\n\r\n",
	  "X-Original-X-Disposition-Quarantine: dmarc-reject (forged)\r\nX-Original-x-disposition-quarantine : spf-fail\r\n"
	  "X-Disposition-Quarantine-Note: kept\r\n\r\n" },
	/* The first line begins with white space: it would continue the
	 * Received-SPF we put above it, so it gets a name of its own. */
	{ "leading-continuation",
	  " spf=pass\r\nFrom: a@b\r\n\r\n",
	  "X-Original-Continuation: spf=pass\r\nFrom: a@b\r\n\r\n" },
	{ "leading-continuation-several-lines-then-forged",
	  "\tAuthentication-Results: mail.example.com; spf=pass\r\n  more\r\n"
	  "Authentication-Results: mail.example.com; spf=pass\r\n\r\n",
	  "X-Original-Continuation:\tAuthentication-Results: mail.example.com; spf=pass\r\n  more\r\n"
	  "X-Original-Authentication-Results: mail.example.com; spf=pass\r\n\r\n" },
	{ "leading-blank-line-only",
	  " \r\nFrom: a@b\r\n\r\n",
	  "X-Original-Continuation: \r\nFrom: a@b\r\n\r\n" },
	{ "leading-continuation-without-line-end",
	  " x",
	  "X-Original-Continuation: x" },
	{ "continuation-after-junk-not-leading",
	  "junk\r\n spf=pass\r\nFrom: a@b\r\n\r\n",
	  "junk\r\n spf=pass\r\nFrom: a@b\r\n\r\n" },
	{ "already-renamed-kept",
	  "X-Original-Authentication-Results: mail.example.com; spf=pass\r\n\r\n",
	  "X-Original-Authentication-Results: mail.example.com; spf=pass\r\n\r\n" },
};

static void test_table(void)
{
	size_t failed = 0;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *got = normalized(cases[i].in);
		if (strcmp(got, cases[i].out) != 0) {
			g_printerr("%s: got\n%s\nexpected\n%s\n", cases[i].name, got, cases[i].out);
			failed++;
		}
		g_free(got);
	}
	g_assert_cmpuint(failed, ==, 0);
}

/* Field names with bytes Dovecot drops when it reads them (probed with
 * Dovecot 2.3.19 + Pigeonhole: `exists "Authentication-Results"` is true
 * for each "ours" name below, false for each "kept" one). */
static const struct {
	const char *name;
	size_t len;
	bool renamed;  /* whatever the id: the name is no A-R name by RFC 5322 */
} odd_names[] = {
#define N(s, r) { s, sizeof(s) - 1, r }
	N("Authentication-Results\0", true),
	N("Authentication-Results\0junk", true),
	N("Authentication-Results\0 ", true),
	N("authentication-RESULTS\0\0", true),
	/* Dovecot reads these as other names; renamed because a reader a
	 * little more lenient than Dovecot might not. */
	N("Authentication-Results \0", true),
	N("Authentication-Results\x01", true),
	N("Authentication-Results\r", true),
	N("\x01" "Authentication-Results", true),
	/* Other names for every reader. */
	N("Authentication\0-Results", false),
	N("\0Authentication-Results", false),
	N("Authentication-\rResults", false),
	N("Authentication-Results\xff", false),
	N("Authentication-Results\xc2\xa0", false),
	N("Authentication -Results", false),
	N("Authentication-Re\xc5\xbfults", false),
#undef N
};

/* check_odd_name - name: value, as a field among others, renamed or not;
 * counts a failure in *failed */
static void check_odd_name(size_t *failed, const char *name, size_t name_len, const char *value, bool renamed)
{
	GString *in = g_string_new("From: a@b\r\n"), *want;
	size_t got_len;
	char *got;

	g_string_append_len(in, name, (gssize)name_len);
	g_string_append_printf(in, ":%s\r\nSubject: x\r\n\r\nbody\r\n", value);
	want = g_string_new_len(in->str, (gssize)in->len);
	if (renamed)
		g_string_insert(want, strlen("From: a@b\r\n"), "X-Original-");
	got = normalized_len(in->str, in->len, &got_len);
	if (got_len != want->len || memcmp(got, want->str, got_len) != 0) {
		GString *shown = g_string_new(NULL);

		for (size_t i = 0; i < name_len; i++)
			if (g_ascii_isprint(name[i]))
				g_string_append_c(shown, name[i]);
			else
				g_string_append_printf(shown, "\\x%02x", (unsigned char)name[i]);
		g_printerr("name \"%s\", value%s: %s\n", shown->str, value, renamed ? "not renamed" : "renamed");
		g_string_free(shown, TRUE);
		(*failed)++;
	}
	g_free(got);
	g_string_free(in, TRUE);
	g_string_free(want, TRUE);
}

static void test_odd_names(void)
{
	static const char *const others[] = { "Received-SPF", "X-Disposition-Quarantine" };
	size_t failed = 0;

	for (size_t i = 0; i < G_N_ELEMENTS(odd_names); i++) {
		/* Any id: a name that only reads as A-R is garbled. */
		check_odd_name(&failed, odd_names[i].name, odd_names[i].len, " mail.example.com; spf=pass", odd_names[i].renamed);
		check_odd_name(&failed, odd_names[i].name, odd_names[i].len, " mx.google.com; spf=fail", odd_names[i].renamed);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(others); i++) {
		GString *s = g_string_new(others[i]);

		g_string_append_len(s, "\0x", 2);
		check_odd_name(&failed, s->str, s->len, " pass", true);
		g_string_truncate(s, strlen(others[i]));
		g_string_append(s, "\t \x7f");
		check_odd_name(&failed, s->str, s->len, " pass", true);
		g_string_prepend_len(s, "\0", 1);
		check_odd_name(&failed, s->str, s->len, " pass", false);
		g_string_free(s, TRUE);
	}
	/* Blanks before the colon: a plain A-R name, so the id decides. */
	check_odd_name(&failed, "Authentication-Results \t ", 25, " mail.example.com; spf=pass", true);
	check_odd_name(&failed, "Authentication-Results \t ", 25, " mx.google.com; spf=fail", false);
	check_odd_name(&failed, "Authentication-Results", 22, " mx.google.com; spf=fail", false);
	g_assert_cmpuint(failed, ==, 0);
}

/* A quoted id with a NUL byte: no valid A-R, renamed (it was kept as "") */
static void test_nul_in_quoted_id(void)
{
	static const char in[] = "Authentication-Results: \"\0mail.example.com\"; spf=pass\r\n\r\n";
	static const char want[] = "X-Original-Authentication-Results: \"\0mail.example.com\"; spf=pass\r\n\r\n";
	size_t len;
	char *got = normalized_len(in, sizeof(in) - 1, &len);

	g_assert_cmpuint(len, ==, sizeof(want) - 1);
	g_assert_true(memcmp(got, want, len) == 0);
	g_free(got);
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
	/* A NUL in a quoted id: garbled, and the id is read whole. */
	ok = true;
	id = normalize_authserv_id("\"\0mail.example.com\"; spf=pass", 30, &ok);
	g_assert_cmpstr(id, ==, "mail.example.com");
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
	g_autofree char *error = NULL;

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
	g_test_add_func("/normalize/odd-names", test_odd_names);
	g_test_add_func("/normalize/nul-in-quoted-id", test_nul_in_quoted_id);
	g_test_add_func("/normalize/deep-in-a-long-trail", test_deep_in_a_long_trail);
	g_test_add_func("/normalize/authserv-id", test_authserv_id);
	g_test_add_func("/normalize/no-aliases", test_no_aliases);
	return g_test_run();
}
