/*
 * verdict - results in the RFC 8601 / RFC 7208 vocabulary, shared by every check
 *
 * Here beside authres, which writes them into Authentication-Results and
 * Received-SPF, so that mime/ needs nothing from lmtpfilter/.
 */
#ifndef LMTPFILTER_MIME_VERDICT_H
#define LMTPFILTER_MIME_VERDICT_H

enum verdict {
	VERDICT_NONE = 0,
	VERDICT_PASS,
	VERDICT_FAIL,
	VERDICT_SOFTFAIL,
	VERDICT_NEUTRAL,
	VERDICT_TEMPERROR,
	VERDICT_PERMERROR,
	VERDICT_POLICY,      /* DKIM: valid signature refused by local policy */
};

/* verdict_name - "none", "pass", "fail", ... */
static inline const char *verdict_name(enum verdict v)
{
	switch (v) {
	case VERDICT_PASS: return "pass";
	case VERDICT_FAIL: return "fail";
	case VERDICT_SOFTFAIL: return "softfail";
	case VERDICT_NEUTRAL: return "neutral";
	case VERDICT_TEMPERROR: return "temperror";
	case VERDICT_PERMERROR: return "permerror";
	case VERDICT_POLICY: return "policy";
	case VERDICT_NONE: break;
	}
	return "none";
}

#endif
