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
#include "lmtpfilter/reply.h"
#include "mime/trail.h"

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
	const struct conn_facts *cli;    /* facts given on the command line (check), else NULL */
};

/* filter_engine_init - build the shared checkers (resolver, SPF, DKIM,
 * DMARC) once, before any worker thread exists. */
int filter_engine_init(struct engine *engine, const struct config *config, char **error_r);
void filter_engine_deinit(struct engine *engine);


/* Per-transaction state of the checks (verdicts computed lazily, once). */
struct filter_tx;

struct filter_tx *filter_tx_new(struct engine *engine, const struct config *config, const struct tx_facts *facts);
void filter_tx_free(struct filter_tx **ftx);

/* filter_prepare - the bytes for recipients with this policy, into view.
 * Returns 0; -1 with *fail_r set to the reply those recipients get when
 * the message cannot be prepared. */
int filter_prepare(struct filter_tx *ftx, const struct domain_policy *policy, struct message_view *view,
		   struct lmtp_reply *fail_r);

/* filter_evaluate - run the checks of the set (enum check_flags) that have
 * not run yet for this transaction. */
void filter_evaluate(struct filter_tx *ftx, unsigned checks);
/* filter_render_headers - our header fields for the check set (g_free). */
char *filter_render_headers(struct filter_tx *ftx, unsigned checks);

/* filter_json - the verdicts as one JSON object, with headers as its
 * "headers" member (g_free). */
char *filter_json(struct filter_tx *ftx, unsigned checks, const char *headers);
/* filter_header_length - bytes of the original header block (with its
 * empty line). */
size_t filter_header_length(struct filter_tx *ftx);

/* filter_log_fields - " spf=… dkim=… dmarc=…" for the transaction log line
 * (empty when no check ran). */
const char *filter_log_fields(struct filter_tx *ftx);

#endif
