"""The AUTH password that cannot be had: passwordeval failing in each way,
and the terminal prompt interrupted or left without an answer.

smtpipe(8), AUTHENTICATION: the password is found once, at start-up; an
EVAL that fails (an exit status, a signal), prints nothing or runs over
BOUND_PASSWORDEVAL_SECONDS stops start-up with one line (exit 3; under
--inetd with the client's socket on stderr, in the log, never to the
client), and the command's whole process group goes at the deadline.
The prompt (src/secret.c) turns the terminal's echo off while the
password is typed and gives it back even when smtpipe is interrupted
there; an empty answer stops start-up with one line. Real processes
throughout: smtpipe, /bin/sh, and a pseudo-terminal for the prompt.
"""
import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import termios
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HANG, bound  # noqa: E402



EVAL_S = bound("BOUND_PASSWORDEVAL_SECONDS")
LONG = "exit 3 # " + "".join("%03d," % i for i in range(75))  # 309 characters


def group_members(pgid):
    """Live processes of process group pgid."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                    out.append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    return out


def finish(p):
    """(exit status, stdout, stderr) of p, which must end by itself."""
    try:
        out, err = p.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out, err + "\n(still running after %d s: killed)" % HANG
    return p.returncode, out, err


class PasswordEval(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpipe-secret-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.tmp]))

    def cases(self):
        """(EVAL, the one line it must give, output it must not show)"""
        pidfile = os.path.join(self.tmp, "pgid")
        stuck = "echo $$ >%s; sleep 1000; :" % pidfile
        self.pidfile = pidfile
        return [
            ("kill -TERM $$", "passwordeval 'kill -TERM $$' failed: killed by signal 15", None),
            ("kill -KILL $$", "passwordeval 'kill -KILL $$' failed: killed by signal 9", None),
            # a password printed by a command that then fails is not used
            ("echo pw$((6*7)); exit 75", "passwordeval 'echo pw$((6*7)); exit 75' failed: exit 75",
             "pw42"),
            ("true", "passwordeval 'true' printed nothing", None),
            # a long command is cut to fit the line, and says so
            (LONG, "passwordeval '%s...' failed: exit 3" % LONG[:196], None),
            ("echo", "passwordeval 'echo' printed an empty first line", None),
            (stuck, "passwordeval '%s' timed out after %d s" % (stuck, EVAL_S), None),
        ]

    def check_group_gone(self):
        """The stuck command's shell led its own group: all of it is gone."""
        with open(self.pidfile) as f:
            pgid = int(f.read())
        deadline = time.time() + HANG  # SIGKILL is at once; reaping may lag
        while group_members(pgid) and time.time() < deadline:
            time.sleep(0.05)
        left = group_members(pgid)
        for pid in left:  # not left behind by a failing run either
            os.kill(pid, signal.SIGKILL)
        self.assertEqual(left, [], "the timed-out command's group lives on")

    def test_each_failure_stops_start_up_with_one_line(self):
        cases = self.cases()
        # all at once: the case that runs into the deadline costs it once
        procs = [subprocess.Popen([harness.binary(), "--port=0", "--auth=alice," + ev,
                                   "--command=true"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for ev, _, _ in cases]
        for (ev, want, hidden), p in zip(cases, procs):
            rc, out, err = finish(p)
            with self.subTest(eval=ev):
                self.assertEqual((rc, out, err), (3, "", "smtpipe: " + want + "\n"))
                if hidden:
                    self.assertNotIn(hidden, err)
        self.check_group_gone()

    def test_inetd_failure_goes_to_the_log_not_to_the_client(self):
        cases = self.cases()
        runs = []
        for i, (ev, _, _) in enumerate(cases):
            log = os.path.join(self.tmp, "log%d" % i)
            args = ["--auth=alice," + ev, "--command=true"]
            runs.append((log,) + harness.inetd_on_socket(args, log))
        for (ev, want, hidden), (log, p, client) in zip(cases, runs):
            got = harness.read_to_eof(client)
            with self.subTest(eval=ev):
                self.assertEqual(p.wait(timeout=HANG), 3)
                self.assertEqual(got, b"", "the client got start-up text")
                with open(log) as f:
                    lines = [l for l in f.read().splitlines() if "event=startup-error" in l]
                self.assertEqual(len(lines), 1, lines)
                # escaped as every client-facing text is (LOGGING): blanks as \x20
                text = lines[0].encode().decode("unicode_escape")
                self.assertIn('error="%s"' % want, text)
                if hidden:
                    self.assertNotIn(hidden, text)
        self.check_group_gone()


class NoTerminal(unittest.TestCase):
    def test_terminal_on_stdin_but_no_controlling_terminal(self):
        # stdin is a terminal, so the prompt is tried; /dev/tty cannot be
        # opened in a session without a controlling terminal: one line
        master, slave = os.openpty()
        try:
            env = harness.bus_env("/nonexistent/bus")  # no Secret Service
            p = subprocess.Popen([harness.binary(), "--port=0", "--auth=alice", "--command=true"],
                                 stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=env, text=True, start_new_session=True)
            rc, out, err = finish(p)
        finally:
            os.close(master)
            os.close(slave)
        self.assertEqual((rc, out, err), (3, "", "smtpipe: cannot open the terminal to ask for "
                                          "the password: No such device or address\n"))


class Prompt(unittest.TestCase):
    """--auth=USER, no Secret Service, stdin a terminal: the prompt."""

    def setUp(self):
        self.master, self.slave = os.openpty()
        self.addCleanup(os.close, self.master)
        self.addCleanup(os.close, self.slave)
        self.sane = termios.tcgetattr(self.slave)
        self.assertTrue(self.sane[3] & termios.ECHO)
        env = harness.bus_env("/nonexistent/bus")  # no Secret Service

        def controlling_terminal():  # after setsid(): the pty becomes /dev/tty
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        self.p = subprocess.Popen([harness.real_binary(), "--port=0", "--auth=alice",
                                   "--command=true"], stdin=self.slave, stdout=self.slave,
                                  stderr=self.slave, env=env, start_new_session=True,
                                  preexec_fn=controlling_terminal)
        self.addCleanup(lambda: self.p.poll() is None and self.p.kill())
        self.out = b""
        self.read_until(lambda: b"Password for alice: " in self.out, "the prompt")
        # the mechanism is at work: no echo while the password is typed
        self.assertFalse(termios.tcgetattr(self.slave)[3] & termios.ECHO, "echo on at the prompt")

    def read_until(self, done, what):
        deadline = time.time() + HANG
        while not done():
            if time.time() > deadline:
                self.fail("no %s on the terminal within %d s: %r" % (what, HANG, self.out))
            if select.select([self.master], [], [], 0.1)[0]:
                self.out += os.read(self.master, 4096)

    def ended(self):
        """smtpipe's wait status (it must end by itself), and what the
        terminal showed until then."""
        try:
            self.p.wait(timeout=HANG)
        except subprocess.TimeoutExpired:
            self.fail("smtpipe did not end: %r" % self.out)
        while select.select([self.master], [], [], 0)[0]:
            self.out += os.read(self.master, 4096)
        return self.p.returncode

    def assert_terminal_as_it_was(self):
        now = termios.tcgetattr(self.slave)
        self.assertTrue(now[3] & termios.ECHO, "the terminal was left without echo")
        self.assertEqual(now, self.sane)

    def test_interrupt_key_gives_the_echo_back(self):
        os.write(self.master, b"half a pass")  # typed, not yet entered
        os.write(self.master, bytes([self.sane[6][termios.VINTR][0]]))  # ^C
        self.assertEqual(self.ended(), -signal.SIGINT)  # dies of it, as without a handler
        self.assert_terminal_as_it_was()
        self.assertNotIn(b"half a pass", self.out)
        self.assertFalse(re.search(rb"^\d+\r?$", self.out, re.M), "it listened: %r" % self.out)

    def test_sigterm_gives_the_echo_back(self):
        self.p.send_signal(signal.SIGTERM)
        self.assertEqual(self.ended(), -signal.SIGTERM)
        self.assert_terminal_as_it_was()

    def test_no_answer_stops_start_up_with_one_line(self):
        os.write(self.master, bytes([self.sane[6][termios.VEOF][0]]))  # ^D: end of input
        self.assertEqual(self.ended(), 3, self.out)
        self.assert_terminal_as_it_was()
        self.assertTrue(self.out.endswith(
            b"Password for alice: \r\nsmtpipe: --auth=alice: no password given at the prompt\r\n"),
            self.out)


if __name__ == "__main__":
    harness.main()
