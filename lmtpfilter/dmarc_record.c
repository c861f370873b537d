/*
 * dmarc_record - one DMARC Policy Record, parsed by the RFC 9989 grammar
 *
 * The record is a tag-list (RFC 9989 §4.7, after RFC 6376 §3.2): tags
 * separated by ';' with optional blanks, "v=DMARC1" first. What is kept:
 * - v= must be the first tag, its value exactly "DMARC1" (case-sensitive,
 *   §4.8); otherwise the text is not a DMARC record at all.
 * - p=, sp=, np= keep an "invalid" mark when the value is not a
 *   dmarc-request, since §4.10.1 gives such a record its own treatment.
 * - every other tag whose value breaks its rule, every unknown tag (rf=,
 *   ri= and pct= are gone from RFC 9989, §A.6) and every repeated tag is
 *   dropped and counted; the tag keeps its default (§4.8). Of a repeated
 *   tag the first occurrence is the one kept.
 * - pct= is still read (0..100) so that it can be reported; it is never
 *   applied.
 * Tag names and keyword values compare case-insensitively (ABNF strings);
 * blanks around the record are tolerated, as every published parser does.
 *
 * Limits: DMARC_RECORD_URIS_MAX rua= URIs. Work is linear in the length.
 */
#include "lmtpfilter/dmarc_record.h"

#include <glib.h>
#include <string.h>

/* Longest obsolete "!size" suffix worth recognising ("!" digits unit). */
#define DMARC_RECORD_SIZE_SUFFIX_MAX 24

struct span {
	const char *p;
	size_t n;
};

enum dmarc_tag {
	TAG_P, TAG_SP, TAG_NP, TAG_ADKIM, TAG_ASPF, TAG_T, TAG_PSD,
	TAG_RUA, TAG_RUF, TAG_FO, TAG_PCT, TAG_COUNT,
};

static const char *const dmarc_tag_names[TAG_COUNT] = {
	[TAG_P] = "p", [TAG_SP] = "sp", [TAG_NP] = "np", [TAG_ADKIM] = "adkim",
	[TAG_ASPF] = "aspf", [TAG_T] = "t", [TAG_PSD] = "psd", [TAG_RUA] = "rua",
	[TAG_RUF] = "ruf", [TAG_FO] = "fo", [TAG_PCT] = "pct",
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* span_trim - without leading and trailing blanks. */
static struct span span_trim(struct span s)
{
	while (s.n > 0 && is_wsp(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && is_wsp(s.p[s.n - 1]))
		s.n--;
	return s;
}

/* span_is - S equals LIT, ignoring ASCII case. */
static bool span_is(struct span s, const char *lit)
{
	return strlen(lit) == s.n && g_ascii_strncasecmp(s.p, lit, s.n) == 0;
}

/* dmarc_tag_split - dmarc-tag = 1*ALPHA equals 1*dmarc-value (§4.8) on a
 * trimmed segment. */
static bool dmarc_tag_split(struct span seg, struct span *name_r, struct span *value_r)
{
	size_t i = 0;

	while (i < seg.n && g_ascii_isalpha(seg.p[i]))
		i++;
	if (i == 0)
		return false;
	*name_r = (struct span){ seg.p, i };
	while (i < seg.n && is_wsp(seg.p[i]))
		i++;
	if (i >= seg.n || seg.p[i] != '=')
		return false;
	*value_r = span_trim((struct span){ seg.p + i + 1, seg.n - i - 1 });
	if (value_r->n == 0)
		return false;
	for (size_t k = 0; k < value_r->n; k++) {
		unsigned char c = (unsigned char)value_r->p[k];

		if (c < 0x20 || c > 0x7e || c == ';')
			return false;
	}
	return true;
}

/* dmarc_request_parse - dmarc-request, or DMARC_REQUEST_INVALID. */
static enum dmarc_request dmarc_request_parse(struct span v)
{
	if (span_is(v, "none"))
		return DMARC_REQUEST_NONE;
	if (span_is(v, "quarantine"))
		return DMARC_REQUEST_QUARANTINE;
	if (span_is(v, "reject"))
		return DMARC_REQUEST_REJECT;
	return DMARC_REQUEST_INVALID;
}

/* dmarc_size_suffix_len - length of a trailing obs-dmarc-report-size
 * ("!" 1*DIGIT [k/m/g/t]) of URI, or 0. */
static size_t dmarc_size_suffix_len(struct span uri)
{
	const char *bang = memchr(uri.p, '!', uri.n);
	size_t n, digits = 0;

	if (bang == NULL)
		return 0;
	n = uri.n - (size_t)(bang - uri.p);
	if (n > DMARC_RECORD_SIZE_SUFFIX_MAX)
		return 0;
	for (size_t i = 1; i < n; i++) {
		char c = g_ascii_tolower(bang[i]);

		if (g_ascii_isdigit(c))
			digits++;
		else if (i != n - 1 || digits == 0 || strchr("kmgt", c) == NULL)
			return 0;
	}
	return digits > 0 ? n : 0;
}

/* dmarc_uri_valid - scheme ":" rest, RFC 3986 characters only, with ','
 * and '!' encoded (§4.8). */
static bool dmarc_uri_valid(struct span uri)
{
	size_t i = 0;

	if (uri.n < 3 || !g_ascii_isalpha(uri.p[0]))
		return false;
	while (i < uri.n && (g_ascii_isalnum(uri.p[i]) || strchr("+-.", uri.p[i]) != NULL))
		i++;
	if (i >= uri.n - 1 || uri.p[i] != ':')
		return false;
	for (; i < uri.n; i++) {
		unsigned char c = (unsigned char)uri.p[i];

		if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|},!", c) != NULL)
			return false;
	}
	return true;
}

/* dmarc_rua_parse - dmarc-urilist; keeps the valid URIs, returns false
 * when none is. */
static bool dmarc_rua_parse(struct span v, struct dmarc_record *r)
{
	GPtrArray *uris = g_ptr_array_new();
	const char *end = v.p + v.n, *p = v.p;

	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma != NULL ? comma : end;
		struct span uri = span_trim((struct span){ p, (size_t)(stop - p) });

		uri.n -= dmarc_size_suffix_len(uri);
		if (dmarc_uri_valid(uri) && uris->len < DMARC_RECORD_URIS_MAX)
			g_ptr_array_add(uris, g_strndup(uri.p, uri.n));
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	r->rua_count = uris->len;
	g_ptr_array_add(uris, NULL);
	r->rua = (char **)g_ptr_array_free(uris, FALSE);
	return r->rua_count > 0;
}

/* dmarc_pct_parse - 1*3DIGIT in 0..100, or -1. */
static int dmarc_pct_parse(struct span v)
{
	int pct = 0;

	if (v.n == 0 || v.n > 3)
		return -1;
	for (size_t i = 0; i < v.n; i++) {
		if (!g_ascii_isdigit(v.p[i]))
			return -1;
		pct = pct * 10 + (v.p[i] - '0');
	}
	return pct <= DMARC_RECORD_PCT_MAX ? pct : -1;
}

/* dmarc_flag_parse - one of the letters in CHOICES (lower case); its
 * index, or -1. */
static int dmarc_flag_parse(struct span v, const char *choices)
{
	const char *hit;

	if (v.n != 1 || v.p[0] == '\0')
		return -1;
	hit = strchr(choices, g_ascii_tolower(v.p[0]));
	return hit != NULL ? (int)(hit - choices) : -1;
}

/* dmarc_tag_apply - store one known tag; false if its value is malformed. */
static bool dmarc_tag_apply(enum dmarc_tag tag, struct span v, struct dmarc_record *r)
{
	int i;

	switch (tag) {
	case TAG_P: r->p = dmarc_request_parse(v); return r->p != DMARC_REQUEST_INVALID;
	case TAG_SP: r->sp = dmarc_request_parse(v); return r->sp != DMARC_REQUEST_INVALID;
	case TAG_NP: r->np = dmarc_request_parse(v); return r->np != DMARC_REQUEST_INVALID;
	case TAG_ADKIM:
		if ((i = dmarc_flag_parse(v, "rs")) >= 0)
			r->adkim = i == 1 ? DMARC_ALIGN_STRICT : DMARC_ALIGN_RELAXED;
		return i >= 0;
	case TAG_ASPF:
		if ((i = dmarc_flag_parse(v, "rs")) >= 0)
			r->aspf = i == 1 ? DMARC_ALIGN_STRICT : DMARC_ALIGN_RELAXED;
		return i >= 0;
	case TAG_T:
		if ((i = dmarc_flag_parse(v, "yn")) >= 0)
			r->testing = i == 0;
		return i >= 0;
	case TAG_PSD:
		if ((i = dmarc_flag_parse(v, "uyn")) >= 0)
			r->psd = (enum dmarc_psd)i;
		return i >= 0;
	case TAG_RUA: return dmarc_rua_parse(v, r);
	case TAG_PCT: r->pct = dmarc_pct_parse(v); return r->pct >= 0;
	case TAG_RUF: case TAG_FO: return true;        /* failure reports: not ours */
	case TAG_COUNT: break;
	}
	return false;
}

/* dmarc_tag_lookup - the known tag named NAME, or TAG_COUNT. */
static enum dmarc_tag dmarc_tag_lookup(struct span name)
{
	for (int t = 0; t < TAG_COUNT; t++)
		if (span_is(name, dmarc_tag_names[t]))
			return (enum dmarc_tag)t;
	return TAG_COUNT;
}

/* dmarc_segment - handle one ';'-separated segment after v=. */
static void dmarc_segment(struct span seg, unsigned *seen, struct dmarc_record *r)
{
	struct span name, value;
	enum dmarc_tag tag;

	seg = span_trim(seg);
	if (seg.n == 0)
		return;                 /* an empty segment ("p=none;;") carries nothing */
	if (!dmarc_tag_split(seg, &name, &value) ||
	    (tag = dmarc_tag_lookup(name)) == TAG_COUNT || (*seen & (1u << tag)) != 0) {
		r->ignored_tags++;
		return;
	}
	*seen |= 1u << tag;
	if (!dmarc_tag_apply(tag, value, r))
		r->ignored_tags++;
}

/* dmarc_version_ok - the first segment is dmarc-version. */
static bool dmarc_version_ok(struct span seg)
{
	struct span name, value;

	seg = span_trim(seg);
	return dmarc_tag_split(seg, &name, &value) && span_is(name, "v") &&
	       value.n == 6 && memcmp(value.p, "DMARC1", 6) == 0;
}

int dmarc_record_parse(const char *text, size_t len, struct dmarc_record *record_r)
{
	const char *end, *p, *semi;
	unsigned seen = 0;

	memset(record_r, 0, sizeof(*record_r));
	if (text == NULL)
		return -1;
	end = text + len;
	semi = memchr(text, ';', len);
	if (!dmarc_version_ok((struct span){ text, (size_t)((semi != NULL ? semi : end) - text) }))
		return -1;
	record_r->pct = -1;
	for (p = semi; p != NULL && p < end; p = semi) {
		p++;
		semi = memchr(p, ';', (size_t)(end - p));
		dmarc_segment((struct span){ p, (size_t)((semi != NULL ? semi : end) - p) },
			      &seen, record_r);
	}
	if (record_r->rua == NULL)
		record_r->rua = g_new0(char *, 1);
	record_r->raw = g_strndup(text, len);
	return 0;
}

void dmarc_record_clear(struct dmarc_record *record)
{
	if (record == NULL)
		return;
	g_strfreev(record->rua);
	g_free(record->raw);
	memset(record, 0, sizeof(*record));
}

void dmarc_record_copy(const struct dmarc_record *src, struct dmarc_record *dst_r)
{
	*dst_r = *src;
	dst_r->rua = g_strdupv(src->rua);
	dst_r->raw = g_strdup(src->raw);
}

const char *dmarc_request_name(enum dmarc_request request)
{
	switch (request) {
	case DMARC_REQUEST_NONE: return "none";
	case DMARC_REQUEST_QUARANTINE: return "quarantine";
	case DMARC_REQUEST_REJECT: return "reject";
	case DMARC_REQUEST_INVALID: return "invalid";
	case DMARC_REQUEST_ABSENT: break;
	}
	return "";
}
