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
        self.assertGreaterEqual(len(exhausted), 1, self.filter.log()[-3000:])
        self.assertLessEqual(len(exhausted), 2, exhausted)

        extra = LmtpClient(self.filter.address, read_greeting=False)
        self.addCleanup(extra.close)
        r = extra.reply(timeout=5)
        self.assertReply(r, 421, "4.3.2")
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
