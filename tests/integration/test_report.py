"""lmtpfilter report: DMARC aggregate reports (RFC 9990) from history
written through history_append (tests/history_tool.c), checked against the
RFC 9990 schema (../shared/dmarc, read in place), read back, and mailed
through a real private Postfix into Dovecot once."""

import email
import email.policy
import glob
import gzip
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import annotate_util as au
import dkim_sign
import harness

SHARED = os.environ.get("LMTPFILTER_SHARED_DIR",
                        os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
XSD = os.path.join(SHARED, "dmarc", "rfc9990-aggregate.xsd")
NS = {"d": "urn:ietf:params:xml:ns:dmarc-2.0"}
DAY = "2026-11-29"
BEGIN = 1795910400
END = BEGIN + 86399


def history_tool():
    build = os.path.dirname(os.path.dirname(harness.lmtpfilter_binary()))
    return os.path.join(build, "tests", "history_tool")


def rec(t, ip, policy, disp="pass", dkim_aligned=1, spf_aligned=1, extra=""):
    return ("time=%d ip=%s env=%s from=%s policy=%s org=%s p=reject adkim=r aspf=r "
            "dkim_aligned=%d spf_aligned=%d disp=%s spf=%s:mfrom:%s dkim=%s:s1:%s %s"
            % (BEGIN + t, ip, policy, policy, policy, policy, dkim_aligned, spf_aligned, disp,
               policy, "pass" if spf_aligned else "fail", policy,
               "pass" if dkim_aligned else "fail", extra))


class ReportBase(harness.HarnessTestCase):

    def setUp(self):
        super().setUp()
        if not os.path.exists(XSD):
            self.fail("no RFC 9990 schema at %s" % XSD)
        self.hosts = [os.path.join(self.tmpdir, "mx%d" % i) for i in (1, 2)]
        for d in self.hosts:
            os.makedirs(d)
        self.out = os.path.join(self.tmpdir, "out")
        os.makedirs(self.out)

    def append(self, directory, lines, *args):
        r = subprocess.run([history_tool(), directory] + list(args), input="\n".join(lines) + "\n",
                           text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout)
        return r.stdout

    def config(self, **keys):
        path = os.path.join(self.tmpdir, "lmtpfilter.conf")
        base = {"listen": "unix:" + os.path.join(self.tmpdir, "s"),
                "downstream": "unix:" + os.path.join(self.tmpdir, "d"),
                "report_email": "dmarc-reports@mx.example.com",
                "report_org_name": "Example Mail", "dmarc_history": self.hosts[0],
                "dns_servers": "127.0.0.1@9", "dns_timeout": 1}
        base.update(keys)
        with open(path, "w") as f:
            f.write("[lmtpfilter]\n" + "".join("%s = %s\n" % kv for kv in base.items()))
        return path

    def report(self, conf, *args):
        return subprocess.run([harness.lmtpfilter_binary(), "-c", conf, "report", "--period", DAY]
                              + list(args), text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120)

    def reports(self):
        """{policy domain: (file name, root element)}, each validated by xmllint."""
        out = {}
        for path in sorted(glob.glob(os.path.join(self.out, "*.xml.gz"))):
            xml = gzip.open(path).read()
            r = subprocess.run(["xmllint", "--noout", "--schema", XSD, "-"], input=xml,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertEqual(r.returncode, 0, r.stdout.decode() + xml.decode()[:3000])
            root = ET.fromstring(xml)
            domain = root.find("d:policy_published/d:domain", NS).text
            out[domain] = (os.path.basename(path), root)
        return out

    @staticmethod
    def rows(root):
        result = {}
        for r in root.findall("d:record", NS):
            key = (r.find("d:row/d:source_ip", NS).text,
                   r.find("d:row/d:policy_evaluated/d:disposition", NS).text,
                   r.find("d:row/d:policy_evaluated/d:dkim", NS).text,
                   r.find("d:row/d:policy_evaluated/d:spf", NS).text)
            result[key] = int(r.find("d:row/d:count", NS).text)
        return result



class ReportTest(ReportBase):

    def test_two_hosts_merge_into_one_report_per_domain(self):
        self.append(self.hosts[0], [rec(10, "192.0.2.1", "example.org")] * 3 +
                    [rec(20, "192.0.2.2", "example.org", "reject", 0, 0)] +
                    [rec(30, "198.51.100.7", "other.example", "none", 0, 1,
                         "override=trusted_forwarder comment=arc.example.net")])
        self.append(self.hosts[1], [rec(40, "192.0.2.1", "example.org")] * 2 +
                    # a record of the day before and after: not in the report
                    [rec(-5, "192.0.2.9", "example.org"), rec(86400, "192.0.2.9", "example.org")])
        conf = self.config()
        r = self.report(conf, "--out", self.out, "--history", self.hosts[0], "--history", self.hosts[1])
        self.assertEqual(r.returncode, 0, r.stdout)
        reports = self.reports()
        self.assertEqual(sorted(reports), ["example.org", "other.example"])
        name, root = reports["example.org"]
        self.assertEqual(name, "mx.example.com!example.org!%d!%d.xml.gz" % (BEGIN, END))
        self.assertEqual(self.rows(root), {("192.0.2.1", "pass", "pass", "pass"): 5,
                                           ("192.0.2.2", "reject", "fail", "fail"): 1})
        meta = root.find("d:report_metadata", NS)
        self.assertEqual(meta.find("d:org_name", NS).text, "Example Mail")
        self.assertEqual(meta.find("d:email", NS).text, "dmarc-reports@mx.example.com")
        self.assertEqual(meta.find("d:date_range/d:begin", NS).text, str(BEGIN))
        self.assertEqual(meta.find("d:date_range/d:end", NS).text, str(END))
        self.assertEqual(root.find("d:policy_published/d:p", NS).text, "reject")
        rec0 = [x for x in root.findall("d:record", NS)
                if x.find("d:row/d:source_ip", NS).text == "192.0.2.2"][0]
        self.assertEqual(rec0.find("d:auth_results/d:dkim/d:result", NS).text, "fail")
        self.assertEqual(rec0.find("d:auth_results/d:dkim/d:selector", NS).text, "s1")
        self.assertEqual(rec0.find("d:auth_results/d:spf/d:scope", NS).text, "mfrom")
        self.assertEqual(rec0.find("d:identifiers/d:header_from", NS).text, "example.org")
        _, other = reports["other.example"]
        reason = other.find("d:record/d:row/d:policy_evaluated/d:reason", NS)
        self.assertEqual(reason.find("d:type", NS).text, "trusted_forwarder")
        self.assertEqual(reason.find("d:comment", NS).text, "arc.example.net")

    def test_reports_read_back_by_an_independent_parser(self):
        # dmarc-cat (Debian) decodes the reports it is given, gzip'd XML in
        # the RFC 9990 namespace: the domain, policy and rows read back.
        self.append(self.hosts[0], [rec(10, "192.0.2.1", "example.org")] * 3 +
                    [rec(20, "192.0.2.2", "example.org", "reject", 0, 0)])
        r = self.report(self.config(), "--out", self.out, "--history", self.hosts[0])
        self.assertEqual(r.returncode, 0, r.stdout)
        name, _ = self.reports()["example.org"]
        # -N: no reverse lookups (no network here); -j 1: one worker, since
        # dmarc-cat 0.15.0's parallel workers pair addresses with the wrong
        # rows now and then, even without lookups.
        d = subprocess.run(["dmarc-cat", "-N", "-j", "1", os.path.join(self.out, name)], text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(d.returncode, 0, d.stdout)
        self.assertIn("Domain: example.org", d.stdout)
        self.assertIn("Policy: p=reject", d.stdout)
        self.assertRegex(d.stdout, r"(?m)^192\.0\.2\.1\s+3\s+example\.org\s+example\.org\s+pass\s+pass")
        self.assertRegex(d.stdout, r"(?m)^192\.0\.2\.2\s+1\s+example\.org\s+example\.org\s+fail\s+fail")

    def test_unfinished_day_and_bad_usage_are_refused(self):
        conf = self.config()
        today = time.strftime("%Y-%m-%d", time.gmtime())
        r = subprocess.run([harness.lmtpfilter_binary(), "-c", conf, "report", "--period", today,
                            "--out", self.out], text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("not a finished UTC day", r.stdout)
        r = self.report(conf)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("nothing to do", r.stdout)

    def test_torn_history_after_kill_9_under_load(self):
        """kill -9 the appender while 4 threads append: the report has every
        whole record, skips (and counts) a torn one, and never crashes."""
        line = rec(100, "203.0.113.5", "load.example")
        proc = subprocess.Popen([history_tool(), self.hosts[0], "--threads", "4", "--repeat",
                                 "100000000"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        proc.stdin.write((line + "\n").encode())
        proc.stdin.close()
        path = os.path.join(self.hosts[0], DAY + ".dmh")
        harness.wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 2000000, 30,
                         "history to grow")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # a crash mid-record: cut the file inside a record, then more appends
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size - 37)
        whole = open(path, "rb").read().count(b"\n")
        self.append(self.hosts[0], [rec(200, "203.0.113.6", "load.example")] * 3)
        conf = self.config()
        r = self.report(conf, "--out", self.out)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("1 torn or corrupt history records skipped", r.stdout)
        rows = self.rows(self.reports()["load.example"][1])
        self.assertEqual(rows[("203.0.113.5", "pass", "pass", "pass")], whole)
        self.assertEqual(rows[("203.0.113.6", "pass", "pass", "pass")], 3)


ZONE = [
    'local-zone: "example.org." static',
    'local-zone: "ext.example." static',
    'local-zone: "ok.example." static',
    'local-zone: "example.com." static',
    'local-zone: "bad.example." static',
    # rua inside the domain, and one that is not mailto:
    "local-data: '_dmarc.example.org. TXT \"v=DMARC1; p=reject; rua=mailto:alice@example.org,https://r.example/x\"'",
    # rua in another domain without the verification record: not sent
    "local-data: '_dmarc.ext.example. TXT \"v=DMARC1; p=none; rua=mailto:bob@example.com\"'",
    # rua in another domain that verifies it: sent
    "local-data: '_dmarc.ok.example. TXT \"v=DMARC1; p=none; rua=mailto:carol@example.com\"'",
    "local-data: 'ok.example._report._dmarc.example.com. TXT \"v=DMARC1\"'",
    # too many rua URIs: the first 4 used
    "local-data: '_dmarc.bad.example. TXT \"v=DMARC1; p=none; rua=mailto:a@bad.example,"
    "mailto:b@bad.example,mailto:c@bad.example,mailto:d@bad.example,mailto:alice@example.org\"'",
]


class ReportSendTest(ReportBase):

    def setUp(self):
        super().setUp()
        self.dns = self.start_unbound(ZONE)
        self.dovecot = self.start_dovecot(users=("alice@example.org", "bob@example.com",
                                                 "carol@example.com"))
        self.postfix = self.start_postfix(self.dovecot.address, "127.0.0.1:%d" % harness.free_port(),
                                          domains=("example.org", "example.com"))

    def test_send_once_to_verified_rua(self):
        self.append(self.hosts[0], [rec(10, "192.0.2.1", d) for d in
                                    ("example.org", "ext.example", "ok.example", "bad.example")])
        conf = self.config(dns_servers=self.dns.server,
                           report_sendmail="/usr/sbin/sendmail -C " + self.postfix.config_dir)
        r = self.report(conf, "--send", "--out", self.out)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("rua https://r.example/x ignored", r.stdout)
        self.assertIn("rua bob@example.com not sent", r.stdout)
        self.assertIn("5 rua URIs, only the first 4 used", r.stdout)
        self.assertEqual(len(self.reports()), 4)
        harness.wait_for(lambda: len(self.dovecot.messages("alice@example.org")) >= 1 and
                         len(self.dovecot.messages("carol@example.com")) >= 1, 30, "reports delivered")
        time.sleep(1)
        self.assertEqual(len(self.dovecot.messages("alice@example.org")), 1)
        self.assertEqual(len(self.dovecot.messages("carol@example.com")), 1)
        self.assertEqual(len(self.dovecot.messages("bob@example.com")), 0)
        msg = email.message_from_bytes(self.dovecot.messages("alice@example.org")[0],
                                       policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        self.assertEqual(str(msg["From"]), "dmarc-reports@mx.example.com")
        self.assertEqual(" ".join(str(msg["Subject"]).split()),
                         "Report Domain: example.org Submitter: mx.example.com "
                         "Report-ID: <%d.example.org@mx.example.com>" % BEGIN)
        parts = [p for p in msg.iter_attachments()]
        self.assertEqual(len(parts), 1)
        self.assertEqual(parts[0].get_content_type(), "application/gzip")
        self.assertEqual(parts[0].get_filename(),
                         "mx.example.com!example.org!%d!%d.xml.gz" % (BEGIN, END))
        xml = gzip.decompress(parts[0].get_content())
        self.assertEqual(self.rows(ET.fromstring(xml)), {("192.0.2.1", "pass", "pass", "pass"): 1})

        # a second run sends nothing
        r = self.report(conf, "--send")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("report: sent", r.stdout)
        self.assertIn("already sent", r.stdout)
        time.sleep(2)
        self.postfix.flush()
        time.sleep(1)
        self.assertEqual(len(self.dovecot.messages("alice@example.org")), 1)

    def test_failed_send_is_retried(self):
        self.append(self.hosts[0], [rec(10, "192.0.2.1", "example.org")])
        bad = self.config(dns_servers=self.dns.server, report_sendmail="/bin/false")
        r = self.report(bad, "--send")
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("left for the next run", r.stdout)
        good = self.config(dns_servers=self.dns.server,
                           report_sendmail="/usr/sbin/sendmail -C " + self.postfix.config_dir)
        r = self.report(good, "--send")
        self.assertEqual(r.returncode, 0, r.stdout)
        harness.wait_for(lambda: len(self.dovecot.messages("alice@example.org")) == 1, 30,
                         "the retried report")

    def test_unreachable_dns_is_a_log_line(self):
        self.append(self.hosts[0], [rec(10, "192.0.2.1", "example.org")])
        conf = self.config(dns_servers="127.0.0.1@%d" % harness.free_port(),
                           report_sendmail="/usr/sbin/sendmail -C " + self.postfix.config_dir)
        r = self.report(conf, "--send")
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("DNS failed temporarily", r.stdout)


if __name__ == "__main__":
    unittest.main()


# ---- history written by the daemon ----------------------------------------

PARTNER = "192.0.2.10"                  # in the SPF range of the sender domains
SPOOFER = "203.0.113.66"                # outside it
SPF_RANGE = "v=spf1 ip4:192.0.2.0/24 -all"


def dump(path):
    """([record dicts], skipped) of one history file, read by history_read_file."""
    r = subprocess.run([history_tool(), "--dump", path], text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise AssertionError(r.stdout)
    lines = r.stdout.splitlines()
    records = []
    for line in lines[:-1]:
        rec_ = {}
        for token in line.split(" "):
            k, v = token.split("=", 1)
            v = urllib.parse.unquote(v)
            if k == "dkim":
                rec_.setdefault("dkim", []).append(v)
            else:
                rec_[k] = v
        records.append(rec_)
    tail = lines[-1].split()
    return records, int(tail[3])


def shifted(record, day_start):
    """A dumped record as a history_tool line with its time moved into the
    day beginning at day_start (same second of the day)."""
    r = dict(record)
    r["time"] = str(day_start + int(r["time"]) % 86400)
    out = []
    for k, v in r.items():
        for one in (v if isinstance(v, list) else [v]):
            out.append("%s=%s" % (k, urllib.parse.quote(one, safe=":")))
    return " ".join(out)


class DaemonHistoryTest(au.EnvTestCase):
    """Messages delivered through lmtpfilter in front of the real Dovecot
    (sieve: the sample quarantine script), DNS from the real unbound: the
    daemon's own history file, read back exactly, then reported."""
    USERS = ("alice@example.com", "bob@example.net", "carol@example.edu")
    SIEVE = au.QUARANTINE_SIEVE
    CHECKS = {"checks": "spf;dkim;dmarc", "quarantine_on": "dmarc;spf;from"}
    DOMAINS = {"example.com": dict(CHECKS, mode="annotate"),
               "example.net": dict(CHECKS, mode="observe"),
               "example.edu": dict(CHECKS, mode="off")}

    @classmethod
    def setUpClass(cls):
        cls.key = dkim_sign.rsa_key(1024)
        cls.history = tempfile.mkdtemp(prefix="lmtpf-history-")
        cls.addClassCleanup(shutil.rmtree, cls.history, True)
        cls.FILTER_CONFIG = {"dmarc_history": cls.history}
        cls.ZONE = [
            'local-zone: "example.org." static',
            au.txt_record("example.org", SPF_RANGE),
            au.txt_record("_dmarc.example.org", "v=DMARC1; p=reject; rua=mailto:d@example.org"),
            au.dkim_key_record("s1", "example.org", cls.key.txt),
            'local-zone: "example.eu." static',
            au.txt_record("example.eu", SPF_RANGE),
            au.txt_record("_dmarc.example.eu", "v=DMARC1; p=quarantine; sp=none; t=y"),
            'local-zone: "example.com." static',
            'local-zone: "example.net." static',
            'local-zone: "example.edu." static',
        ]
        super().setUpClass()

    def setUp(self):
        super().setUp()
        for name in os.listdir(self.history):
            os.unlink(os.path.join(self.history, name))

    def deliver(self, mail_from, from_header, rcpt, client, sign=False):
        mid = au.marker("hist")
        raw = au.make_message(mail_from, rcpt, mid=mid, from_header=from_header)
        if sign:
            raw = dkim_sign.sign(raw, self.key, "example.org", "s1")
        self.send(raw, mail_from, rcpts=(rcpt,), xfwd=au.xforward(client, "mx.sender.example"))
        return mid

    def today(self):
        return os.path.join(self.history, time.strftime("%Y-%m-%d.dmh", time.gmtime()))

    def test_known_mix_recorded_and_reported(self):
        before = int(time.time())
        # 1. a spoof of p=reject example.org to an annotate domain
        spoof = self.deliver("user@example.org", "From: <ceo@example.org>\n", "alice@example.com", SPOOFER)
        # 2. a legit message: SPF and DKIM pass, aligned
        legit = self.deliver("user@example.org", "From: <ceo@example.org>\n", "alice@example.com",
                             PARTNER, sign=True)
        # 3. the same spoof to an observe domain: delivered as received
        self.deliver("user@example.org", "From: <ceo@example.org>\n", "bob@example.net", SPOOFER)
        # 4. to a mode=off domain: not evaluated, no record
        self.deliver("user@example.org", "From: <ceo@example.org>\n", "carol@example.edu", SPOOFER)
        # 5. a t=y domain failing: p=quarantine lowered to none
        test_mode = self.deliver("news@example.eu", "From: <news@example.eu>\n", "alice@example.com",
                                 SPOOFER)
        # 6. a broken From naming both domains: one record per policy domain
        self.deliver("user@example.org", "From: <a@example.org>, <b@example.eu>\n", "alice@example.com",
                     SPOOFER)
        after = int(time.time())
        self.delivered(spoof, folder="Quarantine")
        self.delivered(legit, folder="INBOX")
        self.delivered(test_mode, folder="INBOX")

        records, skipped = dump(self.today())
        self.assertEqual(skipped, 0)
        for r in records:
            self.assertTrue(before <= int(r["time"]) <= after, r)
        got = [{k: v for k, v in r.items() if k != "time"} for r in records]
        org = dict(ip=SPOOFER, env="example.org", from_="example.org", policy="example.org",
                   org="example.org", p="reject", sp="-", np="-", adkim="r", aspf="r", t="n",
                   psd="u", dkim_aligned="0", spf_aligned="0", spf="example.org:mfrom:fail")
        eu = dict(org, env="example.eu", from_="example.eu", policy="example.eu", org="example.eu",
                  p="quarantine", sp="none", t="y", spf="example.eu:mfrom:fail")

        def want(base, **kw):
            w = dict(base, **kw)
            w["from"] = w.pop("from_")
            return w
        expected = [
            want(org, disp="quarantine", override="local_policy", comment="quarantined, not rejected"),
            want(org, ip=PARTNER, dkim_aligned="1", spf_aligned="1", disp="pass", override="-",
                 spf="example.org:mfrom:pass", dkim=["example.org:s1:pass"]),
            want(org, disp="none", override="local_policy", comment="mode=observe"),
            want(eu, disp="none", override="policy_test_mode"),
            want(org, from_="example.org", disp="quarantine", override="local_policy",
                 comment="quarantined, not rejected"),
            want(eu, env="example.org", spf="example.org:mfrom:fail", disp="quarantine",
                 override="local_policy", comment="invalid From field"),
        ]
        self.maxDiff = None
        self.assertEqual(got, expected)
        self.assertLess(os.path.getsize(self.today()) / len(records), 400)

        # report refuses a day that is not finished, and the records carry
        # today's time: they are appended again, same second of the day, to
        # the finished day DAY (nothing else changes), then reported.
        reported = tempfile.mkdtemp(dir=self.env.tmpdir)
        out = tempfile.mkdtemp(dir=self.env.tmpdir)
        r = subprocess.run([history_tool(), reported], input="\n".join(shifted(x, BEGIN) for x in records),
                           text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(r.stdout.strip(), "appended 6 dropped 0")
        r = subprocess.run([harness.lmtpfilter_binary(), "-c", report_config(out, reported), "report", "--period", DAY, "--out", out],
                           text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout)
        reports = validated_reports(self, out)
        self.assertEqual(sorted(reports), ["example.eu", "example.org"])
        root = reports["example.org"]
        self.assertEqual(policy_published(root), {"domain": "example.org", "p": "reject", "adkim": "r",
                                                  "aspf": "r", "discovery_method": "treewalk", "testing": "n"})
        self.assertEqual(report_rows(root), {
            (SPOOFER, 2, "quarantine", "fail", "fail", "local_policy", "", "example.org:mfrom:fail"),
            (PARTNER, 1, "pass", "pass", "pass", "", "example.org:s1:pass", "example.org:mfrom:pass"),
            (SPOOFER, 1, "none", "fail", "fail", "local_policy", "", "example.org:mfrom:fail"),
        })
        root = reports["example.eu"]
        self.assertEqual(policy_published(root), {"domain": "example.eu", "p": "quarantine", "sp": "none",
                                                  "adkim": "r", "aspf": "r", "discovery_method": "treewalk",
                                                  "testing": "y"})
        self.assertEqual(report_rows(root), {
            (SPOOFER, 1, "none", "fail", "fail", "policy_test_mode", "", "example.eu:mfrom:fail"),
            (SPOOFER, 1, "quarantine", "fail", "fail", "local_policy", "", "example.org:mfrom:fail"),
        })

    def test_kill_9_under_load_then_a_file_size_limit(self):
        """kill -9 while four clients deliver: every record in the file is
        whole (one write(2) each). Then a file-size limit cuts the next
        record short: the daemon ignores SIGXFSZ and keeps delivering, the
        record is torn, later ones are dropped (counted); report skips the
        torn one and counts it."""
        self.addCleanup(self.restart_filter)
        raw = dkim_sign.sign(au.make_message("user@example.org", "alice@example.com",
                                             from_header="From: <ceo@example.org>\n"),
                             self.key, "example.org", "s1")
        acked = [0]
        stop = threading.Event()

        def client():
            while not stop.is_set():
                try:
                    _, _, data = harness.deliver(self.env.filter.address, "user@example.org",
                                                 ["alice@example.com"], raw,
                                                 xforward=au.xforward(PARTNER, "mx.sender.example"))
                except Exception:
                    return
                if data and data[0].code == 250:
                    acked[0] += 1
        clients = [threading.Thread(target=client) for _ in range(4)]
        for c in clients:
            c.start()
        try:
            harness.wait_for(lambda: os.path.exists(self.today()) and len(dump(self.today())[0]) >= 40,
                             60, "40 records")
            self.env.filter.proc.send_signal(signal.SIGKILL)
            self.env.filter.proc.wait()
        finally:
            stop.set()
            for c in clients:
                c.join()
        records, skipped = dump(self.today())
        self.assertEqual(skipped, 0)
        # a record follows the replies: one in flight per client may miss
        self.assertTrue(acked[0] - 4 <= len(records) <= acked[0] + 4, (acked[0], len(records)))
        whole = len(records)

        self.env.filter.kill()
        self.env.filter.start()
        size = os.path.getsize(self.today())
        limit = size + 100
        resource.prlimit(self.env.filter.pid(), resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        for _ in range(2):      # the first is cut at the limit, the second finds none left
            self.deliver("user@example.org", "From: <ceo@example.org>\n", "alice@example.com", PARTNER,
                         sign=True)
        self.assertTrue(self.env.filter.running())
        self.assertEqual(os.path.getsize(self.today()), limit)
        resource.prlimit(self.env.filter.pid(), resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        self.deliver("user@example.org", "From: <ceo@example.org>\n", "alice@example.com", PARTNER,
                     sign=True)
        self.assertEqual(self.env.filter.stop(), 0)
        self.assertIn("history appended=1 dropped=2", self.env.filter.log())
        records, skipped = dump(self.today())
        self.assertEqual((len(records), skipped), (whole + 1, 1))
        with open(self.today(), "rb") as f:
            torn = f.read()[size:limit]
        self.assertTrue(torn.startswith(b"\x01H1"), torn)

        # the report of those records on a finished day (see
        # test_known_mix_recorded_and_reported), the torn bytes between them
        reported = tempfile.mkdtemp(dir=self.env.tmpdir)
        day_file = os.path.join(reported, DAY + ".dmh")
        lines = [shifted(x, BEGIN) for x in records]
        for part in (lines[:whole], lines[whole:]):
            r = subprocess.run([history_tool(), reported], input="\n".join(part), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertEqual(r.stdout.strip(), "appended %d dropped 0" % len(part))
            if len(part) == whole:
                with open(day_file, "ab") as f:
                    f.write(torn)
        out = tempfile.mkdtemp(dir=self.env.tmpdir)
        r = subprocess.run([harness.lmtpfilter_binary(), "-c", report_config(out, reported), "report",
                            "--period", DAY, "--out", out],
                           text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("1 torn or corrupt history records skipped", r.stdout)
        self.assertEqual(report_rows(validated_reports(self, out)["example.org"]), {
            (PARTNER, whole + 1, "pass", "pass", "pass", "", "example.org:s1:pass", "example.org:mfrom:pass")})

    def restart_filter(self):
        """A fresh daemon (no file-size limit) for the next test."""
        self.env.filter.kill()
        self.env.filter.start()


def report_config(out, history):
    """A configuration for report --out over history (no DNS needed)."""
    conf = os.path.join(out, "lmtpfilter.conf")
    with open(conf, "w") as f:
        f.write("[lmtpfilter]\nlisten = unix:%s/s\ndownstream = unix:%s/d\n"
                "report_email = dmarc-reports@mx.example.com\nreport_org_name = Example Mail\n"
                "dmarc_history = %s\ndns_servers = 127.0.0.1@9\ndns_timeout = 1\n" % (out, out, history))
    return conf


def validated_reports(test, out):
    """{policy domain: root} of the reports in out, each valid by xmllint."""
    found = {}
    for path in sorted(glob.glob(os.path.join(out, "*.xml.gz"))):
        xml = gzip.open(path).read()
        r = subprocess.run(["xmllint", "--noout", "--schema", XSD, "-"], input=xml,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        test.assertEqual(r.returncode, 0, r.stdout.decode() + xml.decode()[:3000])
        root = ET.fromstring(xml)
        found[root.find("d:policy_published/d:domain", NS).text] = root
    return found


def policy_published(root):
    return {e.tag.split("}")[1]: e.text for e in root.find("d:policy_published", NS)}


def report_rows(root):
    """{(source_ip, count, disposition, dkim, spf, override types, "d:s:result" of the
    DKIM results, "d:scope:result" of SPF)}."""
    rows = set()
    for r in root.findall("d:record", NS):
        pe = "d:row/d:policy_evaluated/"
        overrides = ",".join(e.text for e in r.findall(pe + "d:reason/d:type", NS))
        dkim = ",".join("%s:%s:%s" % (e.find("d:domain", NS).text, e.find("d:selector", NS).text,
                                      e.find("d:result", NS).text)
                        for e in r.findall("d:auth_results/d:dkim", NS))
        spf = ",".join("%s:%s:%s" % (e.find("d:domain", NS).text, e.find("d:scope", NS).text,
                                     e.find("d:result", NS).text)
                       for e in r.findall("d:auth_results/d:spf", NS))
        rows.add((r.find("d:row/d:source_ip", NS).text, int(r.find("d:row/d:count", NS).text),
                  r.find(pe + "d:disposition", NS).text, r.find(pe + "d:dkim", NS).text,
                  r.find(pe + "d:spf", NS).text, overrides, dkim, spf))
    return rows
