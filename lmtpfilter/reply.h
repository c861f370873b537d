/*
 * reply - SMTP/LMTP reply lines: formatting ours, parsing Dovecot's
 *
 * Reply syntax is RFC 5321 section 4.2, enhanced status codes RFC 3463 /
 * RFC 2034.
 */
#ifndef LMTPFILTER_REPLY_H
#define LMTPFILTER_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define REPLY_LINE_MAX 512   /* longest reply line, CRLF included (RFC 5321 4.5.3.1.5) */
#define REPLY_ENHANCED_MAX 16 /* "5.123.123" and its NUL fit easily */

/* reply_format - "250 2.1.0 Ok\r\n" into buf, NUL-terminated; enhanced may
 * be NULL or ""; text may be NULL. CR, LF and other control characters in
 * text become spaces, and the line is cut (at a UTF-8 character boundary)
 * to REPLY_LINE_MAX bytes and to what buf holds, always ending in CRLF.
 * A code outside 200..599 is sent as 451. Returns the length, 0 if buf
 * cannot hold even the code and CRLF. */
size_t reply_format(char *buf, size_t size, int code, const char *enhanced, const char *text);

/* reply_format_multi - multi-line reply ("250-a\r\n250-b\r\n250 c\r\n")
 * from lines[] (used for LHLO), each line treated as in reply_format. If buf
 * cannot hold all of them, trailing lines are dropped and the last one that
 * fits ends the reply. count 0 gives a single "250\r\n". Returns the length. */
size_t reply_format_multi(char *buf, size_t size, int code, const char *const *lines, size_t count);

/* A reply read from the downstream LMTP server (Dovecot). */
struct lmtp_reply {
	int code;
	char enhanced[REPLY_ENHANCED_MAX];  /* "" if none */
	char text[REPLY_LINE_MAX];          /* after the enhanced code */
	bool last;                          /* "250 " rather than "250-" */
};

/* reply_parse_line - parse one reply line (without CRLF), or the start of
 * one too long to be read whole: "250-…", "250 …" or a bare "250"; sets
 * last. The line may have any length: only its code is checked strictly.
 * An enhanced status code (class.subject.detail) at the start of the text
 * is split off when its class (2, 4 or 5) matches the code's first digit;
 * otherwise the text is kept whole. In the text, control characters (NUL,
 * CR and LF included) become spaces and bytes that are not UTF-8 become
 * '?'; it is cut, at a character boundary, to what the text buffer holds.
 * Returns 0, or -1 for a malformed line: no 3-digit code in 200..599, or a
 * byte other than ' ' or '-' after it. */
int reply_parse_line(const char *line, size_t len, struct lmtp_reply *reply_r);

/* reply_set - fill reply_r with a reply of our own (a single, last line). */
void reply_set(struct lmtp_reply *reply_r, int code, const char *enhanced, const char *text);

#endif
