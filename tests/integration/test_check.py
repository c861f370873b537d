"""lmtpfilter check: the daemon's engine on one stored message, with the
facts from the options or from the Received trail; a --client-ip in
trusted_networks is trusted as the daemon trusts that XFORWARD client."""
import json
import os
import subprocess
import tempfile
import unittest

import annotate_util as au
import harness

ZONE = [
    'local-zone: "example.org." static',
    "local-data: 'example.org. TXT \"v=spf1 ip4:192.0.2.0/24 -all\"'",
    "local-data: '_dmarc.example.org. TXT \"v=DMARC1; p=reject\"'",
]

MESSAGE = (
    "Received: from www.wormly.com (unknown [184.72.226.23])\n"
    "\tby mail.example.com (Postfix) with ESMTP id 4Xcheck01\n"
    "\tfor <alice@example.com>; Sat, 28 Nov 2026 09:00:00 +0000\n"
    "Authentication-Results: mail.example.com; spf=pass smtp.mailfrom=user@example.org\n"
    "From: User <user@example.org>\n"
    "To: alice@example.com\n"
    "Subject: check\n"
    "\n"
    "body\n"
)


class CheckTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.dns = self.start_unbound(ZONE)
        self.conf = os.path.join(self.tmpdir, "lmtpfilter.conf")
        with open(self.conf, "w") as f:
            f.write("[lmtpfilter]\nauthserv_id = mail.example.com\nmta_hostnames = mail.example.com\n"
                    "dns_servers = %s\ndns_timeout = 3\nspool_dir = %s\n"
                    "[defaults]\nmode = off\n" % (self.dns.server, self.tmpdir))
        self.msg = os.path.join(self.tmpdir, "msg.eml")
        with open(self.msg, "w") as f:
            f.write(MESSAGE)

    def check(self, *args, stdin=None):
        return subprocess.run([harness.lmtpfilter_binary(), "-c", self.conf, "check"] + list(args),
                              input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)

    def test_json_with_facts_from_options(self):
        r = self.check("--client-ip", "184.72.226.23", "--helo", "www.wormly.com",
                       "--mail-from", "user@example.org", "--json", self.msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        v = json.loads(r.stdout)
        self.assertEqual(v["facts"]["source"], "options")
        self.assertEqual(v["facts"]["client_ip"], "184.72.226.23")
        self.assertEqual(v["spf"]["result"], "fail")
        self.assertEqual(v["spf"]["domain"], "example.org")
        self.assertEqual(v["dkim"], [])
        self.assertEqual(v["dmarc"]["result"], "fail")
        self.assertEqual(v["dmarc"]["policy"], "reject")
        self.assertEqual(v["dmarc"]["aligned_by"], "")
        self.assertIn("Authentication-Results: mail.example.com;", v["headers"])

    def test_json_shows_the_disposition_and_its_reason(self):
        r = self.check("--client-ip", "184.72.226.23", "--helo", "www.wormly.com",
                       "--mail-from", "user@example.org", "--json", self.msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        v = json.loads(r.stdout)
        self.assertEqual(v["disposition"], {"quarantine": True, "reason": "dmarc-reject",
                                            "details": "dmarc=fail p=reject header.from=example.org",
                                            "override": "", "override_sealer": ""})
        self.assertEqual(v["arc"]["result"], "none")
        self.assertEqual(v["arc"]["sets"], [])
        self.assertIn("\nX-Disposition-Quarantine: dmarc-reject (dmarc=fail p=reject\n"
                      "\theader.from=example.org)\n", v["headers"])
        self.assertFalse(v["dmarc"]["from_invalid"])
        # The domain's quarantine_on decides: without dmarc, nothing quarantines this one.
        with open(self.conf, "a") as f:
            f.write("quarantine_on = spf;from\n")
        r = self.check("--client-ip", "184.72.226.23", "--helo", "www.wormly.com",
                       "--mail-from", "user@example.org", "--json", self.msg)
        v = json.loads(r.stdout)
        self.assertEqual(v["disposition"], {"quarantine": False, "reason": "deliver", "details": "",
                                            "override": "", "override_sealer": ""})
        self.assertNotIn("X-Disposition-Quarantine:", v["headers"])

    def test_authorised_client_passes_and_dmarc_aligns_by_spf(self):
        r = self.check("--client-ip", "192.0.2.7", "--helo", "mx.example.org",
                       "--mail-from", "user@example.org", "--json", self.msg)
        v = json.loads(r.stdout)
        self.assertEqual(v["spf"]["result"], "pass")
        self.assertEqual(v["dmarc"]["result"], "pass")
        self.assertTrue(v["dmarc"]["spf_aligned"])
        self.assertEqual(v["dmarc"]["aligned_by"], "spf:example.org")
        self.assertEqual(v["disposition"]["reason"], "deliver")

    def test_header_block_from_the_trail(self):
        # No --client-ip: the facts come from our own Received line; the
        # forged result with our id is renamed; the message's LF line ends kept.
        r = self.check("--mail-from", "user@example.org", self.msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertTrue(out.startswith("Authentication-Results: mail.example.com;\n"), out)
        self.assertIn("spf=fail smtp.mailfrom=user@example.org smtp.helo=www.wormly.com", out)
        self.assertIn("client-ip=184.72.226.23", out)
        self.assertIn("\nX-Original-Authentication-Results: mail.example.com; spf=pass", out)
        self.assertNotIn("\r", out)
        self.assertTrue(out.endswith("Subject: check\n\n"), out)
        self.assertNotIn("body", out)

    def test_stdin_and_return_path(self):
        r = self.check("--json", "-", stdin="Return-Path: <user@example.org>\n" + MESSAGE)
        v = json.loads(r.stdout)
        self.assertEqual(v["facts"]["source"], "trail")
        self.assertEqual(v["spf"]["sender"], "user@example.org")
        self.assertEqual(v["spf"]["result"], "fail")

    def test_bad_usage(self):
        r = self.check("--client-ip", "not-an-ip", self.msg)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--client-ip", r.stderr)
        r = self.check(os.path.join(self.tmpdir, "missing.eml"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing.eml", r.stderr)


class CheckMatchesDaemonTest(au.EnvTestCase):
    """The same message through the daemon (real Dovecot) and through
    `check`, the client being a relay in trusted_networks (127.0.0.0/8):
    both walk past it to the trail's client and write the same results."""
    ZONE = [
        'local-zone: "example.org." static',
        au.txt_record("example.org", "v=spf1 ip4:192.0.2.0/24 -all"),
    ]

    def check(self, path, *args):
        r = subprocess.run([harness.lmtpfilter_binary(), "-c", self.env.filter.config_path, "check"]
                           + list(args) + [path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_trusted_client_ip_gives_the_daemons_result(self):
        # The border hop (192.0.2.10, authorised) is below the trusted relay:
        # taken at its word, 127.0.0.1 would fail example.org's -all.
        mid = au.marker("check-trusted")
        trail = au.postfix_received("mx.example.org", "192.0.2.10", qid="4Xchkdmn1")
        msg = au.make_message("user@example.org", mid=mid, top=trail)
        self.send(msg, "user@example.org", xfwd=au.xforward("127.0.0.1", "localhost"))
        d = self.delivered(mid)
        path = os.path.join(self.env.tmpdir, "check-trusted.eml")
        with open(path, "wb") as f:
            f.write(msg)
        out = self.check(path, "--client-ip", "127.0.0.1", "--helo", "localhost",
                         "--mail-from", "user@example.org", "--rcpt", "alice@example.com")
        fields, _ = au.split_header_fields(out.encode())
        self.assertEqual([au.field_name(f) for f in fields[:2]],
                         ["Authentication-Results", "Received-SPF"], out)
        self.assertEqual(au.field_value(fields[0]), d.ar_value)
        self.assertEqual(au.field_value(fields[1]), d.rspf_value)
        self.assertEqual(d.spf.result, "pass", d.ar_value)
        self.assertEqual(d.rspf[2].get("client-ip"), "192.0.2.10", d.rspf_value)
        v = json.loads(self.check(path, "--client-ip", "127.0.0.1", "--helo", "localhost",
                                  "--mail-from", "user@example.org", "--rcpt", "alice@example.com",
                                  "--json"))
        self.assertEqual(v["facts"]["source"], "trail")
        self.assertEqual(v["facts"]["client_ip"], "192.0.2.10")


if __name__ == "__main__":
    unittest.main()
