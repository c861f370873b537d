/*
 * stats - the stats command: scrape metrics_listen, print a summary
 *
 * Owns: a small reader of the text format (only what the daemon writes:
 * "name{label="value",...} number" lines, comments skipped) and the table.
 * Latency quantiles are estimated from the histogram buckets by linear
 * interpolation inside the bucket, as Prometheus' histogram_quantile does.
 */
#include "lmtpfilter/stats.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/metrics_http.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#define STATS_LABELS_MAX 4       /* the most labels a family of ours has is 3 */

struct sample {
	char *name;
	char *keys[STATS_LABELS_MAX];
	char *values[STATS_LABELS_MAX];
	double value;
};

static void sample_free(gpointer data)
{
	struct sample *s = data;

	g_free(s->name);
	for (size_t i = 0; i < STATS_LABELS_MAX; i++) {
		g_free(s->keys[i]);
		g_free(s->values[i]);
	}
	g_free(s);
}

/* parse_labels - key="value" pairs up to '}'; returns the byte after it, or NULL. */
static const char *parse_labels(const char *p, struct sample *s)
{
	for (size_t n = 0; *p != '}'; n++) {
		const char *eq = strchr(p, '=');
		if (eq == NULL || eq[1] != '"' || n == STATS_LABELS_MAX)
			return NULL;
		GString *v = g_string_new(NULL);
		const char *q = eq + 2;
		for (; *q && *q != '"'; q++) {
			if (*q == '\\' && q[1] != '\0')
				q++;
			g_string_append_c(v, *q == 'n' && q[-1] == '\\' ? '\n' : *q);
		}
		s->keys[n] = g_strndup(p, (size_t)(eq - p));
		s->values[n] = g_string_free(v, FALSE);
		if (*q != '"')
			return NULL;
		p = q + 1;
		if (*p == ',')
			p++;
	}
	return p + 1;
}

/* parse_line - one sample line, or NULL for comments and what we do not read. */
static struct sample *parse_line(const char *line)
{
	if (line[0] == '#' || line[0] == '\0')
		return NULL;
	struct sample *s = g_new0(struct sample, 1);
	size_t n = strcspn(line, "{ ");
	s->name = g_strndup(line, n);
	const char *p = line + n;
	if (*p == '{')
		p = parse_labels(p + 1, s);
	char *end = NULL;
	if (p != NULL)
		s->value = g_ascii_strtod(p, &end);
	if (p == NULL || end == p) {
		sample_free(s);
		return NULL;
	}
	return s;
}

static GPtrArray *parse_text(const char *text)
{
	GPtrArray *samples = g_ptr_array_new_with_free_func(sample_free);
	char **lines = g_strsplit(text, "\n", -1);

	for (char **l = lines; *l != NULL; l++) {
		struct sample *s = parse_line(*l);
		if (s != NULL)
			g_ptr_array_add(samples, s);
	}
	g_strfreev(lines);
	return samples;
}

static const char *label(const struct sample *s, const char *key)
{
	for (size_t i = 0; i < STATS_LABELS_MAX && s->keys[i] != NULL; i++)
		if (strcmp(s->keys[i], key) == 0)
			return s->values[i];
	return "";
}

/* value_of - the first sample of name whose label key is value (key NULL: any). */
static double value_of(GPtrArray *samples, const char *name, const char *key, const char *value)
{
	for (guint i = 0; i < samples->len; i++) {
		const struct sample *s = samples->pdata[i];
		if (strcmp(s->name, name) == 0 && (key == NULL || strcmp(label(s, key), value) == 0))
			return s->value;
	}
	return 0;
}

/* recipient_count - recipients_total of one domain, mode and action. */
static double recipient_count(GPtrArray *samples, const char *domain, const char *mode, const char *action)
{
	for (guint i = 0; i < samples->len; i++) {
		const struct sample *s = samples->pdata[i];
		if (strcmp(s->name, "lmtpfilter_recipients_total") == 0 && strcmp(label(s, "domain"), domain) == 0 &&
		    strcmp(label(s, "mode"), mode) == 0 && strcmp(label(s, "action"), action) == 0)
			return s->value;
	}
	return 0;
}

/* print_recipients - one row per domain and mode; in observe mode the
 * quarantine count is what annotate would have quarantined. */
static void print_recipients(GPtrArray *samples, FILE *out)
{
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	fprintf(out, "recipients\n  %-32s %-9s %9s %10s %16s %9s %9s\n", "domain", "mode", "deliver", "quarantine",
		"would-quarantine", "defer", "reject");
	for (guint i = 0; i < samples->len; i++) {
		const struct sample *s = samples->pdata[i];
		if (strcmp(s->name, "lmtpfilter_recipients_total") != 0)
			continue;
		const char *domain = label(s, "domain"), *mode = label(s, "mode");
		char *key = g_strdup_printf("%s\n%s", domain, mode);
		if (!g_hash_table_add(seen, key))
			continue;
		bool observe = strcmp(mode, "observe") == 0;
		double q = recipient_count(samples, domain, mode, "quarantine");
		char quarantine[32], would[32];
		g_snprintf(quarantine, sizeof(quarantine), observe ? "-" : "%.0f", q);
		g_snprintf(would, sizeof(would), observe ? "%.0f" : "-", q);
		fprintf(out, "  %-32s %-9s %9.0f %10s %16s %9.0f %9.0f\n", domain, mode,
			recipient_count(samples, domain, mode, "deliver"), quarantine, would,
			recipient_count(samples, domain, mode, "defer"), recipient_count(samples, domain, mode, "reject"));
	}
	g_hash_table_destroy(seen);
}

/* reason_sum - quarantine_total of reason over every domain, in observe
 * mode (observe) or the others. */
static double reason_sum(GPtrArray *samples, const char *reason, bool observe)
{
	double sum = 0;

	for (guint i = 0; i < samples->len; i++) {
		const struct sample *s = samples->pdata[i];
		if (strcmp(s->name, "lmtpfilter_quarantine_total") == 0 && strcmp(label(s, "reason"), reason) == 0 &&
		    (strcmp(label(s, "mode"), "observe") == 0) == observe)
			sum += s->value;
	}
	return sum;
}

/* print_quarantine_reasons - quarantines by reason, and what observe
 * would have quarantined by reason. */
static void print_quarantine_reasons(GPtrArray *samples, FILE *out)
{
	static const char *const reasons[] = { "dmarc-quarantine", "dmarc-reject", "spf-fail", "from-invalid" };

	fprintf(out, "quarantine reasons\n ");
	for (size_t r = 0; r < G_N_ELEMENTS(reasons); r++)
		fprintf(out, " %s=%.0f", reasons[r], reason_sum(samples, reasons[r], false));
	fprintf(out, "\n  would (observe):");
	for (size_t r = 0; r < G_N_ELEMENTS(reasons); r++)
		fprintf(out, " %s=%.0f", reasons[r], reason_sum(samples, reasons[r], true));
	fprintf(out, "\n");
}

/* print_results - per method, the results that occurred. */
static void print_results(GPtrArray *samples, FILE *out)
{
	static const char *const methods[] = { "spf", "dkim", "dmarc", "arc" };

	fprintf(out, "results\n");
	for (size_t m = 0; m < G_N_ELEMENTS(methods); m++) {
		GString *line = g_string_new(NULL);
		for (guint i = 0; i < samples->len; i++) {
			const struct sample *s = samples->pdata[i];
			if (strcmp(s->name, "lmtpfilter_results_total") == 0 && strcmp(label(s, "method"), methods[m]) == 0 &&
			    s->value > 0)
				g_string_append_printf(line, " %s=%.0f", label(s, "result"), s->value);
		}
		fprintf(out, "  %-6s%s\n", methods[m], line->len ? line->str : " -");
		g_string_free(line, TRUE);
	}
}

/* quantile - the q-quantile of histogram name, in seconds; -1 when empty. */
static double quantile(GPtrArray *samples, const char *name, double q)
{
	char *bucket = g_strdup_printf("%s_bucket", name);
	double total = value_of(samples, bucket, "le", "+Inf"), prev_bound = 0, prev_count = 0, result = -1;

	for (guint i = 0; total > 0 && i < samples->len; i++) {
		const struct sample *s = samples->pdata[i];
		if (strcmp(s->name, bucket) != 0)
			continue;
		const char *le = label(s, "le");
		if (s->value >= q * total) {
			if (strcmp(le, "+Inf") == 0) {
				result = prev_bound;
			} else {
				double bound = g_ascii_strtod(le, NULL);
				double in_bucket = s->value - prev_count;
				result = in_bucket > 0 ? prev_bound + (bound - prev_bound) * (q * total - prev_count) / in_bucket
						       : bound;
			}
			break;
		}
		prev_bound = g_ascii_strtod(le, NULL);
		prev_count = s->value;
	}
	g_free(bucket);
	return result;
}

static void print_latency(GPtrArray *samples, FILE *out, const char *what, const char *name)
{
	double p50 = quantile(samples, name, 0.5), p99 = quantile(samples, name, 0.99);

	if (p50 < 0)
		fprintf(out, "  %s latency: -\n", what);
	else
		fprintf(out, "  %s latency: p50 %.1f ms, p99 %.1f ms\n", what, p50 * 1000, p99 * 1000);
}

static void print_labelled(GPtrArray *samples, FILE *out, const char *title, const char *name, const char *key)
{
	fprintf(out, "%s\n ", title);
	for (guint i = 0; i < samples->len; i++) {
		const struct sample *s = samples->pdata[i];
		if (strcmp(s->name, name) == 0)
			fprintf(out, " %s=%.0f", label(s, key), s->value);
	}
	fprintf(out, "\n");
}

/* stats_print - the summary of a scraped text. */
void stats_print(const char *text, FILE *out)
{
	GPtrArray *samples = parse_text(text);

	print_recipients(samples, out);
	print_quarantine_reasons(samples, out);
	print_results(samples, out);
	print_labelled(samples, out, "dns", "lmtpfilter_dns_queries_total", "outcome");
	print_latency(samples, out, "dns", "lmtpfilter_dns_query_seconds");
	print_labelled(samples, out, "downstream failures", "lmtpfilter_downstream_failures_total", "reason");
	fprintf(out, "transactions\n  count %.0f\n", value_of(samples, "lmtpfilter_transaction_seconds_count", NULL, NULL));
	print_latency(samples, out, "transaction", "lmtpfilter_transaction_seconds");
	fprintf(out, "sessions\n  running %.0f, refused %.0f\n", value_of(samples, "lmtpfilter_sessions", NULL, NULL),
		value_of(samples, "lmtpfilter_sessions_refused_total", NULL, NULL));
	g_ptr_array_free(samples, TRUE);
}

/* stats_main - scrape the daemon named by the configuration and print. */
int stats_main(const char *config_file, int argc, char **argv)
{
	struct config *config;
	char *error = NULL;

	if (argc > 1) {
		fprintf(stderr, "lmtpfilter stats: unexpected argument \"%s\"\n", argv[1]);
		return 1;
	}
	if (config_load(config_file, &config, &error) < 0) {
		fprintf(stderr, "lmtpfilter: %s\n", error);
		g_free(error);
		return 1;
	}
	if (!config->metrics_enabled) {
		fprintf(stderr, "lmtpfilter stats: %s sets no metrics_listen: the daemon serves no metrics\n", config_file);
		config_unref(&config);
		return 1;
	}
	char *text = metrics_http_fetch(&config->metrics_listen, STATS_TIMEOUT_MS, &error);
	if (text == NULL) {
		fprintf(stderr, "lmtpfilter stats: the daemon is not reachable on metrics_listen: %s\n", error);
		g_free(error);
		config_unref(&config);
		return 1;
	}
	stats_print(text, stdout);
	g_free(text);
	config_unref(&config);
	return 0;
}
