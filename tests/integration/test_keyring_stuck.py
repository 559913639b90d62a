"""--auth=USER against a Secret Service that never answers, on a real D-Bus.

A private dbus-daemon runs for this module; on it, a real D-Bus client
(StuckService below: the wire protocol, no library) takes the name
org.freedesktop.secrets and then never reads nor answers a call. The
keyring helper smtpipe-keyring, through libsecret, sends its calls to
that name and waits. smtpipe promises (smtpipe(8), AUTHENTICATION): the
lookup gives up after BOUND_KEYRING_MS and start-up stops with one
line (exit 3) saying the Secret Service did not answer; a helper that
itself never answers is killed after BOUND_PASSWORDEVAL_SECONDS, with
one line naming it; under --inetd the line goes to the log and the
client gets no byte. No elapsed time is asserted: the messages name
which deadline fired, and every wait has a guard against a hang.
"""
import binascii
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HANG, alive, bound, wait_for  # noqa: E402



KEYRING_S = bound("BOUND_KEYRING_MS") // 1000
HELPER_S = bound("BOUND_PASSWORDEVAL_SECONDS")


# --- just enough of the D-Bus wire protocol (little-endian) to own a name
def _align(buf, n):
    return buf + b"\0" * (-len(buf) % n)


def _string(buf, s):
    b = s.encode()
    return _align(buf, 4) + struct.pack("<I", len(b)) + b + b"\0"


def _call(serial, member, signature="", args=()):
    """A METHOD_CALL to the bus itself (org.freedesktop.DBus)."""
    fields = [(1, "o", "/org/freedesktop/DBus"), (2, "s", "org.freedesktop.DBus"),
              (3, "s", member), (6, "s", "org.freedesktop.DBus")]
    if signature:
        fields.append((8, "g", signature))
    head = b"\0" * 16  # endianness, type, flags, version, 3 sizes: filled in below
    for code, sig, val in fields:  # a(yv): each struct 8-aligned
        head = _align(head, 8) + bytes([code, 1]) + sig.encode() + b"\0"
        head = head + bytes([len(val)]) + val.encode() + b"\0" if sig == "g" else _string(head, val)
    body = b""
    for sig, val in zip(signature, args):
        body = _string(body, val) if sig == "s" else _align(body, 4) + struct.pack("<I", val)
    head = b"l\x01\x00\x01" + struct.pack("<III", len(body), serial, len(head) - 16) + head[16:]
    return _align(head, 8) + body


def _message(sock, buf):
    """(one whole message, what follows it) from buf and the socket."""
    while True:
        if len(buf) >= 16:
            blen, _, flen = struct.unpack_from("<III", buf, 4)
            total = 16 + flen + (-(16 + flen) % 8) + blen
            if len(buf) >= total:
                return buf[:total], buf[total:]
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("the bus closed the connection")
        buf += chunk


def _reply_serial(msg):
    """The REPLY_SERIAL header field of msg, or None."""
    o, end = 16, 16 + struct.unpack_from("<I", msg, 12)[0]
    while o < end:
        o += -o % 8
        code, slen = msg[o], msg[o + 1]
        sig = msg[o + 2:o + 2 + slen].decode()
        o += 3 + slen
        if sig in ("u", "s", "o"):
            o += -o % 4
            v = struct.unpack_from("<I", msg, o)[0]
            if sig == "u" and code == 5:
                return v
            o += 4 if sig == "u" else 4 + v + 1
        elif sig == "g":
            o += 2 + msg[o]
        else:
            raise ValueError("header field of type %r" % sig)
    return None


class StuckService:
    """A bus client that owns NAME and from then on never reads or
    answers: every call to the name waits for a reply that never comes."""

    def __init__(self, bus_path, name="org.freedesktop.secrets"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(HANG)
        s.connect(bus_path)
        s.sendall(b"\0AUTH EXTERNAL " + binascii.hexlify(str(os.getuid()).encode()) + b"\r\n")
        line = b""
        while not line.endswith(b"\r\n"):
            line += s.recv(1)
        assert line.startswith(b"OK "), line
        s.sendall(b"BEGIN\r\n" + _call(1, "Hello") + _call(2, "RequestName", "su", (name, 4)))
        buf = b""
        while True:  # the bus's answer to RequestName: 1, the primary owner
            msg, buf = _message(s, buf)
            if msg[1] in (2, 3) and _reply_serial(msg) == 2:
                body = msg[len(msg) - struct.unpack_from("<I", msg, 4)[0]:]
                assert msg[1] == 2 and struct.unpack_from("<I", body)[0] == 1, msg
                break
        self.sock = s

    def close(self):
        self.sock.close()


BUS = {}


def setUpModule():
    """A private session bus: no service activation, anyone may own a name."""
    d = tempfile.mkdtemp(prefix="smtpipe-bus-")
    path = os.path.join(d, "bus")
    with open(os.path.join(d, "bus.conf"), "w") as f:
        f.write("<busconfig><type>session</type><listen>unix:path=%s</listen>"
                "<auth>EXTERNAL</auth><policy context=\"default\">"
                "<allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/>"
                "<allow own=\"*\"/></policy></busconfig>\n" % path)
    p = subprocess.Popen(["dbus-daemon", "--config-file=" + os.path.join(d, "bus.conf"),
                          "--nofork", "--nopidfile"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    BUS.update(dir=d, path=path, proc=p)
    deadline = time.time() + HANG
    while not os.path.exists(path):
        if p.poll() is not None or time.time() > deadline:
            tearDownModule()
            raise RuntimeError("dbus-daemon did not start (scripts/deps.sh --test installs it)")
        time.sleep(0.05)


def tearDownModule():
    p = BUS.get("proc")
    if p:
        p.terminate()
        p.wait(timeout=HANG)
    shutil.rmtree(BUS.get("dir", ""), ignore_errors=True)


def bus_env():
    """The environment of a process that finds only our bus."""
    return harness.bus_env(BUS["path"])


def helper_of(pid):
    """The pid of smtpipe-keyring when it is a child of pid, else None."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == pid and os.readlink("/proc/%s/exe" % p).endswith("/smtpipe-keyring"):
                return int(p)
        except (OSError, IndexError, ValueError):
            pass
    return None


NOT_FOUND = ("--auth=alice: no password in the keyring for user=alice host=localhost "
             "service=smtp (%s); store one with 'secret-tool store --label=msmtpd host "
             "localhost service smtp user alice', or use --auth=alice,EVAL")


class StuckSecretService(unittest.TestCase):
    def setUp(self):
        self.service = StuckService(BUS["path"])
        self.addCleanup(self.service.close)

    def start(self, *args, **kw):
        return subprocess.Popen([harness.binary(), "--port=0", "--auth=alice", "--command=true"]
                                + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=bus_env(), text=True, **kw)

    def helper(self, p):
        """the pid of smtpipe-keyring under p, once it runs (it waits
        KEYRING_S for the stuck service); p must not end before"""
        found = wait_for(lambda: helper_of(p.pid) or p.poll() is not None,
                         "smtpipe-keyring under smtpipe")
        self.assertIsNot(found, True, "smtpipe ended with no smtpipe-keyring under it")
        return found

    def ended(self, p):
        """(exit status, stdout, stderr) of p, which must end by itself."""
        try:
            out, err = p.communicate(timeout=HANG)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("smtpipe still waits for the keyring after %d s" % HANG)
        return p.returncode, out, err

    def test_lookup_gives_up_at_its_own_deadline(self):
        # libsecret's call waits for the service; the helper's own timer
        # cancels it and says so, and start-up stops with one line
        rc, out, err = self.ended(self.start())
        self.assertEqual(rc, 3, err)
        self.assertEqual(out, "")  # never listened
        self.assertEqual(err, "smtpipe: " + NOT_FOUND % (
            "the Secret Service did not answer within %d s" % KEYRING_S) + "\n")

    def test_helper_that_never_answers_is_killed(self):
        # a helper stuck for good (stopped here, so its own timer never
        # runs): smtpipe kills it at its deadline and says which one
        p = self.start()
        helper = self.helper(p)
        os.kill(helper, signal.SIGSTOP)
        self.addCleanup(lambda: alive(helper) and os.kill(helper, signal.SIGKILL))
        rc, out, err = self.ended(p)
        self.assertEqual(rc, 3, err)
        self.assertEqual(out, "")
        self.assertRegex(err, "^smtpipe: " + re.escape(NOT_FOUND % "@@").replace(
            "@@", r"/\S+/smtpipe-keyring did not answer within %d s" % HELPER_S) + "\n$")
        self.assertFalse(alive(helper), "the stuck helper was left behind")

    def test_helper_that_dies_is_reported(self):
        # a helper that crashes (killed here while it waits) gives no
        # answer at all: the line says how it ended
        p = self.start()
        helper = self.helper(p)
        os.kill(helper, signal.SIGKILL)
        rc, out, err = self.ended(p)
        self.assertEqual((rc, out), (3, ""), err)
        self.assertRegex(err, "^smtpipe: " + re.escape(NOT_FOUND % "@@").replace(
            "@@", r"/\S+/smtpipe-keyring failed with wait status %d" % signal.SIGKILL) + "\n$")

    def test_inetd_keeps_it_in_the_log(self):
        # under --inetd with the client's socket on 0, 1 and 2 (xinetd,
        # GNU pies): the line goes to the log, the client gets nothing
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "log")
            p, a = harness.inetd_on_socket(["--auth=alice", "--command=true"], log, env=bus_env())
            got = harness.read_to_eof(a)
            self.assertEqual(p.wait(timeout=HANG), 3)
            self.assertEqual(got, b"", "the client got start-up text")
            with open(log) as f:
                text = f.read()
            self.assertEqual(text.count("event=startup-error"), 1, text)
            self.assertIn(r"(the\x20Secret\x20Service\x20did\x20not\x20answer\x20within\x20"
                          r"%d\x20s)" % KEYRING_S, text)


class HelperUsage(unittest.TestCase):
    def test_usage(self):
        # the helper's own contract: exactly one non-empty USER, else exit 2
        helper = os.path.join(os.path.dirname(harness.real_binary()), "smtpipe-keyring")
        for args in ([], [""], ["alice", "bob"]):
            with self.subTest(args=args):
                r = subprocess.run([helper] + args, capture_output=True, text=True,
                                   timeout=HANG, env=bus_env())
                self.assertEqual((r.returncode, r.stdout, r.stderr),
                                 (2, "", "usage: smtpipe-keyring USER\n"))


if __name__ == "__main__":
    harness.main()
