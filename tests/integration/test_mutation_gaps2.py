"""test_mutation_gaps2.py - promises of --session-reuse and of the
queue's mended weaknesses that a deliberate bug (tests/mutation/
mutations.py) broke without any other test noticing.

Each test names the mutation it was written for (by what it breaks:
the numbers move). Real parts only: the smtpipe binary on a real
socket, real SMTP clients, the recording command of test_queue.py,
real flocks, the processes' own /proc entries. Every wait is for a log
line, a reply, a file or a process, bounded only against a hang.
"""
import base64
import fcntl
import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_queue as tq  # noqa: E402
from harness import wait_for  # noqa: E402
import test_reuse as tr  # noqa: E402

HANG = 60  # seconds: only a guard against a hang


children = harness.children


def tcp_states():
    """{socket inode: TCP state (hex, as /proc/net/tcp gives it)}"""
    out = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            f = row.split()
            out[f[9]] = f[3]
    return out


def connections(pid):
    """the TCP sockets pid holds that are not listening ones"""
    states = tcp_states()
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]$", target)
        if m and m.group(1) in states and states[m.group(1)] != "0A":  # 0A: LISTEN
            out.append((fd, states[m.group(1)]))
    return out


class Reuse(unittest.TestCase):
    def test_a_waiting_process_holds_no_connection_of_its_last_client(self):
        # mutation: spare_reuse's close(fd) dropped. The session ended
        # with its 221 and a shutdown, so the client sees nothing; the
        # process would carry one more descriptor of a finished client
        # into every next session, up to N
        with harness.Server(*tr.ONE, "--session-reuse=5", mailbox="mbox") as srv:
            for k in range(1, 4):
                tr.send(srv, 1)
                pid = tr.connect_pids(srv.wait_log(tr.closes(k)))[-1]
                srv.wait_log("[%d]: event=reuse-wait " % pid, count=k)
                self.assertEqual(connections(pid), [], "after client %d" % k)

    def test_a_sighup_during_the_session_keeps_the_process_from_waiting_again(self):
        # mutation: spare_reuse no longer compares the generation. The
        # process would give its slot back and wait again (only the
        # retired generation's pipe, at EOF, then ends it): test_reuse.py
        # sends its SIGHUP while the process waits, never mid-session
        with harness.Server(*tr.ONE, "--session-reuse=5", mailbox="mbox") as srv:
            c = srv.raw(timeout=HANG)
            c.greet()
            pid = tr.connect_pids(srv.wait_log("event=connect "))[0]
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_log("event=sighup")
            c.message(b"Subject: x\r\n\r\nbody\r\n.\r\n")
            c.cmd("QUIT", 221)
            c.close()
            wait_for(lambda: not tr.alive(pid), "the process to exit")
            tr.send(srv, 1)
            log = srv.wait_log(tr.closes(2))
            self.assertNotEqual(tr.connect_pids(log)[1], pid)
            self.assertNotIn("[%d]: event=reuse-wait" % pid, log)
            self.assertNotIn("event=session-reuse pid=%d " % pid, log)

    def test_serving_one_client_after_another_is_no_session_cap(self):
        # mutation: notice() no longer counts a returned process out of
        # the daemon's active sessions: never more than one session at a
        # time here, yet the daemon would think all --max-sessions busy
        with harness.Server("--max-sessions=2", "--spare-sessions=1", "--session-reuse=100",
                            mailbox="mbox") as srv:
            for k in range(1, 5):
                tr.send(srv, 1)
                srv.wait_log("event=session-reuse ", count=k)
            pids = tr.connect_pids(srv.log())
            self.assertLess(len(set(pids)), 4, pids)  # some process served twice
            self.assertNotIn("event=session-cap", srv.log())
            self.assertEqual(re.findall(r"event=session-reuse pid=\d+ active=(\d+)", srv.log()),
                             ["0"] * 4)


USER = "usermark-9c2e41"
PASS = "pw-for-usermark-31"


def occurrences(pid, needle):
    """how often needle occurs in pid's writable memory"""
    return sum(data.count(needle) for _, data in harness.writable_memory(pid))


@unittest.skipUnless(os.geteuid() == 0, "reads a non-dumpable process's memory: needs root")
@unittest.skipIf(harness.sanitized(), harness.SANITIZED_MEMORY)
class Wiped(unittest.TestCase):
    def test_who_logged_in_is_gone_before_the_next_client(self):
        # mutation: the session's own state (its copy of the user name,
        # SMTPIPE_AUTH_USER) no longer wiped at the end of session_run;
        # test_reuse.py looks for the password and the text, never the
        # user name. The name is in the configuration (and the command
        # line) too: the waiting process may hold it as often as the
        # spare did before its first client, not once more
        with harness.Server(*tr.ONE, "--session-reuse=5", "--auth=%s,echo %s" % (USER, PASS),
                            mailbox="mbox") as srv:
            spare = wait_for(lambda: children(srv.proc.pid), "the spare")
            self.assertEqual(len(spare), 1, spare)
            before = occurrences(spare[0], USER.encode())
            s = srv.smtp()
            s.ehlo()
            s.login(USER, PASS)
            s.sendmail("a@example.org", ["b@example.org"], "Subject: u\r\n\r\nbody\r\n")
            s.quit()
            pid = tr.connect_pids(srv.wait_log(tr.closes(1)))[0]
            self.assertEqual(pid, spare[0])
            srv.wait_log("[%d]: event=reuse-wait " % pid)
            after = occurrences(pid, USER.encode())
            hits = tr.memory_hits(pid, [base64.b64encode(("\0%s\0%s" % (USER, PASS)).encode())])
        self.assertEqual(hits, {})
        self.assertEqual(after, before)

    def test_the_line_buffer_is_wiped_as_far_as_it_was_filled(self):
        # mutation: smtp_io_free wipes only the start of the buffer.
        # test_reuse.py's needles all sit in the first bytes of what one
        # read brought; here one sits a few hundred bytes in, behind a
        # long header line, and then far in, behind a longer one
        needles = [b"FARMARK-%d-4b7e" % k for k in (1, 2)]
        body = ("X-Pad: %s\r\n%s\r\nX-Pad2: %s\r\n%s\r\n\r\ntext\r\n"
                % ("p" * 300, needles[0].decode(), "q" * 3000, needles[1].decode()))
        with harness.Server(*tr.ONE, "--session-reuse=5", mailbox="mbox") as srv:
            with srv.smtp() as s:
                s.sendmail("a@example.org", ["b@example.org"], body)
            pid = tr.connect_pids(srv.wait_log(tr.closes(1)))[0]
            srv.wait_log("[%d]: event=reuse-wait " % pid)
            hits = tr.memory_hits(pid, needles)
        self.assertEqual(hits, {})


class Lock(tq.Base):
    def runner(self):
        srv = self.server()
        pid = int(self.wait_log(srv, r"event=queue-runner-start pid=(\d+) ")[0])
        return srv, pid

    def test_a_lock_made_ours_again_is_held(self):
        # mutation: queue_lock_check closes the new DIR/lock after
        # writing its pid into it, instead of keeping it: the file names
        # the runner, but nothing holds it, and a runner of an earlier
        # version (which locks only the file) would take the queue
        srv, pid = self.runner()
        os.unlink(os.path.join(self.queue, "lock"))
        self.wait_log(srv, r"event=queue-lock-restored pid=%d" % pid)
        fd = os.open(os.path.join(self.queue, "lock"), os.O_RDWR)
        self.addCleanup(os.close, fd)
        with self.assertRaises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def test_no_worker_starts_while_another_process_holds_the_new_lock(self):
        # mutation: the runner scans while it yields to a process
        # holding the new DIR/lock. test_queue_left.py sends its message
        # only after the holder let go. Here one is queued meanwhile,
        # then two flushes: the runner handles signals one at a time and
        # scans in between, so once it logged the second flush, a scan
        # that ignored the holder has forked its worker (still there:
        # its command waits on the FIFO)
        self.ctl.block()
        srv, pid = self.runner()
        fd = self.plant_held_lock()
        self.wait_log(srv, r"ours again: Resource temporarily unavailable\" waiting")
        qid = self.send(srv)
        for k in (1, 2):
            srv.proc.send_signal(signal.SIGUSR1)
            self.wait_log(srv, r"event=queue-flush", count=k)
        self.assertEqual(children(pid), [], "a worker started while another held DIR/lock")
        self.assertEqual(self.ctl.started(), [])
        fcntl.flock(fd, fcntl.LOCK_UN)
        self.wait_log(srv, r"event=queue-lock-restored pid=%d" % pid)
        wait_for(self.ctl.started, "the command to start")
        self.ctl.unblock()
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)


if __name__ == "__main__":
    harness.main()
