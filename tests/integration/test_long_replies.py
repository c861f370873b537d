"""Downstream replies of any length and content are relayed by their code.

Dovecot puts the recipient's address in its reply after the message
("250 2.0.0 <address> session Saved") and twice in its refusal of an
unknown one: an address of about 470 characters makes that reply longer
than the 512 bytes a reply line may have. lmtpfilter must still pass on
Dovecot's code and enhanced status code (with the text cut to a legal
line), for that recipient and for every later one, or Postfix would defer
recipients whose message is already stored and store it again at each
queue run. The same for long, multi-line and hostile replies from a fake
downstream, and end to end through a real Postfix.
"""

import os
import time
import unittest

import harness
from harness import FakeLmtpServer, HarnessTestCase, LmtpClient, make_message

SENDER = "sender@example.org"
ALICE = "alice@example.com"
BOB = "bob@example.com"
# Longer than the 512 bytes of a reply line once Dovecot has wrapped it in
# "250 2.0.0 <...> SESSION-ID Saved", shorter than the 512 of a path we accept.
LONG = "a" + "l" * 489 + "@example.com"
UNKNOWN_LONG = "n" + "o" * 489 + "@example.com"
REPLY_LINE_MAX = 512            # with its CRLF (RFC 5321 4.5.3.1.5)
SETTLE_TIME = 1.0               # how long a duplicate copy would need to show up


def assert_legal_line(test, reply):
    """Every line of reply is a legal reply line: at most 512 bytes with
    CRLF, valid UTF-8, no control characters."""
    for line in reply.lines:
        test.assertNotIn("\ufffd", line, "invalid UTF-8 in %r" % reply)
        test.assertLessEqual(len(line.encode()) + 2, REPLY_LINE_MAX, reply)
        test.assertFalse(any(ord(c) < 0x20 or ord(c) == 0x7f for c in line), reply)


class DovecotLongAddressTest(HarnessTestCase):
    """The real Dovecot, a user whose address is 502 characters long."""

    def setUp(self):
        super().setUp()
        self.dovecot = self.start_dovecot(users=["alice", "bob"], maildir_names={LONG: "long"})
        self.filter = self.start_filter(self.dovecot.address)

    def assert_one_copy_each(self, *users):
        time.sleep(SETTLE_TIME)
        for user in users:
            self.assertEqual(len(self.dovecot.messages(user)), 1, "copies for %.40s" % user)

    def test_long_recipient_gets_dovecots_250_and_so_do_the_later_ones(self):
        self.assertGreater(len("250 2.0.0 <%s> SESSIONID Saved\r\n" % LONG), REPLY_LINE_MAX)
        _, rcpts, data = harness.deliver(self.filter.address, SENDER, [ALICE, LONG, BOB],
                                         make_message(3000))
        self.assertEqual([(r.code, r.enhanced) for r in rcpts], [(250, "2.1.5")] * 3)
        self.assertEqual([(r.code, r.enhanced) for r in data], [(250, "2.0.0")] * 3, data)
        for r in data:
            assert_legal_line(self, r)
        # Dovecot's own texts, each recipient's in its place
        self.assertTrue(data[0].text.startswith("<%s> " % ALICE) and "Saved" in data[0].text)
        self.assertTrue(data[1].text.startswith("<" + LONG[:100]), data[1])
        self.assertTrue(data[2].text.startswith("<%s> " % BOB) and "Saved" in data[2].text)
        self.assert_one_copy_each(ALICE, LONG, BOB)
        fields = harness.parse_log_fields(self.filter.wait_log("status=done")[0])
        self.assertEqual(fields["rcpts"], "%s:250,%s:250,%s:250" % (ALICE, LONG, BOB))

    def test_unknown_long_address_gets_dovecots_550_and_the_next_its_own_reply(self):
        for pipelined in (False, True):
            with self.subTest(pipelined=pipelined):
                with LmtpClient(self.filter.address) as c:
                    c.lhlo()
                    _, rcpts, data = c.transaction(SENDER, [ALICE, UNKNOWN_LONG, BOB],
                                                   make_message(2000), pipelined=pipelined)
                    c.quit()
                self.assertEqual([(r.code, r.enhanced) for r in rcpts],
                                 [(250, "2.1.5"), (550, "5.1.1"), (250, "2.1.5")], rcpts)
                self.assertTrue(rcpts[1].text.startswith("<" + UNKNOWN_LONG[:100]), rcpts[1])
                assert_legal_line(self, rcpts[1])
                self.assertEqual([(r.code, r.enhanced) for r in data], [(250, "2.0.0")] * 2, data)
                self.assertIn(ALICE, data[0].text)
                self.assertIn(BOB, data[1].text)
        self.assertEqual(len(self.dovecot.messages(ALICE)), 2)
        self.assertEqual(len(self.dovecot.messages(BOB)), 2)


# Replies a real Dovecot cannot be made to give: (what the fake sends, the
# code and enhanced code relayed, the start of the relayed text or None).
HOSTILE = [
    (b"250 2.0.0 " + b"x" * 5000 + b"\r\n", 250, "2.0.0", "xxxx"),
    # multi-line with long lines: the last line's code and text count
    (b"250-2.0.0 " + b"m" * 3000 + b"\r\n250-2.0.0 more\r\n250 2.0.0 last line\r\n",
     250, "2.0.0", "last line"),
    # over the 64 KB a reply line is read whole: its start still counts
    (b"250 2.0.0 " + b"y" * 100000 + b"\r\n", 250, "2.0.0", "yyyy"),
    # NUL, bare CR, escape, invalid and valid 8-bit, a bare LF line end
    (b"250 2.0.0 a\x00b\rc\x1b[31m\xff\xfe J\xc3\xbcrgen\n", 250, "2.0.0", "a b c [31m?? J\u00fcrgen"),
    (b"250 Saved without enhanced code\r\n", 250, None, "Saved without enhanced code"),
    (b"452-4.2.2 " + b"q" * 2000 + b"\r\n452 4.2.2 Mailbox full\r\n", 452, "4.2.2", "Mailbox full"),
    (b"550 5.7.1\r\n", 550, "5.7.1", ""),
]


class FakeDownstreamReplyTest(HarnessTestCase):
    """Long, multi-line and hostile replies from a fake downstream."""

    def fake(self, **kw):
        fake = FakeLmtpServer(self.tmpdir, on_data="accept", **kw)
        self.addCleanup(fake.stop)
        return fake

    def assert_relayed(self, replies, cases):
        self.assertEqual(len(replies), len(cases), replies)
        for reply, (_, code, enhanced, text) in zip(replies, cases):
            self.assertEqual((reply.code, reply.enhanced), (code, enhanced), replies)
            self.assertTrue(reply.text.startswith(text), (reply, text))
            self.assertEqual(len(reply.lines), 1, reply)
            assert_legal_line(self, reply)

    def test_replies_after_the_message(self):
        rcpts = ["r%d@example.com" % i for i in range(len(HOSTILE))]
        by_rcpt = {r.encode(): case[0] for r, case in zip(rcpts, HOSTILE)}
        for chunking in (False, True):
            with self.subTest(chunking=chunking):
                fake = self.fake(chunking=chunking, data_reply=by_rcpt.get)
                f = self.start_filter(fake.address)
                msg = make_message(2000)
                with LmtpClient(f.address) as c:
                    c.lhlo()
                    _, rcpt_replies, data = c.transaction(SENDER, rcpts, msg)
                    self.assertEqual([r.code for r in rcpt_replies], [250] * len(rcpts))
                    self.assert_relayed(data, HOSTILE)
                    # still in step with the downstream: the next transaction
                    # goes over the same connection and gets its own replies
                    _, rcpt_replies, data = c.transaction(SENDER, rcpts[-1:], msg)
                    self.assertEqual([(r.code, r.enhanced) for r in rcpt_replies + data],
                                     [(250, "2.1.5"), (550, "5.7.1")])
                    c.quit()
                self.assertEqual(fake.messages, [msg, msg])
                self.assertEqual(fake.connections, 1)
                f.stop()

    def test_replies_to_pipelined_rcpts(self):
        rcpts = ["r%d@example.com" % i for i in range(len(HOSTILE))]
        by_rcpt = {r.encode(): case[0] for r, case in zip(rcpts, HOSTILE)}
        fake = self.fake(rcpt_reply=by_rcpt.get)
        f = self.start_filter(fake.address)
        c = self.client(f.address)
        # first without, then with more commands waiting
        for pipelined in (False, True):
            with self.subTest(pipelined=pipelined):
                _, replies, data = c.transaction(SENDER, rcpts, make_message(1000),
                                                 pipelined=pipelined)
                self.assert_relayed(replies, HOSTILE)
                # one reply per recipient Dovecot accepted, in their order
                self.assertEqual([r.text for r in data],
                                 ["<r%d> Saved" % i for i in range(5)])
        self.assertEqual(fake.connections, 1)

    def test_reply_beyond_what_is_read_keeps_its_code(self):
        # 2 MB without a line end: the code already read is relayed; what
        # follows on that connection cannot be read, so it is not reused.
        huge = b"250 2.0.0 " + b"z" * 2000000 + b"\r\n"
        at_rcpt, after_data = {b"r0@example.com": huge}, {}
        fake = self.fake(rcpt_reply=at_rcpt.get, data_reply=after_data.get)
        f = self.start_filter(fake.address)
        c = self.client(f.address)
        # at RCPT: the message never went out, so a 4xx after DATA is safe
        _, rcpts, data = c.transaction(SENDER, ["r1@example.com", "r0@example.com"],
                                       make_message(1000))
        self.assertEqual([(r.code, r.enhanced) for r in rcpts], [(250, "2.1.5"), (250, "2.0.0")])
        assert_legal_line(self, rcpts[1])
        self.assertEqual([(r.code, r.enhanced) for r in data], [(451, "4.4.1")] * 2)
        self.assertEqual(fake.messages, [])
        # after the message: r0's 250 is known and kept, r2's reply is lost
        at_rcpt.clear()
        after_data[b"r0@example.com"] = huge
        _, rcpts, data = c.transaction(SENDER, ["r0@example.com", "r2@example.com"],
                                       make_message(1000))
        self.assertEqual([r.code for r in rcpts], [250, 250])
        self.assertEqual([(r.code, r.enhanced) for r in data], [(250, "2.0.0"), (451, "4.4.1")])
        assert_legal_line(self, data[0])
        # the next transaction goes over a fresh connection
        _, rcpts, data = c.transaction(SENDER, ["r3@example.com"], make_message(1000))
        self.assertEqual([r.code for r in rcpts + data], [250, 250])
        self.assertEqual(len(fake.messages), 2)
        self.assertEqual(fake.connections, 3)
        self.assertTrue(f.running())

    def test_long_commands_go_out_whole_and_replies_stay_in_order(self):
        # A command cut to a buffer would lose its CRLF and run into the
        # next one: Dovecot would answer both with one reply.
        fake = self.fake()
        f = self.start_filter(fake.address, timeout=5)
        c = self.client(f.address)
        orcpt = "rfc822;" + "o" * 1900 + "@example.com"
        rcpts = ["r0@example.com", "r1@example.com", "r2@example.com"]
        c.send("MAIL FROM:<%s>\r\n" % SENDER + "".join(
            "RCPT TO:<%s> ORCPT=%s\r\n" % (r, orcpt) for r in rcpts) + "DATA\r\n")
        replies = [c.reply() for _ in range(5)]
        self.assertEqual([r.code for r in replies], [250, 250, 250, 250, 354], replies)
        data = c.send_data(make_message(1000), 3)
        self.assertEqual([r.text for r in data], ["<r%d> Saved" % i for i in range(3)])
        for r in rcpts:
            self.assertIn(("RCPT TO:<%s> ORCPT=%s" % (r, orcpt)).encode(), fake.commands)

    def test_malformed_reply_is_a_temporary_failure(self):
        # Not a reply at all: nothing says the message was stored.
        replies = {b"r0@example.com": b"hello there\r\n"}
        fake = self.fake(data_reply=replies.get)
        f = self.start_filter(fake.address)
        _, rcpts, data = harness.deliver(f.address, SENDER, ["r0@example.com", "r1@example.com"],
                                         make_message(1000))
        self.assertEqual([r.code for r in rcpts], [250, 250])
        self.assertEqual([(r.code, r.enhanced) for r in data], [(451, "4.4.1")] * 2)
        self.assertTrue(f.running())


POSTFIX_CLIENT = "192.0.2.10"
POSTFIX_SERVER = "203.0.113.1"
FLUSHES = 3                     # queue runs that must not store another copy
DELIVERY_TIMEOUT = 20.0


class PostfixLongRecipientTest(HarnessTestCase):
    """Postfix -> lmtpfilter -> Dovecot: one copy per recipient, whatever
    the length of Dovecot's reply, and nothing left in the queue. Needs
    root (network namespaces), as CI has."""

    def test_long_recipient_one_copy_each_and_queue_empty(self):
        ns = self.start_namespaces((POSTFIX_CLIENT,), POSTFIX_SERVER)
        dovecot = self.start_dovecot(users=["alice", "bob"], maildir_names={LONG: "long"})
        f = self.start_filter(dovecot.address, listen_mode="0666")
        smtp = "%s:25" % POSTFIX_SERVER
        postfix = self.start_postfix(f.address, smtp, netns=ns.server)
        msg = harness.crlf("From: <%s>\nTo: <%s>\nSubject: long recipient\n"
                           "Message-ID: <long-rcpt@test.example>\n\nHello.\n" % (SENDER, ALICE))
        r = harness.swaks(smtp, SENDER, [LONG, ALICE, BOB], msg, "client.example.org",
                          source=POSTFIX_CLIENT, netns=ns.client)
        self.assertEqual(r.returncode, 0, r)
        self.assertIsNotNone(r.queue_id, r)
        users = (LONG, ALICE, BOB)
        harness.wait_for(lambda: all(dovecot.messages(u) for u in users), DELIVERY_TIMEOUT,
                         "a copy for every recipient")
        harness.wait_for(lambda: postfix.queue() == [], DELIVERY_TIMEOUT, "an empty queue")
        for _ in range(FLUSHES):
            postfix.flush()
            time.sleep(SETTLE_TIME)
        for u in users:
            self.assertEqual(len(dovecot.messages(u)), 1, "copies for %.40s" % u)
        self.assertEqual(postfix.queue(), [])
        sent = postfix.log_lines("%s: to=<" % r.queue_id)
        self.assertEqual(len(sent), 3, postfix.log())
        for line in sent:
            self.assertIn("status=sent (250 2.0.0 ", line)
        postfix.wait_log("%s: removed" % r.queue_id)


if __name__ == "__main__":
    unittest.main()
