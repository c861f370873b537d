/*
 * evaluate - the verdict of one message, computed once
 *
 * Owns: running the checks in their order (facts, then SPF and DKIM, then
 * DMARC on their results, ARC, then what the newest ARC set vouches
 * for), each at most once per message, and the rules of
 * which check applies: SPF needs untrusted connection facts that are not
 * an authenticated submission; DMARC applies to everything but an
 * authenticated submission. A check that fails internally becomes
 * temperror, never a guess.
 */
#include "lmtpfilter/evaluate.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/engine.h"
#include "lmtpfilter/log.h"
#include "lmtpfilter/spool.h"
#include "mime/header_block.h"

#include <glib.h>
#include <stddef.h>
#include <string.h>

#define EVALUATE_FROM_MAX 16        /* From values handed to DMARC; more are joined into the last */

struct evaluation {
	const struct checkers *checkers;
	const struct config *config;
	struct evaluation_input in;
	struct message_verdict v;
	bool arc_vouch_done;              /* evaluate_arc_vouch looked */
};

/* evaluation_alloc - a zeroed evaluation but for the bulk of the DMARC,
 * ARC and DKIM outcomes, which dmarc_outcome_init, arc_outcome_init and
 * dkim_outcome_init make empty: the DMARC outcome's discovery text and
 * per-author results, the ARC_SETS_MAX set results and the
 * DKIM_SIGNATURES_MAX signature results are nine tenths of the structure,
 * and clearing them for every message (most have one From domain, one
 * signature and no ARC set) cost 4 % of a message's instructions. */
static struct evaluation *evaluation_alloc(void)
{
	struct evaluation *ev = g_new(struct evaluation, 1);
	char *bytes = (char *)ev;
	size_t hole_at = offsetof(struct evaluation, v.dmarc) + offsetof(struct dmarc_outcome, discovery_text);
	size_t hole_end = offsetof(struct evaluation, v.dkim) + sizeof(ev->v.dkim);

	/* The hole is one stretch: DMARC's bulk, then ARC, then DKIM. */
	G_STATIC_ASSERT(offsetof(struct evaluation, v.arc) >=
			offsetof(struct evaluation, v.dmarc) + sizeof(struct dmarc_outcome));
	G_STATIC_ASSERT(offsetof(struct evaluation, v.dkim) >=
			offsetof(struct evaluation, v.arc) + sizeof(struct arc_outcome));
	memset(bytes, 0, hole_at);    /* dmarc_outcome_init's part included */
	memset(bytes + hole_end, 0, sizeof(*ev) - hole_end);
	arc_outcome_init(&ev->v.arc);
	dkim_outcome_init(&ev->v.dkim);
	return ev;
}

struct evaluation *evaluation_new(const struct checkers *checkers, const struct config *config,
				  const struct evaluation_input *in)
{
	struct evaluation *ev = evaluation_alloc();

	ev->checkers = checkers;
	ev->config = config;
	ev->in = *in;
	facts_decide(config, in->block, in->xforward, in->cli, &ev->v.facts);
	return ev;
}

void evaluation_free(struct evaluation **evp)
{
	if (*evp != NULL)
		arc_outcome_clear(&(*evp)->v.arc);
	g_free(*evp);
	*evp = NULL;
}

static bool evaluate_spf_applies(const struct conn_facts *c)
{
	return c->source != FACTS_NONE && !c->all_trusted && !c->authenticated;
}

static void evaluate_spf(struct evaluation *ev)
{
	struct message_verdict *v = &ev->v;

	if (v->evaluated & CHECK_SPF)
		return;
	v->evaluated |= CHECK_SPF;
	if (!evaluate_spf_applies(&v->facts))
		return;
	if (spf_check(ev->checkers->spf, v->facts.client_ip, v->facts.helo, ev->in.mail_from, &v->spf_mailfrom,
		      &v->spf_helo) < 0) {
		v->spf_mailfrom.result = VERDICT_TEMPERROR;
		g_strlcpy(v->spf_mailfrom.reason, "internal error", sizeof(v->spf_mailfrom.reason));
	}
	v->spf_ran = true;
}

static void evaluate_dkim(struct evaluation *ev)
{
	struct dkim_outcome *d = &ev->v.dkim;
	char *error = NULL;

	if (ev->v.evaluated & CHECK_DKIM)
		return;
	ev->v.evaluated |= CHECK_DKIM;
	if (dkim_verify_message(ev->checkers->dkim, dkim_spool_read, ev->in.spool, spool_size(ev->in.spool), d,
				&error) < 0) {
		/* Not "none": there may be signatures we could not check. */
		log_warning("dkim error=\"%s\"", error != NULL ? error : "?");
		dkim_outcome_init(d);
		dkim_outcome_set_one(d, VERDICT_TEMPERROR, "verification failed");
		g_free(error);
	}
}

static bool evaluate_domain_is_ours(void *ctx, const char *domain)
{
	return config_has_domain(ctx, domain);
}

/* evaluate_from_names_ours - for a broken From: is one domain it names
 * ours? Read by DMARC's own scan, never by an address parser: a broken
 * From is exactly what an attacker shapes to break parsers (GMime's
 * recursion on nested groups overflows the stack). */
static bool evaluate_from_names_ours(const struct config *config, char *const *from, size_t count)
{
	return dmarc_from_names(from, count, evaluate_domain_is_ours, (void *)config);
}

/* evaluate_dmarc_input - DMARC's input from the SPF and DKIM results. */
static void evaluate_dmarc_input(const struct message_verdict *v, char *const *from, size_t from_count,
				 enum verdict *dkim_results, char **dkim_domains, struct dmarc_input *in_r)
{
	const struct spf_outcome *spf = &v->spf_mailfrom;

	for (size_t i = 0; i < v->dkim.count; i++) {
		dkim_results[i] = v->dkim.sigs[i].result;
		dkim_domains[i] = (char *)v->dkim.sigs[i].domain;
	}
	*in_r = (struct dmarc_input){
		.from_values = from, .from_count = from_count,
		.spf_result = v->spf_ran ? spf->result : VERDICT_NONE,
		.spf_domain = v->spf_ran ? spf->domain : NULL,
		.spf_is_helo = v->spf_ran && g_strcmp0(spf->identity, "helo") == 0,
		.dkim_count = v->dkim.count, .dkim_results = dkim_results, .dkim_domains = dkim_domains,
		.client_ip = v->facts.client_ip[0] ? v->facts.client_ip : NULL,
	};
}


/* evaluate_from_values - the From fields as Dovecot reads them (by its
 * reading of names, NUL bytes as spaces): a domain hidden from us must be
 * hidden from Sieve too. Fields past EVALUATE_FROM_MAX are joined to the
 * last value, so DMARC still scans every domain they name. */
static size_t evaluate_from_values(const struct header_block *block, char **from)
{
	GString *last = NULL;
	size_t count = 0;

	for (size_t i = 0; i < block->count; i++) {
		const struct raw_header *h = &block->headers[i];
		char *value;

		if (!header_name_reads_as(h, "From"))
			continue;
		value = header_value_unfold(h);
		if (count < EVALUATE_FROM_MAX - 1)
			from[count++] = value;
		else {
			last = last == NULL ? g_string_new(NULL) : g_string_append_c(last, ',');
			g_string_append(last, value);
			g_free(value);
		}
	}
	if (last != NULL)
		from[count++] = g_string_free(last, FALSE);
	return count;
}

static void evaluate_dmarc(struct evaluation *ev)
{
	struct message_verdict *v = &ev->v;
	const struct header_block *block = ev->in.block;
	char *from[EVALUATE_FROM_MAX];
	size_t from_count = 0;
	enum verdict dkim_results[DKIM_SIGNATURES_MAX];
	char *dkim_domains[DKIM_SIGNATURES_MAX];
	struct dmarc_input in;

	if (v->evaluated & CHECK_DMARC)
		return;
	v->evaluated |= CHECK_DMARC;
	evaluate_spf(ev);
	if (v->facts.authenticated) {
		/* A message our MTA accepted after authentication is our user's:
		 * rendered "dmarc=none (authenticated submission)", no disposition. */
		dmarc_outcome_init(&v->dmarc);
		v->dmarc.result = VERDICT_NONE;
		g_strlcpy(v->dmarc.reason, "authenticated submission", sizeof(v->dmarc.reason));
		return;
	}
	evaluate_dkim(ev);
	from_count = evaluate_from_values(block, from);
	evaluate_dmarc_input(v, from, from_count, dkim_results, dkim_domains, &in);
	if (dmarc_check(ev->checkers->dmarc, &in, &v->dmarc) < 0) {
		v->dmarc.result = VERDICT_TEMPERROR;
		g_strlcpy(v->dmarc.reason, "internal error", sizeof(v->dmarc.reason));
	}
	if (v->dmarc.from_invalid)
		v->from_names_ours = evaluate_from_names_ours(ev->config, from, from_count);
	for (size_t i = 0; i < from_count; i++)
		g_free(from[i]);
}

static void evaluate_arc(struct evaluation *ev)
{
	struct arc_outcome *a = &ev->v.arc;
	char *error = NULL;

	if (ev->v.evaluated & CHECK_ARC)
		return;
	ev->v.evaluated |= CHECK_ARC;
	/* On -1 the outcome is temperror: never a pass on a read failure. */
	/* The DKIM body hashes, when DKIM ran first, spare hashing the body again. */
	const struct dkim_body_digests *known = (ev->v.evaluated & CHECK_DKIM) ? &ev->v.dkim.digests : NULL;

	if (arc_verify_message_reusing(ev->checkers->arc, dkim_spool_read, ev->in.spool, spool_size(ev->in.spool),
				       known, a, &error) < 0) {
		log_warning("arc error=\"%s\"", error != NULL ? error : "?");
		g_free(error);
	}
}

/* evaluate_aligned - an AAR's SPF or DKIM identifier aligned with the From
 * domain as the From domain's policy asks: the same name under aspf=s /
 * adkim=s, else the same organisational domain. */
static bool evaluate_aligned(void *ctx, const char *method, const char *a, const char *b)
{
	const struct evaluation *ev = ctx;
	const struct dmarc_checker *dmarc = ev->checkers->dmarc;
	char mode = strcmp(method, "spf") == 0 ? ev->v.dmarc.aspf : ev->v.dmarc.adkim;
	char org_a[DMARC_DOMAIN_MAX], org_b[DMARC_DOMAIN_MAX];

	if (g_ascii_strcasecmp(a, b) == 0)
		return true;
	if (mode == 's')
		return false;
	return dmarc_organizational_domain(dmarc, a, org_a, sizeof(org_a)) == 0 &&
	       dmarc_organizational_domain(dmarc, b, org_b, sizeof(org_b)) == 0 && strcmp(org_a, org_b) == 0;
}

/* evaluate_arc_vouch - once ARC and DMARC both ran: does the newest AAR
 * of a passing chain vouch for the From domain? */
static void evaluate_arc_vouch(struct evaluation *ev)
{
	struct message_verdict *v = &ev->v;
	const char *aar = v->arc.newest_aar;

	if ((v->evaluated & (CHECK_ARC | CHECK_DMARC)) != (CHECK_ARC | CHECK_DMARC) || ev->arc_vouch_done)
		return;
	ev->arc_vouch_done = true;
	if (v->arc.result != VERDICT_PASS || aar == NULL || v->dmarc.header_from[0] == '\0')
		return;
	v->arc_vouches = arc_aar_vouches(aar, strlen(aar), v->dmarc.header_from, evaluate_aligned,
					 ev, v->arc_vouched_by, sizeof(v->arc_vouched_by));
}

const struct message_verdict *evaluation_run(struct evaluation *ev, unsigned checks)
{
	if (checks & CHECK_SPF)
		evaluate_spf(ev);
	if (checks & CHECK_DKIM)
		evaluate_dkim(ev);
	if (checks & CHECK_DMARC)
		evaluate_dmarc(ev);
	if (checks & CHECK_ARC)
		evaluate_arc(ev);
	evaluate_arc_vouch(ev);
	return &ev->v;
}

const struct message_verdict *evaluation_verdict(const struct evaluation *ev)
{
	return &ev->v;
}
