"""test_mutation_gaps.py - promises that a deliberate bug (see
tests/mutation/mutations.py) broke without any other test noticing.

Each test names the mutation it was written for. Real parts only: the
smtpipe binary, its queue directory, the recording delivery command of
test_queue.py, tests/tools/failsync for a disk that fails fsync. Every
wait is for a log line, a file or a process, bounded only against a hang.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HANG, alive, children, wait_for  # noqa: E402
import test_pool as tp  # noqa: E402
import test_queue as tq  # noqa: E402


def proc_state(pid):
    """the state letter of /proc/PID/stat (R, S, T, Z...)"""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class QueueWorkers(tq.Base):
    def test_queue_workers_1_runs_one_delivery_at_a_time(self):
        # mutation: the runner's "busy >= --queue-workers" check off by one.
        # Three messages are due at once; while the first delivery waits,
        # the runner is made to scan twice more (SIGUSR1, each one's log
        # line seen before the next is sent: the loop went round), and
        # still has one worker, the one --queue-workers=1 allows.
        tq.Inetd.inetd_send(self, 3, subject="w")
        self.ctl.block()
        srv = self.server("--queue-workers=1")
        runner = int(self.wait_log(srv, r"event=queue-runner-start pid=(\d+) workers=1 ")[0])
        wait_for(self.ctl.started, "the first delivery to start")
        for n in (1, 2):
            os.kill(runner, signal.SIGUSR1)
            self.wait_log(srv, r"event=queue-flush(?:\s|$)", count=n)
        self.assertEqual(len(children(runner)), 1, "workers beside the one allowed")
        self.assertEqual(len(self.ctl.started()), 1)
        self.ctl.unblock()
        self.wait_log(srv, r"event=delivered queue-id=", count=3)
        subjects = sorted(re.search(rb"\nSubject: (\S+)\n", m).group(1)
                          for _, m in self.ctl.delivered())
        self.assertEqual(subjects, [b"w0", b"w1", b"w2"])
        self.assertEqual(self.ids(), [])


class RemovalSync(tq.Base):
    def test_a_removal_that_cannot_be_synced_is_logged(self):
        # mutation: queue_remove without the fsync of q/ after its rename.
        # A delivered message's removal is made durable like its arrival;
        # a disk that fails that fsync (failsync, for the runner only: the
        # message was queued on a good one) is reported, with the message's
        # ID, not taken for done.
        tq.Inetd.inetd_send(self, 1, subject="r")
        (qid,) = self.ids()
        log = os.path.join(self.base, "run.log")
        r = subprocess.run([os.environ["SMTPIPE_FAILSYNC"], harness.binary(),
                            "--queue=" + self.queue, "--queue-run", "--log=" + log,
                            "--log-level=debug", "--command=" + self.ctl.command()],
                           capture_output=True, text=True, timeout=HANG)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.ctl.delivered()), 1)
        with open(log) as f:
            text = f.read()
        self.assertRegex(text, r'event=queue-error queue-id=%s error="delivered, but cannot '
                               r'remove it' % qid)
        self.assertRegex(text, r"event=delivered queue-id=%s attempts=1 " % qid)


class RequeueLifetime(tq.Base):
    def test_a_requeued_expired_message_gets_a_new_lifetime(self):
        # mutation: --queue-requeue keeps the message's old "since". A
        # message that expired, requeued by the administrator, is retried
        # for a whole --queue-lifetime again: its next temporary failure
        # defers it, it does not expire (and bounce) at once a second time.
        # The message is made old by its state file (a message queued six
        # days ago), not by waiting.
        tq.Inetd.inetd_send(self, 1, subject="old")
        (qid,) = self.ids()
        with open(os.path.join(self.queue, "q", qid, "env")) as f:
            arrival = int(re.search(r"^arrival=(\d+)$", f.read(), re.M).group(1))
        with open(os.path.join(self.queue, "q", qid, "state"), "w") as f:
            f.write("attempts=3\nnext=0\nlast-ms=0\nsince=%d\nerror=\n" % (arrival - 6 * 86400))
        self.ctl.always("c@d", 75)
        log = os.path.join(self.base, "run.log")

        def queue_run():
            r = subprocess.run([harness.binary(), "--queue=" + self.queue, "--queue-run",
                                "--log=" + log, "--log-level=debug",
                                "--command=" + self.ctl.command()],
                               capture_output=True, text=True, timeout=HANG)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(log) as f:
                return f.read()

        text = queue_run()
        self.assertRegex(text, r"event=expired queue-id=%s attempts=4 result=451 " % qid)
        self.assertEqual(self.ids("failed"), [qid])
        r = self.admin("--queue-requeue=" + qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.ids("failed"), [])
        text = queue_run()
        self.assertRegex(text, r"event=deferred queue-id=%s attempts=1 result=451 " % qid)
        self.assertEqual(len(re.findall(r"event=expired queue-id=%s " % qid, text)), 1)
        self.assertEqual(self.ids("failed"), [])
        self.assertEqual(self.ids(), [qid])


class MailboxHardLink(unittest.TestCase):
    def test_a_mailbox_with_a_second_hard_link_is_refused(self):
        # mutation: the mailbox's safe_file rules without one_link. README
        # and smtpipe(8) promise the mailbox is used only with one link:
        # in a shared directory a hard link to another file (made by anyone
        # where protected_hardlinks is off; by root here) must not be
        # appended to, at start-up nor per message.
        shared = tempfile.mkdtemp(prefix="smtpipe-shared-")
        self.addCleanup(shutil.rmtree, shared, True)
        os.chmod(shared, 0o1777)
        victim = os.path.join(shared, "victim")
        with open(victim, "w") as f:
            f.write("someone's file\n")
        box = os.path.join(shared, "test.mbox")
        with harness.Server(personality="mockmta", mailbox=box) as srv:
            c = srv.raw()
            c.greet()
            c.message("Subject: 1\r\n\r\nfirst\r\n.\r\n", want=250)
            os.unlink(box)
            os.link(victim, box)
            lines = c.message("Subject: 2\r\n\r\nsecond\r\n.\r\n", want=451)
            self.assertIn("4.3.0", lines[0])
            self.assertRegex(srv.log(), r'event=mailbox-error mailbox=%s error="it has more '
                                        r'than one hard link' % re.escape(box))
            c.cmd("QUIT", 221)
        os.unlink(box)
        os.link(victim, box)  # at start-up too
        r = subprocess.run([harness.mockmta_binary(), "-f", "-p", "0", "--interface=127.0.0.1",
                            "--log=none", box], capture_output=True, text=True,
                           timeout=HANG, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot open mailbox %s for appending: it has more than one hard link"
                      % box, r.stderr)
        with open(victim) as f:
            self.assertEqual(f.read(), "someone's file\n")


class SpareAfterReload(unittest.TestCase):
    def one_round(self):
        """the scenario once: the session's pid and whether it was the old
        spare's, and the new and the rotated log"""
        with harness.Server("--spare-sessions=1", "--max-sessions=1") as srv:
            (old,) = tp.spares(srv, 1)
            self.addCleanup(tp.kill_left, [old])
            os.kill(old, signal.SIGSTOP)
            try:
                wait_for(lambda: proc_state(old) == "T", "the spare to stop")
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=HANG)
                self.addCleanup(s.close)
                rotated = srv.logfile + ".1"
                os.rename(srv.logfile, rotated)
                srv.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: "event=sighup" in srv.log(), "the reload")
                # the spares are retired after that line: a second SIGHUP
                # sent now is read after it, so its line says that is done
                srv.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: srv.log().count("event=sighup") >= 2,
                         "the first SIGHUP handled to its end")
            finally:
                if alive(old):
                    os.kill(old, signal.SIGCONT)
            c = harness.RawClient(0, sock=s, timeout=HANG)
            c.expect(220)
            c.cmd("EHLO c.test", 250)
            c.cmd("QUIT", 221)

            def rotated_log():
                with open(rotated) as f:
                    return f.read()
            wait_for(lambda: "event=close" in srv.log() + rotated_log(), "the session's end")
            pid = int(wait_for(lambda: re.findall(r"event=session-start pid=(\d+)",
                                                  srv.log()), "the session's start")[0])
            return pid == old, srv.log(), rotated_log()

    def test_a_spare_that_takes_its_client_after_sighup_logs_to_the_new_file(self):
        # mutation: a spare that accepted its client after a SIGHUP it was
        # forked before does not reload (spare_reload). The README promises
        # no client accepted after a reload is served with the old log file
        # or certificate. Made to happen: the one spare is stopped, a client
        # waits in the backlog (--max-sessions=1: the stopped spare holds the
        # only slot, so nobody else accepts it), the log is rotated and the
        # SIGHUP handled to its end; the spare, continued, finds both the
        # client and its retire pipe's EOF ready. Which one it takes first
        # is the kernel's choice: a round where it exited (and a new spare
        # served the client) is repeated, up to 30 times.
        for _ in range(30):
            old_served, new, rotated = self.one_round()
            if old_served:
                break
        self.assertTrue(old_served, "in 30 rounds the old spare never took the client")
        self.assertIn("event=close", new)
        self.assertNotIn("event=connect", rotated)

if __name__ == "__main__":
    harness.main()
