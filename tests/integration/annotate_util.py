"""Shared pieces of the annotate-mode integration tests (SPF, DKIM, DMARC,
forged results, split delivery, Sieve).

  Env(zone_lines, ...)      one unbound + Dovecot + lmtpfilter for a whole
                            test class (start() in setUpClass, stop() in the
                            class cleanup); messages are told apart by a
                            unique Message-ID marker
  zone helpers              txt_record(), dkim_key_record()
  stored-message helpers    split_delivered(), our_results(), parse_ar(),
                            parse_received_spf(), header_fields()

Uses Debian's /usr/bin/python3 (python3-authres, python3-dkim).
"""

import email.parser
import email.policy
import itertools
import os
import re
import shutil
import tempfile
import time

import authres

import harness

AUTHSERV_ID = "mail.example.com"
MTA_HOSTNAME = "mail.example.com"
TRUSTED_NETWORKS = "127.0.0.0/8;::1/128"
DNS_TIMEOUT = 2                       # seconds, the daemon's dns_timeout in these tests
DELIVERY_SLACK = 4.0                  # seconds allowed beyond dns_timeout for a delivery
SAMPLES = os.path.join(harness.SOURCE_DIR, "samples")
QUARANTINE_SIEVE = os.path.join(SAMPLES, "sieve", "quarantine.sieve")
SEED_CLIENT = "184.72.226.23"
SEED_HELO = "www.wormly.com"
TXT_CHUNK = 255                       # longest character-string in a TXT record

_markers = itertools.count(1)


def marker(prefix="m"):
    """A Message-ID local part unique in this test process."""
    return "%s-%d-%d" % (prefix, os.getpid(), next(_markers))


def txt_record(name, value):
    """An unbound local-data line for a TXT record, split in 255-byte
    strings as DNS requires."""
    chunks = [value[i:i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)] or [""]
    return "local-data: '%s. TXT %s'" % (
        name.rstrip("."), " ".join('"%s"' % c for c in chunks))


def dkim_key_record(selector, domain, txt):
    return txt_record("%s._domainkey.%s" % (selector, domain), txt)


def xforward(addr, helo, name="[UNAVAILABLE]", ident="QID1"):
    """The two XFORWARD commands Postfix sends, as harness transaction() wants."""
    return [dict(NAME=name, ADDR=addr), dict(PROTO="ESMTP", HELO=helo, IDENT=ident,
                                             SOURCE="REMOTE")]


def postfix_received(helo, ip, rdns="unknown", qid="4XyZ1abcD", with_="ESMTP",
                     by=MTA_HOSTNAME, extra="", rcpt=None):
    """A Received line as Postfix writes it (folded like Postfix does)."""
    for_part = "\n\tfor <%s>" % rcpt if rcpt else ""
    return ("Received: from %s (%s [%s])%s\n\tby %s (Postfix) with %s id %s%s;\n"
            "\tSat, 28 Nov 2026 09:00:00 +0000 (UTC)\n"
            % (helo, rdns, ip, extra, by, with_, qid, for_part))


def make_message(sender="user@example.org", recipient="alice@example.com", subject="test",
                 mid=None, top="", extra="", body="Hello.\n", from_header=None):
    """A CRLF message: `top` header lines first (Received trail, forged
    headers), then From/To/Subject/Date/Message-ID, `extra` lines, body."""
    from_line = ("From: <%s>\n" % sender) if from_header is None else from_header
    text = ("%s%sTo: <%s>\nSubject: %s\nDate: Sat, 28 Nov 2026 09:00:00 +0000\n"
            "Message-ID: <%s@test.example>\n%s\n%s"
            % (top, from_line, recipient, subject, mid or marker(), extra, body))
    return harness.crlf(text)


def header_fields(stored):
    """(name, unfolded value) of every header field, in order."""
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(stored)
    return [(k, " ".join(str(v).split())) for k, v in msg.items()]


def split_header_fields(data):
    """The raw header fields of a message (bytes, each with its folding and
    line ending), and the rest (blank line + body)."""
    fields = []
    pos = 0
    while pos < len(data):
        if data.startswith(b"\r\n", pos) or data.startswith(b"\n", pos):
            break
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        while end < len(data) and data[end:end + 1] in (b" ", b"\t"):
            nxt = data.find(b"\n", end)
            end = len(data) if nxt < 0 else nxt + 1
        fields.append(data[pos:end])
        pos = end
    return fields, data[pos:]


def field_name(raw):
    return raw.split(b":", 1)[0].decode("latin-1")


def field_value(raw):
    """Unfolded value of a raw field (str)."""
    value = raw.split(b":", 1)[1].decode("utf-8", "replace")
    return " ".join(value.split())


def split_delivered(stored):
    """A stored message as (dovecot_fields, after): Dovecot's own
    Return-Path / Delivered-To / Received, then everything lmtpfilter
    handed over."""
    rest = harness.stored_body(stored)
    return stored[:len(stored) - len(rest)], rest


def parse_ar(value):
    """authres parse of an Authentication-Results value (str, unfolded)."""
    return authres.AuthenticationResultsHeader.parse("Authentication-Results: " + value)


def results_of(ar, method):
    return [r for r in ar.results if r.method == method]


def props(result):
    """{"smtp.mailfrom": ..., "header.d": ...} of one authres result."""
    return {"%s.%s" % (p.type, p.name): p.value for p in result.properties}


RSPF_RE = re.compile(r"^(?P<result>[a-z]+)\s*(?:\((?P<comment>(?:[^()]|\([^()]*\))*)\))?\s*(?P<rest>.*)$")


def parse_received_spf(value):
    """(result, comment, {key: value}) of a Received-SPF value."""
    m = RSPF_RE.match(value.strip())
    if m is None:
        raise AssertionError("unparseable Received-SPF: %r" % value)
    pairs = {}
    for part in re.finditer(r'([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^;\s]*)', m.group("rest")):
        v = part.group(2)
        if v.startswith('"'):
            v = v[1:-1]
        pairs[part.group(1).lower()] = v
    return m.group("result"), m.group("comment"), pairs


def split_resinfo(value):
    """The ';'-separated parts of an A-R value (str), outside comments and
    quotes: [authserv-id part, resinfo, resinfo...]."""
    parts, cur, depth, quote = [], [], 0, False
    for ch in value:
        if quote:
            cur.append(ch)
            if ch == '"':
                quote = False
            continue
        if ch == '"' and depth == 0:
            quote = True
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth > 0:
            depth -= 1
        elif ch == ";" and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def result_comment(resinfo):
    """The comment right after "method=result" in one resinfo, or None."""
    m = re.match(r"^[A-Za-z0-9_-]+\s*=\s*[A-Za-z]+\s*\(((?:[^()]|\([^()]*\))*)\)", resinfo)
    return m.group(1) if m else None


class Delivered:
    """One stored copy, taken apart:
      .raw           stored bytes
      .dovecot       Dovecot's prepended fields (bytes)
      .ours          [raw A-R field, raw Received-SPF field] lmtpfilter wrote
      .disposition   our X-Disposition-Quarantine field (raw bytes) or None
      .after         everything after our fields (the original, renamed)
      .ar            authres object of our A-R
      .spf           authres result of spf= (or None); .dkim list; .dmarc
      .rspf          (result, comment, pairs) of our Received-SPF
    """

    def __init__(self, raw):
        self.raw = raw
        self.dovecot, rest = split_delivered(raw)
        fields, _ = split_header_fields(rest)
        self.ours = []
        if len(fields) >= 1 and field_name(fields[0]) == "Authentication-Results":
            self.ours.append(fields[0])
            if len(fields) >= 2 and field_name(fields[1]) == "Received-SPF":
                self.ours.append(fields[1])
        self.disposition = None
        if (len(self.ours) == 2 and len(fields) >= 3
                and field_name(fields[2]) == "X-Disposition-Quarantine"):
            self.disposition = fields[2]
        skip = sum(len(f) for f in self.ours) + len(self.disposition or b"")
        self.after = rest[skip:]
        self.ar = parse_ar(field_value(self.ours[0])) if self.ours else None
        self.ar_value = field_value(self.ours[0]) if self.ours else None
        self.rspf_value = field_value(self.ours[1]) if len(self.ours) > 1 else None
        self.rspf = parse_received_spf(self.rspf_value) if self.rspf_value else None

    def clauses(self, name):
        """Raw resinfo strings of method `name` in our A-R."""
        if not self.ar_value:
            return []
        return [p for p in split_resinfo(self.ar_value)[1:]
                if p.split("=", 1)[0].strip().lower() == name]

    def comment(self, name):
        """The result comment of the one `name` entry."""
        c = self.clauses(name)
        if len(c) != 1:
            raise AssertionError("%d %s entries in %r" % (len(c), name, self.ar_value))
        return result_comment(c[0])

    def method(self, name):
        return results_of(self.ar, name) if self.ar else []

    @property
    def spf(self):
        r = self.method("spf")
        return r[0] if len(r) == 1 else None

    @property
    def dkim(self):
        return self.method("dkim")

    @property
    def dmarc(self):
        r = self.method("dmarc")
        return r[0] if len(r) == 1 else None

    def __repr__(self):
        return "Delivered(%r)" % self.raw[:3000]


class Env:
    """unbound (zone_lines) + Dovecot (users, optional sieve_before) +
    lmtpfilter (annotate for example.com, off elsewhere) in one temp dir.
    `silent_zones`: names whose lookups never get an answer (unbound
    forwards them to a UDP port that stays silent), for DNS timeouts."""

    def __init__(self, zone_lines=(), users=("alice@example.com",), quota_users=(),
                 sieve_before=None, silent_zones=(), filter_config=None, domains=None):
        self.tmpdir = tempfile.mkdtemp(prefix="lmtpf-annot-")
        self.zone_lines = list(zone_lines)
        self.users = users
        self.quota_users = quota_users
        self.sieve_before = sieve_before
        self.silent_zones = list(silent_zones)
        self.filter_config = dict(filter_config or {})
        self.domains = domains if domains is not None else {"example.com": {"mode": "annotate"}}
        self.dns = self.silent = self.dovecot = self.filter = None

    def start(self):
        try:
            lines = list(self.zone_lines)
            if self.silent_zones:
                self.silent = harness.SilentDns()
                lines.append("do-not-query-localhost: no")
                for z in self.silent_zones:
                    lines.append('local-zone: "%s." transparent' % z.rstrip("."))
                for z in self.silent_zones:
                    lines += ["forward-zone:", '  name: "%s."' % z.rstrip("."),
                              "  forward-addr: %s" % self.silent.server]
            self.dns = harness.Unbound(self.tmpdir, lines).start()
            self.dovecot = harness.Dovecot(self.tmpdir, users=self.users,
                                           quota_users=self.quota_users,
                                           sieve_before=self.sieve_before).start()
            self.filter = self.make_filter(self.dovecot.address).start()
        except Exception:
            self.stop()
            raise
        return self

    def make_filter(self, downstream, **override):
        config = dict(authserv_id=AUTHSERV_ID, mta_hostnames=MTA_HOSTNAME,
                      trusted_networks=TRUSTED_NETWORKS, dns_servers=self.dns.server,
                      dns_timeout=DNS_TIMEOUT, listen_mode="0666")
        config.update(self.filter_config)
        config.update(override)
        return harness.Lmtpfilter(self.tmpdir, downstream, domains=self.domains, **config)

    def stop(self):
        for part in (self.filter, ):
            if part is not None:
                part.kill()
        if self.dovecot is not None:
            self.dovecot.stop()
        if self.dns is not None:
            self.dns.stop()
        if self.silent is not None:
            self.silent.stop()
        if not os.environ.get("LMTPFILTER_KEEP_TMP"):
            shutil.rmtree(self.tmpdir, True)

    def logs(self):
        out = []
        if self.filter is not None:
            out.append("----- lmtpfilter log -----\n" + self.filter.log()[-6000:])
        if self.dovecot is not None:
            out.append("----- dovecot log -----\n" + self.dovecot.log()[-3000:])
        return "\n".join(out)

    def find(self, user, mid, folders=("INBOX", "Quarantine")):
        """{folder: [stored bytes]} of the messages carrying Message-ID mid."""
        needle = ("<%s@test.example>" % mid).encode()
        found = {}
        for folder in folders:
            hits = [m for m in self.dovecot.messages(user, folder) if needle in m]
            if hits:
                found[folder] = hits
        return found


class EnvTestCase(harness.HarnessTestCase):
    """A test class sharing one Env: subclasses set ZONE, USERS... and get
    self.env; send() delivers one message and returns the replies."""

    ZONE = ()
    USERS = ("alice@example.com",)
    QUOTA_USERS = ()
    SIEVE = None
    SILENT_ZONES = ()
    FILTER_CONFIG = None
    DOMAINS = None

    @classmethod
    def setUpClass(cls):
        cls.env = Env(cls.ZONE, users=cls.USERS, quota_users=cls.QUOTA_USERS,
                      sieve_before=cls.SIEVE, silent_zones=cls.SILENT_ZONES,
                      filter_config=cls.FILTER_CONFIG, domains=cls.DOMAINS).start()
        cls.addClassCleanup(cls.env.stop)

    def setUp(self):
        super().setUp()
        self.addCleanup(self._dump_on_failure, "logs", self.env.logs)

    def send(self, message, mail_from="user@example.org", rcpts=("alice@example.com",),
             xfwd=None, address=None):
        """One LMTP transaction through lmtpfilter; asserts every recipient
        got 250 at RCPT and after DATA; returns the DATA replies."""
        mail, rcpt_replies, data = harness.deliver(address or self.env.filter.address,
                                                   mail_from, list(rcpts), message, xforward=xfwd)
        self.assertEqual(mail.code, 250, mail)
        for r in rcpt_replies:
            self.assertEqual(r.code, 250, r)
        self.assertEqual(len(data), len(rcpts), data)
        for r in data:
            self.assertEqual(r.code, 250, r)
        return data

    def delivered(self, mid, user="alice@example.com", folder="INBOX"):
        """The one stored copy of message mid for user; asserts it is in
        `folder` and nowhere else."""
        found = self.env.find(user, mid)
        self.assertEqual(list(found), [folder], "message %s for %s found in %r"
                         % (mid, user, list(found)))
        self.assertEqual(len(found[folder]), 1, found)
        return Delivered(found[folder][0])

    def assertOurHeaders(self, d, msg_bytes, renamed=(), disposition=None):
        """Our A-R and Received-SPF right after Dovecot's fields, then our
        X-Disposition-Quarantine exactly when `disposition` (its unfolded
        value, str) is given, then the original bytes with exactly the
        fields listed in `renamed` (substrings of the original fields)
        turned into X-Original-...."""
        self.assertEqual(len(d.ours), 2, d)
        got = None
        if d.disposition is not None:
            got = " ".join(field_value(d.disposition).split())
        self.assertEqual(got, disposition)
        expected = harness.as_stored(rename_fields(msg_bytes, renamed))
        self.assertEqual(d.after, expected)
        self.assertEqual(d.ar.authserv_id, AUTHSERV_ID)


def rename_fields(message, needles):
    """message with each field that starts with one of `needles` (bytes,
    matched against the raw field from its first byte) prefixed with
    X-Original-; each needle must match exactly one field."""
    fields, rest = split_header_fields(message)
    out = []
    used = set()
    for f in fields:
        hit = [n for n in needles if f.startswith(n)]
        if hit:
            if len(hit) > 1 or hit[0] in used:
                raise AssertionError("ambiguous needle %r" % hit)
            used.add(hit[0])
            out.append(b"X-Original-" + f)
        else:
            out.append(f)
    missing = set(needles) - used
    if missing:
        raise AssertionError("needles not found: %r" % missing)
    return b"".join(out) + rest


def timed(fn, *args, **kw):
    start = time.monotonic()
    result = fn(*args, **kw)
    return result, time.monotonic() - start
