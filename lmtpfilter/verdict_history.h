/*
 * verdict_history - the DMARC aggregate-report history records of one
 * evaluated message: one struct history_record per policy domain, built
 * from the verdict and from what the recipient groups did with it
 */
#ifndef LMTPFILTER_VERDICT_HISTORY_H
#define LMTPFILTER_VERDICT_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct history;
struct message_verdict;

/* What the recipient groups that evaluated DMARC (mode annotate or
 * observe, "dmarc" in checks) did with the message, summed over them. */
struct verdict_history_groups {
	size_t count;            /* groups that evaluated DMARC; 0: no record */
	bool quarantined;        /* an annotate group filed it into Quarantine */
	bool observed;           /* a mode=observe group: delivered as received */
	/* The trusted ARC sealer (d= of the newest ARC-Seal) that lowered the
	 * disposition, recorded as override trusted_forwarder with the sealer
	 * as comment; NULL (the default): no ARC override. */
	const char *arc_sealer;
};

/* verdict_history_append - append the records of one message (time t) to
 * history: one per policy domain that published a record (several for a
 * broken From). mail_from is the envelope sender ("" for the null
 * sender). Never blocks (history_append drops on failure). Returns the
 * number of records appended. */
size_t verdict_history_append(struct history *history, const struct message_verdict *v,
			      const char *mail_from, time_t t, const struct verdict_history_groups *groups);

#endif
