"""--log=syslog, and mockmta's default: real datagrams on a real /dev/log.

No syslog daemon runs here, so each test gives the binary a /dev of its
own in a private mount namespace (unshare -m): /dev/null, zero, random
and urandom bound from the real /dev, and a log socket that the test
reads. glibc's syslog(3) then sends to it exactly as it would to rsyslog
or journald. Needs root, as the tmpfs tests do.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PRIVATE_DEV = """
for d in null zero random urandom; do : > "$1/$d" && mount --bind "/dev/$d" "$1/$d" || exit 97; done
mount --bind "$1" /dev || exit 97
shift
exec "$@"
"""


class Syslog(unittest.TestCase):
    def setUp(self):
        self.assertEqual(os.geteuid(), 0, "a private /dev needs root (unshare -m)")
        self.tmp = tempfile.mkdtemp(prefix="smtpipe-syslog-")
        self.dev = os.path.join(self.tmp, "dev")
        os.mkdir(self.dev)
        self.log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.log.bind(os.path.join(self.dev, "log"))
        os.chmod(os.path.join(self.dev, "log"), 0o666)

    def tearDown(self):
        self.log.close()
        shutil.rmtree(self.tmp, True)

    def run_with_private_dev(self, argv, **kw):
        return subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", PRIVATE_DEV,
                                 "sh", self.dev] + argv, **kw)

    def datagrams(self, until, timeout=10):
        """syslog lines received until one contains `until`"""
        got = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.log.settimeout(max(0.01, deadline - time.time()))
            try:
                got.append(self.log.recv(4096).decode(errors="replace"))
            except socket.timeout:
                break
            if until in got[-1]:
                return got
        self.fail("no syslog line with %r; got %r" % (until, got))

    def test_log_syslog_sends_mail_facility_lines(self):
        command = harness.recorder_command(os.path.join(self.tmp, "out"))
        p = self.run_with_private_dev([harness.binary(), "--interface=127.0.0.1", "--port=0", "--log=syslog",
                                       "--command=" + command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            port = int(p.stdout.readline())
            c = harness.RawClient(port).greet()
            c.message("Subject: s\r\n\r\nbody\r\n.\r\n", sender="a@b.test", rcpts=("c@d.test",))
            c.cmd("QUIT", 221)
            c.close()
            lines = self.datagrams("event=close")
        finally:
            p.terminate()
            rc = p.wait(timeout=10)
            err = p.stderr.read()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(rc, 0, err)
        text = "\n".join(lines)
        # <22> = facility mail (2) * 8 + info (6); the tag is the program with its pid
        self.assertRegex(text, r"<22>\w{3} [ \d]\d \d\d:\d\d:\d\d smtpipe\[\d+\]: event=start ")
        self.assertRegex(text, r"<22>.* smtpipe\[\d+\]: session=[0-9A-F]{12} event=connect client=127\.0\.0\.1")
        self.assertIn("event=delivered", text)
        self.assertNotIn("--log", text)
        # debug lines stay out at the default level
        self.assertFalse([l for l in lines if re.match(r"<23>", l)], lines)

    def test_mockmta_logs_to_syslog_by_default(self):
        box = os.path.join(self.tmp, "box.mbox")
        p = self.run_with_private_dev([harness.mockmta_binary(), box], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
                                 b"Subject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n", timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn(b"250 2.0.0", out)
        self.assertEqual(err, b"")  # nothing on stderr: the log went to syslog
        text = "\n".join(self.datagrams("event=close"))
        self.assertRegex(text, r"<22>.* mockmta\[\d+\]: session=[0-9A-F]{12} event=connect")
        self.assertIn("event=delivered", text)


if __name__ == "__main__":
    unittest.main()
