/*
 * from - the addresses of an RFC 5322 From field, by GMime's address parser
 *
 * One From value (folded, possibly RFC 2047 encoded) goes through GMime's
 * parser (groups, comments, encoded words) only within the bounds that
 * parser survives; the result is plain C: the domain of each mailbox, in
 * order, and why the reading stopped, if it did. What the domains mean
 * (DMARC's Author Domain) is the caller's business.
 *
 * from_init before the first call (it initialises GMime); after that
 * from_parse is thread-safe.
 */
#ifndef LMTPFILTER_MIME_FROM_H
#define LMTPFILTER_MIME_FROM_H

#include <stddef.h>

/* Bounds on what GMime's address parser is given: it recurses once per
 * group level (no limit of its own; 3,000 levels in 9 KB overflow a
 * worker's stack) and its cost grows with the field. A From beyond them,
 * or with a comment that never closes (from.c explains), is not parsed. */
#define FROM_FIELD_MAX 16384      /* raw From bytes; real ones are < 1 KB */
#define FROM_COLONS_MAX 32        /* ':' anywhere in it, >= group depth; real: 0-3 */
#define FROM_ADDRESSES_MAX 64     /* mailboxes in the From field */
#define FROM_GROUP_DEPTH_MAX 2    /* groups inside groups (GMime is lenient) */

struct from_list {
	char **domains;           /* each mailbox's domain: as written when ASCII, else A-labels */
	size_t count;
};

/* from_init - initialise GMime for from_parse; call at startup, before
 * threads (GMime counts the calls, so more than one is harmless). */
void from_init(void);

/* from_parse - the mailboxes of VALUE into *list_r (from_list_clear it
 * either way). Returns 0, or -1 with *error_r (g_malloc'd: over a bound,
 * unparsable, a mailbox without a domain, too many mailboxes, nested
 * groups); list_r then holds the mailboxes read before the one that
 * stopped it, in order. */
int from_parse(const char *value, struct from_list *list_r, char **error_r);

/* from_list_clear - free what a list holds; safe twice. */
void from_list_clear(struct from_list *list);

#endif
