/*
 * test_from - the From addresses mime/from reads, one table
 *
 * Each row is a From value, the domains that must come out (in order)
 * and the error, if any; past an error, the domains read before it. The
 * bounds (size, colons, unclosed comments) stop a value before GMime.
 */
#include <glib.h>
#include <string.h>

#include "mime/from.h"

#define FROM_CASE_DOMAINS_MAX 4

struct from_case {
	const char *value;
	const char *error;              /* NULL: parsed */
	const char *domains[FROM_CASE_DOMAINS_MAX];
};

static const struct from_case cases[] = {
	{ "Alice <alice@Example.COM>", NULL, { "Example.COM" } },
	/* A non-ASCII domain becomes its A-label; an ASCII one stays as written. */
	{ "x@b\xc3\xbc" "cher.example, y@XN--BCHER-KVA.example", NULL,
	  { "xn--bcher-kva.example", "XN--BCHER-KVA.example" } },
	{ "=?utf-8?q?B=C3=B6b?= <b@one.example>, c@two.example", NULL,
	  { "one.example", "two.example" } },
	{ "team: a@g.example, b@h.example;", NULL, { "g.example", "h.example" } },
	{ "o: i: a@deep.example;;", NULL, { "deep.example" } },
	{ "o: i: j: a@deeper.example;;;", "nested groups in From", { NULL } },
	{ "a@first.example, nobody", "From address without a domain", { "first.example" } },
	{ "x@lit.example (never closed", "From field with an unclosed comment", { NULL } },
	/* A parenthesis inside a closed quoted string is no comment. */
	{ "\"Sales (EU\" <sales@eu.example>", NULL, { "eu.example" } },
	{ "\"a\\\" (b\" <q@esc.example>", NULL, { "esc.example" } },
	{ "\"closed\" x@[192.0.2.1] (never closed", "From field with an unclosed comment", { NULL } },
	{ "\"never closed (x@lit.example", "From field with an unclosed comment", { NULL } },
	{ "a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p:q:r:s:t:u:v:w:x:y:z:1:2:3:4:5:6:7:8 x@c.example",
	  "From field with over 32 colons", { NULL } },
	{ "", "unparsable From field", { NULL } },
};

static void test_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const struct from_case *c = &cases[i];
		struct from_list list;
		g_autofree char *error = NULL;
		size_t n = 0;
		int ret = from_parse(c->value, &list, &error);

		if (g_test_verbose())
			g_test_message("%s: %s", c->value, error != NULL ? error : "ok");

		g_assert_cmpint(ret, ==, (c->error != NULL ? -1 : 0));
		g_assert_cmpstr(error, ==, c->error);
		for (; n < FROM_CASE_DOMAINS_MAX && c->domains[n] != NULL; n++) {
			g_assert_cmpuint(n, <, list.count);
			g_assert_cmpstr(list.domains[n], ==, c->domains[n]);
		}
		g_assert_cmpuint(list.count, ==, n);
		from_list_clear(&list);
		from_list_clear(&list);
		g_assert_null(list.domains);
	}
}

/* test_bounds - past FROM_ADDRESSES_MAX mailboxes, and past
 * FROM_FIELD_MAX bytes (never parsed). */
static void test_bounds(void)
{
	GString *many = g_string_new(NULL), *big = g_string_new("a@big.example (");
	struct from_list list;
	char *error = NULL;

	for (int i = 0; i <= FROM_ADDRESSES_MAX; i++)
		g_string_append_printf(many, "%sm%d@many.example", i > 0 ? ", " : "", i);
	g_assert_cmpint(from_parse(many->str, &list, &error), ==, -1);
	g_assert_cmpstr(error, ==, "too many From addresses");
	g_assert_cmpuint(list.count, ==, FROM_ADDRESSES_MAX);
	from_list_clear(&list);
	g_clear_pointer(&error, g_free);
	while (big->len <= FROM_FIELD_MAX)
		g_string_append_c(big, 'x');
	g_string_append_c(big, ')');
	g_assert_cmpint(from_parse(big->str, &list, &error), ==, -1);
	g_assert_cmpstr(error, ==, "From field over 16384 bytes");
	g_assert_cmpuint(list.count, ==, 0);
	from_list_clear(&list);
	g_free(error);
	g_string_free(many, TRUE);
	g_string_free(big, TRUE);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	from_init();
	g_test_add_func("/from/table", test_table);
	g_test_add_func("/from/bounds", test_bounds);
	return g_test_run();
}
