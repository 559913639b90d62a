"""--inetd: one session on stdin/stdout, and its exit status."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Inetd(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.cmd = "--command=" + harness.recorder_command(self.tmp)

    def deliveries(self):
        return sorted(f for f in os.listdir(self.tmp) if f.endswith(".msg"))

    def test_clean_session_exit_0(self):
        def talk(c):
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.cmd("MAIL FROM:<a@b>", 250)
            c.cmd("RCPT TO:<c@d>", 250)
            c.cmd("DATA", 354)
            c.send("Subject: inetd\r\n\r\nhi\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
        rc, err = harness.run_inetd([self.cmd], talk)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(self.deliveries()), 1)

    def test_abrupt_disconnect_exit_1(self):
        def talk(c):
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.cmd("MAIL FROM:<a@b>", 250)
        rc, err = harness.run_inetd([self.cmd], talk)
        self.assertEqual(rc, 1, err)
        self.assertEqual(self.deliveries(), [])

    def test_disconnect_mid_data_exit_1_nothing_delivered(self):
        def talk(c):
            c.greet()
            c.cmd("MAIL FROM:<a@b>", 250)
            c.cmd("RCPT TO:<c@d>", 250)
            c.cmd("DATA", 354)
            c.send("Subject: cut\r\n\r\nhalf a message\r\n")
        rc, err = harness.run_inetd([self.cmd], talk)
        self.assertEqual(rc, 1, err)
        self.assertEqual(self.deliveries(), [])

    def test_three_messages_then_quit(self):
        def talk(c):
            c.greet()
            for i in range(3):
                c.message("Subject: %d\r\n\r\nmessage %d\r\n.\r\n" % (i, i), rcpts=("r%d@x.test" % i,))
            c.cmd("QUIT", 221)
            self.assertTrue(c.closed())
        rc, err = harness.run_inetd([self.cmd, "--log=stderr"], talk)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(self.deliveries()), 3)
        self.assertEqual(err.count("event=delivered"), 3, err)
        for i, name in enumerate(self.deliveries()):
            with open(os.path.join(self.tmp, name), "rb") as f:
                self.assertTrue(f.read().endswith(b"message %d\n" % i))

    def test_failed_delivery_still_exit_0_after_quit(self):
        # a 451 is a reply, not a session failure
        cmd = "--command=" + harness.recorder_command(self.tmp, exit_code=75)

        def talk(c):
            c.greet()
            c.message("x\r\n.\r\n", want=451)
            c.cmd("QUIT", 221)
        rc, err = harness.run_inetd([cmd], talk)
        self.assertEqual(rc, 0, err)

    def test_timeout_exit_1(self):
        def talk(c):
            c.expect(220)
            # run_inetd's client waits 30 s at most: far less than the default 300
            c.expect(421, "4.4.2")
        rc, err = harness.run_inetd([self.cmd, "-t", "1"], talk)
        self.assertEqual(rc, 1, err)

    def test_stdin_pipe_session(self):
        import subprocess
        p = subprocess.run([harness.binary(), "--inetd", self.cmd],
                           input=b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        codes = [l[:3] for l in p.stdout.decode().split("\r\n") if l]
        self.assertEqual(codes, [b"220"[:3].decode(), "250", "250", "250", "354", "250", "221"])


if __name__ == "__main__":
    harness.main()
