/*
 * engine - the process-wide objects every session shares: the current
 * configuration (replaced on SIGHUP) and the typed set of checkers built
 * once at start (resolver, SPF, DKIM, DMARC, ARC).
 */
#ifndef LMTPFILTER_ENGINE_H
#define LMTPFILTER_ENGINE_H

#include <pthread.h>
#include <stdbool.h>

struct config;
struct resolver;
struct spf_checker;
struct dkim_verifier;
struct dmarc_checker;
struct history;
struct arc_verifier;

/* The checkers every transaction evaluates with; all thread-safe once built. */
struct checkers {
	struct resolver *resolver;
	struct spf_checker *spf;
	struct dkim_verifier *dkim;
	struct dmarc_checker *dmarc;
	struct arc_verifier *arc;
};

struct engine {
	pthread_mutex_t lock;
	struct config *config;      /* guarded by lock; sessions hold a reference */
	int shutdown_fd;            /* eventfd, readable once shutting down */
	char hostname[256];
	struct checkers checkers;   /* built by engine_init */
	/* The DMARC history (dmarc_history), or NULL; opened by
	 * engine_open_history, for the daemon only ("check" keeps none).
	 * A SIGHUP does not reopen it: a changed dmarc_history needs a restart. */
	struct history *history;
	char *history_dir;          /* what it was opened with, or NULL */
};

/* engine_init - take the configuration reference and build the checkers
 * (resolver, SPF, DKIM, DMARC, ARC) once, before any worker thread exists.
 * Returns 0, or -1 with *error_r (g_malloc'd); engine_deinit is due
 * either way. */
int engine_init(struct engine *engine, struct config *config, char **error_r);
/* engine_open_history - open the configuration's dmarc_history, if set.
 * Returns 0, or -1 with *error_r (g_malloc'd). */
int engine_open_history(struct engine *engine, char **error_r);
/* engine_deinit - free the checkers and drop the configuration. */
void engine_deinit(struct engine *engine);
/* engine_config - a new reference to the current configuration. */
struct config *engine_config(struct engine *engine);
/* engine_set_config - replace it (takes the caller's reference). */
void engine_set_config(struct engine *engine, struct config *config);

#endif
