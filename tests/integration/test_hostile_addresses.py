"""Hostile addresses: each reaches argv as one element, or not at all; nothing runs.

DESIGN.md invariant 4: no byte from a client reaches a shell or becomes
an option. Every case runs twice: with a command spawned directly (the
recorder) and with a template that uses shell syntax, which smtpipe runs
as /bin/sh -c with the recipients as "$@" and the sender in
$SMTPIPE_SENDER. In both, the address bytes must arrive exactly as sent,
one argument each, and the canary file that every payload tries to
create must never appear. Addresses beginning with '-' or holding
control characters are refused (553) and never reach argv; bad syntax
and overlong paths get 501.
"""
import os
import shlex
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# short: each payload must fit a 64-octet local part (RFC 5321 4.5.3.1.1)
CANARY = "/tmp/sp-canary-%d" % os.getpid()

# Local parts a shell would act on. Quoted local parts (RFC 5321 4.1.2)
# may hold any printable byte, escaped with a backslash for " and \.
QUOTED = [
    "$(touch %s)" % CANARY,
    "`touch %s`" % CANARY,
    "x;touch %s" % CANARY,
    "x|touch %s" % CANARY,
    "x&&touch %s;" % CANARY,
    "x>%s" % CANARY,
    "x<%s" % CANARY,
    "john doe",
    "  two  blanks  ",
    "it's",
    "a\\\"b",  # a\"b: an escaped quote
    "back\\\\slash",  # back\\slash: an escaped backslash
    "-oQ/tmp/x",  # quoted, so it begins with '"', not '-'
    "*",
    "${IFS}x",
    "x\\ny",  # backslash-n, two characters
]
# Dot-atoms may hold ! # $ % & ' * + - / = ? ^ _ ` { | } ~ unquoted.
ATOMS = [
    "a|b", "a&b", "a$b", "a`id`b", "a'b'c", "{ab}", "~root", "*", "?", "a#b", "x=$HOME",
    "!event", "a/../../b", "a%b",
]
LITERALS = ["a@[127.0.0.1]", "a@[IPv6:::1]", "a@[IPv6:2001:db8::1]"]


def quoted(local):
    return '"%s"@hostile.test' % local


def recipients():
    return [quoted(q) for q in QUOTED] + ["%s@hostile.test" % a for a in ATOMS] + LITERALS


class Direct(unittest.TestCase):
    """Template spawned without a shell: the recorder gets argv as is."""

    def start(self):
        return harness.Server("--max-errors=1000")

    def delivered(self, srv):
        """(sender, recipients, message bytes) of the one delivery."""
        d = srv.deliveries(1)
        self.assertEqual(len(d), 1)
        return d[0].sender, d[0].recipients, d[0].stdin

    def setUp(self):
        if os.path.exists(CANARY):
            os.unlink(CANARY)
        self.srv = self.start()

    def tearDown(self):
        # every session this case started has ended (each delivery, and
        # with it any shell, has run its course): only then is the
        # canary's absence final
        for c in self.srv._raws:
            c.close()
        log = self.srv.wait_log(harness.sessions_over)
        self.srv.stop()
        self.assertNotIn("event=session-crashed", log)
        self.assertFalse(os.path.exists(CANARY), "a client byte reached a shell")

    def test_metacharacters_are_one_argument_each(self):
        rcpts = recipients()
        c = self.srv.raw().greet()
        sender = quoted("$(touch %s)|&;`" % CANARY)
        c.cmd("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            c.cmd("RCPT TO:<%s>" % r, 250, "2.1.5")
        c.cmd("DATA", 354)
        c.send("Subject: $(touch %s)\r\n\r\n`touch %s`\r\n.\r\n" % (CANARY, CANARY))
        c.expect(250)
        c.cmd("QUIT", 221)
        got_sender, got_rcpts, _ = self.delivered(self.srv)
        self.assertEqual(got_sender, sender)
        self.assertEqual(got_rcpts, rcpts)

    def test_source_route_dropped_rest_kept(self):
        c = self.srv.raw().greet()
        c.cmd("MAIL FROM:<@relay.test,@b.test:\"x;y\"@a.test>", 250)
        c.cmd("RCPT TO:<@relay.test:a|b@c.test>", 250)
        c.cmd("DATA", 354)
        c.send(".\r\n")
        c.expect(250)
        sender, rcpts, _ = self.delivered(self.srv)
        self.assertEqual((sender, rcpts), ('"x;y"@a.test', ["a|b@c.test"]))

    def test_leading_dash_refused_and_never_in_argv(self):
        c = self.srv.raw().greet()
        for s in ("-oQ/tmp/x@a.test", "-f", "--help", "-", "-@a.test"):
            c.cmd("MAIL FROM:<%s>" % s, 553, "5.1.7")
        c.cmd("MAIL FROM:<ok@a.test>", 250)
        for r in ("-X/tmp/log", "-oi@b.test", "--", "-bh", "-C/etc/passwd@x.test"):
            c.cmd("RCPT TO:<%s>" % r, 553, "5.1.3")
        c.cmd("RCPT TO:<good@b.test>", 250)
        c.cmd("DATA", 354)
        c.send(".\r\n")
        c.expect(250)
        sender, rcpts, _ = self.delivered(self.srv)
        self.assertEqual((sender, rcpts), ("ok@a.test", ["good@b.test"]))

    def test_control_characters_refused(self):
        c = self.srv.raw().greet()
        for ch in ("\x01", "\x07", "\x1b", "\x7f", "\t", "\x0b", "\x0c"):
            c.send("MAIL FROM:<a%sb@a.test>\r\n" % ch)
            code, _ = c.reply()
            self.assertIn(code, (501, 553), repr(ch))
            c.send('MAIL FROM:<"a%sb"@a.test>\r\n' % ch)
            code, _ = c.reply()
            self.assertIn(code, (501, 553), repr(ch))
        # a bare CR inside a command line is not an end of line
        c.send("MAIL FROM:<a\rb@a.test>\r\n")
        code, _ = c.reply()
        self.assertIn(code, (500, 501, 553))
        c.cmd("MAIL FROM:<a@a.test>", 250)
        for ch in ("\x01", "\x1b[2J", "\x7f"):
            c.send("RCPT TO:<r%s@b.test>\r\n" % ch)
            code, _ = c.reply()
            self.assertIn(code, (501, 553), repr(ch))
        c.cmd("RCPT TO:<r@b.test>", 250)
        c.cmd("DATA", 354)
        c.send(".\r\n")
        c.expect(250)
        _, rcpts, _ = self.delivered(self.srv)
        self.assertEqual(rcpts, ["r@b.test"])

    def test_path_length_boundary(self):
        # RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets
        domain = ".".join(["d" * 60] * 4)  # 243 octets
        ok = "<%s@%s>" % ("l" * 10, domain)
        self.assertEqual(len(ok), 256)
        too_long = "<%s@%s>" % ("l" * 11, domain)
        c = self.srv.raw().greet()
        c.cmd("MAIL FROM:%s" % too_long, 501)
        c.cmd("MAIL FROM:%s" % ok, 250)
        c.cmd("RCPT TO:%s" % too_long, 501)
        c.cmd("RCPT TO:<%s@b.test>" % ("x" * 300), 501)
        c.cmd("RCPT TO:%s" % ok, 250)
        c.cmd("DATA", 354)
        c.send(".\r\n")
        c.expect(250)
        sender, rcpts, _ = self.delivered(self.srv)
        self.assertEqual((sender, rcpts), (ok[1:-1], [ok[1:-1]]))

    def test_unbalanced_and_malformed(self):
        c = self.srv.raw().greet()
        c.cmd("MAIL FROM:<a@a.test>", 250)
        for bad in ("<a@b.test", "a@b.test>", "<<a@b.test>", "<a@b.test>>", '<"a@b.test>',
                    '<"a"b"@b.test>', "<a b@c.test>", "<a@b c.test>", "<@b.test>", "<a@>",
                    "<a@.b>", "<a@b.>", "<a@[127.0.0.1>", "<a(comment)@b.test>", "<a@b.test>x",
                    "<>", "<a@@b.test>", "<a@b@c.test>", "<a@b..test>", "<a@-b.test>",
                    "<a@b$(id).test>", "<a@[300.1.1.1]>", "<a@[IPv6:1::2::3]>", "<a@[]>"):
            c.send("RCPT TO:%s\r\n" % bad)
            code, lines = c.reply()
            self.assertEqual(code, 501, "%r: got %d %s" % (bad, code, lines))
        c.cmd("RSET", 250, "2.0.0")
        c.cmd("QUIT", 221, "2.0.0")
        self.assertTrue(c.closed())
        self.srv.wait_log(harness.sessions_over)  # the session has exited
        self.assertEqual(self.srv.deliveries(), [])


class Shell(Direct):
    """Template with shell syntax: /bin/sh -c, client data only in "$@" and
    $SMTPIPE_SENDER. It writes the sender, the recipients (NUL after each)
    and the message into files the test reads back."""

    def start(self):
        self.out = tempfile.mkdtemp(prefix="smtpipe-shell-")
        o = shlex.quote(self.out)
        # printf's arguments are %F (the sender) and then, appended by
        # smtpipe, "$@": one NUL-terminated field each
        cmd = "cat >%s/msg && printf '%%s\\0' %%F >%s/args" % (o, o)
        return harness.Server("--max-errors=1000", command=cmd)

    def tearDown(self):
        super().tearDown()
        import shutil
        shutil.rmtree(self.out, True)

    def delivered(self, srv):
        # the 250 came after the shell exited: both files are complete
        with open(os.path.join(self.out, "args"), "rb") as f:
            fields = f.read().split(b"\0")
        self.assertEqual(fields[-1], b"")
        fields = [x.decode() for x in fields[:-1]]
        with open(os.path.join(self.out, "msg"), "rb") as f:
            return fields[0], fields[1:], f.read()

    def test_shell_template_is_in_use(self):
        c = self.srv.raw().greet()
        c.message("Subject: shell\r\n\r\nvia sh\r\n.\r\n", 250, sender="", rcpts=("r@b.test",))
        sender, rcpts, msg = self.delivered(self.srv)
        self.assertEqual((sender, rcpts), ("MAILER-DAEMON", ["r@b.test"]))
        self.assertTrue(msg.endswith(b"Subject: shell\n\nvia sh\n"))


if __name__ == "__main__":
    harness.main()
