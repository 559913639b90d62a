"""Several users (issue 16): --auth-file with yescrypt and SHA-512 hashes
(made by libxcrypt through ctypes and by `openssl passwd -6`), re-read on
SIGHUP; --auth with --auth-file; --auth-accept-any, refused on a listener
that is not loopback; the user passed to the command as SMTPIPE_AUTH_USER.
Every check goes through the daemon-wide brake (one a second)."""
import ctypes
import os
import shlex
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import wait_for  # noqa: E402

# a delivery command that records SMTPIPE_AUTH_USER (absent: "-") and reads the message
RECORD = """import os, sys
sys.stdin.buffer.read()
n = len(os.listdir(sys.argv[1]))
with open(os.path.join(sys.argv[1], "%03d" % n), "w") as f:
    f.write(os.environ.get("SMTPIPE_AUTH_USER", "-"))
"""


def yescrypt(password):
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt.restype = ctypes.c_char_p
    setting = lib.crypt_gensalt(b"$y$", 0, None, 0)
    h = lib.crypt(password.encode(), setting)
    assert h and h.startswith(b"$y$"), h
    return h.decode()


def sha512(password):
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, text=True,
                       capture_output=True, check=True)
    h = r.stdout.strip()
    assert h.startswith("$6$"), h
    return h


class Users(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpipe-users-")
        self.out = os.path.join(self.dir, "out")
        os.mkdir(self.out)
        self.script = os.path.join(self.dir, "record.py")
        with open(self.script, "w") as f:
            f.write(RECORD)
        self.file = os.path.join(self.dir, "users")

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.dir])

    def write_users(self, text, mode=0o600, path=None):
        path = path or self.file
        tmp = path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.rename(tmp, path)

    def server(self, *args):
        cmd = "%s %s %s" % (shlex.quote(sys.executable), shlex.quote(self.script),
                            shlex.quote(self.out))
        return harness.Server(*args, command=cmd)

    def recorded(self):
        names = sorted(os.listdir(self.out))
        res = []
        for n in names:
            with open(os.path.join(self.out, n)) as f:
                res.append(f.read())
        return res

    def login(self, srv, user, password, mech="PLAIN", send=True):
        """235 and a delivered message, or the AUTH reply code"""
        s = srv.smtp()
        try:
            s.ehlo()
            s.user, s.password = user, password
            try:
                s.auth(mech, s.auth_plain if mech == "PLAIN" else s.auth_login)
            except smtplib.SMTPAuthenticationError as e:
                return e.smtp_code
            if send:
                s.sendmail("a@a.test", ["b@b.test"], "Subject: %s\r\n\r\nx\r\n" % user)
            return 235
        finally:
            s.close()

    def test_yescrypt_and_sha512(self):
        self.write_users("# test users\nalice:%s\n\nbob:%s\r\n" % (yescrypt("alice pw"),
                                                                   sha512("b0b's pw")))
        with self.server("--auth-file=" + self.file) as srv:
            self.assertEqual(self.login(srv, "alice", "alice pw"), 235)
            self.assertEqual(self.login(srv, "bob", "b0b's pw", mech="LOGIN"), 235)
            self.assertEqual(self.login(srv, "bob", "alice pw"), 535)  # another's password
            self.assertEqual(self.login(srv, "carol", "alice pw"), 535)  # no such user
            self.assertEqual(self.login(srv, "alice", "alice p"), 535)
            wait_for(lambda: len(self.recorded()) == 2, "two deliveries")
            self.assertEqual(self.recorded(), ["alice", "bob"])
            log = srv.log()
            self.assertRegex(log, r'event=auth-ok client=127\.0\.0\.1 mech=PLAIN user="alice"')
            self.assertRegex(log, r'event=auth-ok client=127\.0\.0\.1 mech=LOGIN user="bob"')
            self.assertRegex(log, r'event=auth-failed client=127\.0\.0\.1 mech=PLAIN user="carol"')
            self.assertNotIn("alice\\x20pw", log)
            self.assertNotIn("$y$", log)
            # no AUTH, no SMTPIPE_AUTH_USER (AUTH is required: 530 for MAIL)
            s = srv.smtp()
            s.ehlo()
            self.assertEqual(s.mail("a@a.test")[0], 530)
            s.close()

    def test_sighup_reads_the_file_again(self):
        self.write_users("alice:%s\n" % yescrypt("one"))
        with self.server("--auth-file=" + self.file) as srv:
            self.assertEqual(self.login(srv, "alice", "one", send=False), 235)
            self.write_users("carol:%s\n" % sha512("two"))
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_log("event=auth-file-reloaded users=1")
            self.assertEqual(self.login(srv, "carol", "two", send=False), 235)
            self.assertEqual(self.login(srv, "alice", "one", send=False), 535)
            # a file that does not load keeps the users read before
            self.write_users("carol:$1$abc$legacy\n")
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_log("event=auth-file-reload-failed")
            self.assertIn("kept-users=1", srv.log())
            self.assertEqual(self.login(srv, "carol", "two", send=False), 235)

    def test_auth_and_auth_file_together(self):
        self.write_users("alice:%s\n" % sha512("from file"))
        with self.server("--auth-file=" + self.file, "--auth=dave,echo dave-pw") as srv:
            self.assertEqual(self.login(srv, "dave", "dave-pw"), 235)
            self.assertEqual(self.login(srv, "alice", "from file"), 235)
            self.assertEqual(self.login(srv, "alice", "dave-pw"), 535)
            self.assertEqual(self.login(srv, "dave", "from file"), 535)
            wait_for(lambda: len(self.recorded()) == 2, "two deliveries")
            self.assertEqual(self.recorded(), ["dave", "alice"])

    def start(self, *args):
        return subprocess.run([harness.binary(), "--interface=127.0.0.1", "--port=0",
                               "--log=none", "--command=cat"] + list(args),
                              capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)

    def test_bad_files_refused(self):
        good = sha512("pw")
        link = os.path.join(self.dir, "link")
        os.symlink(self.file, link)
        cases = [
            ("alice:$1$abcdefgh$0123456789abcdefghijkl\n", 0o600, self.file, "line 1: a legacy hash"),
            ("alice:abcdefghijklm\n", 0o600, self.file, "line 1: a legacy hash"),
            ("# c\nalice:%s\nalice:%s\n" % (good, good), 0o600, self.file, "line 3: the user is given twice"),
            ("alice\n", 0o600, self.file, "line 1: not user:hash"),
            (":%s\n" % good, 0o600, self.file, "line 1: the user name is empty"),
            ("alice:*\n", 0o600, self.file, "line 1: not a crypt(3) hash"),
            ("# nobody\n", 0o600, self.file, "no user:hash line"),
            ("alice:%s\n" % good, 0o602, self.file, "every user may write to it"),
            ("alice:%s\n" % good, 0o600, link, "symbolic link"),
        ]
        for text, mode, path, want in cases:
            with self.subTest(want=want):
                self.write_users(text, mode)
                r = self.start("--auth-file=" + path)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn(want, r.stderr)
                self.assertNotIn(good, r.stderr)
        r = self.start("--auth-file=" + self.dir)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("not a regular file", r.stderr)

    def test_world_readable_is_a_warning(self):
        self.write_users("alice:%s\n" % sha512("pw"), mode=0o644)
        with self.server("--auth-file=" + self.file) as srv:
            self.assertEqual(self.login(srv, "alice", "pw", send=False), 235)
        self.assertIn("warning: --auth-file %s is readable by every user" % self.file, srv.stderr)
        self.assertIn("event=auth-file-warning", srv.log())


class AcceptAny(unittest.TestCase):
    def test_any_user_any_password_on_loopback(self):
        d = tempfile.mkdtemp(prefix="smtpipe-users-")
        self.addCleanup(subprocess.run, ["rm", "-rf", d])
        script = os.path.join(d, "record.py")
        with open(script, "w") as f:
            f.write(RECORD)
        out = os.path.join(d, "out")
        os.mkdir(out)
        cmd = "%s %s %s" % (shlex.quote(sys.executable), shlex.quote(script), shlex.quote(out))
        with harness.Server("--auth-accept-any", command=cmd) as srv:
            for user, pw, mech in (("tester", "anything", "PLAIN"), ("x@y.test", "z", "LOGIN")):
                s = srv.smtp()
                s.ehlo()
                self.assertIn("auth", s.esmtp_features)
                s.user, s.password = user, pw
                self.assertEqual(s.auth(mech, s.auth_plain if mech == "PLAIN"
                                        else s.auth_login)[0], 235)
                s.sendmail("a@a.test", ["b@b.test"], "Subject: any\r\n\r\nx\r\n")
                s.quit()
            wait_for(lambda: len(os.listdir(out)) == 2, "two deliveries")
            got = []
            for n in sorted(os.listdir(out)):
                with open(os.path.join(out, n)) as f:
                    got.append(f.read())
            self.assertEqual(got, ["tester", "x@y.test"])
            log = srv.log()
            self.assertIn("event=auth-accept-any", log)
            self.assertRegex(log, r'event=auth-ok client=127\.0\.0\.1 mech=PLAIN user="tester"')
            # AUTH is still required: MAIL without it is refused
            s = srv.smtp()
            s.ehlo()
            self.assertEqual(s.mail("a@a.test")[0], 530)
            s.close()

    def test_refused_unless_loopback(self):
        for args, want in (
                (["--interface=0.0.0.0"], "--interface=0.0.0.0 is not"),
                (["--interface=::"], "--interface=:: is not"),
                (["--interface=127.0.0.1", "--auth=a,echo b"], "goes without --auth"),
        ):
            with self.subTest(args=args):
                r = subprocess.run([harness.binary(), "--auth-accept-any", "--port=0",
                                    "--log=none", "--command=cat"] + args,
                                   capture_output=True, text=True, timeout=30,
                                   stdin=subprocess.DEVNULL)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn(want, r.stderr)
                self.assertNotIn("\n", r.stderr.rstrip("\n"))  # one line

    def systemd(self, sock, *args):
        """smtpipe started as systemd would start it, with sock as fd 3"""
        def as_fd3():
            os.dup2(sock.fileno(), 3)
        argv = ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", harness.binary(),
                "--auth-accept-any", "--port=0", "--log=none", "--command=cat"] + list(args)
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, preexec_fn=as_fd3, pass_fds=(3,))

    def test_systemd_sockets_are_checked(self):
        # a socket bound to the wildcard address, never listening (so it
        # never receives anything): refused before it is used
        wild = socket.socket()
        wild.bind(("0.0.0.0", 0))
        p = self.systemd(wild)
        out, err = p.communicate(timeout=30)
        wild.close()
        self.assertEqual(p.returncode, 3, err)
        self.assertIn(b"systemd's socket 3 is not", err)
        # a loopback one is served
        lo = socket.socket()
        lo.bind(("127.0.0.1", 0))
        lo.listen(8)
        p = self.systemd(lo)
        lo.close()
        try:
            port = int(p.stdout.readline())
            c = harness.RawClient(port).greet()
            c.cmd("AUTH PLAIN AHUAcA==", 235)  # \0u\0p
            c.cmd("QUIT", 221)
            c.close()
        finally:
            p.terminate()
            p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0)

    def test_auth_user_is_client_data_for_shell_templates(self):
        # under --auth-accept-any the user name is the client's choice: a
        # template gets the rules of $SMTPIPE_SENDER for it (invariant 4)
        for tmpl, ok in (("cat >/dev/null; echo $SMTPIPE_AUTH_USER", False),
                         ("cat >/dev/null; echo ${SMTPIPE_AUTH_USER}", False),
                         ("cat >/dev/null; echo \"$SMTPIPE_AUTH_USER\"", True),
                         # every $SMTPIPE_* is client data (cmd_shell.c)
                         ("cat >/dev/null; echo $SMTPIPE_AUTH_USERS", False)):
            with self.subTest(tmpl=tmpl):
                p = subprocess.Popen([harness.binary(), "--auth-accept-any", "--port=0",
                                      "--log=none", "--command=" + tmpl],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
                line = p.stdout.readline()
                if line.strip():
                    p.terminate()
                out, err = p.communicate(timeout=30)
                if ok:
                    self.assertTrue(line.strip().isdigit(), err)
                else:
                    self.assertEqual(p.returncode, 3, err)
                    self.assertIn(b"unquoted", err)

    def test_inetd_on_a_unix_socket_is_local(self):
        def talk(c):
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.cmd("AUTH PLAIN AHUAcA==", 235)  # \0u\0p
            c.cmd("QUIT", 221)
        rc, err = harness.run_inetd(["--auth-accept-any", "--log=none", "--command=cat"], talk)
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    harness.main()
