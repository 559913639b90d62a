"""test_queue.py - --queue=DIR: a 250 means safely queued, and the queue
runner delivers each message at least once, never losing one.

Real parts only: the smtpipe binary, real SMTP clients, and a delivery
command (a small shell script) that records each attempt in a control
directory and exits with the statuses that directory tells it. Nothing
waits on time: every wait is for a log line, a file or an exit, with a
generous bound that only guards against a hang.
"""
import email
import email.policy
import fcntl
import json
import os
import re
import shutil
import signal
import smtplib
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import alive, children, wait_for  # noqa: E402

HANG = harness.HANG  # seconds: a bound against a hang, never a timing assertion

# The delivery command: CTL -f SENDER -- RCPT... Records the message in
# CTL/msgs, then (when CTL/block is a FIFO, after writing CTL/started.PID)
# waits for a line on it; its status is CTL/always-RCPT (by the last
# recipient) or the next line of CTL/seq (0 when none is left); "hang"
# sleeps past any delivery timeout. Each finished attempt is one line of
# CTL/log: status, arguments, message file.
SCRIPT = r'''#!/bin/sh
ctl=$1; shift
eval "last=\${$#}"
f=$(mktemp "$ctl/msgs/m.XXXXXX") || exit 71
cat > "$f" || exit 71
if [ -p "$ctl/block" ]; then
  echo $$ > "$ctl/started.$$"
  read x < "$ctl/block"
fi
if [ -f "$ctl/always-$last" ]; then
  st=$(cat "$ctl/always-$last")
else
  exec 9>>"$ctl/seq.lock"
  flock 9
  st=$(head -n 1 "$ctl/seq")
  tail -n +2 "$ctl/seq" > "$ctl/seq.new"
  mv "$ctl/seq.new" "$ctl/seq"
  flock -u 9
  [ -n "$st" ] || st=0
fi
if [ "$st" = hang ]; then
  sleep 600
  exit 0
fi
printf '%s\t%s\t%s\n' "$st" "$*" "$f" >> "$ctl/log"
exit "$st"
'''


class Ctl:
    """The control directory of the recording command."""

    def __init__(self, base):
        self.d = os.path.join(base, "ctl")
        os.makedirs(os.path.join(self.d, "msgs"))
        self.script = os.path.join(self.d, "deliver.sh")
        with open(self.script, "w") as f:
            f.write(SCRIPT)
        os.chmod(self.script, 0o755)
        self.seq([])

    def command(self):
        return "%s %s -f %%F --" % (self.script, self.d)

    def seq(self, statuses):
        with open(os.path.join(self.d, "seq"), "w") as f:
            f.write("".join("%s\n" % s for s in statuses))

    def always(self, rcpt, status):
        with open(os.path.join(self.d, "always-" + rcpt), "w") as f:
            f.write("%s\n" % status)

    def block(self):
        os.mkfifo(os.path.join(self.d, "block"))

    def unblock(self):
        """remove the FIFO (later attempts do not wait) and release the waiting ones"""
        path = os.path.join(self.d, "block")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            fd = None
        os.unlink(path)
        if fd is not None:
            os.write(fd, b"go\n")
            os.close(fd)

    def release(self):
        if os.path.exists(os.path.join(self.d, "block")):
            self.unblock()

    def started(self):
        return [n for n in os.listdir(self.d) if n.startswith("started.")]

    def log(self):
        """[(status, args, message bytes)] of every finished attempt"""
        try:
            with open(os.path.join(self.d, "log")) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            st, args, path = line.split("\t")
            with open(path, "rb") as m:
                out.append((st, args, m.read()))
        return out

    def delivered(self):
        return [(a, m) for st, a, m in self.log() if st == "0"]


def stop(srv, check=True):
    """srv.stop() once (a crashed server is stopped already); check: it
    must end on SIGTERM with status 0, its runner and deliveries too"""
    if not getattr(srv, "stopped", False):
        srv.stopped = True
        return srv.stop(check)
    return None


def crash(srv):
    """a power cut: SIGKILL to the daemon and everything it started
    (sessions, runner, workers, commands) at once"""
    tree = [srv.proc.pid] + children(srv.proc.pid, zombies=True, descendants=True)
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    srv.proc.wait(timeout=HANG)
    stop(srv, check=False)
    for p in tree:  # gone, every one (a zombie's parent is gone too)
        wait_for(lambda: not alive(p), "process %d to end" % p)


class Base(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="smtpipe-queue-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.ctl = Ctl(self.base)
        self.queue = os.path.join(self.base, "queue")

    def server(self, *args, queue=None, prefix=()):
        srv = harness.Server("--queue=" + (queue or self.queue), "--queue-retry=1",
                             "--queue-retry-max=2", *args, command=self.ctl.command(),
                             prefix=prefix)
        self.addCleanup(stop, srv)
        self.addCleanup(self.ctl.release)  # first: a failed test leaves no command waiting
        return srv

    def send(self, srv, sender="a@a.test", rcpts=("b@b.test",), subject="hello"):
        """one message; the queue ID from the 250"""
        c = srv.raw().greet()
        lines = c.message(("Subject: %s\r\nMessage-ID: <%s@a.test>\r\n\r\nbody\r\n.\r\n"
                           % (subject, subject)).encode(), 250, sender=sender, rcpts=rcpts)
        c.cmd("QUIT", 221)
        m = re.match(r"2\.0\.0 Ok: queued as ([0-9A-F]{25})$", lines[-1])
        self.assertTrue(m, lines)
        return m.group(1)

    def wait_log(self, srv, pattern, count=1):
        """what the regular expression finds in the log, once it finds it count times"""
        log = srv.wait_log(harness.log_matches(pattern, count), timeout=HANG)
        return re.findall(pattern, log)

    def plant_held_lock(self):
        """a new DIR/lock put in place by rename, held (flock) by this test
        as an older runner would hold it; the descriptor (closed at the
        end of the test)"""
        lock = os.path.join(self.queue, "lock")
        fd = os.open(lock + ".new", os.O_RDWR | os.O_CREAT, 0o600)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"%d\n" % os.getpid())
        os.rename(lock + ".new", lock)
        return fd

    def kill_daemon_mid_delivery(self):
        """kill -9 of the daemon alone while its worker's command, blocked,
        delivers the message "first": (the dead daemon, that message's
        queue ID, a new daemon on the same queue)"""
        self.ctl.block()
        srv = self.server("--queue-workers=1")
        qid = self.send(srv, subject="first")
        wait_for(self.ctl.started, "the command to start")
        srv.proc.kill()
        srv.proc.wait(timeout=HANG)
        srv.stopped = True  # its worker holds its stderr until the command ends
        self.addCleanup(srv.stop, False)
        return srv, qid, self.server()

    def tmpfs_queue(self, options):
        """the queue directory on a tmpfs mounted with options (mount -o:
        "size=64k"), unmounted at the end: a disk that fills up"""
        self.assertEqual(os.geteuid(), 0, "a tmpfs mount needs root")
        os.mkdir(self.queue, 0o700)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options + ",mode=0700", "tmpfs",
                            self.queue], capture_output=True)
        self.assertEqual(r.returncode, 0, "this test needs a tmpfs mount: %s" % r.stderr)
        self.addCleanup(subprocess.run, ["umount", self.queue])

    def ids(self, where="q"):
        try:
            return sorted(os.listdir(os.path.join(self.queue, where)))
        except FileNotFoundError:
            return []

    def admin(self, *args, queue=None):
        return subprocess.run([harness.binary(), "--queue=" + (queue or self.queue)] + list(args),
                              capture_output=True, text=True, timeout=HANG)


class Retry(Base):
    def test_exit_75_three_times_then_0_is_delivered_once_with_backoff(self):
        self.ctl.seq([75, 75, 75, 0])
        srv = self.server()
        qid = self.send(srv)
        self.wait_log(srv, r"event=delivered queue-id=%s attempts=4 " % qid)
        log = srv.log()
        deferred = re.findall(r"event=deferred queue-id=%s attempts=(\d) result=451 status=75 "
                              r"reason=\S+ next=\d+ in=(\d+)" % qid, log)
        # --queue-retry=1, doubled, at most --queue-retry-max=2
        self.assertEqual(deferred, [("1", "1"), ("2", "2"), ("3", "2")])
        self.assertEqual([st for st, _, _ in self.ctl.log()], ["75", "75", "75", "0"])
        self.assertEqual(len(self.ctl.delivered()), 1)
        args, msg = self.ctl.delivered()[0]
        self.assertEqual(args, "-f a@a.test -- b@b.test")
        self.assertIn(b"\nSubject: hello\n", msg)
        self.assertTrue(msg.startswith(b"Received: "), msg[:80])
        self.assertEqual(self.ids(), [])
        self.assertRegex(log, r"event=queued msg=\S+ queue-id=%s " % qid)

    def test_a_command_that_hangs_past_the_delivery_timeout_is_deferred(self):
        self.ctl.seq(["hang", 0])
        srv = self.server("--delivery-timeout=1")
        qid = self.send(srv)
        self.wait_log(srv, r"event=deferred queue-id=%s attempts=1 result=451 status=-1 "
                           r"timed-out " % qid)
        self.wait_log(srv, r"event=delivered queue-id=%s attempts=2 " % qid)
        self.assertEqual(len(self.ctl.delivered()), 1)

    def test_a_large_message_arrives_whole(self):
        # past the spool's memory bound: spooled to a file, copied into the
        # queue, read by the command from the queue file, all of it
        self.ctl.seq([75, 0])
        srv = self.server()
        body = b"".join(b"line %06d " % i + b"x" * 90 + b"\r\n" for i in range(3000))
        c = srv.raw(timeout=HANG).greet()
        lines = c.message(b"Subject: big\r\n\r\n" + body + b".\r\n", 250)
        c.cmd("QUIT", 221)
        qid = re.search(r"queued as (\S+)", lines[-1]).group(1)
        self.wait_log(srv, r"event=delivered queue-id=%s attempts=2 " % qid)
        (_, msg), = self.ctl.delivered()
        self.assertTrue(msg.endswith(b"\nSubject: big\n\n" + body.replace(b"\r\n", b"\n")),
                        msg[-200:])
        attempts = [m for _, _, m in self.ctl.log()]
        self.assertEqual(attempts[0], attempts[1])  # the retry got the same bytes

    def test_queue_files_are_private(self):
        self.ctl.block()
        srv = self.server()
        qid = self.send(srv)
        for d in ("", "tmp", "q", "failed"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.queue, d)).st_mode), 0o700)
        for f in ("msg", "env"):
            st = os.lstat(os.path.join(self.queue, "q", qid, f))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, f)
        self.ctl.unblock()
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)


class Bounces(Base):
    def dsn(self, msg):
        m = email.message_from_bytes(msg, policy=email.policy.default)
        self.assertEqual(m.get_content_type(), "multipart/report")
        self.assertEqual(m.get_param("report-type"), "delivery-status")
        parts = list(m.iter_parts())
        types = [p.get_content_type() for p in parts]
        self.assertIn("message/delivery-status", types)
        self.assertIn("text/rfc822-headers", types)
        ds = parts[types.index("message/delivery-status")]
        # per-message fields, then one block per recipient
        blocks = [dict(b.items()) for b in ds.get_payload()]
        self.assertIn("Reporting-MTA", blocks[0])
        headers = parts[types.index("text/rfc822-headers")]
        raw = headers.get_payload() if isinstance(headers.get_payload(), str) else \
            headers.as_string()
        return m, blocks[1:], raw

    def test_exit_67_bounces_a_dsn_to_the_sender_and_moves_to_failed(self):
        self.ctl.always("b@b.test", 67)
        srv = self.server()
        qid = self.send(srv, subject="doomed")
        self.wait_log(srv, r"event=failed queue-id=%s attempts=1 result=554 status=67 " % qid)
        bid = self.wait_log(srv, r"event=bounced queue-id=%s bounce-id=([0-9A-F]{25}) "
                                 r"status=5\.3\.0 to=\"a@a.test\"" % qid)[0]
        self.wait_log(srv, r"event=delivered queue-id=%s attempts=1 " % bid)
        self.assertEqual(self.ids("failed"), [qid])
        self.assertEqual(self.ids("q"), [])
        got = self.ctl.delivered()
        self.assertEqual(len(got), 1)
        args, msg = got[0]
        self.assertEqual(args, "-f MAILER-DAEMON -- a@a.test")
        m, rcpts, headers = self.dsn(msg)
        self.assertEqual(len(rcpts), 1)
        self.assertEqual(rcpts[0]["Final-Recipient"], "rfc822; b@b.test")
        self.assertEqual(rcpts[0]["Action"], "failed")
        self.assertEqual(rcpts[0]["Status"], "5.3.0")
        self.assertIn("67", rcpts[0]["Diagnostic-Code"])
        self.assertIn("Subject: doomed", headers)
        self.assertIn("Message-ID: <doomed@a.test>", headers)
        self.assertNotIn("body", headers)

    def test_a_null_sender_is_never_bounced(self):
        self.ctl.always("b@b.test", 67)
        srv = self.server()
        qid = self.send(srv, sender="")
        self.wait_log(srv, r"event=bounce-suppressed queue-id=%s reason=null-sender" % qid)
        self.wait_log(srv, r"event=failed queue-id=%s " % qid)
        self.assertEqual(self.ids("failed"), [qid])
        self.assertEqual(self.ids("q"), [])
        self.assertNotIn("event=bounced", srv.log())
        self.assertEqual([st for st, _, _ in self.ctl.log()], ["67"])

    def test_expired_message_bounces_with_4_4_7(self):
        self.ctl.always("b@b.test", 75)
        srv = self.server("--queue-lifetime=2s")
        qid = self.send(srv)
        self.wait_log(srv, r"event=expired queue-id=%s attempts=\d+ result=451 status=75 " % qid)
        bid = self.wait_log(srv, r"event=bounced queue-id=%s bounce-id=([0-9A-F]{25}) "
                                 r"status=4\.4\.7 " % qid)[0]
        self.wait_log(srv, r"event=delivered queue-id=%s " % bid)
        self.assertEqual(self.ids("failed"), [qid])
        _, rcpts, _ = self.dsn(self.ctl.delivered()[0][1])
        self.assertEqual(rcpts[0]["Status"], "4.4.7")
        self.assertEqual(rcpts[0]["Action"], "failed")

    def test_a_bounce_that_fails_is_not_bounced_again(self):
        self.ctl.always("b@b.test", 67)
        self.ctl.always("a@a.test", 67)  # the sender's address fails too
        srv = self.server()
        qid = self.send(srv)
        bid = self.wait_log(srv, r"event=bounced queue-id=%s bounce-id=([0-9A-F]{25}) " % qid)[0]
        self.wait_log(srv, r"event=bounce-suppressed queue-id=%s " % bid)
        self.wait_log(srv, r"event=failed queue-id=%s " % bid)
        self.assertEqual(self.ids("failed"), sorted([qid, bid]))
        self.assertEqual(len(re.findall("event=bounced", srv.log())), 1)


class Crash(Base):
    """SIGKILL of everything at each point; a restart over the same
    directory; the recording command counts: none lost, no duplicate."""

    def test_kill_during_data_delivers_nothing_and_leaves_nothing(self):
        srv = self.server()
        c = srv.raw().greet().data()
        c.send(b"Subject: half\r\n\r\n" + b"x" * 100000 + b"\r\n")  # no end of data
        self.wait_log(srv, r"event=state from=rcpt to=data")
        crash(srv)
        srv2 = self.server()
        self.wait_log(srv2, r"event=queue-runner-start ")
        qid = self.send(srv2, subject="after")
        self.wait_log(srv2, r"event=delivered queue-id=%s " % qid)
        got = self.ctl.delivered()
        self.assertEqual(len(got), 1)
        self.assertIn(b"Subject: after", got[0][1])
        self.assertEqual(os.listdir(os.path.join(self.queue, "tmp")), [])

    def test_kill_right_after_the_250_loses_nothing(self):
        self.ctl.block()  # no attempt can finish before the kill
        srv = self.server()
        ids = [self.send(srv, subject="m%d" % i) for i in range(3)]
        crash(srv)
        self.ctl.unblock()
        self.assertEqual(self.ctl.delivered(), [])
        srv2 = self.server()
        for qid in ids:
            self.wait_log(srv2, r"event=delivered queue-id=%s " % qid)
        subjects = sorted(re.search(rb"Subject: (\w+)", m).group(1) for _, m in
                          self.ctl.delivered())
        self.assertEqual(subjects, [b"m0", b"m1", b"m2"])
        self.assertEqual(self.ids(), [])

    def test_kill_during_a_delivery_redelivers_once(self):
        self.ctl.block()
        srv = self.server("--queue-workers=1")
        qid = self.send(srv)
        wait_for(self.ctl.started, "the command to start")
        crash(srv)  # the command dies too, mid-delivery, as at a power cut
        self.assertEqual(self.ctl.log(), [])
        self.ctl.unblock()
        self.assertEqual(self.ids(), [qid])
        srv2 = self.server()
        self.wait_log(srv2, r"event=delivered queue-id=%s attempts=1 " % qid)
        self.assertEqual(len(self.ctl.delivered()), 1)

    def test_kill_of_the_daemon_alone_mid_delivery_delivers_once(self):
        # kill -9 of the daemon's own process: its worker finishes the
        # delivery and removes the message; the next daemon's runner
        # finds it locked meanwhile and never starts it a second time
        srv, qid, srv2 = self.kill_daemon_mid_delivery()
        self.wait_log(srv2, r"event=queue-runner-start ")
        self.ctl.unblock()
        wait_for(lambda: self.ids() == [], "the message to leave the queue")
        sentinel = self.send(srv2, subject="sentinel")
        self.wait_log(srv2, r"event=delivered queue-id=%s " % sentinel)
        subjects = sorted(re.search(rb"Subject: (\w+)", m).group(1) for _, m in
                          self.ctl.delivered())
        self.assertEqual(subjects, [b"first", b"sentinel"])
        self.assertRegex(srv.log(), r"event=delivered queue-id=%s attempts=1 " % qid)

    def test_a_live_writer_in_tmp_is_left_alone(self):
        for d in ("tmp", "q", "failed"):
            os.makedirs(os.path.join(self.queue, d), 0o700)
        os.chmod(self.queue, 0o700)
        # a message being written right now, by a process that runs (this one)
        live = os.path.join(self.queue, "tmp", "000000000000000000000000C.%d" % os.getpid())
        os.mkdir(live, 0o700)
        srv = self.server()
        self.wait_log(srv, r"event=queue-runner-start .*cleaned=0")
        self.assertTrue(os.path.isdir(live))

    def test_leftovers_in_tmp_are_removed_at_start(self):
        os.makedirs(os.path.join(self.queue, "tmp"), 0o700)
        for d in ("q", "failed"):
            os.makedirs(os.path.join(self.queue, d), 0o700)
        os.chmod(self.queue, 0o700)
        # a writer that died (pid 2^22+1 is above any pid_max default) and a removal cut short
        for name in ("000000000000000000000000A.4194305", "000000000000000000000000B.del"):
            os.mkdir(os.path.join(self.queue, "tmp", name), 0o700)
            with open(os.path.join(self.queue, "tmp", name, "msg"), "w") as f:
                f.write("partial")
        srv = self.server()
        self.wait_log(srv, r"event=queue-runner-start .*cleaned=2")
        self.assertEqual(os.listdir(os.path.join(self.queue, "tmp")), [])


class Storage(Base):
    def test_mockmta_queue_delivers_into_the_mailbox(self):
        box = os.path.join(self.base, "box.mbox")
        srv = harness.Server("--queue=" + self.queue, mailbox=box, personality="mockmta")
        self.addCleanup(stop, srv)
        qid = self.send(srv, sender="s@a.test", rcpts=("r@b.test", "bcc@b.test"))
        self.wait_log(srv, r"event=delivered queue-id=%s attempts=1 " % qid)
        with open(box, "rb") as f:
            text = f.read()
        self.assertTrue(text.startswith(b"From s@a.test "), text[:80])
        self.assertIn(b"\nReturn-Path: <s@a.test>\n", text)
        self.assertIn(b"<r@b.test>,", text)
        self.assertIn(b"<bcc@b.test>", text)
        self.assertIn(b"\nSubject: hello\n", text)
        self.assertEqual(self.ids(), [])


class Stop(Base):
    def test_sigterm_lets_a_running_delivery_finish_and_keeps_the_rest(self):
        self.ctl.block()
        srv = self.server("--queue-workers=1")
        first = self.send(srv, subject="first")
        wait_for(self.ctl.started, "the delivery to start")
        second = self.send(srv, subject="second")
        srv.proc.send_signal(signal.SIGTERM)
        self.wait_log(srv, r"event=queue-runner-stopping busy=1")
        self.assertIsNone(srv.proc.poll(), "the daemon ended before its delivery")
        self.ctl.unblock()
        self.assertEqual(srv.proc.wait(timeout=HANG), 0)
        stop(srv)
        self.assertRegex(srv.log(), r"event=delivered queue-id=%s " % first)
        self.assertEqual(self.ids(), [second])  # not started: still queued
        self.assertEqual(len(self.ctl.delivered()), 1)


class FullDisk(Base):
    def test_full_tmpfs_is_452_and_leaves_no_partial_file(self):
        self.tmpfs_queue("size=256k")
        self.ctl.block()  # keep what fits queued, so that the disk stays full
        srv = self.server()
        small = self.send(srv, subject="fits")
        c = srv.raw(timeout=HANG).greet().data()
        c.send((b"z" * 900 + b"\r\n") * 400 + b".\r\n")  # 360 KB > the disk
        c.expect(452, "4.3.1 Insufficient system storage")
        c.cmd("QUIT", 221)
        self.assertEqual(self.ids(), [small])
        self.assertEqual(os.listdir(os.path.join(self.queue, "tmp")), [])
        self.assertRegex(srv.log(), r'event=queue-error queue=\S+ error="cannot write the '
                                    r'message: No space left on device"')
        self.ctl.unblock()
        self.wait_log(srv, r"event=delivered queue-id=%s " % small)
        self.assertEqual(len(self.ctl.delivered()), 1)


class Durability(Base):
    def test_a_failed_fsync_is_451_and_leaves_nothing(self):
        # every fsync fails (tests/tools/failsync.c): no 250 for what is not on disk
        srv = self.server(prefix=[os.environ["SMTPIPE_FAILSYNC"]])
        c = srv.raw().greet()
        c.message(b"Subject: lost\r\n\r\nnot durable\r\n.\r\n", want=451)
        c.cmd("QUIT", 221)
        self.assertEqual(self.ids(), [])
        self.assertEqual(os.listdir(os.path.join(self.queue, "tmp")), [])
        self.assertRegex(srv.log(), r'event=queue-error queue=\S+ error="cannot write the '
                                    r'message: Input/output error"')
        self.assertEqual(self.ctl.log(), [])


class Admin(Base):
    def test_list_and_json_while_the_runner_works(self):
        self.ctl.block()
        srv = self.server("--queue-workers=1")
        first = self.send(srv, sender="x@a.test", rcpts=("r1@b.test", "r2@b.test"))
        second = self.send(srv, subject="second")
        wait_for(self.ctl.started, "the first delivery to start")
        r = self.admin("--queue-list")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 2, r.stdout)
        lines.sort(key=lambda l: not l.startswith(first))
        self.assertRegex(lines[0], r"^%s queued +age=\d+s size=\d+ attempts=0 from=<x@a.test> "
                                   r"to=<r1@b.test>,<r2@b.test> last-error=\"\"$" % first)
        r = self.admin("--queue-list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout)
        got.sort(key=lambda m: m["id"] != first)
        self.assertEqual([m["id"] for m in got], [first, second])
        self.assertEqual(got[0]["recipients"], ["r1@b.test", "r2@b.test"])
        self.assertEqual(got[0]["sender"], "x@a.test")
        self.assertEqual(got[1]["attempts"], 0)
        self.assertGreater(got[0]["size"], 0)
        # a message being delivered cannot be deleted from under the command
        r = self.admin("--queue-delete=" + first)
        self.assertEqual(r.returncode, 1)
        self.assertIn("being delivered", r.stderr)
        self.ctl.unblock()
        self.wait_log(srv, r"event=delivered queue-id=%s " % second)
        self.wait_log(srv, r"event=delivered queue-id=%s " % first)
        self.assertEqual(json.loads(self.admin("--queue-list", "--json").stdout), [])

    def test_sigusr1_to_every_process_cuts_no_session(self):
        # "pkill -USR1 smtpipe" reaches the sessions too: they must go on
        srv = self.server()
        c = srv.raw().greet()
        pid = int(self.wait_log(srv, r"event=session-start pid=(\d+)")[0])
        os.kill(pid, signal.SIGUSR1)
        self.wait_log(srv, r"event=queue-runner-start ")
        c.cmd("NOOP", 250)
        lines = c.message(b"Subject: on\r\n\r\nstill here\r\n.\r\n", 250)
        self.assertRegex(lines[-1], "queued as")
        c.cmd("QUIT", 221)
        self.assertNotIn("session-crashed", srv.log())

    def test_deferred_message_shows_its_last_error(self):
        self.ctl.seq([75])
        srv = self.server("--queue-retry=3600", "--queue-retry-max=3600")
        qid = self.send(srv)
        self.wait_log(srv, r"event=deferred queue-id=%s " % qid)
        got = json.loads(self.admin("--queue-list", "--json").stdout)
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["attempts"], 1)
        self.assertEqual(got[0]["last_error"],
                         "451 4.3.0 Temporary failure (delivery command exit 75)")
        self.assertGreater(got[0]["next_attempt"], time.time() + 1000)

    def test_delete_and_requeue(self):
        self.ctl.always("b@b.test", 67)
        srv = self.server()
        qid = self.send(srv, sender="")
        self.wait_log(srv, r"event=failed queue-id=%s " % qid)
        os.unlink(os.path.join(self.ctl.d, "always-b@b.test"))
        r = self.admin("--queue-requeue=" + qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "requeued %s\n" % qid)
        self.wait_log(srv, r"event=delivered queue-id=%s attempts=1 " % qid)
        self.assertEqual(self.ids("failed"), [])
        self.assertEqual(len(self.ctl.delivered()), 1)
        # delete: a deferred message is gone for good
        self.ctl.seq([75])
        stop(srv)
        srv = self.server("--queue-retry=3600", "--queue-retry-max=3600")
        qid = self.send(srv)
        self.wait_log(srv, r"event=deferred queue-id=%s " % qid)
        r = self.admin("--queue-delete=" + qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.ids(), [])
        r = self.admin("--queue-delete=" + qid)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no message", r.stderr)
        r = self.admin("--queue-requeue=../../etc")
        self.assertEqual(r.returncode, 3)
        self.assertIn("is not a queue ID", r.stderr)

    def test_sigusr1_and_queue_flush_wake_the_runner(self):
        self.ctl.seq([75, 0, 75, 0])
        srv = self.server("--queue-retry=3600", "--queue-retry-max=3600")
        qid = self.send(srv)
        self.wait_log(srv, r"event=deferred queue-id=%s attempts=1 .* in=3600" % qid)
        srv.proc.send_signal(signal.SIGUSR1)
        self.wait_log(srv, r"event=delivered queue-id=%s attempts=2 " % qid)
        qid = self.send(srv)
        self.wait_log(srv, r"event=deferred queue-id=%s attempts=1 .* in=3600" % qid)
        r = self.admin("--queue-flush")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_log(srv, r"event=delivered queue-id=%s attempts=2 " % qid)
        stop(srv)
        r = self.admin("--queue-flush")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no queue runner is running", r.stderr)


class FlushAsRoot(Base):
    def test_root_signals_only_a_process_of_the_queue_owner(self):
        # DIR/lock is written by the queue's owner: one that names another
        # process must not turn root's --queue-flush into a kill -USR1 of it
        self.assertEqual(os.geteuid(), 0, "needs root and the user nobody")
        os.chmod(self.base, 0o755)
        for d in ("", "tmp", "q", "failed"):
            os.makedirs(os.path.join(self.queue, d), 0o700, exist_ok=True)
            os.chown(os.path.join(self.queue, d), 65534, 65534)
        victim = subprocess.Popen(["sleep", "600"])
        self.addCleanup(victim.wait)
        self.addCleanup(victim.kill)
        def as_nobody():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        lock = os.path.join(self.queue, "lock")
        holder = subprocess.Popen(["flock", lock, "sh", "-c",
                                   'echo "$0" > "$1"; echo locked; exec sleep 600',
                                   str(victim.pid), lock], stdout=subprocess.PIPE, text=True,
                                  preexec_fn=as_nobody, start_new_session=True)
        self.addCleanup(holder.wait)
        self.addCleanup(os.killpg, holder.pid, signal.SIGKILL)  # flock and its sleep
        self.assertEqual(holder.stdout.readline(), "locked\n")
        r = self.admin("--queue-flush")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("not a process of the queue's owner", r.stderr)
        self.assertIsNone(victim.poll(), "the process named in DIR/lock got SIGUSR1")


class Inetd(Base):
    def inetd_send(self, n, subject="inetd"):
        def script(c):
            c.greet()
            for i in range(n):
                lines = c.message(("Subject: %s%d\r\n\r\nx\r\n.\r\n" % (subject, i)).encode())
                self.assertRegex(lines[-1], r"queued as [0-9A-F]{25}$")
            c.cmd("QUIT", 221)
        rc, err = harness.run_inetd(["--queue=" + self.queue, "--command=" + self.ctl.command()],
                                    script)
        self.assertEqual(rc, 0, err)

    def test_inetd_queues_and_exits_and_queue_run_delivers(self):
        self.inetd_send(3)
        self.assertEqual(len(self.ids()), 3)
        self.assertEqual(self.ctl.log(), [])  # queued, not delivered
        r = self.admin("--queue-run", "--command=" + self.ctl.command())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.ctl.delivered()), 3)
        self.assertEqual(self.ids(), [])

    def test_queue_run_leaves_what_is_not_due(self):
        self.ctl.seq([75])
        self.inetd_send(1)
        r = self.admin("--queue-run", "--command=" + self.ctl.command())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([st for st, _, _ in self.ctl.log()], ["75"])
        self.assertEqual(len(self.ids()), 1)  # deferred: due in 60 s, not now
        r = self.admin("--queue-run", "--command=" + self.ctl.command())
        self.assertEqual(len(self.ctl.log()), 1)

    def test_two_queue_runs_at_once_deliver_each_message_once(self):
        self.inetd_send(6)
        self.ctl.block()
        argv = [harness.binary(), "--queue=" + self.queue, "--queue-run",
                "--command=" + self.ctl.command()]
        first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(self.ctl.started, "the first runner's delivery")
        second = subprocess.run(argv, capture_output=True, text=True, timeout=HANG)
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertIn("another queue runner (pid %d) holds" % first.pid, second.stderr)
        self.ctl.unblock()
        out, err = first.communicate(timeout=HANG)
        self.assertEqual(first.returncode, 0, err)
        subjects = sorted(re.search(rb"Subject: (\w+)", m).group(1) for _, m in
                          self.ctl.delivered())
        self.assertEqual(subjects, [b"inetd%d" % i for i in range(6)])
        self.assertEqual(self.ids(), [])

    def test_the_daemons_runner_waits_for_a_queue_run_to_end(self):
        self.inetd_send(1)
        self.ctl.block()
        argv = [harness.binary(), "--queue=" + self.queue, "--queue-run",
                "--command=" + self.ctl.command()]
        first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(first.kill)
        wait_for(self.ctl.started, "the queue run's delivery")
        srv = self.server()
        self.wait_log(srv, r"event=queue-locked holder=%d waiting" % first.pid)
        self.ctl.unblock()
        first.communicate(timeout=HANG)
        self.assertEqual(first.returncode, 0)
        self.wait_log(srv, r"event=queue-runner-start ")
        qid = self.send(srv, subject="daemon")
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)
        subjects = sorted(re.search(rb"Subject: (\w+)", m).group(1) for _, m in
                          self.ctl.delivered())
        self.assertEqual(subjects, [b"daemon", b"inetd0"])

    def test_queue_run_beside_a_running_daemon_does_nothing(self):
        self.ctl.block()
        srv = self.server()
        qid = self.send(srv)
        wait_for(self.ctl.started, "the daemon's delivery")
        r = self.admin("--queue-run", "--command=" + self.ctl.command())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("another queue runner", r.stderr)
        self.ctl.unblock()
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)
        self.assertEqual(len(self.ctl.delivered()), 1)


class Hardening(Base):
    def start_fails(self, why):
        r = subprocess.run([harness.binary(), "--port=0", "--queue=" + self.queue,
                            "--command=" + self.ctl.command()],
                           capture_output=True, text=True, timeout=HANG)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(why, r.stderr)

    def test_group_writable_queue_refused(self):
        os.mkdir(self.queue, 0o700)
        os.chmod(self.queue, 0o770)
        self.start_fails("writable by group or others")

    def test_symbolic_link_refused(self):
        os.mkdir(os.path.join(self.base, "elsewhere"), 0o700)
        os.symlink(os.path.join(self.base, "elsewhere"), self.queue)
        self.start_fails("it is a symbolic link")

    def test_queue_of_another_user_refused(self):
        os.mkdir(self.queue, 0o700)
        os.chown(self.queue, 65534, 65534)
        self.start_fails("owned by another user")

    def test_with_user_the_queue_belongs_to_that_user(self):
        self.assertEqual(os.geteuid(), 0, "--user needs root")
        os.chmod(self.base, 0o755)
        os.chmod(self.ctl.d, 0o777)
        os.chmod(os.path.join(self.ctl.d, "msgs"), 0o777)
        os.chmod(os.path.join(self.ctl.d, "seq"), 0o666)
        # made after the drop to --user: its parent is root's, so made for it here
        os.mkdir(self.queue, 0o700)
        os.chown(self.queue, 65534, 65534)
        srv = self.server("--user=nobody")
        qid = self.send(srv)
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)
        for d in ("", "tmp", "q", "failed"):
            self.assertEqual(os.stat(os.path.join(self.queue, d)).st_uid, 65534)


class Options(unittest.TestCase):
    def run_opts(self, *args):
        return subprocess.run([harness.binary()] + list(args), capture_output=True, text=True,
                              timeout=HANG)

    def test_bad_values(self):
        for args, why in ((["--queue=/x", "--queue-lifetime=5w"], "is not a duration"),
                          (["--queue=/x", "--queue-lifetime=0"], "is not a duration"),
                          (["--queue-list"], "need --queue=DIR"),
                          (["--queue=/x", "--json"], "--json goes with --queue-list"),
                          (["--queue=/x", "--queue-list", "--queue-flush"], "give one of"),
                          (["--queue=/x", "--queue-retry=10", "--queue-retry-max=5"],
                           "is below --queue-retry")):
            r = self.run_opts(*args)
            self.assertEqual(r.returncode, 3, (args, r.stderr))
            self.assertIn(why, r.stderr, args)


if __name__ == "__main__":
    harness.main()
