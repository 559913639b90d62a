"""--session-reuse=N (issue 18): a spare session process whose session
ended cleanly goes back to wait for another client, up to N clients, and
never after a session that ended in an error, a SIGHUP or a stop.

The real binary, real sockets, real processes. Which process served a
session is read from the pid in its `event=connect` log line. With
--max-sessions=1 and one spare there is one session process at a time,
so the order in which processes serve is fixed. The memory of a process
waiting for its next client is read through /proc/PID/mem (root: the
processes are not dumpable), looking for what the last client sent.
Every wait is for a log line, a reply or a process, with a generous
bound that only guards against a hang.
"""
import base64
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HANG = harness.HANG
ONE = ["--max-sessions=1", "--spare-sessions=1"]
alive = harness.alive


connect_pids = harness.connect_pids
closes = harness.sessions_closed
memory_hits = harness.memory_hits


def send(srv, n, body="hello"):
    """n clients one after another, each one message and QUIT"""
    for i in range(n):
        with srv.smtp() as s:
            s.sendmail("a@example.org", ["b@example.org"],
                       "Subject: %d\r\n\r\n%s %d\r\n" % (i, body, i))


def from_127_0_0_2(srv):
    """a client from another loopback address (another per-client key)"""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=HANG,
                                 source_address=("127.0.0.2", 0))
    return harness.RawClient(0, sock=s, timeout=HANG)


def mbox_count(srv):
    with open(srv.mailbox, "rb") as f:
        return sum(1 for line in f if line.startswith(b"From "))


class Reuse(unittest.TestCase):
    def test_one_process_serves_n_clients_then_a_fresh_one(self):
        with harness.Server(*ONE, "--session-reuse=3", mailbox="mbox") as srv:
            send(srv, 7)
            pids = connect_pids(srv.wait_log(closes(7)))
            self.assertEqual(len(pids), 7)
            self.assertEqual(len(set(pids[0:3])), 1, pids)
            self.assertEqual(len(set(pids[3:6])), 1, pids)
            self.assertEqual(len(set([pids[0], pids[3], pids[6]])), 3, pids)
            self.assertEqual(mbox_count(srv), 7)

    def test_without_it_every_client_gets_a_fresh_process(self):
        with harness.Server(*ONE, mailbox="mbox") as srv:
            send(srv, 3)
            pids = connect_pids(srv.wait_log(closes(3)))
            self.assertEqual(len(set(pids)), 3, pids)

    def test_a_command_delivery_is_reused_too(self):
        with harness.Server(*ONE, "--session-reuse=2") as srv:
            send(srv, 2)
            self.assertEqual(len(srv.deliveries(wait_for=2, timeout=HANG)), 2)
            pids = connect_pids(srv.wait_log(closes(2)))
            self.assertEqual(pids[0], pids[1])

    def test_not_after_a_session_that_ended_in_an_error(self):
        with harness.Server(*ONE, "--session-reuse=5", mailbox="mbox") as srv:
            send(srv, 1)
            c = srv.raw(timeout=HANG)  # second: gone in the middle of DATA
            c.greet()
            c.data()
            c.send(b"Subject: torn\r\n\r\nhalf a mess")
            c.close()
            srv.wait_log("nothing-delivered")
            send(srv, 1)
            pids = connect_pids(srv.wait_log(closes(3)))
            self.assertEqual(pids[0], pids[1], "the clean first session's process serves again")
            self.assertNotEqual(pids[1], pids[2], "no session after the torn one")
            self.assertFalse(alive(pids[1]))
            self.assertEqual(mbox_count(srv), 2)

    def test_not_after_a_timeout(self):
        with harness.Server(*ONE, "--session-reuse=5", "--timeout=1", mailbox="mbox") as srv:
            c = srv.raw(timeout=HANG)
            c.greet()
            c.closed(timeout=HANG)  # the idle timeout ends it (421)
            srv.wait_log("event=timeout")
            send(srv, 1)
            pids = connect_pids(srv.wait_log(closes(2)))
            self.assertNotEqual(pids[0], pids[1])

    def test_not_after_a_tls_session(self):
        # GnuTLS frees memory smtpipe cannot wipe: a TLS session is its
        # process's last
        with harness.Server(*ONE, "--session-reuse=5", "--tls-cert=" + PKI["SERVER"],
                            "--tls-key=" + PKI["SERVER_KEY"], mailbox="mbox") as srv:
            with srv.smtp() as s:
                s.starttls(context=ssl.create_default_context(cafile=PKI["CA"]))
                s.sendmail("a@example.org", ["b@example.org"], "Subject: t\r\n\r\nt\r\n")
            send(srv, 2)
            pids = connect_pids(srv.wait_log(closes(3)))
            self.assertNotEqual(pids[0], pids[1])
            self.assertEqual(pids[1], pids[2], "a plain session's process serves again")
            self.assertEqual(mbox_count(srv), 3)

    def test_refused_clients_do_not_keep_a_waiting_process(self):
        # a process that served waits at most --timeout for its next
        # client: connections it refuses (over the per-client limit) do
        # not start that wait again. Two processes serve once each (from
        # two addresses), one holds a client B, and B's address knocks
        # at the other until it exits.
        with harness.Server("--max-sessions=2", "--spare-sessions=2", "--session-reuse=5",
                            "--timeout=2", "--max-sessions-per-client=1",
                            "--client-limit-loopback", mailbox="mbox") as srv:
            a1 = srv.raw(timeout=HANG)
            a1.greet()
            a2 = from_127_0_0_2(srv)
            a2.greet()
            for c in (a1, a2):
                c.cmd("QUIT", 221)
                c.close()
            srv.wait_log("event=reuse-wait ", count=2)
            b = from_127_0_0_2(srv)
            b.greet()
            log = srv.wait_log("event=connect ", count=3)
            holder = connect_pids(log)[2]
            other = [p for p in set(connect_pids(log)) if p != holder][0]
            def knock():
                """the other process's exit, while B's address knocks"""
                k = from_127_0_0_2(srv)
                k.expect(421)
                k.close()
                b.cmd("NOOP", 250)  # B stays within its own --timeout
                return not alive(other)
            harness.wait_for(knock, knock.__doc__)
            b.cmd("QUIT", 221)
            b.close()

    def test_eof_between_transactions_counts_as_clean(self):
        with harness.Server(*ONE, "--session-reuse=5", mailbox="mbox") as srv:
            c = srv.raw(timeout=HANG)
            c.greet()
            c.message(b"Subject: x\r\n\r\nbody\r\n.\r\n")
            c.close()  # no QUIT, nothing unfinished
            send(srv, 1)
            pids = connect_pids(srv.wait_log(closes(2)))
            self.assertEqual(pids[0], pids[1])
            self.assertEqual(mbox_count(srv), 2)

    def test_sighup_retires_a_process_that_served(self):
        with harness.Server(*ONE, "--session-reuse=5", mailbox="mbox") as srv:
            send(srv, 1)
            first = connect_pids(srv.wait_log("event=reuse-wait "))[0]
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_log("event=sighup")
            send(srv, 1)
            pids = connect_pids(srv.wait_log(closes(2)))
            self.assertNotEqual(first, pids[1])

    def test_a_process_that_waits_past_the_timeout_exits(self):
        with harness.Server(*ONE, "--session-reuse=5", "--timeout=1", mailbox="mbox") as srv:
            send(srv, 1)
            first = connect_pids(srv.wait_log(closes(1)))[0]
            harness.wait_for(lambda: not alive(first), "the idle process's exit")
            send(srv, 1)  # a fresh spare took its place
            pids = connect_pids(srv.wait_log(closes(2)))
            self.assertNotEqual(first, pids[1])

    def test_stop_ends_every_process(self):
        srv = harness.Server("--max-sessions=4", "--spare-sessions=2", "--session-reuse=100",
                             mailbox="mbox")
        try:
            harness.concurrently(4, lambda i: send(srv, 3))
            pids = set(connect_pids(srv.wait_log(closes(12))))
        finally:
            srv.stop()
        self.assertEqual(mbox_count(srv), 12)
        self.assertLess(len(pids), 12, "some process served more than one client")
        harness.wait_for(lambda: not any(alive(p) for p in pids),
                         "the end of every session process after the daemon's")

    def test_the_per_client_limit_counts_a_returned_process_out(self):
        # A client's next connection may come before its last session's
        # process has gone back to wait (or, without reuse, has been
        # reaped): it is counted until then, as before. So each client
        # here waits for the daemon's line that the process went back.
        with harness.Server("--max-sessions=3", "--spare-sessions=2", "--session-reuse=100",
                            "--max-sessions-per-client=1", "--client-limit-loopback",
                            mailbox="mbox") as srv:
            held = srv.raw(timeout=HANG)
            held.greet()
            over = harness.RawClient(srv.port, timeout=HANG)
            over.expect(421)
            over.close()
            held.cmd("QUIT", 221)
            held.close()
            srv.wait_log("event=reuse-wait ")
            for k in range(4):  # whichever process takes it, it is not capped
                send(srv, 1)
                srv.wait_log("event=reuse-wait ", count=k + 2)
            self.assertEqual(srv.log().count("event=client-cap "), 1)
            self.assertEqual(mbox_count(srv), 4)

    def test_it_needs_spare_sessions(self):
        r = subprocess.run([harness.binary(), "--port=0", "--session-reuse=2", "--command=true"],
                           capture_output=True, text=True, timeout=HANG)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--session-reuse=2 needs --spare-sessions", r.stderr)
        r = subprocess.run([harness.binary(), "--inetd", "--spare-sessions=1", "--session-reuse=2",
                            "--command=true"], capture_output=True, text=True, timeout=HANG,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("--inetd serves one client", r.stderr)


PASSWORD = "s3cret-PASS-77q"
WRONG = "WRONGPW-marker-4411"
BODY = "BODYMARK-7f3a91-message-text"
RCPT = "rcptmark-55ab@example.org"


@unittest.skipIf(harness.sanitized(), harness.SANITIZED_MEMORY)
class Wiped(unittest.TestCase):
    """what a client sent is gone from the process before it waits for the next"""

    def served_and_waiting(self, srv, tls):
        s = srv.smtp()
        if tls:
            s.starttls(context=ssl.create_default_context(cafile=PKI["CA"]))
        s.ehlo()
        try:
            s.login("alice", WRONG)
        except smtplib.SMTPAuthenticationError:
            pass
        s.login("alice", PASSWORD)
        s.sendmail("a@example.org", [RCPT], "Subject: w\r\n\r\n%s\r\n" % BODY)
        s.quit()
        pid = connect_pids(srv.wait_log(closes(1)))[0]
        # its own line comes after it wiped and went back to wait
        srv.wait_log("[%d]: event=reuse-wait " % pid)
        return pid

    def check(self, *args, tls=False, mailbox="mbox"):
        needles = [WRONG.encode(), BODY.encode(), RCPT.encode(),
                   base64.b64encode(("\0alice\0" + WRONG).encode()),
                   base64.b64encode(("\0alice\0" + PASSWORD).encode())]
        with harness.Server(*ONE, "--session-reuse=5", "--auth=alice,echo " + PASSWORD,
                            *args, mailbox=mailbox) as srv:
            pid = self.served_and_waiting(srv, tls)
            hits = memory_hits(pid, needles)
        self.assertEqual(hits, {})

    def test_mbox(self):
        self.check()

    def test_maildir(self):
        self.check(mailbox="Maildir/")

    def test_command(self):
        self.check(mailbox=None)



PKI = {}


def setUpModule():
    PKI.update(harness.make_pki())


def tearDownModule():
    shutil.rmtree(PKI["dir"], ignore_errors=True)

if __name__ == "__main__":
    harness.main()
