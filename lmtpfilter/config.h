/*
 * config - the daemon's configuration (GKeyFile, see SPEC.md)
 *
 * config_load() parses and validates one file into a struct config, which is
 * immutable afterwards and shared by reference: SIGHUP builds a new one and
 * new connections take it, running ones keep theirs until they end.
 * Every key has a default; problems are reported as "FILE: [group] key: problem".
 *
 * Syntax is GLib's GKeyFile (INI) with one addition: a ';' preceded by a space
 * or tab starts a comment that runs to the end of the line, as in the sample
 * file ("dns_timeout = 5   ; seconds"); a line whose first non-blank byte is
 * ';' or '#' is a comment. A ';' NOT preceded by blank space is GKeyFile's
 * list separator, so "127.0.0.0/8;::1/128" stays a two-item list; write list
 * items without a blank before the ';' (blanks after it are fine). Items of
 * lists are trimmed and empty items are ignored.
 *
 * Groups: [lmtpfilter] (daemon settings), [defaults] (policy of every domain
 * without its own group), [domain NAME] (policy of NAME, lower-cased; keys it
 * does not set come from [defaults], wherever that group is in the file).
 * Unknown groups, unknown keys, keys set twice and bad values are errors;
 * config_load() reports all of them, one per line, in file order.
 *
 * Empty values: listen = (nothing to listen on unless systemd passes sockets),
 * authserv_id_aliases =, trusted_networks = (trust nobody), dns_servers =
 * (use /etc/resolv.conf), checks = (no checks), arc_trusted_sealers = (trust
 * no sealer), dmarc_history = (no history), report_email = (no reports),
 * metrics_listen = (no metrics endpoint) are meaningful; authserv_id =,
 * mta_hostnames = and report_org_name = mean "the default"; any other empty
 * value is an error.
 */
#ifndef LMTPFILTER_CONFIG_H
#define LMTPFILTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Limits on what a configuration may contain. */
#define CONFIG_FILE_MAX_BYTES (16u * 1024 * 1024)
#define CONFIG_LISTEN_MAX 16              /* listen endpoints */
#define CONFIG_LIST_MAX 1024              /* items of any other list */
#define CONFIG_DOMAIN_MAX 100000          /* [domain NAME] groups */
#define CONFIG_MESSAGE_SIZE_MIN 1024u
#define CONFIG_MESSAGE_SIZE_MAX 4294967295u
#define CONFIG_DNS_TIMEOUT_MAX 60u
#define CONFIG_TIMEOUT_MAX 3600u
#define CONFIG_CONNECTIONS_MAX 10000u
#define CONFIG_RECIPIENTS_MAX 100000u
#define CONFIG_LISTEN_MODE_MAX 0777u

enum domain_mode {
	DOMAIN_MODE_OFF = 0,    /* recipient gets the bytes Postfix sent */
	DOMAIN_MODE_ANNOTATE,   /* forged results removed, our headers added */
	DOMAIN_MODE_OBSERVE,    /* bytes as in off; verdict and disposition evaluated and logged */
};

enum check_flags {
	CHECK_SPF = 1 << 0,
	CHECK_DKIM = 1 << 1,
	CHECK_DMARC = 1 << 2,
	CHECK_ARC = 1 << 3,
};

/* Where DMARC policies and organisational domains are looked for. */
enum config_dmarc_discovery {
	CONFIG_DMARC_DISCOVERY_TREEWALK = 0,  /* RFC 9989 DNS tree walk */
	CONFIG_DMARC_DISCOVERY_PSL,           /* RFC 7489 with the public suffix list */
};

/* quarantine_on: which failures quarantine (see disposition.h). */
enum quarantine_flags {
	QUARANTINE_ON_DMARC = 1 << 0,   /* dmarc-quarantine, dmarc-reject */
	QUARANTINE_ON_SPF = 1 << 1,     /* spf-fail (From domain without DMARC policy) */
	QUARANTINE_ON_FROM = 1 << 2,    /* from-invalid */
};

struct domain_policy {
	char *domain;          /* lower case; NULL for [defaults] */
	enum domain_mode mode;
	unsigned checks;       /* enum check_flags */
	unsigned quarantine_on; /* enum quarantine_flags */
	unsigned metrics_slot; /* its counters (metrics_config); 0: those of "default" */
	/* arc_trusted_sealers of the group (or of [defaults]), lower case,
	 * NULL-terminated; the global list of [lmtpfilter] applies as well. */
	char **arc_trusted_sealers;
};

/* An IPv4 or IPv6 network; IPv4 is stored as IPv4 (family AF_INET), also when
 * written IPv4-mapped ("::ffff:10.0.0.0/104" is 10.0.0.0/8). */
struct netaddr {
	int family;            /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

/* "unix:/abs/path", "inet:HOST:PORT" or "inet:[IPv6]:PORT"; PORT is 1..65535. */
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
	unsigned timeout;               /* seconds: a whole command line, and each wait */
	unsigned data_timeout;          /* seconds: the whole DATA transfer, 354 to final dot */
	char *spool_dir;
	size_t spool_memory_limit;
	enum config_dmarc_discovery dmarc_discovery;
	char *dmarc_history;            /* NULL: no history, no reports */
	char *report_org_name;          /* NULL: the domain of report_email */
	char *report_email;             /* NULL: reports cannot be made */
	char *report_sendmail;          /* command line, program first */
	bool metrics_enabled;           /* metrics_listen set */
	struct endpoint metrics_listen; /* GET /metrics; only when metrics_enabled */
	char **arc_trusted_sealers;     /* lower case, NULL-terminated; every domain trusts these */

	struct domain_policy defaults;
	struct domain_policy *domains;  size_t domain_count;

	int refcount;                   /* atomic; see config_ref/config_unref */
};

/* config_load - parse and validate FILE into *config_r (refcount 1); returns
 * 0, or -1 with *error_r a g_malloc'd text of one line per problem, each
 * "FILE: [group] key: problem" (a missing or unreadable file, or a syntax
 * error, is one line naming the file). */
int config_load(const char *file, struct config **config_r, char **error_r);
/* config_defaults - a configuration with every default (no file; refcount 1). */
struct config *config_defaults(void);

/* config_ref - take one more reference (thread-safe); returns config. */
struct config *config_ref(struct config *config);
/* config_unref - drop the reference in *config and set *config to NULL; the
 * last reference frees it. NULL and *config == NULL are allowed. */
void config_unref(struct config **config);

/* config_policy_for - the policy of the recipient address's domain: the text
 * after the last '@', matched case-insensitively and exactly against the
 * [domain NAME] groups (no parent-domain matching); else [defaults], also for
 * NULL or an address without '@'. Never NULL; valid as long as config is. */
const struct domain_policy *config_policy_for(const struct config *config, const char *address);
/* config_policy_same - do recipients under policies a and b get the same
 * bytes and the same disposition (so one downstream transaction serves
 * both)? */
bool config_policy_same(const struct domain_policy *a, const struct domain_policy *b);

/* config_arc_sealer_trusted - does the policy trust the ARC sealer
 * domain (d= of an ARC-Seal; any case, trailing dot ignored): is it in the
 * global arc_trusted_sealers or in the policy's own list? Exact names: a
 * trusted lists.example.org does not make its subdomains trusted. */
bool config_arc_sealer_trusted(const struct config *config, const struct domain_policy *policy, const char *domain);

/* config_has_domain - is domain (any case, trailing dot ignored) one of the
 * [domain NAME] groups? */
bool config_has_domain(const struct config *config, const char *domain);
/* domain_mode_name - "off", "annotate", "observe". */
const char *domain_mode_name(enum domain_mode mode);

/* netaddr_parse - "a.b.c.d[/n]" or "IPv6[/n]" (no brackets, no zone); a bare
 * address is /32 or /128. IPv4-mapped IPv6 with n >= 96 becomes IPv4. Host
 * bits below the prefix are kept as written and ignored when matching.
 * Returns 0, or -1 if text is not such a network. */
int netaddr_parse(const char *text, struct netaddr *net_r);
/* netaddr_list_contains - is the address (family AF_INET with 4 bytes or
 * AF_INET6 with 16 bytes) inside one of the networks? An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is compared as the IPv4 address a.b.c.d, and only
 * against IPv4 networks, so "::/0" never covers IPv4 clients. */
bool netaddr_list_contains(const struct netaddr *nets, size_t count, int family, const void *addr);
/* config_is_trusted_ip - is the textual address (IPv4, IPv6, or IPv6 with
 * Postfix's "IPv6:" prefix) inside trusted_networks? False for anything
 * that is not an address. */
bool config_is_trusted_ip(const struct config *config, const char *ip_text);

#endif
