/*
 * config - the daemon's configuration (GKeyFile, see SPEC.md)
 *
 * config_load() parses and validates one file into a struct config, which is
 * immutable afterwards and shared by reference: SIGHUP builds a new one and
 * new connections take it, running ones keep theirs until they end.
 * Every key has a default; problems are reported as "FILE: [group] key: problem".
 */
#ifndef LMTPFILTER_CONFIG_H
#define LMTPFILTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum domain_mode {
	DOMAIN_MODE_OFF = 0,    /* recipient gets the bytes Postfix sent */
	DOMAIN_MODE_ANNOTATE,   /* forged results removed, our headers added */
};

enum check_flags {
	CHECK_SPF = 1 << 0,
	CHECK_DKIM = 1 << 1,
	CHECK_DMARC = 1 << 2,
};

struct domain_policy {
	char *domain;          /* lower case; NULL for [defaults] */
	enum domain_mode mode;
	unsigned checks;       /* enum check_flags */
};

/* An IPv4 or IPv6 network; IPv4 is stored as IPv4 (family AF_INET). */
struct netaddr {
	int family;            /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

struct endpoint {
	bool is_unix;
	char *path;            /* unix */
	char *host;            /* inet: host without brackets */
	char *port;            /* inet */
};

struct config {
	char *file;

	struct endpoint *listen;        size_t listen_count;
	unsigned listen_mode;           /* octal, e.g. 0660 */
	struct endpoint downstream;
	char *authserv_id;
	char **authserv_id_aliases;     size_t authserv_id_alias_count;
	char **mta_hostnames;           size_t mta_hostname_count;
	struct netaddr *trusted_networks; size_t trusted_network_count;
	bool xforward;
	char **dns_servers;             size_t dns_server_count;   /* "IP" or "IP@PORT" */
	unsigned dns_timeout;           /* seconds */
	size_t max_message_size;
	unsigned max_connections;
	unsigned max_recipients;
	unsigned timeout;               /* seconds */
	char *spool_dir;
	size_t spool_memory_limit;

	struct domain_policy defaults;
	struct domain_policy *domains;  size_t domain_count;

	int refcount;
};

/* config_load - parse and validate FILE; on failure *error_r is a g_malloc'd
 * text naming file, group, key and problem (several lines if several). */
int config_load(const char *file, struct config **config_r, char **error_r);
/* config_defaults - a configuration with every default (no file). */
struct config *config_defaults(void);

struct config *config_ref(struct config *config);
void config_unref(struct config **config);

/* config_policy_for - the policy of the recipient address's domain
 * (exact domain match, case-insensitive; else [defaults]). */
const struct domain_policy *config_policy_for(const struct config *config, const char *address);

/* netaddr helpers */
int netaddr_parse(const char *text, struct netaddr *net_r);      /* "a.b.c.d[/n]" or "v6[/n]"; 0/-1 */
/* netaddr_contains - is the address (AF_INET 4 bytes / AF_INET6 16 bytes,
 * IPv4-mapped IPv6 counts as IPv4) inside one of the networks? */
bool netaddr_list_contains(const struct netaddr *nets, size_t count, int family, const void *addr);
bool config_is_trusted_ip(const struct config *config, const char *ip_text);

#endif
