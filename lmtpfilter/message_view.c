/*
 * message_view - the bytes to send downstream as literal and spool segments
 */
#include "lmtpfilter/message_view.h"

#include <glib.h>
#include <string.h>

void message_view_init(struct message_view *view)
{
	memset(view, 0, sizeof(*view));
}

void message_view_clear(struct message_view *view)
{
	for (size_t i = 0; i < view->count; i++)
		g_free(view->segs[i].text);
	g_free(view->segs);
	memset(view, 0, sizeof(*view));
}

static struct view_segment *message_view_push(struct message_view *view)
{
	if (view->count == view->alloc) {
		view->alloc = view->alloc ? view->alloc * 2 : 8;
		view->segs = g_renew(struct view_segment, view->segs, view->alloc);
	}
	return &view->segs[view->count++];
}

void message_view_add_text(struct message_view *view, const char *text, size_t len)
{
	if (len == 0)
		return;
	struct view_segment *seg = message_view_push(view);
	seg->text = g_strndup(text, len);
	seg->offset = 0;
	seg->length = len;
}

void message_view_add_range(struct message_view *view, uint64_t offset, uint64_t length)
{
	if (length == 0)
		return;
	/* Adjacent ranges merge: fewer segments to stream. */
	if (view->count > 0) {
		struct view_segment *last = &view->segs[view->count - 1];
		if (last->text == NULL && last->offset + last->length == offset) {
			last->length += length;
			return;
		}
	}
	struct view_segment *seg = message_view_push(view);
	seg->text = NULL;
	seg->offset = offset;
	seg->length = length;
}

uint64_t message_view_size(const struct message_view *view)
{
	uint64_t size = 0;
	for (size_t i = 0; i < view->count; i++)
		size += view->segs[i].length;
	return size;
}
