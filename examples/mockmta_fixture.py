"""A test-suite fixture: a real SMTP peer whose deliveries land in an mbox.

Run it as a test (python3 mockmta_fixture.py) or copy MockMTA into your
suite. MOCKMTA names the binary (default: mockmta on PATH).
"""
import mailbox
import os
import shutil
import smtplib
import subprocess
import tempfile
import unittest


class MockMTA:
    """mockmta -f -p 0 MAILBOX: the port is read from its first line."""

    def __init__(self, binary=None):
        self.dir = tempfile.mkdtemp(prefix="mockmta-")
        self.mailbox = os.path.join(self.dir, "mail.mbox")
        binary = binary or os.environ.get("MOCKMTA") or shutil.which("mockmta")
        self.proc = subprocess.Popen([binary, "-f", "-p", "0", "--log=none", self.mailbox],
                                     stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())

    def messages(self):
        box = mailbox.mbox(self.mailbox, create=False)
        try:
            return list(box)
        finally:
            box.close()

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Example(unittest.TestCase):
    def setUp(self):
        self.mta = MockMTA()

    def tearDown(self):
        self.mta.close()

    def test_the_application_sends_mail(self):
        # here the code under test would send its mail to 127.0.0.1:self.mta.port
        with smtplib.SMTP("127.0.0.1", self.mta.port) as s:
            s.sendmail("app@example.org", ["user@example.org"], "Subject: Welcome\r\n\r\nHello!\r\n")
        msgs = self.mta.messages()
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0]["Subject"], "Welcome")
        self.assertEqual(msgs[0].get_payload().rstrip("\n"), "Hello!")


if __name__ == "__main__":
    unittest.main()
