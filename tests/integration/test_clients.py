"""Real SMTP clients against the real binary: swaks, msmtp, curl, smtp-source."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Clients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = harness.clients()

    def setUp(self):
        self.srv = harness.Server()

    def tearDown(self):
        self.srv.stop()

    def test_smtplib(self):
        s = self.srv.smtp()
        refused = s.sendmail("py@a.test", ["one@b.test", "two@b.test"], "Subject: py\r\n\r\nfrom python\r\n")
        s.quit()
        self.assertEqual(refused, {})
        d = self.srv.deliveries(1)[0]
        self.assertEqual(d.recipients, ["one@b.test", "two@b.test"])
        self.assertIn(b"from python\n", d.stdin)

    def test_swaks(self):
        r = subprocess.run([self.c["SWAKS"], "--server", "127.0.0.1", "--port", str(self.srv.port),
                            "--from", "swaks@a.test", "--to", "r1@b.test,r2@b.test",
                            "--header", "Subject: swaks", "--body", "hello from swaks"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        d = self.srv.deliveries(1)[0]
        self.assertEqual(d.sender, "swaks@a.test")
        self.assertEqual(d.recipients, ["r1@b.test", "r2@b.test"])
        self.assertIn(b"hello from swaks", d.stdin)

    def test_msmtp(self):
        with tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "msmtprc")
            with open(conf, "w") as f:
                f.write("account default\nhost 127.0.0.1\nport %d\nfrom msmtp@a.test\n"
                        "auth off\ntls off\n" % self.srv.port)
            os.chmod(conf, 0o600)
            msg = b"Subject: msmtp\nTo: r@b.test\n\nhello from msmtp\n.leading dot\n"
            r = subprocess.run([self.c["MSMTP"], "-C", conf, "r@b.test"], input=msg,
                               capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
        d = self.srv.deliveries(1)[0]
        self.assertEqual(d.sender, "msmtp@a.test")
        self.assertTrue(d.stdin.endswith(msg), d.stdin)

    def test_curl(self):
        with tempfile.NamedTemporaryFile("wb", suffix=".eml") as f:
            f.write(b"Subject: curl\r\n\r\nhello from curl\r\n")
            f.flush()
            r = subprocess.run([self.c["CURL"], "-sS", "smtp://127.0.0.1:%d" % self.srv.port,
                                "--mail-from", "curl@a.test", "--mail-rcpt", "r@b.test",
                                "--upload-file", f.name], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = self.srv.deliveries(1)[0]
        self.assertEqual((d.sender, d.recipients), ("curl@a.test", ["r@b.test"]))
        self.assertTrue(d.stdin.endswith(b"hello from curl\n"))

    def test_smtp_source_several_sessions(self):
        r = subprocess.run([self.c["SMTP_SOURCE"], "-m", "30", "-s", "4", "-l", "2048",
                            "-f", "src@a.test", "-t", "dst@b.test", "127.0.0.1:%d" % self.srv.port],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = self.srv.deliveries(30)
        self.assertEqual(len(d), 30)
        self.assert_intact(d, 2048)
        for x in d:
            self.assertEqual((x.sender, x.recipients), ("src@a.test", ["dst@b.test"]))

    def assert_intact(self, d, length):
        """smtp-source sends one body (numbered lines of X) under headers
        with a Message-Id of its own per message: every body identical and
        whole, every Message-Id once."""
        bodies = {x.stdin.split(b"\n\n", 1)[1] for x in d}
        self.assertEqual(len(bodies), 1, "bodies differ")
        body = bodies.pop()
        # -l counts the body as sent, with CRLF; smtp-source ends it with one more CRLF
        self.assertEqual(len(body.replace(b"\n", b"\r\n")), length + 2)
        self.assertNotIn(b"\r", body)
        self.assertRegex(body.decode(), r"^1X+\n2X+\n3X+\n")
        ids = [x.stdin.split(b"Message-Id: ", 1)[1].split(b"\n", 1)[0] for x in d]
        self.assertEqual(len(set(ids)), len(d), "a message was delivered twice")

    def test_smtp_source_many_per_session(self):
        r = subprocess.run([self.c["SMTP_SOURCE"], "-d", "-m", "20", "-s", "2", "-l", "1024",
                            "127.0.0.1:%d" % self.srv.port], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = self.srv.deliveries(20)
        self.assertEqual(len(d), 20)
        self.assert_intact(d, 1024)
        self.assertEqual(self.srv.log().count("event=connect"), 2)  # -d: many messages per session


if __name__ == "__main__":
    harness.main()
