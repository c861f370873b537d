/*
 * fuzz_arc - the ARC field parser and chain structure checks on arbitrary
 * bytes (no DNS): tag lists and AAR instances of the raw input, the chain
 * of its header block with its invariants, the canonical form of every ARC
 * field, and the whole verifier with keys from an empty key file.
 */
#include "lmtpfilter/arc.h"
#include "lmtpfilter/arc_fields.h"
#include "tests/tools/memory_message.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* check_tags - every tag lies inside the parsed value. */
static void check_tags(const struct arc_tag_list *list, const char *value, size_t len)
{
	if (list->count > ARC_TAGS_MAX)
		__builtin_trap();
	for (size_t i = 0; i < list->count; i++) {
		const struct arc_tag *t = &list->tags[i];

		if (t->span_start > t->span_end || t->span_end > len || t->name < value ||
		    t->value < value + t->span_start ||
		    t->value + t->value_len > value + t->span_end)
			__builtin_trap();
	}
}

/* check_chain - a well-formed chain has every field of 1..N and valid cv=. */
static void check_chain(const struct arc_chain *chain)
{
	if (chain->count > ARC_SETS_MAX)
		__builtin_trap();
	for (size_t i = 0; i < chain->count; i++) {
		const struct arc_chain_set *set = &chain->sets[i];
		GString *out = g_string_new(NULL);

		for (int k = 0; k < ARC_FIELD_KINDS; k++) {
			const struct raw_header *h = set->field[k];

			if (h == NULL)
				__builtin_trap();
			arc_canon_relaxed(out, h->name, h->name_len, h->value, h->value_len, 0, 0, true);
			arc_canon_simple(out, h->name, (size_t)(h->value - h->name) + h->value_len,
					 0, 0, true);
		}
		check_tags(&set->ams, set->field[ARC_FIELD_AMS]->value,
			   set->field[ARC_FIELD_AMS]->value_len);
		check_tags(&set->as, set->field[ARC_FIELD_AS]->value, set->field[ARC_FIELD_AS]->value_len);
		if ((i == 0) != (set->cv == ARC_CV_NONE) || set->cv == ARC_CV_FAIL)
			__builtin_trap();
		g_string_free(out, TRUE);
	}
}

static struct arc_verifier *fuzz_verifier(void)
{
	static struct arc_verifier *v;
	struct arc_verifier_options opts = { 0 };
	char path[] = "/tmp/fuzz_arc_keys_XXXXXX";
	char *error = NULL;
	int fd;

	if (v != NULL)
		return v;
	fd = mkstemp(path);
	if (fd < 0)
		__builtin_trap();
	close(fd);
	opts.key_file = path;
	if (arc_verifier_new(NULL, &opts, &v, &error) < 0)
		__builtin_trap();
	unlink(path);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char *error = NULL;
	struct arc_tag_list *list = g_new0(struct arc_tag_list, 1);
	struct arc_chain *chain = g_new0(struct arc_chain, 1);
	struct arc_outcome *out = g_new0(struct arc_outcome, 1);
	struct header_block *block = NULL;
	struct memory_message m = { s, size };
	char reason[ARC_REASON_MAX];
	unsigned i;
	char *err = NULL;

	if (arc_tag_list_parse(s, size, list, &error) == 0)
		check_tags(list, s, size);
	else if (error == NULL)
		__builtin_trap();
	g_clear_pointer(&error, g_free);
	if (arc_aar_instance(s, size, &i, &error) == 0 && (i == 0 || i > ARC_SETS_MAX))
		__builtin_trap();
	g_clear_pointer(&error, g_free);
	if (header_block_parse(s, size, &block, &error) == 0) {
		if (arc_chain_collect(block, chain, reason, sizeof(reason)) == 0)
			check_chain(chain);
		else if (reason[0] == '\0')
			__builtin_trap();
		header_block_free(&block);
	}
	if (arc_verify_message(fuzz_verifier(), memory_message_read, &m, size, out, &err) < 0 ||
	    out->result == VERDICT_PASS || (out->result == VERDICT_FAIL && out->reason[0] == '\0'))
		__builtin_trap();
	arc_outcome_clear(out);
	g_free(out);
	g_free(chain);
	g_free(list);
	return 0;
}
