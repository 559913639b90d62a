"""Hostile clients are normal traffic: each case gets its reply, the daemon lives.

Every case runs against one server; after each, a fresh client must
still get a 220 and nothing may have been delivered unless the case
says so. The canary file must never appear: no client byte reaches a
shell.
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CANARY = "/tmp/smtpipe-canary-%d" % os.getpid()
SHELLY = ["$(touch %s)" % CANARY, "`touch %s`" % CANARY, "; touch %s" % CANARY,
          "| touch %s" % CANARY, "> %s" % CANARY, "&& touch %s" % CANARY]


def greeted(srv, timeout=10):
    return srv.raw(timeout=timeout).greet("hostile.test")


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server("--max-errors=1000", "-t", "5")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        assert not os.path.exists(CANARY), "a client byte reached a shell"

    def tearDown(self):
        c = self.srv.raw()  # the daemon is still there
        c.expect(220)
        c.cmd("QUIT", 221)
        self.assertFalse(os.path.exists(CANARY))

    def rcpt(self, addr, code, text=None):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<a@b.test>", 250)
        c.cmd("RCPT TO:%s" % addr, code, text)
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

    def test_02_leading_dash_sender(self):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<-oQ/tmp/x@a.test>", 553, "5.1.7")

    def test_03_leading_dash_recipient(self):
        self.rcpt("<-X/tmp/log>", 553, "5.1.3")

    def test_04_dash_without_brackets(self):
        self.rcpt("--help", 553)

    def test_05_control_characters(self):
        for ch in ("\x01", "\x1b[31m", "\t", "\x7f"):
            self.rcpt("<a%sb@c.test>" % ch, 553)

    def test_06_nul_in_address(self):
        c = greeted(self.srv)
        c.send(b"MAIL FROM:<a\x00b@c>\r\n")
        c.expect(500, "NUL")

    def test_07_path_too_long(self):
        self.rcpt("<%s@b.test>" % ("a" * 300), 501)

    def test_08_domain_too_long(self):
        self.rcpt("<a@%s>" % ".".join(["d" * 60] * 5), 501)

    def test_09_unbalanced_brackets(self):
        for a in ("<a@b", "a@b>", "<<a@b>>", "<a@b>>", '<"a@b>'):
            self.rcpt(a, 501)

    def test_10_unquoted_blank(self):
        self.rcpt("<a b@c.test>", 501)

    def test_11_empty_recipient(self):
        self.rcpt("<>", 501)

    def test_12_eight_bit_without_smtputf8(self):
        self.rcpt("<\xe9@b.test>".encode("utf-8").decode("latin-1"), 553, "SMTPUTF8")

    # --- parameters ------------------------------------------------------
    def test_13_unknown_mail_parameter(self):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<a@b> XFORWARD=1", 555)
        c.cmd("MAIL FROM:<a@b> RET=FULL", 555)

    def test_14_unknown_rcpt_parameter(self):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<a@b>", 250)
        c.cmd("RCPT TO:<c@d> NOTIFY=SUCCESS ORCPT=rfc822;c@d", 555)

    def test_15_size_too_large_and_malformed(self):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<a@b> SIZE=999999999999999999999999", 501)
        c.cmd("MAIL FROM:<a@b> SIZE=99999999999", 552)
        c.cmd("MAIL FROM:<a@b> SIZE=-1", 501)
        c.cmd("MAIL FROM:<a@b> SIZE=1 SIZE=2", 501)

    def test_16_bad_body(self):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<a@b> BODY=BINARYMIME", 501)

    # --- lines -----------------------------------------------------------
    def test_17_ten_kilobyte_line(self):
        c = greeted(self.srv)
        c.send("NOOP " + "x" * 10240 + "\r\n")
        c.expect(500, "too long")
        c.cmd("NOOP", 250)

    def test_18_megabyte_line(self):
        c = greeted(self.srv)
        c.send(b"X" * (1024 * 1024) + b"\r\n")
        c.expect(500, "too long")
        c.cmd("NOOP", 250)

    def test_19_megabyte_without_newline_then_close(self):
        c = greeted(self.srv)
        c.send(b"Y" * (1024 * 1024))
        c.close()

    def test_20_command_line_at_the_limit(self):
        c = greeted(self.srv)
        c.cmd("NOOP " + "x" * 505, 250)  # 510 + CRLF = 512
        c.cmd("NOOP " + "x" * 506, 500)

    def test_21_nul_bytes(self):
        c = greeted(self.srv)
        c.send(b"\x00\x00\x00\r\n")
        c.expect(500)
        c.send(b"NO\x00OP\r\n")
        c.expect(500)

    def test_22_bare_lf_commands(self):
        c = self.srv.raw()
        c.expect(220)
        c.send("EHLO x\nNOOP\n")
        c.expect(250)
        c.expect(250)

    def test_23_bare_cr_in_command(self):
        c = greeted(self.srv)
        c.send("NOOP\rRSET\r\nNOOP x\ry\r\n")
        c.expect(500)  # a bare CR never splits a line into two commands
        c.expect(250)  # ... and inside an argument it is just a byte

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
        c.expect(500)

    def test_26_ehlo_header_injection(self):
        c = self.srv.raw()
        c.expect(220)
        c.send("EHLO evil\rX-Injected: yes\r\n")
        c.expect(501)
        c.cmd("EHLO evil(comment)", 501)
        c.cmd("EHLO a b", 501)
        c.cmd("EHLO " + "h" * 300, 501)

    def test_27_ehlo_injection_never_reaches_received(self):
        before = len(self.srv.deliveries())
        c = self.srv.raw()
        c.expect(220)
        c.cmd("EHLO good.test", 250)
        c.send("EHLO x\nReceived: forged\r\n")  # two lines: an EHLO and garbage
        c.expect(250)
        c.expect(500)
        c.message("Subject: x\r\n\r\nx\r\n.\r\n")
        d = self.srv.deliveries(before + 1)[-1]
        self.assertEqual(d.stdin.count(b"Received:"), 1)
        self.assertTrue(d.stdin.startswith(b"Received: from x ([127.0.0.1])\n"))

    # --- volume ----------------------------------------------------------
    def test_28_thousand_recipients(self):
        c = greeted(self.srv)
        c.cmd("MAIL FROM:<a@b>", 250)
        c.send("".join("RCPT TO:<r%d@x.test>\r\n" % i for i in range(1200)))
        codes = [c.reply()[0] for _ in range(1200)]
        self.assertEqual(codes.count(250), 100)
        self.assertEqual(codes.count(452), 1100)
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

    def test_30_data_text_before_354(self):
        # a client that does not wait for 354 after failed RCPTs: its text
        # is read as commands and refused one by one, never delivered
        before = len(self.srv.deliveries())
        c = greeted(self.srv)
        c.send("MAIL FROM:<a@b>\r\nRCPT TO:<-bad>\r\nDATA\r\nMAIL FROM:<x@y>\r\n.\r\n")
        c.expect(250)
        c.expect(553)
        c.expect(554)
        c.expect(503)
        c.expect(500)
        time.sleep(0.2)
        self.assertEqual(len(self.srv.deliveries()), before)

    def test_31_smuggling_via_bare_lf_dot(self):
        before = len(self.srv.deliveries())
        c = greeted(self.srv)
        c.message("x\n.\nMAIL FROM:<e@v>\nRCPT TO:<v@x>\nDATA\nevil\n.\n\r\n.\r\n")
        time.sleep(0.2)
        self.assertEqual(len(self.srv.deliveries()), before + 1)

    def test_32_disconnect_in_every_state(self):
        for script in ("", "EHLO c\r\n", "EHLO c\r\nMAIL FROM:<a@b>\r\n",
                       "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n",
                       "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\npartial"):
            c = self.srv.raw()
            c.send(script)
            c.close()

    def test_33_reset_by_peer(self):
        import struct
        c = self.srv.raw()
        c.expect(220)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.send("EHLO c\r\nMAIL FROM:<a@b>\r\n")
        c.close()

    def test_34_idle_client_timed_out(self):
        c = self.srv.raw(timeout=20)
        c.expect(220)
        t = time.time()
        c.expect(421, "4.4.2")
        self.assertLess(time.time() - t, 15)

    def test_35_slow_data_client_timed_out(self):
        c = greeted(self.srv, timeout=20)
        c.cmd("MAIL FROM:<a@b>", 250)
        c.cmd("RCPT TO:<c@d>", 250)
        c.cmd("DATA", 354)
        c.send("half a message")
        c.expect(421)

    # --- AUTH abuse without auth configured -------------------------------
    def test_36_auth_when_disabled(self):
        c = greeted(self.srv)
        c.cmd("AUTH PLAIN AGFAYg==", 503)
        c.cmd("AUTH", 503)

    def test_37_unknown_and_unimplemented_verbs(self):
        c = greeted(self.srv)
        for v in ("XEXPS", "TURN", "ETRN x", "BDAT 1 LAST", "SAML FROM:<a>"):
            c.send(v + "\r\n")
            self.assertIn(c.reply()[0], (500, 502))

    def test_38_many_errors_end_the_session(self):
        with harness.Server("--max-errors=5") as srv:
            c = srv.raw()
            c.expect(220)
            c.send("BAD\r\n" * 10)
            codes = [c.reply()[0] for _ in range(6)]
            self.assertEqual(codes, [500] * 5 + [421])
            self.assertTrue(c.closed())

    def test_39_verbs_in_odd_case_and_glued(self):
        c = self.srv.raw()
        c.expect(220)
        c.cmd("eHlO c", 250)
        c.cmd("MAIL:FROM:<a@b>", 500)
        c.cmd("mail from:<a@b>", 250)

    def test_40_huge_auth_line_when_enabled(self):
        with harness.Server("--auth=u,echo p") as srv:
            c = srv.raw()
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.send("AUTH PLAIN " + "A" * 20000 + "\r\n")
            c.expect(500, "too long")
            c.cmd("AUTH LOGIN", 334)
            c.send("B" * 20000 + "\r\n")
            c.expect(500)
            c.cmd("AUTH LOGIN", 334)
            c.cmd("not base64!", 501)
            c.cmd("AUTH PLAIN", 334)
            c.cmd("=", 501)
            c.cmd("NOOP", 250)

    def test_41_connection_flood_while_serving(self):
        before = len(self.srv.deliveries())
        for _ in range(100):
            socket.create_connection(("127.0.0.1", self.srv.port)).close()
        s = self.srv.smtp()
        s.sendmail("a@b", ["c@d"], "after the flood\r\n")
        s.quit()
        self.assertEqual(len(self.srv.deliveries(before + 1)), before + 1)

    def test_42_sessions_fill_the_slots_then_time_out(self):
        with harness.Server("--max-sessions=3", "-t", "2") as srv:
            idle = [srv.raw() for _ in range(3)]
            t = time.time()
            s = srv.smtp(timeout=30)  # waits in the backlog until an idle one times out
            s.sendmail("a@b", ["c@d"], "x\r\n")
            s.quit()
            self.assertLess(time.time() - t, 20)
            for c in idle:
                c.close()


if __name__ == "__main__":
    harness.main()
