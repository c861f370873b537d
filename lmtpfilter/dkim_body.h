/*
 * dkim_body - DKIM body canonicalisation (RFC 6376 3.4.3 simple, 3.4.4
 * relaxed) and body hash, streamed in pieces split anywhere.
 *
 * The input must have CRLF line ends only (every LF after a CR, every CR
 * before a LF; a CR may end one piece and its LF begin the next) and end in
 * CRLF: dkim.c only sends such bodies here and gives every other message to
 * libopendkim whole. Other input is canonicalised without crashing, but the
 * result is unspecified. No l= support: signatures with l= go to
 * libopendkim as well.
 */
#ifndef LMTPFILTER_DKIM_BODY_H
#define LMTPFILTER_DKIM_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* dkim_body_crlf_clean - true if, in buf, every LF follows a CR and every
 * CR is followed by a LF, i.e. the input this file expects. *last is the
 * byte before buf (0 at the start) and becomes buf's last byte; a CR at
 * the end of buf is judged with the next buffer (or by the caller, at the
 * end of the message). */
bool dkim_body_crlf_clean(const unsigned char *buf, size_t len, unsigned char *last);

enum dkim_body_canon {
	DKIM_BODY_SIMPLE,
	DKIM_BODY_RELAXED,
};

/* Receives the canonical body, in order, in pieces. */
typedef void dkim_body_sink_fn(void *ctx, const unsigned char *data, size_t len);

struct dkim_body_canonicaliser;

/* dkim_body_canonicaliser_new - a streaming canonicaliser writing to sink. */
struct dkim_body_canonicaliser *dkim_body_canonicaliser_new(enum dkim_body_canon canon,
							      dkim_body_sink_fn *sink, void *ctx);
/* dkim_body_canonicalise - the next piece of the body. */
void dkim_body_canonicalise(struct dkim_body_canonicaliser *c, const unsigned char *data,
			    size_t len);
/* dkim_body_canonicaliser_finish - end of body: write what is held back. */
void dkim_body_canonicaliser_finish(struct dkim_body_canonicaliser *c);
void dkim_body_canonicaliser_free(struct dkim_body_canonicaliser **c);

/* The body hash of one (canonicalisation, algorithm) pair. */
struct dkim_body_hash;

/* dkim_body_hash_new - sha256 (sha1 if `sha1`); NULL if OpenSSL fails. */
struct dkim_body_hash *dkim_body_hash_new(enum dkim_body_canon canon, bool sha1);
void dkim_body_hash_update(struct dkim_body_hash *h, const unsigned char *data, size_t len);
/* dkim_body_hash_base64 - finish and return the hash in base64 (as bh=
 * carries it); the same string on later calls. NULL if OpenSSL failed. */
const char *dkim_body_hash_base64(struct dkim_body_hash *h);
void dkim_body_hash_free(struct dkim_body_hash **h);

/* A sha256 body hash in base64 (44 characters) with its NUL. */
#define DKIM_BODY_SHA256_BASE64_MAX 45

/* The sha256 body hashes one verifier made of a message, for another
 * verifier of the same message to reuse instead of hashing the body again
 * (dkim.c makes them, arc.c reads them). They are those of the bytes from
 * offset to the end of the message, which had CRLF line ends only and
 * ended in CRLF: the body as every verifier here canonicalises it. */
struct dkim_body_digests {
	uint64_t offset;
	char sha256[2][DKIM_BODY_SHA256_BASE64_MAX]; /* [enum dkim_body_canon], "" if not made */
};

#endif
