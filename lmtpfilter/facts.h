/*
 * facts - who handed us the message: the client's address, HELO, reverse
 * name and authentication, from Postfix's XFORWARD, from the Received
 * trail our own MTAs wrote, or from the options of "lmtpfilter check"
 */
#ifndef LMTPFILTER_FACTS_H
#define LMTPFILTER_FACTS_H

#include <stdbool.h>

#include "mime/trail.h"

struct config;

/* What Postfix told us with XFORWARD (RFC-less Postfix extension). */
struct xforward {
	bool present;
	char name[256], addr[64], port[8], proto[16], helo[256], ident[64], source[8];
};

/* facts_decide - the connection facts of a message: cli (the options of
 * "check", source FACTS_OPTIONS) when given, else XFORWARD when it names a
 * client outside trusted_networks, else the trail (block). Whichever it
 * is, the authenticated-submission flag comes from the trail only (see
 * facts.c). xforward and cli may be NULL. */
void facts_decide(const struct config *config, const struct header_block *block, const struct xforward *xforward,
		  const struct conn_facts *cli, struct conn_facts *facts_r);

/* facts_source_name - "xforward", "trail", "options" or "none". */
const char *facts_source_name(enum facts_source source);

#endif
