/*
 * fuzz_from - dmarc_check on arbitrary From fields, against an in-memory
 * DNS table.
 *
 * Input: one flag byte (SPF and DKIM results handed in beside the From),
 * then up to FUZZ_FROM_FIELDS From values separated by NUL bytes; the
 * same bytes are also checked as one From value, NULs read as commas.
 * The table publishes policies for a few domains the fuzzer can find
 * (example.com reject, example.org quarantine, ...), answers tempfail for
 * slow.example and NXDOMAIN for the rest. Traps when an outcome breaks an
 * invariant: a fail without a disposition, a comment an A-R parser cannot
 * take, more DNS lookups per message than a broken From may cost.
 */
#include "lmtpfilter/dmarc.h"
#include "lmtpfilter/dmarc_discovery.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_FROM_FIELDS 16     /* what filter.c hands over at most */
/* Lookups one evaluation may make (this zone caches nothing, the resolver
 * would): for each of dmarc.c's From domains one discovery, and one
 * organisational-domain walk for the SPF domain and each of the two DKIM
 * domains, each at most DMARC_DISCOVERY_STEPS_MAX queries (RFC 9989 tree
 * walk with its existence query). */
#define FUZZ_QUERIES_MAX (DMARC_AUTHOR_DOMAINS_MAX * (1 + 1 + 2) * DMARC_DISCOVERY_STEPS_MAX)
#define FUZZ_RRTYPE_TXT 16

struct fuzz_rr {
	const char *name;
	const char *txt;        /* NULL: the lookup fails (tempfail) */
};

static const struct fuzz_rr fuzz_zone[] = {
	{ "_dmarc.example.com", "v=DMARC1; p=reject" },
	{ "_dmarc.example.org", "v=DMARC1; p=quarantine; adkim=s; aspf=s" },
	{ "_dmarc.example.net", "v=DMARC1; p=none; sp=reject" },
	{ "_dmarc.pct.example", "v=DMARC1; p=reject; pct=50" },
	{ "_dmarc.bad.example", "v=DMARC1; p=bogus" },
	{ "_dmarc.slow.example", NULL },
	{ NULL, NULL },
};

static unsigned fuzz_queries;

/* fuzz_query - TXT from fuzz_zone; any other type fails (temperror). */
static int fuzz_query(void *ctx, const char *name, int rrtype, struct dns_answer **answer_r)
{
	struct dns_answer *a = g_new0(struct dns_answer, 1);

	if (rrtype == FUZZ_RRTYPE_TXT)
		fuzz_queries++;
	a->status = rrtype == FUZZ_RRTYPE_TXT ? DNS_NXDOMAIN : DNS_TEMPFAIL;
	a->rrtype = rrtype;
	for (const struct fuzz_rr *rr = fuzz_zone; rr->name != NULL; rr++) {
		size_t len;

		if (rrtype != FUZZ_RRTYPE_TXT || g_ascii_strcasecmp(rr->name, name) != 0)
			continue;
		if (rr->txt == NULL) {
			a->status = DNS_TEMPFAIL;
			break;
		}
		len = strlen(rr->txt);  /* every record here fits one string */
		a->status = DNS_OK;
		a->count = 1;
		a->data = g_new0(unsigned char *, 1);
		a->len = g_new0(size_t, 1);
		a->data[0] = g_malloc(len + 1);
		a->data[0][0] = (unsigned char)len;
		memcpy(a->data[0] + 1, rr->txt, len);
		a->len[0] = len + 1;
		break;
	}
	*answer_r = a;
	return 0;
}

static void fuzz_free_answer(void *ctx, struct dns_answer **answer)
{
	dns_answer_free(answer);
}

static struct dmarc_checker *fuzz_checker(void)
{
	static struct dmarc_checker *checker;
	struct dns_source dns = { fuzz_query, fuzz_free_answer, NULL };
	char *error = NULL;

	if (checker == NULL && dmarc_checker_new(&dns, &checker, &error) < 0)
		g_error("%s", error);
	return checker;
}

/* fuzz_check_outcome - the invariants of one outcome. */
static void fuzz_check_outcome(const struct dmarc_outcome *out)
{
	char comment[DMARC_REASON_MAX], line[512];

	if (out->result == VERDICT_FAIL && out->disposition[0] == '\0')
		__builtin_trap();
	if (out->result == VERDICT_PASS && strcmp(out->disposition, "none") != 0)
		__builtin_trap();
	if (!out->from_invalid && out->result != VERDICT_PERMERROR && out->header_from[0] == '\0')
		__builtin_trap();
	if (fuzz_queries > FUZZ_QUERIES_MAX)
		__builtin_trap();
	dmarc_outcome_comment(out, comment, sizeof(comment));
	for (const char *p = comment; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || strchr("()\\", *p))
			__builtin_trap();
	dmarc_outcome_format(out, line, sizeof(line));
	if (strlen(line) >= sizeof(line) - 1)
		__builtin_trap();
}

static void fuzz_run(char *const *from, size_t count, uint8_t flags)
{
	static const enum verdict spf_results[4] = {
		VERDICT_PASS, VERDICT_FAIL, VERDICT_NONE, VERDICT_TEMPERROR };
	static char *const spf_domains[4] = {
		"example.com", "example.org", "attacker.example", "mail.example.net" };
	enum verdict dkim_results[2] = {
		flags & 0x10 ? VERDICT_PASS : VERDICT_FAIL, flags & 0x20 ? VERDICT_PASS : VERDICT_FAIL };
	char *dkim_domains[2] = { "example.com", flags & 0x40 ? "example.org" : "sub.example.net" };
	struct dmarc_input in = {
		.from_values = from, .from_count = count,
		.spf_result = spf_results[flags & 3], .spf_domain = spf_domains[(flags >> 2) & 3],
		.spf_is_helo = (flags & 0x80) != 0,
		.dkim_count = (flags >> 4) & 1 ? 2 : (flags >> 5) & 1,
		.dkim_results = dkim_results, .dkim_domains = dkim_domains,
		.client_ip = "192.0.2.1",
	};
	struct dmarc_outcome out;

	fuzz_queries = 0;
	if (dmarc_check(fuzz_checker(), &in, &out) < 0)
		__builtin_trap();
	fuzz_check_outcome(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *from[FUZZ_FROM_FIELDS];
	char *whole;
	size_t count = 0, pos = 1;

	if (size == 0)
		return 0;
	/* NUL-separated fields, as many as filter.c would pass. */
	while (pos <= size && count < FUZZ_FROM_FIELDS) {
		const uint8_t *end = memchr(data + pos, '\0', size - pos);
		size_t len = end != NULL ? (size_t)(end - (data + pos)) : size - pos;

		from[count++] = g_strndup((const char *)data + pos, len);
		pos += len + 1;
	}
	fuzz_run(from, count, data[0]);
	for (size_t i = 0; i < count; i++)
		g_free(from[i]);
	/* The whole rest as one field, the separators turned into commas. */
	whole = g_malloc(size);
	memcpy(whole, data + 1, size - 1);
	whole[size - 1] = '\0';
	for (size_t i = 0; i + 1 < size; i++)
		if (whole[i] == '\0')
			whole[i] = ',';
	fuzz_run(&whole, 1, data[0]);
	g_free(whole);
	return 0;
}
