/*
 * dkim_body - DKIM body canonicalisation and hash, streamed
 *
 * Why not libopendkim's: its relaxed body canonicalisation calls a
 * one-byte string append for every body byte, which made a 100 KB
 * relaxed/relaxed message cost about 1 ms of CPU (tests/bench/dkim-cost),
 * more than the rest of lmtpfilter's work on it together. This version
 * hashes runs of lines that canonicalisation leaves unchanged straight from
 * the input and handles the rest a run of bytes at a time. libopendkim
 * still parses the signatures, fetches the keys and verifies the header
 * hash; dkim.c compares the body hash made here with bh=.
 *
 * Simple (RFC 6376 3.4.3): the body unchanged, except that empty lines at
 * its end are dropped and an empty body becomes one CRLF. Since the input
 * ends in CRLF, that is the body up to its last non-empty line, plus CRLF:
 * trailing CRLF pairs of each piece are held back until content follows.
 * Relaxed (3.4.4): white space (SP, HTAB) at the end of a line is dropped,
 * any other run of it becomes one SP, and empty lines at the end are
 * dropped; an empty body stays empty. Line ends are held back the same way,
 * and white space until the next ordinary byte decides what it becomes.
 */
#include "lmtpfilter/dkim_body.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>
#include <openssl/evp.h>

/* Output is batched in this many bytes before it goes to the sink. */
#define DKIM_BODY_OUT_BUFFER 16384

static const unsigned char dkim_body_crlfs[] =
	"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
	"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";

struct dkim_body_canonicaliser {
	enum dkim_body_canon canon;
	dkim_body_sink_fn *sink;
	void *ctx;
	size_t held_crlfs;      /* line ends not written yet */
	bool held_cr;           /* simple: the piece ended in the CR of a CRLF */
	bool held_wsp;          /* relaxed: white space since the last ordinary byte */
	bool mid_line;          /* relaxed: the last piece ended inside a line */
	bool wrote;             /* any content written */
	size_t out_len;
	unsigned char out[DKIM_BODY_OUT_BUFFER];
};

static void canon_flush(struct dkim_body_canonicaliser *c)
{
	if (c->out_len > 0) {
		c->sink(c->ctx, c->out, c->out_len);
		c->out_len = 0;
	}
}

static void canon_write(struct dkim_body_canonicaliser *c, const unsigned char *data, size_t len)
{
	if (len >= DKIM_BODY_OUT_BUFFER / 2) {
		canon_flush(c);
		c->sink(c->ctx, data, len);
		return;
	}
	if (c->out_len + len > sizeof(c->out))
		canon_flush(c);
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

static void canon_release_crlfs(struct dkim_body_canonicaliser *c)
{
	while (c->held_crlfs > 0) {
		size_t n = MIN(c->held_crlfs, (sizeof(dkim_body_crlfs) - 1) / 2);

		canon_write(c, dkim_body_crlfs, 2 * n);
		c->held_crlfs -= n;
	}
}

struct dkim_body_canonicaliser *dkim_body_canonicaliser_new(enum dkim_body_canon canon,
							      dkim_body_sink_fn *sink, void *ctx)
{
	/* Not zeroed: the output buffer is only read up to out_len. */
	struct dkim_body_canonicaliser *c = g_malloc(sizeof(*c));

	c->canon = canon;
	c->sink = sink;
	c->ctx = ctx;
	c->held_crlfs = 0;
	c->held_cr = false;
	c->held_wsp = false;
	c->mid_line = false;
	c->wrote = false;
	c->out_len = 0;
	return c;
}

static void canon_simple(struct dkim_body_canonicaliser *c, const unsigned char *data, size_t len)
{
	size_t end = len, pairs = 0;
	bool cr = false;

	if (len == 0)
		return;
	if (c->held_cr && data[0] == '\n') {
		c->held_cr = false;
		c->held_crlfs++;
		data++;
		len--;
		end--;
	} else if (c->held_cr) {
		/* not CRLF after all (outside the input contract): keep the CR */
		c->held_cr = false;
		canon_release_crlfs(c);
		canon_write(c, (const unsigned char *)"\r", 1);
		c->wrote = true;
	}
	if (end > 0 && data[end - 1] == '\r') {
		cr = true;
		end--;
	}
	while (end >= 2 && data[end - 2] == '\r' && data[end - 1] == '\n') {
		end -= 2;
		pairs++;
	}
	if (end > 0) {
		canon_release_crlfs(c);
		canon_write(c, data, end);
		c->wrote = true;
		c->held_crlfs = pairs;
	} else {
		c->held_crlfs += pairs;
	}
	c->held_cr = cr;
}

/* Bytes the relaxed state machine looks at; everything else is copied. */
static bool relaxed_special(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Per byte of a 64-bit word: 0x80 where the byte is zero, 0 elsewhere. */
static inline uint64_t swar_zero_bytes(uint64_t x)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL;

	return ~(((x & low7) + low7) | x | low7);
}

/* swar_load - eight bytes with byte i + 1 in the higher bits. */
static inline uint64_t swar_load(const unsigned char *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

bool dkim_body_crlf_clean(const unsigned char *buf, size_t len, unsigned char *last)
{
	const uint64_t crs = 0x0d0d0d0d0d0d0d0dULL, lfs = 0x0a0a0a0a0a0a0a0aULL;
	uint64_t carry = *last == '\r' ? 0x80 : 0;   /* a CR waiting for its LF */
	size_t i = 0;

	if (len == 0)
		return true;
	/* Every LF right after a CR and every CR right before a LF: the LF
	 * positions are exactly the CR positions moved on by one. */
	for (; i + 8 <= len; i += 8) {
		uint64_t w = swar_load(buf + i);
		uint64_t cr = swar_zero_bytes(w ^ crs), lf = swar_zero_bytes(w ^ lfs);

		if (((cr << 8) | carry) != lf)
			return false;
		carry = cr >> 56;
	}
	for (; i < len; i++) {
		if ((buf[i] == '\n') != (carry != 0))
			return false;
		carry = buf[i] == '\r';
	}
	*last = buf[len - 1];
	return true;
}

/* relaxed_line_unchanged - true if relaxed canonicalisation leaves this
 * line's content (without its CRLF) as it is: not empty, no HTAB, no run
 * of two spaces, no space at its end. Most lines of real mail. Eight bytes
 * at a time (glibc's memmem was most of the cost of a relaxed body). */
static bool relaxed_line_unchanged(const unsigned char *line, size_t len)
{
	const uint64_t spaces = 0x2020202020202020ULL, tabs = 0x0909090909090909ULL;
	uint64_t carry = 0;     /* the previous word's last byte was a space */
	size_t i = 0;

	if (len == 0 || line[len - 1] == ' ')
		return false;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = swar_load(line + i);
		uint64_t sp = swar_zero_bytes(w ^ spaces);
		if (swar_zero_bytes(w ^ tabs) != 0 || (sp & ((sp << 8) | carry)) != 0)
			return false;
		carry = sp >> 56;
	}
	for (; i < len; i++) {
		if (line[i] == '\t' || (line[i] == ' ' && (carry != 0 || line[i + 1] == ' ')))
			return false;
		carry = 0;
	}
	return true;
}

/* relaxed_bytes - one byte at a time, up to and including the next LF (or
 * to the end); returns where it stopped. Handles any split of the input. */
static const unsigned char *relaxed_bytes(struct dkim_body_canonicaliser *c,
					  const unsigned char *p, const unsigned char *end)
{
	while (p < end) {
		const unsigned char *run = p;

		while (p < end && !relaxed_special(*p))
			p++;
		if (p > run) {
			canon_release_crlfs(c);
			if (c->held_wsp) {
				canon_write(c, (const unsigned char *)" ", 1);
				c->held_wsp = false;
			}
			canon_write(c, run, (size_t)(p - run));
			c->wrote = true;
			continue;
		}
		switch (*p++) {
		case ' ':
		case '\t':
			c->held_wsp = true;
			break;
		case '\n':
			c->held_wsp = false;
			c->held_crlfs++;
			c->mid_line = false;
			return p;
		default:
			/* '\r': part of the CRLF its LF ends */
			break;
		}
	}
	c->mid_line = true;
	return p;
}

/* Whole lines that relaxed canonicalisation leaves unchanged, one after
 * another, go to the sink straight from the input as one span (without
 * the last line's CRLF, which is held back like every line end); everything
 * else, and lines split between pieces, goes through relaxed_bytes. */
static void canon_relaxed(struct dkim_body_canonicaliser *c, const unsigned char *data, size_t len)
{
	const unsigned char *p = data, *end = data + len;

	while (p < end) {
		const unsigned char *span = p, *span_end = NULL;

		if (c->mid_line) {
			p = relaxed_bytes(c, p, end);
			continue;
		}
		for (;;) {
			const unsigned char *lf = memchr(p, '\n', (size_t)(end - p));

			if (lf == NULL || lf == p || lf[-1] != '\r' ||
			    !relaxed_line_unchanged(p, (size_t)(lf - 1 - p)))
				break;
			span_end = lf - 1;
			p = lf + 1;
		}
		if (span_end != NULL) {
			canon_release_crlfs(c);
			canon_flush(c);
			c->sink(c->ctx, span, (size_t)(span_end - span));
			c->held_crlfs = 1;
			c->wrote = true;
		}
		if (p < end)
			p = relaxed_bytes(c, p, end);
	}
}

void dkim_body_canonicalise(struct dkim_body_canonicaliser *c, const unsigned char *data,
			    size_t len)
{
	if (c->canon == DKIM_BODY_SIMPLE)
		canon_simple(c, data, len);
	else
		canon_relaxed(c, data, len);
}

void dkim_body_canonicaliser_finish(struct dkim_body_canonicaliser *c)
{
	/* The last line's CRLF; for simple also what an empty body becomes. */
	if (c->canon == DKIM_BODY_SIMPLE || c->wrote)
		canon_write(c, dkim_body_crlfs, 2);
	c->held_crlfs = 0;
	c->held_cr = false;
	c->held_wsp = false;
	canon_flush(c);
}

void dkim_body_canonicaliser_free(struct dkim_body_canonicaliser **cp)
{
	g_free(*cp);
	*cp = NULL;
}

/* ---- the hash ------------------------------------------------------------ */

/* The digests, fetched once: an implicit fetch per message (EVP_sha256()
 * in EVP_DigestInit_ex) costs OpenSSL 3 a provider lookup each time. */
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static EVP_MD *hash_sha256, *hash_sha1;

static void hash_fetch(void)
{
	hash_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	hash_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
}

struct dkim_body_hash {
	EVP_MD_CTX *md;
	struct dkim_body_canonicaliser *canon;
	bool failed;
	char *base64;
};

static void hash_sink(void *ctx, const unsigned char *data, size_t len)
{
	struct dkim_body_hash *h = ctx;

	if (!h->failed && EVP_DigestUpdate(h->md, data, len) != 1)
		h->failed = true;
}

struct dkim_body_hash *dkim_body_hash_new(enum dkim_body_canon canon, bool sha1)
{
	struct dkim_body_hash *h = g_new0(struct dkim_body_hash, 1);
	const EVP_MD *type;

	pthread_once(&hash_once, hash_fetch);
	type = sha1 ? hash_sha1 : hash_sha256;
	h->md = EVP_MD_CTX_new();
	if (type == NULL || h->md == NULL || EVP_DigestInit_ex(h->md, type, NULL) != 1) {
		dkim_body_hash_free(&h);
		return NULL;
	}
	h->canon = dkim_body_canonicaliser_new(canon, hash_sink, h);
	return h;
}

void dkim_body_hash_update(struct dkim_body_hash *h, const unsigned char *data, size_t len)
{
	if (h->base64 == NULL)
		dkim_body_canonicalise(h->canon, data, len);
}

const char *dkim_body_hash_base64(struct dkim_body_hash *h)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (h->base64 != NULL || h->failed)
		return h->base64;
	dkim_body_canonicaliser_finish(h->canon);
	if (h->failed || EVP_DigestFinal_ex(h->md, digest, &len) != 1) {
		h->failed = true;
		return NULL;
	}
	h->base64 = g_base64_encode(digest, len);
	return h->base64;
}

void dkim_body_hash_free(struct dkim_body_hash **hp)
{
	struct dkim_body_hash *h = *hp;

	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->md);
	dkim_body_canonicaliser_free(&h->canon);
	g_free(h->base64);
	g_free(h);
	*hp = NULL;
}
