/*
 * metrics - the daemon's counters and histograms, and their Prometheus text
 *
 * Sessions record with relaxed atomic additions on process-wide counters:
 * no lock, nothing a scrape can hold up. Rendering (metrics_render) reads
 * the same atomics; the only lock is the domain registry's, taken by
 * metrics_config (start and SIGHUP) and by rendering, never on the mail path.
 *
 * Domain labels are the [domain NAME] groups of the configurations loaded
 * so far (slots handed out by metrics_config, kept across reloads so that
 * counters stay monotonic) and "default": never a name taken from mail.
 *
 * Nothing is recorded until metrics_set_enabled(true) (the daemon with
 * metrics_listen set): without an endpoint the mail path pays nothing.
 */
#ifndef LMTPFILTER_METRICS_H
#define LMTPFILTER_METRICS_H

#include "lmtpfilter/config.h"
#include "lmtpfilter/disposition.h"
#include "mime/verdict.h"

#include <glib.h>
#include <stdbool.h>

/* Slots of distinct domain names over the process's life (every reload
 * adds its new names); a name past the limit counts as "default". */
#define METRICS_DOMAIN_SLOTS (CONFIG_DOMAIN_MAX + 1)
/* Room for the modes a domain may have (off, annotate, observe, one more). */
#define METRICS_MODES 4
/* The disposition reasons that quarantine (enum disposition_reason 1..4). */
#define METRICS_QUARANTINE_REASONS 4

enum metrics_action {
	METRICS_DELIVER = 0,   /* Dovecot's 2xx, no quarantine */
	METRICS_QUARANTINE,    /* Dovecot's 2xx with the disposition quarantine */
	METRICS_DEFER,         /* any 4xx we relayed or made */
	METRICS_REJECT,        /* any 5xx, at RCPT or after DATA */
	METRICS_ACTION_COUNT
};

enum metrics_method { METRICS_SPF = 0, METRICS_DKIM, METRICS_DMARC, METRICS_ARC, METRICS_METHOD_COUNT };
#define METRICS_VERDICT_COUNT (VERDICT_POLICY + 1)

/* The first four in the order of resolver.h's enum dns_status (TEMPFAIL is
 * an error), so that a status converts as it is. */
enum metrics_dns_outcome {
	METRICS_DNS_ANSWER = 0, METRICS_DNS_NXDOMAIN, METRICS_DNS_NODATA, METRICS_DNS_ERROR, METRICS_DNS_TIMEOUT,
	METRICS_DNS_OUTCOME_COUNT
};

enum metrics_downstream_reason {
	METRICS_DOWNSTREAM_CONNECT = 0,  /* connect, greeting or LHLO failed */
	METRICS_DOWNSTREAM_TIMEOUT,      /* no reply within timeout */
	METRICS_DOWNSTREAM_DISCONNECT,   /* Dovecot closed the connection */
	METRICS_DOWNSTREAM_IO,           /* read/write error */
	METRICS_DOWNSTREAM_PROTOCOL,     /* malformed or over-long reply, refused RSET, spool read */
	METRICS_DOWNSTREAM_REASON_COUNT
};

/* metrics_set_enabled - start (or stop) recording. */
void metrics_set_enabled(bool enabled);

/* metrics_config - give each [domain] group of config its counter slot
 * (config->domains[i].metrics_slot); call before config is shared. */
void metrics_config(struct config *config);

/* metrics_recipient - count one recipient's fate; slot from its policy. */
void metrics_recipient(unsigned slot, enum domain_mode mode, enum metrics_action action);

/* metrics_recipient_reply - count the recipient of this domain policy
 * whose final reply (code) went to the client: 2xx deliver, or quarantine
 * when reason (its group's disposition; in observe mode what annotate
 * would do) quarantines, also counted by reason; 4xx defer; 5xx reject. */
void metrics_recipient_reply(const struct domain_policy *policy, int code, enum disposition_reason reason);

/* metrics_result - one evaluated message's result for method (per
 * signature for dkim, none when unsigned). */
void metrics_result(enum metrics_method method, enum verdict result);

/* metrics_dns - one lookup sent to the resolver ended with outcome,
 * started_us being g_get_monotonic_time() when it was sent. */
void metrics_dns(enum metrics_dns_outcome outcome, gint64 started_us);
/* metrics_dns_unsent_error - a lookup failed without being sent (the
 * servers are held down as dead): an error, with no latency observed. */
void metrics_dns_unsent_error(void);

/* metrics_transaction - one mail transaction (MAIL to its end) took ms. */
void metrics_transaction(long long ms);

/* metrics_downstream_failure - a downstream connection failed first in
 * step what ("connect", "LHLO", "DATA", ...) because of why (netio's text). */
void metrics_downstream_failure(const char *what, const char *why);

/* metrics_sessions_add - the number of running sessions changed by delta. */
void metrics_sessions_add(int delta);
/* metrics_session_refused - a connection was turned away with 421. */
void metrics_session_refused(void);

/* metrics_render - append every family in the text format 0.0.4 to out. */
void metrics_render(GString *out);

#endif
