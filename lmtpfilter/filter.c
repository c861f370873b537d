/*
 * filter - the seam between the LMTP proxy and the checks
 *
 * Owns: per transaction, the verdicts (computed once, lazily, for the
 * groups that need them) and the rendered header block.
 * mode=off groups always get the original bytes untouched.
 */
#include "lmtpfilter/filter.h"
#include "lmtpfilter/engine.h"
#include "lmtpfilter/spool.h"

#include <glib.h>

struct filter_tx {
	struct engine *engine;
	const struct config *config;
	struct tx_facts facts;
	char log_fields[512];
};

struct filter_tx *filter_tx_new(struct engine *engine, const struct config *config, const struct tx_facts *facts)
{
	struct filter_tx *ftx = g_new0(struct filter_tx, 1);
	ftx->engine = engine;
	ftx->config = config;
	ftx->facts = *facts;
	return ftx;
}

void filter_tx_free(struct filter_tx **ftx)
{
	g_clear_pointer(ftx, g_free);
}

int filter_prepare(struct filter_tx *ftx, const struct domain_policy *policy, struct message_view *view,
		   const char **error_r)
{
	message_view_add_range(view, 0, spool_size(ftx->facts.spool));
	return 0;
}

const char *filter_log_fields(struct filter_tx *ftx)
{
	return ftx->log_fields;
}
