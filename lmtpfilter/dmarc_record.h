/*
 * dmarc_record - one DMARC Policy Record, parsed by the RFC 9989 grammar
 *
 * A pure function from the record's text (the TXT character-strings already
 * joined, RFC 9989 §4.5) to its tags. No DNS, no global state, thread-safe.
 *
 * libopendmarc 1.4.2 is not used for this: its parser accepts np=, psd= and
 * t= but has no way to read them back, and it rejects a whole record for a
 * missing p=, a bad sp= or an out-of-range pct=, where RFC 9989 §4.8 keeps
 * the record and discards only the tag in error.
 */
#ifndef LMTPFILTER_DMARC_RECORD_H
#define LMTPFILTER_DMARC_RECORD_H

#include <stdbool.h>
#include <stddef.h>

/* rua= URIs kept; a longer list is cut (reports to more places than this
 * are not worth the memory of a hostile record). */
#define DMARC_RECORD_URIS_MAX 16
/* pct= of RFC 7489: highest valid value. */
#define DMARC_RECORD_PCT_MAX 100

/* dmarc-request (RFC 9989 §4.8) of p=, sp= and np=. */
enum dmarc_request {
	DMARC_REQUEST_ABSENT = 0,       /* tag not in the record */
	DMARC_REQUEST_NONE,
	DMARC_REQUEST_QUARANTINE,
	DMARC_REQUEST_REJECT,
	DMARC_REQUEST_INVALID,          /* tag given with a value outside dmarc-request */
};

enum dmarc_alignment {
	DMARC_ALIGN_RELAXED = 0,        /* r, the default */
	DMARC_ALIGN_STRICT,             /* s */
};

/* psd= (RFC 9989 §4.7). */
enum dmarc_psd {
	DMARC_PSD_UNKNOWN = 0,          /* u, the default */
	DMARC_PSD_YES,                  /* y: the domain is a Public Suffix Domain */
	DMARC_PSD_NO,                   /* n: the domain is an Organizational Domain */
};

struct dmarc_record {
	enum dmarc_request p, sp, np;
	enum dmarc_alignment adkim, aspf;
	bool testing;                   /* t=y */
	enum dmarc_psd psd;
	int pct;                        /* RFC 7489 pct=, 0..100, or -1: reported, never applied */
	char **rua;                     /* syntactically valid rua= URIs (NULL-terminated, g_strv) */
	size_t rua_count;
	unsigned ignored_tags;          /* unknown, malformed or repeated tags dropped */
	char *raw;                      /* the record text (bytes after a NUL are cut) */
};

/* dmarc_record_parse - parse TEXT (LEN bytes, need not be NUL-terminated).
 * Returns 0 and fills *record_r when TEXT is a DMARC Policy Record (its
 * first tag is v=DMARC1, RFC 9989 §4.7), -1 otherwise (*record_r is then
 * zeroed, nothing to clear). Tags after v= that break the grammar are
 * dropped and counted, never fatal (§4.8). */
int dmarc_record_parse(const char *text, size_t len, struct dmarc_record *record_r);

/* dmarc_record_clear - free what dmarc_record_parse allocated; zeroes it. */
void dmarc_record_clear(struct dmarc_record *record);

/* dmarc_record_copy - a deep copy of SRC into *dst_r. */
void dmarc_record_copy(const struct dmarc_record *src, struct dmarc_record *dst_r);

/* dmarc_request_name - "none", "quarantine", "reject", "" (absent) or
 * "invalid". */
const char *dmarc_request_name(enum dmarc_request request);

#endif
