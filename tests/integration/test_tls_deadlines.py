"""The deadline model over TLS (issue 12 items 3, 4, 13; issue 19 item 8).

The same hostile clients as test_sec_deadlines.py, inside STARTTLS: one
that trickles a record per byte, one that never reads while the server's
TLS writes fill the socket (gnutls_record_send used to block in send()
forever, and SIGTERM with it), a ClientHello sent a byte at a time, an
endless line and an endless message. No elapsed time is asserted; every
wait has a generous guard against a hang.
"""
import os
import signal
import ssl
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_sec_deadlines as d  # noqa: E402
import test_tls_starttls as t  # noqa: E402

setUpModule = t.setUpModule
tearDownModule = t.tearDownModule


def client_hello():
    """The bytes of a real ClientHello (Python's ssl, through memory BIOs)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = t.context().wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class TLSDeadlines(unittest.TestCase):
    def server(self, *args):
        return harness.Server(*t.tls_args("--hostname=" + d.HOST, *args))

    def starttls(self, srv, sock=None):
        """A RawClient inside STARTTLS, after EHLO."""
        c = harness.RawClient(srv.port, sock=sock, timeout=d.GUARD)
        srv._raws.append(c)
        c.greet()
        c.cmd("STARTTLS", 220)
        tls = t.context().wrap_socket(c.sock, server_hostname="localhost")
        c2 = harness.RawClient(0, sock=tls, timeout=d.GUARD)
        srv._raws.append(c2)
        return c2

    def ended(self, srv, c):
        srv.wait_log("event=close", timeout=d.GUARD)
        self.assertTrue(c.closed(timeout=d.GUARD))
        self.assertEqual(srv.deliveries(), [])

    def test_command_trickle_times_out(self):
        with self.server("-t", "2") as srv:
            c = self.starttls(srv)
            c.cmd("EHLO c", 250)
            self.assertEqual(d.trickle_until_reply(c, b"NOOP " + b"x" * 400), d.TIMEOUT_421)
            srv.wait_log("event=timeout phase=command", timeout=d.GUARD)
            self.ended(srv, c)

    def test_data_trickle_times_out(self):
        with self.server("-t", "2") as srv:
            c = self.starttls(srv)
            c.cmd("EHLO c", 250)
            c.data()
            self.assertEqual(d.trickle_until_reply(c, b"Subject: slow\r\n\r\n" + b"y" * 400),
                             d.TIMEOUT_421)
            srv.wait_log("event=timeout phase=data", timeout=d.GUARD)
            self.ended(srv, c)

    def test_replies_never_read_tls(self):
        # 12.3: TLS writes have a deadline; the session ends, and then
        # the daemon stops on SIGTERM (Server.stop asserts that)
        with self.server("-t", "2") as srv:
            c = self.starttls(srv, sock=d.small_socket(srv.port))
            f = d.Flood(c.sock.sendall, [b"EHLO c\r\n" * 1000] * 200)
            f.start()
            srv.wait_log("event=timeout phase=reply", timeout=d.GUARD)
            srv.wait_log("event=close", timeout=d.GUARD)
            f.join(d.GUARD)
            self.assertFalse(f.is_alive(), "the client's writes still block")
            self.assertEqual(srv.deliveries(), [])

    def test_sigterm_with_tls_writes_blocked(self):
        # 12.3: SIGTERM while the session's TLS writes are full: the daemon
        # still ends (the 421 and close_notify wait one timeout at most)
        srv = self.server("-t", "8")
        try:
            c = self.starttls(srv, sock=d.small_socket(srv.port))
            d.fill_until_server_stops_reading(c.sock, b"EHLO c\r\n" * 1000)
            # SIGTERM with the client still connected (and still not reading)
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(timeout=d.GUARD), 0)
        finally:
            if srv.proc.poll() is None:
                srv.proc.kill()
            srv.stop(check=False)
        self.assertIn("event=timeout phase=reply", srv.log())
        self.assertIn("event=close", srv.log())
        self.assertEqual(srv.deliveries(), [])

    def test_handshake_trickle_times_out(self):
        # 12.4: a ClientHello a byte at a time: the handshake deadline is
        # for the whole handshake, not for each read
        with self.server("-t", "2") as srv:
            c = srv.raw(timeout=d.GUARD)
            c.greet()
            c.cmd("STARTTLS", 220)
            with self.assertRaises((EOFError, ConnectionResetError)):  # closed, no reply
                d.trickle_until_reply(c, client_hello())
            log = srv.wait_log("event=tls-failed", timeout=d.GUARD)
            self.assertIn('error="handshake timed out"', log)
            self.assertEqual(srv.deliveries(), [])

    def test_long_line_gets_500_at_once(self):
        with self.server("-t", "60") as srv:
            c = self.starttls(srv)
            c.cmd("EHLO c", 250)
            c.send(b"NOOP " + b"z" * 10000)
            self.assertEqual(d.read_reply_line(c), d.LINE_500)
            c.send(b"zz\r\nNOOP\r\n")
            self.assertEqual(d.read_reply_line(c), "250 2.0.0 Ok")
            c.cmd("QUIT", 221)
            srv.wait_log("event=line-too-long", timeout=d.GUARD)
            self.ended(srv, c)

    def test_oversize_stream_is_cut(self):
        with self.server("-t", "30", "--max-message-size=1000", "--max-discard=256k") as srv:
            c = self.starttls(srv)
            c.cmd("EHLO c", 250)
            c.data()
            self.assertEqual(d.send_until_reply(c, d.endless_message(16 << 20)), d.TOO_BIG_552)
            srv.wait_log("event=too-big phase=data", timeout=d.GUARD)
            self.ended(srv, c)


if __name__ == "__main__":
    harness.main()
