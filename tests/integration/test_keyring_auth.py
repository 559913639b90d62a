"""--auth=USER against a real Secret Service in a private D-Bus session.

tests/tools/keyring-session.sh starts a private bus and gnome-keyring-daemon,
stores the password with secret-tool exactly as msmtpd's manual says, and
runs a small client program inside that session (CLIENT below): it starts
smtpipe --auth=alice and logs in with smtplib, or runs smtpipe against a
keyring that is locked or stopped and reports how it ended.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KEYRING = os.path.join(harness.SOURCE, "tests", "tools", "keyring-session.sh")
PW = "key ring \"pass\" $x'"  # blanks, quotes and a dollar; smtplib only sends ASCII

# Runs inside the keyring session. argv: MODE PASSWORD
#   auth   start smtpipe --auth=alice, log in with PLAIN and with LOGIN,
#          send a message, be refused with a wrong password; check that
#          the password is in neither smtpipe's argv nor its log
#   start  (optionally after killing the keyring daemon) start smtpipe
#          --auth=alice with stdin not a terminal and report its exit
#          status and stderr as JSON on stdout
CLIENT = r'''
import json, os, smtplib, subprocess, sys, tempfile, time
mode, pw = sys.argv[1], sys.argv[2]
exe = os.environ["SMTPIPE_UNDER_TEST"]

def secrets_owned():
    r = subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
                        "/", "org.freedesktop.DBus.NameHasOwner",
                        "string:org.freedesktop.secrets"], capture_output=True, text=True)
    return "boolean true" in r.stdout

if mode == "auth":
    tmp = tempfile.mkdtemp()
    log = os.path.join(tmp, "log")
    p = subprocess.Popen([exe, "--port=0", "--auth=alice", "--log=" + log,
                          "--command=cat >/dev/null; :"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        port = int(p.stdout.readline())
        for mech in ("PLAIN", "LOGIN"):
            s = smtplib.SMTP("127.0.0.1", port)
            s.ehlo()
            s.user, s.password = "alice", pw
            code, _ = s.auth(mech, s.auth_plain if mech == "PLAIN" else s.auth_login)
            if code != 235:
                sys.exit("%s: got %d, want 235" % (mech, code))
            s.sendmail("a@a.test", ["b@b.test"], "x\r\n")
            s.quit()
        s = smtplib.SMTP("127.0.0.1", port)
        try:
            s.login("alice", "wrong")
            sys.exit("a wrong password was accepted")
        except smtplib.SMTPAuthenticationError as e:
            if e.smtp_code != 535:
                sys.exit("wrong password: got %d, want 535" % e.smtp_code)
        s.close()
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            if pw.encode() in f.read():
                sys.exit("the password is in smtpipe's argv")
    finally:
        p.terminate()
        rc = p.wait()
    with open(log) as f:
        text = f.read()
    if pw in text or "event=auth-ok" not in text:
        sys.exit("the log shows the password, or no auth-ok:\n" + text)
    sys.exit(rc)

if mode == "start":
    if sys.argv[3] == "kill":
        os.kill(int(os.environ["KEYRING_PID"]), 15)
        for _ in range(200):  # until the bus has dropped the name
            if not secrets_owned():
                break
            time.sleep(0.05)
        else:
            sys.exit("the keyring daemon did not let go of org.freedesktop.secrets")
    try:
        r = subprocess.run([exe, "--port=0", "--auth=alice", "--command=true"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
        out = {"rc": r.returncode, "stderr": r.stderr}
    except subprocess.TimeoutExpired:
        out = {"rc": None, "stderr": "still running after 60 s"}
    print(json.dumps(out))
'''


def in_keyring(*client_args, attrs=None, lock=False):
    """Run CLIENT inside a fresh keyring session holding PW for alice."""
    env = dict(os.environ, SMTPIPE_UNDER_TEST=harness.binary())
    env.pop("KEYRING_ATTRS", None)
    env.pop("KEYRING_LOCK", None)
    if attrs:
        env["KEYRING_ATTRS"] = attrs
    if lock:
        env["KEYRING_LOCK"] = "1"
    return subprocess.run([KEYRING, "alice", PW, "--", sys.executable, "-c", CLIENT,
                           *client_args], capture_output=True, text=True, timeout=180, env=env)


class Keyring(unittest.TestCase):
    def start_fails(self, *args, **kw):
        """smtpipe --auth=alice in the session: exit 3 with one line. How
        soon is told by the reason, not by a clock: the service's own
        answer or D-Bus's error, never a timeout (test_keyring_stuck.py)."""
        r = in_keyring("start", PW, *args, **kw)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["rc"], 3, out["stderr"])
        self.assertEqual(len(out["stderr"].strip().splitlines()), 1, out["stderr"])
        self.assertIn("--auth=alice: no password in the keyring for user=alice "
                      "host=localhost service=smtp", out["stderr"])
        self.assertNotIn("did not answer", out["stderr"])
        return out["stderr"]

    def test_password_from_keyring(self):
        r = in_keyring("auth", PW)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_password_under_the_old_network_attributes(self):
        # msmtp falls back to user/server/protocol; an entry stored that way
        # with secret-tool (no xdg:schema) must be found too
        r = in_keyring("auth", PW, attrs="network")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_locked_keyring_fails_clearly(self):
        err = self.start_fails("keep", lock=True)
        self.assertIn("not found, or the keyring is locked", err)

    def test_stopped_service_fails_fast(self):
        err = self.start_fails("kill")
        self.assertIn("org.freedesktop.secrets not available", err)

    def test_no_service_at_all(self):
        for bus in ("unix:path=/nonexistent/bus", None):  # None: no bus and no display
            with self.subTest(bus=bus):
                env = dict(os.environ)
                env.pop("DISPLAY", None)
                env.pop("DBUS_SESSION_BUS_ADDRESS", None)
                if bus:
                    env["DBUS_SESSION_BUS_ADDRESS"] = bus
                r = subprocess.run([harness.binary(), "--port=0", "--auth=bob", "--command=true"],
                                   capture_output=True, text=True, timeout=30, env=env,
                                   stdin=subprocess.DEVNULL)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn("no password in the keyring for user=bob host=localhost "
                              "service=smtp (org.freedesktop.secrets not available", r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    harness.main()
