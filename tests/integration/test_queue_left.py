"""test_queue_left.py - the three weaknesses the queue's first round left:
a bounce sent twice when DIR/failed cannot be written, a state file
whose far-future "next" waits for --queue-flush, and a DIR/lock removed
or replaced under a running runner.

Real parts only: the smtpipe binary, a real SMTP client, a recording
shell command, a real tmpfs that runs out of inodes, real flocks. Every
wait is for a log line, a file or an exit, with a bound that only guards
against a hang.

The helpers (the recording command, Ctl, Base) are test_queue.py's.
"""
import fcntl
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import wait_for  # noqa: E402
from test_queue import Base  # noqa: E402


def write_state(path, **fields):
    """replace a message's state file whole, as an editor does (a new
    file renamed over the old one), with fields changed"""
    with open(path) as f:
        lines = dict(l.split("=", 1) for l in f.read().splitlines())
    lines.update({k.replace("_", "-"): str(v) for k, v in fields.items()})
    with open(path + ".edit", "w") as f:
        f.write("".join("%s=%s\n" % kv for kv in lines.items()))
    os.rename(path + ".edit", path)


FAR = 32503680000  # 3000-01-01, in epoch seconds


class Deferred(Base):
    def deferred_one(self):
        """a message whose first attempt failed with 75 and whose next
        one is an hour off; its ID. The server is stopped."""
        self.ctl.seq([75])
        srv = harness.Server("--queue=" + self.queue, "--queue-retry=3600",
                             "--queue-retry-max=3600", command=self.ctl.command())
        try:
            qid = self.send(srv)
            self.wait_log(srv, r"event=deferred queue-id=%s " % qid)
        finally:
            srv.stop()
        return qid


class FarFuture(Deferred):
    def test_a_far_future_next_waits_at_most_retry_max_after_the_state_was_written(self):
        # a state edited by hand (or garbled) to a next attempt in the
        # year 3000, its last attempt too: the runner waits at most
        # --queue-retry-max after the state was written, says so in one
        # line, and delivers, with no --queue-flush
        qid = self.deferred_one()
        write_state(os.path.join(self.queue, "q", qid, "state"), next=FAR, last_ms=FAR * 1000)
        srv = self.server()  # --queue-retry-max=2
        self.wait_log(srv, r"event=queue-next-clamped queue-id=%s next=%d " % (qid, FAR))
        self.wait_log(srv, r"event=delivered queue-id=%s attempts=2 " % qid)
        self.assertEqual(len(self.ctl.delivered()), 1)
        self.assertEqual(srv.log().count("event=queue-next-clamped"), 1)
        self.assertNotIn("event=queue-flush", srv.log())

    def test_the_runners_own_backoff_is_never_clamped(self):
        # a next attempt the runner set itself is within --queue-retry-max
        # of the state's writing, however long the delivery took
        self.ctl.seq([75, 75, 75, 0])
        srv = self.server()
        qid = self.send(srv)
        self.wait_log(srv, r"event=delivered queue-id=%s attempts=4 " % qid)
        self.assertNotIn("event=queue-next-clamped", srv.log())


class BounceOnce(Base):
    """A permanent failure bounces once, whatever step after the bounce
    fails and however often it is retried."""

    def dsns(self):
        return [m for a, m in self.ctl.delivered() if a == "-f MAILER-DAEMON -- a@a.test"]

    def attempts_on_b(self):
        return [st for st, a, _ in self.ctl.log() if a.endswith("-- b@b.test")]

    def settled(self, srv, qid):
        """the message in failed/, its bounce delivered, q/ empty"""
        self.wait_log(srv, r"event=failed queue-id=%s " % qid)
        wait_for(lambda: self.ids() == [] and self.dsns(), "the bounce to go out")
        self.assertEqual(self.ids("failed"), [qid])
        self.assertEqual(sorted(os.listdir(os.path.join(self.queue, "failed", qid))),
                         ["env", "msg", "state"])  # no bounce left behind in it
        wait_for(lambda: os.listdir(os.path.join(self.queue, "tmp")) == [],
                 "the delivered bounce's removal")

    def test_a_failed_that_cannot_take_the_message_never_doubles_the_bounce(self):
        # the move into DIR/failed fails after the bounce went into DIR/q
        # (here: failed/ID is taken; a full disk on a filesystem whose
        # rename needs a block does the same), and keeps failing for a
        # while: every retry must finish the move, never run the command
        # again nor make a second bounce
        self.ctl.always("b@b.test", 67)
        self.ctl.block()
        srv = self.server()
        qid = self.send(srv)
        wait_for(self.ctl.started, "the command to start")
        taken = os.path.join(self.queue, "failed", qid)
        os.mkdir(taken, 0o700)
        with open(os.path.join(taken, "x"), "w"):
            pass
        self.ctl.unblock()
        self.wait_log(srv, r"event=queue-error queue-id=%s error=\"cannot move to failed: "
                           r"File exists\"" % qid, count=3)
        shutil.rmtree(taken)
        self.settled(srv, qid)
        self.assertEqual(len(re.findall(r"event=bounced ", srv.log())), 1, srv.log())
        self.assertEqual(len(self.dsns()), 1)
        self.assertEqual(self.attempts_on_b(), ["67"])
        self.assertRegex(srv.log(), r"event=failed queue-id=%s attempts=1 .* resumed" % qid)
        # requeued, the message is live again: delivered, not moved back unseen
        os.unlink(os.path.join(self.ctl.d, "always-b@b.test"))
        r = self.admin("--queue-requeue=" + qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)
        self.assertEqual(self.attempts_on_b(), ["67", "0"])

    def test_a_full_disk_after_the_bounce_was_made_never_doubles_it(self):
        # a tmpfs that has exactly the inodes the bounce takes (its
        # directory, msg and env) and not one more: what comes after the
        # bounce cannot be written, again and again, until space is freed
        self.tmpfs_queue("size=4m,nr_inodes=200")
        self.ctl.always("b@b.test", 67)
        self.ctl.block()
        srv = self.server()
        qid = self.send(srv)
        wait_for(self.ctl.started, "the command to start")
        fill = os.path.join(self.queue, "fill")
        os.mkdir(fill, 0o700)
        n = 0
        try:  # the inodes run out
            while True:
                open(os.path.join(fill, str(n)), "w").close()
                n += 1
        except OSError as e:
            self.assertEqual(e.errno, 28, e)  # ENOSPC
        for i in range(3):
            os.unlink(os.path.join(fill, str(n - 1 - i)))
        self.ctl.unblock()
        self.wait_log(srv, r"event=queue-error queue-id=%s .*No space left on device" % qid,
                      count=3)
        shutil.rmtree(fill)
        self.settled(srv, qid)
        self.assertEqual(len(re.findall(r"event=bounced ", srv.log())), 1, srv.log())
        self.assertEqual(len(self.dsns()), 1)


class Resume(Deferred):
    """What a kill between the steps of giving up leaves, taken up by the
    next daemon at the step it reached (made here by hand, as a SIGKILL
    at that moment would leave it)."""

    BID = "6B0F2E9736C01B0C20962D515"

    def given_up(self, staged):
        qid = self.deferred_one()
        self.ctl.seq([])  # what the command does next: exit 0 (or always-RCPT)
        mdir = os.path.join(self.queue, "q", qid)
        write_state(os.path.join(mdir, "state"), gave_up="failed",
                    bounce=self.BID, error="554%205.3.0%20gone")
        if staged:
            b = os.path.join(mdir, "bounce")
            os.mkdir(b, 0o700)
            for name, text in (("msg", "Subject: staged\n\nreport\n"),
                               ("env", "smtpipe-queue=1\nid=%s\narrival=%d\nsender=\n"
                                       "rcpt=a@a.test\n" % (self.BID, int(time.time())))):
                with open(os.path.join(b, name), "w") as f:
                    f.write(text)
                os.chmod(os.path.join(b, name), 0o600)
        return qid

    def test_a_staged_bounce_is_queued_once_and_the_message_never_retried(self):
        self.ctl.always("b@b.test", 75)
        qid = self.given_up(staged=True)
        srv = self.server()
        self.wait_log(srv, r"event=bounced queue-id=%s bounce-id=%s to=\"a@a.test\"" %
                      (qid, self.BID))
        self.wait_log(srv, r"event=failed queue-id=%s attempts=1 .* resumed" % qid)
        self.wait_log(srv, r"event=delivered queue-id=%s " % self.BID)
        self.assertEqual(self.ids("failed"), [qid])
        self.assertEqual(sorted(os.listdir(os.path.join(self.queue, "failed", qid))),
                         ["env", "msg", "state"])
        self.assertEqual([a for st, a, _ in self.ctl.log()],
                         ["-f a@a.test -- b@b.test", "-f MAILER-DAEMON -- a@a.test"])

    def test_a_bounce_queued_before_the_kill_is_not_made_again(self):
        self.ctl.always("b@b.test", 75)
        qid = self.given_up(staged=False)
        srv = self.server()
        self.wait_log(srv, r"event=failed queue-id=%s attempts=1 .* resumed" % qid)
        self.assertEqual(self.ids("failed"), [qid])
        self.assertNotIn("event=bounced", srv.log())
        self.assertEqual([a for st, a, _ in self.ctl.log()], ["-f a@a.test -- b@b.test"])

    def test_a_message_holding_a_staged_bounce_can_be_deleted(self):
        qid = self.given_up(staged=True)
        r = self.admin("--queue-delete=" + qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.ids(), [])
        self.assertEqual(os.listdir(os.path.join(self.queue, "tmp")), [])


class Lock(Base):
    """DIR/lock removed or replaced under a running runner: two runners
    never run one queue, and the runner makes the file its own again."""

    def lock_text(self):
        try:
            with open(os.path.join(self.queue, "lock")) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def check_alone_then_restored(self, srv, pid):
        # a --queue-run now must find the daemon's runner, as before
        r = self.admin("--queue-run", "--command=" + self.ctl.command())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("another queue runner", r.stderr)
        self.assertNotIn("event=queue-runner-start", r.stderr)
        # and the file names the runner again, so --queue-flush reaches it
        wait_for(lambda: self.lock_text() == "%d\n" % pid, "DIR/lock to name the runner")
        self.wait_log(srv, r"event=queue-lock-restored pid=%d" % pid)
        before = srv.log().count("event=queue-flush ")
        r = self.admin("--queue-flush")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("pid %d" % pid, r.stdout)
        wait_for(lambda: srv.log().count("event=queue-flush") > before, "the flush")
        qid = self.send(srv)
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)

    def started(self):
        """a daemon, and the pid of its runner, which DIR/lock names"""
        srv = self.server()
        pid = int(self.wait_log(srv, r"event=queue-runner-start pid=(\d+) ")[0])
        self.assertEqual(self.lock_text(), "%d\n" % pid)
        return srv, pid

    def test_a_removed_lock_lets_no_second_runner_in(self):
        srv, pid = self.started()
        os.unlink(os.path.join(self.queue, "lock"))
        self.check_alone_then_restored(srv, pid)

    def test_a_replaced_lock_lets_no_second_runner_in(self):
        srv, pid = self.started()
        lock = os.path.join(self.queue, "lock")
        with open(lock + ".new", "w") as f:
            f.write("4194305\n")  # no such process
        os.chmod(lock + ".new", 0o600)
        os.rename(lock + ".new", lock)
        self.check_alone_then_restored(srv, pid)

    def test_a_new_lock_held_by_another_process_is_yielded_to(self):
        # a runner of an earlier version locks only the file: when it
        # holds the new DIR/lock, the daemon's runner starts nothing
        # until it can make the file its own
        srv, pid = self.started()
        fd = self.plant_held_lock()
        self.wait_log(srv, r"event=queue-error error=\"cannot make \S+/lock ours again: "
                           r"Resource temporarily unavailable\" waiting")
        fcntl.flock(fd, fcntl.LOCK_UN)
        self.wait_log(srv, r"event=queue-lock-restored pid=%d" % pid)
        qid = self.send(srv)
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)
        self.assertEqual(self.lock_text(), "%d\n" % pid)


if __name__ == "__main__":
    harness.main()
