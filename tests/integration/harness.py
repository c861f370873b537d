"""Integration test harness: real Dovecot LMTP + Sieve, unbound, lmtpfilter.

Everything a test starts lives in one temporary directory and is stopped by
the test's cleanups, also when the test fails:

  Dovecot(tmpdir, users=[...], quota_users=[...], sieve_before=None)
      a private Dovecot instance (LMTP only) on a unix socket, maildir under
      tmpdir, passwd-file users; quota_users get a 1 KB quota so that any
      message above that is refused after DATA (552 5.2.2).
  Unbound(tmpdir, zone_lines)     local-data DNS on a free loopback port
  SilentDns()                     a UDP port that never answers (timeouts)
  Lmtpfilter(tmpdir, downstream, **config)
      the daemon under test, config written from keyword arguments
  LmtpClient(address)             raw LMTP client: send bytes, read replies
  NetworkNamespaces(client_addresses, server_address)
      two private network namespaces joined by a veth pair: a client with
      real outside addresses (184.72.226.23...) and a server side (root only)
  Postfix(tmpdir, lmtp_address, smtp_address, netns=...)
      a private Postfix 3.7 instance: smtpd on smtp_address, virtual domains
      handed over LMTP with XFORWARD; queue() and flush()
  swaks(server, mail_from, rcpts, message, helo, source=, netns=)
      one SMTP transaction from a given source address and namespace

Addresses are "unix:PATH" or "inet:HOST:PORT" strings, the same syntax as the
daemon's configuration, so "through lmtpfilter" and "straight to Dovecot"
differ only in the address a client connects to.

Uses only the standard library (Debian's /usr/bin/python3).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("LMTPFILTER_SOURCE_DIR",
                            os.path.abspath(os.path.join(HERE, "..", "..")))

START_TIMEOUT = 10.0       # seconds to wait for a socket to appear
STOP_TIMEOUT = 10.0        # seconds to wait for a process to exit
REPLY_TIMEOUT = 30.0       # default wait for one LMTP reply
QUOTA_LIMIT = "1K"         # storage quota of the quota_users
MAIL_UID = 65534           # Dovecot refuses to deliver as root: mail is owned by this id
DEFAULT_DOMAIN = "example.com"


def lmtpfilter_binary():
    """The daemon binary: $LMTPFILTER_BIN, else build/lmtpfilter/lmtpfilter."""
    path = os.environ.get("LMTPFILTER_BIN")
    if path:
        return path
    return os.path.join(SOURCE_DIR, "build", "lmtpfilter", "lmtpfilter")


def free_port(kind=socket.SOCK_STREAM):
    """A loopback port that is free right now for TCP and UDP."""
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            tcp.close()
            udp.close()
        return port
    raise RuntimeError("no free loopback port")


def wait_for(predicate, timeout, what):
    """Poll predicate() until it is true; raise with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise RuntimeError("timed out waiting for " + what)


def connectable(address):
    try:
        sock = connect(address, 1.0)
    except OSError:
        return False
    sock.close()
    return True


def connect(address, timeout=REPLY_TIMEOUT):
    """A connected socket for "unix:PATH" or "inet:HOST:PORT"."""
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = address[5:]
    elif address.startswith("inet:"):
        host, _, port = address[5:].rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        target = (host, int(port))
    else:
        raise ValueError("bad address " + address)
    sock.settimeout(timeout)
    try:
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    return sock


def stop_process(proc, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
    """Signal proc and wait; SIGKILL if it does not exit in time."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def group_alive(pgid):
    """Is a process of group pgid still running (zombies, which hold no
    sockets and wait for a reaper we do not control, do not count)?"""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


FOLD_WIDTH = 76            # header lines folded before this column


def folded(words):
    """words joined by spaces, folded before FOLD_WIDTH (LF; crlf() later)."""
    lines = [""]
    for w in words:
        if lines[-1] and len(lines[-1]) + 1 + len(w) > FOLD_WIDTH:
            lines.append("")
        lines[-1] += (" " if lines[-1] else "") + w
    return "\n ".join(lines)


def crlf(text):
    """Text with any line ending turned into CRLF, as bytes."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def make_message(size, subject="test", sender="sender@example.org",
                 recipient="alice@example.com", marker=None):
    """A CRLF message of about `size` bytes with 76-column body lines, some
    starting with a dot (to exercise dot-stuffing)."""
    header = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
              "Message-ID: <%s@test.example>\r\n\r\n"
              % (sender, recipient, subject, marker or subject.replace(" ", "-"))).encode()
    lines = []
    total = len(header)
    i = 0
    while total < size:
        line = (b"." if i % 17 == 0 else b"") + (b"%06d " % i) + b"abcdefghij" * 7
        line = line[:76] + b"\r\n"
        lines.append(line)
        total += len(line)
        i += 1
    return header + b"".join(lines)


class Reply:
    """One (possibly multi-line) LMTP reply."""

    def __init__(self, code, enhanced, text, lines):
        self.code = code            # int
        self.enhanced = enhanced    # "x.y.z" or None
        self.text = text            # text of the last line, without codes
        self.lines = lines          # all lines, decoded, without CRLF

    def __repr__(self):
        return "Reply(%r)" % "\\n".join(self.lines)

    def __iter__(self):
        """Unpacks as (code, enhanced, text, lines)."""
        return iter((self.code, self.enhanced, self.text, self.lines))

    def __eq__(self, other):
        if isinstance(other, tuple):
            return (self.code, self.enhanced) == other
        return NotImplemented


class ConnectionClosed(Exception):
    pass


class LmtpClient:
    """A raw LMTP client: bytes out, parsed replies in, with timeouts."""

    def __init__(self, address, timeout=REPLY_TIMEOUT, read_greeting=True):
        self.address = address
        self.timeout = timeout
        self.sock = connect(address, timeout)
        self.buf = b""
        self.greeting = self.reply() if read_greeting else None

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _read_line(self, deadline):
        while b"\r\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("no complete reply line")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionClosed("connection closed, pending %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("utf-8", "replace")

    def reply(self, timeout=None):
        """Read one reply; raises socket.timeout or ConnectionClosed."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        lines = []
        while True:
            line = self._read_line(deadline)
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        last = lines[-1]
        code = int(last[:3])
        text = last[4:]
        enhanced = None
        first, _, rest = text.partition(" ")
        parts = first.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and first[0] == str(code)[0]:
            enhanced, text = first, rest
        return Reply(code, enhanced, text, lines)

    def is_closed(self, timeout=5.0):
        """True if the peer closes the connection (EOF) within timeout;
        whatever it still sends is discarded."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return False

    def command(self, line):
        self.send(line.encode() + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def lhlo(self, name="client.example.org"):
        return self.command("LHLO " + name)

    def xforward(self, **attrs):
        """XFORWARD with attributes in the given order (NAME=..., ADDR=...)."""
        return self.command("XFORWARD " + " ".join("%s=%s" % kv for kv in attrs.items()))

    @staticmethod
    def dot_stuff(message):
        """The DATA payload for message bytes: dot-stuffed, CRLF-terminated,
        with the final dot line."""
        if message and not message.endswith(b"\r\n"):
            message += b"\r\n"
        if message.startswith(b"."):
            message = b"." + message
        return message.replace(b"\r\n.", b"\r\n..") + b".\r\n"

    def send_data(self, message, nrcpt):
        """Send an already accepted DATA's payload and read one reply per
        accepted recipient."""
        self.send(self.dot_stuff(message))
        return [self.reply() for _ in range(nrcpt)]

    def transaction(self, mail_from, rcpts, message, xforward=None, mail_params="",
                    pipelined=False):
        """MAIL, RCPT..., DATA, message. Returns (mail_reply, rcpt_replies,
        data_replies): data_replies has one reply per accepted recipient, or
        holds the single DATA reply when DATA itself was refused; it is empty
        when MAIL was refused or no recipient was accepted.
        xforward: list of dicts, one XFORWARD command each."""
        for attrs in xforward or []:
            r = self.xforward(**attrs)
            if r.code != 250:
                raise AssertionError("XFORWARD refused: %r" % r)
        mail = "MAIL FROM:<%s>%s" % (mail_from, (" " + mail_params) if mail_params else "")
        if pipelined:
            self.send("".join(["%s\r\n" % mail] + ["RCPT TO:<%s>\r\n" % r for r in rcpts]
                              + ["DATA\r\n"]))
            mail_reply = self.reply()
            rcpt_replies = [self.reply() for _ in rcpts]
            data_reply = self.reply()
        else:
            mail_reply = self.command(mail)
            if mail_reply.code != 250:
                return mail_reply, [], []
            rcpt_replies = [self.command("RCPT TO:<%s>" % r) for r in rcpts]
            if not any(r.code == 250 for r in rcpt_replies):
                self.command("RSET")
                return mail_reply, rcpt_replies, []
            data_reply = self.command("DATA")
        if data_reply.code != 354:
            return mail_reply, rcpt_replies, [data_reply]
        accepted = sum(1 for r in rcpt_replies if r.code == 250)
        return mail_reply, rcpt_replies, self.send_data(message, accepted)

    def quit(self):
        try:
            r = self.command("QUIT")
        finally:
            self.close()
        return r


def deliver(address, mail_from, rcpts, message, xforward=None, lhlo="client.example.org"):
    """One connection, one transaction, QUIT. Returns (mail, rcpts, data)."""
    with LmtpClient(address) as c:
        r = c.lhlo(lhlo)
        if r.code != 250:
            raise AssertionError("LHLO refused: %r" % r)
        result = c.transaction(mail_from, rcpts, message, xforward)
        c.quit()
    return result


def _mail_owner():
    if os.getuid() == 0:
        return MAIL_UID, MAIL_UID
    return os.getuid(), os.getgid()


class LogFile:
    """Reading a component's log file (its path in self.log_path)."""

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_lines(self, containing=""):
        return [l for l in self.log().splitlines() if containing in l]

    def wait_log(self, containing, timeout=10.0, count=1):
        """Wait until `count` log lines contain the text; return them."""
        wait_for(lambda: len(self.log_lines(containing)) >= count, timeout,
                 "log line with %r in %s:\n%s" % (containing, self.log_path, self.log()))
        return self.log_lines(containing)


class Dovecot(LogFile):
    """A private Dovecot LMTP instance in tmpdir."""

    _counter = 0

    def __init__(self, tmpdir, users=("alice", "bob", "carol"), quota_users=(),
                 sieve_before=None, settings=(), maildir_names=None):
        Dovecot._counter += 1
        # maildir_names: {address: NAME}, users whose home and maildir are
        # DIR/home/NAME and DIR/mail/NAME (an address too long for a file name)
        self.maildir_names = {self._address(u): n for u, n in (maildir_names or {}).items()}
        users = list(users) + [u for u in self.maildir_names if u not in users]
        self.dir = os.path.join(tmpdir, "dovecot%d" % Dovecot._counter)
        self.instance = "lmtpf-test-%d-%d" % (os.getpid(), Dovecot._counter)
        self.users = [self._address(u) for u in users]
        self.quota_users = [self._address(u) for u in quota_users]
        for u in self.quota_users:
            if u not in self.users:
                self.users.append(u)
        self.run_dir = os.path.join(self.dir, "run")
        self.socket_path = os.path.join(self.run_dir, "lmtp")
        self.address = "unix:" + self.socket_path
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.mail_dir = os.path.join(self.dir, "mail")
        self.proc = None
        self.sieve_before = None
        self.settings = list(settings)      # extra "key = value" lines
        os.makedirs(self.run_dir)
        os.makedirs(os.path.join(self.dir, "state"))
        uid, gid = _mail_owner()
        for d in ("mail", "home"):
            os.makedirs(os.path.join(self.dir, d))
            os.chown(os.path.join(self.dir, d), uid, gid)
        # mkdtemp makes 0700 directories; the mail uid must reach its maildirs.
        for d in (tmpdir, self.dir):
            os.chmod(d, 0o755)
        if sieve_before is not None:
            self.sieve_before = os.path.join(self.dir, "before.sieve")
            shutil.copyfile(sieve_before, self.sieve_before)
            subprocess.run(["sievec", self.sieve_before], check=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._write_config(uid, gid)

    @staticmethod
    def _address(user):
        return user if "@" in user else user + "@" + DEFAULT_DOMAIN

    def _write_config(self, uid, gid):
        users_file = os.path.join(self.dir, "users")
        with open(users_file, "w") as f:
            for u in self.users:
                extra = ("userdb_quota_rule=*:storage=" + QUOTA_LIMIT
                         if u in self.quota_users else "")
                home = ""
                if u in self.maildir_names:
                    name = self.maildir_names[u]
                    home = os.path.join(self.dir, "home", name)
                    extra += " userdb_mail=maildir:%s" % os.path.join(self.mail_dir, name, "Maildir")
                f.write("%s:{PLAIN}secret::::%s::%s\n" % (u, home, extra.strip()))
        sieve = ("  sieve_before = %s\n" % self.sieve_before) if self.sieve_before else ""
        # The quota plugin only when someone has a quota: it costs a
        # maildirsize update per delivery.
        plugins = "quota" if self.quota_users else ""
        quota = "  quota = maildir:User quota\n" if self.quota_users else ""
        conf = """\
protocols = lmtp
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = {instance}
ssl = no
default_internal_user = {user}
default_login_user = {user}
first_valid_uid = 0
mail_location = maildir:{d}/mail/%d/%n/Maildir
lda_mailbox_autocreate = yes
postmaster_address = postmaster@example.com
hostname = dovecot.test
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
  default_fields = uid={uid} gid={gid} home={d}/home/%d/%n
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
service ipc {{
  chroot =
}}
service old-stats {{
  chroot =
}}
mail_plugins = {plugins}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
{quota}{sieve}}}
{extra}
""".format(d=self.dir, instance=self.instance, users=users_file, uid=uid, gid=gid,
           user=pwd.getpwuid(os.getuid()).pw_name, sieve=sieve,
           plugins=plugins, quota=quota, extra="\n".join(self.settings))
        self.config_path = os.path.join(self.dir, "dovecot.conf")
        with open(self.config_path, "w") as f:
            f.write(conf)

    def start(self):
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        with open(os.path.join(self.dir, "stderr"), "ab") as err:
            self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.config_path],
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)
        try:
            wait_for(lambda: self.proc.poll() is None and connectable(self.address),
                     START_TIMEOUT, "Dovecot's LMTP socket")
        except RuntimeError:
            self.kill()
            raise RuntimeError("Dovecot did not start:\n" + self.log())
        return self

    def _signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self):
        """Stop the master and its children (lmtp, auth...)."""
        if self.proc is None:
            return
        stop_process(self.proc)
        # The master's children leave on their own; make sure.
        self._signal_group(signal.SIGKILL)
        self.proc = None

    def kill(self):
        """SIGKILL the whole instance at once, as a crash would, and wait
        until every process of it is gone: a child still exiting holds its
        listening sockets, and a restart would then refuse with "Dovecot is
        already running?"."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        deadline = time.monotonic() + STOP_TIMEOUT
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def maildir(self, user, folder="INBOX"):
        local, _, domain = self._address(user).partition("@")
        base = os.path.join(self.mail_dir, domain, local, "Maildir")
        if self._address(user) in self.maildir_names:
            base = os.path.join(self.mail_dir, self.maildir_names[self._address(user)], "Maildir")
        return base if folder == "INBOX" else os.path.join(base, "." + folder)

    def message_files(self, user, folder="INBOX"):
        """Paths of the stored messages, oldest first."""
        base = self.maildir(user, folder)
        files = []
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            if os.path.isdir(d):
                files += [os.path.join(d, n) for n in os.listdir(d)]

        def key(path):
            # Maildir names: SECONDS.MMICROSECONDSPpid.host...
            name = os.path.basename(path)
            secs, _, rest = name.partition(".")
            micros = rest[1:].split("P")[0] if rest.startswith("M") else "0"
            return (int(secs) if secs.isdigit() else 0,
                    int(micros) if micros.isdigit() else 0, name)
        return sorted(files, key=key)

    def messages(self, user, folder="INBOX"):
        """The stored bytes of each message, oldest first."""
        out = []
        for path in self.message_files(user, folder):
            with open(path, "rb") as f:
                out.append(f.read())
        return out


def stored_body(stored):
    """The part of a stored message after the header lines Dovecot prepends
    (Return-Path, Delivered-To, Received with its continuation lines)."""
    pos = 0
    prepended = (b"return-path:", b"delivered-to:", b"received:")
    while True:
        end = stored.find(b"\n", pos)
        if end < 0:
            return stored[pos:]
        line = stored[pos:end + 1].lower()
        if line.startswith(prepended):
            pos = end + 1
            # continuation lines of this header
            while stored[pos:pos + 1] in (b" ", b"\t"):
                pos = stored.find(b"\n", pos) + 1
            # only the first Received (Dovecot's own "with LMTP") is ours
            if line.startswith(b"received:"):
                return stored[pos:]
            continue
        return stored[pos:]


def as_stored(message):
    """What Dovecot's maildir holds for message bytes sent over LMTP:
    it saves lines with LF endings (mail_save_crlf = no, the default), so
    every CRLF becomes LF; lone CR and lone LF bytes are kept."""
    return message.replace(b"\r\n", b"\n")


class Unbound:
    """unbound answering zone_lines (local-zone/local-data) on 127.0.0.1:port."""

    def __init__(self, tmpdir, zone_lines=()):
        self.dir = tempfile.mkdtemp(prefix="unbound", dir=tmpdir)
        self.port = free_port()
        self.server = "127.0.0.1@%d" % self.port
        self.log_path = os.path.join(self.dir, "unbound.log")
        self.config_path = os.path.join(self.dir, "unbound.conf")
        lines = ["server:",
                 '  interface: 127.0.0.1',
                 '  port: %d' % self.port,
                 '  username: ""',
                 '  chroot: ""',
                 '  directory: "%s"' % self.dir,
                 '  pidfile: ""',
                 '  do-daemonize: no',
                 '  use-syslog: no',
                 '  logfile: ""',
                 '  verbosity: 1',
                 '  do-ip6: no',
                 '  module-config: "iterator"',
                 '  access-control: 127.0.0.0/8 allow',
                 '  local-zone: "." static']
        lines += ["  " + z for z in zone_lines]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(["unbound", "-d", "-c", self.config_path],
                                         stdout=subprocess.DEVNULL, stderr=err)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("unbound exited:\n" + open(self.log_path).read())
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_for(ready, START_TIMEOUT, "unbound")
        return self

    def stop(self):
        stop_process(self.proc)
        self.proc = None


class NetworkNamespaces:
    """Two private network namespaces joined by a veth pair, so that a test
    client has a real outside address and a server sees it as its peer:

      client namespace  CLIENT_ADDRESSES (184.72.226.23, 192.0.2.10, ...)
      server namespace  server_address (203.0.113.1): Postfix's smtpd

    Nothing is added to the host's own network (no address, route or link),
    so concurrent runs cannot collide; unix sockets still join the two sides
    (Postfix in the server namespace delivers to lmtpfilter's unix socket).
    Names are unique per process and instance. Needs root (CAP_SYS_ADMIN).
    Every process left in either namespace is killed, by pid, on stop()."""

    _counter = 0
    CLIENT_LINK = "veth-client"
    SERVER_LINK = "veth-server"

    def __init__(self, client_addresses=("184.72.226.23",), server_address="203.0.113.1"):
        NetworkNamespaces._counter += 1
        base = "lmtpf-%d-%d" % (os.getpid(), NetworkNamespaces._counter)
        self.client = base + "-client"
        self.server = base + "-server"
        self.client_addresses = list(client_addresses)
        self.server_address = server_address
        self.created = []

    @staticmethod
    def _ip(*args):
        r = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("ip %s: %s" % (" ".join(args), r.stdout.strip()))
        return r.stdout

    def start(self):
        try:
            for ns in (self.client, self.server):
                self._ip("netns", "add", ns)
                self.created.append(ns)
                self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("link", "add", self.CLIENT_LINK, "netns", self.client, "type", "veth",
                     "peer", "name", self.SERVER_LINK, "netns", self.server)
            for addr in self.client_addresses:
                self._ip("-n", self.client, "addr", "add", addr + "/32", "dev", self.CLIENT_LINK)
            self._ip("-n", self.server, "addr", "add", self.server_address + "/32",
                     "dev", self.SERVER_LINK)
            for ns, link in ((self.client, self.CLIENT_LINK), (self.server, self.SERVER_LINK)):
                self._ip("-n", ns, "link", "set", link, "up")
            self._ip("-n", self.client, "route", "add", self.server_address + "/32",
                     "dev", self.CLIENT_LINK)
            for addr in self.client_addresses:
                self._ip("-n", self.server, "route", "add", addr + "/32", "dev", self.SERVER_LINK)
        except Exception:
            self.stop()
            raise
        return self

    def pids(self, ns):
        r = subprocess.run(["ip", "netns", "pids", ns], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return [int(p) for p in r.stdout.split() if p.isdigit()]

    def exec_args(self, ns, argv):
        """argv run inside namespace ns."""
        return ["ip", "netns", "exec", ns] + list(argv)

    def stop(self):
        """Kill whatever still runs inside, then delete the namespaces (the
        veth pair goes with them)."""
        for ns in self.created:
            pids = self.pids(ns)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + STOP_TIMEOUT
            while self.pids(ns) and time.monotonic() < deadline:
                time.sleep(0.05)
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "delete", ns], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        self.created = []


def namespaces_available():
    """None if network namespaces can be made here, else the reason."""
    if os.getuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "ip (iproute2) is not installed"
    probe = NetworkNamespaces()
    try:
        probe.start()
    except (RuntimeError, OSError) as e:
        return str(e)
    finally:
        probe.stop()
    return None


class Postfix(LogFile):
    """A private Postfix 3.7 instance in tmpdir: smtpd on `smtp_address`
    ("HOST:PORT"), mail for `domains` handed to `lmtp_address` (a
    "unix:PATH" of lmtpfilter or Dovecot) with XFORWARD. With `netns`
    (a namespace name) the whole instance runs inside that network
    namespace. No DNS lookups, no reverse lookups; log in maillog_path.
    `settings` are extra main.cf lines."""

    _counter = 0
    HOSTNAME = "mail.example.com"

    def __init__(self, tmpdir, lmtp_address, smtp_address, domains=(DEFAULT_DOMAIN,),
                 netns=None, settings=()):
        Postfix._counter += 1
        self.dir = os.path.join(tmpdir, "postfix%d" % Postfix._counter)
        self.config_dir = os.path.join(self.dir, "etc")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        self.maillog_path = os.path.join(self.dir, "maillog")
        self.log_path = self.maillog_path
        self.smtp_address = smtp_address
        self.smtp_host, _, port = smtp_address.rpartition(":")
        self.smtp_port = int(port)
        self.netns = netns
        self.running_ = False
        if not lmtp_address.startswith("unix:"):
            raise ValueError("Postfix here delivers to unix sockets only: " + lmtp_address)
        for d in (self.config_dir, self.queue_dir, self.data_dir):
            os.makedirs(d)
        # Postfix's unprivileged daemons must reach the maillog directory and
        # lmtpfilter's socket.
        for d in (tmpdir, self.dir):
            os.chmod(d, 0o755)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
        main_cf = [
            "compatibility_level = 3.6",
            "queue_directory = " + self.queue_dir,
            "data_directory = " + self.data_dir,
            "meta_directory = /etc/postfix",
            "command_directory = /usr/sbin",
            "daemon_directory = /usr/lib/postfix/sbin",
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "myhostname = " + self.HOSTNAME,
            "mydomain = example.com",
            "myorigin = $myhostname",
            "mydestination =",
            "relay_domains =",
            "local_recipient_maps =",
            "alias_maps =",
            "alias_database =",
            "inet_protocols = ipv4",
            "inet_interfaces = " + self.smtp_host,
            "mynetworks = 127.0.0.0/8",
            "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
            "virtual_mailbox_domains = " + " ".join(domains),
            "virtual_mailbox_maps = static:ok",
            "virtual_transport = lmtp:" + lmtp_address,
            "lmtp_send_xforward_command = yes",
            "disable_dns_lookups = yes",
            "smtp_dns_support_level = disabled",
            "lmtp_dns_support_level = disabled",
            "smtpd_peername_lookup = no",
            "smtputf8_enable = no",
            "biff = no",
            "maillog_file = " + self.maillog_path,
            "maillog_file_prefixes = " + self.dir,
            # A deferred message waits for flush(), not for a timer.
            "queue_run_delay = 3600s",
            "minimal_backoff_time = 3600s",
            "maximal_backoff_time = 3600s",
        ] + list(settings)
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            f.write("\n".join(main_cf) + "\n")
        services = [
            ("%s inet" % smtp_address, "n - n - - smtpd"),
            ("pickup fifo", "n - n 60 1 pickup"),
            ("cleanup unix", "n - n - 0 cleanup"),
            ("qmgr fifo", "n - n 300 1 qmgr"),
            ("rewrite unix", "- - n - - trivial-rewrite"),
            ("bounce unix", "- - n - 0 bounce"),
            ("defer unix", "- - n - 0 bounce"),
            ("trace unix", "- - n - 0 bounce"),
            ("verify unix", "- - n - 1 verify"),
            ("flush unix", "n - n 1000? 0 flush"),
            ("proxymap unix", "- - n - - proxymap"),
            ("showq unix", "n - n - - showq"),
            ("error unix", "- - n - - error"),
            ("retry unix", "- - n - - error"),
            ("discard unix", "- - n - - discard"),
            ("smtp unix", "- - n - - smtp"),
            ("lmtp unix", "- - n - - lmtp"),
            ("anvil unix", "- - n - 1 anvil"),
            ("scache unix", "- - n - 1 scache"),
            ("postlog unix-dgram", "n - n - 1 postlogd"),
        ]
        with open(os.path.join(self.config_dir, "master.cf"), "w") as f:
            for name, rest in services:
                f.write("%-28s %s\n" % (name, rest))

    def _command(self, *argv, check=True):
        args = list(argv)
        if self.netns:
            args = ["ip", "netns", "exec", self.netns] + args
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if check and r.returncode != 0:
            raise RuntimeError("%s: exit %d\n%s\nmaillog:\n%s"
                               % (" ".join(args), r.returncode, r.stdout, self.log()))
        return r

    def master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self):
        """Start the master; returns once it listens (first start also
        creates the queue, 2-3 s)."""
        r = self._command("postfix", "-c", self.config_dir, "start", check=False)
        if r.returncode != 0:
            # Seen once on a loaded machine: exit 1, nothing printed or
            # logged. Once more, and then say what both attempts printed.
            time.sleep(1.0)
            again = self._command("postfix", "-c", self.config_dir, "start", check=False)
            if again.returncode != 0:
                raise RuntimeError("postfix start: exit %d, then %d\n%s\n%s\nmaillog:\n%s"
                                   % (r.returncode, again.returncode, r.stdout, again.stdout,
                                      self.log()))
        self.running_ = True
        try:
            wait_for(lambda: "daemon started" in self.log(), START_TIMEOUT * 2,
                     "Postfix's master")
        except RuntimeError:
            self.stop()
            raise RuntimeError("Postfix did not start:\n" + self.log())
        return self

    def stop(self):
        """postfix stop and wait for the master to exit (SIGKILL after the
        timeout). Its children leave with it."""
        if not self.running_:
            return
        pid = self.master_pid()
        self._command("postfix", "-c", self.config_dir, "stop", check=False)
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid is not None and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.running_ = False

    def queue(self):
        """The messages in the queue: a list of dicts as postqueue -j prints
        them (queue_name, queue_id, sender, recipients with delay_reason)."""
        import json
        r = self._command("postqueue", "-c", self.config_dir, "-j")
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def flush(self):
        """Deliver everything in the queue now (postqueue -f)."""
        self._command("postqueue", "-c", self.config_dir, "-f")



class SmtpResult:
    """What swaks did: exit status, its transcript, and the queue id from
    the final "250 ... queued as ID" reply (None if not queued)."""

    def __init__(self, returncode, transcript):
        self.returncode = returncode
        self.transcript = transcript
        import re
        m = re.search(r"<-\s+250 .*queued as ([0-9A-Za-z]+)", transcript)
        self.queue_id = m.group(1) if m else None

    def __repr__(self):
        return "SmtpResult(%d, %r)" % (self.returncode, self.transcript[-2000:])


def swaks(server, mail_from, rcpts, message, helo, source=None, netns=None,
          timeout=REPLY_TIMEOUT):
    """Send message bytes over SMTP with swaks to server "HOST:PORT", from
    the local address `source`, inside network namespace `netns` if given."""
    args = ["swaks", "--server", server, "--helo", helo, "--from", mail_from,
            "--to", ",".join(rcpts), "--data", "-", "--timeout", str(int(timeout))]
    if source:
        args += ["--local-interface", source]
    if netns:
        args = ["ip", "netns", "exec", netns] + args
    if isinstance(message, str):
        message = message.encode()
    # swaks ends the data with CRLF "." CRLF itself.
    if message.endswith(b"\r\n"):
        message = message[:-2]
    r = subprocess.run(args, input=message, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout + 10)
    return SmtpResult(r.returncode, r.stdout.decode("utf-8", "replace"))


class SilentDns:
    """A bound UDP (and TCP) loopback port that never answers: queries time out."""

    def __init__(self):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.server = "127.0.0.1@%d" % self.port

    def stop(self):
        self.udp.close()


class FakeLmtpServer:
    """A downstream on a unix socket for what a real Dovecot cannot be made
    to show on cue: failures, a refused MAIL, no CHUNKING, a connection
    closed between transactions. It answers LHLO/MAIL/RCPT/RSET like
    Dovecot; after DATA or BDAT it does what `on_data` says:
      "drop"    read drop_after bytes of the message, then close
      "stall"   read the whole message and never answer
      "accept"  read the message, keep it in .messages (dot-unstuffed for
                DATA), answer 250 for each recipient
    chunking: offer CHUNKING (BDAT) besides DATA, as Dovecot does.
    mail_reply: the answer to MAIL; RCPTs after a refused MAIL get 503.
    close_after: close the connection after that many accepted messages.
    drop_at_rcpt: close the connection when that RCPT (counting from 1)
    arrives, without answering it.
    rcpt_reply, data_reply: functions of a recipient's address (bytes)
    giving the raw bytes (CRLF included) that answer its RCPT, or that are
    its reply after the message; None (or a function returning None) for
    the usual answer. For replies of any length, content and line count.
    Every byte received is kept in .received (and each read in .reads),
    command lines in .commands, and .connections counts the connections."""

    def __init__(self, tmpdir, on_data="drop", drop_after=1000, chunking=False,
                 mail_reply=b"250 2.1.0 OK", close_after=None, drop_at_rcpt=None,
                 rcpt_reply=None, data_reply=None):
        import threading
        self.path = os.path.join(tmpdir, "fake-lmtp-%d.sock" % id(self))
        self.address = "unix:" + self.path
        self.on_data = on_data
        self.drop_after = drop_after
        self.chunking = chunking
        self.mail_reply = mail_reply
        self.close_after = close_after
        self.drop_at_rcpt = drop_at_rcpt
        self.rcpt_reply = rcpt_reply or (lambda address: None)
        self.data_reply = data_reply or (lambda address: None)
        self.rcpts_seen = 0
        self.received = b""
        self.reads = []
        self.commands = []
        self.messages = []
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(16)
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        import threading
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _recv(self, conn):
        chunk = conn.recv(65536)
        if not chunk:
            raise EOFError
        self.received += chunk
        self.reads.append(chunk)
        return chunk

    def _read_message(self, conn, buf, size):
        """The message after DATA (size None: up to the final dot) or BDAT
        (size bytes); returns (message, the bytes after it), or (None, b"")
        when dropping. Stalling reads until the peer goes away."""
        got = buf
        while True:
            if self.on_data != "accept":
                if self.on_data == "drop" and len(got) >= self.drop_after:
                    return None, b""
            elif size is not None and len(got) >= size:
                return got[:size], got[size:]
            elif size is None and (got.startswith(b".\r\n") or b"\r\n.\r\n" in got):
                end = 0 if got.startswith(b".\r\n") else got.index(b"\r\n.\r\n") + 2
                lines = got[:end].split(b"\r\n")
                body = b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)
                return body, got[end + 3:]
            got += self._recv(conn)

    def _serve(self, conn):
        buf = b""
        rcpts = 0
        addresses = []
        mail_ok = False
        done = 0
        try:
            conn.sendall(b"220 fake LMTP\r\n")
            while True:
                while b"\r\n" not in buf:
                    buf += self._recv(conn)
                line, _, buf = buf.partition(b"\r\n")
                self.commands.append(line)
                words = line.split(b" ")
                verb = words[0].upper()
                if verb == b"LHLO":
                    conn.sendall(b"250-fake\r\n250-8BITMIME\r\n" +
                                 (b"250-CHUNKING\r\n" if self.chunking else b"") +
                                 b"250-ENHANCEDSTATUSCODES\r\n250 PIPELINING\r\n")
                elif verb == b"MAIL":
                    mail_ok = self.mail_reply.startswith(b"2")
                    conn.sendall(self.mail_reply + b"\r\n")
                elif verb == b"RCPT":
                    self.rcpts_seen += 1
                    if self.rcpts_seen == self.drop_at_rcpt:
                        return
                    address = line[line.find(b"<") + 1:line.rfind(b">")]
                    custom = self.rcpt_reply(address) if mail_ok else None
                    if custom is not None:
                        if custom.startswith(b"2"):
                            rcpts += 1
                            addresses.append(address)
                        conn.sendall(custom)
                    elif mail_ok:
                        rcpts += 1
                        addresses.append(address)
                        conn.sendall(b"250 2.1.5 OK\r\n")
                    else:
                        conn.sendall(b"503 5.5.1 MAIL needed first\r\n")
                elif verb == b"DATA" or (verb == b"BDAT" and self.chunking):
                    size = None
                    if verb == b"DATA":
                        conn.sendall(b"354 OK\r\n")
                    else:
                        size = int(words[1])
                    message, buf = self._read_message(conn, buf, size)
                    if message is None:   # dropped
                        conn.close()
                        return
                    self.messages.append(message)
                    conn.sendall(b"".join(self.data_reply(a) or b"250 2.0.0 <r%d> Saved\r\n" % i
                                          for i, a in enumerate(addresses)))
                    rcpts = 0
                    addresses = []
                    mail_ok = False
                    done += 1
                    if self.close_after is not None and done >= self.close_after:
                        conn.close()
                        return
                elif verb == b"QUIT":
                    conn.sendall(b"221 2.0.0 Bye\r\n")
                    return
                elif verb in (b"RSET", b"NOOP"):
                    rcpts = 0
                    addresses = []
                    mail_ok = False if verb == b"RSET" else mail_ok
                    conn.sendall(b"250 2.0.0 OK\r\n")
                else:
                    conn.sendall(b"500 5.5.1 Unknown command\r\n")
        except (OSError, EOFError):
            return
        finally:
            conn.close()

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class Lmtpfilter(LogFile):
    """The daemon under test. Keyword arguments become [lmtpfilter] keys;
    `defaults` is a dict for [defaults] and `domains` maps a domain to a dict
    for its [domain NAME] group. Lists are joined with ';'."""

    def __init__(self, tmpdir, downstream, defaults=None, domains=None, listen=None,
                 **config):
        self.dir = tempfile.mkdtemp(prefix="lmtpfilter", dir=tmpdir)
        os.chmod(self.dir, 0o755)   # an MTA running as another user reaches the socket
        self.socket_path = os.path.join(self.dir, "filter.sock")
        self.address = "unix:" + self.socket_path
        self.config_path = os.path.join(self.dir, "lmtpfilter.conf")
        self.log_path = os.path.join(self.dir, "lmtpfilter.log")
        self.proc = None
        keys = {
            "listen": listen or self.address,
            "downstream": downstream,
            "authserv_id": "mx.example.com",
            "mta_hostnames": "mx.example.com",
            "spool_dir": self.dir,
            "timeout": 30,
            "dns_timeout": 2,
        }
        keys.update(config)
        if isinstance(keys["listen"], (list, tuple)):
            listens = keys["listen"]
        else:
            listens = [keys["listen"]]
        self.address = listens[0]
        self.addresses = listens
        self.groups = {"lmtpfilter": keys, "defaults": dict(defaults or {"mode": "off"})}
        for name, group in (domains or {}).items():
            self.groups["domain " + name] = dict(group)
        self.write_config()

    def write_config(self):
        out = []
        for group, keys in self.groups.items():
            out.append("[%s]" % group)
            for k, v in keys.items():
                if isinstance(v, (list, tuple)):
                    v = ";".join(str(x) for x in v)
                elif isinstance(v, bool):
                    v = "yes" if v else "no"
                out.append("%s = %s" % (k, v))
            out.append("")
        with open(self.config_path, "w") as f:
            f.write("\n".join(out))

    def start(self, wait=True):
        binary = lmtpfilter_binary()
        if not os.access(binary, os.X_OK):
            raise RuntimeError("lmtpfilter binary not found at %s (set LMTPFILTER_BIN)" % binary)
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary, "-c", self.config_path],
                                     stdout=self.log_file, stderr=self.log_file)
        if wait:
            try:
                wait_for(lambda: self.proc.poll() is not None or connectable(self.address),
                         START_TIMEOUT, "lmtpfilter's socket")
            except RuntimeError:
                self.kill()
                raise RuntimeError("lmtpfilter did not start:\n" + self.log())
            if self.proc.poll() is not None:
                raise RuntimeError("lmtpfilter exited with %d:\n%s"
                                   % (self.proc.returncode, self.log()))
        return self

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait; returns the exit status (SIGKILL after timeout)."""
        if self.proc is None:
            return None
        stop_process(self.proc, signal.SIGTERM, timeout)
        rc = self.proc.returncode
        self.proc = None
        self.log_file.close()
        return rc

    def kill(self):
        if self.proc is None:
            return
        stop_process(self.proc, signal.SIGKILL)
        self.proc = None
        self.log_file.close()

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid


    def cpu_times(self):
        """(user, system) CPU seconds the daemon has used so far, all its
        threads, those that have ended included."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def cpu_seconds(self):
        """User plus system CPU time the daemon has used so far."""
        return sum(self.cpu_times())

    def status(self, field):
        """/proc/PID/status value in kB (VmRSS, VmHWM...)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None


def parse_log_fields(line):
    """key=value fields of a log line; values may be "double quoted"."""
    fields = {}
    i = 0
    n = len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        start = i
        while i < n and line[i] not in " =":
            i += 1
        if i >= n or line[i] != "=":
            while i < n and line[i] != " ":
                i += 1
            continue
        key = line[start:i]
        i += 1
        if i < n and line[i] == '"':
            i += 1
            value = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(line[i])
                i += 1
            i += 1
            fields[key] = "".join(value)
        else:
            start = i
            while i < n and line[i] != " ":
                i += 1
            fields[key] = line[start:i]
    return fields


class HarnessTestCase(unittest.TestCase):
    """Base class: a temp dir per test and helpers that register cleanups,
    so every process is stopped and every file removed even on failure."""

    keep_tmp = bool(os.environ.get("LMTPFILTER_KEEP_TMP"))

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="lmtpf-it-")
        if not self.keep_tmp:
            self.addCleanup(shutil.rmtree, self.tmpdir, True)

    def start_dovecot(self, **kw):
        d = Dovecot(self.tmpdir, **kw)
        self.addCleanup(d.stop)
        self.addCleanup(self._dump_on_failure, "dovecot log", d.log)
        return d.start()

    def start_filter(self, downstream, **config):
        f = Lmtpfilter(self.tmpdir, downstream, **config)
        self.addCleanup(f.kill)
        self.addCleanup(self._dump_on_failure, "lmtpfilter log", f.log)
        return f.start()

    def start_unbound(self, zone_lines=()):
        u = Unbound(self.tmpdir, zone_lines)
        self.addCleanup(u.stop)
        return u.start()

    def start_namespaces(self, client_addresses=("184.72.226.23",),
                         server_address="203.0.113.1"):
        ns = NetworkNamespaces(client_addresses, server_address)
        self.addCleanup(ns.stop)
        return ns.start()

    def start_postfix(self, lmtp_address, smtp_address, **kw):
        p = Postfix(self.tmpdir, lmtp_address, smtp_address, **kw)
        self.addCleanup(p.stop)
        self.addCleanup(self._dump_on_failure, "Postfix maillog", p.log)
        return p.start()

    def client(self, address, lhlo=True, **kw):
        c = LmtpClient(address, **kw)
        self.addCleanup(c.close)
        if lhlo:
            r = c.lhlo()
            self.assertEqual(r.code, 250, r)
        return c

    def _dump_on_failure(self, title, get_text):
        outcome = getattr(self, "_outcome", None)
        failed = False
        if outcome is not None:
            result = getattr(outcome, "result", None)
            errors = getattr(outcome, "errors", None)
            if errors:
                failed = any(exc is not None for _, exc in errors)
            elif result is not None:
                failed = any(t is self for t, _ in result.failures + result.errors)
            if not outcome.success:
                failed = True
        if failed:
            text = get_text()
            print("\n----- %s (%s) -----\n%s" % (title, self.id(), text[-8000:]))

    def assertReply(self, reply, code, enhanced=None, msg=None):
        """reply has this code (and enhanced code if given)."""
        self.assertEqual(reply.code, code, msg or reply)
        if enhanced is not None:
            self.assertEqual(reply.enhanced, enhanced, msg or reply)
