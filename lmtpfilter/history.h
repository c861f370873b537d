/*
 * history - the DMARC aggregate-report history: one compact record per
 * message and policy domain whose DMARC was evaluated (RFC 9990 input)
 *
 * Files: DIR/YYYY-MM-DD.dmh, one per UTC day (the day of the record's time),
 * append-only. Each record is one write(2) on an O_APPEND descriptor, so
 * threads and processes appending to the same file never interleave bytes.
 * A record is framed: "\x01" "H1" LENGTH(8 hex) CRC32(8 hex) PAYLOAD "\n";
 * the payload holds no byte below 0x20, so a reader that finds a torn or
 * corrupt record (a crash mid-write, a short write on a full disk) skips it,
 * counts it and resynchronises at the next "\x01". Nothing is fsync'd: a
 * power failure loses what the kernel had not yet written back (by default
 * up to ~35 s, vm.dirty_expire_centisecs + dirty_writeback_centisecs). A
 * failed write (disk full, file too large, unwritable directory) drops the
 * record and counts it; it never blocks or retries.
 */
#ifndef LMTPFILTER_HISTORY_H
#define LMTPFILTER_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A record longer than this is not written (and not read back): bounds the
 * reader's buffer; a real record is ~150-400 bytes. */
#define HISTORY_RECORD_MAX 4096
/* DKIM signatures kept per record: RFC 9990 wants at most 100 per row; the
 * daemon verifies far fewer. */
#define HISTORY_DKIM_MAX 8
/* Longest field (a domain name is at most 253 bytes). */
#define HISTORY_FIELD_MAX 255

enum history_policy {
	HISTORY_POLICY_UNSET = 0,   /* tag absent (sp, np) */
	HISTORY_POLICY_NONE,
	HISTORY_POLICY_QUARANTINE,
	HISTORY_POLICY_REJECT,
};

/* The disposition applied (RFC 9990 ActionDispositionType). */
enum history_disposition {
	HISTORY_DISPOSITION_NONE = 0,
	HISTORY_DISPOSITION_PASS,
	HISTORY_DISPOSITION_QUARANTINE,
	HISTORY_DISPOSITION_REJECT,
};

/* Why the disposition differs from the policy (RFC 9990 PolicyOverrideType). */
enum history_override {
	HISTORY_OVERRIDE_NONE = 0,
	HISTORY_OVERRIDE_TRUSTED_FORWARDER,  /* a trusted ARC sealer */
	HISTORY_OVERRIDE_TEST_MODE,          /* t=y */
	HISTORY_OVERRIDE_LOCAL_POLICY,       /* mode = observe, … */
	HISTORY_OVERRIDE_MAILING_LIST,
	HISTORY_OVERRIDE_OTHER,
};

/* RFC 8601 results, the union of DKIM's and SPF's (softfail is SPF only). */
enum history_auth {
	HISTORY_AUTH_NONE = 0,
	HISTORY_AUTH_PASS,
	HISTORY_AUTH_FAIL,
	HISTORY_AUTH_SOFTFAIL,
	HISTORY_AUTH_POLICY,
	HISTORY_AUTH_NEUTRAL,
	HISTORY_AUTH_TEMPERROR,
	HISTORY_AUTH_PERMERROR,
};

enum history_psd {
	HISTORY_PSD_U = 0,
	HISTORY_PSD_Y,
	HISTORY_PSD_N,
};

enum history_discovery {
	HISTORY_DISCOVERY_TREEWALK = 0,
	HISTORY_DISCOVERY_PSL,
};

struct history_dkim {
	const char *domain;     /* d= */
	const char *selector;   /* s= */
	enum history_auth result;
};

/* One evaluated message for one policy domain. Strings are borrowed: the
 * writer copies what it needs; the reader's point into its own buffer. */
struct history_record {
	time_t time;                    /* arrival, UTC; picks the day file */
	const char *source_ip;          /* the connecting client */
	const char *envelope_from;      /* RFC5321.MailFrom domain; may be "" */
	const char *header_from;        /* RFC5322.From domain */
	const char *policy_domain;      /* where the DMARC record was found */
	const char *org_domain;         /* its organizational domain ("" = policy_domain) */
	/* the policy published */
	enum history_policy p, sp, np;
	char adkim, aspf;               /* 'r' or 's' */
	bool testing;                   /* t=y */
	enum history_psd psd;
	enum history_discovery discovery;
	/* the result */
	bool dkim_aligned;              /* an aligned DKIM pass */
	bool spf_aligned;               /* an aligned SPF pass */
	enum history_disposition disposition;
	enum history_override override;
	const char *override_comment;   /* e.g. the trusted sealer; may be NULL */
	struct history_dkim dkim[HISTORY_DKIM_MAX];
	size_t dkim_count;
	const char *spf_domain;         /* NULL or "": no SPF result */
	bool spf_scope_helo;            /* the domain checked was HELO's, not MAIL FROM's */
	enum history_auth spf_result;
};

struct history;

struct history_stats {
	uint64_t appended;     /* records written whole */
	uint64_t dropped;      /* write failed (disk full, …) or record too long */
};

/* history_open - append to DIR (which must exist); 0, or -1 with *error_r
 * (g_malloc'd). Files are opened lazily, one day at a time. */
int history_open(const char *dir, struct history **history_r, char **error_r);
/* history_close - close and free; *history becomes NULL. */
void history_close(struct history **history);
/* history_append - write one record to its day's file (thread-safe). Never
 * blocks on a full disk: returns 0, or -1 when the record was dropped (and
 * counted; the first failure of a kind is logged). */
int history_append(struct history *history, const struct history_record *record);
/* history_get_stats - counters since history_open. */
void history_get_stats(struct history *history, struct history_stats *stats_r);

/* history_encode - the framed bytes of one record into buf; returns their
 * length, or 0 if the record does not fit HISTORY_RECORD_MAX or a field has
 * a byte below 0x20 or is longer than HISTORY_FIELD_MAX. */
size_t history_encode(const struct history_record *record, char *buf, size_t size);

/* history_day_file - "DIR/YYYY-MM-DD.dmh" for the UTC day of t (g_malloc'd). */
char *history_day_file(const char *dir, time_t t);

struct history_read_stats {
	uint64_t records;      /* whole records passed to the callback */
	uint64_t skipped;      /* torn, corrupt or unparsable records */
};

/* Called for each whole record; the strings live until it returns. */
typedef void history_record_cb(const struct history_record *record, void *context);

/* history_read_file - stream every record of one file to cb, skipping and
 * counting torn or corrupt ones; memory use is bounded whatever the file
 * size. 0, or -1 with *error_r (g_malloc'd) if the file cannot be read (a
 * missing file is an error too). */
int history_read_file(const char *path, history_record_cb *cb, void *context,
		      struct history_read_stats *stats, char **error_r);

/* Names of the enum values as RFC 9990 spells them. */
const char *history_policy_name(enum history_policy p);
const char *history_disposition_name(enum history_disposition d);
const char *history_override_name(enum history_override o);
const char *history_auth_name(enum history_auth a);
/* history_auth_parse etc. - the enum of a name; -1 if unknown. */
int history_auth_parse(const char *name);
int history_policy_parse(const char *name);
int history_disposition_parse(const char *name);
int history_override_parse(const char *name);

#endif
