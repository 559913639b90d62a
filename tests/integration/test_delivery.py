"""Pipe delivery: the command's argv, its exit status as the reply, its time limit.

DESIGN.md's delivery contract, end to end: exit 0 -> 250; 68, 69, 71,
75 -> 451; any other status -> 554; killed by a signal or over
--delivery-timeout -> 451 with nothing left running. The command's
stdout and stderr go to the log, never into the SMTP stream. The
template is split once, without a shell, unless it uses shell syntax.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def processes_with(marker):
    """PIDs whose command line holds marker (a unique string), smtpipe's
    own processes aside (their --command= holds it too)."""
    me = str(os.getpid())
    return [p for p in os.listdir("/proc") if p.isdigit() and p != me and marker in cmdline(p)
            and "--command=" not in cmdline(p)]


def _sigkilled_or_dead(pid):
    """The process is gone, a zombie, or has a SIGKILL pending."""
    try:
        with open("/proc/%s/status" % pid) as f:
            st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
    except OSError:
        return True
    pending = int(st["SigPnd"], 16) | int(st["ShdPnd"], 16)
    return st["State"].strip().startswith("Z") or bool(pending & (1 << (signal.SIGKILL - 1)))


def gone(marker, timeout=30):
    """True once no process has marker in its command line (a killed
    process may take a moment to go); False after timeout, a hang guard
    far below the 60 s that the markers' sleeps last."""
    deadline = time.time() + timeout
    while processes_with(marker):
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def send(srv, body="Subject: x\r\n\r\nbody\r\n", rcpts=("c@d.test",)):
    """One message over a raw client; returns the client, before the reply to the end of DATA."""
    c = srv.raw(timeout=30).greet()
    c.cmd("MAIL FROM:<a@b.test>", 250)
    for r in rcpts:
        c.cmd("RCPT TO:<%s>" % r, 250)
    c.cmd("DATA", 354)
    c.send(body + ".\r\n")
    return c


class ExitStatus(unittest.TestCase):
    def test_exit_codes(self):
        table = ((0, 250, "delivered"), (65, 554, "failed"), (75, 451, "deferred"),
                 (68, 451, "deferred"), (69, 451, "deferred"), (71, 451, "deferred"),
                 (1, 554, "failed"), (64, 554, "failed"), (78, 554, "failed"))
        for code, want, event in table:
            with self.subTest(code=code), harness.Server(recorder_opts=("--exit", str(code))) as srv:
                c = send(srv)
                lines = c.expect(want)
                c.cmd("NOOP", 250)  # the session goes on after any result
                c.cmd("QUIT", 221)
                text = {250: "2.0.0 Ok: delivered",
                        451: "4.3.0 Temporary failure (delivery command exit %d)" % code,
                        554: "5.3.0 Delivery command failed (exit %d)" % code}[want]
                self.assertEqual(lines, [text])
                self.assertRegex(srv.log(), r"event=%s msg=\S+ nrcpt=1 size=\d+ "
                                 r'result=%d status=%d from="a@b\.test"' % (event, want, code))
                # the command got the whole message whatever it answered
                self.assertTrue(srv.deliveries(1)[0].stdin.endswith(b"\nbody\n"))

    def test_killed_by_a_signal(self):
        for sig in (9, 15, 6):
            with self.subTest(sig=sig), harness.Server(recorder_opts=("--signal", str(sig))) as srv:
                c = send(srv)
                self.assertEqual(c.expect(451), ["4.3.0 Delivery command killed by signal %d" % sig])
                c.cmd("QUIT", 221)
                self.assertRegex(srv.log(), r"event=deferred .*result=451")

    def test_session_reuse_after_a_failure(self):
        # a 451 for one message does not spoil the next in the same session
        with tempfile.TemporaryDirectory() as tmp:
            flag = os.path.join(tmp, "fail-once")
            open(flag, "w").close()
            script = ("import os,sys; sys.stdin.buffer.read(); f=%r\n"
                      "if os.path.exists(f): os.unlink(f); sys.exit(75)\n" % flag)
            with harness.Server(command="%s -c %s -f %%F --" % (sys.executable, _q(script))) as srv:
                c = send(srv)
                self.assertEqual(c.expect(451), ["4.3.0 Temporary failure (delivery command exit 75)"])
                c.message("Subject: again\r\n\r\nx\r\n.\r\n", 250)
                c.cmd("QUIT", 221)


class TimeLimit(unittest.TestCase):
    def test_sleeping_command_is_killed_451(self):
        with harness.Server("--delivery-timeout=1", recorder_opts=("--sleep", "60")) as srv:
            c = send(srv)
            self.assertEqual(c.expect(451), ["4.4.7 Delivery command timed out"])
            c.cmd("NOOP", 250)
            self.assertRegex(srv.log(), r"event=deferred .* result=451 status=-1 timed-out")
            self.assertTrue(gone(srv.outdir + " --sleep"), processes_with(srv.outdir + " --sleep"))

    def test_the_whole_process_group_is_killed(self):
        # a shell that starts a background child and never exits: both go
        marker = "61.%d" % os.getpid()
        with tempfile.TemporaryDirectory() as tmp:
            pidfile = os.path.join(tmp, "bg.pid")
            cmd = ("/bin/sh -c 'cat >/dev/null; sleep %s & echo $! >%s; sleep %s; wait' delivery -f %%F --"
                   % (marker, pidfile, marker))
            with harness.Server("--delivery-timeout=1", command=cmd) as srv:
                c = send(srv)
                self.assertEqual(c.expect(451), ["4.4.7 Delivery command timed out"])
                with open(pidfile) as f:
                    bg = f.read().strip()  # the background child did start
                self.assertTrue(gone("sleep " + marker), processes_with("sleep " + marker))
                self.assertNotIn("sleep " + marker, cmdline(bg))

    def test_background_children_of_a_successful_command_live_on(self):
        # after exit 0 they are left alone, as msmtpd leaves them (issue 19.2)
        marker = "62.%d" % os.getpid()
        cmd = "/bin/sh -c 'cat >/dev/null; sleep %s & exit 0' delivery -f %%F --" % marker
        with harness.Server(command=cmd) as srv:
            c = send(srv)
            c.expect(250)
            # no sleep: the child started before the shell exited, so it is
            # there now; killed, it would be gone, a zombie, or have SIGKILL
            # pending (the reply comes after smtpipe's last kill)
            left = processes_with("sleep " + marker)
            killed = [pid for pid in left if _sigkilled_or_dead(pid)]
            for pid in left:
                os.kill(int(pid), signal.SIGKILL)
            self.assertNotEqual(left, [])
            self.assertEqual(killed, [])

    def test_command_that_does_not_read_stdin(self):
        # exit 0 without reading the message is not a delivery (invariant 1)
        with harness.Server(recorder_opts=("--noread",)) as srv:
            c = send(srv, body="Subject: x\r\n\r\n" + "y" * 900 + "\r\n" * 2000)
            self.assertEqual(c.expect(451), ["4.3.0 Delivery command did not read the whole message"])

    def test_missing_command(self):
        if os.environ.get("SMTPIPE_VALGRIND_DIR"):
            # under valgrind posix_spawn cannot report a failed exec (the
            # child exits 127); this test runs in the native and ASan passes
            self.skipTest("not meaningful under valgrind")
        with harness.Server(command="/nonexistent/cmd -f %F --") as srv:
            c = send(srv)
            self.assertEqual(c.expect(451), ["4.3.0 Cannot run delivery command"])
            self.assertIn("event=command-error", srv.log())


class Output(unittest.TestCase):
    def test_stdout_and_stderr_go_to_the_log(self):
        with harness.Server(recorder_opts=("--stdout", "HELLO-FROM-COMMAND")) as srv:
            c = send(srv)
            lines = c.expect(250)
            c.cmd("NOOP", 250)
            c.send("QUIT\r\n")
            rest = c.expect(221)
            self.assertTrue(c.closed())
            # nothing but replies came over the wire
            self.assertEqual(c.buf, b"")
            self.assertNotIn("HELLO", " ".join(lines + rest))
            log = srv.log()
            self.assertIn('event=command-output text="HELLO-FROM-COMMAND"', log)
            self.assertIn('event=command-output text="HELLO-FROM-COMMAND\\x20(stderr)"', log)

    def test_escape_sequences_in_output_are_escaped_in_the_log(self):
        script = "import sys; sys.stdin.buffer.read(); print('a\\x1b[31mb\\nevent=forged x=1')"
        with harness.Server(command="%s -c %s -f %%F --" % (sys.executable, _q(script))) as srv:
            send(srv).expect(250)
            log = srv.log()
            self.assertNotIn("\x1b", log)
            self.assertFalse(any(l.startswith("event=forged") for l in log.splitlines()), log)


class Template(unittest.TestCase):
    def test_quoted_words_and_every_percent_f(self):
        with tempfile.TemporaryDirectory() as tmp:
            rec = harness.recorder_command(tmp).rsplit(" -- ", 1)[0]
            cmd = rec + " -- 'two words' \"dq \\\"x\\\"\" back\\ slash --from=%F %F --"
            with harness.Server(command=cmd) as srv:
                send(srv, rcpts=("r1@d.test", "r2@d.test")).expect(250)
                srv.outdir = tmp  # where this recorder writes
                argv = srv.deliveries(1)[0].argv
            self.assertEqual(argv[argv.index("--") + 1:],
                             ["two words", 'dq "x"', "back slash", "--from=a@b.test", "a@b.test", "--",
                              "r1@d.test", "r2@d.test"])

    def test_shell_template_msmtpd_style(self):
        # msmtpd's manual pipes to "cat > FILE"; with shell syntax smtpipe runs
        # /bin/sh -c, the sender reaching it only as $SMTPIPE_SENDER
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out")
            cmd = "echo from %%F to >%s.env; cat >%s; :" % (out, out)
            with harness.Server(command=cmd) as srv:
                send(srv, rcpts=("r1@d.test", "r2@d.test")).expect(250)
            with open(out, "rb") as f:
                self.assertTrue(f.read().endswith(b"Subject: x\n\nbody\n"))
            with open(out + ".env") as f:
                self.assertEqual(f.read(), "from a@b.test to\n")

    def test_bad_templates_refused_at_start(self):
        for cmd in ("", "   ", "'unclosed", 'a "b'):
            with self.subTest(cmd=cmd):
                p = subprocess.run([harness.binary(), "--port=0", "--command=" + cmd],
                                   capture_output=True, text=True, timeout=10)
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_msmtp_relays_to_a_second_smtpipe(self):
        # the default shape "msmtp -f %F --" with the real msmtp client: smtpipe
        # A pipes to msmtp, which sends to smtpipe B, which records it
        msmtp = harness.clients()["MSMTP"]
        with harness.Server() as b, tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "msmtprc")
            with open(conf, "w") as f:
                f.write("account default\nhost 127.0.0.1\nport %d\nauth off\ntls off\n" % b.port)
            os.chmod(conf, 0o600)
            with harness.Server(command="%s -C %s -f %%F --" % (msmtp, conf)) as a:
                c = send(a, body="Subject: relayed\r\n\r\nthrough msmtp\r\n",
                         rcpts=("r1@d.test", "r2@d.test"))
                c.expect(250)
                c.cmd("QUIT", 221)
            d = b.deliveries(1)
            self.assertEqual(len(d), 1)
            self.assertEqual((d[0].sender, d[0].recipients), ("a@b.test", ["r1@d.test", "r2@d.test"]))
            # B's Received header on top of A's, then the message
            self.assertEqual(d[0].stdin.count(b"Received: "), 2)
            self.assertTrue(d[0].stdin.endswith(b"Subject: relayed\n\nthrough msmtp\n"))


def _q(s):
    import shlex
    return shlex.quote(s)


if __name__ == "__main__":
    harness.main()
