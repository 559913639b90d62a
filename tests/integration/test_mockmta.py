"""The mockmta personality and mailbox delivery, read back by real readers."""
import fcntl
import mailbox
import os
import re
import shlex
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

TRICKY = (b"Subject: tricky\r\n\r\nFrom the start of a line\r\n>From quoted once\r\n"
          b">>From quoted twice\r\n.dot line\r\n..two dots\r\nFrom\r\nFromage\r\nlast line")

# a mailbox's first message, for the tests that start with one
FIRST = b"From x@y Thu Jan  1 00:00:00 1970\nSubject: before\n\nkept\n\n"


def send(port, body, sender="a@b.test", rcpts=("c@d.test",)):
    c = harness.RawClient(port)
    c.expect(220)
    c.cmd("EHLO c", 250)
    c.cmd("MAIL FROM:<%s>" % sender, 250)
    for r in rcpts:
        c.cmd("RCPT TO:<%s>" % r, 250)
    c.cmd("DATA", 354)
    stuffed = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in body.split(b"\r\n"))
    c.send(stuffed + b"\r\n.\r\n")
    lines = c.expect(250)
    c.cmd("QUIT", 221)
    c.close()
    return lines


def unquote(text):
    """mboxrd reading: one '>' less on every ^>+From line."""
    return re.sub(r"(?m)^>(>*From )", r"\1", text)


def bodies(path):
    """Bodies as sent: Python's mbox reader keeps the quoting (mboxo) and,
    for the last message, the separating blank line; both are undone."""
    box = mailbox.mbox(path, create=False)
    try:
        msgs = list(box)
        out = []
        for i, m in enumerate(msgs):
            p = unquote(m.get_payload(decode=False))
            if i == len(msgs) - 1 and p.endswith("\n\n"):
                p = p[:-1]
            out.append(p)
        return out, [m.get_from() for m in msgs]
    finally:
        box.close()


class Mailbox(unittest.TestCase):
    def test_round_trip_python_and_mailutils(self):
        with harness.Server(personality="mockmta", mailbox="box.mbox") as srv:
            send(srv.port, TRICKY)
            send(srv.port, b"Subject: two\r\n\r\nsecond", sender="")
            payloads, froms = bodies(srv.mailbox)
            self.assertEqual(len(payloads), 2)
            want = TRICKY.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n") + b"\n"
            self.assertEqual(payloads[0].encode(), want)  # quoting undone exactly
            self.assertTrue(froms[0].startswith("a@b.test "), froms[0])
            self.assertTrue(froms[1].startswith("MAILER-DAEMON "), froms[1])
            with open(srv.mailbox, "rb") as f:
                raw = f.read()
            self.assertIn(b"\n>From the start", raw)
            self.assertIn(b"\n>>From quoted once", raw)
            self.assertIn(b"\nFromage\n", raw)
            self.assertTrue(raw.endswith(b"second\n\n"))
            r = subprocess.run(["mail", "-f", srv.mailbox, "-H"], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            self.assertEqual(len([l for l in r.stdout.splitlines() if l.strip()]), 2, r.stdout + r.stderr)

    def test_concurrent_appends(self):
        with harness.Server(personality="mockmta", mailbox="box.mbox") as srv:
            def client(i):
                s = srv.smtp(timeout=60)
                for k in range(25):
                    s.sendmail("c%d@a.test" % i, ["r@b.test"],
                               "Subject: %d.%d\r\n\r\n%s\r\nFrom inside %d.%d\r\n" % (i, k, "x" * (k * 7), i, k))
                s.quit()
            self.assertEqual(harness.concurrently(8, client), [])
            box = mailbox.mbox(srv.mailbox, create=False)
            msgs = list(box)
            box.close()
            self.assertEqual(len(msgs), 200)
            seen = set()
            for m in msgs:
                i, k = m["Subject"].split(".")
                p = unquote(m.get_payload())
                if p.endswith("\n\n"):
                    p = p[:-1]  # the last message keeps the separator in Python's reader
                self.assertEqual(p, "x" * (int(k) * 7) + "\nFrom inside %s.%s\n" % (i, k))
                seen.add(m["Subject"])
            self.assertEqual(len(seen), 200)

    def test_full_disk_restores_the_mailbox(self):
        mnt = tempfile.mkdtemp()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt], capture_output=True)
        self.assertEqual(r.returncode, 0, "this test needs a tmpfs mount: %s" % r.stderr)
        try:
            path = os.path.join(mnt, "box.mbox")
            with harness.Server(personality="mockmta", mailbox=path) as srv:
                send(srv.port, b"Subject: fits\r\n\r\n" + (b"y" * 99 + b"\r\n") * 10)
                with open(path, "rb") as f:
                    before = f.read()
                c = harness.RawClient(srv.port).greet().data()
                c.send((b"z" * 900 + b"\r\n") * 400 + b".\r\n")  # 360 KB > the disk
                c.expect(452, "4.3.1")
                c.cmd("QUIT", 221)
                with open(path, "rb") as f:
                    self.assertEqual(f.read(), before)
                self.assertIn("event=mailbox-error", srv.log())
                payloads, _ = bodies(path)
                self.assertEqual(len(payloads), 1)
        finally:
            subprocess.run(["umount", mnt])
            os.rmdir(mnt)

    def test_locked_mailbox_waits_for_the_other_writer(self):
        with harness.Server(personality="mockmta", mailbox="box.mbox") as srv:
            send(srv.port, b"Subject: first\r\n\r\none")
            with open(srv.mailbox, "ab") as other:  # another writer, as mutt or procmail lock
                fcntl.lockf(other, fcntl.LOCK_EX)
                c = harness.RawClient(srv.port).greet().data()
                c.send(b"Subject: second\r\n\r\ntwo\r\n.\r\n")
                c.sock.settimeout(0.5)
                with self.assertRaises(socket.timeout):  # no reply while the lock is held
                    c.sock.recv(100)
                c.sock.settimeout(30)
                other.write(b"From other@x Thu Jan  1 00:00:00 1970\nSubject: other\n\nthree\n\n")
                other.flush()
                fcntl.lockf(other, fcntl.LOCK_UN)
            c.expect(250)  # appended once the lock was free, after the other writer
            c.cmd("QUIT", 221)
            payloads, froms = bodies(srv.mailbox)
            self.assertEqual(payloads, ["one\n", "three\n", "two\n"])

    def test_mailbox_locked_too_long_is_451_and_untouched(self):
        with harness.Server(personality="mockmta", mailbox="box.mbox") as srv:
            send(srv.port, b"Subject: first\r\n\r\none")
            with open(srv.mailbox, "rb") as f:
                before = f.read()
            with open(srv.mailbox, "ab") as other:
                fcntl.lockf(other, fcntl.LOCK_EX)
                c = harness.RawClient(srv.port).greet().data()
                t = time.monotonic()
                c.send(b"Subject: second\r\n\r\ntwo\r\n.\r\n")
                c.sock.settimeout(60)  # the bound is 10 s; sanitizers and valgrind add to it
                c.expect(451, "4.3.0")
                self.assertGreaterEqual(time.monotonic() - t, 9.5)  # the bound: 10 s
                c.cmd("NOOP", 250)  # the session goes on
                c.cmd("QUIT", 221)
            with open(srv.mailbox, "rb") as f:
                self.assertEqual(f.read(), before)
            self.assertIn('event=mailbox-error mailbox=%s error="locked by another writer for 10 s"'
                          % srv.mailbox, srv.log())

    def mailbox_holding(self, text):
        """a mailbox in a temporary directory, holding text"""
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "box.mbox")
        with open(path, "wb") as f:
            f.write(text)
        return path

    def test_failed_fsync_takes_the_message_back_out(self):
        # the mailbox is written while every fsync fails (failsync: a seccomp
        # filter on the real binary), as on a disk that lost the write
        path = self.mailbox_holding(FIRST)
        with harness.Server(personality="mockmta", mailbox=path,
                            prefix=[os.environ["SMTPIPE_FAILSYNC"]]) as srv:
            c = harness.RawClient(srv.port).greet()
            c.message(b"Subject: lost\r\n\r\nnot durable\r\n.\r\n", want=451)
            c.cmd("QUIT", 221)
            c.close()
            with open(path, "rb") as f:
                self.assertEqual(f.read(), FIRST)
            self.assertRegex(srv.log(), r'event=mailbox-error mailbox=\S+ error="Input/output error" '
                                        r"restored-size=57\n")

    def test_failed_fsync_keeps_a_message_another_writer_appended_after(self):
        # the first fsync waits while another writer appends under the lock;
        # taking ours back out would now cut theirs, so ours stays (a possible
        # second copy after the 451, never a lost message) and theirs is whole
        path = self.mailbox_holding(FIRST)
        other = b"From other@x Thu Jan  1 00:00:00 1970\nSubject: other\n\nafter ours\n\n"
        hook = ("python3 -c 'import fcntl, sys; f = open(sys.argv[1], \"ab\"); "
                "fcntl.lockf(f, fcntl.LOCK_EX); f.write(sys.argv[2].encode()); f.close()' %s %s"
                % (shlex.quote(path), shlex.quote(other.decode())))
        with harness.Server(personality="mockmta", mailbox=path,
                            prefix=[os.environ["SMTPIPE_FAILSYNC"], "--first", hook]) as srv:
            c = harness.RawClient(srv.port).greet()
            c.message(b"Subject: ours\r\n\r\nnot durable\r\n.\r\n", want=451)
            c.cmd("QUIT", 221)
            c.close()
            with open(path, "rb") as f:
                raw = f.read()
            self.assertTrue(raw.startswith(FIRST), raw)
            self.assertTrue(raw.endswith(other), raw)  # theirs, whole and last
            ours = raw[len(FIRST):-len(other)]
            self.assertRegex(ours, rb"^From a@b .*\n(.+\n)*Subject: ours\n\nnot durable\n\n$")
            self.assertRegex(srv.log(), r'event=mailbox-error mailbox=\S+ error="Input/output error" '
                                        r"restored-size=-1\n")

    def test_recipient_limit(self):
        with harness.Server("--max-recipients=3", personality="mockmta", mailbox="b.mbox") as srv:
            c = srv.raw()
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.cmd("MAIL FROM:<a@b>", 250)
            for i in range(3):
                c.cmd("RCPT TO:<r%d@x>" % i, 250)
            c.cmd("RCPT TO:<r3@x>", 452, "4.5.3")
            c.cmd("QUIT", 221)

    def test_default_recipient_limit_is_100(self):
        with harness.Server(personality="mockmta", mailbox="b.mbox") as srv:
            c = srv.raw()
            c.expect(220)
            c.cmd("EHLO c", 250)
            c.cmd("MAIL FROM:<a@b>", 250)
            c.send("".join("RCPT TO:<r%d@x>\r\n" % i for i in range(101)))
            for i in range(100):
                c.expect(250)
            c.expect(452, "4.5.3")


class MockmtaCli(unittest.TestCase):
    def test_inetd_style_socketpair(self):
        with tempfile.TemporaryDirectory() as tmp:
            box = os.path.join(tmp, "m.mbox")

            def talk(c):
                c.expect(220)
                c.cmd("HELO c", 250)
                c.cmd("MAIL FROM:<a@b>", 250)
                c.cmd("RCPT TO:<c@d>", 250)
                c.cmd("DATA", 354)
                c.send("Subject: pies\r\n\r\nvia inetd\r\n.\r\n")
                c.expect(250)
                c.cmd("QUIT", 221)
            rc, err = harness.run_inetd(["--log=none", box], talk, personality="mockmta")
            self.assertEqual(rc, 0, err)
            self.assertEqual(bodies(box)[0], ["via inetd\n"])

    def test_timeout_exit_2(self):
        with tempfile.TemporaryDirectory() as tmp:
            def talk(c):
                c.expect(220)
                c.expect(421)
            rc, err = harness.run_inetd(["--log=none", "-t", "1", os.path.join(tmp, "m")], talk,
                                        personality="mockmta")
            self.assertEqual(rc, 2, err)

    def test_daemon_pidfile_and_sigterm(self):
        with tempfile.TemporaryDirectory() as tmp:
            pidfile, box = os.path.join(tmp, "pid"), os.path.join(tmp, "m.mbox")
            r = subprocess.run([harness.mockmta_binary(), "-d", "-p", "0", "-P", pidfile, box],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.splitlines()
            self.assertEqual(len(lines), 1, "only the port on stdout: %r" % r.stdout)
            with open(pidfile) as f:
                pid = int(f.read())
            send(int(lines[0]), b"Subject: d\r\n\r\ndaemon")
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 30  # only a guard against a hang
            while os.path.exists(pidfile) and time.time() < deadline:
                time.sleep(0.05)
            self.assertFalse(os.path.exists(pidfile))
            self.assertEqual(bodies(box)[0], ["daemon\n"])

    def test_foreground_port_zero(self):
        with harness.Server("-p", "0", personality="mockmta", mailbox="m.mbox", port_arg=False) as srv:
            send(srv.port, b"Subject: f\r\n\r\nforeground")
        self.assertEqual(bodies(srv.mailbox)[0], ["foreground\n"])

    def test_unopenable_mailbox_exit_1(self):
        r = subprocess.run([harness.mockmta_binary(), "-f", "-p", "0", "/nonexistent/dir/m.mbox"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot open mailbox", r.stderr)

    def test_unknown_option_exit_3(self):
        r = subprocess.run([harness.mockmta_binary(), "-Z", "m.mbox"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 3)


if __name__ == "__main__":
    harness.main()
