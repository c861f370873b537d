/*
 * spool - one message body, in memory up to a limit, above it in an
 * unlinked temporary file
 *
 * The session appends the dot-unstuffed DATA bytes; the checks and the
 * downstream client read them back by offset, as often as they like, from
 * any thread that owns the spool at that moment. Memory use is bounded by
 * spool_memory_limit whatever the message size.
 */
#ifndef LMTPFILTER_SPOOL_H
#define LMTPFILTER_SPOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

struct spool;

/* spool_new - an empty spool; dir is where a temporary file goes once the
 * body outgrows memory_limit. */
struct spool *spool_new(const char *dir, size_t memory_limit);
void spool_free(struct spool **spool);

/* spool_append - add bytes; 0, or -1 with *error_r (g_malloc'd: disk
 * full, …). */
int spool_append(struct spool *spool, const void *data, size_t len, char **error_r);
/* Line ends of text appended in pieces (spool_append_text). */
struct spool_text {
	bool last_cr;         /* the last byte appended was a CR */
	bool crlf_seen;       /* a CRLF line end was among the bytes */
};

/* spool_append_text - add bytes whose lines end in CRLF or a bare LF,
 * storing each bare LF (no CR before it, in this piece or at the end of
 * the last) as CRLF, so the spool holds one line-end convention; *text
 * (zeroed before the first piece) carries what crosses pieces; *stored_r
 * (may be NULL) is the count of bytes stored. 0, or -1 with *error_r
 * (g_malloc'd). */
int spool_append_text(struct spool *spool, const char *data, size_t len, struct spool_text *text,
		      size_t *stored_r, char **error_r);
/* spool_finish - the body is complete: flush buffered bytes to the file so
 * that spool_fd() readers see everything. 0, or -1 with *error_r
 * (g_malloc'd). */
int spool_finish(struct spool *spool, char **error_r);
/* spool_size - bytes stored so far. */
uint64_t spool_size(const struct spool *spool);
/* spool_read - copy up to len bytes from offset; returns the count (0 at
 * the end) or -1 with *error_r (g_malloc'd). */
ssize_t spool_read(const struct spool *spool, uint64_t offset, void *buf, size_t len, char **error_r);
/* spool_fd - the temporary file's descriptor, or -1 while the body is in
 * memory (then spool_memory() gives the bytes). */
int spool_fd(const struct spool *spool);
const char *spool_memory(const struct spool *spool);
/* spool_reset - empty it for the next transaction (keeps the buffer). */
void spool_reset(struct spool *spool);

/* The header block: the bytes up to and including the empty line that ends
 * it (or the whole message when there is none), at most SPOOL_HEADER_MAX. */
#define SPOOL_HEADER_MAX (4u * 1024 * 1024)
/* spool_header_block - a pointer to the header block; valid until the next
 * call on the spool. *complete_r is 0 if the block was longer than
 * SPOOL_HEADER_MAX. 0, or -1 with *error_r (g_malloc'd) on I/O error. */
int spool_header_block(struct spool *spool, const char **block_r, size_t *len_r, int *complete_r, char **error_r);

#endif
