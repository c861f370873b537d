/*
 * dkim - DKIM verification (RFC 6376, RFC 8463) with libopendkim, key
 * lookups through a struct dns_source
 *
 * One verifier per process, created before worker threads start; then
 * dkim_verify_message may run in any number of threads at once. The message is
 * streamed through the library in chunks, never copied whole.
 */
#ifndef LMTPFILTER_DKIM_H
#define LMTPFILTER_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lmtpfilter/dkim_body.h"
#include "lmtpfilter/dns_source.h"
#include "mime/verdict.h"

struct spool;

/* Signatures verified per message; the rest are ignored and counted. */
#define DKIM_SIGNATURES_MAX 8
/* RSA keys shorter than this give "policy" (RFC 8301). */
#define DKIM_RSA_MIN_BITS 1024
/* Bytes handed to the library per call while streaming the message. */
#define DKIM_CHUNK_SIZE 65536
/* Characters of b= reported as header.b (RFC 6008). */
#define DKIM_B_PREFIX_LEN 8

struct dkim_sig_result {
	enum verdict result;  /* pass fail policy neutral temperror permerror */
	char domain[256];     /* d=, "" if the signature has none */
	char identity[256];   /* i=, or "@" + d= when absent */
	char selector[128];   /* s= */
	char algorithm[32];   /* a=: "rsa-sha256", "ed25519-sha256", … */
	char b[16];           /* the first DKIM_B_PREFIX_LEN characters of b= */
	char reason[128];     /* short text for the A-R comment */
};

struct dkim_outcome {
	struct dkim_sig_result sigs[DKIM_SIGNATURES_MAX]; /* in header order; the first count are valid */
	size_t count;         /* 0: unsigned, dkim=none */
	size_t ignored;       /* signatures past DKIM_SIGNATURES_MAX */
	/* The body hashes dkim_body.c made for the signatures, when the
	 * message was clean CRLF and ended in CRLF, for arc.c to reuse. */
	struct dkim_body_digests digests;
};

/* dkim_outcome_init - no signature: count, ignored and digests cleared,
 * sigs[] left alone (over 6 KB; each entry is cleared when filled). */
void dkim_outcome_init(struct dkim_outcome *out);
/* dkim_outcome_set_one - one result without signature details, for a
 * message whose signatures could not be told apart (reason truncated). */
void dkim_outcome_set_one(struct dkim_outcome *out, enum verdict result, const char *reason);

struct dkim_verifier_options {
	/* Keys from this file ("selector._domainkey.domain TXT-VALUE" per
	 * line) instead of DNS; for tests. NULL: use the DNS source. */
	const char *key_file;
	/* Verify as if it were this time (seconds since the epoch); 0: now. */
	uint64_t fixed_time;
	/* Hash bodies with libopendkim's own code instead of dkim_body.c
	 * (slower; lets tests compare the two). */
	bool library_body;
};

struct dkim_verifier;

/* Reads up to len bytes of the message at offset; returns the count, 0 at
 * the end, -1 on error. */
typedef ssize_t (*dkim_read_fn)(void *ctx, uint64_t offset, void *buf, size_t len);

/* dkim_verifier_new - set up libopendkim. Key lookups go through dns (*dns
 * is copied; what its ctx points to must outlive the verifier), or come
 * from opts->key_file; one of the two is required, dns may be NULL with a
 * key file. opts may be NULL. 0, or -1 with *error_r (g_malloc'd). */
int dkim_verifier_new(const struct dns_source *dns, const struct dkim_verifier_options *opts,
		      struct dkim_verifier **v_r, char **error_r);
/* dkim_verifier_free - release it and set *v to NULL; NULL is fine. */
void dkim_verifier_free(struct dkim_verifier **v);

/* dkim_verify_message - verify every DKIM-Signature (up to DKIM_SIGNATURES_MAX) of
 * the raw message as received (CRLF; bare LF is tolerated), read through
 * read(ctx, …) in DKIM_CHUNK_SIZE pieces up to size bytes. Fills *out_r:
 * count == 0 means unsigned (dkim=none). A DNS failure is a per-signature
 * temperror, not an error of the call. Returns -1 with *error_r
 * (g_malloc'd) only when the message could not be read or the library
 * failed; *out_r is then
 * empty and the caller should report temperror. */
int dkim_verify_message(struct dkim_verifier *v, dkim_read_fn read, void *ctx, uint64_t size,
			struct dkim_outcome *out_r, char **error_r);

/* dkim_spool_read - a dkim_read_fn for a struct spool passed as ctx. */
ssize_t dkim_spool_read(void *spool, uint64_t offset, void *buf, size_t len);

#endif
