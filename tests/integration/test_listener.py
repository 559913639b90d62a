"""The listening daemon: cap, concurrency, signals, zombies, daemon mode, systemd."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append((int(p), fields[0]))
            except (OSError, IndexError):
                pass
    return out


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]


class Listener(unittest.TestCase):
    def test_twenty_concurrent_clients_nothing_lost(self):
        with harness.Server() as srv:
            errors = []

            def client(i):
                try:
                    s = srv.smtp(timeout=60)
                    for k in range(5):
                        s.sendmail("c%d@a.test" % i, ["r%d.%d@b.test" % (i, k)],
                                   "Subject: %d.%d\r\n\r\nbody %d.%d\r\n" % (i, k, i, k))
                    s.quit()
                except Exception as e:  # noqa: BLE001
                    errors.append(e)
            ts = [threading.Thread(target=client, args=(i,)) for i in range(20)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            self.assertEqual(errors, [])
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
            self.assertIn("event=session-cap", srv.log())

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
        c.send("Subject: in flight\r\n\r\nfirst half\r\n")
        time.sleep(0.2)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        c.send("second half\r\n.\r\n")
        c.expect(250)  # delivered: the 250 is true
        self.assertTrue(srv.deliveries(1)[0].stdin.endswith(b"first half\nsecond half\n"))
        c.send("NOOP\r\n")
        c.expect(421)
        self.assertEqual(srv.proc.wait(timeout=10), 0)
        srv.stop()

    def test_sighup_does_not_kill(self):
        with harness.Server() as srv:
            srv.proc.send_signal(signal.SIGHUP)
            time.sleep(0.2)
            c = srv.raw()
            c.expect(220)
            c.cmd("QUIT", 221)

    def test_connection_flood_no_zombies_no_fd_leak(self):
        with harness.Server() as srv:
            c = srv.raw()  # a first session: what start-up opens lazily is open now
            c.expect(220)
            c.cmd("QUIT", 221)
            time.sleep(0.2)
            fds_before = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
            rss_before = _rss_kb(srv.proc.pid)
            for _ in range(300):
                s = socket.create_connection(("127.0.0.1", srv.port))
                s.close()
            c = srv.raw()
            c.expect(220)
            c.cmd("QUIT", 221)
            deadline = time.time() + 10
            while time.time() < deadline and children(srv.proc.pid):
                time.sleep(0.1)
            self.assertEqual(children(srv.proc.pid), [])
            self.assertLessEqual(len(os.listdir("/proc/%d/fd" % srv.proc.pid)), fds_before)
            self.assertLess(_rss_kb(srv.proc.pid), rss_before + 512)  # memory flat

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
            deadline = time.time() + 10
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


if __name__ == "__main__":
    harness.main()
