"""DMARC in annotate mode, end to end: records and keys in the test
unbound, lmtpfilter in front of the real Dovecot whose sieve_before is the
sample quarantine script. Each test asserts the exact dmarc= entry (result,
p=/sp=/dis= comment, header.from) and the folder the message landed in.
Every case runs with dmarc_discovery = treewalk (DmarcTest) and = psl
(DmarcPslTest); the RFC 9989 cases (np=, t=y, the walk's organisational
domain) too, where the two modes agree."""
import os
import unittest

import annotate_util as au
import dkim_sign
import harness

PARTNER_CLIENT = "192.0.2.10"          # in every test domain's SPF range
SPF_RANGE = "v=spf1 ip4:192.0.2.0/24 -all"
SLOW_DMARC = "_dmarc.slow.example.org"  # never answered
SPOOF_SAMPLE = os.path.join(au.SAMPLES, "messages", "01-spoof.eml")
SPOOF_ENVELOPE = "bounce@www.wormly.com"  # no SPF record: spf=none



class DmarcTest(au.EnvTestCase):
    USERS = ("alice@example.com", "owner@example.com")
    SIEVE = au.QUARANTINE_SIEVE
    SILENT_ZONES = (SLOW_DMARC,)
    FILTER_CONFIG = {"dmarc_discovery": "treewalk"}
    TREEWALK = True

    @classmethod
    def setUpClass(cls):
        cls.key = dkim_sign.rsa_key(1024)
        cls.ZONE = [
            'local-zone: "example.org." static',
            au.txt_record("example.org", SPF_RANGE),
            au.txt_record("_dmarc.example.org", "v=DMARC1; p=reject"),
            au.dkim_key_record("rsa", "example.org", cls.key.txt),
            'local-zone: "example.net." static',
            au.txt_record("example.net", SPF_RANGE),
            au.txt_record("_dmarc.example.net", "v=DMARC1; p=quarantine; adkim=s; aspf=s"),
            au.dkim_key_record("rsa", "example.net", cls.key.txt),
            'local-zone: "example.biz." static',
            au.txt_record("example.biz", SPF_RANGE),
            'local-zone: "example.info." static',
            au.txt_record("example.info", SPF_RANGE),
            au.txt_record("_dmarc.example.info", "v=DMARC1; p=none"),
            'local-zone: "example.co.uk." static',
            au.txt_record("_dmarc.example.co.uk", "v=DMARC1; p=reject; sp=quarantine"),
            'local-zone: "example.com." static',
            au.txt_record("example.com", "v=spf1 ip4:192.0.2.0/24 ~all"),
            au.txt_record("_dmarc.example.com", "v=DMARC1; p=reject"),
            'local-zone: "wormly.com." static',
            # RFC 9989: np= for names that do not exist, t=y, psd=y.
            'local-zone: "example.us." static',
            au.txt_record("_dmarc.example.us", "v=DMARC1; p=none; np=reject"),
            'local-data: "www.example.us. A 192.0.2.80"',
            'local-zone: "example.eu." static',
            au.txt_record("_dmarc.example.eu", "v=DMARC1; p=quarantine; t=y"),
            'local-zone: "example.ch." static',
            au.txt_record("_dmarc.example.ch", "v=DMARC1; p=reject; t=y"),
            'local-zone: "platform.test." static',
            au.txt_record("_dmarc.platform.test", "v=DMARC1; p=reject; psd=y"),
            au.dkim_key_record("rsa", "tenant.platform.test", cls.key.txt),
            au.dkim_key_record("rsa", "other.platform.test", cls.key.txt),
        ]
        super().setUpClass()

    def run_case(self, mail_from, from_domain=None, client=PARTNER_CLIENT, helo="mx.example.org",
                 sign_domain=None, from_header=None, rcpt="alice@example.com", raw=None,
                 mid=None):
        mid = mid or au.marker("dmarc")
        if raw is None:
            raw = au.make_message(mail_from, rcpt, mid=mid,
                                  from_header=from_header if from_header is not None
                                  else "From: <user@%s>\n" % from_domain)
        if sign_domain:
            raw = dkim_sign.sign(raw, self.key, sign_domain, "rsa")
        self.send(raw, mail_from, rcpts=(rcpt,), xfwd=au.xforward(client, helo))
        return mid, raw

    def assertDmarc(self, mid, result, comment, header_from, folder, rcpt="alice@example.com"):
        d = self.delivered(mid, rcpt, folder)
        dmarc = d.dmarc
        self.assertIsNotNone(dmarc, d.ar_value)
        self.assertEqual(dmarc.result, result, d.ar_value)
        if comment is not None:
            self.assertEqual(d.comment("dmarc"), comment, d.ar_value)
        else:
            self.assertTrue(d.comment("dmarc"), "no reason given: " + d.ar_value)
        self.assertEqual(au.props(dmarc),
                         {"header.from": header_from} if header_from else {}, d.ar_value)
        return d

    def test_aligned_spf_pass(self):
        mid, raw = self.run_case("user@example.org", "example.org")
        d = self.assertDmarc(mid, "pass", "p=reject dis=none", "example.org", "INBOX")
        self.assertEqual(d.spf.result, "pass", d.ar_value)
        self.assertOurHeaders(d, raw)

    def test_aligned_dkim_pass_with_spf_fail(self):
        # A forwarder kept the envelope: SPF fails, the author's signature
        # still aligns. DMARC passes and wins over the SPF fail: INBOX.
        mid, raw = self.run_case("user@example.org", "example.org", client=au.SEED_CLIENT,
                                 helo=au.SEED_HELO, sign_domain="example.org")
        d = self.assertDmarc(mid, "pass", "p=reject dis=none", "example.org", "INBOX")
        self.assertEqual(d.spf.result, "fail", d.ar_value)
        self.assertEqual([r.result for r in d.dkim], ["pass"], d.ar_value)
        self.assertOurHeaders(d, raw, disposition=None)

    def test_spf_fail_without_dmarc_policy_is_quarantined(self):
        # example.biz publishes SPF and no DMARC record: the SPF fail decides.
        mid, raw = self.run_case("user@example.biz", "example.biz", client=au.SEED_CLIENT, helo=au.SEED_HELO)
        d = self.assertDmarc(mid, "none", None, "example.biz", "Quarantine")
        self.assertEqual(d.spf.result, "fail", d.ar_value)
        self.assertOurHeaders(d, raw, disposition="spf-fail (spf=fail smtp.mailfrom=user@example.biz "
                                                  "header.from=example.biz)")

    def test_spf_fail_under_a_p_none_policy_stays(self):
        # example.info publishes p=none: DMARC decides, and asks for nothing.
        mid, raw = self.run_case("user@example.org", "example.info", client=au.SEED_CLIENT, helo=au.SEED_HELO)
        d = self.assertDmarc(mid, "fail", "p=none dis=none", "example.info", "INBOX")
        self.assertEqual(d.spf.result, "fail", d.ar_value)
        self.assertOurHeaders(d, raw, disposition=None)

    def test_aligned_dkim_pass_unaligned_spf_pass(self):
        # Mailing-list style: the envelope is the list's domain.
        mid, raw = self.run_case("list-bounces@example.biz", "example.org",
                                 sign_domain="example.org")
        d = self.assertDmarc(mid, "pass", "p=reject dis=none", "example.org", "INBOX")
        self.assertEqual(d.spf.result, "pass", d.ar_value)

    def test_relaxed_alignment_of_a_subdomain(self):
        with self.subTest("spf"):
            mid, _ = self.run_case("bounce@example.org", "news.example.org")
            self.assertDmarc(mid, "pass", "p=reject dis=none", "news.example.org", "INBOX")
        with self.subTest("dkim"):
            mid, _ = self.run_case("list-bounces@example.biz", "news.example.org",
                                   sign_domain="example.org")
            self.assertDmarc(mid, "pass", "p=reject dis=none", "news.example.org", "INBOX")

    def test_strict_alignment_with_a_subdomain_fails(self):
        # example.net: adkim=s aspf=s, p=quarantine.
        mid, raw = self.run_case("user@example.net", "news.example.net", sign_domain="example.net")
        d = self.assertDmarc(mid, "fail", "p=quarantine dis=quarantine", "news.example.net",
                             "Quarantine")
        self.assertOurHeaders(d, raw, disposition="dmarc-quarantine (dmarc=fail p=quarantine "
                                                  "header.from=news.example.net)")
        self.assertEqual(d.spf.result, "pass", d.ar_value)
        self.assertEqual([r.result for r in d.dkim], ["pass"], d.ar_value)

    def test_strict_alignment_with_the_same_domain_passes(self):
        mid, _ = self.run_case("user@example.net", "example.net")
        self.assertDmarc(mid, "pass", "p=quarantine dis=none", "example.net", "INBOX")

    def test_no_record_is_none(self):
        mid, _ = self.run_case("user@example.biz", "example.biz")
        self.assertDmarc(mid, "none", None, "example.biz", "INBOX")

    def test_p_none_failing_is_fail_and_not_quarantined(self):
        mid, _ = self.run_case("user@example.org", "example.info")
        d = self.assertDmarc(mid, "fail", "p=none dis=none", "example.info", "INBOX")
        self.assertEqual(d.spf.result, "pass", d.ar_value)

    def test_organisational_domain_record_via_the_public_suffix_list(self):
        # No record at _dmarc.a.b.example.co.uk: the one of example.co.uk
        # (co.uk is a public suffix) applies, with its sp=.
        mid, raw = self.run_case("user@example.org", "a.b.example.co.uk")
        d = self.assertDmarc(mid, "fail", "p=reject sp=quarantine dis=quarantine",
                             "a.b.example.co.uk", "Quarantine")
        self.assertOurHeaders(d, raw, disposition="dmarc-quarantine (dmarc=fail p=reject sp=quarantine "
                                                  "header.from=a.b.example.co.uk)")

    def test_multiple_from_evaluates_every_domain(self):
        # example.org passes (its own SPF), example.com does not: a broken
        # From gets the strictest policy among the domains that fail.
        with self.subTest("two From fields"):
            mid, _ = self.run_case("user@example.org",
                                   from_header="From: <user@example.org>\nFrom: <user@example.com>\n")
            self.assertDmarc(mid, "fail", "p=reject dis=reject from=invalid", "example.com",
                             "Quarantine")
        with self.subTest("two addresses in different domains"):
            mid, _ = self.run_case("user@example.org",
                                   from_header="From: <user@example.org>, <owner@example.com>\n")
            self.assertDmarc(mid, "fail", "p=reject dis=reject from=invalid", "example.com",
                             "Quarantine")

    def test_broken_from_spoofing_a_reject_domain_lands_in_quarantine(self):
        # An outside server whose envelope has no SPF record (spf=none, so
        # only DMARC can file it) spoofs example.com (p=reject) with a From
        # field that is broken in each of these ways.
        long_name = harness.folded(["Chief Executive"] * 1100)
        variants = {
            "two identical From fields":
                "From: CEO <ceo@example.com>\nFrom: CEO <ceo@example.com>\n",
            "From over 16 KB": 'From: "%s" <ceo@example.com>\n' % long_name,
            "second address in another domain":
                "From: CEO <ceo@example.com>, helper@outside.example\n",
            "65 addresses":
                "From: %s\n" % harness.folded(["ceo%d@example.com," % i for i in range(64)]
                                      + ["ceo64@example.com"]),
            "address without a domain": "From: ceo@example.com, ceo\n",
        }
        self.assertGreater(len(variants["From over 16 KB"]), 16 * 1024)
        for name, from_header in variants.items():
            with self.subTest(name):
                mid, _ = self.run_case(SPOOF_ENVELOPE, client=au.SEED_CLIENT, helo=au.SEED_HELO,
                                       from_header=from_header)
                d = self.assertDmarc(mid, "fail", "p=reject dis=reject from=invalid",
                                     "example.com", "Quarantine")
                self.assertEqual(d.spf.result, "none", d.ar_value)

    def test_from_domain_only_dovecot_reads_lands_in_quarantine(self):
        # The envelope passes SPF for example.org; example.com (p=reject)
        # is in a From that Dovecot and Sieve read but an exact reader of
        # names or C strings would miss. Each must fail on example.com.
        variants = {
            "From<NUL>:": b"From\x00: CEO <ceo@example.com>\r\n",
            "From<NUL>junk: beside a passing From":
                b"From: <user@example.org>\r\nFrom\x00junk: CEO <ceo@example.com>\r\n",
            "NUL inside the value": b"From: <user@example.org>,\x00 CEO <ceo@example.com>\r\n",
            "17th From field": b"".join(b"From: <u%d@example.org>\r\n" % i for i in range(16))
                               + b"From: CEO <ceo@example.com>\r\n",
        }
        for name, from_fields in variants.items():
            with self.subTest(name):
                mid = au.marker("dmarc")
                raw = from_fields + au.make_message("user@example.org", mid=mid, from_header="")
                self.run_case("user@example.org", raw=raw, mid=mid)
                d = self.assertDmarc(mid, "fail", None, "example.com", "Quarantine")
                self.assertIn("dis=reject", d.comment("dmarc"), d.ar_value)
                self.assertEqual(d.spf.result, "pass", d.ar_value)

    def test_several_addresses_in_one_passing_domain_land_in_inbox(self):
        mid, _ = self.run_case("user@example.org",
                               from_header="From: Alice <alice@example.org>,\n"
                                           " \"Bob B.\" <bob@EXAMPLE.org>, carol@example.org\n")
        d = self.assertDmarc(mid, "pass", "p=reject dis=none", "example.org", "INBOX")
        self.assertEqual(d.spf.result, "pass", d.ar_value)

    def test_broken_from_naming_no_domain_is_permerror(self):
        mid, _ = self.run_case(SPOOF_ENVELOPE, client=au.SEED_CLIENT, helo=au.SEED_HELO,
                               from_header="From: ceo\nFrom: undisclosed:;\n")
        self.assertDmarc(mid, "permerror", "2 From fields", None, "INBOX")

    def test_broken_from_naming_none_of_ours_without_strict_policy_is_delivered(self):
        mid, _ = self.run_case("user@example.org",
                               from_header="From: <user@example.biz>\nFrom: <user@example.info>\n")
        # example.info fails under p=none: nothing to quarantine for.
        d = self.assertDmarc(mid, "fail", "p=none dis=none from=invalid", "example.info", "INBOX")
        self.assertIsNone(d.disposition)

    def test_no_from_is_permerror(self):
        mid, _ = self.run_case("user@example.org", from_header="")
        self.assertDmarc(mid, "permerror", None, None, "INBOX")

    def test_dns_timeout_on_dmarc_record_is_temperror_and_delivered(self):
        (mid, _), elapsed = au.timed(self.run_case, "user@example.org", "slow.example.org")
        d = self.assertDmarc(mid, "temperror", None, "slow.example.org", "INBOX")
        self.assertEqual(d.spf.result, "pass", d.ar_value)
        self.assertLess(elapsed, au.DNS_TIMEOUT + au.DELIVERY_SLACK,
                        "delivery took %.1f s" % elapsed)

    def test_seed_self_addressed_spoof_lands_in_quarantine_through_dmarc(self):
        # example.com: SPF ~all (softfail, not quarantined by itself),
        # DMARC p=reject. The sample message also carries a forged
        # "spf=pass" with our id and the Received line our Postfix wrote.
        with open(SPOOF_SAMPLE, "rb") as f:
            sample = harness.crlf(f.read())
        for how in ("xforward", "trail"):
            with self.subTest(how):
                mid = au.marker("spoof")
                raw = sample.replace(b"<seed-spoof@www.wormly.com>",
                                     ("<%s@test.example>" % mid).encode())
                self.assertNotEqual(raw, sample)
                xfwd = au.xforward(au.SEED_CLIENT, au.SEED_HELO) if how == "xforward" else None
                self.send(raw, "owner@example.com", rcpts=("owner@example.com",), xfwd=xfwd)
                d = self.assertDmarc(mid, "fail", "p=reject dis=reject", "example.com",
                                     "Quarantine", rcpt="owner@example.com")
                self.assertEqual(d.spf.result, "softfail", d.ar_value)
                self.assertEqual(au.props(d.spf).get("smtp.mailfrom"), "owner@example.com")
                self.assertEqual(d.rspf[2].get("client-ip"), au.SEED_CLIENT, d.rspf_value)
                self.assertOurHeaders(d, raw, renamed=[b"Authentication-Results: mail.example.com"],
                                      disposition="dmarc-reject (dmarc=fail p=reject header.from=example.com)")

    # ---- RFC 9989 ----------------------------------------------------------

    def test_spoof_of_a_non_existent_subdomain_under_np_reject_is_quarantined(self):
        # example.us: p=none; np=reject. ghost.example.us does not exist
        # (NXDOMAIN): np= applies; www.example.us exists: p=none.
        mid, _ = self.run_case(SPOOF_ENVELOPE, "ghost.example.us", client=au.SEED_CLIENT,
                               helo=au.SEED_HELO)
        d = self.assertDmarc(mid, "fail", "p=none np=reject dis=reject", "ghost.example.us",
                             "Quarantine")
        self.assertEqual(d.spf.result, "none", d.ar_value)
        mid, _ = self.run_case(SPOOF_ENVELOPE, "www.example.us", client=au.SEED_CLIENT,
                               helo=au.SEED_HELO)
        self.assertDmarc(mid, "fail", "p=none np=reject dis=none", "www.example.us", "INBOX")

    def test_testing_mode_applies_one_level_below(self):
        # t=y: quarantine is applied as none, reject as quarantine.
        mid, _ = self.run_case(SPOOF_ENVELOPE, "example.eu", client=au.SEED_CLIENT,
                               helo=au.SEED_HELO)
        self.assertDmarc(mid, "fail", "p=quarantine dis=none testing", "example.eu", "INBOX")
        mid, _ = self.run_case(SPOOF_ENVELOPE, "example.ch", client=au.SEED_CLIENT,
                               helo=au.SEED_HELO)
        self.assertDmarc(mid, "fail", "p=reject dis=quarantine testing", "example.ch",
                         "Quarantine")

    def test_relaxed_alignment_across_the_walks_organisational_domain(self):
        # platform.test publishes psd=y: by the walk, each tenant below it
        # is an Organizational Domain of its own (the list knows nothing of
        # .test and makes platform.test the organisation of all of them).
        mid, _ = self.run_case("list-bounces@example.biz", "mail.tenant.platform.test",
                               sign_domain="tenant.platform.test")
        self.assertDmarc(mid, "pass", "p=reject dis=none", "mail.tenant.platform.test", "INBOX")
        mid, _ = self.run_case("list-bounces@example.biz", "mail.tenant.platform.test",
                               sign_domain="other.platform.test")
        if self.TREEWALK:
            self.assertDmarc(mid, "fail", "p=reject dis=reject", "mail.tenant.platform.test",
                             "Quarantine")
        else:
            self.assertDmarc(mid, "pass", "p=reject dis=none", "mail.tenant.platform.test",
                             "INBOX")


class DmarcPslTest(DmarcTest):
    """The same cases with the RFC 7489 public suffix list discovery."""
    FILTER_CONFIG = {"dmarc_discovery": "psl"}
    TREEWALK = False


if __name__ == "__main__":
    unittest.main()
