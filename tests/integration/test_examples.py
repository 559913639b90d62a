"""The examples in examples/, tried for real where this machine allows."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EX = os.path.join(harness.SOURCE, "examples")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on port %d" % port)


class Examples(unittest.TestCase):
    def test_systemd_units_verify(self):
        with tempfile.TemporaryDirectory() as tmp:
            units = [f for f in os.listdir(EX) if f.endswith((".service", ".socket"))]
            self.assertEqual(len(units), 5)
            for u in units:
                with open(os.path.join(EX, u)) as f:
                    text = f.read().replace("/usr/bin/smtpipe", harness.binary())
                with open(os.path.join(tmp, u), "w") as f:
                    f.write(text)
            r = subprocess.run(["systemd-analyze", "verify", "--man=no"]
                               + [os.path.join(tmp, u) for u in units if "@" not in u]
                               + [os.path.join(tmp, "smtpipe@.service")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual((r.returncode, r.stderr.strip()), (0, ""))

    def test_start_stop_daemon_script(self):
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o777)
            port = free_port()
            env = dict(os.environ, SMTPIPE=harness.binary(), PIDFILE=os.path.join(tmp, "pid"),
                       SMTPIPE_USER="nobody",
                       SMTPIPE_ARGS="--port=%d --mailbox=%s/m.mbox" % (port, tmp))
            init = os.path.join(EX, "smtpipe.init")
            r = subprocess.run([init, "start"], env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            try:
                c = harness.RawClient(0, sock=wait_port(port))
                c.expect(220)
                c.cmd("QUIT", 221)
                with open(env["PIDFILE"]) as f:
                    pid = int(f.read())
                with open("/proc/%d/status" % pid) as f:
                    uid = [l.split()[1] for l in f if l.startswith("Uid:")][0]
                self.assertEqual(int(uid), 65534)  # --chuid nobody took effect
            finally:
                r = subprocess.run([init, "stop"], env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertFalse(os.path.exists(env["PIDFILE"]))

    def test_xinetd(self):
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o777)
            port = free_port()
            with open(os.path.join(EX, "xinetd.smtpipe")) as f:
                conf = f.read()
            conf = (conf.replace("port        = 25", "port        = %d" % port)
                    .replace("/usr/bin/smtpipe", harness.binary())
                    .replace("user        = mail", "user        = nobody")
                    .replace("--command=/usr/bin/msmtp\\ -f\\ %F\\ --", "--mailbox=%s/m.mbox" % tmp))
            path = os.path.join(tmp, "xinetd.conf")
            with open(path, "w") as f:
                f.write("defaults\n{\n}\n" + conf)
            p = subprocess.Popen(["xinetd", "-dontfork", "-f", path, "-pidfile", os.path.join(tmp, "x.pid")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                c = harness.RawClient(0, sock=wait_port(port))
                c.expect(220)
                c.cmd("HELO c", 250)
                c.cmd("MAIL FROM:<a@b>", 250)
                c.cmd("RCPT TO:<c@d>", 250)
                c.cmd("DATA", 354)
                c.send("Subject: xinetd\r\n\r\nvia xinetd\r\n.\r\n")
                c.expect(250)
                c.cmd("QUIT", 221)
                with open(os.path.join(tmp, "m.mbox")) as f:
                    self.assertIn("via xinetd", f.read())
            finally:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=10)

    def test_pies_config_is_the_manuals(self):
        # GNU pies is not packaged in Debian 12, so it cannot run here; the
        # inetd mode it uses is exercised by the xinetd test above and by
        # test_mockmta's socketpair sessions. Check the component's command.
        with open(os.path.join(EX, "pies.conf")) as f:
            text = f.read()
        self.assertIn("mode inetd;", text)
        cmd = text.split('command "', 1)[1].split('"', 1)[0].split()
        self.assertEqual(os.path.basename(cmd[0]), "mockmta")
        with tempfile.TemporaryDirectory() as tmp:
            def talk(c):
                c.expect(220)
                c.cmd("QUIT", 221)
            rc, err = harness.run_inetd(["--log=none", os.path.join(tmp, "dropmail")] + cmd[2:], talk,
                                        personality="mockmta")
            self.assertEqual(rc, 0, err)

    def test_test_suite_fixture(self):
        env = dict(os.environ, MOCKMTA=harness.mockmta_binary())
        r = subprocess.run([sys.executable, os.path.join(EX, "mockmta_fixture.py")], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK", r.stderr)

    def test_containerfile_builds_what_exists(self):
        # No container engine runs here: check that what it copies and runs exists.
        with open(os.path.join(EX, "Containerfile")) as f:
            text = f.read()
        self.assertIn("cmake --install /build --prefix /usr/local", text)
        self.assertIn("USER nobody", text)
        cmd = [a.strip(' "') for a in text.split("CMD [", 1)[1].split("]", 1)[0].replace("\\\n", "").split(",")]
        r = subprocess.run([harness.binary(), "--port=0"] + [a for a in cmd[1:] if not a.startswith("--port")]
                           + ["--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)


class Install(unittest.TestCase):
    def test_install_with_destdir(self):
        build = os.environ["SMTPIPE_BUILD_DIR"]
        with tempfile.TemporaryDirectory() as dest:
            r = subprocess.run(["cmake", "--install", build, "--prefix", "/usr"],
                               env=dict(os.environ, DESTDIR=dest), capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            for f in ("usr/bin/smtpipe", "usr/share/man/man8/smtpipe.8", "usr/share/man/man8/mockmta.8",
                      "usr/share/doc/smtpipe/README.md", "usr/share/doc/smtpipe/examples/smtpipe.service"):
                self.assertTrue(os.path.exists(os.path.join(dest, f)), f)
            self.assertEqual(os.readlink(os.path.join(dest, "usr/bin/mockmta")), "smtpipe")
            r = subprocess.run([os.path.join(dest, "usr/bin/mockmta"), "-v"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0)
            self.assertFalse(os.path.exists(os.path.join(dest, "usr/bin/msmtpd")))
            helper = os.path.join(dest, "usr/libexec/smtpipe/smtpipe-keyring")
            self.assertTrue(os.access(helper, os.X_OK))
            # the installed daemon finds its installed helper, whatever the prefix
            env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent/bus")
            r = subprocess.run([os.path.join(dest, "usr/bin/smtpipe"), "--port=0", "--auth=bob",
                                "--command=true"], capture_output=True, text=True, env=env,
                               stdin=subprocess.DEVNULL, timeout=30)
            self.assertEqual(r.returncode, 3)
            self.assertIn("no password in the keyring", r.stderr)
            self.assertNotIn("smtpipe-keyring", r.stderr)  # found and run, not missing

    def test_source_tarball_builds_alone(self):
        build = os.environ["SMTPIPE_BUILD_DIR"]
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run(["cpack", "--config", os.path.join(build, "CPackSourceConfig.cmake"),
                                "-B", tmp], capture_output=True, text=True, cwd=tmp, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            tarball = [f for f in os.listdir(tmp) if f.endswith(".tar.gz")][0]
            subprocess.run(["tar", "xzf", tarball], cwd=tmp, check=True)
            src = os.path.join(tmp, tarball[:-7])
            self.assertFalse(os.path.exists(os.path.join(src, ".git")))
            r = subprocess.run(["cmake", "-S", src, "-B", os.path.join(tmp, "b"), "-DSMTPIPE_BUILD_TESTS=OFF",
                                "-DSMTPIPE_WERROR=ON"], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = subprocess.run(["cmake", "--build", os.path.join(tmp, "b"), "-j2"], capture_output=True,
                               text=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:])
            self.assertTrue(os.access(os.path.join(tmp, "b", "smtpipe"), os.X_OK))


if __name__ == "__main__":
    harness.main()
