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
                 ["--command=x", "a.mbox"], ["--command='unterminated"], ["--port"],
                 ["--inetd=yes"], ["--max"], ["-p", ""], ["--user="], ["-a", "ca.pem"],
                 ["--tls-implicit"], ["-k", "k.pem"], ["--max-line-length=2"],
                 ["--hostname=a b"], ["--port=0x19"]]
        for args in cases:
            with self.subTest(args=args):
                r = run(args)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
                self.assertTrue(r.stderr.startswith("smtpipe: "), r.stderr)
                self.assertEqual(r.stdout, "")

    def test_exact_messages(self):
        cases = [(["--port=70000"],
                  "smtpipe: --port: '70000' is not a port number (1-65535, or 0 for any free "
                  "port)\n"),
                 (["--interface=localhost"],
                  "smtpipe: --interface: 'localhost' is not an IPv4 or IPv6 address\n"),
                 (["--inetd=yes"], "smtpipe: --inetd takes no value\n"),
                 (["-p", ""], "smtpipe: -p: empty value\n"),
                 (["--bogus=1"], "smtpipe: unknown option --bogus (try --help)\n")]
        for args, want in cases:
            with self.subTest(args=args):
                r = run(args)
                self.assertEqual((r.returncode, r.stderr), (3, want))
        r = run(["-p", "x", "box"], harness.mockmta_binary())
        self.assertEqual((r.returncode, r.stderr),
                         (3, "mockmta: --port: 'x' is not a port number (1-65535, or 0 for any "
                          "free port)\n"))

    def test_short_help_and_version_for_both(self):
        for exe in (harness.binary(), harness.mockmta_binary()):
            with self.subTest(exe=exe):
                r = run(["-?"], exe)
                self.assertEqual((r.returncode, r.stderr), (0, ""))
                self.assertTrue(r.stdout.startswith("Usage: "), r.stdout)
                r = run(["-v"], exe)
                self.assertEqual((r.returncode, r.stderr), (0, ""))
                self.assertRegex(r.stdout, r"^smtpipe \d+\.\d+[^\n]*\nTLS \(GnuTLS\): (yes|no)\n"
                                 r"keyring \(libsecret\): (yes|no)\n$")

    def test_help_gives_defaults(self):
        r = run(["--help"])
        for text in ("default 127.0.0.1", "default 25", "default: none", "default info",
                     "default: msmtp -f %F --", "(default 16)", "(default 100)",
                     "(default 67108864)", "0: none; RFC 5321: 1000 (default 0)",
                     "(default 20)", "(default 300)",
                     "$TMPDIR or /tmp"):
            self.assertIn(text, r.stdout)

    def test_mockmta_needs_mailbox(self):
        r = run([], harness.mockmta_binary())
        self.assertEqual(r.returncode, 3)
        self.assertIn("MAILBOX is required", r.stderr)
        r = run(["-z", "box"], harness.mockmta_binary())
        self.assertEqual(r.returncode, 3)


if __name__ == "__main__":
    harness.main()
