/*
 * engine - the process-wide objects every session shares
 *
 * Owns: the current configuration (a reference; SIGHUP swaps it under the
 * lock), the shutdown eventfd and the checkers (struct checkers), built in
 * one call from the configuration's dns_servers, dns_timeout and
 * authserv_id; a SIGHUP does not rebuild them. The daemon's DMARC history
 * writer, opened once; a SIGHUP that changes dmarc_history is logged and
 * needs a restart to take effect.
 */
#include "lmtpfilter/engine.h"
#include "lmtpfilter/arc.h"
#include "lmtpfilter/config.h"
#include "lmtpfilter/dkim.h"
#include "lmtpfilter/dmarc.h"
#include "lmtpfilter/history.h"
#include "lmtpfilter/log.h"
#include "lmtpfilter/metrics.h"
#include "lmtpfilter/resolver.h"
#include "lmtpfilter/spf.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* engine_checkers_init - the resolver and the four checkers on it. */
static int engine_checkers_init(struct checkers *c, const struct config *config, char **error_r)
{
	struct dns_source dns;

	if (resolver_new(config->dns_servers, config->dns_server_count, config->dns_timeout * 1000,
			 &c->resolver, error_r) < 0)
		return -1;
	dns_source_for_resolver(c->resolver, &dns);
	if (spf_checker_new(&dns, config->authserv_id, &c->spf, error_r) < 0)
		return -1;
	if (dkim_verifier_new(&dns, NULL, &c->dkim, error_r) < 0)
		return -1;
	if (dmarc_checker_new(&dns, &c->dmarc, error_r) < 0)
		return -1;
	dmarc_checker_set_discovery(c->dmarc, config->dmarc_discovery == CONFIG_DMARC_DISCOVERY_PSL ?
				    DMARC_DISCOVERY_PSL : DMARC_DISCOVERY_TREEWALK);
	if (arc_verifier_new(&dns, NULL, &c->arc, error_r) < 0)
		return -1;
	return 0;
}

static void engine_checkers_deinit(struct checkers *c)
{
	if (c->resolver != NULL)
		log_info("resolver dns_queries=%lu", resolver_queries_sent(c->resolver));
	arc_verifier_free(&c->arc);
	dmarc_checker_free(&c->dmarc);
	dkim_verifier_free(&c->dkim);
	spf_checker_free(&c->spf);
	resolver_free(&c->resolver);
}

int engine_init(struct engine *engine, struct config *config, char **error_r)
{
	memset(engine, 0, sizeof(*engine));
	pthread_mutex_init(&engine->lock, NULL);
	metrics_config(config);
	engine->config = config;
	engine->shutdown_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (engine->shutdown_fd == -1) {
		*error_r = g_strdup("eventfd failed");
		return -1;
	}
	g_strlcpy(engine->hostname, config->authserv_id != NULL ? config->authserv_id : g_get_host_name(),
		  sizeof(engine->hostname));
	return engine_checkers_init(&engine->checkers, config, error_r);
}

int engine_open_history(struct engine *engine, char **error_r)
{
	const char *dir = engine->config->dmarc_history;

	if (dir == NULL || dir[0] == '\0')
		return 0;
	if (history_open(dir, &engine->history, error_r) < 0)
		return -1;
	engine->history_dir = g_strdup(dir);
	return 0;
}

void engine_deinit(struct engine *engine)
{
	if (engine->history != NULL) {
		struct history_stats st;
		history_get_stats(engine->history, &st);
		log_info("history appended=%llu dropped=%llu", (unsigned long long)st.appended,
			 (unsigned long long)st.dropped);
	}
	history_close(&engine->history);
	g_free(engine->history_dir);
	engine->history_dir = NULL;
	engine_checkers_deinit(&engine->checkers);
	config_unref(&engine->config);
	if (engine->shutdown_fd != -1)
		close(engine->shutdown_fd);
	engine->shutdown_fd = -1;
	pthread_mutex_destroy(&engine->lock);
}

struct config *engine_config(struct engine *engine)
{
	pthread_mutex_lock(&engine->lock);
	struct config *config = config_ref(engine->config);
	pthread_mutex_unlock(&engine->lock);
	return config;
}

void engine_set_config(struct engine *engine, struct config *config)
{
	metrics_config(config);
	pthread_mutex_lock(&engine->lock);
	struct config *old = engine->config;
	engine->config = config;
	pthread_mutex_unlock(&engine->lock);
	const char *dir = config->dmarc_history != NULL && config->dmarc_history[0] ? config->dmarc_history : NULL;
	if (engine->history_dir != NULL && g_strcmp0(dir, engine->history_dir) != 0)
		log_warning("dmarc_history changed: still writing to %s until restarted", engine->history_dir);
	else if (engine->history_dir == NULL && dir != NULL)
		log_warning("dmarc_history changed: no history kept until restarted");
	config_unref(&old);
}
