"""One deadline model for every wait (issue 12 items 3, 4, 13; issue 19 item 8).

Each case is a hostile client: one that trickles (a byte at a time, never
finishing its line, its message or its handshake), one that never reads
(a small receive buffer and thousands of pipelined commands, so the
server's writes fill), one that sends an endless line or an endless
message. Each test asserts the reply byte for byte where the client can
read one, the log line, that nothing was delivered, and that the session
ended. Waits are bounded by generous guards against a hang; no test
asserts how long anything took. The TLS variants are in
test_tls_deadlines.py (they need the tls label).
"""
import os
import signal
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HOST = "mx.test"
GUARD = 40  # seconds; only against a hang
TIMEOUT_421 = "421 4.4.2 %s Error: timeout exceeded" % HOST
TOO_BIG_552 = "552 5.3.4 Message size exceeds fixed limit"
LINE_500 = "500 5.5.2 Error: line too long"


def small_socket(port):
    """A client socket whose receive buffer is as small as the kernel allows."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(("127.0.0.1", port))
    return s


def trickle_until_reply(c, data, pause=0.3, timeout=GUARD, step=1):
    """Send data step bytes at a time, waiting up to pause for a reply after
    each step (the pacing of the attack, not a synchronisation), until a
    reply line arrives; fail if the trickle goes on for timeout seconds
    with none. One thread only, so it works on TLS sockets too. Raises
    EOFError when the server closes without a reply."""
    deadline = time.time() + timeout
    for i in range(0, len(data), step):
        if b"\r\n" in c.buf or time.time() > deadline:
            break
        try:
            c.sock.sendall(data[i:i + step])
        except OSError:
            break
        c.sock.settimeout(pause)
        try:
            chunk = c.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        except OSError:
            break
        if not chunk:
            raise EOFError("closed without a reply")
        c.buf += chunk
    if b"\r\n" not in c.buf and time.time() > deadline:
        raise AssertionError("no reply after %ds of trickling" % timeout)
    return read_reply_line(c, timeout)


def send_until_reply(c, chunks, timeout=GUARD):
    """Send chunks and read at once, in one thread, until a reply line
    arrives, the data runs out or the connection fails; returns the line."""
    s = c.sock
    s.setblocking(False)
    it = iter(chunks)
    pending = next(it, None)
    deadline = time.time() + timeout
    while b"\r\n" not in c.buf and time.time() < deadline:
        want_w = [s] if pending is not None else []
        pend = isinstance(s, ssl.SSLSocket) and s.pending()
        r, w, _ = select.select([s], want_w, [], 0 if pend else 1)
        if r or pend:
            try:
                chunk = s.recv(65536)
                if not chunk:
                    break
                c.buf += chunk
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except OSError:
                break
        if w and pending is not None:
            try:
                n = s.send(pending)
                pending = pending[n:] or next(it, None)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except OSError:
                pending = None
    s.setblocking(True)
    return read_reply_line(c, max(1, deadline - time.time()))


class Flood(threading.Thread):
    """sendall() in the background (it blocks once the server stops
    reading); ends when the data is out or the connection fails."""

    def __init__(self, send, chunks):
        super().__init__(daemon=True)
        self.send, self.chunks = send, chunks

    def run(self):
        try:
            for c in self.chunks:
                self.send(c)
        except (OSError, ValueError):
            pass


def fill_until_server_stops_reading(s, chunk, still=3, timeout=GUARD):
    """Pipeline chunk after chunk without reading until the server stops
    reading: our sends stay blocked for `still` seconds (so its writes to
    us are full and it waits in one). This is the condition the test
    needs; `still` only decides that it holds, and a busy machine that
    fools it makes the test weaker, never wrong."""
    s.setblocking(False)
    pending = chunk
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            n = s.send(pending)
            pending = pending[n:] or chunk
            continue
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            pass
        _, w, _ = select.select([], [s], [], still)
        if not w:
            s.setblocking(True)
            return
    raise AssertionError("the server kept reading for %ds" % timeout)


def endless_message(limit):
    """Message text without an end, in 64 KiB chunks, up to limit bytes."""
    chunk = (b"x" * 78 + b"\r\n") * 819
    for _ in range(limit // len(chunk)):
        yield chunk


def readline_within(f, timeout=GUARD):
    """One line from an unbuffered pipe, or b"" when none comes within timeout."""
    r, _, _ = select.select([f], [], [], timeout)
    return f.readline() if r else b""


def read_reply_line(c, timeout=GUARD):
    """The next reply line as a str, waiting at most timeout."""
    c.sock.settimeout(timeout)
    return c._line()


class Deadlines(unittest.TestCase):
    def server(self, *args):
        return harness.Server("--hostname=" + HOST, *args)

    def ended(self, srv, c):
        """The session process ended: its close line, then EOF."""
        srv.wait_log("event=close", timeout=GUARD)
        self.assertTrue(c.closed(timeout=GUARD))
        self.assertEqual(srv.deliveries(), [])

    def test_command_line_trickle_times_out(self):
        # 12.4: a byte every 0.3 s with -t 2 must not keep the session:
        # the whole line has to arrive within the timeout
        with self.server("-t", "2") as srv:
            c = srv.raw(timeout=GUARD)
            c.greet()
            self.assertEqual(trickle_until_reply(c, b"NOOP " + b"x" * 400), TIMEOUT_421)
            self.assertIn("event=timeout phase=command",
                          srv.wait_log("phase=command", timeout=GUARD))
            self.ended(srv, c)

    def test_data_trickle_times_out(self):
        # 12.4: the whole DATA phase is bounded by timeout + bytes / rate
        with self.server("-t", "2") as srv:
            c = srv.raw(timeout=GUARD)
            c.greet().data()
            self.assertEqual(trickle_until_reply(c, b"Subject: slow\r\n\r\n" + b"y" * 400),
                             TIMEOUT_421)
            srv.wait_log("event=timeout phase=data", timeout=GUARD)
            self.assertIn("nothing-delivered", srv.log())
            self.ended(srv, c)

    def test_sigterm_during_slow_data(self):
        # 12.4: a message in flight is finished first on SIGTERM, but
        # within one more timeout: a client that keeps above the minimum
        # rate (a KiB every 0.3 s) cannot hold the daemon's stop for ever
        srv = self.server("-t", "3")
        try:
            c = srv.raw(timeout=GUARD)
            c.greet().data()
            srv.proc.send_signal(signal.SIGTERM)
            srv.wait_log("event=stopping", timeout=GUARD)
            text = (b"y" * 1022 + b"\r\n") * 400
            self.assertEqual(trickle_until_reply(c, text, step=1024),
                             "421 4.3.2 %s Service shutting down" % HOST)
            self.assertEqual(srv.proc.wait(timeout=GUARD), 0)
        finally:
            if srv.proc.poll() is None:
                srv.proc.kill()
            srv.stop(check=False)
        self.assertIn("event=timeout phase=data", srv.log())
        self.assertIn("stopping nothing-delivered", srv.log())
        self.assertEqual(srv.deliveries(), [])

    def test_replies_never_read_plain(self):
        # 12.4: each reply write is bounded; a client that pipelines and
        # never reads loses its session, and the log says which wait ended
        with self.server("-t", "2") as srv:
            s = small_socket(srv.port)
            c = harness.RawClient(0, sock=s, timeout=GUARD)
            srv._raws.append(c)
            f = Flood(s.sendall, [b"EHLO c\r\n" * 1000] * 200)
            f.start()
            srv.wait_log("event=timeout phase=reply", timeout=GUARD)
            srv.wait_log("event=close", timeout=GUARD)
            f.join(GUARD)
            self.assertFalse(f.is_alive(), "the client's writes still block")
            self.assertEqual(srv.deliveries(), [])

    def test_long_line_gets_500_at_once(self):
        # 12.13: no newline, 10,000 bytes: 500 5.5.2 as soon as the line is
        # over the bound (not at the timeout), then the rest of the line up
        # to its LF is dropped and the session goes on
        with self.server("-t", "60") as srv:
            c = srv.raw(timeout=GUARD)
            c.greet()
            c.send(b"NOOP " + b"z" * 10000)
            self.assertEqual(read_reply_line(c, timeout=GUARD), LINE_500)
            c.send(b"zzzz\r\nNOOP\r\n")
            self.assertEqual(read_reply_line(c), "250 2.0.0 Ok")
            c.cmd("QUIT", 221)
            self.assertIn("event=line-too-long",
                          srv.wait_log("event=line-too-long", timeout=GUARD))
            self.ended(srv, c)

    def test_long_auth_line_keeps_its_own_bound(self):
        # RFC 4954 4: an AUTH line may be 12288 octets; only past that is
        # it cut short (the engine still answers it with its own reply)
        with self.server("-t", "60") as srv:
            c = srv.raw(timeout=GUARD)
            c.greet()
            c.send(b"AUTH PLAIN " + b"A" * 13000)
            self.assertEqual(read_reply_line(c), LINE_500)
            c.send(b"\r\nNOOP\r\n")
            self.assertEqual(read_reply_line(c), "250 2.0.0 Ok")
            c.cmd("QUIT", 221)

    def test_oversize_stream_is_cut(self):
        # 19.8: past --max-message-size the rest is read under a byte
        # budget (--max-discard); then 552 and the session ends
        with self.server("-t", "30", "--max-message-size=1000",
                         "--max-discard=256k") as srv:
            c = srv.raw(timeout=GUARD)
            c.greet().data()
            self.assertEqual(send_until_reply(c, endless_message(16 << 20)), TOO_BIG_552)
            srv.wait_log("event=too-big phase=data", timeout=GUARD)
            self.ended(srv, c)

    def test_inetd_dev_zero_ends_on_sigterm(self):
        # 19.8: mockmta --inetd < /dev/zero: an endless line with no LF;
        # SIGTERM must end it (a ready descriptor used to hide the signal)
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "log")
            with open("/dev/zero", "rb") as zero:
                p = subprocess.Popen([harness.mockmta_binary(), "--log=" + log,
                                      "--hostname=" + HOST, os.path.join(tmp, "mbox")],
                                     stdin=zero, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
            try:
                first = readline_within(p.stdout)  # 220: the session runs
                self.assertEqual(first, b"220 %s ESMTP smtpipe\r\n" % HOST.encode())
                self.assertEqual(readline_within(p.stdout), (LINE_500 + "\r\n").encode())
                p.send_signal(signal.SIGTERM)
                rc = p.wait(timeout=GUARD)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            rest = p.stdout.read()
            p.stdout.close()
            p.stderr.close()
            self.assertEqual(rest, b"421 4.3.2 %s Service shutting down\r\n" % HOST.encode())
            self.assertEqual(rc, 0)
            mbox = os.path.join(tmp, "mbox")
            self.assertFalse(os.path.exists(mbox) and os.path.getsize(mbox))

    def test_inetd_dev_zero_after_data(self):
        # 19.8: smtpipe --inetd fed /dev/zero after DATA ends, with 552,
        # and on SIGTERM at any point
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "log")
            out = os.path.join(tmp, "out")
            p = subprocess.Popen([harness.binary(), "--inetd", "--log=" + log,
                                  "--hostname=" + HOST, "--max-message-size=100k",
                                  "--command=" + harness.recorder_command(out)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, bufsize=0)
            head = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
            zeros = bytes(65536)

            def feed():
                try:
                    p.stdin.write(head)
                    while True:
                        p.stdin.write(zeros)
                except (OSError, ValueError):
                    pass
            f = threading.Thread(target=feed, daemon=True)
            f.start()
            try:
                lines = []
                while not lines or not lines[-1].startswith(b"354"):
                    line = readline_within(p.stdout)
                    self.assertTrue(line, lines)
                    lines.append(line)
                p.send_signal(signal.SIGTERM)
                rc = p.wait(timeout=GUARD)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            rest = p.stdout.read()
            for fh in (p.stdout, p.stderr):
                fh.close()
            f.join(GUARD)
            try:
                p.stdin.close()
            except OSError:
                pass
            self.assertEqual(rest, (TOO_BIG_552 + "\r\n").encode())
            self.assertEqual(rc, 1)
            self.assertFalse(os.path.isdir(out) and os.listdir(out))
            with open(log) as fh:
                self.assertIn("event=too-big phase=data", fh.read())


if __name__ == "__main__":
    harness.main()
