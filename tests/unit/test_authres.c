/*
 * test_authres - Authentication-Results and Received-SPF rendering:
 * exact layout for the usual results, folding, quoting and escaping of
 * hostile values, and a standard parser (Debian's python3-authres, run
 * as /usr/bin/python3) reading back every field we write.
 */
#include "mime/authres.h"
#include "mime/header_block.h"
#include "mime/normalize.h"

#include <gio/gio.h>
#include <glib.h>
#include <stdbool.h>
#include <string.h>

#define PYTHON "/usr/bin/python3"

/* Reads fields separated by NUL bytes on stdin; prints per field
 * "I <hex id>", then "R <method> <result>" and "P <type.name> <hex value>"
 * (quoted-string escapes undone) per result, then "E". */
static const char parse_script[] =
	"import sys, re, authres\n"
	"data = sys.stdin.buffer.read().decode('utf-8')\n"
	"for text in data.split('\\0'):\n"
	"    if not text: continue\n"
	"    try:\n"
	"        h = authres.AuthenticationResultsHeader.parse(text)\n"
	"    except Exception as e:\n"
	"        sys.exit('cannot parse %r: %s' % (text, e))\n"
	"    print('I', str(h.authserv_id).encode().hex())\n"
	"    for r in h.results:\n"
	"        print('R', r.method, r.result)\n"
	"        for p in r.properties:\n"
	"            v = re.sub(r'\\\\(.)', r'\\1', str(p.value))\n"
	"            print('P', p.type + '.' + p.name, v.encode().hex() or '-')\n"
	"    print('E')\n";

static char *hex(const char *s)
{
	GString *out = g_string_new("");

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		g_string_append_printf(out, "%02x", *p);
	if (out->len == 0)
		g_string_append_c(out, '-');
	return g_string_free(out, FALSE);
}

/* python_parse - run the parser over the fields; its output, one line per item */
static char **python_parse(GPtrArray *fields)
{
	const char *argv[] = { PYTHON, "-c", parse_script, NULL };
	GString *input = g_string_new("");
	GSubprocess *proc;
	GBytes *stdin_bytes, *stdout_bytes = NULL, *stderr_bytes = NULL;
	GError *error = NULL;
	char *out, **lines;

	for (guint i = 0; i < fields->len; i++)
		g_string_append_len(input, g_ptr_array_index(fields, i), (gssize)strlen(g_ptr_array_index(fields, i)) + 1);
	proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
				 G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
	g_assert_no_error(error);
	stdin_bytes = g_string_free_to_bytes(input);
	g_subprocess_communicate(proc, stdin_bytes, NULL, &stdout_bytes, &stderr_bytes, &error);
	g_assert_no_error(error);
	if (!g_subprocess_get_successful(proc))
		g_error("python authres failed: %.*s", (int)g_bytes_get_size(stderr_bytes),
			(const char *)g_bytes_get_data(stderr_bytes, NULL));
	out = g_strndup(g_bytes_get_data(stdout_bytes, NULL), g_bytes_get_size(stdout_bytes));
	lines = g_strsplit(out, "\n", -1);
	g_free(out);
	g_bytes_unref(stdin_bytes);
	g_bytes_unref(stdout_bytes);
	g_bytes_unref(stderr_bytes);
	g_object_unref(proc);
	return lines;
}

static size_t spaces_outside_quotes(const char *s)
{
	bool quoted = false;
	size_t n = 0;

	for (; *s != '\0'; s++) {
		if (quoted && *s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (!quoted && *s == ' ')
			n++;
	}
	return n;
}

static int cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sort_property_runs - property order within a result is not asserted here */
static void sort_property_runs(char **lines)
{
	for (size_t i = 0; lines[i] != NULL;) {
		size_t j = i;

		while (lines[j] != NULL && g_str_has_prefix(lines[j], "P "))
			j++;
		if (j > i + 1)
			qsort(lines + i, j - i, sizeof(char *), (int (*)(const void *, const void *))cmp_str);
		i = j > i ? j : i + 1;
	}
}

/* check_layout - CRLF line ends only, continuation lines start with a tab,
 * no line over AUTHRES_LINE_MAX unless it is one unbreakable part */
static void check_layout(const char *field)
{
	char **lines;
	guint n;

	g_assert_true(g_str_has_suffix(field, "\r\n"));
	for (const char *p = field; *p != '\0'; p++) {
		if (*p == '\n')
			g_assert_true(p > field && p[-1] == '\r');
		if (*p == '\r')
			g_assert_true(p[1] == '\n');
	}
	lines = g_strsplit(field, "\r\n", -1);
	n = g_strv_length(lines);
	g_assert_cmpstr(lines[n - 1], ==, "");
	for (guint i = 0; i + 1 < n; i++) {
		if (i > 0)
			g_assert_true(lines[i][0] == '\t');
		if (strlen(lines[i]) > AUTHRES_LINE_MAX)
			g_assert_cmpuint(spaces_outside_quotes(lines[i] + 1), ==, 0); /* one long part only */
	}
	g_strfreev(lines);
}

static void test_spec_example(void)
{
	struct authres *ar = authres_new("mail.example.com");
	char *s;

	authres_add(ar, "spf", VERDICT_FAIL, NULL, "smtp.mailfrom", "user@example.com", "smtp.helo", "www.wormly.com", NULL);
	authres_add(ar, "dkim", VERDICT_PASS, NULL, "header.d", "example.org", "header.i", "@example.org",
		    "header.s", "sel1", "header.a", "rsa-sha256", "header.b", "AbCdEfGh", NULL);
	authres_add(ar, "dmarc", VERDICT_FAIL, "p=reject dis=none", "header.from", "example.com", NULL);
	g_assert_cmpuint(authres_count(ar), ==, 3);
	s = authres_render(ar);
	g_assert_cmpstr(s, ==,
			"Authentication-Results: mail.example.com;\r\n"
			"\tspf=fail smtp.mailfrom=user@example.com smtp.helo=www.wormly.com;\r\n"
			"\tdkim=pass header.d=example.org header.i=@example.org header.s=sel1\r\n"
			"\theader.a=rsa-sha256 header.b=AbCdEfGh;\r\n"
			"\tdmarc=fail (p=reject dis=none) header.from=example.com\r\n");
	check_layout(s);
	g_free(s);
	authres_free(&ar);
	g_assert_null(ar);
}

static void test_no_results(void)
{
	struct authres *ar = authres_new("mail.example.com");
	char *s = authres_render(ar);

	g_assert_cmpstr(s, ==, "Authentication-Results: mail.example.com; none\r\n");
	g_free(s);
	authres_free(&ar);
}

/* the longest run of C in S */
static size_t longest_run(const char *s, char c)
{
	size_t best = 0, run = 0;

	for (; *s != '\0'; s++) {
		run = *s == c ? run + 1 : 0;
		best = run > best ? run : best;
	}
	return best;
}

/* a value is cut at AUTHRES_TEXT_MAX bytes, whether it is all printable
 * ASCII or has bytes that are dropped */
static void test_text_cap(void)
{
	g_autofree char *plain = g_strnfill(AUTHRES_TEXT_MAX + 500, 'a');
	g_autofree char *tail = g_strnfill(500, 'b');
	g_autofree char *head = g_strnfill(AUTHRES_TEXT_MAX - 1, 'c');
	g_autofree char *mixed = g_strconcat(head, "\x01\x7f", tail, NULL);
	struct authres *ar = authres_new("mail.example.com");
	g_autofree char *field = NULL;

	authres_add(ar, "dkim", VERDICT_PASS, NULL, "header.b", plain, "header.s", mixed, NULL);
	field = authres_render(ar);
	authres_free(&ar);
	g_assert_cmpuint(longest_run(field, 'a'), ==, AUTHRES_TEXT_MAX);
	g_assert_nonnull(strstr(field, "header.s=ccc"));
	g_assert_cmpuint(longest_run(field, 'c'), ==, AUTHRES_TEXT_MAX - 1);
	g_assert_cmpuint(longest_run(field, 'b'), ==, 1);
	g_assert_null(strchr(field, '\x01'));
	g_assert_null(strchr(field, '\x7f'));
}

static void test_quoting_and_escaping(void)
{
	struct authres *ar = authres_new("mail.example.com");
	char *s;

	authres_add(ar, "spf", VERDICT_NONE, "trail (all) inside \\ trusted\r\nnetworks\x01",
		    "smtp.mailfrom", "a\"b;c d@example.com", "smtp.helo", NULL, NULL);
	authres_add(ar, "dkim", VERDICT_PERMERROR, NULL, "header.b", "ab/c+d=", "header.d", "", "header.s", "s", NULL);
	authres_add(ar, "auth", VERDICT_PASS, NULL, "smtp.auth", "alice", NULL);
	s = authres_render(ar);
	g_assert_cmpstr(s, ==,
			"Authentication-Results: mail.example.com;\r\n"
			"\tspf=none (trail \\(all\\) inside \\\\ trusted networks)\r\n"
			"\tsmtp.mailfrom=\"a\\\"b;c d\"@example.com;\r\n"
			"\tdkim=permerror header.s=s header.b=\"ab/c+d=\";\r\n"
			"\tauth=pass smtp.auth=alice\r\n");
	g_free(s);
	authres_free(&ar);
}

struct hostile {
	const char *value;      /* given */
	const char *parsed;     /* what a parser must read back */
};

static const struct hostile hostile_values[] = {
	{ "plain@example.com", "plain@example.com" },
	{ "\"quoted\"@example.com", "\"\"quoted\"\"@example.com" },
	{ "a b@example.com", "\"a b\"@example.com" },
	{ "a;b=c (d) \\e", "a;b=c (d) \\e" },
	{ "semi;colon@example.com; dkim=pass", "semi;colon@example.com; dkim=pass" },
	{ "caf\xc3\xa9@exampl\xc3\xa9.com", "\"caf?\"@xn--exampl-gva.com" },
	{ "bad\xff\xfe" "bytes", "bad??bytes" },
	{ "cr\r\nlf\ttab", "cr  lf tab" },
	{ "", "" },
	{ "@example.org", "@example.org" },
	{ "x=\"; spf=pass smtp.mailfrom=\"", "x=\"; spf=pass smtp.mailfrom=\"" },
};

/* every field we write parses, with hostile values read back intact */
static void test_python_parses_everything(void)
{
	GPtrArray *fields = g_ptr_array_new_with_free_func(g_free);
	GString *longval = g_string_new("");
	GString *longcomment = g_string_new("hostile (value) test; dkim=pass \\");
	char **lines;
	guint line = 0;

	for (int i = 0; i < 300; i++)
		g_string_append(longval, "Ab9");
	for (int i = 0; i < 100; i++)
		g_string_append(longcomment, " (x) ;");
	for (size_t i = 0; i < G_N_ELEMENTS(hostile_values); i++) {
		struct authres *ar = authres_new(i % 2 == 0 ? "mail.example.com" : "mx.example.net");

		authres_add(ar, "spf", VERDICT_SOFTFAIL, longcomment->str, "smtp.mailfrom",
			    hostile_values[i].value, "smtp.helo", "helo.example", NULL);
		authres_add(ar, "dkim", VERDICT_POLICY, NULL, "header.d", hostile_values[i].value,
			    "header.b", longval->str, NULL);
		g_ptr_array_add(fields, authres_render(ar));
		authres_free(&ar);
	}
	{
		struct authres *ar = authres_new("mail.example.com");

		g_ptr_array_add(fields, authres_render(ar));
		authres_free(&ar);
	}
	for (guint i = 0; i < fields->len; i++) {
		g_test_message("field %u:\n%s", i, (char *)g_ptr_array_index(fields, i));
		check_layout(g_ptr_array_index(fields, i));
	}

	lines = python_parse(fields);
	sort_property_runs(lines);
	for (size_t i = 0; i < G_N_ELEMENTS(hostile_values); i++) {
		char *id = hex(i % 2 == 0 ? "mail.example.com" : "mx.example.net");
		char *v = hex(hostile_values[i].parsed);
		char *b = hex(longval->str);
		char *want[] = {
			g_strdup_printf("I %s", id),
			g_strdup("R spf softfail"),
			g_strdup_printf("P smtp.helo %s", "68656c6f2e6578616d706c65"),
			g_strdup_printf("P smtp.mailfrom %s", v),
			g_strdup("R dkim policy"),
			g_strdup_printf("P header.b %s", b),
			g_strdup_printf("P header.d %s", v),
			NULL,
		};

		sort_property_runs(want + 2);
		if (*hostile_values[i].parsed == '\0') {
			/* empty values are left out */
			g_free(want[3]);
			want[3] = want[4];
			want[4] = want[5];
			g_free(want[6]);
			want[5] = NULL;
			want[6] = NULL;
		}

		for (guint k = 0; want[k] != NULL; k++) {
			g_assert_nonnull(lines[line]);
			g_assert_cmpstr(lines[line], ==, want[k]);
			line++;
		}
		g_assert_cmpstr(lines[line++], ==, "E");
		for (guint k = 0; want[k] != NULL; k++)
			g_free(want[k]);
		g_free(id);
		g_free(v);
		g_free(b);
	}
	{
		char *id = hex("mail.example.com");
		char *want = g_strdup_printf("I %s", id);

		g_assert_cmpstr(lines[line++], ==, want);
		g_assert_cmpstr(lines[line++], ==, "E");
		g_free(want);
		g_free(id);
	}
	g_strfreev(lines);
	g_ptr_array_free(fields, TRUE);
	g_string_free(longval, TRUE);
	g_string_free(longcomment, TRUE);
}

static void test_received_spf_spec_example(void)
{
	struct received_spf r = {
		.result = VERDICT_FAIL, .receiver = "mail.example.com", .client_ip = "184.72.226.23",
		.envelope_from = "user@example.com", .helo = "www.wormly.com", .identity = "mailfrom",
	};
	char *s = received_spf_render(&r);
	char *unfolded;

	check_layout(s);
	unfolded = g_strdup(s);
	{
		/* unfold: CRLF TAB -> TAB, then compare with the SPEC line */
		GRegex *re = g_regex_new("\r\n\t", 0, 0, NULL);
		char *u = g_regex_replace_literal(re, s, -1, 0, " ", 0, NULL);

		g_free(unfolded);
		unfolded = u;
		g_regex_unref(re);
	}
	g_assert_cmpstr(unfolded, ==,
			"Received-SPF: fail (mail.example.com: domain of user@example.com does not designate "
			"184.72.226.23 as permitted sender) client-ip=184.72.226.23; envelope-from=\"user@example.com\"; "
			"helo=www.wormly.com; receiver=mail.example.com; identity=mailfrom\r\n");
	g_free(unfolded);
	g_free(s);
}

static void test_received_spf_values(void)
{
	struct received_spf r = {
		.result = VERDICT_PASS, .receiver = "mx", .client_ip = "2001:db8::1",
		.envelope_from = "", .helo = "h\"(x)", .identity = "helo", .mechanism = "ip6:2001:db8::/32",
		.comment = "custom (text)\r\n",
	};
	char *s = received_spf_render(&r);

	g_assert_cmpstr(s, ==,
			"Received-SPF: pass (mx: custom \\(text\\)) client-ip=\"2001:db8::1\";\r\n"
			"\tenvelope-from=\"\"; helo=\"h\\\"(x)\"; receiver=mx; mechanism=\"ip6:2001:db8::/32\";\r\n"
			"\tidentity=helo\r\n");
	check_layout(s);
	g_free(s);

	r = (struct received_spf){ .result = VERDICT_TEMPERROR, .client_ip = "192.0.2.1", .helo = "h.example",
				   .envelope_from = "", .identity = "mailfrom" };
	s = received_spf_render(&r);
	g_assert_cmpstr(s, ==,
			"Received-SPF: temperror (temporary error in processing during lookup of\r\n"
			"\tpostmaster@h.example) client-ip=192.0.2.1; envelope-from=\"\"; helo=h.example;\r\n"
			"\tidentity=mailfrom\r\n");
	check_layout(s);
	g_free(s);
}

/* authres_id_same: what counts as our id in a field someone else wrote */
static void test_id_same(void)
{
	static const struct {
		const char *claimed, *ours;
		gboolean same;
	} cases[] = {
		{ "mail.example.com", "mail.example.com", TRUE },
		{ "MAIL.Example.COM", "mail.example.com", TRUE },
		{ "mail.example.com.", "mail.example.com", TRUE },
		{ "mail.example.com..", "Mail.Example.Com", TRUE },
		{ "mail.example.com", "mail.example.com.", TRUE },
		{ " mail.example.com\t", "mail.example.com", TRUE },
		/* RFC 8616: an id may be UTF-8; compared as the A-label. */
		{ "mx.b\xc3\xbc" "cher.example", "mx.xn--bcher-kva.example", TRUE },
		{ "MX.B\xc3\x9c" "CHER.example.", "mx.xn--bcher-kva.example", TRUE },
		{ "XN--BCHER-KVA.example", "b\xc3\xbc" "cher.example", TRUE },
		{ "mail.example.com.evil.example", "mail.example.com", FALSE },
		{ "ail.example.com", "mail.example.com", FALSE },
		{ "mail.example.co", "mail.example.com", FALSE },
		{ "mail.example.com", "mx.example.com", FALSE },
		{ ".", "mail.example.com", FALSE },
		{ "", "", FALSE },
		{ "b\xc3\xbc" "cher.example", "bucher.example", FALSE },
		{ "\xff\xfe", "mail.example.com", FALSE },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
		if (authres_id_same(cases[i].claimed, cases[i].ours) != cases[i].same)
			g_error("case %zu (%s vs %s): want %s", i, cases[i].claimed, cases[i].ours,
				cases[i].same ? "same" : "different");
	g_assert_false(authres_id_same(NULL, "mail.example.com"));
	g_assert_false(authres_id_same("mail.example.com", NULL));
}

/* A field we rendered, read back by the finder, is ours (so a copy of it
 * that comes back, say in a forwarded message, is renamed). */
static void test_rendered_id_reads_back_as_ours(void)
{
	static const char *const ids[] = { "mail.example.com", "MX.Example.COM.", "odd id; with \"quotes\"",
					   "mx.b\xc3\xbc" "cher.example" };

	for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
		struct authres *ar = authres_new(ids[i]);
		struct header_block *block = NULL;
		struct normalize_edit *edits = NULL;
		size_t count = 0;
		g_autofree char *error = NULL;
		char *field;

		authres_add(ar, "spf", VERDICT_PASS, "a (comment)", "smtp.mailfrom", "u@example.org", NULL);
		field = authres_render(ar);
		header_block_parse(field, strlen(field), &block, &error);
		g_assert_cmpuint(block->count, ==, 1);
		normalize_find(block, ids[i], NULL, 0, &edits, &count);
		if (count != 1)
			g_error("id %s: our own field %s is not taken for ours", ids[i], field);
		g_free(edits);
		header_block_free(&block);
		g_free(field);
		authres_free(&ar);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/authres/spec_example", test_spec_example);
	g_test_add_func("/authres/no_results", test_no_results);
	g_test_add_func("/authres/quoting_and_escaping", test_quoting_and_escaping);
	g_test_add_func("/authres/text_cap", test_text_cap);
	g_test_add_func("/authres/python_parses_everything", test_python_parses_everything);
	g_test_add_func("/authres/received_spf_spec_example", test_received_spf_spec_example);
	g_test_add_func("/authres/received_spf_values", test_received_spf_values);
	g_test_add_func("/authres/id_same", test_id_same);
	g_test_add_func("/authres/rendered_id_reads_back_as_ours", test_rendered_id_reads_back_as_ours);
	return g_test_run();
}
