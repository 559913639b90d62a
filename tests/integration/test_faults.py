"""Scripted faults (--fault, --faults, --fault-seed) with real clients:
every stage and action, every N and P% with a fixed seed (exact
sequences, across sessions), the issue's examples as written, bad rules,
PIPELINING order, the AUTH brake, --inetd counting, and the README
example run as written."""
import email.utils
import mailbox
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MSG = "Subject: hi\r\n\r\nHello\r\n.\r\n"


def maildir_count(srv):
    return len(mailbox.Maildir(srv.mailbox, create=False)) if os.path.isdir(srv.mailbox) else 0


class Stages(unittest.TestCase):
    """One rule per stage, each action, a real client each time."""

    def server(self, *rules, extra=()):
        srv = harness.Server(*["--fault=" + r for r in rules], *extra, mailbox="Maildir/")
        self.addCleanup(srv.stop)
        return srv

    def test_connect_reply(self):
        srv = self.server("connect 554 5.7.1 No thanks")
        with self.assertRaises(smtplib.SMTPConnectError) as cm:
            srv.smtp()
        self.assertEqual(cm.exception.smtp_code, 554)
        self.assertIn('event=fault stage=connect rule=1 nth=1 action=reply '
                      'reply="554 5.7.1 No thanks" client=127.0.0.1 arg="127.0.0.1"', srv.log())

    def test_connect_drop_as_written(self):
        srv = self.server("connect drop")
        c = srv.raw()
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")  # not even a greeting
        self.assertIn("action=drop", srv.log())

    def test_connect_delay(self):
        srv = self.server("connect delay 1")
        s = srv.smtp()
        self.assertEqual(s.noop()[0], 250)
        s.quit()
        self.assertIn("stage=connect rule=1 nth=1 action=delay delay=1", srv.log())

    def test_helo(self):
        srv = self.server("helo *.BAD.test 550 5.7.1 Not from there")
        c = srv.raw()
        c.expect(220)
        c.cmd("EHLO x.bad.test", 550, "5.7.1 Not from there")
        c.cmd("MAIL FROM:<a@b.test>", 503)  # not greeted
        c.cmd("EHLO good.test", 250)
        c.cmd("QUIT", 221)

    def test_mail_delay_as_written(self):
        srv = self.server("mail delay 2")
        s = srv.smtp()
        self.assertEqual(s.sendmail("a@b.test", ["c@d.test"], "Subject: x\n\nx\n"), {})
        s.quit()
        self.assertIn("stage=mail rule=1 nth=1 action=delay delay=2", srv.log())
        self.assertIn("event=fault-delay ms=2000", srv.log())
        self.assertEqual(maildir_count(srv), 1)

    def test_delay_bounded_by_timeout(self):
        # without the bound the reply would come after a day; the socket's
        # own timeout (20 s) guards against that hang
        srv = self.server("mail delay 86400", extra=("--timeout=1",))
        c = srv.raw(timeout=20)
        c.greet()
        c.cmd("MAIL FROM:<a@b.test>", 250)
        self.assertIn("event=fault-delay ms=1000", srv.log())

    def test_rcpt_as_written(self):
        srv = self.server("rcpt *@bounce.test 550 5.1.1 No such user")
        s = srv.smtp()
        refused = s.sendmail("a@b.test", ["ok@d.test", "X@Bounce.Test"], "Subject: x\n\nx\n")
        self.assertEqual(refused, {"X@Bounce.Test": (550, b"5.1.1 No such user")})
        s.quit()
        (msg,) = mailbox.Maildir(srv.mailbox).values()
        self.assertEqual(email.utils.getaddresses(msg.get_all("X-Envelope-To")),
                         [("", "ok@d.test")])
        self.assertIn('action=reply reply="550 5.1.1 No such user" client=127.0.0.1 '
                      'arg="X@Bounce.Test"', srv.log())

    def test_rcpt_421_ends_session(self):
        srv = self.server("rcpt 421 4.7.0 Closing")
        c = srv.raw()
        c.greet()
        c.cmd("MAIL FROM:<a@b.test>", 250)
        c.cmd("RCPT TO:<c@d.test>", 421, "4.7.0 Closing")
        self.assertTrue(c.closed())

    def test_data(self):
        srv = self.server("data 451 4.3.0 Not now")
        s = srv.smtp()
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("a@b.test", ["c@d.test"], "Subject: x\n\nx\n")
        self.assertEqual((cm.exception.smtp_code, cm.exception.smtp_error),
                         (451, b"4.3.0 Not now"))
        self.assertEqual(s.noop()[0], 250)
        s.quit()
        self.assertEqual(maildir_count(srv), 0)

    def test_dot_every_2_as_written(self):
        srv = self.server("dot every 2 451 4.3.0 Try again later")
        got = []
        for i in range(4):  # four sessions: the count is the daemon's
            s = srv.smtp()
            try:
                s.sendmail("a@b.test", ["c@d.test"], "Subject: %d\n\nx\n" % i)
                got.append(250)
            except smtplib.SMTPDataError as e:
                got.append(e.smtp_code)
            s.quit()
        self.assertEqual(got, [250, 451, 250, 451])
        subjects = sorted(m["Subject"] for m in mailbox.Maildir(srv.mailbox).values())
        self.assertEqual(subjects, ["0", "2"])  # a dot fault never delivers

    def test_dot_drop(self):
        srv = self.server("dot drop")
        c = srv.raw()
        c.greet()
        c.data("a@b.test", ["c@d.test"]).send(MSG)
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")
        self.assertEqual(maildir_count(srv), 0)

    def test_dot_delay_delivers(self):
        srv = self.server("dot a@* delay 1")
        c = srv.raw()
        c.greet()
        c.message(MSG, 250, "a@b.test", ["c@d.test"])
        self.assertEqual(maildir_count(srv), 1)

    def test_quit(self):
        srv = self.server("quit 421 4.3.0 Bye anyway")
        c = srv.raw()
        c.greet()
        c.cmd("QUIT", 421, "Bye anyway")
        self.assertTrue(c.closed())

    def test_quit_drop(self):
        srv = self.server("quit drop")
        s = srv.smtp()
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            s.docmd("QUIT") and s.getreply()

    def test_pipelined_replies_stay_in_order(self):
        srv = self.server("rcpt *@bounce.test 550 5.1.1 No such user", "mail delay 1")
        c = srv.raw()
        c.greet()
        c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@bounce.test>\r\nRCPT TO:<c@d.test>\r\n"
               "RCPT TO:<y@bounce.test>\r\nDATA\r\n")
        for code in (250, 550, 250, 550, 354):
            c.expect(code)
        c.send(MSG)
        c.expect(250)

    def test_pipelined_drop_sends_earlier_replies(self):
        srv = self.server("rcpt *@drop.test drop")
        c = srv.raw()
        c.greet()
        c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nRCPT TO:<x@drop.test>\r\n")
        c.expect(250)
        c.expect(250)
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")

    def test_first_rule_that_fires_answers(self):
        srv = self.server("rcpt a@* 550 5.1.1 first", "rcpt *@d.test 551 5.1.6 second")
        c = srv.raw()
        c.greet()
        c.cmd("MAIL FROM:<z@b.test>", 250)
        c.cmd("RCPT TO:<a@d.test>", 550, "first")
        c.cmd("RCPT TO:<b@d.test>", 551, "second")
        c.cmd("RCPT TO:<b@e.test>", 250)


class Auth(unittest.TestCase):
    def test_auth_as_written_answers_before_the_check(self):
        srv = harness.Server("--auth-accept-any",
                             "--fault=auth 535 5.7.8 Authentication credentials invalid",
                             mailbox="mbox")
        self.addCleanup(srv.stop)
        s = srv.smtp()
        s.ehlo()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.login("alice", "anything")
        self.assertEqual(cm.exception.smtp_code, 535)
        s.close()
        log = srv.log()
        self.assertIn('stage=auth rule=1 nth=1 action=reply reply="535 5.7.8 Authentication '
                      'credentials invalid" client=127.0.0.1 arg="alice"', log)
        # no credential check ran, so the brake was neither waited for nor
        # charged
        self.assertNotIn("event=auth-brake", log)
        self.assertNotIn("event=auth-ok", log)
        self.assertNotIn("event=auth-failed", log)

    def test_auth_match_leaves_other_users(self):
        srv = harness.Server("--auth-accept-any", "--fault=auth Bob 454 4.7.0 Try later",
                             mailbox="mbox")
        self.addCleanup(srv.stop)
        s = srv.smtp()
        s.ehlo()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.login("bob", "x")
        self.assertEqual(cm.exception.smtp_code, 454)
        self.assertEqual(s.login("alice", "x")[0], 235)
        s.quit()
        self.assertIn("event=auth-ok", srv.log())


class Chance(unittest.TestCase):
    def test_percent_with_a_fixed_seed(self):
        # 16 recipients over two sessions: the same sequence as one
        # session would see (tests/unit/test_faults.c pins it too)
        srv = harness.Server("--fault=rcpt 50% 550 5.1.1 Unlucky", "--fault-seed=42",
                             mailbox="mbox")
        self.addCleanup(srv.stop)
        got = ""
        for _ in range(2):
            c = srv.raw()
            c.greet()
            c.cmd("MAIL FROM:<a@b.test>", 250)
            for i in range(8):
                c.send("RCPT TO:<r%d@d.test>\r\n" % i)
                got += "1" if c.reply()[0] == 550 else "."
            c.cmd("QUIT", 221)
        self.assertEqual(got, ".1.11..11...1111")
        self.assertIn("seed=42", srv.log())

    def test_random_seed_is_logged(self):
        srv = harness.Server("--fault=rcpt 50% 550 x", mailbox="mbox")
        self.addCleanup(srv.stop)
        self.assertRegex(srv.log(), r"event=faults rules=1 seed=[1-9][0-9]* counted=daemon")

    def test_inetd_counts_per_process(self):
        args = ["--fault=dot every 2 451 4.3.0 Try again later", "--mailbox",
                os.path.join(tempfile.mkdtemp(), "mbox")]

        def one(c):
            c.greet()
            c.message(MSG, 250)
            c.cmd("QUIT", 221)

        def two(c):
            c.greet()
            c.message(MSG, 250)
            c.message(MSG, 451)
            c.cmd("QUIT", 221)
        self.assertEqual(harness.run_inetd(args, one)[0], 0)
        self.assertEqual(harness.run_inetd(args, one)[0], 0)  # its own count
        self.assertEqual(harness.run_inetd(args, two)[0], 0)


class BadRules(unittest.TestCase):
    CASES = [
        ("rset 550 x", "unknown stage 'rset'"),
        ("rcpt 250 ok", "'250' is not a 4xx or 5xx reply code"),
        ("rcpt 550 4.1.1 x", "'4.1.1' is not an enhanced status code of class 5"),
        ("rcpt *@x", "no action"),
        ("dot every 0 drop", "'every' needs a whole number"),
        ("mail delay soon", "'delay' needs a number of seconds"),
        ("rcpt 150% drop", "'150%' is not a probability"),
        ("rcpt 550 5.1.1 caf\u00e9", "the reply text holds byte 0xc3"),
        ("rcpt 550 " + "x" * 507, "the reply text is longer than 506 octets"),
    ]

    def test_bad_rule_is_a_usage_error_that_quotes_it(self):
        for personality, exe in (("smtpipe", harness.binary()),
                                 ("mockmta", harness.mockmta_binary())):
            for rule, why in self.CASES:
                r = subprocess.run([exe, "-f", "-p", "0", "--fault=" + rule,
                                    os.path.join(tempfile.mkdtemp(), "mbox")],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 3, (personality, rule, r.stderr))
                quoted = rule if len(rule) <= 200 else rule[:200] + "..."
                quoted = quoted.replace("\u00e9", "\\xc3\\xa9")  # quoted as bytes
                self.assertIn("fault rule '%s': %s" % (quoted, why), r.stderr)
                self.assertEqual(r.stdout, "")

    def test_faults_file(self):
        d = tempfile.mkdtemp()
        good = os.path.join(d, "good")
        with open(good, "w") as f:
            f.write("# a comment\n\n  rcpt *@bounce.test 550 5.1.1 No such user\r\n")
        bad = os.path.join(d, "bad")
        with open(bad, "w") as f:
            f.write("# fine\nconnect drop\nrcpt 299 no\n")
        cr = os.path.join(d, "cr")
        with open(cr, "w") as f:
            f.write("rcpt 550 5.1.1 a\rb\r\n")
        srv = harness.Server("--faults=" + good, mailbox="mbox")
        self.addCleanup(srv.stop)
        c = srv.raw()
        c.greet()
        c.cmd("MAIL FROM:<a@b.test>", 250)
        c.cmd("RCPT TO:<x@bounce.test>", 550, "No such user")
        r = subprocess.run([harness.binary(), "-p", "0", "--faults=" + bad, "--mailbox",
                            os.path.join(d, "mbox")], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 3)
        self.assertIn("--faults=%s line 3: fault rule 'rcpt 299 no': '299' is not a 4xx" % bad,
                      r.stderr)
        r = subprocess.run([harness.binary(), "-p", "0", "--faults=" + cr, "--mailbox",
                            os.path.join(d, "mbox")], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 3)  # a CR inside a line is refused, not cut
        self.assertIn("line 1: fault rule 'rcpt 550 5.1.1 a\\x0db': the reply text holds byte 0x0d",
                      r.stderr)
        r = subprocess.run([harness.mockmta_binary(), "-f", "-p", "0",
                            "--faults=" + os.path.join(d, "missing"), os.path.join(d, "mbox")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)  # mockmta: cannot start
        self.assertIn("No such file or directory", r.stderr)


class Readme(unittest.TestCase):
    def test_readme_fault_example(self):
        """The README's fault example runs as written, with mockmta on
        PATH, and prints what its comments say."""
        with open(os.path.join(harness.SOURCE, "README.md")) as f:
            readme = f.read()
        part = readme.split("To make the server fail on purpose", 1)[1]
        code = re.search(r"```python\n(.*?)```", part, re.S).group(1)
        want = "".join(l[2:] + "\n" for l in re.findall(r"(?m)^# .*$", code))
        bindir = os.path.dirname(harness.mockmta_binary())
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, want), r.stderr)
        self.assertIn("'bcc@example.org'", r.stdout)


if __name__ == "__main__":
    harness.main()
