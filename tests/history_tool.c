/*
 * history_tool - append DMARC history records through history_append, for
 * the report tests and the measurements (not installed)
 *
 *     history_tool DIR [--threads N] [--repeat N] < RECORDS
 *     history_tool DIR --generate N --day YYYY-MM-DD [--threads N]
 *     history_tool --dump FILE
 *
 * RECORDS: one record per line, space-separated KEY=VALUE (a value is
 * %XX-decoded): time ip env from policy org p sp np adkim aspf t psd
 * dkim_aligned spf_aligned disp override comment spf=DOMAIN:SCOPE:RESULT and
 * dkim=DOMAIN:SELECTOR:RESULT (repeatable). Each line is appended --repeat
 * times, spread over --threads threads appending at once. --generate
 * writes N synthetic records over the day (100 policy domains, 5,000 source
 * addresses). Prints "appended N dropped N". --dump prints each whole
 * record of FILE as a RECORDS line (so a dump can be appended again), then
 * "records N skipped N".
 */
#include "lmtpfilter/history.h"

#include <glib.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL_THREADS_MAX 64

struct line_record {
	struct history_record r;
	char **owned;           /* strings r points into */
};

struct job {
	struct history *history;
	GPtrArray *records;     /* struct line_record */
	unsigned long repeat;
	unsigned long generate;
	time_t day;
	unsigned index, threads;
};

static int enum_or_die(int v, const char *what, const char *text)
{
	if (v < 0) {
		fprintf(stderr, "history_tool: bad %s \"%s\"\n", what, text);
		exit(1);
	}
	return v;
}

static void set_auth_triple(char *v, const char **a, const char **b, enum history_auth *res)
{
	char **p = g_strsplit(v, ":", 3);

	if (g_strv_length(p) != 3)
		enum_or_die(-1, "triple", v);
	*a = g_strdup(p[0]);
	*b = g_strdup(p[1]);
	*res = enum_or_die(history_auth_parse(p[2]), "result", p[2]);
	g_strfreev(p);
}

/* set_field - one key=value of a RECORDS line; returns whether the record
 * keeps v (else the caller frees it). */
static bool set_field(struct history_record *r, const char *k, char *v)
{
	if (strcmp(k, "time") == 0) r->time = (time_t)strtoll(v, NULL, 10);
	else if (strcmp(k, "ip") == 0) return r->source_ip = v, true;
	else if (strcmp(k, "env") == 0) return r->envelope_from = v, true;
	else if (strcmp(k, "from") == 0) return r->header_from = v, true;
	else if (strcmp(k, "policy") == 0) return r->policy_domain = v, true;
	else if (strcmp(k, "org") == 0) return r->org_domain = v, true;
	else if (strcmp(k, "p") == 0) r->p = enum_or_die(history_policy_parse(v), k, v);
	else if (strcmp(k, "sp") == 0) r->sp = enum_or_die(history_policy_parse(v), k, v);
	else if (strcmp(k, "np") == 0) r->np = enum_or_die(history_policy_parse(v), k, v);
	else if (strcmp(k, "adkim") == 0) r->adkim = v[0];
	else if (strcmp(k, "aspf") == 0) r->aspf = v[0];
	else if (strcmp(k, "t") == 0) r->testing = v[0] == 'y';
	else if (strcmp(k, "psd") == 0) r->psd = v[0] == 'y' ? HISTORY_PSD_Y : v[0] == 'n' ? HISTORY_PSD_N : HISTORY_PSD_U;
	else if (strcmp(k, "dkim_aligned") == 0) r->dkim_aligned = v[0] == '1';
	else if (strcmp(k, "spf_aligned") == 0) r->spf_aligned = v[0] == '1';
	else if (strcmp(k, "disp") == 0) r->disposition = enum_or_die(history_disposition_parse(v), k, v);
	else if (strcmp(k, "override") == 0) r->override = enum_or_die(history_override_parse(v), k, v);
	else if (strcmp(k, "comment") == 0) return r->override_comment = v, true;
	else if (strcmp(k, "spf") == 0) {
		const char *scope;
		set_auth_triple(v, &r->spf_domain, &scope, &r->spf_result);
		r->spf_scope_helo = strcmp(scope, "helo") == 0;
		g_free((char *)scope);
	} else if (strcmp(k, "dkim") == 0 && r->dkim_count < HISTORY_DKIM_MAX) {
		struct history_dkim *d = &r->dkim[r->dkim_count++];
		set_auth_triple(v, &d->domain, &d->selector, &d->result);
	} else enum_or_die(-1, "key", k);
	return false;
}

/* parse_line - one RECORDS line; the strings the record keeps live until exit. */
static struct line_record *parse_line(const char *line)
{
	struct line_record *lr = g_new0(struct line_record, 1);
	char **tokens = g_strsplit(line, " ", -1);

	lr->r = (struct history_record){ .p = HISTORY_POLICY_NONE, .adkim = 'r', .aspf = 'r',
					 .envelope_from = "", .org_domain = "" };
	for (size_t i = 0; tokens[i] != NULL; i++) {
		char *eq = strchr(tokens[i], '=');
		if (tokens[i][0] == '\0')
			continue;
		if (eq == NULL)
			enum_or_die(-1, "token", tokens[i]);
		*eq = '\0';
		char *value = g_uri_unescape_string(eq + 1, NULL);
		if (!set_field(&lr->r, tokens[i], value))
			g_free(value);
	}
	lr->owned = tokens;
	return lr;
}

/* generated - synthetic record number n of the day. */
static void generated(struct history_record *r, unsigned long n, time_t day, char *ip, char *dom)
{
	unsigned host = (unsigned)(n * 2654435761u % 5000);

	g_snprintf(ip, 32, "10.%u.%u.%u", host / 2500, host / 50 % 50, host % 50 + 1);
	g_snprintf(dom, 64, "d%u.example", host % 100);
	*r = (struct history_record){
		.time = day + (time_t)(n % 86400), .source_ip = ip, .envelope_from = dom,
		.header_from = dom, .policy_domain = dom, .org_domain = dom,
		.p = HISTORY_POLICY_REJECT, .adkim = 'r', .aspf = 'r',
		.dkim_aligned = n % 10 != 0, .spf_aligned = n % 7 != 0,
		.disposition = n % 70 == 0 ? HISTORY_DISPOSITION_REJECT : HISTORY_DISPOSITION_PASS,
		.dkim = { { dom, "s1", n % 10 != 0 ? HISTORY_AUTH_PASS : HISTORY_AUTH_FAIL } },
		.dkim_count = 1, .spf_domain = dom,
		.spf_result = n % 7 != 0 ? HISTORY_AUTH_PASS : HISTORY_AUTH_SOFTFAIL,
	};
}

static gpointer run_job(gpointer data)
{
	struct job *j = data;
	struct history_record r;
	char ip[32], dom[64];

	for (unsigned long n = j->index; n < j->generate; n += j->threads) {
		generated(&r, n, j->day, ip, dom);
		history_append(j->history, &r);
	}
	for (guint i = 0; j->records != NULL && i < j->records->len; i++) {
		struct line_record *lr = j->records->pdata[i];
		for (unsigned long k = j->index; k < j->repeat; k += j->threads)
			history_append(j->history, &lr->r);
	}
	return NULL;
}

static time_t parse_day(const char *s)
{
	int y, m, d;

	if (sscanf(s, "%d-%d-%d", &y, &m, &d) != 3)
		enum_or_die(-1, "day", s);
	GDateTime *t = g_date_time_new_utc(y, m, d, 0, 0, 0);
	time_t r = (time_t)g_date_time_to_unix(t);
	g_date_time_unref(t);
	return r;
}

static GPtrArray *read_records(void)
{
	GPtrArray *records = g_ptr_array_new();
	char line[8192];

	while (fgets(line, sizeof(line), stdin) != NULL) {
		g_strchomp(line);
		if (line[0] != '\0' && line[0] != '#')
			g_ptr_array_add(records, parse_line(line));
	}
	return records;
}

/* dump_value - " KEY=VALUE", the value %XX-encoded. */
static void dump_value(const char *key, const char *value)
{
	char *v = g_uri_escape_string(value != NULL ? value : "", NULL, FALSE);

	printf(" %s=%s", key, v);
	g_free(v);
}

static void dump_triple(const char *key, const char *a, const char *b, enum history_auth result)
{
	char *v = g_strdup_printf("%s:%s:%s", a, b, history_auth_name(result));

	dump_value(key, v);
	g_free(v);
}

static void dump_record(const struct history_record *r, void *context)
{
	char flag[2] = { 0 };

	(void)context;
	printf("time=%lld", (long long)r->time);
	dump_value("ip", r->source_ip);
	dump_value("env", r->envelope_from);
	dump_value("from", r->header_from);
	dump_value("policy", r->policy_domain);
	dump_value("org", r->org_domain);
	dump_value("p", history_policy_name(r->p));
	dump_value("sp", history_policy_name(r->sp));
	dump_value("np", history_policy_name(r->np));
	dump_value("adkim", (flag[0] = r->adkim, flag));
	dump_value("aspf", (flag[0] = r->aspf, flag));
	dump_value("t", r->testing ? "y" : "n");
	dump_value("psd", r->psd == HISTORY_PSD_Y ? "y" : r->psd == HISTORY_PSD_N ? "n" : "u");
	dump_value("dkim_aligned", r->dkim_aligned ? "1" : "0");
	dump_value("spf_aligned", r->spf_aligned ? "1" : "0");
	dump_value("disp", history_disposition_name(r->disposition));
	dump_value("override", history_override_name(r->override));
	if (r->override_comment != NULL && r->override_comment[0] != '\0')
		dump_value("comment", r->override_comment);
	if (r->spf_domain != NULL && r->spf_domain[0] != '\0')
		dump_triple("spf", r->spf_domain, r->spf_scope_helo ? "helo" : "mfrom", r->spf_result);
	for (size_t i = 0; i < r->dkim_count; i++)
		dump_triple("dkim", r->dkim[i].domain, r->dkim[i].selector, r->dkim[i].result);
	printf("\n");
}

/* dump_file - --dump FILE. */
static int dump_file(const char *path)
{
	struct history_read_stats st = { 0 };
	char *error = NULL;

	if (history_read_file(path, dump_record, NULL, &st, &error) < 0) {
		fprintf(stderr, "history_tool: %s\n", error);
		return 1;
	}
	printf("records %" G_GUINT64_FORMAT " skipped %" G_GUINT64_FORMAT "\n", st.records, st.skipped);
	return 0;
}

int main(int argc, char **argv)
{
	struct job base = { .repeat = 1 };
	unsigned threads = 1;
	char *error = NULL;
	GThread *t[TOOL_THREADS_MAX];
	struct job jobs[TOOL_THREADS_MAX];

	if (argc < 2) {
		fprintf(stderr, "usage: history_tool DIR [--threads N] [--repeat N] [--generate N --day YYYY-MM-DD]\n");
		return 1;
	}
	if (argc == 3 && strcmp(argv[1], "--dump") == 0)
		return dump_file(argv[2]);
	signal(SIGXFSZ, SIG_IGN);       /* a file size limit is a full disk here */
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--threads") == 0) threads = CLAMP(atoi(argv[i + 1]), 1, TOOL_THREADS_MAX);
		else if (strcmp(argv[i], "--repeat") == 0) base.repeat = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--generate") == 0) base.generate = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--day") == 0) base.day = parse_day(argv[i + 1]);
		else enum_or_die(-1, "option", argv[i]);
	}
	if (history_open(argv[1], &base.history, &error) < 0) {
		fprintf(stderr, "history_tool: %s\n", error);
		return 1;
	}
	if (base.generate == 0)
		base.records = read_records();
	for (unsigned i = 0; i < threads; i++) {
		jobs[i] = base;
		jobs[i].index = i;
		jobs[i].threads = threads;
		t[i] = g_thread_new("append", run_job, &jobs[i]);
	}
	for (unsigned i = 0; i < threads; i++)
		g_thread_join(t[i]);
	struct history_stats st;
	history_get_stats(base.history, &st);
	printf("appended %" G_GUINT64_FORMAT " dropped %" G_GUINT64_FORMAT "\n", st.appended, st.dropped);
	history_close(&base.history);
	return 0;
}
