/*
 * arc - ARC chain verification (RFC 8617 5.2), keys through a DNS source and the key cache
 *
 * Owns: per arc_verify_message call, a copy of the header block (at most
 * ARC_HEADER_BLOCK_MAX), the parsed chain (arc_fields.c), up to two body
 * hashes (dkim_body.c, one per body canonicalisation the AMSes use) and
 * one canonical header buffer per signature checked.
 * Steps, as section 5.2 orders them: structure and cv= (arc_fields.c), the
 * newest AMS, the older AMSes for oldest-pass, every AS newest first.
 * Keys: TXT at s._domainkey.d through the struct dns_source (the shared
 * resolver in the daemon, as for SPF, DKIM and DMARC); a timeout or
 * SERVFAIL is temperror and a chain whose result hangs on that key is
 * temperror, never pass. RSA keys are parsed by d2i_PUBKEY_bio, which
 * dkim_keycache.c serves from its cache (the same keys DKIM uses);
 * ed25519 keys are 32 raw bytes, made into a key directly (no decoder,
 * nothing worth caching).
 * Algorithms: rsa-sha256 (keys of ARC_RSA_MIN_BITS and more) and
 * ed25519-sha256 (RFC 8463); anything else is permerror for that
 * signature, so the chain fails. AMS l= is refused (permerror): a length
 * limit lets anyone append to the body.
 */
#include "lmtpfilter/arc.h"

#include <arpa/nameser.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lmtpfilter/dkim_body.h"
#include "lmtpfilter/dns_source.h"

#define ARC_ED25519_KEY_LEN 32
#define ARC_SHA256_LEN 32
/* Longest selector._domainkey.domain looked up (a DNS name). */
#define ARC_KEY_NAME_MAX 253

struct arc_verifier {
	struct dns_source dns;    /* query NULL: keys only from key_file */
	GHashTable *keys;         /* key_file: lower-case name -> TXT value */
};

/* The body hashes one message needs, by canonicalisation: made here, or
 * taken from another verifier's (known). */
struct arc_body {
	struct dkim_body_hash *hash[2];   /* [DKIM_BODY_SIMPLE], [DKIM_BODY_RELAXED] */
	const char *known[2];             /* base64, or NULL */
};

/* One message being verified. */
struct arc_message {
	struct arc_verifier *v;
	const struct header_block *block;
	struct arc_chain *chain;
	struct arc_body body;
	const struct dkim_body_digests *known; /* another verifier's body hashes, or NULL */
};

/* ---- verifier ----------------------------------------------------------- */

static int arc_keys_load(const char *path, GHashTable *keys, char **error_r)
{
	gchar *text = NULL, **lines;
	GError *gerr = NULL;

	if (!g_file_get_contents(path, &text, NULL, &gerr)) {
		*error_r = g_strdup_printf("arc key file: %s", gerr->message);
		g_error_free(gerr);
		return -1;
	}
	lines = g_strsplit(text, "\n", -1);
	for (gchar **l = lines; *l != NULL; l++) {
		gchar *sp = strpbrk(*l, " \t");

		if (sp == NULL)
			continue;
		*sp = '\0';
		g_hash_table_replace(keys, g_ascii_strdown(*l, -1), g_strstrip(g_strdup(sp + 1)));
	}
	g_strfreev(lines);
	g_free(text);
	return 0;
}

int arc_verifier_new(const struct dns_source *dns, const struct arc_verifier_options *opts,
		     struct arc_verifier **v_r, char **error_r)
{
	struct arc_verifier *v;
	const char *key_file = opts != NULL ? opts->key_file : NULL;

	if ((dns == NULL || dns->query == NULL || dns->free_answer == NULL) && key_file == NULL) {
		*error_r = g_strdup("arc: neither a DNS source nor a key file");
		return -1;
	}
	v = g_new0(struct arc_verifier, 1);
	if (dns != NULL)
		v->dns = *dns;
	if (key_file != NULL) {
		v->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
		if (arc_keys_load(key_file, v->keys, error_r) < 0) {
			arc_verifier_free(&v);
			return -1;
		}
	}
	*v_r = v;
	return 0;
}

void arc_verifier_free(struct arc_verifier **v)
{
	if (*v == NULL)
		return;
	if ((*v)->keys != NULL)
		g_hash_table_destroy((*v)->keys);
	g_free(*v);
	*v = NULL;
}

/* ---- keys --------------------------------------------------------------- */

/* arc_txt_join - the character-strings of one TXT rdata, joined. */
static char *arc_txt_join(const unsigned char *rdata, size_t len)
{
	GString *s = g_string_sized_new(len);

	for (size_t pos = 0; pos < len;) {
		size_t n = rdata[pos++];

		if (n > len - pos)
			n = len - pos;
		g_string_append_len(s, (const char *)rdata + pos, (gssize)n);
		pos += n;
	}
	return g_string_free(s, FALSE);
}

/* arc_key_record - the key TXT for name: pass, or temperror/permerror. */
static enum verdict arc_key_record(struct arc_verifier *v, const char *name, char **txt_r,
				   char *reason, size_t rsize)
{
	struct dns_answer *answer = NULL;
	enum verdict result = VERDICT_PERMERROR;

	if (v->keys != NULL) {
		const char *txt = g_hash_table_lookup(v->keys, name);

		if (txt == NULL) {
			snprintf(reason, rsize, "no key %s", name);
			return VERDICT_PERMERROR;
		}
		*txt_r = g_strdup(txt);
		return VERDICT_PASS;
	}
	if (v->dns.query(v->dns.ctx, name, ns_t_txt, &answer) < 0 || answer == NULL ||
	    answer->status == DNS_TEMPFAIL) {
		snprintf(reason, rsize, "key lookup %s failed", name);
		result = VERDICT_TEMPERROR;
	} else if (answer->status != DNS_OK || answer->count == 0) {
		snprintf(reason, rsize, "no key %s", name);
	} else {
		*txt_r = arc_txt_join(answer->data[0], answer->len[0]);
		result = VERDICT_PASS;
	}
	v->dns.free_answer(v->dns.ctx, &answer);
	return result;
}

/* arc_key_make - an EVP_PKEY of type k from the decoded p=, or NULL. */
static EVP_PKEY *arc_key_make(bool ed25519, const unsigned char *der, size_t len,
			      char *reason, size_t rsize)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio;

	if (ed25519) {
		if (len == ARC_ED25519_KEY_LEN)
			pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, len);
		if (pkey == NULL)
			snprintf(reason, rsize, "bad ed25519 key");
		return pkey;
	}
	/* A memory BIO: what dkim_keycache.c serves from its cache. */
	bio = BIO_new_mem_buf(der, (int)len);
	if (bio != NULL)
		pkey = d2i_PUBKEY_bio(bio, NULL);
	BIO_free(bio);
	if (pkey != NULL && EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	if (pkey == NULL)
		snprintf(reason, rsize, "bad RSA key");
	else if (EVP_PKEY_get_bits(pkey) < ARC_RSA_MIN_BITS) {
		snprintf(reason, rsize, "RSA key of %d bits", EVP_PKEY_get_bits(pkey));
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	return pkey;
}

/* arc_key_parse - the key of a record (RFC 6376 3.6.1) for the algorithm. */
static EVP_PKEY *arc_key_parse(const char *txt, bool ed25519, char *reason, size_t rsize)
{
	struct arc_tag_list tags;
	const struct arc_tag *k, *p, *ver, *h;
	char *error = NULL;
	EVP_PKEY *pkey;
	guchar *der;
	gsize len = 0;
	char *b64;

	if (arc_tag_list_parse(txt, strlen(txt), &tags, &error) < 0) {
		snprintf(reason, rsize, "key record: %s", error);
		g_free(error);
		return NULL;
	}
	ver = arc_tag_find(&tags, "v");
	k = arc_tag_find(&tags, "k");
	h = arc_tag_find(&tags, "h");
	p = arc_tag_find(&tags, "p");
	if ((ver != NULL && !arc_tag_is(ver, "DKIM1")) || p == NULL ||
	    (h != NULL && g_strstr_len(h->value, (gssize)h->value_len, "sha256") == NULL)) {
		snprintf(reason, rsize, "unusable key record");
		return NULL;
	}
	if (ed25519 ? !arc_tag_is(k, "ed25519") : (k != NULL && !arc_tag_is(k, "rsa"))) {
		snprintf(reason, rsize, "key type does not match a=");
		return NULL;
	}
	b64 = arc_tag_compact(p);
	if (b64[0] == '\0') {
		snprintf(reason, rsize, "key revoked");
		g_free(b64);
		return NULL;
	}
	der = g_base64_decode(b64, &len);
	pkey = arc_key_make(ed25519, der, len, reason, rsize);
	g_free(der);
	g_free(b64);
	return pkey;
}

/* arc_key_name_ok - s and d make a plausible DNS name (no spaces, NUL, ...). */
static bool arc_key_name_ok(const char *name)
{
	if (strlen(name) > ARC_KEY_NAME_MAX)
		return false;
	for (const char *c = name; *c != '\0'; c++) {
		if (!g_ascii_isalnum(*c) && *c != '-' && *c != '.' && *c != '_')
			return false;
	}
	return strstr(name, "..") == NULL && name[strlen(name) - 1] != '.';
}

/* arc_key_get - the key a signature names: pass with *pkey_r, or why not. */
static enum verdict arc_key_get(struct arc_verifier *v, const struct arc_tag_list *tags,
				bool ed25519, EVP_PKEY **pkey_r, char *reason, size_t rsize)
{
	char s[ARC_KEY_NAME_MAX + 1], d[ARC_KEY_NAME_MAX + 1], *name, *txt = NULL;
	enum verdict result;

	arc_tag_copy(arc_tag_find(tags, "s"), s, sizeof(s));
	arc_tag_copy(arc_tag_find(tags, "d"), d, sizeof(d));
	name = g_ascii_strdown(s, -1);
	{
		char *full = g_strdup_printf("%s._domainkey.%s", name, d);

		g_free(name);
		name = g_ascii_strdown(full, -1);
		g_free(full);
	}
	if (!arc_key_name_ok(name)) {
		snprintf(reason, rsize, "bad s= or d=");
		g_free(name);
		return VERDICT_PERMERROR;
	}
	result = arc_key_record(v, name, &txt, reason, rsize);
	if (result == VERDICT_PASS) {
		*pkey_r = arc_key_parse(txt, ed25519, reason, rsize);
		if (*pkey_r == NULL)
			result = VERDICT_PERMERROR;
	}
	g_free(txt);
	g_free(name);
	return result;
}

/* ---- signatures --------------------------------------------------------- */

/* arc_crypto_verify - sig over data with pkey (rsa: PKCS#1 v1.5 SHA-256;
 * ed25519: PureEdDSA over the SHA-256 of data, RFC 8463). */
static bool arc_crypto_verify(EVP_PKEY *pkey, bool ed25519, const unsigned char *sig,
			      size_t sig_len, const GString *data)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char hash[ARC_SHA256_LEN];
	unsigned hash_len = 0;
	bool ok = false;

	if (ctx == NULL)
		return false;
	if (ed25519) {
		ok = EVP_Digest(data->str, data->len, hash, &hash_len, EVP_sha256(), NULL) == 1 &&
		     EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
		     EVP_DigestVerify(ctx, sig, sig_len, hash, hash_len) == 1;
	} else {
		ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
		     EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)data->str,
				      data->len) == 1;
	}
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* arc_sig_verify - check b= of a signature over the canonical headers. */
static enum verdict arc_sig_verify(struct arc_verifier *v, const struct arc_tag_list *tags,
				   const GString *data, char *reason, size_t rsize)
{
	const struct arc_tag *a = arc_tag_find(tags, "a");
	bool ed25519 = arc_tag_is(a, "ed25519-sha256");
	EVP_PKEY *pkey = NULL;
	enum verdict result;
	guchar *sig;
	gsize sig_len = 0;
	char *b64;

	if (!ed25519 && !arc_tag_is(a, "rsa-sha256")) {
		snprintf(reason, rsize, "unsupported algorithm");
		return VERDICT_PERMERROR;
	}
	result = arc_key_get(v, tags, ed25519, &pkey, reason, rsize);
	if (result != VERDICT_PASS)
		return result;
	b64 = arc_tag_compact(arc_tag_find(tags, "b"));
	sig = g_base64_decode(b64, &sig_len);
	result = arc_crypto_verify(pkey, ed25519, sig, sig_len, data) ? VERDICT_PASS : VERDICT_FAIL;
	if (result == VERDICT_FAIL)
		snprintf(reason, rsize, "bad signature");
	g_free(sig);
	g_free(b64);
	EVP_PKEY_free(pkey);
	return result;
}

/* arc_put_field - one field into data, canonicalised, b= left out if signer. */
static void arc_put_field(GString *data, const struct raw_header *h, bool relaxed,
			  const struct arc_tag *b, bool signer)
{
	size_t skip_start = signer ? b->span_start : 0, skip_end = signer ? b->span_end : 0;

	if (relaxed) {
		arc_canon_relaxed(data, h->name, h->name_len, h->value, h->value_len, skip_start,
				  skip_end, !signer);
	} else {
		size_t shift = (size_t)(h->value - h->name);

		arc_canon_simple(data, h->name, shift + h->value_len, skip_start + shift,
				 skip_end + shift, !signer);
	}
}

/* ---- ARC-Message-Signature ---------------------------------------------- */

/* arc_ams_canon - c= of an AMS (RFC 6376 default simple/simple); -1 if unknown. */
static int arc_ams_canon(const struct arc_tag_list *tags, bool *header_relaxed_r,
			 enum dkim_body_canon *body_r)
{
	const struct arc_tag *c = arc_tag_find(tags, "c");
	char value[32];
	char *slash;

	*header_relaxed_r = false;
	*body_r = DKIM_BODY_SIMPLE;
	if (c == NULL)
		return 0;
	if (c->value_len >= sizeof(value))
		return -1;
	arc_tag_copy(c, value, sizeof(value));
	slash = strchr(value, '/');
	if (slash != NULL) {
		*slash++ = '\0';
		if (g_ascii_strcasecmp(slash, "relaxed") == 0)
			*body_r = DKIM_BODY_RELAXED;
		else if (g_ascii_strcasecmp(slash, "simple") != 0)
			return -1;
	}
	if (g_ascii_strcasecmp(value, "relaxed") == 0)
		*header_relaxed_r = true;
	else if (g_ascii_strcasecmp(value, "simple") != 0)
		return -1;
	return 0;
}

/* arc_name_matches - the h= entry (name, len) names field h. */
static bool arc_name_matches(const struct raw_header *h, const char *name, size_t len)
{
	return h->name_len == len && g_ascii_strncasecmp(h->name, name, len) == 0;
}

/* arc_h_next - the next name of h= from pos on (blanks trimmed) into
 * name_r and len_r; false at the end. */
static bool arc_h_next(const struct arc_tag *h, size_t *pos, const char **name_r, size_t *len_r)
{
	size_t start = *pos, end;

	if (h == NULL || *pos >= h->value_len)
		return false;
	while (*pos < h->value_len && h->value[*pos] != ':')
		(*pos)++;
	end = (*pos)++;
	while (start < end && g_ascii_isspace(h->value[start]))
		start++;
	while (end > start && g_ascii_isspace(h->value[end - 1]))
		end--;
	*name_r = h->value + start;
	*len_r = end - start;
	return true;
}

static bool arc_h_name_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && g_ascii_strncasecmp(name, want, len) == 0;
}

/* arc_ams_headers - the fields h= names, bottom-up per name as RFC 6376
 * 5.4.2 says, canonicalised into data. -1 if h= names an ARC-Seal. */
static int arc_ams_headers(const struct header_block *block, const struct arc_tag *h,
			   bool relaxed, GString *data)
{
	gboolean *used = g_new0(gboolean, block->count + 1);
	size_t pos = 0, len;
	const char *name;
	int rc = 0;

	while (rc == 0 && arc_h_next(h, &pos, &name, &len)) {
		if (arc_h_name_is(name, len, "ARC-Seal")) {
			rc = -1;
			break;
		}
		for (size_t n = block->count; n-- > 0;) {
			if (!used[n] && arc_name_matches(&block->headers[n], name, len)) {
				used[n] = TRUE;
				arc_put_field(data, &block->headers[n], relaxed, NULL, false);
				break;
			}
		}
	}
	g_free(used);
	return rc;
}

/* arc_ams_body_ok - bh= equals the body hash of the AMS's canonicalisation. */
static bool arc_ams_body_ok(struct arc_message *m, const struct arc_tag_list *tags,
			    enum dkim_body_canon canon)
{
	const char *have = m->body.known[canon] != NULL ? m->body.known[canon] :
			   m->body.hash[canon] != NULL ? dkim_body_hash_base64(m->body.hash[canon]) : NULL;
	char *want = arc_tag_compact(arc_tag_find(tags, "bh"));
	bool ok = have != NULL && strcmp(have, want) == 0;

	g_free(want);
	return ok;
}

/* arc_h_names_from - does h= list From? RFC 6376 5.4, which RFC 8617
 * 4.1.2 takes over for the AMS: From MUST be signed; an AMS that leaves
 * it out would let anyone replay a sealed message under any author. */
static bool arc_h_names_from(const struct arc_tag *h)
{
	size_t pos = 0, len;
	const char *name;

	while (arc_h_next(h, &pos, &name, &len))
		if (arc_h_name_is(name, len, "From"))
			return true;
	return false;
}

/* arc_ams_verify - the AMS of instance i. */
static enum verdict arc_ams_verify(struct arc_message *m, unsigned i, char *reason, size_t rsize)
{
	const struct arc_chain_set *set = &m->chain->sets[i - 1];
	enum dkim_body_canon body_canon;
	enum verdict result;
	bool relaxed;
	GString *data;

	if (arc_ams_canon(&set->ams, &relaxed, &body_canon) < 0) {
		snprintf(reason, rsize, "unknown c=");
		return VERDICT_PERMERROR;
	}
	if (arc_tag_find(&set->ams, "l") != NULL) {
		snprintf(reason, rsize, "l= not accepted");
		return VERDICT_PERMERROR;
	}
	if (!arc_h_names_from(arc_tag_find(&set->ams, "h"))) {
		snprintf(reason, rsize, "h= does not sign From");
		return VERDICT_PERMERROR;
	}
	if (!arc_ams_body_ok(m, &set->ams, body_canon)) {
		snprintf(reason, rsize, "body hash mismatch");
		return VERDICT_FAIL;
	}
	data = g_string_sized_new(4096);
	if (arc_ams_headers(m->block, arc_tag_find(&set->ams, "h"), relaxed, data) < 0) {
		snprintf(reason, rsize, "h= names ARC-Seal");
		g_string_free(data, TRUE);
		return VERDICT_PERMERROR;
	}
	arc_put_field(data, set->field[ARC_FIELD_AMS], relaxed, arc_tag_find(&set->ams, "b"), true);
	result = arc_sig_verify(m->v, &set->ams, data, reason, rsize);
	g_string_free(data, TRUE);
	return result;
}

/* ---- ARC-Seal ----------------------------------------------------------- */

/* arc_as_verify - the AS of instance i: over sets 1..i, AAR AMS AS each,
 * relaxed, its own b= left out (RFC 8617 5.1.1). */
static enum verdict arc_as_verify(struct arc_message *m, unsigned i, char *reason, size_t rsize)
{
	const struct arc_chain_set *own = &m->chain->sets[i - 1];
	const struct arc_tag *b = arc_tag_find(&own->as, "b");
	GString *data = g_string_sized_new(4096 * i);
	enum verdict result;

	for (unsigned k = 1; k <= i; k++) {
		const struct arc_chain_set *set = &m->chain->sets[k - 1];

		for (int kind = 0; kind < ARC_FIELD_KINDS; kind++)
			arc_put_field(data, set->field[kind], true, b, k == i && kind == ARC_FIELD_AS);
	}
	result = arc_sig_verify(m->v, &own->as, data, reason, rsize);
	g_string_free(data, TRUE);
	return result;
}

/* ---- the message -------------------------------------------------------- */

/* arc_header_end - the header block ends within buf[0..len) (empty line). */
static bool arc_header_end(const char *buf, size_t len, size_t from)
{
	if (len >= 1 && buf[0] == '\n')
		return true;
	if (len >= 2 && buf[0] == '\r' && buf[1] == '\n')
		return true;
	for (size_t i = from > 0 ? from - 1 : 0; i + 1 < len; i++) {
		if (buf[i] == '\n' && (buf[i + 1] == '\n' ||
				       (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')))
			return true;
	}
	return false;
}

/* arc_read_header - the start of the message, through its header block. */
static int arc_read_header(arc_read_fn read, void *ctx, uint64_t size, GByteArray *buf)
{
	guint8 *chunk = g_malloc(ARC_CHUNK_SIZE);
	int rc = 0;

	while (buf->len < size && buf->len < ARC_HEADER_BLOCK_MAX) {
		size_t from = buf->len, want = ARC_CHUNK_SIZE;
		ssize_t n;

		if (want > size - buf->len)
			want = (size_t)(size - buf->len);
		n = read(ctx, buf->len, chunk, want);
		if (n <= 0) {
			rc = n < 0 ? -1 : 0;
			break;
		}
		g_byte_array_append(buf, chunk, (guint)n);
		if (arc_header_end((const char *)buf->data, buf->len, from))
			break;
	}
	g_free(chunk);
	return rc;
}

/* arc_body_update - one piece of the body into every hash wanted. */
static void arc_body_update(struct arc_body *body, const unsigned char *data, size_t len)
{
	for (int c = 0; c < 2; c++)
		if (body->hash[c] != NULL && len > 0)
			dkim_body_hash_update(body->hash[c], data, len);
}

/* arc_body_feed - body bytes into every hash wanted, bare LF made CRLF:
 * the bytes go to the hashes in place, a CR added before each LF that does
 * not follow one (*last is the byte before data, and becomes its last). */
static void arc_body_feed(struct arc_body *body, const unsigned char *data, size_t len,
			  unsigned char *last)
{
	size_t start = 0, at = 0;
	const unsigned char *lf;

	while (at < len && (lf = memchr(data + at, '\n', len - at)) != NULL) {
		at = (size_t)(lf - data);
		if ((at > 0 ? data[at - 1] : *last) != '\r') {
			arc_body_update(body, data + start, at - start);
			arc_body_update(body, (const unsigned char *)"\r", 1);
			start = at;
		}
		at++;
	}
	arc_body_update(body, data + start, len - start);
	if (len > 0)
		*last = data[len - 1];
}

/* arc_body_hash - stream the body from offset into the hashes the AMSes need. */
static int arc_body_hash(struct arc_message *m, arc_read_fn read, void *ctx, uint64_t offset,
			 uint64_t size)
{
	unsigned char *chunk;
	unsigned char last = 0;
	bool hashing = false;
	int rc = 0;

	for (unsigned i = 1; i <= m->chain->count; i++) {
		enum dkim_body_canon canon;
		bool relaxed;

		if (arc_ams_canon(&m->chain->sets[i - 1].ams, &relaxed, &canon) < 0 ||
		    m->body.hash[canon] != NULL || m->body.known[canon] != NULL)
			continue;
		if (m->known != NULL && m->known->offset == offset && m->known->sha256[canon][0] != '\0')
			m->body.known[canon] = m->known->sha256[canon];
		else
			hashing = (m->body.hash[canon] = dkim_body_hash_new(canon, false)) != NULL || hashing;
	}
	if (!hashing)
		return 0;
	chunk = g_malloc(ARC_CHUNK_SIZE);
	while (offset < size) {
		ssize_t n = read(ctx, offset, chunk, ARC_CHUNK_SIZE);

		if (n <= 0) {
			rc = n < 0 ? -1 : 0;
			break;
		}
		arc_body_feed(&m->body, chunk, (size_t)n, &last);
		offset += (uint64_t)n;
	}
	g_free(chunk);
	return rc;
}

/* ---- chain validation --------------------------------------------------- */

/* arc_decide - a non-pass signature ends the chain: fail, or temperror when
 * it was the key lookup that failed. */
static void arc_decide(struct arc_outcome *out, enum verdict sig, const char *what, unsigned i,
		       const char *why)
{
	out->result = sig == VERDICT_TEMPERROR ? VERDICT_TEMPERROR : VERDICT_FAIL;
	snprintf(out->reason, sizeof(out->reason), "%s i=%u: %s", what, i, why);
}

/* arc_evaluate - RFC 8617 5.2 steps 4-7 on a well-formed chain. */
static void arc_evaluate(struct arc_message *m, struct arc_outcome *out)
{
	unsigned n = (unsigned)m->chain->count, oldest = 0;
	struct arc_set_result *r = &out->sets[n - 1];

	r->ams = arc_ams_verify(m, n, r->reason, sizeof(r->reason));
	if (r->ams != VERDICT_PASS) {
		arc_decide(out, r->ams, "ARC-Message-Signature", n, r->reason);
		return;
	}
	for (unsigned x = n - 1; x >= 1; x--) {
		r = &out->sets[x - 1];
		r->ams = arc_ams_verify(m, x, r->reason, sizeof(r->reason));
		if (r->ams != VERDICT_PASS) {
			oldest = x + 1;
			break;
		}
	}
	for (unsigned x = n; x >= 1; x--) {
		char why[ARC_REASON_MAX] = "";

		r = &out->sets[x - 1];
		r->as = arc_as_verify(m, x, why, sizeof(why));
		if (r->as != VERDICT_PASS) {
			if (r->reason[0] == '\0')
				g_strlcpy(r->reason, why, sizeof(r->reason));
			arc_decide(out, r->as, "ARC-Seal", x, why);
			return;
		}
	}
	out->result = VERDICT_PASS;
	out->oldest_pass = oldest;
}

void arc_outcome_init(struct arc_outcome *out)
{
	out->result = VERDICT_NONE;
	out->oldest_pass = 0;
	out->set_count = 0;
	out->reason[0] = '\0';
	out->sealer_domain[0] = '\0';
	out->newest_aar = NULL;
}

/* arc_outcome_fill - what the collected fields say, before any signature. */
static void arc_outcome_fill(struct arc_outcome *out, const struct arc_chain *chain)
{
	static const char *const cv_names[] = { "none", "pass", "fail" };

	out->set_count = chain->count;
	for (size_t i = 0; i < chain->count; i++) {
		const struct arc_chain_set *set = &chain->sets[i];
		struct arc_set_result *r = &out->sets[i];

		memset(r, 0, sizeof(*r));
		r->instance = (unsigned)i + 1;
		r->cv = set->field[ARC_FIELD_AS] != NULL ? cv_names[set->cv] : "none";
		arc_tag_copy(arc_tag_find(&set->ams, "d"), r->ams_domain, sizeof(r->ams_domain));
		arc_tag_copy(arc_tag_find(&set->as, "d"), r->as_domain, sizeof(r->as_domain));
	}
	if (chain->count > 0) {
		const struct arc_chain_set *newest = &chain->sets[chain->count - 1];

		g_strlcpy(out->sealer_domain, out->sets[chain->count - 1].as_domain,
			  sizeof(out->sealer_domain));
		if (newest->field[ARC_FIELD_AAR] != NULL)
			out->newest_aar = g_strndup(newest->field[ARC_FIELD_AAR]->value,
						    newest->field[ARC_FIELD_AAR]->value_len);
	}
}

/* arc_verify_chain - everything after the header block was read. */
static int arc_verify_chain(struct arc_message *m, arc_read_fn read, void *ctx, uint64_t size,
			    struct arc_outcome *out, char **error_r)
{
	if (arc_chain_collect(m->block, m->chain, out->reason, sizeof(out->reason)) < 0) {
		arc_outcome_fill(out, m->chain);
		out->result = VERDICT_FAIL;
		return 0;
	}
	arc_outcome_fill(out, m->chain);
	if (m->chain->count == 0)
		return 0;
	if (arc_body_hash(m, read, ctx, m->block->body_offset, size) < 0) {
		*error_r = g_strdup("arc: cannot read the message body");
		out->result = VERDICT_TEMPERROR;
		g_strlcpy(out->reason, "message unreadable", sizeof(out->reason));
		return -1;
	}
	arc_evaluate(m, out);
	return 0;
}

int arc_verify_message(struct arc_verifier *v, arc_read_fn read, void *ctx, uint64_t size,
		       struct arc_outcome *out_r, char **error_r)
{
	return arc_verify_message_reusing(v, read, ctx, size, NULL, out_r, error_r);
}

int arc_verify_message_reusing(struct arc_verifier *v, arc_read_fn read, void *ctx, uint64_t size,
			       const struct dkim_body_digests *known, struct arc_outcome *out_r,
			       char **error_r)
{
	struct arc_message m = { .v = v, .known = known };
	struct header_block *block = NULL;
	GByteArray *buf = g_byte_array_new();
	g_autofree char *perror = NULL;
	int rc;

	arc_outcome_init(out_r);
	if (arc_read_header(read, ctx, size, buf) < 0) {
		g_byte_array_free(buf, TRUE);
		*error_r = g_strdup("arc: cannot read the message header");
		out_r->result = VERDICT_TEMPERROR;
		g_strlcpy(out_r->reason, "message unreadable", sizeof(out_r->reason));
		return -1;
	}
	header_block_parse((const char *)buf->data, buf->len, &block, &perror);
	m.block = block;
	m.chain = g_new(struct arc_chain, 1);     /* arc_chain_collect initialises it */
	rc = arc_verify_chain(&m, read, ctx, size, out_r, error_r);
	for (int c = 0; c < 2; c++)
		dkim_body_hash_free(&m.body.hash[c]);
	g_free(m.chain);
	header_block_free(&block);
	g_byte_array_free(buf, TRUE);
	return rc;
}

void arc_outcome_clear(struct arc_outcome *out)
{
	g_free(out->newest_aar);
	out->newest_aar = NULL;
}

/* ---- JSON --------------------------------------------------------------- */

/* arc_json_string - s as a JSON string (bytes from mail: escape all controls). */
static void arc_json_string(GString *json, const char *s)
{
	g_string_append_c(json, '"');
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			g_string_append_printf(json, "\\%c", *c);
		else if (*c < 0x20 || *c >= 0x7f)
			g_string_append_printf(json, "\\u%04x", *c);
		else
			g_string_append_c(json, (char)*c);
	}
	g_string_append_c(json, '"');
}

/* arc_json_field - ,"name":"value" (first: no comma). */
static void arc_json_field(GString *json, const char *name, const char *value, bool first)
{
	g_string_append_printf(json, "%s\"%s\":", first ? "" : ",", name);
	arc_json_string(json, value);
}

void arc_outcome_json(const struct arc_outcome *out, GString *json)
{
	g_string_append_c(json, '{');
	arc_json_field(json, "result", verdict_name(out->result), true);
	g_string_append_printf(json, ",\"oldest_pass\":%u", out->oldest_pass);
	arc_json_field(json, "reason", out->reason, false);
	arc_json_field(json, "sealer", out->sealer_domain, false);
	g_string_append(json, ",\"sets\":[");
	for (size_t i = 0; i < out->set_count; i++) {
		const struct arc_set_result *r = &out->sets[i];

		g_string_append_printf(json, "%s{\"instance\":%u", i > 0 ? "," : "", r->instance);
		arc_json_field(json, "cv", r->cv != NULL ? r->cv : "none", false);
		arc_json_field(json, "ams", verdict_name(r->ams), false);
		arc_json_field(json, "as", verdict_name(r->as), false);
		arc_json_field(json, "ams_domain", r->ams_domain, false);
		arc_json_field(json, "as_domain", r->as_domain, false);
		arc_json_field(json, "reason", r->reason, false);
		g_string_append_c(json, '}');
	}
	g_string_append(json, "]}");
}
