/*
 * resolver - the one caching DNS resolver shared by every check (libunbound)
 *
 * Owns one ub_ctx (threaded async mode, never forks) and one event thread
 * that is the only caller of ub_process(): it waits on ub_fd() and runs the
 * callbacks, which hand each reply to the waiting caller through a condition
 * variable. Callers wait with their own deadline and ub_cancel() the query
 * when it passes, so a silent server costs exactly dns_timeout.
 *
 * Queries go to the configured forwarders (IP[@PORT]) or, without any, to
 * the servers of /etc/resolv.conf. libunbound's built-in local zones for
 * RFC 6761 names and private / documentation reverse zones are opened up so
 * that those names are asked upstream like any other.
 *
 * Answer cache: every reply other than a failure is kept, keyed by (name,
 * type), until its TTL runs out, and a lookup it can answer never reaches
 * libunbound. libunbound has a cache of its own, but reaching it costs two
 * thread hand-offs through pipes (our caller -> libunbound's worker -> our
 * event thread -> our caller), measured at about a fifth of lmtpfilter's
 * CPU per message with SPF on; a hit here is a hash lookup and a copy.
 * Bounds: RESOLVER_CACHE_ENTRIES_MAX entries and RESOLVER_CACHE_BYTES_MAX
 * bytes of answers; when either is reached, expired entries are dropped,
 * and if that is not enough, all of them. A lookup that misses this cache
 * counts as "sent" (resolver_queries_sent).
 *
 * Server health: after RESOLVER_DOWN_AFTER_TIMEOUTS lookups in a row ran
 * into the deadline, the lookup that made it so probes the servers with a
 * question any live one answers at once (resolver_probe). If they answer,
 * the timeouts were names they could not resolve in time (a slow authority
 * behind a live forwarder) and nothing changes. If not, they count as down:
 * for a hold-down of RESOLVER_HOLD_MIN_MS, doubled after every failed probe
 * up to RESOLVER_HOLD_MAX_MS, lookups the cache cannot answer fail at once
 * with DNS_TEMPFAIL instead of waiting dns_timeout each (a silent server
 * would otherwise cost every message up to three deadlines). The first
 * lookup after a hold-down probes again; the others keep failing fast while
 * it runs. Any reply to a check's lookup, or an answered probe, ends the
 * hold-down. "A reply" means NOERROR or NXDOMAIN, with or without records.
 * SERVFAIL is ambiguous: libunbound turns a forwarder's SERVFAIL or REFUSED
 * into its own SERVFAIL, the same (a bare 12-byte header) as the one it
 * gives at once for a forwarder it has itself given up on, so it counts
 * neither as a timeout nor as a sign of life. libunbound is told to keep
 * probing servers it found down and to forget them after
 * RESOLVER_INFRA_HOST_TTL, so that its own memory of a dead server never
 * outlasts ours. Each change of state is logged once.
 */
#include "lmtpfilter/resolver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <glib.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <unbound.h>
#include <unistd.h>

#include "lmtpfilter/log.h"
#include "lmtpfilter/metrics.h"

#define RESOLVER_CACHE_ENTRIES_MAX 20000         /* cached (name, type) answers */
#define RESOLVER_CACHE_BYTES_MAX (16 * 1024 * 1024) /* bytes of cached answers */
#define RESOLVER_RCODE_NXDOMAIN 3
#define RESOLVER_CLASS_IN 1
#define RESOLVER_RRTYPE_DIGITS 12   /* an int in decimal, with its sign */

/* Seconds libunbound remembers a server's timeouts: RESOLVER_HOLD_MAX_MS,
 * so that its own hold-down of a dead server never outlasts ours. */
#define RESOLVER_INFRA_HOST_TTL "10"
/* Probes ask for <random>.invalid: RFC 6761 has every resolver answer
 * NXDOMAIN for it (libunbound's own answer is turned off above, so the
 * question reaches the servers), and a fresh name is in no cache. */
#define RESOLVER_PROBE_ZONE "invalid"
#define RESOLVER_PROBE_TYPE 1           /* A */

/* RFC 6761 special-use zones that libunbound answers itself by default. */
static const char *const resolver_transparent_zones[] = {
	"test.", "invalid.", "example.", "onion.", "local.",
};

/* What the resolver remembers about its servers; under resolver.lock. */
struct resolver_health {
	unsigned consecutive_timeouts;
	bool down;                      /* in a hold-down: lookups fail at once */
	bool probing;                   /* the one probe of a hold-down is out */
	unsigned hold_ms;               /* length of the current hold-down */
	gint64 hold_until;              /* monotonic µs: then the next lookup probes */
	gint64 down_since;              /* monotonic µs */
	unsigned long timeouts;
	unsigned long fast_failures;
	unsigned long probes;
	unsigned long downs;
};

/* What a lookup the cache cannot answer may do (resolver_health_admit). */
enum resolver_admit {
	RESOLVER_ADMIT_SEND,
	RESOLVER_ADMIT_FAIL,            /* DNS_TEMPFAIL at once */
	RESOLVER_ADMIT_PROBE,           /* probe the servers, then send if they answered */
};

/* A change of the servers' state, logged once by whoever caused it. */
enum resolver_change {
	RESOLVER_CHANGE_NONE,
	RESOLVER_CHANGE_DOWN,
	RESOLVER_CHANGE_UP,
};

struct resolver {
	struct ub_ctx *ctx;
	unsigned timeout_ms;
	GThread *thread;
	int wake_pipe[2];
	GMutex lock;                    /* protects queries' state, cache, counters */
	GHashTable *cache;              /* "type/name" -> struct resolver_cached */
	size_t cache_bytes;
	unsigned long sent;
	struct resolver_health health;
};

/* What a lookup that reached libunbound tells about the servers. */
enum resolver_outcome {
	RESOLVER_OUTCOME_ANSWERED,      /* a server replied */
	RESOLVER_OUTCOME_TIMEOUT,       /* the deadline passed */
	RESOLVER_OUTCOME_UNKNOWN,       /* a local error or libunbound's own SERVFAIL */
};

struct resolver_cached {
	gint64 expiry;                  /* monotonic µs */
	size_t bytes;                   /* what it counts against RESOLVER_CACHE_BYTES_MAX */
	struct dns_answer *answer;
};

struct resolver_query {
	struct resolver *resolver;
	GCond cond;
	bool done;
	bool abandoned;                 /* the caller gave up; the callback frees */
	int err;
	struct ub_result *result;
};

static void resolver_query_destroy(struct resolver_query *q)
{
	if (q->result != NULL)
		ub_resolve_free(q->result);
	g_cond_clear(&q->cond);
	g_free(q);
}

static void resolver_cached_free(gpointer data)
{
	struct resolver_cached *c = data;

	dns_answer_free(&c->answer);
	g_free(c);
}

static gpointer resolver_thread(gpointer data)
{
	struct resolver *r = data;
	struct pollfd fds[2];

	for (;;) {
		fds[0].fd = ub_fd(r->ctx);
		fds[0].events = POLLIN;
		fds[1].fd = r->wake_pipe[0];
		fds[1].events = POLLIN;
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("resolver: poll: %s", g_strerror(errno));
			break;
		}
		if (fds[1].revents != 0)
			break;
		if (fds[0].revents != 0 && ub_process(r->ctx) != 0)
			log_warning("resolver: ub_process failed");
	}
	return NULL;
}

static int resolver_configure(struct resolver *r, char *const *servers, size_t server_count,
			      char **error_r)
{
	int ret;

	if ((ret = ub_ctx_async(r->ctx, 1)) != 0 ||
	    (ret = ub_ctx_set_option(r->ctx, "unblock-lan-zones:", "yes")) != 0 ||
	    (ret = ub_ctx_set_option(r->ctx, "insecure-lan-zones:", "yes")) != 0 ||
	    (ret = ub_ctx_set_option(r->ctx, "infra-keep-probing:", "yes")) != 0 ||
	    (ret = ub_ctx_set_option(r->ctx, "infra-host-ttl:", RESOLVER_INFRA_HOST_TTL)) != 0) {
		*error_r = g_strdup_printf("libunbound: %s", ub_strerror(ret));
		return -1;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(resolver_transparent_zones); i++) {
		char *zone = g_strdup_printf("%s transparent", resolver_transparent_zones[i]);
		ret = ub_ctx_set_option(r->ctx, "local-zone:", zone);
		g_free(zone);
		if (ret != 0) {
			*error_r = g_strdup_printf("libunbound local-zone: %s", ub_strerror(ret));
			return -1;
		}
	}
	for (size_t i = 0; i < server_count; i++) {
		if ((ret = ub_ctx_set_fwd(r->ctx, servers[i])) != 0) {
			*error_r = g_strdup_printf("dns server %s: %s", servers[i], ub_strerror(ret));
			return -1;
		}
	}
	if (server_count == 0 && (ret = ub_ctx_resolvconf(r->ctx, NULL)) != 0) {
		*error_r = g_strdup_printf("/etc/resolv.conf: %s", ub_strerror(ret));
		return -1;
	}
	return 0;
}

int resolver_new(char *const *servers, size_t server_count, unsigned timeout_ms,
		 struct resolver **resolver_r, char **error_r)
{
	struct resolver *r;

	if (timeout_ms == 0) {
		*error_r = g_strdup("dns timeout must be positive");
		return -1;
	}
	r = g_new0(struct resolver, 1);
	r->timeout_ms = timeout_ms;
	r->wake_pipe[0] = r->wake_pipe[1] = -1;
	g_mutex_init(&r->lock);
	r->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, resolver_cached_free);
	r->ctx = ub_ctx_create();
	if (r->ctx == NULL) {
		*error_r = g_strdup("libunbound: cannot create context");
		resolver_free(&r);
		return -1;
	}
	if (resolver_configure(r, servers, server_count, error_r) < 0) {
		resolver_free(&r);
		return -1;
	}
	if (pipe2(r->wake_pipe, O_CLOEXEC) < 0) {
		*error_r = g_strdup_printf("pipe: %s", g_strerror(errno));
		resolver_free(&r);
		return -1;
	}
	r->thread = g_thread_new("resolver", resolver_thread, r);
	*resolver_r = r;
	return 0;
}

void resolver_free(struct resolver **resolver)
{
	struct resolver *r = *resolver;

	if (r == NULL)
		return;
	*resolver = NULL;
	if (r->thread != NULL) {
		ssize_t w = write(r->wake_pipe[1], "x", 1);
		(void)w;
		g_thread_join(r->thread);
	}
	if (r->wake_pipe[0] >= 0) {
		close(r->wake_pipe[0]);
		close(r->wake_pipe[1]);
	}
	/* Abandoned queries still pending are freed with the context only if
	 * their callbacks never run: libunbound drops them on delete. */
	if (r->ctx != NULL)
		ub_ctx_delete(r->ctx);
	g_hash_table_destroy(r->cache);
	g_mutex_clear(&r->lock);
	g_free(r);
}

static void resolver_callback(void *data, int err, struct ub_result *result)
{
	struct resolver_query *q = data;
	struct resolver *r = q->resolver;

	g_mutex_lock(&r->lock);
	q->err = err;
	q->result = result;
	q->done = true;
	if (q->abandoned) {
		g_mutex_unlock(&r->lock);
		resolver_query_destroy(q);
		return;
	}
	g_cond_signal(&q->cond);
	g_mutex_unlock(&r->lock);
}

/* resolver_cache_key - the cache key for NAME and RRTYPE. */
static char *resolver_cache_key(const char *name, int rrtype)
{
	char digits[RESOLVER_RRTYPE_DIGITS];
	unsigned int v = rrtype < 0 ? 0u - (unsigned int)rrtype : (unsigned int)rrtype;
	size_t nd = 0, name_len = strlen(name), len, i;

	/* "%d/%s" built by hand: this runs for every lookup of every message. */
	do
		digits[sizeof(digits) - ++nd] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	if (rrtype < 0)
		digits[sizeof(digits) - ++nd] = '-';
	len = nd + 1 + name_len;
	char *key = g_malloc(len + 1);
	memcpy(key, digits + sizeof(digits) - nd, nd);
	key[nd] = '/';
	for (i = 0; i < name_len; i++)
		key[nd + 1 + i] = g_ascii_tolower(name[i]);
	key[len] = '\0';
	if (key[len - 1] == '.')
		key[len - 1] = '\0';
	return key;
}

/* dns_answer_size - bytes an answer holds, for the cache bound. */
static size_t dns_answer_size(const struct dns_answer *a)
{
	size_t n = sizeof(*a) + a->packet_len + (a->count + 1) * (sizeof(*a->data) + sizeof(*a->len));

	for (size_t i = 0; i < a->count; i++)
		n += a->len[i];
	if (a->canonname != NULL)
		n += strlen(a->canonname) + 1;
	return n;
}

/* dns_rdata_dup - a copy of len bytes of rdata, never a zero-size block
 * (callers may look at data[i][0]) and never read past len. */
static unsigned char *dns_rdata_dup(const void *rdata, size_t len)
{
	unsigned char *p = g_malloc0(len + 1);

	if (len > 0)
		memcpy(p, rdata, len);
	return p;
}

/* dns_answer_copy - a deep copy, for a caller served from the cache. */
static struct dns_answer *dns_answer_copy(const struct dns_answer *a)
{
	struct dns_answer *c = g_new0(struct dns_answer, 1);

	c->status = a->status;
	c->rrtype = a->rrtype;
	c->count = a->count;
	if (a->data != NULL) {
		c->data = g_new0(unsigned char *, a->count + 1);
		c->len = g_new0(size_t, a->count + 1);
		for (size_t i = 0; i < a->count; i++) {
			c->len[i] = a->len[i];
			c->data[i] = dns_rdata_dup(a->data[i], a->len[i]);
		}
	}
	if (a->packet != NULL) {
		c->packet_len = a->packet_len;
		c->packet = g_memdup2(a->packet, a->packet_len);
	}
	c->canonname = g_strdup(a->canonname);
	return c;
}

static gboolean resolver_cached_expired(gpointer key, gpointer value, gpointer now)
{
	return ((struct resolver_cached *)value)->expiry <= *(gint64 *)now;
}

/* resolver_cache_lookup - called with the lock held: a copy of the cached
 * answer for key, or NULL. */
static struct dns_answer *resolver_cache_lookup(struct resolver *r, const char *key, gint64 now)
{
	struct resolver_cached *c = g_hash_table_lookup(r->cache, key);

	if (c != NULL && c->expiry > now)
		return dns_answer_copy(c->answer);
	return NULL;
}

/* resolver_cache_store - called with the lock held after a reply: keep a
 * copy of answer under key (taken over) for ttl seconds. */
static void resolver_cache_store(struct resolver *r, char *key, const struct dns_answer *answer,
				 int ttl)
{
	struct resolver_cached *c, *old;
	gint64 now = g_get_monotonic_time();
	size_t bytes = dns_answer_size(answer) + strlen(key) + sizeof(*c);

	if ((old = g_hash_table_lookup(r->cache, key)) != NULL) {
		r->cache_bytes -= old->bytes;
		g_hash_table_remove(r->cache, key);
	}
	if (ttl <= 0 || bytes > RESOLVER_CACHE_BYTES_MAX / 16) {
		g_free(key);
		return;
	}
	if (g_hash_table_size(r->cache) >= RESOLVER_CACHE_ENTRIES_MAX ||
	    r->cache_bytes + bytes > RESOLVER_CACHE_BYTES_MAX) {
		GHashTableIter iter;
		gpointer value;

		g_hash_table_foreach_remove(r->cache, resolver_cached_expired, &now);
		if (g_hash_table_size(r->cache) >= RESOLVER_CACHE_ENTRIES_MAX / 2)
			g_hash_table_remove_all(r->cache);
		r->cache_bytes = 0;
		g_hash_table_iter_init(&iter, r->cache);
		while (g_hash_table_iter_next(&iter, NULL, &value))
			r->cache_bytes += ((struct resolver_cached *)value)->bytes;
		if (r->cache_bytes + bytes > RESOLVER_CACHE_BYTES_MAX) {
			g_hash_table_remove_all(r->cache);
			r->cache_bytes = 0;
		}
	}
	c = g_new(struct resolver_cached, 1);
	c->expiry = now + (gint64)ttl * G_USEC_PER_SEC;
	c->bytes = bytes;
	c->answer = dns_answer_copy(answer);
	r->cache_bytes += bytes;
	g_hash_table_insert(r->cache, key, c);
}

static struct dns_answer *dns_answer_tempfail(int rrtype)
{
	struct dns_answer *a = g_new0(struct dns_answer, 1);

	a->status = DNS_TEMPFAIL;
	a->rrtype = rrtype;
	return a;
}

/* resolver_answer_from_result - copy what callers need out of an ub_result. */
struct dns_answer *resolver_answer_from_result(int rrtype, int err, const struct ub_result *res)
{
	struct dns_answer *a = dns_answer_tempfail(rrtype);

	if (err != 0 || res == NULL)
		return a;
	if (res->rcode == RESOLVER_RCODE_NXDOMAIN || res->nxdomain)
		a->status = DNS_NXDOMAIN;
	else if (res->rcode != 0)
		return a;
	else if (res->havedata && res->data != NULL && res->data[0] != NULL)
		a->status = DNS_OK;
	else
		a->status = DNS_NODATA;
	if (a->status == DNS_OK) {
		while (res->data[a->count] != NULL)
			a->count++;
		a->data = g_new0(unsigned char *, a->count + 1);
		a->len = g_new0(size_t, a->count + 1);
		for (size_t i = 0; i < a->count; i++) {
			a->len[i] = res->len[i] > 0 ? (size_t)res->len[i] : 0;
			a->data[i] = dns_rdata_dup(res->data[i], a->len[i]);
		}
	}
	if (res->answer_packet != NULL && res->answer_len > 0) {
		a->packet_len = (size_t)res->answer_len;
		a->packet = g_memdup2(res->answer_packet, a->packet_len);
	}
	if (res->canonname != NULL)
		a->canonname = g_strdup(res->canonname);
	return a;
}

/* resolver_wait - wait for Q until the deadline; returns true if answered.
 * On false the query has been cancelled or handed to the callback to free. */
static bool resolver_wait(struct resolver *r, struct resolver_query *q, int async_id)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)r->timeout_ms * 1000;
	int ret;

	g_mutex_lock(&r->lock);
	while (!q->done) {
		if (!g_cond_wait_until(&q->cond, &r->lock, deadline))
			break;
	}
	if (q->done) {
		g_mutex_unlock(&r->lock);
		return true;
	}
	g_mutex_unlock(&r->lock);

	/* Cancel outside our lock: the callback may be waiting for it. */
	ret = ub_cancel(r->ctx, async_id);
	g_mutex_lock(&r->lock);
	if (ret == UB_NOERROR && !q->done) {
		g_mutex_unlock(&r->lock);
		resolver_query_destroy(q);
		return false;
	}
	if (q->done) {
		/* The reply arrived while cancelling: too late, but usable. */
		g_mutex_unlock(&r->lock);
		return true;
	}
	q->abandoned = true;
	g_mutex_unlock(&r->lock);
	return false;
}

/* ---- server health ---------------------------------------------------- */

/* resolver_outcome_of - what a result libunbound delivered in time says
 * about the servers (see the top of the file for SERVFAIL). */
static enum resolver_outcome resolver_outcome_of(int err, const struct ub_result *res)
{
	if (err != 0 || res == NULL)
		return RESOLVER_OUTCOME_UNKNOWN;
	if (res->rcode == 0 || res->rcode == RESOLVER_RCODE_NXDOMAIN || res->nxdomain)
		return RESOLVER_OUTCOME_ANSWERED;
	return RESOLVER_OUTCOME_UNKNOWN;
}

/* resolver_health_admit - called with the lock held before a lookup goes
 * out: send it, fail it at once (held down, or a probe is out), or probe
 * the servers first (the hold-down is over). */
static enum resolver_admit resolver_health_admit(struct resolver_health *h, gint64 now)
{
	if (!h->down)
		return RESOLVER_ADMIT_SEND;
	if (h->probing || now < h->hold_until) {
		h->fast_failures++;
		return RESOLVER_ADMIT_FAIL;
	}
	h->probing = true;
	h->probes++;
	return RESOLVER_ADMIT_PROBE;
}

/* resolver_health_hold - called with the lock held: (re)start a hold-down. */
static void resolver_health_hold(struct resolver_health *h, gint64 now, unsigned hold_ms)
{
	h->hold_ms = MIN(hold_ms, RESOLVER_HOLD_MAX_MS);
	h->hold_until = now + (gint64)h->hold_ms * 1000;
}

/* resolver_health_after_lookup - called with the lock held after a check's
 * lookup was sent. Returns true when the caller must probe the servers:
 * this timeout made RESOLVER_DOWN_AFTER_TIMEOUTS in a row. */
static bool resolver_health_after_lookup(struct resolver_health *h, enum resolver_outcome outcome,
					 enum resolver_change *change_r)
{
	*change_r = RESOLVER_CHANGE_NONE;
	if (outcome == RESOLVER_OUTCOME_ANSWERED) {
		h->consecutive_timeouts = 0;
		if (h->down) {
			h->down = false;
			*change_r = RESOLVER_CHANGE_UP;
		}
		return false;
	}
	if (outcome != RESOLVER_OUTCOME_TIMEOUT)
		return false;
	h->timeouts++;
	if (h->consecutive_timeouts < UINT_MAX)
		h->consecutive_timeouts++;
	if (h->down || h->probing || h->consecutive_timeouts < RESOLVER_DOWN_AFTER_TIMEOUTS)
		return false;
	h->probing = true;
	h->probes++;
	return true;
}

/* resolver_health_after_probe - called with the lock held after a probe
 * (confirming: the one after the timeouts, else a hold-down's). */
static enum resolver_change resolver_health_after_probe(struct resolver_health *h,
							enum resolver_outcome outcome,
							bool confirming, gint64 now)
{
	h->probing = false;
	if (outcome == RESOLVER_OUTCOME_ANSWERED) {
		/* Alive: the timeouts were names it could not resolve in time. */
		h->consecutive_timeouts = 0;
		if (!h->down)
			return RESOLVER_CHANGE_NONE;
		h->down = false;
		return RESOLVER_CHANGE_UP;
	}
	if (h->down) {
		if (!confirming)
			resolver_health_hold(h, now, h->hold_ms * 2);
		return RESOLVER_CHANGE_NONE;
	}
	/* A check's lookup was answered while the probe ran: not down. */
	if (h->consecutive_timeouts < RESOLVER_DOWN_AFTER_TIMEOUTS)
		return RESOLVER_CHANGE_NONE;
	h->down = true;
	h->downs++;
	h->down_since = now;
	resolver_health_hold(h, now, RESOLVER_HOLD_MIN_MS);
	return RESOLVER_CHANGE_DOWN;
}

/* resolver_log_change - one line per change of the servers' state. */
static void resolver_log_change(enum resolver_change change, const struct resolver_stats *st)
{
	if (change == RESOLVER_CHANGE_DOWN)
		log_warning("resolver state=down timeouts=%u hold_ms=%u",
			    st->consecutive_timeouts, st->hold_ms);
	else if (change == RESOLVER_CHANGE_UP)
		log_info("resolver state=up down_ms=%llu fast_failures=%lu probes=%lu",
			 (unsigned long long)st->down_ms, st->fast_failures, st->probes);
}

/* resolver_stats_locked - called with the lock held. */
static void resolver_stats_locked(const struct resolver *r, gint64 now, struct resolver_stats *st)
{
	const struct resolver_health *h = &r->health;

	st->servers_down = h->down;
	st->consecutive_timeouts = h->consecutive_timeouts;
	st->hold_ms = h->down ? h->hold_ms : 0;
	st->down_ms = h->downs > 0 ? (uint64_t)(now - h->down_since) / 1000 : 0;
	st->queries_sent = r->sent;
	st->timeouts = h->timeouts;
	st->fast_failures = h->fast_failures;
	st->probes = h->probes;
	st->downs = h->downs;
}

/* ---- lookups ------------------------------------------------------------ */

/* resolver_ask - one query to libunbound, waiting up to the deadline; what
 * it says about the servers in *outcome_r, the answer's TTL in *ttl_r. */
static struct dns_answer *resolver_ask(struct resolver *r, const char *name, int rrtype,
				       enum resolver_outcome *outcome_r, int *ttl_r)
{
	struct resolver_query *q = g_new0(struct resolver_query, 1);
	struct dns_answer *answer;
	int async_id = 0, ret;

	*outcome_r = RESOLVER_OUTCOME_UNKNOWN;
	*ttl_r = 0;
	q->resolver = r;
	g_cond_init(&q->cond);
	ret = ub_resolve_async(r->ctx, name, rrtype, RESOLVER_CLASS_IN, q, resolver_callback,
			       &async_id);
	if (ret != 0) {
		log_debug("resolver: %s: %s", name, ub_strerror(ret));
		resolver_query_destroy(q);
		return dns_answer_tempfail(rrtype);
	}
	if (!resolver_wait(r, q, async_id)) {
		log_debug("resolver: %s type %d: timed out", name, rrtype);
		*outcome_r = RESOLVER_OUTCOME_TIMEOUT;
		return dns_answer_tempfail(rrtype);
	}
	answer = resolver_answer_from_result(rrtype, q->err, q->result);
	*outcome_r = resolver_outcome_of(q->err, q->result);
	*ttl_r = q->result != NULL ? q->result->ttl : 0;
	resolver_query_destroy(q);
	return answer;
}

/* resolver_probe - ask the servers a fresh name under RESOLVER_PROBE_ZONE,
 * which any live server answers (NXDOMAIN) from no authority but the root
 * and which no cache holds. Returns true if they are up afterwards. */
static bool resolver_probe(struct resolver *r, bool confirming)
{
	char name[64];
	struct dns_answer *answer;
	enum resolver_outcome outcome;
	enum resolver_change change;
	struct resolver_stats st;
	gint64 now;
	bool up;
	int ttl;

	g_snprintf(name, sizeof(name), "%08x%08x.%s", g_random_int(), g_random_int(),
		   RESOLVER_PROBE_ZONE);
	answer = resolver_ask(r, name, RESOLVER_PROBE_TYPE, &outcome, &ttl);
	dns_answer_free(&answer);
	now = g_get_monotonic_time();
	g_mutex_lock(&r->lock);
	change = resolver_health_after_probe(&r->health, outcome, confirming, now);
	up = !r->health.down;
	resolver_stats_locked(r, now, &st);
	g_mutex_unlock(&r->lock);
	resolver_log_change(change, &st);
	return up;
}

/* resolver_send - a check's lookup: ask, cache the answer (key taken
 * over), account for the servers' health, log a change of state. */
static struct dns_answer *resolver_send(struct resolver *r, const char *name, int rrtype,
					char *key)
{
	enum resolver_outcome outcome;
	enum resolver_change change;
	struct resolver_stats st;
	struct dns_answer *answer;
	bool confirm;
	gint64 now;
	int ttl;
	gint64 started = g_get_monotonic_time();

	answer = resolver_ask(r, name, rrtype, &outcome, &ttl);
	now = g_get_monotonic_time();
	metrics_dns(outcome == RESOLVER_OUTCOME_TIMEOUT ? METRICS_DNS_TIMEOUT
		    : (enum metrics_dns_outcome)answer->status, started);
	g_mutex_lock(&r->lock);
	r->sent++;
	if (answer->status != DNS_TEMPFAIL)
		resolver_cache_store(r, key, answer, ttl);
	else
		g_free(key);
	confirm = resolver_health_after_lookup(&r->health, outcome, &change);
	resolver_stats_locked(r, now, &st);
	g_mutex_unlock(&r->lock);
	resolver_log_change(change, &st);
	if (confirm)
		resolver_probe(r, true);
	return answer;
}

int resolver_query(struct resolver *resolver, const char *name, int rrtype,
		   struct dns_answer **answer_r)
{
	gint64 now = g_get_monotonic_time();
	enum resolver_admit admit = RESOLVER_ADMIT_SEND;
	char *key;

	if (resolver == NULL || name == NULL || answer_r == NULL) {
		if (answer_r != NULL)
			*answer_r = dns_answer_tempfail(rrtype);
		return -1;
	}
	key = resolver_cache_key(name, rrtype);
	g_mutex_lock(&resolver->lock);
	*answer_r = resolver_cache_lookup(resolver, key, now);
	if (*answer_r == NULL)
		admit = resolver_health_admit(&resolver->health, now);
	g_mutex_unlock(&resolver->lock);
	if (admit == RESOLVER_ADMIT_PROBE && !resolver_probe(resolver, false))
		admit = RESOLVER_ADMIT_FAIL;
	if (*answer_r == NULL && admit == RESOLVER_ADMIT_FAIL) {
		/* Held down: failed without asking, counted as an error
		 * (nothing was waited for, so no latency either). */
		metrics_dns_unsent_error();
		*answer_r = dns_answer_tempfail(rrtype);
	}
	if (*answer_r != NULL) {
		g_free(key);
		return 0;
	}
	*answer_r = resolver_send(resolver, name, rrtype, key);
	return 0;
}

void dns_answer_free(struct dns_answer **answer)
{
	struct dns_answer *a = *answer;

	if (a == NULL)
		return;
	*answer = NULL;
	for (size_t i = 0; i < a->count; i++)
		g_free(a->data[i]);
	g_free(a->data);
	g_free(a->len);
	g_free(a->packet);
	g_free(a->canonname);
	g_free(a);
}

unsigned long resolver_queries_sent(struct resolver *resolver)
{
	unsigned long n;

	g_mutex_lock(&resolver->lock);
	n = resolver->sent;
	g_mutex_unlock(&resolver->lock);
	return n;
}

void resolver_stats(struct resolver *resolver, struct resolver_stats *stats_r)
{
	g_mutex_lock(&resolver->lock);
	resolver_stats_locked(resolver, g_get_monotonic_time(), stats_r);
	g_mutex_unlock(&resolver->lock);
}

void resolver_preload(struct resolver *resolver, const char *name, int rrtype,
		      const struct dns_answer *answer, int ttl)
{
	char *key = resolver_cache_key(name, rrtype);

	g_mutex_lock(&resolver->lock);
	resolver_cache_store(resolver, key, answer, answer->status == DNS_TEMPFAIL ? 0 : ttl);
	g_mutex_unlock(&resolver->lock);
}
