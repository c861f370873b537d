/*
 * authres - build and render Authentication-Results and Received-SPF
 *
 * Owns: the builder's copies of every string (already sanitised).
 * Limits: AUTHRES_RESULTS_MAX results, AUTHRES_TEXT_MAX bytes per comment
 * or value; lines aim at AUTHRES_LINE_MAX characters but a single value
 * longer than that (a long header.b) stays whole on its own line.
 *
 * Rendering is "parts then fold": each field is a list of parts (a
 * method=result, a property=value, one word of a comment) separated by
 * single spaces; the folder puts CRLF TAB instead of the space whenever the
 * next part would pass the line limit. Folding never happens inside a
 * quoted-string, only between parts and between comment words, where
 * RFC 5322 allows folding white space.
 *
 * authres_id_same is the one place that says whether an id another field
 * claims is ours (normalize.c renames what it says is ours).
 */
#include "mime/authres.h"

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#define AUTHRES_TSPECIALS "()<>@,;:\\\"/[]?="
#define AUTHRES_ATEXT_EXTRA "!#$%&'*+-/=?^_`{|}~"

struct authres_result {
	char *method;
	enum verdict result;
	char *comment;        /* sanitised and escaped, without parentheses; NULL if none */
	GPtrArray *props;     /* "ptype.property=value", rendered */
};

struct authres {
	char *authserv_id;    /* rendered */
	GPtrArray *results;
};

/* sanitise - drop control bytes (WSP and line ends become spaces when
 * keep_space), every non-ASCII character becomes one "?" (RFC 8601 and
 * RFC 7208 fields are ASCII, and standard parsers reject 8-bit bytes),
 * cap at AUTHRES_TEXT_MAX bytes */
static char *sanitise(const char *in, bool keep_space)
{
	size_t plain = 0;

	/* Most values are printable ASCII already: copied as they are. */
	while (plain < AUTHRES_TEXT_MAX && (unsigned char)in[plain] >= 0x20 &&
	       (unsigned char)in[plain] < 0x7f)
		plain++;
	if (in[plain] == '\0' || plain == AUTHRES_TEXT_MAX)
		return g_strndup(in, plain);

	char *valid = g_utf8_make_valid(in, -1);
	GString *s = g_string_new("");

	for (const char *p = valid; *p != '\0' && s->len < AUTHRES_TEXT_MAX; p = g_utf8_next_char(p)) {
		unsigned char c = (unsigned char)*p;

		if (c == '\r' || c == '\n' || c == '\t') {
			if (keep_space)
				g_string_append_c(s, ' ');
		} else if (c >= 0x80) {
			g_string_append_c(s, '?');
		} else if (c >= 0x20 && c != 0x7f) {
			g_string_append_c(s, (char)c);
		}
	}
	g_free(valid);
	return g_string_free(s, FALSE);
}

/* idna_domain - "local@dömain" or "dömain" with the domain as an A-label, or NULL */
static char *idna_domain(const char *value)
{
	const char *at = strrchr(value, '@');
	const char *domain = at != NULL ? at + 1 : value;
	char *ascii;
	char *out;

	if (g_str_is_ascii(domain) || !g_utf8_validate(domain, -1, NULL))
		return NULL;
	ascii = g_hostname_to_ascii(domain);
	if (ascii == NULL)
		return NULL;
	out = g_strdup_printf("%.*s%s", (int)(domain - value), value, ascii);
	g_free(ascii);
	return out;
}

static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || strchr(AUTHRES_TSPECIALS, *s) != NULL)
			return false;
	return true;
}

/* is_plain_local_part - a dot-atom of letters, digits and "+-_=" (what every parser accepts) */
static bool is_plain_local_part(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (i == 0 || i + 1 == len || s[i + 1] == '.')
				return false;
		} else if (!g_ascii_isalnum(s[i]) && strchr("+-_=", s[i]) == NULL) {
			return false;
		}
	}
	return true;
}

static bool is_domain_name(const char *s)
{
	size_t label = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (g_ascii_isalnum(*s) || ((*s == '-' || *s == '_') && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return label > 0;
}

/* is_plain_address - RFC 8601 pvalue "[ [local-part] @ ] domain-name" in its plain form */
static bool is_plain_address(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL)
		return false;
	return is_plain_local_part(s, (size_t)(at - s)) && is_domain_name(at + 1);
}

static void append_quoted(GString *out, const char *s)
{
	g_string_append_c(out, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *s);
	}
	g_string_append_c(out, '"');
}

/* render_value - a pvalue: bare when a token or plain address, an address
 * with an unusual local part as "local"@domain, anything else quoted;
 * returns whether the whole value had to be a quoted-string */
static bool render_value(GString *out, const char *value)
{
	char *idna = idna_domain(value);
	char *clean = sanitise(idna != NULL ? idna : value, true);
	const char *at = strrchr(clean, '@');
	bool quoted = false;

	g_free(idna);
	if (is_token(clean) || is_plain_address(clean)) {
		g_string_append(out, clean);
	} else if (at != NULL && at > clean && is_domain_name(at + 1)) {
		char *local = g_strndup(clean, (gsize)(at - clean));

		append_quoted(out, local);
		g_string_append(out, at);
		g_free(local);
	} else {
		append_quoted(out, clean);
		quoted = true;
	}
	g_free(clean);
	return quoted;
}

/* render_name - keep [A-Za-z0-9._-] of a method or property name */
static void render_name(GString *out, const char *name)
{
	for (; *name != '\0'; name++)
		if (g_ascii_isalnum(*name) || strchr("._-", *name) != NULL)
			g_string_append_c(out, *name);
}

/* comment_text - sanitised, whitespace collapsed, "(", ")", "\" escaped */
static char *comment_text(const char *comment)
{
	char *clean = sanitise(comment, true);
	GString *out = g_string_new("");

	for (const char *p = clean; *p != '\0'; p++) {
		if (*p == ' ' && (out->len == 0 || out->str[out->len - 1] == ' '))
			continue;
		if (*p == '(' || *p == ')' || *p == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *p);
	}
	while (out->len > 0 && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	g_free(clean);
	return g_string_free(out, FALSE);
}

struct authres *authres_new(const char *authserv_id)
{
	struct authres *ar = g_new0(struct authres, 1);
	GString *id = g_string_new("");

	(void)render_value(id, authserv_id != NULL ? authserv_id : "");
	ar->authserv_id = g_string_free(id, FALSE);
	ar->results = g_ptr_array_new();
	return ar;
}

static void result_free(struct authres_result *r)
{
	g_free(r->method);
	g_free(r->comment);
	g_ptr_array_free(r->props, TRUE);
	g_free(r);
}

void authres_free(struct authres **ar)
{
	if (*ar == NULL)
		return;
	for (guint i = 0; i < (*ar)->results->len; i++)
		result_free(g_ptr_array_index((*ar)->results, i));
	g_ptr_array_free((*ar)->results, TRUE);
	g_free((*ar)->authserv_id);
	g_free(*ar);
	*ar = NULL;
}

void authres_add(struct authres *ar, const char *method, enum verdict result, const char *comment, ...)
{
	struct authres_result *r;
	GPtrArray *quoted;
	GString *name = g_string_new("");
	const char *prop;
	va_list ap;

	if (ar->results->len >= AUTHRES_RESULTS_MAX) {
		g_string_free(name, TRUE);
		return;
	}
	r = g_new0(struct authres_result, 1);
	render_name(name, method);
	r->method = g_string_free(name, FALSE);
	r->result = result;
	r->comment = comment != NULL && *comment != '\0' ? comment_text(comment) : NULL;
	r->props = g_ptr_array_new_with_free_func(g_free);
	quoted = g_ptr_array_new();
	va_start(ap, comment);
	while ((prop = va_arg(ap, const char *)) != NULL) {
		const char *value = va_arg(ap, const char *);
		bool is_quoted;
		GString *p;

		if (value == NULL || *value == '\0')
			continue; /* no information; python's authres also trips over "" mid-field */
		p = g_string_new("");
		render_name(p, prop);
		g_string_append_c(p, '=');
		is_quoted = render_value(p, value);
		g_ptr_array_add(is_quoted ? quoted : r->props, g_string_free(p, FALSE));
	}
	va_end(ap);
	/* quoted-string values last: common parsers (python's authres) accept
	 * a bare quoted-string only right before ";" or the end */
	for (guint i = 0; i < quoted->len; i++)
		g_ptr_array_add(r->props, g_ptr_array_index(quoted, i));
	g_ptr_array_free(quoted, TRUE);
	g_ptr_array_add(ar->results, r);
}

unsigned int authres_count(const struct authres *ar)
{
	return ar->results->len;
}

/* ---- folding ---- */

struct folder {
	GString *out;
	size_t column;     /* characters on the current line */
	bool line_empty;   /* nothing but the indentation yet */
};

static void fold_newline(struct folder *f)
{
	g_string_append(f->out, "\r\n\t");
	f->column = 1;
	f->line_empty = true;
}

/* fold_pieces - append one part made of pieces (HEAD, BODY_LEN bytes of
 * BODY, TAIL1, TAIL2), with a space or a fold before it: the part is
 * written straight into the field, never built on its own first. */
static void fold_pieces(struct folder *f, const char *head, const char *body, size_t body_len,
			const char *tail1, const char *tail2)
{
	size_t head_len = strlen(head), tail1_len = strlen(tail1), tail2_len = strlen(tail2);
	size_t len = head_len + body_len + tail1_len + tail2_len;

	if (!f->line_empty) {
		if (f->column + 1 + len > AUTHRES_LINE_MAX)
			fold_newline(f);
		else {
			g_string_append_c(f->out, ' ');
			f->column++;
		}
	}
	g_string_append_len(f->out, head, (gssize)head_len);
	g_string_append_len(f->out, body, (gssize)body_len);
	g_string_append_len(f->out, tail1, (gssize)tail1_len);
	g_string_append_len(f->out, tail2, (gssize)tail2_len);
	f->column += len;
	f->line_empty = false;
}

/* fold_comment - "(a b c)" word by word (each space separates two words,
 * so two spaces make an empty one), then suffix glued to the last word */
static void fold_comment(struct folder *f, const char *text, const char *suffix)
{
	const char *word = text;

	if (*text == '\0')
		return;
	for (;;) {
		const char *space = strchr(word, ' ');
		bool last = space == NULL;
		size_t len = last ? strlen(word) : (size_t)(space - word);

		fold_pieces(f, word == text ? "(" : "", word, len, last ? ")" : "", last ? suffix : "");
		if (last)
			break;
		word = space + 1;
	}
}

static void fold_result(struct folder *f, const struct authres_result *r, bool last)
{
	const char *end = last ? "" : ";";
	const char *result = verdict_name(r->result);

	fold_newline(f);
	fold_pieces(f, r->method, "=", 1, result, r->comment == NULL && r->props->len == 0 ? end : "");
	if (r->comment != NULL)
		fold_comment(f, r->comment, r->props->len == 0 ? end : "");
	for (guint i = 0; i < r->props->len; i++) {
		const char *prop = g_ptr_array_index(r->props, i);

		fold_pieces(f, "", prop, strlen(prop), i + 1 == r->props->len ? end : "", "");
	}
}

char *authres_render(const struct authres *ar)
{
	struct folder f = { g_string_new("Authentication-Results:"), 23, false };
	fold_pieces(&f, "", ar->authserv_id, strlen(ar->authserv_id),
		    ar->results->len == 0 ? "; none" : ";", "");
	for (guint i = 0; i < ar->results->len; i++)
		fold_result(&f, g_ptr_array_index(ar->results, i), i + 1 == ar->results->len);
	g_string_append(f.out, "\r\n");
	return g_string_free(f.out, FALSE);
}

/* ---- comparing ids ---- */

/* id_canonical - the form authres_id_same compares: trimmed, trailing dots
 * gone, A-labels, lower case; g_malloc'd */
static char *id_canonical(const char *id)
{
	char *s = g_strstrip(g_strdup(id));
	size_t len = strlen(s);
	char *out;

	while (len > 0 && s[len - 1] == '.')
		s[--len] = '\0';
	out = !g_str_is_ascii(s) && g_utf8_validate(s, -1, NULL) ? g_hostname_to_ascii(s) : NULL;
	if (out == NULL)
		out = g_strdup(s);
	g_free(s);
	/* The A-label of "name." keeps the dot: drop it again. */
	len = strlen(out);
	while (len > 0 && out[len - 1] == '.')
		out[--len] = '\0';
	for (char *p = out; *p != '\0'; p++)
		*p = g_ascii_tolower(*p);
	return out;
}

gboolean authres_id_same(const char *claimed, const char *ours)
{
	char *a, *b;
	gboolean same;

	if (claimed == NULL || ours == NULL)
		return FALSE;
	a = id_canonical(claimed);
	b = id_canonical(ours);
	same = *a != '\0' && strcmp(a, b) == 0;
	g_free(a);
	g_free(b);
	return same;
}

/* ---- Received-SPF ---- */

static bool is_dot_atom(const char *s)
{
	bool prev_dot = true;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
		} else if (g_ascii_isalnum(*s) || strchr(AUTHRES_ATEXT_EXTRA, *s) != NULL) {
			prev_dot = false;
		} else {
			return false;
		}
	}
	return !prev_dot;
}

static char *spf_default_comment(const struct received_spf *r)
{
	const char *ip = r->client_ip != NULL && *r->client_ip != '\0' ? r->client_ip : "unknown";
	const char *helo = r->helo != NULL ? r->helo : "";
	char *who, *text;

	if (r->identity != NULL && strcmp(r->identity, "helo") == 0)
		who = g_strdup(helo);
	else if (r->envelope_from != NULL && *r->envelope_from != '\0')
		who = g_strdup(r->envelope_from);
	else
		who = g_strconcat("postmaster@", helo, NULL);
	switch (r->result) {
	case VERDICT_PASS:
		text = g_strdup_printf("domain of %s designates %s as permitted sender", who, ip);
		break;
	case VERDICT_FAIL:
		text = g_strdup_printf("domain of %s does not designate %s as permitted sender", who, ip);
		break;
	case VERDICT_SOFTFAIL:
		text = g_strdup_printf("domain of transitioning %s does not designate %s as permitted sender", who, ip);
		break;
	case VERDICT_NEUTRAL:
		text = g_strdup_printf("%s is neither permitted nor denied by domain of %s", ip, who);
		break;
	case VERDICT_TEMPERROR:
		text = g_strdup_printf("temporary error in processing during lookup of %s", who);
		break;
	case VERDICT_PERMERROR:
		text = g_strdup_printf("permanent error in processing the SPF record of %s", who);
		break;
	default:
		text = g_strdup_printf("domain of %s does not designate permitted sender hosts", who);
		break;
	}
	g_free(who);
	return text;
}

static void spf_pair(GPtrArray *parts, const char *key, const char *value)
{
	GString *p;
	char *clean;

	char *idna;

	if (value == NULL)
		return;
	idna = idna_domain(value);
	clean = sanitise(idna != NULL ? idna : value, true);
	g_free(idna);
	p = g_string_new(key);
	g_string_append_c(p, '=');
	if (is_dot_atom(clean))
		g_string_append(p, clean);
	else
		append_quoted(p, clean);
	g_free(clean);
	g_ptr_array_add(parts, g_string_free(p, FALSE));
}

char *received_spf_render(const struct received_spf *r)
{
	struct folder f = { g_string_new("Received-SPF:"), 13, false };
	GPtrArray *pairs = g_ptr_array_new_with_free_func(g_free);
	char *text = r->comment != NULL ? g_strdup(r->comment) : spf_default_comment(r);
	char *full = r->receiver != NULL ? g_strconcat(r->receiver, ": ", text, NULL) : g_strdup(text);
	char *comment = comment_text(full);
	const char *result = verdict_name(r->result == VERDICT_POLICY ? VERDICT_NONE : r->result);

	spf_pair(pairs, "client-ip", r->client_ip);
	spf_pair(pairs, "envelope-from", r->envelope_from);
	spf_pair(pairs, "helo", r->helo);
	spf_pair(pairs, "receiver", r->receiver);
	spf_pair(pairs, "mechanism", r->mechanism);
	spf_pair(pairs, "identity", r->identity);
	fold_pieces(&f, "", result, strlen(result), "", "");
	if (*comment != '\0')
		fold_comment(&f, comment, "");
	for (guint i = 0; i < pairs->len; i++) {
		const char *pair = g_ptr_array_index(pairs, i);

		fold_pieces(&f, "", pair, strlen(pair), i + 1 < pairs->len ? ";" : "", "");
	}
	g_string_append(f.out, "\r\n");
	g_ptr_array_free(pairs, TRUE);
	g_free(text);
	g_free(full);
	g_free(comment);
	return g_string_free(f.out, FALSE);
}
