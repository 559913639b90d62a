"""The SMTP command set over a real socket, and what the command gets."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Basic(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server("--hostname=mx.test")

    def tearDown(self):
        self.srv.stop()

    def test_every_command_before_helo(self):
        c = self.srv.raw()
        c.expect(220, "mx.test ESMTP")
        c.cmd("MAIL FROM:<a@b>", 503, "5.5.1")
        c.cmd("RCPT TO:<a@b>", 503, "5.5.1")
        c.cmd("DATA", 503, "5.5.1")
        c.cmd("NOOP", 250, "2.0.0")
        c.cmd("RSET", 250, "2.0.0")
        c.cmd("VRFY bob", 252, "2.5.0")
        c.cmd("EXPN staff", 502, "5.5.1")
        lines = c.cmd("HELP", 214)
        self.assertIn("EHLO", " ".join(lines))
        c.cmd("BOGUS", 500, "5.5.2")
        c.cmd("STARTTLS", 503)
        c.cmd("QUIT", 221, "2.0.0")
        self.assertTrue(c.closed())

    def test_every_command_in_every_state(self):
        # want[state] = reply to the command; after it (QUIT aside) the
        # session must go on: msmtpd ended it instead, which broke clients
        states = ("greeted", "ehlo", "mail", "rcpt", "after-message")
        table = [
            ("MAIL FROM:<a@b>", (503, 250, 503, 503, 250), "5.5.1|2.1.0"),
            ("RCPT TO:<c@d>", (503, 503, 250, 250, 503), "5.5.1|2.1.5"),
            ("DATA", (503, 503, 554, 354, 503), ""),
            ("RSET", (250,) * 5, "2.0.0"),
            ("NOOP", (250,) * 5, "2.0.0"),
            ("NOOP with an argument", (250,) * 5, "2.0.0"),
            ("HELP", (214,) * 5, "2.0.0"),
            ("HELP MAIL", (214,) * 5, "2.0.0"),
            ("VRFY postmaster", (252,) * 5, "2.5.0"),
            ("EXPN staff", (502,) * 5, "5.5.1"),
            ("STARTTLS", (503, 502, 502, 502, 502), "5.5.1"),
            ("AUTH PLAIN", (503,) * 5, "5.5.1"),
            ("BDAT 10 LAST", (502,) * 5, "5.5.1"),
            ("TURN", (502,) * 5, "5.5.1"),
            ("BOGUS", (500,) * 5, "5.5.2"),
            ("RSET now", (501,) * 5, "5.5.4"),
            ("HELO", (501,) * 5, "5.5.4"),
            ("EHLO", (501,) * 5, "5.5.4"),
            ("HELO other.test", (250,) * 5, ""),
            ("EHLO other.test", (250,) * 5, ""),
            ("QUIT", (221,) * 5, "2.0.0"),
        ]
        for i, state in enumerate(states):
            for cmd, want, enhanced in table:
                with self.subTest(state=state, cmd=cmd):
                    c = self.srv.raw()
                    c.expect(220)
                    if state != "greeted":
                        c.cmd("EHLO c.test", 250)
                    if state in ("mail", "rcpt"):
                        c.cmd("MAIL FROM:<a@b>", 250)
                    if state == "rcpt":
                        c.cmd("RCPT TO:<c@d>", 250)
                    if state == "after-message":
                        c.message("x\r\n.\r\n")
                    c.send(cmd + "\r\n")
                    code, lines = c.reply()
                    self.assertEqual(code, want[i], "%s in %s: got %d %s" % (cmd, state, code, lines))
                    if enhanced and code != 354:
                        self.assertRegex(lines[-1], "^(%s) " % enhanced.replace(".", r"\."))
                    if code == 221:
                        self.assertTrue(c.closed())
                        continue
                    if code == 354:
                        c.send(".\r\n")
                        c.expect(250)
                    c.cmd("NOOP", 250)
                    if cmd in ("EHLO other.test", "HELO other.test", "RSET") and state in ("mail", "rcpt"):
                        # EHLO, HELO and RSET reset the transaction
                        c.cmd("RCPT TO:<c@d>", 503, "5.5.1")
                    c.cmd("QUIT", 221)
        # one message per "after-message" case, and the DATA of the "rcpt" state
        # every session has quit: once each has exited, no delivery can come
        want = len(table) + 1
        log = self.srv.wait_log(harness.sessions_over)
        self.assertNotIn("event=session-crashed", log)
        self.assertEqual(len(self.srv.deliveries()), want)

    def test_ehlo_extensions(self):
        c = self.srv.raw()
        c.expect(220)
        lines = c.cmd("EHLO client.test", 250)
        for ext in ("PIPELINING", "SIZE 67108864", "8BITMIME", "ENHANCEDSTATUSCODES", "HELP"):
            self.assertIn(ext, lines)
        self.assertNotIn("STARTTLS", lines)
        self.assertFalse(any(l.startswith("AUTH") for l in lines))
        c.cmd("HELO client.test", 250, "mx.test")
        c.cmd("EHLO", 501, "5.5.4")

    def test_out_of_order_keeps_session(self):
        c = self.srv.raw()
        c.expect(220)
        c.cmd("EHLO c", 250)
        c.cmd("RCPT TO:<x@y>", 503, "need MAIL")
        c.cmd("DATA", 503, "need RCPT")
        c.cmd("MAIL FROM:<a@b>", 250, "2.1.0")
        c.cmd("MAIL FROM:<a@b>", 503, "nested MAIL")
        c.cmd("DATA", 554, "no valid recipients")
        c.cmd("RCPT TO:<x@y>", 250, "2.1.5")
        c.cmd("NOOP", 250)
        c.cmd("DATA", 354)
        c.send("Subject: t\r\n\r\nbody\r\n.\r\n")
        c.expect(250, "2.0.0")
        c.cmd("RSET", 250)
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
        self.assertEqual(len(self.srv.deliveries(1)), 1)

    def test_three_messages_one_session_and_rset_after_message(self):
        s = self.srv.smtp()
        for i in range(3):
            s.sendmail("a@b.test", ["r%d@x.test" % i], "Subject: %d\r\n\r\nmsg %d\r\n" % (i, i))
            self.assertEqual(s.rset()[0], 250)  # Authelia sends RSET after a message
            self.assertEqual(s.noop()[0], 250)  # Docker health checks send NOOP
        s.quit()
        d = self.srv.deliveries(3)
        self.assertEqual(len(d), 3)
        for i in range(3):
            self.assertEqual(d[i].recipients, ["r%d@x.test" % i])
            self.assertTrue(d[i].stdin.endswith(b"\nmsg %d\n" % i))

    def test_argv_shape_three_recipients(self):
        s = self.srv.smtp()
        s.sendmail("sender@a.test", ["one@b.test", "two@c.test", "three@d.test"], "Subject: x\r\n\r\nhi\r\n")
        s.quit()
        d = self.srv.deliveries(1)[0]
        # "recorder DIR -- -f %F --" + recipients: msmtpd's contract
        self.assertEqual(d.argv[-6:], ["-f", "sender@a.test", "--", "one@b.test", "two@c.test", "three@d.test"])

    def test_null_sender_is_mailer_daemon(self):
        c = self.srv.raw().greet()
        c.message(".\r\n", sender="", rcpts=("postmaster",))
        d = self.srv.deliveries(1)[0]
        self.assertEqual(d.sender, "MAILER-DAEMON")
        self.assertEqual(d.recipients, ["postmaster"])

    def test_received_first_lf_only(self):
        s = self.srv.smtp()
        s.ehlo("client.test")
        # smtplib stuffs the leading dot; smtpipe must unstuff it again
        s.sendmail("a@b.test", ["c@d.test"], "Subject: x\r\nX-A: 1\r\n\r\nline1\r\n.dotted\r\n\r\nend\r\n")
        s.quit()
        d = self.srv.deliveries(1)[0]
        self.assertTrue(d.stdin.startswith(b"Received: from client.test ([127.0.0.1])\n\tby mx.test (smtpipe) with ESMTP id "))
        self.assertNotIn(b"\r", d.stdin)
        self.assertTrue(d.stdin.endswith(b"Subject: x\nX-A: 1\n\nline1\n.dotted\n\nend\n"), d.stdin)
        self.assertIn(b"\tfor <c@d.test>;\n", d.stdin)

    def test_log_lines(self):
        s = self.srv.smtp()
        s.sendmail("a@b.test", ["c@d.test", "e@f.test"], "Subject: x\r\n\r\nhi\r\n")
        s.quit()
        self.srv.deliveries(1)
        log = self.srv.log()
        self.assertRegex(log, r"session=\w+ event=connect client=127\.0\.0\.1")
        self.assertRegex(log, r'event=delivered msg=\w+\.1 nrcpt=2 size=\d+ result=250 status=0 from="a@b\.test"')

    def test_delivery_command_sees_only_std_fds(self):
        if os.environ.get("SMTPIPE_VALGRIND_DIR"):
            # valgrind's own descriptors leak into children it does not trace;
            # this test runs (and must pass) in the native and ASan passes
            self.skipTest("not meaningful under valgrind")
        s = self.srv.smtp()
        s.sendmail("a@b.test", ["c@d.test"], "x\r\n")
        s.quit()
        d = self.srv.deliveries(1)[0]
        # 0, 1, 2 and the descriptor listdir itself opened: nothing inherited
        self.assertLessEqual(len([f for f in d.fds if f > 2]), 1, d.fds)


if __name__ == "__main__":
    harness.main()
