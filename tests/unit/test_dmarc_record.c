/*
 * test_dmarc_record - the RFC 9989 record grammar, one table row per rule
 *
 * Each row is a record text and what must come out: whether it is a DMARC
 * record at all, p/sp/np, adkim/aspf, t, psd, pct, the rua URIs kept and
 * how many tags were dropped.
 */
#include <glib.h>
#include <string.h>

#include "lmtpfilter/dmarc_record.h"

#define N DMARC_REQUEST_NONE
#define Q DMARC_REQUEST_QUARANTINE
#define R DMARC_REQUEST_REJECT
#define X DMARC_REQUEST_INVALID
#define A DMARC_REQUEST_ABSENT
#define STRICT DMARC_ALIGN_STRICT
#define RELAXED DMARC_ALIGN_RELAXED

struct record_case {
	const char *text;
	bool is_record;
	enum dmarc_request p, sp, np;
	enum dmarc_alignment adkim, aspf;
	bool testing;
	enum dmarc_psd psd;
	int pct;
	const char *rua;                /* kept URIs joined by " ", "" for none */
	unsigned ignored;
};

static const struct record_case cases[] = {
	/* v= first, exactly DMARC1 (§4.7 "v") */
	{ "v=DMARC1; p=reject", true, R, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 0 },
	{ "v=DMARC1", true, A, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 0 },
	{ "v=DMARC1;", true, A, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 0 },
	{ "  v = DMARC1 ;p=none ", true, N, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 0 },
	{ "V=DMARC1; p=none", true, N, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 0 },
	{ .text = "v=dmarc1; p=reject", .is_record = false },
	{ .text = "v=DMARC2; p=reject", .is_record = false },
	{ .text = "v=DMARC1x; p=reject", .is_record = false },
	{ .text = "p=reject; v=DMARC1", .is_record = false },
	{ .text = "v=spf1 -all", .is_record = false },
	{ .text = "", .is_record = false },
	{ .text = "v=", .is_record = false },
	{ .text = ";v=DMARC1", .is_record = false },
	/* the RFC 9989 tags */
	{ "v=DMARC1; p=quarantine; sp=reject; np=none; adkim=s; aspf=s; t=y; psd=y",
	  true, Q, R, N, STRICT, STRICT, true, DMARC_PSD_YES, -1, "", 0 },
	{ "v=DMARC1; p=Reject; SP=None; NP=QUARANTINE; t=N; psd=N", true, R, N, Q,
	  RELAXED, RELAXED, false, DMARC_PSD_NO, -1, "", 0 },
	{ "v=DMARC1; psd=u", true, A, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 0 },
	/* bad values: p/sp/np marked invalid, the others dropped (§4.8) */
	{ "v=DMARC1; p=bogus; sp=; np=rejected", true, X, A, X, RELAXED, RELAXED, false,
	  DMARC_PSD_UNKNOWN, -1, "", 3 },
	{ "v=DMARC1; p=none; adkim=x; aspf=strict; t=yes; psd=maybe", true, N, A, A,
	  RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 4 },
	/* unknown and removed tags ignored (§4.7) */
	{ "v=DMARC1; p=reject; rf=afrf; ri=86400; future=1; x-y=2", true, R, A, A,
	  RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 4 },
	{ "v=DMARC1; fo=1; ruf=mailto:f@example.com; p=none", true, N, A, A,
	  RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 0 },
	/* syntax errors in the rest never lose the record */
	{ "v=DMARC1; =reject; p reject; p=reject", true, R, A, A, RELAXED, RELAXED, false,
	  DMARC_PSD_UNKNOWN, -1, "", 2 },
	{ "v=DMARC1;; p=none;;", true, N, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 0 },
	{ "v=DMARC1; p=\x01reject", true, A, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 1 },
	/* a repeated tag: the first is kept */
	{ "v=DMARC1; p=reject; p=none", true, R, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 1 },
	/* pct: read for reports only */
	{ "v=DMARC1; p=reject; pct=0", true, R, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, 0, "", 0 },
	{ "v=DMARC1; p=reject; pct=100", true, R, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, 100, "", 0 },
	{ "v=DMARC1; p=reject; pct=150", true, R, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 1 },
	{ "v=DMARC1; p=reject; pct=-1", true, R, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "", 1 },
	/* rua: valid URIs kept, the obsolete !size dropped (§4.8) */
	{ "v=DMARC1; p=none; rua=mailto:a@example.com, mailto:b@example.net!10m",
	  true, N, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1,
	  "mailto:a@example.com mailto:b@example.net", 0 },
	{ "v=DMARC1; p=none; rua=not a uri,mailto:ok@example.com,:x,mailto:",
	  true, N, A, A, RELAXED, RELAXED, false, DMARC_PSD_UNKNOWN, -1, "mailto:ok@example.com", 0 },
	{ "v=DMARC1; p=none; rua=bogus", true, N, A, A, RELAXED, RELAXED, false,
	  DMARC_PSD_UNKNOWN, -1, "", 1 },
	{ "v=DMARC1; p=none; rua=https://r.example/x!", true, N, A, A, RELAXED, RELAXED, false,
	  DMARC_PSD_UNKNOWN, -1, "", 1 },
};

static char *rua_joined(const struct dmarc_record *r)
{
	g_assert_nonnull(r->rua);
	g_assert_cmpuint(g_strv_length(r->rua), ==, r->rua_count);
	return g_strjoinv(" ", r->rua);
}

static void test_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const struct record_case *c = &cases[i];
		struct dmarc_record r;
		int rc = dmarc_record_parse(c->text, strlen(c->text), &r);
		g_autofree char *rua = NULL;

		g_test_message("case %zu: %s", i, c->text);
		g_assert_cmpint(rc, ==, c->is_record ? 0 : -1);
		if (!c->is_record) {
			g_assert_null(r.raw);
			g_assert_null(r.rua);
			continue;
		}
		g_assert_cmpint(r.p, ==, c->p);
		g_assert_cmpint(r.sp, ==, c->sp);
		g_assert_cmpint(r.np, ==, c->np);
		g_assert_cmpint(r.adkim, ==, c->adkim);
		g_assert_cmpint(r.aspf, ==, c->aspf);
		g_assert_cmpint(r.testing, ==, c->testing);
		g_assert_cmpint(r.psd, ==, c->psd);
		g_assert_cmpint(r.pct, ==, c->pct);
		rua = rua_joined(&r);
		g_assert_cmpstr(rua, ==, c->rua);
		g_assert_cmpuint(r.ignored_tags, ==, c->ignored);
		g_assert_cmpstr(r.raw, ==, c->text);
		dmarc_record_clear(&r);
		g_assert_null(r.raw);
	}
}

/* Not NUL-terminated, and a NUL inside: only LEN bytes are read. */
static void test_length_bounded(void)
{
	static const char text[] = "v=DMARC1; p=reject; sp=none";
	struct dmarc_record r;

	g_assert_cmpint(dmarc_record_parse(text, strlen("v=DMARC1; p=reject"), &r), ==, 0);
	g_assert_cmpint(r.p, ==, DMARC_REQUEST_REJECT);
	g_assert_cmpint(r.sp, ==, DMARC_REQUEST_ABSENT);
	dmarc_record_clear(&r);
	/* a NUL is outside dmarc-value: that tag is dropped, the next kept */
	g_assert_cmpint(dmarc_record_parse("v=DMARC1; p=none\0; sp=reject", 28, &r), ==, 0);
	g_assert_cmpint(r.p, ==, DMARC_REQUEST_ABSENT);
	g_assert_cmpint(r.sp, ==, DMARC_REQUEST_REJECT);
	g_assert_cmpuint(r.ignored_tags, ==, 1);
	dmarc_record_clear(&r);
	g_assert_cmpint(dmarc_record_parse(NULL, 0, &r), ==, -1);
}

/* More rua= URIs than DMARC_RECORD_URIS_MAX: the list is cut. */
static void test_rua_bound(void)
{
	GString *s = g_string_new("v=DMARC1; p=none; rua=");
	struct dmarc_record r, copy;

	for (int i = 0; i < DMARC_RECORD_URIS_MAX * 2; i++)
		g_string_append_printf(s, "%smailto:r%d@example.com", i ? "," : "", i);
	g_assert_cmpint(dmarc_record_parse(s->str, s->len, &r), ==, 0);
	g_assert_cmpuint(r.rua_count, ==, DMARC_RECORD_URIS_MAX);
	dmarc_record_copy(&r, &copy);
	dmarc_record_clear(&r);
	g_assert_cmpstr(copy.rua[0], ==, "mailto:r0@example.com");
	dmarc_record_clear(&copy);
	g_string_free(s, TRUE);
}

static void test_names(void)
{
	g_assert_cmpstr(dmarc_request_name(DMARC_REQUEST_REJECT), ==, "reject");
	g_assert_cmpstr(dmarc_request_name(DMARC_REQUEST_QUARANTINE), ==, "quarantine");
	g_assert_cmpstr(dmarc_request_name(DMARC_REQUEST_NONE), ==, "none");
	g_assert_cmpstr(dmarc_request_name(DMARC_REQUEST_ABSENT), ==, "");
	g_assert_cmpstr(dmarc_request_name(DMARC_REQUEST_INVALID), ==, "invalid");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dmarc_record/table", test_table);
	g_test_add_func("/dmarc_record/length-bounded", test_length_bounded);
	g_test_add_func("/dmarc_record/rua-bound", test_rua_bound);
	g_test_add_func("/dmarc_record/names", test_names);
	return g_test_run();
}
