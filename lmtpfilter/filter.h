/*
 * filter - the seam between the LMTP proxy and the checks
 *
 * After DATA the session hands the spooled message and what it knows of the
 * transaction to filter_prepare(), once per recipient group (recipients
 * whose domains share a policy). The filter decides the bytes that group's
 * recipients get: the original bytes for mode=off and mode=observe, and for
 * mode=annotate the original with forged results renamed and our headers
 * on top. The verdict (evaluate.h) is computed once per transaction
 * whatever the number of groups; the disposition (disposition.h) per group.
 */
#ifndef LMTPFILTER_FILTER_H
#define LMTPFILTER_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "lmtpfilter/config.h"
#include "lmtpfilter/disposition.h"
#include "lmtpfilter/evaluate.h"
#include "lmtpfilter/facts.h"
#include "lmtpfilter/message_view.h"
#include "lmtpfilter/reply.h"
#include "mime/trail.h"

struct spool;
struct engine;

/* The facts of one transaction, as the session knows them. */
struct tx_facts {
	const char *mail_from;           /* "" for the null sender */
	const struct xforward *xforward; /* NULL when absent or not trusted */
	const char *peer;                /* the connecting client, for the log */
	struct spool *spool;
	const struct conn_facts *cli;    /* facts given on the command line (check), else NULL */
};

/* Per-transaction state: the header block, the evaluation, the log fields. */
struct filter_tx;

struct filter_tx *filter_tx_new(struct engine *engine, const struct config *config, const struct tx_facts *facts);
void filter_tx_free(struct filter_tx **ftx);
/* filter_tx_history - after every group was prepared: the message's DMARC
 * history records (one per policy domain) when the engine keeps a history
 * and a group evaluated DMARC. Call once per message. When groups differ,
 * the record says quarantine if any annotate group quarantined. */
void filter_tx_history(struct filter_tx *ftx);

/* filter_prepare - the bytes for recipients with this policy, into view,
 * and (reason_r may be NULL) their disposition: what annotate files them
 * as, or in observe what it would; DISPOSITION_DELIVER for off. Returns 0;
 * -1 with *fail_r set to the reply those recipients get when the message
 * cannot be prepared (annotate only: observe and off always get the
 * original bytes). */
int filter_prepare(struct filter_tx *ftx, const struct domain_policy *policy, struct message_view *view,
		   enum disposition_reason *reason_r, struct lmtp_reply *fail_r);

/* filter_verdict - the verdict for the check set, evaluating what has not
 * run yet; NULL when the header block cannot be read. */
const struct message_verdict *filter_verdict(struct filter_tx *ftx, unsigned checks);
/* filter_disposition - the disposition under policy (after filter_verdict). */
void filter_disposition(struct filter_tx *ftx, const struct domain_policy *policy, struct disposition *out_r);

/* filter_header_length - bytes of the original header block (with its
 * empty line). */
size_t filter_header_length(struct filter_tx *ftx);

/* filter_log_fields - " facts=… spf=… dkim=… dmarc=… action=… reason=…"
 * for the transaction log line (empty when no group was evaluated). */
const char *filter_log_fields(struct filter_tx *ftx);

#endif
