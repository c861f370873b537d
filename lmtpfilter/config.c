/*
 * config - load, validate and share the daemon's configuration
 *
 * Reads the file (bounded by CONFIG_FILE_MAX_BYTES), blanks out "  ; comment"
 * tails so GKeyFile accepts the sample file, lets GKeyFile do the parsing,
 * then walks every group and key in file order: each known key has a
 * handler that validates its value and stores it; every problem becomes one
 * "FILE: [group] key: problem" line and loading goes on, so the administrator
 * sees all mistakes at once. The result is immutable and reference-counted.
 *
 * Owns: struct config and everything it points to.
 * Limits: see the CONFIG_* constants in config.h; domain names are ASCII
 * (A-labels), matched exactly (no wildcard or parent-domain matching).
 */
#include "lmtpfilter/config.h"
#include "mime/ipaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define CONFIG_DEFAULT_LISTEN "unix:/var/spool/postfix/private/filter"
#define CONFIG_DEFAULT_LISTEN_MODE 0660u
#define CONFIG_DEFAULT_DOWNSTREAM "unix:/var/run/dovecot/lmtp"
#define CONFIG_DEFAULT_TRUSTED_NETWORKS { "127.0.0.0/8", "::1/128" }
#define CONFIG_DEFAULT_DNS_TIMEOUT 5u
#define CONFIG_DEFAULT_MAX_MESSAGE_SIZE 52428800u
#define CONFIG_DEFAULT_MAX_CONNECTIONS 64u
#define CONFIG_DEFAULT_MAX_RECIPIENTS 1000u
#define CONFIG_DEFAULT_TIMEOUT 300u
/* Ten minutes for the whole message: a 50 MB message over the local hop
 * takes seconds, and a client that needs longer is trickling. */
#define CONFIG_DEFAULT_DATA_TIMEOUT 600u
#define CONFIG_DEFAULT_SPOOL_DIR "/var/tmp"
#define CONFIG_DEFAULT_SPOOL_MEMORY_LIMIT 1048576u
#define CONFIG_DEFAULT_REPORT_SENDMAIL "/usr/sbin/sendmail"
#define CONFIG_DEFAULT_CHECKS (CHECK_SPF | CHECK_DKIM | CHECK_DMARC | CHECK_ARC)
#define CONFIG_DEFAULT_QUARANTINE_ON (QUARANTINE_ON_DMARC | QUARANTINE_ON_SPF | QUARANTINE_ON_FROM)

#define DOMAIN_NAME_MAX 253
#define DOMAIN_LABEL_MAX 63
#define PORT_MAX 65535u
#define PROBLEM_VALUE_MAX 80          /* bytes of a bad value quoted back */
#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1)

#define GROUP_MAIN "lmtpfilter"
#define GROUP_DEFAULTS "defaults"
#define GROUP_DOMAIN_PREFIX "domain"

struct loader {
	const char *file;
	GKeyFile *keyfile;
	GString *problems;
	struct config *config;
	bool authserv_id_set, mta_hostnames_set;
	bool max_message_size_ok, spool_memory_limit_set;
	GArray *domains;              /* struct domain_policy */
};

/* A key of [lmtpfilter] and the handler that validates and stores it. */
struct main_key {
	const char *name;
	void (*parse)(struct loader *ld, const char *key);
};

static void problem(struct loader *ld, const char *group, const char *key, const char *fmt, ...)
	G_GNUC_PRINTF(4, 5);

/* ---------------------------------------------------------------- problems */

static void problem(struct loader *ld, const char *group, const char *key, const char *fmt, ...)
{
	va_list ap;

	g_string_append_printf(ld->problems, "%s: [%s]%s%s: ", ld->file, group,
			       key != NULL ? " " : "", key != NULL ? key : "");
	va_start(ap, fmt);
	g_string_append_vprintf(ld->problems, fmt, ap);
	va_end(ap);
	g_string_append_c(ld->problems, '\n');
}

/* value_quote - a bad value made printable for a problem line (g_malloc'd). */
static char *value_quote(const char *value)
{
	char *cut = g_strndup(value, PROBLEM_VALUE_MAX);
	char *escaped = g_strescape(cut, NULL);
	char *quoted = g_strdup_printf("\"%s\"%s", escaped, strlen(value) > PROBLEM_VALUE_MAX ? "..." : "");

	g_free(escaped);
	g_free(cut);
	return quoted;
}

static void problem_value(struct loader *ld, const char *group, const char *key, const char *what,
			  const char *value)
{
	char *q = value_quote(value);

	problem(ld, group, key, "%s, got %s", what, q);
	g_free(q);
}

/* ------------------------------------------------------------ name syntax */

static bool domain_label_char(char c)
{
	return g_ascii_isalnum(c) || c == '-';
}

/* domain_name_valid - ASCII host or domain name: dot-separated labels of
 * letters, digits and '-', not starting or ending with '-'. */
static bool domain_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > DOMAIN_NAME_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = name[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > DOMAIN_LABEL_MAX || name[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!domain_label_char(c) || (label == 0 && c == '-'))
			return false;
		label++;
	}
	return true;
}

/* port_parse - decimal 1..65535. */
static bool port_parse(const char *text)
{
	guint64 port;

	return g_ascii_string_to_unsigned(text, 10, 1, PORT_MAX, &port, NULL);
}

static bool ip_literal_family(const char *text, int *family_r)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, text, buf) == 1) {
		*family_r = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, buf) == 1) {
		*family_r = AF_INET6;
		return true;
	}
	return false;
}

/* --------------------------------------------------------------- endpoints */

static void endpoint_clear(struct endpoint *ep)
{
	g_free(ep->path);
	g_free(ep->host);
	g_free(ep->port);
	memset(ep, 0, sizeof(*ep));
}

static int endpoint_parse_unix(const char *path, struct endpoint *ep_r, char **error_r)
{
	if (path[0] != '/') {
		*error_r = g_strdup("unix socket path must be absolute");
		return -1;
	}
	if (strlen(path) > UNIX_PATH_MAX) {
		*error_r = g_strdup("unix socket path is too long");
		return -1;
	}
	ep_r->is_unix = true;
	ep_r->path = g_strdup(path);
	return 0;
}

/* endpoint_split_inet - "HOST:PORT" or "[IPv6]:PORT" into host and port
 * (pointers into a modified copy held by *copy_r). */
static int endpoint_split_inet(const char *text, char **copy_r, char **host_r, char **port_r,
			       char **error_r)
{
	char *copy = g_strdup(text), *colon;

	*copy_r = copy;
	if (copy[0] == '[') {
		char *close = strchr(copy, ']');
		if (close == NULL || close[1] != ':') {
			*error_r = g_strdup("expected inet:[IPv6]:PORT");
			return -1;
		}
		*close = '\0';
		*host_r = copy + 1;
		*port_r = close + 2;
		if (!ip_literal_family(*host_r, &(int){ 0 }) || strchr(*host_r, ':') == NULL) {
			*error_r = g_strdup("invalid IPv6 address in brackets");
			return -1;
		}
		return 0;
	}
	colon = strrchr(copy, ':');
	if (colon == NULL) {
		*error_r = g_strdup("missing :PORT");
		return -1;
	}
	*colon = '\0';
	*host_r = copy;
	*port_r = colon + 1;
	if (strchr(copy, ':') != NULL) {
		*error_r = g_strdup("an IPv6 address must be in brackets, as inet:[::1]:PORT");
		return -1;
	}
	int family;
	if (!ip_literal_family(copy, &family) && !domain_name_valid(copy)) {
		*error_r = g_strdup("invalid host: expected an IP address or a host name");
		return -1;
	}
	return 0;
}

static int endpoint_parse_inet(const char *text, struct endpoint *ep_r, char **error_r)
{
	char *copy, *host, *port;

	if (endpoint_split_inet(text, &copy, &host, &port, error_r) < 0) {
		g_free(copy);
		return -1;
	}
	if (!port_parse(port)) {
		*error_r = g_strdup("port must be a number between 1 and 65535");
		g_free(copy);
		return -1;
	}
	ep_r->is_unix = false;
	ep_r->host = g_strdup(host);
	ep_r->port = g_strdup(port);
	g_free(copy);
	return 0;
}

/* endpoint_parse - "unix:PATH" or "inet:HOST:PORT" (see struct endpoint). */
static int endpoint_parse(const char *text, struct endpoint *ep_r, char **error_r)
{
	memset(ep_r, 0, sizeof(*ep_r));
	if (g_str_has_prefix(text, "unix:"))
		return endpoint_parse_unix(text + strlen("unix:"), ep_r, error_r);
	if (g_str_has_prefix(text, "inet:"))
		return endpoint_parse_inet(text + strlen("inet:"), ep_r, error_r);
	*error_r = g_strdup("must be unix:PATH or inet:HOST:PORT");
	return -1;
}

/* ----------------------------------------------------------------- netaddr */

static const unsigned char v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static bool prefix_parse(const char *text, unsigned max, unsigned *prefix_r)
{
	guint64 n;

	if (strlen(text) > 3 || !g_ascii_string_to_unsigned(text, 10, 0, max, &n, NULL))
		return false;
	*prefix_r = (unsigned)n;
	return true;
}

int netaddr_parse(const char *text, struct netaddr *net_r)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	struct netaddr net = { 0 };

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, net.addr) == 1)
		net.family = AF_INET;
	else if (inet_pton(AF_INET6, buf, net.addr) == 1)
		net.family = AF_INET6;
	else
		return -1;
	net.prefix = net.family == AF_INET ? 32 : 128;
	if (slash != NULL && !prefix_parse(slash + 1, net.prefix, &net.prefix))
		return -1;
	if (net.family == AF_INET6 && net.prefix >= 96 &&
	    memcmp(net.addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
		memmove(net.addr, net.addr + 12, 4);
		memset(net.addr + 4, 0, 12);
		net.family = AF_INET;
		net.prefix -= 96;
	}
	*net_r = net;
	return 0;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
	unsigned bytes = prefix / 8, bits = prefix % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - bits));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool netaddr_list_contains(const struct netaddr *nets, size_t count, int family, const void *addr)
{
	const unsigned char *bytes = addr;

	if (addr == NULL || (family != AF_INET && family != AF_INET6))
		return false;
	if (family == AF_INET6 && memcmp(bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
		family = AF_INET;
		bytes += sizeof(v4_mapped_prefix);
	}
	for (size_t i = 0; i < count; i++) {
		if (nets[i].family == family && prefix_match(nets[i].addr, bytes, nets[i].prefix))
			return true;
	}
	return false;
}

bool config_is_trusted_ip(const struct config *config, const char *ip_text)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char ip[IPADDR_TEXT_MAX];

	if (config == NULL || ip_text == NULL || ipaddr_normalise(ip_text, strlen(ip_text), ip, sizeof(ip)) < 0)
		return false;
	if (inet_pton(AF_INET, ip, addr) == 1)
		return netaddr_list_contains(config->trusted_networks, config->trusted_network_count, AF_INET,
					     addr);
	if (inet_pton(AF_INET6, ip, addr) == 1)
		return netaddr_list_contains(config->trusted_networks, config->trusted_network_count, AF_INET6,
					     addr);
	return false;
}

/* netaddr_host_bits_set - does the network have 1 bits below its prefix? */
static bool netaddr_host_bits_set(const struct netaddr *net, struct netaddr *masked_r)
{
	unsigned len = net->family == AF_INET ? 4 : 16;

	*masked_r = *net;
	for (unsigned i = 0; i < len; i++) {
		unsigned first = i * 8;
		if (first >= net->prefix)
			masked_r->addr[i] = 0;
		else if (net->prefix - first < 8)
			masked_r->addr[i] &= (unsigned char)(0xff << (8 - (net->prefix - first)));
	}
	return memcmp(masked_r->addr, net->addr, len) != 0;
}

/* ------------------------------------------------------------- reading */

static char *value_get(struct loader *ld, const char *group, const char *key)
{
	GError *error = NULL;
	char *value = g_key_file_get_string(ld->keyfile, group, key, &error);

	if (value == NULL) {
		problem(ld, group, key, "%s", error->message);
		g_error_free(error);
		return NULL;
	}
	return g_strstrip(value);
}

/* list_get - the trimmed, non-empty items of a list value (NULL-terminated,
 * g_strfreev), or NULL after reporting a problem. */
static char **list_get(struct loader *ld, const char *group, const char *key, size_t *count_r)
{
	GError *error = NULL;
	gsize n = 0;
	char **raw = g_key_file_get_string_list(ld->keyfile, group, key, &n, &error);
	GPtrArray *items;

	if (error != NULL) {
		problem(ld, group, key, "%s", error->message);
		g_error_free(error);
		g_strfreev(raw);
		return NULL;
	}
	items = g_ptr_array_new();
	for (gsize i = 0; i < n; i++) {
		g_strstrip(raw[i]);
		if (raw[i][0] != '\0')
			g_ptr_array_add(items, g_strdup(raw[i]));
	}
	g_strfreev(raw);
	*count_r = items->len;
	g_ptr_array_add(items, NULL);
	return (char **)g_ptr_array_free(items, FALSE);
}

static char **list_get_bounded(struct loader *ld, const char *group, const char *key, size_t max,
			       size_t *count_r)
{
	char **items = list_get(ld, group, key, count_r);

	if (items != NULL && *count_r > max) {
		problem(ld, group, key, "too many items (%zu, at most %zu)", *count_r, max);
		g_strfreev(items);
		return NULL;
	}
	return items;
}

static bool uint_get(struct loader *ld, const char *group, const char *key, guint64 min, guint64 max,
		     guint64 *value_r)
{
	char *value = value_get(ld, group, key);
	bool ok;

	if (value == NULL)
		return false;
	ok = g_ascii_string_to_unsigned(value, 10, min, max, value_r, NULL);
	if (!ok) {
		char *what = g_strdup_printf("must be an integer between %" G_GUINT64_FORMAT " and %"
					     G_GUINT64_FORMAT, min, max);
		problem_value(ld, group, key, what, value);
		g_free(what);
	}
	g_free(value);
	return ok;
}

static bool unsigned_get(struct loader *ld, const char *key, unsigned min, unsigned max, unsigned *out)
{
	guint64 v;

	if (!uint_get(ld, GROUP_MAIN, key, min, max, &v))
		return false;
	*out = (unsigned)v;
	return true;
}

/* hostname_list_get - a list of host names, or NULL after reporting. */
static char **hostname_list_get(struct loader *ld, const char *key, size_t *count_r)
{
	char **items = list_get_bounded(ld, GROUP_MAIN, key, CONFIG_LIST_MAX, count_r);
	bool ok = true;

	for (size_t i = 0; items != NULL && i < *count_r; i++) {
		if (!domain_name_valid(items[i])) {
			problem_value(ld, GROUP_MAIN, key, "must be a host name", items[i]);
			ok = false;
		}
	}
	if (!ok) {
		g_strfreev(items);
		return NULL;
	}
	return items;
}

/* sealer_list_get - arc_trusted_sealers of group: host names, lower case,
 * trailing dot removed; NULL after reporting a problem. */
static char **sealer_list_get(struct loader *ld, const char *group)
{
	size_t n;
	char **items = list_get_bounded(ld, group, "arc_trusted_sealers", CONFIG_LIST_MAX, &n);
	bool ok = true;

	for (size_t i = 0; items != NULL && i < n; i++) {
		size_t len = strlen(items[i]);
		if (len > 1 && items[i][len - 1] == '.')
			items[i][len - 1] = '\0';
		if (!domain_name_valid(items[i])) {
			problem_value(ld, group, "arc_trusted_sealers", "must be a domain name (d= of an ARC-Seal)",
				      items[i]);
			ok = false;
		}
		char *lower = g_ascii_strdown(items[i], -1);
		g_free(items[i]);
		items[i] = lower;
	}
	if (!ok) {
		g_strfreev(items);
		return NULL;
	}
	return items;
}

/* ------------------------------------------------- [lmtpfilter] handlers */

static void parse_listen(struct loader *ld, const char *key)
{
	size_t n;
	char **items = list_get_bounded(ld, GROUP_MAIN, key, CONFIG_LISTEN_MAX, &n);
	struct endpoint *eps;
	size_t good = 0;

	if (items == NULL)
		return;
	eps = g_new0(struct endpoint, n + 1);
	for (size_t i = 0; i < n; i++) {
		g_autofree char *error = NULL;

		if (endpoint_parse(items[i], &eps[good], &error) < 0)
			problem_value(ld, GROUP_MAIN, key, error, items[i]);
		else
			good++;
	}
	g_strfreev(items);
	if (good != n) {
		for (size_t i = 0; i < good; i++)
			endpoint_clear(&eps[i]);
		g_free(eps);
		return;
	}
	for (size_t i = 0; i < ld->config->listen_count; i++)
		endpoint_clear(&ld->config->listen[i]);
	g_free(ld->config->listen);
	ld->config->listen = eps;
	ld->config->listen_count = n;
}

static void parse_listen_mode(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);
	guint64 mode;

	if (value == NULL)
		return;
	if (g_ascii_string_to_unsigned(value, 8, 0, CONFIG_LISTEN_MODE_MAX, &mode, NULL))
		ld->config->listen_mode = (unsigned)mode;
	else
		problem_value(ld, GROUP_MAIN, key, "must be an octal file mode between 0 and 0777", value);
	g_free(value);
}

static void parse_downstream(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);
	struct endpoint ep;
	g_autofree char *error = NULL;

	if (value == NULL)
		return;
	if (endpoint_parse(value, &ep, &error) < 0) {
		problem_value(ld, GROUP_MAIN, key, error, value);
	} else {
		endpoint_clear(&ld->config->downstream);
		ld->config->downstream = ep;
	}
	g_free(value);
}

/* parse_metrics_listen - where GET /metrics is served; empty: nowhere. */
static void parse_metrics_listen(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);
	struct endpoint ep;
	g_autofree char *error = NULL;

	if (value == NULL)
		return;
	if (value[0] == '\0') {
		endpoint_clear(&ld->config->metrics_listen);
		ld->config->metrics_enabled = false;
	} else if (endpoint_parse(value, &ep, &error) < 0) {
		problem_value(ld, GROUP_MAIN, key, error, value);
	} else {
		endpoint_clear(&ld->config->metrics_listen);
		ld->config->metrics_listen = ep;
		ld->config->metrics_enabled = true;
	}
	g_free(value);
}

static void parse_authserv_id(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);

	if (value == NULL)
		return;
	if (value[0] == '\0') {
		g_free(value);      /* empty: keep the host name */
	} else if (!domain_name_valid(value)) {
		problem_value(ld, GROUP_MAIN, key, "must be a host name", value);
		g_free(value);
	} else {
		g_free(ld->config->authserv_id);
		ld->config->authserv_id = value;
		ld->authserv_id_set = true;
	}
}

static void parse_authserv_id_aliases(struct loader *ld, const char *key)
{
	size_t n;
	char **items = hostname_list_get(ld, key, &n);

	if (items == NULL)
		return;
	g_strfreev(ld->config->authserv_id_aliases);
	ld->config->authserv_id_aliases = items;
	ld->config->authserv_id_alias_count = n;
}

static void parse_mta_hostnames(struct loader *ld, const char *key)
{
	size_t n;
	char **items = hostname_list_get(ld, key, &n);

	if (items == NULL)
		return;
	if (n == 0) {
		g_strfreev(items);  /* empty: keep the default, authserv_id */
		return;
	}
	g_strfreev(ld->config->mta_hostnames);
	ld->config->mta_hostnames = items;
	ld->config->mta_hostname_count = n;
	ld->mta_hostnames_set = true;
}

static bool network_item_check(struct loader *ld, const char *key, const char *item, struct netaddr *net_r)
{
	struct netaddr masked;
	char text[INET6_ADDRSTRLEN];

	if (netaddr_parse(item, net_r) < 0) {
		problem_value(ld, GROUP_MAIN, key, "must be a network as ADDRESS or ADDRESS/PREFIX", item);
		return false;
	}
	if (netaddr_host_bits_set(net_r, &masked)) {
		inet_ntop(masked.family, masked.addr, text, sizeof(text));
		char *what = g_strdup_printf("has host bits set below the prefix (did you mean %s/%u?)", text,
					     masked.prefix);
		problem_value(ld, GROUP_MAIN, key, what, item);
		g_free(what);
		return false;
	}
	return true;
}

static void parse_trusted_networks(struct loader *ld, const char *key)
{
	size_t n;
	char **items = list_get_bounded(ld, GROUP_MAIN, key, CONFIG_LIST_MAX, &n);
	struct netaddr *nets;
	bool ok = true;

	if (items == NULL)
		return;
	nets = g_new0(struct netaddr, n + 1);
	for (size_t i = 0; i < n; i++)
		ok = network_item_check(ld, key, items[i], &nets[i]) && ok;
	g_strfreev(items);
	if (!ok) {
		g_free(nets);
		return;
	}
	g_free(ld->config->trusted_networks);
	ld->config->trusted_networks = nets;
	ld->config->trusted_network_count = n;
}

static void parse_xforward(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);

	if (value == NULL)
		return;
	if (g_ascii_strcasecmp(value, "yes") == 0 || g_ascii_strcasecmp(value, "true") == 0)
		ld->config->xforward = true;
	else if (g_ascii_strcasecmp(value, "no") == 0 || g_ascii_strcasecmp(value, "false") == 0)
		ld->config->xforward = false;
	else
		problem_value(ld, GROUP_MAIN, key, "must be yes or no", value);
	g_free(value);
}

/* parse_dmarc_discovery - treewalk or psl. */
static void parse_dmarc_discovery(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);

	if (value == NULL)
		return;
	if (g_ascii_strcasecmp(value, "treewalk") == 0)
		ld->config->dmarc_discovery = CONFIG_DMARC_DISCOVERY_TREEWALK;
	else if (g_ascii_strcasecmp(value, "psl") == 0)
		ld->config->dmarc_discovery = CONFIG_DMARC_DISCOVERY_PSL;
	else
		problem_value(ld, GROUP_MAIN, key, "must be treewalk or psl", value);
	g_free(value);
}

/* dns_server_valid - "IP" or "IP@PORT" as libunbound's forwarder syntax. */
static bool dns_server_valid(const char *item)
{
	char *copy = g_strdup(item);
	char *at = strchr(copy, '@');
	int family;
	bool ok;

	if (at != NULL)
		*at = '\0';
	ok = ip_literal_family(copy, &family) && (at == NULL || port_parse(at + 1));
	g_free(copy);
	return ok;
}

static void parse_dns_servers(struct loader *ld, const char *key)
{
	size_t n;
	char **items = list_get_bounded(ld, GROUP_MAIN, key, CONFIG_LIST_MAX, &n);
	bool ok = true;

	for (size_t i = 0; items != NULL && i < n; i++) {
		if (!dns_server_valid(items[i])) {
			problem_value(ld, GROUP_MAIN, key, "must be IP or IP@PORT (port 1..65535)", items[i]);
			ok = false;
		}
	}
	if (items == NULL || !ok) {
		g_strfreev(items);
		return;
	}
	g_strfreev(ld->config->dns_servers);
	ld->config->dns_servers = items;
	ld->config->dns_server_count = n;
}

static void parse_dns_timeout(struct loader *ld, const char *key)
{
	unsigned_get(ld, key, 1, CONFIG_DNS_TIMEOUT_MAX, &ld->config->dns_timeout);
}

static void parse_max_message_size(struct loader *ld, const char *key)
{
	guint64 v;

	ld->max_message_size_ok = uint_get(ld, GROUP_MAIN, key, CONFIG_MESSAGE_SIZE_MIN, CONFIG_MESSAGE_SIZE_MAX, &v);
	if (ld->max_message_size_ok)
		ld->config->max_message_size = (size_t)v;
}

static void parse_max_connections(struct loader *ld, const char *key)
{
	unsigned_get(ld, key, 1, CONFIG_CONNECTIONS_MAX, &ld->config->max_connections);
}

static void parse_max_recipients(struct loader *ld, const char *key)
{
	unsigned_get(ld, key, 1, CONFIG_RECIPIENTS_MAX, &ld->config->max_recipients);
}

static void parse_timeout(struct loader *ld, const char *key)
{
	unsigned_get(ld, key, 1, CONFIG_TIMEOUT_MAX, &ld->config->timeout);
}

static void parse_data_timeout(struct loader *ld, const char *key)
{
	unsigned_get(ld, key, 1, CONFIG_TIMEOUT_MAX, &ld->config->data_timeout);
}

static void parse_spool_dir(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);

	if (value == NULL)
		return;
	if (value[0] != '/') {
		problem_value(ld, GROUP_MAIN, key, "must be an absolute directory path", value);
		g_free(value);
	} else if (!g_file_test(value, G_FILE_TEST_IS_DIR)) {
		problem_value(ld, GROUP_MAIN, key, "must be an existing directory", value);
		g_free(value);
	} else {
		g_free(ld->config->spool_dir);
		ld->config->spool_dir = value;
	}
}

/* spool_memory_limit is checked against max_message_size once all keys are
 * read; left unset, it shrinks to a smaller max_message_size. */
static void parse_spool_memory_limit(struct loader *ld, const char *key)
{
	guint64 v;

	if (uint_get(ld, GROUP_MAIN, key, 0, CONFIG_MESSAGE_SIZE_MAX, &v)) {
		ld->config->spool_memory_limit = (size_t)v;
		ld->spool_memory_limit_set = true;
	}
}

/* dmarc_history: empty keeps no history; else an existing absolute directory. */
static void parse_arc_trusted_sealers(struct loader *ld, const char *key)
{
	char **items = sealer_list_get(ld, GROUP_MAIN);

	(void)key;
	if (items == NULL)
		return;
	g_strfreev(ld->config->arc_trusted_sealers);
	ld->config->arc_trusted_sealers = items;
}

static void parse_dmarc_history(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);

	if (value == NULL)
		return;
	if (value[0] == '\0') {
		g_free(value);
	} else if (value[0] != '/' || !g_file_test(value, G_FILE_TEST_IS_DIR)) {
		problem_value(ld, GROUP_MAIN, key, "must be an existing absolute directory path", value);
		g_free(value);
	} else {
		g_free(ld->config->dmarc_history);
		ld->config->dmarc_history = value;
	}
}

/* report_org_name: free text; empty means the domain of report_email. */
static void parse_report_org_name(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);

	if (value != NULL && value[0] != '\0') {
		g_free(ld->config->report_org_name);
		ld->config->report_org_name = value;
	} else {
		g_free(value);
	}
}

/* report_email: empty (no reports) or one plain address local@domain. */
static void parse_report_email(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);
	const char *at = value != NULL ? strrchr(value, '@') : NULL;

	if (value == NULL)
		return;
	if (value[0] == '\0') {
		g_free(value);
	} else if (at == NULL || at == value || !domain_name_valid(at + 1) ||
		   strchr(value, '@') != at || strpbrk(value, " \t<>,;\"") != NULL) {
		problem_value(ld, GROUP_MAIN, key, "must be a mail address local@domain", value);
		g_free(value);
	} else {
		g_free(ld->config->report_email);
		ld->config->report_email = value;
	}
}

/* report_sendmail: a command line whose program is an absolute path. */
static void parse_report_sendmail(struct loader *ld, const char *key)
{
	char *value = value_get(ld, GROUP_MAIN, key);
	char **argv = NULL;

	if (value == NULL)
		return;
	if (value[0] != '/' || !g_shell_parse_argv(value, NULL, &argv, NULL)) {
		problem_value(ld, GROUP_MAIN, key, "must be a command line starting with an absolute path", value);
		g_free(value);
	} else {
		g_free(ld->config->report_sendmail);
		ld->config->report_sendmail = value;
	}
	g_strfreev(argv);
}

static const struct main_key main_keys[] = {
	{ "listen", parse_listen },
	{ "listen_mode", parse_listen_mode },
	{ "downstream", parse_downstream },
	{ "authserv_id", parse_authserv_id },
	{ "authserv_id_aliases", parse_authserv_id_aliases },
	{ "mta_hostnames", parse_mta_hostnames },
	{ "trusted_networks", parse_trusted_networks },
	{ "xforward", parse_xforward },
	{ "dns_servers", parse_dns_servers },
	{ "dns_timeout", parse_dns_timeout },
	{ "max_message_size", parse_max_message_size },
	{ "max_connections", parse_max_connections },
	{ "max_recipients", parse_max_recipients },
	{ "timeout", parse_timeout },
	{ "data_timeout", parse_data_timeout },
	{ "spool_dir", parse_spool_dir },
	{ "spool_memory_limit", parse_spool_memory_limit },
	{ "arc_trusted_sealers", parse_arc_trusted_sealers },
	{ "dmarc_discovery", parse_dmarc_discovery },
	{ "dmarc_history", parse_dmarc_history },
	{ "report_org_name", parse_report_org_name },
	{ "report_email", parse_report_email },
	{ "report_sendmail", parse_report_sendmail },
	{ "metrics_listen", parse_metrics_listen },
};

/* ------------------------------------------------------ policy groups */

static const char *const policy_keys[] = { "mode", "checks", "quarantine_on", "arc_trusted_sealers" };

static void parse_mode(struct loader *ld, const char *group, struct domain_policy *policy)
{
	char *value = value_get(ld, group, "mode");

	if (value == NULL)
		return;
	if (g_ascii_strcasecmp(value, "off") == 0)
		policy->mode = DOMAIN_MODE_OFF;
	else if (g_ascii_strcasecmp(value, "annotate") == 0)
		policy->mode = DOMAIN_MODE_ANNOTATE;
	else if (g_ascii_strcasecmp(value, "observe") == 0)
		policy->mode = DOMAIN_MODE_OBSERVE;
	else
		problem_value(ld, group, "mode", "must be off, observe or annotate", value);
	g_free(value);
}

static bool check_flag(const char *name, unsigned *flag_r)
{
	static const struct { const char *name; unsigned flag; } checks[] = {
		{ "spf", CHECK_SPF }, { "dkim", CHECK_DKIM }, { "dmarc", CHECK_DMARC }, { "arc", CHECK_ARC },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(checks); i++) {
		if (g_ascii_strcasecmp(name, checks[i].name) == 0) {
			*flag_r = checks[i].flag;
			return true;
		}
	}
	return false;
}

static void parse_checks(struct loader *ld, const char *group, struct domain_policy *policy)
{
	size_t n;
	char **items = list_get_bounded(ld, group, "checks", CONFIG_LIST_MAX, &n);
	unsigned checks = 0, flag;
	bool ok = true;

	for (size_t i = 0; items != NULL && i < n; i++) {
		if (check_flag(items[i], &flag)) {
			checks |= flag;
		} else {
			problem_value(ld, group, "checks", "must be a list of spf, dkim, dmarc, arc", items[i]);
			ok = false;
		}
	}
	if (items != NULL && ok)
		policy->checks = checks;
	g_strfreev(items);
}

static void parse_quarantine_on(struct loader *ld, const char *group, struct domain_policy *policy)
{
	static const struct { const char *name; unsigned flag; } reasons[] = {
		{ "dmarc", QUARANTINE_ON_DMARC }, { "spf", QUARANTINE_ON_SPF }, { "from", QUARANTINE_ON_FROM },
	};
	size_t n;
	char **items = list_get_bounded(ld, group, "quarantine_on", CONFIG_LIST_MAX, &n);
	unsigned flags = 0;
	bool ok = true;

	for (size_t i = 0; items != NULL && i < n; i++) {
		size_t j;
		for (j = 0; j < G_N_ELEMENTS(reasons) && g_ascii_strcasecmp(items[i], reasons[j].name) != 0; j++)
			;
		if (j < G_N_ELEMENTS(reasons)) {
			flags |= reasons[j].flag;
		} else {
			problem_value(ld, group, "quarantine_on", "must be a list of dmarc, spf, from", items[i]);
			ok = false;
		}
	}
	if (items != NULL && ok)
		policy->quarantine_on = flags;
	g_strfreev(items);
}

/* parse_policy_sealers - the group's own list replaces the one it took
 * from [defaults]; the global list applies besides (config_arc_sealer_trusted). */
static void parse_policy_sealers(struct loader *ld, const char *group, struct domain_policy *policy)
{
	char **items = sealer_list_get(ld, group);

	if (items == NULL)
		return;
	g_strfreev(policy->arc_trusted_sealers);
	policy->arc_trusted_sealers = items;
}

static bool key_known(const char *key, const char *const *known, size_t count, const char **hint_r)
{
	*hint_r = NULL;
	for (size_t i = 0; i < count; i++) {
		if (strcmp(key, known[i]) == 0)
			return true;
		if (g_ascii_strcasecmp(key, known[i]) == 0)
			*hint_r = known[i];
	}
	return false;
}

static void problem_unknown_key(struct loader *ld, const char *group, const char *key, const char *hint)
{
	if (hint != NULL)
		problem(ld, group, key, "unknown key (did you mean %s?)", hint);
	else
		problem(ld, group, key, "unknown key");
}

/* keys_get - the group's keys in file order, each once; GKeyFile lists a
 * key once per line that sets it, which is reported. */
static char **keys_get(struct loader *ld, const char *group, gsize *count_r)
{
	gsize n = 0, kept = 0;
	char **keys = g_key_file_get_keys(ld->keyfile, group, &n, NULL);

	for (gsize i = 0; keys != NULL && i < n; i++) {
		char *key = keys[i];
		gsize j;

		keys[i] = NULL;
		for (j = 0; j < kept && strcmp(key, keys[j]) != 0; j++)
			;
		if (j < kept) {
			problem(ld, group, key, "set more than once");
			g_free(key);
		} else {
			keys[kept++] = key;
		}
	}
	*count_r = kept;
	return keys;
}

static void parse_policy_group(struct loader *ld, const char *group, struct domain_policy *policy)
{
	gsize n = 0;
	char **keys = keys_get(ld, group, &n);
	const char *hint;

	for (gsize i = 0; i < n; i++) {
		if (strcmp(keys[i], "mode") == 0)
			parse_mode(ld, group, policy);
		else if (strcmp(keys[i], "checks") == 0)
			parse_checks(ld, group, policy);
		else if (strcmp(keys[i], "quarantine_on") == 0)
			parse_quarantine_on(ld, group, policy);
		else if (strcmp(keys[i], "arc_trusted_sealers") == 0)
			parse_policy_sealers(ld, group, policy);
		else if (!key_known(keys[i], policy_keys, G_N_ELEMENTS(policy_keys), &hint))
			problem_unknown_key(ld, group, keys[i], hint);
	}
	g_strfreev(keys);
}

/* domain_group_name - NAME of "domain NAME", or NULL if group is not one. */
static const char *domain_group_name(const char *group)
{
	size_t len = strlen(GROUP_DOMAIN_PREFIX);

	if (strncmp(group, GROUP_DOMAIN_PREFIX, len) != 0 || (group[len] != ' ' && group[len] != '\t' &&
							       group[len] != '\0'))
		return NULL;
	group += len;
	while (*group == ' ' || *group == '\t')
		group++;
	return group;
}

static void parse_domain_group(struct loader *ld, const char *group, const char *name)
{
	struct domain_policy policy = ld->config->defaults;

	if (name[0] == '\0') {
		problem(ld, group, NULL, "missing domain name, as [domain example.com]");
		return;
	}
	if (!domain_name_valid(name)) {
		problem(ld, group, NULL, "not a valid domain name");
		return;
	}
	if (ld->domains->len >= CONFIG_DOMAIN_MAX) {
		problem(ld, group, NULL, "too many domain groups (at most %d)", CONFIG_DOMAIN_MAX);
		return;
	}
	policy.arc_trusted_sealers = g_strdupv(ld->config->defaults.arc_trusted_sealers);
	parse_policy_group(ld, group, &policy);
	policy.domain = g_ascii_strdown(name, -1);
	g_array_append_val(ld->domains, policy);
}

static void parse_main_group(struct loader *ld)
{
	gsize n = 0;
	char **keys = keys_get(ld, GROUP_MAIN, &n);

	for (gsize i = 0; i < n; i++) {
		const char *hint = NULL;
		size_t k;
		for (k = 0; k < G_N_ELEMENTS(main_keys); k++) {
			if (strcmp(keys[i], main_keys[k].name) == 0)
				break;
			if (g_ascii_strcasecmp(keys[i], main_keys[k].name) == 0)
				hint = main_keys[k].name;
		}
		if (k < G_N_ELEMENTS(main_keys))
			main_keys[k].parse(ld, keys[i]);
		else
			problem_unknown_key(ld, GROUP_MAIN, keys[i], hint);
	}
	g_strfreev(keys);
}

/* ----------------------------------------------------------- assembling */

static int domain_policy_cmp(const void *a, const void *b)
{
	return strcmp(((const struct domain_policy *)a)->domain, ((const struct domain_policy *)b)->domain);
}

/* domains_finish - sort [domain NAME] groups for lookup and report names
 * that appear twice (GKeyFile merges only exactly equal group names). */
static void domains_finish(struct loader *ld)
{
	struct config *config = ld->config;

	g_array_sort(ld->domains, domain_policy_cmp);
	for (guint i = 1; i < ld->domains->len; i++) {
		struct domain_policy *prev = &g_array_index(ld->domains, struct domain_policy, i - 1);
		struct domain_policy *cur = &g_array_index(ld->domains, struct domain_policy, i);
		if (strcmp(prev->domain, cur->domain) == 0) {
			char *group = g_strconcat(GROUP_DOMAIN_PREFIX " ", cur->domain, NULL);
			problem(ld, group, NULL, "defined more than once (domain names are case-insensitive)");
			g_free(group);
		}
	}
	config->domain_count = ld->domains->len;
	config->domains = (struct domain_policy *)(void *)g_array_free(ld->domains, FALSE);
	ld->domains = NULL;
}

static void derived_finish(struct loader *ld)
{
	struct config *config = ld->config;

	if (ld->authserv_id_set && !ld->mta_hostnames_set) {
		g_strfreev(config->mta_hostnames);
		config->mta_hostnames = g_new0(char *, 2);
		config->mta_hostnames[0] = g_strdup(config->authserv_id);
		config->mta_hostname_count = 1;
	}
	if (config->spool_memory_limit <= config->max_message_size)
		return;
	if (!ld->spool_memory_limit_set)
		config->spool_memory_limit = config->max_message_size;
	else if (ld->max_message_size_ok)
		problem(ld, GROUP_MAIN, "spool_memory_limit",
			"must not exceed max_message_size (%zu), got %zu", config->max_message_size,
			config->spool_memory_limit);
}

static void parse_groups(struct loader *ld)
{
	gsize n = 0;
	char **groups = g_key_file_get_groups(ld->keyfile, &n);

	/* [lmtpfilter] and [defaults] first: domains inherit from [defaults]
	 * wherever it is; problems keep their file order within each group. */
	if (g_key_file_has_group(ld->keyfile, GROUP_MAIN))
		parse_main_group(ld);
	if (g_key_file_has_group(ld->keyfile, GROUP_DEFAULTS))
		parse_policy_group(ld, GROUP_DEFAULTS, &ld->config->defaults);
	for (gsize i = 0; i < n; i++) {
		const char *name;
		if (strcmp(groups[i], GROUP_MAIN) == 0 || strcmp(groups[i], GROUP_DEFAULTS) == 0)
			continue;
		if ((name = domain_group_name(groups[i])) != NULL)
			parse_domain_group(ld, groups[i], name);
		else
			problem(ld, groups[i], NULL,
				"unknown group (expected [lmtpfilter], [defaults] or [domain NAME])");
	}
	g_strfreev(groups);
	domains_finish(ld);
	derived_finish(ld);
}

/* -------------------------------------------------------- file reading */

/* file_read - the whole file, at most CONFIG_FILE_MAX_BYTES. */
static int file_read(const char *file, char **text_r, char **error_r)
{
	GString *text = g_string_new(NULL);
	char buf[8192];
	ssize_t r;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		*error_r = g_strdup(g_strerror(errno));
		g_string_free(text, TRUE);
		return -1;
	}
	while ((r = read(fd, buf, sizeof(buf))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || text->len + (size_t)r > CONFIG_FILE_MAX_BYTES) {
			*error_r = g_strdup(r < 0 ? g_strerror(errno) : "file is too large");
			close(fd);
			g_string_free(text, TRUE);
			return -1;
		}
		g_string_append_len(text, buf, r);
	}
	close(fd);
	if (memchr(text->str, '\0', text->len) != NULL) {
		*error_r = g_strdup("file contains a NUL byte");
		g_string_free(text, TRUE);
		return -1;
	}
	*text_r = g_string_free(text, FALSE);
	return 0;
}

/* comments_strip - blank out "<blank>; comment" tails and ';'-comment lines
 * in place, and trailing blanks, so GKeyFile sees plain INI. */
static void comments_strip(char *text)
{
	char *line = text;

	while (*line != '\0') {
		char *end = strchr(line, '\n');
		char *next = end != NULL ? end + 1 : line + strlen(line);
		char *p = line, *cut;

		while (*p == ' ' || *p == '\t')
			p++;
		cut = *p == ';' ? line : NULL;
		for (; cut == NULL && p < next && *p != '\n'; p++) {
			if (*p == ';' && (p[-1] == ' ' || p[-1] == '\t'))
				cut = p;
		}
		if (cut == NULL)
			cut = end != NULL ? end : next;
		while (cut > line && (cut[-1] == ' ' || cut[-1] == '\t' || cut[-1] == '\r'))
			cut--;
		for (char *q = cut; q < next && *q != '\n'; q++)
			*q = ' ';
		line = next;
	}
}

/* ------------------------------------------------------------ lifecycle */

struct config *config_defaults(void)
{
	static const char *const trusted[] = CONFIG_DEFAULT_TRUSTED_NETWORKS;
	struct config *config = g_new0(struct config, 1);
	char *error = NULL;

	config->listen = g_new0(struct endpoint, 2);
	if (endpoint_parse(CONFIG_DEFAULT_LISTEN, &config->listen[0], &error) == 0)
		config->listen_count = 1;
	g_clear_pointer(&error, g_free);
	config->listen_mode = CONFIG_DEFAULT_LISTEN_MODE;
	(void)endpoint_parse(CONFIG_DEFAULT_DOWNSTREAM, &config->downstream, &error);
	g_clear_pointer(&error, g_free);
	config->authserv_id = g_strdup(g_get_host_name());
	config->authserv_id_aliases = g_new0(char *, 1);
	config->mta_hostnames = g_new0(char *, 2);
	config->mta_hostnames[0] = g_strdup(config->authserv_id);
	config->mta_hostname_count = 1;
	config->trusted_networks = g_new0(struct netaddr, G_N_ELEMENTS(trusted));
	for (size_t i = 0; i < G_N_ELEMENTS(trusted); i++) {
		if (netaddr_parse(trusted[i], &config->trusted_networks[config->trusted_network_count]) == 0)
			config->trusted_network_count++;
	}
	config->xforward = true;
	config->dns_servers = g_new0(char *, 1);
	config->dns_timeout = CONFIG_DEFAULT_DNS_TIMEOUT;
	config->max_message_size = CONFIG_DEFAULT_MAX_MESSAGE_SIZE;
	config->max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS;
	config->max_recipients = CONFIG_DEFAULT_MAX_RECIPIENTS;
	config->timeout = CONFIG_DEFAULT_TIMEOUT;
	config->data_timeout = CONFIG_DEFAULT_DATA_TIMEOUT;
	config->spool_dir = g_strdup(CONFIG_DEFAULT_SPOOL_DIR);
	config->spool_memory_limit = CONFIG_DEFAULT_SPOOL_MEMORY_LIMIT;
	config->dmarc_discovery = CONFIG_DMARC_DISCOVERY_TREEWALK;
	config->report_sendmail = g_strdup(CONFIG_DEFAULT_REPORT_SENDMAIL);
	config->defaults.mode = DOMAIN_MODE_OFF;
	config->defaults.checks = CONFIG_DEFAULT_CHECKS;
	config->defaults.quarantine_on = CONFIG_DEFAULT_QUARANTINE_ON;
	config->refcount = 1;
	return config;
}

static void config_free(struct config *config)
{
	for (size_t i = 0; i < config->listen_count; i++)
		endpoint_clear(&config->listen[i]);
	g_free(config->listen);
	endpoint_clear(&config->downstream);
	endpoint_clear(&config->metrics_listen);
	g_free(config->file);
	g_free(config->authserv_id);
	g_strfreev(config->authserv_id_aliases);
	g_strfreev(config->mta_hostnames);
	g_free(config->trusted_networks);
	g_strfreev(config->dns_servers);
	g_free(config->spool_dir);
	g_free(config->dmarc_history);
	g_free(config->report_org_name);
	g_free(config->report_email);
	g_free(config->report_sendmail);
	g_strfreev(config->arc_trusted_sealers);
	g_strfreev(config->defaults.arc_trusted_sealers);
	for (size_t i = 0; i < config->domain_count; i++) {
		g_free(config->domains[i].domain);
		g_strfreev(config->domains[i].arc_trusted_sealers);
	}
	g_free(config->domains);
	g_free(config);
}

struct config *config_ref(struct config *config)
{
	g_atomic_int_inc(&config->refcount);
	return config;
}

void config_unref(struct config **config)
{
	struct config *c = config != NULL ? *config : NULL;

	if (c == NULL)
		return;
	*config = NULL;
	if (g_atomic_int_dec_and_test(&c->refcount))
		config_free(c);
}

static int keyfile_load(struct loader *ld, char *text, char **error_r)
{
	GError *error = NULL;

	comments_strip(text);
	ld->keyfile = g_key_file_new();
	if (!g_key_file_load_from_data(ld->keyfile, text, (gsize)-1, G_KEY_FILE_NONE, &error)) {
		*error_r = g_strdup_printf("%s: %s", ld->file, error->message);
		g_error_free(error);
		return -1;
	}
	return 0;
}

int config_load(const char *file, struct config **config_r, char **error_r)
{
	struct loader ld = { .file = file, .max_message_size_ok = true };
	g_autofree char *read_error = NULL;
	char *text;
	int ret = -1;

	*config_r = NULL;
	if (file_read(file, &text, &read_error) < 0) {
		*error_r = g_strdup_printf("%s: cannot read configuration: %s", file, read_error);
		return -1;
	}
	if (keyfile_load(&ld, text, error_r) == 0) {
		ld.config = config_defaults();
		ld.config->file = g_strdup(file);
		ld.problems = g_string_new(NULL);
		ld.domains = g_array_new(FALSE, TRUE, sizeof(struct domain_policy));
		parse_groups(&ld);
		if (ld.problems->len == 0) {
			*config_r = ld.config;
			ret = 0;
		} else {
			g_string_truncate(ld.problems, ld.problems->len - 1);   /* last '\n' */
			*error_r = g_strdup(ld.problems->str);
			config_unref(&ld.config);
		}
		g_string_free(ld.problems, TRUE);
	}
	g_key_file_free(ld.keyfile);
	g_free(text);
	return ret;
}

/* ------------------------------------------------------------ lookups */

static int domain_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct domain_policy *)elem)->domain);
}

const struct domain_policy *config_policy_for(const struct config *config, const char *address)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	const struct domain_policy *found;
	char domain[DOMAIN_NAME_MAX + 1];
	size_t len;

	if (at == NULL || config->domain_count == 0)
		return &config->defaults;
	len = strlen(at + 1);
	if (len == 0 || len > DOMAIN_NAME_MAX)
		return &config->defaults;
	for (size_t i = 0; i <= len; i++)
		domain[i] = g_ascii_tolower(at[1 + i]);
	found = bsearch(domain, config->domains, config->domain_count, sizeof(*config->domains), domain_key_cmp);
	return found != NULL ? found : &config->defaults;
}

/* sealers_same - the same list (NULL is the empty list)? */
static bool sealers_same(char *const *a, char *const *b)
{
	size_t i;

	for (i = 0; a != NULL && b != NULL && a[i] != NULL && b[i] != NULL; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return (a == NULL || a[i] == NULL) && (b == NULL || b[i] == NULL);
}

/* sealer_in - is name (lower case) one of list? */
static bool sealer_in(char *const *list, const char *name)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

bool config_arc_sealer_trusted(const struct config *config, const struct domain_policy *policy, const char *domain)
{
	char name[DOMAIN_NAME_MAX + 1];
	size_t len = domain != NULL ? strlen(domain) : 0;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > DOMAIN_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		name[i] = g_ascii_tolower(domain[i]);
	name[len] = '\0';
	return sealer_in(config->arc_trusted_sealers, name) ||
	       (policy != NULL && sealer_in(policy->arc_trusted_sealers, name));
}

bool config_policy_same(const struct domain_policy *a, const struct domain_policy *b)
{
	if (a->mode != b->mode)
		return false;
	if (a->mode == DOMAIN_MODE_OFF)
		return true;
	return a->checks == b->checks && a->quarantine_on == b->quarantine_on &&
	       sealers_same(a->arc_trusted_sealers, b->arc_trusted_sealers);
}

bool config_has_domain(const struct config *config, const char *domain)
{
	char name[DOMAIN_NAME_MAX + 1];
	size_t len = domain != NULL ? strlen(domain) : 0;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (config->domain_count == 0 || len == 0 || len > DOMAIN_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		name[i] = g_ascii_tolower(domain[i]);
	name[len] = '\0';
	return bsearch(name, config->domains, config->domain_count, sizeof(*config->domains), domain_key_cmp) != NULL;
}

const char *domain_mode_name(enum domain_mode mode)
{
	switch (mode) {
	case DOMAIN_MODE_ANNOTATE: return "annotate";
	case DOMAIN_MODE_OBSERVE: return "observe";
	case DOMAIN_MODE_OFF: break;
	}
	return "off";
}
