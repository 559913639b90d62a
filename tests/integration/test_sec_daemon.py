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
from harness import HANG, children, wait_for  # noqa: E402

BRAKE_DELAY = 1.0  # BOUND_AUTH_DELAY_MS in src/bounds.h
AUTH = "--auth=alice,echo s3cret"


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


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


class Stdio(unittest.TestCase):
    def test_inetd_with_stdout_closed_keeps_replies_out_of_the_log(self):
        # 12.12: with fd 1 closed the log file became fd 1 and received
        # every reply; now 0-2 are opened on /dev/null first
        d = tempfile.mkdtemp(prefix="smtpipe-stdio-")
        self.addCleanup(shutil.rmtree, d, True)
        log = os.path.join(d, "log")
        a, b = socket.socketpair()
        p = subprocess.Popen([harness.binary(), "--inetd", "--log=" + log, "--log-level=debug",
                              "--command=true"], stdin=b, stderr=subprocess.PIPE,
                             preexec_fn=lambda: os.close(1))
        b.close()
        a.sendall(b"EHLO words-of-the-client\r\nQUIT\r\n")
        a.shutdown(socket.SHUT_WR)
        self.assertEqual(p.wait(timeout=HANG), 0)
        p.stderr.close()
        a.close()
        text = read(log)
        self.assertIn("event=connect", text)
        self.assertNotRegex(text, r"(?m)^(220|250|221)[ -]", text)
        self.assertNotIn("Hello", text)


class Pidfile(unittest.TestCase):
    def test_pidfile_with_user(self):
        # 12.11: -P with --user: written as root before the drop, then
        # emptied at exit (nobody may not unlink in a root-only directory)
        d = tempfile.mkdtemp(prefix="smtpipe-pid-")
        self.addCleanup(shutil.rmtree, d, True)
        pidfile = os.path.join(d, "smtpipe.pid")
        srv = harness.Server("-P", pidfile, "--user=nobody")
        try:
            self.assertEqual(read(pidfile), "%d\n" % srv.proc.pid)
            self.assertEqual(os.stat(pidfile).st_uid, 0)
        finally:
            srv.stop()
        self.assertFalse(os.path.exists(pidfile) and os.path.getsize(pidfile) > 0,
                         "a stale pid file: %r" % read(pidfile))
        self.assertIn("event=pidfile-emptied", srv.log())

    def test_pidfile_removed_when_allowed(self):
        d = tempfile.mkdtemp(prefix="smtpipe-pid-")
        self.addCleanup(shutil.rmtree, d, True)
        pidfile = os.path.join(d, "smtpipe.pid")
        with harness.Server("-P", pidfile):
            self.assertTrue(read(pidfile).strip().isdigit())
        self.assertFalse(os.path.exists(pidfile))


class Sighup(unittest.TestCase):
    def test_sighup_mid_delivery_is_ignored_by_the_session(self):
        # 12.7: `pkill -HUP smtpipe` reaches the daemon and every session;
        # a session mid-delivery must still answer, and deliver once
        with harness.Server(recorder_opts=["--sleep", "3"]) as srv:
            c = srv.raw(timeout=HANG)
            c.greet()
            c.data().send("Subject: hup\r\n\r\nbody\r\n.\r\n")
            srv.deliveries(wait_for=1, timeout=HANG)  # the command is running
            sessions = children(srv.proc.pid, zombies=True)
            self.assertTrue(sessions)
            for pid in [srv.proc.pid] + sessions:
                os.kill(pid, signal.SIGHUP)
            c.expect(250)
            c.cmd("QUIT", 221)
            self.assertEqual(len(srv.deliveries()), 1)
            self.assertNotIn("event=session-crashed", srv.log())

    def test_inetd_session_ignores_sighup_mid_delivery(self):
        # a terminal hang-up of `smtpipe --inetd`: the delivery finishes, 250 once
        d = tempfile.mkdtemp(prefix="smtpipe-hup-")
        self.addCleanup(shutil.rmtree, d, True)
        out = os.path.join(d, "out")
        a, b = socket.socketpair()
        p = subprocess.Popen([harness.binary(), "--inetd", "--log=" + os.path.join(d, "log"),
                              "--command=" + harness.recorder_command(out, sleep=3)],
                             stdin=b, stdout=b, stderr=subprocess.PIPE)
        b.close()
        c = harness.RawClient(0, sock=a, timeout=HANG)
        try:
            c.greet()
            c.data().send("Subject: hup\r\n\r\nbody\r\n.\r\n")
            wait_for(lambda: os.path.isdir(out) and any(n.endswith(".json") for n in os.listdir(out)),
                     "the command to start")
            p.send_signal(signal.SIGHUP)
            c.expect(250)
            c.cmd("QUIT", 221)
        finally:
            a.close()
        self.assertEqual(p.wait(timeout=HANG), 0)
        p.stderr.close()
        self.assertEqual(len([n for n in os.listdir(out) if n.endswith(".json")]), 1)

    def test_sighup_reopens_the_log_file(self):
        # logrotate: rename, then HUP; the daemon and later sessions
        # write to a new file of the old name
        with harness.Server() as srv:
            rotated = srv.logfile + ".1"
            os.rename(srv.logfile, rotated)
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_log("event=log-reopened", timeout=HANG)
            c = srv.raw()
            c.greet()
            c.cmd("QUIT", 221)
            srv.wait_log("event=close", timeout=HANG)  # a session's line in the new log
            self.assertNotIn("event=connect", read(rotated))
            self.assertIn("event=sighup", read(srv.logfile))


PKI = {}


def pki():
    if not PKI:
        PKI.update(harness.make_pki())
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


class Hardening(unittest.TestCase):
    def test_not_dumpable_and_no_core_files(self):
        # 12.14: started as an ordinary user (no setuid to clear the flag),
        # daemon and sessions are not dumpable and have RLIMIT_CORE 0
        d, exe = nobody_copy()
        self.addCleanup(shutil.rmtree, d, True)
        nobody = pwd.getpwnam("nobody")
        log = os.path.join(d, "log")

        def core_unlimited():
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=%d" % nobody.pw_gid,
                              "--clear-groups", exe, "--interface=127.0.0.1", "--port=0",
                              "--log=" + log, "--log-level=debug", "--command=true"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=d,
                             preexec_fn=core_unlimited)
        try:
            port = int(p.stdout.readline())
            c = harness.RawClient(port, timeout=HANG)
            c.expect(220)
            session = wait_for(lambda: children(p.pid, zombies=True), "the session process")[0]
            for pid in (p.pid, session):
                st = os.stat("/proc/%d/environ" % pid)
                self.assertEqual(st.st_uid, 0, "pid %d is dumpable: /proc owned by %d"
                                 % (pid, st.st_uid))
                limits = read("/proc/%d/limits" % pid)
                self.assertRegex(limits, r"Max core file size\s+0\s+0\s", limits)
            c.cmd("QUIT", 221)
            c.close()
        finally:
            p.terminate()
            p.wait(timeout=HANG)
            p.stdout.close()
            p.stderr.close()

    def test_reload_of_a_root_only_key_after_user_keeps_the_old_certificate(self):
        k = pki()
        with harness.Server("-c", k["SERVER"], "-k", k["SERVER_KEY"], "--user=nobody") as srv:
            srv.proc.send_signal(signal.SIGHUP)
            line = wait_for(lambda: re.search(r".*event=tls-reload-failed.*", srv.log()),
                            "the reload's line").group(0)
            self.assertIn("Permission denied", line)
            self.assertIn("keeping the certificate loaded before", line)
            self.assertEqual(srv.log().count("event=tls-reload-failed"), 1)
            ctx = ssl.create_default_context(cafile=k["CA"])
            with srv.smtp() as s:
                s.starttls(context=ctx)
                s.ehlo()
                self.assertEqual(s.noop()[0], 250)


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


class Failures(unittest.TestCase):
    def test_fork_failure_answers_421_and_backs_off(self):
        # 19.11: RLIMIT_NPROC 1 for nobody: every fork fails
        with harness.Server("--user=nobody",
                            preexec_fn=set_soft_limit(resource.RLIMIT_NPROC, 1)) as srv:
            for _ in range(3):
                c = srv.raw(timeout=HANG)
                c.expect(421, "4.3.2")
                self.assertTrue(c.closed(timeout=HANG))
            self.assertEqual(srv.log().count("event=fork-failed"), 1, srv.log())
            hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
            raise_soft_limit_as("nobody", srv.proc.pid,
                                "--nproc=%s:" % ("unlimited" if hard == resource.RLIM_INFINITY else hard))
            c = srv.raw(timeout=HANG)
            c.expect(220)
            c.cmd("QUIT", 221)
            self.assertRegex(srv.log(), r"event=fork-recovered failures=3\b")

    def test_emfile_logs_one_line_then_a_summary(self):
        # the daemon's own accept (a spare's: test_pool.py)
        with harness.Server("--spare-sessions=0") as srv:
            pid = srv.proc.pid
            n = open_fds(pid)
            soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (n, hard))
            c = harness.RawClient(srv.port, timeout=HANG)  # waits in the backlog
            srv.wait_log("event=accept-failed", timeout=HANG)
            start = switches(pid)
            # thirty more waits of the listener: thirty more failed accepts
            wait_for(lambda: switches(pid) > start + 30, "the listener's retries")
            self.assertEqual(srv.log().count("event=accept-failed"), 1, srv.log())
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
            c.expect(220)
            c.cmd("QUIT", 221)
            c.close()
            m = re.search(r"event=accept-recovered failures=(\d+)", srv.log())
            self.assertTrue(m, srv.log())
            self.assertGreater(int(m.group(1)), 10)

    def test_emfile_summary_at_most_once_a_minute(self):
        # the retries (ten a second) each fail; between the first line
        # and the recovery only one summary per
        # BOUND_FAILURE_SUMMARY_SECONDS may be logged, however long the
        # machine takes (the bound grows with the time really spent)
        with harness.Server("--spare-sessions=0") as srv:
            pid = srv.proc.pid
            soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_fds(pid), hard))
            t0 = time.monotonic()
            c = harness.RawClient(srv.port, timeout=HANG)  # waits in the backlog
            srv.wait_log("event=accept-failed", timeout=HANG)
            start = switches(pid)
            wait_for(lambda: switches(pid) > start + 30, "the listener's retries")
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
            c.expect(220)
            c.cmd("QUIT", 221)
            c.close()
            spent = time.monotonic() - t0
            m = re.search(r"event=accept-recovered failures=(\d+)", srv.log())
            self.assertTrue(m, srv.log())
            self.assertGreater(int(m.group(1)), 10)
            self.assertLessEqual(srv.log().count("event=accept-failing"), 1 + int(spent // 60),
                                 srv.log())


class ClientLimit(unittest.TestCase):
    def test_sessions_per_client(self):
        with harness.Server("--max-sessions-per-client=2", "--client-limit-loopback") as srv:
            a, b = srv.raw(), srv.raw()
            a.greet()
            b.greet()
            c = srv.raw()
            c.expect(421, "4.7.0")
            self.assertTrue(c.closed(timeout=HANG))
            self.assertRegex(srv.log(), r"event=client-cap client=127\.0\.0\.1 sessions=2\b")
            a.cmd("QUIT", 221)
            srv.wait_log("event=session-exit", timeout=HANG)
            d = srv.raw()
            d.greet()
            d.cmd("QUIT", 221)
            b.cmd("QUIT", 221)

    def test_ipv6_client(self):
        # ::1 is counted (by its /64) like any IPv6 client once loopback counts
        if not socket.has_ipv6:
            self.fail("no IPv6 on this machine")
        with harness.Server("--interface=::1", "--max-sessions-per-client=1",
                            "--client-limit-loopback") as srv:
            a = harness.RawClient(srv.port, host="::1")
            a.greet()
            b = harness.RawClient(srv.port, host="::1")
            b.expect(421, "4.7.0")
            self.assertIn("event=client-cap client=::1 sessions=1", srv.log())
            a.cmd("QUIT", 221)
            a.close()
            b.close()

    def test_loopback_exempt_by_default(self):
        with harness.Server("--max-sessions-per-client=1") as srv:
            a, b = srv.raw(), srv.raw()
            a.greet()
            b.greet()
            self.assertNotIn("event=client-cap", srv.log())

    def test_global_cap_still_waits(self):
        # the global cap keeps clients in the backlog, even with the per-client limit
        with harness.Server("--max-sessions=1", "--max-sessions-per-client=1",
                            "--client-limit-loopback") as srv:
            a = srv.raw(timeout=HANG)
            a.greet()
            srv.wait_log("event=session-cap", timeout=HANG)
            b = harness.RawClient(srv.port, timeout=HANG)
            a.cmd("QUIT", 221)
            b.expect(220)
            b.cmd("QUIT", 221)
            b.close()


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
            srv.wait_log("event=auth-failed", count=2, timeout=HANG)  # the brake at work
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
