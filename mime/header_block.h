/*
 * header_block - the raw header block of a message split into fields,
 * with exact byte offsets, for code that edits headers by byte range
 * (rename a forged field, prepend ours) and never re-serialises.
 */
#ifndef LMTPFILTER_MIME_HEADER_BLOCK_H
#define LMTPFILTER_MIME_HEADER_BLOCK_H

#include <stdbool.h>
#include <stddef.h>

struct raw_header {
	const char *name;  /* the field name as written: no trailing whitespace or colon */
	size_t name_len;
	const char *value; /* raw value after the colon: folding and line ends kept, final line end excluded */
	size_t value_len;
	size_t offset;     /* the whole field in the block, from its first byte ... */
	size_t length;     /* ... through its final line end */
};

struct header_block {
	struct raw_header *headers; /* in the order they appear; pointers into the caller's buffer */
	size_t count;
	size_t body_offset;         /* just after the empty line that ends the block, or len without one */
	size_t skipped_lines;       /* lines that were neither a field nor a continuation (see header_block_parse) */
	size_t leading_continuation; /* bytes of the continuation lines the block opens with (its first
				      * line begins with space or tab), 0 when it opens otherwise: text
				      * put in front of the block would take these lines for its own */
};

/* header_block_parse - split the raw header block buf (len bytes, not
 * NUL-terminated; CRLF or LF line ends, mixed allowed) into fields.
 * The block ends at the first empty line ("\n" or "\r\n") or at len.
 * A line beginning with space or tab continues the previous field. A line
 * with a colon starts a field (its name is everything before the first
 * colon, trailing whitespace removed, so "Subject : x" is "Subject"). Any
 * other line - no colon, or a continuation with no field before it - is
 * skipped together with its own continuation lines and counted in
 * skipped_lines; the block goes on after it, as GMime's and Dovecot's
 * parsers do, so a field after a junk line is still found. NUL and 8-bit
 * bytes are kept as they are. The returned fields point into buf, which
 * must outlive the block. Never fails on odd input (0 always, *error_r
 * never set; the out-parameter, g_malloc'd like every error_r, exists for
 * API uniformity). */
int header_block_parse(const char *buf, size_t len, struct header_block **block_r, char **error_r);
void header_block_free(struct header_block **block);

/* header_name_is - the field is called name (ASCII case-insensitive). */
bool header_name_is(const struct raw_header *h, const char *name);

/* header_name_reads_as - a reader at least as lenient as Dovecot's takes
 * the field for name: the name up to its first NUL byte, white space and
 * control bytes at either end dropped, equals name ASCII case-insensitively.
 * Dovecot (2.3, and so Sieve) strips trailing blanks and then uses the
 * name as a C string, so "Authentication-Results\0junk:" is read as
 * Authentication-Results; this test takes that and a little more. */
bool header_name_reads_as(const struct raw_header *h, const char *name);

/* header_value_unfold - g_malloc'd, NUL-terminated copy of the value with
 * every line end (CRLF or LF) that is followed by a space or tab removed,
 * for parsing. NUL bytes in the value become spaces, so the C string holds
 * the whole value. Leading and trailing whitespace is kept. */
char *header_value_unfold(const struct raw_header *h);

#endif
