/*
 * dkim - DKIM verification with libopendkim, key lookups through a dns_source
 *
 * Owns: the process's two DKIM_LIB handles (options fixed at creation, then
 * shared read-only by every thread; see struct dkim_verifier) and, per
 * dkim_verify_message call, one DKIM handle, one DKIM_CHUNK_SIZE read buffer
 * and up to four body hashes (struct dkim_fast_body).
 * Speed: parsed keys are kept across messages (dkim_keycache.c), and clean
 * CRLF messages skip libopendkim's CRLF repair, its byte-by-byte header
 * parser when the header is all in the first read (dkim_feed_header) and
 * its body code (dkim_body.c); tests/bench/dkim-cost measures what each
 * message costs.
 * Key lookups: libopendkim's DNS hooks ask the verifier's struct dns_source
 * (a copy of the caller's: in the daemon the shared resolver, blocking with
 * its own deadline; in tests and fuzz targets an in-memory zone) and hand
 * back its wire-format reply, or one built from the parsed answer when the
 * source gave no packet; a DNS_TEMPFAIL answer (timeout, SERVFAIL) becomes
 * DKIM_DNS_ERROR, i.e. temperror. The library's built-in resolver (one
 * res_state for all threads) is never used.
 * Results follow RFC 8601: pass, fail (bad signature or body hash), policy
 * (RSA key under DKIM_RSA_MIN_BITS, rsa-sha1), temperror (key lookup
 * failed), permerror (no key, revoked key, syntax, …), neutral (not
 * verified), none (unsigned).
 * Limits: DKIM_SIGNATURES_MAX signatures are verified, the others ignored
 * (dkim_set_prescreen + dkim_sig_ignore) and counted; a DNS reply larger
 * than DKIM_DNS_REPLY_MAX counts as a lookup failure.
 */
#include "lmtpfilter/dkim.h"

#include <arpa/nameser.h>
#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <opendkim/dkim.h>

#include "lmtpfilter/dkim_body.h"
#include "lmtpfilter/dkim_keycache.h"
#include "lmtpfilter/dns_source.h"
#include "lmtpfilter/spool.h"

/* libopendkim's reply buffer is 8192 bytes; we never write more. */
#define DKIM_DNS_REPLY_MAX 8192
#define DKIM_DNS_HEADER_LEN 12
#define DKIM_DNS_NAME_MAX 255
/* Bytes of a synthesised answer record around its rdata: name pointer,
 * type, class, TTL, rdlength. */
#define DKIM_DNS_RR_OVERHEAD 12
#define DKIM_DNS_SYNTH_TTL 60
/* CRs at the end of a read kept for the next piece (see dkim_feed). */
#define DKIM_HELD_CRS_MAX 1024
/* The largest header fed a field at a time (dkim_feed_header): half of
 * libopendkim's 64 KB header buffer, so no field of it would have been
 * cut there. */
#define DKIM_DIRECT_HEADER_MAX 32768

/*
 * Two library handles, identical but for DKIM_LIBFLAGS_FIXCRLF. With that
 * flag libopendkim copies every body byte through a one-byte append call to
 * repair bare CR and LF, which made up about half of the CPU a 100 KB
 * message cost (tests/bench/dkim-cost). A message whose line ends are all
 * CRLF (what LMTP delivers) comes out of the library the same either way,
 * so it goes to `crlf`; any other message (bare LF or CR: files given to
 * `lmtpfilter check`) goes to `fixcrlf`, and if that only shows part-way
 * through the message, the verification starts over there.
 */
struct dkim_verifier {
	DKIM_LIB *crlf;
	DKIM_LIB *fixcrlf;
	struct dns_source dns;  /* all zero in key-file mode */
	bool fast_body;         /* body hashes by dkim_body.c (struct dkim_fast_body) */
};

/* One key lookup: done synchronously in query_start, reported by waitreply. */
struct dkim_dns_query {
	int status;           /* DKIM_DNS_SUCCESS or DKIM_DNS_ERROR */
	size_t len;           /* reply bytes written to the library's buffer */
};

/* ---- DNS hooks ---------------------------------------------------------- */

static void dkim_put16(unsigned char *p, unsigned v)
{
	p[0] = (v >> 8) & 0xff;
	p[1] = v & 0xff;
}

/* dkim_dns_put_name - name in wire format at p; returns bytes or 0. */
static size_t dkim_dns_put_name(const char *name, unsigned char *p, size_t room)
{
	size_t pos = 0;

	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t label = dot != NULL ? (size_t)(dot - name) : strlen(name);

		if (label == 0 || label > 63 || pos + 1 + label + 1 > room)
			return 0;
		p[pos++] = (unsigned char)label;
		memcpy(p + pos, name, label);
		pos += label;
		name += label;
		if (*name == '.')
			name++;
	}
	p[pos++] = 0;
	return pos > DKIM_DNS_NAME_MAX ? 0 : pos;
}

/* dkim_dns_synthesise - a reply packet built from the parsed answer, for a
 * source that gave no packet. Returns its length, or 0 if it won't fit. */
static size_t dkim_dns_synthesise(const struct dns_answer *answer, const char *name,
				  int type, unsigned char *buf, size_t buflen)
{
	unsigned rcode = answer->status == DNS_NXDOMAIN ? 3 : 0;
	size_t ancount = answer->status == DNS_OK ? answer->count : 0;
	size_t pos = DKIM_DNS_HEADER_LEN, n;

	if (buflen < DKIM_DNS_HEADER_LEN + 4)
		return 0;
	memset(buf, 0, DKIM_DNS_HEADER_LEN);
	buf[2] = 0x81;                        /* QR, RD */
	buf[3] = 0x80 | rcode;                /* RA, rcode */
	dkim_put16(buf + 4, 1);
	dkim_put16(buf + 6, (unsigned)ancount);
	n = dkim_dns_put_name(name, buf + pos, buflen - pos - 4);
	if (n == 0)
		return 0;
	pos += n;
	dkim_put16(buf + pos, (unsigned)type);
	dkim_put16(buf + pos + 2, ns_c_in);
	pos += 4;
	for (size_t i = 0; i < ancount; i++) {
		size_t len = answer->len[i];

		if (len > 0xffff || pos + DKIM_DNS_RR_OVERHEAD + len > buflen)
			return 0;
		dkim_put16(buf + pos, 0xc000 | DKIM_DNS_HEADER_LEN);
		dkim_put16(buf + pos + 2, (unsigned)type);
		dkim_put16(buf + pos + 4, ns_c_in);
		dkim_put16(buf + pos + 6, 0);
		dkim_put16(buf + pos + 8, DKIM_DNS_SYNTH_TTL);
		dkim_put16(buf + pos + 10, (unsigned)len);
		memcpy(buf + pos + DKIM_DNS_RR_OVERHEAD, answer->data[i], len);
		pos += DKIM_DNS_RR_OVERHEAD + len;
	}
	return pos;
}

/* dkim_dns_start - libopendkim's query_start hook: ask the source (service
 * is the verifier's struct dns_source) and keep the reply for waitreply. */
static int dkim_dns_start(void *service, int type, unsigned char *query,
			  unsigned char *buf, size_t buflen, void **qh)
{
	const struct dns_source *source = service;
	struct dns_answer *answer = NULL;
	struct dkim_dns_query *q;

	if (source == NULL || source->query == NULL || query == NULL || buf == NULL)
		return -1;
	if (buflen > DKIM_DNS_REPLY_MAX)
		buflen = DKIM_DNS_REPLY_MAX;

	q = g_new0(struct dkim_dns_query, 1);
	q->status = DKIM_DNS_ERROR;
	if (source->query(source->ctx, (const char *)query, type, &answer) == 0 &&
	    answer != NULL && answer->status != DNS_TEMPFAIL) {
		if (answer->packet != NULL && answer->packet_len >= DKIM_DNS_HEADER_LEN) {
			if (answer->packet_len <= buflen) {
				memcpy(buf, answer->packet, answer->packet_len);
				q->len = answer->packet_len;
			}
		} else {
			q->len = dkim_dns_synthesise(answer, (const char *)query, type, buf, buflen);
		}
		if (q->len > 0)
			q->status = DKIM_DNS_SUCCESS;
	}
	source->free_answer(source->ctx, &answer);
	*qh = q;
	return 0;
}

static int dkim_dns_waitreply(void *service, void *qh, struct timeval *timeout,
			      size_t *bytes, int *error, int *dnssec)
{
	struct dkim_dns_query *q = qh;

	if (q == NULL)
		return DKIM_DNS_INVALID;
	if (bytes != NULL)
		*bytes = q->len;
	if (error != NULL)
		*error = 0;
	if (dnssec != NULL)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	return q->status;
}

static int dkim_dns_cancel(void *service, void *qh)
{
	g_free(qh);
	return 0;
}

/* ---- the verifier -------------------------------------------------------- */

/* Verify the first DKIM_SIGNATURES_MAX signatures, ignore the rest. */
static DKIM_CBSTAT dkim_prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	for (int i = DKIM_SIGNATURES_MAX; i < nsigs; i++)
		dkim_sig_ignore(sigs[i]);
	return DKIM_CBSTAT_CONTINUE;
}

static int dkim_set_option(DKIM_LIB *lib, int option, void *value, size_t len,
			   const char *what, char **error_r)
{
	if (dkim_options(lib, DKIM_OP_SETOPT, option, value, len) != DKIM_STAT_OK) {
		*error_r = g_strdup_printf("libopendkim: cannot set %s", what);
		return -1;
	}
	return 0;
}

static int dkim_configure(DKIM_LIB *lib, struct dns_source *dns, unsigned int flags,
			  const struct dkim_verifier_options *opts, char **error_r)
{
	uint64_t fixed_time = opts != NULL ? opts->fixed_time : 0;

	flags |= DKIM_LIBFLAGS_BADSIGHANDLES;
	if (!dkim_libfeature(lib, DKIM_FEATURE_ED25519) ||
	    !dkim_libfeature(lib, DKIM_FEATURE_SHA256)) {
		*error_r = g_strdup("libopendkim was built without ed25519 or sha256 support");
		return -1;
	}

	if (dkim_set_option(lib, DKIM_OPTS_FLAGS, &flags, sizeof(flags), "flags", error_r) < 0)
		return -1;
	if (fixed_time != 0 &&
	    dkim_set_option(lib, DKIM_OPTS_FIXEDTIME, &fixed_time, sizeof(fixed_time),
			    "fixed time", error_r) < 0)
		return -1;
	if (opts != NULL && opts->key_file != NULL) {
		dkim_query_t method = DKIM_QUERY_FILE;

		if (dkim_set_option(lib, DKIM_OPTS_QUERYMETHOD, &method, sizeof(method),
				    "query method", error_r) < 0 ||
		    dkim_set_option(lib, DKIM_OPTS_QUERYINFO, (void *)opts->key_file,
				    strlen(opts->key_file), "key file", error_r) < 0)
			return -1;
	}
	if (dkim_set_prescreen(lib, dkim_prescreen) != DKIM_STAT_OK) {
		*error_r = g_strdup("libopendkim: cannot set the prescreen callback");
		return -1;
	}

	/* Our DNS source, never the library's own resolver. */
	dkim_dns_set_init(lib, NULL);
	dkim_dns_set_close(lib, NULL);
	dkim_dns_set_query_service(lib, dns);
	dkim_dns_set_query_start(lib, dkim_dns_start);
	dkim_dns_set_query_waitreply(lib, dkim_dns_waitreply);
	dkim_dns_set_query_cancel(lib, dkim_dns_cancel);
	return 0;
}

int dkim_verifier_new(const struct dns_source *dns, const struct dkim_verifier_options *opts,
		      struct dkim_verifier **v_r, char **error_r)
{
	bool usable = dns != NULL && dns->query != NULL && dns->free_answer != NULL;
	struct dkim_verifier *v;

	*v_r = NULL;
	if (!usable && (opts == NULL || opts->key_file == NULL)) {
		*error_r = g_strdup("DKIM needs a DNS source or a key file");
		return -1;
	}
	dkim_keycache_init();
	v = g_new0(struct dkim_verifier, 1);
	if (usable)
		v->dns = *dns;
	v->fast_body = opts == NULL || !opts->library_body;
	v->crlf = dkim_init(NULL, NULL);
	v->fixcrlf = dkim_init(NULL, NULL);
	if (v->crlf == NULL || v->fixcrlf == NULL) {
		*error_r = g_strdup("libopendkim: dkim_init failed");
		dkim_verifier_free(&v);
		return -1;
	}
	if (dkim_configure(v->crlf, &v->dns, 0, opts, error_r) < 0 ||
	    dkim_configure(v->fixcrlf, &v->dns, DKIM_LIBFLAGS_FIXCRLF, opts, error_r) < 0) {
		dkim_verifier_free(&v);
		return -1;
	}
	*v_r = v;
	return 0;
}

void dkim_verifier_free(struct dkim_verifier **vp)
{
	struct dkim_verifier *v = *vp;

	if (v == NULL)
		return;
	if (v->crlf != NULL)
		dkim_close(v->crlf);
	if (v->fixcrlf != NULL)
		dkim_close(v->fixcrlf);
	g_free(v);
	*vp = NULL;
}

/* ---- one message --------------------------------------------------------- */

/* dkim_copy_value - copy a tag value for reporting: visible characters
 * only (folding white space and control characters dropped), truncated. */
static void dkim_copy_value(char *dst, size_t size, const unsigned char *src, size_t max)
{
	size_t n = 0;

	if (src != NULL) {
		for (; *src != '\0' && n + 1 < size && n < max; src++) {
			if (*src > 0x20 && *src != 0x7f)
				dst[n++] = (char)*src;
		}
	}
	dst[n] = '\0';
}

static const unsigned char *dkim_tag(DKIM_SIGINFO *sig, const char *tag)
{
	return dkim_sig_gettagvalue(sig, false, (u_char *)tag);
}

static void dkim_describe(DKIM *dkim, DKIM_SIGINFO *sig, struct dkim_sig_result *r)
{
	const unsigned char *domain = dkim_sig_getdomain(sig);
	const unsigned char *selector = dkim_sig_getselector(sig);

	dkim_copy_value(r->domain, sizeof(r->domain), domain != NULL ? domain : dkim_tag(sig, "d"),
			SIZE_MAX);
	dkim_copy_value(r->selector, sizeof(r->selector),
			selector != NULL ? selector : dkim_tag(sig, "s"), SIZE_MAX);
	dkim_copy_value(r->algorithm, sizeof(r->algorithm), dkim_tag(sig, "a"), SIZE_MAX);
	dkim_copy_value(r->b, sizeof(r->b), dkim_tag(sig, "b"), DKIM_B_PREFIX_LEN);

	if (dkim_tag(sig, "i") != NULL)
		dkim_copy_value(r->identity, sizeof(r->identity), dkim_tag(sig, "i"), SIZE_MAX);
	else if (r->domain[0] != '\0')
		g_snprintf(r->identity, sizeof(r->identity), "@%s", r->domain);
}

static bool dkim_is_rsa(DKIM_SIGINFO *sig, bool *sha1_r)
{
	dkim_alg_t alg = DKIM_SIGN_UNKNOWN;

	if (dkim_sig_getsignalg(sig, &alg) != DKIM_STAT_OK)
		return false;
	*sha1_r = alg == DKIM_SIGN_RSASHA1;
	return alg == DKIM_SIGN_RSASHA1 || alg == DKIM_SIGN_RSASHA256;
}

/* dkim_passed_verdict - a cryptographically valid signature: pass, unless
 * local policy (RFC 8301) refuses its key size or hash. */
static enum verdict dkim_passed_verdict(DKIM_SIGINFO *sig, char *reason, size_t size)
{
	unsigned int bits = 0;
	bool sha1 = false;
	bool rsa = dkim_is_rsa(sig, &sha1);

	(void)dkim_sig_getkeysize(sig, &bits);
	if (rsa && bits < DKIM_RSA_MIN_BITS) {
		g_snprintf(reason, size, "%u-bit key, under %u bits", bits, DKIM_RSA_MIN_BITS);
		return VERDICT_POLICY;
	}
	if (sha1) {
		g_snprintf(reason, size, "rsa-sha1 is not accepted");
		return VERDICT_POLICY;
	}
	if (rsa)
		g_snprintf(reason, size, "%u-bit key", bits);
	else
		g_snprintf(reason, size, "ed25519 key");
	return VERDICT_PASS;
}

/*
 * Our own body hashes (dkim_body.c: libopendkim's relaxed body
 * canonicalisation costs about 10 ns per byte). Used for a clean CRLF
 * message whose signatures have no l=: libopendkim then sees the header and
 * an empty body, so it still parses the signatures, fetches the keys and
 * verifies the header hash (DKIM_SIGFLAG_PASSED), while the body hash it
 * compares is that of the empty body; for a signature whose header hash
 * verified, the body hash made here decides instead.
 */
struct dkim_fast_body {
	bool active;
	struct dkim_body_hash *hash[2][2];   /* [relaxed][sha1] */
};

static void dkim_fast_body_clear(struct dkim_fast_body *fb)
{
	for (int c = 0; c < 2; c++)
		for (int a = 0; a < 2; a++)
			dkim_body_hash_free(&fb->hash[c][a]);
	fb->active = false;
}

/* dkim_fast_body_slot - where the hash for SIG goes; NULL if this code
 * cannot make it (l=, unknown canonicalisation or algorithm). */
static struct dkim_body_hash **dkim_fast_body_slot(struct dkim_fast_body *fb, DKIM_SIGINFO *sig,
						    bool *relaxed_r, bool *sha1_r)
{
	dkim_canon_t header_canon, body_canon;
	dkim_alg_t alg;

	if (dkim_sig_getcanons(sig, &header_canon, &body_canon) != DKIM_STAT_OK ||
	    dkim_sig_getsignalg(sig, &alg) != DKIM_STAT_OK ||
	    dkim_tag(sig, "l") != NULL)
		return NULL;
	if (body_canon != DKIM_CANON_SIMPLE && body_canon != DKIM_CANON_RELAXED)
		return NULL;
	if (alg != DKIM_SIGN_RSASHA1 && alg != DKIM_SIGN_RSASHA256 && alg != DKIM_SIGN_ED25519SHA256)
		return NULL;
	*relaxed_r = body_canon == DKIM_CANON_RELAXED;
	*sha1_r = alg == DKIM_SIGN_RSASHA1;
	return &fb->hash[*relaxed_r][*sha1_r];
}

/* dkim_fast_body_setup - after the header: make a hash for every signature
 * libopendkim will verify, or leave fb inactive if one of them needs the
 * library's own body processing. */
static void dkim_fast_body_setup(DKIM *dkim, struct dkim_fast_body *fb)
{
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0;

	if (dkim_getsiglist(dkim, &sigs, &nsigs) != DKIM_STAT_OK || sigs == NULL || nsigs == 0)
		return;
	for (int i = 0; i < nsigs; i++) {
		struct dkim_body_hash **slot;
		bool relaxed, sha1;
		int error = dkim_sig_geterror(sigs[i]);

		if ((dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE) != 0 ||
		    (error != DKIM_SIGERROR_UNKNOWN && error != DKIM_SIGERROR_OK))
			continue;       /* never verified: the body does not matter */
		slot = dkim_fast_body_slot(fb, sigs[i], &relaxed, &sha1);
		if (slot == NULL) {
			dkim_fast_body_clear(fb);
			return;
		}
		if (*slot == NULL &&
		    (*slot = dkim_body_hash_new(relaxed ? DKIM_BODY_RELAXED : DKIM_BODY_SIMPLE,
						sha1)) == NULL) {
			dkim_fast_body_clear(fb);
			return;
		}
	}
	fb->active = true;
}

static void dkim_fast_body_update(struct dkim_fast_body *fb, const unsigned char *data, size_t len)
{
	for (int c = 0; c < 2; c++)
		for (int a = 0; a < 2; a++)
			if (fb->hash[c][a] != NULL)
				dkim_body_hash_update(fb->hash[c][a], data, len);
}

/* dkim_body_result - DKIM_SIGBH_* for SIG: libopendkim's, or ours when
 * the body went through dkim_body.c and the header hash verified. */
static int dkim_body_result(DKIM_SIGINFO *sig, struct dkim_fast_body *fb)
{
	struct dkim_body_hash **slot;
	const unsigned char *bh;
	const char *ours;
	bool relaxed, sha1;

	if (fb == NULL || !fb->active || (dkim_sig_getflags(sig) & DKIM_SIGFLAG_PASSED) == 0)
		return dkim_sig_getbh(sig);
	slot = dkim_fast_body_slot(fb, sig, &relaxed, &sha1);
	if (slot == NULL || *slot == NULL || (ours = dkim_body_hash_base64(*slot)) == NULL)
		return DKIM_SIGBH_UNTESTED;
	bh = dkim_tag(sig, "bh");
	return bh != NULL && strcmp((const char *)bh, ours) == 0 ? DKIM_SIGBH_MATCH
		: DKIM_SIGBH_MISMATCH;
}

/* dkim_sig_verdict - map libopendkim's state of one signature to RFC 8601. */
static enum verdict dkim_sig_verdict(DKIM_SIGINFO *sig, struct dkim_fast_body *fb,
				     char *reason, size_t size)
{
	unsigned int flags = dkim_sig_getflags(sig);
	int bh = dkim_body_result(sig, fb);
	int error = dkim_sig_geterror(sig);
	const char *text;

	if ((flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MATCH)
		return dkim_passed_verdict(sig, reason, size);

	switch (error) {
	case DKIM_SIGERROR_KEYFAIL:
		g_snprintf(reason, size, "key lookup failed");
		return VERDICT_TEMPERROR;
	case DKIM_SIGERROR_MULTIREPLY:
		g_snprintf(reason, size, "several key records");
		return VERDICT_TEMPERROR;
	case DKIM_SIGERROR_KEYTOOSMALL: {
		unsigned int bits = 0;

		(void)dkim_sig_getkeysize(sig, &bits);
		g_snprintf(reason, size, "%u-bit key, under %u bits", bits, DKIM_RSA_MIN_BITS);
		return VERDICT_POLICY;
	}
	case DKIM_SIGERROR_BADSIG:
		g_snprintf(reason, size, bh == DKIM_SIGBH_MISMATCH ? "body hash mismatch"
				: "signature did not verify");
		return VERDICT_FAIL;
	default:
		break;
	}
	if (bh == DKIM_SIGBH_MISMATCH) {
		g_snprintf(reason, size, "body hash mismatch");
		return VERDICT_FAIL;
	}
	if (error == DKIM_SIGERROR_UNKNOWN || error == DKIM_SIGERROR_OK) {
		g_snprintf(reason, size, "not verified");
		return VERDICT_NEUTRAL;
	}
	text = dkim_sig_geterrorstr(error);
	g_snprintf(reason, size, "%s", text != NULL ? text : "invalid signature");
	return VERDICT_PERMERROR;
}

/* dkim_collect - the results of the signatures libopendkim found. */
static void dkim_collect(DKIM *dkim, struct dkim_fast_body *fb, struct dkim_outcome *out)
{
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0;

	if (dkim_getsiglist(dkim, &sigs, &nsigs) != DKIM_STAT_OK || sigs == NULL)
		return;
	for (int i = 0; i < nsigs; i++) {
		struct dkim_sig_result *r;

		if ((dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE) != 0 ||
		    out->count == DKIM_SIGNATURES_MAX) {
			out->ignored++;
			continue;
		}
		r = &out->sigs[out->count++];
		memset(r, 0, sizeof(*r));
		dkim_describe(dkim, sigs[i], r);
		r->result = dkim_sig_verdict(sigs[i], fb, r->reason, sizeof(r->reason));
	}
}

enum dkim_feed_result {
	DKIM_FEED_DONE,       /* *status_r holds the library's last status */
	DKIM_FEED_NOT_CRLF,   /* check_crlf was set and the message is not clean CRLF */
	DKIM_FEED_READ_ERROR, /* *error_r set */
};

/* One pass over the message. */
struct dkim_feed {
	DKIM *dkim;
	bool check_crlf;          /* the clean-CRLF pass */
	bool fast_body;           /* in that pass, hash the body with dkim_body.c */
	bool direct_header;       /* the header went to dkim_header, not dkim_chunk */
	bool in_header;           /* the blank line after the header not seen yet */
	unsigned char prev[3];    /* the three bytes before the current piece */
	struct dkim_fast_body fb;
	uint64_t fed;             /* bytes handed to dkim_feed_piece so far */
	uint64_t body_offset;     /* where the body began, once !in_header */
	bool ended_crlf;          /* the message's last bytes were CRLF */
};

/* dkim_header_end - offset in buf just past the LF of the blank line that
 * ends the header (the first CRLF CRLF, or a CRLF at the very start), or -1.
 * Only called on clean CRLF input. */
static ssize_t dkim_header_end(struct dkim_feed *f, const unsigned char *buf, size_t len)
{
	const unsigned char *p = buf, *end = buf + len;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		ptrdiff_t i = p - buf;
		unsigned char b[3];

		for (int k = 0; k < 3; k++) {
			ptrdiff_t j = i - 3 + k;

			b[k] = j >= 0 ? buf[j] : f->prev[3 + j];
		}
		if (b[0] == '\r' && b[1] == '\n' && b[2] == '\r')
			return i + 1;
		p++;
	}
	size_t from_buf = MIN(len, 3);

	for (size_t k = 0; k < 3; k++) {
		if (k < 3 - from_buf)
			f->prev[k] = f->prev[k + from_buf];
		else
			f->prev[k] = buf[len - 3 + k];
	}
	return -1;
}

/* dkim_feed_header - a whole header, clean CRLF through its blank line
 * (LEN bytes, LEN - 2 of them fields), to libopendkim a field at a time:
 * what dkim_chunk does for it byte by byte (each field without its last
 * CRLF, a line that starts with SP or HT continues the field before it, a
 * field it finds malformed skipped under BADSIGHANDLES, then dkim_eoh),
 * without its call per byte: 70k instructions less for a 1.7 KB header,
 * 8 % of a message. The caller keeps the fields under the 64 KB that
 * dkim_chunk's buffer holds (DKIM_DIRECT_HEADER_MAX). */
static DKIM_STAT dkim_feed_header(DKIM *dkim, const unsigned char *buf, size_t len)
{
	size_t field = 0, line = 0;
	DKIM_STAT status;

	while (line < len - 2) {
		const unsigned char *lf = memchr(buf + line, '\n', len - line);
		size_t next = (size_t)(lf - buf) + 1;

		if (next < len - 2 && buf[next] != ' ' && buf[next] != '\t') {
			status = dkim_header(dkim, (unsigned char *)buf + field, next - 2 - field);
			if (status != DKIM_STAT_OK && status != DKIM_STAT_SYNTAX)
				return status;
			field = next;
		}
		line = next;
	}
	if (len > 2) {
		status = dkim_header(dkim, (unsigned char *)buf + field, len - 4 - field);
		if (status != DKIM_STAT_OK && status != DKIM_STAT_SYNTAX)
			return status;
	}
	return dkim_eoh(dkim);
}

/* dkim_feed_piece - the next bytes of the message, to libopendkim or, after
 * the header, to our body hashes. */
static DKIM_STAT dkim_feed_piece(struct dkim_feed *f, const unsigned char *buf, size_t len)
{
	DKIM_STAT status;
	ssize_t end;

	if (len == 0)
		return DKIM_STAT_OK;
	f->fed += len;
	if (!f->in_header)
		goto body;
	if (!f->check_crlf || !f->fast_body || (end = dkim_header_end(f, buf, len)) < 0)
		return dkim_chunk(f->dkim, (unsigned char *)buf, len);
	/* Through the blank line: libopendkim parses the signatures (eoh). A
	 * header that is all in the first piece goes a field at a time. */
	f->direct_header = f->fed == len && (size_t)end <= DKIM_DIRECT_HEADER_MAX;
	if (f->direct_header)
		status = dkim_feed_header(f->dkim, buf, (size_t)end);
	else
		status = dkim_chunk(f->dkim, (unsigned char *)buf, (size_t)end);
	f->in_header = false;
	f->body_offset = f->fed - len + (uint64_t)end;
	if (status != DKIM_STAT_OK)
		return status;
	dkim_fast_body_setup(f->dkim, &f->fb);
	buf += end;
	len -= (size_t)end;
	if (len == 0)
		return DKIM_STAT_OK;
body:
	if (f->fb.active) {
		dkim_fast_body_update(&f->fb, buf, len);
		return DKIM_STAT_OK;
	}
	/* dkim_chunk, once past the header, hands its bytes to dkim_body; it
	 * never saw a directly fed header, so it would take them for one. */
	if (f->direct_header)
		return dkim_body(f->dkim, (unsigned char *)buf, len);
	return dkim_chunk(f->dkim, (unsigned char *)buf, len);
}

/* dkim_feed - stream the message into the handle. With f->check_crlf,
 * stop at the first chunk that is not clean CRLF (dkim_body_crlf_clean). A
 * message that does not end in a line end gets one, as RFC 6376 3.4.3 and
 * 3.4.4 add it to the canonical body (libopendkim adds it itself only in
 * relaxed canonicalisation). */
static enum dkim_feed_result dkim_feed(struct dkim_feed *f, dkim_read_fn read, void *ctx,
				       uint64_t size, DKIM_STAT *status_r, char **error_r)
{
	unsigned char *buf = g_malloc(DKIM_CHUNK_SIZE);
	DKIM_STAT status = DKIM_STAT_OK;
	uint64_t offset = 0;
	unsigned char last = 0;
	size_t held_crs = 0;

	while (offset < size && status == DKIM_STAT_OK) {
		size_t want = MIN(size - offset, (uint64_t)(DKIM_CHUNK_SIZE - held_crs));
		ssize_t got;
		size_t n, crs = 0;

		memset(buf, '\r', held_crs);
		got = read(ctx, offset, buf + held_crs, want);
		if (got < 0) {
			*error_r = g_strdup_printf("cannot read the message at offset %" G_GUINT64_FORMAT,
						   offset);
			g_free(buf);
			return DKIM_FEED_READ_ERROR;
		}
		if (got == 0)
			break;
		if (f->check_crlf && !dkim_body_crlf_clean(buf, (size_t)got, &last)) {
			g_free(buf);
			return DKIM_FEED_NOT_CRLF;
		}
		offset += (uint64_t)got;
		n = held_crs + (size_t)got;
		last = buf[n - 1];
		/* libopendkim repairs a bare CR only when the byte after it is in
		 * the same piece: with FIXCRLF, no piece but the last ends in a
		 * CR (short of absurd runs of them), so the result does not
		 * depend on where reads end. */
		while (!f->check_crlf && offset < size && crs < n && crs < DKIM_HELD_CRS_MAX &&
		       buf[n - 1 - crs] == '\r')
			crs++;
		if (crs == DKIM_HELD_CRS_MAX)
			crs = 0;
		held_crs = crs;
		if (n > crs)
			status = dkim_feed_piece(f, buf, n - crs);
	}
	/* CRs still held (a read came up short): one piece, as they came */
	if (held_crs > 0 && status == DKIM_STAT_OK) {
		memset(buf, '\r', held_crs);
		status = dkim_feed_piece(f, buf, held_crs);
	}
	g_free(buf);
	f->ended_crlf = offset > 0 && last == '\n';  /* in the clean pass, after a CR */
	if (status == DKIM_STAT_OK && last == '\r')
		status = dkim_feed_piece(f, (const unsigned char *)"\n", 1);
	else if (status == DKIM_STAT_OK && offset > 0 && last != '\n')
		status = dkim_feed_piece(f, (const unsigned char *)"\r\n", 2);
	/* dkim_chunk's end call; after a direct header it would run dkim_eoh
	 * again (dkim_eom accepts a handle dkim_chunk never saw). */
	if (status == DKIM_STAT_OK && !f->direct_header)
		status = dkim_chunk(f->dkim, NULL, 0);
	if (status == DKIM_STAT_OK) {
		_Bool testkey = false;

		status = dkim_eom(f->dkim, &testkey);
	}
	*status_r = status;
	return DKIM_FEED_DONE;
}

/* dkim_digests_keep - our sha256 body hashes into out, when they are of
 * the body as struct dkim_body_digests defines it. */
static void dkim_digests_keep(const struct dkim_feed *f, struct dkim_outcome *out)
{
	if (!f->check_crlf || !f->fb.active || !f->ended_crlf || f->in_header)
		return;
	out->digests.offset = f->body_offset;
	for (int c = 0; c < 2; c++) {
		const char *b64 = f->fb.hash[c][0] != NULL ? dkim_body_hash_base64(f->fb.hash[c][0]) : NULL;

		if (b64 != NULL)
			g_strlcpy(out->digests.sha256[c], b64, sizeof(out->digests.sha256[c]));
	}
}

void dkim_outcome_init(struct dkim_outcome *out)
{
	out->count = 0;
	out->ignored = 0;
	memset(&out->digests, 0, sizeof(out->digests));
}

void dkim_outcome_set_one(struct dkim_outcome *out, enum verdict result, const char *reason)
{
	struct dkim_sig_result *r = &out->sigs[0];

	memset(r, 0, sizeof(*r));
	r->result = result;
	g_strlcpy(r->reason, reason, sizeof(r->reason));
	out->count = 1;
}

int dkim_verify_message(struct dkim_verifier *v, dkim_read_fn read, void *ctx, uint64_t size,
			struct dkim_outcome *out_r, char **error_r)
{
	DKIM_STAT status = DKIM_STAT_OK;
	enum dkim_feed_result fed = DKIM_FEED_NOT_CRLF;
	struct dkim_feed f = { 0 };

	dkim_outcome_init(out_r);
	for (int pass = 0; pass < 2 && fed == DKIM_FEED_NOT_CRLF; pass++) {
		if (f.dkim != NULL)
			dkim_free(f.dkim);
		dkim_fast_body_clear(&f.fb);
		f.check_crlf = pass == 0;
		f.fast_body = v->fast_body;
		f.direct_header = false;
		f.in_header = true;
		f.prev[0] = 0;
		f.prev[1] = '\r';          /* as if after a CRLF: a leading CRLF */
		f.prev[2] = '\n';          /* is an empty header */
		f.fed = 0;
		f.ended_crlf = false;
		f.dkim = dkim_verify(pass == 0 ? v->crlf : v->fixcrlf,
				     (const unsigned char *)"lmtpfilter", NULL, &status);
		if (f.dkim == NULL) {
			*error_r = g_strdup_printf("libopendkim: %s", dkim_getresultstr(status));
			return -1;
		}
		fed = dkim_feed(&f, read, ctx, size, &status, error_r);
	}
	if (fed == DKIM_FEED_READ_ERROR) {
		dkim_fast_body_clear(&f.fb);
		dkim_free(f.dkim);
		return -1;
	}
	dkim_collect(f.dkim, &f.fb, out_r);
	dkim_digests_keep(&f, out_r);
	dkim_fast_body_clear(&f.fb);
	if (out_r->count == 0 && out_r->ignored == 0 && status != DKIM_STAT_OK &&
	    status != DKIM_STAT_NOSIG) {
		if (status == DKIM_STAT_NORESOURCE || status == DKIM_STAT_INTERNAL) {
			*error_r = g_strdup_printf("libopendkim: %s", dkim_getresultstr(status));
			dkim_free(f.dkim);
			return -1;
		}
		/* Signed, but the message could not be parsed far enough to
		 * tell which signatures it carries. */
		dkim_outcome_set_one(out_r, VERDICT_PERMERROR,
				     dkim_geterror(f.dkim) != NULL ? dkim_geterror(f.dkim)
				     : dkim_getresultstr(status));
	}
	dkim_free(f.dkim);
	return 0;
}

ssize_t dkim_spool_read(void *spool, uint64_t offset, void *buf, size_t len)
{
	char *error = NULL;
	ssize_t n = spool_read(spool, offset, buf, len, &error);

	/* the caller reports a failed read on its own */
	g_free(error);
	return n;
}
