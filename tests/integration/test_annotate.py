"""Annotate mode as a recipient sees it: forged results neutralised (the
exact delivered header block), split delivery across opted-in and other
domains with per-recipient replies, the sample quarantine Sieve script in
the real Dovecot, and SIGHUP reload of the domain policy."""
import re
import unittest

import annotate_util as au
import harness

ALIAS_ID = "mx-old.example.com"
PARTNER_CLIENT = "192.0.2.10"
ZONE = [
    'local-zone: "example.org." static',
    au.txt_record("example.org", "v=spf1 ip4:192.0.2.0/24 -all"),
    'local-zone: "example.com." static',
    'local-zone: "example.net." static',
]
BODY = "Hello.\n"
# What our disposition says for the seed client: example.org has SPF
# (the seed is outside it) and no DMARC policy.
SPF_FAIL = "spf-fail (spf=fail smtp.mailfrom=user@example.org header.from=example.org)"


def build(fields, body=BODY):
    """A CRLF message from a list of header field strings (each ending in
    "\\n", folding included) and a body."""
    return harness.crlf("".join(fields) + "\n" + body)


def base_fields(mid, sender="user@example.org", rcpt="alice@example.com"):
    return ["From: <%s>\n" % sender, "To: <%s>\n" % rcpt, "Subject: forged results\n",
            "Date: Sat, 28 Nov 2026 09:00:00 +0000\n",
            "Message-ID: <%s@test.example>\n" % mid]


def claimed_id(value):
    """The authserv-id an A-R value claims (comments dropped), lower-case."""
    text = value
    while True:
        stripped = re.sub(r"\([^()]*\)", " ", text)
        if stripped == text:
            break
        text = stripped
    return re.split(r"[\s;]+", text.strip())[0].lower()


class ForgedResultsTest(au.EnvTestCase):
    ZONE = ZONE
    FILTER_CONFIG = {"authserv_id_aliases": ALIAS_ID}

    def deliver_forged(self, fields, needles, mid, xfwd=True):
        """Send fields (seed client: our SPF verdict is fail), then assert
        the block: our two headers, then the original with exactly the
        `needles` fields renamed; and that the message holds one A-R with
        our id (ours) and one Received-SPF (ours)."""
        msg = build(fields)
        self.send(msg, "user@example.org",
                  xfwd=au.xforward(au.SEED_CLIENT, au.SEED_HELO) if xfwd else None)
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, renamed=[n.encode() for n in needles], disposition=SPF_FAIL)
        self.assertEqual(d.spf.result, "fail", d.ar_value)
        self.assertEqual(d.rspf[0], "fail", d.rspf_value)
        fields_stored, _ = au.split_header_fields(d.raw)
        ours = [f for f in fields_stored
                if au.field_name(f).strip().lower() == "authentication-results"
                and claimed_id(au.field_value(f)) in (au.AUTHSERV_ID, ALIAS_ID)]
        self.assertEqual(ours, [d.ours[0]])
        rspf = [f for f in fields_stored if au.field_name(f).strip().lower() == "received-spf"]
        self.assertEqual(rspf, [d.ours[1]])
        return d

    def test_forged_at_the_top(self):
        mid = au.marker("top")
        forged = "Authentication-Results: mail.example.com; spf=pass smtp.mailfrom=user@example.org\n"
        self.deliver_forged([forged] + base_fields(mid), [forged.rstrip("\n")], mid)

    def test_forged_in_the_middle(self):
        mid = au.marker("middle")
        forged = "Authentication-Results: mail.example.com; dkim=pass header.d=example.org\n"
        f = base_fields(mid)
        self.deliver_forged(f[:2] + [forged] + f[2:], [forged.rstrip("\n")], mid)

    def test_forged_after_a_thousand_received_lines(self):
        mid = au.marker("deep")
        trail = ["Received: from hop%d.example.net (hop%d.example.net [198.51.100.%d])\n"
                 "\tby relay%d.example.net with SMTP id %05d;\n"
                 "\tSat, 28 Nov 2026 08:00:00 +0000\n" % (i, i, i % 250 + 1, i, i)
                 for i in range(1000)]
        forged = "Authentication-Results: mail.example.com; spf=pass\n"
        self.deliver_forged(trail + [forged] + base_fields(mid), [forged.rstrip("\n")], mid)

    def test_forged_folded_over_several_lines(self):
        mid = au.marker("folded")
        forged = ("Authentication-Results:\n"
                  "  mail.example.com\n"
                  "\t;\n"
                  "  spf=pass\n"
                  "\tsmtp.mailfrom=user@example.org;\n"
                  "\tdmarc=pass header.from=example.org\n")
        f = base_fields(mid)
        self.deliver_forged(f[:3] + [forged] + f[3:], ["Authentication-Results:\r\n  mail"], mid)

    def test_forged_with_odd_case_and_spacing(self):
        mid = au.marker("case")
        forged = ["authentication-RESULTS :  MAIL.Example.COM ; spf=pass\n",
                  "AUTHENTICATION-RESULTS:mail.example.com;spf=pass\n",
                  "Authentication-Results:\tmail.example.com\t;\tspf=pass\n"]
        self.deliver_forged(forged + base_fields(mid),
                            ["authentication-RESULTS :", "AUTHENTICATION-RESULTS:",
                             "Authentication-Results:\t"], mid)

    def test_forged_with_comment_or_version_before_the_semicolon(self):
        # RFC 8601 allows CFWS around the id and a version after it.
        mid = au.marker("cfws")
        forged = ["Authentication-Results: (trusted) mail.example.com; spf=pass\n",
                  "Authentication-Results: mail.example.com 1; spf=pass\n",
                  'Authentication-Results: "mail.example.com"; spf=pass\n']
        self.deliver_forged(forged + base_fields(mid),
                            ["Authentication-Results: (trusted)",
                             "Authentication-Results: mail.example.com 1;",
                             'Authentication-Results: "mail'], mid)

    def test_forged_last_header_of_a_message_without_body(self):
        mid = au.marker("nobody")
        forged = "Authentication-Results: mail.example.com; spf=pass\n"
        msg = harness.crlf("".join(base_fields(mid) + [forged]))
        self.send(msg, "user@example.org", xfwd=au.xforward(au.SEED_CLIENT, au.SEED_HELO))
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, renamed=[forged.rstrip("\n").encode()], disposition=SPF_FAIL)
        self.assertEqual(d.spf.result, "fail", d.ar_value)

    def test_results_inside_the_body_and_attached_messages_are_not_touched(self):
        mid = au.marker("inbody")
        f = base_fields(mid)[:-1] + [
            "Message-ID: <%s@test.example>\n" % mid,
            "MIME-Version: 1.0\n",
            'Content-Type: multipart/mixed; boundary="b1"\n']
        body = ("Authentication-Results: mail.example.com; spf=pass\n"
                "Received-SPF: pass\n"
                "--b1\n"
                "Content-Type: message/rfc822\n"
                "\n"
                "Authentication-Results: mail.example.com; spf=pass\n"
                "Received-SPF: pass (inner)\n"
                "From: <user@example.org>\n"
                "\n"
                "inner body\n"
                "--b1--\n")
        msg = build(f, body)
        self.send(msg, "user@example.org", xfwd=au.xforward(au.SEED_CLIENT, au.SEED_HELO))
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, disposition=SPF_FAIL)

    def test_alias_id_is_renamed_too(self):
        mid = au.marker("alias")
        forged = "Authentication-Results: mx-old.example.com; spf=pass\n"
        self.deliver_forged([forged] + base_fields(mid), [forged.rstrip("\n")], mid)

    def test_foreign_ids_are_kept_untouched(self):
        mid = au.marker("foreign")
        foreign = ["Authentication-Results: mx.google.com; spf=fail smtp.mailfrom=user@example.org\n",
                   "Authentication-Results: mail.example.com.evil.example; spf=pass\n",
                   "Authentication-Results: example.com; spf=pass\n",
                   "X-Authentication-Results: mail.example.com; spf=pass\n",
                   "Authentication-Results-Copy: mail.example.com; spf=pass\n"]
        self.deliver_forged(foreign + base_fields(mid), [], mid)

    def test_received_spf_above_and_below_the_postfix_received_line(self):
        mid = au.marker("rspf")
        above = "Received-SPF: pass (forged above) client-ip=192.0.2.10;\n"
        below = ("RECEIVED-SPF : pass (forged below)\n"
                 "\tclient-ip=192.0.2.10; helo=mx.example.org\n")
        trail = au.postfix_received(au.SEED_HELO, au.SEED_CLIENT, qid="4Xrspf001")
        d = self.deliver_forged([above, trail, below] + base_fields(mid),
                                ["Received-SPF: pass (forged above)", "RECEIVED-SPF :"],
                                mid, xfwd=False)
        self.assertEqual(d.rspf[2].get("client-ip"), au.SEED_CLIENT, d.rspf_value)

    def test_forged_disposition_is_renamed_and_ours_follows_received_spf(self):
        mid = au.marker("dispo")
        forged = ["X-Disposition-Quarantine: dmarc-reject (forged)\n",
                  "x-disposition-QUARANTINE :\n\tspf-fail\n"]
        self.deliver_forged(forged + base_fields(mid),
                            ["X-Disposition-Quarantine: dmarc-reject", "x-disposition-QUARANTINE :"], mid)

    def test_forged_disposition_on_passing_mail_is_renamed_and_none_added(self):
        mid = au.marker("dispopass")
        forged = "X-Disposition-Quarantine: dmarc-reject (forged)\n"
        msg = build([forged] + base_fields(mid))
        self.send(msg, "user@example.org", xfwd=au.xforward(PARTNER_CLIENT, "mx.example.org"))
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, renamed=[forged.rstrip("\n").encode()], disposition=None)
        self.assertEqual(d.spf.result, "pass", d.ar_value)


class SplitDeliveryTest(au.EnvTestCase):
    """One transaction: example.com (annotate) and example.net (off), an
    unknown user and an over-quota user among them."""
    ZONE = ZONE
    USERS = ("alice@example.com", "bob@example.net", "dave@example.net")
    QUOTA_USERS = ("carol@example.com",)

    def test_mixed_domains_unknown_and_over_quota(self):
        # One command at a time, and all pipelined as Postfix sends them
        # (then the RCPTs reach Dovecot pipelined too).
        for pipelined in (False, True):
            with self.subTest(pipelined=pipelined):
                self.mixed_domains(pipelined)

    def mixed_domains(self, pipelined):
        mid = au.marker("split")
        forged = ("Authentication-Results: mail.example.com; spf=pass\n"
                  "Received-SPF: pass (forged)\n")
        body = "".join("line %04d of a message above the 1 KB quota\n" % i for i in range(80))
        msg = build([forged] + base_fields(mid), body)
        self.assertGreater(len(msg), 2048)
        rcpts = ["alice@example.com", "bob@example.net", "zed@example.com",
                 "carol@example.com", "dave@example.net"]
        with harness.LmtpClient(self.env.filter.address) as c:
            self.assertEqual(c.lhlo().code, 250)
            mail, rcpt_replies, data = c.transaction(
                "user@example.org", rcpts, msg,
                xforward=au.xforward(au.SEED_CLIENT, au.SEED_HELO), pipelined=pipelined)
            c.quit()
        self.assertReply(mail, 250)
        self.assertEqual([(r.code, r.enhanced) for r in rcpt_replies],
                         [(250, "2.1.5"), (250, "2.1.5"), (550, "5.1.1"),
                          (250, "2.1.5"), (250, "2.1.5")], rcpt_replies)
        self.assertEqual([(r.code, r.enhanced) for r in data],
                         [(250, "2.0.0"), (250, "2.0.0"), (552, "5.2.2"), (250, "2.0.0")], data)
        # Each DATA reply names its own recipient (Dovecot's text relayed).
        for reply, rcpt in zip(data, ["alice@example.com", "bob@example.net",
                                      "carol@example.com", "dave@example.net"]):
            self.assertIn("<%s>" % rcpt, reply.text, data)

        d = self.delivered(mid, "alice@example.com")
        self.assertOurHeaders(d, msg, renamed=[b"Authentication-Results: mail.example.com",
                                               b"Received-SPF: pass (forged)"], disposition=SPF_FAIL)
        self.assertEqual(d.spf.result, "fail", d.ar_value)
        for user in ("bob@example.net", "dave@example.net"):
            found = self.env.find(user, mid)
            self.assertEqual(list(found), ["INBOX"], user)
            self.assertEqual(len(found["INBOX"]), 1, user)
            self.assertEqual(harness.stored_body(found["INBOX"][0]), harness.as_stored(msg), user)
        self.assertEqual(self.env.find("carol@example.com", mid), {})


class SieveQuarantineTest(au.EnvTestCase):
    """The sample quarantine script as Dovecot's sieve_before."""
    ZONE = ZONE
    SIEVE = au.QUARANTINE_SIEVE

    def send_with(self, client, top="", helo=au.SEED_HELO):
        mid = au.marker("sieve")
        msg = au.make_message("user@example.org", mid=mid, top=top)
        self.send(msg, "user@example.org", xfwd=au.xforward(client, helo))
        return mid, msg

    def test_spf_fail_lands_in_quarantine(self):
        mid, msg = self.send_with(au.SEED_CLIENT)
        d = self.delivered(mid, folder="Quarantine")
        self.assertOurHeaders(d, msg, disposition=SPF_FAIL)
        self.assertEqual(d.spf.result, "fail", d.ar_value)

    def test_spf_pass_lands_in_inbox(self):
        mid, msg = self.send_with(PARTNER_CLIENT, helo="mx.example.org")
        d = self.delivered(mid, folder="INBOX")
        self.assertOurHeaders(d, msg)
        self.assertEqual(d.spf.result, "pass", d.ar_value)

    def test_forged_pass_with_our_id_is_still_quarantined(self):
        forged = ("Authentication-Results: mail.example.com; spf=pass smtp.mailfrom=user@example.org;\n"
                  "\tdmarc=pass header.from=example.org\n")
        mid, msg = self.send_with(au.SEED_CLIENT, top=forged)
        d = self.delivered(mid, folder="Quarantine")
        self.assertOurHeaders(d, msg, renamed=[b"Authentication-Results: mail.example.com"],
                              disposition=SPF_FAIL)
        self.assertEqual(d.spf.result, "fail", d.ar_value)

    def test_forged_disposition_with_our_pass_is_not_quarantined(self):
        forged = "X-Disposition-Quarantine: spf-fail (forged)\n"
        mid, msg = self.send_with(PARTNER_CLIENT, top=forged, helo="mx.example.org")
        d = self.delivered(mid, folder="INBOX")
        self.assertOurHeaders(d, msg, renamed=[b"X-Disposition-Quarantine: spf-fail"])
        self.assertEqual(d.spf.result, "pass", d.ar_value)

    def test_foreign_fail_with_our_pass_is_not_quarantined(self):
        foreign = "Authentication-Results: mx.other.example; spf=fail smtp.mailfrom=user@example.org\n"
        mid, msg = self.send_with(PARTNER_CLIENT, top=foreign, helo="mx.example.org")
        d = self.delivered(mid, folder="INBOX")
        self.assertOurHeaders(d, msg)
        self.assertEqual(d.spf.result, "pass", d.ar_value)


class ObserveTest(au.EnvTestCase):
    """mode = observe: the stored copy is the input byte for byte, the log
    line says what annotate would do; mixed with annotate and off
    recipients in one transaction."""
    ZONE = ZONE
    USERS = ("alice@example.com", "bob@example.net", "erin@example.edu", "fred@example.edu")
    DOMAINS = {"example.com": {"mode": "annotate"}, "example.edu": {"mode": "observe"}}
    SIEVE = au.QUARANTINE_SIEVE

    def transaction_line(self, mid_count):
        return self.env.filter.wait_log("status=done", count=mid_count)[-1]

    def test_observe_mixed_with_annotate_and_off(self):
        mid = au.marker("observe")
        forged = ("Authentication-Results: mail.example.com; spf=pass\n"
                  "X-Disposition-Quarantine: spf-fail (forged)\n")
        msg = build([forged] + base_fields(mid))
        before = len(self.env.filter.log_lines("status=done"))
        rcpts = ("erin@example.edu", "alice@example.com", "bob@example.net", "fred@example.edu")
        self.send(msg, "user@example.org", rcpts=rcpts, xfwd=au.xforward(au.SEED_CLIENT, au.SEED_HELO))
        d = self.delivered(mid, "alice@example.com", folder="Quarantine")
        self.assertOurHeaders(d, msg, renamed=[b"Authentication-Results: mail.example.com",
                                               b"X-Disposition-Quarantine: spf-fail"], disposition=SPF_FAIL)
        # observe and off: exactly the input (the forged field unrenamed:
        # the sample script files it, as it would without lmtpfilter).
        for user in ("erin@example.edu", "fred@example.edu", "bob@example.net"):
            found = self.env.find(user, mid)
            self.assertEqual(sum(len(v) for v in found.values()), 1, (user, found))
            stored = list(found.values())[0][0]
            self.assertEqual(harness.stored_body(stored), harness.as_stored(msg), user)
        line = self.transaction_line(before + 1)
        self.assertIn(" action=would-quarantine,quarantine reason=spf-fail ", line)
        self.assertIn(" spf=fail ", line)

    def test_observe_only_logs_the_would_be_disposition(self):
        for client, helo, action in ((au.SEED_CLIENT, au.SEED_HELO, " action=would-quarantine reason=spf-fail "),
                                     (PARTNER_CLIENT, "mx.example.org", " action=deliver ")):
            with self.subTest(action=action):
                mid = au.marker("observeonly")
                msg = build(base_fields(mid, rcpt="erin@example.edu"))
                before = len(self.env.filter.log_lines("status=done"))
                self.send(msg, "user@example.org", rcpts=("erin@example.edu",), xfwd=au.xforward(client, helo))
                d = self.env.find("erin@example.edu", mid)
                self.assertEqual(list(d), ["INBOX"], d)
                self.assertEqual(harness.stored_body(d["INBOX"][0]), harness.as_stored(msg))
                line = self.transaction_line(before + 1)
                self.assertIn(action, line)
                if "deliver" in action:
                    self.assertNotIn("reason=", line)


class ReloadTest(au.EnvTestCase):
    """SIGHUP re-reads the domain policy."""
    ZONE = ZONE
    DOMAINS = {"example.com": {"mode": "off"}}
    RELOAD_WAIT = 10.0

    def reload(self, count):
        self.env.filter.reload()
        harness.wait_for(lambda: len(self.env.filter.log_lines("reload")) >= count,
                         self.RELOAD_WAIT, "reload log line")
        return self.env.filter.log_lines("reload")[count - 1]

    def test_off_to_annotate_on_sighup_and_bad_config_keeps_the_running_one(self):
        xfwd = au.xforward(au.SEED_CLIENT, au.SEED_HELO)
        mid = au.marker("before")
        msg = au.make_message("user@example.org", mid=mid)
        self.send(msg, "user@example.org", xfwd=xfwd)
        found = self.env.find("alice@example.com", mid)
        self.assertEqual(harness.stored_body(found["INBOX"][0]), harness.as_stored(msg))

        f = self.env.filter
        f.groups["domain example.com"] = {"mode": "annotate"}
        f.write_config()
        line = self.reload(1)
        self.assertIn("configuration reloaded", line)
        mid = au.marker("after")
        msg = au.make_message("user@example.org", mid=mid)
        self.send(msg, "user@example.org", xfwd=xfwd)
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, disposition=SPF_FAIL)
        self.assertEqual(d.spf.result, "fail", d.ar_value)

        # A broken file on the next reload: the running policy stays.
        f.groups["domain example.com"] = {"mode": "sometimes"}
        f.write_config()
        line = self.reload(2)
        self.assertIn("reload failed", line)
        self.assertTrue(f.running())
        mid = au.marker("kept")
        msg = au.make_message("user@example.org", mid=mid)
        self.send(msg, "user@example.org", xfwd=xfwd)
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, disposition=SPF_FAIL)


if __name__ == "__main__":
    unittest.main()
