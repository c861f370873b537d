"""Hostile and malformed LMTP input: each gets a precise reply, and the daemon
survives it (after every test a normal message is still delivered).

Reply codes are those of the command parser: 500 5.5.1 unknown command,
501 5.5.4 bad parameter syntax, 500 5.5.2 line too long / NUL / bare CR or LF,
501 5.1.7 bad sender, 501 5.1.3 bad recipient, 555 5.5.4 unsupported
parameter, 503 5.5.1 bad sequence.
"""

import os
import random
import socket
import time
import unittest

from harness import (ConnectionClosed, HarnessTestCase, LmtpClient, as_stored,
                     deliver, make_message, stored_body)

SENDER = "sender@example.org"
ALICE = "alice@example.com"
BOB = "bob@example.com"


class BadInputTestCase(HarnessTestCase):
    filter_config = {}

    def setUp(self):
        super().setUp()
        self.dovecot = self.start_dovecot(users=["alice", "bob"])
        self.filter = self.start_filter(self.dovecot.address, **self.filter_config)

    def assertStillDelivers(self):
        """The daemon is alive and delivers a normal message to bob."""
        self.assertTrue(self.filter.running(), "lmtpfilter died:\n" + self.filter.log())
        before = len(self.dovecot.messages("bob"))
        msg = make_message(3000, "still alive")
        _, _, data = deliver(self.filter.address, SENDER, [BOB], msg)
        self.assertEqual([r.code for r in data], [250], data)
        stored = self.dovecot.messages("bob")
        self.assertEqual(len(stored), before + 1)
        self.assertEqual(stored_body(stored[-1]), as_stored(msg))

    def assertUsable(self, c):
        """The connection is still in step: NOOP gets its 250."""
        self.assertReply(c.command("NOOP"), 250)

    def fresh(self):
        return self.client(self.filter.address)


class CommandErrorTest(BadInputTestCase):

    def test_unknown_verb(self):
        c = self.fresh()
        self.assertReply(c.command("FOOBAR baz"), 500, "5.5.1")
        r = c.command("EXPN staff")        # not an LMTP command here either
        self.assertIn(r.code, (500, 502), r)
        self.assertUsable(c)
        self.assertStillDelivers()

    def test_bad_syntax(self):
        c = self.fresh()
        self.assertReply(c.command("MAIL FROM:<unterminated@example.org"), 501, "5.1.7")
        self.assertReply(c.command("MAIL FROM:<%s> SIZE=big" % SENDER), 501, "5.5.4")
        self.assertReply(c.command("MAIL FROM:<%s> FROBNICATE=yes" % SENDER), 555, "5.5.4")
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("RCPT TO:<unterminated@example.com"), 501, "5.1.3")
        self.assertReply(c.command("RCPT TO:<>"), 501, "5.1.3")
        self.assertReply(c.command("RSET"), 250)
        self.assertStillDelivers()

    def test_bad_sequence(self):
        c = self.fresh()
        self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 503, "5.5.1")
        self.assertReply(c.command("DATA"), 503, "5.5.1")
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("DATA"), 503, "5.5.1")      # no recipient yet
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 503, "5.5.1")
        # the transaction survived the errors
        self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 250)
        self.assertReply(c.command("DATA"), 354)
        msg = make_message(1500)
        self.assertEqual([r.code for r in c.send_data(msg, 1)], [250])
        self.assertEqual(stored_body(self.dovecot.messages("alice")[0]), as_stored(msg))
        self.assertStillDelivers()

    def test_mail_before_lhlo(self):
        c = self.client(self.filter.address, lhlo=False)
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 503, "5.5.1")
        self.assertReply(c.lhlo(), 250)
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)

    def test_vrfy(self):
        c = self.fresh()
        self.assertReply(c.command("VRFY alice"), 252)
        self.assertStillDelivers()

    def test_bdat_not_advertised_and_refused(self):
        c = self.client(self.filter.address, lhlo=False)
        lhlo = c.lhlo()
        self.assertFalse(any("CHUNKING" in l for l in lhlo.lines), lhlo)
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 250)
        self.assertReply(c.command("BDAT 5 LAST"), 502)
        # The 5 bytes that a BDAT client sends next are just a bad command
        # line; whatever happens, nothing is delivered.
        c.send(b"hello")
        c.command("RSET")
        self.assertEqual(self.dovecot.messages("alice"), [])
        self.assertStillDelivers()

    def test_too_many_recipients(self):
        self.filter.kill()
        self.filter = self.start_filter(self.dovecot.address, max_recipients=3)
        c = self.fresh()
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        for _ in range(3):
            self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % BOB), 452, "4.5.3")
        self.assertReply(c.command("DATA"), 354)
        msg = make_message(1000)
        self.assertEqual([r.code for r in c.send_data(msg, 3)], [250, 250, 250])
        self.assertEqual(self.dovecot.messages("bob"), [], "refused recipient got it")
        self.assertStillDelivers()


class FramingTest(BadInputTestCase):

    def test_line_too_long_keeps_connection_usable(self):
        c = self.fresh()
        c.send(b"NOOP " + b"x" * 100000 + b"\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        # the rest of the long line was discarded, not read as commands
        self.assertUsable(c)
        c.send(b"MAIL FROM:<" + b"a" * 100000 + b"@example.org>\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertUsable(c)
        self.assertStillDelivers()

    def test_nul_byte_in_command(self):
        c = self.fresh()
        c.send(b"NOOP\x00NOOP\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        c.send(b"MAIL FROM:<a\x00b@example.org>\r\n")
        r = c.reply()
        self.assertEqual(r.code // 100, 5, r)
        self.assertUsable(c)
        self.assertStillDelivers()

    def test_bare_lf_in_command(self):
        c = self.fresh()
        c.send(b"NOOP\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertUsable(c)
        self.assertStillDelivers()

    def test_bare_cr_in_command(self):
        c = self.fresh()
        c.send(b"NO\rOP\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertUsable(c)
        self.assertStillDelivers()

    def test_bare_cr_lf_and_nul_in_body_reach_dovecot_as_sent(self):
        # In the body these are not ours to fix: the bytes go to Dovecot as
        # they are, exactly as if Postfix had talked to Dovecot directly.
        msg = (b"Subject: odd line ends\r\n\r\n"
               b"bare LF here\nand CR here\rand both\n\r\n"
               b"NUL \x00 inside\r\n"
               b".\n.not the end\r\nend\r\n")
        _, _, data = deliver(self.filter.address, SENDER, [ALICE], msg)
        _, _, direct = deliver(self.dovecot.address, SENDER, [ALICE], msg)
        self.assertEqual([r.code for r in direct], [250])
        self.assertEqual([r.code for r in data], [250], data)
        through, straight = self.dovecot.messages("alice")
        self.assertEqual(stored_body(through), stored_body(straight))
        self.assertStillDelivers()

    def test_8bit_headers_delivered_unchanged(self):
        msg = (b"From: \xc3\x89milie <emilie@example.org>\r\n"
               b"Subject: \xe9t\xe9 \xff\xfe raw bytes\r\n"
               b"X-Latin1: caf\xe9\r\n\r\nbody \xc3\xa9\r\n")
        _, _, data = deliver(self.filter.address, SENDER, [ALICE], msg)
        self.assertEqual([r.code for r in data], [250], data)
        self.assertEqual(stored_body(self.dovecot.messages("alice")[0]), as_stored(msg))
        self.assertStillDelivers()

    def test_headerless_message(self):
        msg = b"no header at all, just a line\r\nand another\r\n"
        _, _, data = deliver(self.filter.address, SENDER, [ALICE], msg)
        _, _, direct = deliver(self.dovecot.address, SENDER, [ALICE], msg)
        self.assertEqual([r.code for r in data], [250], data)
        through, straight = self.dovecot.messages("alice")
        self.assertEqual(stored_body(through), stored_body(straight))
        self.assertIn(b"no header at all, just a line\n", through)
        self.assertStillDelivers()

    def test_empty_message(self):
        _, _, data = deliver(self.filter.address, SENDER, [ALICE], b"")
        self.assertEqual(len(data), 1)
        self.assertIn(data[0].code // 100, (2, 5), data)
        self.assertStillDelivers()


class PeerBehaviourTest(BadInputTestCase):
    filter_config = {"timeout": 2}

    def test_idle_timeout(self):
        c = self.fresh()
        t0 = time.monotonic()
        r = c.reply(timeout=10)
        elapsed = time.monotonic() - t0
        self.assertReply(r, 421, "4.4.2")
        self.assertTrue(c.is_closed(2))
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 6)
        self.assertStillDelivers()

    def test_timeout_in_data_delivers_nothing(self):
        c = self.fresh()
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 250)
        self.assertReply(c.command("DATA"), 354)
        c.send(b"Subject: stalled\r\n\r\nhalf a messa")
        r = c.reply(timeout=10)
        self.assertReply(r, 421, "4.4.2")
        self.assertTrue(c.is_closed(2))
        self.assertEqual(self.dovecot.messages("alice"), [])
        self.assertStillDelivers()

    def test_client_disconnect_mid_data(self):
        c = self.fresh()
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 250)
        self.assertReply(c.command("DATA"), 354)
        c.send(make_message(300000)[:200000])
        c.close()
        self.filter.wait_log("status=disconnect-in-data")
        self.assertEqual(self.dovecot.messages("alice"), [])
        self.assertStillDelivers()

    def test_disconnect_right_after_final_dot_is_not_a_loss(self):
        # The client leaves without reading the replies: delivery may or may
        # not happen, but the daemon carries on.
        c = self.fresh()
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 250)
        self.assertReply(c.command("DATA"), 354)
        c.send(c.dot_stuff(make_message(2000)))
        c.close()
        self.assertStillDelivers()

    def test_garbage_binary_flood(self):
        rnd = random.Random(2033)
        for chunk in (bytes(rnd.getrandbits(8) for _ in range(300000)),
                      b"\r\n".join(bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 200)))
                                   for _ in range(2000))):
            c = LmtpClient(self.filter.address)
            self.addCleanup(c.close)
            try:
                c.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass                       # it hung up on us: fine
            # it answers with errors and then hangs up (too many errors or
            # our garbage), or keeps waiting for a line end: never crashes
            c.close()
        self.assertStillDelivers()

    def test_many_bad_commands_close_the_connection(self):
        c = self.fresh()
        c.send(b"BOGUS\r\n" * 100)
        replies = []
        try:
            while True:
                replies.append(c.reply(timeout=5))
        except (ConnectionClosed, ConnectionResetError):
            pass
        codes = [r.code for r in replies]
        self.assertIn(421, codes, "the daemon gives up on a client sending only garbage")
        self.assertLess(len(codes), 100)
        self.assertEqual(set(codes[:-1]), {500}, codes)
        self.assertEqual(codes[-1], 421, codes)
        self.assertTrue(c.is_closed(2))
        self.assertStillDelivers()

if __name__ == "__main__":
    unittest.main()
