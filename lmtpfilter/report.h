/*
 * report - the "report" command: DMARC aggregate reports (RFC 9990) of one
 * finished UTC day, built from one or more history directories
 *
 * Per policy domain one report: rows grouped by source IP, disposition,
 * override reason, aligned results, identifiers and DKIM/SPF results; XML in
 * the RFC 9990 namespace, gzip-compressed, named
 * "receiver!policy-domain!begin!end.xml.gz". --out writes them; --send mails
 * each to every verified rua mailto: address with report_sendmail, once:
 * sent reports are remembered in DIR/YYYY-MM-DD.sent of the first history
 * directory, and a failed send is tried again by the next run.
 */
#ifndef LMTPFILTER_REPORT_H
#define LMTPFILTER_REPORT_H

#include <glib.h>
#include <stddef.h>

/* rua URIs used per policy domain; RFC 9989 asks for at least two. More are
 * ignored (and logged): each one is a mail we send. */
#define REPORT_RUA_MAX 4

/* report_rua_parse - the URIs of the rua= tag of a DMARC record (TXT text):
 * 0 and *uris_r (g_ptr_array of g_malloc'd strings, possibly empty), or -1
 * if the text is not a DMARC record (no leading v=DMARC1). */
int report_rua_parse(const char *record, GPtrArray **uris_r);
/* report_mailto - the address of a mailto: URI, percent-decoded, without
 * ?headers or an obsolete !size suffix; NULL if it is not a mailto: URI
 * with one plain address. g_malloc'd. */
char *report_mailto(const char *uri);
/* report_is_external - is the host of address outside org_domain (so the
 * _report._dmarc verification is needed)? */
gboolean report_is_external(const char *address, const char *org_domain);

/* report_main - "lmtpfilter -c FILE report ..."; returns the exit code. */
int report_main(const char *config_file, int argc, char **argv);

#endif
