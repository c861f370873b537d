/*
 * evaluate - the verdict of one message, computed once
 *
 * A struct message_verdict (not "struct verdict": the tag of the result
 * enum of verdict.h) holds everything the checks found: the connection
 * facts, SPF, each DKIM signature, DMARC and the ARC chain. One struct evaluation per
 * transaction computes it from the spooled message with the engine's
 * checkers; every recipient group that needs a check reads the same
 * result, and a check no group needs never runs.
 */
#ifndef LMTPFILTER_EVALUATE_H
#define LMTPFILTER_EVALUATE_H

#include <stdbool.h>
#include <stddef.h>

#include "lmtpfilter/arc.h"
#include "lmtpfilter/arc_aar.h"
#include "lmtpfilter/dkim.h"
#include "lmtpfilter/dmarc.h"
#include "lmtpfilter/facts.h"
#include "lmtpfilter/spf.h"
#include "mime/trail.h"

struct checkers;
struct config;
struct spool;
struct header_block;

struct message_verdict {
	unsigned evaluated;               /* enum check_flags that ran */
	struct conn_facts facts;          /* who handed us the message */
	bool spf_ran;                     /* false: SPF does not apply (see facts) */
	struct spf_outcome spf_mailfrom;  /* the identity checked (HELO for the null sender) */
	struct spf_outcome spf_helo;
	/* With dmarc.from_invalid: a domain the broken From names is one of
	 * the [domain NAME] groups of the configuration. */
	bool from_names_ours;
	/* dmarc, arc, dkim in this order: the bulk at the end of dmarc, arc
	 * and dkim are one stretch that a new evaluation need not clear
	 * (evaluation_alloc). */
	struct dmarc_outcome dmarc;
	struct arc_outcome arc;           /* the chain, each set with its own result */
	struct dkim_outcome dkim;         /* one result per signature */
	/* With ARC and DMARC evaluated: the newest set's AAR shows a DMARC
	 * pass, or an SPF or DKIM pass aligned with the From domain
	 * (arc_aar.h); arc_vouched_by says which. Whether its sealer is
	 * trusted is the policy's question (disposition.c). */
	bool arc_vouches;
	char arc_vouched_by[ARC_AAR_WHAT_MAX];
};

/* What the transaction knows before any check: the inputs of the verdict. */
struct evaluation_input {
	const char *mail_from;            /* "" for the null sender */
	const struct xforward *xforward;  /* NULL when absent or not trusted */
	const struct conn_facts *cli;     /* facts given to "check", else NULL */
	struct spool *spool;
	const struct header_block *block; /* the parsed header block */
};

struct evaluation;

/* evaluation_new - the (not yet computed) verdict of one message; in and
 * what it points to must outlive the evaluation. */
struct evaluation *evaluation_new(const struct checkers *checkers, const struct config *config,
				  const struct evaluation_input *in);
void evaluation_free(struct evaluation **ev);

/* evaluation_run - run the checks of the set (enum check_flags) that have
 * not run yet, and return the verdict (valid until evaluation_free). */
const struct message_verdict *evaluation_run(struct evaluation *ev, unsigned checks);

/* evaluation_verdict - the verdict as far as it was computed. */
const struct message_verdict *evaluation_verdict(const struct evaluation *ev);

#endif
