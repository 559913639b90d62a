"""The listening daemon: cap, concurrency, signals, zombies, daemon mode, systemd."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import children  # noqa: E402


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]


class Listener(unittest.TestCase):
    def test_twenty_concurrent_clients_nothing_lost(self):
        with harness.Server() as srv:
            def client(i):
                s = srv.smtp(timeout=60)
                for k in range(5):
                    s.sendmail("c%d@a.test" % i, ["r%d.%d@b.test" % (i, k)],
                               "Subject: %d.%d\r\n\r\nbody %d.%d\r\n" % (i, k, i, k))
                s.quit()
            self.assertEqual(harness.concurrently(20, client), [])
            d = srv.deliveries(100)
            self.assertEqual(len(d), 100)
            for x in d:
                i, k = x.recipients[0][1:].split("@")[0].split(".")
                self.assertEqual(x.sender, "c%s@a.test" % i)
                self.assertTrue(x.stdin.endswith(b"body %s.%s\n" % (i.encode(), k.encode())))

    def test_session_cap_waits_in_backlog(self):
        with harness.Server("--max-sessions=2") as srv:
            a, b = srv.raw(), srv.raw()
            a.expect(220)
            b.expect(220)
            c = srv.raw(timeout=1)
            with self.assertRaises(socket.timeout):
                c.reply()  # held in the backlog, no greeting yet
            c.sock.settimeout(10)
            a.cmd("QUIT", 221)
            c.expect(220)  # served once a slot freed
            c.cmd("QUIT", 221)
            b.cmd("QUIT", 221)
            srv.wait_log("event=session-cap active=2")

    def test_sigterm_idle_session_gets_421_and_exit_0(self):
        srv = harness.Server()
        c = srv.raw()
        c.expect(220)
        c.cmd("EHLO c", 250)
        srv.proc.send_signal(signal.SIGTERM)
        c.expect(421, "4.3.2")
        self.assertEqual(srv.proc.wait(timeout=10), 0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=2)
        srv.stop()

    def test_sigterm_during_data_finishes_the_message(self):
        srv = harness.Server()
        c = srv.raw()
        c.expect(220)
        c.cmd("EHLO c", 250)
        c.cmd("MAIL FROM:<a@b>", 250)
        c.cmd("RCPT TO:<c@d>", 250)
        c.cmd("DATA", 354)
        # after the 354 the session is inside the message: it gets the
        # SIGTERM there (the daemon logs "stopping" after signalling it)
        c.send("Subject: in flight\r\n\r\nfirst half\r\n")
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log("event=stopping active=1")
        c.send("second half\r\n.\r\n")
        c.expect(250)  # delivered: the 250 is true
        self.assertTrue(srv.deliveries(1)[0].stdin.endswith(b"first half\nsecond half\n"))
        c.send("NOOP\r\n")
        c.expect(421)
        self.assertEqual(srv.proc.wait(timeout=10), 0)
        srv.stop()

    def test_inherited_ignored_sigchld_still_reaps_and_frees_slots(self):
        # a parent that ignores SIGCHLD passes that on across exec; the kernel
        # would then reap the sessions itself and the cap would never free up
        def ignore_sigchld():
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        with harness.Server("--max-sessions=1", preexec_fn=ignore_sigchld) as srv:
            for _ in range(3):
                c = srv.raw()
                c.expect(220)
                c.cmd("QUIT", 221)
                c.close()
            srv.wait_log("event=session-exit", count=3)
            self.assertEqual(srv.log().count("active=0\n"), 3, srv.log())

    def test_crashed_session_is_logged_and_its_slot_freed(self):
        # a session that dies of a signal (SIGKILL from outside, as the
        # OOM killer would send): one line saying so, its slot free again,
        # nothing delivered from its transaction, the daemon serves on
        with harness.Server("--max-sessions=1") as srv:
            c = srv.raw()
            c.greet()
            c.data()
            c.send("Subject: cut\r\n\r\nhalf")
            pid, = children(srv.proc.pid, zombies=True)  # the one session
            os.kill(pid, signal.SIGKILL)
            self.assertTrue(c.closed())
            srv.wait_log("event=session-crashed pid=%d signal=%d\n" % (pid, signal.SIGKILL))
            d = srv.raw()
            d.greet()  # served: the slot was freed
            d.message("Subject: after\r\n\r\nwhole\r\n.\r\n")
            d.cmd("QUIT", 221)
            log = srv.wait_log(harness.sessions_over)
            self.assertEqual(log.count("event=session-crashed"), 1, log)
            self.assertEqual([x.stdin.endswith(b"whole\n") for x in srv.deliveries()], [True])

    def test_sighup_does_not_kill(self):
        with harness.Server() as srv:
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_log("event=sighup tls=off")  # read and acted upon
            c = srv.raw()
            c.expect(220)
            c.cmd("QUIT", 221)
            # the listener's own lines: the reload, and each child at debug
            log = srv.wait_log("event=session-exit")
            self.assertRegex(log, r"event=session-start pid=\d+ active=1\n")
            self.assertRegex(log, r"event=session-exit pid=\d+ status=0 active=0\n")

    def test_connection_flood_no_zombies_no_fd_leak(self):
        # fork per accept: no child but the sessions (with spares:
        # test_pool.py's flood test)
        with harness.Server("--spare-sessions=0") as srv:
            c = srv.raw()  # a first session: what start-up opens lazily is open now
            c.expect(220)
            c.cmd("QUIT", 221)
            srv.wait_log("event=session-exit ")
            fds_before = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
            rss_before = _rss_kb(srv.proc.pid)
            for _ in range(300):
                s = socket.create_connection(("127.0.0.1", srv.port))
                s.close()
            c = srv.raw()
            c.expect(220)
            c.cmd("QUIT", 221)
            srv.wait_log("event=session-exit ", count=302, timeout=120)
            self.assertEqual(children(srv.proc.pid, zombies=True), [])
            self.assertLessEqual(len(os.listdir("/proc/%d/fd" % srv.proc.pid)), fds_before)
            # every session was reaped: the daemon's table of sessions is empty
            log = srv.log()
            self.assertEqual(log.count("event=session-start "), 302)
            self.assertEqual(log.count("event=session-exit "), 302)
            self.assertNotIn("event=session-crashed", log)
            self.assertRegex(log, r"event=session-exit pid=\d+ status=0 active=0\n$")
            # and its memory does not grow with the sessions: under a page
            # per session, so generous that the allocator's and the kernel's
            # accounting never reach it, yet a per-session leak of a page does
            self.assertLess(_rss_kb(srv.proc.pid), rss_before + 300 * 4)

    def test_ipv6_loopback(self):
        srv = harness.Server("--interface=::1")
        try:
            c = harness.RawClient(srv.port, host="::1")
            c.expect(220)
            c.cmd("QUIT", 221)
        finally:
            srv.stop()

    def test_port_in_use(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = subprocess.run([harness.binary(), "--port=%d" % port, "--command=true"],
                           capture_output=True, text=True, timeout=10)
        s.close()
        self.assertEqual(r.returncode, 3)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("cannot listen on 127.0.0.1 port %d" % port, r.stderr)

    def test_daemon_mode_pidfile(self):
        with tempfile.TemporaryDirectory() as tmp:
            pidfile = os.path.join(tmp, "smtpipe.pid")
            r = subprocess.run([harness.binary(), "-d", "--port=0", "-P", pidfile,
                                "--command=" + harness.recorder_command(tmp)],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            port = int(r.stdout.strip())
            with open(pidfile) as f:
                pid = int(f.read())
            c = harness.RawClient(port)
            c.expect(220)
            c.cmd("QUIT", 221)
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 30
            while os.path.exists(pidfile) and time.time() < deadline:
                time.sleep(0.05)
            self.assertFalse(os.path.exists(pidfile))

    def test_systemd_socket_activation_and_notify(self):
        with tempfile.TemporaryDirectory() as tmp:
            ls = socket.socket()
            ls.bind(("127.0.0.1", 0))
            ls.listen(16)
            port = ls.getsockname()[1]
            ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            npath = os.path.join(tmp, "notify")
            ns.bind(npath)
            ns.settimeout(10)
            fd = ls.fileno()
            env = dict(os.environ, NOTIFY_SOCKET=npath)
            # exec through a shim that puts the socket at fd 3 and names itself in
            # LISTEN_PID, as systemd does (the pid survives the exec)
            shim = ("import os,sys; os.dup2(int(sys.argv[1]), 3); "
                    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1'); "
                    "os.execv(sys.argv[2], sys.argv[2:])")
            p = subprocess.Popen([sys.executable, "-c", shim, str(fd), harness.binary(), "--port=2",
                                  "--command=" + harness.recorder_command(tmp)],
                                 pass_fds=(fd,), env=env)
            try:
                self.assertEqual(ns.recv(100), b"READY=1")
                c = harness.RawClient(port)
                c.expect(220)
                c.cmd("QUIT", 221)
                p.send_signal(signal.SIGTERM)
                self.assertEqual(ns.recv(100), b"STOPPING=1")
                self.assertEqual(p.wait(timeout=10), 0)
            finally:
                if p.poll() is None:
                    p.kill()
                ls.close()

    def test_sigterm_foreground_pidfile_and_open_session(self):
        with tempfile.TemporaryDirectory() as tmp:
            pidfile = os.path.join(tmp, "fg.pid")
            srv = harness.Server("-P", pidfile)
            try:
                with open(pidfile) as f:
                    self.assertEqual(int(f.read()), srv.proc.pid)
                c = srv.raw()
                c.greet()
                c.cmd("MAIL FROM:<a@b>", 250)
                c.cmd("RCPT TO:<c@d>", 250)
                c.cmd("DATA", 354)
                c.send("Subject: late\r\n\r\n")
                srv.proc.send_signal(signal.SIGTERM)
                # no new sessions: the listening socket is closed at once
                deadline = time.time() + 30
                refused = False
                while not refused and time.time() < deadline:
                    try:
                        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
                        time.sleep(0.05)
                    except OSError:
                        refused = True
                self.assertTrue(refused, "still accepting after SIGTERM")
                self.assertTrue(os.path.exists(pidfile))  # still serving the open session
                # the message in flight still ends with a true 250, then 421
                c.send("after SIGTERM\r\n.\r\n")
                c.expect(250)
                self.assertTrue(srv.deliveries(1)[0].stdin.endswith(b"after SIGTERM\n"))
                c.expect(421)  # at once: the session was told to stop
                self.assertEqual(srv.proc.wait(timeout=10), 0)
                self.assertFalse(os.path.exists(pidfile))
            finally:
                srv.stop(check=False)

    def test_daemon_relative_paths(self):
        # a detached daemon works from "/": relative MAILBOX and -P FILE
        # still mean the directory it was started in
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([harness.mockmta_binary(), "-d", "-p", "0", "-P", "m.pid",
                                "box.mbox"], cwd=tmp, capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "")
            port = int(r.stdout)  # one line: the port, nothing else
            with open(os.path.join(tmp, "m.pid")) as f:
                pid = int(f.read())
            try:
                self.assertEqual(os.readlink("/proc/%d/cwd" % pid), "/")
                c = harness.RawClient(port)
                c.greet()
                c.message("Subject: rel\r\n\r\nrelative\r\n.\r\n")
                c.cmd("QUIT", 221)
                c.sock.close()
                with open(os.path.join(tmp, "box.mbox"), "rb") as f:
                    self.assertIn(b"\nrelative\n", f.read())
            finally:
                os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 30
            while os.path.exists(os.path.join(tmp, "m.pid")) and time.time() < deadline:
                time.sleep(0.05)
            self.assertFalse(os.path.exists(os.path.join(tmp, "m.pid")))

    def test_daemon_startup_error_reaches_the_caller(self):
        # the detached child's stderr is /dev/null: its error must still
        # be printed, once, by the parent
        for exe, code in ((harness.binary(), 3), (harness.mockmta_binary(), 1)):
            with self.subTest(exe=exe), tempfile.TemporaryDirectory() as tmp:
                args = [exe, "-d", "--port=0", "-P", "/nonexistent/dir/x.pid"]
                args += ["--command=true"] if exe == harness.binary() else [tmp + "/box"]
                r = subprocess.run(args, capture_output=True, text=True, timeout=10)
                self.assertEqual(r.returncode, code, r.stderr)
                lines = [l for l in r.stderr.splitlines() if "warning: running as root" not in l]
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertRegex(lines[0], r"^(smtpipe|mockmta): cannot write "
                                 r"/nonexistent/dir/x.pid: No such file or directory$")

    def test_notify_abstract_socket(self):
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = "smtpipe-test-%d" % os.getpid()
        ns.bind("\0" + name)
        ns.settimeout(10)
        srv = harness.Server(env={"NOTIFY_SOCKET": "@" + name})
        try:
            self.assertEqual(ns.recv(100), b"READY=1")
            c = srv.raw()
            c.expect(220)
            c.cmd("QUIT", 221)
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(ns.recv(100), b"STOPPING=1")
            self.assertEqual(srv.proc.wait(timeout=10), 0)
        finally:
            srv.stop(check=False)
            ns.close()

    def test_listen_fds_for_another_process_is_ignored(self):
        # LISTEN_PID names another process: fd 3 is not ours, bind as told
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(4)
        fd = ls.fileno()
        shim = ("import os,sys; os.dup2(int(sys.argv[1]), 3); "
                "os.environ.update(LISTEN_PID='1', LISTEN_FDS='1'); "
                "os.execv(sys.argv[2], sys.argv[2:])")
        with tempfile.TemporaryDirectory() as tmp:
            p = subprocess.Popen([sys.executable, "-c", shim, str(fd), harness.binary(),
                                  "--port=0", "--command=" + harness.recorder_command(tmp)],
                                 pass_fds=(fd,), stdout=subprocess.PIPE)
            try:
                port = int(p.stdout.readline())
                self.assertNotEqual(port, ls.getsockname()[1])
                c = harness.RawClient(port)
                c.expect(220)
                c.cmd("QUIT", 221)
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(timeout=10), 0)
            finally:
                if p.poll() is None:
                    p.kill()
                p.stdout.close()
                ls.close()

    def test_listen_fds_not_a_listening_socket(self):
        # Accept=yes hands over a connected socket: refuse it, one line, exit 3
        a, b = socket.socketpair()
        shim = ("import os,sys; os.dup2(int(sys.argv[1]), 3); "
                "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1'); "
                "os.execv(sys.argv[2], sys.argv[2:])")
        r = subprocess.run([sys.executable, "-c", shim, str(a.fileno()), harness.binary(),
                            "--port=0", "--command=true"], pass_fds=(a.fileno(),),
                           capture_output=True, text=True, timeout=10)
        a.close()
        b.close()
        self.assertEqual(r.returncode, 3)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "smtpipe: LISTEN_FDS: fd 3 is not a listening stream socket "
                                   "(Accept=yes needs --inetd)\n")

    def test_user_drop_under_inetd(self):
        if os.getuid() != 0:
            self.fail("this test needs root to drop to nobody")
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o1777)
            box = os.path.join(tmp, "box")
            r = subprocess.run([harness.binary(), "--inetd", "--user=nobody", box],
                               input=b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
                               b"DATA\r\nSubject: u\r\n\r\nas nobody\r\n.\r\nQUIT\r\n",
                               capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"250 2.0.0", r.stdout)
            self.assertEqual(os.stat(box).st_uid, 65534)  # appended by nobody
            r = subprocess.run([harness.binary(), "--inetd", "--user=no-such-user-x", box],
                               input="QUIT\r\n", capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 3)
            self.assertEqual(r.stdout, "")
            self.assertEqual(r.stderr, "smtpipe: --user: no such user 'no-such-user-x'\n")


if __name__ == "__main__":
    harness.main()
