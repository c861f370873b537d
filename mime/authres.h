/*
 * authres - the Authentication-Results (RFC 8601) and Received-SPF
 * (RFC 7208 9.1) fields lmtpfilter writes: a builder the SPF, DKIM and
 * DMARC checks add results to, and renderers that quote, escape and fold.
 */
#ifndef LMTPFILTER_MIME_AUTHRES_H
#define LMTPFILTER_MIME_AUTHRES_H

#include <glib.h>

#include "mime/verdict.h"

/* lines are folded before this many characters where possible */
#define AUTHRES_LINE_MAX 78
/* results kept per field; further authres_add calls are ignored */
#define AUTHRES_RESULTS_MAX 32
/* bytes kept of one comment or value after sanitising */
#define AUTHRES_TEXT_MAX 1024

struct authres;

/* authres_new - an empty builder for authserv_id (quoted if not a token) */
struct authres *authres_new(const char *authserv_id);
void authres_free(struct authres **ar);

/* authres_add - one resinfo: method ("spf", "dkim", "dmarc", "auth"),
 * result, an optional comment (free text; rendered inside parentheses with
 * "(", ")" and "\" escaped, CR/LF/tab turned into spaces, other control
 * bytes removed), then NULL-terminated pairs of
 * property ("smtp.mailfrom", "header.d", ...) and value. A pair whose value
 * is NULL or "" is left out. Values are written bare when they are an RFC 2045
 * token or a plain [local-part]@domain, else as a quoted-string (control
 * bytes removed). The fields are ASCII, as parsers expect: an IDN domain
 * is written as its A-label, any other non-ASCII character as "?".
 * Method and property names keep only [A-Za-z0-9._-]. */
void authres_add(struct authres *ar, const char *method, enum verdict result, const char *comment, ...)
	G_GNUC_NULL_TERMINATED;

/* authres_count - number of results added so far */
unsigned int authres_count(const struct authres *ar);

/* authres_render - the whole field, g_malloc'd:
 * "Authentication-Results: id;\r\n\tspf=fail smtp.mailfrom=...;\r\n\tdkim=...\r\n"
 * one result per tab-indented line, folded with CRLF TAB before
 * AUTHRES_LINE_MAX columns where the parts allow it; "id; none" without
 * results (RFC 8601 2.2). */
char *authres_render(const struct authres *ar);

/* authres_id_same - whether the authserv-id a field claims (as
 * normalize_authserv_id reads it) names the host ours names: white space
 * at either end and trailing dots ignored ("mail.example.com." is a fully
 * qualified mail.example.com), ASCII case ignored (RFC 8601 2.5: ids
 * compare case-insensitively), and an internationalised name (RFC 8616)
 * compared as its A-label, so a U-label cannot pass for ours unnoticed.
 * An empty id is never the same. */
gboolean authres_id_same(const char *claimed, const char *ours);

struct received_spf {
	enum verdict result;
	const char *receiver;       /* our authserv-id; NULL to leave out */
	const char *client_ip;
	const char *envelope_from;  /* MAIL FROM as checked; "" for the null sender */
	const char *helo;
	const char *identity;       /* "mailfrom" or "helo" */
	const char *mechanism;      /* the matching mechanism, NULL when unknown */
	const char *comment;        /* NULL: the usual text for the result */
};

/* received_spf_render - the whole field, g_malloc'd, RFC 7208 9.1:
 * "Received-SPF: fail (receiver: domain of X does not designate IP as
 * permitted sender) client-ip=IP; envelope-from="X"; helo=H;
 * receiver=R; mechanism=M; identity=mailfrom\r\n", keys with a NULL value
 * left out, values as dot-atom or quoted-string, folded like
 * authres_render. A given comment replaces the usual text (still
 * prefixed with "receiver: "). */
char *received_spf_render(const struct received_spf *r);

#endif
