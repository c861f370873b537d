/*
 * spf_conformance - the RFC 7208 test suite through lmtpfilter's SPF module
 *
 * Reads the suite's YAML (argv[1]), builds an in-memory DNS from each
 * scenario's zonedata with the reference driver's rules, runs every test
 * through spf_check(), prints each failure and "N passed, M failed".
 * argv[2] lists the tests allowed to fail ("scenario/test reason" per
 * line); the exit status is 0 when every failure is listed there.
 *
 * Zone rules (as the suite's reference driver): SPF entries are also TXT
 * unless the name has TXT entries; "TXT: NONE" suppresses that; TIMEOUT is
 * a temporary error for a type unless a record of that type came before
 * it; CNAMEs are followed. Explanation strings are not compared: lmtpfilter
 * never fetches exp=, on purpose.
 */
#include "lmtpfilter/spf.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <glib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define CNAME_DEPTH_MAX 8

struct zone_rr {
	int type;                /* ns_t_*, or -1 for TIMEOUT, -2 for "TXT: NONE" */
	GByteArray *rdata;
	char *target;            /* CNAME target */
};

struct zone {
	GHashTable *names;       /* lower-case name -> GPtrArray of struct zone_rr */
};

static char *name_key(const char *name)
{
	char *k = g_ascii_strdown(name, -1);
	size_t len = strlen(k);
	if (len > 0 && k[len - 1] == '.')
		k[len - 1] = '\0';
	return k;
}

static void rr_free(gpointer p)
{
	struct zone_rr *rr = p;
	if (rr->rdata != NULL)
		g_byte_array_free(rr->rdata, TRUE);
	g_free(rr->target);
	g_free(rr);
}

static void wire_name_append(GByteArray *out, const char *name)
{
	gchar **labels = g_strsplit(name, ".", -1);
	for (gchar **l = labels; *l != NULL; l++) {
		size_t len = strlen(*l);
		if (len == 0)
			continue;
		guint8 n = (guint8)MIN(len, 63);
		g_byte_array_append(out, &n, 1);
		g_byte_array_append(out, (const guint8 *)*l, n);
	}
	guint8 zero = 0;
	g_byte_array_append(out, &zero, 1);
	g_strfreev(labels);
}

static void txt_append(GByteArray *out, const char *s, size_t len)
{
	do {
		guint8 n = (guint8)MIN(len, 255);
		g_byte_array_append(out, &n, 1);
		g_byte_array_append(out, (const guint8 *)s, n);
		s += n;
		len -= n;
	} while (len > 0);
}

/* ---- YAML helpers (document API) ---- */

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static const char *scalar(yaml_node_t *n)
{
	return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static void zone_add(struct zone *z, yaml_document_t *doc, const char *name, yaml_node_t *entries)
{
	char *key = name_key(name);
	GPtrArray *rrs = g_hash_table_lookup(z->names, key);
	if (rrs == NULL) {
		rrs = g_ptr_array_new_with_free_func(rr_free);
		g_hash_table_insert(z->names, g_strdup(key), rrs);
	}
	g_free(key);
	if (entries == NULL || entries->type != YAML_SEQUENCE_NODE)
		return;
	for (yaml_node_item_t *it = entries->data.sequence.items.start; it < entries->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(doc, *it);
		struct zone_rr *rr = g_new0(struct zone_rr, 1);
		if (e->type == YAML_SCALAR_NODE) {          /* TIMEOUT */
			rr->type = -1;
			g_ptr_array_add(rrs, rr);
			continue;
		}
		if (e->type != YAML_MAPPING_NODE || e->data.mapping.pairs.start == e->data.mapping.pairs.top) {
			g_free(rr);
			continue;
		}
		yaml_node_pair_t *p = e->data.mapping.pairs.start;
		const char *type = scalar(yaml_document_get_node(doc, p->key));
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		rr->rdata = g_byte_array_new();
		if (g_strcmp0(type, "SPF") == 0 || g_strcmp0(type, "TXT") == 0) {
			rr->type = g_strcmp0(type, "SPF") == 0 ? ns_t_spf : ns_t_txt;
			if (v->type == YAML_SEQUENCE_NODE) {
				for (yaml_node_item_t *s = v->data.sequence.items.start; s < v->data.sequence.items.top; s++)
					{
					yaml_node_t *n = yaml_document_get_node(doc, *s);
					txt_append(rr->rdata, (const char *)n->data.scalar.value, n->data.scalar.length);
				}
			} else if (rr->type == ns_t_txt && g_strcmp0(scalar(v), "NONE") == 0) {
				rr->type = -2;
			} else {
				txt_append(rr->rdata, scalar(v) != NULL ? scalar(v) : "", scalar(v) != NULL ? v->data.scalar.length : 0);
			}
		} else if (g_strcmp0(type, "A") == 0 || g_strcmp0(type, "AAAA") == 0) {
			unsigned char addr[16];
			rr->type = type[1] == '\0' ? ns_t_a : ns_t_aaaa;
			if (inet_pton(rr->type == ns_t_a ? AF_INET : AF_INET6, scalar(v), addr) == 1)
				g_byte_array_append(rr->rdata, addr, rr->type == ns_t_a ? 4 : 16);
		} else if (g_strcmp0(type, "MX") == 0 && v->type == YAML_SEQUENCE_NODE) {
			rr->type = ns_t_mx;
			yaml_node_t *pref = yaml_document_get_node(doc, v->data.sequence.items.start[0]);
			yaml_node_t *host = yaml_document_get_node(doc, v->data.sequence.items.start[1]);
			guint16 pr = htons((guint16)atoi(scalar(pref)));
			g_byte_array_append(rr->rdata, (guint8 *)&pr, 2);
			wire_name_append(rr->rdata, scalar(host));
		} else if (g_strcmp0(type, "PTR") == 0) {
			rr->type = ns_t_ptr;
			wire_name_append(rr->rdata, scalar(v));
		} else if (g_strcmp0(type, "CNAME") == 0) {
			rr->type = ns_t_cname;
			rr->target = name_key(scalar(v));
		} else {
			rr_free(rr);
			continue;
		}
		g_ptr_array_add(rrs, rr);
	}
}

/* ---- the in-memory DNS source ---- */

static struct zone *current_zone;

static int zone_query(void *ctx, const char *name, int rrtype, struct dns_answer **answer_r)
{
	struct dns_answer *a = g_new0(struct dns_answer, 1);
	char *key = name_key(name);

	*answer_r = a;
	a->rrtype = rrtype;
	for (int depth = 0; depth < CNAME_DEPTH_MAX; depth++) {
		GPtrArray *rrs = g_hash_table_lookup(current_zone->names, key);
		if (rrs == NULL) {
			a->status = g_str_has_prefix(key, "error.") ? DNS_TEMPFAIL : DNS_NXDOMAIN;
			g_free(key);
			return 0;
		}
		bool has_txt = false;
		const char *cname = NULL;
		for (guint i = 0; i < rrs->len; i++) {
			struct zone_rr *rr = rrs->pdata[i];
			if (rr->type == ns_t_txt || rr->type == -2)
				has_txt = true;
			if (rr->type == ns_t_cname)
				cname = rr->target;
		}
		if (cname != NULL && rrtype != ns_t_cname) {
			g_free(key);
			key = g_strdup(cname);
			continue;
		}
		GPtrArray *data = g_ptr_array_new();
		for (guint i = 0; i < rrs->len; i++) {
			struct zone_rr *rr = rrs->pdata[i];
			int type = rr->type == ns_t_spf && !has_txt ? ns_t_txt : rr->type;
			if (rr->type == -1 && data->len == 0) {
				a->status = DNS_TEMPFAIL;
				break;
			}
			if (type == rrtype)
				g_ptr_array_add(data, rr->rdata);
		}
		if (a->status != DNS_TEMPFAIL) {
			a->status = data->len > 0 ? DNS_OK : DNS_NODATA;
			a->count = data->len;
			a->data = g_new0(unsigned char *, data->len + 1);
			a->len = g_new0(size_t, data->len + 1);
			for (guint i = 0; i < data->len; i++) {
				GByteArray *b = data->pdata[i];
				a->data[i] = g_memdup2(b->data, b->len ? b->len : 1);
				a->len[i] = b->len;
			}
		}
		g_ptr_array_free(data, TRUE);
		g_free(key);
		return 0;
	}
	a->status = DNS_NODATA;   /* CNAME loop: no data at the end of it */
	g_free(key);
	return 0;
}

static void zone_free_answer(void *ctx, struct dns_answer **answer)
{
	dns_answer_free(answer);
}

/* ---- the run ---- */

static GHashTable *load_known(const char *path)
{
	GHashTable *known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	char *text = NULL;

	if (path == NULL || !g_file_get_contents(path, &text, NULL, NULL))
		return known;
	gchar **lines = g_strsplit(text, "\n", -1);
	for (gchar **l = lines; *l != NULL; l++) {
		g_strstrip(*l);
		if (**l == '\0' || **l == '#')
			continue;
		char *sp = strpbrk(*l, " \t");
		g_hash_table_add(known, g_strndup(*l, sp != NULL ? (size_t)(sp - *l) : strlen(*l)));
	}
	g_strfreev(lines);
	g_free(text);
	return known;
}

static bool result_ok(yaml_document_t *doc, yaml_node_t *expected, const char *got)
{
	if (expected == NULL)
		return false;
	if (expected->type == YAML_SCALAR_NODE)
		return g_ascii_strcasecmp(scalar(expected), got) == 0;
	if (expected->type != YAML_SEQUENCE_NODE)
		return false;
	for (yaml_node_item_t *it = expected->data.sequence.items.start; it < expected->data.sequence.items.top; it++)
		if (g_ascii_strcasecmp(scalar(yaml_document_get_node(doc, *it)), got) == 0)
			return true;
	return false;
}

static void expected_text(yaml_document_t *doc, yaml_node_t *expected, GString *out)
{
	if (expected != NULL && expected->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *it = expected->data.sequence.items.start; it < expected->data.sequence.items.top; it++)
			g_string_append_printf(out, "%s%s", out->len ? "|" : "", scalar(yaml_document_get_node(doc, *it)));
	} else {
		g_string_append(out, scalar(expected) != NULL ? scalar(expected) : "?");
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: spf_conformance rfc7208-tests.yml [KNOWN_FAILURES]\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (f == NULL) {
		perror(argv[1]);
		return 2;
	}
	GHashTable *known = load_known(argc > 2 ? argv[2] : NULL);
	struct spf_dns dns = { .query = zone_query, .free_answer = zone_free_answer };
	struct spf_checker *checker;
	char *error = NULL;
	if (spf_checker_new(&dns, "conformance.test", &checker, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 2;
	}

	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	unsigned passed = 0, failed = 0, unlisted = 0, with_exp = 0;
	GHashTable *failures = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&parser, &doc)) {
			fprintf(stderr, "%s: YAML error: %s\n", argv[1], parser.problem);
			return 2;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (root == NULL) {
			yaml_document_delete(&doc);
			break;
		}
		struct zone zone = { g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							   (GDestroyNotify)g_ptr_array_unref) };
		yaml_node_t *zd = map_get(&doc, root, "zonedata");
		for (yaml_node_pair_t *p = zd ? zd->data.mapping.pairs.start : NULL; zd && p < zd->data.mapping.pairs.top; p++)
			zone_add(&zone, &doc, scalar(yaml_document_get_node(&doc, p->key)), yaml_document_get_node(&doc, p->value));
		current_zone = &zone;
		const char *scenario = scalar(map_get(&doc, root, "description"));
		yaml_node_t *tests = map_get(&doc, root, "tests");
		for (yaml_node_pair_t *p = tests ? tests->data.mapping.pairs.start : NULL; tests && p < tests->data.mapping.pairs.top; p++) {
			const char *name = scalar(yaml_document_get_node(&doc, p->key));
			yaml_node_t *t = yaml_document_get_node(&doc, p->value);
			struct spf_outcome mf, helo;
			spf_check(checker, scalar(map_get(&doc, t, "host")), scalar(map_get(&doc, t, "helo")),
				  scalar(map_get(&doc, t, "mailfrom")), &mf, &helo);
			yaml_node_t *expected = map_get(&doc, t, "result");
			if (map_get(&doc, t, "explanation") != NULL)
				with_exp++;
			if (result_ok(&doc, expected, verdict_name(mf.result))) {
				passed++;
				continue;
			}
			failed++;
			GString *exp = g_string_new(NULL);
			expected_text(&doc, expected, exp);
			bool listed = g_hash_table_contains(known, name);
			if (!listed)
				unlisted++;
			printf("FAIL %s/%s: expected %s got %s (%s) [spec %s]%s\n", scenario, name, exp->str,
			       verdict_name(mf.result), mf.reason, scalar(map_get(&doc, t, "spec")) ?: "?",
			       listed ? " (known)" : "");
			g_hash_table_add(failures, g_strdup(name));
			g_string_free(exp, TRUE);
		}
		current_zone = NULL;
		g_hash_table_destroy(zone.names);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(f);

	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, known);
	while (g_hash_table_iter_next(&it, &key, NULL))
		if (!g_hash_table_contains(failures, key))
			printf("note: %s is listed as a known failure but passes now\n", (char *)key);
	printf("%u tests carry an explanation string, not compared: exp= is never fetched\n", with_exp);
	printf("%u passed, %u failed\n", passed, failed);
	if (unlisted > 0)
		printf("%u failure(s) not explained in the known-failures file\n", unlisted);
	spf_checker_free(&checker);
	g_hash_table_destroy(failures);
	g_hash_table_destroy(known);
	return unlisted > 0 ? 1 : 0;
}
