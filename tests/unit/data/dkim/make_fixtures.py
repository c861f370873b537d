#!/usr/bin/python3
"""Regenerate the DKIM unit-test fixtures in this directory.

    /usr/bin/python3 tests/unit/data/dkim/make_fixtures.py

Writes keys.txt (libopendkim's key-file format: "NAME TXT-VALUE" per line,
also turned into unbound local-data by the DNS test) and one CRLF message
per case, every signature made by dkimpy with t=SIGN_TIME. Keys are fresh on
every run and private keys are not kept: rerunning replaces all fixtures
consistently. test_dkim.c reads the expected header.b= values from the
messages themselves, so it does not change when the fixtures do.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "integration"))
import dkim_sign  # noqa: E402

SIGN_TIME = 1700000000      # test_dkim.c verifies at SIGN_TIME + 100

BASE = (
    b"From: Alice Example <alice@example.org>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: Quarterly figures\r\n"
    b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    b"Message-ID: <fixture-1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b"\r\n"
    b"the figures are below.  \r\n"
    b"Trailing  white space\there matters for simple canonicalisation.\t\r\n"
    b"\r\n"
    b"-- \r\n"
    b"Alice\r\n"
    b"\r\n"
    b"\r\n"
)


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    rsa = dkim_sign.rsa_key(2048)
    ed = dkim_sign.ed25519_key()
    weak = dkim_sign.rsa_key(512)
    net_published = dkim_sign.rsa_key(1024)
    net_signing = dkim_sign.rsa_key(1024)   # not the published one

    with open(os.path.join(HERE, "keys.txt"), "w") as f:
        f.write("rsa._domainkey.example.org %s\n" % rsa.txt)
        f.write("ed._domainkey.example.org %s\n" % ed.txt)
        f.write("weak._domainkey.example.org %s\n" % weak.txt)
        f.write("revoked._domainkey.example.org v=DKIM1; k=rsa; p=\n")
        f.write("net._domainkey.example.net %s\n" % net_published.txt)

    def sign(msg, key, selector, domain="example.org", **kw):
        return dkim_sign.sign(msg, key, domain, selector, when=SIGN_TIME, **kw)

    good = sign(BASE, rsa, "rsa", canon="relaxed/relaxed")
    write("rsa_relaxed.eml", good)
    write("rsa_simple.eml", sign(BASE, rsa, "rsa", canon="simple/simple"))
    write("ed25519.eml", sign(BASE, ed, "ed", canon="relaxed/relaxed"))
    write("length.eml", sign(BASE, rsa, "rsa", canon="simple/simple", length=True)
          + b"-- \r\nA footer appended by a mailing list\r\n")
    write("two_sigs.eml", sign(good, net_signing, "net", domain="example.net"))
    write("body_tampered.eml", good.replace(b"figures are below", b"figures are BELOW"))
    write("header_tampered.eml", good.replace(b"Subject: Quarterly figures",
                                              b"Subject: Quarterly figures!"))
    write("nokey.eml", sign(BASE, rsa, "nokey"))
    write("revoked.eml", sign(BASE, rsa, "revoked"))
    write("weak.eml", sign(BASE, weak, "weak"))
    write("malformed.eml", re.sub(rb"\r\n bh=[^;]*;", b"", good, count=1))
    write("unsigned.eml", BASE)
    many = BASE
    for n in range(10):
        many = sign(many, rsa, "rsa", identity="user%d@example.org" % n)
    write("many.eml", many)
    return 0


if __name__ == "__main__":
    sys.exit(main())
