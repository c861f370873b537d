"""End to end through a real Postfix 3.7: swaks in a network namespace sends
over SMTP from an outside address (the seed case: 184.72.226.23, HELO
www.wormly.com); Postfix, in a namespace of its own, hands the message to
lmtpfilter over LMTP with XFORWARD; lmtpfilter hands it to Dovecot, whose
sieve_before is the sample quarantine script.

Needs root (network namespaces), as CI has."""
import email.parser
import email.policy
import os
import pwd
import time
import unittest

import authres

import harness

SAMPLES = os.path.join(harness.SOURCE_DIR, "samples")
SEED_CLIENT = "184.72.226.23"
SEED_HELO = "www.wormly.com"
PARTNER_CLIENT = "192.0.2.10"       # inside example.com's SPF range
SERVER_ADDRESS = "203.0.113.1"
AUTHSERV_ID = "mail.example.com"
DELIVERY_TIMEOUT = 20.0             # seconds from "queued" to "in the maildir"
SETTLE_TIME = 1.0                   # how long a duplicate would need to show up

ZONE = [
    'local-zone: "example.com." static',
    "local-data: 'example.com. TXT \"v=spf1 ip4:192.0.2.0/24 -all\"'",
    "local-data: '_dmarc.example.com. TXT \"v=DMARC1; p=reject\"'",
]
NESTED_GROUPS = 3000                # levels that overflowed a session's stack in GMime


def message(sender, recipient, subject, extra_headers=""):
    return harness.crlf("%sFrom: <%s>\nTo: <%s>\nSubject: %s\n"
                        "Date: Sat, 28 Nov 2026 09:00:00 +0000\n"
                        "Message-ID: <%s@test.example>\n\n"
                        "Hello.\n" % (extra_headers, sender, recipient, subject,
                                      subject.replace(" ", "-")))



def header_fields(stored):
    """(name, value) of every header field, in order, values unfolded."""
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(stored)
    return [(k, " ".join(v.split())) for k, v in msg.items()]


class PostfixEndToEndTest(harness.HarnessTestCase):

    def setUp(self):
        super().setUp()
        self.ns = self.start_namespaces((SEED_CLIENT, PARTNER_CLIENT), SERVER_ADDRESS)
        self.dns = self.start_unbound(ZONE)
        self.dovecot = self.start_dovecot(
            users=("owner@example.com", "bob@example.net"),
            sieve_before=os.path.join(SAMPLES, "sieve", "quarantine.sieve"))
        self.filter = self.start_filter(
            self.dovecot.address, listen_mode="0666", authserv_id=AUTHSERV_ID,
            mta_hostnames=AUTHSERV_ID, dns_servers=self.dns.server,
            domains={"example.com": {"mode": "annotate"}})
        self.smtp = "%s:25" % SERVER_ADDRESS
        self.postfix = self.start_postfix(self.filter.address, self.smtp,
                                          domains=("example.com", "example.net"),
                                          netns=self.ns.server)

    def send(self, sender, recipient, msg, source=SEED_CLIENT, helo=SEED_HELO):
        r = harness.swaks(self.smtp, sender, [recipient], msg, helo,
                          source=source, netns=self.ns.client)
        self.assertEqual(r.returncode, 0, r)
        self.assertIsNotNone(r.queue_id, r)
        return r.queue_id

    def wait_delivered(self, user, folder="INBOX", count=1):
        harness.wait_for(lambda: len(self.dovecot.messages(user, folder)) >= count,
                         DELIVERY_TIMEOUT, "%d message(s) in %s/%s" % (count, user, folder))
        return self.dovecot.messages(user, folder)

    def transaction_log(self, queue_id):
        lines = self.filter.wait_log("ident=%s client=" % queue_id)
        self.assertEqual(len(lines), 1, lines)
        return harness.parse_log_fields(lines[0])

    def our_results(self, stored):
        """The Authentication-Results with our authserv-id, parsed; and the
        Received-SPF values."""
        fields = header_fields(stored)
        ours = []
        for name, value in fields:
            if name.lower() == "authentication-results":
                parsed = authres.AuthenticationResultsHeader.parse(
                    "Authentication-Results: " + value)
                if parsed.authserv_id == AUTHSERV_ID:
                    ours.append(parsed)
        spf = [v for n, v in fields if n.lower() == "received-spf"]
        return ours, spf

    def assert_our_headers_on_top(self, stored, queue_id, quarantine=False):
        """Below Dovecot's own lines: our A-R, our Received-SPF, our
        X-Disposition-Quarantine when `quarantine`, then Postfix's
        Received for this queue id."""
        names = [n.lower() for n, _ in header_fields(harness.stored_body(stored))]
        ours = ["authentication-results", "received-spf"] + (["x-disposition-quarantine"] if quarantine else [])
        self.assertEqual(names[:len(ours) + 1], ours + ["received"], stored)
        received = [v for n, v in header_fields(stored) if n.lower() == "received"]
        self.assertIn("id %s" % queue_id, received[1])

    # -- Postfix, XFORWARD, delivery ----------------------------------------

    def test_xforward_gives_queue_id_and_client_and_message_is_delivered(self):
        msg = message("someone@example.org", "bob@example.net", "plain delivery")
        queue_id = self.send("someone@example.org", "bob@example.net", msg)
        stored = self.wait_delivered("bob@example.net")
        self.assertEqual(len(stored), 1)
        fields = self.transaction_log(queue_id)
        self.assertEqual(fields["ident"], queue_id)
        self.assertEqual(fields["client"], SEED_CLIENT)
        # Postfix's lmtp client, named by the credentials of its process
        self.assertRegex(fields["peer"], r"^unix:pid=[0-9]+,uid=%d$" % pwd.getpwnam("postfix").pw_uid)
        self.assertEqual(fields["from"], "someone@example.org")
        self.assertEqual(fields["rcpts"], "bob@example.net:250")
        self.assertEqual(fields["status"], "done")
        # example.net has not opted in: what Postfix handed over, unchanged
        # (Postfix's Received line on top of the message swaks sent).
        body = harness.stored_body(stored[0])
        self.assertTrue(body.startswith(b"Received: from %s (unknown [%s])\n\tby %s (Postfix) "
                                        b"with ESMTP id %s\n"
                                        % (SEED_HELO.encode(), SEED_CLIENT.encode(),
                                           AUTHSERV_ID.encode(), queue_id.encode())), body)
        self.assertTrue(body.endswith(harness.as_stored(msg)), body)
        self.assertEqual(self.postfix.queue(), [])
        self.postfix.wait_log("%s: removed" % queue_id)

    def test_lmtpfilter_down_postfix_defers_then_delivers_once(self):
        self.filter.stop()
        msg = message("someone@example.org", "bob@example.net", "deferred delivery")
        queue_id = self.send("someone@example.org", "bob@example.net", msg)

        def deferred():
            return [m for m in self.postfix.queue()
                    if m["queue_id"] == queue_id and m["queue_name"] == "deferred"]
        harness.wait_for(deferred, DELIVERY_TIMEOUT, "the message in Postfix's deferred queue")
        entry = deferred()[0]
        self.assertEqual([r["address"] for r in entry["recipients"]], ["bob@example.net"])
        self.assertIn(self.filter.socket_path, entry["recipients"][0]["delay_reason"])
        self.postfix.wait_log("%s: to=<bob@example.net>" % queue_id)
        self.assertIn("status=deferred", self.postfix.log_lines("%s: to=" % queue_id)[0])
        self.assertEqual(self.dovecot.messages("bob@example.net"), [])

        self.filter.start()
        self.postfix.flush()
        stored = self.wait_delivered("bob@example.net")
        harness.wait_for(lambda: self.postfix.queue() == [], DELIVERY_TIMEOUT,
                         "an empty Postfix queue")
        time.sleep(SETTLE_TIME)
        self.assertEqual(len(self.dovecot.messages("bob@example.net")), 1)
        self.assertTrue(harness.stored_body(stored[0]).endswith(harness.as_stored(msg)))
        sent = [l for l in self.postfix.log_lines("%s: to=<bob@example.net>" % queue_id)
                if "status=sent" in l]
        self.assertEqual(len(sent), 1, self.postfix.log())
        fields = self.transaction_log(queue_id)
        self.assertEqual(fields["client"], SEED_CLIENT)
        self.assertEqual(fields["status"], "done")

    # -- annotate mode: SPF verdict and the sample Sieve script -------------

    def test_seed_spoof_fails_spf_and_lands_in_quarantine(self):
        # Our own address, from an outside server, carrying a forged pass
        # with our authserv-id: the forgery must not save it.
        forged = "Authentication-Results: %s; spf=pass smtp.mailfrom=owner@example.com\n" % AUTHSERV_ID
        msg = message("owner@example.com", "owner@example.com", "account suspended", forged)
        queue_id = self.send("owner@example.com", "owner@example.com", msg)
        stored = self.wait_delivered("owner@example.com", "Quarantine")
        self.assertEqual(len(stored), 1)
        self.assertEqual(self.dovecot.messages("owner@example.com"), [])

        ours, received_spf = self.our_results(stored[0])
        self.assertEqual(len(ours), 1, stored[0])
        spf = [r for r in ours[0].results if r.method == "spf"]
        self.assertEqual(len(spf), 1, stored[0])
        self.assertEqual(spf[0].result, "fail")
        props = {(p.type, p.name): p.value for p in spf[0].properties}
        self.assertEqual(props[("smtp", "mailfrom")], "owner@example.com")
        self.assertEqual(props[("smtp", "helo")], SEED_HELO)
        self.assertEqual(len(received_spf), 1, stored[0])
        self.assertTrue(received_spf[0].startswith("fail "), received_spf[0])
        self.assertIn("client-ip=%s;" % SEED_CLIENT, received_spf[0])
        self.assertIn("helo=%s;" % SEED_HELO, received_spf[0])
        self.assert_our_headers_on_top(stored[0], queue_id, quarantine=True)
        renamed = [v for n, v in header_fields(stored[0])
                   if n.lower() == "x-original-authentication-results"]
        self.assertEqual(renamed, ["%s; spf=pass smtp.mailfrom=owner@example.com" % AUTHSERV_ID])

        fields = self.transaction_log(queue_id)
        self.assertEqual(fields["client"], SEED_CLIENT)
        self.assertEqual(fields["spf"], "fail")

    def test_legitimate_sender_passes_spf_and_lands_in_inbox(self):
        msg = message("news@example.com", "owner@example.com", "monday meeting")
        queue_id = self.send("news@example.com", "owner@example.com", msg,
                             source=PARTNER_CLIENT, helo="mx.example.com")
        stored = self.wait_delivered("owner@example.com")
        self.assertEqual(len(stored), 1)
        self.assertEqual(self.dovecot.messages("owner@example.com", "Quarantine"), [])

        ours, received_spf = self.our_results(stored[0])
        self.assertEqual(len(ours), 1, stored[0])
        spf = [r for r in ours[0].results if r.method == "spf"]
        self.assertEqual([r.result for r in spf], ["pass"], stored[0])
        self.assertEqual(len(received_spf), 1, stored[0])
        self.assertTrue(received_spf[0].startswith("pass "), received_spf[0])
        self.assertIn("client-ip=%s;" % PARTNER_CLIENT, received_spf[0])
        self.assert_our_headers_on_top(stored[0], queue_id)
        # The body and the sender's headers arrive as sent.
        self.assertTrue(stored[0].endswith(harness.as_stored(msg)), stored[0])
        self.assertEqual(self.transaction_log(queue_id)["client"], PARTNER_CLIENT)

    # -- a From field built to crash the address parser -----------------------

    def test_deeply_nested_groups_in_from_are_delivered_once_and_the_daemon_lives(self):
        # 3,000 nested groups around a spoofed example.com address (~9 KB,
        # folded): while Postfix keeps such a message queued, a crash would
        # recur on every queue run. It must be evaluated (an invalid From
        # naming a p=reject domain), filed once, and the daemon keep running.
        pid = self.filter.pid()
        from_value = harness.folded(["g:"] * NESTED_GROUPS + ["ceo@example.com"]
                            + [";" * 60] * (NESTED_GROUPS // 60))
        self.assertGreater(len(from_value), 9000)
        msg = harness.crlf("From: %s\nTo: <owner@example.com>\nSubject: nested\n"
                           "Date: Sat, 28 Nov 2026 09:00:00 +0000\n"
                           "Message-ID: <nested-groups@test.example>\n\nHello.\n" % from_value)
        queue_id = self.send("someone@example.org", "owner@example.com", msg)
        stored = self.wait_delivered("owner@example.com", "Quarantine")
        harness.wait_for(lambda: self.postfix.queue() == [], DELIVERY_TIMEOUT,
                         "an empty Postfix queue")
        time.sleep(SETTLE_TIME)
        self.assertEqual(len(self.dovecot.messages("owner@example.com", "Quarantine")), 1)
        self.assertEqual(self.dovecot.messages("owner@example.com"), [])
        self.assertTrue(self.filter.running(), self.filter.log()[-3000:])
        self.assertEqual(self.filter.pid(), pid)
        sent = [l for l in self.postfix.log_lines("%s: to=<owner@example.com>" % queue_id)
                if "status=sent" in l]
        self.assertEqual(len(sent), 1, self.postfix.log())

        ours, _ = self.our_results(stored[0])
        self.assertEqual(len(ours), 1, stored[0][:2000])
        dmarc = [r for r in ours[0].results if r.method == "dmarc"]
        self.assertEqual([r.result for r in dmarc], ["fail"], stored[0][:2000])
        self.assertEqual([(p.type, p.name, p.value) for p in dmarc[0].properties],
                         [("header", "from", "example.com")])
        self.assertIn(b"dmarc=fail (p=reject dis=reject from=invalid)", stored[0])
        fields = self.transaction_log(queue_id)
        self.assertEqual(fields["status"], "done")
        self.assertEqual(fields["dmarc"], "fail")


if __name__ == "__main__":
    unittest.main()
