"""What a packager does: cmake --install (with a prefix, with DESTDIR) and
the CPack source tarball, which must configure, build and install on its
own. The installed programs are run, not only looked at."""
import filecmp
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BUILD = os.environ.get("SMTPIPE_BUILD_DIR", "")


def install(build, prefix, destdir=None):
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir:
        env["DESTDIR"] = destdir
    return subprocess.run(["cmake", "--install", build, "--prefix", prefix], env=env,
                          capture_output=True, text=True, timeout=120)


def version_of(exe):
    r = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout


class Install(unittest.TestCase):
    def setUp(self):
        if not os.path.isfile(os.path.join(BUILD, "CMakeCache.txt")):
            raise AssertionError("SMTPIPE_BUILD_DIR must name the build (run through ctest)")
        self.tmp = tempfile.TemporaryDirectory(prefix="smtpipe-install-")
        self.addCleanup(self.tmp.cleanup)

    def check_tree(self, root):
        """The layout under an installed prefix; returns the smtpipe path."""
        exe = os.path.join(root, "bin", "smtpipe")
        self.assertTrue(os.access(exe, os.X_OK))
        self.assertEqual(os.readlink(os.path.join(root, "bin", "mockmta")), "smtpipe")
        self.assertFalse(os.path.lexists(os.path.join(root, "bin", "msmtpd")))  # off by default
        for page in ("smtpipe.8", "mockmta.8"):
            path = os.path.join(root, "share", "man", "man8", page)
            self.assertTrue(filecmp.cmp(path, os.path.join(harness.SOURCE, "doc", page), False))
        doc = os.path.join(root, "share", "doc", "smtpipe")
        for f in ("README.md", "LICENSE"):
            self.assertTrue(os.path.isfile(os.path.join(doc, f)), f)
        src_ex = os.path.join(harness.SOURCE, "examples")
        names = sorted(os.path.relpath(os.path.join(d, f), src_ex)
                       for d, _, files in os.walk(src_ex) for f in files)
        inst_ex = os.path.join(doc, "examples")
        self.assertEqual(sorted(os.path.relpath(os.path.join(d, f), inst_ex)
                                for d, _, files in os.walk(inst_ex) for f in files), names)
        for n in names:  # every file, in subdirectories too (fail2ban/)
            self.assertTrue(filecmp.cmp(os.path.join(src_ex, n), os.path.join(inst_ex, n), False), n)
        self.assertTrue(os.access(os.path.join(doc, "examples", "smtpipe.init"), os.X_OK))
        # both names run: the link by its own name
        rc, out = version_of(os.path.join(root, "bin", "mockmta"))
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("smtpipe 0."), out)
        return exe

    def test_prefix(self):
        root = os.path.join(self.tmp.name, "opt", "smtpipe")
        r = install(BUILD, root)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_tree(root)
        # the installed mockmta serves a message from its installed place
        with tempfile.TemporaryDirectory() as d:
            mbox = os.path.join(d, "m.mbox")
            rc, err = harness.run_inetd(["--log=none", mbox], self.one_message, personality="mockmta")
        self.assertEqual((rc, err), (0, ""))

    def one_message(self, c):
        c.greet()
        c.message("Subject: installed\r\n\r\nhello\r\n.\r\n")
        c.cmd("QUIT", 221)

    def test_destdir(self):
        dest = os.path.join(self.tmp.name, "dest")
        r = install(BUILD, "/usr", dest)
        self.assertEqual(r.returncode, 0, r.stderr)
        exe = self.check_tree(os.path.join(dest, "usr"))
        # every file cmake says it installed (as the path on the target
        # system) is under the prefix and landed under DESTDIR
        with open(os.path.join(BUILD, "install_manifest.txt")) as f:
            manifest = f.read().split()
        self.assertGreater(len(manifest), 10)
        self.assertEqual([p for p in manifest if not p.startswith("/usr/")], [])
        self.assertEqual([p for p in manifest if not os.path.lexists(dest + p)], [])
        if "keyring (libsecret): yes" not in version_of(exe)[1]:
            return  # built without libsecret: there is no helper to find
        helper = os.path.join(dest, "usr", "libexec", "smtpipe", "smtpipe-keyring")
        self.assertTrue(os.access(helper, os.X_OK))
        # the installed daemon finds its installed helper, whatever the prefix:
        # the helper runs and reports that no keyring answers
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent/bus")
        r = subprocess.run([exe, "--port=0", "--auth=bob", "--command=true"], capture_output=True,
                           text=True, env=env, stdin=subprocess.DEVNULL, timeout=30)
        self.assertEqual(r.returncode, 3)
        self.assertIn("no password in the keyring", r.stderr)
        self.assertNotIn("smtpipe-keyring", r.stderr)  # found and run, not missing


class SourceTarball(unittest.TestCase):
    def test_tarball_builds_and_installs_alone(self):
        with tempfile.TemporaryDirectory(prefix="smtpipe-dist-") as tmp:
            r = subprocess.run(["cpack", "--config", os.path.join(BUILD, "CPackSourceConfig.cmake"),
                                "-B", tmp], capture_output=True, text=True, cwd=tmp, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            tarball = os.path.join(tmp, "smtpipe-%s.tar.gz" % version_of(harness.real_binary())[1]
                                   .split()[1])
            with tarfile.open(tarball) as t:
                names = sorted(n.split("/", 1)[1] for n in t.getnames() if "/" in n)
                # unpack under a path that looks like a build directory, with
                # regex characters in it: the ignore rules are anchored
                area = os.path.join(tmp, "build.area+1")
                t.extractall(area)
            top = os.path.basename(tarball)[:-len(".tar.gz")]
            for must in ("CMakeLists.txt", "LICENSE", "README.md", "doc/smtpipe.8",
                         "examples/smtpipe.service", "src/main.c", "tests/CMakeLists.txt"):
                self.assertIn(must, names)
            for n in names:
                self.assertFalse(n.startswith((".git/", "build")) or "__pycache__" in n, n)
            src = os.path.join(area, top)
            b = os.path.join(src, "build")  # the usual in-tree build directory
            r = subprocess.run(["cmake", "-S", src, "-B", b, "-DSMTPIPE_BUILD_TESTS=OFF",
                                "-DSMTPIPE_WERROR=ON", "-DSMTPIPE_INSTALL_MSMTPD_LINK=ON"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr)
            r = subprocess.run(["cmake", "--build", b, "-j2"], capture_output=True, text=True,
                               timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr)
            dest = os.path.join(tmp, "dest")
            r = install(b, "/usr", dest)
            self.assertEqual(r.returncode, 0, r.stderr)
            bindir = os.path.join(dest, "usr", "bin")
            self.assertEqual(os.readlink(os.path.join(bindir, "msmtpd")), "smtpipe")
            r = subprocess.run([os.path.join(bindir, "msmtpd"), "--bogus"], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, 3)
            self.assertTrue(r.stderr.startswith("msmtpd: "), r.stderr)  # its own name
            # the unpacked tree, built in place, packs the same files again
            r = subprocess.run(["cpack", "--config", os.path.join(b, "CPackSourceConfig.cmake"),
                                "-B", os.path.join(tmp, "again")], capture_output=True, text=True,
                               cwd=tmp, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with tarfile.open(os.path.join(tmp, "again", top + ".tar.gz")) as t:
                again = sorted(n.split("/", 1)[1] for n in t.getnames() if "/" in n)
            self.assertEqual(again, names)


if __name__ == "__main__":
    harness.main()
