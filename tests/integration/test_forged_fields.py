"""Forged results that only a lenient reader takes for ours, sent straight
over LMTP (no Postfix cleaning them first), against the real Dovecot with
Sieve; and valid mail with a header block large enough to be read from the
spool file in several pieces.

  ProbeSieveTest     a Sieve script that files into "Forged" whatever A-R,
                     Received-SPF or X-Disposition-Quarantine it sees with
                     the marker. Each variant is first sent straight to
                     Dovecot (it must file it into "Forged": Dovecot does
                     read it as that field), then through lmtpfilter (it
                     must not: renamed, the rest byte-identical).
  SpoofSieveTest     the sample quarantine script with a rule in front that
                     keeps mail our A-R passes: a spoof with a forged pass
                     must still land in Quarantine, including a forged pass
                     past 64 KB multiples of a large header block (the
                     spool file is read in 64 KB pieces).
"""
import os
import re
import shutil
import tempfile
import unittest

import annotate_util as au
import harness

ALIAS_ID = "mx-old.example.com"
PARTNER_CLIENT = "192.0.2.10"
MARKER = "forged-marker"
ZONE = [
    'local-zone: "example.org." static',
    au.txt_record("example.org", "v=spf1 ip4:192.0.2.0/24 -all"),
    'local-zone: "example.com." static',
]
SPOOL_MEMORY_LIMIT = 4096            # small: large messages go to the spool file
SPOOL_READ_STEP = 65536              # spool_header_block reads the file in pieces of this size
BOUNDARY_SLACK = 3                   # header lines start at -3..+3 around a multiple

PROBE_SIEVE = """\
require ["fileinto", "mailbox"];
if anyof (header :contains "Authentication-Results" "%(m)s",
          header :contains "Received-SPF" "%(m)s",
          header :contains "X-Disposition-Quarantine" "%(m)s") {
    fileinto :create "Forged";
    stop;
}
""" % {"m": MARKER}

# Put in front of the sample script: an administrator who keeps whatever
# our A-R passes. A forged pass Sieve takes for ours would file a spoof
# into INBOX.
KEEP_OUR_PASS = """require ["regex"];
if header :regex "Authentication-Results"
        "^[[:space:]]*mail[.]example[.]com[[:space:]]*;(.*;)?[[:space:]]*(spf|dmarc)=pass" {
    keep;
    stop;
}
"""

# What lmtpfilter decides for the seed client's mail (SPF fails, and
# example.org publishes no DMARC policy): written after our A-R.
SPF_FAIL = "spf-fail (spf=fail smtp.mailfrom=user@example.org header.from=example.org)"

AR_PASS = " mail.example.com (%s); spf=pass smtp.mailfrom=user@example.org" % MARKER

# (name bytes, value) that Dovecot reads as one of our fields: renamed.
READ_AS_OURS = [
    (b"Authentication-Results\x00", AR_PASS),
    (b"Authentication-Results\x00junk", AR_PASS),
    (b"Authentication-Results\x00 ", AR_PASS),
    (b"authentication-RESULTS\x00\x00", " mx.google.com (%s); spf=pass" % MARKER),
    (b"aUTHENTICATION-results \t", AR_PASS),
    (b"Authentication-Results", " mail.example.com. (%s); spf=pass" % MARKER),
    (b"Authentication-Results", " MAIL.Example.COM.. (%s) ; spf=pass" % MARKER),
    (b"Authentication-Results", " (%s) mail.example.com. 1; spf=pass" % MARKER),
    (b"Authentication-Results", ' "Mail.Example.Com." (%s); spf=pass' % MARKER),
    (b"Authentication-Results", " =?utf-8?q?mail.example.com?= (%s); spf=pass" % MARKER),
    (b"Authentication-Results", ' "\x00mail.example.com" (%s); spf=pass' % MARKER),
    (b"Authentication-Results", " mx-old.example.com. (%s); spf=pass" % MARKER),
    (b"Received-SPF\x00", " pass (%s) client-ip=192.0.2.10" % MARKER),
    (b"received-spf \t", " pass (%s) client-ip=192.0.2.10" % MARKER),
    (b"X-Disposition-Quarantine", " dmarc-reject (%s)" % MARKER),
    (b"X-Disposition-Quarantine\x00x", " dmarc-reject (%s)" % MARKER),
    (b"x-disposition-QUARANTINE ", " spf-fail (%s)" % MARKER),
]

# Names Dovecot reads as other fields: left exactly as they are.
READ_AS_OTHERS = [
    (b"Authentication\x00-Results", AR_PASS),
    (b"\x00Authentication-Results", AR_PASS),
    (b"Authentication-Results\xff", AR_PASS),
    (b"Authentication-\rResults", AR_PASS),
    (b"Authentication -Results", AR_PASS),
]

# Names Dovecot reads as other fields, renamed all the same: control bytes
# at the ends of a name that would be ours (a reader a little more lenient
# than Dovecot may drop them; no sender writes such a name in good faith).
READ_AS_OTHERS_RENAMED = [
    (b"Authentication-Results\r", AR_PASS),
    (b"\x01Authentication-Results", AR_PASS),
    (b"Received-SPF\x01", " pass (%s)" % MARKER),
]


def build(fields, body="Hello.\n"):
    """A CRLF message from header field strings (each ending in "\\n")."""
    return harness.crlf("".join(fields) + "\n" + body)


def base_fields(mid):
    return ["From: <user@example.org>\n", "To: <alice@example.com>\n",
            "Subject: forged fields\n", "Date: Sat, 28 Nov 2026 09:00:00 +0000\n",
            "Message-ID: <%s@test.example>\n" % mid]


def with_field(mid, name, value):
    """A message with the raw field name:value right after From."""
    fields = base_fields(mid)
    return (harness.crlf(fields[0]) + name + b":" + value.encode() + b"\r\n"
            + build(fields[1:]))


def sieve_file(tmpdir, name, text):
    path = os.path.join(tmpdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class SieveEnvTestCase(au.EnvTestCase):
    """EnvTestCase whose Sieve script is text written at class set-up."""
    SIEVE_TEXT = None

    @classmethod
    def setUpClass(cls):
        cls.sieve_dir = tempfile.mkdtemp(prefix="lmtpf-sieve-")
        cls.addClassCleanup(shutil.rmtree, cls.sieve_dir, True)
        cls.SIEVE = sieve_file(cls.sieve_dir, "script.sieve", cls.SIEVE_TEXT)
        super().setUpClass()

    def found(self, mid, folders):
        return self.env.find("alice@example.com", mid, folders=folders)

    def send_direct(self, msg):
        """Straight to Dovecot, as if lmtpfilter were not there."""
        mail, rcpts, data = harness.deliver(self.env.dovecot.address, "user@example.org",
                                            ["alice@example.com"], msg)
        self.assertEqual([r.code for r in rcpts + data], [250, 250], (rcpts, data))


class ProbeSieveTest(SieveEnvTestCase):
    ZONE = ZONE
    FILTER_CONFIG = {"authserv_id_aliases": ALIAS_ID}
    SIEVE_TEXT = PROBE_SIEVE
    FOLDERS = ("INBOX", "Forged")

    def through_filter(self, msg, mid):
        self.send(msg, "user@example.org", xfwd=au.xforward(au.SEED_CLIENT, au.SEED_HELO))
        found = self.found(mid, self.FOLDERS)
        self.assertEqual(list(found), ["INBOX"], "Sieve saw a forged field")
        self.assertEqual(len(found["INBOX"]), 1)
        return au.Delivered(found["INBOX"][0])

    def test_fields_dovecot_reads_as_ours_are_renamed(self):
        for name, value in READ_AS_OURS:
            with self.subTest(name=name, value=value):
                mid = au.marker("direct")
                self.send_direct(with_field(mid, name, value))
                self.assertEqual(list(self.found(mid, self.FOLDERS)), ["Forged"],
                                 "premise: Dovecot reads %r as one of ours" % name)
                mid = au.marker("ours")
                msg = with_field(mid, name, value)
                d = self.through_filter(msg, mid)
                self.assertOurHeaders(d, msg, renamed=[name + b":"], disposition=SPF_FAIL)

    def test_fields_dovecot_reads_as_others(self):
        for name, value, renamed in ([(n, v, False) for n, v in READ_AS_OTHERS]
                                     + [(n, v, True) for n, v in READ_AS_OTHERS_RENAMED]):
            with self.subTest(name=name):
                mid = au.marker("direct")
                self.send_direct(with_field(mid, name, value))
                self.assertEqual(list(self.found(mid, self.FOLDERS)), ["INBOX"],
                                 "premise: Dovecot reads %r as another field" % name)
                mid = au.marker("others")
                msg = with_field(mid, name, value)
                d = self.through_filter(msg, mid)
                self.assertOurHeaders(d, msg, renamed=[name + b":"] if renamed else [], disposition=SPF_FAIL)

    def test_message_opening_with_white_space_does_not_continue_our_field(self):
        # Its first line would be a continuation of our Received-SPF: it
        # gets a name of its own, nothing else changes.
        for first in (" (%s) pass\n" % MARKER, "\t(%s)\n  pass\n" % MARKER):
            with self.subTest(first=first):
                mid = au.marker("lead")
                msg = build([first] + base_fields(mid))
                d = self.through_filter(msg, mid)
                self.assertEqual(len(d.ours), 2, d)
                self.assertEqual(d.after, harness.as_stored(b"X-Original-Continuation:" + msg))
                self.assertEqual(d.rspf[0], "fail", d.rspf_value)
                self.assertNotIn(MARKER, d.rspf_value)


class SpoofSieveTest(SieveEnvTestCase):
    ZONE = ZONE
    FILTER_CONFIG = {"authserv_id_aliases": ALIAS_ID, "spool_memory_limit": SPOOL_MEMORY_LIMIT}
    FOLDERS = ("INBOX", "Quarantine")

    @classmethod
    def setUpClass(cls):
        with open(au.QUARANTINE_SIEVE) as f:
            sample = f.read()
        anchor = re.search(r'^require .*\n', sample, re.M)
        cls.SIEVE_TEXT = sample[:anchor.end()] + KEEP_OUR_PASS + sample[anchor.end():]
        super().setUpClass()

    def spoof(self, msg, mid):
        """From the seed client (SPF fail): must land in Quarantine."""
        self.send(msg, "user@example.org", xfwd=au.xforward(au.SEED_CLIENT, au.SEED_HELO))
        return self.delivered(mid, folder="Quarantine")

    def test_our_pass_is_kept(self):
        # The rule in front of the sample works: a real pass stays in INBOX.
        mid = au.marker("real")
        msg = build(base_fields(mid))
        self.send(msg, "user@example.org", xfwd=au.xforward(PARTNER_CLIENT, "mx.example.org"))
        d = self.delivered(mid, folder="INBOX")
        self.assertEqual(d.spf.result, "pass", d.ar_value)

    def test_forged_pass_sieve_would_read_does_not_reach_inbox(self):
        passes = [(b"Authentication-Results\x00", " mail.example.com; spf=pass"),
                  (b"Authentication-Results\x00 ", " mail.example.com; dmarc=pass"),
                  (b"AUTHENTICATION-RESULTS\x00junk", " mail.example.com;\r\n\tspf=pass"),
                  (b"Authentication-Results", " =?utf-8?q?mail.example.com?=; spf=pass")]
        our_fail = b"Authentication-Results: mail.example.com; spf=fail smtp.mailfrom=user@example.org\r\n"
        for name, value in passes:
            with self.subTest(name=name, value=value):
                # Premise: beside a fail of ours, Sieve takes the forged
                # field for our pass and keeps the spoof in INBOX.
                mid = au.marker("spoof")
                self.send_direct(our_fail + with_field(mid, name, value))
                self.assertEqual(list(self.found(mid, self.FOLDERS)), ["INBOX"],
                                 "premise: Sieve takes %r for our pass" % name)
                mid = au.marker("spoof")
                msg = with_field(mid, name, value)
                d = self.spoof(msg, mid)
                self.assertOurHeaders(d, msg, renamed=[name + b":"], disposition=SPF_FAIL)
                self.assertEqual(d.spf.result, "fail", d.ar_value)

    def large_header(self, mid, line_at, line_len):
        """A header block whose line starts exactly at byte line_at, going on
        past the next read step, with a forged pass near its end; returns
        (message, the forged line)."""
        forged = "Authentication-Results: mail.example.com; spf=pass\n"
        out = b""
        n = 0

        def line(length):
            nonlocal n
            n += 1
            text = b"X-Filler-%06d: " % n
            return text + b"f" * (length - len(text) - 2) + b"\r\n"
        while len(out) + line_len + 30 <= line_at:
            out += line(line_len)
        out += line(line_at - len(out))
        assert len(out) == line_at
        # On past the next read too: the old search gave up one read early.
        boundary = (line_at + SPOOL_READ_STEP // 2) // SPOOL_READ_STEP * SPOOL_READ_STEP
        end = boundary + SPOOL_READ_STEP + 1000
        while len(out) < end:
            out += line(line_len)
        return out + build([forged] + base_fields(mid)), forged.rstrip("\n").encode()

    def test_large_header_block_with_lines_across_read_boundaries(self):
        line_lens = (78, 998, 40)
        for multiple in (1, 2):
            for delta in range(-BOUNDARY_SLACK, BOUNDARY_SLACK + 1):
                line_len = line_lens[(multiple + delta) % len(line_lens)]
                with self.subTest(multiple=multiple, delta=delta, line_len=line_len):
                    mid = au.marker("large")
                    msg, forged = self.large_header(mid, multiple * SPOOL_READ_STEP + delta,
                                                    line_len)
                    self.assertGreater(len(msg), SPOOL_MEMORY_LIMIT)
                    d = self.spoof(msg, mid)
                    self.assertOurHeaders(d, msg, renamed=[forged], disposition=SPF_FAIL)


if __name__ == "__main__":
    unittest.main()
