/*
 * dkim_keycache - parsed DKIM public keys, kept across messages; see
 * dkim_keycache.c for why it exists and how it hooks into libopendkim.
 */
#ifndef LMTPFILTER_DKIM_KEYCACHE_H
#define LMTPFILTER_DKIM_KEYCACHE_H

#include <stdint.h>

/* Keys kept; the cache is emptied when a new key would exceed this. */
#define DKIM_KEYCACHE_MAX 256

struct dkim_keycache_stats {
	uint64_t hits;     /* keys served from the cache */
	uint64_t misses;   /* keys parsed by libcrypto and added */
	uint64_t flushes;  /* times the full cache was emptied */
};

/* dkim_keycache_init - set up the cache (idempotent, thread-safe). Called
 * by dkim_verifier_new; also what links this file into a program. */
void dkim_keycache_init(void);

/* dkim_keycache_get_stats - the counters since the process started. */
void dkim_keycache_get_stats(struct dkim_keycache_stats *stats_r);

/* dkim_keycache_clear - drop every cached key (tests). */
void dkim_keycache_clear(void);

#endif
