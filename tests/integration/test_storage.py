"""Stored messages, read back by real readers (issue 16): Maildir
(Python's mailbox.Maildir, and mutt when it is installed), the envelope
headers (Return-Path, X-Envelope-To with every Bcc recipient) in mbox and
Maildir, and --mailbox=- read from the process's standard output."""
import email.utils
import mailbox
import os
import re
import shutil
import smtplib
import stat
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NAME = re.compile(r"^(\d+)\.M(\d{6})P(\d+)Q(\d+)\.([^,]+),S=(\d+)$")


def send(port, sender, rcpts, text):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail(sender, rcpts, text)


def maildir_messages(path):
    box = mailbox.Maildir(path, factory=None, create=False)
    try:
        return sorted((box[k] for k in box.keys()), key=lambda m: m["Subject"])
    finally:
        box.close()


def envelope(msg):
    """The envelope a stored message carries: (sender, [recipients])."""
    rp = msg.get_all("Return-Path")
    to = msg.get_all("X-Envelope-To")
    assert len(rp) == 1 and len(to) == 1, (rp, to)
    return rp[0], [a for _, a in email.utils.getaddresses(to)]


class Maildir(unittest.TestCase):
    def test_read_back_by_python(self):
        # a MAILBOX ending in '/' is a Maildir, as mutt and Postfix read it
        with harness.Server(personality="mockmta", mailbox="md/") as srv:
            md = srv.mailbox
            send(srv.port, "app@a.test", ["to@b.test", "cc@c.test", "hidden@d.test"],
                 "Subject: one\r\nTo: to@b.test\r\nCc: cc@c.test\r\n\r\nFrom the start\r\n")
            send(srv.port, "", ["bounce@b.test"], "Subject: two\r\n\r\nnull sender\r\n")
            msgs = maildir_messages(md)
            self.assertEqual([m["Subject"] for m in msgs], ["one", "two"])
            self.assertEqual(msgs[0].get_payload(), "From the start\n")  # no mbox quoting
            self.assertEqual(envelope(msgs[0]),
                             ("<app@a.test>", ["to@b.test", "cc@c.test", "hidden@d.test"]))
            self.assertEqual(envelope(msgs[1]), ("<>", ["bounce@b.test"]))
            self.assertEqual(os.listdir(os.path.join(md, "tmp")), [])
            self.assertEqual(os.listdir(os.path.join(md, "cur")), [])
            for d in ("", "tmp", "new", "cur"):
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(md, d)).st_mode), 0o700, d)
            names = os.listdir(os.path.join(md, "new"))
            self.assertEqual(len(names), 2)
            for n in names:
                m = NAME.match(n)
                self.assertTrue(m, n)
                path = os.path.join(md, "new", n)
                self.assertEqual(int(m.group(6)), os.path.getsize(path), n)  # Dovecot's S=
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
                with open(path, "rb") as f:  # the envelope first, then Received:
                    self.assertRegex(f.read(), rb"^Return-Path: <[^\n]*>\nX-Envelope-To: <[^\n]+\n"
                                               rb"(\t<[^\n]+\n)*Received: from ")
            self.assertEqual(len({NAME.match(n).group(3) for n in names}), 2)  # two sessions
            self.assertIn("event=delivered", srv.log())

    def test_option_and_concurrent_sessions(self):
        d = tempfile.mkdtemp(prefix="smtpipe-md-")
        self.addCleanup(shutil.rmtree, d, True)
        md = os.path.join(d, "box")  # made at start-up, with tmp, new and cur
        with Direct("--maildir=" + md) as srv:
            self.assertTrue(all(os.path.isdir(os.path.join(md, x)) for x in ("tmp", "new", "cur")))
            self.assertEqual(harness.concurrently(8, lambda i: [
                send(srv.port, "s%d@a.test" % i, ["r@b.test"],
                     "Subject: %d.%d\r\n\r\n%s\r\n" % (i, k, "x" * (i * 5000)))
                for k in range(3)]), [])
            msgs = maildir_messages(md)
            self.assertEqual(sorted(m["Subject"] for m in msgs),
                             sorted("%d.%d" % (i, k) for i in range(8) for k in range(3)))
            for m in msgs:
                i = int(m["Subject"].split(".")[0])
                self.assertEqual(m.get_payload(), "x" * (i * 5000) + "\n")
                self.assertEqual(envelope(m), ("<s%d@a.test>" % i, ["r@b.test"]))

    def test_removed_between_messages_is_made_again(self):
        d = tempfile.mkdtemp(prefix="smtpipe-md-")
        self.addCleanup(shutil.rmtree, d, True)
        md = os.path.join(d, "box")
        with Direct("--maildir=" + md + "/") as srv:  # a trailing '/' too
            send(srv.port, "a@a.test", ["b@b.test"], "Subject: 1\r\n\r\none\r\n")
            shutil.rmtree(md)  # as a test suite cleans up between tests
            send(srv.port, "a@a.test", ["b@b.test"], "Subject: 2\r\n\r\ntwo\r\n")
            self.assertEqual([m["Subject"] for m in maildir_messages(md)], ["2"])

    def test_failed_fsync_leaves_nothing(self):
        # every fsync fails (failsync: a seccomp filter on the real binary)
        d = tempfile.mkdtemp(prefix="smtpipe-md-")
        self.addCleanup(shutil.rmtree, d, True)
        md = os.path.join(d, "box")
        with Direct("--maildir=" + md, prefix=[os.environ["SMTPIPE_FAILSYNC"]]) as srv:
            c = harness.RawClient(srv.port).greet()
            c.message(b"Subject: lost\r\n\r\nnot durable\r\n.\r\n", want=451)
            c.cmd("QUIT", 221)
            c.close()
            self.assertEqual(os.listdir(os.path.join(md, "new")), [])
            self.assertEqual(os.listdir(os.path.join(md, "tmp")), [])
            self.assertRegex(srv.log(), r'event=maildir-error maildir=\S+ error="cannot write '
                                        r'the message in tmp: Input/output error"')

    def test_full_disk_is_452_and_leaves_nothing(self):
        mnt = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt],
                           capture_output=True)
        self.assertEqual(r.returncode, 0, "this test needs a tmpfs mount: %s" % r.stderr)
        self.addCleanup(subprocess.run, ["umount", mnt])
        md = os.path.join(mnt, "box")
        with Direct("--maildir=" + md) as srv:
            send(srv.port, "a@a.test", ["b@b.test"], "Subject: fits\r\n\r\n" + "y" * 1000)
            c = harness.RawClient(srv.port).greet().data()
            c.send((b"z" * 900 + b"\r\n") * 400 + b".\r\n")  # 360 KB > the disk
            c.expect(452, "4.3.1")
            c.cmd("QUIT", 221)
            c.close()
            self.assertEqual([m["Subject"] for m in maildir_messages(md)], ["fits"])
            self.assertEqual(os.listdir(os.path.join(md, "tmp")), [])
            self.assertIn("No space left on device", srv.log())

    def test_symbolic_links_refused(self):
        d = tempfile.mkdtemp(prefix="smtpipe-md-")
        self.addCleanup(shutil.rmtree, d, True)
        elsewhere = os.path.join(d, "elsewhere")
        os.mkdir(elsewhere, 0o700)
        md = os.path.join(d, "box")
        os.symlink(elsewhere, md)  # the Maildir itself, with or without the '/'
        for arg in (md, md + "/"):
            r = subprocess.run([harness.mockmta_binary(), "-f", "-p", "0", "--maildir=" + arg],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("it is a symbolic link", r.stderr)
        os.unlink(md)
        with Direct("--maildir=" + md) as srv:
            # new/ replaced by a link after start-up: 451, nothing lands elsewhere
            os.rmdir(os.path.join(md, "new"))
            os.symlink(elsewhere, os.path.join(md, "new"))
            c = harness.RawClient(srv.port).greet()
            c.message(b"Subject: x\r\n\r\nx\r\n.\r\n", want=451)
            c.cmd("QUIT", 221)
            c.close()
            self.assertEqual(os.listdir(elsewhere), [])
            self.assertEqual(os.listdir(os.path.join(md, "tmp")), [])
            self.assertIn('error="new: it is a symbolic link"', srv.log())
            # and a directory everyone may write to
            os.unlink(os.path.join(md, "new"))
            os.mkdir(os.path.join(md, "new"))
            os.chmod(os.path.join(md, "new"), 0o777)
            c = harness.RawClient(srv.port).greet()
            c.message(b"Subject: x\r\n\r\nx\r\n.\r\n", want=451)
            c.cmd("QUIT", 221)
            c.close()
            self.assertIn('error="new: writable by every user"', srv.log())


class Envelope(unittest.TestCase):
    def test_mbox_starts_with_the_envelope(self):
        with harness.Server(personality="mockmta", mailbox="box.mbox") as srv:
            send(srv.port, "app@a.test", ["to@b.test", "secret@c.test"],
                 "Subject: bcc\r\nTo: to@b.test\r\n\r\nbody\r\n")
            send(srv.port, "", ["x@b.test"], "Subject: null\r\n\r\nbody\r\n")
            with open(srv.mailbox, "rb") as f:
                raw = f.read()
            self.assertRegex(raw, rb"^From app@a.test [^\n]+\nReturn-Path: <app@a.test>\n"
                                  rb"X-Envelope-To: <to@b.test>,\n\t<secret@c.test>\n"
                                  rb"Received: from ")
            self.assertRegex(raw, rb"\n\nFrom MAILER-DAEMON [^\n]+\nReturn-Path: <>\n"
                                  rb"X-Envelope-To: <x@b.test>\nReceived: from ")
            box = mailbox.mbox(srv.mailbox, create=False)
            msgs = list(box)
            box.close()
            self.assertEqual(envelope(msgs[0]), ("<app@a.test>", ["to@b.test", "secret@c.test"]))
            self.assertNotIn("secret@c.test", msgs[0]["To"])  # Bcc: only in the envelope

    def test_quoted_local_part_with_comma(self):
        # a recipient whose local part holds ',' and blanks is still one address
        with harness.Server(personality="mockmta", mailbox="md/") as srv:
            c = harness.RawClient(srv.port).greet()
            c.cmd("MAIL FROM:<\"a b\"@a.test>", 250)
            c.cmd("RCPT TO:<\"x, y\"@b.test>", 250)
            c.cmd("RCPT TO:<z@b.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: q\r\n\r\nq\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
            c.close()
            m = maildir_messages(srv.mailbox)[0]
            self.assertEqual(envelope(m), ('<"a b"@a.test>', ['"x, y"@b.test', "z@b.test"]))


class Stdout(unittest.TestCase):
    def test_messages_on_stdout_whole_from_parallel_sessions(self):
        # smtpipe --mailbox=- in the foreground: the port, then mbox text;
        # eight sessions at once, each message far over PIPE_BUF
        with Direct("--mailbox=-", personality="smtpipe", read_stdout=True) as srv:
            sizes = {i: 100000 + i * 37001 for i in range(8)}
            self.assertEqual(harness.concurrently(8, lambda i: send(
                srv.port, "s%d@a.test" % i, ["r%d@b.test" % i, "bcc@c.test"],
                "Subject: %d\r\n\r\n%s\r\nFrom inside\r\n" % (i, ("%d" % i) * sizes[i]))), [])
            # every 250 came after its message was written: all of it is in
            # the pipe, and read by the time the daemon has exited
        out = srv.out
        d = tempfile.mkdtemp(prefix="smtpipe-out-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "out.mbox")
        with open(path, "wb") as f:
            f.write(out)
        box = mailbox.mbox(path, create=False)
        msgs = list(box)
        box.close()
        self.assertEqual(sorted(m["Subject"] for m in msgs), [str(i) for i in range(8)])
        for m in msgs:
            i = int(m["Subject"])
            self.assertEqual(envelope(m), ("<s%d@a.test>" % i, ["r%d@b.test" % i, "bcc@c.test"]))
            body = m.get_payload().rstrip("\n")
            self.assertEqual(body, ("%d" % i) * sizes[i] + "\n>From inside")  # mboxrd quoting
            self.assertTrue(m.get_from().startswith("s%d@a.test " % i))

    def test_reader_gone_is_a_451(self):
        with Direct("--mailbox=-", personality="smtpipe") as srv:
            srv.proc.stdout.close()  # nobody reads standard output any more
            c = harness.RawClient(srv.port).greet()
            c.message(b"Subject: x\r\n\r\nx\r\n.\r\n", want=451)
            c.cmd("QUIT", 221)
            c.close()
            self.assertRegex(srv.log(), r'event=mailbox-error mailbox=- error="Broken pipe"')


    def test_reader_that_stops_reading_is_a_451(self):
        # standard output is a pipe nobody reads after the port line: the
        # message fills it and the write waits BOUND_MBOX_STDOUT_SECONDS
        # (60 s), then 451 and one line saying the text there is torn;
        # the session is not hung, and the next command is answered
        with open(os.path.join(harness.SOURCE, "src", "bounds.h")) as f:
            secs = int(re.search(r"#define BOUND_MBOX_STDOUT_SECONDS\s+(\d+)", f.read()).group(1))
        with Direct("--mailbox=-", personality="smtpipe") as srv:
            c = harness.RawClient(srv.port, timeout=secs + 60).greet()  # the rest: a hang guard
            c.message(b"Subject: big\r\n\r\n" + b"y" * 200000 + b"\r\n.\r\n", want=451)
            c.cmd("NOOP", 250)
            c.cmd("QUIT", 221)
            c.close()
            self.assertIn('event=mailbox-error mailbox=- error="Connection timed out; the '
                          'message on standard output is torn"', srv.log())


class Direct:
    """The binary run with exactly these arguments (and -f -p 0, a log
    file); harness.Server always adds a MAILBOX or a --command."""

    def __init__(self, *args, personality="mockmta", prefix=(), read_stdout=False):
        self.dir = tempfile.mkdtemp(prefix="smtpipe-test-")
        self.logfile = os.path.join(self.dir, "smtpipe.log")
        exe = harness.binary() if personality == "smtpipe" else harness.mockmta_binary()
        self.argv = list(prefix) + [exe, "-f", "--interface=127.0.0.1", "-p", "0",
                                    "--log=" + self.logfile, "--log-level=debug"] + list(args)
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line.strip():
            self.proc.kill()
            raise RuntimeError("no port: %s" % self.proc.stderr.read().decode(errors="replace"))
        self.port = int(line)
        self.out = b""
        self.reader = None
        if read_stdout:
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()

    def _read(self):
        while True:
            b = self.proc.stdout.read1(65536)
            if not b:
                return
            self.out += b

    def log(self):
        with open(self.logfile, errors="replace") as f:
            return f.read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        rc = self.proc.wait(timeout=30)
        if self.reader:
            self.reader.join(timeout=30)
        err = self.proc.stderr.read().decode(errors="replace")
        if not self.proc.stdout.closed:
            self.proc.stdout.close()
        self.proc.stderr.close()
        shutil.rmtree(self.dir, True)
        if exc[0] is None:
            assert rc == 0, "exit %s: %s" % (rc, err)
        return False


class Readme(unittest.TestCase):
    def test_readme_maildir_example(self):
        """The README's Maildir example runs as written, with mockmta on PATH,
        and prints the envelope with the Bcc recipient."""
        with open(os.path.join(harness.SOURCE, "README.md")) as f:
            readme = f.read()
        part = readme.split("## Using it as mockmta in a test suite", 1)[1].split("\n## ", 1)[0]
        code = [c for c in re.findall(r"```python\n(.*?)```", part, re.S) if "Maildir" in c][0]
        bindir = os.path.dirname(harness.mockmta_binary())
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((r.returncode, r.stdout),
                         (0, "<app@example.org> ['to@example.org', 'bcc@example.org']\n"), r.stderr)


class Usage(unittest.TestCase):
    def run_bin(self, *args, personality="mockmta"):
        exe = harness.binary() if personality == "smtpipe" else harness.mockmta_binary()
        return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)

    def test_refused(self):
        d = tempfile.mkdtemp(prefix="smtpipe-md-")
        self.addCleanup(shutil.rmtree, d, True)
        cases = [
            (["-f", "-p", "0", "--maildir=" + d + "/a", d + "/box"], "both --maildir and a MAILBOX"),
            (["-f", "-p", "0", "--maildir=" + d + "/a", "--command=cat"], "either --command"),
            (["-p", "0", "--mailbox=-"], "--mailbox=- writes to standard output"),  # mockmta: inetd
            (["-d", "-p", "0", "--mailbox=-"], "--mailbox=- writes to standard output"),
        ]
        for args, want in cases:
            r = self.run_bin(*args)
            self.assertEqual(r.returncode, 3, (args, r.stderr))
            self.assertIn(want, r.stderr, args)


if __name__ == "__main__":
    harness.main()
