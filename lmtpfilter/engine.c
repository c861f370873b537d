/*
 * engine - the process-wide objects every session shares
 *
 * Owns: the current configuration (a reference; SIGHUP swaps it under the
 * lock), the shutdown eventfd and the checks' shared state.
 */
#include "lmtpfilter/engine.h"
#include "lmtpfilter/config.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int engine_init(struct engine *engine, struct config *config, char **error_r)
{
	memset(engine, 0, sizeof(*engine));
	pthread_mutex_init(&engine->lock, NULL);
	engine->config = config;
	engine->shutdown_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (engine->shutdown_fd == -1) {
		*error_r = g_strdup("eventfd failed");
		return -1;
	}
	g_strlcpy(engine->hostname, config->authserv_id != NULL ? config->authserv_id : g_get_host_name(),
		  sizeof(engine->hostname));
	return 0;
}

void engine_deinit(struct engine *engine)
{
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
	pthread_mutex_lock(&engine->lock);
	struct config *old = engine->config;
	engine->config = config;
	pthread_mutex_unlock(&engine->lock);
	config_unref(&old);
}
