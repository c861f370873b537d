/*
 * fuzz_arc_aar - the ARC-Authentication-Results reader on arbitrary bytes:
 * the value is the input; the From domain its first line, when it has
 * one. Whatever it reads, it never writes past its buffers, and what it
 * names as vouching is a NUL-terminated text inside the size given.
 */
#include "lmtpfilter/arc_aar.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* aligned - the same last two labels, as a small stand-in for the PSL. */
static bool aligned(void *ctx, const char *method, const char *a, const char *b)
{
	(void)ctx;
	const char *da = strrchr(a, '.'), *db = strrchr(b, '.');
	CHECK(strlen(a) < 256);
	return da != NULL && db != NULL && strcmp(da, db) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nl = memchr(text, '\n', size);
	char *from = nl != NULL ? g_strndup(text, (size_t)(nl - text)) : g_strdup("example.com");
	char what[ARC_AAR_WHAT_MAX];
	char small[8];

	memset(what, 'x', sizeof(what));
	bool got = arc_aar_vouches(text, size, from, aligned, NULL, what, sizeof(what));
	CHECK(memchr(what, '\0', sizeof(what)) != NULL);
	CHECK(got == (what[0] != '\0'));
	CHECK(arc_aar_vouches(text, size, from, aligned, NULL, small, sizeof(small)) == got);
	CHECK(memchr(small, '\0', sizeof(small)) != NULL);
	g_free(from);
	return 0;
}
