/*
 * arc_fields - the ARC header fields as data: tag lists, instances, the
 * chain's structure, relaxed header canonicalisation (see arc_fields.h)
 *
 * Owns nothing: the tag lists point into the caller's header block.
 * The header canonicalisation is written here because libopendkim, the DKIM
 * library in use, keeps its canonicalisation internal (no public function
 * canonicalises one field) and DKIM's relaxed rules are a few lines.
 * Limits: ARC_FIELD_MAX bytes per field, ARC_TAGS_MAX tags per field,
 * ARC_SETS_MAX sets; anything beyond is a chain failure with a reason.
 */
#include "lmtpfilter/arc_fields.h"

#include <stdio.h>
#include <string.h>

/* Digits accepted in i= before the value is too big anyway. */
#define ARC_INSTANCE_DIGITS_MAX 5

static bool arc_is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool arc_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool arc_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t arc_skip_wsp(const char *s, size_t len, size_t pos)
{
	while (pos < len && arc_is_wsp(s[pos]))
		pos++;
	return pos;
}

/* arc_tag_name_end - end of the tag name at pos (ALPHA *(ALNUM / "_")), or pos. */
static size_t arc_tag_name_end(const char *s, size_t len, size_t pos)
{
	if (pos >= len || !arc_is_alpha(s[pos]))
		return pos;
	pos++;
	while (pos < len && (arc_is_alpha(s[pos]) || arc_is_digit(s[pos]) || s[pos] == '_'))
		pos++;
	return pos;
}

/* arc_tag_add - store one parsed tag; -1 on a duplicate or too many. */
static int arc_tag_add(struct arc_tag_list *list, const struct arc_tag *tag, char **error_r)
{
	for (size_t i = 0; i < list->count; i++) {
		if (list->tags[i].name_len == tag->name_len &&
		    memcmp(list->tags[i].name, tag->name, tag->name_len) == 0) {
			*error_r = g_strdup("duplicate tag");
			return -1;
		}
	}
	if (list->count >= ARC_TAGS_MAX) {
		*error_r = g_strdup("too many tags");
		return -1;
	}
	list->tags[list->count++] = *tag;
	return 0;
}

int arc_tag_list_parse(const char *value, size_t len, struct arc_tag_list *list_r,
		       char **error_r)
{
	size_t pos = 0;

	list_r->count = 0;
	for (;;) {
		struct arc_tag tag;
		size_t end, vstart, vend;

		pos = arc_skip_wsp(value, len, pos);
		if (pos >= len)
			return 0;
		end = arc_tag_name_end(value, len, pos);
		if (end == pos) {
			*error_r = g_strdup("bad tag name");
			return -1;
		}
		tag.name = value + pos;
		tag.name_len = end - pos;
		pos = arc_skip_wsp(value, len, end);
		if (pos >= len || value[pos] != '=') {
			*error_r = g_strdup("tag without '='");
			return -1;
		}
		tag.span_start = ++pos;
		while (pos < len && value[pos] != ';')
			pos++;
		tag.span_end = pos;
		vstart = arc_skip_wsp(value, tag.span_end, tag.span_start);
		vend = tag.span_end;
		while (vend > vstart && arc_is_wsp(value[vend - 1]))
			vend--;
		tag.value = value + vstart;
		tag.value_len = vend - vstart;
		if (arc_tag_add(list_r, &tag, error_r) < 0)
			return -1;
		if (pos < len)
			pos++;  /* the ';' */
	}
}

const struct arc_tag *arc_tag_find(const struct arc_tag_list *list, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < list->count; i++) {
		if (list->tags[i].name_len == n && memcmp(list->tags[i].name, name, n) == 0)
			return &list->tags[i];
	}
	return NULL;
}

bool arc_tag_is(const struct arc_tag *tag, const char *s)
{
	return tag != NULL && strlen(s) == tag->value_len &&
	       g_ascii_strncasecmp(tag->value, s, tag->value_len) == 0;
}

char *arc_tag_compact(const struct arc_tag *tag)
{
	char *out = g_malloc(tag->value_len + 1);
	size_t n = 0;

	for (size_t i = 0; i < tag->value_len; i++) {
		if (!arc_is_wsp(tag->value[i]))
			out[n++] = tag->value[i];
	}
	out[n] = '\0';
	return out;
}

void arc_tag_copy(const struct arc_tag *tag, char *buf, size_t size)
{
	size_t n = 0;

	if (size == 0)
		return;
	for (size_t i = 0; tag != NULL && i < tag->value_len && n + 1 < size; i++)
		buf[n++] = arc_is_wsp(tag->value[i]) || tag->value[i] == '\0' ? ' ' : tag->value[i];
	buf[n] = '\0';
}

int arc_instance_parse(const char *s, size_t len, unsigned *i_r, char **error_r)
{
	unsigned v = 0;

	if (len == 0 || len > ARC_INSTANCE_DIGITS_MAX) {
		*error_r = g_strdup(len == 0 ? "empty instance" : "instance out of range");
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (!arc_is_digit(s[i])) {
			*error_r = g_strdup("instance not a number");
			return -1;
		}
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > ARC_SETS_MAX) {
		*error_r = g_strdup(v == 0 ? "instance 0" : "instance above 50 (more than 50 ARC sets)");
		return -1;
	}
	*i_r = v;
	return 0;
}

int arc_aar_instance(const char *value, size_t len, unsigned *i_r, char **error_r)
{
	size_t pos = arc_skip_wsp(value, len, 0), start;

	if (pos >= len || (value[pos] != 'i' && value[pos] != 'I')) {
		*error_r = g_strdup("no leading i=");
		return -1;
	}
	pos = arc_skip_wsp(value, len, pos + 1);
	if (pos >= len || value[pos] != '=') {
		*error_r = g_strdup("no leading i=");
		return -1;
	}
	pos = arc_skip_wsp(value, len, pos + 1);
	start = pos;
	while (pos < len && arc_is_digit(value[pos]))
		pos++;
	if (arc_instance_parse(value + start, pos - start, i_r, error_r) < 0)
		return -1;
	pos = arc_skip_wsp(value, len, pos);
	if (pos >= len || value[pos] != ';') {
		*error_r = g_strdup("no ';' after i=");
		return -1;
	}
	return 0;
}

int arc_field_kind_of(const struct raw_header *h)
{
	if (header_name_is(h, "ARC-Authentication-Results"))
		return ARC_FIELD_AAR;
	if (header_name_is(h, "ARC-Message-Signature"))
		return ARC_FIELD_AMS;
	if (header_name_is(h, "ARC-Seal"))
		return ARC_FIELD_AS;
	return -1;
}

static const char *const arc_field_names[ARC_FIELD_KINDS] = {
	"ARC-Authentication-Results", "ARC-Message-Signature", "ARC-Seal",
};

/* arc_field_instance - the instance of one ARC field; AMS and AS tags into *tags_r. */
static int arc_field_instance(const struct raw_header *h, int kind, struct arc_tag_list *tags_r,
			      unsigned *i_r, char **error_r)
{
	const struct arc_tag *i;

	if (kind == ARC_FIELD_AAR)
		return arc_aar_instance(h->value, h->value_len, i_r, error_r);
	if (arc_tag_list_parse(h->value, h->value_len, tags_r, error_r) < 0)
		return -1;
	i = arc_tag_find(tags_r, "i");
	if (i == NULL) {
		*error_r = g_strdup("no i= tag");
		return -1;
	}
	return arc_instance_parse(i->value, i->value_len, i_r, error_r);
}

/* arc_chain_add - file one ARC field under its instance. */
static int arc_chain_add(struct arc_chain *chain, const struct raw_header *h, int kind,
			 char *reason, size_t reason_size)
{
	struct arc_tag_list tags;
	struct arc_chain_set *set;
	char *error = NULL;
	unsigned i = 0;

	if (h->value_len > ARC_FIELD_MAX) {
		snprintf(reason, reason_size, "%s larger than %u bytes", arc_field_names[kind],
			 ARC_FIELD_MAX);
		return -1;
	}
	tags.count = 0;
	if (arc_field_instance(h, kind, &tags, &i, &error) < 0) {
		snprintf(reason, reason_size, "%s: %s", arc_field_names[kind], error);
		g_free(error);
		return -1;
	}
	set = &chain->sets[i - 1];
	if (set->field[kind] != NULL) {
		snprintf(reason, reason_size, "duplicate %s i=%u", arc_field_names[kind], i);
		return -1;
	}
	set->field[kind] = h;
	if (kind == ARC_FIELD_AMS)
		set->ams = tags;
	else if (kind == ARC_FIELD_AS)
		set->as = tags;
	if (i > chain->count)
		chain->count = i;
	return 0;
}

/* arc_tags_missing - the first of the comma-free list of names not in tags, or NULL. */
static const char *arc_tags_missing(const struct arc_tag_list *tags, const char *const *names)
{
	for (; *names != NULL; names++) {
		const struct arc_tag *t = arc_tag_find(tags, *names);

		if (t == NULL || t->value_len == 0)
			return *names;
	}
	return NULL;
}

/* arc_set_check - one complete set: its required tags and its cv=. */
static int arc_set_check(struct arc_chain_set *set, unsigned i, char *reason, size_t reason_size)
{
	static const char *const ams_tags[] = { "a", "b", "bh", "d", "h", "s", NULL };
	static const char *const as_tags[] = { "a", "b", "cv", "d", "s", NULL };
	const struct arc_tag *cv = arc_tag_find(&set->as, "cv");
	const char *missing;

	if ((missing = arc_tags_missing(&set->ams, ams_tags)) != NULL) {
		snprintf(reason, reason_size, "ARC-Message-Signature i=%u lacks %s=", i, missing);
		return -1;
	}
	if ((missing = arc_tags_missing(&set->as, as_tags)) != NULL) {
		snprintf(reason, reason_size, "ARC-Seal i=%u lacks %s=", i, missing);
		return -1;
	}
	if (arc_tag_find(&set->as, "h") != NULL) {
		snprintf(reason, reason_size, "ARC-Seal i=%u has h=", i);
		return -1;
	}
	if (arc_tag_is(cv, "none"))
		set->cv = ARC_CV_NONE;
	else if (arc_tag_is(cv, "pass"))
		set->cv = ARC_CV_PASS;
	else if (arc_tag_is(cv, "fail"))
		set->cv = ARC_CV_FAIL;
	else {
		snprintf(reason, reason_size, "ARC-Seal i=%u has an unknown cv=", i);
		return -1;
	}
	return 0;
}

/* arc_chain_check - RFC 8617 5.2 steps 2 and 3 on the collected sets. */
static int arc_chain_check(struct arc_chain *chain, char *reason, size_t reason_size)
{
	for (unsigned i = 1; i <= chain->count; i++) {
		struct arc_chain_set *set = &chain->sets[i - 1];

		for (int k = 0; k < ARC_FIELD_KINDS; k++) {
			if (set->field[k] == NULL) {
				snprintf(reason, reason_size, "ARC set i=%u lacks its %s", i,
					 arc_field_names[k]);
				return -1;
			}
		}
		if (arc_set_check(set, i, reason, reason_size) < 0)
			return -1;
	}
	for (unsigned i = (unsigned)chain->count; i >= 1; i--) {
		enum arc_cv cv = chain->sets[i - 1].cv;

		if (cv == ARC_CV_FAIL || (i == 1) != (cv == ARC_CV_NONE)) {
			snprintf(reason, reason_size, "ARC-Seal i=%u has cv=%s", i,
				 cv == ARC_CV_FAIL ? "fail" : cv == ARC_CV_NONE ? "none" : "pass");
			return -1;
		}
	}
	return 0;
}

int arc_chain_collect(const struct header_block *block, struct arc_chain *chain_r,
		      char *reason, size_t reason_size)
{
	/* Only what is read before it is written: the tag arrays are big
	 * (ARC_SETS_MAX * 2 * ARC_TAGS_MAX tags) and zeroing them all showed
	 * up in tests/bench/arc-cost. */
	chain_r->count = 0;
	for (size_t i = 0; i < ARC_SETS_MAX; i++) {
		struct arc_chain_set *set = &chain_r->sets[i];

		memset(set->field, 0, sizeof(set->field));
		set->ams.count = 0;
		set->as.count = 0;
		set->cv = ARC_CV_NONE;
	}
	reason[0] = '\0';
	for (size_t n = 0; n < block->count; n++) {
		const struct raw_header *h = &block->headers[n];
		int kind = arc_field_kind_of(h);

		if (kind >= 0 && arc_chain_add(chain_r, h, kind, reason, reason_size) < 0)
			return -1;
	}
	if (chain_r->count == 0)
		return 0;
	return arc_chain_check(chain_r, reason, reason_size);
}

/* arc_canon_special - whitespace or a line end: what relaxed rewrites. */
static bool arc_canon_special(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* arc_canon_relaxed_value - the value's bytes outside [skip_start, skip_end),
 * relaxed; the runs between whitespace and line ends are appended whole. */
static void arc_canon_relaxed_value(GString *out, const char *value, size_t value_len,
				    size_t skip_start, size_t skip_end)
{
	bool pending_space = false, started = false;
	size_t i = 0;

	while (i < value_len) {
		char c = value[i];

		if (i >= skip_start && i < skip_end) {
			i = skip_end;
			continue;
		}
		if (c == '\r' || c == '\n') {
			i++;            /* unfold */
			continue;
		}
		if (c == ' ' || c == '\t') {
			pending_space = started;
			i++;
			continue;
		}
		size_t stop = i < skip_start && skip_start < value_len ? skip_start : value_len, run = i + 1;

		while (run < stop && !arc_canon_special(value[run]))
			run++;
		if (pending_space)
			g_string_append_c(out, ' ');
		pending_space = false;
		started = true;
		g_string_append_len(out, value + i, (gssize)(run - i));
		i = run;
	}
}

void arc_canon_relaxed(GString *out, const char *name, size_t name_len, const char *value,
		       size_t value_len, size_t skip_start, size_t skip_end, bool crlf)
{
	for (size_t i = 0; i < name_len; i++)
		g_string_append_c(out, g_ascii_tolower(name[i]));
	g_string_append_c(out, ':');
	arc_canon_relaxed_value(out, value, value_len, skip_start, skip_end);
	if (crlf)
		g_string_append_len(out, "\r\n", 2);
}

void arc_canon_simple(GString *out, const char *field, size_t field_len, size_t skip_start,
		      size_t skip_end, bool crlf)
{
	for (size_t i = 0; i < field_len; i++) {
		if (i >= skip_start && i < skip_end)
			continue;
		if (field[i] == '\n' && (i == 0 || field[i - 1] != '\r'))
			g_string_append_c(out, '\r');
		g_string_append_c(out, field[i]);
	}
	if (crlf)
		g_string_append_len(out, "\r\n", 2);
}
