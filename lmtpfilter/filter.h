/*
 * filter - the seam between the LMTP proxy and the checks
 *
 * After DATA the session hands the spooled message and what it knows of the
 * transaction to filter_prepare(), once per recipient group (recipients
 * whose domains share a policy). The filter decides the bytes that group's
 * recipients get: the original bytes for mode=off, and for mode=annotate
 * the original with forged results renamed and our headers on top. Checks
 * run at most once per transaction whatever the number of groups.
 */
#ifndef LMTPFILTER_FILTER_H
#define LMTPFILTER_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "lmtpfilter/config.h"
#include "lmtpfilter/message_view.h"

struct spool;
struct engine;

/* What Postfix told us with XFORWARD (RFC-less Postfix extension). */
struct xforward {
	bool present;
	char name[256], addr[64], port[8], proto[16], helo[256], ident[64], source[8];
};

/* The facts of one transaction, as the session knows them. */
struct tx_facts {
	const char *mail_from;           /* "" for the null sender */
	const struct xforward *xforward; /* NULL when absent or not trusted */
	const char *peer;                /* the connecting client, for the log */
	struct spool *spool;
};

/* Per-transaction state of the checks (verdicts computed lazily, once). */
struct filter_tx;

struct filter_tx *filter_tx_new(struct engine *engine, const struct config *config, const struct tx_facts *facts);
void filter_tx_free(struct filter_tx **ftx);

/* filter_prepare - the bytes for recipients with this policy, into view.
 * Returns 0; -1 with *error_r when the message cannot be prepared (the
 * recipients then get a temporary failure). */
int filter_prepare(struct filter_tx *ftx, const struct domain_policy *policy, struct message_view *view,
		   const char **error_r);

/* filter_log_fields - " spf=… dkim=… dmarc=…" for the transaction log line
 * (empty when no check ran). */
const char *filter_log_fields(struct filter_tx *ftx);

#endif
