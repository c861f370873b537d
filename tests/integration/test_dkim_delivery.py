"""DKIM in annotate mode, end to end: messages signed here with dkimpy,
keys served by the test unbound, lmtpfilter in front of the real Dovecot.
Each test asserts the exact dkim= entries (result, header.d, header.i,
header.s, header.a, header.b prefix) and that every signature that was
valid on input still verifies (dkimpy) in the stored maildir file."""
import re
import unittest

import dkim

import annotate_util as au
import dkim_sign
import harness

DOMAIN = "example.org"
SLOW_DOMAIN = "slow.example.net"      # its key lookups never get an answer
PARTNER_CLIENT = "192.0.2.10"
HEADER_B_LEN = 8                      # RFC 6008: header.b carries a prefix
WHEN = None                           # t= now: keys and signatures are fresh


def sig_tags(field):
    """Tags of one raw DKIM-Signature field (bytes) as a dict of str,
    whitespace removed from the values."""
    value = field.split(b":", 1)[1].decode()
    tags = {}
    for part in value.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            tags[k.strip()] = re.sub(r"\s+", "", v)
    return tags


def signatures(message):
    """Tags of each DKIM-Signature of a message, top first."""
    fields, _ = au.split_header_fields(message)
    return [sig_tags(f) for f in fields if au.field_name(f).lower() == "dkim-signature"]


def to_crlf(stored):
    return stored.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class DkimDeliveryTest(au.EnvTestCase):
    USERS = ("alice@example.com",)
    SILENT_ZONES = (SLOW_DOMAIN,)

    @classmethod
    def setUpClass(cls):
        cls.keys = {
            "rsa": dkim_sign.rsa_key(2048),
            "other": dkim_sign.rsa_key(1024),     # published nowhere
            "ed": dkim_sign.ed25519_key(),
            "weak": dkim_sign.rsa_key(512),
        }
        cls.txt = {
            "rsa._domainkey.%s" % DOMAIN: cls.keys["rsa"].txt,
            "ed._domainkey.%s" % DOMAIN: cls.keys["ed"].txt,
            "weak._domainkey.%s" % DOMAIN: cls.keys["weak"].txt,
            "revoked._domainkey.%s" % DOMAIN: "v=DKIM1; k=rsa; p=",
        }
        cls.ZONE = ['local-zone: "example.org." static',
                    au.txt_record(DOMAIN, "v=spf1 ip4:192.0.2.0/24 -all"),
                    'local-zone: "example.com." static',
                    'local-zone: "example.net." static']
        cls.ZONE += [au.txt_record(name, value) for name, value in cls.txt.items()]
        super().setUpClass()

    # -- helpers --

    @classmethod
    def dns(cls, name, timeout=5):
        """dkimpy's DNS: our zone, from memory."""
        value = cls.txt.get(name.decode().rstrip("."))
        return value.encode() if value is not None else None

    def verifies(self, message, index=0):
        d = dkim.DKIM(message, minkey=512)
        return d.verify(idx=index, dnsfunc=self.dns)

    def sign(self, message, selector, domain=DOMAIN, key=None, **kw):
        return dkim_sign.sign(message, key or self.keys[selector], domain, selector,
                              when=WHEN, **kw)

    def message(self, mid, subject="dkim test", extra="", body="Hello.\nSecond line.\n",
                raw=None):
        if raw is not None:
            return raw
        return au.make_message("user@example.org", mid=mid, subject=subject, extra=extra,
                               body=body)

    def deliver(self, msg, mid):
        self.send(msg, "user@example.org", xfwd=au.xforward(PARTNER_CLIENT, "mx.example.org"))
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg)
        return d

    def assertEntries(self, d, expected):
        """expected: list of (result, tags-of-the-signature or None, extra
        props dict); compared as a multiset (order is not a contract)."""
        got = sorted((r.result, tuple(sorted(au.props(r).items()))) for r in d.dkim)
        want = []
        for result, tags in expected:
            if tags is None:
                want.append((result, ()))
                continue
            p = {"header.d": tags["d"], "header.i": tags.get("i", "@" + tags["d"]),
                 "header.s": tags["s"], "header.a": tags["a"],
                 "header.b": tags["b"][:HEADER_B_LEN]}
            want.append((result, tuple(sorted(p.items()))))
        self.assertEqual(got, sorted(want), d.ar_value)

    def assertStillVerifies(self, d, index=0):
        stored = to_crlf(d.raw)
        self.assertTrue(self.verifies(stored, index),
                        "signature %d no longer verifies after delivery:\n%r"
                        % (index, d.raw[:4000]))

    def check_valid(self, msg, mid, selectors, index=0):
        """A message valid on input: dkim=pass for it and still valid after."""
        self.assertTrue(self.verifies(msg, index), "test input does not verify")
        d = self.deliver(msg, mid)
        tags = signatures(msg)
        self.assertEqual([t["s"] for t in tags], selectors)
        self.assertEntries(d, [("pass", t) for t in tags])
        self.assertStillVerifies(d, index)
        return d

    def check_valid_both_canons(self, raw, mid, headers=None):
        """check_valid for raw signed simple/simple and relaxed/relaxed, each
        copy with its own Message-ID (mid + "s" / "r")."""
        for canon in ("simple/simple", "relaxed/relaxed"):
            with self.subTest(canon=canon):
                m = raw.replace(mid.encode(), (mid + canon[0]).encode())
                self.check_valid(self.sign(m, "rsa", canon=canon, headers=headers),
                                 mid + canon[0], ["rsa"])

    # -- results --

    def test_rsa_relaxed_relaxed(self):
        mid = au.marker("rr")
        self.check_valid(self.sign(self.message(mid), "rsa"), mid, ["rsa"])

    def test_rsa_simple_simple(self):
        mid = au.marker("ss")
        self.check_valid(self.sign(self.message(mid), "rsa", canon="simple/simple"), mid, ["rsa"])

    def test_ed25519(self):
        mid = au.marker("ed")
        d = self.check_valid(self.sign(self.message(mid), "ed"), mid, ["ed"])
        self.assertEqual(au.props(d.dkim[0])["header.a"], "ed25519-sha256")

    def test_length_tag_with_text_appended_after_signing(self):
        mid = au.marker("len")
        signed = self.sign(self.message(mid), "rsa", length=True)
        self.assertIn("l", signatures(signed)[0])
        signed += b"Appended by a mailing list.\r\n"
        self.check_valid(signed, mid, ["rsa"])

    def test_two_signatures_one_good_one_bad(self):
        mid = au.marker("two")
        good = self.sign(self.message(mid), "rsa")
        # Signed with a key that is not the one "rsa" publishes.
        both = self.sign(good, "rsa", key=self.keys["other"], canon="simple/simple")
        tags = signatures(both)
        self.assertFalse(self.verifies(both, 0))
        self.assertTrue(self.verifies(both, 1))
        d = self.deliver(both, mid)
        self.assertEntries(d, [("fail", tags[0]), ("pass", tags[1])])
        self.assertStillVerifies(d, 1)

    def test_body_tampered(self):
        mid = au.marker("body")
        signed = self.sign(self.message(mid), "rsa")
        tampered = signed.replace(b"Second line.", b"Second line!")
        d = self.deliver(tampered, mid)
        self.assertEntries(d, [("fail", signatures(tampered)[0])])

    def test_signed_header_tampered(self):
        mid = au.marker("hdr")
        signed = self.sign(self.message(mid, subject="original subject"), "rsa")
        tampered = signed.replace(b"Subject: original subject", b"Subject: changed subject")
        d = self.deliver(tampered, mid)
        self.assertEntries(d, [("fail", signatures(tampered)[0])])

    def test_selector_without_key(self):
        mid = au.marker("nokey")
        signed = self.sign(self.message(mid), "nokey", key=self.keys["rsa"])
        d = self.deliver(signed, mid)
        self.assertEntries(d, [("permerror", signatures(signed)[0])])

    def test_revoked_key(self):
        mid = au.marker("revoked")
        signed = self.sign(self.message(mid), "revoked", key=self.keys["rsa"])
        d = self.deliver(signed, mid)
        self.assertEntries(d, [("permerror", signatures(signed)[0])])

    def test_512_bit_key_is_policy(self):
        mid = au.marker("weak")
        signed = self.sign(self.message(mid), "weak")
        self.assertTrue(self.verifies(signed))      # cryptographically fine
        d = self.deliver(signed, mid)
        self.assertEntries(d, [("policy", signatures(signed)[0])])

    def test_key_lookup_timeout_is_temperror(self):
        mid = au.marker("slow")
        signed = self.sign(self.message(mid), "rsa", domain=SLOW_DOMAIN)
        d, elapsed = au.timed(self.deliver, signed, mid)
        self.assertEntries(d, [("temperror", signatures(signed)[0])])
        self.assertLess(elapsed, au.DNS_TIMEOUT + au.DELIVERY_SLACK)

    def test_malformed_signature_is_permerror(self):
        mid = au.marker("malformed")
        bad = ("DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=rsa;\n"
               "\th=from:to; bh=!!notbase64!!; b=\n")
        msg = au.make_message("user@example.org", mid=mid, top=bad)
        d = self.deliver(msg, mid)
        self.assertEqual([r.result for r in d.dkim], ["permerror"], d.ar_value)
        self.assertTrue(d.comment("dkim"), "permerror needs a reason: " + d.ar_value)

    def test_unsigned_is_none(self):
        mid = au.marker("unsigned")
        d = self.deliver(self.message(mid), mid)
        self.assertEqual([(r.result, au.props(r)) for r in d.dkim], [("none", {})], d.ar_value)

    # -- still valid after delivery --

    def test_odd_folding_still_verifies(self):
        mid = au.marker("fold")
        raw = harness.crlf(
            "From: \"Some  Sender\"\n   <user@example.org>\n"
            "To:alice@example.com\n"
            "Subject:   spaced   out  \n\t\tand folded  \n  twice\n"
            "Date: Sat, 28 Nov 2026 09:00:00 +0000\n"
            "Message-ID: <%s@test.example>\n"
            "X-Empty:\n"
            "X-Trailing: value   \n"
            "\n"
            "body with trailing spaces   \n\n\n" % mid)
        self.check_valid_both_canons(raw, mid, headers=["From", "To", "Subject", "Date",
                                                        "Message-ID", "X-Empty", "X-Trailing"])

    def test_eight_bit_headers_still_verify(self):
        mid = au.marker("8bit")
        raw = ("From: Jürgen Müller <user@example.org>\r\n"
               "To: alice@example.com\r\n"
               "Subject: Grüße aus Köln — ünïcödé\r\n"
               "Date: Sat, 28 Nov 2026 09:00:00 +0000\r\n"
               "Message-ID: <%s@test.example>\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n"
               "\r\n"
               "Schöne Grüße.\r\n" % mid).encode("utf-8")
        self.check_valid(self.sign(raw, "rsa", canon="simple/simple"), mid, ["rsa"])

    def test_multipart_with_preamble_and_epilogue_still_verifies(self):
        mid = au.marker("multi")
        raw = harness.crlf(
            "From: <user@example.org>\n"
            "To: <alice@example.com>\n"
            "Subject: multipart\n"
            "Date: Sat, 28 Nov 2026 09:00:00 +0000\n"
            "Message-ID: <%s@test.example>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=\"b1\"\n"
            "\n"
            "This is the preamble.  \n"
            "It has two lines.\n"
            "\n"
            "--b1\n"
            "Content-Type: text/plain\n"
            "\n"
            "part one\n"
            "--b1\n"
            "Content-Type: text/plain\n"
            "\n"
            "part two\n"
            "\n"
            "--b1--\n"
            "This is the epilogue.\n"
            "\n"
            "  trailing  \n" % mid)
        self.check_valid_both_canons(raw, mid)

    def test_message_above_the_spool_memory_limit_still_verifies(self):
        # 3 MB: spooled to a file (spool_memory_limit is 1 MB by default).
        mid = au.marker("big")
        body = "".join("%07d the quick brown fox jumps over the lazy dog, again and again\n" % i
                       for i in range(50000))
        msg = self.message(mid, body=body)
        self.assertGreater(len(msg), 3 * 1024 * 1024)
        self.check_valid(self.sign(msg, "rsa", canon="simple/simple"), mid, ["rsa"])

    def test_signature_still_verifies_when_forged_results_are_renamed(self):
        # The forged header sits outside h=: renaming it keeps the signature.
        mid = au.marker("forged")
        signed = self.sign(self.message(mid), "rsa")
        forged = b"Authentication-Results: mail.example.com; dkim=pass\r\n"
        msg = forged + signed
        self.send(msg, "user@example.org", xfwd=au.xforward(PARTNER_CLIENT, "mx.example.org"))
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, renamed=[forged.rstrip(b"\r\n")])
        self.assertEntries(d, [("pass", signatures(signed)[0])])
        self.assertStillVerifies(d)


if __name__ == "__main__":
    unittest.main()
