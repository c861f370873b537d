/*
 * spool - one message body, in memory up to a limit, above it in an
 * unlinked temporary file
 *
 * Owns: the memory buffer (grown geometrically up to memory_limit) and the
 * temporary file, created with O_TMPFILE (or mkstemp + unlink where the file
 * system lacks it) so that nothing is left behind if the process dies.
 * Limits: the caller enforces the message size; the header block copy is
 * bounded by SPOOL_HEADER_MAX.
 */
#include "lmtpfilter/spool.h"

#include <errno.h>
#include <glib.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPOOL_INITIAL_BUFFER 16384
#define SPOOL_WRITE_BUFFER 65536
/* The header block of a file spool is read in pieces of this size: header
 * blocks are usually a few KB, so most messages need one read. */
#define SPOOL_HEADER_READ_STEP 65536

struct spool {
	char *dir;
	size_t memory_limit;

	char *mem;            /* the body while it is small enough */
	size_t mem_len, mem_size;

	bool in_file;         /* the body has moved to the file */
	int fd;               /* the temporary file, -1 until needed */
	char *wbuf;           /* write buffer in front of the file */
	size_t wbuf_len;
	uint64_t file_len;    /* bytes written to the file */

	char *header;         /* spool_header_block's copy for file spools */
	size_t header_size;
};

struct spool *spool_new(const char *dir, size_t memory_limit)
{
	struct spool *spool = calloc(1, sizeof(*spool));

	if (spool == NULL)
		return NULL;
	spool->dir = strdup(dir != NULL ? dir : "/var/tmp");
	spool->memory_limit = memory_limit;
	spool->fd = -1;
	if (spool->dir == NULL) {
		free(spool);
		return NULL;
	}
	return spool;
}

void spool_free(struct spool **spoolp)
{
	struct spool *spool = *spoolp;

	if (spool == NULL)
		return;
	if (spool->fd != -1)
		close(spool->fd);
	free(spool->mem);
	free(spool->wbuf);
	free(spool->header);
	free(spool->dir);
	free(spool);
	*spoolp = NULL;
}

static int spool_open_file(struct spool *spool, char **error_r)
{
	int fd = open(spool->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd == -1 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/lmtpfilter.XXXXXX", spool->dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd != -1)
			unlink(path);
	}
	if (fd == -1) {
		/* EMFILE, ENOSPC and EACCES need different fixes: say which. */
		*error_r = g_strdup_printf("cannot create spool file in %s: %s", spool->dir,
					   g_strerror(errno));
		return -1;
	}
	spool->fd = fd;
	spool->wbuf = malloc(SPOOL_WRITE_BUFFER);
	if (spool->wbuf == NULL) {
		*error_r = g_strdup("out of memory");
		return -1;
	}
	spool->wbuf_len = 0;
	spool->file_len = 0;
	return 0;
}

static int spool_write_all(struct spool *spool, const char *data, size_t len, char **error_r)
{
	while (len > 0) {
		ssize_t n = pwrite(spool->fd, data, len, (off_t)spool->file_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*error_r = errno == ENOSPC ? g_strdup("spool disk full")
				: g_strdup_printf("spool write error: %s", g_strerror(errno));
			return -1;
		}
		data += n;
		len -= (size_t)n;
		spool->file_len += (uint64_t)n;
	}
	return 0;
}

static int spool_flush(struct spool *spool, char **error_r)
{
	if (spool->wbuf_len == 0)
		return 0;
	if (spool_write_all(spool, spool->wbuf, spool->wbuf_len, error_r) < 0)
		return -1;
	spool->wbuf_len = 0;
	return 0;
}

static bool spool_in_file(const struct spool *spool);

/* Move from memory to the file once the limit is passed. */
static int spool_spill(struct spool *spool, char **error_r)
{
	if (spool->fd == -1) {
		if (spool_open_file(spool, error_r) < 0)
			return -1;
	} else if (ftruncate(spool->fd, 0) < 0) {
		*error_r = g_strdup("spool truncate error");
		return -1;
	}
	spool->file_len = 0;
	spool->wbuf_len = 0;
	if (spool_write_all(spool, spool->mem, spool->mem_len, error_r) < 0)
		return -1;
	spool->mem_len = 0;
	spool->in_file = true;
	return 0;
}

static bool spool_in_file(const struct spool *spool)
{
	return spool->in_file;
}

int spool_append(struct spool *spool, const void *data, size_t len, char **error_r)
{
	/* Nothing to add; the buffer may not exist yet (memcpy to NULL). */
	if (len == 0)
		return 0;
	if (!spool_in_file(spool) && spool->mem_len + len <= spool->memory_limit) {
		if (spool->mem_len + len > spool->mem_size) {
			size_t size = spool->mem_size ? spool->mem_size : SPOOL_INITIAL_BUFFER;
			while (size < spool->mem_len + len)
				size *= 2;
			if (size > spool->memory_limit)
				size = spool->memory_limit;
			char *mem = realloc(spool->mem, size);
			if (mem == NULL) {
				*error_r = g_strdup("out of memory");
				return -1;
			}
			spool->mem = mem;
			spool->mem_size = size;
		}
		memcpy(spool->mem + spool->mem_len, data, len);
		spool->mem_len += len;
		return 0;
	}
	if (!spool_in_file(spool) && spool_spill(spool, error_r) < 0)
		return -1;
	if (spool->wbuf_len + len > SPOOL_WRITE_BUFFER) {
		if (spool_flush(spool, error_r) < 0)
			return -1;
		if (len >= SPOOL_WRITE_BUFFER)
			return spool_write_all(spool, data, len, error_r);
	}
	memcpy(spool->wbuf + spool->wbuf_len, data, len);
	spool->wbuf_len += len;
	return 0;
}

int spool_append_text(struct spool *spool, const char *data, size_t len, struct spool_text *text,
		      size_t *stored_r, char **error_r)
{
	size_t start = 0, stored = 0;

	if (stored_r != NULL)
		*stored_r = 0;
	if (len == 0)
		return 0;
	/* One append per run of CRLF lines: the common case is one per piece. */
	for (size_t from = 0;;) {
		const char *lf = memchr(data + from, '\n', len - from);
		if (lf == NULL)
			break;
		size_t i = (size_t)(lf - data);
		from = i + 1;
		if (i > 0 ? data[i - 1] == '\r' : text->last_cr) {
			text->crlf_seen = true;
			continue;
		}
		if ((i > start && spool_append(spool, data + start, i - start, error_r) < 0) ||
		    spool_append(spool, "\r\n", 2, error_r) < 0)
			return -1;
		stored += i - start + 2;
		start = from;
	}
	if (len > start && spool_append(spool, data + start, len - start, error_r) < 0)
		return -1;
	if (stored_r != NULL)
		*stored_r = stored + len - start;
	text->last_cr = data[len - 1] == '\r';
	return 0;
}

int spool_finish(struct spool *spool, char **error_r)
{
	return spool_in_file(spool) ? spool_flush(spool, error_r) : 0;
}

uint64_t spool_size(const struct spool *spool)
{
	if (spool_in_file(spool))
		return spool->file_len + spool->wbuf_len;
	return spool->mem_len;
}

ssize_t spool_read(const struct spool *spool, uint64_t offset, void *buf, size_t len, char **error_r)
{
	if (!spool_in_file(spool)) {
		if (offset >= spool->mem_len)
			return 0;
		if (len > spool->mem_len - offset)
			len = spool->mem_len - (size_t)offset;
		memcpy(buf, spool->mem + offset, len);
		return (ssize_t)len;
	}
	/* The tail may still sit in the write buffer. */
	if (offset >= spool->file_len) {
		uint64_t o = offset - spool->file_len;
		if (o >= spool->wbuf_len)
			return 0;
		if (len > spool->wbuf_len - o)
			len = spool->wbuf_len - (size_t)o;
		memcpy(buf, spool->wbuf + o, len);
		return (ssize_t)len;
	}
	if (len > spool->file_len - offset)
		len = (size_t)(spool->file_len - offset);
	for (;;) {
		ssize_t n = pread(spool->fd, buf, len, (off_t)offset);
		if (n >= 0)
			return n;
		if (errno != EINTR) {
			*error_r = g_strdup("spool read error");
			return -1;
		}
	}
}

int spool_fd(const struct spool *spool)
{
	return spool_in_file(spool) ? spool->fd : -1;
}

const char *spool_memory(const struct spool *spool)
{
	return spool_in_file(spool) ? NULL : spool->mem;
}

void spool_reset(struct spool *spool)
{
	spool->in_file = false;
	spool->mem_len = 0;
	spool->wbuf_len = 0;
	spool->file_len = 0;
	if (spool->fd != -1 && ftruncate(spool->fd, 0) < 0) {
		close(spool->fd);
		spool->fd = -1;
	}
	/* Do not keep a large buffer between transactions. */
	if (spool->mem_size > SPOOL_INITIAL_BUFFER * 4) {
		free(spool->mem);
		spool->mem = NULL;
		spool->mem_size = 0;
	}
	free(spool->header);
	spool->header = NULL;
	spool->header_size = 0;
}

/* header_end - the offset just after the empty line that ends the header
 * block in buf[0, len), or 0 when buf holds none (yet). Only line ends at
 * or after from are looked at: a caller that searched a shorter prefix
 * before passes where that search could no longer see the two bytes after
 * a line end (its length - 2), so no empty line is missed and none is made
 * up from a line end in the middle of the block. */
static size_t header_end(const char *buf, size_t len, size_t from)
{
	if (len == 0)
		return 0;
	if (from == 0) {
		/* An empty line first: no header fields at all. */
		if (buf[0] == '\n')
			return 1;
		if (len >= 2 && buf[0] == '\r' && buf[1] == '\n')
			return 2;
	}
	for (const char *p = buf + from; (p = memchr(p, '\n', len - (size_t)(p - buf))) != NULL; p++) {
		size_t i = (size_t)(p - buf) + 1;
		if (i < len && buf[i] == '\n')
			return i + 1;
		if (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
			return i + 2;
	}
	return 0;
}

/* header_copy - read the file spool's first bytes into spool->header until
 * the empty line or want bytes; *have_r bytes read, *end_r as header_end */
static int header_copy(struct spool *spool, size_t want, size_t *have_r, size_t *end_r, char **error_r)
{
	size_t have = 0, end = 0;

	while (have < want && end == 0) {
		size_t n = want - have < SPOOL_HEADER_READ_STEP ? want - have : SPOOL_HEADER_READ_STEP;
		ssize_t r = spool_read(spool, have, spool->header + have, n, error_r);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		/* Line ends before have - 2 were judged with both bytes after them. */
		size_t from = have > 2 ? have - 2 : 0;
		have += (size_t)r;
		end = header_end(spool->header, have, from);
	}
	*have_r = have;
	*end_r = end;
	return 0;
}

int spool_header_block(struct spool *spool, const char **block_r, size_t *len_r, int *complete_r, char **error_r)
{
	if (!spool_in_file(spool)) {
		size_t end = header_end(spool->mem, spool->mem_len, 0);
		size_t len = end ? end : spool->mem_len;
		*complete_r = len <= SPOOL_HEADER_MAX;
		*block_r = spool->mem ? spool->mem : "";
		*len_r = len <= SPOOL_HEADER_MAX ? len : SPOOL_HEADER_MAX;
		return 0;
	}
	uint64_t total = spool_size(spool);
	size_t want = total < SPOOL_HEADER_MAX + 2 ? (size_t)total : SPOOL_HEADER_MAX + 2;
	size_t have, end;
	if (spool->header == NULL) {
		spool->header = malloc(want ? want : 1);
		if (spool->header == NULL) {
			*error_r = g_strdup("out of memory");
			return -1;
		}
	}
	if (header_copy(spool, want, &have, &end, error_r) < 0)
		return -1;
	size_t len = end ? end : have;
	*complete_r = len <= SPOOL_HEADER_MAX && (end || have == total);
	*len_r = len <= SPOOL_HEADER_MAX ? len : SPOOL_HEADER_MAX;
	*block_r = spool->header;
	return 0;
}
