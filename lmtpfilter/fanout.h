/*
 * fanout - one transaction's recipients delivered through Dovecot: a
 * downstream transaction per recipient group (recipients whose domains
 * share a policy), over connections kept across transactions
 *
 * Every recipient's reply, Dovecot's or a 4xx of ours when Dovecot cannot
 * be reached, goes to the answer function given at fanout_new, in RCPT
 * order: the session passes it on to its client. A 2xx is only ever one
 * Dovecot sent. Each recipient's fate is counted (metrics.h) where its
 * final reply is known: a refused RCPT, or the reply after DATA.
 */
#ifndef LMTPFILTER_FANOUT_H
#define LMTPFILTER_FANOUT_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

#include "lmtpfilter/disposition.h"
#include "lmtpfilter/reply.h"

struct config;
struct domain_policy;
struct message_view;
struct spool;
struct fanout;

/* fanout_answer_fn - one recipient's reply for the client. */
typedef void fanout_answer_fn(void *ctx, const struct lmtp_reply *reply);
/* fanout_prepare_fn - the bytes for the recipients with this policy into
 * view, and *reason_r their disposition (DISPOSITION_DELIVER unless they
 * are quarantined, or in mode=observe would be: counted, never acted on
 * here): 0, or -1 with *fail_r the reply they get instead. */
typedef int fanout_prepare_fn(void *ctx, const struct domain_policy *policy, struct message_view *view,
			      enum disposition_reason *reason_r, struct lmtp_reply *fail_r);

/* fanout_new - no connection yet; config and lhlo_name are borrowed for
 * the fanout's life. */
struct fanout *fanout_new(const struct config *config, const char *lhlo_name, fanout_answer_fn *answer, void *ctx);
/* fanout_free - ends what is open (fanout_abort), QUIT on every connection. */
void fanout_free(struct fanout **fanout);

/* fanout_open - the first group's connection, so that MAIL can say at once
 * that Dovecot is unreachable: 0, or -1 with *reply_r our 4xx. */
int fanout_open(struct fanout *fanout, struct lmtp_reply *reply_r);
/* fanout_begin - a transaction from this sender (copied); MAIL goes to
 * Dovecot with each group's first RCPT. */
void fanout_begin(struct fanout *fanout, const char *mail_from, bool body8bit);

/* fanout_rcpt - relay one RCPT (orcpt may be NULL). It is answered now,
 * or, when more_coming (the client pipelined more commands) and the
 * pipeline has room, at the next fanout_settle: a transaction's
 * recipients then cost one round trip, not one each. */
void fanout_rcpt(struct fanout *fanout, const char *address, const char *orcpt, bool more_coming);
/* fanout_settle - read Dovecot's replies to the pipelined RCPTs and answer
 * them; call before any other reply goes to the client. */
void fanout_settle(struct fanout *fanout);
/* fanout_accepted - recipients Dovecot accepted; fanout_pending - RCPTs
 * whose reply is not read yet. */
size_t fanout_accepted(const struct fanout *fanout);
size_t fanout_pending(const struct fanout *fanout);

/* fanout_deliver - the spooled message to every group with an accepted
 * recipient (prepare gives each group's bytes), then every accepted
 * recipient's reply, in RCPT order. */
void fanout_deliver(struct fanout *fanout, const struct spool *spool, fanout_prepare_fn *prepare, void *ctx);
/* fanout_refuse - every accepted recipient answered with this reply: the
 * message was refused before delivery. */
void fanout_refuse(struct fanout *fanout, int code, const char *enhanced, const char *text);

/* fanout_give_up - the session ends the transaction with one reply of
 * its own (code: 421 when the message did not arrive in time): the fate
 * of every accepted recipient, counted; nothing is sent, fanout_abort
 * still ends the transaction. */
void fanout_give_up(struct fanout *fanout, int code);

/* fanout_log_rcpts - "address:code,…" of every recipient (the reply after
 * DATA for the accepted ones), appended to out up to max bytes. */
void fanout_log_rcpts(const struct fanout *fanout, GString *out, size_t max);

/* fanout_abort - end the downstream transactions without delivering (RSET)
 * and forget the transaction. fanout_end - forget it after delivery. */
void fanout_abort(struct fanout *fanout);
void fanout_end(struct fanout *fanout);

#endif
