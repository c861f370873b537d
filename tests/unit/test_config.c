/*
 * test_config - configuration loading, validation, policy lookup and
 * network matching.
 *
 * Each case writes a file into a private g_dir_make_tmp directory and loads
 * it; table rows that fail are reported with the row, so one run shows
 * every broken case.
 */
#include "lmtpfilter/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <string.h>

static char *tmp_dir;
static unsigned file_serial;

/* write_config - a new file holding text; g_free the path. */
static char *write_config(const char *text)
{
	char *name = g_strdup_printf("lmtpfilter-%u.conf", file_serial++);
	char *path = g_build_filename(tmp_dir, name, NULL);
	GError *error = NULL;

	g_free(name);
	if (!g_file_set_contents(path, text, -1, &error))
		g_error("cannot write %s: %s", path, error->message);
	return path;
}

/* load_ok - the configuration of text, failing the test on problems. */
static struct config *load_ok(const char *text)
{
	char *path = write_config(text);
	struct config *config = NULL;
	char *error = NULL;

	if (config_load(path, &config, &error) < 0) {
		g_test_fail_printf("unexpected problems for\n%s\n---\n%s", text, error);
		g_free(error);
		config = config_defaults();
	}
	g_free(path);
	return config;
}

/* load_error - the problem text of text (NULL if it loaded); *path_r gets
 * the file name if wanted. */
static char *load_error(const char *text, char **path_r)
{
	char *path = write_config(text);
	struct config *config = NULL;
	char *error = NULL;

	if (config_load(path, &config, &error) == 0) {
		g_assert_nonnull(config);
		config_unref(&config);
		error = NULL;
	} else {
		g_assert_null(config);
		g_assert_nonnull(error);
	}
	if (path_r != NULL)
		*path_r = path;
	else
		g_free(path);
	return error;
}

static bool ip_trusted(const struct config *config, const char *ip)
{
	return config_is_trusted_ip(config, ip);
}

/* ------------------------------------------------------------- defaults */

static void assert_defaults(const struct config *c)
{
	g_assert_cmpuint(c->listen_count, ==, 1);
	g_assert_true(c->listen[0].is_unix);
	g_assert_cmpstr(c->listen[0].path, ==, "/var/spool/postfix/private/filter");
	g_assert_cmpuint(c->listen_mode, ==, 0660);
	g_assert_true(c->downstream.is_unix);
	g_assert_cmpstr(c->downstream.path, ==, "/var/run/dovecot/lmtp");
	g_assert_cmpstr(c->authserv_id, ==, g_get_host_name());
	g_assert_cmpuint(c->authserv_id_alias_count, ==, 0);
	g_assert_nonnull(c->authserv_id_aliases);
	g_assert_cmpuint(c->mta_hostname_count, ==, 1);
	g_assert_cmpstr(c->mta_hostnames[0], ==, g_get_host_name());
	g_assert_cmpuint(c->trusted_network_count, ==, 2);
	g_assert_true(ip_trusted(c, "127.0.0.1"));
	g_assert_true(ip_trusted(c, "127.255.255.255"));
	g_assert_true(ip_trusted(c, "::1"));
	g_assert_false(ip_trusted(c, "128.0.0.1"));
	g_assert_false(ip_trusted(c, "::2"));
	g_assert_true(c->xforward);
	g_assert_cmpuint(c->dns_server_count, ==, 0);
	g_assert_cmpuint(c->dns_timeout, ==, 5);
	g_assert_cmpuint(c->max_message_size, ==, 52428800);
	g_assert_cmpuint(c->max_connections, ==, 64);
	g_assert_cmpuint(c->max_recipients, ==, 1000);
	g_assert_cmpuint(c->timeout, ==, 300);
	g_assert_cmpuint(c->data_timeout, ==, 600);
	g_assert_cmpstr(c->spool_dir, ==, "/var/tmp");
	g_assert_cmpuint(c->spool_memory_limit, ==, 1048576);
	g_assert_cmpint(c->dmarc_discovery, ==, CONFIG_DMARC_DISCOVERY_TREEWALK);
	g_assert_null(c->defaults.domain);
	g_assert_cmpint(c->defaults.mode, ==, DOMAIN_MODE_OFF);
	g_assert_cmpuint(c->defaults.checks, ==, CHECK_SPF | CHECK_DKIM | CHECK_DMARC | CHECK_ARC);
	g_assert_cmpuint(c->domain_count, ==, 0);
}

static void test_defaults(void)
{
	struct config *c = config_defaults();

	assert_defaults(c);
	g_assert_null(c->file);
	config_unref(&c);
	g_assert_null(c);
}

static void test_empty_file_gives_defaults(void)
{
	struct config *c = load_ok("");

	assert_defaults(c);
	g_assert_nonnull(c->file);
	config_unref(&c);

	c = load_ok("# only a comment\n; another\n\n[lmtpfilter]\n[defaults]\n");
	assert_defaults(c);
	config_unref(&c);
}

/* The sample file of the product documentation, inline comments and all. */
static const char sample_conf[] =
	"[lmtpfilter]\n"
	"listen = unix:/var/spool/postfix/private/filter     ; list: unix:PATH, inet:HOST:PORT; empty with systemd socket activation\n"
	"listen_mode = 0660\n"
	"downstream = unix:/var/run/dovecot/lmtp             ; unix:PATH or inet:HOST:PORT\n"
	"authserv_id = mail.example.com                      ; default: the host name\n"
	"authserv_id_aliases =                               ; other ids that count as ours (their A-R headers are stripped too)\n"
	"mta_hostnames = mail.example.com                    ; names our MTAs use in the \"by\" clause of Received\n"
	"trusted_networks = 127.0.0.0/8;::1/128              ; relays we trust (backup MX, content filters); walked past in the trail\n"
	"xforward = yes                                      ; advertise XFORWARD and trust it from unix-socket peers and trusted_networks\n"
	"dns_servers =                                       ; empty: /etc/resolv.conf; else list of IP[@PORT]\n"
	"dns_timeout = 5\n"
	"max_message_size = 52428800\n"
	"max_connections = 64\n"
	"max_recipients = 1000\n"
	"timeout = 300                                       ; idle / per-command timeout, seconds\n"
	"spool_dir = /var/tmp                                ; bodies above spool_memory_limit go to an unlinked temp file here\n"
	"spool_memory_limit = 1048576\n"
	"dmarc_discovery = treewalk                          ; treewalk (RFC 9989 DNS tree walk) | psl (RFC 7489 + public suffix list)\n"
	"metrics_listen =                                    ; inet:127.0.0.1:9466 or unix:PATH; empty: no metrics endpoint\n"
	"\n"
	"[defaults]                                          ; applies to every domain without its own group\n"
	"mode = off                                          ; off | annotate\n"
	"checks = spf;dkim;dmarc\n"
	"\n"
	"[domain example.com]\n"
	"mode = annotate\n";

static void test_sample_file(void)
{
	struct config *c = load_ok(sample_conf);

	g_assert_cmpuint(c->listen_count, ==, 1);
	g_assert_cmpstr(c->listen[0].path, ==, "/var/spool/postfix/private/filter");
	g_assert_cmpstr(c->downstream.path, ==, "/var/run/dovecot/lmtp");
	g_assert_cmpstr(c->authserv_id, ==, "mail.example.com");
	g_assert_cmpuint(c->authserv_id_alias_count, ==, 0);
	g_assert_cmpuint(c->mta_hostname_count, ==, 1);
	g_assert_cmpstr(c->mta_hostnames[0], ==, "mail.example.com");
	g_assert_cmpuint(c->trusted_network_count, ==, 2);
	g_assert_true(c->xforward);
	g_assert_cmpuint(c->dns_server_count, ==, 0);
	g_assert_cmpuint(c->timeout, ==, 300);
	g_assert_cmpstr(c->spool_dir, ==, "/var/tmp");
	g_assert_cmpint(c->dmarc_discovery, ==, CONFIG_DMARC_DISCOVERY_TREEWALK);
	g_assert_cmpint(c->defaults.mode, ==, DOMAIN_MODE_OFF);
	g_assert_cmpuint(c->defaults.checks, ==, CHECK_SPF | CHECK_DKIM | CHECK_DMARC);
	g_assert_cmpuint(c->domain_count, ==, 1);
	g_assert_cmpstr(c->domains[0].domain, ==, "example.com");
	g_assert_cmpint(c->domains[0].mode, ==, DOMAIN_MODE_ANNOTATE);
	g_assert_cmpint(config_policy_for(c, "user@example.com")->mode, ==, DOMAIN_MODE_ANNOTATE);
	config_unref(&c);
}

/* ------------------------------------------------------ good values */

enum field {
	F_LISTEN_MODE, F_DNS_TIMEOUT, F_MAX_MESSAGE_SIZE, F_MAX_CONNECTIONS, F_MAX_RECIPIENTS,
	F_TIMEOUT, F_DATA_TIMEOUT, F_SPOOL_MEMORY_LIMIT, F_XFORWARD, F_DMARC_DISCOVERY,
};

static guint64 field_get(const struct config *c, enum field f)
{
	switch (f) {
	case F_LISTEN_MODE: return c->listen_mode;
	case F_DNS_TIMEOUT: return c->dns_timeout;
	case F_MAX_MESSAGE_SIZE: return c->max_message_size;
	case F_MAX_CONNECTIONS: return c->max_connections;
	case F_MAX_RECIPIENTS: return c->max_recipients;
	case F_TIMEOUT: return c->timeout;
	case F_DATA_TIMEOUT: return c->data_timeout;
	case F_SPOOL_MEMORY_LIMIT: return c->spool_memory_limit;
	case F_XFORWARD: return c->xforward;
	case F_DMARC_DISCOVERY: return c->dmarc_discovery;
	}
	return G_MAXUINT64;
}

static void test_observe_and_quarantine_on(void)
{
	struct config *c = load_ok("[domain watch.example]\n"
				   "mode = observe\n"
				   "[domain strict.example]\n"
				   "mode = annotate\n"
				   "quarantine_on = dmarc ; DMARC only\n"
				   "[domain lax.example]\n"
				   "quarantine_on =\n"
				   "[defaults]\n"
				   "quarantine_on = spf;From\n");
	const struct domain_policy *p;

	p = config_policy_for(c, "a@watch.example");
	g_assert_cmpint(p->mode, ==, DOMAIN_MODE_OBSERVE);
	g_assert_cmpstr(domain_mode_name(p->mode), ==, "observe");
	g_assert_cmpuint(p->quarantine_on, ==, QUARANTINE_ON_SPF | QUARANTINE_ON_FROM);
	g_assert_cmpuint(config_policy_for(c, "a@strict.example")->quarantine_on, ==, QUARANTINE_ON_DMARC);
	g_assert_cmpuint(config_policy_for(c, "a@lax.example")->quarantine_on, ==, 0);
	g_assert_true(config_has_domain(c, "Strict.Example."));
	g_assert_false(config_has_domain(c, "other.example"));
	config_unref(&c);

	/* the built-in default: all three */
	c = load_ok("[domain example.com]\nmode = annotate\n");
	g_assert_cmpuint(config_policy_for(c, "a@example.com")->quarantine_on, ==,
			 QUARANTINE_ON_DMARC | QUARANTINE_ON_SPF | QUARANTINE_ON_FROM);
	config_unref(&c);
}

static const struct {
	const char *text;       /* lines of [lmtpfilter] */
	enum field field;
	guint64 expected;
} good_scalars[] = {
	{ "listen_mode = 0660", F_LISTEN_MODE, 0660 },
	{ "listen_mode = 600", F_LISTEN_MODE, 0600 },
	{ "listen_mode = 0", F_LISTEN_MODE, 0 },
	{ "listen_mode = 0777", F_LISTEN_MODE, 0777 },
	{ "dns_timeout = 1", F_DNS_TIMEOUT, 1 },
	{ "dns_timeout = 60", F_DNS_TIMEOUT, 60 },
	{ "dns_timeout =   7   ", F_DNS_TIMEOUT, 7 },
	{ "max_message_size = 1024\nspool_memory_limit = 0", F_MAX_MESSAGE_SIZE, 1024 },
	{ "max_message_size = 4294967295", F_MAX_MESSAGE_SIZE, 4294967295u },
	{ "max_connections = 1", F_MAX_CONNECTIONS, 1 },
	{ "max_connections = 10000", F_MAX_CONNECTIONS, 10000 },
	{ "max_recipients = 1", F_MAX_RECIPIENTS, 1 },
	{ "max_recipients = 100000", F_MAX_RECIPIENTS, 100000 },
	{ "timeout = 1", F_TIMEOUT, 1 },
	{ "timeout = 3600", F_TIMEOUT, 3600 },
	{ "data_timeout = 1", F_DATA_TIMEOUT, 1 },
	{ "data_timeout = 3600", F_DATA_TIMEOUT, 3600 },
	{ "data_timeout = 600 ; seconds for the whole message", F_DATA_TIMEOUT, 600 },
	/* independent of timeout, either way round */
	{ "timeout = 900\ndata_timeout = 60", F_DATA_TIMEOUT, 60 },
	{ "data_timeout = 60\ntimeout = 900", F_TIMEOUT, 900 },
	{ "spool_memory_limit = 0", F_SPOOL_MEMORY_LIMIT, 0 },
	{ "spool_memory_limit = 52428800", F_SPOOL_MEMORY_LIMIT, 52428800 },
	/* left unset, the memory limit follows a smaller message size */
	{ "max_message_size = 2048", F_SPOOL_MEMORY_LIMIT, 2048 },
	{ "max_message_size = 2048\nspool_memory_limit = 2048", F_SPOOL_MEMORY_LIMIT, 2048 },
	{ "xforward = yes", F_XFORWARD, 1 },
	{ "xforward = true", F_XFORWARD, 1 },
	{ "xforward = no", F_XFORWARD, 0 },
	{ "xforward = false", F_XFORWARD, 0 },
	{ "xforward = No", F_XFORWARD, 0 },
	{ "dmarc_discovery = treewalk", F_DMARC_DISCOVERY, CONFIG_DMARC_DISCOVERY_TREEWALK },
	{ "dmarc_discovery = psl", F_DMARC_DISCOVERY, CONFIG_DMARC_DISCOVERY_PSL },
	{ "dmarc_discovery = PSL ; RFC 7489", F_DMARC_DISCOVERY, CONFIG_DMARC_DISCOVERY_PSL },
};

static void test_good_scalars(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(good_scalars); i++) {
		char *text = g_strdup_printf("[lmtpfilter]\n%s\n", good_scalars[i].text);
		struct config *c = load_ok(text);
		guint64 got = field_get(c, good_scalars[i].field);

		if (got != good_scalars[i].expected)
			g_test_fail_printf("%s: got %" G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT,
					   good_scalars[i].text, got, good_scalars[i].expected);
		config_unref(&c);
		g_free(text);
	}
}

static void test_good_names_and_lists(void)
{
	struct config *c = load_ok("[lmtpfilter]\n"
				   "authserv_id = MX1.Example.NET\n"
				   "authserv_id_aliases = mx2.example.net; mx3.example.net ;old id\n"
				   "dns_servers = 127.0.0.1@5353;::1;192.0.2.53@53;\n"
				   "trusted_networks = 10.0.0.0/8; 192.168.1.7 ;2001:db8::/32\n");

	g_assert_cmpstr(c->authserv_id, ==, "MX1.Example.NET");
	g_assert_cmpuint(c->authserv_id_alias_count, ==, 2);
	g_assert_cmpstr(c->authserv_id_aliases[0], ==, "mx2.example.net");
	g_assert_cmpstr(c->authserv_id_aliases[1], ==, "mx3.example.net");
	g_assert_null(c->authserv_id_aliases[2]);
	/* mta_hostnames defaults to authserv_id */
	g_assert_cmpuint(c->mta_hostname_count, ==, 1);
	g_assert_cmpstr(c->mta_hostnames[0], ==, "MX1.Example.NET");
	g_assert_cmpuint(c->dns_server_count, ==, 3);
	g_assert_cmpstr(c->dns_servers[0], ==, "127.0.0.1@5353");
	g_assert_cmpstr(c->dns_servers[1], ==, "::1");
	g_assert_cmpstr(c->dns_servers[2], ==, "192.0.2.53@53");
	g_assert_null(c->dns_servers[3]);
	g_assert_cmpuint(c->trusted_network_count, ==, 2);
	g_assert_true(ip_trusted(c, "10.1.2.3"));
	/* "192.168.1.7 ;2001:db8::/32": a blank before ';' starts a comment */
	g_assert_false(ip_trusted(c, "2001:db8::1"));
	g_assert_false(ip_trusted(c, "127.0.0.1"));
	config_unref(&c);

	c = load_ok("[lmtpfilter]\n"
		    "authserv_id = mx.example.net\n"
		    "mta_hostnames = a.example.net;b.example.net\n"
		    "trusted_networks = 192.168.1.7;2001:db8::/32;::ffff:10.0.0.0/104\n");
	g_assert_cmpuint(c->mta_hostname_count, ==, 2);
	g_assert_cmpstr(c->mta_hostnames[1], ==, "b.example.net");
	g_assert_cmpuint(c->trusted_network_count, ==, 3);
	g_assert_true(ip_trusted(c, "192.168.1.7"));
	g_assert_false(ip_trusted(c, "192.168.1.8"));
	g_assert_true(ip_trusted(c, "IPv6:2001:db8:ffff::1"));
	g_assert_true(ip_trusted(c, "10.9.9.9"));
	config_unref(&c);

	/* explicitly empty: trust nobody, no aliases; mta_hostnames keeps its default */
	c = load_ok("[lmtpfilter]\ntrusted_networks =\nauthserv_id_aliases=\nmta_hostnames =\nauthserv_id =\n");
	g_assert_cmpuint(c->trusted_network_count, ==, 0);
	g_assert_false(ip_trusted(c, "127.0.0.1"));
	g_assert_cmpuint(c->authserv_id_alias_count, ==, 0);
	g_assert_cmpstr(c->authserv_id, ==, g_get_host_name());
	g_assert_cmpuint(c->mta_hostname_count, ==, 1);
	g_assert_cmpstr(c->mta_hostnames[0], ==, g_get_host_name());
	config_unref(&c);

	c = load_ok("[lmtpfilter]\nspool_dir = /tmp\n");
	g_assert_cmpstr(c->spool_dir, ==, "/tmp");
	config_unref(&c);
}

/* ------------------------------------------------------------ endpoints */

static void test_metrics_listen(void)
{
	struct config *c = load_ok("[lmtpfilter]\nmetrics_listen = inet:127.0.0.1:9466\n");

	g_assert_true(c->metrics_enabled);
	g_assert_false(c->metrics_listen.is_unix);
	g_assert_cmpstr(c->metrics_listen.host, ==, "127.0.0.1");
	g_assert_cmpstr(c->metrics_listen.port, ==, "9466");
	config_unref(&c);
	c = load_ok("[lmtpfilter]\nmetrics_listen = unix:/run/lmtpfilter/metrics\n");
	g_assert_true(c->metrics_enabled);
	g_assert_cmpstr(c->metrics_listen.path, ==, "/run/lmtpfilter/metrics");
	config_unref(&c);
	c = load_ok("[lmtpfilter]\nmetrics_listen =\n");
	g_assert_false(c->metrics_enabled);
	config_unref(&c);
	c = load_ok("");
	g_assert_false(c->metrics_enabled);
	config_unref(&c);
}

static void test_endpoints(void)
{
	struct config *c = load_ok("[lmtpfilter]\n"
				   "listen = unix:/run/lmtpfilter/lmtp;inet:127.0.0.1:2424;inet:[::1]:24;"
				   "inet:localhost:10024\n"
				   "downstream = inet:[2001:db8::25]:65535\n");

	g_assert_cmpuint(c->listen_count, ==, 4);
	g_assert_true(c->listen[0].is_unix);
	g_assert_cmpstr(c->listen[0].path, ==, "/run/lmtpfilter/lmtp");
	g_assert_false(c->listen[1].is_unix);
	g_assert_cmpstr(c->listen[1].host, ==, "127.0.0.1");
	g_assert_cmpstr(c->listen[1].port, ==, "2424");
	g_assert_cmpstr(c->listen[2].host, ==, "::1");
	g_assert_cmpstr(c->listen[2].port, ==, "24");
	g_assert_cmpstr(c->listen[3].host, ==, "localhost");
	g_assert_cmpstr(c->listen[3].port, ==, "10024");
	g_assert_false(c->downstream.is_unix);
	g_assert_cmpstr(c->downstream.host, ==, "2001:db8::25");
	g_assert_cmpstr(c->downstream.port, ==, "65535");
	config_unref(&c);

	/* empty listen: systemd socket activation */
	c = load_ok("[lmtpfilter]\nlisten =\ndownstream = inet:lmtp.example.net:1\n");
	g_assert_cmpuint(c->listen_count, ==, 0);
	g_assert_cmpstr(c->downstream.host, ==, "lmtp.example.net");
	g_assert_cmpstr(c->downstream.port, ==, "1");
	config_unref(&c);
}

/* ------------------------------------------------------- bad values */

static const struct {
	const char *group;
	const char *key;
	const char *value;
	const char *problem;    /* expected text after "FILE: [group] key: " */
} bad_values[] = {
	{ "lmtpfilter", "dns_timeout", "abc", "must be an integer between 1 and 60, got \"abc\"" },
	{ "lmtpfilter", "dns_timeout", "0", "must be an integer between 1 and 60, got \"0\"" },
	{ "lmtpfilter", "dns_timeout", "61", "must be an integer between 1 and 60, got \"61\"" },
	{ "lmtpfilter", "dns_timeout", "-1", "must be an integer between 1 and 60, got \"-1\"" },
	{ "lmtpfilter", "dns_timeout", "5s", "must be an integer between 1 and 60, got \"5s\"" },
	{ "lmtpfilter", "dns_timeout", "", "must be an integer between 1 and 60, got \"\"" },
	{ "lmtpfilter", "listen_mode", "0800", "must be an octal file mode between 0 and 0777, got \"0800\"" },
	{ "lmtpfilter", "listen_mode", "01000", "must be an octal file mode between 0 and 0777, got \"01000\"" },
	{ "lmtpfilter", "listen_mode", "rw", "must be an octal file mode between 0 and 0777, got \"rw\"" },
	{ "lmtpfilter", "max_message_size", "1023",
	  "must be an integer between 1024 and 4294967295, got \"1023\"" },
	{ "lmtpfilter", "max_message_size", "4294967296",
	  "must be an integer between 1024 and 4294967295, got \"4294967296\"" },
	{ "lmtpfilter", "max_message_size", "50M", "must be an integer between 1024 and 4294967295, got \"50M\"" },
	{ "lmtpfilter", "max_connections", "0", "must be an integer between 1 and 10000, got \"0\"" },
	{ "lmtpfilter", "max_connections", "10001", "must be an integer between 1 and 10000, got \"10001\"" },
	{ "lmtpfilter", "max_recipients", "0", "must be an integer between 1 and 100000, got \"0\"" },
	{ "lmtpfilter", "max_recipients", "100001", "must be an integer between 1 and 100000, got \"100001\"" },
	{ "lmtpfilter", "timeout", "0", "must be an integer between 1 and 3600, got \"0\"" },
	{ "lmtpfilter", "timeout", "3601", "must be an integer between 1 and 3600, got \"3601\"" },
	{ "lmtpfilter", "timeout", "99999999999999999999999",
	  "must be an integer between 1 and 3600, got \"99999999999999999999999\"" },
	{ "lmtpfilter", "data_timeout", "0", "must be an integer between 1 and 3600, got \"0\"" },
	{ "lmtpfilter", "data_timeout", "3601", "must be an integer between 1 and 3600, got \"3601\"" },
	{ "lmtpfilter", "data_timeout", "-5", "must be an integer between 1 and 3600, got \"-5\"" },
	{ "lmtpfilter", "data_timeout", "10m", "must be an integer between 1 and 3600, got \"10m\"" },
	{ "lmtpfilter", "data_timeout", "", "must be an integer between 1 and 3600, got \"\"" },
	{ "domain example.com", "data_timeout", "600", "unknown key" },
	{ "defaults", "data_timeout", "600", "unknown key" },
	{ "lmtpfilter", "Data_Timeout", "600", "unknown key (did you mean data_timeout?)" },
	{ "lmtpfilter", "spool_memory_limit", "52428801",
	  "must not exceed max_message_size (52428800), got 52428801" },
	{ "lmtpfilter", "spool_memory_limit", "x", "must be an integer between 0 and 4294967295, got \"x\"" },
	{ "lmtpfilter", "xforward", "maybe", "must be yes or no, got \"maybe\"" },
	{ "lmtpfilter", "xforward", "", "must be yes or no, got \"\"" },
	{ "lmtpfilter", "dmarc_discovery", "dns", "must be treewalk or psl, got \"dns\"" },
	{ "lmtpfilter", "dmarc_discovery", "", "must be treewalk or psl, got \"\"" },
	{ "defaults", "dmarc_discovery", "psl", "unknown key" },
	{ "domain example.com", "dmarc_discovery", "psl", "unknown key" },
	{ "lmtpfilter", "downstream", "", "must be unix:PATH or inet:HOST:PORT, got \"\"" },
	{ "lmtpfilter", "downstream", "/var/run/dovecot/lmtp",
	  "must be unix:PATH or inet:HOST:PORT, got \"/var/run/dovecot/lmtp\"" },
	{ "lmtpfilter", "metrics_listen", "127.0.0.1:9466", "must be unix:PATH or inet:HOST:PORT, got \"127.0.0.1:9466\"" },
	{ "lmtpfilter", "metrics_listen", "inet:127.0.0.1:0", "port must be a number between 1 and 65535, got \"inet:127.0.0.1:0\"" },
	{ "lmtpfilter", "downstream", "tcp:127.0.0.1:24", "must be unix:PATH or inet:HOST:PORT, got \"tcp:127.0.0.1:24\"" },
	{ "lmtpfilter", "downstream", "unix:private/dovecot-lmtp",
	  "unix socket path must be absolute, got \"unix:private/dovecot-lmtp\"" },
	{ "lmtpfilter", "downstream", "unix:", "unix socket path must be absolute, got \"unix:\"" },
	{ "lmtpfilter", "downstream", "inet:127.0.0.1", "missing :PORT, got \"inet:127.0.0.1\"" },
	{ "lmtpfilter", "downstream", "inet:127.0.0.1:0",
	  "port must be a number between 1 and 65535, got \"inet:127.0.0.1:0\"" },
	{ "lmtpfilter", "downstream", "inet:127.0.0.1:65536",
	  "port must be a number between 1 and 65535, got \"inet:127.0.0.1:65536\"" },
	{ "lmtpfilter", "downstream", "inet:127.0.0.1:lmtp",
	  "port must be a number between 1 and 65535, got \"inet:127.0.0.1:lmtp\"" },
	{ "lmtpfilter", "downstream", "inet:127.0.0.1:", "port must be a number between 1 and 65535, got \"inet:127.0.0.1:\"" },
	{ "lmtpfilter", "downstream", "inet:::1:24",
	  "an IPv6 address must be in brackets, as inet:[::1]:PORT, got \"inet:::1:24\"" },
	{ "lmtpfilter", "downstream", "inet:[::1]24", "expected inet:[IPv6]:PORT, got \"inet:[::1]24\"" },
	{ "lmtpfilter", "downstream", "inet:[127.0.0.1]:24",
	  "invalid IPv6 address in brackets, got \"inet:[127.0.0.1]:24\"" },
	{ "lmtpfilter", "downstream", "inet:[zz::1]:24", "invalid IPv6 address in brackets, got \"inet:[zz::1]:24\"" },
	{ "lmtpfilter", "downstream", "inet::24",
	  "invalid host: expected an IP address or a host name, got \"inet::24\"" },
	{ "lmtpfilter", "downstream", "inet:bad_host!:24",
	  "invalid host: expected an IP address or a host name, got \"inet:bad_host!:24\"" },
	{ "lmtpfilter", "listen", "unix:/ok;unix:relative",
	  "unix socket path must be absolute, got \"unix:relative\"" },
	{ "lmtpfilter", "listen", "inet:0.0.0.0:99999", "port must be a number between 1 and 65535, got \"inet:0.0.0.0:99999\"" },
	{ "lmtpfilter", "trusted_networks", "10.0.0.0/33",
	  "must be a network as ADDRESS or ADDRESS/PREFIX, got \"10.0.0.0/33\"" },
	{ "lmtpfilter", "trusted_networks", "10.0.0", "must be a network as ADDRESS or ADDRESS/PREFIX, got \"10.0.0\"" },
	{ "lmtpfilter", "trusted_networks", "::1/129", "must be a network as ADDRESS or ADDRESS/PREFIX, got \"::1/129\"" },
	{ "lmtpfilter", "trusted_networks", "localhost",
	  "must be a network as ADDRESS or ADDRESS/PREFIX, got \"localhost\"" },
	{ "lmtpfilter", "trusted_networks", "10.1.2.3/8",
	  "has host bits set below the prefix (did you mean 10.0.0.0/8?), got \"10.1.2.3/8\"" },
	{ "lmtpfilter", "trusted_networks", "2001:db8::1/64",
	  "has host bits set below the prefix (did you mean 2001:db8::/64?), got \"2001:db8::1/64\"" },
	{ "lmtpfilter", "dns_servers", "127.0.0.1@0", "must be IP or IP@PORT (port 1..65535), got \"127.0.0.1@0\"" },
	{ "lmtpfilter", "dns_servers", "127.0.0.1@65536",
	  "must be IP or IP@PORT (port 1..65535), got \"127.0.0.1@65536\"" },
	{ "lmtpfilter", "dns_servers", "ns1.example.net", "must be IP or IP@PORT (port 1..65535), got \"ns1.example.net\"" },
	{ "lmtpfilter", "dns_servers", "127.0.0.1:53", "must be IP or IP@PORT (port 1..65535), got \"127.0.0.1:53\"" },
	{ "lmtpfilter", "dns_servers", "[::1]@53", "must be IP or IP@PORT (port 1..65535), got \"[::1]@53\"" },
	{ "lmtpfilter", "authserv_id", "mail example com", "must be a host name, got \"mail example com\"" },
	{ "lmtpfilter", "authserv_id", "-mail.example.com", "must be a host name, got \"-mail.example.com\"" },
	{ "lmtpfilter", "authserv_id", "mail..example.com", "must be a host name, got \"mail..example.com\"" },
	{ "lmtpfilter", "authserv_id_aliases", "ok.example.com;bad/name", "must be a host name, got \"bad/name\"" },
	{ "lmtpfilter", "mta_hostnames", "a.example.com;b_c.example.com", "must be a host name, got \"b_c.example.com\"" },
	{ "lmtpfilter", "spool_dir", "var/tmp", "must be an absolute directory path, got \"var/tmp\"" },
	{ "lmtpfilter", "spool_dir", "", "must be an absolute directory path, got \"\"" },
	{ "lmtpfilter", "spool_dir", "/nonexistent/lmtpfilter/spool",
	  "must be an existing directory, got \"/nonexistent/lmtpfilter/spool\"" },
	{ "lmtpfilter", "Listen", "unix:/x", "unknown key (did you mean listen?)" },
	{ "lmtpfilter", "mode", "annotate", "unknown key" },
	{ "defaults", "mode", "reject", "must be off, observe or annotate, got \"reject\"" },
	{ "defaults", "mode", "", "must be off, observe or annotate, got \"\"" },
	{ "defaults", "checks", "spf;arcs", "must be a list of spf, dkim, dmarc, arc, got \"arcs\"" },
	{ "lmtpfilter", "arc_trusted_sealers", "lists.example.org;bad name",
	  "must be a domain name (d= of an ARC-Seal), got \"bad name\"" },
	{ "defaults", "arc_trusted_sealers", "-x.example.org", "must be a domain name (d= of an ARC-Seal), got \"-x.example.org\"" },
	{ "defaults", "listen", "unix:/x", "unknown key" },
	{ "defaults", "Mode", "off", "unknown key (did you mean mode?)" },
	{ "domain example.com", "mode", "on", "must be off, observe or annotate, got \"on\"" },
	{ "domain example.com", "checks", "dkim;spf2", "must be a list of spf, dkim, dmarc, arc, got \"spf2\"" },
	{ "domain example.com", "timeout", "5", "unknown key" },
	{ "defaults", "quarantine_on", "dmarc;arc", "must be a list of dmarc, spf, from, got \"arc\"" },
	{ "domain example.com", "quarantine_on", "spf;dkim", "must be a list of dmarc, spf, from, got \"dkim\"" },
};

static void test_bad_values(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(bad_values); i++) {
		char *text = g_strdup_printf("[%s]\n%s = %s\n", bad_values[i].group, bad_values[i].key,
					     bad_values[i].value);
		char *path;
		char *error = load_error(text, &path);
		char *expected = g_strdup_printf("%s: [%s] %s: %s", path, bad_values[i].group, bad_values[i].key,
						 bad_values[i].problem);

		if (g_strcmp0(error, expected) != 0)
			g_test_fail_printf("[%s] %s = %s\n  got:      %s\n  expected: %s", bad_values[i].group,
					   bad_values[i].key, bad_values[i].value, error != NULL ? error : "(loaded)",
					   expected);
		g_free(expected);
		g_free(error);
		g_free(path);
		g_free(text);
	}
}

static void test_too_many_listeners(void)
{
	GString *text = g_string_new("[lmtpfilter]\nlisten = ");
	char *error;

	for (int i = 0; i <= CONFIG_LISTEN_MAX; i++)
		g_string_append_printf(text, "inet:127.0.0.1:%d;", 2000 + i);
	error = load_error(text->str, NULL);
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error, "[lmtpfilter] listen: too many items (17, at most 16)"));
	g_free(error);
	g_string_free(text, TRUE);
}

/* ------------------------------------------------------- inline comments */

static void test_inline_comment_values(void)
{
	struct config *c = load_ok("; a comment line\n"
				   "   ; an indented comment line\n"
				   "# a GKeyFile comment line\n"
				   "[lmtpfilter]   ; the daemon\n"
				   "dns_timeout = 7 ; seconds\n"
				   "timeout = 30\t; tab before the semicolon\n"
				   "trusted_networks = 127.0.0.0/8;::1/128 ; two networks\n"
				   "dns_servers = 192.0.2.1;192.0.2.2; ; comment after a trailing separator\n"
				   "authserv_id = mx.example.org\t\t; with tabs\r\n"
				   "mta_hostnames = a.example.org;b.example.org;\r\n"
				   "[defaults]\t; tab\n"
				   "mode = annotate ; on for all\n"
				   "[domain example.org] ; comment\n"
				   "checks = dkim ; only DKIM\n");

	g_assert_cmpuint(c->dns_timeout, ==, 7);
	g_assert_cmpuint(c->timeout, ==, 30);
	g_assert_cmpuint(c->trusted_network_count, ==, 2);
	g_assert_true(ip_trusted(c, "::1"));
	g_assert_cmpuint(c->dns_server_count, ==, 2);
	g_assert_cmpstr(c->dns_servers[1], ==, "192.0.2.2");
	g_assert_cmpstr(c->authserv_id, ==, "mx.example.org");
	g_assert_cmpuint(c->mta_hostname_count, ==, 2);
	g_assert_cmpint(c->defaults.mode, ==, DOMAIN_MODE_ANNOTATE);
	g_assert_cmpuint(c->domain_count, ==, 1);
	g_assert_cmpuint(c->domains[0].checks, ==, CHECK_DKIM);
	config_unref(&c);

	/* a ';' right after a value is a list separator, not a comment */
	char *error = load_error("[lmtpfilter]\ndns_timeout = 5;comment\n", NULL);
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error, "dns_timeout: must be an integer between 1 and 60, got \"5;comment\""));
	g_free(error);
}

/* ------------------------------------------------------------ domains */

static void test_domain_inheritance(void)
{
	/* [defaults] after the domain groups still applies to them */
	struct config *c = load_ok("[domain Example.COM]\n"
				   "checks = dkim;dmarc\n"
				   "[domain other.org]\n"
				   "mode = off\n"
				   "[domain third.net]\n"
				   "checks =\n"
				   "[defaults]\n"
				   "mode = annotate\n"
				   "checks = spf\n");
	const struct domain_policy *p;

	g_assert_cmpint(c->defaults.mode, ==, DOMAIN_MODE_ANNOTATE);
	g_assert_cmpuint(c->defaults.checks, ==, CHECK_SPF);
	g_assert_cmpuint(c->domain_count, ==, 3);

	p = config_policy_for(c, "someone@example.com");
	g_assert_cmpstr(p->domain, ==, "example.com");
	g_assert_cmpint(p->mode, ==, DOMAIN_MODE_ANNOTATE);
	g_assert_cmpuint(p->checks, ==, CHECK_DKIM | CHECK_DMARC);

	p = config_policy_for(c, "someone@other.org");
	g_assert_cmpstr(p->domain, ==, "other.org");
	g_assert_cmpint(p->mode, ==, DOMAIN_MODE_OFF);
	g_assert_cmpuint(p->checks, ==, CHECK_SPF);

	p = config_policy_for(c, "someone@third.net");
	g_assert_cmpint(p->mode, ==, DOMAIN_MODE_ANNOTATE);
	g_assert_cmpuint(p->checks, ==, 0);
	config_unref(&c);

	/* without [defaults], domains inherit the built-in defaults */
	c = load_ok("[domain example.com]\nmode = Annotate\n");
	p = config_policy_for(c, "a@example.com");
	g_assert_cmpint(p->mode, ==, DOMAIN_MODE_ANNOTATE);
	g_assert_cmpuint(p->checks, ==, CHECK_SPF | CHECK_DKIM | CHECK_DMARC | CHECK_ARC);
	config_unref(&c);
}

static const struct {
	const char *text;
	const char *problem;    /* expected after "FILE: " */
} bad_groups[] = {
	{ "[lmtpfiltre]\nlisten =\n",
	  "[lmtpfiltre]: unknown group (expected [lmtpfilter], [defaults] or [domain NAME])" },
	{ "[domains example.com]\nmode = off\n",
	  "[domains example.com]: unknown group (expected [lmtpfilter], [defaults] or [domain NAME])" },
	{ "[domain]\nmode = off\n", "[domain]: missing domain name, as [domain example.com]" },
	{ "[domain example..com]\nmode = off\n", "[domain example..com]: not a valid domain name" },
	{ "[domain *.example.com]\nmode = off\n", "[domain *.example.com]: not a valid domain name" },
	{ "[domain example.com.]\nmode = off\n", "[domain example.com.]: not a valid domain name" },
	{ "[domain example.com]\nmode = off\n[domain EXAMPLE.com]\nmode = annotate\n",
	  "[domain example.com]: defined more than once (domain names are case-insensitive)" },
	{ "[lmtpfilter]\ntimeout = 5\ntimeout = 6\n", "[lmtpfilter] timeout: set more than once" },
	{ "[defaults]\nmode = off\n[defaults]\nmode = annotate\n", "[defaults] mode: set more than once" },
};

static void test_bad_groups(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(bad_groups); i++) {
		char *path;
		char *error = load_error(bad_groups[i].text, &path);
		char *expected = g_strdup_printf("%s: %s", path, bad_groups[i].problem);

		if (g_strcmp0(error, expected) != 0)
			g_test_fail_printf("%s\n  got:      %s\n  expected: %s", bad_groups[i].text,
					   error != NULL ? error : "(loaded)", expected);
		g_free(expected);
		g_free(error);
		g_free(path);
	}
}

static void test_several_problems(void)
{
	char *path;
	char *error = load_error("[lmtpfilter]\n"
				 "dns_timeout = abc\n"
				 "listen = inet:[::1]:0\n"
				 "colour = blue\n"
				 "[defaults]\n"
				 "mode = loud\n"
				 "[nonsense]\n"
				 "[domain example.com]\n"
				 "checks = spf;nope\n",
				 &path);
	char *expected = g_strdup_printf(
		"%1$s: [lmtpfilter] dns_timeout: must be an integer between 1 and 60, got \"abc\"\n"
		"%1$s: [lmtpfilter] listen: port must be a number between 1 and 65535, got \"inet:[::1]:0\"\n"
		"%1$s: [lmtpfilter] colour: unknown key\n"
		"%1$s: [defaults] mode: must be off, observe or annotate, got \"loud\"\n"
		"%1$s: [nonsense]: unknown group (expected [lmtpfilter], [defaults] or [domain NAME])\n"
		"%1$s: [domain example.com] checks: must be a list of spf, dkim, dmarc, arc, got \"nope\"",
		path);

	g_assert_cmpstr(error, ==, expected);
	g_free(expected);
	g_free(error);
	g_free(path);
}

static void test_unreadable_and_syntax(void)
{
	struct config *c = (struct config *)&c;   /* must be reset to NULL */
	char *error = NULL;
	char *missing = g_build_filename(tmp_dir, "does-not-exist.conf", NULL);
	char *expected = g_strdup_printf("%s: cannot read configuration: %s", missing, g_strerror(ENOENT));

	g_assert_cmpint(config_load(missing, &c, &error), ==, -1);
	g_assert_null(c);
	g_assert_cmpstr(error, ==, expected);
	g_free(error);
	g_free(expected);

	/* a directory cannot be read as a file */
	g_assert_cmpint(config_load(tmp_dir, &c, &error), ==, -1);
	g_assert_true(g_str_has_prefix(error, tmp_dir));
	g_assert_nonnull(strstr(error, "cannot read configuration"));
	g_free(error);

	char *path;
	error = load_error("[lmtpfilter]\nthis line is not a key\n", &path);
	g_assert_nonnull(error);
	g_assert_true(g_str_has_prefix(error, path));
	g_assert_nonnull(strstr(error, "this line is not a key"));
	g_free(error);
	g_free(path);

	error = load_error("timeout = 5\n[lmtpfilter]\n", &path);
	g_assert_nonnull(error);
	g_assert_true(g_str_has_prefix(error, path));
	g_free(error);
	g_free(path);
	g_free(missing);
}

/* -------------------------------------------------------------- netaddr */

static const struct {
	const char *net;
	const char *addr;
	bool inside;
} net_cases[] = {
	{ "10.0.0.0/8", "10.0.0.0", true },
	{ "10.0.0.0/8", "10.255.255.255", true },
	{ "10.0.0.0/8", "9.255.255.255", false },
	{ "10.0.0.0/8", "11.0.0.0", false },
	{ "192.168.1.128/25", "192.168.1.128", true },
	{ "192.168.1.128/25", "192.168.1.255", true },
	{ "192.168.1.128/25", "192.168.1.127", false },
	{ "192.0.2.4/31", "192.0.2.5", true },
	{ "192.0.2.4/31", "192.0.2.6", false },
	{ "192.0.2.7/32", "192.0.2.7", true },
	{ "192.0.2.7/32", "192.0.2.8", false },
	{ "192.0.2.7", "192.0.2.7", true },
	{ "192.0.2.7", "192.0.2.6", false },
	{ "0.0.0.0/0", "0.0.0.0", true },
	{ "0.0.0.0/0", "255.255.255.255", true },
	{ "0.0.0.0/0", "2001:db8::1", false },
	/* IPv4-mapped IPv6 addresses are IPv4 */
	{ "10.0.0.0/8", "::ffff:10.1.2.3", true },
	{ "10.0.0.0/8", "::ffff:11.1.2.3", false },
	{ "0.0.0.0/0", "::ffff:1.2.3.4", true },
	{ "::ffff:10.0.0.0/104", "10.20.30.40", true },
	{ "::ffff:10.0.0.0/104", "::ffff:10.20.30.40", true },
	{ "::ffff:10.0.0.0/104", "11.0.0.0", false },
	{ "::ffff:192.0.2.1", "192.0.2.1", true },
	/* ...and IPv6 networks do not cover them */
	{ "::/0", "::ffff:10.1.2.3", false },
	{ "::/0", "10.1.2.3", false },
	{ "::/0", "2001:db8::1", true },
	{ "::/0", "::", true },
	{ "2001:db8::/32", "2001:db8::", true },
	{ "2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true },
	{ "2001:db8::/32", "2001:db9::", false },
	{ "2001:db8::/32", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false },
	{ "2001:db8:0:1::/64", "2001:db8:0:1:ffff:ffff:ffff:ffff", true },
	{ "2001:db8:0:1::/64", "2001:db8:0:2::", false },
	{ "2001:db8::/33", "2001:db8:7fff::1", true },
	{ "2001:db8::/33", "2001:db8:8000::1", false },
	{ "::1/128", "::1", true },
	{ "::1", "::1", true },
	{ "::1/128", "::2", false },
	{ "::1/128", "127.0.0.1", false },
	{ "127.0.0.1", "::1", false },
};

static bool address_parse(const char *text, int *family_r, unsigned char *addr)
{
	if (inet_pton(AF_INET, text, addr) == 1) {
		*family_r = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, addr) == 1) {
		*family_r = AF_INET6;
		return true;
	}
	return false;
}

static void test_netaddr_contains(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(net_cases); i++) {
		struct netaddr net;
		unsigned char addr[16];
		int family = 0;

		if (netaddr_parse(net_cases[i].net, &net) < 0) {
			g_test_fail_printf("netaddr_parse(\"%s\") failed", net_cases[i].net);
			continue;
		}
		g_assert_true(address_parse(net_cases[i].addr, &family, addr));
		if (netaddr_list_contains(&net, 1, family, addr) != net_cases[i].inside)
			g_test_fail_printf("%s contains %s: expected %s", net_cases[i].net, net_cases[i].addr,
					   net_cases[i].inside ? "yes" : "no");
	}
}

static void test_netaddr_parse(void)
{
	static const struct {
		const char *text;
		int family;
		unsigned prefix;
	} good[] = {
		{ "1.2.3.4", AF_INET, 32 },
		{ "1.2.3.0/24", AF_INET, 24 },
		{ "0.0.0.0/0", AF_INET, 0 },
		{ "::1", AF_INET6, 128 },
		{ "2001:db8::/32", AF_INET6, 32 },
		{ "::/0", AF_INET6, 0 },
		{ "::ffff:1.2.3.4", AF_INET, 32 },
		{ "::ffff:1.2.0.0/112", AF_INET, 16 },
		{ "::ffff:0:0/96", AF_INET, 0 },
		{ "::ffff:0:0/95", AF_INET6, 95 },
	};
	static const char *const bad[] = {
		"", "/8", "1.2.3.4/", "1.2.3.4/33", "1.2.3.4/-1", "1.2.3.4/+8", "1.2.3.4/ 8", "1.2.3.4/0008",
		"1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4x", "::1/129", "[::1]", "fe80::1%eth0", "example.com",
		"1.2.3.4/8/8", "1:2:3:4:5:6:7:8:9",
	};
	struct netaddr net;

	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		if (netaddr_parse(good[i].text, &net) < 0 || net.family != good[i].family ||
		    net.prefix != good[i].prefix)
			g_test_fail_printf("netaddr_parse(\"%s\"): expected family %d /%u", good[i].text,
					   good[i].family, good[i].prefix);
	}
	g_assert_cmpint(netaddr_parse("::ffff:1.2.3.4", &net), ==, 0);
	g_assert_cmpmem(net.addr, 4, "\x01\x02\x03\x04", 4);
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		if (netaddr_parse(bad[i], &net) == 0)
			g_test_fail_printf("netaddr_parse(\"%s\") accepted", bad[i]);
	}
}

static void test_netaddr_list(void)
{
	struct netaddr nets[2];
	unsigned char addr[16];
	int family = 0;

	g_assert_cmpint(netaddr_parse("192.0.2.0/24", &nets[0]), ==, 0);
	g_assert_cmpint(netaddr_parse("2001:db8::/32", &nets[1]), ==, 0);
	g_assert_true(address_parse("2001:db8::5", &family, addr));
	g_assert_true(netaddr_list_contains(nets, 2, family, addr));
	g_assert_false(netaddr_list_contains(nets, 1, family, addr));
	g_assert_false(netaddr_list_contains(nets, 0, family, addr));
	g_assert_true(address_parse("192.0.2.200", &family, addr));
	g_assert_true(netaddr_list_contains(nets, 2, family, addr));
	g_assert_false(netaddr_list_contains(nets, 2, AF_UNIX, addr));
}

static void test_trusted_ip_text(void)
{
	struct config *c = load_ok("[lmtpfilter]\ntrusted_networks = 127.0.0.0/8;::1/128;2001:db8:1::/48\n");
	static const struct {
		const char *ip;
		bool trusted;
	} cases[] = {
		{ "127.0.0.1", true },
		{ "::1", true },
		{ "IPv6:::1", true },
		{ "ipv6:::1", true },
		{ "IPv6:2001:db8:1:ffff::1", true },
		{ "IPv6:2001:db8:2::1", false },
		{ "::ffff:127.0.0.1", true },
		{ "IPv6:::ffff:127.0.0.1", true },
		{ "::ffff:128.0.0.1", false },
		{ "IPv6:127.0.0.1", false },
		{ "[127.0.0.1]", false },
		{ "127.0.0.1 ", false },
		{ "localhost", false },
		{ "", false },
		{ "unknown", false },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		if (config_is_trusted_ip(c, cases[i].ip) != cases[i].trusted)
			g_test_fail_printf("config_is_trusted_ip(\"%s\"): expected %s", cases[i].ip,
					   cases[i].trusted ? "trusted" : "untrusted");
	}
	g_assert_false(config_is_trusted_ip(c, NULL));
	config_unref(&c);
}

/* --------------------------------------------------------- policy lookup */

static void test_policy_lookup(void)
{
	struct config *c = load_ok("[defaults]\nchecks = spf\n"
				   "[domain b.example]\nmode = annotate\n"
				   "[domain A.example]\nmode = annotate\nchecks = dkim\n"
				   "[domain c.example]\nmode = off\n");
	static const struct {
		const char *address;
		const char *domain;      /* NULL: [defaults] */
	} cases[] = {
		{ "user@a.example", "a.example" },
		{ "User@A.EXAMPLE", "a.example" },
		{ "user@b.example", "b.example" },
		{ "user@c.example", "c.example" },
		{ "\"odd@local\"@b.example", "b.example" },
		{ "user@sub.a.example", NULL },
		{ "user@example", NULL },
		{ "user@a.example.org", NULL },
		{ "a.example", NULL },
		{ "postmaster", NULL },
		{ "user@", NULL },
		{ "", NULL },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const struct domain_policy *p = config_policy_for(c, cases[i].address);
		g_assert_nonnull(p);
		if (g_strcmp0(p->domain, cases[i].domain) != 0)
			g_test_fail_printf("policy for \"%s\": got %s, expected %s", cases[i].address,
					   p->domain != NULL ? p->domain : "[defaults]",
					   cases[i].domain != NULL ? cases[i].domain : "[defaults]");
	}
	g_assert_true(config_policy_for(c, NULL) == &c->defaults);
	g_assert_cmpuint(config_policy_for(c, "x@a.example")->checks, ==, CHECK_DKIM);
	g_assert_cmpuint(config_policy_for(c, "x@b.example")->checks, ==, CHECK_SPF);
	g_assert_cmpint(config_policy_for(c, "x@other.example")->mode, ==, DOMAIN_MODE_OFF);
	config_unref(&c);

	c = config_defaults();
	g_assert_true(config_policy_for(c, "user@example.com") == &c->defaults);
	config_unref(&c);
}

/* ------------------------------------------------------------- refcount */

#define REF_THREADS 4
#define REF_ROUNDS 100000

static gpointer ref_worker(gpointer data)
{
	struct config *shared = data;

	for (int i = 0; i < REF_ROUNDS; i++) {
		struct config *mine = config_ref(shared);
		g_assert_true(mine == shared);
		config_unref(&mine);
		g_assert_null(mine);
	}
	return NULL;
}

static void test_refcount(void)
{
	struct config *c = load_ok("[lmtpfilter]\ntimeout = 9\n");
	struct config *other = config_ref(c);
	GThread *threads[REF_THREADS];

	g_assert_true(other == c);
	g_assert_cmpint(g_atomic_int_get(&c->refcount), ==, 2);
	config_unref(&other);
	g_assert_null(other);
	g_assert_cmpint(g_atomic_int_get(&c->refcount), ==, 1);

	for (int i = 0; i < REF_THREADS; i++)
		threads[i] = g_thread_new("ref", ref_worker, c);
	for (int i = 0; i < REF_THREADS; i++)
		g_thread_join(threads[i]);
	g_assert_cmpint(g_atomic_int_get(&c->refcount), ==, 1);
	g_assert_cmpuint(c->timeout, ==, 9);

	config_unref(&c);
	g_assert_null(c);
	config_unref(&c);       /* already NULL: nothing happens */
	config_unref(NULL);
}

/* ------------------------------------------------------------------ main */

static void tmp_dir_remove(void)
{
	GDir *dir = g_dir_open(tmp_dir, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		char *path = g_build_filename(tmp_dir, name, NULL);
		g_unlink(path);
		g_free(path);
	}
	if (dir != NULL)
		g_dir_close(dir);
	g_rmdir(tmp_dir);
}

/* The report keys: values kept, empty ones meaning "none", bad ones refused. */
static void test_report_keys(void)
{
	char *text = g_strdup_printf("[lmtpfilter]\ndmarc_history = %s\nreport_org_name = Example Mail\n"
				     "report_email = dmarc@mx.example.com\n"
				     "report_sendmail = /usr/sbin/sendmail -C /etc/postfix-out\n", tmp_dir);
	struct config *c = load_ok(text);

	g_assert_cmpstr(c->dmarc_history, ==, tmp_dir);
	g_assert_cmpstr(c->report_org_name, ==, "Example Mail");
	g_assert_cmpstr(c->report_email, ==, "dmarc@mx.example.com");
	g_assert_cmpstr(c->report_sendmail, ==, "/usr/sbin/sendmail -C /etc/postfix-out");
	config_unref(&c);
	g_free(text);

	c = load_ok("[lmtpfilter]\ndmarc_history =\nreport_org_name =\nreport_email =\n");
	g_assert_null(c->dmarc_history);
	g_assert_null(c->report_org_name);
	g_assert_null(c->report_email);
	g_assert_cmpstr(c->report_sendmail, ==, "/usr/sbin/sendmail");
	config_unref(&c);

	static const char *const bad[] = {
		"dmarc_history = relative/dir", "dmarc_history = /nonexistent/history",
		"report_email = nobody", "report_email = a@b@example.com", "report_email = @example.com",
		"report_email = x@not..valid", "report_sendmail = sendmail", "report_sendmail =",
		"report_sendmail = /usr/sbin/sendmail 'unclosed",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *t = g_strdup_printf("[lmtpfilter]\n%s\n", bad[i]);
		char *error = load_error(t, NULL);
		if (error == NULL)
			g_test_fail_printf("accepted: %s", bad[i]);
		g_free(error);
		g_free(t);
	}
}

/* arc_trusted_sealers: the global list applies to every domain, a
 * group's own list (or the one of [defaults]) is added to it. */
static void test_arc_sealers(void)
{
	struct config *c = load_ok("[lmtpfilter]\narc_trusted_sealers = Lists.Example.ORG.;fwd.example.net\n"
				   "[defaults]\narc_trusted_sealers = groups.example.com\n"
				   "checks = spf;dkim;dmarc;ARC\n"
				   "[domain a.example]\narc_trusted_sealers = only-a.example\n"
				   "[domain b.example]\nmode = annotate\n");
	const struct domain_policy *a = config_policy_for(c, "x@a.example");
	const struct domain_policy *b = config_policy_for(c, "x@b.example");

	g_assert_cmpuint(c->defaults.checks, ==, CHECK_SPF | CHECK_DKIM | CHECK_DMARC | CHECK_ARC);
	g_assert_true(config_arc_sealer_trusted(c, a, "lists.example.org"));
	g_assert_true(config_arc_sealer_trusted(c, a, "LISTS.example.org."));
	g_assert_true(config_arc_sealer_trusted(c, b, "fwd.example.net"));
	g_assert_true(config_arc_sealer_trusted(c, a, "only-a.example"));
	g_assert_false(config_arc_sealer_trusted(c, b, "only-a.example"));
	g_assert_false(config_arc_sealer_trusted(c, a, "groups.example.com"));   /* replaced by a's own */
	g_assert_true(config_arc_sealer_trusted(c, b, "groups.example.com"));
	g_assert_true(config_arc_sealer_trusted(c, &c->defaults, "groups.example.com"));
	g_assert_false(config_arc_sealer_trusted(c, b, "sub.lists.example.org"));
	g_assert_false(config_arc_sealer_trusted(c, b, ""));
	g_assert_false(config_arc_sealer_trusted(c, b, NULL));
	/* different lists, different bytes: never one downstream transaction */
	struct domain_policy a2 = *a;
	a2.mode = b->mode;
	g_assert_false(config_policy_same(&a2, b));
	config_unref(&c);

	c = config_defaults();
	g_assert_false(config_arc_sealer_trusted(c, &c->defaults, "lists.example.org"));
	config_unref(&c);
}

int main(int argc, char **argv)
{
	GError *error = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	tmp_dir = g_dir_make_tmp("test_config-XXXXXX", &error);
	if (tmp_dir == NULL)
		g_error("g_dir_make_tmp: %s", error->message);

	g_test_add_func("/config/defaults", test_defaults);
	g_test_add_func("/config/empty-file", test_empty_file_gives_defaults);
	g_test_add_func("/config/sample-file", test_sample_file);
	g_test_add_func("/config/good-scalars", test_good_scalars);
	g_test_add_func("/config/good-names-and-lists", test_good_names_and_lists);
	g_test_add_func("/config/endpoints", test_endpoints);
	g_test_add_func("/config/bad-values", test_bad_values);
	g_test_add_func("/config/too-many-listeners", test_too_many_listeners);
	g_test_add_func("/config/inline-comments", test_inline_comment_values);
	g_test_add_func("/config/domain-inheritance", test_domain_inheritance);
	g_test_add_func("/config/bad-groups", test_bad_groups);
	g_test_add_func("/config/several-problems", test_several_problems);
	g_test_add_func("/config/unreadable-and-syntax", test_unreadable_and_syntax);
	g_test_add_func("/netaddr/contains", test_netaddr_contains);
	g_test_add_func("/netaddr/parse", test_netaddr_parse);
	g_test_add_func("/netaddr/list", test_netaddr_list);
	g_test_add_func("/config/trusted-ip-text", test_trusted_ip_text);
	g_test_add_func("/config/policy-lookup", test_policy_lookup);
	g_test_add_func("/config/refcount", test_refcount);
	g_test_add_func("/config/report-keys", test_report_keys);
	g_test_add_func("/config/arc-sealers", test_arc_sealers);
	g_test_add_func("/config/observe-and-quarantine-on", test_observe_and_quarantine_on);
	g_test_add_func("/config/metrics-listen", test_metrics_listen);

	ret = g_test_run();
	tmp_dir_remove();
	g_free(tmp_dir);
	return ret;
}
