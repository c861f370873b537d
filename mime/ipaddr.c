/*
 * ipaddr - the one textual form of a client address, whoever wrote it
 *
 * Owns: the normalisation every module applies before comparing or
 * printing an address (see ipaddr.h).
 */
#include "mime/ipaddr.h"

#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#define IPADDR_V6_PREFIX "IPv6:"   /* Postfix's marker for an IPv6 literal */

int ipaddr_normalise(const char *text, size_t len, char *out, size_t size)
{
	char buf[IPADDR_TEXT_MAX + sizeof(IPADDR_V6_PREFIX)];
	struct in6_addr a6;
	struct in_addr a4;
	size_t plen = strlen(IPADDR_V6_PREFIX);
	bool v6_only = false;

	if (text == NULL || out == NULL)
		return -1;
	if (len >= plen && g_ascii_strncasecmp(text, IPADDR_V6_PREFIX, plen) == 0) {
		text += plen;
		len -= plen;
		v6_only = true;   /* "IPv6:1.2.3.4" is no address (RFC 5321 4.1.3) */
	}
	if (len >= sizeof(buf) || memchr(text, '\0', len) != NULL)
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (!v6_only && inet_pton(AF_INET, buf, &a4) == 1)
		return inet_ntop(AF_INET, &a4, out, (socklen_t)size) != NULL ? 0 : -1;
	if (inet_pton(AF_INET6, buf, &a6) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[12], sizeof(a4));
		return inet_ntop(AF_INET, &a4, out, (socklen_t)size) != NULL ? 0 : -1;
	}
	return inet_ntop(AF_INET6, &a6, out, (socklen_t)size) != NULL ? 0 : -1;
}
