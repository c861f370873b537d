/*
 * arc_fields - the ARC header fields of a message (RFC 8617) as data: the
 * DKIM tag-list syntax (RFC 6376 3.2) they share, the instance of each
 * field, the chain's structure (one AAR, AMS and AS per instance, 1..N, no
 * gap or repeat, cv= as section 5.2 step 3 requires) and the relaxed header
 * canonicalisation (RFC 6376 3.4.2) the signatures are computed over.
 *
 * Pure: no DNS, no crypto, no allocation but the chain and canonical
 * output; every function takes any bytes (it is a fuzz target) and answers
 * with a result and a reason, never a crash. Values point into the caller's
 * header block.
 */
#ifndef LMTPFILTER_ARC_FIELDS_H
#define LMTPFILTER_ARC_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "mime/header_block.h"

/* RFC 8617 5.2 step 1: more sets than this and the chain fails. */
#define ARC_SETS_MAX 50
/* Longest ARC field value (bytes, folding included) looked at: an 8192-bit
 * b= is ~1.4 KB, h= of 100 names ~2 KB; a bigger field is hostile and
 * fails the chain instead of costing CPU. */
#define ARC_FIELD_MAX 16384
/* Tags in one AMS/AS/key record: DKIM defines 14; extensions may add some. */
#define ARC_TAGS_MAX 32
/* Size of the reason texts (A-R comment, check --json). */
#define ARC_REASON_MAX 128

struct arc_tag {
	const char *name;      /* tag name, not NUL-terminated */
	size_t name_len;
	const char *value;     /* tag value, surrounding whitespace trimmed */
	size_t value_len;
	size_t span_start;     /* the value as written: just after '=' ... */
	size_t span_end;       /* ... up to the ';' or the end (offsets in the field value) */
};

struct arc_tag_list {
	struct arc_tag tags[ARC_TAGS_MAX];
	size_t count;
};

/* arc_tag_list_parse - parse a DKIM tag-list (value, len bytes, folding
 * allowed). 0, or -1 with *error_r (g_malloc'd: syntax, duplicate tag,
 * more than ARC_TAGS_MAX tags). */
int arc_tag_list_parse(const char *value, size_t len, struct arc_tag_list *list_r,
		       char **error_r);
/* arc_tag_find - the tag called name (case-sensitive, as RFC 6376), or NULL. */
const struct arc_tag *arc_tag_find(const struct arc_tag_list *list, const char *name);
/* arc_tag_is - the tag's value equals s (case-insensitive). */
bool arc_tag_is(const struct arc_tag *tag, const char *s);
/* arc_tag_compact - g_malloc'd copy of the value with all whitespace
 * removed (b=, bh=, p= may be folded anywhere). */
char *arc_tag_compact(const struct arc_tag *tag);
/* arc_tag_copy - the value into buf (size bytes, NUL-terminated, cut). */
void arc_tag_copy(const struct arc_tag *tag, char *buf, size_t size);
/* arc_instance_parse - i= as 1..ARC_SETS_MAX into *i_r; 0, or -1 with
 * *error_r (g_malloc'd: not a number, 0, above ARC_SETS_MAX). */
int arc_instance_parse(const char *s, size_t len, unsigned *i_r, char **error_r);
/* arc_aar_instance - the instance of an ARC-Authentication-Results value
 * ("i=N; authserv-id; ..."); 0, or -1 with *error_r (g_malloc'd). */
int arc_aar_instance(const char *value, size_t len, unsigned *i_r, char **error_r);

enum arc_field_kind {
	ARC_FIELD_AAR = 0,   /* ARC-Authentication-Results */
	ARC_FIELD_AMS,       /* ARC-Message-Signature */
	ARC_FIELD_AS,        /* ARC-Seal */
	ARC_FIELD_KINDS,
};

/* arc_field_kind_of - which ARC field h is, or -1 if none. */
int arc_field_kind_of(const struct raw_header *h);

enum arc_cv {
	ARC_CV_NONE = 0,
	ARC_CV_PASS,
	ARC_CV_FAIL,
};

struct arc_chain_set {
	const struct raw_header *field[ARC_FIELD_KINDS];
	struct arc_tag_list ams;  /* parsed AMS tags */
	struct arc_tag_list as;   /* parsed AS tags */
	enum arc_cv cv;
};

struct arc_chain {
	size_t count;             /* N, the highest instance; 0: no ARC field */
	struct arc_chain_set sets[ARC_SETS_MAX]; /* sets[i - 1] is instance i */
};

/* arc_chain_collect - find and check the ARC sets of block into *chain_r
 * (RFC 8617 5.2 steps 1-3 plus the tags each AMS and AS must carry).
 * Returns 0 when the chain is well formed (count 0: no ARC field at all),
 * -1 when it fails, with the reason in reason (reason_size bytes) and
 * chain_r->count the highest instance seen (what could be collected). */
int arc_chain_collect(const struct header_block *block, struct arc_chain *chain_r,
		      char *reason, size_t reason_size);

/* arc_canon_relaxed - append "name:value" canonicalised as RFC 6376 3.4.2
 * (lower-case name, unfolded, whitespace runs to one space, none at the
 * ends or around the colon) to out, then CRLF if crlf. The value bytes in
 * [skip_start, skip_end) are left out first (the b= of the signature being
 * verified; skip_start == skip_end leaves out nothing). */
void arc_canon_relaxed(GString *out, const char *name, size_t name_len, const char *value,
		       size_t value_len, size_t skip_start, size_t skip_end, bool crlf);
/* arc_canon_simple - RFC 6376 3.4.1 "simple": the whole field as written
 * (field, field_len bytes from the first byte of its name to the end of
 * its value), bare LF written as CRLF, [skip_start, skip_end) of the field
 * left out, then CRLF if crlf. */
void arc_canon_simple(GString *out, const char *field, size_t field_len, size_t skip_start,
		      size_t skip_end, bool crlf);

#endif
