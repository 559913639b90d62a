"""test_queue_attack.py - the queue's promises under attack: a careless
administrator who edits or deletes the files of a queued message, a
message that cannot be opened, a worker left over from a killed daemon,
and SIGKILL at random moments across many rounds.

Real parts only: the smtpipe binary, a real SMTP client, a recording
shell command (test_queue.py's), real signals. Every wait is for a log
line, a file or an exit, with a bound that only guards against a hang;
the random pauses before a kill choose the moment, they synchronise
nothing.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import alive, children, wait_for  # noqa: E402
from test_queue import HANG, Base, crash, stop  # noqa: E402


def log_seconds(line):
    """the epoch second of a log line's timestamp"""
    return int(time.mktime(time.strptime(line[:20], "%Y-%m-%dT%H:%M:%SZ")))


class Attack(Base):
    def queued_one(self, subject="victim", **kw):
        """a message stored and left in DIR/q (its first attempt failed
        with 75, the next one is far off); its ID. The server is stopped."""
        self.ctl.seq([75])
        srv = harness.Server("--queue=" + self.queue, "--queue-retry=3600",
                             command=self.ctl.command())
        try:
            qid = self.send(srv, subject=subject, **kw)
            self.wait_log(srv, r"event=deferred queue-id=%s " % qid)
        finally:
            srv.stop()
        return qid

    def attempts_on(self, srv, qid):
        """the runner's log lines about qid from its workers"""
        return [l for l in srv.log().splitlines()
                if "queue-id=%s " % qid in l and
                re.search(r"event=(queue-skip|queue-error|deferred|delivered|failed)", l)]

    def started(self, *args):
        """a daemon on the queue, its runner asked to try everything now"""
        srv = self.server(*args)
        self.wait_log(srv, r"event=queue-runner-start ")
        r = self.admin("--queue-flush")
        self.assertEqual(r.returncode, 0, r)
        return srv

    def sentinel(self, srv):
        """a good message through the same runner, delivered: the runner
        kept working (and had time to make its mistakes meanwhile)"""
        sid = self.send(srv, subject="sentinel")
        self.wait_log(srv, r"event=delivered queue-id=%s " % sid)
        return sid

    def test_a_message_whose_msg_was_deleted_is_set_aside_once(self):
        # an administrator removed msg by hand: the runner must say so and
        # set the message aside, not fork a worker for it in a hot loop
        qid = self.queued_one()
        os.unlink(os.path.join(self.queue, "q", qid, "msg"))
        srv = self.started()
        self.wait_log(srv, r"event=queue-error queue-id=%s " % qid)
        self.sentinel(srv)
        srv.proc.send_signal(signal.SIGUSR1)  # a flush does not wake it either
        self.sentinel(srv)
        self.assertEqual(len(self.attempts_on(srv, qid)), 1, self.attempts_on(srv, qid)[:5])
        self.assertEqual(self.ids("failed"), [qid])
        self.assertEqual([m for _, m in self.ctl.delivered() if b"victim" in m], [])

    def test_a_msg_that_is_a_symbolic_link_is_never_followed_nor_retried_hot(self):
        qid = self.queued_one()
        msg = os.path.join(self.queue, "q", qid, "msg")
        target = os.path.join(self.base, "elsewhere")
        os.rename(msg, target)
        os.symlink(target, msg)
        srv = self.started()
        self.wait_log(srv, r"event=queue-error queue-id=%s " % qid)
        self.sentinel(srv)
        self.assertEqual(len(self.attempts_on(srv, qid)), 1, self.attempts_on(srv, qid)[:5])
        self.assertEqual([m for _, m in self.ctl.delivered() if b"victim" in m], [])
        self.assertTrue(os.path.islink(os.path.join(self.queue, "failed", qid, "msg")))

    def test_an_entry_that_is_not_a_directory_is_logged_and_set_aside(self):
        # q/ID replaced by a symbolic link to the message, or by a plain
        # file: never followed, but never silently ignored either
        for kind in ("symlink", "file"):
            with self.subTest(kind=kind):
                qid = self.queued_one(subject="victim-" + kind)
                entry = os.path.join(self.queue, "q", qid)
                target = os.path.join(self.base, "moved-" + kind)
                os.rename(entry, target)
                if kind == "symlink":
                    os.symlink(target, entry)
                else:
                    with open(entry, "wb") as f:
                        f.write(b"not a message\n")
                srv = self.started()
                self.wait_log(srv, r"event=queue-error queue-id=%s " % qid)
                self.sentinel(srv)
                self.assertEqual([m for _, m in self.ctl.delivered() if b"victim" in m], [])
                self.assertIn(qid, self.ids("failed"))
                if kind == "symlink":
                    self.assertTrue(os.path.islink(os.path.join(self.queue, "failed", qid)))
                stop(srv)

    def test_sigterm_ends_the_daemon_even_with_its_runner_stopped(self):
        # SIGTERM always ends the daemon within a bound: a runner that does
        # not end (stopped by SIGSTOP, or stuck) is killed once its
        # deliveries have had --delivery-timeout and a grace; its queue is
        # untouched, and the next start delivers what it held
        qid = self.queued_one(subject="held")
        srv = self.server("--delivery-timeout=2")
        self.wait_log(srv, r"event=queue-runner-start ")
        runner = int(re.findall(r"event=queue-runner-start pid=(\d+)", srv.log())[0])
        os.kill(runner, signal.SIGSTOP)
        srv.proc.send_signal(signal.SIGTERM)
        self.assertEqual(srv.proc.wait(timeout=HANG), 0, srv.log())
        stop(srv, check=False)  # gone already: this only closes its files
        self.assertIn("event=queue-runner-killed pid=%d" % runner, srv.log())
        self.assertEqual(self.ids(), [qid])
        self.ctl.seq([])
        srv = self.started()
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)

    def test_a_corrupt_state_file_is_reset_and_the_message_delivered(self):
        # the state is bookkeeping: a truncated or garbled one must not
        # cost the message (nor hide it from --queue-list and
        # --queue-requeue in failed/); it is logged and started anew
        for garbage in (b"", b"\x00\xffattempts=zz\n", b"attempts=1\nnext=-5\nsince=-9\n"):
            with self.subTest(state=garbage):
                self.ctl.seq([])
                qid = self.queued_one(subject="victim%d" % len(garbage))
                with open(os.path.join(self.queue, "q", qid, "state"), "wb") as f:
                    f.write(garbage)
                listed = self.admin("--queue-list")
                self.assertIn(qid, listed.stdout, listed)
                srv = self.started()
                self.wait_log(srv, r"event=delivered queue-id=%s " % qid)
                self.assertRegex(srv.log(), r"event=queue-error queue-id=%s .*state" % qid)
                srv.stop()
                srv.stopped = True
                got = [m for _, m in self.ctl.delivered()
                       if b"Subject: victim%d\n" % len(garbage) in m]
                self.assertEqual(len(got), 1)
                self.assertEqual(self.ids(), [])
                self.assertEqual(self.ids("failed"), [])

    def test_a_broken_message_is_listed_and_can_be_deleted(self):
        # what the runner set aside (its msg or env removed by hand) stays
        # visible to --queue-list (text and JSON) and --queue-delete works
        broken = {}
        for part in ("msg", "env"):
            qid = self.queued_one(subject="broken" + part)
            os.unlink(os.path.join(self.queue, "q", qid, part))
            broken[qid] = part
        srv = self.started()
        for qid in broken:
            self.wait_log(srv, r"event=queue-error queue-id=%s " % qid)
        self.assertEqual(self.ids("failed"), sorted(broken))
        text = self.admin("--queue-list")
        js = self.admin("--queue-list", "--json")
        self.assertEqual(text.returncode, 0, text)
        objs = json.loads(js.stdout)
        for qid in broken:
            self.assertRegex(text.stdout, r"(?m)^%s failed .*unreadable" % qid)
            o = [o for o in objs if o["id"] == qid]
            self.assertEqual(len(o), 1, js.stdout)
            self.assertEqual(o[0]["state"], "failed")
            self.assertIn("unreadable", o[0]["last_error"])
        for qid in broken:
            r = self.admin("--queue-delete=" + qid)
            self.assertEqual(r.returncode, 0, r)
        self.assertEqual(self.ids("failed"), [])
        self.assertEqual(self.admin("--queue-list").stdout, "")

    def test_a_worker_left_by_a_killed_daemon_is_not_raced_in_a_hot_loop(self):
        # kill -9 of the daemon alone: its worker goes on with the
        # delivery and holds the message's lock; the next daemon's runner
        # must look at that message no more often than it scans (once a
        # second), not fork a worker after every worker that found it locked
        _, qid, srv2 = self.kill_daemon_mid_delivery()
        self.wait_log(srv2, r"event=queue-skip queue-id=%s reason=locked" % qid, count=3)
        self.ctl.unblock()
        wait_for(lambda: self.ids() == [], "the message to leave the queue")
        self.sentinel(srv2)
        skips = [l for l in srv2.log().splitlines()
                 if "event=queue-skip queue-id=%s " % qid in l]
        # the log's own clock: at most one look per scan, and one more at
        # each edge (never a bound on how long anything took)
        span = log_seconds(skips[-1]) - log_seconds(skips[0])
        self.assertLessEqual(len(skips), span + 3, skips[:5])
        self.assertEqual(sum(1 for _, m in self.ctl.delivered() if b"first" in m), 1)


class WorkerKill(Base):
    def test_a_killed_worker_takes_its_command_along(self):
        # SIGKILL of one worker (the OOM killer, an administrator) while
        # its command runs: as at a power cut, the command must end too,
        # else the runner starts a second command beside the orphan and
        # the message goes out twice though no command had exited 0
        self.ctl.block()
        srv = self.server("--queue-workers=1")
        qid = self.send(srv)
        started = wait_for(self.ctl.started, "the command to start")
        cmd = int(started[0].split(".")[1])
        with open("/proc/%d/stat" % cmd) as f:
            worker = int(f.read().rsplit(")", 1)[1].split()[1])
        os.kill(worker, signal.SIGKILL)
        self.wait_log(srv, r"event=queue-worker-crashed queue-id=%s " % qid)
        wait_for(lambda: not alive(cmd), "the orphaned command to end")
        wait_for(lambda: len(self.ctl.started()) >= 2, "the next attempt to start")
        self.ctl.unblock()
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)
        self.assertEqual(len(self.ctl.delivered()), 1, self.ctl.log())


class PlantedLock(Base):
    def test_a_lock_that_is_not_a_plain_file_is_refused_at_start(self):
        # DIR/lock planted as a symbolic link (or a directory): the runner
        # could never lock it, so a daemon that started would answer 250
        # "queued" for mail that no runner ever delivers; start-up refuses
        for kind in ("symlink", "directory"):
            with self.subTest(kind=kind):
                self.admin("--queue-list")  # makes nothing; the daemon makes DIR
                os.makedirs(self.queue, 0o700, exist_ok=True)
                lock = os.path.join(self.queue, "lock")
                target = os.path.join(self.base, "pwned")
                if kind == "symlink":
                    os.symlink(target, lock)
                else:
                    os.mkdir(lock, 0o700)
                r = subprocess.run([harness.binary(), "--port=0", "--interface=127.0.0.1",
                                    "--queue=" + self.queue, "--command=" + self.ctl.command()],
                                   capture_output=True, text=True, timeout=HANG)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn("lock: ", r.stderr)
                self.assertFalse(os.path.lexists(target))
                (os.unlink if kind == "symlink" else os.rmdir)(lock)
        # and a plain one, or none, is fine
        srv = self.server()
        qid = self.send(srv)
        self.wait_log(srv, r"event=delivered queue-id=%s " % qid)


class Outage(Base):
    def test_upstream_down_then_back_every_message_arrives_once(self):
        # "the upstream down for an hour", accelerated: every attempt fails
        # with 75 while 50 messages come in, each is deferred at least
        # twice, then the upstream is back
        self.ctl.always("b@b.test", 75)
        srv = self.server("--queue-workers=2")
        sent = [self.send(srv, subject="out%d" % i) for i in range(50)]
        for qid in sent:
            self.wait_log(srv, r"event=deferred queue-id=%s attempts=2 " % qid)
        self.assertEqual(self.ctl.delivered(), [])
        os.unlink(os.path.join(self.ctl.d, "always-b@b.test"))
        wait_for(lambda: self.ids() == [], "the queue to empty")
        for qid in sent:
            self.wait_log(srv, r"event=delivered queue-id=%s " % qid)
        got = sorted(re.search(rb"Subject: (\w+)", m).group(1).decode()
                     for _, m in self.ctl.delivered())
        self.assertEqual(got, sorted("out%d" % i for i in range(50)))
        self.assertEqual(self.ids("failed"), [])


class FullDisk(Base):
    def test_a_state_that_cannot_be_written_is_not_retried_in_a_hot_loop(self):
        # a deferred message on a full disk: its new state (the next
        # attempt) cannot be written, so DIR/q still says "due"; the
        # runner must not run the command again at once, and again
        self.tmpfs_queue("size=64k")
        self.ctl.always("b@b.test", 75)
        srv = self.server("--queue-retry=3600", "--queue-retry-max=3600")
        qid = self.send(srv)
        self.wait_log(srv, r"event=deferred queue-id=%s attempts=1 " % qid)
        fd = os.open(os.path.join(self.queue, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:  # the disk fills up
            while os.write(fd, b"x" * 512):
                pass
        except OSError:
            pass
        os.close(fd)
        self.admin("--queue-flush")  # the second attempt, whose state cannot be written
        error = self.wait_log(srv, r".*event=queue-error queue-id=%s error=\"cannot write the "
                                   r"state: No space left on device\"" % qid)[0]
        # watch the runner by its own clock: ask it to flush until its log
        # says three seconds went by
        t0 = log_seconds(error)
        while True:
            before = srv.log().count("event=queue-flush")
            self.admin("--queue-flush")
            line = wait_for(lambda: srv.log().count("event=queue-flush") > before and
                            re.findall(r".*event=queue-flush", srv.log())[-1],
                            "the runner to flush")
            if log_seconds(line) >= t0 + 3:
                break
        attempts = len(self.ctl.log())
        self.assertLessEqual(attempts, 3, "the command ran %d times" % attempts)
        self.assertEqual(self.ids(), [qid])
        srv.stop()
        srv.stopped = True


class KillLoop(Base):
    ROUNDS = 50

    def subjects_in(self, where, suffix=""):
        """the Subject of every message in DIR/where (IDs ending in suffix)"""
        out = set()
        d = os.path.join(self.queue, where)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            if not name.endswith(suffix):
                continue
            try:
                with open(os.path.join(d, name, "msg"), "rb") as f:
                    m = re.search(rb"Subject: (\w+)", f.read())
            except OSError:
                continue
            if m:
                out.add(m.group(1).decode())
        return out

    def delivered_subjects(self):
        out = {}
        for _, m in self.ctl.delivered():
            s = re.search(rb"Subject: (\w+)", m).group(1).decode()
            out[s] = out.get(s, 0) + 1
        return out

    def commands_running(self):
        """pids of delivery commands of this test still running"""
        mark = (self.ctl.d + "/").encode()
        found = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    with open("/proc/%s/cmdline" % p, "rb") as f:
                        if mark in f.read():
                            found.append(int(p))
                except OSError:
                    pass
        return found

    def test_sigkill_at_random_moments_loses_nothing_and_duplicates_only_after_exit_0(self):
        # each round: a daemon, clients sending, some attempts failing
        # with 75, then SIGKILL at a random moment of the daemon alone,
        # its runner alone, or everything at once (a power cut)
        rng = random.Random(int(os.environ.get("SMTPIPE_SEED", "17")))
        accepted, allowed, orphans = set(), set(), []
        self.ctl.seq([rng.choice([0, 0, 75]) for _ in range(400)])
        for rnd in range(self.ROUNDS):
            srv = harness.Server("--queue=" + self.queue, "--queue-retry=1",
                                 "--queue-retry-max=2", command=self.ctl.command())
            self.addCleanup(stop, srv, False)

            def client(rnd=rnd, srv=srv):
                for k in range(3):
                    try:
                        self.send(srv, subject="r%dm%d" % (rnd, k))
                    except Exception:  # the kill cut it: not accepted
                        return
                    accepted.add("r%dm%d" % (rnd, k))

            t = threading.Thread(target=client)
            t.start()
            time.sleep(rng.uniform(0, 0.5))  # the moment of the kill, not a wait
            how = rng.choice(["all", "all", "daemon", "runner"])
            if how == "all":  # a power cut: every process of the queue dies
                for p in orphans:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                orphans = []
                crash(srv)
                # a command whose worker died goes on by itself: once every
                # such command has ended the queue is frozen, and what a
                # command finished but is still queued may come again, and
                # only that
                wait_for(lambda: not self.commands_running(), "the orphaned commands to end")
                allowed |= set(self.delivered_subjects()) & self.subjects_in("q")
            elif how == "daemon":
                orphans += children(srv.proc.pid, zombies=True, descendants=True)
                srv.proc.kill()
                srv.proc.wait(timeout=HANG)
            else:
                kids = children(srv.proc.pid, zombies=True, descendants=True)
                runner = re.findall(r"event=queue-runner-started pid=(\d+)", srv.log())
                if runner:
                    os.kill(int(runner[-1]), signal.SIGKILL)
                orphans += kids
                srv.proc.kill()
                srv.proc.wait(timeout=HANG)
            t.join(HANG)
        self.ctl.seq([])
        srv = self.server()
        wait_for(lambda: accepted <= set(self.delivered_subjects()) and self.ids() == [],
                 "every accepted message delivered")
        got = self.delivered_subjects()
        lost = accepted - set(got)
        dups = {s for s, n in got.items() if n > 1}
        self.assertEqual(lost, set())
        self.assertEqual(dups - allowed, set(), (sorted(dups), sorted(allowed)))
        self.assertEqual(self.ids("failed"), [])
        self.assertGreater(len(accepted), self.ROUNDS // 2)
        print("kill loop: %d accepted, %d delivered twice (%d allowed)"
              % (len(accepted), len(dups), len(allowed)), file=sys.stderr)


if __name__ == "__main__":
    harness.main()
