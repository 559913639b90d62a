"""Files in hostile places: the mailbox, --log=FILE, --spool-dir, --hostname.

Built for real: a sticky world-writable directory like /tmp, links and
FIFOs planted there by the user nobody, the daemon running as root; a
spool directory the sessions' user cannot write; a host name set in a
UTS namespace. Issue 12 item 8, issue 19 items 10 and 11.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NOBODY = 65534
BIG = "Subject: big\r\n\r\n" + ("x" * 998 + "\r\n") * 100 + ".\r\n"  # > 64 KiB


def setUpModule():
    if os.geteuid() != 0:
        raise RuntimeError("test_sec_files needs root: the daemon runs as root, "
                           "the planted files are nobody's")


def as_nobody(*argv):
    """Run argv as the user nobody (another local user)."""
    subprocess.run(argv, user=NOBODY, group=NOBODY, extra_groups=[], check=True, timeout=30)


class Shared(unittest.TestCase):
    """A directory like /tmp (mode 1777) and a file of root's elsewhere."""

    def setUp(self):
        self.shared = tempfile.mkdtemp(prefix="smtpipe-shared-")
        os.chmod(self.shared, 0o1777)
        self.private = tempfile.mkdtemp(prefix="smtpipe-private-")  # 0700, root's
        self.victim = os.path.join(self.private, "victim")
        with open(self.victim, "w") as f:
            f.write("root's file\n")
        self.addCleanup(shutil.rmtree, self.shared, True)
        self.addCleanup(shutil.rmtree, self.private, True)

    def victim_untouched(self):
        with open(self.victim) as f:
            self.assertEqual(f.read(), "root's file\n")

    def start(self, argv, timeout=20):
        """Run a start-up that must fail; the bound only guards a hang."""
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)


class Mailbox(Shared):
    def mockmta(self, box):
        return self.start([harness.mockmta_binary(), "-f", "-p", "0", "--interface=127.0.0.1",
                           "--log=none", box])

    def test_startup_refuses_a_planted_symlink(self):
        box = os.path.join(self.shared, "test.mbox")
        as_nobody("ln", "-s", self.victim, box)
        r = self.mockmta(box)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot open mailbox %s for appending: it is a symbolic link" % box, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.victim_untouched()

    def test_startup_refuses_a_fifo_without_waiting(self):
        box = os.path.join(self.shared, "test.mbox")
        as_nobody("mkfifo", box)
        r = self.mockmta(box)  # a blocking open would wait for a reader forever
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot open mailbox %s for appending: not a regular file" % box, r.stderr)

    def test_startup_refuses_another_users_file(self):
        box = os.path.join(self.shared, "test.mbox")
        as_nobody("touch", box)
        r = self.mockmta(box)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("for appending: owned by another user", r.stderr)

    def test_planted_after_start_up_is_451_each_time(self):
        box = os.path.join(self.shared, "test.mbox")
        with harness.Server(personality="mockmta", mailbox=box) as srv:
            c = srv.raw()
            c.greet()
            c.message("Subject: 1\r\n\r\nfirst\r\n.\r\n", want=250)
            # the test suite reads the mailbox and removes it; another user
            # of the shared directory is quicker to put something there
            os.unlink(box)
            plants = [(("ln", "-s", self.victim, box), "it is a symbolic link"),
                      (("mkfifo", box), "not a regular file"),
                      (("touch", box), "owned by another user")]
            for argv, why in plants:
                with self.subTest(plant=argv[0]):
                    as_nobody(*argv)
                    lines = c.message("Subject: 2\r\n\r\nclient text\r\n.\r\n", want=451)
                    self.assertIn("4.3.0", lines[0])
                    self.assertRegex(srv.log(), r'event=mailbox-error mailbox=%s error="%s[^"]*" '
                                     % (box.replace(".", r"\."), why))
                    as_nobody("rm", "-f", box)
            c.cmd("QUIT", 221)
        self.victim_untouched()


class LogFile(Shared):
    def smtpipe(self, log):
        return self.start([harness.real_binary(), "--interface=127.0.0.1", "--port=0",
                           "--log=" + log, "--command=cat"])

    def test_refuses_a_planted_symlink(self):
        log = os.path.join(self.shared, "smtpipe.log")
        as_nobody("ln", "-s", self.victim, log)
        r = self.smtpipe(log)
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("cannot open log file %s: it is a symbolic link" % log, r.stderr)
        self.victim_untouched()

    def test_refuses_a_fifo_without_waiting(self):
        log = os.path.join(self.shared, "smtpipe.log")
        as_nobody("mkfifo", log)
        r = self.smtpipe(log)
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("cannot open log file %s: not a regular file" % log, r.stderr)

    def test_refuses_a_hard_link_to_another_file(self):
        log = os.path.join(self.shared, "smtpipe.log")
        os.link(self.victim, log)  # with protected_hardlinks off, any user can
        r = self.smtpipe(log)
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("cannot open log file %s: it has more than one hard link" % log, r.stderr)
        self.victim_untouched()

    def test_refuses_another_users_file(self):
        # red team, round 2: nobody pre-creates the log (mode 666) and
        # appends auth-failed lines that the fail2ban filter turns into a
        # ban of any address; it must be ours (or root's), as the mailbox
        log = os.path.join(self.shared, "smtpipe.log")
        as_nobody("sh", "-c", "umask 0; : > " + log)
        r = self.smtpipe(log)
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("cannot open log file %s: owned by another user" % log, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertEqual(os.path.getsize(log), 0)  # not a line of ours in it

    def test_reopen_refuses_another_users_file(self):
        # after logrotate renamed the log, SIGHUP opens the path again:
        # a file nobody put there meanwhile is refused, the old one kept
        log = os.path.join(self.shared, "smtpipe.log")
        p = subprocess.Popen([harness.real_binary(), "--interface=127.0.0.1", "--port=0",
                              "--log=" + log, "--command=cat"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        try:
            self.assertTrue(p.stdout.readline().strip())
            os.rename(log, log + ".1")
            as_nobody("sh", "-c", "umask 0; : > " + log)
            p.send_signal(1)
            deadline = time.time() + 30  # only guards a hang: wait for the line
            text = ""
            while "event=log-reopen" not in text and time.time() < deadline:
                time.sleep(0.05)
                with open(log + ".1") as f:
                    text = f.read()
        finally:
            p.terminate()
            p.wait(timeout=30)
            p.stdout.close()
        self.assertIn("event=log-reopen-failed", text)
        self.assertIn("owned by another user", text)
        self.assertEqual(os.path.getsize(log), 0)


class PidFile(Shared):
    """Red team, round 2: -P in a shared directory. A file planted by
    another user (world-writable: nobody later rewrites it and aims
    root's kill $(cat PIDFILE)) and a hard link to another file (then
    truncated and overwritten) were accepted."""

    def start_daemon(self, argv):
        """A start-up that must fail; one that succeeds is stopped (the
        pid comes from the daemon's own first stdout line or the file)."""
        r = self.start(argv)
        if r.returncode == 0:
            self.addCleanup(self.stop_started, r)
        return r

    def stop_started(self, r):
        for path in (self.pidfile,):
            try:
                with open(path) as f:
                    os.kill(int(f.read().split()[0]), 15)
            except (OSError, ValueError, IndexError):
                pass

    def test_refuses_another_users_file(self):
        self.pidfile = os.path.join(self.shared, "mockmta.pid")
        as_nobody("sh", "-c", "umask 0; echo 1 > " + self.pidfile)
        r = self.start_daemon([harness.mockmta_binary(), "-d", "-p", "0", "--interface=127.0.0.1",
                               "--log=none", "-P", self.pidfile,
                               os.path.join(self.private, "box")])
        self.assertEqual(r.returncode, 1, r)  # mockmta's start-up failure
        self.assertIn("cannot write %s: owned by another user" % self.pidfile, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        with open(self.pidfile) as f:
            self.assertEqual(f.read(), "1\n")  # never written

    def test_refuses_a_hard_link_to_another_file(self):
        self.pidfile = os.path.join(self.shared, "smtpipe.pid")
        os.link(self.victim, self.pidfile)  # with protected_hardlinks off, any user can
        r = self.start_daemon([harness.real_binary(), "-d", "--interface=127.0.0.1",
                               "--port=0", "--log=none", "--pidfile=" + self.pidfile,
                               "--command=cat"])
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("cannot write %s: it has more than one hard link" % self.pidfile, r.stderr)
        self.victim_untouched()

    def test_refuses_a_planted_symlink_and_fifo(self):
        self.pidfile = os.path.join(self.shared, "smtpipe.pid")
        for argv, why in ((("ln", "-s", self.victim, self.pidfile), "it is a symbolic link"),
                          (("mkfifo", self.pidfile), "not a regular file")):
            with self.subTest(plant=argv[0]):
                as_nobody(*argv)
                try:
                    r = self.start_daemon([harness.real_binary(), "--interface=127.0.0.1",
                                           "--port=0", "--log=none",
                                           "--pidfile=" + self.pidfile, "--command=cat"])
                finally:
                    as_nobody("rm", "-f", self.pidfile)
                self.assertEqual(r.returncode, 3, r)
                self.assertIn("cannot write %s: %s" % (self.pidfile, why), r.stderr)
        self.victim_untouched()

    def test_own_file_is_reused_and_removed(self):
        # a file left by an earlier run of ours (root's, one link) is fine
        self.pidfile = os.path.join(self.shared, "smtpipe.pid")
        with open(self.pidfile, "w") as f:
            f.write("99999\n")
        with harness.Server("--pidfile=" + self.pidfile) as srv:
            with open(self.pidfile) as f:
                self.assertEqual(int(f.read()), srv.proc.pid)
        self.assertFalse(os.path.exists(self.pidfile))


class SpoolDir(unittest.TestCase):
    def inetd(self, *args):
        """An --inetd start-up with no client (stdin at EOF)."""
        return subprocess.run([harness.real_binary(), "--inetd", "--log=none", "--command=cat"]
                              + list(args), capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)

    def test_missing_directory_is_a_start_up_error(self):
        r = self.inetd("--spool-dir=/nonexistent/spool")
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("cannot spool large messages in /nonexistent/spool (--spool-dir): "
                      "No such file or directory", r.stderr)
        self.assertNotIn("220", r.stdout)  # no session was offered

    def test_checked_as_the_sessions_user(self):
        d = tempfile.mkdtemp(prefix="smtpipe-spool-")  # 0700, root's: not nobody's
        self.addCleanup(shutil.rmtree, d, True)
        r = self.inetd("--spool-dir=" + d, "--user=nobody")
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("cannot spool large messages in %s (--spool-dir): Permission denied" % d,
                      r.stderr)
        # the daemon checks after binding and dropping to --user, too
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([harness.real_binary(), "--interface=127.0.0.1", "--port=0",
                                "--log=none", "--user=nobody", "--spool-dir=" + d,
                                "--command=cat"], capture_output=True, text=True, timeout=30,
                               cwd=tmp)
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("cannot spool large messages in %s (--spool-dir): Permission denied" % d,
                      r.stderr)

    def test_runtime_failure_names_the_directory_and_error(self):
        d = tempfile.mkdtemp(prefix="smtpipe-spool-")
        self.addCleanup(shutil.rmtree, d, True)
        with harness.Server("--spool-dir=" + d) as srv:
            os.rmdir(d)  # gone after start-up
            c = srv.raw()
            c.greet()
            c.message(BIG, want=452)
            c.message("Subject: small\r\n\r\nstill fine\r\n.\r\n", want=250)
            c.cmd("QUIT", 221)
        self.assertRegex(srv.log(), r'event=rejected reason=spool-error client=127\.0\.0\.1 '
                                    r'size=\d+ spool-dir="%s" error="No such file or directory"'
                                    % d.replace(".", r"\."))


PRIVATE_DEV = """
for d in null zero random urandom; do : > "$1/$d" && mount --bind "/dev/$d" "$1/$d" || exit 97; done
mount --bind "$1" /dev || exit 97
shift
exec "$@"
"""


class StderrIsTheClient(unittest.TestCase):
    """Red team, round 2: with --inetd --log=stderr under xinetd or GNU
    pies, descriptor 2 is the client's connection, and log lines (the
    client's own words among them) went into the SMTP stream. When fd 2
    is the same socket as fd 0 or 1, --log=stderr falls back to syslog;
    a different socket on fd 2 (systemd's StandardError=journal) keeps
    the log and the start-up errors. Real sockets on 0-2; syslog on a
    private /dev/log (unshare -m, as test_syslog.py)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpipe-stderr-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dev = os.path.join(self.tmp, "dev")
        os.mkdir(self.dev)
        self.syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.syslog.bind(os.path.join(self.dev, "log"))
        self.addCleanup(self.syslog.close)

    def converse(self, sock):
        """A whole session over sock: everything the client got."""
        c = harness.RawClient(0, sock=sock, timeout=30)
        c.greet()
        c.message("Subject: x\r\n\r\nhello\r\n.\r\n", 250, sender="s@e.org",
                  rcpts=("r@d.test",))
        c.cmd("QUIT", 221)
        return c

    def test_stderr_on_the_client_socket_falls_back_to_syslog(self):
        # read syslog while the session runs: a unix datagram socket holds
        # only a few lines, and syslog(3) waits when it is full
        got = []
        reader = threading.Thread(target=self.read_syslog, args=(got,), daemon=True)
        reader.start()
        a, b = socket.socketpair()
        p = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                              PRIVATE_DEV, "sh", self.dev, harness.real_binary(), "--inetd",
                              "--log=stderr", "--log-level=debug",
                              "--command=cat >/dev/null; :"], stdin=b, stdout=b, stderr=b)
        b.close()
        try:
            a.settimeout(30)
            stream = b""
            a.sendall(b"EHLO c.test\r\nMAIL FROM:<s@e.org>\r\nRCPT TO:<r@d.test>\r\nDATA\r\n")
            a.sendall(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n")
            stream += harness.read_to_eof(a)
        finally:
            a.close()
        self.assertEqual(p.wait(timeout=30), 0)
        text = stream.decode(errors="replace")
        lines = text.split("\r\n")
        self.assertEqual(lines[-1], "", text)
        for line in lines[:-1]:  # nothing but SMTP replies reached the client
            self.assertRegex(line, r"^[2-5]\d\d[ -]", text)
        self.assertNotIn("event=", text)
        self.assertIn("\r\n250 2.0.0", text)  # the message was delivered
        self.assertIn("221", text)
        # the log went to syslog instead, and says why once
        reader.join(timeout=30)
        self.assertTrue(any("event=close" in g for g in got), got)
        self.assertTrue(any("event=log-fallback" in g and "to=syslog" in g for g in got), got)

    def read_syslog(self, got):
        """Datagrams into got until event=close (or 30 s of silence)."""
        self.syslog.settimeout(30)
        try:
            while not any("event=close" in g for g in got):
                got.append(self.syslog.recv(4096).decode(errors="replace"))
        except OSError:
            pass

    def test_a_different_socket_on_fd_2_keeps_the_log(self):
        # systemd Accept=yes with StandardError=journal: 0 and 1 are the
        # connection, 2 is the journal's socket
        a, b = socket.socketpair()
        j, k = socket.socketpair()
        p = subprocess.Popen([harness.real_binary(), "--inetd", "--log=stderr",
                              "--log-level=debug", "--command=cat >/dev/null; :"],
                             stdin=b, stdout=b, stderr=k)
        b.close()
        k.close()
        try:
            self.converse(a)
        finally:
            a.close()
        self.assertEqual(p.wait(timeout=30), 0)
        j.settimeout(30)
        journal = b""
        while True:
            chunk = j.recv(65536)
            if not chunk:
                break
            journal += chunk
        j.close()
        self.assertIn(b"event=close", journal)
        self.assertNotIn(b"event=log-fallback", journal)

    def test_startup_error_reaches_a_journal_socket_on_fd_2(self):
        a, b = socket.socketpair()
        j, k = socket.socketpair()
        p = subprocess.Popen([harness.real_binary(), "--inetd", "--log=none", "--command=cat",
                              "--spool-dir=/nonexistent/spool"], stdin=b, stdout=b, stderr=k)
        b.close()
        k.close()
        a.settimeout(30)
        j.settimeout(30)
        client = a.recv(4096)
        a.close()
        journal = j.recv(4096)
        j.close()
        self.assertEqual(p.wait(timeout=30), 3)
        self.assertEqual(client, b"", "the client got start-up text")
        self.assertIn(b"cannot spool large messages in /nonexistent/spool", journal)


class Hostname(unittest.TestCase):
    def test_option_refuses_what_a_header_cannot_hold(self):
        for bad in ("a;b", 'a"b', "<a>", "a\\b", "a b", "a\tb", "a\x01b", "a(b)c",
                    "mx.example;by", "[1.2.3]", "caf\u00e9.example"):
            with self.subTest(name=bad):
                r = subprocess.run([harness.real_binary(), "--inetd", "--hostname=" + bad],
                                   capture_output=True, text=True, timeout=30,
                                   stdin=subprocess.DEVNULL)
                self.assertEqual(r.returncode, 3, r)
                self.assertIn("--hostname: not a domain name or address literal", r.stderr)
        for good in ("mx.example.org", "localhost", "[192.0.2.1]", "[IPv6:2001:db8::1]"):
            with self.subTest(name=good):
                def talk(c):
                    c.expect(220, good)
                    c.cmd("QUIT", 221)
                rc, err = harness.run_inetd(["--hostname=" + good, "--log=none",
                                             "--command=cat"], talk)
                self.assertEqual(rc, 0, err)

    def test_system_name_is_checked_the_same_way(self):
        """gethostname() in a UTS namespace whose name is not a domain."""
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "log")
            a, b = socket.socketpair()
            code = ("import os, socket, sys; socket.sethostname(sys.argv[1]); "
                    "os.execv(sys.argv[2], sys.argv[2:])")
            p = subprocess.Popen(["unshare", "--uts", sys.executable, "-c", code,
                                  'bad;name"<x>', harness.real_binary(), "--inetd",
                                  "--log=" + log, "--command=cat"],
                                 stdin=b, stdout=b, stderr=subprocess.PIPE)
            b.close()
            c = harness.RawClient(0, sock=a, timeout=30)
            lines = c.expect(220)
            c.cmd("QUIT", 221)
            a.close()
            self.assertEqual(p.wait(timeout=30), 0)
            p.stderr.close()
            self.assertEqual(lines[0], "localhost ESMTP smtpipe")
            with open(log) as f:
                text = f.read()
            self.assertIn('event=hostname-invalid using=localhost '
                          'name="bad;name\\x22<x>"', text)


if __name__ == "__main__":
    harness.main()
