/*
 * Fuzz target: DNS answers as they reach the checks.
 *
 * Input: one DNS reply packet, wire format. It is read into a struct
 * ub_result the way libunbound fills one (rcode, the rdata of the answer
 * records of the question's type, the CNAME target as canonname, the
 * smallest TTL, the packet itself as answer_packet), and from there goes
 * where every real reply goes: resolver_answer_from_result() makes our
 * struct dns_answer of it, once per lookup, and that answer then feeds
 *   - SPF: libspf2 through spf.c's DNS layer, every lookup of the
 *     evaluation (TXT, A, AAAA, MX, PTR, includes) answered with it;
 *   - DMARC: the _dmarc TXT lookup of dmarc.c;
 *   - DKIM: the key lookup of a signed fixture, through dkim.c's
 *     libopendkim hooks, which hand libopendkim the packet itself to parse.
 * Invariants: an answer that is a temporary failure gives temperror for
 * every check; anything else may give any result but never crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <unbound.h>

#include "lmtpfilter/dkim.h"
#include "lmtpfilter/dmarc.h"
#include "lmtpfilter/resolver.h"
#include "lmtpfilter/spf.h"

#define FUZZ_HEADER_LEN 12
#define FUZZ_RECORDS_MAX 64          /* answer records kept, as a bound on work */
#define FUZZ_NAME_MAX 1025           /* presentation form of a 255-byte name */
#define FUZZ_POINTER_HOPS 32         /* compression pointers followed per name */
#define FUZZ_TYPE_CNAME 5
#define FUZZ_TYPE_TXT 16
#define FUZZ_RCODE_NXDOMAIN 3
#define FUZZ_VERIFY_TIME 1700000100u /* the fixture's t= is 1700000000 */

/* One packet read as libunbound would hand it over. */
struct fuzz_reply {
	struct ub_result result;
	char *data[FUZZ_RECORDS_MAX + 1];
	int len[FUZZ_RECORDS_MAX + 1];
	char qname[FUZZ_NAME_MAX];
	char canonname[FUZZ_NAME_MAX];
	int err;
};

static struct spf_checker *spf;
static struct dmarc_checker *dmarc;
static struct dkim_verifier *dkim;
static GBytes *signed_message;
static const struct fuzz_reply *current;

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* read_name - the name at *pos in text form into out (may be NULL);
 * *pos moves past it. false if it is malformed or runs off the packet. */
static bool read_name(const uint8_t *pkt, size_t len, size_t *pos, char *out)
{
	size_t at = *pos, o = 0;
	int hops = 0;
	bool jumped = false;

	for (;;) {
		if (at >= len)
			return false;
		if ((pkt[at] & 0xc0) == 0xc0) {
			if (at + 1 >= len || ++hops > FUZZ_POINTER_HOPS)
				return false;
			if (!jumped)
				*pos = at + 2;
			jumped = true;
			at = (size_t)(get16(pkt + at) & 0x3fff);
			continue;
		}
		if (pkt[at] == 0 || (pkt[at] & 0xc0) != 0)
			break;
		if (at + 1 + pkt[at] > len || o + pkt[at] + 2 > FUZZ_NAME_MAX)
			return false;
		if (out != NULL) {
			memcpy(out + o, pkt + at + 1, pkt[at]);
			out[o + pkt[at]] = '.';
		}
		o += pkt[at] + 1u;
		at += 1u + pkt[at];
	}
	if (pkt[at] != 0)
		return false;
	if (!jumped)
		*pos = at + 1;
	if (out != NULL)
		out[o] = '\0';
	return true;
}

/* read_answers - the answer records: rdata of type qtype, a CNAME target. */
static void read_answers(const uint8_t *pkt, size_t len, size_t pos, unsigned count,
			 struct fuzz_reply *r)
{
	size_t n = 0;

	for (unsigned i = 0; i < count && read_name(pkt, len, &pos, NULL); i++) {
		if (pos + 10 > len || pos + 10 + get16(pkt + pos + 8) > len)
			break;
		unsigned type = get16(pkt + pos), rdlen = get16(pkt + pos + 8);
		int ttl = (int)(((uint32_t)get16(pkt + pos + 4) << 16 | get16(pkt + pos + 6)) & 0x7fffffff);
		size_t rdata = pos + 10;

		if ((int)type == r->result.qtype && n < FUZZ_RECORDS_MAX) {
			r->data[n] = (char *)pkt + rdata;
			r->len[n++] = (int)rdlen;
			if (n == 1 || ttl < r->result.ttl)
				r->result.ttl = ttl;
		} else if (type == FUZZ_TYPE_CNAME && r->result.canonname == NULL) {
			size_t at = rdata;

			if (read_name(pkt, len, &at, r->canonname))
				r->result.canonname = r->canonname;
		}
		pos = rdata + rdlen;
	}
	r->data[n] = NULL;
	r->result.havedata = n > 0;
}

/* reply_parse - fill r from the packet. */
static void reply_parse(const uint8_t *pkt, size_t len, struct fuzz_reply *r)
{
	size_t pos = FUZZ_HEADER_LEN;

	memset(r, 0, sizeof(*r));
	r->result.data = r->data;
	r->result.len = r->len;
	r->result.qname = r->qname;
	r->result.qclass = 1;
	r->result.answer_packet = (void *)pkt;
	r->result.answer_len = (int)len;
	if (len < FUZZ_HEADER_LEN) {
		r->err = UB_SERVFAIL;
		return;
	}
	r->result.rcode = pkt[3] & 0x0f;
	r->result.nxdomain = r->result.rcode == FUZZ_RCODE_NXDOMAIN;
	r->result.qtype = FUZZ_TYPE_TXT;
	if (get16(pkt + 4) > 0 && read_name(pkt, len, &pos, r->qname) && pos + 4 <= len) {
		r->result.qtype = (int)get16(pkt + pos);
		pos += 4;
	} else {
		pos = len;
	}
	read_answers(pkt, len, pos, get16(pkt + 6), r);
}

/* ---- the DNS sources of the checks: every lookup gets the packet ---- */

static int fuzz_query(void *ctx, const char *name, int rrtype, struct dns_answer **answer_r)
{
	*answer_r = resolver_answer_from_result(rrtype, current->err, &current->result);
	return 0;
}

static void fuzz_free_answer(void *ctx, struct dns_answer **answer)
{
	dns_answer_free(answer);
}

static ssize_t message_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
	gsize size;
	const char *data = g_bytes_get_data(signed_message, &size);

	if (offset >= size)
		return 0;
	len = MIN(len, size - (size_t)offset);
	memcpy(buf, data + offset, len);
	return (ssize_t)len;
}

static void setup(void)
{
	struct dns_source dns = { fuzz_query, fuzz_free_answer, NULL };
	struct dkim_verifier_options opts = { .fixed_time = FUZZ_VERIFY_TIME };
	char *path = g_build_filename(LMTPFILTER_SOURCE_DIR, "tests", "unit", "data", "dkim",
				      "rsa_relaxed.eml", NULL);
	char *error = NULL, *data;
	gsize len;

	if (spf_checker_new(&dns, "mx.example.com", &spf, &error) < 0 ||
	    dmarc_checker_new(&dns, &dmarc, &error) < 0 ||
	    dkim_verifier_new(&dns, &opts, &dkim, &error) < 0 ||
	    !g_file_get_contents(path, &data, &len, NULL))
		abort();
	signed_message = g_bytes_new_take(data, len);
	g_free(path);
}

static void check_spf_dmarc(bool tempfail)
{
	static char *const from[] = { "<user@example.org>" };
	struct spf_outcome out, helo;
	struct dmarc_outcome dm;
	struct dmarc_input in = {
		.from_values = from, .from_count = 1, .spf_result = VERDICT_PASS,
		.spf_domain = "example.org", .client_ip = "192.0.2.10",
	};

	spf_check(spf, "192.0.2.10", "mx.example.org", "user@example.org", &out, &helo);
	if (tempfail && out.result != VERDICT_TEMPERROR)
		__builtin_trap();
	dmarc_check(dmarc, &in, &dm);
	if (tempfail && dm.result != VERDICT_TEMPERROR)
		__builtin_trap();
}

static void check_dkim(bool tempfail)
{
	struct dkim_outcome out;
	char *error = NULL;

	if (dkim_verify_message(dkim, message_read, NULL, g_bytes_get_size(signed_message),
				&out, &error) < 0) {
		g_free(error);
		return;
	}
	/* the fixture carries one signature: a failed key lookup is temperror */
	if (tempfail && (out.count != 1 || out.sigs[0].result != VERDICT_TEMPERROR))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_reply reply;
	struct dns_answer *key;
	bool tempfail;

	if (spf == NULL)
		setup();
	reply_parse(data, size, &reply);
	current = &reply;
	key = resolver_answer_from_result(FUZZ_TYPE_TXT, reply.err, &reply.result);
	if (key->count > 0 && (key->data == NULL || key->len == NULL))
		__builtin_trap();
	tempfail = key->status == DNS_TEMPFAIL;
	check_spf_dmarc(tempfail);
	check_dkim(tempfail);
	dns_answer_free(&key);
	current = NULL;
	return 0;
}
