/*
 * normalize - find the forged results to neutralise before our headers go in
 *
 * Owns nothing: it reads a parsed header block and returns edits.
 * The authserv-id is read as RFC 8601 defines it: CFWS, then a value
 * (token or quoted-string), then optional CFWS and a version, then ';'.
 * Comments may nest (up to NORMALIZE_COMMENT_DEPTH_MAX); folding is
 * whitespace. A field that does not follow that grammar is renamed whatever
 * its id: some reader might take it for ours.
 */
#include "mime/normalize.h"

#include <glib.h>
#include <string.h>

#define NORMALIZE_COMMENT_DEPTH_MAX 32

/* skip_cfws - skip whitespace, line ends and (nested) comments from i;
 * returns the new position (len for a comment nested too deep). */
static size_t skip_cfws(const char *s, size_t len, size_t i)
{
	while (i < len) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			i++;
		} else if (s[i] == '(') {
			int depth = 0;
			for (; i < len; i++) {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				else if (s[i] == '(' && ++depth > NORMALIZE_COMMENT_DEPTH_MAX)
					return len;
				else if (s[i] == ')' && --depth == 0)
					break;
			}
			if (i < len)
				i++;
		} else {
			break;
		}
	}
	return i;
}

/* is_token_char - an RFC 2045 token character; 8-bit bytes count too, so
 * a UTF-8 id (RFC 8616) is read whole. */
static bool is_token_char(unsigned char c)
{
	return c >= 0x80 || (c > ' ' && c != 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL);
}

char *normalize_authserv_id(const char *s, size_t len, bool *well_formed_r)
{
	size_t i = skip_cfws(s, len, 0);
	GString *id = g_string_new(NULL);
	bool well_formed = true;

	if (i < len && s[i] == '"') {
		for (i++; i < len && s[i] != '"'; i++) {
			if (s[i] == '\\' && i + 1 < len)
				i++;
			if (s[i] != '\r' && s[i] != '\n')
				g_string_append_c(id, s[i]);
		}
		if (i < len)
			i++;
		else
			well_formed = false;   /* no closing quote */
	} else {
		for (; i < len && is_token_char((unsigned char)s[i]); i++)
			g_string_append_c(id, s[i]);
	}
	/* Then [CFWS version] [CFWS] ";" - anything else is garbled. */
	i = skip_cfws(s, len, i);
	if (i < len && g_ascii_isdigit(s[i])) {
		while (i < len && g_ascii_isdigit(s[i]))
			i++;
		i = skip_cfws(s, len, i);
	}
	if (i >= len || s[i] != ';')
		well_formed = false;
	if (id->len == 0)
		well_formed = false;
	if (well_formed_r != NULL)
		*well_formed_r = well_formed;
	if (id->len == 0) {
		g_string_free(id, TRUE);
		return NULL;
	}
	return g_string_free(id, FALSE);
}

/* is_ours - ours when the id (as a lenient reader would take it) is ours or
 * an alias, or when the field is garbled: a reader that guesses might take it
 * for ours, while renaming a foreign result nobody can parse loses nothing. */
static bool is_ours(const char *id, bool well_formed, const char *authserv_id, char *const *aliases,
		    size_t alias_count)
{
	if (id == NULL || !well_formed)
		return true;
	if (authserv_id != NULL && g_ascii_strcasecmp(id, authserv_id) == 0)
		return true;
	for (size_t i = 0; i < alias_count; i++)
		if (aliases[i] != NULL && g_ascii_strcasecmp(id, aliases[i]) == 0)
			return true;
	return false;
}

int normalize_find(const struct header_block *block, const char *authserv_id, char *const *aliases,
		   size_t alias_count, struct normalize_edit **edits_r, size_t *count_r)
{
	GArray *edits = g_array_new(FALSE, FALSE, sizeof(struct normalize_edit));

	for (size_t i = 0; i < block->count; i++) {
		const struct raw_header *h = &block->headers[i];
		bool rename = false;
		if (header_name_is(h, "Received-SPF")) {
			rename = true;
		} else if (header_name_is(h, "Authentication-Results")) {
			bool well_formed;
			char *id = normalize_authserv_id(h->value, h->value_len, &well_formed);
			rename = is_ours(id, well_formed, authserv_id, aliases, alias_count);
			g_free(id);
		}
		if (rename) {
			struct normalize_edit e = { .offset = h->offset, .text = NORMALIZE_PREFIX };
			g_array_append_val(edits, e);
		}
	}
	*count_r = edits->len;
	*edits_r = *count_r > 0 ? (struct normalize_edit *)g_array_free(edits, FALSE) : NULL;
	if (*count_r == 0)
		g_array_free(edits, TRUE);
	return (int)*count_r;
}
