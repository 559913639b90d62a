"""--auth=USER against a real Secret Service in a private D-Bus session."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KEYRING = os.path.join(harness.SOURCE, "tests", "tools", "keyring-session.sh")
PW = "key ring \"pass\" $x"  # smtplib only sends ASCII

CLIENT = r'''
import os, smtplib, subprocess, sys
p = subprocess.Popen([os.environ["SMTPIPE"], "--port=0", "--auth=alice",
                      "--command=cat >/dev/null; :"],
                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
try:
    port = int(p.stdout.readline())
    s = smtplib.SMTP("127.0.0.1", port)
    s.login("alice", sys.argv[1])
    s.sendmail("a@a.test", ["b@b.test"], "x\r\n")
    s.quit()
    try:
        s = smtplib.SMTP("127.0.0.1", port)
        s.login("alice", "wrong")
        sys.exit("wrong password accepted")
    except smtplib.SMTPAuthenticationError:
        pass
finally:
    p.terminate()
sys.exit(p.wait())
'''


class Keyring(unittest.TestCase):
    def test_password_from_keyring(self):
        r = subprocess.run([KEYRING, "alice", PW, "--", sys.executable, "-c", CLIENT, PW],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_stopped_service_fails_fast(self):
        script = ('kill $KEYRING_PID; sleep 0.3; exec "$SMTPIPE" --port=0 --auth=alice '
                  '--command=true </dev/null')
        t = time.time()
        r = subprocess.run([KEYRING, "alice", PW, "--", "sh", "-c", script],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("no password in the keyring", r.stderr)
        self.assertLess(time.time() - t, 60)

    def test_no_service_at_all(self):
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent/bus")
        env.pop("DISPLAY", None)
        r = subprocess.run([harness.binary(), "--port=0", "--auth=bob", "--command=true"],
                           capture_output=True, text=True, timeout=30, env=env,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 3)
        self.assertIn("user=bob", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)


if __name__ == "__main__":
    harness.main()
