"""--session-reuse=N, attacked from outside: what README.md ("--session-reuse=N
trades one fresh process per client for speed, and says how") and
smtpipe(8) promise, tried as a hostile client, a hostile local user and an
unlucky operator would, on the real binary, real sockets, real signals.

Which process served a session is the pid of its `event=connect` line. With
--max-sessions=1 and one spare there is one session process at a time, so
client B is served by A's process exactly when reuse happened: each test
that claims "nothing of A reaches B" first checks that B did meet A's
process (else it would prove nothing). A test marked `# FINDING n` shows a
broken promise (it fails against the build it was written for); the others
are attacks that held, kept as regression tests. Every wait is for a log
line, a reply or a process, with a bound that only guards against a hang.
"""
import base64
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HANG = harness.HANG  # seconds: only a guard against a hang
ONE = ["--max-sessions=1", "--spare-sessions=1"]
PASSWORD = "pw-Atk-93k1x"


wait_for = harness.wait_for
alive = harness.alive
children = harness.children


connect_pids = harness.connect_pids
closes = harness.sessions_closed
memory_hits = harness.memory_hits


def waiting_again(srv, pid, count=1):
    """pid's own line that it wiped and waits for its next client"""
    srv.wait_log("[%d]: event=reuse-wait " % pid, timeout=HANG, count=count)


def quit_session(srv):
    """one client: greeting, EHLO, QUIT; the pid that served it"""
    c = harness.RawClient(srv.port, timeout=HANG)
    c.greet()
    c.cmd("QUIT", 221)
    c.closed(timeout=HANG)
    c.close()


def served_by(srv, k):
    """the pid that served the k-th session (from 1), once it closed"""
    return connect_pids(srv.wait_log(closes(k), timeout=HANG))[k - 1]


def served_each(srv, n):
    """n clients at once, each greeted and QUIT: n processes that served
    one client each wait for their next"""
    first = [srv.raw(timeout=HANG) for _ in range(n)]
    for c in first:
        c.greet()
    for c in first:
        c.cmd("QUIT", 221)
    srv.wait_log("event=reuse-wait ", count=n)


def gone(pid, what):
    wait_for(lambda: not alive(pid), what)


class Leaks(unittest.TestCase):
    """nothing of client A reaches client B served by the same process"""

    def first_then_second(self, srv, a):
        """client A's session (a(raw client)), then B greeted on A's process:
        B's RawClient, with A's process's pid checked to be B's"""
        c = srv.raw(timeout=HANG)
        a(c)
        c.closed(timeout=HANG)
        pid = served_by(srv, 1)
        waiting_again(srv, pid)
        b = srv.raw(timeout=HANG)
        b.expect(220)
        srv.wait_log("event=connect ", count=2)
        self.assertEqual(connect_pids(srv.log())[1], pid, "B met a fresh process: no reuse")
        return b

    def test_pipelined_after_quit_never_reaches_the_next_client(self):
        with harness.Server(*ONE, "--session-reuse=5", mailbox="mbox") as srv:
            def a(c):
                c.greet("a.example")
                c.send("QUIT\r\nMAIL FROM:<evil@a.example>\r\nRCPT TO:<victim@b.example>\r\n"
                       "DATA\r\nSubject: planted\r\n\r\nplanted\r\n.\r\n")
                c.expect(221)
            b = self.first_then_second(srv, a)
            b.cmd("EHLO b.example", 250)
            b.cmd("RCPT TO:<x@b.example>", 503)  # no MAIL of A's is open
            b.cmd("DATA", 503)
            b.cmd("QUIT", 221)
            srv.wait_log(closes(2))
        with open(srv.mailbox, "rb") as f:
            self.assertNotIn(b"planted", f.read())

    def test_authentication_does_not_carry_over(self):
        with harness.Server(*ONE, "--session-reuse=5", "--auth=alice,echo " + PASSWORD,
                            mailbox="mbox") as srv:
            def a(c):
                c.greet()
                tok = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
                c.cmd("AUTH PLAIN " + tok, 235)
                c.cmd("QUIT", 221)
            b = self.first_then_second(srv, a)
            b.cmd("EHLO b.example", 250)
            b.cmd("MAIL FROM:<b@b.example>", 530)
            b.cmd("QUIT", 221)

    def test_half_authentication_does_not_carry_over(self):
        # A's AUTH LOGIN got its user, then A quit (the "*" cancel and QUIT)
        with harness.Server(*ONE, "--session-reuse=5", "--auth=alice,echo " + PASSWORD,
                            mailbox="mbox") as srv:
            def a(c):
                c.greet()
                c.cmd("AUTH LOGIN", 334)
                c.cmd(base64.b64encode(b"alice").decode(), 334)
                c.cmd("*", 501)
                c.cmd("QUIT", 221)
            b = self.first_then_second(srv, a)
            b.cmd("EHLO b.example", 250)
            # B's first line is not taken as A's awaited password
            b.cmd(base64.b64encode(PASSWORD.encode()).decode(), 500)
            b.cmd("MAIL FROM:<b@b.example>", 530)

    def test_the_error_count_starts_again(self):
        with harness.Server(*ONE, "--session-reuse=5", "--max-errors=3", mailbox="mbox") as srv:
            def a(c):
                c.greet()
                c.cmd("BOGUS1", 500)
                c.cmd("BOGUS2", 500)
                c.cmd("QUIT", 221)
            b = self.first_then_second(srv, a)
            b.cmd("EHLO b.example", 250)
            b.cmd("BOGUS3", 500)
            b.cmd("BOGUS4", 500)
            b.cmd("NOOP", 250)  # 4 errors in all, but 2 of them B's

    def test_ehlo_does_not_carry_over(self):
        with harness.Server(*ONE, "--session-reuse=5", mailbox="mbox") as srv:
            def a(c):
                c.greet("a-name.example")
                c.cmd("QUIT", 221)
            b = self.first_then_second(srv, a)
            b.send("MAIL FROM:<b@b.example>\r\n")  # no EHLO of its own: A's is gone
            code, lines = b.reply()
            self.assertEqual(code, 503, lines)

    def test_starttls_state_does_not_carry_over(self):
        # a TLS session is its process's last (FINDING 1's fix): B meets a
        # fresh process, and that one wants STARTTLS of B itself
        with harness.Server(*ONE, "--session-reuse=5", "--tls-required",
                            "--tls-cert=" + PKI["SERVER"], "--tls-key=" + PKI["SERVER_KEY"],
                            mailbox="mbox") as srv:
            s = srv.smtp()
            s.starttls(context=ssl.create_default_context(cafile=PKI["CA"]))
            s.ehlo()
            s.sendmail("a@a.example", ["b@b.example"], "Subject: a\r\n\r\na\r\n")
            s.quit()
            pid = served_by(srv, 1)
            wait_for(lambda: not harness.alive(pid), "the TLS session's process to exit")
            b = srv.raw(timeout=HANG)
            b.expect(220)
            ehlo = b.cmd("EHLO b.example", 250)
            self.assertNotEqual(connect_pids(srv.wait_log("event=connect ", count=2))[1], pid)
            self.assertIn("STARTTLS", ehlo)
            b.cmd("MAIL FROM:<b@b.example>", 530)

    def test_the_command_sees_this_clients_environment(self):
        out = tempfile.mkdtemp(prefix="smtpipe-env-")
        self.addCleanup(shutil.rmtree, out, True)
        cmd = "sh -c 'cat >/dev/null; env | grep ^SMTPIPE_ | sort > %s/$$.env'" % out
        users = os.path.join(out, "users")
        def sha512(password):
            return subprocess.run(["openssl", "passwd", "-6", password], capture_output=True,
                                  text=True, check=True).stdout.strip()
        with open(users, "w") as f:
            f.write("alice:%s\nbob:%s\n" % (sha512("pa-alice"), sha512("pa-bob")))
        with harness.Server(*ONE, "--session-reuse=5", "--auth-file=" + users,
                            command=cmd) as srv:
            with srv.smtp() as s:
                s.login("alice", "pa-alice")
                s.sendmail("a@a.example", ["r@b.example"], "Subject: a\r\n\r\na\r\n")
            pid = served_by(srv, 1)
            waiting_again(srv, pid)
            with srv.smtp() as s:
                s.login("bob", "pa-bob")
                s.sendmail("b@b.example", ["r@b.example"], "Subject: b\r\n\r\nb\r\n")
            self.assertEqual(served_by(srv, 2), pid)
            envs = wait_for(lambda: (lambda e: e if len(e) == 2 else None)(
                [n for n in os.listdir(out) if n.endswith(".env")]), "two deliveries")
        got = []
        for n in envs:
            with open(os.path.join(out, n)) as f:
                got.append(f.read())
        bob = [e for e in got if "SMTPIPE_SENDER=b@b.example" in e]
        self.assertEqual(len(bob), 1, got)
        self.assertIn("SMTPIPE_AUTH_USER=bob\n", bob[0])
        self.assertNotIn("alice", bob[0])

    def test_the_received_line_is_this_clients(self):
        # A: its own EHLO name; B, served by the same process: B's
        # Received: says neither A's name nor A's sender (a TLS session is
        # its process's last, so TLS cannot carry over: Leaks above)
        with harness.Server(*ONE, "--session-reuse=5", mailbox="mbox") as srv:
            with srv.smtp(local_hostname="a-helo.example") as s:
                s.sendmail("a@a.example", ["r@b.example"], "Subject: A\r\n\r\nA\r\n")
            pid = served_by(srv, 1)
            waiting_again(srv, pid)
            with srv.smtp(local_hostname="b-helo.example") as s:
                s.sendmail("b@b.example", ["r@b.example"], "Subject: B\r\n\r\nB\r\n")
            self.assertEqual(served_by(srv, 2), pid)
        with open(srv.mailbox, "rb") as f:
            a, b = f.read().split(b"\nFrom b@b.example ")
        self.assertIn(b"from a-helo.example ", a)
        self.assertIn(b"from b-helo.example ", b)
        for leak in (b"a-helo", b"a@a.example"):
            self.assertNotIn(leak, b)

    def test_maildir_names_stay_unique_across_clients(self):
        # a Maildir name is time, pid and a counter: one process serving
        # many clients must not start the counter again for each one
        with harness.Server(*ONE, "--session-reuse=1000", mailbox="Maildir/") as srv:
            for i in range(20):
                with srv.smtp() as s:
                    s.sendmail("a@a.example", ["r@b.example"], "Subject: %d\r\n\r\nx\r\n" % i)
            pids = connect_pids(srv.wait_log(closes(20)))
            names = os.listdir(os.path.join(srv.mailbox, "new"))
        self.assertEqual(len(set(pids)), 1, "one process served them all")
        self.assertEqual(len(names), 20)
        ids = [re.search(r"P(\d+)Q(\d+)", n).groups() for n in names]
        self.assertEqual(len(set(ids)), 20, names)


class EndsThatEndIt(unittest.TestCase):
    """after a session that did not end cleanly the process never serves again"""

    def after(self, args, a, mailbox="mbox", command=None):
        """client A's session a(srv), then B: B must meet a fresh process"""
        with harness.Server(*ONE, "--session-reuse=5", *args, mailbox=mailbox,
                            command=command) as srv:
            a(srv)
            first = served_by(srv, 1)
            quit_session(srv)
            second = served_by(srv, 2)
            log = srv.log()
        self.assertNotEqual(first, second, "a process served again after: " + log[-3000:])
        self.assertNotIn("[%d]: event=reuse-wait " % first, log)

    def test_max_errors(self):
        def a(srv):
            c = srv.raw(timeout=HANG)
            c.greet()
            for _ in range(3):
                c.cmd("BOGUS", 500)
            c.send("BOGUS\r\n")
            c.expect(421)
            c.closed(timeout=HANG)
        self.after(["--max-errors=3"], a)

    def test_a_too_big_message_past_max_discard(self):
        def a(srv):
            c = srv.raw(timeout=HANG)
            c.greet()
            c.data()
            try:
                c.send(b"x" * 70 + b"\r\n")
                c.send((b"y" * 998 + b"\r\n") * 200)
            except OSError:
                pass
            try:
                c.expect(552)
            except (EOFError, OSError):
                pass
            c.closed(timeout=HANG)
        self.after(["--max-message-size=1k", "--max-discard=10k"], a)

    def test_a_failed_starttls_handshake(self):
        def a(srv):
            c = srv.raw(timeout=HANG)
            c.greet()
            c.cmd("STARTTLS", 220)
            c.send(b"\x16\x03\x01\x00\x05garbage-not-a-client-hello\r\n" * 4)
            c.closed(timeout=HANG)
        self.after(["--tls-cert=" + PKI["SERVER"], "--tls-key=" + PKI["SERVER_KEY"]], a)

    def test_a_data_deadline_missed_by_a_trickle(self):
        # one byte at a time, each before the idle timeout, never the
        # whole message within --timeout + size/--data-min-rate
        def a(srv):
            c = srv.raw(timeout=HANG)
            c.greet()
            c.data()
            try:
                while "phase=data" not in srv.log():
                    c.send(b"x")
                    time.sleep(0.2)  # the attack's pace, not a wait for the server
            except OSError:
                pass
            c.closed(timeout=HANG)
        self.after(["--timeout=1"], a)

    def test_vanished_mid_auth(self):
        def a(srv):
            c = srv.raw(timeout=HANG)
            c.greet()
            c.cmd("AUTH LOGIN", 334)
            c.cmd(base64.b64encode(b"alice").decode(), 334)
            c.close()
        self.after(["--auth=alice,echo " + PASSWORD], a)

    def test_vanished_mid_transaction(self):
        def a(srv):
            c = srv.raw(timeout=HANG)
            c.greet()
            c.cmd("MAIL FROM:<a@a.example>", 250)
            c.cmd("RCPT TO:<b@b.example>", 250)
            c.close()
        self.after([], a)

    def test_a_drop_fault(self):
        def a(srv):
            c = srv.raw(timeout=HANG)
            c.greet()
            c.send("MAIL FROM:<a@a.example>\r\n")
            c.closed(timeout=HANG)
        self.after(["--fault=mail drop"], a)

    def test_a_421_fault(self):
        def a(srv):
            c = srv.raw(timeout=HANG)
            c.greet()
            c.cmd("MAIL FROM:<a@a.example>", 421)
            c.closed(timeout=HANG)
        self.after(["--fault=mail 421 4.3.0 go away"], a)

    def test_sigterm_to_the_session_process(self):
        def a(srv):
            c = srv.raw(timeout=HANG)
            c.greet()
            pid = connect_pids(srv.wait_log("event=connect "))[0]
            os.kill(pid, signal.SIGTERM)
            c.send("NOOP\r\n")
            try:
                code, _ = c.reply()
            except (EOFError, OSError):
                code = None
            self.assertIn(code, (421, None))
            c.closed(timeout=HANG)
        self.after([], a)

    def test_sighup_to_the_daemon_mid_session(self):
        def a(srv):
            c = srv.raw(timeout=HANG)
            c.greet()
            srv.wait_log("event=connect ")
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_log("event=sighup")
            c.message(b"Subject: x\r\n\r\nx\r\n.\r\n")
            c.cmd("QUIT", 221)
            c.closed(timeout=HANG)
        self.after([], a)


class DeliveryTimeout(unittest.TestCase):
    def test_a_timed_out_command_is_gone_before_the_next_client(self):
        # the command ignores SIGTERM and hangs past --delivery-timeout;
        # the session answered 451 and ended with QUIT (clean, so reused):
        # the command must be killed and reaped, not left to the next client
        cmd = "sh -c 'trap \"\" TERM; exec sleep 600'"
        with harness.Server(*ONE, "--session-reuse=5", "--delivery-timeout=1",
                            command=cmd) as srv:
            c = srv.raw(timeout=HANG)
            c.greet()
            c.data()
            c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
            c.expect(451)
            c.cmd("QUIT", 221)
            pid = served_by(srv, 1)
            waiting_again(srv, pid)
            log = srv.log()
            cmd_pid = int(re.findall(r"event=command-exit pid=(\d+)", log)[0])
            self.assertFalse(alive(cmd_pid))
            self.assertEqual(children(pid, zombies=True), [])
            quit_session(srv)
            self.assertEqual(served_by(srv, 2), pid)


def client_from(srv, last_octet):
    """a RawClient whose address is 127.0.0.last_octet: another client"""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=HANG,
                                    source_address=("127.0.0.%d" % last_octet, 0))
    return harness.RawClient(srv.port, timeout=HANG, sock=sock)


def most_at_once(log, key=lambda line: ""):
    """the most sessions open at once (per key), read from the log's
    order: a session logs connect after it claimed its slot and close
    before it gives it back, so this is at least the true count"""
    open_ = {}
    most = {}
    names = {}
    for line in log.splitlines():
        m = re.search(r"session=(\S+) event=(connect|close) ", line)
        if not m:
            continue
        if m.group(2) == "connect":
            k = key(line)
            names[m.group(1)] = k
            open_[k] = open_.get(k, 0) + 1
            most[k] = max(most.get(k, 0), open_[k])
        elif m.group(1) in names:
            open_[names.pop(m.group(1))] -= 1
    return most


class Limits(unittest.TestCase):
    def test_many_short_sessions_leave_both_limits_exact(self):
        # six clients (127.0.0.2-7) race through 50 sessions each, on
        # three slots that reused processes hand back and forth; then
        # the accounting must not have drifted: three held sessions, a
        # fourth client waits in the backlog, and is served once one ends
        with harness.Server("--max-sessions=3", "--spare-sessions=2", "--session-reuse=1000",
                            "--max-sessions-per-client=1", "--client-limit-loopback",
                            mailbox="mbox") as srv:
            procs = set()
            most = [0]
            done = []

            def watch():
                while not done:
                    c = children(srv.proc.pid)
                    procs.update(c)
                    most[0] = max(most[0], len(c))
            import threading
            t = threading.Thread(target=watch)
            t.start()
            refused = []

            def client(i):
                for _ in range(50):
                    c = client_from(srv, 2 + i)
                    code, _ = c.reply()
                    if code == 220:
                        c.cmd("EHLO c%d.example" % i, 250)
                        c.cmd("QUIT", 221)
                        c.closed(timeout=HANG)
                    else:
                        refused.append(code)
                    c.close()
            try:
                errors = harness.concurrently(6, client)
            finally:
                done.append(1)
                t.join()
            self.assertEqual(errors, [])
            log = srv.wait_log(lambda l: l.count("event=close ") == l.count("event=connect "))
            self.assertLessEqual(most[0], 3, "more processes than --max-sessions")
            self.assertLess(len(procs), log.count("event=connect "), "no process was reused")
            self.assertEqual(set(refused) - {421}, set())
            self.assertLessEqual(max(most_at_once(log).values()), 3)
            per = most_at_once(log, lambda l: re.search(r"client=(\S+)", l).group(1))
            self.assertEqual(max(per.values()), 1, per)
            # every session handed its slot back: wait until none is counted
            wait_for(lambda: len(re.findall(r"event=session-(?:reuse|exit) ", srv.log()))
                     + srv.log().count("event=spare-lost ")
                     >= srv.log().count("event=session-start "), "every slot given back")
            held = [client_from(srv, 10 + k) for k in range(3)]
            for c in held:
                c.expect(220)
            srv.wait_log("event=session-cap ")
            fourth = client_from(srv, 20)  # waits in the backlog
            held[0].cmd("QUIT", 221)
            fourth.expect(220)
            fourth.cmd("QUIT", 221)
            for c in held[1:]:
                c.cmd("QUIT", 221)
                c.close()
            fourth.close()
            held[0].close()

    def test_a_backlogged_client_is_served_when_a_process_reaches_n(self):
        # both processes serve their last (N-th) client: the one waiting in
        # the backlog is served by a fresh spare once one of them ends
        with harness.Server("--max-sessions=2", "--spare-sessions=2", "--session-reuse=2",
                            mailbox="mbox") as srv:
            served_each(srv, 2)
            last = [srv.raw(timeout=HANG) for _ in range(2)]
            for c in last:
                c.greet()
            srv.wait_log("event=session-cap ", count=2)
            waiting = srv.raw(timeout=HANG)
            last[0].cmd("QUIT", 221)
            waiting.expect(220)
            log = srv.wait_log("event=connect ", count=5)
            pids = connect_pids(log)
            self.assertNotIn(pids[4], pids[:4], "the N-th session's process served again")


class Lifecycle(unittest.TestCase):
    def test_sigkill_of_a_waiting_process(self):
        with harness.Server(*ONE, "--session-reuse=5", "--max-sessions-per-client=1",
                            "--client-limit-loopback", mailbox="mbox") as srv:
            quit_session(srv)
            pid = served_by(srv, 1)
            waiting_again(srv, pid)
            os.kill(pid, signal.SIGKILL)
            gone(pid, "the killed process")
            quit_session(srv)  # a replacement serves, the slot was freed
            self.assertNotEqual(served_by(srv, 2), pid)
            self.assertEqual(srv.log().count("event=client-cap "), 0)

    def test_sigkill_of_a_reused_process_mid_session(self):
        with harness.Server(*ONE, "--session-reuse=5", "--max-sessions-per-client=1",
                            "--client-limit-loopback", mailbox="mbox") as srv:
            quit_session(srv)
            pid = served_by(srv, 1)
            waiting_again(srv, pid)
            b = srv.raw(timeout=HANG)
            b.greet()
            b.data()
            b.send(b"Subject: cut\r\n\r\nhalf")
            self.assertEqual(connect_pids(srv.log())[1], pid)
            os.kill(pid, signal.SIGKILL)
            self.assertTrue(b.closed(timeout=HANG))
            gone(pid, "the killed process")
            srv.wait_log("[%d]" % srv.proc.pid + ": event=session-crashed pid=%d " % pid)
            c = srv.raw(timeout=HANG)  # neither limit still counts B
            c.greet()
            c.message(b"Subject: after\r\n\r\nafter\r\n.\r\n")
            c.cmd("QUIT", 221)
            self.assertEqual(srv.log().count("event=client-cap "), 0)
        with open(srv.mailbox, "rb") as f:
            text = f.read()
        self.assertNotIn(b"Subject: cut", text)
        self.assertIn(b"Subject: after", text)

    def test_sigterm_to_the_daemon_finishes_a_reused_session_and_leaves_none(self):
        with harness.Server("--max-sessions=2", "--spare-sessions=2", "--session-reuse=100",
                            mailbox="mbox") as srv:
            served_each(srv, 2)
            pids = set(connect_pids(srv.log()))
            b = srv.raw(timeout=HANG)
            b.greet()
            b.data()
            b.send(b"Subject: in-flight\r\n\r\nbody\r\n")
            srv.proc.send_signal(signal.SIGTERM)
            srv.wait_log("event=stopping")
            b.send(b".\r\n")
            b.expect(250)
            b.closed(timeout=HANG)
            srv.proc.wait(timeout=HANG)
            for p in pids:
                gone(p, "a session process that outlived the daemon")
        with open(srv.mailbox, "rb") as f:
            self.assertIn(b"Subject: in-flight", f.read())

    def test_sighup_every_later_client_gets_the_new_certificate(self):
        d = tempfile.mkdtemp(prefix="smtpipe-renew-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        shutil.copy(PKI["SERVER"], cert)
        shutil.copy(PKI["SERVER_KEY"], key)
        with harness.Server("--max-sessions=3", "--spare-sessions=2", "--session-reuse=100",
                            "--tls-cert=" + cert, "--tls-key=" + key, mailbox="mbox") as srv:
            # three processes that served and wait for their next client
            served_each(srv, 3)
            shutil.copy(PKI2["SERVER"], cert + ".new")
            shutil.copy(PKI2["SERVER_KEY"], key + ".new")
            os.rename(cert + ".new", cert)
            os.rename(key + ".new", key)
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_log("event=tls-reloaded")
            ctx = ssl.create_default_context(cafile=PKI2["CA"])
            for i in range(6):
                with srv.smtp() as s:
                    s.starttls(context=ctx)  # the old certificate fails here
                    s.ehlo()
                    s.noop()

    def test_no_client_is_served_after_the_daemon_died(self):
        # the daemon is SIGKILLed while its reused process serves B and C
        # waits in the listening socket's backlog: B's session ends, and
        # the process must not take C (no daemon counts it any more)
        with harness.Server(*ONE, "--session-reuse=100", mailbox="mbox",
                            expect_exit=-signal.SIGKILL) as srv:
            quit_session(srv)
            pid = served_by(srv, 1)
            waiting_again(srv, pid)
            b = srv.raw(timeout=HANG)
            b.greet()
            srv.proc.kill()
            srv.proc.wait(timeout=HANG)
            c = srv.raw(timeout=HANG)  # queued in the socket the process still holds
            b.cmd("QUIT", 221)
            gone(pid, "the process of a dead daemon")
            try:
                got = c.sock.recv(100)
            except OSError:
                got = b""
            self.assertEqual(got, b"")
            self.assertEqual(srv.log().count("event=connect "), 2)

    def test_sigterm_amid_a_storm_delivers_what_it_accepted(self):
        # six clients send one message per connection as fast as they
        # can over reused processes; SIGTERM comes in the middle of it:
        # the daemon ends, no process outlives it, and every 250 is a
        # message in the mailbox
        srv = harness.Server("--max-sessions=6", "--spare-sessions=3", "--session-reuse=1000",
                             mailbox="mbox")
        stop = []
        accepted = []

        def client(i):
            while not stop:
                try:
                    c = harness.RawClient(srv.port, timeout=HANG)
                except OSError:
                    continue
                try:
                    if c.reply()[0] != 220:
                        continue
                    c.send("EHLO s%d\r\nMAIL FROM:<a@a.example>\r\nRCPT TO:<r@b.example>\r\n"
                           "DATA\r\n" % i)
                    for _ in range(4):
                        c.reply()
                    c.send("Subject: storm\r\n\r\nx\r\n.\r\nQUIT\r\n")
                    if c.reply()[0] == 250:
                        accepted.append(i)
                except (OSError, EOFError):
                    pass
                finally:
                    c.close()
        import threading
        ts = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        try:
            for t in ts:
                t.start()
            srv.wait_log("event=reuse-wait ", count=30)
            srv.proc.send_signal(signal.SIGTERM)
            srv.proc.wait(timeout=HANG)
        finally:
            stop.append(1)
            for t in ts:
                t.join()
            srv.stop(check=False)
        for p in set(connect_pids(srv.log())):
            gone(p, "a session process that outlived the daemon")
        with open(srv.mailbox, "rb") as f:
            self.assertEqual(f.read().count(b"\nSubject: storm"), len(accepted))

    def test_sighup_amid_a_storm_every_later_client_gets_the_new_certificate(self):
        import hashlib
        import threading
        d = tempfile.mkdtemp(prefix="smtpipe-renew-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        shutil.copy(PKI["SERVER"], cert)
        shutil.copy(PKI["SERVER_KEY"], key)
        with open(PKI2["SERVER"]) as f:
            pem = f.read()
        new = hashlib.sha256(ssl.PEM_cert_to_DER_cert(
            pem[:pem.index("-----END CERTIFICATE-----") + 25])).hexdigest()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the fingerprint is checked instead
        seen = []
        stop = []
        with harness.Server("--max-sessions=4", "--spare-sessions=2", "--session-reuse=1000",
                            "--tls-cert=" + cert, "--tls-key=" + key, mailbox="mbox") as srv:
            def client(i):
                while not stop:
                    t0 = time.monotonic()
                    c = None
                    try:
                        c = harness.RawClient(srv.port, timeout=HANG)
                        c.expect(220)
                        c.cmd("EHLO x", 250)
                        c.cmd("STARTTLS", 220)
                        c.sock = ctx.wrap_socket(c.sock)
                        der = c.sock.getpeercert(binary_form=True)
                        seen.append((t0, hashlib.sha256(der).hexdigest()))
                        c.cmd("QUIT", 221)
                        c.close()
                    except (OSError, EOFError, AssertionError) as e:
                        seen.append((t0, repr(e)))
                    finally:
                        if c:
                            c.close()
            ts = [threading.Thread(target=client, args=(i,)) for i in range(3)]
            try:
                for t in ts:
                    t.start()
                wait_for(lambda: len(seen) > 10, "sessions before the reload")
                shutil.copy(PKI2["SERVER"], cert + ".new")
                shutil.copy(PKI2["SERVER_KEY"], key + ".new")
                os.rename(cert + ".new", cert)
                os.rename(key + ".new", key)
                srv.proc.send_signal(signal.SIGHUP)
                srv.wait_log("event=tls-reloaded")
                reloaded = time.monotonic()
                n = len(seen)
                wait_for(lambda: len(seen) > n + 15, "sessions after the reload")
            finally:
                stop.append(1)
                for t in ts:
                    t.join()
        later = [fp for t0, fp in seen if t0 > reloaded]
        self.assertGreater(len(later), 0)
        self.assertEqual([fp for fp in later if fp != new], [])

    def test_n_is_exact_under_concurrency(self):
        with harness.Server("--max-sessions=2", "--spare-sessions=2", "--session-reuse=4",
                            mailbox="mbox") as srv:
            harness.concurrently(4, lambda i: [quit_session(srv) for _ in range(10)])
            log = srv.wait_log(closes(40))
            counts = {}
            for p in connect_pids(log):
                counts[p] = counts.get(p, 0) + 1
            self.assertLessEqual(max(counts.values()), 4, counts)
            self.assertGreater(max(counts.values()), 1, counts)


class Resources(unittest.TestCase):
    @unittest.skipIf(harness.sanitized(), harness.SANITIZED_MEMORY)
    def test_descriptors_and_memory_stay_flat_over_many_clients(self):
        with harness.Server(*ONE, "--session-reuse=1000", mailbox="mbox") as srv:
            def session(i):
                with srv.smtp() as s:
                    # past the in-memory spool now and then: a spool file
                    s.sendmail("a@a.example", ["b@b.example"], "Subject: %d\r\n\r\n%s\r\n"
                               % (i, ("line %d\r\n" % i) * (i % 7 * 3000)))

            def usage(pid):
                with open("/proc/%d/status" % pid) as f:
                    rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
                return sorted(os.readlink("/proc/%d/fd/%s" % (pid, fd)).split(":")[0]
                              for fd in os.listdir("/proc/%d/fd" % pid)), rss
            for i in range(8):
                session(i)
            pid = served_by(srv, 1)
            waiting_again(srv, pid, count=8)
            fds, rss = usage(pid)
            for i in range(8, 208):
                session(i)
            waiting_again(srv, pid, count=208)
            fds2, rss2 = usage(pid)
            self.assertEqual(set(connect_pids(srv.log())), {pid})
        self.assertEqual(fds2, fds)
        self.assertLess(rss2 - rss, 256, "kB of RSS grew over 200 sessions")

    @unittest.skipIf(harness.sanitized(), harness.SANITIZED_MEMORY)
    def test_a_hostile_client_leaves_no_growth_behind(self):
        # each session: 100 recipients of 250 octets, a 12 kB AUTH line,
        # a too-long NOOP, 500 pipelined RSETs; the process that served
        # 60 of them holds what it held after the first
        dom = ".".join(["d" * 60] * 3)
        with harness.Server(*ONE, "--session-reuse=1000", mailbox="mbox") as srv:
            def hostile():
                c = harness.RawClient(srv.port, timeout=HANG)
                c.greet()
                c.send("MAIL FROM:<%s@%s>\r\n" % ("s" * 60, dom)
                       + "".join("RCPT TO:<%s%d@%s>\r\n" % ("r" * 60, k, dom) for k in range(100)))
                for _ in range(101):
                    c.reply()
                c.send("AUTH PLAIN " + "A" * 12000 + "\r\n")
                c.reply()
                c.send("NOOP " + "x" * 5000 + "\r\n")
                c.reply()
                c.send("RSET\r\n" * 500)
                for _ in range(500):
                    c.reply()
                c.cmd("QUIT", 221)
                c.closed(timeout=HANG)
                c.close()

            def usage(pid):
                with open("/proc/%d/status" % pid) as f:
                    st = f.read()
                return (len(os.listdir("/proc/%d/fd" % pid)),
                        int(re.search(r"VmRSS:\s+(\d+)", st).group(1)),
                        int(re.search(r"VmData:\s+(\d+)", st).group(1)))
            hostile()
            pid = served_by(srv, 1)
            waiting_again(srv, pid)
            fds, rss, data = usage(pid)
            for _ in range(59):
                hostile()
            waiting_again(srv, pid, count=60)
            fds2, rss2, data2 = usage(pid)
            self.assertEqual(set(connect_pids(srv.log())), {pid})
        self.assertEqual(fds2, fds)
        self.assertLess(rss2 - rss, 256, "kB of RSS grew")
        self.assertLess(data2 - data, 256, "kB of data segment grew")

    def test_the_command_inherits_no_listening_socket(self):
        out = tempfile.mkdtemp(prefix="smtpipe-fds-")
        self.addCleanup(shutil.rmtree, out, True)
        cmd = "sh -c 'cat >/dev/null; exec ls -l /proc/self/fd/ > %s/$$.fds'" % out
        with harness.Server(*ONE, "--session-reuse=5", command=cmd) as srv:
            for i in range(2):
                with srv.smtp() as s:
                    s.sendmail("a@a.example", ["b@b.example"], "Subject: x\r\n\r\nx\r\n")
            pids = connect_pids(srv.wait_log(closes(2)))
            self.assertEqual(pids[0], pids[1])
            files = wait_for(lambda: (lambda e: e if len(e) == 2 else None)(os.listdir(out)),
                             "two deliveries")
        for n in files:
            with open(os.path.join(out, n)) as f:
                fds = re.findall(r" (\d+) -> (.*)", f.read())
            # 0-2, and ls's own directory (no socket: neither a listener nor a client)
            self.assertLessEqual(len(fds), 4, fds)
            self.assertEqual([fd for fd in fds if "socket:" in fd[1]], [], fds)


MARKS = ["ehlomark-Q1", "WRONGLOGIN-Q2", "sendermark-Q3", "rcptmark-Q4", "subjmark-Q5",
         "bodymark-Q6", "tailmark-Q7", "noopmark-Q8", "pipemark-Q9", "piperecipient-QA"]


@unittest.skipUnless(os.geteuid() == 0, "reads a non-dumpable process's memory: needs root")
@unittest.skipIf(harness.sanitized(), harness.SANITIZED_MEMORY)
class Remains(unittest.TestCase):
    """what one client sent, looked for in the process that waits for the
    next: more than test_reuse.py's needles, and a message of many TLS
    records, a spooled one, the AUTH LOGIN lines, and what was pipelined
    after QUIT"""

    def client_a(self, srv, tls):
        c = srv.raw(timeout=HANG)
        c.expect(220)
        if tls:
            c.cmd("EHLO pre.example", 250)
            c.cmd("STARTTLS", 220)
            ctx = ssl.create_default_context(cafile=PKI["CA"])
            c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        c.cmd("EHLO ehlomark-Q1.example", 250)
        c.cmd("AUTH LOGIN", 334)
        c.cmd(base64.b64encode(b"alice").decode(), 334)
        c.cmd(base64.b64encode(b"WRONGLOGIN-Q2").decode(), 535)
        c.cmd("AUTH LOGIN", 334)
        c.cmd(base64.b64encode(b"alice").decode(), 334)
        c.cmd(base64.b64encode(PASSWORD.encode()).decode(), 235)
        c.cmd("MAIL FROM:<sendermark-Q3@a.example>", 250)
        c.cmd("RCPT TO:<rcptmark-Q4@b.example>", 250)
        c.cmd("DATA", 354)
        c.send(b"Subject: subjmark-Q5\r\n\r\n" + (b"bodymark-Q6 " * 80 + b"\r\n") * 150
               + b"tailmark-Q7\r\n.\r\n")
        c.expect(250)
        c.cmd("NOOP noopmark-Q8", 250)
        c.send("QUIT\r\nMAIL FROM:<pipemark-Q9@a.example>\r\nRCPT TO:<piperecipient-QA@b>\r\n")
        c.expect(221)
        c.closed(timeout=HANG)
        c.close()
        pid = served_by(srv, 1)
        waiting_again(srv, pid)
        return pid

    def check(self, tls, args=(), mailbox="mbox"):
        args = list(args)
        if tls:
            args += ["--tls-cert=" + PKI["SERVER"], "--tls-key=" + PKI["SERVER_KEY"]]
        needles = [m.encode() for m in MARKS]
        needles += [base64.b64encode(b"WRONGLOGIN-Q2"), base64.b64encode(PASSWORD.encode())]
        with harness.Server(*ONE, "--session-reuse=5", "--auth=alice,echo " + PASSWORD, *args,
                            mailbox=mailbox) as srv:
            pid = self.client_a(srv, tls)
            hits = memory_hits(pid, needles)
        self.assertEqual(hits, {})

    def test_plaintext(self):
        self.check(tls=False)

    def test_plaintext_maildir(self):
        self.check(tls=False, mailbox="Maildir/")

    def test_plaintext_command(self):
        self.check(tls=False, mailbox=None)

    # FINDING 2 (fixed): with --queue the waiting process held the last
    # client's message text (queue.c's copy block) and its envelope
    # sender and recipients (the heap buffer queue_format.c builds)
    def test_queue(self):
        d = tempfile.mkdtemp(prefix="smtpipe-q-")
        self.addCleanup(shutil.rmtree, d, True)
        self.check(tls=False, args=["--queue=" + os.path.join(d, "q")])

    # FINDING 1 (fixed): after a STARTTLS session the waiting process held
    # the last client's plaintext in GnuTLS's freed record buffers (here
    # the message text of a long message and what it pipelined after
    # QUIT). A TLS session is now its process's last: none waits.
    def test_starttls(self):
        with harness.Server(*ONE, "--session-reuse=5", "--auth=alice,echo " + PASSWORD,
                            "--tls-cert=" + PKI["SERVER"], "--tls-key=" + PKI["SERVER_KEY"],
                            mailbox="mbox") as srv:
            c = srv.raw(timeout=HANG)
            c.expect(220)
            c.cmd("EHLO pre.example", 250)
            c.cmd("STARTTLS", 220)
            ctx = ssl.create_default_context(cafile=PKI["CA"])
            c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
            c.cmd("EHLO ehlomark-Q1.example", 250)
            c.cmd("QUIT", 221)
            c.closed(timeout=HANG)
            c.close()
            pid = served_by(srv, 1)
            wait_for(lambda: not harness.alive(pid), "the TLS session's process to exit")
            self.assertNotIn("[%d]: event=reuse-wait" % pid, srv.log())


PKI = {}
PKI2 = {}


def setUpModule():
    PKI.update(harness.make_pki())
    PKI2.update(harness.make_pki())


def tearDownModule():
    shutil.rmtree(PKI["dir"], ignore_errors=True)
    shutil.rmtree(PKI2["dir"], ignore_errors=True)


if __name__ == "__main__":
    harness.main()
