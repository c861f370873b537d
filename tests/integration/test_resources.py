"""Resource exhaustion against the real daemon and the real Dovecot.

Descriptors: with RLIMIT_NOFILE lowered (prlimit on the running daemon)
below what its clients need, the accept loop must not spin. A connection it
cannot serve is told 421 4.3.2 and closed, the condition is logged once per
interval, and once descriptors are free again service resumes by itself.

Deadlines: `timeout` bounds a whole command line (from the moment the daemon
waits for it) and `data_timeout` the whole DATA transfer, so a client that
trickles one byte a second is cut off with 421 4.4.2 at the total, and
nothing half-received is delivered. A slow but steady client within the
deadlines still delivers.
"""

import resource
import socket
import time

from harness import (ConnectionClosed, HarnessTestCase, LmtpClient, as_stored,
                     deliver, make_message, stored_body, wait_for)

SENDER = "sender@example.org"
ALICE = "alice@example.com"
BOB = "bob@example.com"

FD_LIMIT = 40            # the daemon's descriptor limit in the exhaustion test
IDLE_CLIENTS = 60        # more idle clients than that limit allows
MEASURE_SECONDS = 3.0    # how long CPU use and log growth are watched
CPU_MAX = 0.5            # seconds of CPU the daemon may use meanwhile (a spin uses ~3)
LOG_LINES_MAX = 6        # log lines it may write meanwhile


class ResourceTestCase(HarnessTestCase):
    filter_config = {}

    def setUp(self):
        super().setUp()
        self.dovecot = self.start_dovecot(users=["alice", "bob"])
        self.filter = self.start_filter(self.dovecot.address, **self.filter_config)

    def assertDelivers(self, user=BOB, address=None, subject="normal message"):
        """A normal message goes through lmtpfilter into Dovecot's maildir."""
        before = len(self.dovecot.messages(user.split("@")[0]))
        msg = make_message(3000, subject)
        _, _, data = deliver(address or self.filter.address, SENDER, [user], msg)
        self.assertEqual([r.code for r in data], [250], data)
        stored = self.dovecot.messages(user.split("@")[0])
        self.assertEqual(len(stored), before + 1)
        self.assertEqual(stored_body(stored[-1]), as_stored(msg))

    def set_fd_limit(self, soft):
        """Lower (or restore) the running daemon's soft RLIMIT_NOFILE."""
        pid = self.filter.pid()
        old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, old[1]))
        return old

    def idle_clients(self, count):
        clients = []
        for _ in range(count):
            c = LmtpClient(self.filter.address, read_greeting=False)
            self.addCleanup(c.close)
            clients.append(c)
        return clients

    def watch(self):
        """CPU seconds used and log lines written over MEASURE_SECONDS."""
        cpu0, lines0 = self.filter.cpu_seconds(), len(self.filter.log_lines())
        time.sleep(MEASURE_SECONDS)
        cpu = self.filter.cpu_seconds() - cpu0
        lines = len(self.filter.log_lines()) - lines0
        print("\n  %s: %.2f s CPU, %d log lines in %.0f s"
              % (self.id().rsplit(".", 1)[1], cpu, lines, MEASURE_SECONDS))
        return cpu, lines


class DescriptorExhaustionTest(ResourceTestCase):
    # The descriptor limit, not max_connections, is what runs out here.
    filter_config = {"max_connections": 1000}

    def test_idle_clients_past_the_fd_limit(self):
        old = self.set_fd_limit(FD_LIMIT)
        clients = self.idle_clients(IDLE_CLIENTS)
        time.sleep(1.0)
        cpu, lines = self.watch()
        self.assertLess(cpu, CPU_MAX, "the accept loop spins")
        self.assertLessEqual(lines, LOG_LINES_MAX, self.filter.log()[-3000:])
        # Each idle client is either served (220) or turned away (421 4.3.2):
        # none is left hanging in the listen queue.
        codes = [c.reply(timeout=5).code for c in clients]
        self.assertLessEqual(set(codes), {220, 421}, codes)
        self.assertIn(421, codes)
        self.assertIn(220, codes)
        # Logged once, not once per connection turned away.
        exhausted = self.filter.log_lines("Too many open files")
        self.assertEqual(len(exhausted), 1, self.filter.log()[-3000:])

        # A new client is turned away. (A descriptor a new thread held for a
        # moment during the rush may have turned a client away that could
        # have been served: then one more is served first.)
        extras = []
        for _ in range(3):
            extra = LmtpClient(self.filter.address, read_greeting=False)
            self.addCleanup(extra.close)
            r = extra.reply(timeout=5)
            extras.append(r)
            if r.code != 220:
                break
        self.assertReply(r, 421, "4.3.2", extras)
        self.assertTrue(extra.is_closed(5))

        for c in clients:
            c.close()
        # Service resumes by itself, under the same low limit.
        wait_for(lambda: self._greets(), 10, "a 220 greeting after the idle clients left")
        self.assertDelivers()
        self.set_fd_limit(old[0])
        self.assertTrue(self.filter.running())

    def test_no_descriptor_at_all_backs_off_and_recovers(self):
        # Below the descriptors the daemon already holds: not even the reserve
        # helps, every accept fails until the limit is raised again.
        old = self.set_fd_limit(3)
        clients = self.idle_clients(5)
        time.sleep(0.5)
        cpu, lines = self.watch()
        self.assertLess(cpu, CPU_MAX, "the accept loop spins")
        self.assertLessEqual(lines, LOG_LINES_MAX, self.filter.log()[-3000:])
        self.assertEqual(len(self.filter.log_lines("Too many open files")), 1, self.filter.log()[-3000:])
        self.set_fd_limit(old[0])
        # Service resumes by itself: the waiting clients are greeted.
        for c in clients:
            self.assertReply(c.reply(timeout=5), 220)
        self.filter.wait_log("accepting connections again")
        c = clients[0]
        self.assertReply(c.lhlo(), 250)
        msg = make_message(2000, "after the shortage")
        _, rcpts, data = c.transaction(SENDER, [ALICE], msg)
        self.assertEqual([r.code for r in data], [250], (rcpts, data))
        self.assertEqual(stored_body(self.dovecot.messages("alice")[-1]), as_stored(msg))
        for c in clients:
            c.close()
        self.assertDelivers()

    def _greets(self):
        try:
            with LmtpClient(self.filter.address, timeout=2) as c:
                return c.greeting.code == 220
        except (OSError, ConnectionClosed):
            return False


class TrickleTest(ResourceTestCase):
    # timeout bounds a whole command line, data_timeout the whole DATA phase;
    # a byte a second keeps any per-read timeout of 3 s happy for ever.
    TIMEOUT = 3
    DATA_TIMEOUT = 5
    filter_config = {"timeout": TIMEOUT, "data_timeout": DATA_TIMEOUT}
    SLACK = 1.5              # seconds of scheduling slack past a deadline

    def trickle(self, c, data, interval=1.0, give_up=15.0):
        """Send data one byte per interval until a reply comes; returns
        (reply or None, seconds from the call to the reply)."""
        t0 = time.monotonic()
        for i in range(len(data)):
            try:
                c.send(data[i:i + 1])
            except OSError:
                pass
            try:
                return c.reply(timeout=interval), time.monotonic() - t0
            except socket.timeout:
                pass
            except ConnectionClosed:
                return None, time.monotonic() - t0
            if time.monotonic() - t0 > give_up:
                break
        return None, time.monotonic() - t0

    def test_trickled_command_line_is_cut_at_timeout(self):
        c = self.client(self.filter.address)
        r, elapsed = self.trickle(c, b"MAIL FROM:<%s> BODY=8BITMIME\r\n" % SENDER.encode())
        self.assertIsNotNone(r, "no reply while trickling for %.1f s" % elapsed)
        print("\n  trickled command line: %r after %.1f s (timeout=%d)" % (r, elapsed, self.TIMEOUT))
        self.assertReply(r, 421, "4.4.2")
        self.assertIn("within %d s" % self.TIMEOUT, r.text)
        self.assertTrue(c.is_closed(3))
        self.assertGreater(elapsed, self.TIMEOUT - 0.5)
        self.assertLess(elapsed, self.TIMEOUT + self.SLACK)
        self.assertDelivers()

    def test_trickled_data_is_cut_at_data_timeout_and_nothing_delivered(self):
        c = self.client(self.filter.address)
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 250)
        self.assertReply(c.command("DATA"), 354)
        r, elapsed = self.trickle(c, c.dot_stuff(make_message(200, "trickled")))
        self.assertIsNotNone(r, "no reply while trickling for %.1f s" % elapsed)
        print("\n  trickled DATA: %r after %.1f s (data_timeout=%d)" % (r, elapsed, self.DATA_TIMEOUT))
        self.assertReply(r, 421, "4.4.2")
        self.assertIn("within %d s" % self.DATA_TIMEOUT, r.text)
        self.assertTrue(c.is_closed(3))
        self.assertGreater(elapsed, self.DATA_TIMEOUT - 0.5)
        self.assertLess(elapsed, self.DATA_TIMEOUT + self.SLACK)
        self.filter.wait_log("status=timeout-in-data")
        self.assertEqual(self.dovecot.messages("alice"), [])
        self.assertDelivers()

    def test_slow_but_steady_client_within_the_deadlines_delivers(self):
        c = self.client(self.filter.address)
        time.sleep(self.TIMEOUT - 1.5)        # idle, but less than timeout
        for line in ("MAIL FROM:<%s>" % SENDER, "RCPT TO:<%s>" % ALICE, "DATA"):
            data = (line + "\r\n").encode()
            c.send(data[:5])                  # each line in two pieces, 1 s apart
            time.sleep(1.0)
            c.send(data[5:])
            self.assertIn(c.reply().code, (250, 354))
        msg = make_message(40000, "slow but steady")
        payload = c.dot_stuff(msg)
        pieces = 8                            # about 2.8 s in all, below data_timeout
        step = len(payload) // pieces + 1
        for i in range(0, len(payload), step):
            c.send(payload[i:i + step])
            time.sleep(0.35)
        self.assertReply(c.reply(), 250)
        c.quit()
        stored = self.dovecot.messages("alice")
        self.assertEqual(len(stored), 1)
        self.assertEqual(stored_body(stored[0]), as_stored(msg))
