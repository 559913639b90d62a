"""RFC conformance seen by real clients: SIZE as RFC 1870 counts it, text
line length without the transparency dot (and no limit by default), the
exact AUTH challenges, HELP, and a log line for every rejected command.
Every reply is checked byte for byte."""
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PW = "pw-Zq7"
AUTH = "--auth=alice,printf '%s\\n' " + PW


def b64(b):
    return base64.b64encode(b).decode()


def reply_bytes(c):
    """One whole reply from a harness.RawClient, as the exact bytes sent."""
    out = b""
    while True:
        while b"\r\n" not in c.buf:
            chunk = c.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; got %r, buffered %r" % (out, c.buf))
            c.buf += chunk
        line, c.buf = c.buf.split(b"\r\n", 1)
        out += line + b"\r\n"
        if len(line) < 4 or line[3:4] != b"-":
            return out


def send_exact(c, line, want):
    """Send a command line (CRLF added), assert the reply bytes."""
    c.send(line + (b"\r\n" if isinstance(line, bytes) else "\r\n"))
    got = reply_bytes(c)
    if got != want:
        raise AssertionError("%r: got %r, want %r" % (line, got, want))


def stuffed(lines):
    """Message text on the wire: CRLF endings, leading dots doubled, the end."""
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines) + b".\r\n"


DELIVERED = b"250 2.0.0 Ok: delivered\r\n"
TOO_BIG = b"552 5.3.4 Message size exceeds fixed limit\r\n"
LINE_TOO_LONG = b"500 5.5.2 Error: line too long in message text\r\n"


def transaction(c):
    send_exact(c, "MAIL FROM:<a@b.test>", b"250 2.1.0 Ok\r\n")
    send_exact(c, "RCPT TO:<c@d.test>", b"250 2.1.5 Ok\r\n")
    send_exact(c, "DATA", b"354 End data with <CR><LF>.<CR><LF>\r\n")


class Size(unittest.TestCase):
    """RFC 1870 4: the size is the octets of the text with CRLF pairs,
    without the final dot line and the doubled dots."""

    MAX = 1000

    def test_exactly_max_and_one_over(self):
        # ten lines of 98 octets + CRLF = 1000; the first starts with a
        # dot, doubled on the wire but not counted
        lines = [b"." + b"a" * 97] + [b"b" * 98] * 9
        self.assertEqual(sum(len(l) + 2 for l in lines), self.MAX)
        with harness.Server("--max-message-size=%d" % self.MAX) as srv:
            c = srv.raw().greet()
            transaction(c)
            c.send(stuffed(lines))
            self.assertEqual(reply_bytes(c), DELIVERED)
            d = srv.deliveries(1)[0]
            self.assertTrue(d.stdin.endswith(b"\n".join(lines) + b"\n"))
            # one octet more, and under LF counting it would still be 991
            over = lines[:9] + [b"b" * 99]
            self.assertEqual(sum(len(l) + 2 for l in over), self.MAX + 1)
            transaction(c)
            c.send(stuffed(over))
            self.assertEqual(reply_bytes(c), TOO_BIG)
            send_exact(c, "NOOP", b"250 2.0.0 Ok\r\n")
            self.assertEqual(len(srv.deliveries()), 1)
            self.assertRegex(srv.wait_log("too-big"),
                             r"reason=too-big client=127\.0\.0\.1 size=%d " % (self.MAX + 1))

    def test_mail_size_parameter_at_the_boundary(self):
        with harness.Server("--max-message-size=%d" % self.MAX) as srv:
            c = srv.raw().greet()
            send_exact(c, "MAIL FROM:<a@b.test> SIZE=%d" % (self.MAX + 1), TOO_BIG)
            send_exact(c, "MAIL FROM:<a@b.test> SIZE=%d" % self.MAX, b"250 2.1.0 Ok\r\n")


class LineLength(unittest.TestCase):
    def test_default_accepts_long_lines(self):
        # HTML mail from real clients carries lines far over 1000 octets
        lines = [b"Subject: long", b"", b"<p>" + b"x" * 5000 + b"</p>", b"y" * 100000]
        with harness.Server() as srv:
            c = srv.raw(timeout=30).greet()
            transaction(c)
            c.send(stuffed(lines))
            self.assertEqual(reply_bytes(c), DELIVERED)
            self.assertTrue(srv.deliveries(1)[0].stdin.endswith(b"\n".join(lines) + b"\n"))

    def test_zero_is_no_limit(self):
        with harness.Server("--max-line-length=0") as srv:
            c = srv.raw().greet()
            transaction(c)
            c.send(stuffed([b"z" * 3000]))
            self.assertEqual(reply_bytes(c), DELIVERED)

    def test_strict_limit_leaves_out_the_transparency_dot(self):
        with harness.Server("--max-line-length=1000") as srv:
            c = srv.raw().greet()
            # RFC 5321 4.5.3.1.6: 1000 octets with CRLF, not counting
            # the dot doubled for transparency
            dotted = b"." + b"d" * 997
            self.assertEqual(len(dotted), 998)
            transaction(c)
            c.send(stuffed([dotted]))
            self.assertEqual(reply_bytes(c), DELIVERED)
            self.assertTrue(srv.deliveries(1)[0].stdin.endswith(b"\n" + dotted + b"\n"))
            transaction(c)
            c.send(stuffed([b"x" * 998]))
            self.assertEqual(reply_bytes(c), DELIVERED)
            for line in (b"x" * 999, b"." + b"d" * 998):
                transaction(c)
                c.send(stuffed([b"before", line, b"after"]))
                self.assertEqual(reply_bytes(c), LINE_TOO_LONG)
                send_exact(c, "NOOP", b"250 2.0.0 Ok\r\n")
            self.assertEqual(len(srv.deliveries()), 2)
            self.assertIn("reason=line-too-long", srv.wait_log("line-too-long"))


class AuthChallenge(unittest.TestCase):
    def test_challenges_byte_for_byte(self):
        with harness.Server(AUTH) as srv:
            c = srv.raw().greet()
            # RFC 4954 4: "334" SP [base64] CRLF, so an empty challenge is "334 "
            send_exact(c, "AUTH PLAIN", b"334 \r\n")
            send_exact(c, b64(b"\0alice\0wrong"),
                       b"535 5.7.8 Authentication credentials invalid\r\n")
            send_exact(c, "AUTH LOGIN", b"334 VXNlcm5hbWU6\r\n")
            send_exact(c, b64(b"alice"), b"334 UGFzc3dvcmQ6\r\n")
            send_exact(c, "*", b"501 5.7.0 Authentication cancelled\r\n")
            send_exact(c, "AUTH PLAIN", b"334 \r\n")
            send_exact(c, b64(b"\0alice\0" + PW.encode()),
                       b"235 2.7.0 Authentication successful\r\n")

    def test_gnu_mailutils_mail_auth_plain(self):
        """GNU SASL in mailutils' mail(1) refuses "334  " (not base64)."""
        mail = shutil.which("mail")
        if not mail or "GNU Mailutils" not in subprocess.run(
                [mail, "--version"], capture_output=True, text=True).stdout:
            self.fail("GNU Mailutils' mail(1) is missing (package mailutils)")
        with harness.Server(AUTH) as srv:
            home = tempfile.mkdtemp(prefix="smtpipe-mail-")
            try:
                env = dict(os.environ, HOME=home, MAILRC="/dev/null")
                url = "smtp://alice:%s@127.0.0.1:%d;auth=PLAIN" % (PW, srv.port)
                r = subprocess.run([mail, "-n", "-E", "set sendmail=\"%s\"" % url,
                                    "-s", "via mailutils", "r@b.test"],
                                   input=b"hello from mail(1)\n", capture_output=True,
                                   env=env, timeout=60)
            finally:
                shutil.rmtree(home, True)
            d = srv.deliveries(1, timeout=30)
            self.assertEqual(len(d), 1, (r.returncode, r.stderr, srv.log()))
            self.assertEqual(d[0].recipients, ["r@b.test"])
            self.assertTrue(d[0].stdin.endswith(b"hello from mail(1)\n"), d[0].stdin)
            self.assertIn('event=auth-ok client=127.0.0.1 mech=PLAIN user="alice"', srv.log())
            self.assertIn("mech=PLAIN", srv.log())


class Help(unittest.TestCase):
    HEAD = (b"214-2.0.0 smtpipe: commands supported:\r\n"
            b"214-2.0.0   HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY\r\n")
    TAIL = b"214 2.0.0 End of HELP info\r\n"

    def test_no_empty_line_without_starttls_and_auth(self):
        with harness.Server() as srv:
            c = srv.raw()
            c.expect(220)
            send_exact(c, "HELP", self.HEAD + self.TAIL)

    def test_auth_listed(self):
        with harness.Server(AUTH) as srv:
            c = srv.raw()
            c.expect(220)
            send_exact(c, "HELP", self.HEAD + b"214-2.0.0   AUTH\r\n" + self.TAIL)


class RejectedCommandsLogged(unittest.TestCase):
    """A rejected command leaves one line: event, client, the command's
    verb and the reply; 5xx at info, never AUTH data."""

    def line(self, srv, text):
        log = srv.wait_log(text)
        self.assertIn(text, log)
        return log

    def test_5xx_at_info(self):
        with harness.Server(log_level="info") as srv:
            c = srv.raw().greet()
            send_exact(c, "MAIL FROM:<\u00e9@b.test>".encode(),
                       b"553 5.6.7 8-bit address needs the SMTPUTF8 parameter\r\n")
            self.line(srv, 'event=command-rejected client=127.0.0.1 command=MAIL '
                           'reply="553 5.6.7 8-bit address needs the SMTPUTF8 parameter"')
            send_exact(c, "RCPT TO:<c@d.test>", b"503 5.5.1 Error: need MAIL command\r\n")
            self.line(srv, 'event=command-rejected client=127.0.0.1 command=RCPT '
                           'reply="503 5.5.1 Error: need MAIL command"')
            send_exact(c, "EXPN list", b"502 5.5.1 EXPN not implemented\r\n")
            self.line(srv, 'event=command-rejected client=127.0.0.1 command=EXPN '
                           'reply="502 5.5.1 EXPN not implemented"')
            send_exact(c, "XYZZY", b"500 5.5.2 Error: command not recognized\r\n")
            self.line(srv, 'event=command-rejected client=127.0.0.1 command=UNKNOWN '
                           'reply="500 5.5.2 Error: command not recognized"')

    def test_auth_abandoned_and_no_auth_data(self):
        secret = b"\0alice\0Hunter2-not-logged"
        with harness.Server(AUTH, log_level="debug") as srv:
            c = srv.raw().greet()
            send_exact(c, "AUTH PLAIN", b"334 \r\n")
            send_exact(c, "*", b"501 5.7.0 Authentication cancelled\r\n")
            self.line(srv, 'event=command-rejected client=127.0.0.1 command=AUTH '
                           'reply="501 5.7.0 Authentication cancelled"')
            send_exact(c, "AUTH PLAIN " + b64(secret) + "!", b"501 5.5.2 Invalid base64 data\r\n")
            send_exact(c, "AUTH PLAIN", b"334 \r\n")
            send_exact(c, b64(secret)[:-4] + "%%%%", b"501 5.5.2 Invalid base64 data\r\n")
            self.line(srv, 'command=AUTH reply="501 5.5.2 Invalid base64 data"')
            send_exact(c, "AUTH PLAIN", b"334 \r\n")
            c.close()  # gives up half-way
            log = self.line(srv, "event=disconnect client=127.0.0.1 mid-auth")
            self.assertNotIn("mid-transaction", log)
            for leak in (b64(secret), b64(secret)[:-4], "Hunter2"):
                self.assertNotIn(leak, log)

    def test_auth_failure_logged_once(self):
        with harness.Server(AUTH) as srv:
            c = srv.raw().greet()
            send_exact(c, "AUTH PLAIN " + b64(b"\0alice\0wrong"),
                       b"535 5.7.8 Authentication credentials invalid\r\n")
            send_exact(c, "QUIT", b"221 2.0.0 Bye\r\n")
            log = srv.wait_log("event=close")
            self.assertEqual(log.count("event=auth-failed"), 1, log)
            self.assertNotIn("command-rejected", log)

    def test_refused_message_logged_once(self):
        with harness.Server("--max-message-size=10") as srv:
            c = srv.raw().greet()
            transaction(c)
            c.send(stuffed([b"z" * 20]))
            self.assertEqual(reply_bytes(c), TOO_BIG)
            send_exact(c, "QUIT", b"221 2.0.0 Bye\r\n")
            log = srv.wait_log("event=close")
            self.assertEqual(log.count("reason=too-big"), 1, log)
            self.assertNotIn("command-rejected", log)


if __name__ == "__main__":
    harness.main()
