/*
 * ipaddr - the one textual form of a client address, whoever wrote it
 *
 * XFORWARD, Received address literals, the command line, trusted_networks
 * matching and SPF all hand IP addresses around as text. They agree on one
 * form: IPv4 dotted, IPv6 as inet_ntop writes it, Postfix's "IPv6:" prefix
 * removed and an IPv4-mapped IPv6 address (::ffff:a.b.c.d) written as the
 * IPv4 address it carries.
 */
#ifndef LMTPFILTER_MIME_IPADDR_H
#define LMTPFILTER_MIME_IPADDR_H

#include <stddef.h>

/* Bytes of the longest normalised address with its NUL (INET6_ADDRSTRLEN). */
#define IPADDR_TEXT_MAX 46

/* ipaddr_normalise - the first len bytes of text ("1.2.3.4", "IPv6:2001:db8::1",
 * "::ffff:192.0.2.1") in the normalised form, into out (size bytes).
 * After "IPv6:" only an IPv6 address is one. Returns 0, or -1 when it is
 * not an address or does not fit. */
int ipaddr_normalise(const char *text, size_t len, char *out, size_t size);

#endif
