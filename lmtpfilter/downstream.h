/*
 * downstream - the LMTP client towards Dovecot
 *
 * One connection, reused for several transactions of the same upstream
 * session. Every reply is returned as Dovecot gave it (code, enhanced status
 * code, text) so the session can relay it. Any failure to talk to Dovecot
 * becomes a synthesised 4xx reply; a 2xx is only ever one Dovecot sent.
 */
#ifndef LMTPFILTER_DOWNSTREAM_H
#define LMTPFILTER_DOWNSTREAM_H

#include <stdbool.h>

#include "lmtpfilter/netio.h"
#include "lmtpfilter/reply.h"

struct endpoint;
struct spool;
struct message_view;

struct downstream {
	struct netio io;
	bool connected;
	bool broken;          /* a protocol or I/O error: do not reuse */
	bool in_transaction;  /* MAIL accepted, not yet ended */
	bool chunking;        /* Dovecot offered CHUNKING: the message goes as BDAT */
	bool used;            /* a transaction was begun on this connection */
	char error[600];      /* the last failure, for the log */
};

/* downstream_new - allocated, not connected. */
struct downstream *downstream_new(void);
void downstream_free(struct downstream **ds);

/* downstream_connect - connect, read the greeting, LHLO. On failure the
 * reply is a synthesised 451 4.4.1 and -1 is returned. */
int downstream_connect(struct downstream *ds, const struct endpoint *ep, const char *lhlo_name,
		       int timeout_ms, struct lmtp_reply *reply_r);

/* downstream_begin - MAIL and the transaction's first RCPT, pipelined in
 * one write, then both replies. When Dovecot refused MAIL, *rcpt_r is that
 * refusal too (its answer to the RCPT only says MAIL is missing).
 * downstream_rcpt_queue - buffer a RCPT (sent at the next read or when
 * the buffer fills; -1 if that failed); downstream_rcpt_reply - read the
 * reply to the oldest RCPT queued. downstream_rset - RSET and its reply.
 * body8bit adds BODY=8BITMIME; orcpt (may be NULL) is passed as ORCPT=.
 * Returns 0 when Dovecot's replies were read (whatever their codes), -1
 * when the connection failed (the replies are then a synthesised 4xx). */
int downstream_begin(struct downstream *ds, const char *from, bool body8bit, const char *rcpt,
		     const char *orcpt, struct lmtp_reply *mail_r, struct lmtp_reply *rcpt_r);
int downstream_rcpt_queue(struct downstream *ds, const char *rcpt, const char *orcpt);
int downstream_rcpt_reply(struct downstream *ds, struct lmtp_reply *reply_r);
int downstream_rset(struct downstream *ds);

/* downstream_data - the view's bytes as one BDAT LAST when Dovecot offers
 * CHUNKING, else DATA, the bytes dot-stuffed and the final dot; then one
 * reply per accepted recipient into replies[0..count). Recipients without a
 * reply from Dovecot get a synthesised 4xx. Returns 0 when every reply came
 * from Dovecot. */
int downstream_data(struct downstream *ds, const struct message_view *view, const struct spool *spool,
		    struct lmtp_reply *replies, size_t count);

/* downstream_quit - polite QUIT and close. */
void downstream_quit(struct downstream *ds);

/* downstream_fail_reply - the 4xx given for a failure of the downstream. */
void downstream_fail_reply(const struct downstream *ds, struct lmtp_reply *reply_r);

#endif
