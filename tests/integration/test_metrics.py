"""Metrics end to end: the real Dovecot (with the sample quarantine Sieve
script), unbound and lmtpfilter with metrics_listen. A known mix of mail
goes through; the scrape is parsed with prometheus_client's own parser and
every family's delta is asserted exactly, per label. Hostile scrapers
(silent, garbage, flooding) run while mail flows; `lmtpfilter stats`
talks to the running daemon.

The mix covers each fate: deliver, quarantine (lmtpfilter's disposition,
Dovecot's 2xx after Sieve filed it), reject (Dovecot's 550 at RCPT), defer
(our 452), mode=off, and mode=observe, whose would-be quarantine counts as
action="quarantine" with mode="observe"; one spoof goes to an annotate and
an observe recipient at once, and its results count once."""
import json
import os
import re
import socket
import statistics
import subprocess
import threading
import time
import unittest
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import annotate_util as au
import harness

PARTNER = "192.0.2.10"                 # in example.org's SPF range
SPF_RANGE = "v=spf1 ip4:192.0.2.0/24 -all"
SPOOFER = "184.72.226.23"              # in nobody's SPF range
SLOW_DMARC = "_dmarc.slow.example.org"  # never answered: one DNS timeout
OBSERVED = "observed.example"           # a domain in mode=observe
METRICS_PORT = harness.free_port()
HTTP_REQUEST_MAX = 4096                # METRICS_HTTP_REQUEST_MAX
HTTP_CLIENTS_MAX = 16                  # METRICS_HTTP_CLIENTS_MAX
HTTP_DEADLINE = 5.0                    # METRICS_HTTP_DEADLINE_MS
DATA_TIMEOUT = 3                       # seconds; the mix's messages take milliseconds

# Expected deltas of the mix (domain, mode, action) -> count; absent: 0.
MIX_RECIPIENTS = {
    ("example.com", "annotate", "deliver"): 6,     # legit, timeout, 1 + 3
    ("example.com", "annotate", "quarantine"): 3,  # spoof, the two-group spoof, SPF fail
    ("example.com", "annotate", "reject"): 1,      # unknown user: Dovecot's 550 at RCPT
    ("example.com", "annotate", "defer"): 1,       # past max_recipients: our 452
    ("example.net", "off", "deliver"): 1,
    (OBSERVED, "observe", "quarantine"): 1,        # the two-group spoof: would have been
}
# (domain, mode, reason) -> count of lmtpfilter_quarantine_total.
MIX_QUARANTINES = {
    ("example.com", "annotate", "dmarc-reject"): 2,
    ("example.com", "annotate", "spf-fail"): 1,
    (OBSERVED, "observe", "dmarc-reject"): 1,
}
MIX_RESULTS = {                     # the two-group spoof counts once
    ("spf", "pass"): 4, ("spf", "fail"): 3,
    ("dkim", "none"): 7,
    ("dmarc", "none"): 4, ("dmarc", "fail"): 2, ("dmarc", "temperror"): 1,
    ("arc", "none"): 7,              # arc is in the default checks: none of them is sealed
}
MIX_TRANSACTIONS = 8


def scrape(path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (METRICS_PORT, path), timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def samples():
    """{(sample name, frozenset of labels): value} of one scrape."""
    _, _, text = scrape()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def delta(before, after, name):
    """{labels: after - before} of a sample name, zero deltas left out."""
    d = {}
    for (n, labels), value in after.items():
        if n == name and value - before.get((n, labels), 0) != 0:
            d[labels] = value - before.get((n, labels), 0)
    return d


def raw_http(data, read=True):
    """Send bytes to the responder, return what it answered (b"" if it closed)."""
    with socket.create_connection(("127.0.0.1", METRICS_PORT), timeout=10) as s:
        s.sendall(data)
        if not read:
            return None
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


class MetricsTest(au.EnvTestCase):
    USERS = ("alice@example.com", "owner@example.com", "carol@example.com", "dave@example.com",
             "bob@example.net", "erin@" + OBSERVED)
    SIEVE = au.QUARANTINE_SIEVE
    SILENT_ZONES = (SLOW_DMARC,)
    DOMAINS = {"example.com": {"mode": "annotate"}, "example.net": {"mode": "off"},
               OBSERVED: {"mode": "observe"}}
    FILTER_CONFIG = {"metrics_listen": "inet:127.0.0.1:%d" % METRICS_PORT, "max_recipients": 3,
                     "data_timeout": DATA_TIMEOUT}
    ZONE = [
        'local-zone: "example.org." static',
        au.txt_record("example.org", SPF_RANGE),
        'local-zone: "example.com." static',
        au.txt_record("example.com", SPF_RANGE),
        au.txt_record("_dmarc.example.com", "v=DMARC1; p=reject"),
    ]

    def transaction(self, rcpts, mail_from="user@example.org", from_domain="example.org",
                    client=PARTNER):
        mid = au.marker("metrics")
        raw = au.make_message(mail_from, rcpts[0], mid=mid,
                              from_header="From: <user@%s>\n" % from_domain)
        return harness.deliver(self.env.filter.address, mail_from, list(rcpts), raw,
                               xforward=au.xforward(client, "mx.example.org"))

    def send_mix(self):
        _, _, data = self.transaction(["alice@example.com"])                      # legit
        self.assertEqual([r.code for r in data], [250])
        _, _, data = self.transaction(["alice@example.com"], mail_from="owner@example.com",
                                      from_domain="example.com", client=SPOOFER)  # spoof
        self.assertEqual([r.code for r in data], [250])
        _, _, data = self.transaction(["alice@example.com"], from_domain="slow.example.org")
        self.assertEqual([r.code for r in data], [250])                         # DNS timeout
        _, rcpt, data = self.transaction(["alice@example.com", "nobody@example.com"])
        self.assertEqual([r.code for r in rcpt], [250, 550])
        _, rcpt, data = self.transaction(["alice@example.com", "owner@example.com",
                                          "carol@example.com", "dave@example.com"])
        self.assertEqual([r.code for r in rcpt], [250, 250, 250, 452])
        _, _, data = self.transaction(["bob@example.net"])                        # mode=off
        self.assertEqual([r.code for r in data], [250])
        _, _, data = self.transaction(["erin@" + OBSERVED, "carol@example.com"],
                                      mail_from="owner@example.com", from_domain="example.com",
                                      client=SPOOFER)                             # two groups
        self.assertEqual([r.code for r in data], [250, 250])
        _, _, data = self.transaction(["dave@example.com"], client=SPOOFER)     # SPF fail, no DMARC
        self.assertEqual([r.code for r in data], [250])

    def wait_sessions_idle(self):
        harness.wait_for(lambda: samples().get(("lmtpfilter_sessions", frozenset())) == 0, 10,
                         "lmtpfilter_sessions back to 0")

    def test_mix_deltas(self):
        self.wait_sessions_idle()
        before = samples()
        self.send_mix()
        self.wait_sessions_idle()
        after = samples()
        got = {tuple(dict(l)[k] for k in ("domain", "mode", "action")): v
               for l, v in delta(before, after, "lmtpfilter_recipients_total").items()}
        self.assertEqual(got, MIX_RECIPIENTS)
        got = {tuple(dict(l)[k] for k in ("domain", "mode", "reason")): v
               for l, v in delta(before, after, "lmtpfilter_quarantine_total").items()}
        self.assertEqual(got, MIX_QUARANTINES)
        got = {(dict(l)["method"], dict(l)["result"]): v
               for l, v in delta(before, after, "lmtpfilter_results_total").items()}
        self.assertEqual(got, MIX_RESULTS)
        dns = {dict(l)["outcome"]: v for l, v in delta(before, after, "lmtpfilter_dns_queries_total").items()}
        self.assertEqual(dns.get("timeout"), 1, dns)
        self.assertNotIn("error", dns)
        self.assertGreater(dns.get("answer", 0) + dns.get("nxdomain", 0) + dns.get("nodata", 0), 0, dns)
        dns_count = delta(before, after, "lmtpfilter_dns_query_seconds_count")[frozenset()]
        self.assertEqual(dns_count, sum(dns.values()))
        slow = delta(before, after, "lmtpfilter_dns_query_seconds_bucket")
        self.assertEqual(slow.get(frozenset({("le", "+Inf")})), dns_count)
        self.assertEqual(slow.get(frozenset({("le", "1")}), 0), dns_count - 1,
                         "every lookup but the 2 s timeout within 1 s")
        self.assertEqual(delta(before, after, "lmtpfilter_transaction_seconds_count"),
                         {frozenset(): MIX_TRANSACTIONS})
        self.assertEqual(delta(before, after, "lmtpfilter_downstream_failures_total"), {})
        self.assertEqual(delta(before, after, "lmtpfilter_sessions_refused_total"), {})
        # Every label value is a configured group or "default", never from mail.
        domains = {dict(l).get("domain") for (n, l) in after if n == "lmtpfilter_recipients_total"}
        self.assertEqual(domains, {"default", "example.com", "example.net", OBSERVED})

    def test_data_timeout_defers(self):
        """A message that does not arrive within data_timeout: our 421 is
        the fate of each accepted recipient, a defer; the refused one was
        counted at RCPT."""
        self.wait_sessions_idle()
        before = samples()
        with harness.LmtpClient(self.env.filter.address) as c:
            c.lhlo()
            self.assertEqual(c.command("MAIL FROM:<user@example.org>").code, 250)
            self.assertEqual(c.command("RCPT TO:<alice@example.com>").code, 250)
            self.assertEqual(c.command("RCPT TO:<bob@example.net>").code, 250)
            self.assertEqual(c.command("RCPT TO:<nobody@example.com>").code, 550)
            self.assertEqual(c.command("DATA").code, 354)
            c.send(b"Subject: never finished\r\n")
            self.assertEqual(c.reply(timeout=DATA_TIMEOUT + 10).code, 421)
        self.wait_sessions_idle()
        got = {tuple(dict(l)[k] for k in ("domain", "mode", "action")): v
               for l, v in delta(before, samples(), "lmtpfilter_recipients_total").items()}
        self.assertEqual(got, {("example.com", "annotate", "defer"): 1, ("example.net", "off", "defer"): 1,
                               ("example.com", "annotate", "reject"): 1})

    def test_http_statuses(self):
        status, ctype, text = scrape()
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        for request, status in ((b"GET / HTTP/1.0\r\n\r\n", b"404"),
                                (b"POST /metrics HTTP/1.0\r\n\r\n", b"405"),
                                (b"GET /metrics HTTP/9\r\n\r\n", b"400"),
                                (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"400"),
                                (b"GET /metrics HTTP/1.0\r\nX: " + b"a" * 10000, b"400")):
            answer = raw_http(request)
            self.assertTrue(answer.startswith(b"HTTP/1.0 " + status + b" "), (request[:40], answer[:80]))

    def test_stats_command(self):
        self.send_mix()
        self.wait_sessions_idle()
        now = samples()

        def count(action, domain="example.com", mode="annotate"):
            key = frozenset({("domain", domain), ("mode", mode), ("action", action)})
            return "%d" % now[("lmtpfilter_recipients_total", key)]
        out = subprocess.run([harness.lmtpfilter_binary(), "-c", self.env.filter.config_path, "stats"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        row = [l.split() for l in lines if l.split()[:2] == ["example.com", "annotate"]]
        self.assertEqual(len(row), 1, out.stdout)
        self.assertEqual(row[0][2:], [count("deliver"), count("quarantine"), "-", count("defer"), count("reject")],
                         out.stdout)
        self.assertNotEqual(count("quarantine"), "0")
        row = [l.split() for l in lines if l.split()[:2] == [OBSERVED, "observe"]]
        self.assertEqual(len(row), 1, out.stdout)
        self.assertEqual(row[0][2:], ["0", "-", count("quarantine", OBSERVED, "observe"), "0", "0"], out.stdout)
        self.assertNotEqual(count("quarantine", OBSERVED, "observe"), "0")
        self.assertIn("would-quarantine", lines[1])
        self.assertRegex(out.stdout, r"quarantine reasons\n  dmarc-quarantine=0 dmarc-reject=[1-9]\d* spf-fail=[1-9]")
        self.assertRegex(out.stdout, r"would \(observe\): dmarc-quarantine=0 dmarc-reject=[1-9]")
        self.assertRegex(out.stdout, r"dmarc .*fail=\d+")
        self.assertRegex(out.stdout, r"dns latency: p50 [0-9.]+ ms, p99 [0-9.]+ ms")
        self.assertRegex(out.stdout, r"timeout=[1-9]")
        self.assertIn("running 0, refused 0", out.stdout)

    def test_stats_daemon_unreachable(self):
        conf = os.path.join(self.tmpdir, "down.conf")
        with open(self.env.filter.config_path) as f:
            text = f.read().replace(":%d" % METRICS_PORT, ":%d" % harness.free_port())
        with open(conf, "w") as f:
            f.write(text)
        out = subprocess.run([harness.lmtpfilter_binary(), "-c", conf, "stats"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 1)
        self.assertIn("the daemon is not reachable on metrics_listen", out.stderr)
        self.assertIn("Connection refused", out.stderr)

    def test_dashboard_sample(self):
        """Every family the sample dashboard queries is one the daemon serves."""
        with open(os.path.join(au.SAMPLES, "prometheus", "grafana-dashboard.json")) as f:
            dash = json.load(f)
        served = {name for name, _ in samples()}
        titles = [p["title"] for p in dash["panels"]]
        for needed in ("Recipients by action per domain", "Quarantine", "DNS timeouts",
                       "Transaction latency p99"):
            self.assertTrue([t for t in titles if t.startswith(needed)], titles)
        quarantine = [p for p in dash["panels"] if p["title"].startswith("Quarantine")][0]
        self.assertTrue([t for t in quarantine["targets"] if "lmtpfilter_quarantine_total" in t["expr"]
                         and "by (reason" in t["expr"]], quarantine["targets"])
        for panel in dash["panels"]:
            for target in panel["targets"]:
                for name in re.findall(r"lmtpfilter_[a-z_]+", target["expr"]):
                    self.assertIn(name, served, target["expr"])

    def timed_deliveries(self, count):
        times = []
        for _ in range(count):
            start = time.monotonic()
            _, _, data = self.transaction(["alice@example.com"])
            times.append(time.monotonic() - start)
            self.assertEqual([r.code for r in data], [250])
        return times

    def test_hostile_scrapers(self):
        baseline = self.timed_deliveries(8)
        stop = threading.Event()
        scrapes = [0]

        def flood():
            while not stop.is_set():
                try:
                    raw_http(b"GET /metrics HTTP/1.0\r\n\r\n")
                    scrapes[0] += 1
                except OSError:
                    pass

        def garbage():
            while not stop.is_set():
                try:
                    raw_http(os.urandom(512))
                except OSError:
                    pass

        threads = [threading.Thread(target=flood), threading.Thread(target=garbage)]
        for t in threads:
            t.start()
        silent = []
        try:
            for _ in range(HTTP_CLIENTS_MAX + 4):       # more than the responder serves
                silent.append(socket.create_connection(("127.0.0.1", METRICS_PORT), timeout=10))
            loaded = self.timed_deliveries(8)
        finally:
            stop.set()
            for t in threads:
                t.join()
        for s in silent:
            s.close()
        # None slower than usual: the worst under attack stays within a
        # loaded machine's noise of the worst without.
        self.assertLess(max(loaded), max(baseline) * 3 + 0.5, (baseline, loaded))
        self.assertLess(statistics.median(loaded), statistics.median(baseline) * 3 + 0.2, (baseline, loaded))
        self.assertGreater(scrapes[0], 0)
        # Once the silent ones are gone the responder answers again; until
        # it has seen them close, a new scraper may still be turned away.
        def answered():
            try:
                return scrape()[0] == 200
            except OSError:
                return False
        harness.wait_for(answered, HTTP_DEADLINE + 5, "a scrape after the silent clients")


if __name__ == "__main__":
    unittest.main()
