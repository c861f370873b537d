#!/usr/bin/python3
"""ARC chain verification (RFC 8617) against the dkimpy oracle.

dkimpy (Debian python3-dkim) seals the test messages (dkim.arc_sign) and
verifies them (dkim.arc_verify); lmtpfilter's verifier runs on the same
bytes through tests/tools/arc_verify_tool, keys served by a real unbound.
On every case both results are compared. Where the two legitimately
differ the test says why and checks each side on its own:
- temperror: dkimpy has no such result (a DNS timeout is a fail there);
- cv=fail: dkimpy answers None ("chain terminated"), RFC 8617 5.2 step 2
  and 3 say the chain fails;
- 51 sets: dkimpy's verifier has no limit, RFC 8617 5.2 step 1 fails it.
dkimpy 1.1.4's arc_sign seals with rsa-sha256 only (it ignores its
algorithm argument and ARC.sign parses the key as RSA PEM); its signing
code does ed25519-sha256 (RFC 8463) when given an ed25519 key, so the
ed25519 seals here go through ARC.sign with that key handed in directly.
Its ARC verifier accepts only rsa-sha256 (ARC_HASH_ALGORITHMS), though its
signature code verifies ed25519: for the ed25519 cases that table gets
ed25519-sha256 added, so the oracle judges those chains too.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import unittest.mock

import dkim
import nacl.encoding
import nacl.signing

import annotate_util as au
import dkim_sign
import harness

WHEN = 1700000000
AUTHOR = "example.org"
HOP1 = ("mx.example.net", "example.net", "arc1")      # authserv-id, d=, s=
HOP2 = ("lists.example.com", "example.com", "arc2")
HOPN = ("relay.example.com", "example.com", "arc2")
HOPED = ("ed.example.net", "example.net", "ed1")     # an ed25519 sealer


def relay(n):
    """Hop n of a long chain: its own authserv-id (dkimpy takes the cv of a
    new set from the A-R fields of that id, and fails on several)."""
    return ("relay%d.example.com" % n, "example.com", "arc2")


def message(body=b"Hello.\r\nSecond line.\r\n", subject=b"arc test"):
    return (b"From: Author <user@example.org>\r\n"
            b"To: list@example.com\r\n"
            b"Subject: " + subject + b"\r\n"
            b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
            b"Message-ID: <arc@example.org>\r\n"
            b"\r\n" + body)


def replace_first(msg, old, new):
    assert old in msg, old
    return msg.replace(old, new, 1)


class ArcOracleTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tool = os.environ.get("LMTPFILTER_ARC_TOOL")
        if not cls.tool:
            raise RuntimeError("LMTPFILTER_ARC_TOOL not set (run through ctest)")
        cls.tmp = tempfile.mkdtemp(prefix="arc")
        cls.keys = {"example.net": dkim_sign.rsa_key(2048),
                    "example.com": dkim_sign.rsa_key(1024),
                    AUTHOR: dkim_sign.rsa_key(2048)}
        cls.ed_key = dkim_sign.ed25519_key()
        cls.txt = {"arc1._domainkey.example.net": cls.keys["example.net"].txt,
                   "arc2._domainkey.example.com": cls.keys["example.com"].txt,
                   "dk._domainkey.example.org": cls.keys[AUTHOR].txt,
                   "ed1._domainkey.example.net": cls.ed_key.txt}
        zone = ['local-zone: "example.net." static', 'local-zone: "example.com." static',
                'local-zone: "example.org." static']
        zone += [au.txt_record(n, v) for n, v in cls.txt.items()]
        cls.unbound = harness.Unbound(cls.tmp, zone).start()

    @classmethod
    def tearDownClass(cls):
        cls.unbound.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers --

    @classmethod
    def dns(cls, name, timeout=5):
        value = cls.txt.get(name.decode().rstrip("."))
        return value.encode() if value is not None else None

    def seal(self, msg, hop, arc_result=None, results=b"spf=pass smtp.mailfrom=example.org"):
        """One hop: its Authentication-Results (with arc=... when given), then
        the ARC set dkimpy makes for it on top."""
        srv_id, domain, selector = hop
        ar = srv_id.encode() + b"; " + results
        if arc_result is not None:
            ar += b"; arc=" + arc_result.encode()
        msg = b"Authentication-Results: " + ar + b"\r\n" + msg
        sets = dkim.arc_sign(msg, selector.encode(), domain.encode(),
                             self.keys[domain].private, srv_id.encode(), timestamp=WHEN)
        self.assertEqual(len(sets), 3, "dkimpy made no ARC set")
        return b"".join(sets) + msg

    def seal_ed25519(self, msg, hop, arc_result=None):
        """seal() with the ed25519 key (see the module comment)."""
        srv_id, domain, selector = hop
        ar = srv_id.encode() + b"; spf=pass smtp.mailfrom=example.org"
        if arc_result is not None:
            ar += b"; arc=" + arc_result.encode()
        msg = b"Authentication-Results: " + ar + b"\r\n" + msg
        signing = nacl.signing.SigningKey(self.ed_key.private, encoder=nacl.encoding.Base64Encoder)
        arc = dkim.ARC(msg, signature_algorithm=b"ed25519-sha256", linesep=b"\r\n")
        with unittest.mock.patch("dkim.parse_pem_private_key", return_value=signing):
            sets = arc.sign(selector.encode(), domain.encode(), b"unused", srv_id.encode(),
                            include_headers=arc.default_sign_headers(), timestamp=WHEN)
        self.assertEqual(len(sets), 3, "dkimpy made no ARC set")
        self.assertIn(b"a=ed25519-sha256", sets[0])
        return b"".join(sets) + msg

    def chain(self, hops=2):
        msg = self.seal(message(), HOP1)
        if hops >= 2:
            msg = self.seal(msg, HOP2, "pass")
        return msg

    def ours(self, msg, server=None):
        path = os.path.join(self.tmp, "msg.eml")
        with open(path, "wb") as f:
            f.write(msg)
        r = subprocess.run([self.tool, path, server or self.unbound.server, "1500"],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return json.loads(r.stdout)

    def oracle(self, msg):
        with unittest.mock.patch.dict(dkim.crypto.ARC_HASH_ALGORITHMS,
                                      {b"ed25519-sha256": dkim.crypto.hashlib.sha256}):
            cv, _, reason = dkim.arc_verify(msg, dnsfunc=self.dns)
        return (cv.decode() if cv is not None else None), reason

    def assertSame(self, msg, expected):
        """Both verifiers give expected; returns our outcome."""
        got = self.ours(msg)
        want, why = self.oracle(msg)
        self.assertEqual(want, expected, "dkimpy: %s" % why)
        self.assertEqual(got["result"], expected, got)
        if expected == "fail":
            self.assertNotEqual(got["reason"], "", got)
        return got

    # -- cases where both agree --

    def test_single_set_pass(self):
        got = self.assertSame(self.chain(1), "pass")
        self.assertEqual(got["oldest_pass"], 0)
        self.assertEqual(got["sealer"], "example.net")
        self.assertEqual([s["instance"] for s in got["sets"]], [1])
        self.assertEqual(got["sets"][0]["cv"], "none")

    def test_two_hop_pass(self):
        got = self.assertSame(self.chain(2), "pass")
        self.assertEqual(got["sealer"], "example.com")
        self.assertEqual([(s["ams"], s["as"], s["cv"]) for s in got["sets"]],
                         [("pass", "pass", "none"), ("pass", "pass", "pass")])

    def test_ed25519_seal_pass(self):
        msg = self.seal_ed25519(self.seal(message(), HOP1), HOPED, "pass")
        got = self.assertSame(msg, "pass")
        self.assertEqual(len(got["sets"]), 2)

    def test_ed25519_body_modified(self):
        msg = self.seal_ed25519(message(), HOPED)
        self.assertSame(msg, "pass")
        self.assertSame(replace_first(msg, b"Hello.", b"Hello!"), "fail")

    def test_body_modified_after_sealing(self):
        msg = replace_first(self.chain(2), b"Second line.", b"Second line!")
        got = self.assertSame(msg, "fail")
        self.assertIn("body hash", got["reason"])

    def test_bare_lf_body_across_read_chunks(self):
        """A body sealed with CRLF line ends verifies with its line ends
        bare LF (the verifier adds the CR, as the daemon's spool does), also
        where a CRLF or a bare LF meets the boundary of the verifier's
        64 KiB reads, and a changed byte still fails. dkimpy seals
        relaxed/relaxed only, under which a doubled CR would not show; a
        lost or moved byte does."""
        chunk = 65536

        def filler(n):
            out, i = b"", 0
            while len(out) < n - 100:
                out += b"line %05d %s\n" % (i, b"bare" if i % 2 else b"crlf\r")
                i += 1
            return out + b"y" * (n - len(out))

        body_lf = filler(chunk - 1) + b"\r"                 # CR ends read 1 ...
        body_lf += b"\n" + filler(chunk - 1)                 # ... its LF begins read 2
        body_lf += b"\nbare LF began read 3\nend\r\n"        # after a 'y'
        self.assertEqual(body_lf[chunk - 1:chunk + 1], b"\r\n")
        self.assertEqual(body_lf[2 * chunk - 1:2 * chunk + 1], b"y\n")
        body_crlf = re.sub(rb"(?<!\r)\n", b"\r\n", body_lf)
        sealed = self.seal(self.seal(message(body=body_crlf), HOP1), HOP2, "pass")
        self.assertSame(sealed, "pass")
        head = sealed[:sealed.index(b"\r\n\r\n") + 4]
        got = self.ours(head + body_lf)
        self.assertEqual(got["result"], "pass", got)
        got = self.ours(head + body_lf.replace(b"read 3", b"read 4"))
        self.assertEqual(got["result"], "fail", got)

    def test_tampered_seal_signature(self):
        msg = self.chain(2)
        m = re.search(rb"ARC-Seal: i=2;.*?\bb=([A-Za-z0-9+/]{10})", msg, re.S)
        start = m.start(1) + 5
        flipped = b"B" if msg[start:start + 1] == b"A" else b"A"
        msg = msg[:start] + flipped + msg[start + 1:]
        got = self.assertSame(msg, "fail")
        self.assertIn("ARC-Seal i=2", got["reason"])

    def test_missing_instance(self):
        msg = self.chain(2)
        aar1 = re.search(rb"ARC-Authentication-Results: i=1;.*?\r\n(?=\S)", msg, re.S)
        got = self.assertSame(msg[:aar1.start()] + msg[aar1.end():], "fail")
        self.assertIn("i=1 lacks", got["reason"])

    def test_missing_whole_first_set(self):
        msg = self.chain(2)
        for name in (rb"ARC-Seal", rb"ARC-Message-Signature", rb"ARC-Authentication-Results"):
            f = re.search(name + rb": i=1;.*?\r\n(?=\S)", msg, re.S)
            msg = msg[:f.start()] + msg[f.end():]
        self.assertSame(msg, "fail")

    def test_duplicate_instance(self):
        msg = self.chain(2)
        as2 = re.search(rb"ARC-Seal: i=2;.*?\r\n(?=\S)", msg, re.S).group(0)
        got = self.assertSame(as2 + msg, "fail")
        self.assertIn("duplicate ARC-Seal i=2", got["reason"])

    def test_wrong_algorithm(self):
        msg = self.chain(2)
        msg = replace_first(msg, b"ARC-Seal: i=2; cv=pass; a=rsa-sha256",
                            b"ARC-Seal: i=2; cv=pass; a=rsa-sha1")
        got = self.assertSame(msg, "fail")
        self.assertIn("algorithm", got["reason"])

    def test_missing_tag(self):
        msg = self.chain(1)
        msg = replace_first(msg, b"; bh=", b"; xh=")
        got = self.assertSame(msg, "fail")
        self.assertIn("lacks bh=", got["reason"])

    def test_cv_fail_first_set(self):
        """dkimpy refuses to seal cv=fail at i=1: edited in, which also
        breaks AS 2 (it covers AS 1); RFC 8617 5.2 step 3 fails it first."""
        msg = replace_first(self.chain(2), b"ARC-Seal: i=1; cv=none", b"ARC-Seal: i=1; cv=fail")
        got = self.assertSame(msg, "fail")
        self.assertIn("i=1 has cv=fail", got["reason"])

    def test_sets_spread_over_header(self):
        msg = self.chain(2)
        msg = replace_first(msg, b"ARC-Seal: i=1", b"X-Spread: one\r\nARC-Seal: i=1")
        msg = replace_first(msg, b"ARC-Message-Signature: i=2",
                            b"X-Spread: two\r\nARC-Message-Signature: i=2")
        self.assertSame(msg, "pass")

    def test_mailing_list_after_author_dkim(self):
        """Author DKIM-signs, the list tags the subject and adds a footer
        (breaking DKIM), then seals: the chain passes."""
        signed = dkim_sign.sign(message(), self.keys[AUTHOR], AUTHOR, "dk", when=WHEN)
        listed = replace_first(signed, b"Subject: arc test", b"Subject: [list] arc test")
        listed += b"--\r\nlist footer\r\n"
        self.assertFalse(dkim.verify(listed, dnsfunc=self.dns))
        msg = self.seal(listed, HOP2, results=b"dkim=fail header.d=example.org")
        self.assertSame(msg, "pass")

    def test_oldest_pass(self):
        """Sealed once, then a list changes the subject and footer and seals
        again: AMS 1 no longer validates, the chain passes, oldest-pass 2."""
        msg = self.seal(message(), HOP1)
        msg = replace_first(msg, b"Subject: arc test", b"Subject: [list] arc test")
        msg = self.seal(msg + b"--\r\nfooter\r\n", HOP2, "pass")
        got = self.assertSame(msg, "pass")
        self.assertEqual(got["oldest_pass"], 2)
        self.assertEqual(got["sets"][0]["ams"], "fail")

    def test_unsigned(self):
        got = self.assertSame(message(), "none")
        self.assertEqual(got["sets"], [])

    # -- legitimate differences --

    def test_cv_fail_later_set(self):
        msg = self.seal(self.chain(2), HOPN, "fail")
        got = self.ours(msg)
        want, _ = self.oracle(msg)
        self.assertIsNone(want)                 # dkimpy: "the chain is terminated"
        self.assertEqual(got["result"], "fail")  # RFC 8617 5.2 step 2
        self.assertIn("i=3 has cv=fail", got["reason"])


    def test_dns_timeout_is_temperror(self):
        silent = harness.SilentDns()
        try:
            got = self.ours(self.chain(2), server=silent.server)
        finally:
            silent.stop()
        self.assertEqual(got["result"], "temperror", got)
        self.assertIn("key lookup", got["reason"])
        # dkimpy has no temperror: a key it cannot fetch is a fail there.
        cv, _, _ = dkim.arc_verify(self.chain(2), dnsfunc=lambda name, timeout=5: None)
        self.assertEqual(cv, b"fail")

    def test_fifty_and_fifty_one_sets(self):
        msg = self.seal(message(), HOP1)
        for n in range(2, 51):
            msg = self.seal(msg, relay(n), "pass")
        self.assertSame(msg, "pass")
        # dkimpy refuses to seal i=51; lift its local limit (a constant of
        # ARC.sign) for this one call to build the 51st set.
        original = dkim.ARC.sign.__code__
        consts = tuple(51 if c == 50 else c for c in original.co_consts)
        try:
            dkim.ARC.sign.__code__ = original.replace(co_consts=consts)
            msg51 = self.seal(msg, relay(51), "pass")
        finally:
            dkim.ARC.sign.__code__ = original
        self.assertIn(b"ARC-Seal: i=51;", msg51)
        want, _ = self.oracle(msg51)
        self.assertEqual(want, "pass")          # dkimpy's verifier has no limit
        got = self.ours(msg51)
        self.assertEqual(got["result"], "fail")  # RFC 8617 5.2 step 1
        self.assertIn("more than 50", got["reason"])


if __name__ == "__main__":
    unittest.main()
