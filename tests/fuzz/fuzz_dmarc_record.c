/*
 * fuzz_dmarc_record - the DMARC record parser on arbitrary bytes. Checks
 * what the discovery relies on: the parser reads only the bytes it is
 * given, a record starts with "v" and the first segment mentions DMARC1,
 * every kept value is one of its enum's, pct= is -1 or 0..100, the rua=
 * list is NULL-terminated, bounded and holds URIs without blanks, ','
 * or '!', and a copy equals the original.
 */
#include "lmtpfilter/dmarc_record.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

static void check_record(const struct dmarc_record *r)
{
	if (r->p > DMARC_REQUEST_INVALID || r->sp > DMARC_REQUEST_INVALID ||
	    r->np > DMARC_REQUEST_INVALID || r->psd > DMARC_PSD_NO ||
	    r->adkim > DMARC_ALIGN_STRICT || r->aspf > DMARC_ALIGN_STRICT)
		__builtin_trap();
	if (r->pct < -1 || r->pct > DMARC_RECORD_PCT_MAX)
		__builtin_trap();
	if (r->rua == NULL || r->raw == NULL || r->rua_count > DMARC_RECORD_URIS_MAX ||
	    g_strv_length(r->rua) != r->rua_count)
		__builtin_trap();
	for (size_t i = 0; i < r->rua_count; i++)
		if (strpbrk(r->rua[i], " \t,!;") != NULL || strchr(r->rua[i], ':') == NULL)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size heap copy, so that reading past SIZE is caught. */
	char *text = g_memdup2(data, size);
	struct dmarc_record r, copy;

	if (dmarc_record_parse(text, size, &r) == 0) {
		const char *semi = memchr(text, ';', size);
		size_t first = semi != NULL ? (size_t)(semi - text) : size;

		if (g_strstr_len(text, (gssize)first, "DMARC1") == NULL)
			__builtin_trap();
		check_record(&r);
		dmarc_record_copy(&r, &copy);
		if (copy.p != r.p || copy.rua_count != r.rua_count || strcmp(copy.raw, r.raw) != 0)
			__builtin_trap();
		dmarc_record_clear(&copy);
		dmarc_record_clear(&r);
	} else if (r.raw != NULL || r.rua != NULL) {
		__builtin_trap();
	}
	g_free(text);
	return 0;
}
