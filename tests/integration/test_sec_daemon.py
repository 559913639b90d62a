"""The daemon under attack and under a hostile environment (issue 12,
items 5, 7, 11, 12, 14 and per-client fairness; issue 19, item 11).

Each test starts the real binary and drives it with real clients and
real processes: parallel smtplib sessions, several --inetd processes,
a daemon running as nobody, limits lowered with prlimit. No timing
thresholds: a test waits for a log line, a file, a reply or a counter,
each with a generous bound that only guards against a hang. The brake
is measured against its own delay: checks spaced by at least the
delay cannot number more than (elapsed time / delay) + 1.
"""
import os
import pwd
import re
import resource
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BRAKE_DELAY = 1.0  # BOUND_AUTH_DELAY_MS in src/bounds.h
AUTH = "--auth=alice,echo s3cret"
HANG = 60  # seconds: only a guard against a hang


def wait_for(fn, what, timeout=HANG):
    """fn()'s first true value, polled until timeout"""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def children(pid):
    """pids of pid's child processes"""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def switches(pid):
    """the voluntary context switches of pid: each wait in poll() is one"""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches for %d" % pid)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fail_auth(s):
    """one failed AUTH PLAIN on an smtplib session (login() would try
    each mechanism in turn)"""
    s.user, s.password = "alice", "wrong"
    try:
        s.auth("PLAIN", s.auth_plain)
    except smtplib.SMTPAuthenticationError:
        return
    raise AssertionError("a wrong password was accepted")


PKI = {}


def pki():
    if not PKI:
        d = tempfile.mkdtemp(prefix="smtpipe-pki-")
        out = subprocess.run([os.path.join(harness.SOURCE, "tests", "tools", "make-certs.sh"), d],
                             capture_output=True, text=True, check=True).stdout
        PKI.update(line.split("=", 1) for line in out.splitlines())
        PKI["dir"] = d
    return PKI


def tearDownModule():
    if PKI:
        shutil.rmtree(PKI["dir"], ignore_errors=True)


def nobody_copy():
    """the binary in a directory nobody may enter (the build tree may be
    under /root, mode 0700)"""
    d = tempfile.mkdtemp(prefix="smtpipe-nobody-")
    os.chmod(d, 0o777)
    exe = os.path.join(d, "smtpipe")
    shutil.copy(harness.real_binary(), exe)
    os.chmod(exe, 0o755)
    return d, exe


def set_soft_limit(which, n):
    """for preexec_fn: the soft limit n, the hard one kept (raising a limit
    again needs only the soft one: no CAP_SYS_RESOURCE in containers)"""
    def fn():
        resource.setrlimit(which, (n, resource.getrlimit(which)[1]))
    return fn


def raise_soft_limit_as(user, pid, option):
    """prlimit --pid PID OPTION=unlimited-soft, run as user: prlimit(2)
    lets a process of the same uid and gid raise a soft limit up to the hard one"""
    pw = pwd.getpwnam(user)
    subprocess.run(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--clear-groups",
                    "prlimit", "--pid", str(pid), option], check=True, timeout=HANG)


class Brake(unittest.TestCase):
    def assert_bounded(self, text, elapsed, want):
        n = text.count("event=auth-failed")
        self.assertEqual(n, want, text)
        # checks at least BRAKE_DELAY apart: n - 1 gaps fit into elapsed
        self.assertLessEqual(n - 1, elapsed / BRAKE_DELAY + 0.01,
                             "%d failed checks in %.2f s of a %.1f s brake" % (n, elapsed, BRAKE_DELAY))

    def test_parallel_sessions_share_one_brake(self):
        # 12.5: with a per-session brake, 6 sessions guessed 6 times a second
        with harness.Server(AUTH, "--command=true") as srv:
            def guess(i):
                with srv.smtp(timeout=HANG) as s:
                    s.ehlo()
                    fail_auth(s)
                    fail_auth(s)
            t0 = time.monotonic()
            errors = []
            runner = threading.Thread(target=lambda: errors.extend(harness.concurrently(6, guess)))
            runner.start()
            # a session that does not authenticate is served while the brake is busy
            wait_for(lambda: srv.log().count("event=auth-failed") >= 2, "the brake at work")
            c = srv.raw(timeout=HANG)
            c.greet()
            c.cmd("NOOP", 250)
            served_during = srv.log().count("event=auth-failed")
            c.cmd("QUIT", 221)
            runner.join()
            elapsed = time.monotonic() - t0
            self.assertEqual(errors, [])
            self.assertLess(served_during, 12)
            self.assert_bounded(srv.log(), elapsed, 12)
            self.assertIn("event=auth-brake", srv.log())

    def test_inetd_processes_share_the_state_file(self):
        d = tempfile.mkdtemp(prefix="smtpipe-brake-")
        self.addCleanup(shutil.rmtree, d, True)
        log, state = os.path.join(d, "log"), os.path.join(d, "auth-state")

        def talk(c):
            c.greet()
            for _ in range(2):
                c.cmd("AUTH PLAIN AGFsaWNlAHdyb25n", 535)  # \0alice\0wrong
            c.cmd("QUIT", 221)

        def one(i):
            rc, err = harness.run_inetd([AUTH, "--auth-state=" + state, "--log=" + log,
                                         "--command=true"], talk, timeout=HANG)
            if rc != 0:
                raise AssertionError("exit %d: %s" % (rc, err))
        t0 = time.monotonic()
        self.assertEqual(harness.concurrently(4, one), [])
        elapsed = time.monotonic() - t0
        self.assert_bounded(read(log), elapsed, 8)
        st = os.lstat(state)
        self.assertEqual(st.st_mode & 0o777, 0o600)

    def test_inetd_state_file_symlink_refused(self):
        d = tempfile.mkdtemp(prefix="smtpipe-brake-")
        self.addCleanup(shutil.rmtree, d, True)
        log, state = os.path.join(d, "log"), os.path.join(d, "auth-state")
        target = os.path.join(d, "target")
        os.symlink(target, state)

        def talk(c):
            c.greet()
            c.cmd("AUTH PLAIN AGFsaWNlAHdyb25n", 535)
            c.cmd("QUIT", 221)
        rc, err = harness.run_inetd([AUTH, "--auth-state=" + state, "--log=" + log,
                                     "--command=true"], talk, timeout=HANG)
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(target))
        self.assertRegex(read(log), r"event=auth-brake-local .*auth-state")


if __name__ == "__main__":
    harness.main()
