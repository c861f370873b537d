/*
 * arc_verify_tool - run the ARC verifier on one message file
 *
 *     arc_verify_tool MESSAGE DNS_SERVER [TIMEOUT_MS]
 *     arc_verify_tool MESSAGE --key-file FILE
 *
 * DNS_SERVER is "IP@PORT" (keys through the resolver, as the daemon looks
 * them up); --key-file reads "NAME TXT-VALUE" lines instead. Prints the
 * outcome as the JSON of arc_outcome_json plus the newest AAR, and exits 0
 * (2 on bad usage, 1 if the message cannot be read). Used by
 * tests/integration/test_arc.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "lmtpfilter/arc.h"
#include "lmtpfilter/dns_source.h"
#include "tests/tools/memory_message.h"

/* Key lookup deadline when none is given. */
#define ARC_TOOL_TIMEOUT_MS 2000

static int tool_verifier(int argc, char **argv, struct resolver **resolver_r,
			 struct arc_verifier **v_r, char **error_r)
{
	struct arc_verifier_options opts = { 0 };
	char *servers[1];
	unsigned timeout = ARC_TOOL_TIMEOUT_MS;

	if (strcmp(argv[2], "--key-file") == 0) {
		if (argc < 4)
			return -1;
		opts.key_file = argv[3];
		return arc_verifier_new(NULL, &opts, v_r, error_r);
	}
	if (argc > 3)
		timeout = (unsigned)strtoul(argv[3], NULL, 10);
	servers[0] = argv[2];
	if (resolver_new(servers, 1, timeout, resolver_r, error_r) < 0)
		return -1;
	struct dns_source dns;

	dns_source_for_resolver(*resolver_r, &dns);
	return arc_verifier_new(&dns, NULL, v_r, error_r);
}

int main(int argc, char **argv)
{
	struct resolver *resolver = NULL;
	struct arc_verifier *v = NULL;
	struct arc_outcome *out = g_new0(struct arc_outcome, 1);
	struct memory_message m;
	GString *json = g_string_new(NULL);
	gchar *data = NULL;
	gsize size = 0;
	char *error = NULL;
	int rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: arc_verify_tool MESSAGE {DNS_SERVER [TIMEOUT_MS] | --key-file FILE}\n");
		return 2;
	}
	if (!g_file_get_contents(argv[1], &data, &size, NULL) ||
	    tool_verifier(argc, argv, &resolver, &v, &error) < 0) {
		fprintf(stderr, "arc_verify_tool: %s\n", error != NULL ? error : "bad arguments");
		return 1;
	}
	m.data = data;
	m.size = size;
	if (arc_verify_message(v, memory_message_read, &m, m.size, out, &error) < 0) {
		fprintf(stderr, "arc_verify_tool: %s\n", error);
		rc = 1;
	}
	arc_outcome_json(out, json);
	printf("%s\n", json->str);
	arc_outcome_clear(out);
	g_free(out);
	g_string_free(json, TRUE);
	arc_verifier_free(&v);
	resolver_free(&resolver);
	g_free(data);
	g_free(error);
	return rc;
}
