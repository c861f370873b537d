/*
 * normalize - find the forged results to neutralise before our headers go in
 *
 * Owns nothing: it reads a parsed header block and returns edits.
 * The authserv-id is read as RFC 8601 defines it: CFWS, then a value
 * (token or quoted-string), then optional CFWS and a version, then ';'.
 * Comments may nest (up to NORMALIZE_COMMENT_DEPTH_MAX); folding is
 * whitespace. A field that does not follow that grammar is renamed whatever
 * its id: some reader might take it for ours. Whether an id is ours is
 * authres_id_same's answer; whether a field name is one of ours is
 * header_name_reads_as's (Dovecot's reading, probed with Dovecot 2.3.19 and
 * Pigeonhole: it strips blanks before the colon and stops the name at a
 * NUL byte; other control bytes, 8-bit bytes and a bare CR in the name
 * make it another name).
 */
#include "mime/normalize.h"
#include "mime/authres.h"

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
			if (s[i] == '\0')
				well_formed = false;   /* no quoted-string holds a NUL (RFC 5322 3.2.4) */
			else if (s[i] != '\r' && s[i] != '\n')
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
	if (authres_id_same(id, authserv_id))
		return true;
	for (size_t i = 0; i < alias_count; i++)
		if (aliases[i] != NULL && authres_id_same(id, aliases[i]))
			return true;
	return false;
}

/* Fields renamed whatever they say: only we write them. */
static const char *const always_renamed[] = { "Received-SPF", "X-Disposition-Quarantine" };

/* must_rename - the field is, or would be read as, one of ours */
static bool must_rename(const struct raw_header *h, const char *authserv_id, char *const *aliases,
			size_t alias_count)
{
	for (size_t i = 0; i < G_N_ELEMENTS(always_renamed); i++)
		if (header_name_reads_as(h, always_renamed[i]))
			return true;
	if (!header_name_reads_as(h, "Authentication-Results"))
		return false;
	/* A name Dovecot reads as A-R only by dropping bytes (a NUL, control
	 * bytes): no A-R at all by RFC 5322, so garbled whatever its id. */
	if (!header_name_is(h, "Authentication-Results"))
		return true;
	bool well_formed;
	char *id = normalize_authserv_id(h->value, h->value_len, &well_formed);
	bool ours = is_ours(id, well_formed, authserv_id, aliases, alias_count);
	g_free(id);
	return ours;
}

int normalize_find(const struct header_block *block, const char *authserv_id, char *const *aliases,
		   size_t alias_count, struct normalize_edit **edits_r, size_t *count_r)
{
	GArray *edits = g_array_new(FALSE, FALSE, sizeof(struct normalize_edit));

	/* A block that opens with white space would continue the last field
	 * written above it: our Received-SPF would absorb the sender's bytes.
	 * Whatever field stands right above those lines takes them, so one of
	 * ours must not, and removing or unfolding the white space would
	 * rewrite the sender's bytes. Giving the lines a name of their own
	 * makes them a field that says whose they are; like the X-Original-
	 * renames it only inserts, and in front of lines that were no field
	 * of the message, so no signature covers them. */
	if (block->leading_continuation > 0) {
		struct normalize_edit e = { .offset = 0, .text = NORMALIZE_CONTINUATION_NAME };
		g_array_append_val(edits, e);
	}
	for (size_t i = 0; i < block->count; i++) {
		const struct raw_header *h = &block->headers[i];
		if (must_rename(h, authserv_id, aliases, alias_count)) {
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
