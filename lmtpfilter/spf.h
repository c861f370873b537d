/*
 * spf - SPF (RFC 7208) with libspf2, on our own DNS source
 *
 * One checker per process, shared by every thread. Every DNS lookup of an
 * evaluation goes through a struct dns_source (the resolver in the daemon, an
 * in-memory zone in the conformance harness), where the wrapper also does
 * what libspf2 lacks: the RFC 7208 processing limits across includes, the
 * void-lookup limit, a strict record syntax check, no exp= lookups.
 */
#ifndef LMTPFILTER_SPF_H
#define LMTPFILTER_SPF_H

#include <stddef.h>

#include "lmtpfilter/dns_source.h"
#include "mime/verdict.h"

#define SPF_DNS_MECHANISMS_MAX 10   /* RFC 7208 4.6.4: DNS-querying terms per evaluation */
#define SPF_VOID_LOOKUPS_MAX 2      /* RFC 7208 4.6.4: lookups answered NXDOMAIN / NODATA */

struct spf_outcome {
	enum verdict result;
	const char *identity;      /* "mailfrom" or "helo" */
	char domain[256];          /* the domain whose policy was checked */
	char sender[512];          /* the checked identity: user@domain or postmaster@helo */
	char mechanism[128];       /* the term that decided, "" when unknown */
	char reason[256];          /* short text for the Authentication-Results comment */
};

struct spf_checker;

/* spf_checker_new - receiver is our host name (authserv-id), used in
 * libspf2's texts. *dns is copied. 0, or -1 with *error_r (g_malloc'd). */
int spf_checker_new(const struct dns_source *dns, const char *receiver, struct spf_checker **checker_r,
		    char **error_r);
void spf_checker_free(struct spf_checker **checker);

/* spf_check - evaluate the MAIL FROM identity (the null sender is
 * postmaster@HELO: the HELO identity) for client_ip; helo_r gets the HELO
 * identity's result when the MAIL FROM identity was the HELO one, else
 * VERDICT_NONE ("not checked"). Returns 0, or -1 for unusable arguments
 * (then mailfrom_r is permerror or none with a reason). */
int spf_check(struct spf_checker *checker, const char *client_ip, const char *helo, const char *mail_from,
	      struct spf_outcome *mailfrom_r, struct spf_outcome *helo_r);

/* spf_record_check - the strict RFC 7208 syntax check applied to every
 * record; 0, or -1 with *error_r (g_malloc'd; exposed for tests). */
int spf_record_check(const char *record, char **error_r);

#endif
