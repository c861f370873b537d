/* Fuzz target: the header block and the forged-result finder on arbitrary bytes. */
#include "mime/header_block.h"
#include "mime/normalize.h"

#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char *aliases[] = { "mx2.example.com" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct header_block *block = NULL;
	struct normalize_edit *edits = NULL;
	size_t count = 0, last = 0;
	g_autofree char *error = NULL;

	header_block_parse((const char *)data, size, &block, &error);
	normalize_find(block, "mail.example.com", aliases, 1, &edits, &count);
	for (size_t i = 0; i < count; i++) {
		/* Edits are in order, inside the block, each at a field start. */
		if (edits[i].offset < last || edits[i].offset > block->body_offset)
			abort();
		last = edits[i].offset;
	}
	for (size_t i = 0; i < block->count; i++) {
		char *id = normalize_authserv_id(block->headers[i].value, block->headers[i].value_len, NULL);
		g_free(id);
	}
	g_free(edits);
	header_block_free(&block);
	return 0;
}
