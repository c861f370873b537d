"""The LMTP proxy core against a real Dovecot: what an administrator relies on.

Every test delivers through lmtpfilter (mode = off, pass-through) into a
private Dovecot instance and checks the replies Postfix would see and what
actually landed in the maildirs.
"""

import os
import signal
import socket
import threading
import time
import unittest

from harness import (FakeLmtpServer, HarnessTestCase, LmtpClient, as_stored, deliver,
                     make_message, parse_log_fields, stored_body)

SENDER = "sender@example.org"
ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"
FULL = "dave@example.com"          # over quota: refused after DATA
NOBODY = "nobody@example.com"      # unknown to Dovecot


class ProxyTestCase(HarnessTestCase):

    def setUp(self):
        super().setUp()
        self.dovecot = self.start_dovecot(users=["alice", "bob", "carol"],
                                          quota_users=["dave"])

    def filter(self, **config):
        return self.start_filter(self.dovecot.address, **config)

    def assertDelivered(self, user, message, count=1):
        """user's INBOX holds `count` messages, the last one exactly `message`."""
        stored = self.dovecot.messages(user)
        self.assertEqual(len(stored), count, "messages in %s's INBOX" % user)
        self.assertEqual(stored_body(stored[-1]), as_stored(message))

    def assertNothingDelivered(self, *users):
        for u in users:
            self.assertEqual(self.dovecot.messages(u), [], "%s got a message" % u)


class DeliveryTest(ProxyTestCase):

    def test_single_recipient(self):
        f = self.filter()
        msg = make_message(4096)
        mail, rcpts, data = deliver(f.address, SENDER, [ALICE], msg)
        self.assertReply(mail, 250)
        self.assertReply(rcpts[0], 250, "2.1.5")
        self.assertEqual(len(data), 1)
        self.assertReply(data[0], 250, "2.0.0")
        self.assertIn(ALICE, data[0].text, "Dovecot's reply text is relayed")
        self.assertDelivered("alice", msg)
        self.assertNothingDelivered("bob", "carol")

    def test_multiple_recipients_each_get_a_copy(self):
        f = self.filter()
        msg = make_message(8000)
        _, rcpts, data = deliver(f.address, SENDER, [ALICE, BOB, CAROL], msg)
        self.assertEqual([r.code for r in rcpts], [250, 250, 250])
        self.assertEqual([r.code for r in data], [250, 250, 250])
        for user, r in zip([ALICE, BOB, CAROL], data):
            self.assertIn(user, r.text, "replies come in recipient order")
        for user in ("alice", "bob", "carol"):
            self.assertDelivered(user, msg)

    def test_unknown_user_rejected_at_rcpt_with_dovecots_reply(self):
        f = self.filter()
        msg = make_message(2000)
        _, rcpts, data = deliver(f.address, SENDER, [ALICE, NOBODY, BOB], msg)
        self.assertReply(rcpts[0], 250)
        self.assertReply(rcpts[1], 550, "5.1.1")
        self.assertIn("nobody@example.com", rcpts[1].text)
        self.assertReply(rcpts[2], 250)
        # one final reply per accepted recipient only
        self.assertEqual([r.code for r in data], [250, 250])
        self.assertDelivered("alice", msg)
        self.assertDelivered("bob", msg)

    def test_only_unknown_users_then_data_refused(self):
        f = self.filter()
        c = self.client(f.address)
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % NOBODY), 550, "5.1.1")
        r = c.command("DATA")
        self.assertEqual(r.code // 100, 5, r)
        self.assertNotEqual(r.code, 354)

    def test_different_final_replies_per_recipient_after_data(self):
        f = self.filter()
        msg = make_message(20000)            # above the 1 KB quota of dave
        _, rcpts, data = deliver(f.address, SENDER, [ALICE, FULL, BOB], msg)
        self.assertEqual([r.code for r in rcpts], [250, 250, 250])
        self.assertEqual(len(data), 3)
        self.assertReply(data[0], 250, "2.0.0")
        # Dovecot's own quota reply, code and enhanced code kept
        self.assertReply(data[1], 552, "5.2.2")
        self.assertIn(FULL, data[1].text)
        self.assertReply(data[2], 250, "2.0.0")
        self.assertDelivered("alice", msg)
        self.assertDelivered("bob", msg)
        self.assertNothingDelivered("dave")

    def test_pipelined_client(self):
        f = self.filter()
        msg = make_message(6000)
        c = LmtpClient(f.address)
        self.addCleanup(c.close)
        ehlo_lines = ("LHLO client.example.org\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n"
                      "RCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, ALICE, NOBODY, BOB))
        c.send(ehlo_lines)
        lhlo = c.reply()
        self.assertReply(lhlo, 250)
        self.assertIn("250-PIPELINING", lhlo.lines)
        self.assertReply(c.reply(), 250)                 # MAIL
        self.assertReply(c.reply(), 250)                 # RCPT alice
        self.assertReply(c.reply(), 550, "5.1.1")        # RCPT nobody
        self.assertReply(c.reply(), 250)                 # RCPT bob
        self.assertReply(c.reply(), 354)                 # DATA
        # message, final dot, and the next commands in one write
        c.send(c.dot_stuff(msg) + b"RSET\r\nNOOP\r\nQUIT\r\n")
        self.assertReply(c.reply(), 250, "2.0.0")
        self.assertReply(c.reply(), 250, "2.0.0")
        self.assertReply(c.reply(), 250)                 # RSET
        self.assertReply(c.reply(), 250)                 # NOOP
        self.assertReply(c.reply(), 221)                 # QUIT
        self.assertTrue(c.is_closed())
        self.assertDelivered("alice", msg)
        self.assertDelivered("bob", msg)

    def test_pipelined_recipients_around_rset(self):
        # RCPT replies are relayed in order even when the RCPTs went to
        # Dovecot pipelined, and an RSET in the same write ends that
        # transaction before the next one starts.
        f = self.filter()
        msg = make_message(3000)
        c = self.client(f.address)
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nRSET\r\n"
               "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\n"
               "RCPT TO:<%s>\r\nDATA\r\n"
               % (SENDER, ALICE, NOBODY, BOB, SENDER, NOBODY, CAROL, FULL, "nobody2@example.com"))
        codes = [c.reply().code for _ in range(11)]
        self.assertEqual(codes, [250, 250, 550, 250, 250, 250, 550, 250, 250, 550, 354])
        data = c.send_data(msg, 2)
        self.assertReply(data[0], 250, "2.0.0")      # carol
        self.assertReply(data[1], 552, "5.2.2")      # dave, over quota
        self.assertDelivered("carol", msg)
        self.assertNothingDelivered("alice", "bob", "dave")

    def test_many_pipelined_recipients_keep_their_order(self):
        # More RCPTs in one write than lmtpfilter keeps outstanding at
        # Dovecot: every reply still belongs to its own recipient.
        f = self.filter()
        known = {5: ALICE, 40: BOB, 69: CAROL}
        rcpts = [known.get(i, "nobody%d@example.com" % i) for i in range(70)]
        msg = make_message(2000)
        c = self.client(f.address)
        _, replies, data = c.transaction(SENDER, rcpts, msg, pipelined=True)
        self.assertEqual([r.code for r in replies],
                         [250 if i in known else 550 for i in range(70)])
        self.assertEqual([r.code for r in data], [250, 250, 250])
        for reply, rcpt in zip(data, [ALICE, BOB, CAROL]):
            self.assertIn("<%s>" % rcpt, reply.text)
        for user in ("alice", "bob", "carol"):
            self.assertDelivered(user, msg)

    def test_connection_reuse_with_rset_and_fresh_xforward(self):
        f = self.filter(xforward=True)
        c = self.client(f.address)
        first, second = make_message(3000, "first"), make_message(5000, "second")
        _, _, data = c.transaction(SENDER, [ALICE], first, xforward=[
            {"NAME": "mail.example.org", "ADDR": "203.0.113.25", "PORT": "40000"},
            {"PROTO": "ESMTP", "HELO": "mail.example.org", "IDENT": "4QID1AAA",
             "SOURCE": "REMOTE"}])
        self.assertEqual([r.code for r in data], [250])
        self.assertReply(c.command("RSET"), 250)
        _, _, data = c.transaction("other@example.net", [ALICE, BOB], second, xforward=[
            {"NAME": "[UNAVAILABLE]", "ADDR": "198.51.100.7", "PORT": "40001"},
            {"PROTO": "ESMTP", "HELO": "relay.example.net", "IDENT": "4QID2BBB",
             "SOURCE": "REMOTE"}])
        self.assertEqual([r.code for r in data], [250, 250])
        self.assertReply(c.quit(), 221)
        stored = self.dovecot.messages("alice")
        self.assertEqual([stored_body(m) for m in stored], [as_stored(first), as_stored(second)])
        self.assertDelivered("bob", second)
        one = parse_log_fields(f.wait_log("ident=4QID1AAA")[0])
        two = parse_log_fields(f.wait_log("ident=4QID2BBB")[0])
        self.assertEqual(one["from"], SENDER)
        self.assertEqual(one.get("client"), "203.0.113.25")
        self.assertEqual(two["from"], "other@example.net")
        self.assertEqual(two.get("client"), "198.51.100.7",
                         "the second transaction uses its own XFORWARD, not the first")

    def test_xforward_cleared_after_transaction(self):
        f = self.filter(xforward=True)
        c = self.client(f.address)
        msg = make_message(1000)
        c.transaction(SENDER, [ALICE], msg, xforward=[{"ADDR": "203.0.113.9", "IDENT": "QIDX1"}])
        _, _, data = c.transaction("third@example.net", [ALICE], msg)
        self.assertEqual([r.code for r in data], [250])
        line = f.wait_log("from=third@example.net")[0]
        fields = parse_log_fields(line)
        self.assertNotEqual(fields.get("ident"), "QIDX1", line)
        self.assertNotEqual(fields.get("client"), "203.0.113.9", line)


class DownstreamFailureTest(ProxyTestCase):

    def assertNeverAccepted(self, mail, rcpts, data):
        """No 2xx final reply; the refusal is temporary (4xx) so Postfix
        keeps the message queued."""
        replies = [mail] + rcpts + data
        self.assertFalse(any(r.code // 100 == 2 for r in data), replies)
        refusals = [r for r in replies if r.code not in (250, 354)]
        self.assertTrue(refusals, replies)
        for r in refusals:
            self.assertEqual(r.code // 100, 4, replies)

    def test_dovecot_not_running(self):
        self.dovecot.stop()
        f = self.filter()
        mail, rcpts, data = deliver(f.address, SENDER, [ALICE, BOB], make_message(2000))
        self.assertNeverAccepted(mail, rcpts, data)
        self.assertTrue(f.running())
        # once Dovecot is back, the same daemon delivers
        self.dovecot.start()
        msg = make_message(2500)
        _, _, data = deliver(f.address, SENDER, [ALICE], msg)
        self.assertEqual([r.code for r in data], [250])
        self.assertDelivered("alice", msg)

    def test_downstream_socket_missing(self):
        f = self.start_filter("unix:" + os.path.join(self.tmpdir, "no-such-socket"))
        mail, rcpts, data = deliver(f.address, SENDER, [ALICE], make_message(500))
        self.assertNeverAccepted(mail, rcpts, data)
        self.assertIn("4.4.1", [r.enhanced for r in [mail] + rcpts + data])

    def test_dovecot_killed_while_client_streams_data(self):
        f = self.filter(spool_memory_limit=65536)
        msg = make_message(8 * 1024 * 1024)
        c = self.client(f.address)
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % BOB), 250)
        self.assertReply(c.command("DATA"), 354)
        payload = c.dot_stuff(msg)
        half = len(payload) // 2
        c.send(payload[:half])
        self.dovecot.kill()
        c.send(payload[half:])
        data = [c.reply(), c.reply()]
        for r in data:
            self.assertEqual(r.code // 100, 4, data)
        self.assertTrue(f.running())
        self.assertNothingDelivered("alice", "bob")

    def test_dovecot_stopped_before_final_dot(self):
        f = self.filter()
        msg = make_message(50000)
        c = self.client(f.address)
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 250)
        self.assertReply(c.command("DATA"), 354)
        payload = c.dot_stuff(msg)
        c.send(payload[:-3])
        self.dovecot.stop()
        c.send(payload[-3:])
        r = c.reply()
        self.assertEqual(r.code // 100, 4, r)
        self.assertNothingDelivered("alice")

    def fake_downstream(self, **kw):
        fake = FakeLmtpServer(self.tmpdir, **kw)
        self.addCleanup(fake.stop)
        return fake

    def test_downstream_drops_connection_mid_data(self):
        for chunking in (False, True):
            with self.subTest(chunking=chunking):
                fake = self.fake_downstream(on_data="drop", drop_after=100000, chunking=chunking)
                f = self.start_filter(fake.address)
                _, rcpts, data = deliver(f.address, SENDER, [ALICE, BOB], make_message(2000000))
                self.assertEqual([r.code for r in rcpts], [250, 250])
                self.assertEqual(len(data), 2)
                for r in data:
                    self.assertEqual(r.code // 100, 4, data)
                self.assertGreater(len(fake.received), 100000, "the message was being sent")
                self.assertIn(b"BDAT" if chunking else b"DATA",
                              [c.split(b" ")[0] for c in fake.commands])
                f.stop()

    def test_downstream_silent_after_data_times_out(self):
        for chunking in (False, True):
            with self.subTest(chunking=chunking):
                fake = self.fake_downstream(on_data="stall", chunking=chunking)
                f = self.start_filter(fake.address, timeout=2)
                t0 = time.monotonic()
                _, _, data = deliver(f.address, SENDER, [ALICE, BOB], make_message(5000))
                self.assertLess(time.monotonic() - t0, 15)
                self.assertEqual(len(data), 2)
                for r in data:
                    self.assertEqual(r.code // 100, 4, data)
                f.stop()

    def test_downstream_drops_connection_during_pipelined_rcpts(self):
        fake = self.fake_downstream(on_data="accept", drop_at_rcpt=3)
        f = self.start_filter(fake.address)
        c = self.client(f.address)
        c.send("MAIL FROM:<%s>\r\n" % SENDER + "".join(
            "RCPT TO:<r%d@example.com>\r\n" % i for i in range(5)) + "DATA\r\n")
        replies = [c.reply() for _ in range(7)]
        self.assertEqual([r.code for r in replies[:3]], [250, 250, 250])
        for r in replies[3:6]:
            self.assertEqual(r.code // 100, 4, replies)
        self.assertEqual(replies[6].code, 354)
        data = c.send_data(make_message(1000), 2)
        for r in data:
            self.assertEqual(r.code // 100, 4, data)
        self.assertEqual(fake.messages, [])
        self.assertTrue(f.running())

    def test_pipelined_rcpts_reach_downstream_together(self):
        fake = self.fake_downstream(on_data="accept")
        f = self.start_filter(fake.address)
        c = self.client(f.address)
        rcpts = ["r%d@example.com" % i for i in range(6)]
        _, replies, data = c.transaction(SENDER, rcpts, make_message(1000), pipelined=True)
        self.assertEqual([r.code for r in replies + data], [250] * 12)
        # MAIL with the first RCPT, then the other five in one write
        rest = b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts[1:])
        self.assertIn(rest, fake.reads)

    def test_refused_mail_is_every_recipients_answer(self):
        # MAIL goes to Dovecot with the first RCPT: its refusal is what each
        # recipient is told, not the "MAIL first" error Dovecot gives the RCPT.
        fake = self.fake_downstream(on_data="accept",
                                    mail_reply=b"451 4.3.5 Sender checks unavailable")
        f = self.start_filter(fake.address)
        mail, rcpts, data = deliver(f.address, SENDER, [ALICE, BOB], make_message(1000))
        self.assertEqual(mail.code, 250)
        self.assertEqual([(r.code, r.enhanced) for r in rcpts], [(451, "4.3.5")] * 2)
        self.assertEqual(data, [])
        self.assertEqual(fake.messages, [])

    def test_connection_closed_by_downstream_between_transactions(self):
        # Dovecot may close an idle connection kept for the next
        # transaction: that transaction goes out on a new one.
        fake = self.fake_downstream(on_data="accept", chunking=True, close_after=1)
        f = self.start_filter(fake.address)
        c = self.client(f.address)
        first, second = make_message(1000), make_message(1200)
        _, rcpts, data = c.transaction(SENDER, [ALICE], first)
        self.assertEqual([r.code for r in rcpts + data], [250, 250])
        time.sleep(0.2)          # the close has reached lmtpfilter's socket
        _, rcpts, data = c.transaction(SENDER, [ALICE, BOB], second)
        self.assertEqual([r.code for r in rcpts + data], [250, 250, 250, 250])
        self.assertEqual(fake.messages, [first, second])
        self.assertEqual(fake.connections, 2)


class DownstreamProtocolTest(ProxyTestCase):
    """How the message travels to a downstream with and without CHUNKING."""

    MESSAGE = (b"From: a@example.org\r\nSubject: dots\r\n\r\n.leading dot\r\n"
               b"..two dots\r\n.\r\n\xe9 8-bit\r\nlast line\r\n")

    def deliver_to_fake(self, message, chunking, **config):
        """message to two recipients through lmtpfilter into a downstream
        that offers CHUNKING or not; checks it arrived intact."""
        fake = FakeLmtpServer(self.tmpdir, on_data="accept", chunking=chunking)
        self.addCleanup(fake.stop)
        f = self.start_filter(fake.address, **config)
        _, rcpts, data = deliver(f.address, SENDER, [ALICE, BOB], message)
        self.assertEqual([r.code for r in rcpts + data], [250] * 4)
        self.assertEqual(fake.messages, [message])
        f.stop()
        return fake

    def test_bdat_when_chunking_offered(self):
        fake = self.deliver_to_fake(self.MESSAGE, chunking=True)
        # the exact size, the bytes unstuffed (checked above), no DATA
        self.assertIn(b"BDAT %d LAST" % len(self.MESSAGE), fake.commands)
        self.assertNotIn(b"DATA", fake.commands)

    def test_data_without_chunking(self):
        fake = self.deliver_to_fake(self.MESSAGE, chunking=False)
        self.assertIn(b"DATA", fake.commands)
        # dot-stuffed on the wire, intact after (checked above)
        self.assertIn(b"\r\n..leading dot\r\n...two dots\r\n..\r\n", fake.received)

    def test_message_spooled_to_file(self):
        # Above spool_memory_limit the body is read back from the file.
        message = self.MESSAGE + b"".join(b".%05d line\r\n" % i for i in range(5000))
        for chunking in (False, True):
            with self.subTest(chunking=chunking):
                self.deliver_to_fake(message, chunking, spool_memory_limit=1024)

    def test_empty_message(self):
        for chunking in (False, True):
            with self.subTest(chunking=chunking):
                self.deliver_to_fake(b"", chunking)


class ContentTest(ProxyTestCase):

    def test_byte_for_byte(self):
        # Lines that tempt a proxy to change something: dots (stuffed on the
        # wire), trailing blanks, tabs, 8-bit bytes, a 998-byte line, folded
        # headers, duplicate headers, an empty last line.
        msg = (b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
               b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.org>\r\n"
               b"To: alice@example.com,\r\n\t bob@example.com  \r\n"
               b"Subject: caf\xc3\xa9 \xe9 raw 8-bit\r\n"
               b"X-Dup: 1\r\nX-Dup: 2\r\n"
               b"Authentication-Results: mx.example.com; spf=pass\r\n"
               b"\r\n"
               b".\r\n..\r\n...leading dots\r\n.\tdot tab\r\n"
               b"trailing blanks   \r\n\ttab line\r\n"
               b"8-bit body \xff\xfe\x80\r\n"
               + b"L" * 998 + b"\r\n"
               + b"\r\n\r\n")
        f = self.filter()
        _, _, data = deliver(f.address, SENDER, [ALICE], msg)
        self.assertEqual([r.code for r in data], [250])
        # Dovecot stores LF line endings (mail_save_crlf = no): compare with
        # the message as Dovecot stores it, and with a copy sent to Dovecot
        # directly, so that any change lmtpfilter makes shows up.
        _, _, data = deliver(self.dovecot.address, SENDER, [BOB], msg)
        self.assertEqual([r.code for r in data], [250])
        through = stored_body(self.dovecot.messages("alice")[0])
        direct = stored_body(self.dovecot.messages("bob")[0])
        self.assertEqual(through, as_stored(msg))
        self.assertEqual(through, direct)

    def test_50mb_message_delivered_intact(self):
        f = self.filter()
        msg = make_message(50 * 1000 * 1000)
        _, rcpts, data = deliver(f.address, SENDER, [ALICE], msg)
        self.assertEqual([r.code for r in data], [250], data)
        stored = self.dovecot.messages("alice")
        self.assertEqual(len(stored), 1)
        self.assertTrue(stored_body(stored[0]) == as_stored(msg),
                        "50 MB message differs after delivery")

    def test_size_advertised_and_enforced_at_mail(self):
        f = self.filter(max_message_size=100000)
        c = LmtpClient(f.address)
        self.addCleanup(c.close)
        lhlo = c.lhlo()
        self.assertIn("250-SIZE 100000", lhlo.lines + [lhlo.lines[-1].replace("250 ", "250-")])
        self.assertReply(c.command("MAIL FROM:<%s> SIZE=100001" % SENDER), 552, "5.3.4")
        # a SIZE within the limit is accepted and not passed on to Dovecot
        # (which answers 555 to SIZE=)
        msg = make_message(50000)
        _, rcpts, data = c.transaction(SENDER, [ALICE], msg, mail_params="SIZE=%d" % len(msg))
        self.assertEqual([r.code for r in rcpts + data], [250, 250])
        self.assertDelivered("alice", msg)

    def test_size_enforced_on_actual_body(self):
        f = self.filter(max_message_size=100000)
        c = self.client(f.address)
        big = make_message(150000)
        _, rcpts, data = c.transaction(SENDER, [ALICE, BOB], big)
        self.assertEqual([r.code for r in rcpts], [250, 250])
        self.assertEqual(len(data), 2, "one reply per recipient, after the final dot")
        for r in data:
            self.assertReply(r, 552, "5.3.4")
        self.assertNothingDelivered("alice", "bob")
        # the connection is still in step: the next transaction works
        msg = make_message(1000)
        _, _, data = c.transaction(SENDER, [ALICE], msg)
        self.assertEqual([r.code for r in data], [250])
        self.assertDelivered("alice", msg)

    def test_spool_failure_answered_after_the_final_dot(self):
        spool = os.path.join(self.tmpdir, "spool")
        os.mkdir(spool)
        f = self.filter(spool_dir=spool, spool_memory_limit=10000)
        os.rmdir(spool)             # a body above the memory limit has nowhere to go
        c = self.client(f.address)
        _, rcpts, data = c.transaction(SENDER, [ALICE, BOB], make_message(50000))
        self.assertEqual([r.code for r in rcpts], [250, 250])
        self.assertEqual(len(data), 2, "one reply per recipient, after the final dot")
        for r in data:
            self.assertReply(r, 452, "4.3.1")
        self.assertNothingDelivered("alice", "bob")
        self.assertEqual(parse_log_fields(f.wait_log("status=")[0])["status"], "spool-error")
        # in step: a message that fits in memory still goes through
        msg = make_message(1000)
        _, _, data = c.transaction(SENDER, [ALICE], msg)
        self.assertEqual([r.code for r in data], [250])
        self.assertDelivered("alice", msg)


class ProcessTest(ProxyTestCase):

    def test_sigterm_with_idle_connection(self):
        f = self.filter()
        c = self.client(f.address)
        t0 = time.monotonic()
        f.proc.send_signal(signal.SIGTERM)
        f.proc.wait(15)
        self.assertEqual(f.proc.returncode, 0, f.log())
        self.assertLess(time.monotonic() - t0, 10, "idle connections do not delay shutdown")
        self.assertReply(c.reply(timeout=2), 421, "4.3.2")
        self.assertTrue(c.is_closed(2))

    def test_sigterm_lets_transaction_in_flight_finish(self):
        f = self.filter()
        c = self.client(f.address)
        msg = make_message(200000)
        self.assertReply(c.command("MAIL FROM:<%s>" % SENDER), 250)
        self.assertReply(c.command("RCPT TO:<%s>" % ALICE), 250)
        self.assertReply(c.command("DATA"), 354)
        payload = c.dot_stuff(msg)
        c.send(payload[:1000])
        f.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # no new connections once shutting down
        with self.assertRaises(Exception):
            c2 = LmtpClient(f.address, timeout=2)
            c2.close()
        c.send(payload[1000:])
        self.assertReply(c.reply(), 250, "2.0.0")
        self.assertDelivered("alice", msg)
        f.proc.wait(15)
        self.assertEqual(f.proc.returncode, 0)

    def test_max_connections(self):
        f = self.filter(max_connections=2)
        # the harness's readiness probe (connect, close) holds a slot until
        # its session has seen the end of the connection
        time.sleep(0.5)
        a = self.client(f.address)
        b = self.client(f.address)
        over = LmtpClient(f.address, read_greeting=False)
        self.addCleanup(over.close)
        r = over.reply()
        self.assertReply(r, 421, "4.3.2")
        self.assertTrue(over.is_closed())
        # the two admitted connections still work
        msg = make_message(1000)
        for c in (a, b):
            _, _, data = c.transaction(SENDER, [ALICE], msg)
            self.assertEqual([r.code for r in data], [250])
        # a slot freed by QUIT is available again
        a.quit()
        time.sleep(0.3)
        c = self.client(f.address)
        self.assertEqual(c.greeting.code, 220)

    def test_one_log_line_per_transaction(self):
        f = self.filter(xforward=True)
        c = self.client(f.address)
        msg = make_message(20000)
        c.transaction(SENDER, [ALICE, NOBODY, FULL], msg, xforward=[
            {"ADDR": "203.0.113.25", "IDENT": "4QLOG1"}])
        c.quit()
        f.wait_log("ident=")
        time.sleep(0.2)
        lines = f.log_lines("ident=")
        self.assertEqual(len(lines), 1, lines)
        fields = parse_log_fields(lines[0])
        self.assertEqual(fields["ident"], "4QLOG1")
        self.assertEqual(fields["from"], SENDER)
        rcpts = dict(r.rsplit(":", 1) for r in fields["rcpts"].split(","))
        self.assertEqual(rcpts, {ALICE: "250", NOBODY: "550", FULL: "552"})
        self.assertEqual(int(fields["size"]), len(msg))
        self.assertGreaterEqual(int(fields["ms"]), 0)


if __name__ == "__main__":
    unittest.main()
