"""README promises that had no test at their boundary (issue 20).

Each case drives the real binary over a real socket and asserts the
whole reply (code, enhanced code and text), what was delivered, and
the log line. No sleeps: a reply to the end of DATA comes after the
delivery command has exited, so the recorder's files are final by then;
where there is no reply, the test waits for the daemon's log line.
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def reply(c):
    """The next reply as one string: "CODE text" (multi-line joined by |)."""
    code, lines = c.reply()
    return "%d %s" % (code, "|".join(lines))


def rfc1870_size(wire):
    """RFC 1870 section 3: the octets of the message with its CRLFs, not
    counting the terminating "." CRLF nor the dots added by stuffing."""
    assert wire.endswith(b"\r\n.\r\n")
    text = wire[:-3]
    return len(text) - sum(1 for line in text.split(b"\r\n") if line.startswith(b"."))


class HandedOnWhole(unittest.TestCase):
    def test_command_reading_half_of_a_spooled_message_gets_451(self):
        # over 1 MiB: the message is in the spool file, not the memory
        # buffer, so this is the file path of the "did not read it all" check
        script = ("import sys\n"
                  "sys.stdin.buffer.read(600000)\n"
                  "sys.exit(0)\n")
        cmd = "%s -c %s -f %%F --" % (shlex.quote(sys.executable), shlex.quote(script))
        with harness.Server(command=cmd) as srv:
            c = srv.raw(timeout=60).greet().data()
            body = (b"z" * 998 + b"\r\n") * 1200  # 1.2 MB
            c.send(body + b".\r\n")
            self.assertEqual(reply(c), "451 4.3.0 Delivery command did not read the whole message")
            c.cmd("NOOP", 250)  # the session goes on
            c.cmd("QUIT", 221)
            log = srv.log()
            self.assertRegex(log, r"event=command-short-read unread=\d+")
            self.assertRegex(log, r'event=deferred msg=\S+ nrcpt=1 size=\d+ result=451 status=0 '
                                  r'from="a@b"')

    def test_command_reading_all_of_a_spooled_message_gets_250(self):
        # the same size read whole: the check above is about the reading
        script = "import sys\nsys.stdin.buffer.read()\n"
        cmd = "%s -c %s -f %%F --" % (shlex.quote(sys.executable), shlex.quote(script))
        with harness.Server(command=cmd) as srv:
            c = srv.raw(timeout=60).greet().data()
            c.send((b"z" * 998 + b"\r\n") * 1200 + b".\r\n")
            self.assertEqual(reply(c), "250 2.0.0 Ok: delivered")


# Mount a small tmpfs on the spool directory inside a private mount
# namespace (unshare -m), then run smtpipe there: "$1" is the directory.
PRIVATE_TMPFS = 'mount -t tmpfs -o size=256k smtpipe-spool "$1" || exit 97; shift; exec "$@"'


class FullSpool(unittest.TestCase):
    def test_full_spool_dir_gets_452_delivers_nothing_and_the_session_goes_on(self):
        self.assertEqual(os.geteuid(), 0, "a tmpfs mount needs root (unshare -m)")
        spool = tempfile.mkdtemp(prefix="smtpipe-spool-")
        try:
            prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c", PRIVATE_TMPFS,
                      "sh", spool]
            with harness.Server("--spool-dir=" + spool, prefix=prefix) as srv:
                c = srv.raw(timeout=60).greet()
                # 400 KB: the disk fills at the end of DATA; 800 KB: in the
                # middle, and the rest of the text is read and dropped
                for kb in (400, 800):
                    c.data().send((b"f" * 998 + b"\r\n") * kb + b".\r\n")
                    self.assertEqual(reply(c), "452 4.3.1 Insufficient system storage")
                self.assertEqual(srv.deliveries(), [])
                self.assertEqual(len(re.findall(r"event=rejected reason=spool-error .*size=\d+",
                                                srv.log())), 2)
                # the session goes on: a message that fits the spool is delivered
                fits = (b"g" * 998 + b"\r\n") * 100  # 100 KB: spooled to the tmpfs
                c.message(fits + b".\r\n", 250)
                c.cmd("QUIT", 221)
                d = srv.deliveries(1)
                self.assertEqual(len(d), 1)
                self.assertTrue(d[0].stdin.endswith(fits.replace(b"\r\n", b"\n")))
            self.assertEqual(os.listdir(spool), [], "the mount stayed in its namespace")
        finally:
            os.rmdir(spool)


MAX = 4096


class Bounds(unittest.TestCase):
    """N passes, N+1 is refused, with the whole reply and the log line."""

    def setUp(self):
        self.srv = harness.Server("--max-message-size=%d" % MAX, "--max-recipients=3",
                                  "--max-line-length=100")

    def tearDown(self):
        self.srv.stop()
        self.assertNotIn("session-crashed", self.srv.log())

    def send_sized(self, wire):
        c = self.srv.raw().greet().data()
        c.send(wire)
        got = reply(c)
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
        return got

    @staticmethod
    def message_of(size, count):
        """Wire text (ending in CRLF.CRLF) of which count(wire) == size;
        it has stuffed dots and several lines, so the count matters."""
        head = b"Subject: size\r\n\r\n..a stuffed dot\r\n"
        for filler in range(0, size):
            text = b"x" * filler
            lines = [text[i:i + 60] for i in range(0, len(text), 60)]
            wire = head + b"".join(l + b"\r\n" for l in lines) + b".\r\n"
            if count(wire) == size:
                return wire
        raise AssertionError("no message of size %d" % size)

    def check_size_boundary(self, count):
        at = self.message_of(MAX, count)
        over = self.message_of(MAX + 1, count)
        self.assertEqual(self.send_sized(at), "250 2.0.0 Ok: delivered")
        self.assertEqual(self.send_sized(over), "552 5.3.4 Message size exceeds fixed limit")
        d = self.srv.deliveries()
        self.assertEqual(len(d), 1)
        want = at[:-3].replace(b"\r\n..a", b"\r\n.a").replace(b"\r\n", b"\n")
        self.assertTrue(d[0].stdin.endswith(want), d[0].stdin[-200:])
        self.assertRegex(self.srv.log(), r"event=rejected reason=too-big .*size=%d " % (MAX + 1))

    def test_message_size_max_and_max_plus_one_as_rfc1870_counts(self):
        # RFC 1870: CRLF counts two octets, the transparency dots none
        self.check_size_boundary(rfc1870_size)

    def test_size_parameter_max_and_max_plus_one(self):
        c = self.srv.raw().greet()
        c.send("MAIL FROM:<a@b> SIZE=%d\r\n" % (MAX + 1))
        self.assertEqual(reply(c), "552 5.3.4 Message size exceeds fixed limit")
        c.send("MAIL FROM:<a@b> SIZE=%d\r\n" % MAX)
        self.assertEqual(reply(c), "250 2.1.0 Ok")

    def test_recipients_max_and_max_plus_one(self):
        c = self.srv.raw().greet()
        c.cmd("MAIL FROM:<a@b>", 250)
        for i in range(3):
            c.send("RCPT TO:<r%d@x.test>\r\n" % i)
            self.assertEqual(reply(c), "250 2.1.5 Ok")
        c.send("RCPT TO:<r3@x.test>\r\n")
        self.assertEqual(reply(c), "452 4.5.3 Too many recipients")
        c.cmd("DATA", 354)
        c.send("Subject: r\r\n\r\nx\r\n.\r\n")
        self.assertEqual(reply(c), "250 2.0.0 Ok: delivered")
        self.assertEqual(self.srv.deliveries(1)[0].recipients, ["r0@x.test", "r1@x.test", "r2@x.test"])
        self.assertIn("event=too-many-recipients limit=3", self.srv.log())

    def test_text_line_max_and_max_plus_one(self):
        # --max-line-length counts the CRLF: 98 + 2 = 100 passes
        at = b"Subject: l\r\n\r\n" + b"y" * 98 + b"\r\n.\r\n"
        over = b"Subject: l\r\n\r\n" + b"y" * 99 + b"\r\n.\r\n"
        self.assertEqual(self.send_sized(at), "250 2.0.0 Ok: delivered")
        self.assertEqual(self.send_sized(over), "500 5.5.2 Error: line too long in message text")
        self.assertEqual(len(self.srv.deliveries()), 1)
        self.assertRegex(self.srv.log(), r"event=rejected reason=line-too-long .*longest-line=99\b")

    def test_stuffed_dot_line_not_counted(self):
        # RFC 5321 4.5.3.1.6: the transparency dot is not part of the line
        at = b"Subject: l\r\n\r\n.." + b"y" * 97 + b"\r\n.\r\n"  # 98 + CRLF
        over = b"Subject: l\r\n\r\n.." + b"y" * 98 + b"\r\n.\r\n"
        self.assertEqual(self.send_sized(at), "250 2.0.0 Ok: delivered")
        self.assertEqual(self.send_sized(over), "500 5.5.2 Error: line too long in message text")

    def test_command_line_max_and_max_plus_one(self):
        # 512 octets with CRLF (RFC 5321 4.5.3.1.4)
        c = self.srv.raw().greet()
        c.send("NOOP " + "x" * 505 + "\r\n")
        self.assertEqual(reply(c), "250 2.0.0 Ok")
        c.send("NOOP " + "x" * 506 + "\r\n")
        self.assertEqual(reply(c), "500 5.5.2 Error: line too long")
        c.cmd("NOOP", 250)


class ErrorPaths(unittest.TestCase):
    """Paths that only a hostile machine takes: out of descriptors, a
    client that does not read, a broken TLS record."""

    def test_accept_out_of_descriptors_waits_then_serves(self):
        import resource
        # the daemon's own accept (a spare's: test_pool.py)
        with harness.Server("--spare-sessions=0") as srv:
            pid = srv.proc.pid
            used = {int(x) for x in os.listdir("/proc/%d/fd" % pid)}
            lowest_free = min(set(range(len(used) + 1)) - used)
            old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
            # no descriptor left for accept(): EMFILE
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest_free, old[1]))
            c = srv.raw(timeout=60)
            log = srv.wait_log('event=accept-failed error="Too many open files"')
            self.assertNotIn("event=session-start", log)
            resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
            # the client waited in the backlog and is served now
            c.greet()
            c.message(b"Subject: after EMFILE\r\n\r\nx\r\n.\r\n", 250)
            c.cmd("QUIT", 221)
            self.assertEqual(len(srv.deliveries(1)), 1)
            self.assertNotIn("session-crashed", srv.log())

    def test_client_that_does_not_read_its_replies(self):
        # pipelined HELPs whose replies fill the socket: the session's
        # send() gets EAGAIN and it waits for room, losing nothing
        import socket
        import threading
        from test_auth import SyscallTrace
        n = 40000
        with harness.Server() as srv:
            trace = SyscallTrace(srv.proc.pid)
            try:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(("127.0.0.1", srv.port))
                c = harness.RawClient(0, sock=sock, timeout=120)
                c.expect(220)
                c.cmd("EHLO c", 250)
                sender = threading.Thread(target=c.send, args=(b"HELP\r\n" * n,))
                sender.start()
                deadline = time.time() + 60
                while True:
                    if re.search(r"sendto\(.*\) = -1 EAGAIN", trace.text()):  # not a pipe's
                        break
                    self.assertLess(time.time(), deadline, "the session never found the socket full")
                    time.sleep(0.05)
                for i in range(n):
                    code, lines = c.reply()
                    if code != 214 or lines[-1] != "2.0.0 End of HELP info":
                        self.fail("reply %d: got %d %r" % (i, code, lines))
                sender.join()
                c.cmd("QUIT", 221)
                c.close()
            finally:
                trace.stop()
            self.assertNotIn("session-crashed", srv.log())

    def test_broken_tls_record_mid_data_delivers_nothing(self):
        import test_tls_starttls as t
        t.setUpModule()
        try:
            # -t 10: should a broken record leave the session waiting, it
            # ends (and the test fails) in 10 s, not the default 300
            with harness.Server(*t.tls_args("-t", "10")) as srv, sessions_killed(srv):
                c = srv.raw(timeout=30).greet()
                c.cmd("STARTTLS", 220)
                tls = t.context().wrap_socket(c.sock, server_hostname="localhost")
                c2 = harness.RawClient(0, sock=tls, timeout=30)
                c2.cmd("EHLO c", 250)
                c2.data()
                c2.send("Subject: cut\r\n\r\nfirst part\r\n")
                # an application-data record the session cannot decrypt
                os.write(tls.fileno(), b"\x17\x03\x03\x00\x20" + b"\xa5" * 32)
                wait_closed(tls)  # a timeout (30 s) here fails the test
                tls.close()
                log = srv.wait_log("event=session-exit")
                self.assertRegex(log, r"event=disconnect phase=data size=\d+ nothing-delivered")
                self.assertEqual(srv.deliveries(), [])
                self.assertNotIn("session-crashed", log)
                srv.raw().greet().cmd("QUIT", 221)  # the daemon serves on
        finally:
            t.tearDownModule()


class sessions_killed:
    """On the way out, SIGKILL the daemon's sessions still running: a
    session stuck by a bug would else keep its stderr, and the harness
    would wait on it after the test has already failed."""

    def __init__(self, srv):
        self.pid = srv.proc.pid

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        import signal
        for p in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % p) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.pid:
                try:
                    os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass
        return False


def wait_closed(tls):
    """Until the server ends the TLS connection (an alert, EOF or a
    reset); socket.timeout if it does not."""
    import ssl
    try:
        while tls.recv(4096):
            pass
    except (ssl.SSLError, ConnectionResetError):
        pass


if __name__ == "__main__":
    harness.main()
