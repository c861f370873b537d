/*
 * check - "lmtpfilter check": evaluate one stored message with the daemon's
 * engine and print the rewritten header block, or the verdict as JSON
 */
#ifndef LMTPFILTER_CHECK_H
#define LMTPFILTER_CHECK_H

/* check_main - argv[0] is "check"; returns the process exit code
 * (0 ok, 1 usage or configuration, 2 runtime failure). */
int check_main(const char *config_file, int argc, char **argv);

#endif
