/*
 * arc - ARC chain verification (RFC 8617 5.2): seals, message signatures,
 * chain validation status, oldest-pass; keys through a DNS source
 *
 * One verifier per process, created before worker threads start; then
 * arc_verify_message may run in any number of threads at once (the
 * verifier is read-only, parsed RSA keys are shared through
 * dkim_keycache.c). The body is streamed through dkim_body.c, never held
 * whole.
 */
#ifndef LMTPFILTER_ARC_H
#define LMTPFILTER_ARC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>

#include "lmtpfilter/arc_fields.h"
#include "lmtpfilter/dkim_body.h"
#include "mime/verdict.h"

struct dns_source;

/* RSA keys shorter than this do not verify (RFC 8301). */
#define ARC_RSA_MIN_BITS 1024
/* Longest header block read (as the spool keeps it). */
#define ARC_HEADER_BLOCK_MAX (4u * 1024 * 1024)
/* Bytes read per call while streaming the message. */
#define ARC_CHUNK_SIZE 65536

struct arc_set_result {
	unsigned instance;
	const char *cv;           /* "none" "pass" "fail" as the seal says (static) */
	enum verdict ams;         /* pass fail temperror permerror; none: not verified */
	enum verdict as;          /* the same for the seal */
	char ams_domain[256];     /* d= of the AMS */
	char as_domain[256];      /* d= of the AS */
	char reason[ARC_REASON_MAX]; /* why the AMS or AS did not pass, "" if it did */
};

struct arc_outcome {
	enum verdict result;      /* pass fail none temperror */
	/* header.oldest-pass (RFC 8617 5.2 step 5, IANA's definition): 0 when
	 * every AMS validates, else the oldest instance whose AMS validates
	 * with all newer ones validating too. 0 unless result is pass. */
	unsigned oldest_pass;
	size_t set_count;         /* sets[0 .. set_count) are instances 1 .. N */
	struct arc_set_result sets[ARC_SETS_MAX];
	char reason[ARC_REASON_MAX];  /* why the chain is not a pass, for the A-R comment */
	char sealer_domain[256];  /* d= of the newest ARC-Seal, "" without one */
	char *newest_aar;         /* g_malloc'd raw value of the newest
				   * ARC-Authentication-Results (folding kept), or NULL */
};

struct arc_verifier_options {
	/* Keys from this file ("selector._domainkey.domain TXT-VALUE" per
	 * line) instead of DNS; for tests and the benchmark. */
	const char *key_file;
};

struct arc_verifier;

/* Reads up to len bytes of the message at offset; the count, 0 at the
 * end, -1 on error (same shape as dkim_read_fn). */
typedef ssize_t (*arc_read_fn)(void *ctx, uint64_t offset, void *buf, size_t len);

/* arc_verifier_new - keys through dns (copied; what it queries must
 * outlive the verifier) or from opts->key_file; one of the two is required. 0, or -1
 * with *error_r (g_malloc'd). */
int arc_verifier_new(const struct dns_source *dns, const struct arc_verifier_options *opts,
		     struct arc_verifier **v_r, char **error_r);
/* arc_verifier_free - release it and set *v to NULL; NULL is fine. */
void arc_verifier_free(struct arc_verifier **v);

/* arc_verify_message - verify the ARC chain of the raw message (CRLF; bare
 * LF tolerated) read through read(ctx, ...) up to size bytes. Fills *out_r
 * (free with arc_outcome_clear): none without ARC fields, fail with a
 * reason for any broken chain or bad input, temperror when a key lookup
 * that decides the result failed, pass. Returns -1 with *error_r
 * (g_malloc'd) only when the message could not be read; *out_r is then
 * temperror. */
int arc_verify_message(struct arc_verifier *v, arc_read_fn read, void *ctx, uint64_t size,
		       struct arc_outcome *out_r, char **error_r);
/* arc_verify_message_reusing - the same, with the body hashes another
 * verifier made of this message (dkim.c's, in struct dkim_outcome) taken
 * instead of hashing the body again where they are of the body the AMSes
 * sign (the same offset and canonicalisation); known may be NULL. */
int arc_verify_message_reusing(struct arc_verifier *v, arc_read_fn read, void *ctx, uint64_t size,
			       const struct dkim_body_digests *known, struct arc_outcome *out_r,
			       char **error_r);
/* arc_outcome_init - an empty outcome (none, no sets) without clearing the
 * ARC_SETS_MAX set results: only sets[0 .. set_count) are ever read, and
 * arc_verify_message clears each as it fills it. */
void arc_outcome_init(struct arc_outcome *out);
/* arc_outcome_clear - free what the outcome holds (newest_aar). */
void arc_outcome_clear(struct arc_outcome *out);
/* arc_outcome_json - append the outcome as one JSON object to json:
 * {"result", "oldest_pass", "reason", "sealer", "sets": [{"instance",
 * "cv", "ams", "as", "ams_domain", "as_domain", "reason"}]}. */
void arc_outcome_json(const struct arc_outcome *out, GString *json);

#endif
