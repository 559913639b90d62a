"""AUTH PLAIN and LOGIN with passwordeval, real clients, the brake, the log."""
import base64
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PW = "s3cr et\"'$x"  # blanks, quotes and a dollar survive passwordeval
EVAL = "--auth=alice,printf '%s\\n' 's3cr et\"'\"'\"'$x'"


def brake_delay():
    """The brake's own delay in seconds, as bounds.h sets it."""
    import re
    with open(os.path.join(harness.SOURCE, "src", "bounds.h")) as f:
        m = re.search(r"#define BOUND_AUTH_DELAY_MS\s+(\d+)", f.read())
    assert m, "BOUND_AUTH_DELAY_MS not in src/bounds.h"
    return int(m.group(1)) / 1000.0


SLEEPS = ("nanosleep", "clock_nanosleep")


class SyscallTrace:
    """strace -f on the running daemon: which session slept, and when,
    in the order the syscalls happened. This observes the brake itself
    (a session sleeping before it answers AUTH) instead of timing the
    replies, which a busy machine delays at random."""

    def __init__(self, pid):
        # the daemon first (-f follows every child it forks from then
        # on), then each child it had already (spare sessions, forked
        # before their clients come); one that -f follows already cannot
        # be attached twice, and is left to it
        self.paths, self.procs = [], []
        assert self._attach(pid), "strace could not attach to %d" % pid
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                older = [int(p) for p in f.read().split()]
        except FileNotFoundError:
            older = []
        for p in older:
            self._attach(p)

    def _attach(self, pid):
        path = tempfile.mktemp(prefix="smtpipe-strace-")
        proc = subprocess.Popen(
            ["strace", "-f", "-s", "64", "-o", path,
             "-e", "trace=read,write,sendto,nanosleep,clock_nanosleep", "-p", str(pid)],
            stderr=subprocess.PIPE, text=True)
        line = proc.stderr.readline()  # "strace: Process N attached"
        if "attached" not in line:
            proc.wait(timeout=30)
            proc.stderr.close()
            if os.path.exists(path):
                os.unlink(path)
            return False
        self.paths.append(path)
        self.procs.append(proc)
        return True

    def text(self):
        """What was traced so far, every process's lines"""
        out = ""
        for path in self.paths:
            with open(path, errors="replace") as f:
                out += f.read()
        return out

    def stop(self):
        """Detach; returns {pid: [(syscall, text)]} in order."""
        calls = {}
        for proc, path in zip(self.procs, self.paths):
            proc.send_signal(2)
            proc.wait(timeout=30)
            proc.stderr.close()
            with open(path, errors="replace") as f:
                for line in f:
                    pid, _, rest = line.partition(" ")
                    rest = rest.strip()
                    if rest.startswith("<..."):  # the end of an unfinished call
                        continue
                    name = rest.split("(", 1)[0]
                    calls.setdefault(int(pid), []).append((name, rest))
            os.unlink(path)
        return calls


def session_that_read(calls, text):
    """The calls of the one process that read text"""
    pids = [p for p, cs in calls.items() if any(n == "read" and text in t for n, t in cs)]
    assert len(pids) == 1, "processes that read %r: %r" % (text, pids)
    return calls[pids[0]]


def index_of(calls, name, text):
    for i, (n, t) in enumerate(calls):
        if n == name and text in t:
            return i
    raise AssertionError("no %s with %r in %r" % (name, text, calls))


def sleeps(calls):
    return [i for i, (n, _) in enumerate(calls) if n in SLEEPS]


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class Auth(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server(EVAL)

    def tearDown(self):
        self.srv.stop()

    def greet(self):
        c = self.srv.raw()
        c.expect(220)
        lines = c.cmd("EHLO c", 250)
        self.assertIn("AUTH PLAIN LOGIN", lines)
        return c

    def test_smtplib_plain_and_login(self):
        for mech in ("PLAIN", "LOGIN"):
            with self.subTest(mech=mech):
                s = self.srv.smtp()
                s.ehlo()
                s.user, s.password = "alice", PW
                code, _ = s.auth(mech, s.auth_plain if mech == "PLAIN" else s.auth_login)
                self.assertEqual(code, 235)
                s.sendmail("alice@a.test", ["b@b.test"], "Subject: %s\r\n\r\nauthed\r\n" % mech)
                s.quit()
        d = self.srv.deliveries(2)
        self.assertEqual(len(d), 2)
        self.assertIn(b"with ESMTPA id", d[0].stdin)
        log = self.srv.log()
        self.assertRegex(log, r'event=auth-ok client=127\.0\.0\.1 mech=PLAIN user="alice"')
        self.assertRegex(log, r'event=auth-ok client=127\.0\.0\.1 mech=LOGIN user="alice"')
        # neither the password nor the base64 that carried it is logged
        self.assertNotIn("s3cr", log)
        self.assertNotIn(b64("\0alice\0" + PW), log)
        self.assertNotIn(b64(PW), log)

    def test_wrong_password_logged_not_leaked(self):
        s = self.srv.smtp()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
            s.login("alice", "guess-one")
        self.assertEqual(e.exception.smtp_code, 535)
        s.close()
        log = self.srv.log()
        self.assertRegex(log, r'event=auth-failed client=127\.0\.0\.1 mech=\S+ user="alice"')
        self.assertNotIn("guess-one", log)
        self.assertNotIn("s3cr", log)

    def test_sequence_and_syntax_errors(self):
        c = self.srv.raw()
        c.expect(220)
        c.cmd("AUTH PLAIN " + b64("\0alice\0" + PW), 503)  # before EHLO
        c.cmd("EHLO c", 250)
        c.cmd("MAIL FROM:<a@b>", 530, "5.7.0")
        c.cmd("AUTH CRAM-MD5", 504, "5.5.4")
        c.cmd("AUTH PLAIN %%%%", 501, "5.5.2")
        c.cmd("AUTH PLAIN " + b64("alice"), 501, "5.5.2")
        c.cmd("AUTH PLAIN", 334)
        c.cmd("*", 501, "cancelled")
        c.cmd("AUTH LOGIN", 334, "VXNlcm5hbWU6")
        c.cmd("*", 501)
        c.cmd("AUTH PLAIN " + "A" * 10000, 501)  # a 10 KB response
        c.cmd("AUTH PLAIN " + b64("bob\0alice\0" + PW), 535)  # authzid must be the user
        c.cmd("AUTH PLAIN " + b64("alice\0alice\0" + PW), 235)
        c.cmd("AUTH PLAIN " + b64("\0alice\0" + PW), 503)  # twice
        c.cmd("MAIL FROM:<a@b>", 250)
        c.cmd("QUIT", 221)

    def test_more_sequence_cases(self):
        c = self.greet()
        c.cmd("AUTH", 501)  # no mechanism
        c.cmd("AUTH PLAIN =", 501, "5.5.2")  # an empty initial response is no PLAIN message
        c.cmd("AUTH LOGIN", 334, "VXNlcm5hbWU6")
        c.cmd("%%%%", 501, "5.5.2")  # bad base64 as the user name
        c.cmd("AUTH LOGIN", 334, "VXNlcm5hbWU6")
        c.cmd(b64("bob"), 334, "UGFzc3dvcmQ6")
        c.cmd(b64(PW), 535, "5.7.8")  # right password, wrong user
        c.cmd("AUTH PLAIN " + b64("\0alice\0" + PW + "x"), 535)  # longer password
        c.cmd("AUTH PLAIN " + b64("\0alice\0" + PW[:-1]), 535)  # a prefix of it
        c.cmd("AUTH PLAIN " + b64("\0alice\0" + PW), 235)
        c.cmd("MAIL FROM:<a@b>", 250)
        c.cmd("AUTH PLAIN " + b64("\0alice\0" + PW), 503)  # in a transaction, and again
        c.cmd("QUIT", 221)
        log = self.srv.log()
        self.assertEqual(len([ln for ln in log.splitlines() if "event=auth-failed" in ln]), 3, log)
        self.assertRegex(log, r'event=auth-failed client=127\.0\.0\.1 mech=LOGIN user="bob"')

    def test_plain_continuation_and_login_initial_response(self):
        c = self.greet()
        c.cmd("AUTH PLAIN", 334)
        c.cmd(b64("\0alice\0" + PW), 235)
        c.cmd("QUIT", 221)
        c = self.greet()
        c.cmd("AUTH LOGIN " + b64("alice"), 334, "UGFzc3dvcmQ6")
        c.cmd(b64(PW), 235)

    def test_swaks_plain_and_login(self):
        sw = harness.clients()["SWAKS"]
        for mech in ("PLAIN", "LOGIN"):
            with self.subTest(mech=mech):
                r = subprocess.run([sw, "-s", "127.0.0.1", "-p", str(self.srv.port), "-f", "a@a.test",
                                    "-t", "b@b.test", "--auth", mech, "--auth-user", "alice",
                                    "--auth-password", PW], capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        self.assertEqual(len(self.srv.deliveries(2)), 2)

    def test_msmtp_client_auth(self):
        # msmtp picks PLAIN or LOGIN over plaintext only when told to
        for mech in ("plain", "login"):
            with tempfile.TemporaryDirectory() as tmp:
                conf = os.path.join(tmp, "rc")
                with open(conf, "w") as f:
                    f.write("account default\nhost 127.0.0.1\nport %d\nfrom m@a.test\nauth %s\n"
                            "user alice\npassword %s\ntls off\n" % (self.srv.port, mech, PW))
                os.chmod(conf, 0o600)
                r = subprocess.run([harness.clients()["MSMTP"], "-C", conf, "b@b.test"],
                                   input=b"Subject: m\n\nvia msmtp\n", capture_output=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
        for d in self.srv.deliveries(2):
            self.assertTrue(d.stdin.endswith(b"via msmtp\n"))


class NoAuth(unittest.TestCase):
    def test_auth_off_is_not_offered_nor_accepted(self):
        with harness.Server() as srv:
            c = srv.raw()
            c.expect(220)
            lines = c.cmd("EHLO c", 250)
            self.assertNotIn("AUTH", " ".join(lines))
            c.cmd("AUTH PLAIN " + b64("\0alice\0pw"), 503)
            c.cmd("MAIL FROM:<a@b>", 250)  # no AUTH needed


class Brake(unittest.TestCase):
    def test_failure_delays_other_sessions_not_mail(self):
        with harness.Server(EVAL) as srv:
            # mail without AUTH is refused (530) but never delayed
            trace = SyscallTrace(srv.proc.pid)
            c = srv.raw()
            c.expect(220)
            c.cmd("EHLO c", 250)
            # the brake is a schedule: the next check comes at least one
            # delay after c's, and c's came after this clock reading
            t = time.time()
            c.cmd("AUTH PLAIN " + b64("\0alice\0wrong"), 535)
            d = srv.raw()
            d.expect(220)
            d.cmd("EHLO d", 250)
            d.cmd("AUTH PLAIN " + b64("\0alice\0" + PW), 235)
            # another session's AUTH waits: at least the brake's delay
            self.assertGreaterEqual(time.time() - t, 0.9 * brake_delay())
            calls = session_that_read(trace.stop(), "EHLO d")
            auth = index_of(calls, "read", "AUTH PLAIN")
            # greeting and EHLO are not braked: d slept only after reading AUTH
            self.assertEqual(len(sleeps(calls)), 1, calls)
            self.assertGreater(sleeps(calls)[0], auth, calls)

    def test_no_auth_server_not_delayed(self):
        with harness.Server() as srv:
            trace = SyscallTrace(srv.proc.pid)
            s = srv.smtp()
            s.sendmail("a@a.test", ["b@b.test"], "x\r\n")
            s.quit()
            calls = session_that_read(trace.stop(), "FROM:<a@a.test>")
            self.assertEqual(sleeps(calls), [], calls)

    def test_brake_does_not_block_other_sessions(self):
        with harness.Server(EVAL) as srv:
            c = srv.raw()
            c.expect(220)
            c.cmd("EHLO c", 250)
            t = time.time()  # before c's check, which the next one follows by a delay
            c.cmd("AUTH PLAIN " + b64("\0alice\0wrong"), 535)
            trace = SyscallTrace(srv.proc.pid)
            slow = srv.raw()
            slow.expect(220)
            slow.cmd("EHLO s", 250)
            slow.send("AUTH PLAIN " + b64("\0alice\0wrong") + "\r\n")  # now braked
            fast = srv.raw()
            fast.expect(220)
            fast.cmd("EHLO f", 250)
            fast.cmd("NOOP", 250)
            slow.expect(535)
            self.assertGreaterEqual(time.time() - t, 0.9 * brake_delay())
            calls = trace.stop()
            slow_calls = session_that_read(calls, "EHLO s")
            self.assertEqual(len(sleeps(slow_calls)), 1, slow_calls)
            # the other session never waited for the brake
            self.assertEqual(sleeps(session_that_read(calls, "EHLO f")), [])

    def test_inetd_always_delays(self):
        def talk(c):
            c.expect(220)
            c.cmd("EHLO c", 250)
            t = time.time()
            c.cmd("AUTH PLAIN " + b64("\0alice\0" + PW), 235)
            self.assertGreaterEqual(time.time() - t, 0.9 * brake_delay())
            c.cmd("QUIT", 221)
        rc, err = harness.run_inetd([EVAL, "--command=true"], talk)
        self.assertEqual(rc, 0, err)


class PasswordEval(unittest.TestCase):
    def run_eval(self, ev):
        return subprocess.run([harness.binary(), "--port=0", "--auth=alice," + ev, "--command=true"],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)

    def test_failures_exit_3(self):
        for ev, msg in (("exit 1", "passwordeval 'exit 1' failed: exit 1"),
                        ("true", "passwordeval 'true' printed nothing"),
                        ("sleep 60", "passwordeval 'sleep 60' timed out after 10 s")):
            with self.subTest(ev=ev):
                r = self.run_eval(ev)
                self.assertEqual(r.returncode, 3)
                self.assertIn(msg, r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1)

    def test_inetd_eval_does_not_read_the_client(self):
        # under --inetd stdin is the client's socket: a command that reads
        # stdin must not take what the client sent while it ran
        def talk(c):
            c.send("NOOP\r\n")  # sent at once: it waits in the socket while EVAL runs
            c.expect(220)
            c.expect(250)
            c.cmd("EHLO c", 250)
            c.cmd("AUTH PLAIN " + b64("\0alice\0s3cret"), 235)
            c.cmd("QUIT", 221)
        rc, err = harness.run_inetd(["--auth=alice,read x; echo s3cret", "--command=true"], talk,
                                    timeout=15)
        self.assertEqual(rc, 0, err)

    def test_password_not_in_argv_of_children(self):
        with harness.Server(EVAL) as srv:
            s = srv.smtp()
            s.login("alice", PW)
            s.sendmail("a@a.test", ["b@b.test"], "x\r\n")
            s.quit()
            d = srv.deliveries(1)[0]
            self.assertFalse(any("s3cr" in a for a in d.argv))
            with open("/proc/%d/cmdline" % srv.proc.pid, "rb") as f:
                self.assertIn(b"s3cr", f.read())  # only the administrator's own EVAL text


if __name__ == "__main__":
    harness.main()
