/*
 * disposition - does a message go to Quarantine, and why
 *
 * Computed from a struct message_verdict and the domain's quarantine_on, the same
 * way for mode=annotate (which writes X-Disposition-Quarantine) and
 * mode=observe (which only logs what annotate would do). The rules, first
 * match wins:
 *  1. DMARC pass: no quarantine (it wins over an SPF fail: forwarded mail
 *     keeps its aligned DKIM signature).
 *  1b. ARC override (SPEC.md "ARC"): DMARC fails (From not broken), ARC
 *     is in the checks and passes, its newest sealer is trusted by the
 *     policy and that set's AAR vouches for the From domain: no
 *     quarantine, and the disposition names the override.
 *  2. A broken From (dmarc.from_invalid): from-invalid when quarantine_on
 *     has "from" and a domain it names publishes p=quarantine|reject or is
 *     one of the configuration's domains.
 *  3. DMARC fail whose applied disposition is quarantine or reject:
 *     dmarc-quarantine / dmarc-reject when quarantine_on has "dmarc".
 *  4. SPF fail of the checked identity while the From domain publishes no
 *     DMARC policy (or DMARC was not evaluated): spf-fail when
 *     quarantine_on has "spf".
 * A temperror never quarantines: an SPF temperror is no fail, and a DMARC
 * temperror leaves unknown whether the From domain has a policy, so SPF
 * alone does not quarantine either.
 */
#ifndef LMTPFILTER_DISPOSITION_H
#define LMTPFILTER_DISPOSITION_H

#include <stdbool.h>
#include <stddef.h>

struct message_verdict;

/* Bytes of the details text, the comment after the reason. */
#define DISPOSITION_DETAILS_MAX 600
/* Bytes of the override text: sealer domain and what its AAR showed. */
#define DISPOSITION_OVERRIDE_MAX 600

enum disposition_reason {
	DISPOSITION_DELIVER = 0,      /* no quarantine */
	DISPOSITION_DMARC_QUARANTINE,
	DISPOSITION_DMARC_REJECT,
	DISPOSITION_SPF_FAIL,
	DISPOSITION_FROM_INVALID,
};

struct disposition {
	enum disposition_reason reason;
	char details[DISPOSITION_DETAILS_MAX]; /* "dmarc=fail p=reject header.from=example.com"; "" for deliver */
	/* Rule 1b: the DMARC disposition became none because a trusted ARC
	 * sealer vouched. override names it ("trusted ARC sealer
	 * d=lists.example.org"), override_sealer is that d=; both "" without. */
	bool arc_override;
	char override[DISPOSITION_OVERRIDE_MAX];
	char override_sealer[256];
};

/* disposition_decide - the disposition of the verdict under quarantine_on
 * (enum quarantine_flags), reading only the results of the checks in the
 * set (enum check_flags; the domain's "checks"). */
void disposition_decide(const struct message_verdict *v, unsigned checks, unsigned quarantine_on,
			struct disposition *out_r);
/* disposition_decide_arc - the same, told whether the policy trusts the
 * newest ARC sealer of the verdict (config_arc_sealer_trusted), so that
 * rule 1b may apply; disposition_decide is this with false. */
void disposition_decide_arc(const struct message_verdict *v, unsigned checks, unsigned quarantine_on,
			    bool sealer_trusted, struct disposition *out_r);

/* disposition_quarantines - does it file the message into Quarantine? */
bool disposition_quarantines(const struct disposition *d);

/* disposition_reason_name - "dmarc-quarantine", "dmarc-reject",
 * "spf-fail", "from-invalid", or "deliver". */
const char *disposition_reason_name(enum disposition_reason reason);

/* disposition_render - "X-Disposition-Quarantine: REASON (DETAILS)\r\n",
 * folded with a tab at 78 columns (g_free); NULL for deliver. */
char *disposition_render(const struct disposition *d);

#endif
