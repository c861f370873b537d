/*
 * facts - who handed us the message
 *
 * Owns: the choice between the three sources of connection facts
 * (XFORWARD, the Received trail, the command line of "check"), the rule
 * that decides an authenticated submission, and turning XFORWARD's
 * attributes into struct conn_facts. Addresses are normalised by
 * mime/ipaddr.c, the one helper every module uses.
 */
#include "lmtpfilter/facts.h"
#include "lmtpfilter/config.h"
#include "mime/ipaddr.h"

#include <glib.h>
#include <string.h>

#define FACTS_XFORWARD_UNKNOWN "unknown"   /* Postfix's NAME for a client without verified rDNS */

static bool facts_trusted_ip(void *ctx, const char *ip)
{
	return config_is_trusted_ip(ctx, ip);
}

/* facts_authenticated_submission - the one place that decides whether
 * the message is an authenticated submission, whichever way the facts
 * came. XFORWARD carries no authentication flag, so the sign is always the
 * Received line our MTA wrote for the border hop (trail_facts: our
 * authenticated protocol, never words the client could have put there);
 * when XFORWARD or the command line named the client, that line must be
 * about the same client. Then neither SPF nor DMARC applies. */
static void facts_authenticated_submission(struct conn_facts *c, const struct conn_facts *trail)
{
	c->authenticated = false;
	c->auth_user[0] = '\0';
	if (trail->source != FACTS_TRAIL || !trail->authenticated)
		return;
	if (c->source != FACTS_TRAIL && strcmp(trail->client_ip, c->client_ip) != 0)
		return;
	c->authenticated = true;
	g_strlcpy(c->auth_user, trail->auth_user, sizeof(c->auth_user));
}

/* facts_from_xforward - XFORWARD's client as connection facts. */
static void facts_from_xforward(const struct xforward *xf, struct conn_facts *c)
{
	memset(c, 0, sizeof(*c));
	c->source = FACTS_XFORWARD;
	if (ipaddr_normalise(xf->addr, strlen(xf->addr), c->client_ip, sizeof(c->client_ip)) < 0)
		g_strlcpy(c->client_ip, xf->addr, sizeof(c->client_ip));
	g_strlcpy(c->helo, xf->helo, sizeof(c->helo));
	if (g_ascii_strcasecmp(xf->name, FACTS_XFORWARD_UNKNOWN) != 0)
		g_strlcpy(c->rdns, xf->name, sizeof(c->rdns));
}

void facts_decide(const struct config *config, const struct header_block *block, const struct xforward *xf,
		  const struct conn_facts *cli, struct conn_facts *facts_r)
{
	struct conn_facts trail;

	trail_facts(block, config->mta_hostnames, config->mta_hostname_count, facts_trusted_ip, (void *)config,
		    &trail);
	if (cli != NULL)
		*facts_r = *cli;
	else if (xf == NULL || xf->addr[0] == '\0' || config_is_trusted_ip(config, xf->addr))
		*facts_r = trail;   /* no XFORWARD, or it names a relay we trust: the trail knows more */
	else
		facts_from_xforward(xf, facts_r);
	facts_authenticated_submission(facts_r, &trail);
}

const char *facts_source_name(enum facts_source source)
{
	switch (source) {
	case FACTS_XFORWARD: return "xforward";
	case FACTS_TRAIL: return "trail";
	case FACTS_OPTIONS: return "options";
	case FACTS_NONE: break;
	}
	return "none";
}
