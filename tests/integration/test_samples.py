"""The shipped samples are valid and do what they say: the configuration
passes -t and names every key, the Sieve scripts compile with Dovecot's
sievec, and the quarantine script files exactly the messages carrying our
X-Disposition-Quarantine (run with Pigeonhole's sieve-test)."""
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "samples")

# The keys of the configuration (SPEC.md, "Configuration").
CONFIG_KEYS = ["listen", "listen_mode", "downstream", "authserv_id", "authserv_id_aliases", "mta_hostnames",
               "trusted_networks", "xforward", "dns_servers", "dns_timeout", "max_message_size",
               "max_connections", "max_recipients", "timeout", "data_timeout", "spool_dir", "spool_memory_limit",
               "arc_trusted_sealers", "mode", "checks", "quarantine_on"]

OURS = ("Authentication-Results: mail.example.com;\n"
        "\tspf={spf} smtp.mailfrom=owner@example.com smtp.helo=www.wormly.com;\n"
        "\tdkim=none (message not signed);\n"
        "\tdmarc={dmarc} header.from=example.com\n")
MESSAGE_TAIL = ("From: Owner <owner@example.com>\nTo: owner@example.com\nSubject: test\n"
                "Message-ID: <t@example.com>\n\nbody\n")
RSPF = "Received-SPF: softfail (mail.example.com: test) client-ip=184.72.226.23; identity=mailfrom\n"
# The header blocks lmtpfilter writes for two messages of the suite
# (test_dmarc.py): a forwarded message whose SPF fails and whose author's
# DKIM signature aligns, and an SPF fail from a domain without DMARC.
FORWARDED = ("Authentication-Results: mail.example.com;\n"
             "\tspf=fail smtp.mailfrom=user@example.org smtp.helo=www.wormly.com;\n"
             "\tdkim=pass header.d=example.org header.i=@example.org header.s=rsa\n"
             "\theader.a=rsa-sha256 header.b=AbCdEfGh;\n"
             "\tdmarc=pass (p=reject dis=none) header.from=example.org\n"
             "Received-SPF: fail (mail.example.com: domain of user@example.org does not designate\n"
             "\t184.72.226.23 as permitted sender) client-ip=184.72.226.23;\n"
             "\tenvelope-from=\"user@example.org\"; helo=www.wormly.com; receiver=mail.example.com;\n"
             "\tidentity=mailfrom\n"
             "From: <user@example.org>\nTo: <alice@example.com>\nSubject: forwarded\n"
             "Message-ID: <f@example.org>\n\nbody\n")
NO_DMARC_SPF_FAIL = ("Authentication-Results: mail.example.com;\n"
                     "\tspf=fail smtp.mailfrom=user@example.biz smtp.helo=www.wormly.com;\n"
                     "\tdkim=none (message not signed);\n"
                     "\tdmarc=none (no DMARC record for example.biz) header.from=example.biz\n"
                     "Received-SPF: fail (mail.example.com: domain of user@example.biz does not designate\n"
                     "\t184.72.226.23 as permitted sender) client-ip=184.72.226.23;\n"
                     "\tenvelope-from=\"user@example.biz\"; helo=www.wormly.com; receiver=mail.example.com;\n"
                     "\tidentity=mailfrom\n"
                     "X-Disposition-Quarantine: spf-fail (spf=fail smtp.mailfrom=user@example.biz\n"
                     "\theader.from=example.biz)\n"
                     "From: <user@example.biz>\nTo: <alice@example.com>\nSubject: no dmarc\n"
                     "Message-ID: <n@example.biz>\n\nbody\n")


class SieveBehaviourTest(unittest.TestCase):
    """quarantine.sieve and optout-user.sieve run by sieve-test: which
    messages would be filed into Quarantine."""

    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        # sieve-test refuses to act as root: run it as nobody.
        self.user = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        os.chmod(self.dir, 0o777)

    def run_sieve(self, script_text, message, rcpt="owner@example.com", before=None):
        n = len(os.listdir(self.dir))
        script = os.path.join(self.dir, "s%d.sieve" % n)
        with open(script, "w") as f:
            f.write(script_text)
        msg = os.path.join(self.dir, "m%d.eml" % n)
        with open(msg, "w") as f:
            f.write(message)
        cmd = ["sieve-test", "-c", "/dev/null", "-o", "mail_location=maildir:" + os.path.join(self.dir, "Maildir"),
               "-r", rcpt, "-a", rcpt]
        if before is not None:
            cmd += ["-s", before]
        cmd += [script, msg]
        env = dict(os.environ, HOME=self.dir)
        kwargs = {}
        if self.user is not None:
            uid, gid = self.user.pw_uid, self.user.pw_gid

            def drop():
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            kwargs["preexec_fn"] = drop
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                           cwd=self.dir, **kwargs)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("final result: success", r.stdout)
        return r.stdout

    def quarantine_script(self):
        with open(os.path.join(SAMPLES, "sieve", "quarantine.sieve")) as f:
            return f.read()

    def assertQuarantined(self, out, expected):
        got = "store message in folder: Quarantine" in out
        self.assertEqual(got, expected, out)
        if not expected:
            self.assertIn("store message in folder: INBOX", out)

    def test_our_disposition_is_quarantined(self):
        for reason in ("dmarc-reject (dmarc=fail p=reject header.from=example.com)",
                       "dmarc-quarantine (dmarc=fail p=quarantine header.from=example.com)",
                       "spf-fail (spf=fail smtp.mailfrom=owner@example.com header.from=example.com)",
                       "from-invalid (dmarc=permerror from=invalid: 2 From fields)"):
            with self.subTest(reason):
                msg = (OURS.format(spf="softfail", dmarc="none") + RSPF
                       + "X-Disposition-Quarantine: %s\n" % reason + MESSAGE_TAIL)
                self.assertQuarantined(self.run_sieve(self.quarantine_script(), msg), True)

    def test_forwarded_spf_fail_with_aligned_dkim_pass_stays(self):
        # What lmtpfilter writes for it (tests/integration/test_dmarc.py):
        # DMARC pass wins, no disposition field.
        self.assertQuarantined(self.run_sieve(self.quarantine_script(), FORWARDED), False)

    def test_spf_fail_of_a_domain_without_dmarc_is_quarantined(self):
        self.assertQuarantined(self.run_sieve(self.quarantine_script(), NO_DMARC_SPF_FAIL), True)

    def test_results_alone_are_not_read(self):
        # The policy is lmtpfilter's: failing results without its
        # disposition (quarantine_on without spf, or p=none) stay.
        for spf, dmarc in (("fail", "none"), ("softfail", "fail (p=none dis=none)"),
                           ("fail", "fail (p=reject dis=reject)")):
            with self.subTest(spf=spf, dmarc=dmarc):
                out = self.run_sieve(self.quarantine_script(), OURS.format(spf=spf, dmarc=dmarc) + MESSAGE_TAIL)
                self.assertQuarantined(out, False)

    def test_renamed_disposition_is_ignored(self):
        msg = (OURS.format(spf="pass", dmarc="pass (p=reject dis=none)")
               + "X-Original-X-Disposition-Quarantine: dmarc-reject (forged)\n"
               + "X-Original-Authentication-Results: mail.example.com; spf=fail smtp.mailfrom=owner@example.com\n"
               + MESSAGE_TAIL)
        self.assertQuarantined(self.run_sieve(self.quarantine_script(), msg), False)

    def test_listed_opt_out_recipient_stays(self):
        out = self.run_sieve(self.quarantine_script(), NO_DMARC_SPF_FAIL, rcpt="optout@example.com")
        self.assertQuarantined(out, False)

    def test_optout_user_script_quarantines_nothing_and_lets_the_user_script_run(self):
        with open(os.path.join(SAMPLES, "sieve", "optout-user.sieve")) as f:
            before_text = f.read()
        before = os.path.join(self.dir, "optout-user.sieve")
        with open(before, "w") as f:
            f.write(before_text)
        user = 'require ["fileinto", "mailbox"];\nfileinto :create "Mine";\n'
        out = self.run_sieve(user, OURS.format(spf="fail", dmarc="fail (p=reject dis=reject)") + MESSAGE_TAIL,
                             before=before)
        self.assertNotIn("Quarantine", out)
        self.assertIn("store message in folder: Mine", out)


class SamplesTest(unittest.TestCase):
    def test_sample_config_is_valid(self):
        r = subprocess.run([harness.lmtpfilter_binary(), "-c", os.path.join(SAMPLES, "lmtpfilter.conf"), "-t"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("configuration ok", r.stdout)

    def test_bad_config_names_file_group_and_key(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.conf")
            with open(path, "w") as f:
                f.write("[lmtpfilter]\ndns_timeout = soon\n[defaults]\nmode = maybe\n")
            r = subprocess.run([harness.lmtpfilter_binary(), "-c", path, "-t"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(path + ": [lmtpfilter] dns_timeout:", r.stdout)
            self.assertIn(path + ": [defaults] mode:", r.stdout)

    def test_sieve_scripts_compile(self):
        with tempfile.TemporaryDirectory() as d:
            for name in ("quarantine.sieve", "optout-user.sieve"):
                src = os.path.join(SAMPLES, "sieve", name)
                dst = os.path.join(d, name)
                shutil.copyfile(src, dst)
                r = subprocess.run(["sievec", dst], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                self.assertEqual(r.returncode, 0, name + ": " + r.stdout)

    def test_sample_config_names_every_key(self):
        with open(os.path.join(SAMPLES, "lmtpfilter.conf")) as f:
            text = f.read()
        keys = set(re.findall(r"^([a-z_]+) *=", text, re.M))
        groups = re.findall(r"^\[([^]]+)\]", text, re.M)
        self.assertEqual(groups, ["lmtpfilter", "defaults", "domain example.com", "domain example.net"])
        self.assertLessEqual(set(CONFIG_KEYS), keys)
        self.assertRegex(text, r"\[domain example.com\]\n(;.*\n)*mode = annotate\n")
        # Every key is explained by a comment line right above it.
        lines = text.splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^([a-z_]+) *=", line)
            if m:
                self.assertTrue(lines[i - 1].startswith(";"), line)

    def test_version(self):
        r = subprocess.run([harness.lmtpfilter_binary(), "--version"], stdout=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^lmtpfilter \d+\.\d+")
        self.assertIn("libspf2", r.stdout)


if __name__ == "__main__":
    unittest.main()
