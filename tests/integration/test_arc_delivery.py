"""ARC end to end: lmtpfilter in front of the real Dovecot with the sample
quarantine Sieve script, keys in the test unbound, chains sealed by dkimpy.

The author (example.org, p=reject) signs; a mailing list adds a subject
tag and a footer, which breaks the author's DKIM signature, and seals the
result (ARC, RFC 8617); it relays with its own envelope, so SPF passes
unaligned and DMARC fails. Without ARC that is a Quarantine; a chain that
passes, sealed last by a sealer in arc_trusted_sealers whose AAR shows the
pass it saw, is delivered to INBOX with dis=none and the sealer named.
Untrusted sealers, a tampered seal, a trusted sealer whose AAR shows only
failures and a key lookup that times out change nothing. The stored copy
still verifies with dkimpy."""
import json
import re
import subprocess
import tempfile
import os
import time
import unittest

import dkim

import annotate_util as au
import test_report
import dkim_sign
import harness

AUTHOR = "example.org"
LIST = ("lists.example.net", "lists.example.net", "arc1")     # authserv-id, d=, s=
UNTRUSTED = ("lists.example.biz", "lists.example.biz", "arc1")
FORWARDER = ("mx.fwd.example.info", "fwd.example.info", "arc1")
SLOW = ("mx.slow.example.net", "slow.example.net", "arc1")    # its key lookup times out
LIST_CLIENT = "192.0.2.20"
FWD_CLIENT = "198.51.100.7"
WHEN = 1795000000
LIST_AR = (b"spf=pass smtp.mailfrom=user@example.org; dkim=pass header.d=example.org header.s=rsa; "
           b"dmarc=pass header.from=example.org")


class ArcDeliveryTest(au.EnvTestCase):
    USERS = ("alice@example.com", "bob@example.info")
    SIEVE = au.QUARANTINE_SIEVE
    SILENT_ZONES = ("_domainkey.slow.example.net",)
    # lists.example.net and slow.example.net trusted everywhere, the
    # forwarder only by example.com.
    FILTER_CONFIG = {"arc_trusted_sealers": "lists.example.net;slow.example.net"}
    DOMAINS = {"example.com": {"mode": "annotate", "arc_trusted_sealers": "fwd.example.info"},
               "example.info": {"mode": "annotate"}}

    @classmethod
    def setUpClass(cls):
        # The DMARC history the daemon keeps: the override is recorded.
        cls.history_dir = tempfile.mkdtemp(prefix="arc-history")
        cls.FILTER_CONFIG = dict(cls.FILTER_CONFIG, dmarc_history=cls.history_dir)
        cls.author_key = dkim_sign.rsa_key(1024)
        cls.keys = {d: dkim_sign.rsa_key(1024) for d in (LIST[1], UNTRUSTED[1], FORWARDER[1], SLOW[1])}
        cls.txt = {"rsa._domainkey.example.org": cls.author_key.txt}
        cls.txt.update({"arc1._domainkey." + d: k.txt for d, k in cls.keys.items()})
        cls.ZONE = ['local-zone: "example.org." static',
                    au.txt_record("example.org", "v=spf1 ip4:203.0.113.0/24 -all"),
                    au.txt_record("_dmarc.example.org", "v=DMARC1; p=reject"),
                    'local-zone: "example.net." static', 'local-zone: "example.biz." static',
                    'local-zone: "example.info." static',
                    au.txt_record("lists.example.net", "v=spf1 ip4:%s -all" % LIST_CLIENT),
                    au.txt_record("lists.example.biz", "v=spf1 ip4:%s -all" % LIST_CLIENT),
                    au.txt_record("fwd.example.info", "v=spf1 ip4:%s -all" % FWD_CLIENT),
                    au.txt_record("slow.example.net", "v=spf1 ip4:%s -all" % LIST_CLIENT)]
        cls.ZONE += [au.txt_record(n, v) for n, v in cls.txt.items() if "slow" not in n]
        super().setUpClass()

    # -- building the mail --

    def dns(self, name, timeout=5):
        value = self.txt.get(name.decode().rstrip("."))
        return value.encode() if value is not None else None

    def authored(self, mid, rcpt="alice@example.com"):
        raw = au.make_message("user@example.org", rcpt, subject="meeting", mid=mid,
                              body="See you at ten.\n")
        return dkim_sign.sign(raw, self.author_key, AUTHOR, "rsa", when=WHEN)

    @staticmethod
    def through_list(raw):
        """What a list does: a subject tag and a footer."""
        raw = raw.replace(b"Subject: meeting", b"Subject: [team] meeting", 1)
        return raw + b"--\r\nteam mailing list\r\n"

    def seal(self, raw, hop, results=LIST_AR, arc=None):
        srv_id, domain, selector = hop
        ar = srv_id.encode() + b"; " + results + (b"; arc=" + arc.encode() if arc else b"")
        raw = b"Authentication-Results: " + ar + b"\r\n" + raw
        sets = dkim.arc_sign(raw, selector.encode(), domain.encode(), self.keys[domain].private,
                             srv_id.encode(), timestamp=WHEN)
        self.assertEqual(len(sets), 3, "dkimpy made no ARC set")
        return b"".join(sets) + raw

    def list_message(self, mid, hop=LIST, rcpt="alice@example.com"):
        return self.seal(self.through_list(self.authored(mid, rcpt)), hop)

    def deliver(self, raw, client=LIST_CLIENT, mail_from="team-bounces@lists.example.net",
                rcpt="alice@example.com"):
        self.send(raw, mail_from, rcpts=(rcpt,), xfwd=au.xforward(client, "mx." + mail_from.split("@")[1]))

    # -- checking what was stored --

    def arc_entry(self, d):
        arc = d.method("arc")
        self.assertEqual(len(arc), 1, d.ar_value)
        return arc[0]

    def assertArc(self, d, result, oldest_pass=None, client=LIST_CLIENT):
        arc = self.arc_entry(d)
        self.assertEqual(arc.result, result, d.ar_value)
        want = {"smtp.remote-ip": client}
        if oldest_pass is not None:
            want["header.oldest-pass"] = str(oldest_pass)
        self.assertEqual(au.props(arc), want, d.ar_value)

    def assertStillSealed(self, d, want="pass"):
        stored = d.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        cv, _, why = dkim.arc_verify(stored, dnsfunc=self.dns)
        self.assertEqual(cv, want.encode(), "stored copy: %s" % why)

    def log_line(self, mid):
        lines = [l for l in self.env.filter.log().splitlines() if "dmarc=" in l and "arc=" in l]
        self.assertTrue(lines, self.env.filter.log()[-2000:])
        return lines[-1]

    # -- the cases --

    def test_list_sealed_by_trusted_sealer_goes_to_inbox(self):
        mid = au.marker("arc-list")
        raw = self.list_message(mid)
        self.deliver(raw)
        d = self.delivered(mid, folder="INBOX")
        self.assertEqual([r.result for r in d.dkim], ["fail"], d.ar_value)
        self.assertEqual(d.dmarc.result, "fail", d.ar_value)
        self.assertEqual(d.comment("dmarc"), "p=reject dis=none, trusted ARC sealer d=lists.example.net",
                         d.ar_value)
        self.assertArc(d, "pass", 0)
        self.assertOurHeaders(d, raw, disposition=None)
        self.assertStillSealed(d)
        line = self.log_line(mid)
        self.assertIn(" arc=pass", line)
        self.assertIn(" arc_override=lists.example.net", line)
        self.assertIn(" action=deliver", line)
        # The aggregate-report history names the sealer as the override.
        day = time.strftime("%Y-%m-%d", time.gmtime())
        records, _ = test_report.dump(os.path.join(self.history_dir, day + ".dmh"))
        ours = [r for r in records if r.get("from") == "example.org"
                and r.get("override") == "trusted_forwarder"]
        self.assertTrue(ours, records)
        self.assertEqual(ours[-1].get("comment"), "lists.example.net", ours[-1])

    def test_same_list_mail_without_arc_is_quarantined(self):
        # The control: the same bytes without the seal.
        mid = au.marker("arc-none")
        raw = self.through_list(self.authored(mid))
        self.deliver(raw)
        d = self.delivered(mid, folder="Quarantine")
        self.assertEqual(d.dmarc.result, "fail", d.ar_value)
        self.assertEqual(d.comment("dmarc"), "p=reject dis=reject", d.ar_value)
        self.assertArc(d, "none")
        self.assertOurHeaders(d, raw, disposition="dmarc-reject (dmarc=fail p=reject header.from=example.org)")

    def test_untrusted_sealer_is_quarantined(self):
        mid = au.marker("arc-untrusted")
        raw = self.list_message(mid, UNTRUSTED)
        self.deliver(raw, mail_from="team-bounces@lists.example.biz")
        d = self.delivered(mid, folder="Quarantine")
        self.assertArc(d, "pass", 0)
        self.assertEqual(d.comment("dmarc"), "p=reject dis=reject", d.ar_value)
        self.assertNotIn("arc_override", self.log_line(mid))

    def test_tampered_seal_fails_and_is_quarantined(self):
        mid = au.marker("arc-tampered")
        raw = self.list_message(mid)
        m = re.search(rb"ARC-Seal: i=1;.*?\bb=([A-Za-z0-9+/]{10})", raw, re.S)
        pos = m.start(1) + 5
        raw = raw[:pos] + (b"B" if raw[pos:pos + 1] == b"A" else b"A") + raw[pos + 1:]
        self.deliver(raw)
        d = self.delivered(mid, folder="Quarantine")
        arc = self.arc_entry(d)
        self.assertEqual(arc.result, "fail", d.ar_value)
        self.assertIn("ARC-Seal i=1", d.comment("arc"), d.ar_value)
        self.assertEqual(au.props(arc), {"smtp.remote-ip": LIST_CLIENT}, d.ar_value)
        self.assertEqual(d.comment("dmarc"), "p=reject dis=reject", d.ar_value)

    def test_two_hops_list_then_forwarder(self):
        # The forwarder (trusted by example.com only) saw the list's chain
        # pass and applied the list's vouching itself: its A-R says so.
        mid = au.marker("arc-2hop")
        raw = self.seal(self.list_message(mid), FORWARDER, arc="pass",
                        results=b"spf=pass smtp.mailfrom=team-bounces@lists.example.net; "
                                b"dkim=fail header.d=example.org; dmarc=pass header.from=example.org")
        self.deliver(raw, client=FWD_CLIENT, mail_from="fwd@fwd.example.info")
        d = self.delivered(mid, folder="INBOX")
        self.assertArc(d, "pass", 0, client=FWD_CLIENT)
        self.assertEqual(d.comment("dmarc"), "p=reject dis=none, trusted ARC sealer d=fwd.example.info",
                         d.ar_value)
        self.assertStillSealed(d)

    def test_two_hops_sealer_trusted_for_another_domain_only(self):
        # The same chain to example.info: the forwarder is not on its list
        # (and the list's set is not the newest): Quarantine, arc=pass.
        mid = au.marker("arc-2hop-info")
        raw = self.seal(self.list_message(mid, rcpt="bob@example.info"), FORWARDER, arc="pass",
                        results=b"dmarc=pass header.from=example.org")
        self.deliver(raw, client=FWD_CLIENT, mail_from="fwd@fwd.example.info", rcpt="bob@example.info")
        d = self.delivered(mid, "bob@example.info", folder="Quarantine")
        self.assertArc(d, "pass", 0, client=FWD_CLIENT)
        self.assertEqual(d.comment("dmarc"), "p=reject dis=reject", d.ar_value)

    def test_trusted_sealer_whose_aar_shows_failure(self):
        # Trusted, the chain passes, but what it saw was a DMARC fail and
        # unaligned passes only: nothing changes.
        mid = au.marker("arc-aarfail")
        raw = self.seal(self.list_message(mid), FORWARDER, arc="pass",
                        results=b"spf=pass smtp.mailfrom=team-bounces@lists.example.net; "
                                b"dkim=fail header.d=example.org; dkim=pass header.d=lists.example.net; "
                                b"dmarc=fail header.from=example.org")
        self.deliver(raw, client=FWD_CLIENT, mail_from="fwd@fwd.example.info")
        d = self.delivered(mid, folder="Quarantine")
        self.assertArc(d, "pass", 0, client=FWD_CLIENT)
        self.assertEqual(d.comment("dmarc"), "p=reject dis=reject", d.ar_value)

    def test_key_timeout_is_temperror_never_a_pass(self):
        mid = au.marker("arc-slow")
        raw = self.list_message(mid, SLOW)
        self.deliver(raw, mail_from="team-bounces@slow.example.net")
        d = self.delivered(mid, folder="Quarantine")
        self.assertEqual(self.arc_entry(d).result, "temperror", d.ar_value)
        self.assertEqual(d.comment("dmarc"), "p=reject dis=reject", d.ar_value)

    def test_check_json_names_each_set_and_the_override(self):
        mid = au.marker("arc-json")
        raw = self.seal(self.list_message(mid), FORWARDER, arc="pass",
                        results=b"dkim=pass header.d=mail.example.org")   # relaxed alignment
        path = self.env.tmpdir + "/arc-json.eml"
        with open(path, "wb") as f:
            f.write(raw)
        r = subprocess.run([harness.lmtpfilter_binary(), "-c", self.env.filter.config_path, "check", "--json",
                            "--client-ip", FWD_CLIENT, "--helo", "mx.fwd.example.info",
                            "--mail-from", "fwd@fwd.example.info", "--rcpt", "alice@example.com", path],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["arc"]["result"], "pass")
        self.assertEqual(out["arc"]["sealer"], "fwd.example.info")
        self.assertEqual([(s["instance"], s["ams"], s["as"], s["cv"]) for s in out["arc"]["sets"]],
                         [(1, "pass", "pass", "none"), (2, "pass", "pass", "pass")])
        self.assertEqual(out["arc_vouched_by"], "dkim=pass header.d=mail.example.org")
        self.assertEqual(out["disposition"]["override"], "trusted ARC sealer d=fwd.example.info")
        self.assertEqual(out["disposition"]["override_sealer"], "fwd.example.info")
        self.assertFalse(out["disposition"]["quarantine"])


if __name__ == "__main__":
    unittest.main()
