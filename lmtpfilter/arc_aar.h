/*
 * arc_aar - what an ARC-Authentication-Results value vouches for
 *
 * The newest AAR of a passing chain is what its sealer saw when the
 * message reached it (RFC 8617 4.1.1): "i=N;" and then an RFC 8601
 * Authentication-Results value. A trusted sealer vouches for the message
 * when that value shows dmarc=pass for our From domain, or an SPF
 * (smtp.mailfrom) or DKIM (header.d, else header.i) pass whose domain is
 * aligned with the From domain (relaxed: the same organisational domain,
 * through a caller's function). Pure text work, no DNS.
 */
#ifndef LMTPFILTER_ARC_AAR_H
#define LMTPFILTER_ARC_AAR_H

#include <stdbool.h>
#include <stddef.h>

/* Longest AAR value read: more is not a value any sealer writes. */
#define ARC_AAR_VALUE_MAX 65536
/* Results (resinfo) of one AAR looked at; the rest are ignored. */
#define ARC_AAR_RESULTS_MAX 64
/* Properties of one result looked at. */
#define ARC_AAR_PROPS_MAX 16
/* Bytes of the text naming what vouched ("dkim=pass header.d=example.org"). */
#define ARC_AAR_WHAT_MAX 300

/* Is domain a (lower case), the identifier of an "spf" or "dkim" pass
 * (method), aligned with the From domain b as the From domain's DMARC
 * policy asks (aspf= or adkim=: strict or relaxed)? */
typedef bool arc_aar_aligned_fn(void *ctx, const char *method, const char *a, const char *b);

/* arc_aar_vouches - does the AAR value (raw, folding kept, len bytes) show
 * a DMARC pass for from_domain (its header.from naming it: a pass for no
 * named author vouches for nobody), or an SPF or DKIM pass aligned with it?
 * On true, what_r names the result ("dmarc=pass", "spf=pass
 * smtp.mailfrom=a@example.org", "dkim=pass header.d=example.org"). False
 * for anything it cannot read, an empty from_domain, or an AAR over
 * ARC_AAR_VALUE_MAX. */
bool arc_aar_vouches(const char *value, size_t len, const char *from_domain, arc_aar_aligned_fn *aligned,
		     void *ctx, char *what_r, size_t what_size);

#endif
