"""Hostile clients are normal traffic: each case gets its reply, the daemon lives.

Every case runs against one server; after each, a fresh client must
still get a 220 and nothing may have been delivered unless the case
says so. The canary file must never appear: no client byte reaches a
shell.
"""
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CANARY = "/tmp/smtpipe-canary-%d" % os.getpid()
SHELLY = ["$(touch %s)" % CANARY, "`touch %s`" % CANARY, "; touch %s" % CANARY,
          "| touch %s" % CANARY, "> %s" % CANARY, "&& touch %s" % CANARY]


def greeted(srv, timeout=10):
    return srv.raw(timeout=timeout).greet("hostile.test")


def reply(c):
    """The next reply as one string: "CODE text" (multi-line joined by |)."""
    code, lines = c.reply()
    return "%d %s" % (code, "|".join(lines))


def sessions_ended(log):
    """every session the daemon started has been reaped"""
    return (log.count("event=session-start ") ==
            log.count("event=session-exit ") + log.count("event=session-crashed "))


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server("--max-errors=1000", "-t", "5")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        assert not os.path.exists(CANARY), "a client byte reached a shell"

    def setUp(self):
        self.before = len(self.srv.deliveries())
        self.delivered = 0  # what a case says it delivers

    def tearDown(self):
        # end this case's clients, and wait until the daemon has reaped
        # every session: only then is "nothing delivered" final
        for c in self.srv._raws:
            c.close()
        self.srv._raws.clear()
        c = self.srv.raw()  # the daemon is still there
        c.expect(220)
        c.cmd("QUIT", 221)
        c.close()
        log = self.srv.wait_log(sessions_ended)
        self.assertNotIn("event=session-crashed", log)
        self.assertEqual(len(self.srv.deliveries()), self.before + self.delivered,
                         "deliveries of this case")
        self.assertFalse(os.path.exists(CANARY))

    def rcpt(self, addr, code, text=None):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<a@b.test>", 250)
        c.send("RCPT TO:%s\r\n" % addr)
        self.assertEqual(reply(c), "%d %s" % (code, text), addr)
        c.cmd("QUIT", 221)

    # --- addresses -------------------------------------------------------
    def test_01_quoted_shell_metacharacters_are_one_argument(self):
        before = len(self.srv.deliveries())
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<\"$(touch %s)\"@a.test>" % CANARY, 250)
        for s in SHELLY:
            c.cmd('RCPT TO:<"%s"@b.test>' % s.replace('"', ""), 250)
        c.cmd("DATA", 354)
        c.send("Subject: shell\r\n\r\n$(touch %s)\r\n.\r\n" % CANARY)
        c.expect(250)
        d = self.srv.deliveries(before + 1)[-1]
        self.assertEqual(d.recipients, ['"%s"@b.test' % s.replace('"', "") for s in SHELLY])
        self.assertEqual(d.sender, '"$(touch %s)"@a.test' % CANARY)
        self.delivered = 1

    def test_02_leading_dash_sender(self):
        c = greeted(self.srv)
        c.send("MAIL FROM:<-oQ/tmp/x@a.test>\r\n")
        self.assertEqual(reply(c), "553 5.1.7 Sender address not allowed")

    def test_03_leading_dash_recipient(self):
        self.rcpt("<-X/tmp/log>", 553, "5.1.3 Recipient address not allowed")

    def test_04_dash_without_brackets(self):
        self.rcpt("--help", 553, "5.1.3 Recipient address not allowed")

    def test_05_control_characters(self):
        for ch in ("\x01", "\x1b[31m", "\t", "\x7f"):
            self.rcpt("<a%sb@c.test>" % ch, 553, "5.1.3 Recipient address not allowed")

    def test_06_nul_in_address(self):
        c = greeted(self.srv)
        c.send(b"MAIL FROM:<a\x00b@c>\r\n")
        self.assertEqual(reply(c), "500 5.5.2 Error: NUL byte in command")

    def test_07_path_too_long(self):
        self.rcpt("<%s@b.test>" % ("a" * 300), 501, "5.1.3 Recipient address too long")

    def test_08_domain_too_long(self):
        self.rcpt("<a@%s>" % ".".join(["d" * 60] * 5), 501, "5.1.3 Recipient address too long")

    def test_09_unbalanced_brackets(self):
        for a in ("<a@b", "a@b>", "<<a@b>>", "<a@b>>", '<"a@b>'):
            self.rcpt(a, 501, "5.1.3 Bad recipient address syntax")

    def test_10_unquoted_blank(self):
        self.rcpt("<a b@c.test>", 501, "5.1.3 Bad recipient address syntax")

    def test_11_empty_recipient(self):
        self.rcpt("<>", 501, "5.1.3 Bad recipient address syntax")

    def test_12_eight_bit_without_smtputf8(self):
        self.rcpt("<\xe9@b.test>".encode("utf-8").decode("latin-1"), 553,
                  "5.6.7 8-bit address needs the SMTPUTF8 parameter")

    # --- parameters ------------------------------------------------------
    def test_13_unknown_mail_parameter(self):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<a@b> XFORWARD=1", 555, "5.5.4 Unsupported MAIL parameter")
        c.cmd("MAIL FROM:<a@b> RET=FULL", 555, "5.5.4 Unsupported MAIL parameter")

    def test_14_unknown_rcpt_parameter(self):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<a@b>", 250)
        c.cmd("RCPT TO:<c@d> NOTIFY=SUCCESS ORCPT=rfc822;c@d", 555, "5.5.4 Unsupported RCPT parameter")

    def test_15_size_too_large_and_malformed(self):
        c = greeted(self.srv)
        bad = "501 5.5.4 Bad MAIL parameter syntax"
        for line, want in (("MAIL FROM:<a@b> SIZE=999999999999999999999999", bad),
                           ("MAIL FROM:<a@b> SIZE=99999999999",
                            "552 5.3.4 Message size exceeds fixed limit"),
                           ("MAIL FROM:<a@b> SIZE=-1", bad),
                           ("MAIL FROM:<a@b> SIZE=1 SIZE=2", bad)):
            c.send(line + "\r\n")
            self.assertEqual(reply(c), want, line)

    def test_16_bad_body(self):
        c = greeted(self.srv)
        c.send("MAIL FROM:<a@b> BODY=BINARYMIME\r\n")
        self.assertEqual(reply(c), "501 5.5.4 Bad MAIL parameter syntax")

    # --- lines -----------------------------------------------------------
    def test_17_ten_kilobyte_line(self):
        c = greeted(self.srv)
        c.send("NOOP " + "x" * 10240 + "\r\n")
        self.assertEqual(reply(c), "500 5.5.2 Error: line too long")
        c.cmd("NOOP", 250)

    def test_18_megabyte_line(self):
        c = greeted(self.srv)
        c.send(b"X" * (1024 * 1024) + b"\r\n")
        self.assertEqual(reply(c), "500 5.5.2 Error: line too long")
        c.cmd("NOOP", 250)

    def test_19_megabyte_without_newline_then_close(self):
        c = greeted(self.srv)
        c.send(b"Y" * (1024 * 1024))
        c.close()

    def test_20_command_line_at_the_limit(self):
        c = greeted(self.srv)
        c.cmd("NOOP " + "x" * 505, 250)  # 510 + CRLF = 512
        c.send("NOOP " + "x" * 506 + "\r\n")
        self.assertEqual(reply(c), "500 5.5.2 Error: line too long")

    def test_21_nul_bytes(self):
        c = greeted(self.srv)
        c.send(b"\x00\x00\x00\r\n")
        self.assertEqual(reply(c), "500 5.5.2 Error: NUL byte in command")
        c.send(b"NO\x00OP\r\n")
        self.assertEqual(reply(c), "500 5.5.2 Error: NUL byte in command")

    def test_22_bare_lf_commands(self):
        c = self.srv.raw()
        c.expect(220)
        c.send("EHLO x\nNOOP\n")
        c.expect(250)
        c.expect(250)

    def test_23_bare_cr_in_command(self):
        c = greeted(self.srv)
        c.send("NOOP\rRSET\r\nNOOP x\ry\r\n")
        # a bare CR never splits a line into two commands
        self.assertEqual(reply(c), "500 5.5.2 Error: command not recognized")
        self.assertEqual(reply(c), "250 2.0.0 Ok")  # ... inside an argument it is a byte

    def test_24_random_bytes(self):
        import random
        rnd = random.Random(42)
        c = self.srv.raw()
        c.expect(220)
        c.send(bytes(rnd.randrange(256) for _ in range(200000)))
        c.close()

    def test_25_http_request(self):
        c = self.srv.raw()
        c.expect(220)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(3):
            self.assertEqual(reply(c), "500 5.5.2 Error: command not recognized")

    def test_26_ehlo_header_injection(self):
        c = self.srv.raw()
        c.expect(220)
        c.send("EHLO evil\rX-Injected: yes\r\n")
        self.assertEqual(reply(c), "501 5.5.4 Syntax: EHLO hostname")
        for line in ("EHLO evil(comment)", "EHLO a b", "EHLO " + "h" * 300):
            c.send(line + "\r\n")
            self.assertEqual(reply(c), "501 5.5.4 Syntax: EHLO hostname")

    def test_27_ehlo_injection_never_reaches_received(self):
        before = len(self.srv.deliveries())
        c = self.srv.raw()
        c.expect(220)
        c.cmd("EHLO good.test", 250)
        c.send("EHLO x\nReceived: forged\r\n")  # two lines: an EHLO and garbage
        c.expect(250)
        self.assertEqual(reply(c), "500 5.5.2 Error: command not recognized")
        c.message("Subject: x\r\n\r\nx\r\n.\r\n")
        self.delivered = 1
        d = self.srv.deliveries(before + 1)[-1]
        self.assertEqual(d.stdin.count(b"Received:"), 1)
        self.assertTrue(d.stdin.startswith(b"Received: from x ([127.0.0.1])\n"))

    # --- volume ----------------------------------------------------------
    def test_28_thousand_recipients(self):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<a@b>", 250)
        c.send("".join("RCPT TO:<r%d@x.test>\r\n" % i for i in range(1200)))
        replies = [reply(c) for _ in range(1200)]
        self.assertEqual(replies, ["250 2.1.5 Ok"] * 100 + ["452 4.5.3 Too many recipients"] * 1100)
        c.cmd("RSET", 250)

    def test_29_pipelined_after_data(self):
        before = len(self.srv.deliveries())
        c = greeted(self.srv)
        c.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n.\r\n"
               "MAIL FROM:<e@f>\r\nRCPT TO:<g@h>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n")
        for code in (250, 250, 354, 250, 250, 250, 354, 250, 221):
            c.expect(code)
        d = self.srv.deliveries(before + 2)
        self.assertEqual([x.recipients for x in d[-2:]], [["c@d"], ["g@h"]])
        self.delivered = 2

    def test_30_data_text_before_354(self):
        # a client that does not wait for 354 after failed RCPTs: its text
        # is read as commands and refused one by one, never delivered
        c = greeted(self.srv)
        c.send("MAIL FROM:<a@b>\r\nRCPT TO:<-bad>\r\nDATA\r\nMAIL FROM:<x@y>\r\n.\r\n")
        self.assertEqual([reply(c) for _ in range(5)],
                         ["250 2.1.0 Ok", "553 5.1.3 Recipient address not allowed",
                          "554 5.5.1 Error: no valid recipients",
                          "503 5.5.1 Error: nested MAIL command",
                          "500 5.5.2 Error: command not recognized"])
        # tearDown checks, once the session has ended, that nothing was delivered

    def test_31_smuggling_via_bare_lf_dot(self):
        before = len(self.srv.deliveries())
        c = greeted(self.srv)
        c.message("x\n.\nMAIL FROM:<e@v>\nRCPT TO:<v@x>\nDATA\nevil\n.\n\r\n.\r\n")
        self.assertIn(b"evil", self.srv.deliveries(before + 1)[-1].stdin)
        self.delivered = 1  # one message: tearDown counts after the session ended

    def test_32_disconnect_in_every_state(self):
        # each script is answered in full, then the client goes: the daemon
        # logs the disconnect in that state and delivers nothing
        for script, replies, line in (
                ("", 0, "event=disconnect client=127.0.0.1\n"),
                ("EHLO c\r\n", 1, "event=disconnect client=127.0.0.1\n"),
                ("EHLO c\r\nMAIL FROM:<a@b>\r\n", 2,
                 "event=disconnect client=127.0.0.1 mid-transaction\n"),
                ("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", 3,
                 "event=disconnect client=127.0.0.1 mid-transaction\n"),
                ("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\npartial", 4,
                 "event=disconnect phase=data size=7 nothing-delivered\n")):
            with self.subTest(script=script):
                n = self.srv.log().count(line)
                c = self.srv.raw()
                c.expect(220)
                c.send(script)
                for _ in range(replies):
                    c.reply()  # read, so that the close is a clean FIN
                c.close()
                self.srv.wait_log(line, count=n + 1)

    def test_33_reset_by_peer(self):
        import struct
        c = self.srv.raw()
        c.expect(220)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.send("EHLO c\r\nMAIL FROM:<a@b>\r\n")
        c.expect(250)
        c.expect(250)
        n = self.srv.log().count("event=disconnect client=127.0.0.1 mid-transaction\n")
        c.close()  # an RST, not a FIN
        self.srv.wait_log("event=disconnect client=127.0.0.1 mid-transaction\n", count=n + 1)

    def test_34_idle_client_timed_out(self):
        line = "event=timeout phase=command client=127.0.0.1"
        n = self.srv.log().count(line)
        c = self.srv.raw(timeout=60)  # -t 5; 60 s only guards against a hang
        c.expect(220)
        self.assertRegex(reply(c), r"^421 4\.4\.2 \S+ Error: timeout exceeded$")
        self.assertTrue(c.closed())
        self.srv.wait_log(line, count=n + 1)

    def test_35_slow_data_client_timed_out(self):
        line = "event=timeout phase=data client=127.0.0.1 size=14 nothing-delivered"
        n = self.srv.log().count(line)
        c = greeted(self.srv, timeout=60)
        c.cmd("MAIL FROM:<a@b>", 250)
        c.cmd("RCPT TO:<c@d>", 250)
        c.cmd("DATA", 354)
        c.send("half a message")
        self.assertRegex(reply(c), r"^421 4\.4\.2 \S+ Error: timeout exceeded$")
        self.assertTrue(c.closed())
        self.srv.wait_log(line, count=n + 1)

    # --- AUTH abuse without auth configured -------------------------------
    def test_36_auth_when_disabled(self):
        c = greeted(self.srv)
        for line in ("AUTH PLAIN AGFAYg==", "AUTH"):
            c.send(line + "\r\n")
            self.assertEqual(reply(c), "503 5.5.1 Error: authentication not enabled")

    def test_37_unknown_and_unimplemented_verbs(self):
        c = greeted(self.srv)
        unknown = "500 5.5.2 Error: command not recognized"
        unimplemented = "502 5.5.1 Error: command not implemented"
        for v, want in (("XEXPS", unknown), ("TURN", unimplemented), ("ETRN x", unimplemented),
                        ("BDAT 1 LAST", unimplemented), ("SAML FROM:<a>", unimplemented),
                        ("EXPN x", "502 5.5.1 EXPN not implemented")):
            c.send(v + "\r\n")
            self.assertEqual(reply(c), want, v)

    def test_38_many_errors_end_the_session(self):
        with harness.Server("--max-errors=5") as srv:
            c = srv.raw()
            c.expect(220)
            c.send("BAD\r\n" * 10)
            got = [reply(c) for _ in range(6)]
            self.assertEqual(got[:5], ["500 5.5.2 Error: command not recognized"] * 5)
            self.assertRegex(got[5], r"^421 4\.7\.0 \S+ Error: too many errors$")
            self.assertTrue(c.closed())

    def test_39_verbs_in_odd_case_and_glued(self):
        c = self.srv.raw()
        c.expect(220)
        c.cmd("eHlO c", 250)
        c.send("MAIL:FROM:<a@b>\r\n")
        self.assertEqual(reply(c), "500 5.5.2 Error: command not recognized")
        c.cmd("mail from:<a@b>", 250)

    def test_40_huge_auth_line_when_enabled(self):
        with harness.Server("--auth=u,echo p") as srv:
            c = srv.raw()
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.send("AUTH PLAIN " + "A" * 20000 + "\r\n")
            self.assertEqual(reply(c), "500 5.5.2 Error: line too long")
            c.cmd("AUTH LOGIN", 334)
            c.send("B" * 20000 + "\r\n")
            self.assertEqual(reply(c), "500 5.5.2 Error: line too long")
            c.cmd("AUTH LOGIN", 334)
            c.send("not base64!\r\n")
            self.assertEqual(reply(c), "501 5.5.2 Invalid base64 data")
            c.cmd("AUTH PLAIN", 334)
            c.send("=\r\n")  # RFC 4954: "=" is an empty response
            self.assertEqual(reply(c), "501 5.5.2 Malformed PLAIN response")
            c.cmd("NOOP", 250)

    def test_41_connection_flood_while_serving(self):
        before = len(self.srv.deliveries())
        for _ in range(100):
            socket.create_connection(("127.0.0.1", self.srv.port)).close()
        s = self.srv.smtp()
        s.sendmail("a@b", ["c@d"], "after the flood\r\n")
        s.quit()
        self.assertEqual(len(self.srv.deliveries(before + 1)), before + 1)
        self.delivered = 1

    def test_42_sessions_fill_the_slots_then_time_out(self):
        with harness.Server("--max-sessions=3", "-t", "2") as srv:
            idle = [srv.raw(timeout=60) for _ in range(3)]
            for c in idle:
                c.expect(220)
            s = srv.smtp(timeout=60)  # waits in the backlog until an idle one times out
            s.sendmail("a@b", ["c@d"], "x\r\n")
            s.quit()
            for c in idle:
                self.assertRegex(reply(c), r"^421 4\.4\.2 \S+ Error: timeout exceeded$")
                c.close()
            self.assertEqual(len(srv.deliveries(1)), 1)
            self.assertGreaterEqual(srv.log().count("event=timeout phase=command client=127.0.0.1"),
                                    1)


if __name__ == "__main__":
    harness.main()
