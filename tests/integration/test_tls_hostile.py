"""Hostile TLS: pipelined plaintext after STARTTLS, garbage, stalls, inetd."""
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_tls_starttls as t  # noqa: E402

setUpModule = t.setUpModule
tearDownModule = t.tearDownModule


class Hostile(unittest.TestCase):
    def test_plaintext_after_starttls_is_discarded(self):
        with harness.Server(*t.tls_args()) as srv:
            c = srv.raw()
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.send("STARTTLS\r\nNOOP\r\nMAIL FROM:<injected@x>\r\n")  # one packet
            c.expect(220)
            self.assertEqual(c.buf, b"")  # no reply to the NOOP before TLS
            tls = t.context().wrap_socket(c.sock, server_hostname="localhost")
            c2 = harness.RawClient(0, sock=tls)
            c2.cmd("RSET", 250)  # the first reply inside TLS answers what we sent inside
            c2.cmd("MAIL FROM:<a@b>", 503)  # and the injected MAIL did not count
            c2.cmd("QUIT", 221)

    def test_garbage_instead_of_client_hello(self):
        with harness.Server(*t.tls_args()) as srv:
            c = srv.raw()
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.cmd("STARTTLS", 220)
            c.send(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n" + bytes(range(256)))
            self.assertTrue(c.closed())
            self.assertIn("event=tls-failed", srv.log())
            c = srv.raw()  # the daemon goes on
            c.expect(220)
            c.cmd("QUIT", 221)

    def test_stalled_handshake_times_out(self):
        with harness.Server(*t.tls_args("-t", "2")) as srv:
            c = srv.raw(timeout=20)
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.cmd("STARTTLS", 220)
            c.send(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then silence
            # closed by the handshake's own deadline (30 s only guards
            # against a hang): the log says which deadline it was
            self.assertTrue(c.closed(timeout=30))
            log = srv.wait_log("event=tls-failed")
            self.assertIn('error="handshake timed out"', log)
            self.assertEqual(srv.deliveries(), [])

    def test_inetd_starttls(self):
        def talk(c):
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.cmd("STARTTLS", 220)
            tls = t.context().wrap_socket(c.sock, server_hostname="localhost")
            c2 = harness.RawClient(0, sock=tls)
            c2.cmd("EHLO c", 250)
            c2.cmd("MAIL FROM:<a@b>", 250)
            c2.cmd("RCPT TO:<c@d>", 250)
            c2.cmd("DATA", 354)
            c2.send("Subject: inetd tls\r\n\r\nhi\r\n.\r\n")
            c2.expect(250)
            c2.cmd("QUIT", 221)
        with tempfile.TemporaryDirectory() as tmp:
            rc, err = harness.run_inetd(list(t.tls_args()) + ["--command=" + harness.recorder_command(tmp)], talk)
            self.assertEqual(rc, 0, err)
            self.assertEqual(len([f for f in os.listdir(tmp) if f.endswith(".msg")]), 1)

    def test_mockmta_inetd_starttls(self):
        def talk(c):
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.cmd("STARTTLS", 220)
            tls = t.context().wrap_socket(c.sock, server_hostname="localhost")
            c2 = harness.RawClient(0, sock=tls)
            c2.cmd("EHLO c", 250)
            c2.cmd("QUIT", 221)
        with tempfile.TemporaryDirectory() as tmp:
            rc, err = harness.run_inetd(list(t.tls_args()) + ["--log=none", os.path.join(tmp, "m")],
                                        talk, personality="mockmta")
            self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    harness.main()
