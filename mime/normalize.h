/*
 * normalize - find the forged results to neutralise before our headers go in
 *
 * Every Authentication-Results field whose authserv-id is ours or one of our
 * aliases, and every Received-SPF field, is renamed to X-Original-… by
 * inserting text before its name: an edit of the raw bytes, nothing else in
 * the message changes.
 */
#ifndef LMTPFILTER_MIME_NORMALIZE_H
#define LMTPFILTER_MIME_NORMALIZE_H

#include <stddef.h>

#include "mime/header_block.h"

#define NORMALIZE_PREFIX "X-Original-"

/* An edit of the original bytes: insert text before byte offset. */
struct normalize_edit {
	size_t offset;
	const char *text;   /* static */
};

/* normalize_find - the edits for block, in increasing offset order, in a
 * g_malloc'd array (*edits_r, g_free it; NULL when count is 0). An
 * Authentication-Results whose authserv-id cannot be read at all is renamed
 * too: it might be ours, and a renamed foreign result loses nothing.
 * Returns the count (>= 0). */
int normalize_find(const struct header_block *block, const char *authserv_id, char *const *aliases,
		   size_t alias_count, struct normalize_edit **edits_r, size_t *count_r);

/* normalize_authserv_id - the authserv-id of an Authentication-Results
 * value (comments and folding skipped, version dropped), g_malloc'd, or
 * NULL when there is none. */
char *normalize_authserv_id(const char *value, size_t len);

#endif
