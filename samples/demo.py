#!/usr/bin/python3
"""The lmtpfilter demo: a private DNS (unbound), Dovecot with the sample
quarantine Sieve script, lmtpfilter with the sample configuration; the
sample messages are delivered the way Postfix hands them over (LMTP with
XFORWARD naming the real client) and the demo shows where each landed."""
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import dkim_sign  # noqa: E402
import harness    # noqa: E402

# Who sends each sample message: the client that handed it to us.
MESSAGES = [
    ("01-spoof.eml", "owner@example.com", "owner@example.com", "184.72.226.23", "www.wormly.com",
     "the seed's spoof: our own address in From:, sent from an outside server"),
    ("02-legitimate.eml", "alice@partner.example.org", "owner@example.com", "192.0.2.10", "mx.partner.example.org",
     "a legitimate message from a partner's own server"),
    ("03-newsletter.eml", "bounces@news.example.net", "owner@example.com", "198.51.100.20", "out.news.example.net",
     "a DKIM-signed newsletter"),
    ("04-other-domain.eml", "someone@example.org", "bob@example.net", "184.72.226.23", "www.wormly.com",
     "a message for example.net, a domain that has not opted in"),
]


def zone(news_key_txt):
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
    ]


def sample_config(path, **replace):
    """The sample configuration with the demo's paths and servers."""
    with open(os.path.join(HERE, "lmtpfilter.conf")) as f:
        text = f.read()
    for key, value in replace.items():
        text = re.sub(r"(?m)^%s[ \t]*=.*$" % key, "%s = %s" % (key, value), text)
    with open(path, "w") as f:
        f.write(text)


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


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "lmtpfilter", "lmtpfilter")
    os.environ["LMTPFILTER_BIN"] = binary
    tmp = tempfile.mkdtemp(prefix="lmtpfilter-demo-")
    started = []
    try:
        key = dkim_sign.rsa_key(2048)
        dns = harness.Unbound(tmp, zone(key.txt)).start()
        started.append(dns)
        dovecot = harness.Dovecot(tmp, users=("owner@example.com", "bob@example.net"),
                                  sieve_before=os.path.join(HERE, "sieve", "quarantine.sieve")).start()
        started.append(dovecot)
        filt = harness.Lmtpfilter(tmp, dovecot.address)
        sample_config(filt.config_path, listen=filt.address, downstream=dovecot.address,
                      dns_servers=dns.server, spool_dir=filt.dir, dns_timeout=3)
        filt.start()
        started.append(filt)
        print("lmtpfilter demo: DNS on %s, Dovecot (sample quarantine.sieve), lmtpfilter with samples/lmtpfilter.conf"
              % dns.server)
        print("Messages are handed over as Postfix does it: LMTP with XFORWARD naming the real client.\n")
        for name, sender, rcpt, ip, helo, what in MESSAGES:
            with open(os.path.join(HERE, "messages", name), "rb") as f:
                msg = harness.crlf(f.read().decode())
            if "newsletter" in name:
                msg = dkim_sign.sign(msg, key, "news.example.net", "news")
            c = harness.LmtpClient(filt.address)
            c.lhlo("mail.example.com")
            _, rcpt_replies, data_replies = c.transaction(
                sender, [rcpt], msg,
                xforward=[{"NAME": "unknown", "ADDR": ip, "PORT": "25"},
                          {"PROTO": "ESMTP", "HELO": helo, "IDENT": name.split("-")[0], "SOURCE": "REMOTE"}])
            c.quit()
            reply = (data_replies or rcpt_replies)[0]
            print("== %s: %s" % (name, what))
            print("   from %s via %s (HELO %s), to %s: %s" % (sender, ip, helo, rcpt, reply))
        for user in ("owner@example.com", "bob@example.net"):
            for folder in ("INBOX", "Quarantine"):
                for stored in dovecot.messages(user, folder):
                    fields = headers_of(stored)
                    subject = next((f for f in fields if f.lower().startswith("subject:")), "Subject: ?")
                    ar = [f for f in fields if f.lower().startswith("authentication-results:")]
                    print("\n%s/%s  %s" % (user, folder, subject))
                    print("\n".join(ar) if ar else "   (no Authentication-Results: delivered unchanged)")
        print("\nTransaction log:")
        for line in filt.log_lines("ident="):
            print("  " + line)
        return 0
    finally:
        for s in reversed(started):
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
