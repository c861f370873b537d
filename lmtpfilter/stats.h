/*
 * stats - "lmtpfilter stats": ask the running daemon over metrics_listen and
 * print a short summary of its counters
 */
#ifndef LMTPFILTER_STATS_H
#define LMTPFILTER_STATS_H

#include <stdio.h>

#define STATS_TIMEOUT_MS 5000    /* the whole scrape: the daemon answers in milliseconds */

/* stats_main - argv[0] is "stats"; returns the exit code: 0 printed,
 * 1 usage, configuration without metrics_listen, or daemon not reachable. */
int stats_main(const char *config_file, int argc, char **argv);

/* stats_print - the summary of a scraped text (format 0.0.4) on out. */
void stats_print(const char *text, FILE *out);

#endif
