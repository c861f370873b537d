/*
 * fuzz_trail - header_block_parse and trail_facts on arbitrary bytes;
 * the Received parser also gets the raw input as one value.
 */
#include "mime/header_block.h"
#include "mime/trail.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

static bool trust_loopback(void *ctx, const char *ip)
{
	return g_str_has_prefix(ip, "127.") || strcmp(ip, "::1") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *ours[] = { "mail.example.com", "mx2.example.com" };
	struct header_block *block = NULL;
	g_autofree char *error = NULL;
	struct conn_facts facts;
	struct received_hop hop;
	char *value;

	if (header_block_parse((const char *)data, size, &block, &error) == 0) {
		size_t end = 0;

		for (size_t i = 0; i < block->count; i++) {
			const struct raw_header *h = &block->headers[i];

			/* fields lie inside the block, in order, and do not overlap */
			if (h->offset < end || h->offset + h->length > block->body_offset)
				__builtin_trap();
			end = h->offset + h->length;
			g_free(header_value_unfold(h));
		}
		trail_facts(block, ours, G_N_ELEMENTS(ours), trust_loopback, NULL, &facts);
		if (facts.source == FACTS_NONE && facts.client_ip[0] != '\0')
			__builtin_trap();
		header_block_free(&block);
	}
	value = g_strndup((const char *)data, size);
	trail_parse_received(value, &hop);
	g_free(value);
	return 0;
}
