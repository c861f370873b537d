"""Delivery guarantees under kills: real Postfix 3.7, real lmtpfilter, real
Dovecot (SPEC.md, "Delivery guarantees").

Postfix must get 250 for a recipient only after Dovecot said 250 for it, and
any trouble downstream must become a 4xx so that the message stays queued:
nothing acknowledged is ever lost. These tests SIGKILL lmtpfilter, and
Dovecot, while Postfix delivers, restart them, flush Postfix's queue until it
is empty and count what landed in the maildirs:

  KillStreamTest      lmtpfilter killed at random moments in a stream
  KillEachStepTest    lmtpfilter killed at each step of one transaction
                      (relays in front of and behind it stop at the step),
                      and Dovecot killed at the end of one
  DovecotKillTest     Dovecot (master and children) killed in a stream

The inherent duplicate window. LMTP has no two-phase commit: Dovecot stores
the message and only then writes "250" for the recipient; lmtpfilter can
pass that 250 on only after it has read it. If lmtpfilter dies after Dovecot
stored but before Postfix has read the relayed 250, Postfix sees a lost
connection, defers the recipient (correctly: for all it knows, nothing was
stored) and delivers it again later, so the recipient gets a second copy.
Dovecot has the same window of its own (killed after storing, before
replying). No proxy can close it: it would need a "prepare / commit" split
that LMTP does not have, and Postfix cannot ask afterwards whether a copy
exists. The choice SPEC.md makes is the safe one: a possible duplicate,
never a loss (Postfix itself logs such a deferral "while sending end of
data -- message may be sent more than once"). So the tests demand NO loss
(every recipient of every message Postfix accepted is stored at least once,
and Postfix logged it sent exactly once), and bound the duplicates: a copy
more needs an attempt that got past the end of the message (copies <= 1 +
such deferrals of that recipient), and a kill can only duplicate recipients
of transactions that had a connection open to Dovecot at that moment (at
most CONCURRENCY of them). A kill before Dovecot has the whole message must
leave exactly one copy after the retry. The same window opens when Dovecot
takes longer than lmtpfilter's `timeout` after the end of the message (here
while it recovers a lock a killed process left): lmtpfilter answers 451,
Dovecot stores later; the bound counts those transactions too.

Needs root (Postfix's queue and its unprivileged LMTP client).
Set LMTPFILTER_KILL_SEED to replay the random moments of a failed run.
"""

import fcntl
import os
import random
import re
import shutil
import smtplib
import socket
import struct
import sys
import tempfile
import termios
import threading
import time
import unittest

import harness

SENDER = "sender@example.org"
USERS = ("alice@example.com", "bob@example.com", "carol@example.com")
CONCURRENCY = 4          # lmtp_destination_concurrency_limit: parallel deliveries
STREAM_MESSAGES = 60     # messages per stream test, each to every user
STREAM_KILLS = 8
KILL_GAP = (0.05, 0.35)  # seconds between two kills, uniformly drawn
SEND_GAP = 0.03          # seconds between two submissions: the stream outlasts the kills
FLUSH_DEADLINE = 180.0   # seconds for Postfix's queue to drain after the kills: room for
                         # many of lmtpfilter's 10 s waits on a stalled Dovecot; a
                         # passing run drains in a few seconds
STEP_TIMEOUT = 15.0      # seconds for one step of a transaction to be reached
SETTLE_TIME = 0.3        # a late copy (a Dovecot process finishing) would show by then
POLL = 0.05

ZONE = [
    'local-zone: "example.com." static',
    "local-data: 'example.com. TXT \"v=spf1 ip4:192.0.2.0/24 -all\"'",
    'local-zone: "example.org." static',
    "local-data: 'example.org. TXT \"v=spf1 -all\"'",
]

# Postfix's words for an attempt that got past the end of the message.
END_OF_DATA = "in reply to end of DATA command"
MESSAGE_ID = re.compile(rb"^Message-ID: <([^@>]+)@test\.example>", re.M | re.I)
QUEUED = re.compile(r"queued as ([0-9A-Za-z]+)")
# Postfix's delivery lines: "QID: to=<rcpt>, relay=..., dsn=X.Y.Z, status=S (reason)"
DELIVERY = re.compile(r" ([0-9A-Za-z]+): to=<([^>]*)>,.* dsn=(\d\.\d+\.\d+), status=(\w+)(.*)$")


def seed():
    value = os.environ.get("LMTPFILTER_KILL_SEED")
    return int(value) if value else random.SystemRandom().randrange(1 << 32)


def figures(text):
    sys.stderr.write("\n[kills] %s\n" % text)
    sys.stderr.flush()


def poll_until(predicate, timeout, what):
    """Like harness.wait_for, but gentle: the predicates here spawn postqueue."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(POLL)


def unix_outq(sock):
    """Bytes written on a unix stream socket that the peer has not read yet."""
    raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return struct.unpack("i", raw)[0]


def count_replies(buf):
    """Complete LMTP replies in a server's byte stream (a multi-line reply
    counts once, on its last line)."""
    return sum(1 for line in buf.split(b"\r\n")[:-1] if line[3:4] != b"-")


def downstream_sockets(pid):
    """lmtpfilter's connected unix sockets that have no name: its client
    connections (towards Dovecot). Accepted connections from Postfix carry
    the listening socket's path in /proc/net/unix, so they do not count."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    try:
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        return 0
    count = 0
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]
            if len(fields) == 7 and fields[5] == "03" and int(fields[6]) in inodes:
                count += 1
    return count


# -- a transparent LMTP relay that stops at a chosen byte ------------------

class TapConnection:
    """One relayed connection. Bytes seen in each direction are kept in
    seen["c2s"] / seen["s2c"]; a direction with a cut function forwards only
    up to the offset it returns (computed from the bytes seen so far, fixed
    once found) and holds the rest for as long as the connection lives."""

    def __init__(self, client, server, cuts):
        self.client = client
        self.server = server
        self.cuts = cuts
        self.seen = {"c2s": b"", "s2c": b""}
        self.cut = {"c2s": None, "s2c": None}
        self.reached = {"c2s": False, "s2c": False}
        self.cond = threading.Condition()
        self.done = 0
        for direction, src, dst in (("c2s", client, server), ("s2c", server, client)):
            threading.Thread(target=self._pump, args=(direction, src, dst), daemon=True).start()

    def _forwardable(self, direction, sent):
        seen = self.seen[direction]
        cut_fn = self.cuts.get(direction)
        if cut_fn is not None and self.cut[direction] is None:
            self.cut[direction] = cut_fn(seen)
        cut = self.cut[direction]
        limit = len(seen) if cut is None else min(cut, len(seen))
        if cut is not None and limit == cut:
            self.reached[direction] = True
        return seen[sent:limit] if limit > sent else b"", max(limit, sent)

    def _pump(self, direction, src, dst):
        sent = 0
        while True:
            try:
                chunk = src.recv(65536)
            except OSError:
                chunk = b""
            with self.cond:
                if chunk:
                    self.seen[direction] += chunk
                    data, sent = self._forwardable(direction, sent)
                self.cond.notify_all()
            if not chunk:
                break
            try:
                if data:
                    dst.sendall(data)
            except OSError:
                break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self.cond:
            self.done += 1
            self.cond.notify_all()
            if self.done == 2:
                self.client.close()
                self.server.close()

    def wait(self, predicate, timeout, what):
        """Until predicate(self); re-evaluated on every byte relayed and at
        least every POLL seconds (it may look at socket queues)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %s; seen %r" % (what, self.seen))
                self.cond.wait(min(left, POLL))

    def closed(self):
        return self.done == 2


class Tap:
    """A unix socket in front of `target` ("unix:PATH") that relays LMTP
    connections byte for byte. arm(c2s=..., s2c=...) gives the next new
    connection its cut functions; every other one is relayed untouched."""

    def __init__(self, tmpdir, target, name):
        self.path = os.path.join(tmpdir, name + ".sock")
        self.address = "unix:" + self.path
        self.target = target[5:]
        self.armed = None
        self.taken = None
        self.connections = []
        self.lock = threading.Lock()
        self.armed_taken = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)      # Postfix's LMTP client is unprivileged
        self.sock.listen(64)
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def arm(self, **cuts):
        with self.lock:
            self.armed = cuts
            self.armed_taken.clear()
            self.taken = None

    def disarm(self):
        with self.lock:
            self.armed = None

    def armed_connection(self, timeout):
        if not self.armed_taken.wait(timeout):
            raise AssertionError("no connection reached " + self.path)
        return self.taken

    def _accept_loop(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                server.connect(self.target)
            except OSError:
                client.close()
                server.close()
                continue
            with self.lock:
                cuts, self.armed = self.armed or {}, None
                conn = TapConnection(client, server, cuts)
                self.connections.append(conn)
                if cuts:
                    self.taken = conn
                    self.armed_taken.set()

    def stop(self):
        self.sock.close()
        for c in self.connections:
            for s in (c.client, c.server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def after_line(prefix, nth=1):
    """Cut: just after the nth line that starts with prefix."""
    def cut(buf):
        pos = 0
        found = 0
        while True:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                return None
            if buf[pos:pos + len(prefix)].upper() == prefix:
                found += 1
                if found == nth:
                    return end + 2
            pos = end + 2
    return cut


def into_data(offset):
    """Cut: `offset` bytes into the message that follows the DATA line."""
    start = after_line(b"DATA")

    def cut(buf):
        s = start(buf)
        return None if s is None else s + offset
    return cut


def before_end_of_message(buf):
    """Cut: before the last byte of a BDAT LAST chunk, or before the final
    dot of DATA: Dovecot has all of the message but its end."""
    m = re.search(rb"(?m)^BDAT (\d+) LAST\r\n", buf)
    if m:
        return m.end() + int(m.group(1)) - 1
    data = after_line(b"DATA")(buf)
    if data is not None:
        end = buf.find(b"\r\n.\r\n", data - 2)
        if end >= 0:
            return end + 2
    return None


def after_replies(n):
    """Cut: after the first n complete replies."""
    def cut(buf):
        lines = buf.split(b"\r\n")
        pos = 0
        count = 0
        for line in lines[:-1]:
            pos += len(line) + 2
            if line[3:4] != b"-":
                count += 1
                if count == n:
                    return pos
        return None
    return cut


def after_first_reply_past_354(buf):
    """Cut: after the first reply that follows the 354 (the first
    recipient's answer to the message)."""
    m = re.search(rb"(?m)^354[ -].*\r\n", buf)
    if not m:
        return None
    rest = after_replies(1)(buf[m.end():])
    return None if rest is None else m.end() + rest


# -- shared fixture ----------------------------------------------------------

class Stack:
    """Unbound, Dovecot, lmtpfilter (annotate for example.com) and Postfix,
    which takes mail over SMTP on a loopback port and delivers it over LMTP
    to lmtpfilter. With taps: Postfix -> up tap -> lmtpfilter -> down tap ->
    Dovecot. `cleanup` registers the stops (test or class cleanups)."""

    def __init__(self, tmpdir, cleanup, taps=False, postfix_settings=()):
        self.dns = harness.Unbound(tmpdir, ZONE)
        cleanup(self.dns.stop)
        self.dns.start()
        # Only processes are killed here, never the machine: what a killed
        # process wrote is in the page cache and survives it, so Dovecot's
        # fsyncs would test nothing and, on a busy disk, stretch deliveries
        # past lmtpfilter's timeout (a 451, then a duplicate on the retry).
        self.dovecot = harness.Dovecot(tmpdir, users=USERS, settings=["mail_fsync = never"])
        cleanup(self.dovecot.stop)
        self.dovecot.start()
        downstream = self.dovecot.address
        if taps:
            self.down = Tap(tmpdir, self.dovecot.address, "down-tap")
            cleanup(self.down.stop)
            downstream = self.down.address
        self.filter = harness.Lmtpfilter(
            tmpdir, downstream, listen_mode="0666", dns_servers=self.dns.server,
            authserv_id="mail.example.com", mta_hostnames="mail.example.com",
            # A Dovecot process left stalled by a kill answers nothing: give up
            # on it (451, Postfix retries) well within FLUSH_DEADLINE.
            timeout=10,
            domains={"example.com": {"mode": "annotate"}})
        cleanup(self.filter.kill)
        self.filter.start()
        lmtp = self.filter.address
        if taps:
            self.up = Tap(tmpdir, self.filter.address, "up-tap")
            cleanup(self.up.stop)
            lmtp = self.up.address
        self.smtp_port = harness.free_port()
        self.postfix = harness.Postfix(
            tmpdir, lmtp, "127.0.0.1:%d" % self.smtp_port, domains=("example.com",),
            settings=["lmtp_destination_concurrency_limit = %d" % CONCURRENCY]
            + list(postfix_settings))
        cleanup(self.postfix.stop)
        self.postfix.start()


class KillTestCase(harness.HarnessTestCase):
    """Submits messages to the stack's Postfix and checks what Postfix
    logged and Dovecot stored."""

    def setUp(self):
        super().setUp()
        self.rng_seed = seed()
        self.rng = random.Random(self.rng_seed)
        self.accepted = {}      # marker -> Postfix queue id
        if getattr(self, "stack", None) is None:
            self.stack = Stack(self.tmpdir, self.addCleanup)
        self.dovecot = self.stack.dovecot
        self.filter = self.stack.filter
        self.postfix = self.stack.postfix
        self.smtp_port = self.stack.smtp_port
        for title, component in (("Dovecot log", self.dovecot), ("lmtpfilter log", self.filter),
                                 ("Postfix maillog", self.postfix)):
            self.addCleanup(self._dump_on_failure, title, component.log)

    # -- submitting ----------------------------------------------------------

    def smtp(self):
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, local_hostname="client.example.org",
                         timeout=30)
        s.ehlo()
        return s

    def submit(self, s, marker, size=600):
        """One message to every user; returns Postfix's queue id."""
        msg = harness.make_message(size, subject=marker, sender=SENDER,
                                   recipient=USERS[0], marker=marker)
        code, _ = s.mail(SENDER)
        self.assertEqual(code, 250)
        for u in USERS:
            code, text = s.rcpt(u)
            self.assertEqual(code, 250, text)
        code, text = s.data(msg)
        self.assertEqual(code, 250, text)
        queue_id = QUEUED.search(text.decode()).group(1)
        self.accepted[marker] = queue_id
        return queue_id

    # -- what happened -------------------------------------------------------

    def copies(self):
        """(marker, user) -> number of stored copies."""
        counts = {}
        for u in USERS:
            for stored in self.dovecot.messages(u):
                m = MESSAGE_ID.search(stored)
                self.assertIsNotNone(m, stored[:500])
                key = (m.group(1).decode(), u)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def deliveries(self):
        """Postfix's delivery lines: (queue_id, rcpt, dsn, status, reason)."""
        out = []
        for line in self.postfix.log().splitlines():
            m = DELIVERY.search(line)
            if m:
                out.append(m.groups())
        return out

    def queue_empty(self):
        return self.postfix.queue() == []

    def flush_until_empty(self):
        """Flush Postfix's queue again and again until it is empty."""
        deadline = time.monotonic() + FLUSH_DEADLINE
        while not self.queue_empty():
            self.assertLess(time.monotonic(), deadline,
                            "Postfix's queue did not drain: %d messages left\n%s"
                            % (len(self.postfix.queue()), self.stall_report()))
            self.postfix.flush()
            end = time.monotonic() + 2.0
            while time.monotonic() < end and not self.queue_empty():
                time.sleep(0.1)
        time.sleep(SETTLE_TIME)

    def stall_report(self):
        """What Dovecot was doing when deliveries stopped getting through:
        its processes (state and kernel wait channel), the lock files left
        in the maildirs, and its log lines other than Info."""
        out = ["Dovecot processes (pid, state, kernel wait channel, command):"]
        for pid in os.listdir("/proc"):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rpartition(")")[2].split()
                state, pgrp = fields[0], fields[2]
                if self.dovecot.instance not in cmd and self.dovecot.dir not in cmd \
                        and pgrp != str(getattr(self.dovecot.proc, "pid", "")):
                    continue
                with open("/proc/%s/wchan" % pid) as f:
                    wchan = f.read()
                out.append("  %s %s %s %s" % (pid, state, wchan, cmd[:120]))
            except OSError:
                continue
        out.append("lock files:")
        for root, _, files in os.walk(self.dovecot.dir):
            out += ["  " + os.path.join(root, n) for n in files if "lock" in n]
        out.append("Dovecot log, not Info:")
        out += [l for l in self.dovecot.log().splitlines() if ": Info: " not in l][-40:]
        return "\n".join(out)

    def assert_deferrals_only_4xx(self):
        """Every Postfix delivery line for our messages is a sent or a 4xx
        deferral: never a bounce (a bounced message is a lost one)."""
        ours = set(self.accepted.values())
        lines = [d for d in self.deliveries() if d[0] in ours]
        bad = [d for d in lines if d[3] not in ("sent", "deferred")
               or (d[3] == "deferred" and not d[2].startswith("4."))
               or (d[3] == "sent" and not d[2].startswith("2."))]
        self.assertEqual(bad, [], "a permanent failure or bounce")
        self.assertFalse([l for l in self.postfix.log_lines("said: 5")], "a 5xx reply")
        return lines

    def assert_no_loss(self):
        """Every recipient of every accepted message is stored at least once,
        and Postfix logged it sent exactly once. Returns the copies."""
        copies = self.copies()
        missing = [(m, u) for m in self.accepted for u in USERS if copies.get((m, u), 0) == 0]
        self.assertEqual(missing, [], "LOST: accepted by Postfix, never stored")
        sent = {}
        for qid, rcpt, dsn, status, _ in self.deliveries():
            if status == "sent":
                sent[(qid, rcpt)] = sent.get((qid, rcpt), 0) + 1
        for marker, qid in self.accepted.items():
            for u in USERS:
                self.assertEqual(sent.get((qid, u)), 1, "%s to %s: sent lines" % (qid, u))
        return {k: n for k, n in copies.items() if k[0] in self.accepted}

    def assert_no_strangers(self):
        strangers = [k for k in self.copies() if k[0] not in self.accepted]
        self.assertEqual(strangers, [], "copies of messages nobody sent")

    def extra_copies(self, copies, windows):
        """Copies beyond the first; each must be explained by a deferral of
        that very recipient whose reason (containing one of `windows`) says the
        attempt got past the end of the message: one attempt stores at most
        one copy, and only once Dovecot has all of the message."""
        deferrals = {}
        for qid, rcpt, dsn, status, reason in self.deliveries():
            # "delivery temporarily suspended": deferred without an attempt
            if (status == "deferred" and any(w in reason for w in windows)
                    and "temporarily suspended" not in reason):
                deferrals[(qid, rcpt)] = deferrals.get((qid, rcpt), 0) + 1
        extra = 0
        for (marker, user), n in copies.items():
            attempts = 1 + deferrals.get((self.accepted[marker], user), 0)
            self.assertLessEqual(n, attempts, "%s to %s: %d copies from %d attempts"
                                 % (marker, user, n, attempts))
            extra += n - 1
        return extra

    def assert_filter_alive(self):
        """lmtpfilter only ever dies by our hand (a crash would look like
        one more kill to Postfix)."""
        self.assertTrue(self.filter.running(),
                        "lmtpfilter died on its own:\n" + self.filter.log()[-3000:])

    def assert_filter_never_5xx(self):
        """lmtpfilter's transaction lines: every recipient got 2xx or 4xx
        (all users exist, so a 5xx can only be a transient problem turned
        into a permanent one)."""
        bad = []
        for line in self.filter.log_lines(" rcpts="):
            rcpts = harness.parse_log_fields(line).get("rcpts", "")
            bad += [r for r in rcpts.split(",") if r and r.rpartition(":")[2][:1] not in "24"]
        self.assertEqual(bad, [], "lmtpfilter answered 5xx")

    def kill_during_stream(self, prefix, kill, window):
        """Submit STREAM_MESSAGES messages while calling kill() STREAM_KILLS
        times at random moments, then flush Postfix's queue until it is
        empty and check: no loss, only 4xx deferrals, duplicates explained
        and bounded. Returns (lmtpfilter's connections to Dovecot at each
        kill, the duplicates, Postfix's deferral lines, the transactions
        lmtpfilter gave up on after the end of data)."""
        stream_done = threading.Event()
        errors = []

        def stream():
            try:
                s = self.smtp()
                for i in range(STREAM_MESSAGES):
                    self.submit(s, "%s-%d" % (prefix, i))
                    time.sleep(SEND_GAP)
                s.quit()
            except Exception as e:      # reported by the main thread
                errors.append(e)
            finally:
                stream_done.set()

        sender = threading.Thread(target=stream, daemon=True)
        sender.start()
        kills = []
        for _ in range(STREAM_KILLS):
            time.sleep(self.rng.uniform(*KILL_GAP))
            self.assert_filter_alive()
            kills.append(downstream_sockets(self.filter.pid()))
            kill()
            # Postfix suspends a destination that lost a connection until
            # the next flush: keep mail flowing into the next kill.
            self.postfix.flush()
        self.assertTrue(stream_done.wait(60), "the SMTP stream did not finish")
        sender.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(self.accepted), STREAM_MESSAGES)
        self.flush_until_empty()

        copies = self.assert_no_loss()
        self.assert_no_strangers()
        # A copy beyond the first is explained by the kill's window or by a
        # 451 lmtpfilter gave after the end of data (see timeouts below).
        extra = self.extra_copies(copies, (window, END_OF_DATA))
        lines = self.assert_deferrals_only_4xx()
        self.assert_filter_never_5xx()
        deferred = [d for d in lines if d[3] == "deferred"]
        self.assertTrue(deferred, "no kill interrupted a delivery: nothing was tested")
        # A kill duplicates at most the recipients of the transactions that
        # had a connection open to Dovecot at that moment, and Postfix runs
        # at most CONCURRENCY of them at once. So does each transaction
        # lmtpfilter gave up on after the end of data (its `timeout`): a
        # Dovecot that recovers a kill's leftover lock can stall a mailbox
        # for minutes, then store what we already answered 451 for.
        timeouts = len(self.filter.log_lines('error="end of data: timeout"'))
        self.assertLessEqual(extra, (sum(kills) + timeouts) * len(USERS))
        self.assertLessEqual(extra, (len(kills) * CONCURRENCY + timeouts) * len(USERS))
        self.assert_filter_alive()
        # It still stops cleanly (and, in a sanitizer build, leak-free).
        self.assertEqual(self.filter.stop(), 0, self.filter.log()[-3000:])
        return kills, extra, deferred, timeouts


# -- 1. lmtpfilter killed at random moments ------------------------------------

class KillStreamTest(KillTestCase):

    def test_sigkill_during_stream_loses_nothing(self):
        def kill():
            self.filter.kill()
            self.filter.start()
        kills, extra, deferred, timeouts = self.kill_during_stream(
            "kills-stream", kill, "while sending end of data")
        figures("lmtpfilter SIGKILL stream (seed %d): kills=%d messages=%d recipients=%d "
                "deferrals=%d duplicates=%d timeouts=%d downstream-connections-at-kills=%s"
                % (self.rng_seed, len(kills), len(self.accepted),
                   len(self.accepted) * len(USERS), len(deferred), extra, timeouts, kills))

# -- 2. lmtpfilter killed at each step of one transaction ---------------------

class KillEachStepTest(KillTestCase):
    """Postfix -> upstream tap -> lmtpfilter -> downstream tap -> Dovecot.
    A tap stops relaying at the chosen step, the test waits until lmtpfilter
    has done that step, and kills it (the last two: kills Dovecot). One
    connection per delivery (no connection cache), so every attempt starts
    with LHLO."""

    MESSAGE_SIZE = 20000
    stack = None

    @classmethod
    def setUpClass(cls):
        # One stack for every step: each test leaves lmtpfilter running and
        # Postfix's queue empty, and counts only its own message.
        tmpdir = tempfile.mkdtemp(prefix="lmtpf-it-")
        if not harness.HarnessTestCase.keep_tmp:
            cls.addClassCleanup(shutil.rmtree, tmpdir, True)
        cls.stack = Stack(tmpdir, cls.addClassCleanup, taps=True,
                          postfix_settings=("lmtp_connection_cache_on_demand = no",))

    def setUp(self):
        super().setUp()
        self.up = self.stack.up
        self.down = self.stack.down
        for tap in (self.up, self.down):
            tap.disarm()
        # After a failed test: everything up, and no leftover delivery to
        # take the next armed connection.
        for component in (self.dovecot, self.filter):
            if not component.running():
                component.kill()
                component.start()
        if not self.queue_empty():
            self.flush_until_empty()

    def kill_at(self, name, tap, ready, expect_before, expect_after, victim="lmtpfilter", **cuts):
        """Arm `tap`, submit one message, wait for `ready(conn)`, kill the
        victim (lmtpfilter or Dovecot). expect_before/after: copies per user
        before the retry and after it."""
        component = self.filter if victim == "lmtpfilter" else self.dovecot
        marker = "kills-step-" + name
        tap.arm(**cuts)
        s = self.smtp()
        queue_id = self.submit(s, marker, self.MESSAGE_SIZE)
        s.quit()
        conn = tap.armed_connection(STEP_TIMEOUT)
        conn.wait(ready, STEP_TIMEOUT, name)
        self.assert_filter_alive()
        component.kill()

        # Postfix has settled every recipient of this attempt, and none is
        # acknowledged unless it is stored.
        def settled():
            lines = [d for d in self.deliveries() if d[0] == queue_id]
            return len(lines) >= len(USERS) and lines
        lines = poll_until(settled, STEP_TIMEOUT, "Postfix's verdict on %s" % queue_id)
        copies = self.copies()
        before = [copies.get((marker, u), 0) for u in USERS]
        sent = [d[1] for d in lines if d[3] == "sent"]
        for u, n in zip(USERS, before):
            if u in sent:
                self.assertGreaterEqual(n, 1, "%s: acknowledged, not stored" % u)
        self.assertEqual(before, expect_before, "copies before the retry")
        for qid, rcpt, dsn, status, reason in lines:
            if status == "deferred":
                self.assertTrue(dsn.startswith("4."), reason)
                if victim == "Dovecot":      # lmtpfilter said so, with a 4xx
                    self.assertIn(" said: 4", reason)

        component.start()
        self.flush_until_empty()
        copies = self.assert_no_loss()
        after = [copies.get((marker, u), 0) for u in USERS]
        self.assert_deferrals_only_4xx()
        self.assert_filter_never_5xx()
        self.assert_filter_alive()
        figures("kill %s at %s: copies before retry %s, after %s"
                % (victim, name, before, after))
        self.assertEqual(after, expect_after, "copies after the retry")

    @staticmethod
    def replied_to_all_forwarded(conn):
        """The cut was reached and every command relayed so far (and the
        greeting) has its reply back."""
        forwarded = conn.seen["c2s"][:conn.cut["c2s"]]
        return conn.reached["c2s"] and count_replies(conn.seen["s2c"]) >= forwarded.count(b"\r\n") + 1

    NONE = [0, 0, 0]
    ONE = [1, 1, 1]

    def test_a_after_lhlo(self):
        self.kill_at("after-lhlo", self.up, self.replied_to_all_forwarded, self.NONE, self.ONE,
                     c2s=after_line(b"LHLO"))

    def test_b_after_mail(self):
        self.kill_at("after-mail", self.up, self.replied_to_all_forwarded, self.NONE, self.ONE,
                     c2s=after_line(b"MAIL"))

    def test_c_after_rcpt(self):
        self.kill_at("after-rcpt", self.up, self.replied_to_all_forwarded, self.NONE, self.ONE,
                     c2s=after_line(b"RCPT", len(USERS)))

    def test_d_mid_data(self):
        def ready(conn):
            # The 354 went back and lmtpfilter has read the half message.
            return (conn.reached["c2s"] and b"\r\n354 " in conn.seen["s2c"]
                    and unix_outq(conn.server) == 0)
        self.kill_at("mid-data", self.up, ready, self.NONE, self.ONE,
                     c2s=into_data(self.MESSAGE_SIZE // 2))

    def test_e_after_final_dot_before_dovecot_has_it(self):
        # lmtpfilter has the whole message and is sending it on; Dovecot
        # has all of it but the last byte: it cannot have stored it.
        def ready(conn):
            return conn.reached["c2s"] and unix_outq(conn.server) == 0
        self.kill_at("after-dot-before-dovecot", self.down, ready, self.NONE, self.ONE,
                     c2s=before_end_of_message)

    def test_f_after_dovecot_stored_before_relay(self):
        # The inherent window: Dovecot stored and replied, lmtpfilter dies
        # before Postfix hears of it. Every recipient is delivered again.
        # Dovecot's stream: greeting, LHLO, MAIL, one per RCPT, then one
        # per recipient after the message.
        before_final = 3 + len(USERS)

        def ready(conn):
            return count_replies(conn.seen["s2c"]) >= before_final + len(USERS)
        self.kill_at("after-dovecot-stored", self.down, ready, self.ONE, [2, 2, 2],
                     s2c=after_replies(before_final))

    def test_g_after_first_recipient_relayed(self):
        # Postfix read the first recipient's 250 and then lost the
        # connection: only the other recipients are delivered again.
        def ready(conn):
            held = conn.seen["s2c"][conn.cut["s2c"]:] if conn.reached["s2c"] else b""
            return count_replies(held) >= len(USERS) - 1
        self.kill_at("after-first-relayed", self.up, ready, self.ONE, [1, 2, 2],
                     s2c=after_first_reply_past_354)


    def test_h_dovecot_killed_before_end_of_message(self):
        # Dovecot dies with all of the message but its end: lmtpfilter must
        # answer every recipient 4xx, never 250 and never 5xx.
        def ready(conn):
            return conn.reached["c2s"] and unix_outq(conn.server) == 0
        self.kill_at("before-end-of-message", self.down, ready, self.NONE, self.ONE,
                     victim="Dovecot", c2s=before_end_of_message)

    def test_i_dovecot_killed_after_first_reply(self):
        # Dovecot stored for every recipient, then died with only the first
        # reply sent: that one is relayed as Dovecot gave it, the others
        # become 4xx and are delivered again (Dovecot's own window).
        before_final = 3 + len(USERS)

        def ready(conn):
            return count_replies(conn.seen["s2c"]) >= before_final + len(USERS)
        self.kill_at("after-first-reply", self.down, ready, self.ONE, [1, 2, 2],
                     victim="Dovecot", s2c=after_replies(before_final + 1))


# -- 3. Dovecot killed at random moments ---------------------------------------

class DovecotKillTest(KillTestCase):

    def test_dovecot_killed_during_stream_loses_nothing(self):
        def kill():
            self.dovecot.kill()
            self.dovecot.start()
        kills, extra, deferred, timeouts = self.kill_during_stream(
            "kills-dovecot", kill, END_OF_DATA)
        figures("Dovecot SIGKILL stream (seed %d): kills=%d messages=%d recipients=%d "
                "deferrals=%d duplicates=%d timeouts=%d downstream-connections-at-kills=%s"
                % (self.rng_seed, len(kills), len(self.accepted),
                   len(self.accepted) * len(USERS), len(deferred), extra, timeouts, kills))
        # lmtpfilter stayed up: the deferrals are its 4xx answers, not lost
        # connections to it.
        self.assertTrue([d for d in deferred if " said: 4" in d[4]], deferred)


if __name__ == "__main__":
    unittest.main()
