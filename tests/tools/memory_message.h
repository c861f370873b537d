/*
 * memory_message - a message held in memory, read through the callback
 * with which the DKIM and ARC verifiers read a spool: for the unit tests,
 * fuzz targets, benchmarks and tools that have the bytes at hand.
 */
#ifndef LMTPFILTER_TESTS_MEMORY_MESSAGE_H
#define LMTPFILTER_TESTS_MEMORY_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct memory_message {
	const char *data;
	size_t size;
};

/* memory_message_read - up to len bytes at offset into buf; 0 at the end. */
static inline ssize_t memory_message_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
	const struct memory_message *m = ctx;

	if (offset >= m->size)
		return 0;
	if (len > m->size - offset)
		len = m->size - offset;
	memcpy(buf, m->data + offset, len);
	return (ssize_t)len;
}

#endif
