/*
 * message_view - the bytes to send downstream, as a list of segments:
 * literal text (our new headers, "X-Original-" prefixes) and byte ranges of
 * the spooled original. The message is never re-serialised or copied whole.
 */
#ifndef LMTPFILTER_MESSAGE_VIEW_H
#define LMTPFILTER_MESSAGE_VIEW_H

#include <stddef.h>
#include <stdint.h>

struct view_segment {
	char *text;          /* literal bytes (owned), or NULL for a spool range */
	uint64_t offset;     /* spool range start (text == NULL) */
	uint64_t length;     /* bytes: of text, or of the range */
};

struct message_view {
	struct view_segment *segs;
	size_t count, alloc;
};

void message_view_init(struct message_view *view);
void message_view_clear(struct message_view *view);
void message_view_add_text(struct message_view *view, const char *text, size_t len);
void message_view_add_range(struct message_view *view, uint64_t offset, uint64_t length);
uint64_t message_view_size(const struct message_view *view);

#endif
