/*
 * report - DMARC aggregate reports (RFC 9990) from the history (see report.h)
 *
 * Phases: read (every record of the day from every --history directory into
 * one table per policy domain, rows counted by their grouping key), render
 * (XML, gzip), deliver (--out files; --send: _dmarc TXT lookup for rua=,
 * the external-destination verification of RFC 9990 section 4, one mail per
 * address through report_sendmail), clean up (day files of reported days
 * older than REPORT_KEEP_DAYS).
 *
 * Owns: the day's tables (memory grows with distinct rows, not with
 * messages), the resolver of the run, the .sent/.done state files.
 */
#include "lmtpfilter/report.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/history.h"
#include "lmtpfilter/log.h"
#include "lmtpfilter/resolver.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPORT_KEEP_DAYS 7              /* reported day files kept this long */
#define REPORT_DAY_SECONDS 86400
#define REPORT_RRTYPE_TXT 16
#define REPORT_TXT_MAX 4096             /* bytes of one joined TXT record */
#define REPORT_DNS_NAME_MAX 253         /* RFC 1035, without the root dot */
#define REPORT_HISTORY_DIRS_MAX 64      /* --history directories */

struct domain_report {
	char *policy_domain;
	char *org_domain;
	struct history_record policy;   /* enums of the newest record */
	time_t policy_time;
	GHashTable *rows;               /* row key -> guint64 count */
	GTree *sorted;                  /* filled at render time */
};

struct report_run {
	struct config *config;
	time_t begin;                   /* UTC midnight of the period */
	char *day;                      /* "YYYY-MM-DD" */
	char **dirs;                    /* history directories; dirs[0] keeps the state */
	size_t dir_count;
	const char *out_dir;
	bool send;
	const char *receiver;           /* domain of report_email */
	const char *org_name;
	GHashTable *domains;            /* policy domain -> struct domain_report */
	struct history_read_stats read_stats;
	GHashTable *sent;               /* "domain\taddress" already sent */
	struct resolver *resolver;
	unsigned pending;               /* sends to retry on the next run */
};

/* ------------------------------------------------------------ rua tag */

int report_rua_parse(const char *record, GPtrArray **uris_r)
{
	char **tags = g_strsplit(record, ";", -1);
	int rc = -1;

	*uris_r = g_ptr_array_new_with_free_func(g_free);
	for (size_t i = 0; tags[i] != NULL; i++) {
		char *eq = strchr(tags[i], '=');
		if (eq == NULL) {
			if (g_strstrip(tags[i])[0] != '\0' && i == 0)
				break;
			continue;
		}
		*eq = '\0';
		char *name = g_strstrip(tags[i]), *value = g_strstrip(eq + 1);
		if (i == 0) {
			if (strcmp(name, "v") != 0 || strcmp(value, "DMARC1") != 0)
				break;
			rc = 0;
		} else if (g_ascii_strcasecmp(name, "rua") == 0 && (*uris_r)->len == 0) {
			char **uris = g_strsplit(value, ",", -1);
			for (size_t k = 0; uris[k] != NULL; k++)
				if (g_strstrip(uris[k])[0] != '\0')
					g_ptr_array_add(*uris_r, g_strdup(uris[k]));
			g_strfreev(uris);
		}
	}
	g_strfreev(tags);
	if (rc < 0)
		g_ptr_array_set_size(*uris_r, 0);
	return rc;
}

char *report_mailto(const char *uri)
{
	if (g_ascii_strncasecmp(uri, "mailto:", 7) != 0)
		return NULL;
	char *rest = g_strdup(uri + 7);
	rest[strcspn(rest, "?!")] = '\0';       /* ?headers, obsolete !size */
	char *addr = g_uri_unescape_string(rest, NULL);
	g_free(rest);
	const char *at = addr != NULL ? strrchr(addr, '@') : NULL;
	if (at == NULL || at == addr || at[1] == '\0' || strpbrk(addr, " ,<>\"\t\r\n;") != NULL ||
	    strchr(addr, '@') != at || strlen(at + 1) > REPORT_DNS_NAME_MAX) {
		g_free(addr);
		return NULL;
	}
	return addr;
}

gboolean report_is_external(const char *address, const char *org_domain)
{
	const char *host = strrchr(address, '@');
	size_t hl, ol = strlen(org_domain);

	if (host == NULL)
		return TRUE;
	host++;
	hl = strlen(host);
	if (hl == ol)
		return g_ascii_strcasecmp(host, org_domain) != 0;
	return !(hl > ol && host[hl - ol - 1] == '.' && g_ascii_strcasecmp(host + hl - ol, org_domain) == 0);
}

/* ------------------------------------------------------------ reading */

static void domain_report_free(gpointer p)
{
	struct domain_report *d = p;

	g_free(d->policy_domain);
	g_free(d->org_domain);
	g_hash_table_destroy(d->rows);
	if (d->sorted != NULL)
		g_tree_destroy(d->sorted);
	g_free(d);
}

/* row_key - the grouping of RFC 9990: everything of a record but its time
 * and policy, tab-joined (fields never hold a tab). */
static char *row_key(const struct history_record *r)
{
	GString *k = g_string_sized_new(256);

	g_string_append_printf(k, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%zu",
			       r->source_ip, history_disposition_name(r->disposition),
			       r->dkim_aligned, r->spf_aligned, history_override_name(r->override),
			       r->override_comment, r->envelope_from, r->header_from, r->spf_domain,
			       r->spf_scope_helo ? "helo" : "mfrom", history_auth_name(r->spf_result),
			       r->dkim_count);
	for (size_t i = 0; i < r->dkim_count; i++)
		g_string_append_printf(k, "\t%s\t%s\t%s", r->dkim[i].domain, r->dkim[i].selector,
				       history_auth_name(r->dkim[i].result));
	return g_string_free(k, FALSE);
}

/* add_record - history_record_cb: count the record in its domain's table. */
static void add_record(const struct history_record *r, void *context)
{
	struct report_run *run = context;

	if (r->time < run->begin || r->time >= run->begin + REPORT_DAY_SECONDS)
		return;
	char *lower = g_ascii_strdown(r->policy_domain, -1);
	struct domain_report *d = g_hash_table_lookup(run->domains, lower);
	if (d == NULL) {
		d = g_new0(struct domain_report, 1);
		d->policy_domain = lower;
		d->rows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
		d->policy_time = (time_t)-1;
		g_hash_table_insert(run->domains, d->policy_domain, d);
	} else {
		g_free(lower);
	}
	if (r->time >= d->policy_time) {
		d->policy = *r;         /* only its enums are used */
		d->policy_time = r->time;
		g_free(d->org_domain);
		d->org_domain = g_ascii_strdown(r->org_domain[0] ? r->org_domain : r->policy_domain, -1);
	}
	char *key = row_key(r);
	guint64 *count = g_hash_table_lookup(d->rows, key);
	if (count == NULL) {
		count = g_new0(guint64, 1);
		g_hash_table_insert(d->rows, key, count);
	} else {
		g_free(key);
	}
	(*count)++;
}

/* read_day - every record of the day from every directory; a missing day
 * file is no error (that host received nothing). */
static int read_day(struct report_run *run)
{
	for (size_t i = 0; i < run->dir_count; i++) {
		char *path = g_strdup_printf("%s/%s.dmh", run->dirs[i], run->day);
		char *error = NULL;
		if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
			log_info("report: %s: no history for %s", run->dirs[i], run->day);
		} else if (history_read_file(path, add_record, run, &run->read_stats, &error) < 0) {
			log_error("report: %s", error);
			g_free(error);
			g_free(path);
			return -1;
		}
		g_free(path);
	}
	if (run->read_stats.skipped > 0)
		log_warning("report: %s: %" G_GUINT64_FORMAT " torn or corrupt history records skipped",
			    run->day, run->read_stats.skipped);
	log_info("report: %s: %" G_GUINT64_FORMAT " records, %u policy domains", run->day,
		 run->read_stats.records, g_hash_table_size(run->domains));
	return 0;
}

/* ------------------------------------------------------------ rendering */

static void xml_element(GString *x, const char *indent, const char *name, const char *text)
{
	char *escaped = g_markup_escape_text(text, -1);

	g_string_append_printf(x, "%s<%s>%s</%s>\n", indent, name, escaped, name);
	g_free(escaped);
}

static char *report_id(const struct report_run *run, const struct domain_report *d)
{
	return g_strdup_printf("%lld.%s@%s", (long long)run->begin, d->policy_domain, run->receiver);
}

static void render_metadata(GString *x, const struct report_run *run, const struct domain_report *d)
{
	char *id = report_id(run, d);

	g_string_append(x, "  <report_metadata>\n");
	xml_element(x, "    ", "org_name", run->org_name);
	xml_element(x, "    ", "email", run->config->report_email);
	xml_element(x, "    ", "report_id", id);
	g_string_append_printf(x, "    <date_range>\n      <begin>%lld</begin>\n      <end>%lld</end>\n"
			       "    </date_range>\n", (long long)run->begin,
			       (long long)run->begin + REPORT_DAY_SECONDS - 1);
	xml_element(x, "    ", "generator", "lmtpfilter " LMTPFILTER_VERSION);
	g_string_append(x, "  </report_metadata>\n");
	g_free(id);
}

static void render_policy(GString *x, const struct domain_report *d)
{
	const struct history_record *p = &d->policy;
	char adkim[2] = { p->adkim == 's' ? 's' : 'r', 0 }, aspf[2] = { p->aspf == 's' ? 's' : 'r', 0 };

	g_string_append(x, "  <policy_published>\n");
	xml_element(x, "    ", "domain", d->policy_domain);
	xml_element(x, "    ", "p", history_policy_name(p->p));
	if (p->sp != HISTORY_POLICY_UNSET)
		xml_element(x, "    ", "sp", history_policy_name(p->sp));
	if (p->np != HISTORY_POLICY_UNSET)
		xml_element(x, "    ", "np", history_policy_name(p->np));
	xml_element(x, "    ", "adkim", adkim);
	xml_element(x, "    ", "aspf", aspf);
	xml_element(x, "    ", "discovery_method",
		    p->discovery == HISTORY_DISCOVERY_PSL ? "psl" : "treewalk");
	xml_element(x, "    ", "testing", p->testing ? "y" : "n");
	g_string_append(x, "  </policy_published>\n");
}

/* render_auth - <auth_results> of a row key's fields f (see row_key). */
static void render_auth(GString *x, char **f)
{
	size_t dkim = strtoul(f[11], NULL, 10);

	g_string_append(x, "    <auth_results>\n");
	for (size_t i = 0; i < dkim; i++) {
		g_string_append(x, "      <dkim>\n");
		xml_element(x, "        ", "domain", f[12 + 3 * i]);
		xml_element(x, "        ", "selector", f[13 + 3 * i]);
		xml_element(x, "        ", "result", f[14 + 3 * i]);
		g_string_append(x, "      </dkim>\n");
	}
	if (f[8][0] != '\0') {
		g_string_append(x, "      <spf>\n");
		xml_element(x, "        ", "domain", f[8]);
		if (strcmp(f[9], "mfrom") == 0)
			xml_element(x, "        ", "scope", "mfrom");
		xml_element(x, "        ", "result", f[10]);
		g_string_append(x, "      </spf>\n");
	}
	g_string_append(x, "    </auth_results>\n");
}

/* render_row - one <record> of a row key and its count. */
static gboolean render_row(gpointer key, gpointer value, gpointer data)
{
	GString *x = data;
	char **f = g_strsplit(key, "\t", -1);

	g_string_append(x, "  <record>\n    <row>\n");
	xml_element(x, "      ", "source_ip", f[0]);
	g_string_append_printf(x, "      <count>%" G_GUINT64_FORMAT "</count>\n", *(guint64 *)value);
	g_string_append(x, "      <policy_evaluated>\n");
	xml_element(x, "        ", "disposition", f[1]);
	xml_element(x, "        ", "dkim", f[2][0] == '1' ? "pass" : "fail");
	xml_element(x, "        ", "spf", f[3][0] == '1' ? "pass" : "fail");
	if (strcmp(f[4], "-") != 0) {
		g_string_append(x, "        <reason>\n");
		xml_element(x, "          ", "type", f[4]);
		if (f[5][0] != '\0')
			xml_element(x, "          ", "comment", f[5]);
		g_string_append(x, "        </reason>\n");
	}
	g_string_append(x, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
	if (f[6][0] != '\0')
		xml_element(x, "      ", "envelope_from", f[6]);
	xml_element(x, "      ", "header_from", f[7]);
	g_string_append(x, "    </identifiers>\n");
	render_auth(x, f);
	g_string_append(x, "  </record>\n");
	g_strfreev(f);
	return FALSE;
}

/* render_xml - the whole report of one domain, rows in key order. */
static GString *render_xml(const struct report_run *run, struct domain_report *d)
{
	GString *x = g_string_sized_new(4096);
	GHashTableIter it;
	gpointer k, v;

	g_string_append(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n  <version>1.0</version>\n");
	render_metadata(x, run, d);
	render_policy(x, d);
	if (d->sorted == NULL) {
		d->sorted = g_tree_new((GCompareFunc)strcmp);
		g_hash_table_iter_init(&it, d->rows);
		while (g_hash_table_iter_next(&it, &k, &v))
			g_tree_insert(d->sorted, k, v);
	}
	g_tree_foreach(d->sorted, render_row, x);
	g_string_append(x, "</feedback>\n");
	return x;
}

/* gzip - RFC 1952 bytes of data (GIO's zlib converter). */
static GBytes *gzip(const char *data, size_t len, char **error_r)
{
	GZlibCompressor *z = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, 9);
	GOutputStream *mem = g_memory_output_stream_new_resizable();
	GOutputStream *out = g_converter_output_stream_new(mem, G_CONVERTER(z));
	GError *err = NULL;
	GBytes *bytes = NULL;

	if (g_output_stream_write_all(out, data, len, NULL, NULL, &err) &&
	    g_output_stream_close(out, NULL, &err))
		bytes = g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(mem));
	else
		*error_r = g_strdup_printf("gzip: %s", err->message);
	g_clear_error(&err);
	g_object_unref(out);
	g_object_unref(mem);
	g_object_unref(z);
	return bytes;
}

static char *report_filename(const struct report_run *run, const struct domain_report *d)
{
	return g_strdup_printf("%s!%s!%lld!%lld.xml.gz", run->receiver, d->policy_domain,
			       (long long)run->begin, (long long)run->begin + REPORT_DAY_SECONDS - 1);
}

/* ------------------------------------------------------------ delivery */

static int write_out(const struct report_run *run, const char *name, GBytes *gz)
{
	char *path = g_build_filename(run->out_dir, name, NULL);
	GError *err = NULL;
	gsize len;
	const char *data = g_bytes_get_data(gz, &len);
	int rc = 0;

	if (!g_file_set_contents(path, data, (gssize)len, &err)) {
		log_error("report: %s", err->message);
		g_clear_error(&err);
		rc = -1;
	} else {
		log_info("report: wrote %s", path);
	}
	g_free(path);
	return rc;
}

/* txt_join - the character-strings of one TXT rdata joined. */
static char *txt_join(const unsigned char *rdata, size_t len)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < len && s->len < REPORT_TXT_MAX;) {
		size_t n = rdata[i++];
		if (n > len - i)
			n = len - i;
		g_string_append_len(s, (const char *)rdata + i, (gssize)n);
		i += n;
	}
	return g_string_free(s, FALSE);
}

/* lookup_dmarc_records - every TXT record of name that is a DMARC record,
 * their rua URIs appended to uris; 1 if at least one record, 0 if none,
 * -1 on a temporary DNS failure. */
static int lookup_dmarc_records(struct report_run *run, const char *name, GPtrArray *uris)
{
	struct dns_answer *a = NULL;
	int found = 0;

	resolver_query(run->resolver, name, REPORT_RRTYPE_TXT, &a);
	if (a->status == DNS_TEMPFAIL) {
		dns_answer_free(&a);
		return -1;
	}
	for (size_t i = 0; a->status == DNS_OK && i < a->count; i++) {
		char *txt = txt_join(a->data[i], a->len[i]);
		GPtrArray *more;
		if (report_rua_parse(txt, &more) == 0) {
			found = 1;
			for (guint k = 0; k < more->len; k++)
				g_ptr_array_add(uris, g_strdup(more->pdata[k]));
		}
		g_ptr_array_unref(more);
		g_free(txt);
	}
	dns_answer_free(&a);
	return found;
}

/* verify_external - RFC 9990 section 4 for address outside the policy's
 * organizational domain: 1 and the address(es) to use added to out, 0 if
 * not authorized (logged), -1 on a temporary DNS failure. */
static int verify_external(struct report_run *run, const char *policy_domain,
			   const char *address, GPtrArray *out)
{
	const char *host = strrchr(address, '@') + 1;
	char *name = g_strdup_printf("%s._report._dmarc.%s", policy_domain, host);
	GPtrArray *override = g_ptr_array_new_with_free_func(g_free);
	int rc = strlen(name) > REPORT_DNS_NAME_MAX ? 0 : lookup_dmarc_records(run, name, override);

	if (rc == 0)
		log_warning("report: %s: rua %s not sent: no DMARC1 record at %s (external destination not verified)",
			    policy_domain, address, name);
	for (guint i = 0; rc == 1 && i < override->len; i++) {
		char *o = report_mailto(override->pdata[i]);
		if (o == NULL || g_ascii_strcasecmp(strrchr(o, '@') + 1, host) != 0) {
			log_warning("report: %s: rua %s not sent: %s overrides it with another host",
				    policy_domain, address, name);
			g_ptr_array_set_size(out, 0);
			rc = 0;
		} else {
			g_ptr_array_add(out, g_strdup(o));
		}
		g_free(o);
	}
	if (rc == 1 && override->len == 0)
		g_ptr_array_add(out, g_strdup(address));
	g_ptr_array_unref(override);
	g_free(name);
	return rc;
}

/* add_uri - one rua URI of the policy record: to addresses if mailto: and
 * verified; false on a temporary failure. */
static bool add_uri(struct report_run *run, const struct domain_report *d, const char *uri,
		    GPtrArray *addresses)
{
	char *address = report_mailto(uri);
	bool ok = true;

	if (address == NULL) {
		log_warning("report: %s: rua %s ignored: not a mailto: URI with one address",
			    d->policy_domain, uri);
	} else if (!report_is_external(address, d->org_domain)) {
		g_ptr_array_add(addresses, g_strdup(address));
	} else if (verify_external(run, d->policy_domain, address, addresses) < 0) {
		log_warning("report: %s: rua %s not verified now (DNS temporarily failed): tried again next run",
			    d->policy_domain, address);
		ok = false;
	}
	g_free(address);
	return ok;
}

/* rua_addresses - the verified mailto: addresses of the policy domain's
 * rua; false on a temporary failure (what was not sent is retried). */
static bool rua_addresses(struct report_run *run, const struct domain_report *d, GPtrArray *addresses)
{
	char *name = g_strdup_printf("_dmarc.%s", d->policy_domain);
	GPtrArray *uris = g_ptr_array_new_with_free_func(g_free);
	int rc = lookup_dmarc_records(run, name, uris);
	bool ok = rc >= 0;

	if (rc < 0)
		log_warning("report: %s: DNS failed temporarily: tried again next run", name);
	else if (rc == 0 || uris->len == 0)
		log_info("report: %s: no rua: nothing to send", d->policy_domain);
	if (uris->len > REPORT_RUA_MAX)
		log_warning("report: %s: %u rua URIs, only the first %d used", d->policy_domain,
			    uris->len, REPORT_RUA_MAX);
	for (guint i = 0; i < uris->len && i < REPORT_RUA_MAX; i++)
		if (!add_uri(run, d, uris->pdata[i], addresses))
			ok = false;
	g_ptr_array_unref(uris);
	g_free(name);
	return ok;
}

/* build_mail - the report mail (RFC 9990 section 3.5.1: multipart with a
 * text part and the application/gzip attachment). g_malloc'd text. */
static char *build_mail(const struct report_run *run, const struct domain_report *d,
			const char *to, const char *filename, GBytes *gz)
{
	char *id = report_id(run, d);
	char *subject = g_strdup_printf("Report Domain: %s Submitter: %s Report-ID: <%s>",
					d->policy_domain, run->receiver, id);
	char *text = g_strdup_printf("DMARC aggregate report (RFC 9990) for %s from %s, UTC day %s.\n",
				     d->policy_domain, run->receiver, run->day);
	GMimeMessage *m = g_mime_message_new(TRUE);
	GMimeMultipart *mixed = g_mime_multipart_new_with_subtype("mixed");
	GMimeTextPart *body = g_mime_text_part_new_with_subtype("plain");
	GMimePart *att = g_mime_part_new_with_type("application", "gzip");
	GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(g_bytes_unref_to_array(g_bytes_ref(gz)));
	GMimeDataWrapper *content = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);

	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_FROM, NULL, run->config->report_email);
	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_TO, NULL, to);
	g_mime_message_set_subject(m, subject, NULL);
	g_mime_message_set_message_id(m, id);
	GDateTime *now = g_date_time_new_now_utc();
	g_mime_message_set_date(m, now);
	g_date_time_unref(now);
	g_mime_text_part_set_text(body, text);
	g_mime_part_set_content(att, content);
	g_mime_part_set_filename(att, filename);
	g_mime_object_set_disposition(GMIME_OBJECT(att), "attachment");
	g_mime_part_set_content_encoding(att, GMIME_CONTENT_ENCODING_BASE64);
	g_mime_multipart_add(mixed, GMIME_OBJECT(body));
	g_mime_multipart_add(mixed, GMIME_OBJECT(att));
	g_mime_message_set_mime_part(m, GMIME_OBJECT(mixed));
	char *mail = g_mime_object_to_string(GMIME_OBJECT(m), NULL);
	g_object_unref(content);
	g_object_unref(stream);
	g_object_unref(att);
	g_object_unref(body);
	g_object_unref(mixed);
	g_object_unref(m);
	g_free(text);
	g_free(subject);
	g_free(id);
	return mail;
}

/* sendmail - pipe mail to report_sendmail -i -f FROM -- TO; 0 if it exited 0. */
static int sendmail(const struct report_run *run, const char *to, const char *mail)
{
	char **cmd = NULL;
	GError *err = NULL;
	int rc = -1;

	if (!g_shell_parse_argv(run->config->report_sendmail, NULL, &cmd, &err)) {
		log_error("report: report_sendmail: %s", err->message);
		g_clear_error(&err);
		return -1;
	}
	GStrvBuilder *b = g_strv_builder_new();
	g_strv_builder_addv(b, (const char **)cmd);
	const char *tail[] = { "-i", "-f", run->config->report_email, "--", to, NULL };
	g_strv_builder_addv(b, tail);
	char **argv = g_strv_builder_end(b);
	GSubprocess *p = g_subprocess_newv((const char *const *)argv, G_SUBPROCESS_FLAGS_STDIN_PIPE, &err);
	GBytes *in = g_bytes_new_static(mail, strlen(mail));
	if (p != NULL && g_subprocess_communicate(p, in, NULL, NULL, NULL, &err) &&
	    g_subprocess_get_if_exited(p) && g_subprocess_get_exit_status(p) == 0)
		rc = 0;
	else
		log_error("report: %s to %s failed: %s", argv[0], to, err != NULL ? err->message : "exit status not 0");
	g_clear_error(&err);
	g_bytes_unref(in);
	if (p != NULL)
		g_object_unref(p);
	g_strfreev(argv);
	g_strv_builder_unref(b);
	g_strfreev(cmd);
	return rc;
}

/* state_path - DIR/DAY.SUFFIX in the first history directory. */
static char *state_path(const struct report_run *run, const char *suffix)
{
	return g_strdup_printf("%s/%s.%s", run->dirs[0], run->day, suffix);
}

/* load_sent - the "domain\taddress" lines of the day's .sent file. */
static void load_sent(struct report_run *run)
{
	char *path = state_path(run, "sent"), *text = NULL;

	run->sent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (g_file_get_contents(path, &text, NULL, NULL)) {
		char **lines = g_strsplit(text, "\n", -1);
		for (size_t i = 0; lines[i] != NULL; i++)
			if (lines[i][0] != '\0')
				g_hash_table_add(run->sent, g_strdup(lines[i]));
		g_strfreev(lines);
	}
	g_free(text);
	g_free(path);
}

/* remember_sent - append the line and fsync: a report must not go twice. */
static void remember_sent(struct report_run *run, const char *key)
{
	char *path = state_path(run, "sent"), *line = g_strconcat(key, "\n", NULL);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	size_t len = strlen(line);

	if (fd < 0 || write(fd, line, len) != (ssize_t)len || fsync(fd) < 0)
		log_error("report: %s: %s (this report may be sent again)", path, g_strerror(errno));
	if (fd >= 0)
		close(fd);
	g_hash_table_add(run->sent, g_strdup(key));
	g_free(line);
	g_free(path);
}

/* send_report - mail one report to each verified rua address not yet sent. */
static void send_report(struct report_run *run, const struct domain_report *d,
			const char *filename, GBytes *gz)
{
	GPtrArray *addresses = g_ptr_array_new_with_free_func(g_free);

	if (!rua_addresses(run, d, addresses))
		run->pending++;
	for (guint i = 0; i < addresses->len; i++) {
		char *key = g_strdup_printf("%s\t%s", d->policy_domain, (char *)addresses->pdata[i]);
		if (g_hash_table_contains(run->sent, key)) {
			log_info("report: %s already sent to %s", filename, (char *)addresses->pdata[i]);
		} else {
			char *mail = build_mail(run, d, addresses->pdata[i], filename, gz);
			if (sendmail(run, addresses->pdata[i], mail) == 0) {
				remember_sent(run, key);
				log_info("report: sent %s to %s", filename, (char *)addresses->pdata[i]);
			} else {
				run->pending++;
			}
			g_free(mail);
		}
		g_free(key);
	}
	g_ptr_array_unref(addresses);
}

/* deliver_all - render each domain's report, write and/or send it. */
static int deliver_all(struct report_run *run)
{
	GHashTableIter it;
	gpointer k, v;
	int rc = 0;

	g_hash_table_iter_init(&it, run->domains);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct domain_report *d = v;
		GString *xml = render_xml(run, d);
		char *error = NULL, *name = report_filename(run, d);
		GBytes *gz = gzip(xml->str, xml->len, &error);
		if (gz == NULL) {
			log_error("report: %s: %s", d->policy_domain, error);
			g_free(error);
			rc = -1;
		} else {
			log_info("report: %s: %u rows, %zu bytes of XML, %zu gzip'd", name,
				 g_hash_table_size(d->rows), xml->len, g_bytes_get_size(gz));
			if (run->out_dir != NULL && write_out(run, name, gz) < 0)
				rc = -1;
			if (run->send)
				send_report(run, d, name, gz);
			g_bytes_unref(gz);
		}
		g_free(name);
		g_string_free(xml, TRUE);
	}
	return rc;
}

/* day_of_name - the UTC midnight of "YYYY-MM-DD" (with an optional suffix
 * after the date when suffix_ok), or -1. */
static time_t day_of_name(const char *name, const char *suffix)
{
	int y, m, d, n = 0;

	if (sscanf(name, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 ||
	    strcmp(name + n, suffix) != 0 || !g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y))
		return -1;
	GDateTime *t = g_date_time_new_utc(y, m, d, 0, 0, 0);
	time_t r = (time_t)g_date_time_to_unix(t);
	g_date_time_unref(t);
	return r;
}

/* cleanup - remove the day files, in every directory, of reported days
 * (a .done marker in the state directory) older than REPORT_KEEP_DAYS. */
static void cleanup(const struct report_run *run, time_t now)
{
	GDir *dir = g_dir_open(run->dirs[0], 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		time_t day = day_of_name(name, ".done");
		if (day < 0 || day + (REPORT_KEEP_DAYS + 1) * REPORT_DAY_SECONDS > now)
			continue;
		char *stem = g_strndup(name, 10);
		for (size_t i = 0; i < run->dir_count; i++) {
			char *path = g_strdup_printf("%s/%s.dmh", run->dirs[i], stem);
			if (unlink(path) == 0)
				log_info("report: removed %s", path);
			g_free(path);
		}
		char *sent = g_strdup_printf("%s/%s.sent", run->dirs[0], stem);
		char *done = g_strdup_printf("%s/%s", run->dirs[0], name);
		unlink(sent);
		unlink(done);
		g_free(done);
		g_free(sent);
		g_free(stem);
	}
	if (dir != NULL)
		g_dir_close(dir);
}

/* mark_done - the day is reported: nothing to retry. */
static void mark_done(const struct report_run *run)
{
	char *path = state_path(run, "done");
	GError *err = NULL;

	if (!g_file_set_contents(path, "", 0, &err)) {
		log_error("report: %s", err->message);
		g_clear_error(&err);
	}
	g_free(path);
}

/* ------------------------------------------------------------ command */

static int usage_error(const char *what)
{
	fprintf(stderr, "lmtpfilter report: %s\n"
		"usage: lmtpfilter [-c FILE] report [--period YYYY-MM-DD] [--out DIR] [--send] [--history DIR]...\n",
		what);
	return 1;
}

/* parse_args - the options after "report" into run; 0 or an exit code. */
static int parse_args(struct report_run *run, int argc, char **argv, const char **period_r)
{
	GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool takes_value = strcmp(a, "--period") == 0 || strcmp(a, "--out") == 0 ||
				   strcmp(a, "--history") == 0;
		if (takes_value && i + 1 == argc) {
			g_ptr_array_unref(dirs);
			return usage_error("an option lacks its value");
		}
		if (strcmp(a, "--period") == 0)
			*period_r = argv[++i];
		else if (strcmp(a, "--out") == 0)
			run->out_dir = argv[++i];
		else if (strcmp(a, "--history") == 0 && dirs->len < REPORT_HISTORY_DIRS_MAX)
			g_ptr_array_add(dirs, g_strdup(argv[++i]));
		else if (strcmp(a, "--send") == 0)
			run->send = true;
		else {
			g_ptr_array_unref(dirs);
			return usage_error(takes_value ? "too many --history directories" : "unknown option");
		}
	}
	if (dirs->len == 0 && run->config->dmarc_history != NULL)
		g_ptr_array_add(dirs, g_strdup(run->config->dmarc_history));
	g_ptr_array_add(dirs, NULL);
	run->dir_count = dirs->len - 1;
	run->dirs = (char **)g_ptr_array_free(dirs, FALSE);
	if (run->dir_count == 0)
		return usage_error("no history: set dmarc_history or give --history DIR");
	if (run->out_dir == NULL && !run->send)
		return usage_error("nothing to do: give --out DIR and/or --send");
	return 0;
}

/* pick_period - --period or the last finished UTC day; a day not finished
 * yet is refused. */
static int pick_period(struct report_run *run, const char *period, time_t now)
{
	time_t today = now - now % REPORT_DAY_SECONDS;

	run->begin = period != NULL ? day_of_name(period, "") : today - REPORT_DAY_SECONDS;
	if (run->begin < 0)
		return usage_error("--period must be a date YYYY-MM-DD");
	if (run->begin + REPORT_DAY_SECONDS > now) {
		fprintf(stderr, "lmtpfilter report: %s is not a finished UTC day\n", period);
		return 1;
	}
	struct tm tm;
	gmtime_r(&run->begin, &tm);
	run->day = g_strdup_printf("%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	return 0;
}

/* check_identity - report_email (and from it the receiver) is required. */
static int check_identity(struct report_run *run)
{
	const char *email = run->config->report_email;
	const char *at = email != NULL ? strrchr(email, '@') : NULL;

	if (at == NULL || at[1] == '\0') {
		fprintf(stderr, "lmtpfilter report: %s: report_email must be set to an address\n",
			run->config->file);
		return 1;
	}
	run->receiver = at + 1;
	run->org_name = run->config->report_org_name != NULL ? run->config->report_org_name : run->receiver;
	return 0;
}

static int run_report(struct report_run *run)
{
	char *error = NULL;

	if (read_day(run) < 0)
		return 2;
	if (run->send) {
		load_sent(run);
		if (resolver_new(run->config->dns_servers, run->config->dns_server_count,
				 run->config->dns_timeout * 1000u, &run->resolver, &error) < 0) {
			log_error("report: resolver: %s", error);
			g_free(error);
			return 2;
		}
	}
	int rc = deliver_all(run) < 0 ? 2 : 0;
	if (rc == 0 && run->pending == 0)
		mark_done(run);
	else if (run->pending > 0)
		log_warning("report: %s: %u sends left for the next run", run->day, run->pending);
	cleanup(run, time(NULL));
	return rc != 0 ? rc : run->pending > 0 ? 2 : 0;
}

int report_main(const char *config_file, int argc, char **argv)
{
	struct report_run run = { 0 };
	const char *period = NULL;
	char *error = NULL;
	int rc;

	if (config_load(config_file, &run.config, &error) < 0) {
		fprintf(stderr, "lmtpfilter: %s\n", error);
		g_free(error);
		return 1;
	}
	run.domains = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, domain_report_free);
	rc = parse_args(&run, argc, argv, &period);
	if (rc == 0)
		rc = pick_period(&run, period, time(NULL));
	if (rc == 0)
		rc = check_identity(&run);
	if (rc == 0)
		rc = run_report(&run);
	resolver_free(&run.resolver);
	if (run.sent != NULL)
		g_hash_table_destroy(run.sent);
	g_hash_table_destroy(run.domains);
	g_strfreev(run.dirs);
	g_free(run.day);
	config_unref(&run.config);
	return rc;
}
