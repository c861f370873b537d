/*
 * metrics - counters and histograms of the mail path, rendered for Prometheus
 *
 * Owns: every counter (process-wide, relaxed atomics: a recording is one
 * atomic addition, never a lock), the domain registry (name -> slot, only
 * growing, guarded by registry_lock which only metrics_config and
 * metrics_render take) and the text rendering (format 0.0.4).
 *
 * Histograms have fixed buckets (seconds): DNS 1 ms .. 10 s, transactions
 * 1 ms .. 60 s; each bucket is counted on its own and summed when rendered.
 * The sum is kept in microseconds.
 */
#include "lmtpfilter/metrics.h"
#include "lmtpfilter/netio.h"
#include "lmtpfilter/resolver.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

static const double dns_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
static const double tx_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
				    1, 2.5, 5, 10, 30, 60 };
#define METRICS_BUCKETS_MAX 16  /* the longest bound list above, and +Inf */

struct histogram {
	const double *bounds;
	size_t bound_count;
	atomic_uint_fast64_t buckets[METRICS_BUCKETS_MAX]; /* [bound_count] is +Inf */
	atomic_uint_fast64_t sum_us;
	atomic_uint_fast64_t count;
};

struct domain_slot {
	char *name;                    /* NULL: slot 0, "default" */
	atomic_int mode;               /* the mode in the latest configuration */
	atomic_uint_fast64_t recipients[METRICS_MODES][METRICS_ACTION_COUNT];
	atomic_uint_fast64_t quarantines[METRICS_MODES][METRICS_QUARANTINE_REASONS]; /* [reason - 1] */
};

static atomic_bool enabled;
static GMutex registry_lock;
static GHashTable *registry;          /* name -> slot + 1; guarded by registry_lock */
static struct domain_slot *slots[METRICS_DOMAIN_SLOTS]; /* [0] "default"; published under the lock */
static atomic_uint slot_count;
static atomic_uint_fast64_t results[METRICS_METHOD_COUNT][METRICS_VERDICT_COUNT];
static atomic_uint_fast64_t dns_outcomes[METRICS_DNS_OUTCOME_COUNT];
static atomic_uint_fast64_t downstream_failures[METRICS_DOWNSTREAM_REASON_COUNT];
static atomic_int_fast64_t sessions;
static atomic_uint_fast64_t sessions_refused;
static struct histogram dns_seconds = { .bounds = dns_bounds, .bound_count = G_N_ELEMENTS(dns_bounds) };
static struct histogram tx_seconds = { .bounds = tx_bounds, .bound_count = G_N_ELEMENTS(tx_bounds) };

static const char *const action_names[] = { "deliver", "quarantine", "defer", "reject" };
static const char *const method_names[] = { "spf", "dkim", "dmarc", "arc" };
static const char *const dns_names[] = { "answer", "nxdomain", "nodata", "error", "timeout" };
_Static_assert((int)METRICS_DNS_ANSWER == (int)DNS_OK && (int)METRICS_DNS_NXDOMAIN == (int)DNS_NXDOMAIN &&
	       (int)METRICS_DNS_NODATA == (int)DNS_NODATA && (int)METRICS_DNS_ERROR == (int)DNS_TEMPFAIL,
	       "dns_status converts to metrics_dns_outcome as it is");
static const char *const downstream_names[] = { "connect", "timeout", "disconnect", "io", "protocol" };

#define COUNT_ADD(counter, n) atomic_fetch_add_explicit(&(counter), (n), memory_order_relaxed)
#define COUNT_GET(counter) atomic_load_explicit(&(counter), memory_order_relaxed)

/* mode_name - the config spelling of a mode. */
static const char *mode_name(int mode)
{
	if (mode == DOMAIN_MODE_OFF)
		return "off";
	if (mode == DOMAIN_MODE_ANNOTATE)
		return "annotate";
	if (mode == DOMAIN_MODE_OBSERVE)
		return "observe";
	return "other";
}

/* metrics_set_enabled - start (or stop) recording. */
void metrics_set_enabled(bool on)
{
	atomic_store(&enabled, on);
}

static bool recording(void)
{
	return atomic_load_explicit(&enabled, memory_order_relaxed);
}

/* slot_new - a zeroed slot for name (NULL: "default"). */
static struct domain_slot *slot_new(const char *name)
{
	struct domain_slot *s = g_new0(struct domain_slot, 1);

	s->name = g_strdup(name);
	return s;
}

/* slot_for - the slot of name, registered on first sight; 0 when full.
 * Called with registry_lock held. */
static unsigned slot_for(const char *name)
{
	gpointer found = g_hash_table_lookup(registry, name);
	unsigned n = atomic_load(&slot_count);

	if (found != NULL)
		return GPOINTER_TO_UINT(found) - 1;
	if (n == METRICS_DOMAIN_SLOTS)
		return 0;
	slots[n] = slot_new(name);
	g_hash_table_insert(registry, g_strdup(name), GUINT_TO_POINTER(n + 1));
	atomic_store(&slot_count, n + 1);
	return n;
}

/* metrics_config - give each [domain] group its slot. */
void metrics_config(struct config *config)
{
	g_mutex_lock(&registry_lock);
	if (registry == NULL) {
		registry = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		slots[0] = slot_new(NULL);
		atomic_store(&slot_count, 1);
	}
	atomic_store(&slots[0]->mode, (int)config->defaults.mode);
	config->defaults.metrics_slot = 0;
	for (size_t i = 0; i < config->domain_count; i++) {
		struct domain_policy *p = &config->domains[i];
		p->metrics_slot = slot_for(p->domain);
		if (p->metrics_slot != 0)
			atomic_store(&slots[p->metrics_slot]->mode, (int)p->mode);
	}
	g_mutex_unlock(&registry_lock);
}

/* metrics_recipient - count one recipient's fate. */
void metrics_recipient(unsigned slot, enum domain_mode mode, enum metrics_action action)
{
	if (!recording() || (unsigned)mode >= METRICS_MODES || action >= METRICS_ACTION_COUNT)
		return;
	/* A slot below slot_count was published before the configuration
	 * naming it: a policy never carries a slot that is not there yet. */
	if (slot >= atomic_load_explicit(&slot_count, memory_order_acquire))
		slot = 0;
	COUNT_ADD(slots[slot]->recipients[mode][action], 1);
}

/* metrics_recipient_reply - count the recipient that got reply code. */
void metrics_recipient_reply(const struct domain_policy *policy, int code, enum disposition_reason reason)
{
	enum metrics_action action;
	unsigned slot = policy->metrics_slot;
	bool quarantine = reason > DISPOSITION_DELIVER && reason <= METRICS_QUARANTINE_REASONS;

	if (!recording() || code < 200 || code >= 600 || code / 100 == 3)
		return;
	if (code / 100 == 2)
		action = quarantine ? METRICS_QUARANTINE : METRICS_DELIVER;
	else
		action = code / 100 == 4 ? METRICS_DEFER : METRICS_REJECT;
	metrics_recipient(slot, policy->mode, action);
	if (action != METRICS_QUARANTINE || (unsigned)policy->mode >= METRICS_MODES)
		return;
	if (slot >= atomic_load_explicit(&slot_count, memory_order_acquire))
		slot = 0;
	COUNT_ADD(slots[slot]->quarantines[policy->mode][reason - 1], 1);
}

/* metrics_result - one message's result for method. */
void metrics_result(enum metrics_method method, enum verdict result)
{
	if (recording() && method < METRICS_METHOD_COUNT && (unsigned)result < METRICS_VERDICT_COUNT)
		COUNT_ADD(results[method][result], 1);
}

/* histogram_observe - count one value of us microseconds. */
static void histogram_observe(struct histogram *h, uint64_t us)
{
	size_t i = 0;

	while (i < h->bound_count && (double)us > h->bounds[i] * 1e6)
		i++;
	COUNT_ADD(h->buckets[i], 1);
	COUNT_ADD(h->sum_us, us);
	COUNT_ADD(h->count, 1);
}

/* metrics_dns - one lookup ended with outcome. */
void metrics_dns(enum metrics_dns_outcome outcome, gint64 started_us)
{
	gint64 us = g_get_monotonic_time() - started_us;

	if (!recording() || outcome >= METRICS_DNS_OUTCOME_COUNT)
		return;
	COUNT_ADD(dns_outcomes[outcome], 1);
	histogram_observe(&dns_seconds, us > 0 ? (uint64_t)us : 0);
}

/* metrics_dns_unsent_error - a held-down lookup: an error, no latency. */
void metrics_dns_unsent_error(void)
{
	if (recording())
		COUNT_ADD(dns_outcomes[METRICS_DNS_ERROR], 1);
}

/* metrics_transaction - one mail transaction took ms. */
void metrics_transaction(long long ms)
{
	if (recording())
		histogram_observe(&tx_seconds, ms > 0 ? (uint64_t)ms * 1000 : 0);
}

/* metrics_downstream_failure - classify and count a downstream failure. */
void metrics_downstream_failure(const char *what, const char *why)
{
	enum metrics_downstream_reason reason = METRICS_DOWNSTREAM_PROTOCOL;

	if (!recording())
		return;
	if (g_strcmp0(why, netio_status_text(NETIO_TIMEOUT)) == 0)
		reason = METRICS_DOWNSTREAM_TIMEOUT;
	else if (g_strcmp0(why, netio_status_text(NETIO_EOF)) == 0)
		reason = METRICS_DOWNSTREAM_DISCONNECT;
	else if (g_strcmp0(what, "connect") == 0 || g_strcmp0(what, "greeting") == 0 ||
		 g_strcmp0(what, "LHLO") == 0)
		reason = METRICS_DOWNSTREAM_CONNECT;
	else if (g_strcmp0(why, netio_status_text(NETIO_ERROR)) == 0)
		reason = METRICS_DOWNSTREAM_IO;
	COUNT_ADD(downstream_failures[reason], 1);
}

/* metrics_sessions_add - running sessions changed by delta. */
void metrics_sessions_add(int delta)
{
	if (recording())
		COUNT_ADD(sessions, delta);
}

/* metrics_session_refused - a connection was turned away. */
void metrics_session_refused(void)
{
	if (recording())
		COUNT_ADD(sessions_refused, 1);
}

/* ---- rendering ---- */

static void family_head(GString *out, const char *name, const char *type, const char *help)
{
	g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* append_label_value - a label value, escaped as the text format wants. */
static void append_label_value(GString *out, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			g_string_append_c(out, '\\');
		if (*p == '\n')
			g_string_append(out, "\\n");
		else
			g_string_append_c(out, *p);
	}
}

/* slot_mode_shown - does the slot render its series of mode m: counted
 * in it, or its current mode. */
static bool slot_mode_shown(const struct domain_slot *s, int m)
{
	uint64_t any = 0;

	for (int a = 0; a < METRICS_ACTION_COUNT; a++)
		any |= COUNT_GET(s->recipients[m][a]);
	return any != 0 || m == atomic_load(&s->mode);
}

/* render_slot - one domain's series: every mode it counted in, and its
 * current mode always (zeros included, so that dashboards see it). */
static void render_slot(GString *out, const struct domain_slot *s)
{
	for (int m = 0; m < METRICS_MODES; m++) {
		if (!slot_mode_shown(s, m))
			continue;
		for (int a = 0; a < METRICS_ACTION_COUNT; a++) {
			g_string_append(out, "lmtpfilter_recipients_total{domain=\"");
			append_label_value(out, s->name != NULL ? s->name : "default");
			g_string_append_printf(out, "\",mode=\"%s\",action=\"%s\"} %" PRIu64 "\n", mode_name(m),
					       action_names[a], (uint64_t)COUNT_GET(s->recipients[m][a]));
		}
	}
}

/* render_slot_quarantines - one domain's quarantines by reason. */
static void render_slot_quarantines(GString *out, const struct domain_slot *s)
{
	for (int m = 0; m < METRICS_MODES; m++) {
		if (!slot_mode_shown(s, m))
			continue;
		for (int r = 0; r < METRICS_QUARANTINE_REASONS; r++) {
			g_string_append(out, "lmtpfilter_quarantine_total{domain=\"");
			append_label_value(out, s->name != NULL ? s->name : "default");
			g_string_append_printf(out, "\",mode=\"%s\",reason=\"%s\"} %" PRIu64 "\n", mode_name(m),
					       disposition_reason_name((enum disposition_reason)(r + 1)),
					       (uint64_t)COUNT_GET(s->quarantines[m][r]));
		}
	}
}

static void render_quarantines(GString *out)
{
	family_head(out, "lmtpfilter_quarantine_total", "counter",
		    "Quarantined recipients by domain group, mode and reason (in observe mode: would have been).");
	g_mutex_lock(&registry_lock);
	unsigned n = atomic_load(&slot_count);
	for (unsigned i = 0; i < n; i++)
		render_slot_quarantines(out, slots[i]);
	g_mutex_unlock(&registry_lock);
}

static void render_recipients(GString *out)
{
	family_head(out, "lmtpfilter_recipients_total", "counter",
		    "Recipients by domain group, mode and fate (in observe mode: what annotate would do).");
	g_mutex_lock(&registry_lock);
	unsigned n = atomic_load(&slot_count);
	for (unsigned i = 0; i < n; i++)
		render_slot(out, slots[i]);
	g_mutex_unlock(&registry_lock);
}

static void render_results(GString *out)
{
	family_head(out, "lmtpfilter_results_total", "counter",
		    "Evaluated messages by method and result (per signature for dkim).");
	for (int m = 0; m < METRICS_METHOD_COUNT; m++)
		for (int v = 0; v < METRICS_VERDICT_COUNT; v++)
			g_string_append_printf(out, "lmtpfilter_results_total{method=\"%s\",result=\"%s\"} %" PRIu64 "\n",
					       method_names[m], verdict_name((enum verdict)v),
					       (uint64_t)COUNT_GET(results[m][v]));
}

/* render_labelled - a counter family with one label over a name table. */
static void render_labelled(GString *out, const char *name, const char *label, const char *help,
			    const char *const *names, const atomic_uint_fast64_t *counts, size_t n)
{
	family_head(out, name, "counter", help);
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(out, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, names[i],
				       (uint64_t)COUNT_GET(counts[i]));
}

static void render_histogram(GString *out, const char *name, const char *help, const struct histogram *h)
{
	uint64_t cumulative = 0;

	family_head(out, name, "histogram", help);
	for (size_t i = 0; i <= h->bound_count; i++) {
		cumulative += COUNT_GET(h->buckets[i]);
		if (i < h->bound_count)
			g_string_append_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, h->bounds[i], cumulative);
		else
			g_string_append_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cumulative);
	}
	/* Buckets are read one by one while sessions add: the count shown is
	 * the +Inf bucket's, so that the series stays consistent. */
	g_string_append_printf(out, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name,
			       (double)COUNT_GET(h->sum_us) / 1e6, name, cumulative);
}

/* metrics_render - every family, text format 0.0.4. */
void metrics_render(GString *out)
{
	render_recipients(out);
	render_quarantines(out);
	render_results(out);
	render_labelled(out, "lmtpfilter_dns_queries_total", "outcome", "DNS lookups sent to the resolver, by outcome.",
			dns_names, dns_outcomes, METRICS_DNS_OUTCOME_COUNT);
	render_histogram(out, "lmtpfilter_dns_query_seconds", "DNS lookup latency.", &dns_seconds);
	render_histogram(out, "lmtpfilter_transaction_seconds", "Mail transaction time, MAIL to its end.",
			 &tx_seconds);
	render_labelled(out, "lmtpfilter_downstream_failures_total", "reason",
			"Failed downstream (Dovecot) connections, by reason.", downstream_names, downstream_failures,
			METRICS_DOWNSTREAM_REASON_COUNT);
	family_head(out, "lmtpfilter_sessions", "gauge", "Running LMTP sessions.");
	g_string_append_printf(out, "lmtpfilter_sessions %" PRId64 "\n", (int64_t)COUNT_GET(sessions));
	family_head(out, "lmtpfilter_sessions_refused_total", "counter", "Connections turned away with 421.");
	g_string_append_printf(out, "lmtpfilter_sessions_refused_total %" PRIu64 "\n",
			       (uint64_t)COUNT_GET(sessions_refused));
}
