"""SPF in annotate mode, end to end: unbound with test zones, the real
Dovecot, lmtpfilter in between. Client facts from XFORWARD or from the
Received trail our MTA wrote; each test asserts our Authentication-Results
and Received-SPF exactly, and where the message landed. A loopback client
outside trusted_networks is judged by the record like any other."""
import json
import os
import subprocess
import unittest

import annotate_util as au
import harness

SENDER_DOMAIN = "example.org"                 # publishes -all without the seed client
SPF_ORG = "v=spf1 ip4:192.0.2.0/24 -all"
AUTHORISED_CLIENT = "192.0.2.10"
# Our X-Disposition-Quarantine for user@example.org's SPF fail (no DMARC record).
SPF_FAIL = "spf-fail (spf=fail smtp.mailfrom=user@example.org header.from=example.org)"
ROAMING_CLIENT = "198.51.100.7"               # an authenticated user's address, not in any record
ZONE = [
    'local-zone: "example.org." static',
    au.txt_record("example.org", SPF_ORG),
    'local-zone: "wormly.com." static',
    au.txt_record("www.wormly.com", "v=spf1 ip4:184.72.226.23 -all"),
    'local-zone: "example.com." static',
    'local-zone: "example.net." static',
]


class SpfTestBase(au.EnvTestCase):
    ZONE = ZONE
    USERS = ("alice@example.com", "bob@example.net")

    def assertSpf(self, d, result, mailfrom, helo, client_ip, identity="mailfrom"):
        """Our A-R carries exactly this spf= entry and our Received-SPF agrees."""
        spf = d.spf
        self.assertIsNotNone(spf, d.ar_value)
        self.assertEqual(spf.result, result, d.ar_value)
        expected = {"smtp.helo": helo}
        if mailfrom is not None:
            expected["smtp.mailfrom"] = mailfrom
        self.assertEqual(au.props(spf), expected, d.ar_value)
        rresult, comment, pairs = d.rspf
        self.assertEqual(rresult, result, d.rspf_value)
        self.assertTrue(comment and comment.startswith(au.AUTHSERV_ID + ":"), d.rspf_value)
        self.assertEqual(pairs.get("client-ip"), client_ip, d.rspf_value)
        self.assertEqual(pairs.get("helo"), helo, d.rspf_value)
        self.assertEqual(pairs.get("receiver"), au.AUTHSERV_ID, d.rspf_value)
        self.assertEqual(pairs.get("identity"), identity, d.rspf_value)
        return pairs


class SpfTest(SpfTestBase):

    def test_seed_case_unauthorised_client_fails(self):
        mid = au.marker("seed")
        msg = au.make_message("user@example.org", mid=mid)
        self.send(msg, "user@example.org",
                  xfwd=au.xforward(au.SEED_CLIENT, au.SEED_HELO))
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, disposition=SPF_FAIL)
        pairs = self.assertSpf(d, "fail", "user@example.org", au.SEED_HELO, au.SEED_CLIENT)
        self.assertEqual(pairs.get("envelope-from"), "user@example.org")
        self.assertIn("184.72.226.23", d.rspf[1])

    def test_authorised_client_passes(self):
        mid = au.marker("pass")
        msg = au.make_message("user@example.org", mid=mid)
        self.send(msg, "user@example.org",
                  xfwd=au.xforward(AUTHORISED_CLIENT, "mx.example.org"))
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg)
        pairs = self.assertSpf(d, "pass", "user@example.org", "mx.example.org",
                               AUTHORISED_CLIENT)
        self.assertEqual(pairs.get("envelope-from"), "user@example.org")

    def test_without_xforward_facts_come_from_the_postfix_received_line(self):
        mid = au.marker("trail")
        trail = au.postfix_received(au.SEED_HELO, au.SEED_CLIENT, qid="4Xtrail01")
        msg = au.make_message("user@example.org", mid=mid, top=trail)
        self.send(msg, "user@example.org")
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, disposition=SPF_FAIL)
        self.assertSpf(d, "fail", "user@example.org", au.SEED_HELO, au.SEED_CLIENT)

    def test_trail_walks_past_trusted_reinjection_hop(self):
        # A content filter on localhost re-injected the message: the border
        # is the hop below it.
        mid = au.marker("reinject")
        trail = (au.postfix_received("localhost", "127.0.0.1", rdns="localhost",
                                     qid="4Xinner01")
                 + au.postfix_received(au.SEED_HELO, au.SEED_CLIENT, qid="4Xouter01"))
        msg = au.make_message("user@example.org", mid=mid, top=trail)
        self.send(msg, "user@example.org")
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, disposition=SPF_FAIL)
        self.assertSpf(d, "fail", "user@example.org", au.SEED_HELO, au.SEED_CLIENT)

    def test_received_lines_of_foreign_hosts_are_not_believed(self):
        # A Received line "by" a host that is not ours is what the sender
        # wrote: it must not give an authorised client.
        mid = au.marker("foreign-by")
        trail = (au.postfix_received(au.SEED_HELO, au.SEED_CLIENT, qid="4Xborder1")
                 + au.postfix_received("mx.example.org", AUTHORISED_CLIENT,
                                       by="relay.example.org", qid="4Xforged1"))
        msg = au.make_message("user@example.org", mid=mid, top=trail)
        self.send(msg, "user@example.org")
        d = self.delivered(mid)
        self.assertSpf(d, "fail", "user@example.org", au.SEED_HELO, au.SEED_CLIENT)

    def test_authenticated_submission_gets_auth_pass_and_no_spf_fail(self):
        mid = au.marker("auth")
        trail = au.postfix_received("laptop.example.org", ROAMING_CLIENT, qid="4Xauth001",
                                    with_="ESMTPSA",
                                    extra="\n\t(Authenticated sender: owner)")
        msg = au.make_message("owner@example.org", mid=mid, top=trail)
        self.send(msg, "owner@example.org")
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg)
        auth = d.method("auth")
        self.assertEqual(len(auth), 1, d.ar_value)
        self.assertEqual(auth[0].result, "pass", d.ar_value)
        self.assertEqual(au.props(auth[0]), {"smtp.auth": "owner"}, d.ar_value)
        # Without the authentication, 198.51.100.7 would fail example.org's -all.
        # No SPF verdict against it: no spf= entry, or spf=none.
        self.assertIn([r.result for r in d.method("spf")], ([], ["none"]), d.ar_value)
        rresult, comment, pairs = d.rspf
        self.assertEqual(rresult, "none", d.rspf_value)
        self.assertEqual(pairs.get("client-ip"), ROAMING_CLIENT, d.rspf_value)
        # The comment names the receiver once: "mail.example.com: ...".
        self.assertEqual(comment.count(au.AUTHSERV_ID + ":"), 1, d.rspf_value)

    def test_whole_trail_in_trusted_networks_gives_none_with_a_reason(self):
        mid = au.marker("local")
        trail = au.postfix_received("localhost", "127.0.0.1", rdns="localhost",
                                    qid="4Xlocal01")
        msg = au.make_message("user@example.org", mid=mid, top=trail)
        self.send(msg, "user@example.org")
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg)
        spf = d.spf
        self.assertIsNotNone(spf, d.ar_value)
        self.assertEqual(spf.result, "none", d.ar_value)
        self.assertTrue(d.comment("spf"), "spf=none needs a comment saying why: "
                        + d.ar_value)
        self.assertEqual(d.rspf[0], "none", d.rspf_value)

    def test_no_trail_and_no_xforward_gives_none_not_a_guess(self):
        mid = au.marker("notrail")
        msg = au.make_message("user@example.org", mid=mid)
        self.send(msg, "user@example.org")
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg)
        self.assertEqual(d.spf.result, "none", d.ar_value)
        self.assertTrue(d.comment("spf"), d.ar_value)

    def test_null_sender_is_checked_on_the_helo_identity(self):
        # www.wormly.com authorises 184.72.226.23 only.
        for client, result in ((au.SEED_CLIENT, "pass"), (AUTHORISED_CLIENT, "fail")):
            with self.subTest(client=client):
                mid = au.marker("bounce")
                msg = au.make_message("MAILER-DAEMON@www.wormly.com", mid=mid)
                self.send(msg, "", xfwd=au.xforward(client, au.SEED_HELO))
                d = self.delivered(mid)
                self.assertOurHeaders(d, msg, disposition=None if result == "pass" else
                                      "spf-fail (spf=fail smtp.helo=www.wormly.com header.from=www.wormly.com)")
                spf = d.spf
                self.assertEqual(spf.result, result, d.ar_value)
                self.assertEqual(au.props(spf).get("smtp.helo"), au.SEED_HELO, d.ar_value)
                self.assertIn(au.props(spf).get("smtp.mailfrom"),
                              (None, "postmaster@" + au.SEED_HELO), d.ar_value)
                rresult, _, pairs = d.rspf
                self.assertEqual(rresult, result, d.rspf_value)
                self.assertEqual(pairs.get("identity"), "helo", d.rspf_value)
                self.assertEqual(pairs.get("helo"), au.SEED_HELO, d.rspf_value)
                self.assertEqual(pairs.get("client-ip"), client, d.rspf_value)

    def test_ipv6_client_from_xforward(self):
        mid = au.marker("v6")
        msg = au.make_message("user@example.org", mid=mid)
        self.send(msg, "user@example.org", xfwd=au.xforward("IPv6:2001:db8::25", au.SEED_HELO))
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, disposition=SPF_FAIL)
        self.assertSpf(d, "fail", "user@example.org", au.SEED_HELO, "2001:db8::25")

    def test_ipv4_mapped_address_in_the_trail_is_the_ipv4_client(self):
        # example.org authorises 192.0.2.0/24: the mapped form must match it.
        mid = au.marker("mapped")
        trail = au.postfix_received("mx.example.org", "IPv6:::ffff:192.0.2.10",
                                    qid="4Xmapped1")
        msg = au.make_message("user@example.org", mid=mid, top=trail)
        self.send(msg, "user@example.org")
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg)
        self.assertSpf(d, "pass", "user@example.org", "mx.example.org", AUTHORISED_CLIENT)

    def test_facts_do_not_leak_between_transactions_on_one_connection(self):
        # Postfix reuses the connection: RSET, fresh XFORWARD, next message.
        mids = [au.marker("reuse"), au.marker("reuse")]
        clients = [(au.SEED_CLIENT, au.SEED_HELO, "fail"),
                   (AUTHORISED_CLIENT, "mx.example.org", "pass")]
        msgs = [au.make_message("user@example.org", mid=m) for m in mids]
        c = self.client(self.env.filter.address)
        for msg, (client, helo, _) in zip(msgs, clients):
            self.assertReply(c.command("RSET"), 250)
            mail, rcpts, data = c.transaction("user@example.org", ["alice@example.com"], msg,
                                              xforward=au.xforward(client, helo))
            self.assertEqual([r.code for r in data], [250], data)
        c.quit()
        for mid, msg, (client, helo, result) in zip(mids, msgs, clients):
            d = self.delivered(mid)
            self.assertOurHeaders(d, msg, disposition=SPF_FAIL if result == "fail" else None)
            self.assertSpf(d, result, "user@example.org", helo, client)

    def test_not_opted_in_domain_gets_the_original_bytes(self):
        mid = au.marker("optout")
        forged = ("Authentication-Results: mail.example.com; spf=pass\n"
                  "Received-SPF: pass (forged)\n")
        msg = au.make_message("user@example.org", "bob@example.net", mid=mid,
                              top=forged + au.postfix_received(au.SEED_HELO, au.SEED_CLIENT))
        self.send(msg, "user@example.org", rcpts=("bob@example.net",),
                  xfwd=au.xforward(au.SEED_CLIENT, au.SEED_HELO))
        found = self.env.find("bob@example.net", mid)
        self.assertEqual(list(found), ["INBOX"])
        self.assertEqual(harness.stored_body(found["INBOX"][0]), harness.as_stored(msg))


class SpfLoopbackNotTrustedTest(SpfTestBase):
    """trusted_networks = 10.0.0.0/8: 127.0.0.1 is a client like any other.
    libspf2 alone says "pass (localhost is always allowed)" for it, so a
    spoof relayed through loopback would pass example.org's -all."""
    FILTER_CONFIG = {"trusted_networks": "10.0.0.0/8"}

    def test_xforward_loopback_client_gets_the_records_verdict(self):
        mid = au.marker("lo-xfwd")
        msg = au.make_message("user@example.org", mid=mid)
        self.send(msg, "user@example.org", xfwd=au.xforward("127.0.0.1", "localhost"))
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, disposition=SPF_FAIL)
        self.assertSpf(d, "fail", "user@example.org", "localhost", "127.0.0.1")

    def test_ipv6_loopback_client_gets_the_records_verdict(self):
        mid = au.marker("lo6-xfwd")
        msg = au.make_message("user@example.org", mid=mid)
        self.send(msg, "user@example.org", xfwd=au.xforward("IPv6:::1", "localhost"))
        d = self.delivered(mid)
        self.assertSpf(d, "fail", "user@example.org", "localhost", "::1")

    def test_trail_loopback_client_gets_the_records_verdict(self):
        mid = au.marker("lo-trail")
        trail = au.postfix_received("localhost", "127.0.0.1", rdns="localhost", qid="4Xloop001")
        msg = au.make_message("user@example.org", mid=mid, top=trail)
        self.send(msg, "user@example.org")
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg, disposition=SPF_FAIL)
        self.assertSpf(d, "fail", "user@example.org", "localhost", "127.0.0.1")

    def test_check_client_ip_loopback_gets_the_records_verdict(self):
        path = os.path.join(self.env.tmpdir, "lo-check.eml")
        with open(path, "wb") as f:
            f.write(au.make_message("user@example.org"))
        r = subprocess.run([harness.lmtpfilter_binary(), "-c", self.env.filter.config_path, "check",
                            "--client-ip", "127.0.0.1", "--helo", "localhost",
                            "--mail-from", "user@example.org", "--rcpt", "alice@example.com",
                            "--json", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        v = json.loads(r.stdout)
        self.assertEqual(v["facts"]["client_ip"], "127.0.0.1", r.stdout)
        self.assertEqual(v["spf"]["result"], "fail", r.stdout)


class SpfSilentDnsTest(SpfTestBase):
    """The only DNS server never answers."""
    DOMAINS = {"example.com": {"mode": "annotate", "checks": "spf"}}

    @classmethod
    def setUpClass(cls):
        cls.silent = harness.SilentDns()
        cls.addClassCleanup(cls.silent.stop)
        cls.FILTER_CONFIG = {"dns_servers": cls.silent.server}
        super().setUpClass()

    def test_dns_timeout_gives_temperror_and_delivers_within_dns_timeout(self):
        mid = au.marker("silent")
        msg = au.make_message("user@example.org", mid=mid)
        _, elapsed = au.timed(self.send, msg, "user@example.org",
                              xfwd=au.xforward(au.SEED_CLIENT, au.SEED_HELO))
        d = self.delivered(mid)
        self.assertOurHeaders(d, msg)
        self.assertSpf(d, "temperror", "user@example.org", au.SEED_HELO, au.SEED_CLIENT)
        self.assertLess(elapsed, au.DNS_TIMEOUT + au.DELIVERY_SLACK,
                        "delivery took %.1f s with dns_timeout=%d" % (elapsed, au.DNS_TIMEOUT))
        print("\n  silent DNS (spf only): delivered in %.2f s, dns_timeout=%d s"
              % (elapsed, au.DNS_TIMEOUT))

    def test_all_checks_with_silent_dns_still_deliver_in_bounded_time(self):
        # The same with SPF, DKIM and DMARC on (example.com's default):
        # a signed message makes every check wait for DNS.
        mid = au.marker("silent-all")
        msg = au.make_message("user@example.org", "alice@example.com", mid=mid,
                              top="DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\n"
                                  " d=example.org; s=sel1; h=from:to:subject;\n"
                                  " bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n"
                                  " b=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")
        f = self.env.make_filter(self.env.dovecot.address)
        f.groups["domain example.com"] = {"mode": "annotate"}
        f.write_config()
        f.start()
        self.addCleanup(f.kill)
        _, elapsed = au.timed(self.send, msg, "user@example.org", address=f.address,
                              xfwd=au.xforward(au.SEED_CLIENT, au.SEED_HELO))
        d = self.delivered(mid)
        self.assertEqual(d.spf.result, "temperror", d.ar_value)
        self.assertEqual([r.result for r in d.dkim], ["temperror"], d.ar_value)
        self.assertEqual(d.dmarc.result, "temperror", d.ar_value)
        print("\n  silent DNS (spf+dkim+dmarc): delivered in %.2f s, dns_timeout=%d s"
              % (elapsed, au.DNS_TIMEOUT))
        # One deadline per lookup, the three checks one after the other.
        self.assertLess(elapsed, 3 * au.DNS_TIMEOUT + au.DELIVERY_SLACK,
                        "delivery took %.1f s" % elapsed)


if __name__ == "__main__":
    unittest.main()
