/*
 * fanout - one transaction's recipients delivered through Dovecot
 *
 * Owns: the recipients of the current transaction (their replies at RCPT
 * and after DATA), the recipient groups, and up to FANOUT_GROUPS_MAX
 * downstream connections reused across transactions: one per group, since
 * a transaction whose recipients have different domain policies is
 * delivered as one downstream transaction per group.
 *
 * MAIL goes to Dovecot pipelined with the first RCPT of each group; every
 * RCPT is relayed and Dovecot's reply passed back (a refused MAIL is the
 * answer of each of the group's recipients). RCPTs that arrive pipelined
 * go on pipelined: their replies are read once no further command is
 * buffered, or before any other reply (fanout_settle). After the message
 * each accepted recipient gets the reply Dovecot gave for it, in RCPT
 * order. A group whose connection broke mid-transaction answers its later
 * recipients with a 4xx; the recipients it had accepted are lost with it.
 *
 * Limits: FANOUT_GROUPS_MAX policies per transaction (452 4.5.3 beyond),
 * FANOUT_PIPELINE_MAX RCPTs in flight. Every wait for Dovecot is bounded by
 * the configured timeout (downstream.c).
 */
#include "lmtpfilter/fanout.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/downstream.h"
#include "lmtpfilter/log.h"
#include "lmtpfilter/message_view.h"
#include "lmtpfilter/metrics.h"

#include <string.h>

#define FANOUT_GROUPS_MAX 8        /* distinct (mode, checks) policies in one transaction */
/* RCPTs sent on before their replies are read: bounds the replies Dovecot
 * may have to hold (they must fit in the socket buffers while we write). */
#define FANOUT_PIPELINE_MAX 64

struct recipient {
	char *address;
	char *orcpt;
	const struct domain_policy *policy; /* its domain's, for its counters */
	size_t group;
	bool accepted;               /* Dovecot said 2xx at RCPT */
	struct lmtp_reply final;     /* the reply after DATA (accepted ones) */
	int rcpt_code;               /* the reply at RCPT (refused ones) */
};

struct group {
	enum domain_mode mode;
	unsigned checks;
	const struct domain_policy *policy;
	size_t accepted;
	bool begun;                  /* Dovecot accepted its MAIL */
	bool mail_refused;           /* MAIL refused or not sent: mail_reply is every recipient's */
	struct lmtp_reply mail_reply;
	bool failed;                 /* its downstream broke during the transaction */
	enum disposition_reason disposition; /* of the delivered message (prepare) */
};

struct fanout {
	const struct config *config;
	const char *lhlo_name;
	fanout_answer_fn *answer;
	void *ctx;

	char *mail_from;
	bool body8bit;
	GArray *rcpts;               /* struct recipient, in RCPT order */
	size_t accepted;
	size_t pending;              /* the last ones in rcpts: RCPT sent on, reply not read */
	struct group groups[FANOUT_GROUPS_MAX];
	size_t group_count;
	struct downstream *ds[FANOUT_GROUPS_MAX];
};

struct fanout *fanout_new(const struct config *config, const char *lhlo_name, fanout_answer_fn *answer, void *ctx)
{
	struct fanout *f = g_new0(struct fanout, 1);

	f->config = config;
	f->lhlo_name = lhlo_name;
	f->answer = answer;
	f->ctx = ctx;
	f->rcpts = g_array_new(FALSE, TRUE, sizeof(struct recipient));
	return f;
}

/* fanout_clear - forget the transaction; the connections stay. */
static void fanout_clear(struct fanout *f)
{
	for (size_t i = 0; i < f->rcpts->len; i++) {
		struct recipient *r = &g_array_index(f->rcpts, struct recipient, i);
		g_free(r->address);
		g_free(r->orcpt);
	}
	g_array_set_size(f->rcpts, 0);
	g_free(f->mail_from);
	f->mail_from = NULL;
	f->body8bit = false;
	f->accepted = f->pending = f->group_count = 0;
	memset(f->groups, 0, sizeof(f->groups));
}

void fanout_free(struct fanout **fp)
{
	struct fanout *f = *fp;

	if (f == NULL)
		return;
	fanout_abort(f);
	for (size_t i = 0; i < FANOUT_GROUPS_MAX; i++) {
		if (f->ds[i] != NULL)
			downstream_quit(f->ds[i]);
		downstream_free(&f->ds[i]);
	}
	g_array_free(f->rcpts, TRUE);
	g_free(f);
	*fp = NULL;
}

static void log_downstream_error(const struct fanout *f, const struct downstream *ds)
{
	const struct endpoint *ep = &f->config->downstream;

	log_warning("downstream=%s error=\"%s\"", ep->is_unix ? ep->path : ep->host, ds->error);
}

/* Group g's downstream broke in the middle of its transaction: recipients
 * already accepted on it are lost with it, every later one gets a 4xx. */
static void group_broken(struct fanout *f, size_t g)
{
	f->groups[g].failed = true;
	log_downstream_error(f, f->ds[g]);
}

/* fanout_connect - make sure f->ds[i] is connected; on failure *reply_r
 * is the 4xx. */
static int fanout_connect(struct fanout *f, size_t i, struct lmtp_reply *reply_r)
{
	if (f->ds[i] != NULL && (f->ds[i]->broken || !f->ds[i]->connected))
		downstream_free(&f->ds[i]);
	if (f->ds[i] != NULL)
		return 0;
	f->ds[i] = downstream_new();
	if (downstream_connect(f->ds[i], &f->config->downstream, f->lhlo_name, (int)f->config->timeout * 1000,
			       reply_r) < 0) {
		log_downstream_error(f, f->ds[i]);
		downstream_free(&f->ds[i]);
		return -1;
	}
	return 0;
}

int fanout_open(struct fanout *f, struct lmtp_reply *reply_r)
{
	return fanout_connect(f, 0, reply_r);
}

void fanout_begin(struct fanout *f, const char *mail_from, bool body8bit)
{
	g_free(f->mail_from);
	f->mail_from = g_strdup(mail_from);
	f->body8bit = body8bit;
}

/* group_begin - group g's downstream transaction: MAIL with its first
 * recipient. *reply_r is the recipient's reply. When MAIL was refused, or
 * could not be sent, that answer is kept for the group's later recipients. */
static void group_begin(struct fanout *f, size_t g, const char *rcpt, const char *orcpt, struct lmtp_reply *reply_r)
{
	struct group *group = &f->groups[g];
	struct lmtp_reply mail;

	group->mail_refused = true;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (fanout_connect(f, g, reply_r) < 0) {
			group->mail_reply = *reply_r;
			return;
		}
		/* A connection kept from an earlier transaction may have been
		 * closed by Dovecot meanwhile: one more try on a fresh one. */
		bool reused = f->ds[g]->used;
		if (downstream_begin(f->ds[g], f->mail_from, f->body8bit, rcpt, orcpt, &mail, reply_r) == 0) {
			group->begun = mail.code / 100 == 2;
			group->mail_refused = !group->begun;
			group->mail_reply = mail;
			return;
		}
		if (!reused)
			break;
		downstream_free(&f->ds[g]);
	}
	if (f->ds[g] != NULL)
		log_downstream_error(f, f->ds[g]);
	group->mail_reply = *reply_r;
}

/* fanout_group - the recipient's group, created (with its downstream
 * connection) on first use. */
static int fanout_group(struct fanout *f, const struct domain_policy *policy, size_t *group_r,
			struct lmtp_reply *reply_r)
{
	unsigned checks = policy->mode == DOMAIN_MODE_OFF ? 0 : policy->checks;

	for (size_t i = 0; i < f->group_count; i++) {
		if (config_policy_same(f->groups[i].policy, policy)) {
			*group_r = i;
			return 0;
		}
	}
	if (f->group_count == FANOUT_GROUPS_MAX) {
		reply_set(reply_r, 452, "4.5.3", "Too many different domain policies in one transaction");
		return -1;
	}
	size_t i = f->group_count;
	if (fanout_connect(f, i, reply_r) < 0)
		return -1;
	f->groups[i] = (struct group){ .mode = policy->mode, .checks = checks, .policy = policy };
	f->group_count++;
	*group_r = i;
	return 0;
}

/* rcpt_done - record recipient r's reply from Dovecot (or ours) and answer it. */
static void rcpt_done(struct fanout *f, struct recipient *r, const struct lmtp_reply *reply)
{
	r->rcpt_code = reply->code;
	r->accepted = reply->code / 100 == 2;
	if (r->accepted) {
		f->accepted++;
		f->groups[r->group].accepted++;
	} else {
		metrics_recipient_reply(r->policy, reply->code, DISPOSITION_DELIVER);
	}
	f->answer(f->ctx, reply);
}

void fanout_settle(struct fanout *f)
{
	size_t count = f->pending;

	f->pending = 0;
	for (size_t i = f->rcpts->len - count; i < f->rcpts->len; i++) {
		struct recipient *r = &g_array_index(f->rcpts, struct recipient, i);
		struct lmtp_reply reply;

		if (f->groups[r->group].failed)
			downstream_fail_reply(f->ds[r->group], &reply);
		else if (downstream_rcpt_reply(f->ds[r->group], &reply) < 0)
			group_broken(f, r->group);
		rcpt_done(f, r, &reply);
	}
}

/* rcpt_queue - send the RCPT on without waiting for its reply: 0, or -1
 * with *reply_r the 4xx when the group's connection broke. */
static int rcpt_queue(struct fanout *f, struct recipient *rcpt, bool more_coming, struct lmtp_reply *reply_r)
{
	if (downstream_rcpt_queue(f->ds[rcpt->group], rcpt->address, rcpt->orcpt) < 0) {
		group_broken(f, rcpt->group);
		downstream_fail_reply(f->ds[rcpt->group], reply_r);
		return -1;
	}
	g_array_append_val(f->rcpts, *rcpt);
	f->pending++;
	/* Never wait for the client first: read the replies now unless more
	 * commands are already here. */
	if (!more_coming || f->pending >= FANOUT_PIPELINE_MAX)
		fanout_settle(f);
	return 0;
}

void fanout_rcpt(struct fanout *f, const char *address, const char *orcpt, bool more_coming)
{
	struct recipient rcpt = { .address = g_strdup(address), .orcpt = g_strdup(orcpt),
				  .policy = config_policy_for(f->config, address) };
	struct lmtp_reply reply;
	size_t g;

	if (fanout_group(f, rcpt.policy, &g, &reply) == 0) {
		struct group *group = &f->groups[g];
		rcpt.group = g;
		if (group->failed)
			downstream_fail_reply(f->ds[g], &reply);
		else if (group->mail_refused)
			reply = group->mail_reply;
		else if (!group->begun)
			group_begin(f, g, rcpt.address, rcpt.orcpt, &reply);
		else if (rcpt_queue(f, &rcpt, more_coming, &reply) == 0)
			return;
	}
	fanout_settle(f);
	g_array_append_val(f->rcpts, rcpt);
	rcpt_done(f, &g_array_index(f->rcpts, struct recipient, f->rcpts->len - 1), &reply);
}

size_t fanout_accepted(const struct fanout *f)
{
	return f->accepted;
}

size_t fanout_pending(const struct fanout *f)
{
	return f->pending;
}

/* group_deliver - the message to group g's downstream; one reply per
 * accepted recipient of the group into replies. */
static void group_deliver(struct fanout *f, size_t g, const struct spool *spool, fanout_prepare_fn *prepare,
			  void *ctx, struct lmtp_reply *replies)
{
	struct group *group = &f->groups[g];
	struct message_view view;

	message_view_init(&view);
	if (group->failed) {
		for (size_t i = 0; i < group->accepted; i++)
			downstream_fail_reply(f->ds[g], &replies[i]);
	} else if (prepare(ctx, group->policy, &view, &group->disposition, &replies[0]) < 0) {
		log_warning("error=\"cannot prepare message: %s\"", replies[0].text);
		for (size_t i = 1; i < group->accepted; i++)
			replies[i] = replies[0];
		(void)downstream_rset(f->ds[g]);
	} else if (downstream_data(f->ds[g], &view, spool, replies, group->accepted) < 0) {
		log_downstream_error(f, f->ds[g]);
	}
	message_view_clear(&view);
}

void fanout_deliver(struct fanout *f, const struct spool *spool, fanout_prepare_fn *prepare, void *ctx)
{
	for (size_t g = 0; g < f->group_count; g++) {
		if (f->groups[g].accepted == 0)
			continue;
		struct lmtp_reply *replies = g_new0(struct lmtp_reply, f->groups[g].accepted);
		group_deliver(f, g, spool, prepare, ctx, replies);
		size_t k = 0;
		for (size_t i = 0; i < f->rcpts->len; i++) {
			struct recipient *r = &g_array_index(f->rcpts, struct recipient, i);
			if (r->accepted && r->group == g)
				r->final = replies[k++];
		}
		g_free(replies);
	}
	for (size_t i = 0; i < f->rcpts->len; i++) {
		struct recipient *r = &g_array_index(f->rcpts, struct recipient, i);
		if (!r->accepted)
			continue;
		metrics_recipient_reply(r->policy, r->final.code, f->groups[r->group].disposition);
		f->answer(f->ctx, &r->final);
	}
}

void fanout_refuse(struct fanout *f, int code, const char *enhanced, const char *text)
{
	for (size_t i = 0; i < f->rcpts->len; i++) {
		struct recipient *r = &g_array_index(f->rcpts, struct recipient, i);
		if (!r->accepted)
			continue;
		reply_set(&r->final, code, enhanced, text);
		metrics_recipient_reply(r->policy, code, DISPOSITION_DELIVER);
		f->answer(f->ctx, &r->final);
	}
}

void fanout_give_up(struct fanout *f, int code)
{
	for (size_t i = 0; i < f->rcpts->len; i++) {
		const struct recipient *r = &g_array_index(f->rcpts, struct recipient, i);
		if (r->accepted)
			metrics_recipient_reply(r->policy, code, DISPOSITION_DELIVER);
	}
}

void fanout_log_rcpts(const struct fanout *f, GString *out, size_t max)
{
	for (size_t i = 0; i < f->rcpts->len && out->len < max; i++) {
		const struct recipient *r = &g_array_index(f->rcpts, struct recipient, i);
		g_string_append_printf(out, "%s%s:%d", i ? "," : "", r->address,
				       r->accepted ? r->final.code : r->rcpt_code);
	}
}

void fanout_abort(struct fanout *f)
{
	fanout_settle(f);
	for (size_t i = 0; i < FANOUT_GROUPS_MAX; i++) {
		struct downstream *ds = f->ds[i];
		if (ds != NULL && ds->in_transaction && downstream_rset(ds) < 0)
			downstream_free(&f->ds[i]);
	}
	fanout_clear(f);
}

void fanout_end(struct fanout *f)
{
	fanout_clear(f);
}
