"""A DNS server that stops answering, end to end: real unbound, Dovecot and
lmtpfilter with SPF, DKIM and DMARC on, lmtpfilter's dns_servers pointing
at a relay that first drops every query and later forwards to unbound.

While the server is silent, the first message waits for its three lookups
(3 x dns_timeout); after that the resolver fails at once and the messages
that follow are delivered far faster, each still with temperror for every
check. When the server answers again, real results return within the
longest hold-down. The daemon logs each change of state once.

And the opposite: a server that is alive but cannot resolve one zone in
time (unbound forwarding it to a silent port) must not be taken for dead:
mail from that zone waits and gets temperror, mail from other domains
right after it still gets real results."""
import select
import socket
import threading
import time
import unittest

import annotate_util as au
import dkim_sign
import harness

DNS_TIMEOUT = 1                # s, dns_timeout of this daemon
CLIENT = "192.0.2.10"          # in example.org's SPF range
HELO = "mx.example.org"
SILENT_SECONDS = 7.0           # messages sent for this long after the first, server silent:
                               # several hold-downs and their probes
SPEEDUP = 10                   # those messages: at least this much faster than one
                               # message per 3 x dns_timeout
DOWN_AFTER_TIMEOUTS = 3        # resolver.h RESOLVER_DOWN_AFTER_TIMEOUTS
HOLD_MAX = 10.0                # s, resolver.h RESOLVER_HOLD_MAX_MS
SLACK = 4.0                    # s, scheduling on a shared machine
RELAY_PACKET_MAX = 65535


class DnsRelay:
    """A UDP port on loopback that drops every query while `silent` and
    relays them to 127.0.0.1:upstream (and the replies back) otherwise."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.server = "127.0.0.1@%d" % self.sock.getsockname()[1]
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.upstream = None
        self.silent = True
        self.dropped = 0
        self.askers = {}
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            ready, _, _ = select.select([self.sock, self.up], [], [], 0.2)
            for s in ready:
                try:
                    data, peer = s.recvfrom(RELAY_PACKET_MAX)
                except OSError:
                    return
                if len(data) < 2:
                    continue
                if self.silent or self.upstream is None:
                    self.dropped += s is self.sock
                elif s is self.sock:
                    self.askers[data[:2]] = peer
                    self.up.sendto(data, ("127.0.0.1", self.upstream))
                elif data[:2] in self.askers:
                    self.sock.sendto(data, self.askers.pop(data[:2]))

    def stop(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()
        self.up.close()


class DnsOutageTest(au.EnvTestCase):
    DOMAINS = {"example.com": {"mode": "annotate", "checks": "spf;dkim;dmarc"}}

    @classmethod
    def setUpClass(cls):
        cls.key = dkim_sign.rsa_key(1024)
        cls.ZONE = [
            'local-zone: "example.org." static',
            au.txt_record("example.org", "v=spf1 ip4:192.0.2.0/24 -all"),
            au.txt_record("_dmarc.example.org", "v=DMARC1; p=none"),
            au.dkim_key_record("sel", "example.org", cls.key.txt),
        ]
        cls.relay = DnsRelay()
        cls.addClassCleanup(cls.relay.stop)
        cls.FILTER_CONFIG = {"dns_servers": cls.relay.server, "dns_timeout": DNS_TIMEOUT}
        super().setUpClass()
        cls.relay.upstream = cls.env.dns.port

    def send_one(self):
        """Deliver one signed message; its (spf, [dkim], dmarc) results and
        the seconds it took."""
        mid = au.marker("outage")
        raw = dkim_sign.sign(au.make_message("user@example.org", "alice@example.com", mid=mid,
                                             from_header="From: <user@example.org>\n"),
                             self.key, "example.org", "sel")
        _, elapsed = au.timed(self.send, raw, "user@example.org",
                              xfwd=au.xforward(CLIENT, HELO))
        d = self.delivered(mid)
        self.assertOurHeaders(d, raw)
        return (d.spf.result, [r.result for r in d.dkim], d.dmarc.result), elapsed

    def send_silent_batch(self):
        """Messages while the server drops every query: the first one, then
        more for SILENT_SECONDS. Returns the seconds of the first, and the
        count and seconds of the others."""
        temperror = ("temperror", ["temperror"], "temperror")
        results, first = self.send_one()
        self.assertEqual(results, temperror)
        start = time.monotonic()
        count = 0
        while time.monotonic() - start < SILENT_SECONDS:
            results, _ = self.send_one()
            count += 1
            self.assertEqual(results, temperror, "message %d" % (count + 1))
        return first, count, time.monotonic() - start

    def wait_for_real_results(self):
        """Messages until one gets real results again; seconds that took."""
        start = time.monotonic()
        while time.monotonic() - start < HOLD_MAX + DNS_TIMEOUT + SLACK:
            results, _ = self.send_one()
            if results == ("pass", ["pass"], "pass"):
                return time.monotonic() - start
            for r in (results[0], results[2]) + tuple(results[1]):
                self.assertIn(r, ("temperror", "pass"), results)
            time.sleep(0.1)
        self.fail("no real results %.0f s after the server came back" % (time.monotonic() - start))

    def test_silent_server_then_back(self):
        # The relay starts silent; answers are cached, so no message here
        # may reach the server before the batch.
        first, count, rest = self.send_silent_batch()
        rate, slow_rate = count / rest, 1 / (3 * DNS_TIMEOUT)
        print("\n  silent DNS, all checks, dns_timeout=%d s: first message %.2f s,"
              " next %d messages %.2f s (%.1f messages/s; one per 3 x dns_timeout is %.2f)"
              % (DNS_TIMEOUT, first, count, rest, rate, slow_rate))
        self.assertGreaterEqual(first, DOWN_AFTER_TIMEOUTS * DNS_TIMEOUT - 0.2)
        self.assertGreater(rate, SPEEDUP * slow_rate,
                           "%d messages in %.1f s with the server silent" % (count, rest))
        self.assertGreater(self.relay.dropped, 0)
        self.assertEqual(len(self.env.filter.log_lines("resolver state=down")), 1,
                         self.env.filter.log())
        self.assertEqual(self.env.filter.log_lines("resolver state=up"), [])

        self.relay.silent = False
        back = self.wait_for_real_results()
        print("  server back: real results again after %.2f s (longest hold-down %.0f s)"
              % (back, HOLD_MAX))
        self.env.filter.wait_log("resolver state=up", timeout=1)
        self.assertEqual(len(self.env.filter.log_lines("resolver state=up")), 1)
        self.assertEqual(len(self.env.filter.log_lines("resolver state=down")), 1)
        self.assertEqual(self.send_one()[0], ("pass", ["pass"], "pass"))


class SlowZoneTest(au.EnvTestCase):
    """unbound answers, but every lookup in slow.example times out."""
    DOMAINS = {"example.com": {"mode": "annotate", "checks": "spf;dkim;dmarc"}}
    SILENT_ZONES = ("slow.example",)
    FILTER_CONFIG = {"dns_timeout": DNS_TIMEOUT}
    SLOW_MESSAGES = 2           # each makes three timeouts in a row

    @classmethod
    def setUpClass(cls):
        cls.key = dkim_sign.rsa_key(1024)
        cls.ZONE = [
            'local-zone: "example.org." static',
            au.txt_record("example.org", "v=spf1 ip4:192.0.2.0/24 -all"),
            au.txt_record("_dmarc.example.org", "v=DMARC1; p=none"),
            au.dkim_key_record("sel", "example.org", cls.key.txt),
        ]
        super().setUpClass()

    def send_from(self, domain):
        mid = au.marker("slowzone")
        raw = dkim_sign.sign(au.make_message("user@" + domain, "alice@example.com", mid=mid,
                                             from_header="From: <user@%s>\n" % domain),
                             self.key, domain, "sel")
        _, elapsed = au.timed(self.send, raw, "user@" + domain, xfwd=au.xforward(CLIENT, HELO))
        d = self.delivered(mid)
        return (d.spf.result, [r.result for r in d.dkim], d.dmarc.result), elapsed

    def test_timeouts_in_one_zone_do_not_hold_the_others_down(self):
        for i in range(self.SLOW_MESSAGES):
            results, elapsed = self.send_from("slow.example")
            self.assertEqual(results, ("temperror", ["temperror"], "temperror"), i)
            self.assertGreaterEqual(elapsed, DOWN_AFTER_TIMEOUTS * DNS_TIMEOUT - 0.2)
        results, elapsed = self.send_from("example.org")
        print("\n  one silent zone behind a live server: next message %s in %.2f s"
              % (results, elapsed))
        self.assertEqual(results, ("pass", ["pass"], "pass"))
        self.assertLess(elapsed, DNS_TIMEOUT)
        self.assertEqual(self.env.filter.log_lines("resolver state="), [],
                         self.env.filter.log())


if __name__ == "__main__":
    unittest.main()
