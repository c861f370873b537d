/*
 * test_arc - the ARC field parser, chain structure checks and header
 * canonicalisation against tables; bad input through the whole verifier
 * gives a result and a reason (signatures are judged against dkimpy in
 * tests/integration/test_arc.py).
 */
#include "lmtpfilter/arc.h"
#include "lmtpfilter/arc_fields.h"
#include "lmtpfilter/dkim_body.h"
#include "tests/tools/memory_message.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

/* ---- tag lists ---------------------------------------------------------- */

struct tag_case {
	const char *label;
	const char *input;
	int rc;
	size_t count;
	const char *name;     /* a tag to look up ... */
	const char *value;    /* ... and its trimmed value */
};

static const struct tag_case tag_cases[] = {
	{ "simple", "a=rsa-sha256; d=example.org", 0, 2, "d", "example.org" },
	{ "trailing semicolon", "a=1; b=2;", 0, 2, "b", "2" },
	{ "folded value", "i=1; b=abc\r\n\tdef ;\r\n s=x", 0, 3, "b", "abc\r\n\tdef" },
	{ "spaces around =", " cv = pass ;i=2", 0, 2, "cv", "pass" },
	{ "empty value", "p=; k=rsa", 0, 2, "p", "" },
	{ "empty list", "  ", 0, 0, NULL, NULL },
	{ "duplicate tag", "i=1; i=2", -1, 0, NULL, NULL },
	{ "no equals", "i=1; cv", -1, 0, NULL, NULL },
	{ "bad name", "1a=2", -1, 0, NULL, NULL },
	{ "empty spec", "a=1;;b=2", -1, 0, NULL, NULL },
	{ "underscore name", "x_y1=2", 0, 1, "x_y1", "2" },
};

static void test_tag_list(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(tag_cases); i++) {
		const struct tag_case *c = &tag_cases[i];
		struct arc_tag_list list;
		g_autofree char *error = NULL;
		int rc = arc_tag_list_parse(c->input, strlen(c->input), &list, &error);

		g_test_message("%s", c->label);
		g_assert_cmpint(rc, ==, c->rc);
		if (rc < 0) {
			g_assert_nonnull(error);
			continue;
		}
		g_assert_cmpuint(list.count, ==, c->count);
		if (c->name != NULL) {
			const struct arc_tag *t = arc_tag_find(&list, c->name);

			g_assert_nonnull(t);
			g_assert_cmpuint(t->value_len, ==, strlen(c->value));
			g_assert_true(memcmp(t->value, c->value, t->value_len) == 0);
		}
	}
}

static void test_tag_list_too_many(void)
{
	GString *s = g_string_new(NULL);
	struct arc_tag_list list;
	g_autofree char *error = NULL;

	for (int i = 0; i <= ARC_TAGS_MAX; i++)
		g_string_append_printf(s, "t%d=x;", i);
	g_assert_cmpint(arc_tag_list_parse(s->str, s->len, &list, &error), ==, -1);
	g_assert_cmpstr(error, ==, "too many tags");
	g_string_free(s, TRUE);
}

static void test_b_span(void)
{
	const char *v = "i=1; b=ab\r\n cd ; bh=xyz";
	struct arc_tag_list list;
	g_autofree char *error = NULL;
	const struct arc_tag *b;
	GString *out = g_string_new(NULL);

	g_assert_cmpint(arc_tag_list_parse(v, strlen(v), &list, &error), ==, 0);
	b = arc_tag_find(&list, "b");
	arc_canon_relaxed(out, "ARC-Seal", 8, v, strlen(v), b->span_start, b->span_end, false);
	g_assert_cmpstr(out->str, ==, "arc-seal:i=1; b=; bh=xyz");
	g_string_free(out, TRUE);
}

/* ---- instances ---------------------------------------------------------- */

static void test_instances(void)
{
	static const struct { const char *in; int rc; unsigned i; } cases[] = {
		{ "1", 0, 1 }, { "50", 0, 50 }, { "007", 0, 7 }, { "0", -1, 0 },
		{ "51", -1, 0 }, { "99999", -1, 0 }, { "123456789012", -1, 0 },
		{ "", -1, 0 }, { "1a", -1, 0 }, { "-1", -1, 0 },
	};
	static const struct { const char *in; int rc; unsigned i; } aar[] = {
		{ "i=1; mx.example.net; spf=pass", 0, 1 }, { " I = 12 ;x", 0, 12 },
		{ "mx.example.net; i=1", -1, 0 }, { "i=1 mx", -1, 0 }, { "i=", -1, 0 },
		{ "i=51; mx", -1, 0 }, { "", -1, 0 },
	};

	for (size_t n = 0; n < G_N_ELEMENTS(cases); n++) {
		g_autofree char *error = NULL;
		unsigned i = 0;

		g_test_message("i=%s", cases[n].in);
		g_assert_cmpint(arc_instance_parse(cases[n].in, strlen(cases[n].in), &i, &error), ==,
				cases[n].rc);
		if (cases[n].rc == 0)
			g_assert_cmpuint(i, ==, cases[n].i);
		else
			g_assert_nonnull(error);
	}
	for (size_t n = 0; n < G_N_ELEMENTS(aar); n++) {
		g_autofree char *error = NULL;
		unsigned i = 0;

		g_test_message("aar %s", aar[n].in);
		g_assert_cmpint(arc_aar_instance(aar[n].in, strlen(aar[n].in), &i, &error), ==, aar[n].rc);
		if (aar[n].rc == 0)
			g_assert_cmpuint(i, ==, aar[n].i);
	}
}

/* ---- chain structure ---------------------------------------------------- */

/* arc_set_text - one syntactically complete ARC set (no valid signatures). */
static void arc_set_text(GString *s, unsigned i, const char *cv)
{
	g_string_append_printf(s, "ARC-Seal: i=%u; cv=%s; a=rsa-sha256; d=example.net; s=arc;\r\n"
			       " b=c2lnbmF0dXJl\r\n", i, cv);
	g_string_append_printf(s, "ARC-Message-Signature: i=%u; a=rsa-sha256; c=relaxed/relaxed;\r\n"
			       " d=example.net; s=arc; h=from:subject; bh=aGFzaA==; b=c2ln\r\n", i);
	g_string_append_printf(s, "ARC-Authentication-Results: i=%u; mx.example.net; spf=pass\r\n", i);
}

/* chain_text - sets n..1 (newest on top), then a plain header and body. */
static GString *chain_text(unsigned n)
{
	GString *s = g_string_new(NULL);

	for (unsigned i = n; i >= 1; i--)
		arc_set_text(s, i, i == 1 ? "none" : "pass");
	g_string_append(s, "From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n");
	return s;
}

struct chain_case {
	const char *label;
	unsigned sets;        /* chain_text(sets) ... */
	const char *from;     /* ... with the first `from` replaced by `to` */
	const char *to;
	int rc;
	const char *reason;   /* substring of the reason, rc -1 */
};

static const struct chain_case chain_cases[] = {
	{ "no ARC", 0, NULL, NULL, 0, NULL },
	{ "one set", 1, NULL, NULL, 0, NULL },
	{ "two sets", 2, NULL, NULL, 0, NULL },
	{ "fifty sets", 50, NULL, NULL, 0, NULL },
	{ "missing AAR", 2, "ARC-Authentication-Results: i=1;", "X-Old: i=1;", -1,
	  "i=1 lacks its ARC-Authentication-Results" },
	{ "missing seal", 2, "ARC-Seal: i=2;", "X-Old: i=2;", -1, "i=2 lacks its ARC-Seal" },
	{ "duplicate instance", 2, "ARC-Seal: i=2;", "ARC-Seal: i=1;", -1, "duplicate ARC-Seal i=1" },
	{ "gap", 2, "i=1; mx", "i=3; mx", -1, "lacks" },
	{ "cv=fail newest", 2, "cv=pass", "cv=fail", -1, "i=2 has cv=fail" },
	{ "cv=fail at i=1", 2, "cv=none", "cv=fail", -1, "i=1 has cv=fail" },
	{ "cv=pass at i=1", 1, "cv=none", "cv=pass", -1, "i=1 has cv=pass" },
	{ "cv=none later", 2, "cv=pass", "cv=none", -1, "i=2 has cv=none" },
	{ "unknown cv", 1, "cv=none", "cv=maybe", -1, "unknown cv=" },
	{ "instance 51", 1, "ARC-Seal: i=1;", "ARC-Seal: i=51;", -1, "more than 50" },
	{ "instance 0", 1, "ARC-Seal: i=1;", "ARC-Seal: i=0;", -1, "instance 0" },
	{ "seal lacks i=", 1, "ARC-Seal: i=1;", "ARC-Seal: x=1;", -1, "no i= tag" },
	{ "seal lacks b=", 1, " b=c2lnbmF0dXJl", " z=c2lnbmF0dXJl", -1, "ARC-Seal i=1 lacks b=" },
	{ "seal lacks d=", 1, "cv=none; a=rsa-sha256; d=", "cv=none; a=rsa-sha256; e=", -1,
	  "ARC-Seal i=1 lacks d=" },
	{ "AMS lacks bh=", 1, "bh=aGFzaA==", "zz=aGFzaA==", -1, "lacks bh=" },
	{ "AMS lacks h=", 1, "h=from:subject;", "g=from:subject;", -1, "lacks h=" },
	{ "empty a=", 1, "i=1; a=rsa-sha256; c=", "i=1; a=; c=", -1, "lacks a=" },
	{ "seal with h=", 1, "d=example.net; s=arc;\r\n b=", "d=example.net; s=arc; h=x;\r\n b=", -1,
	  "has h=" },
	{ "AAR without i=", 1, "ARC-Authentication-Results: i=1;", "ARC-Authentication-Results: mx;",
	  -1, "no leading i=" },
	{ "tag syntax", 1, "ARC-Seal: i=1;", "ARC-Seal: i=1; ;", -1, "ARC-Seal: bad tag name" },
	{ "sets spread over the header", 2, "ARC-Seal: i=1;", "Received: x\r\nARC-Seal: i=1;", 0, NULL },
	{ "name case", 1, "ARC-Seal:", "arc-seal:", 0, NULL },
};

static void check_chain(const char *text, size_t len, int want_rc, const char *want_reason,
			size_t *count_r)
{
	struct header_block *block = NULL;
	struct arc_chain *chain = g_new0(struct arc_chain, 1);
	char reason[ARC_REASON_MAX];
	g_autofree char *error = NULL;
	int rc;

	g_assert_cmpint(header_block_parse(text, len, &block, &error), ==, 0);
	rc = arc_chain_collect(block, chain, reason, sizeof(reason));
	g_test_message("reason: %s", reason);
	g_assert_cmpint(rc, ==, want_rc);
	if (want_reason != NULL)
		g_assert_nonnull(strstr(reason, want_reason));
	if (count_r != NULL)
		*count_r = chain->count;
	g_free(chain);
	header_block_free(&block);
}

static void test_chain_structure(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(chain_cases); i++) {
		const struct chain_case *c = &chain_cases[i];
		GString *s = chain_text(c->sets);
		size_t count = 0;

		g_test_message("%s", c->label);
		if (c->from != NULL) {
			char *at = strstr(s->str, c->from);

			g_assert_nonnull(at);
			g_string_erase(s, at - s->str, (gssize)strlen(c->from));
			g_string_insert(s, at - s->str, c->to);
		}
		check_chain(s->str, s->len, c->rc, c->reason, &count);
		if (c->rc == 0)
			g_assert_cmpuint(count, ==, c->sets);
		g_string_free(s, TRUE);
	}
}

static void test_huge_field(void)
{
	GString *s = chain_text(1);
	GString *big = g_string_new("ARC-Authentication-Results: i=1; mx.example.net; x=");

	for (size_t i = 0; i < ARC_FIELD_MAX / 70; i++)
		g_string_append(big, "\r\n aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	g_string_append(big, "\r\n");
	g_string_prepend(s, big->str);
	check_chain(s->str, s->len, -1, "larger than", NULL);
	g_string_free(big, TRUE);
	g_string_free(s, TRUE);
}

/* ---- canonicalisation --------------------------------------------------- */

static void test_canon_relaxed(void)
{
	static const struct { const char *name, *value, *want; } cases[] = {
		{ "Subject", " Hello   World ", "subject:Hello World\r\n" },
		{ "SUBJECT", "\tfolded\r\n\tline  \r\n  end\t", "subject:folded line end\r\n" },
		{ "X", "", "x:\r\n" },
		{ "X", "  \r\n ", "x:\r\n" },
		{ "To", "a@b,\n c@d", "to:a@b, c@d\r\n" },
		{ "DKIM", " a=1;\r\n b=2 ", "dkim:a=1; b=2\r\n" },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		GString *out = g_string_new(NULL);

		arc_canon_relaxed(out, cases[i].name, strlen(cases[i].name), cases[i].value,
				  strlen(cases[i].value), 0, 0, true);
		g_assert_cmpstr(out->str, ==, cases[i].want);
		g_string_free(out, TRUE);
	}
}

/* The value bytes in [skip_start, skip_end) left out, wherever they fall:
 * inside a run of text, over whitespace, up to the end. */
static void test_canon_relaxed_skip(void)
{
	static const struct { const char *value; size_t skip_start, skip_end; const char *want; } cases[] = {
		{ " i=1; b=abc\r\n def; d=x", 8, 17, "x:i=1; b=; d=x" },
		{ "abcdef", 2, 4, "x:abef" },
		{ "a  b  c", 1, 4, "x:a c" },
		{ "a b", 1, 2, "x:ab" },
		{ "abc def", 4, 7, "x:abc" },
		{ "abc def", 0, 4, "x:def" },
		{ "ab", 0, 2, "x:" },
		{ "ab  cd", 5, 5, "x:ab cd" },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		GString *out = g_string_new(NULL);

		arc_canon_relaxed(out, "X", 1, cases[i].value, strlen(cases[i].value), cases[i].skip_start,
				  cases[i].skip_end, false);
		g_assert_cmpstr(out->str, ==, cases[i].want);
		g_string_free(out, TRUE);
	}
}

static void test_canon_simple(void)
{
	const char *field = "Subject :  Hi\n\tthere ";
	GString *out = g_string_new(NULL);

	arc_canon_simple(out, field, strlen(field), 0, 0, true);
	g_assert_cmpstr(out->str, ==, "Subject :  Hi\r\n\tthere \r\n");
	g_string_truncate(out, 0);
	arc_canon_simple(out, field, strlen(field), 11, 13, false);
	g_assert_cmpstr(out->str, ==, "Subject :  \r\n\tthere ");
	g_string_free(out, TRUE);
}

/* ---- the verifier on bad input ------------------------------------------ */

static struct arc_verifier *key_file_verifier(char **path_r)
{
	struct arc_verifier_options opts = { 0 };
	struct arc_verifier *v = NULL;
	char *error = NULL;
	int fd = g_file_open_tmp("arc-keys-XXXXXX", path_r, NULL);

	g_assert_cmpint(fd, >=, 0);
	g_assert_true(g_file_set_contents(*path_r,
		"arc._domainkey.example.net v=DKIM1; k=rsa; p=\n"
		"ed._domainkey.example.net v=DKIM1; k=ed25519; p=AAAA\n", -1, NULL));
	close(fd);
	opts.key_file = *path_r;
	g_assert_cmpint(arc_verifier_new(NULL, &opts, &v, &error), ==, 0);
	return v;
}

static void verify_text(struct arc_verifier *v, const char *text, size_t len,
			enum verdict want, const char *reason)
{
	struct arc_outcome *out = g_new0(struct arc_outcome, 1);
	struct memory_message m = { text, len };
	GString *json = g_string_new(NULL);
	char *error = NULL;

	g_assert_cmpint(arc_verify_message(v, memory_message_read, &m, len, out, &error), ==, 0);
	arc_outcome_json(out, json);
	g_test_message("%s", json->str);
	g_assert_cmpstr(verdict_name(out->result), ==, verdict_name(want));
	if (reason != NULL)
		g_assert_nonnull(strstr(out->reason, reason));
	g_assert_true(g_str_has_prefix(json->str, "{\"result\":\""));
	arc_outcome_clear(out);
	g_free(out);
	g_string_free(json, TRUE);
}

static void test_verify_bad_input(void)
{
	char *path = NULL;
	struct arc_verifier *v = key_file_verifier(&path);
	GString *s = chain_text(2);

	verify_text(v, "", 0, VERDICT_NONE, NULL);
	verify_text(v, "From: a\r\n\r\n", 11, VERDICT_NONE, NULL);
	verify_text(v, s->str, s->len, VERDICT_FAIL, "ARC-Message-Signature i=2: body hash");
	g_string_free(s, TRUE);
	s = chain_text(1);
	g_string_truncate(s, strstr(s->str, "From:") - s->str);   /* no body, no end of header */
	verify_text(v, s->str, s->len, VERDICT_FAIL, "body hash");
	g_string_free(s, TRUE);
	s = chain_text(1);
	*strstr(s->str, "cv=none") = 'X';                         /* "Xv=none" */
	verify_text(v, s->str, s->len, VERDICT_FAIL, "ARC-Seal i=1 lacks cv=");
	*strstr(s->str, "Xv=none") = ';';                         /* "i=1; ;v=none" */
	verify_text(v, s->str, s->len, VERDICT_FAIL, "ARC-Seal: bad tag name");
	g_string_free(s, TRUE);
	s = chain_text(2);
	*strstr(s->str, "a=rsa-sha256") = 'A';                    /* "A=rsa": a= missing */
	verify_text(v, s->str, s->len, VERDICT_FAIL, "lacks a=");
	g_string_free(s, TRUE);
	arc_verifier_free(&v);
	g_assert_null(v);
	g_unlink(path);
	g_free(path);
}

/* chain_with_body_hash - chain_text(n) whose AMSes carry the right bh=. */
static GString *chain_with_body_hash(unsigned n)
{
	struct dkim_body_hash *h = dkim_body_hash_new(DKIM_BODY_RELAXED, false);
	GString *s = chain_text(n);
	char *at;

	dkim_body_hash_update(h, (const unsigned char *)"body\r\n", 6);
	while ((at = strstr(s->str, "bh=aGFzaA==")) != NULL) {
		gssize pos = at - s->str;

		g_string_erase(s, pos, 11);
		g_string_insert(s, pos, "bh=");
		g_string_insert(s, pos + 3, dkim_body_hash_base64(h));
	}
	dkim_body_hash_free(&h);
	return s;
}

/* reused_reason - the chain's reason when verified with known as the
 * body hashes of another verifier (g_free). */
static char *reused_reason(struct arc_verifier *v, const GString *msg, const struct dkim_body_digests *known)
{
	struct arc_outcome *out = g_new0(struct arc_outcome, 1);
	struct memory_message m = { msg->str, msg->len };
	char *error = NULL, *reason;

	g_assert_cmpint(arc_verify_message_reusing(v, memory_message_read, &m, msg->len, known, out, &error), ==, 0);
	g_assert_cmpstr(verdict_name(out->result), ==, "fail");
	reason = g_strdup(out->reason);
	arc_outcome_clear(out);
	g_free(out);
	return reason;
}

/* The body hash DKIM made is taken in place of hashing the body again, but
 * only where it is of the body the AMS signs (the same offset and
 * canonicalisation). The AMS's bh= is "aGFzaA==", no body's hash: taken
 * from known, the body check passes and the chain fails further on. */
static void test_verify_reuses_body_hash(void)
{
	GString *msg = chain_text(1);
	char *keys = NULL, *reason;
	struct arc_verifier *v = key_file_verifier(&keys);
	struct dkim_body_digests known = { 0 };

	known.offset = (uint64_t)(strstr(msg->str, "\r\n\r\n") - msg->str) + 4;
	g_strlcpy(known.sha256[DKIM_BODY_RELAXED], "aGFzaA==", sizeof(known.sha256[0]));
	reason = reused_reason(v, msg, &known);
	g_assert_null(strstr(reason, "body hash"));
	g_free(reason);

	known.offset++;                              /* of another body: not taken */
	reason = reused_reason(v, msg, &known);
	g_assert_nonnull(strstr(reason, "body hash mismatch"));
	g_free(reason);

	known.offset--;                              /* another canonicalisation */
	g_strlcpy(known.sha256[DKIM_BODY_SIMPLE], known.sha256[DKIM_BODY_RELAXED], sizeof(known.sha256[0]));
	known.sha256[DKIM_BODY_RELAXED][0] = '\0';
	reason = reused_reason(v, msg, &known);
	g_assert_nonnull(strstr(reason, "body hash mismatch"));
	g_free(reason);

	reason = reused_reason(v, msg, NULL);
	g_assert_nonnull(strstr(reason, "body hash mismatch"));
	g_free(reason);
	arc_verifier_free(&v);
	g_unlink(keys);
	g_free(keys);
	g_string_free(msg, TRUE);
}

static void test_verify_key_trouble(void)
{
	static const struct { const char *from, *to, *reason; } cases[] = {
		{ NULL, NULL, "ARC-Message-Signature i=2: key revoked" },
		{ "s=arc; h=", "s=nokey; h=", "ARC-Message-Signature i=2: no key" },
		{ "s=arc; h=", "s=a b; h=", "bad s= or d=" },
		{ "a=rsa-sha256; c=", "a=rsa-sha1; c=", "ARC-Message-Signature i=2: unsupported algorithm" },
		{ "a=rsa-sha256; c=relaxed/relaxed;\r\n d=example.net; s=arc;",
		  "a=ed25519-sha256; c=relaxed/relaxed;\r\n d=example.net; s=ed;", "bad ed25519 key" },
		{ "c=relaxed/relaxed", "c=relaxed/odd", "unknown c=" },
		{ "c=relaxed/relaxed", "c=relaxed/relaxed; l=3", "l= not accepted" },
		{ "h=from:subject", "h=from:arc-seal", "h= names ARC-Seal" },
		{ "h=from:subject", "h=date:subject", "h= does not sign From" },
	};
	char *path = NULL;
	struct arc_verifier *v = key_file_verifier(&path);

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		GString *s = chain_with_body_hash(2);

		if (cases[i].from != NULL) {
			char *at = strstr(s->str, cases[i].from);

			g_assert_nonnull(at);
			g_string_erase(s, at - s->str, (gssize)strlen(cases[i].from));
			g_string_insert(s, at - s->str, cases[i].to);
		}
		verify_text(v, s->str, s->len, VERDICT_FAIL, cases[i].reason);
		g_string_free(s, TRUE);
	}
	arc_verifier_free(&v);
	g_unlink(path);
	g_free(path);
}

static void test_newest_aar_and_sealer(void)
{
	char *path = NULL;
	struct arc_verifier *v = key_file_verifier(&path);
	struct arc_outcome *out = g_new0(struct arc_outcome, 1);
	GString *s = chain_text(2);
	struct memory_message m = { s->str, s->len };
	char *error = NULL;

	g_assert_cmpint(arc_verify_message(v, memory_message_read, &m, s->len, out, &error), ==, 0);
	g_assert_cmpuint(out->set_count, ==, 2);
	g_assert_cmpstr(out->sealer_domain, ==, "example.net");
	g_assert_cmpstr(out->newest_aar, ==, " i=2; mx.example.net; spf=pass");
	g_assert_cmpstr(out->sets[1].cv, ==, "pass");
	g_assert_cmpstr(out->sets[0].cv, ==, "none");
	arc_outcome_clear(out);
	g_assert_null(out->newest_aar);
	g_free(out);
	g_string_free(s, TRUE);
	arc_verifier_free(&v);
	g_unlink(path);
	g_free(path);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/arc/tag_list", test_tag_list);
	g_test_add_func("/arc/tag_list_too_many", test_tag_list_too_many);
	g_test_add_func("/arc/b_span", test_b_span);
	g_test_add_func("/arc/instances", test_instances);
	g_test_add_func("/arc/chain_structure", test_chain_structure);
	g_test_add_func("/arc/huge_field", test_huge_field);
	g_test_add_func("/arc/canon_relaxed", test_canon_relaxed);
	g_test_add_func("/arc/canon_relaxed_skip", test_canon_relaxed_skip);
	g_test_add_func("/arc/canon_simple", test_canon_simple);
	g_test_add_func("/arc/verify_bad_input", test_verify_bad_input);
	g_test_add_func("/arc/verify_key_trouble", test_verify_key_trouble);
	g_test_add_func("/arc/verify_reuses_body_hash", test_verify_reuses_body_hash);
	g_test_add_func("/arc/newest_aar_and_sealer", test_newest_aar_and_sealer);
	return g_test_run();
}
