"""Every log line a session writes can be tied to its session and client.

Each line of a session, the warning about a failing Dovecot as much as the
transaction line, begins with the same session=; once XFORWARD gave a queue
id (IDENT=), ident= follows, until the transaction ends. A local client is
named by the process that connected (peer=unix:pid=PID,uid=UID), a TCP one
by its address.
"""

import os
import unittest

from harness import (FakeLmtpServer, HarnessTestCase, free_port, make_message,
                     parse_log_fields)

SENDER = "sender@example.org"
ALICE = "alice@example.com"


class SessionLogTest(HarnessTestCase):

    def setUp(self):
        super().setUp()
        # drops the connection after 1000 bytes of every message
        self.fake = FakeLmtpServer(self.tmpdir, on_data="drop", drop_after=1000)
        self.addCleanup(self.fake.stop)

    def session_lines(self, f, count):
        """The daemon's lines that belong to a session, once there are count."""
        f.wait_log("session=", count=count)
        return [parse_log_fields(l) for l in f.log_lines("session=")]

    def failing_transaction(self, c, xforward=None):
        """One transaction Dovecot drops mid-message: a warning, then the
        transaction line."""
        _, rcpts, data = c.transaction(SENDER, [ALICE], make_message(50000), xforward=xforward)
        self.assertEqual([r.code for r in rcpts], [250])
        self.assertEqual([r.code // 100 for r in data], [4], data)

    def test_warning_and_transaction_line_carry_the_session_id(self):
        f = self.start_filter(self.fake.address)
        c = self.client(f.address)
        self.failing_transaction(c)
        c.quit()
        other = self.client(f.address)
        self.failing_transaction(other)
        other.quit()
        lines = self.session_lines(f, 4)
        self.assertEqual(len(lines), 4, f.log())
        warning, done, warning2, done2 = lines
        self.assertIn("downstream", warning, f.log())
        self.assertIn("status", done, f.log())
        self.assertRegex(warning["session"], r"^[0-9a-f]{12}$")
        self.assertEqual(warning["session"], done["session"], f.log())
        self.assertEqual(warning2["session"], done2["session"], f.log())
        self.assertNotEqual(warning["session"], warning2["session"], "each connection has its own id")

    def test_queue_id_follows_xforward_until_the_transaction_ends(self):
        f = self.start_filter(self.fake.address, xforward=True)
        c = self.client(f.address)
        self.failing_transaction(c)
        self.failing_transaction(c, xforward=[{"ADDR": "203.0.113.25", "IDENT": "4QSID1"}])
        self.failing_transaction(c)
        c.quit()
        lines = self.session_lines(f, 6)
        self.assertEqual(len(lines), 6, f.log())
        self.assertEqual(len({l["session"] for l in lines}), 1, f.log())
        self.assertEqual([l.get("ident") for l in lines],
                         [None, "-", "4QSID1", "4QSID1", None, "-"], f.log())
        self.assertEqual(lines[3].get("client"), "203.0.113.25", f.log())
        # the transaction line keeps its order: session peer ident client ...
        done = [l for l in f.log_lines("status=")][1]
        self.assertRegex(done, r"lmtpfilter: session=\S+ peer=\S+ ident=4QSID1 client=")

    def peers(self, f):
        """peer= of the warning and of the transaction line."""
        f.wait_log("status=")
        return [parse_log_fields(l).get("peer") for l in f.log_lines("error=") + f.log_lines("status=")]

    def test_unix_client_named_by_its_credentials(self):
        f = self.start_filter(self.fake.address)
        c = self.client(f.address)
        self.failing_transaction(c)
        c.quit()
        expect = "unix:pid=%d,uid=%d" % (os.getpid(), os.getuid())
        self.assertEqual(self.peers(f), [expect, expect], f.log())

    def test_tcp_client_named_by_its_address(self):
        f = self.start_filter(self.fake.address, listen="inet:127.0.0.1:%d" % free_port())
        c = self.client(f.address)
        self.failing_transaction(c)
        c.quit()
        self.assertEqual(self.peers(f), ["127.0.0.1", "127.0.0.1"], f.log())


if __name__ == "__main__":
    unittest.main()
