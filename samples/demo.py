#!/usr/bin/python3
"""The lmtpfilter demo: a private DNS (unbound) with the sample zones,
Dovecot with the sample quarantine Sieve script as sieve_before, lmtpfilter
with samples/lmtpfilter.conf (paths replaced for a temporary directory) and,
where network namespaces can be made (root), a private Postfix in front:
each sample message is sent over SMTP with swaks from its sender's outside
address, Postfix hands it to lmtpfilter with XFORWARD. Where that is not
possible the messages are handed to lmtpfilter directly, the way Postfix
does it (LMTP with XFORWARD), and the demo says so.

It prints where each message landed and its Authentication-Results (a
mailing-list message rescued by the list's ARC seal among them), then the
DMARC history the deliveries left and the aggregate report lmtpfilter
report makes of it (re-dated to yesterday: only a finished UTC day is
reported), then stops everything it started and removes its temporary directory, also on
errors and Ctrl-C.

Usage: samples/demo.py [PATH_TO_LMTPFILTER_BINARY]   (samples/demo builds it)"""
import datetime
import glob
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import dkim       # noqa: E402  (dkimpy, Debian python3-dkim)
import dkim_sign  # noqa: E402
import harness    # noqa: E402

SERVER_ADDRESS = "203.0.113.1"     # Postfix's smtpd, in its own network namespace
DELIVERY_TIMEOUT = 30.0            # seconds from "queued" to delivered
DOMAINS = ("example.com", "example.net")
LIST = ("lists.example.net", "lists.example.net", "arc1")   # its authserv-id, ARC d= and s=
LIST_AR = (b"spf=pass smtp.mailfrom=carol@club.example.org; "
           b"dkim=pass header.d=club.example.org header.s=mail; dmarc=pass header.from=club.example.org")
REPORT_EMAIL = "dmarc-reports@example.com"
USERS = ("owner@example.com", "bob@example.net")

# Each sample message: envelope sender, recipient, the client that hands it
# to us (address, HELO), and what it shows.
MESSAGES = [
    ("01-spoof.eml", "owner@example.com", "owner@example.com", "184.72.226.23", "www.wormly.com",
     "the seed's spoof: our own address in From:, sent from an outside server,\n"
     "   carrying a forged spf=pass with our authserv-id"),
    ("02-legitimate.eml", "alice@partner.example.org", "owner@example.com", "192.0.2.10",
     "mx.partner.example.org", "a legitimate message from a partner's own server"),
    ("03-newsletter.eml", "bounces@news.example.net", "owner@example.com", "198.51.100.20",
     "out.news.example.net", "a newsletter, DKIM-signed just now with a key published in the demo's DNS"),
    ("04-other-domain.eml", "someone@example.org", "bob@example.net", "184.72.226.23", "www.wormly.com",
     "a message for example.net, a domain in mode = observe: delivered as sent,\n"
     "   and the log line says what annotate would do (action=would-quarantine)"),
    ("05-list.eml", "team-bounces@lists.example.net", "owner@example.com", "198.51.100.30", "lists.example.net",
     "a mailing-list message: the author's DKIM signature broken by the list's subject tag\n"
     "   and footer, the list's ARC seal (sealer in arc_trusted_sealers) vouches for it"),
]


def zone(news_key_txt, author_key_txt, list_key_txt):
    def txt(name, value):
        parts = " ".join('"%s"' % value[i:i + 200] for i in range(0, len(value), 200))
        return "local-data: '%s TXT %s'" % (name, parts)
    return [
        'local-zone: "example.com." static',
        txt("example.com.", "v=spf1 ip4:192.0.2.0/24 ~all"),
        txt("_dmarc.example.com.", "v=DMARC1; p=reject"),
        'local-zone: "partner.example.org." static',
        txt("partner.example.org.", "v=spf1 ip4:192.0.2.10 -all"),
        txt("_dmarc.partner.example.org.", "v=DMARC1; p=quarantine"),
        'local-zone: "news.example.net." static',
        txt("news.example.net.", "v=spf1 ip4:198.51.100.20 -all"),
        txt("news._domainkey.news.example.net.", news_key_txt),
        txt("_dmarc.news.example.net.", "v=DMARC1; p=none"),
        'local-zone: "example.org." static',
        txt("example.org.", "v=spf1 -all"),
        'local-zone: "club.example.org." static',
        txt("club.example.org.", "v=spf1 ip4:192.0.2.30 -all"),
        txt("mail._domainkey.club.example.org.", author_key_txt),
        txt("_dmarc.club.example.org.", "v=DMARC1; p=reject"),
        'local-zone: "lists.example.net." static',
        txt("lists.example.net.", "v=spf1 ip4:198.51.100.30 -all"),
        txt("arc1._domainkey.lists.example.net.", list_key_txt),
    ]


ZONE_SUMMARY = """\
  example.com          SPF v=spf1 ip4:192.0.2.0/24 ~all, DMARC p=reject
  partner.example.org  SPF v=spf1 ip4:192.0.2.10 -all, DMARC p=quarantine
  news.example.net     SPF v=spf1 ip4:198.51.100.20 -all, DMARC p=none, DKIM key news._domainkey
  example.org          SPF v=spf1 -all
  club.example.org     SPF v=spf1 ip4:192.0.2.30 -all, DMARC p=reject, DKIM key mail._domainkey
  lists.example.net    SPF v=spf1 ip4:198.51.100.30 -all, ARC key arc1._domainkey (a mailing list)"""


def sample_config(path, **replace):
    """The sample configuration with the demo's paths and servers: keys of
    its [lmtpfilter] group replaced, the other groups as they are."""
    with open(os.path.join(HERE, "lmtpfilter.conf")) as f:
        text = f.read()
    head, sep, rest = text.partition("\n[defaults]")
    for key, value in replace.items():
        head, n = re.subn(r"(?m)^%s[ \t]*=.*$" % key, "%s = %s" % (key, value), head)
        if n != 1:
            raise RuntimeError("samples/lmtpfilter.conf has no single %s line in [lmtpfilter]" % key)
    with open(path, "w") as f:
        f.write(head + sep + rest)


def split_received(msg):
    """(leading Received lines, the rest): the samples carry the one Postfix
    would have written; a real Postfix writes its own."""
    lines = msg.split(b"\r\n")
    i = 0
    while i < len(lines) and lines[i].lower().startswith(b"received:"):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"".join(l + b"\r\n" for l in lines[:i]), b"\r\n".join(lines[i:])


def through_list(msg, author_key, list_key):
    """05-list.eml as the list sends it on: signed by its author, the
    subject tagged and a footer added (the author's signature no longer
    verifies), then sealed by the list with ARC over the results it saw."""
    msg = dkim_sign.sign(msg, author_key, "club.example.org", "mail")
    msg = msg.replace(b"\r\nSubject: ", b"\r\nSubject: [team] ", 1)
    msg += b"--\r\nteam mailing list, https://lists.example.net/team\r\n"
    srv_id, domain, selector = LIST
    msg = b"Authentication-Results: " + srv_id.encode() + b"; " + LIST_AR + b"\r\n" + msg
    sets = dkim.arc_sign(msg, selector.encode(), domain.encode(), list_key.private, srv_id.encode())
    if len(sets) != 3:
        raise RuntimeError("dkimpy made no ARC set")
    return b"".join(sets) + msg


def headers_of(stored):
    head = stored.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    fields, cur = [], None
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and cur is not None:
            cur += "\n" + line
            continue
        if cur is not None:
            fields.append(cur)
        cur = line
    if cur is not None:
        fields.append(cur)
    return fields


def why_list(place, ar):
    """One line on why the list's message landed where it did."""
    if place.endswith("/INBOX") and "arc=pass" in ar and "trusted ARC sealer d=%s" % LIST[1] in ar:
        return ("why: the list broke the author's signature and relays with its own envelope, so DMARC\n"
                "   fails; the ARC chain passes, its newest seal is by %s (in arc_trusted_sealers)\n"
                "   whose ARC-Authentication-Results saw dmarc=pass: delivered, dis=none." % LIST[1])
    return "unexpected: the ARC chain of a trusted sealer did not rescue it (see above)"


def message_id(msg):
    m = re.search(rb"(?im)^message-id:[ \t]*(<[^>]*>)", msg)
    return m.group(1) if m else None


def where_stored(dovecot, mid):
    """[(user/folder, stored bytes)] of every copy with this Message-ID."""
    found = []
    for user in USERS:
        for folder in ("INBOX", "Quarantine"):
            for stored in dovecot.messages(user, folder):
                if message_id(stored) == mid:
                    found.append(("%s/%s" % (user, folder), stored))
    return found


class Demo:
    def __init__(self, binary):
        os.environ["LMTPFILTER_BIN"] = binary
        self.tmp = tempfile.mkdtemp(prefix="lmtpfilter-demo-")
        self.started = []
        self.postfix = None
        self.ns = None

    def start(self, thing):
        thing.start()
        self.started.append(thing)
        return thing

    def cleanup(self):
        for thing in reversed(self.started):
            try:
                thing.stop()
            except Exception as e:  # keep stopping the others
                print("demo: stopping %s: %s" % (type(thing).__name__, e), file=sys.stderr)
        self.started = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_postfix(self):
        """Namespaces and Postfix; None on success, else why not."""
        reason = harness.namespaces_available()
        if reason:
            return reason
        try:
            clients = sorted({m[3] for m in MESSAGES})
            self.ns = self.start(harness.NetworkNamespaces(clients, SERVER_ADDRESS))
            self.postfix = self.start(harness.Postfix(
                self.tmp, self.filter.address, "%s:25" % SERVER_ADDRESS,
                domains=DOMAINS, netns=self.ns.server))
        except Exception as e:
            for thing in (self.postfix, self.ns):
                if thing is not None and thing in self.started:
                    thing.stop()
                    self.started.remove(thing)
            self.postfix = self.ns = None
            return str(e).strip().splitlines()[0]
        return None

    def run(self):
        t0 = time.monotonic()
        key = dkim_sign.rsa_key(2048)
        author_key = dkim_sign.rsa_key(2048)
        list_key = dkim_sign.rsa_key(2048)
        dns = self.start(harness.Unbound(self.tmp, zone(key.txt, author_key.txt, list_key.txt)))
        self.dovecot = self.start(harness.Dovecot(
            self.tmp, users=USERS, sieve_before=os.path.join(HERE, "sieve", "quarantine.sieve")))
        self.filter = harness.Lmtpfilter(self.tmp, self.dovecot.address)
        self.history = os.path.join(self.tmp, "dmarc-history")
        os.makedirs(self.history)
        # The sample configuration; only paths and servers change. The socket
        # is 0666 because the demo's Postfix runs as user postfix and the
        # socket lives in a private temporary directory.
        sample_config(self.filter.config_path, listen=self.filter.address,
                      listen_mode="0666", downstream=self.dovecot.address,
                      dns_servers=dns.server, spool_dir=self.filter.dir, dns_timeout=3,
                      arc_trusted_sealers=LIST[1], dmarc_history=self.history,
                      report_email=REPORT_EMAIL)
        self.start(self.filter)
        why_not = self.start_postfix()

        print("lmtpfilter demo (temporary directory %s)" % self.tmp)
        print("  DNS       unbound on %s with the sample zones:" % dns.server)
        print(ZONE_SUMMARY)
        print("  Dovecot   LMTP, sieve_before = samples/sieve/quarantine.sieve")
        print("  lmtpfilter  samples/lmtpfilter.conf: authserv_id mail.example.com,"
              " example.com opted in (annotate), everything else off;")
        print("            and arc_trusted_sealers = %s, dmarc_history = %s, report_email = %s"
              % (LIST[1], self.history, REPORT_EMAIL))
        if self.postfix:
            print("  Postfix   private instance on %s:25 in its own network namespace,"
                  " virtual_transport = lmtp:unix:(lmtpfilter's socket),"
                  " lmtp_send_xforward_command = yes" % SERVER_ADDRESS)
            print("  Each message is sent with swaks over SMTP from its sender's outside address.")
        else:
            print("  Postfix   NOT used: %s" % why_not)
            print("  Instead each message is handed to lmtpfilter the way Postfix does it:"
                  " LMTP with XFORWARD naming the real client.")
        print("  (started in %.1f s)\n" % (time.monotonic() - t0))

        for name, sender, rcpt, ip, helo, what in MESSAGES:
            with open(os.path.join(HERE, "messages", name), "rb") as f:
                msg = harness.crlf(f.read().decode())
            received, msg = split_received(msg)
            if "newsletter" in name:
                msg = dkim_sign.sign(msg, key, "news.example.net", "news")
            if "list" in name:
                msg = through_list(msg, author_key, list_key)
            if not self.postfix:
                msg = received + msg
            print("== %s: %s" % (name, what))
            print("   MAIL FROM:<%s> RCPT TO:<%s>, client %s, HELO %s" % (sender, rcpt, ip, helo))
            if self.postfix:
                ident, outcome = self.send_smtp(sender, rcpt, msg, ip, helo)
            else:
                ident, outcome = self.send_lmtp(name, sender, rcpt, msg, ip, helo)
            print("   " + outcome)
            if ident is None:
                print()
                continue
            for place, stored in where_stored(self.dovecot, message_id(msg)):
                fields = headers_of(stored)
                ar = [f for f in fields if f.lower().startswith("authentication-results:")]
                print("   landed in %s" % place)
                if ar:
                    print("   " + ar[0].replace("\n", "\n   "))
                else:
                    print("   (no Authentication-Results: delivered unchanged)")
                if "list" in name:
                    print("   " + why_list(place, ar[0] if ar else ""))
            print()

        print("lmtpfilter's transaction log:")
        for line in self.filter.log_lines("ident="):
            print("  " + line)
        self.show_report()
        print("\nDemo finished in %.1f s; stopping everything it started." % (time.monotonic() - t0))
        return 0

    def lmtpfilter(self, *args):
        return subprocess.run([os.environ["LMTPFILTER_BIN"], "-c", self.filter.config_path] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)

    def show_report(self):
        """The DMARC history the deliveries left, and the aggregate report
        lmtpfilter report makes of it."""
        today = datetime.datetime.now(datetime.timezone.utc).date()
        print("\nDMARC history (dmarc_history = %s):" % self.history)
        for path in sorted(glob.glob(os.path.join(self.history, "*"))):
            print("  %s, %d bytes" % (os.path.basename(path), os.path.getsize(path)))
        r = self.lmtpfilter("report", "--period", today.isoformat(), "--out", self.tmp)
        print("  lmtpfilter report --period %s (today) says: %s"
              % (today, (r.stdout.strip().splitlines() or ["(nothing)"])[-1]))
        tool = os.path.join(os.path.dirname(os.path.dirname(os.environ["LMTPFILTER_BIN"])),
                            "tests", "history_tool")
        day_file = os.path.join(self.history, today.isoformat() + ".dmh")
        if not os.access(tool, os.X_OK) or not os.path.exists(day_file):
            print("  The report of today is made once the UTC day is over (%s 00:00 UTC;"
                  " systemd/lmtpfilter-report.timer runs it daily at 00:15)."
                  % (today + datetime.timedelta(days=1)))
            return
        dump = subprocess.run([tool, "--dump", day_file], stdout=subprocess.PIPE, text=True, check=True)
        records = dump.stdout.splitlines()[:-1]
        print("  %s (%s):" % (os.path.basename(day_file), dump.stdout.splitlines()[-1]))
        for line in records:
            fields = dict(t.split("=", 1) for t in line.split(" "))
            print("    from=%s ip=%s p=%s disp=%s override=%s%s" % (
                fields.get("from"), fields.get("ip"), fields.get("p"), fields.get("disp"),
                fields.get("override"),
                " comment=" + urllib.parse.unquote(fields["comment"]) if fields.get("comment", "-") != "-" else ""))
        # The same records, same second of the day, as yesterday's: a
        # finished day, so it can be reported now.
        yesterday = today - datetime.timedelta(days=1)
        start = int(datetime.datetime.combine(yesterday, datetime.time(),
                                              datetime.timezone.utc).timestamp())
        moved = []
        for line in records:
            moved.append(" ".join("time=%d" % (start + int(t[5:]) % 86400) if t.startswith("time=") else t
                                  for t in line.split(" ")))
        finished = os.path.join(self.tmp, "history-yesterday")
        out = os.path.join(self.tmp, "reports")
        os.makedirs(finished)
        os.makedirs(out)
        subprocess.run([tool, finished], input="\n".join(moved) + "\n", stdout=subprocess.PIPE,
                       text=True, check=True)
        print("\nThe same records re-dated to %s (a finished UTC day) in %s;" % (yesterday, finished))
        print("lmtpfilter -c CONF report --period %s --history %s --out %s:" % (yesterday, finished, out))
        r = self.lmtpfilter("report", "--period", yesterday.isoformat(), "--history", finished, "--out", out)
        for line in r.stdout.strip().splitlines():
            if ": wrote " not in line:
                print("  " + line)
        if r.returncode != 0:
            raise RuntimeError("lmtpfilter report exited with %d" % r.returncode)
        club = glob.glob(os.path.join(out, "*!club.example.org!*.xml.gz"))
        print("\nFrom the report for club.example.org (gunzipped), the list's message:")
        lines = gzip.open(club[0]).read().decode().splitlines()
        start = [i for i, l in enumerate(lines) if "<policy_published>" in l][0]
        end = [i for i, l in enumerate(lines) if "</row>" in l][0]
        for line in lines[start:end + 1]:
            print("  " + line)

    def send_smtp(self, sender, rcpt, msg, ip, helo):
        r = harness.swaks("%s:25" % SERVER_ADDRESS, sender, [rcpt], msg, helo,
                          source=ip, netns=self.ns.client)
        if r.queue_id is None:
            return None, "Postfix did not accept it:\n" + r.transcript
        self.postfix.wait_log("%s: removed" % r.queue_id, DELIVERY_TIMEOUT)
        status = [l for l in self.postfix.log_lines("%s: to=" % r.queue_id)]
        sent = re.search(r"status=(\S+ \(.*\))", status[-1]) if status else None
        return r.queue_id, "Postfix queue id %s, delivery %s" % (
            r.queue_id, sent.group(1) if sent else "?")

    def send_lmtp(self, name, sender, rcpt, msg, ip, helo):
        ident = name.split("-")[0]
        c = harness.LmtpClient(self.filter.address)
        try:
            c.lhlo("mail.example.com")
            _, rcpt_replies, data_replies = c.transaction(
                sender, [rcpt], msg,
                xforward=[{"NAME": "unknown", "ADDR": ip, "PORT": "25"},
                          {"PROTO": "ESMTP", "HELO": helo, "IDENT": ident, "SOURCE": "REMOTE"}])
            c.quit()
        finally:
            c.close()
        reply = (data_replies or rcpt_replies)[0]
        return (ident if reply.code == 250 else None), "lmtpfilter replied: " + reply.lines[-1]


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "lmtpfilter", "lmtpfilter")

    def terminate(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    demo = Demo(os.path.abspath(binary))
    try:
        return demo.run()
    except KeyboardInterrupt:
        print("\ndemo: interrupted; stopping everything it started", file=sys.stderr)
        return 130
    except Exception:
        print("\ndemo: failed:", file=sys.stderr)
        traceback.print_exc()
        return 1
    finally:
        # A second Ctrl-C must not leave half of it running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        demo.cleanup()


if __name__ == "__main__":
    sys.exit(main())
