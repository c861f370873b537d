/*
 * normalize - find the forged results to neutralise before our headers go in
 *
 * Every Authentication-Results field whose authserv-id is ours or one of our
 * aliases, every Received-SPF and every X-Disposition-Quarantine field, and
 * every field that Dovecot or Sieve would read under one of those names,
 * is renamed to X-Original-… by inserting text before its name; continuation
 * lines that open the block get a name of their own, so that they cannot
 * continue our last field. Edits of the raw bytes that only insert: nothing
 * else in the message changes.
 */
#ifndef LMTPFILTER_MIME_NORMALIZE_H
#define LMTPFILTER_MIME_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "mime/header_block.h"

#define NORMALIZE_PREFIX "X-Original-"
/* put before continuation lines that open the block (they begin with
 * white space, so the field reads "X-Original-Continuation: ...") */
#define NORMALIZE_CONTINUATION_NAME "X-Original-Continuation:"

/* An edit of the original bytes: insert text before byte offset. */
struct normalize_edit {
	size_t offset;
	const char *text;   /* static */
};

/* normalize_find - the edits for block, in increasing offset order, in a
 * g_malloc'd array (*edits_r, g_free it; NULL when count is 0). Header
 * names match as header_name_reads_as says ("authentication-results :",
 * "Authentication-Results<NUL>:" too; a name that matches only that way is
 * renamed whatever its id); the authserv-id may be folded, quoted, behind
 * comments, carry a version or a trailing dot, or differ in case.
 * An Authentication-Results that does not parse as "[CFWS] id [CFWS
 * version] [CFWS] ;" is renamed whatever id it seems to have: a lenient
 * reader (a Sieve :matches, a MUA) might take it for ours, and renaming a
 * foreign result nobody can parse loses nothing. aliases may be NULL when
 * alias_count is 0. Returns the count (>= 0). */
int normalize_find(const struct header_block *block, const char *authserv_id, char *const *aliases,
		   size_t alias_count, struct normalize_edit **edits_r, size_t *count_r);

/* normalize_authserv_id - the authserv-id of an Authentication-Results
 * value (comments and folding skipped, quotes removed, version dropped),
 * g_malloc'd, or NULL when there is none. *well_formed_r (if not NULL) is
 * set to whether the value starts as RFC 8601 says: id, optional version,
 * then ';'. */
char *normalize_authserv_id(const char *value, size_t len, bool *well_formed_r);

#endif
