/*
 * fuzz_metrics_http - the metrics request parser on arbitrary bytes. Checks
 * what the responder relies on: the status is one of 0 (incomplete), 200,
 * 400, 404, 405; 0 only below METRICS_HTTP_REQUEST_MAX bytes, so the
 * responder never reads past its bound; and once a prefix is judged, every
 * longer input gets the same status (bytes after the header block do not
 * matter, the answer does not depend on how the bytes arrived).
 */
#include "lmtpfilter/metrics_http.h"

#include <stddef.h>
#include <stdint.h>

#define FUZZ_PREFIX_CHECK_MAX 1024   /* inputs whose every prefix is judged too */

static bool status_known(int status)
{
	return status == 0 || status == 200 || status == 400 || status == 404 || status == 405;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;

	if (size > METRICS_HTTP_REQUEST_MAX)
		size = METRICS_HTTP_REQUEST_MAX;
	int whole = metrics_http_parse(buf, size);
	if (!status_known(whole) || (whole == 0 && size >= METRICS_HTTP_REQUEST_MAX))
		__builtin_trap();
	if (size > FUZZ_PREFIX_CHECK_MAX)
		return 0;
	int judged = 0;
	for (size_t n = 0; n <= size; n++) {
		int s = metrics_http_parse(buf, n);
		if (!status_known(s) || (judged != 0 && s != judged))
			__builtin_trap();
		if (judged == 0)
			judged = s;
	}
	if (judged != whole)
		__builtin_trap();
	return 0;
}
