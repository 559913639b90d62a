"""Command lines of both personalities: help, version, every bad value."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def run(args, exe=None):
    return subprocess.run([exe or harness.binary()] + args, capture_output=True, text=True,
                          timeout=10, stdin=subprocess.DEVNULL)


class Cli(unittest.TestCase):
    def test_help_lists_every_option(self):
        for exe, flag in ((harness.binary(), "--help"), (harness.mockmta_binary(), "-?")):
            r = run([flag], exe)
            self.assertEqual(r.returncode, 0)
            for opt in ("--inetd", "--interface", "--port", "--log", "--command", "--auth",
                        "--version", "--help", "-d", "-f", "-c", "-k", "-a", "-l", "-P", "-p", "-t",
                        "-v", "--max-sessions", "--max-recipients", "--max-message-size",
                        "--max-line-length", "--max-errors", "--delivery-timeout", "--tls-required",
                        "--tls-implicit", "--user", "--hostname", "--spool-dir", "--mailbox"):
                self.assertIn(opt, r.stdout)

    def test_version(self):
        for exe, flag in ((harness.binary(), "--version"), (harness.mockmta_binary(), "-v")):
            r = run([flag], exe)
            self.assertEqual(r.returncode, 0)
            self.assertRegex(r.stdout, r"^smtpipe \d+\.\d+")

    def test_usage_errors_exit_3_with_one_line(self):
        cases = [["--port=70000"], ["--port=abc"], ["--port="], ["--interface=localhost"],
                 ["--interface=1.2.3"], ["--bogus"], ["-x"], ["--log="], ["--command="],
                 ["--auth="], ["--auth=,echo x"], ["--auth=bob,"], ["-l", "loud"], ["-t", "0"],
                 ["--max-sessions=0"], ["--max-message-size=12Q"], ["-c", "/x"],
                 ["--tls-required"], ["--inetd", "-d"], ["a.mbox", "b.mbox"],
                 ["--command=x", "a.mbox"], ["--command='unterminated"], ["--port"]]
        for args in cases:
            with self.subTest(args=args):
                r = run(args)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
                self.assertTrue(r.stderr.startswith("smtpipe: "), r.stderr)
                self.assertEqual(r.stdout, "")

    def test_mockmta_needs_mailbox(self):
        r = run([], harness.mockmta_binary())
        self.assertEqual(r.returncode, 3)
        self.assertIn("MAILBOX is required", r.stderr)
        r = run(["-z", "box"], harness.mockmta_binary())
        self.assertEqual(r.returncode, 3)


if __name__ == "__main__":
    harness.main()
