"""Builds without GnuTLS and libsecret fail clearly; the tty prompt; --user."""
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class WithoutOptionalLibraries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smtpipe-variant-")
        b = os.path.join(cls.tmp, "b")
        r = subprocess.run(["cmake", "-S", harness.SOURCE, "-B", b, "-DSMTPIPE_WITH_GNUTLS=off",
                            "-DSMTPIPE_WITH_LIBSECRET=off", "-DSMTPIPE_BUILD_TESTS=OFF", "-DSMTPIPE_WERROR=ON"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "GnuTLS (STARTTLS): FALSE" in r.stdout or "GnuTLS (STARTTLS): 0" in r.stdout, r.stdout
        r = subprocess.run(["cmake", "--build", b, "-j2"], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:]
        cls.bin = os.path.join(b, "smtpipe")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_bin(self, args, name=None):
        exe = self.bin if not name else os.path.join(os.path.dirname(self.bin), name)
        return subprocess.run([exe] + args, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)

    def test_version_says_what_is_missing(self):
        r = self.run_bin(["--version"])
        self.assertIn("TLS (GnuTLS): no", r.stdout)
        self.assertIn("keyring (libsecret): no", r.stdout)

    def test_tls_options_fail_clearly(self):
        r = self.run_bin(["--port=0", "-c", "/x.pem", "-k", "/x.key", "--command=true"])
        self.assertEqual(r.returncode, 3)
        self.assertIn("no TLS support", r.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            r = self.run_bin(["-c", "/x.pem", "-k", "/x.key", os.path.join(tmp, "m")], name="mockmta")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no TLS support", r.stderr)

    def test_keyring_auth_fails_clearly_eval_works(self):
        r = self.run_bin(["--port=0", "--auth=alice", "--command=true"])
        self.assertEqual(r.returncode, 3)
        self.assertIn("needs keyring support, which this build lacks", r.stderr)
        p = subprocess.Popen([self.bin, "--port=0", "--auth=alice,echo pw", "--command=true"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            port = int(p.stdout.readline())
            import smtplib
            s = smtplib.SMTP("127.0.0.1", port)
            s.login("alice", "pw")
            s.quit()
        finally:
            p.terminate()
            p.wait()
            p.stdout.close()


class Prompt(unittest.TestCase):
    def test_password_prompt_on_a_terminal(self):
        # no Secret Service: the lookup fails, stdin is a tty, so smtpipe asks
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent/bus")
        env.pop("DISPLAY", None)
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(harness.real_binary(), [harness.real_binary(), "--port=0", "--auth=alice",
                                              "--command=cat >/dev/null; :"], env)
        out = b""
        deadline = time.time() + 20
        try:
            while b"Password for alice: " not in out and time.time() < deadline:
                if select.select([fd], [], [], 1)[0]:
                    out += os.read(fd, 1024)
            self.assertIn(b"Password for alice: ", out)
            os.write(fd, b"from the tty\n")
            while not any(l.strip().isdigit() for l in out.splitlines()[1:]) and time.time() < deadline:
                if select.select([fd], [], [], 1)[0]:
                    out += os.read(fd, 1024)
            self.assertNotIn(b"from the tty", out)  # no echo
            port = int([l for l in out.splitlines()[1:] if l.strip().isdigit()][0])
            import smtplib
            s = smtplib.SMTP("127.0.0.1", port)
            s.login("alice", "from the tty")
            s.quit()
        finally:
            os.kill(pid, 15)
            os.waitpid(pid, 0)
            os.close(fd)


class User(unittest.TestCase):
    def test_user_drops_privileges_after_binding(self):
        if os.getuid() != 0:
            self.fail("this test must run as root (CI and scripts/test.sh do)")
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o777)
            with harness.Server("--user=nobody:nogroup", "--port=0", mailbox=os.path.join(tmp, "m")) as srv:
                with open("/proc/%d/status" % srv.proc.pid) as f:
                    ids = {l.split(":")[0]: l.split()[1] for l in f if l.startswith(("Uid", "Gid"))}
                self.assertEqual((ids["Uid"], ids["Gid"]), ("65534", "65534"))
                s = srv.smtp()
                s.sendmail("a@b", ["c@d"], "Subject: u\r\n\r\nas nobody\r\n")
                s.quit()
                self.assertEqual(os.stat(os.path.join(tmp, "m")).st_uid, 65534)

    def test_unknown_user(self):
        r = subprocess.run([harness.binary(), "--port=0", "--user=no-such-user", "--command=true"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 3)
        self.assertIn("no such user", r.stderr)

    def test_root_warning_when_listening(self):
        with harness.Server() as srv:
            pass
        self.assertIn("warning: running as root", srv.stderr)


if __name__ == "__main__":
    harness.main()
