#!/usr/bin/python3
"""Test keys and DKIM-signed messages, made with dkimpy (Debian python3-dkim).

Used by the unit-test fixture script (tests/unit/data/dkim/make_fixtures.py)
and by the integration tests. Run it with Debian's /usr/bin/python3.

As a module:
    key = rsa_key(2048)                      # or rsa_key(512), ed25519_key()
    key.txt                                  # "v=DKIM1; k=rsa; p=..." for DNS
    signed = sign(msg, key, "example.org", "sel1",
                  canon="relaxed/relaxed", length=False, when=1700000000)

As a command:
    dkim_sign.py keygen {rsa BITS|ed25519} PREFIX
        writes PREFIX.key (private key) and PREFIX.txt (the DNS TXT value)
    dkim_sign.py sign KEYFILE DOMAIN SELECTOR [--canon C] [--length]
                 [--time T] [--identity I] < message > signed
        KEYFILE is a PREFIX.key from keygen; the algorithm follows the key.
"""

import argparse
import base64
import subprocess
import sys
import time
import unittest.mock

import dkim
import nacl.encoding
import nacl.signing


class Key:
    """A private key with its algorithm and the TXT record that publishes it."""

    def __init__(self, algorithm, private, txt):
        self.algorithm = algorithm      # b"rsa-sha256" or b"ed25519-sha256"
        self.private = private          # PEM (RSA) or base64 seed (ed25519), bytes
        self.txt = txt                  # str

    def save(self, prefix):
        with open(prefix + ".key", "wb") as f:
            f.write(self.algorithm + b"\n" + self.private)
        with open(prefix + ".txt", "w") as f:
            f.write(self.txt + "\n")

    @staticmethod
    def load(path):
        with open(path, "rb") as f:
            algorithm, private = f.read().split(b"\n", 1)
        return Key(algorithm, private, "")


def rsa_key(bits):
    """A fresh RSA key of the given size (openssl), any size openssl allows."""
    pem = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
         "rsa_keygen_bits:%d" % bits],
        check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"],
                         input=pem, check=True, capture_output=True).stdout
    txt = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    return Key(b"rsa-sha256", pem, txt)


def ed25519_key():
    """A fresh ed25519 key (RFC 8463)."""
    signing = nacl.signing.SigningKey.generate()
    private = signing.encode(encoder=nacl.encoding.Base64Encoder)
    public = signing.verify_key.encode(encoder=nacl.encoding.Base64Encoder)
    return Key(b"ed25519-sha256", private, "v=DKIM1; k=ed25519; p=" + public.decode())


def sign(message, key, domain, selector, canon="relaxed/relaxed",
         length=False, when=None, identity=None, headers=None):
    """message (bytes, CRLF or LF) with one more DKIM-Signature on top.

    when fixes the t= tag (seconds since the epoch) so fixtures are
    reproducible; the signature's line ending follows the message's."""
    linesep = b"\r\n" if b"\r\n" in message else b"\n"
    header_canon, _, body_canon = canon.partition("/")
    kwargs = dict(
        identity=identity.encode() if identity else None,
        canonicalize=(header_canon.encode(), (body_canon or header_canon).encode()),
        signature_algorithm=key.algorithm,
        include_headers=[h.encode() for h in headers] if headers else None,
        length=length, linesep=linesep)
    if when is not None:
        with unittest.mock.patch("dkim.time.time", return_value=float(when)):
            sig = dkim.sign(message, selector.encode(), domain.encode(),
                            key.private, **kwargs)
    else:
        sig = dkim.sign(message, selector.encode(), domain.encode(),
                        key.private, **kwargs)
    if linesep == b"\n":
        sig = sig.replace(b"\r\n", b"\n")
    return sig + message


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    kg = sub.add_parser("keygen")
    kg.add_argument("type", choices=["rsa", "ed25519"])
    kg.add_argument("args", nargs="+", help="[BITS] PREFIX")
    sg = sub.add_parser("sign")
    sg.add_argument("keyfile")
    sg.add_argument("domain")
    sg.add_argument("selector")
    sg.add_argument("--canon", default="relaxed/relaxed")
    sg.add_argument("--length", action="store_true")
    sg.add_argument("--time", type=int)
    sg.add_argument("--identity")
    opts = parser.parse_args(argv)

    if opts.command == "keygen":
        if opts.type == "rsa":
            if len(opts.args) != 2:
                parser.error("keygen rsa BITS PREFIX")
            rsa_key(int(opts.args[0])).save(opts.args[1])
        else:
            if len(opts.args) != 1:
                parser.error("keygen ed25519 PREFIX")
            ed25519_key().save(opts.args[0])
        return 0

    key = Key.load(opts.keyfile)
    message = sys.stdin.buffer.read()
    sys.stdout.buffer.write(sign(message, key, opts.domain, opts.selector,
                                 canon=opts.canon, length=opts.length,
                                 when=opts.time, identity=opts.identity))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
