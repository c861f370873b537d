/*
 * zone_fixture - the in-memory zone: records as wire-format rdata, a log
 *
 * Owns its records (built once, read by every query) and the log of names
 * asked (under a mutex: the DMARC tests query from several threads).
 */
#include "zone_fixture.h"

#include <arpa/inet.h>
#include <string.h>

#define TEST_ZONE_TXT_CHUNK_MAX 255   /* RFC 1035 3.3: one character-string */
#define TEST_ZONE_MX_PREFERENCE "\x00\x0a"

enum test_zone_kind { TEST_ZONE_RECORD, TEST_ZONE_NODATA, TEST_ZONE_TEMPFAIL };

struct test_zone_record {
	char *name;
	enum test_zone_kind kind;
	int rrtype;
	GBytes *rdata;
};

struct test_zone {
	GPtrArray *records;     /* struct test_zone_record */
	GPtrArray *asked;       /* "TYPE name" */
	GMutex lock;            /* asked */
};

static void test_zone_record_free(gpointer data)
{
	struct test_zone_record *r = data;

	g_free(r->name);
	if (r->rdata != NULL)
		g_bytes_unref(r->rdata);
	g_free(r);
}

struct test_zone *test_zone_new(void)
{
	struct test_zone *z = g_new0(struct test_zone, 1);

	z->records = g_ptr_array_new_with_free_func(test_zone_record_free);
	z->asked = g_ptr_array_new_with_free_func(g_free);
	g_mutex_init(&z->lock);
	return z;
}

void test_zone_free(struct test_zone **zone)
{
	struct test_zone *z = *zone;

	if (z == NULL)
		return;
	*zone = NULL;
	g_ptr_array_unref(z->records);
	g_ptr_array_unref(z->asked);
	g_mutex_clear(&z->lock);
	g_free(z);
}

/* test_zone_wire_name - NAME in wire format, appended to OUT. */
static void test_zone_wire_name(GByteArray *out, const char *name)
{
	char **labels = g_strsplit(name, ".", -1);

	for (char **l = labels; *l != NULL; l++) {
		guint8 len = (guint8)strlen(*l);

		if (len == 0)
			continue;
		g_byte_array_append(out, &len, 1);
		g_byte_array_append(out, (const guint8 *)*l, len);
	}
	g_byte_array_append(out, (const guint8 *)"", 1);
	g_strfreev(labels);
}

/* test_zone_txt - TEXT as character-strings of at most 255 bytes. */
static void test_zone_txt(GByteArray *out, const char *text)
{
	size_t len = strlen(text), pos = 0;

	do {
		guint8 n = (guint8)MIN(len - pos, TEST_ZONE_TXT_CHUNK_MAX);

		g_byte_array_append(out, &n, 1);
		g_byte_array_append(out, (const guint8 *)text + pos, n);
		pos += n;
	} while (pos < len);
}

/* test_zone_rdata - VALUE of type RRTYPE in wire format. */
static GBytes *test_zone_rdata(int rrtype, const char *value)
{
	GByteArray *out = g_byte_array_new();
	guint8 addr[16];

	switch (rrtype) {
	case TEST_ZONE_A:
	case TEST_ZONE_AAAA:
		g_assert_cmpint(inet_pton(rrtype == TEST_ZONE_A ? AF_INET : AF_INET6, value, addr), ==, 1);
		g_byte_array_append(out, addr, rrtype == TEST_ZONE_A ? 4 : 16);
		break;
	case TEST_ZONE_TXT:
		test_zone_txt(out, value);
		break;
	case TEST_ZONE_MX:
		g_byte_array_append(out, (const guint8 *)TEST_ZONE_MX_PREFERENCE, 2);
		test_zone_wire_name(out, value);
		break;
	case TEST_ZONE_PTR:
		test_zone_wire_name(out, value);
		break;
	default:
		g_error("test_zone: no text form for type %d", rrtype);
	}
	return g_byte_array_free_to_bytes(out);
}

static void test_zone_put(struct test_zone *z, const char *name, enum test_zone_kind kind,
			  int rrtype, GBytes *rdata)
{
	struct test_zone_record *r = g_new0(struct test_zone_record, 1);

	r->name = g_strdup(name);
	r->kind = kind;
	r->rrtype = rrtype;
	r->rdata = rdata;
	g_ptr_array_add(z->records, r);
}

void test_zone_add(struct test_zone *zone, const char *name, int rrtype, const char *value)
{
	test_zone_put(zone, name, TEST_ZONE_RECORD, rrtype, test_zone_rdata(rrtype, value));
}

void test_zone_add_nodata(struct test_zone *zone, const char *name)
{
	test_zone_put(zone, name, TEST_ZONE_NODATA, 0, NULL);
}

void test_zone_add_tempfail(struct test_zone *zone, const char *name)
{
	test_zone_put(zone, name, TEST_ZONE_TEMPFAIL, 0, NULL);
}

void test_zone_clear(struct test_zone *zone)
{
	g_ptr_array_set_size(zone->records, 0);
	test_zone_forget(zone);
}

/* test_zone_name_len - length of NAME without a trailing dot. */
static size_t test_zone_name_len(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && name[n - 1] == '.' ? n - 1 : n;
}

/* test_zone_same - A and B name the same node. */
static bool test_zone_same(const char *a, const char *b)
{
	size_t la = test_zone_name_len(a), lb = test_zone_name_len(b);

	return la == lb && g_ascii_strncasecmp(a, b, la) == 0;
}

/* test_zone_below - CHILD is a name below PARENT. */
static bool test_zone_below(const char *child, const char *parent)
{
	size_t lc = test_zone_name_len(child), lp = test_zone_name_len(parent);

	return lc > lp + 1 && child[lc - lp - 1] == '.' &&
	       g_ascii_strncasecmp(child + lc - lp, parent, lp) == 0;
}

static const char *test_zone_type_name(int rrtype)
{
	switch (rrtype) {
	case TEST_ZONE_A: return "A";
	case TEST_ZONE_PTR: return "PTR";
	case TEST_ZONE_MX: return "MX";
	case TEST_ZONE_TXT: return "TXT";
	case TEST_ZONE_AAAA: return "AAAA";
	default: return NULL;
	}
}

static void test_zone_log(struct test_zone *z, const char *name, int rrtype)
{
	const char *type = test_zone_type_name(rrtype);
	char *line = type != NULL ? g_strdup_printf("%s %s", type, name) :
				    g_strdup_printf("TYPE%d %s", rrtype, name);

	g_mutex_lock(&z->lock);
	g_ptr_array_add(z->asked, line);
	g_mutex_unlock(&z->lock);
}

/* test_zone_fill - the records of NAME and RRTYPE into A; its status. */
static void test_zone_fill(struct test_zone *z, const char *name, int rrtype, struct dns_answer *a)
{
	GPtrArray *data = g_ptr_array_new();
	bool exists = false;

	for (guint i = 0; i < z->records->len; i++) {
		const struct test_zone_record *r = g_ptr_array_index(z->records, i);

		if (test_zone_below(r->name, name))
			exists = true;
		if (!test_zone_same(r->name, name))
			continue;
		if (r->kind == TEST_ZONE_TEMPFAIL) {
			a->status = DNS_TEMPFAIL;
			g_ptr_array_free(data, TRUE);
			return;
		}
		exists = true;
		if (r->kind == TEST_ZONE_RECORD && r->rrtype == rrtype)
			g_ptr_array_add(data, r->rdata);
	}
	a->status = data->len > 0 ? DNS_OK : exists ? DNS_NODATA : DNS_NXDOMAIN;
	a->count = data->len;
	a->data = g_new0(unsigned char *, a->count + 1);
	a->len = g_new0(size_t, a->count + 1);
	for (size_t i = 0; i < a->count; i++) {
		gsize len;
		const void *bytes = g_bytes_get_data(g_ptr_array_index(data, i), &len);

		a->data[i] = g_memdup2(bytes, len);
		a->len[i] = len;
	}
	g_ptr_array_free(data, TRUE);
}

static int test_zone_query(void *ctx, const char *name, int rrtype, struct dns_answer **answer_r)
{
	struct test_zone *z = ctx;
	struct dns_answer *a = g_new0(struct dns_answer, 1);

	test_zone_log(z, name, rrtype);
	a->rrtype = rrtype;
	test_zone_fill(z, name, rrtype, a);
	*answer_r = a;
	return 0;
}

static void test_zone_free_answer(void *ctx, struct dns_answer **answer)
{
	dns_answer_free(answer);
}

void test_zone_source(struct test_zone *zone, struct dns_source *source_r)
{
	source_r->query = test_zone_query;
	source_r->free_answer = test_zone_free_answer;
	source_r->ctx = zone;
}

guint test_zone_asked_count(struct test_zone *zone)
{
	return zone->asked->len;
}

const char *test_zone_asked(struct test_zone *zone, guint i)
{
	g_assert_cmpuint(i, <, zone->asked->len);
	return g_ptr_array_index(zone->asked, i);
}

bool test_zone_was_asked(struct test_zone *zone, const char *name)
{
	for (guint i = 0; i < zone->asked->len; i++) {
		const char *q = strchr(g_ptr_array_index(zone->asked, i), ' ') + 1;

		if (test_zone_same(q, name))
			return true;
	}
	return false;
}

void test_zone_forget(struct test_zone *zone)
{
	g_mutex_lock(&zone->lock);
	g_ptr_array_set_size(zone->asked, 0);
	g_mutex_unlock(&zone->lock);
}
