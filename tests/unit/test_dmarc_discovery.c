/*
 * test_dmarc_discovery - RFC 9989 policy discovery over a real unbound zone
 *
 * One table: each row is a domain, the mode, and what must come out: the
 * status, every query in order with what it gave, the policy domain, the
 * organisational domain, the tag that applied, the policy before and after
 * t=y. Every row runs on a fresh resolver, so the queries the resolver sent
 * must equal the queries listed. Timeouts come from "deny" local zones
 * (unbound drops the query, the resolver's deadline passes).
 */
#include <glib.h>
#include <string.h>

#include "lmtpfilter/dmarc_discovery.h"
#include "unbound_fixture.h"

#define TEST_TIMEOUT_MS 400
#define SOA(zone) "  local-zone: \"" zone ".\" static\n" \
	"  local-data: \"" zone ". 300 IN SOA ns." zone ". h." zone ". 1 3600 600 86400 300\"\n"
#define TXT(name, text) "  local-data: '" name ". 300 IN TXT \"" text "\"'\n"
#define DATA(rr) "  local-data: \"" rr "\"\n"
#define DENY(name) "  local-zone: \"" name ".\" deny\n"
#define NXZONE(name) "  local-zone: \"" name ".\" static\n"

static const char zone_lines[] =
	SOA("com") SOA("example") SOA("test") SOA("psdtld") SOA("slowtld")
	/* RFC 9989 B.4.1 and B.4.2 */
	TXT("_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:d@example.com")
	TXT("_dmarc.signing.example.com", "v=DMARC1; p=none")
	DATA("example.com. 300 IN A 192.0.2.1")
	/* a record at a name a long walk skips */
	TXT("_dmarc.skip.l5.l4.l3.l2.l1.example.com", "v=DMARC1; p=none")
	/* RFC 9989 B.4.3 */
	TXT("_dmarc.bank.example", "v=DMARC1; p=reject; psd=y")
	TXT("_dmarc.giant.bank.example", "v=DMARC1; p=quarantine")
	/* a PSD record with sp= and np= */
	TXT("_dmarc.psdtld", "v=DMARC1; p=quarantine; sp=none; np=reject; psd=y")
	DATA("shop.psdtld. 300 IN A 192.0.2.3")
	/* psd=n stops the walk */
	TXT("_dmarc.dept.corp.test", "v=DMARC1; p=reject; psd=n")
	TXT("_dmarc.corp.test", "v=DMARC1; p=none")
	/* np= and what exists */
	TXT("_dmarc.np.test", "v=DMARC1; p=none; sp=quarantine; np=reject")
	DATA("aonly.np.test. 300 IN A 192.0.2.2")
	DATA("mxonly.np.test. 300 IN MX 10 mx.elsewhere.test.")
	DATA("deep.ent.np.test. 300 IN A 192.0.2.4")
	TXT("_dmarc.withtxt.np.test", "hello")
	DATA("cname.np.test. 300 IN CNAME gone.np.test.")
	/* sp= vs np= */
	TXT("_dmarc.nponly.test", "v=DMARC1; p=reject; np=quarantine")
	DATA("a.nponly.test. 300 IN A 192.0.2.5")
	TXT("_dmarc.sponly.test", "v=DMARC1; p=reject; sp=none")
	/* t=y, pct= */
	TXT("_dmarc.testing.test", "v=DMARC1; p=reject; sp=quarantine; t=y")
	TXT("_dmarc.testnone.test", "v=DMARC1; p=none; t=y")
	TXT("_dmarc.pct.test", "v=DMARC1; p=reject; pct=0")
	/* syntax errors, unknown tags, bad p= */
	TXT("_dmarc.syntax.test", "v=DMARC1; p=quarantine; foo=bar; adkim=x; rf=afrf; =1")
	TXT("_dmarc.badp.test", "v=DMARC1; p=bogus; rua=mailto:r@badp.test")
	TXT("_dmarc.badpnorua.test", "v=DMARC1; p=bogus")
	TXT("_dmarc.nop.test", "v=DMARC1")
	TXT("_dmarc.badnp.test", "v=DMARC1; p=reject; np=drop")
	TXT("_dmarc.notdmarc.test", "v=spf1 -all")
	TXT("_dmarc.vlater.test", "p=reject; v=DMARC1")
	/* several records at one name */
	TXT("_dmarc.multi.test", "v=DMARC1; p=reject")
	TXT("_dmarc.multi.test", "v=DMARC1; p=none")
	TXT("_dmarc.sub.multi2.test", "v=DMARC1; p=reject")
	TXT("_dmarc.sub.multi2.test", "v=DMARC1; p=none")
	TXT("_dmarc.multi2.test", "v=DMARC1; p=quarantine")
	TXT("_dmarc.mixed.test", "v=spf1 -all")
	TXT("_dmarc.mixed.test", "v=DMARC1; p=reject")
	/* bytes JSON must escape */
	TXT("_dmarc.hostile.test", "v=DMARC1; p=reject; note=\\\"q\\\" \\255\\009\\\\")
	/* DNS timeouts, one per step */
	DENY("_dmarc.d1.slow.test")
	DENY("_dmarc.d2.slow.test")
	DENY("_dmarc.slowtld")
	TXT("_dmarc.rec.d4.slow.test", "v=DMARC1; p=reject")
	DENY("_dmarc.d4.slow.test")
	TXT("_dmarc.npslow.test", "v=DMARC1; p=reject; np=reject")
	DENY("ghost.npslow.test")
	NXZONE("_dmarc.ghost.npslow.test")
	DENY("_dmarc.pslslow.example.com");

enum kind { DISCOVER, ORG };

#define R DMARC_REQUEST_REJECT
#define Q DMARC_REQUEST_QUARANTINE
#define N DMARC_REQUEST_NONE
#define FOUND DMARC_DISCOVERY_FOUND
#define NONE DMARC_DISCOVERY_NONE
#define TEMP DMARC_DISCOVERY_TEMPERROR
#define P DMARC_APPLIES_P
#define SP DMARC_APPLIES_SP
#define NP DMARC_APPLIES_NP
#define PSL DMARC_DISCOVERY_PSL

struct discovery_case {
	const char *what;
	enum kind kind;
	enum dmarc_discovery_mode mode;
	const char *domain;
	enum dmarc_discovery_status status;
	const char *steps;              /* "NAME=result ..."; existence queries "A:NAME=..." */
	const char *policy_domain;
	const char *org_domain;
	enum dmarc_applies applies;
	enum dmarc_request published, policy;
	bool lowered;
	int exists;                     /* author_exists: 1, 0, -1 (not asked); only checked if FOUND */
	const char *extra;              /* "pct=N ignored=N rua=N" of the record, if set */
};

#define L13 "a.b.c.d.e.f.g.h.i.j.k.example.com"
#define L40 "x1.x2.x3.x4.x5.x6.x7.x8.x9.x10.x11.x12.x13.x14.x15.x16.x17.x18.x19.x20." \
	"x21.x22.x23.x24.x25.x26.x27.x28.x29.x30.x31.x32.x33.x34.x35.x36.x37.x38.example.com"

/* Rows stop after the last field they need; the rest is zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const struct discovery_case cases[] = {
	/* RFC 9989 B.4.1 */
	{ "B.4.1 author", DISCOVER, 0, "Example.COM.", FOUND,
	  "_dmarc.example.com=record _dmarc.com=no-record",
	  "example.com", "example.com", P, R, R, false, -1, "pct=-1 ignored=0 rua=1" },
	{ "B.4.1 dkim", ORG, 0, "signing.example.com", FOUND,
	  "_dmarc.signing.example.com=record _dmarc.example.com=record _dmarc.com=no-record",
	  NULL, "example.com" },
	/* RFC 9989 B.4.2: 13 labels, 8 queries */
	{ "B.4.2 deep", DISCOVER, 0, L13, FOUND,
	  "_dmarc." L13 "=no-record _dmarc.g.h.i.j.k.example.com=no-record "
	  "_dmarc.h.i.j.k.example.com=no-record _dmarc.i.j.k.example.com=no-record "
	  "_dmarc.j.k.example.com=no-record _dmarc.k.example.com=no-record "
	  "_dmarc.example.com=record _dmarc.com=no-record",
	  "example.com", "example.com", P, R, R, false, -1 },
	/* RFC 9989 B.4.3 */
	{ "B.4.3 author", DISCOVER, 0, "giant.bank.example", FOUND,
	  "_dmarc.giant.bank.example=record _dmarc.bank.example=record",
	  "giant.bank.example", "giant.bank.example", P, Q, Q, false, -1 },
	{ "B.4.3 spf", ORG, 0, "mail.giant.bank.example", FOUND,
	  "_dmarc.mail.giant.bank.example=no-record _dmarc.giant.bank.example=record "
	  "_dmarc.bank.example=record", NULL, "giant.bank.example" },
	{ "B.4.3 dkim", ORG, 0, "mail.mega.bank.example", FOUND,
	  "_dmarc.mail.mega.bank.example=no-record _dmarc.mega.bank.example=no-record "
	  "_dmarc.bank.example=record", NULL, "mega.bank.example" },
	{ "B.4.3 psd policy", DISCOVER, 0, "mail.mega.bank.example", FOUND,
	  "_dmarc.mail.mega.bank.example=no-record _dmarc.mega.bank.example=no-record "
	  "_dmarc.bank.example=record", "bank.example", "mega.bank.example", P, R, R, false, -1 },
	{ "psd itself", DISCOVER, 0, "bank.example", FOUND, "_dmarc.bank.example=record",
	  "bank.example", "bank.example", P, R, R, false, -1 },
	/* long names: never more than 8 queries; skipped names never asked */
	{ "8 labels", ORG, 0, "a.b.c.d.e.f.example.com", FOUND,
	  "_dmarc.a.b.c.d.e.f.example.com=no-record _dmarc.b.c.d.e.f.example.com=no-record "
	  "_dmarc.c.d.e.f.example.com=no-record _dmarc.d.e.f.example.com=no-record "
	  "_dmarc.e.f.example.com=no-record _dmarc.f.example.com=no-record "
	  "_dmarc.example.com=record _dmarc.com=no-record", NULL, "example.com" },
	{ "40 labels", DISCOVER, 0, L40, FOUND,
	  "_dmarc." L40 "=no-record _dmarc.x34.x35.x36.x37.x38.example.com=no-record "
	  "_dmarc.x35.x36.x37.x38.example.com=no-record _dmarc.x36.x37.x38.example.com=no-record "
	  "_dmarc.x37.x38.example.com=no-record _dmarc.x38.example.com=no-record "
	  "_dmarc.example.com=record _dmarc.com=no-record",
	  "example.com", "example.com", P, R, R, false, -1 },
	{ "skipped record", DISCOVER, 0, "q.r.skip.l5.l4.l3.l2.l1.example.com", FOUND,
	  "_dmarc.q.r.skip.l5.l4.l3.l2.l1.example.com=no-record "
	  "_dmarc.l5.l4.l3.l2.l1.example.com=no-record _dmarc.l4.l3.l2.l1.example.com=no-record "
	  "_dmarc.l3.l2.l1.example.com=no-record _dmarc.l2.l1.example.com=no-record "
	  "_dmarc.l1.example.com=no-record _dmarc.example.com=record _dmarc.com=no-record",
	  "example.com", "example.com", P, R, R, false, -1 },
	/* a PSD record (psd=y) with sp= and np= */
	{ "psd sp", DISCOVER, 0, "shop.psdtld", FOUND,
	  "_dmarc.shop.psdtld=no-record _dmarc.psdtld=record A:shop.psdtld=exists",
	  "psdtld", "shop.psdtld", SP, N, N, false, 1 },
	{ "psd np", DISCOVER, 0, "ghost.psdtld", FOUND,
	  "_dmarc.ghost.psdtld=no-record _dmarc.psdtld=record A:ghost.psdtld=nxdomain",
	  "psdtld", "ghost.psdtld", NP, R, R, false, 0 },
	/* psd=n stops the walk */
	{ "psd=n policy", DISCOVER, 0, "x.dept.corp.test", FOUND,
	  "_dmarc.x.dept.corp.test=no-record _dmarc.dept.corp.test=record",
	  "dept.corp.test", "dept.corp.test", P, R, R, false, -1 },
	{ "psd=n org", ORG, 0, "mail.dept.corp.test", FOUND,
	  "_dmarc.mail.dept.corp.test=no-record _dmarc.dept.corp.test=record",
	  NULL, "dept.corp.test" },
	{ "without psd=n", ORG, 0, "www.corp.test", FOUND,
	  "_dmarc.www.corp.test=no-record _dmarc.corp.test=record _dmarc.test=no-record",
	  NULL, "corp.test" },
	/* np= on existing and non-existent subdomains */
	{ "np: A only", DISCOVER, 0, "aonly.np.test", FOUND,
	  "_dmarc.aonly.np.test=no-record _dmarc.np.test=record _dmarc.test=no-record "
	  "A:aonly.np.test=exists", "np.test", "np.test", SP, Q, Q, false, 1 },
	{ "np: MX only", DISCOVER, 0, "mxonly.np.test", FOUND,
	  "_dmarc.mxonly.np.test=no-record _dmarc.np.test=record _dmarc.test=no-record "
	  "A:mxonly.np.test=exists", "np.test", "np.test", SP, Q, Q, false, 1 },
	{ "np: empty non-terminal", DISCOVER, 0, "ent.np.test", FOUND,
	  "_dmarc.ent.np.test=no-record _dmarc.np.test=record _dmarc.test=no-record "
	  "A:ent.np.test=exists", "np.test", "np.test", SP, Q, Q, false, 1 },
	{ "np: CNAME to nothing", DISCOVER, 0, "cname.np.test", FOUND,
	  "_dmarc.cname.np.test=no-record _dmarc.np.test=record _dmarc.test=no-record "
	  "A:cname.np.test=exists", "np.test", "np.test", SP, Q, Q, false, 1 },
	{ "np: non-existent", DISCOVER, 0, "ghost.np.test", FOUND,
	  "_dmarc.ghost.np.test=no-record _dmarc.np.test=record _dmarc.test=no-record "
	  "A:ghost.np.test=nxdomain", "np.test", "np.test", NP, R, R, false, 0 },
	{ "np: below a non-existent", DISCOVER, 0, "a.b.ghost.np.test", FOUND,
	  "_dmarc.a.b.ghost.np.test=no-record _dmarc.b.ghost.np.test=no-record "
	  "_dmarc.ghost.np.test=no-record _dmarc.np.test=record _dmarc.test=no-record "
	  "A:a.b.ghost.np.test=nxdomain", "np.test", "np.test", NP, R, R, false, 0 },
	{ "np: _dmarc TXT proves existence", DISCOVER, 0, "withtxt.np.test", FOUND,
	  "_dmarc.withtxt.np.test=no-record _dmarc.np.test=record _dmarc.test=no-record",
	  "np.test", "np.test", SP, Q, Q, false, 1 },
	{ "np: the org domain itself", DISCOVER, 0, "np.test", FOUND,
	  "_dmarc.np.test=record _dmarc.test=no-record", "np.test", "np.test", P, N, N, false, -1 },
	/* sp= vs np= */
	{ "np only, existing", DISCOVER, 0, "a.nponly.test", FOUND,
	  "_dmarc.a.nponly.test=no-record _dmarc.nponly.test=record _dmarc.test=no-record "
	  "A:a.nponly.test=exists", "nponly.test", "nponly.test", P, R, R, false, 1 },
	{ "np only, non-existent", DISCOVER, 0, "b.nponly.test", FOUND,
	  "_dmarc.b.nponly.test=no-record _dmarc.nponly.test=record _dmarc.test=no-record "
	  "A:b.nponly.test=nxdomain", "nponly.test", "nponly.test", NP, Q, Q, false, 0 },
	{ "sp only, non-existent: sp, no query", DISCOVER, 0, "b.sponly.test", FOUND,
	  "_dmarc.b.sponly.test=no-record _dmarc.sponly.test=record _dmarc.test=no-record",
	  "sponly.test", "sponly.test", SP, N, N, false, -1 },
	/* t=y and pct= */
	{ "t=y reject", DISCOVER, 0, "testing.test", FOUND,
	  "_dmarc.testing.test=record _dmarc.test=no-record",
	  "testing.test", "testing.test", P, R, Q, true, -1 },
	{ "t=y quarantine (sp)", DISCOVER, 0, "x.testing.test", FOUND,
	  "_dmarc.x.testing.test=no-record _dmarc.testing.test=record _dmarc.test=no-record",
	  "testing.test", "testing.test", SP, Q, N, true, -1 },
	{ "t=y none", DISCOVER, 0, "testnone.test", FOUND,
	  "_dmarc.testnone.test=record _dmarc.test=no-record",
	  "testnone.test", "testnone.test", P, N, N, false, -1 },
	{ "pct=0 reported only", DISCOVER, 0, "pct.test", FOUND,
	  "_dmarc.pct.test=record _dmarc.test=no-record",
	  "pct.test", "pct.test", P, R, R, false, -1, "pct=0 ignored=0 rua=0" },
	/* syntax errors and unknown tags */
	{ "unknown tags", DISCOVER, 0, "syntax.test", FOUND,
	  "_dmarc.syntax.test=record _dmarc.test=no-record",
	  "syntax.test", "syntax.test", P, Q, Q, false, -1, "pct=-1 ignored=4 rua=0" },
	{ "bad p= with rua=", DISCOVER, 0, "badp.test", FOUND,
	  "_dmarc.badp.test=record _dmarc.test=no-record",
	  "badp.test", "badp.test", DMARC_APPLIES_P_NONE_FALLBACK, N, N, false, -1 },
	{ "bad p= without rua=", DISCOVER, 0, "badpnorua.test", NONE,
	  "_dmarc.badpnorua.test=record _dmarc.test=no-record", "badpnorua.test", "badpnorua.test" },
	{ "no p= without rua=", DISCOVER, 0, "nop.test", NONE,
	  "_dmarc.nop.test=record _dmarc.test=no-record", "nop.test", "nop.test" },
	{ "bad np=", DISCOVER, 0, "x.badnp.test", NONE,
	  "_dmarc.x.badnp.test=no-record _dmarc.badnp.test=record _dmarc.test=no-record",
	  "badnp.test", "badnp.test" },
	{ "not a DMARC record", DISCOVER, 0, "notdmarc.test", NONE,
	  "_dmarc.notdmarc.test=no-record _dmarc.test=no-record", "", "notdmarc.test" },
	{ "v= not first", DISCOVER, 0, "vlater.test", NONE,
	  "_dmarc.vlater.test=no-record _dmarc.test=no-record", "", "vlater.test" },
	/* several records at one name */
	{ "several records", DISCOVER, 0, "multi.test", NONE,
	  "_dmarc.multi.test=multiple-records _dmarc.test=no-record", "", "multi.test" },
	{ "several records, parent applies", DISCOVER, 0, "sub.multi2.test", FOUND,
	  "_dmarc.sub.multi2.test=multiple-records _dmarc.multi2.test=record _dmarc.test=no-record",
	  "multi2.test", "multi2.test", P, Q, Q, false, -1 },
	{ "one DMARC among other TXT", DISCOVER, 0, "mixed.test", FOUND,
	  "_dmarc.mixed.test=record _dmarc.test=no-record", "mixed.test", "mixed.test", P, R, R, false, -1 },
	{ "no record anywhere", DISCOVER, 0, "nothing.here.test", NONE,
	  "_dmarc.nothing.here.test=no-record _dmarc.here.test=no-record _dmarc.test=no-record",
	  "", "nothing.here.test" },
	/* a DNS timeout at each step */
	{ "timeout step 1", DISCOVER, 0, "d1.slow.test", TEMP,
	  "_dmarc.d1.slow.test=tempfail", "", "" },
	{ "timeout step 2", DISCOVER, 0, "x.d2.slow.test", TEMP,
	  "_dmarc.x.d2.slow.test=no-record _dmarc.d2.slow.test=tempfail", "", "" },
	{ "timeout step 3 (TLD)", DISCOVER, 0, "y.z.slowtld", TEMP,
	  "_dmarc.y.z.slowtld=no-record _dmarc.z.slowtld=no-record _dmarc.slowtld=tempfail", "", "" },
	{ "timeout after the record", DISCOVER, 0, "rec.d4.slow.test", TEMP,
	  "_dmarc.rec.d4.slow.test=record _dmarc.d4.slow.test=tempfail", "", "" },
	{ "timeout on existence", DISCOVER, 0, "ghost.npslow.test", TEMP,
	  "_dmarc.ghost.npslow.test=no-record _dmarc.npslow.test=record _dmarc.test=no-record "
	  "A:ghost.npslow.test=tempfail", "npslow.test", "npslow.test" },
	{ "org: timeout", ORG, 0, "a.d2.slow.test", TEMP,
	  "_dmarc.a.d2.slow.test=no-record _dmarc.d2.slow.test=tempfail", NULL, "" },
	{ "timeout at the 8th query", ORG, 0, "a.b.c.d.e.f.g.slowtld", TEMP,
	  "_dmarc.a.b.c.d.e.f.g.slowtld=no-record _dmarc.b.c.d.e.f.g.slowtld=no-record "
	  "_dmarc.c.d.e.f.g.slowtld=no-record _dmarc.d.e.f.g.slowtld=no-record "
	  "_dmarc.e.f.g.slowtld=no-record _dmarc.f.g.slowtld=no-record "
	  "_dmarc.g.slowtld=no-record _dmarc.slowtld=tempfail", NULL, "" },
	/* unusable names */
	{ "bad name", DISCOVER, 0, "a..example.com", DMARC_DISCOVERY_PERMERROR, "", "", "" },
	{ "empty name", DISCOVER, 0, "", DMARC_DISCOVERY_PERMERROR, "", "", "" },
	/* psl: RFC 7489 places, RFC 9989 tags */
	{ "psl: org record", DISCOVER, PSL, "a.mail.example.com", FOUND,
	  "_dmarc.a.mail.example.com=no-record _dmarc.example.com=record",
	  "example.com", "example.com", P, R, R, false, -1 },
	{ "psl: own record", DISCOVER, PSL, "giant.bank.example", FOUND,
	  "_dmarc.giant.bank.example=record", "giant.bank.example", "giant.bank.example",
	  P, Q, Q, false, -1 },
	{ "psl: PSD record not seen", DISCOVER, PSL, "mail.mega.bank.example", NONE,
	  "_dmarc.mail.mega.bank.example=no-record _dmarc.mega.bank.example=no-record",
	  "", "mega.bank.example" },
	{ "psl: np", DISCOVER, PSL, "ghost.np.test", FOUND,
	  "_dmarc.ghost.np.test=no-record _dmarc.np.test=record A:ghost.np.test=nxdomain",
	  "np.test", "np.test", NP, R, R, false, 0 },
	{ "psl: t=y", DISCOVER, PSL, "testing.test", FOUND,
	  "_dmarc.testing.test=record", "testing.test", "testing.test", P, R, Q, true, -1 },
	{ "psl: timeout step 2", DISCOVER, PSL, "x.pslslow.example.com", TEMP,
	  "_dmarc.x.pslslow.example.com=no-record _dmarc.pslslow.example.com=tempfail", "",
	  "pslslow.example.com" },
	{ "psl: timeout step 1", DISCOVER, PSL, "d1.slow.test", TEMP,
	  "_dmarc.d1.slow.test=tempfail", "", "slow.test" },
	{ "psl: org", ORG, PSL, "mail.mega.bank.example", FOUND, "", NULL, "mega.bank.example" },
};

static struct test_unbound server;

/* The public suffix list of the psl rows: the answer for each name they
 * ask about (a real list would say the same of these). */
static int test_psl(const void *ctx, const char *domain, char *buf, size_t size)
{
	static const char *const table[][2] = {
		{ "a.mail.example.com", "example.com" }, { "example.com", "example.com" },
		{ "giant.bank.example", "giant.bank.example" },
		{ "mail.mega.bank.example", "mega.bank.example" },
		{ "ghost.np.test", "np.test" }, { "testing.test", "testing.test" },
		{ "x.pslslow.example.com", "pslslow.example.com" }, { "d1.slow.test", "slow.test" },
	};

	(void)ctx;
	for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
		if (strcmp(domain, table[i][0]) == 0) {
			g_strlcpy(buf, table[i][1], size);
			return 0;
		}
	}
	return -1;
}

static struct resolver *new_resolver(void)
{
	char *servers[] = { server.server };
	struct resolver *r = NULL;
	char *error = NULL;

	g_assert_cmpint(resolver_new(servers, 1, TEST_TIMEOUT_MS, &r, &error), ==, 0);
	g_assert_null(error);
	return r;
}

static char *steps_text(const struct dmarc_discovery *d)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < d->step_count; i++)
		g_string_append_printf(s, "%s%s%s=%s", i ? " " : "",
				       d->steps[i].rrtype == 1 ? "A:" : "", d->steps[i].name,
				       dmarc_step_result_name(d->steps[i].result));
	return g_string_free(s, FALSE);
}

static void check_policy(const struct discovery_case *c, const struct dmarc_discovery *d)
{
	g_assert_true(d->has_record);
	g_assert_cmpint(d->applies, ==, c->applies);
	g_assert_cmpint(d->published, ==, c->published);
	g_assert_cmpint(d->policy, ==, c->policy);
	g_assert_cmpint(d->testing_lowered, ==, c->lowered);
	g_assert_cmpint(d->author_exists, ==, c->exists);
	if (c->extra != NULL) {
		g_autofree char *extra = g_strdup_printf("pct=%d ignored=%u rua=%zu", d->record.pct,
							 d->record.ignored_tags, d->record.rua_count);

		g_assert_cmpstr(extra, ==, c->extra);
	}
}

static void run_case(gconstpointer data)
{
	const struct discovery_case *c = data;
	struct dmarc_discovery_options o = { .mode = c->mode, .psl = { test_psl, NULL } };
	struct resolver *r = new_resolver();
	struct dmarc_discovery d;
	g_autofree char *steps = NULL;

	if (c->kind == DISCOVER)
		g_assert_cmpint(dmarc_discover(r, &o, c->domain, &d), ==, 0);
	else
		g_assert_cmpint(dmarc_discover_org_domain(r, &o, c->domain, &d), ==, 0);
	g_test_message("%s: %s (%s)", c->domain, dmarc_discovery_status_name(d.status), d.reason);
	steps = steps_text(&d);
	g_assert_cmpstr(steps, ==, c->steps);
	g_assert_cmpuint(resolver_queries_sent(r), ==, d.step_count);
	g_assert_cmpuint(d.step_count, <=, DMARC_DISCOVERY_STEPS_MAX);
	g_assert_cmpint(d.status, ==, c->status);
	g_assert_cmpstr(d.org_domain, ==, c->org_domain);
	g_assert_cmpstr(d.reason, !=, "");
	if (c->kind == DISCOVER)
		g_assert_cmpstr(d.policy_domain, ==, c->policy_domain);
	if (c->kind == DISCOVER && c->status == FOUND)
		check_policy(c, &d);
	if (c->status == TEMP)
		g_assert_nonnull(strstr(d.reason, "DNS failure"));
	dmarc_discovery_clear(&d);
	dmarc_discovery_clear(&d);
	resolver_free(&r);
}

/* Queries per discovery for typical From domains, cold and warm. */
static void test_query_cost(void)
{
	static const char *const domains[] = { "example.com", "mail.example.com", "ghost.np.test" };
	struct dmarc_discovery_options o = { .mode = DMARC_DISCOVERY_TREEWALK };

	for (size_t i = 0; i < G_N_ELEMENTS(domains); i++) {
		struct resolver *r = new_resolver();
		struct dmarc_discovery d;
		unsigned long cold, warm;

		dmarc_discover(r, &o, domains[i], &d);
		cold = resolver_queries_sent(r);
		dmarc_discovery_clear(&d);
		dmarc_discover(r, &o, domains[i], &d);
		warm = resolver_queries_sent(r) - cold;
		g_test_message("%s: %lu queries cold, %lu warm", domains[i], cold, warm);
		g_assert_cmpuint(cold, ==, d.step_count);
		g_assert_cmpuint(warm, ==, 0);
		dmarc_discovery_clear(&d);
		resolver_free(&r);
	}
}

/* json_check - python's json module reads JSON and prints EXPR of it. */
static char *json_check(const char *json, const char *expr)
{
	g_autofree char *code = g_strdup_printf("import json,sys; d=json.loads(sys.argv[1]); print(%s)", expr);
	char *argv[] = { "/usr/bin/python3", "-c", code, (char *)json, NULL };
	char *out = NULL;
	int status;
	GError *error = NULL;

	g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
				   &status, &error));
	g_assert_no_error(error);
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	return g_strchomp(out);
}

/* check --json material: the walk, the record, what applied and why. */
static void test_json(void)
{
	struct dmarc_discovery_options o = { .mode = DMARC_DISCOVERY_TREEWALK };
	struct resolver *r = new_resolver();
	struct dmarc_discovery d;
	GString *json = g_string_new(NULL);
	g_autofree char *walk = NULL, *record = NULL, *hostile = NULL, *none = NULL;

	dmarc_discover(r, &o, "ghost.psdtld", &d);
	dmarc_discovery_append_json(&d, json);
	walk = json_check(json->str, "' '.join(q['type']+':'+q['name']+'='+q['dns']+'/'+q['found']"
			  " for q in d['queries'])");
	g_assert_cmpstr(walk, ==, "TXT:_dmarc.ghost.psdtld=nxdomain/no-record "
			"TXT:_dmarc.psdtld=answer/record A:ghost.psdtld=nxdomain/nxdomain");
	record = json_check(json->str, "d['status'], d['policy_domain'], d['org_domain'], "
			    "d['record']['np'], d['record']['psd'], d['applies'], d['policy'], "
			    "d['author_exists'], d['record']['pct_not_applied']");
	g_assert_cmpstr(record, ==, "found psdtld ghost.psdtld reject y np reject False None");
	dmarc_discovery_clear(&d);

	g_string_truncate(json, 0);
	dmarc_discover(r, &o, "hostile.test", &d);
	dmarc_discovery_append_json(&d, json);
	hostile = json_check(json->str, "[ord(c) for c in d['record']['raw'][-7:]], d['record']['ignored_tags']");
	g_assert_cmpstr(hostile, ==, "[34, 113, 34, 32, 255, 9, 92] 1");
	dmarc_discovery_clear(&d);

	g_string_truncate(json, 0);
	dmarc_discover(r, &o, "d1.slow.test", &d);
	dmarc_discovery_append_json(&d, json);
	none = json_check(json->str, "d['status'], d['record'], d['queries'][0]['dns'], d['reason']");
	g_assert_cmpstr(none, ==, "temperror None tempfail DNS failure for _dmarc.d1.slow.test");
	dmarc_discovery_clear(&d);
	g_string_free(json, TRUE);
	resolver_free(&r);
}

static void test_bad_arguments(void)
{
	struct dmarc_discovery_options o = { .mode = DMARC_DISCOVERY_TREEWALK };
	struct resolver *r = new_resolver();
	struct dmarc_discovery d;

	g_assert_cmpint(dmarc_discover(NULL, &o, "example.com", &d), ==, -1);
	g_assert_cmpint(dmarc_discover(r, NULL, "example.com", &d), ==, -1);
	g_assert_cmpint(dmarc_discover(r, &o, NULL, &d), ==, -1);
	g_assert_cmpint(dmarc_discover_org_domain(r, &o, "example.com", NULL), ==, -1);
	o.mode = DMARC_DISCOVERY_PSL;   /* no list given */
	g_assert_cmpint(dmarc_discover(r, &o, "example.com", &d), ==, 0);
	g_assert_cmpint(d.status, ==, DMARC_DISCOVERY_PERMERROR);
	dmarc_discovery_clear(&d);
	resolver_free(&r);
}

int main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	test_unbound_start(&server, zone_lines);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *path = g_strdup_printf("/dmarc_discovery/%02zu %s", i, cases[i].what);

		g_test_add_data_func(path, &cases[i], run_case);
	}
	g_test_add_func("/dmarc_discovery/query-cost", test_query_cost);
	g_test_add_func("/dmarc_discovery/json", test_json);
	g_test_add_func("/dmarc_discovery/bad-arguments", test_bad_arguments);
	rc = g_test_run();
	test_unbound_stop(&server);
	return rc;
}
