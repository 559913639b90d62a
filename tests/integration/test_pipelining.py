"""PIPELINING (RFC 2920): commands sent in one write get their replies in order.

Each case sends a group of commands in a single write (or one byte per
write) and checks every reply in order, then what the command received:
errors inside a group must not shift later replies or leak a refused
recipient into argv.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Pipelining(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server("--hostname=mx.test")

    def tearDown(self):
        self.srv.stop()

    def expect_all(self, c, codes):
        got = [c.reply()[0] for _ in codes]
        self.assertEqual(got, list(codes))

    def test_advertised(self):
        c = self.srv.raw()
        c.expect(220)
        self.assertIn("PIPELINING", c.cmd("EHLO c.test", 250))

    def test_mail_rcpt_rcpt_data_in_one_write(self):
        c = self.srv.raw().greet()
        c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nRCPT TO:<e@f.test>\r\nDATA\r\n")
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(250, "2.1.5")
        c.expect(354)
        # the end of data, the next envelope and DATA: one more write
        c.send("Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<x@y.test>\r\nRCPT TO:<z@w.test>\r\nDATA\r\n")
        c.expect(250, "2.0.0")
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(354)
        c.send("second\r\n.\r\nQUIT\r\n")
        c.expect(250, "2.0.0")
        c.expect(221)
        self.assertTrue(c.closed())
        d = self.srv.deliveries(2)
        self.assertEqual([(x.sender, x.recipients) for x in d],
                         [("a@b.test", ["c@d.test", "e@f.test"]), ("x@y.test", ["z@w.test"])])
        self.assertTrue(d[0].stdin.endswith(b"Subject: p\n\nbody\n"), d[0].stdin)
        self.assertTrue(d[1].stdin.endswith(b"\nsecond\n"), d[1].stdin)

    def test_whole_transaction_and_quit_in_one_write(self):
        # RFC 2920 lets a client send EHLO too without waiting for the
        # greeting; only the text after DATA waits for the 354
        c = self.srv.raw()
        c.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n")
        c.expect(220, "mx.test ESMTP")
        c.expect(250, "mx.test")
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(354)
        c.send("Subject: one write\r\n\r\nx\r\n.\r\nQUIT\r\n")
        c.expect(250, "2.0.0")
        c.expect(221, "2.0.0")
        self.assertTrue(c.closed())
        d = self.srv.deliveries(1)
        self.assertEqual(len(d), 1)
        self.assertTrue(d[0].stdin.endswith(b"Subject: one write\n\nx\n"))

    def test_refused_recipient_inside_a_group(self):
        c = self.srv.raw().greet()
        c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<good1@d.test>\r\nRCPT TO:<-oQ/tmp@d.test>\r\n"
               "RCPT TO:<bad syntax@d.test>\r\nRCPT TO:<good2@d.test>\r\nDATA\r\n")
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(553, "5.1.3")
        c.expect(501, "5.1.3")
        c.expect(250, "2.1.5")
        c.expect(354)
        c.send("x\r\n.\r\n")
        c.expect(250)
        d = self.srv.deliveries(1)[0]
        self.assertEqual(d.recipients, ["good1@d.test", "good2@d.test"])

    def test_every_recipient_refused_then_data(self):
        c = self.srv.raw().greet()
        c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<-x@d.test>\r\nDATA\r\nRSET\r\nNOOP\r\n")
        self.expect_all(c, (250, 553, 554, 250, 250))
        c.cmd("QUIT", 221)
        self.assertEqual(self.srv.deliveries(), [])

    def test_rset_inside_a_group_drops_the_first_envelope(self):
        c = self.srv.raw().greet()
        c.send("MAIL FROM:<old@b.test>\r\nRCPT TO:<old@d.test>\r\nRSET\r\n"
               "MAIL FROM:<new@b.test>\r\nRCPT TO:<new@d.test>\r\nDATA\r\n")
        self.expect_all(c, (250, 250, 250, 250, 250, 354))
        c.send("x\r\n.\r\n")
        c.expect(250)
        d = self.srv.deliveries(1)
        self.assertEqual([(x.sender, x.recipients) for x in d], [("new@b.test", ["new@d.test"])])

    def test_out_of_order_inside_a_group(self):
        # the 503s take their places and the group goes on
        c = self.srv.raw().greet()
        c.send("RCPT TO:<early@d.test>\r\nDATA\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\n"
               "NOOP\r\nBOGUS\r\nRCPT TO:<late@d.test>\r\nDATA\r\n")
        self.expect_all(c, (503, 503, 250, 503, 250, 500, 250, 354))
        c.send("x\r\n.\r\n")
        c.expect(250)
        self.assertEqual(self.srv.deliveries(1)[0].recipients, ["late@d.test"])

    def test_hundred_recipients_in_one_write_in_order(self):
        rcpts = ["r%03d@d.test" % i for i in range(100)]
        c = self.srv.raw().greet()
        c.send("MAIL FROM:<a@b.test>\r\n" + "".join("RCPT TO:<%s>\r\n" % r for r in rcpts) + "DATA\r\n")
        self.expect_all(c, [250] * 101 + [354])
        c.send("x\r\n.\r\n")
        c.expect(250)
        self.assertEqual(self.srv.deliveries(1)[0].recipients, rcpts)

    def test_one_byte_per_write(self):
        c = self.srv.raw()
        c.expect(220)
        script = (b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
                  b"Subject: drip\r\n\r\n..dot\r\n.\r\nQUIT\r\n")
        import socket
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(script)):
            c.send(script[i:i + 1])
        self.expect_all(c, (250, 250, 250, 354, 250, 221))
        d = self.srv.deliveries(1)[0]
        self.assertTrue(d.stdin.endswith(b"Subject: drip\n\n.dot\n"), d.stdin)

    def test_quit_inside_a_group_ends_it(self):
        c = self.srv.raw().greet()
        c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nQUIT\r\nDATA\r\n")
        self.expect_all(c, (250, 250, 221))
        self.assertTrue(c.closed())
        self.assertEqual(self.srv.deliveries(), [])

    def test_swaks_pipeline(self):
        swaks = harness.clients()["SWAKS"]
        r = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(self.srv.port),
                            "--pipeline", "--from", "p@a.test", "--to", "r1@b.test,r2@b.test,r3@b.test",
                            "--body", "pipelined by swaks"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # swaks marks the lines it sent in one group; all of them went at once
        self.assertRegex(r.stdout, r"(?m)^ -> MAIL FROM:<p@a\.test>\s*\n -> RCPT TO:<r1@b\.test>")
        d = self.srv.deliveries(1)[0]
        self.assertEqual((d.sender, d.recipients), ("p@a.test", ["r1@b.test", "r2@b.test", "r3@b.test"]))
        self.assertIn(b"pipelined by swaks\n", d.stdin)


if __name__ == "__main__":
    harness.main()
