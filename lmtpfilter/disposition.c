/*
 * disposition - does a message go to Quarantine, and why
 *
 * Owns: the disposition table (the rules are listed in disposition.h, the
 * product contract is SPEC.md "Disposition") and the text of
 * X-Disposition-Quarantine. Pure: reads a verdict, no DNS, no state, so
 * every rule has a unit test.
 */
#include "lmtpfilter/disposition.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/evaluate.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DISPOSITION_HEADER "X-Disposition-Quarantine"
#define DISPOSITION_LINE_MAX 78   /* fold before this column, as our other fields */

static bool policy_strict(const char *name)
{
	return strcmp(name, "quarantine") == 0 || strcmp(name, "reject") == 0;
}

/* details_set - printf into the details, characters that would end or
 * nest the comment replaced. */
G_GNUC_PRINTF(2, 3) static void details_set(struct disposition *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_vsnprintf(d->details, sizeof(d->details), fmt, ap);
	va_end(ap);
	for (char *p = d->details; *p; p++)
		if (*p == '(' || *p == ')' || *p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '_';
}

/* disposition_from_invalid - rule 2; true when it decided. */
static bool disposition_from_invalid(const struct dmarc_outcome *dm, bool names_ours, unsigned quarantine_on,
				     struct disposition *out)
{
	if (!(quarantine_on & QUARANTINE_ON_FROM))
		return false;
	if (!policy_strict(dm->policy) && !policy_strict(dm->disposition) && !names_ours)
		return false;
	out->reason = DISPOSITION_FROM_INVALID;
	details_set(out, "dmarc=%s from=invalid%s%s%s%s%s: %s", verdict_name(dm->result),
		    dm->policy[0] ? " p=" : "", dm->policy, dm->header_from[0] ? " header.from=" : "", dm->header_from,
		    names_ours ? " names-local-domain" : "", dm->reason);
	return true;
}

/* disposition_dmarc - rule 3; true when it decided. */
static bool disposition_dmarc(const struct dmarc_outcome *dm, unsigned quarantine_on, struct disposition *out)
{
	if (!(quarantine_on & QUARANTINE_ON_DMARC) || dm->result != VERDICT_FAIL || !policy_strict(dm->disposition))
		return false;
	out->reason = strcmp(dm->disposition, "reject") == 0 ? DISPOSITION_DMARC_REJECT : DISPOSITION_DMARC_QUARANTINE;
	details_set(out, "dmarc=fail p=%s%s%s header.from=%s", dm->policy, dm->sp[0] ? " sp=" : "", dm->sp,
		    dm->header_from);
	return true;
}

/* disposition_spf - rule 4; true when it decided. */
static bool disposition_spf(const struct message_verdict *v, unsigned checks, unsigned quarantine_on,
			    struct disposition *out)
{
	const struct spf_outcome *s = &v->spf_mailfrom;
	const struct dmarc_outcome *dm = &v->dmarc;
	bool dmarc_known = (checks & CHECK_DMARC) && (v->evaluated & CHECK_DMARC);

	if (!(quarantine_on & QUARANTINE_ON_SPF) || !(checks & CHECK_SPF) || !v->spf_ran || s->result != VERDICT_FAIL)
		return false;
	if (dmarc_known && (dm->result == VERDICT_TEMPERROR || dm->policy[0] != '\0'))
		return false;   /* a policy (or maybe one) exists: DMARC decides */
	out->reason = DISPOSITION_SPF_FAIL;
	bool helo = g_strcmp0(s->identity, "helo") == 0;
	details_set(out, "spf=fail %s=%s%s%s", helo ? "smtp.helo" : "smtp.mailfrom", helo ? v->facts.helo : s->sender,
		    dmarc_known && dm->header_from[0] ? " header.from=" : "", dmarc_known ? dm->header_from : "");
	return true;
}

/* disposition_arc_override - rule 1b; true when it decided. Only a chain
 * that passes, sealed last by a trusted domain whose AAR vouches. */
static bool disposition_arc_override(const struct message_verdict *v, unsigned checks, bool sealer_trusted,
				     struct disposition *out)
{
	if (!sealer_trusted || !(checks & CHECK_ARC) || !(v->evaluated & CHECK_ARC))
		return false;
	if (v->dmarc.result != VERDICT_FAIL || v->dmarc.from_invalid)
		return false;
	if (v->arc.result != VERDICT_PASS || !v->arc_vouches || v->arc.sealer_domain[0] == '\0')
		return false;
	out->arc_override = true;
	g_strlcpy(out->override_sealer, v->arc.sealer_domain, sizeof(out->override_sealer));
	g_snprintf(out->override, sizeof(out->override), "trusted ARC sealer d=%s", v->arc.sealer_domain);
	return true;
}

void disposition_decide(const struct message_verdict *v, unsigned checks, unsigned quarantine_on,
			struct disposition *out_r)
{
	disposition_decide_arc(v, checks, quarantine_on, false, out_r);
}

void disposition_decide_arc(const struct message_verdict *v, unsigned checks, unsigned quarantine_on,
			    bool sealer_trusted, struct disposition *out_r)
{
	const struct dmarc_outcome *dm = &v->dmarc;
	bool dmarc_known = (checks & CHECK_DMARC) && (v->evaluated & CHECK_DMARC);

	memset(out_r, 0, sizeof(*out_r));
	out_r->reason = DISPOSITION_DELIVER;
	if (dmarc_known && dm->result == VERDICT_PASS)
		return;
	if (dmarc_known && disposition_arc_override(v, checks, sealer_trusted, out_r))
		return;
	if (dmarc_known && dm->from_invalid && disposition_from_invalid(dm, v->from_names_ours, quarantine_on, out_r))
		return;
	if (dmarc_known && disposition_dmarc(dm, quarantine_on, out_r))
		return;
	(void)disposition_spf(v, checks, quarantine_on, out_r);
}

bool disposition_quarantines(const struct disposition *d)
{
	return d->reason != DISPOSITION_DELIVER;
}

const char *disposition_reason_name(enum disposition_reason reason)
{
	switch (reason) {
	case DISPOSITION_DMARC_QUARANTINE: return "dmarc-quarantine";
	case DISPOSITION_DMARC_REJECT: return "dmarc-reject";
	case DISPOSITION_SPF_FAIL: return "spf-fail";
	case DISPOSITION_FROM_INVALID: return "from-invalid";
	case DISPOSITION_DELIVER: break;
	}
	return "deliver";
}

char *disposition_render(const struct disposition *d)
{
	if (!disposition_quarantines(d))
		return NULL;
	char *text = g_strdup_printf("%s (%s)", disposition_reason_name(d->reason), d->details);
	char **words = g_strsplit(text, " ", -1);
	GString *out = g_string_new(DISPOSITION_HEADER ":");
	size_t column = out->len;

	for (char **w = words; *w != NULL; w++) {
		size_t len = strlen(*w);
		if (len == 0)
			continue;
		if (column + 1 + len > DISPOSITION_LINE_MAX && w != words) {
			g_string_append(out, "\r\n\t");
			column = 1;
		} else {
			g_string_append_c(out, ' ');
			column++;
		}
		g_string_append(out, *w);
		column += len;
	}
	g_string_append(out, "\r\n");
	g_strfreev(words);
	g_free(text);
	return g_string_free(out, FALSE);
}
