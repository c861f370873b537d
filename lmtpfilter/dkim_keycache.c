/*
 * dkim_keycache - parsed DKIM public keys, kept across messages
 *
 * Why: libopendkim turns the p= of an RSA key record into an EVP_PKEY with
 * d2i_PUBKEY_bio() on every signature of every message. With OpenSSL 3.0
 * (Debian 12) each such call builds a fresh decoder chain: measured with
 * tests/bench/dkim-cost under callgrind, about 1.3 million instructions, more
 * than half of all the CPU a 4 KB signed message costs, and the RSA key so
 * made also recomputes its Montgomery context for every verification.
 * libopendkim has no hook between fetching a key record and parsing it, so
 * this file provides d2i_PUBKEY_bio() itself: the executable's definition
 * takes precedence over libcrypto's for libopendkim's call (ELF symbol
 * interposition), and everything it does not serve from the cache goes to
 * libcrypto's own function.
 *
 * Served from the cache: a memory BIO (what libopendkim passes) whose bytes
 * equal the DER of a key parsed before, with no object to reuse (a == NULL).
 * The caller gets its own reference (EVP_PKEY_up_ref) to the shared key and
 * frees it as usual; the key is only read from then on (OpenSSL's key
 * objects are safe to share between threads for verification). Failed
 * parses are not cached. The cache holds DKIM_KEYCACHE_MAX keys; when it is
 * full it is emptied, so a sender cycling through many keys costs what it
 * did without a cache, no more.
 */
#include "lmtpfilter/dkim_keycache.h"

#include <dlfcn.h>
#include <pthread.h>

#include <glib.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* Longest DER accepted into the cache: an 8192-bit RSA key is ~1.1 KB. */
#define DKIM_KEYCACHE_DER_MAX 4096

typedef EVP_PKEY *d2i_pubkey_bio_fn(BIO *bp, EVP_PKEY **a);

static pthread_once_t keycache_once = PTHREAD_ONCE_INIT;
static d2i_pubkey_bio_fn *keycache_real;
static GMutex keycache_lock;
static GHashTable *keycache_keys;   /* GBytes (DER) -> EVP_PKEY * */
static struct dkim_keycache_stats keycache_stats;

static void keycache_key_free(gpointer key)
{
	EVP_PKEY_free(key);
}

static void keycache_setup(void)
{
	/* The next definition after ours: libcrypto's. */
	keycache_real = (d2i_pubkey_bio_fn *)dlvsym(RTLD_NEXT, "d2i_PUBKEY_bio", "OPENSSL_3.0.0");
	if (keycache_real == NULL)
		keycache_real = (d2i_pubkey_bio_fn *)dlsym(RTLD_NEXT, "d2i_PUBKEY_bio");
	if (keycache_real == NULL)
		g_error("dkim_keycache: libcrypto's d2i_PUBKEY_bio not found");
	keycache_keys = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
					      (GDestroyNotify)g_bytes_unref, keycache_key_free);
}

void dkim_keycache_init(void)
{
	pthread_once(&keycache_once, keycache_setup);
}

static EVP_PKEY *keycache_lookup(GBytes *der)
{
	EVP_PKEY *pkey;

	g_mutex_lock(&keycache_lock);
	pkey = g_hash_table_lookup(keycache_keys, der);
	if (pkey != NULL && EVP_PKEY_up_ref(pkey) == 1)
		keycache_stats.hits++;
	else
		pkey = NULL;
	g_mutex_unlock(&keycache_lock);
	return pkey;
}

static void keycache_store(GBytes *der, EVP_PKEY *pkey)
{
	g_mutex_lock(&keycache_lock);
	keycache_stats.misses++;
	if (!g_hash_table_contains(keycache_keys, der) && EVP_PKEY_up_ref(pkey) == 1) {
		if (g_hash_table_size(keycache_keys) >= DKIM_KEYCACHE_MAX) {
			g_hash_table_remove_all(keycache_keys);
			keycache_stats.flushes++;
		}
		g_hash_table_insert(keycache_keys, g_bytes_ref(der), pkey);
	}
	g_mutex_unlock(&keycache_lock);
}

EVP_PKEY *d2i_PUBKEY_bio(BIO *bp, EVP_PKEY **a)
{
	char *data = NULL;
	long len;
	GBytes *der;
	EVP_PKEY *pkey;

	dkim_keycache_init();
	if (a != NULL || bp == NULL || BIO_method_type(bp) != BIO_TYPE_MEM)
		return keycache_real(bp, a);
	len = BIO_get_mem_data(bp, &data);
	if (len <= 0 || len > DKIM_KEYCACHE_DER_MAX || data == NULL)
		return keycache_real(bp, a);

	der = g_bytes_new(data, (gsize)len);
	pkey = keycache_lookup(der);
	if (pkey == NULL) {
		pkey = keycache_real(bp, NULL);
		if (pkey != NULL)
			keycache_store(der, pkey);
	}
	g_bytes_unref(der);
	return pkey;
}

void dkim_keycache_get_stats(struct dkim_keycache_stats *stats_r)
{
	g_mutex_lock(&keycache_lock);
	*stats_r = keycache_stats;
	g_mutex_unlock(&keycache_lock);
}

void dkim_keycache_clear(void)
{
	dkim_keycache_init();
	g_mutex_lock(&keycache_lock);
	g_hash_table_remove_all(keycache_keys);
	g_mutex_unlock(&keycache_lock);
}
