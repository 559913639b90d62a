"""DATA: dot-unstuffing, size and line limits, smuggling, big and 8-bit messages.

Pipelining is in test_pipelining.py, exit statuses in test_delivery.py.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def reply(c):
    """The next reply as one string: "CODE text"."""
    code, lines = c.reply()
    return "%d %s" % (code, "|".join(lines))


class Data(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server("--max-message-size=1M")

    def tearDown(self):
        self.srv.stop()

    def test_dot_unstuffing(self):
        # RFC 5321 4.5.2: one leading dot is removed from every line that has
        # one; lines that only look like the end stay text
        c = self.srv.raw().greet()
        c.message(b"Subject: dots\r\n\r\n..\r\n...\r\n..x\r\n. \r\n .\r\nx.\r\n.\t\r\n..\r\n.\r\n", 250)
        d = self.srv.deliveries(1)[0]
        self.assertTrue(d.stdin.endswith(b"Subject: dots\n\n.\n..\n.x\n \n .\nx.\n\t\n.\n"), d.stdin)

    def test_empty_message_and_no_final_newline(self):
        c = self.srv.raw().greet()
        c.message(".\r\n", 250)
        # the received header only: a well-formed but empty message
        d = self.srv.deliveries(1)[0]
        self.assertTrue(d.stdin.startswith(b"Received: "))
        self.assertTrue(d.stdin.endswith(b"\n"))
        self.assertNotIn(b"\n\n", d.stdin)

    def test_smuggling_sequences(self):
        tail = "MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nSmuggled\r\n"
        for seq in ("\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r\n.\r", "\r.\r\n", "\n.\r"):
            with self.subTest(seq=repr(seq)):
                c = self.srv.raw().greet()
                before = len(self.srv.deliveries())
                c.message("Subject: s\r\n\r\nhello" + seq + tail + ".\r\n", 250)
                # a smuggled second message would be answered (and delivered)
                # before this 221: the session handles lines in order
                c.cmd("QUIT", 221)
                d = self.srv.deliveries()
                self.assertEqual(len(d), before + 1, "a second message got through")
                self.assertIn(b"Smuggled", d[-1].stdin)
                self.assertEqual(d[-1].recipients, ["c@d"])

    def test_twenty_megabytes_intact(self):
        with harness.Server() as srv:
            line = bytes(range(32, 127)) * 10  # 950 octets
            body = b"Subject: big\r\n\r\n" + (line + b"\r\n") * (20 * 1024 * 1024 // 952)
            c = srv.raw(timeout=60).greet()
            c.message(body + b".\r\n", 250)
            d = srv.deliveries(1)[0]
            self.assertEqual(d.stdin[d.stdin.index(b"Subject: big"):], body.replace(b"\r\n", b"\n"))

    def test_eight_bit_intact(self):
        c = self.srv.raw().greet()
        body = "Subject: é\r\n\r\nÄÖÜ 日本語 \x7f\r\n".encode() + bytes(range(128, 256)) + b"\r\n"
        c.cmd("MAIL FROM:<a@b> BODY=8BITMIME", 250)
        c.cmd("RCPT TO:<c@d>", 250)
        c.cmd("DATA", 354)
        c.send(body + b".\r\n")
        c.expect(250)
        self.assertTrue(self.srv.deliveries(1)[0].stdin.endswith(body.replace(b"\r\n", b"\n")))

    def test_line_limit(self):
        # no limit by default (test_conformance.py checks --max-line-length)
        c = self.srv.raw().greet()
        c.message("x" * 998 + "\r\n.\r\n", 250)  # 1000 octets with CRLF
        c.message("x" * 999 + "\r\n.\r\n", 250)
        c.cmd("NOOP", 250)
        self.assertEqual(len(self.srv.deliveries(2)), 2)
        self.assertNotIn("reason=line-too-long", self.srv.log())

    def test_size_limit(self):
        c = self.srv.raw().greet()
        c.send("MAIL FROM:<a@b> SIZE=1048577\r\n")
        self.assertEqual(reply(c), "552 5.3.4 Message size exceeds fixed limit")
        c.cmd("MAIL FROM:<a@b> SIZE=1048576", 250)
        c.cmd("RSET", 250)
        c.data().send(("y" * 500 + "\r\n") * 2200 + ".\r\n")
        self.assertEqual(reply(c), "552 5.3.4 Message size exceeds fixed limit")
        c.cmd("NOOP", 250)
        # a delivery would come before the reply to the end of DATA
        self.assertEqual(self.srv.deliveries(), [])
        self.assertIn("reason=too-big", self.srv.log())

    def test_disconnect_mid_data_delivers_nothing(self):
        c = self.srv.raw().greet()
        c.cmd("MAIL FROM:<a@b>", 250)
        c.cmd("RCPT TO:<c@d>", 250)
        c.cmd("DATA", 354)
        c.send("Subject: half\r\n\r\npart of a message\r\n")
        c.close()
        log = self.srv.wait_log("event=session-exit")
        self.assertRegex(log, r"event=disconnect phase=data size=\d+ nothing-delivered")
        self.assertEqual(self.srv.deliveries(), [])


if __name__ == "__main__":
    harness.main()
