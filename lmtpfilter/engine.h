/*
 * engine - the process-wide objects every session shares: the current
 * configuration (replaced on SIGHUP) and the checkers built once at start
 * (resolver, SPF, DKIM, DMARC).
 */
#ifndef LMTPFILTER_ENGINE_H
#define LMTPFILTER_ENGINE_H

#include <pthread.h>
#include <stdbool.h>

struct config;

struct engine {
	pthread_mutex_t lock;
	struct config *config;      /* guarded by lock; sessions hold a reference */
	int shutdown_fd;            /* eventfd, readable once shutting down */
	char hostname[256];
	void *checks;               /* check state, owned by filter.c */
};

int engine_init(struct engine *engine, struct config *config, char **error_r);
void engine_deinit(struct engine *engine);
/* engine_config - a new reference to the current configuration. */
struct config *engine_config(struct engine *engine);
/* engine_set_config - replace it (takes the caller's reference). */
void engine_set_config(struct engine *engine, struct config *config);

#endif
