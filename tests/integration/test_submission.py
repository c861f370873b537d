"""Authenticated submissions from our own users, end to end: unbound with
example.com publishing DMARC p=reject and SPF -all, the real Dovecot whose
sieve_before is the sample quarantine script, lmtpfilter in between.

A user of example.com who authenticated at our MTA (its Received line says
"with ESMTPSA") writes to a colleague from a roaming address that no SPF
record lists. Whether the facts come from XFORWARD or from the Received
trail, the message gets auth=pass, no SPF verdict and no DMARC verdict, and
lands in INBOX. A sender who forges the signs of an authenticated
submission (an ESMTPSA line below ours, a line by another host, or only a
comment in our "with ESMTP" line claiming it) gets no auth=pass: SPF and
DMARC apply as usual and the message lands in Quarantine.

The real Postfix path (SASL against Dovecot's auth socket, LMTP with
XFORWARD into lmtpfilter) is in PostfixSubmissionTest; it needs root for
the network namespaces, as CI has."""
import os
import subprocess
import unittest

import annotate_util as au
import harness

ROAMING_CLIENT = "198.51.100.7"      # where alice's laptop is today: in no SPF record
OUTSIDE_CLIENT = "203.0.113.66"      # an unauthenticated outside sender
LAPTOP_HELO = "laptop.example.net"
USER = "alice@example.com"
COLLEAGUE = "bob@example.com"
PASSWORD = "secret"                  # what harness.Dovecot writes for every user
NOT_APPLIED = "authenticated submission"
SERVER_ADDRESS = "203.0.113.1"       # Postfix's smtpd, in its own namespace
DELIVERY_TIMEOUT = 20.0              # seconds from "queued" to "in the maildir"
ZONE = [
    'local-zone: "example.com." static',
    au.txt_record("example.com", "v=spf1 -all"),
    au.txt_record("_dmarc.example.com", "v=DMARC1; p=reject"),
    'local-zone: "example.net." static',
]


def submission_received(ip=ROAMING_CLIENT, helo=LAPTOP_HELO, qid="4Xsub0001", by=au.MTA_HOSTNAME,
                        with_="ESMTPSA", user=USER):
    """The Received line Postfix writes for an authenticated client
    (smtpd_sasl_authenticated_header = yes)."""
    extra = "\n\t(Authenticated sender: %s)" % user if user else ""
    return au.postfix_received(helo, ip, qid=qid, with_=with_, by=by, extra=extra, rcpt=COLLEAGUE)


def results(d):
    """(auth, spf, dmarc) of our A-R as comparable tuples: method results,
    comments and properties."""
    def entries(name):
        return [(r.result, au.props(r)) for r in d.method(name)]
    return (entries("auth"), entries("spf"), d.comment("spf"), entries("dmarc"), d.comment("dmarc"))


class SubmissionTestBase(au.EnvTestCase):
    ZONE = ZONE
    USERS = (USER, COLLEAGUE)
    SIEVE = au.QUARANTINE_SIEVE

    def submit(self, top, xfwd, mid):
        msg = au.make_message(USER, COLLEAGUE, subject="lunch", mid=mid, top=top)
        self.send(msg, USER, rcpts=(COLLEAGUE,), xfwd=xfwd)
        return msg

    def assertNotApplied(self, d):
        """auth=pass for alice, spf=none and dmarc=none, each saying why;
        nothing a quarantine rule could match."""
        auth = d.method("auth")
        self.assertEqual([(r.result, au.props(r)) for r in auth],
                         [("pass", {"smtp.auth": USER})], d.ar_value)
        self.assertEqual(d.spf.result, "none", d.ar_value)
        self.assertEqual(d.comment("spf"), NOT_APPLIED, d.ar_value)
        dmarc = d.dmarc
        self.assertIsNotNone(dmarc, d.ar_value)
        self.assertEqual(dmarc.result, "none", d.ar_value)
        self.assertEqual(d.comment("dmarc"), NOT_APPLIED, d.ar_value)
        self.assertNotIn("dis=", d.ar_value)
        self.assertEqual(d.rspf[0], "none", d.rspf_value)

    def assertForgeryFailed(self, mid):
        d = self.delivered(mid, COLLEAGUE, "Quarantine")
        self.assertEqual(d.method("auth"), [], d.ar_value)
        self.assertEqual(d.spf.result, "fail", d.ar_value)
        self.assertEqual(d.dmarc.result, "fail", d.ar_value)
        self.assertEqual(d.comment("dmarc"), "p=reject dis=reject", d.ar_value)
        return d


class SubmissionTest(SubmissionTestBase):

    def test_with_xforward_and_from_the_trail_both_land_in_inbox_alike(self):
        mid_x, mid_t = au.marker("sub-xfwd"), au.marker("sub-trail")
        msg_x = self.submit(submission_received(), au.xforward(ROAMING_CLIENT, LAPTOP_HELO), mid_x)
        msg_t = self.submit(submission_received(), None, mid_t)
        d_x = self.delivered(mid_x, COLLEAGUE, "INBOX")
        d_t = self.delivered(mid_t, COLLEAGUE, "INBOX")
        self.assertOurHeaders(d_x, msg_x)
        self.assertOurHeaders(d_t, msg_t)
        self.assertNotApplied(d_x)
        self.assertNotApplied(d_t)
        self.assertEqual(results(d_x), results(d_t))
        self.assertEqual(d_x.rspf, d_t.rspf)

    def test_esmtpa_without_the_sender_comment_is_authenticated(self):
        # Postfix's default (smtpd_sasl_authenticated_header = no): only the
        # protocol says so; no smtp.auth user to report.
        mid = au.marker("sub-esmtpa")
        self.submit(submission_received(with_="ESMTPA", user=None),
                    au.xforward(ROAMING_CLIENT, LAPTOP_HELO), mid)
        d = self.delivered(mid, COLLEAGUE, "INBOX")
        self.assertEqual([(r.result, au.props(r)) for r in d.method("auth")],
                         [("pass", {})], d.ar_value)
        self.assertEqual(d.dmarc.result, "none", d.ar_value)
        self.assertEqual(d.comment("dmarc"), NOT_APPLIED, d.ar_value)

    def test_xforward_for_another_client_than_our_received_line_gets_no_auth(self):
        # The authenticated line of ours is not about the client XFORWARD
        # names: SPF and DMARC apply to that client.
        mid = au.marker("sub-mismatch")
        self.submit(submission_received(), au.xforward(OUTSIDE_CLIENT, "evil.example.net"), mid)
        d = self.assertForgeryFailed(mid)
        self.assertEqual(d.rspf[2].get("client-ip"), OUTSIDE_CLIENT, d.rspf_value)


class ForgedSubmissionTest(SubmissionTestBase):
    """What an outside sender can write: every header below our topmost
    Received line; and, through an MTA that copies the HELO unfiltered
    (Postfix does not), comments inside that line."""

    def forged_below_ours(self, xfwd):
        mid = au.marker("forged-below")
        ours = au.postfix_received("evil.example.net", OUTSIDE_CLIENT, qid="4Xours001",
                                   rcpt=COLLEAGUE)
        self.submit(ours + submission_received(), xfwd, mid)
        return self.assertForgeryFailed(mid)

    def test_forged_esmtpsa_line_below_ours_with_xforward(self):
        self.forged_below_ours(au.xforward(OUTSIDE_CLIENT, "evil.example.net"))

    def test_forged_esmtpsa_line_below_ours_from_the_trail(self):
        self.forged_below_ours(None)

    def test_esmtpsa_line_by_another_host_gives_no_auth(self):
        # The topmost line is not by one of mta_hostnames: the sender
        # wrote it, whatever XFORWARD says about the client.
        mid = au.marker("forged-by")
        self.submit(submission_received(by="mx.evil.example.net"),
                    au.xforward(ROAMING_CLIENT, LAPTOP_HELO), mid)
        self.assertForgeryFailed(mid)

    def claimed_in_comments(self, comment, xfwd):
        # Our line says "with ESMTP": words in its comments (which an MTA
        # copying the HELO unfiltered would let the client write) are no
        # authentication.
        mid = au.marker("forged-comment")
        ours = au.postfix_received(LAPTOP_HELO, ROAMING_CLIENT, qid="4Xcomm0001",
                                   extra="\n\t" + comment, rcpt=COLLEAGUE)
        self.submit(ours, xfwd, mid)
        return self.assertForgeryFailed(mid)

    def test_sendmail_style_authenticated_comment_on_an_esmtp_line(self):
        self.claimed_in_comments("(authenticated bits=0)", au.xforward(ROAMING_CLIENT, LAPTOP_HELO))
        self.claimed_in_comments("(authenticated bits=0)", None)

    def test_authenticated_sender_comment_on_an_esmtp_line(self):
        comment = "(Authenticated sender: %s)" % USER
        self.claimed_in_comments(comment, au.xforward(ROAMING_CLIENT, LAPTOP_HELO))
        self.claimed_in_comments(comment, None)


def swaks_submit(server, message, helo, source, netns, auth=True):
    """alice -> bob over SMTP with swaks, SASL PLAIN as alice when auth;
    an harness.SmtpResult."""
    args = ["ip", "netns", "exec", netns, "swaks", "--server", server, "--helo", helo,
            "--from", USER, "--to", COLLEAGUE, "--data", "-", "--local-interface", source,
            "--timeout", str(int(harness.REPLY_TIMEOUT))]
    if auth:
        args += ["--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD]
    r = subprocess.run(args, input=message[:-2] if message.endswith(b"\r\n") else message,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=harness.REPLY_TIMEOUT + 10)
    return harness.SmtpResult(r.returncode, r.stdout.decode("utf-8", "replace"))


class PostfixSubmissionTest(harness.HarnessTestCase):
    """swaks -> Postfix (SASL against Dovecot's auth socket) -> LMTP with
    XFORWARD -> lmtpfilter -> Dovecot + the sample Sieve script."""

    def setUp(self):
        super().setUp()
        self.ns = self.start_namespaces((ROAMING_CLIENT,), SERVER_ADDRESS)
        self.dns = self.start_unbound(ZONE)
        auth_socket = os.path.join(self.tmpdir, "auth-client")
        self.dovecot = self.start_dovecot(
            users=(USER, COLLEAGUE), sieve_before=au.QUARANTINE_SIEVE,
            settings=["disable_plaintext_auth = no", "auth_mechanisms = plain",
                      "service auth {\n  unix_listener %s {\n    mode = 0666\n  }\n}"
                      % auth_socket])
        self.filter = self.start_filter(
            self.dovecot.address, listen_mode="0666", authserv_id=au.AUTHSERV_ID,
            mta_hostnames=harness.Postfix.HOSTNAME, trusted_networks=au.TRUSTED_NETWORKS,
            dns_servers=self.dns.server, domains={"example.com": {"mode": "annotate"}})
        self.smtp = "%s:25" % SERVER_ADDRESS
        self.postfix = self.start_postfix(
            self.filter.address, self.smtp, domains=("example.com",), netns=self.ns.server,
            settings=["smtpd_sasl_auth_enable = yes", "smtpd_sasl_type = dovecot",
                      "smtpd_sasl_path = " + auth_socket,
                      "smtpd_sasl_authenticated_header = yes"])

    def deliver(self, message, helo, auth, folder):
        r = swaks_submit(self.smtp, message, helo, ROAMING_CLIENT, self.ns.client, auth)
        self.assertEqual(r.returncode, 0, r)
        self.assertIsNotNone(r.queue_id, r)
        harness.wait_for(lambda: self.dovecot.messages(COLLEAGUE, folder), DELIVERY_TIMEOUT,
                         "the message in %s's %s" % (COLLEAGUE, folder))
        stored = self.dovecot.messages(COLLEAGUE, folder)
        self.assertEqual(len(stored), 1, stored)
        other = "Quarantine" if folder == "INBOX" else "INBOX"
        self.assertEqual(self.dovecot.messages(COLLEAGUE, other), [])
        lines = self.filter.wait_log("ident=%s client=" % r.queue_id)
        self.assertEqual(len(lines), 1, lines)
        log = harness.parse_log_fields(lines[0])
        # The facts came over XFORWARD, not from the trail.
        self.assertEqual(log["client"], ROAMING_CLIENT, lines[0])
        self.assertEqual(log["facts"], "xforward", lines[0])
        return au.Delivered(stored[0]), log

    def test_sasl_submission_lands_in_inbox_with_auth_pass_and_no_dmarc_fail(self):
        mid = au.marker("pf-sasl")
        msg = au.make_message(USER, COLLEAGUE, subject="lunch", mid=mid)
        d, log = self.deliver(msg, LAPTOP_HELO, True, "INBOX")
        # Postfix's own line, right below ours, says the client authenticated.
        received = [v for n, v in au.header_fields(d.after) if n.lower() == "received"]
        self.assertIn("(Authenticated sender: %s)" % USER, received[0])
        self.assertIn(" with ESMTPA ", received[0])
        self.assertEqual([(r.result, au.props(r)) for r in d.method("auth")],
                         [("pass", {"smtp.auth": USER})], d.ar_value)
        self.assertEqual(d.spf.result, "none", d.ar_value)
        self.assertEqual(d.comment("spf"), NOT_APPLIED, d.ar_value)
        self.assertEqual(d.dmarc.result, "none", d.ar_value)
        self.assertEqual(d.comment("dmarc"), NOT_APPLIED, d.ar_value)
        self.assertNotIn("dis=", d.ar_value)
        self.assertEqual(d.rspf[2].get("client-ip"), ROAMING_CLIENT, d.rspf_value)
        self.assertEqual((log["spf"], log["dmarc"]), ("auth", "none"), log)
        self.assertTrue(d.after.endswith(harness.as_stored(msg)))

    def test_unauthenticated_forgery_through_postfix_is_quarantined(self):
        # Without SASL, from the same address: a forged ESMTPSA line of
        # "ours" in the message, and the Postfix-style comment as the HELO.
        mid = au.marker("pf-forged")
        msg = au.make_message(USER, COLLEAGUE, subject="lunch", mid=mid,
                              top=submission_received())
        d, log = self.deliver(msg, "laptop (Authenticated sender: %s)" % USER, False,
                              "Quarantine")
        # Postfix wrote "with ESMTP" and turned the HELO's blanks and
        # parentheses into "?": the claim is not even a comment in its line.
        received = [v for n, v in au.header_fields(d.after) if n.lower() == "received"]
        self.assertIn(" with ESMTP ", received[0])
        self.assertNotIn("(Authenticated", received[0])
        self.assertIn(" with ESMTPSA ", received[1])
        self.assertEqual(d.method("auth"), [], d.ar_value)
        self.assertEqual(d.spf.result, "fail", d.ar_value)
        self.assertEqual(d.dmarc.result, "fail", d.ar_value)
        self.assertEqual(d.comment("dmarc"), "p=reject dis=reject", d.ar_value)
        self.assertEqual((log["spf"], log["dmarc"]), ("fail", "fail"), log)


if __name__ == "__main__":
    unittest.main()
