"""Socket activation as lmtpfilter.socket does it, without systemd as PID 1.

systemd-socket-activate (Debian's systemd package) opens the sockets, waits
for the first connection and then executes the daemon with LISTEN_FDS, as
systemd does for lmtpfilter.socket. The daemon runs with `listen =` empty,
delivers through both sockets (unix and TCP) into the real Dovecot, and
tells the NOTIFY_SOCKET this test listens on READY=1 and, at SIGTERM,
STOPPING=1. Without `listen` and without LISTEN_FDS it refuses to start
with a clear message and exit code 1 (a configuration mistake).
"""

import os
import signal
import socket
import subprocess
import unittest

from harness import (HarnessTestCase, Lmtpfilter, START_TIMEOUT, STOP_TIMEOUT, as_stored,
                     deliver, free_port, lmtpfilter_binary, make_message, stored_body,
                     stop_process, wait_for)

ACTIVATE = "/usr/bin/systemd-socket-activate"
SENDER = "sender@example.org"
ALICE = "alice@example.com"
BOB = "bob@example.com"
NOTIFY_WAIT = 10.0          # seconds for one sd_notify datagram
SANITIZER_VARIABLES = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


class NotifySocket:
    """A NOTIFY_SOCKET: the datagram socket sd_notify(3) writes to."""

    def __init__(self, tmpdir):
        self.path = os.path.join(tmpdir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.seen = []

    def wait(self, state, timeout=NOTIFY_WAIT):
        """Read datagrams until one carries the line `state`; True if it came."""
        self.sock.settimeout(timeout)
        while not any(state in m.split("\n") for m in self.seen):
            try:
                self.seen.append(self.sock.recv(4096).decode("utf-8", "replace"))
            except socket.timeout:
                return False
        return True

    def pending(self):
        """Datagrams already queued, without waiting."""
        self.sock.setblocking(False)
        try:
            while True:
                self.seen.append(self.sock.recv(4096).decode("utf-8", "replace"))
        except BlockingIOError:
            pass
        return list(self.seen)

    def close(self):
        self.sock.close()


class SocketActivationTest(HarnessTestCase):

    def setUp(self):
        super().setUp()
        self.assertTrue(os.access(ACTIVATE, os.X_OK), ACTIVATE + " is missing (package systemd)")
        self.dovecot = self.start_dovecot(users=["alice", "bob"])
        self.notify = NotifySocket(self.tmpdir)
        self.addCleanup(self.notify.close)
        # The daemon's configuration with `listen =` empty: only systemd's sockets.
        self.filter = Lmtpfilter(self.tmpdir, self.dovecot.address)
        self.filter.groups["lmtpfilter"]["listen"] = ""
        self.filter.write_config()
        self.log_path = os.path.join(self.tmpdir, "activate.log")
        self.addCleanup(self._dump_on_failure, "lmtpfilter log", self.log)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def activate(self, listen):
        """systemd-socket-activate with one -l per address, running the daemon."""
        argv = [ACTIVATE]
        for address in listen:
            argv += ["-l", address]
        argv += ["-E", "NOTIFY_SOCKET=" + self.notify.path]
        for name in SANITIZER_VARIABLES:
            if name in os.environ:
                argv += ["-E", name]        # the activator passes on only what -E names
        argv += [lmtpfilter_binary(), "-c", self.filter.config_path]
        log = open(self.log_path, "ab")
        self.addCleanup(log.close)
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
        self.addCleanup(stop_process, proc, signal.SIGKILL)
        # The sockets exist before the daemon runs; it starts at the first connection.
        wait_for(lambda: self.log().count("Listening on") == len(listen) or proc.poll() is not None,
                 START_TIMEOUT, "systemd-socket-activate's sockets")
        self.assertIsNone(proc.poll(), self.log())
        return proc

    def assertDelivered(self, user, message):
        stored = self.dovecot.messages(user)
        self.assertEqual(len(stored), 1, "messages in %s's INBOX" % user)
        self.assertEqual(stored_body(stored[0]), as_stored(message))

    def test_unix_and_tcp_sockets_from_systemd(self):
        unix_path = os.path.join(self.tmpdir, "filter.sock")
        port = free_port()
        proc = self.activate([unix_path, "127.0.0.1:%d" % port])

        to_alice = make_message(2048, subject="through the unix socket")
        _, rcpts, data = deliver("unix:" + unix_path, SENDER, [ALICE], to_alice)
        self.assertReply(rcpts[0], 250)
        self.assertReply(data[0], 250)
        to_bob = make_message(2048, subject="through the TCP socket")
        _, rcpts, data = deliver("inet:127.0.0.1:%d" % port, SENDER, [BOB], to_bob)
        self.assertReply(rcpts[0], 250)
        self.assertReply(data[0], 250)
        self.assertDelivered("alice", to_alice)
        self.assertDelivered("bob", to_bob)

        self.assertTrue(self.notify.wait("READY=1"), "no READY=1: %r" % self.notify.seen)
        self.assertIn("ready listeners=2", self.log(), "both sockets taken from LISTEN_FDS")
        lines = [l for l in self.log().splitlines() if "status=done" in l]
        self.assertEqual(len(lines), 2, self.log())
        self.assertIn("peer=unix:pid=%d,uid=%d " % (os.getpid(), os.getuid()), lines[0],
                      "the unix socket is seen as one, the client by its credentials")
        self.assertIn("peer=127.0.0.1", lines[1], "the TCP socket is seen as one")

        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(STOP_TIMEOUT), 0, self.log())
        self.assertTrue(self.notify.wait("STOPPING=1"), "no STOPPING=1: %r" % self.notify.seen)
        self.assertTrue(os.path.exists(unix_path), "a socket systemd made is left to systemd")

    def test_refuses_without_listen_or_sockets(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        env["NOTIFY_SOCKET"] = self.notify.path
        result = subprocess.run([lmtpfilter_binary(), "-c", self.filter.config_path], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        stderr = result.stderr.decode("utf-8", "replace")
        self.assertEqual(result.returncode, 1, "a configuration mistake exits 1: " + stderr)
        self.assertIn("%s: nothing to listen on: set listen, or start with systemd socket activation"
                      % self.filter.config_path, stderr)
        self.assertNotIn("READY=1", "".join(self.notify.pending()), "it never said it was ready")


if __name__ == "__main__":
    unittest.main()
