"""Spare session processes (--spare-sessions, issue 18): forked ahead of
their clients, each accepts one connection by itself and serves it as a
fresh process, then exits.

The real binary, real sockets, real processes: a spare is recognised as a
child of the daemon that exists before its client connects; a session's
pid comes from the daemon's `event=session-start pid=N` line. Every wait
is for a log line, a reply, a process or its exit, with a generous bound
that only guards against a hang.
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HANG, alive, children, wait_for  # noqa: E402


def spares(srv, n):
    """the daemon's n idle spares, once there are n children and no session
    (a child that has logged its session-start is a session still on its
    way out, not a spare: its replacement is yet to come)"""
    def idle():
        c = children(srv.proc.pid)
        return c if len(c) == n and not set(c) & set(session_pids(srv.log())) else None
    return wait_for(idle, "%d spare processes" % n)


def kill_left(pids):
    """SIGKILL the spares a failing test leaves behind: they hold the
    daemon's stdout and stderr, and the harness would wait for them"""
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def session_pids(log):
    return [int(p) for p in re.findall(r"event=session-start pid=(\d+)", log)]


def quick_session(port, host="127.0.0.1"):
    c = harness.RawClient(port, host=host, timeout=HANG)
    c.greet()
    c.cmd("QUIT", 221)
    c.close()


PKI = {}


def setUpModule():
    PKI.update(harness.make_pki())


def tearDownModule():
    shutil.rmtree(PKI["dir"], ignore_errors=True)


def fingerprint(port):
    """the SHA-256 of the certificate a STARTTLS on a new connection shows"""
    with socket.create_connection(("127.0.0.1", port), timeout=HANG) as s:
        c = harness.RawClient(0, sock=s, timeout=HANG)
        c.expect(220)
        c.cmd("EHLO c", 250)
        c.cmd("STARTTLS", 220)
        ctx = ssl.create_default_context(cafile=PKI["CA"])
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def der_sha256(pem_path):
    with open(pem_path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


class Pool(unittest.TestCase):
    def test_a_spare_serves_and_each_session_is_a_fresh_process(self):
        with harness.Server("--spare-sessions=2") as srv:
            self.assertIn("spare-sessions=2", srv.log())
            served = []
            for k in range(5):
                before = spares(srv, 2)
                c = srv.raw(timeout=HANG)
                c.greet()
                pid = wait_for(lambda: session_pids(srv.log())[k:], "session %d's start" % k)[0]
                # the session is a process that was waiting before its client came
                self.assertIn(pid, before)
                self.assertNotEqual(pid, srv.proc.pid)
                c.message("Subject: %d\r\n\r\nbody %d\r\n.\r\n" % (k, k))
                c.cmd("QUIT", 221)
                c.close()
                # and it is gone once its client is: no process serves twice
                wait_for(lambda: not alive(pid), "session %d's process to exit" % k)
                served.append(pid)
            self.assertEqual(len(set(served)), 5, served)
            self.assertEqual(len(srv.deliveries(5)), 5)
            log = srv.log()
            self.assertEqual(log.count("event=session-start"), 5)
            wait_for(lambda: srv.log().count("event=session-exit") == 5, "five session exits")

    def test_connection_flood_leaves_only_the_spares(self):
        # 300 connections that close at once: every session reaped, the
        # daemon's descriptors and memory unchanged, and afterwards its
        # only children are the spares it keeps
        with harness.Server("--spare-sessions=3") as srv:
            quick_session(srv.port)
            wait_for(lambda: "event=session-exit " in srv.log(), "the first session's end")
            spares(srv, 3)
            fds_before = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
            for _ in range(300):
                socket.create_connection(("127.0.0.1", srv.port), timeout=HANG).close()
            quick_session(srv.port)
            wait_for(lambda: srv.log().count("event=session-exit ") == 302, "302 session exits")
            spares(srv, 3)
            self.assertLessEqual(len(os.listdir("/proc/%d/fd" % srv.proc.pid)), fds_before)
            log = srv.log()
            self.assertEqual(log.count("event=session-start "), 302)
            self.assertNotIn("event=session-crashed", log)
            self.assertNotIn("event=spare-lost", log)
            self.assertRegex(log, r"event=session-exit pid=\d+ status=0 active=0\n$")

    def test_twenty_clients_with_spares_nothing_lost_nothing_mixed(self):
        # test_concurrency.py's case with spares: every message once, with
        # its own envelope and body; afterwards only spares remain
        with harness.Server("--spare-sessions=4", recorder_opts=("--sleep", "0.05")) as srv:
            want = 4
            self.assertIn("max-sessions=16 spare-sessions=%d" % want, srv.log())

            def client(i):
                s = srv.smtp(timeout=HANG)
                for k in range(5):
                    s.sendmail("c%d@a.test" % i, ["r%d.%d@b.test" % (i, k)],
                               "Subject: %d.%d\r\n\r\nbody %d.%d\r\n" % (i, k, i, k))
                s.quit()
            self.assertEqual(harness.concurrently(20, client), [])
            d = srv.deliveries(100, timeout=HANG)
            self.assertEqual(len(d), 100)
            seen = set()
            for x in d:
                i, k = x.recipients[0][1:].split("@")[0].split(".")
                self.assertEqual(x.sender, "c%s@a.test" % i)
                self.assertTrue(x.stdin.endswith(b"body %s.%s\n" % (i.encode(), k.encode())))
                seen.add((i, k))
            self.assertEqual(len(seen), 100)
            wait_for(lambda: srv.log().count("event=session-exit ") == 20, "20 session exits")
            self.assertEqual(srv.log().count("event=session-start "), 20)
            spares(srv, want)

    def test_a_session_unmaps_the_shared_table(self):
        # the spare needs the table of slots to claim its own; the session
        # it becomes must not read the other slots' clients or hold their lock
        def shared_anon(pid):
            with open("/proc/%d/maps" % pid) as f:
                return [l for l in f if l.split()[1].endswith("s") and "/dev/zero" in l]
        with harness.Server("--spare-sessions=1") as srv:
            pid = spares(srv, 1)[0]
            waiting = shared_anon(pid)  # the table, and the AUTH brake's page
            c = srv.raw(timeout=HANG)
            c.greet()
            self.assertEqual(wait_for(lambda: session_pids(srv.log()), "the session")[0], pid)
            serving = shared_anon(pid)
            self.assertEqual(len(set(waiting) - set(serving)), 1, (waiting, serving))
            self.assertEqual(set(serving) - set(waiting), set())
            c.cmd("QUIT", 221)
        with harness.Server("--spare-sessions=0") as srv:
            c = srv.raw(timeout=HANG)
            c.greet()
            pid = wait_for(lambda: session_pids(srv.log()), "the session")[0]
            self.assertEqual(len(shared_anon(pid)), len(serving))  # the same as a spare's session
            c.cmd("QUIT", 221)

    def test_a_spare_session_ignores_sigpipe(self):
        # as a session forked per accept (test_session_signals.py): a
        # client gone before its reply is an EPIPE, not a death
        with harness.Server("--spare-sessions=2") as srv:
            c = srv.raw(timeout=HANG)
            c.expect(220)
            pid = wait_for(lambda: session_pids(srv.log()), "the session")[0]
            with open("/proc/%d/status" % pid) as f:
                ign = [int(l.split()[1], 16) for l in f if l.startswith("SigIgn:")][0]
            self.assertTrue(ign & (1 << (signal.SIGPIPE - 1)), "SigIgn %x" % ign)
            c.cmd("QUIT", 221)

    def test_spare_sessions_0_forks_per_accept(self):
        with harness.Server("--spare-sessions=0") as srv:
            self.assertIn("spare-sessions=0", srv.log())
            self.assertEqual(children(srv.proc.pid), [])
            c = srv.raw(timeout=HANG)
            c.greet()
            pid = wait_for(lambda: session_pids(srv.log()), "the session's start")[0]
            self.assertEqual(children(srv.proc.pid), [pid])
            c.cmd("QUIT", 221)
            c.close()
            wait_for(lambda: children(srv.proc.pid) == [], "no child once the session ended")

    def test_spares_never_exceed_max_sessions(self):
        # --spare-sessions above --max-sessions: only --max-sessions processes
        with harness.Server("--max-sessions=2", "--spare-sessions=8") as srv:
            self.assertIn("max-sessions=2 spare-sessions=2", srv.log())
            spares(srv, 2)
            a, b = srv.raw(timeout=HANG), srv.raw(timeout=HANG)
            a.greet()
            b.greet()
            wait_for(lambda: "event=session-cap active=2" in srv.log(), "the session cap")
            c = srv.raw(timeout=1)
            with self.assertRaises(socket.timeout):
                c.reply()  # in the backlog: no third process to greet it
            self.assertEqual(len(children(srv.proc.pid)), 2)
            c.sock.settimeout(HANG)
            a.cmd("QUIT", 221)
            c.expect(220)  # a slot freed, a spare was forked, it took c
            c.cmd("QUIT", 221)
            b.cmd("QUIT", 221)

    def test_per_client_limit_in_a_spare(self):
        with harness.Server("--max-sessions-per-client=2", "--client-limit-loopback",
                            "--spare-sessions=4") as srv:
            spares(srv, 4)
            a, b = srv.raw(timeout=HANG), srv.raw(timeout=HANG)
            a.greet()
            b.greet()
            procs = wait_for(lambda: (lambda c: c if len(c) == 6 else None)(children(srv.proc.pid)),
                             "two sessions and four spares")
            c = srv.raw(timeout=HANG)
            c.expect(421, "4.7.0")
            self.assertTrue(c.closed(timeout=HANG))
            # the spare that refused goes on waiting: a refused client costs
            # no fork (as when the daemon refused it itself)
            for _ in range(5):
                r = srv.raw(timeout=HANG)
                r.expect(421, "4.7.0")
                self.assertTrue(r.closed(timeout=HANG))
            self.assertEqual(children(srv.proc.pid), procs)
            self.assertRegex(srv.log(), r"event=client-cap client=127\.0\.0\.1 sessions=2 "
                                        r"listener=127\.0\.0\.1:\d+\n")
            a.cmd("QUIT", 221)
            wait_for(lambda: srv.log().count("event=session-exit") >= 1, "the first session's end")
            d = srv.raw(timeout=HANG)
            d.greet()
            d.cmd("QUIT", 221)
            b.cmd("QUIT", 221)

    def test_per_client_limit_exact_when_spares_race(self):
        # eight connections at once, four spares taking them in parallel:
        # exactly two sessions, every other connection 421 4.7.0
        for _ in range(3):
            with harness.Server("--max-sessions-per-client=2", "--client-limit-loopback",
                                "--spare-sessions=4", "--max-sessions=16") as srv:
                spares(srv, 4)
                conns = [socket.create_connection(("127.0.0.1", srv.port), timeout=HANG)
                         for _ in range(8)]
                codes = []
                for s in conns:
                    c = harness.RawClient(0, sock=s, timeout=HANG)
                    codes.append(c.reply()[0])
                self.assertEqual(sorted(codes), [220, 220] + [421] * 6, codes)
                self.assertEqual(srv.log().count("event=client-cap"), 6)
                for s in conns:
                    s.close()

    def test_sigterm_ends_idle_spares_no_orphans(self):
        srv = harness.Server("--spare-sessions=4")
        pids = []
        try:
            pids = spares(srv, 4)
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(timeout=HANG), 0)
            for pid in pids:
                wait_for(lambda: not alive(pid), "spare %d to exit" % pid, timeout=HANG / 3)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", srv.port), timeout=HANG)
        finally:
            kill_left(pids)
            srv.stop(check=False)
        self.assertNotIn("event=spare-lost", srv.log())

    def test_sigterm_with_a_session_and_spares(self):
        srv = harness.Server("--spare-sessions=2")
        try:
            spares(srv, 2)
            c = srv.raw(timeout=HANG)
            c.greet()
            srv.proc.send_signal(signal.SIGTERM)
            c.expect(421, "4.3.2")
            self.assertEqual(srv.proc.wait(timeout=HANG), 0)
        finally:
            srv.stop(check=False)

    def test_daemon_killed_spares_exit(self):
        # no spare outlives the daemon to accept clients on its own
        srv = harness.Server("--spare-sessions=3")
        pids = []
        try:
            pids = spares(srv, 3)
            srv.proc.kill()
            srv.proc.wait(timeout=HANG)
            for pid in pids:
                wait_for(lambda: not alive(pid), "spare %d to exit" % pid, timeout=HANG / 3)
        finally:
            kill_left(pids)
            srv.stop(check=False)

    def test_killed_spare_is_replaced(self):
        with harness.Server("--spare-sessions=2") as srv:
            pids = spares(srv, 2)
            os.kill(pids[0], signal.SIGKILL)
            wait_for(lambda: "event=spare-lost pid=%d signal=9" % pids[0] in srv.log(),
                     "the lost spare's line")
            now = spares(srv, 2)
            self.assertNotIn(pids[0], now)
            self.assertIn(pids[1], now)
            for _ in range(3):
                quick_session(srv.port)
            self.assertNotIn("event=session-crashed", srv.log())

    def test_sigterm_to_a_spare_is_replaced(self):
        # a spare told to stop by someone else exits before any client
        with harness.Server("--spare-sessions=2") as srv:
            pids = spares(srv, 2)
            os.kill(pids[0], signal.SIGTERM)
            wait_for(lambda: not alive(pids[0]), "the spare to exit")
            now = spares(srv, 2)
            self.assertNotIn(pids[0], now)
            quick_session(srv.port)

    def test_sighup_retires_spares_and_new_sessions_use_the_new_certificate(self):
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            shutil.copy(PKI["SERVER"], cert)
            shutil.copy(PKI["SERVER_KEY"], key)
            with harness.Server("-c", cert, "-k", key, "--spare-sessions=3") as srv:
                old = spares(srv, 3)
                shutil.copy(PKI["SERVER2"], cert)
                shutil.copy(PKI["SERVER2_KEY"], key)
                srv.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: "event=tls-reloaded" in srv.log(), "the reload")
                for pid in old:
                    wait_for(lambda: not alive(pid), "old spare %d to retire" % pid)
                new = spares(srv, 3)
                self.assertFalse(set(new) & set(old))
                for _ in range(4):  # every spare, whichever takes the client
                    self.assertEqual(fingerprint(srv.port), der_sha256(PKI["SERVER2"]))

    def test_sighup_reopens_the_log_for_spares(self):
        with harness.Server("--spare-sessions=2") as srv:
            old = spares(srv, 2)
            rotated = srv.logfile + ".1"
            os.rename(srv.logfile, rotated)
            srv.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "event=log-reopened" in srv.log(), "the reopened log")
            for pid in old:
                wait_for(lambda: not alive(pid), "old spare %d to retire" % pid)
            quick_session(srv.port)
            wait_for(lambda: "event=close" in srv.log(), "the session's lines in the new log")
            with open(rotated) as f:
                self.assertNotIn("event=connect", f.read())

    def test_unix_and_tcp_listeners_share_the_spares(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.sock")
            with harness.Server("--listen=unix:" + path, "--spare-sessions=2") as srv:
                for _ in range(2):
                    before = spares(srv, 2)
                    n = len(session_pids(srv.log()))
                    u = socket.socket(socket.AF_UNIX)
                    u.settimeout(HANG)
                    u.connect(path)
                    c = harness.RawClient(0, sock=u, timeout=HANG)
                    c.greet()
                    pid = wait_for(lambda: session_pids(srv.log())[n:], "the session")[0]
                    self.assertIn(pid, before)
                    c.cmd("QUIT", 221)
                    c.close()
                    quick_session(srv.port)
                self.assertRegex(srv.log(), r"event=connect client=unix:\d+ uid=\d+ listener=unix:")
                self.assertEqual(srv.log().count("event=connect"), 4)

    def test_emfile_in_a_spare_waits_and_recovers(self):
        # one spare whose descriptors run out: it logs one line, the client
        # waits in the backlog, and it is served once descriptors free up
        import resource
        with harness.Server("--spare-sessions=1") as srv:
            pid = spares(srv, 1)[0]

            def waiting():  # its epoll set made: the spare waits, its descriptors are all open
                for fd in os.listdir("/proc/%d/fd" % pid):
                    try:
                        if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:[eventpoll]":
                            return True
                    except OSError:
                        pass
                return False
            wait_for(waiting, "the spare to wait for a client")
            soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
            used = {int(fd) for fd in os.listdir("/proc/%d/fd" % pid)}
            lowest = min(set(range(len(used) + 1)) - used)  # the number accept() would take
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest, hard))
            c = harness.RawClient(srv.port, timeout=HANG)
            wait_for(lambda: "event=spare-accept-failed pid=%d" % pid in srv.log(),
                     "the spare's accept failure")
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
            c.expect(220)
            c.cmd("QUIT", 221)
            c.close()
            self.assertEqual(srv.log().count("event=spare-accept-failed"), 1)


if __name__ == "__main__":
    harness.main()
