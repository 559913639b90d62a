"""Concurrent sessions: nothing lost, nothing mixed, the cap of 16 holds.

Twenty clients send five messages each at the same moment, with a
delivery command slow enough that deliveries overlap; every message must
arrive once, byte-identical, with its own envelope. With the default
cap, the 17th and later clients wait in the kernel's backlog and are
served as slots free up. Postfix's smtp-source drives 20 sessions too.
"""
import hashlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def body_for(i, k):
    """A message of its own size and bytes for client i, message k."""
    rnd = random.Random(i * 1000 + k)
    lines = [bytes(rnd.randrange(33, 127) for _ in range(rnd.randrange(1, 998)))
             for _ in range(rnd.randrange(1, 200))]
    # no line may start with a dot here: smtplib stuffs, the recorder sees it unstuffed
    return b"Subject: %d.%d\r\n\r\n" % (i, k) + b"\r\n".join(lines) + b"\r\n"


class Concurrency(unittest.TestCase):
    def test_twenty_clients_five_messages_overlapping_deliveries(self):
        # the recorder sleeps a little so several deliveries run at once
        # fork per accept: no child once the sessions end (with spares:
        # test_pool.py's concurrency test)
        with harness.Server("--spare-sessions=0", recorder_opts=("--sleep", "0.1")) as srv:
            start = threading.Barrier(20)
            errors = []

            def client(i):
                start.wait()
                s = srv.smtp(timeout=120)
                for k in range(5):
                    refused = s.sendmail("c%d@a.test" % i, ["r%d.%d@b.test" % (i, k), "all@b.test"],
                                         body_for(i, k))
                    if refused:
                        errors.append((i, k, refused))
                s.quit()
            errors += harness.concurrently(20, client)
            self.assertEqual(errors, [])
            # every client quit; once their sessions have exited no
            # delivery can still come: exactly 100, none twice
            srv.wait_log(harness.sessions_over, timeout=120)
            d = srv.deliveries()
            self.assertEqual(len(d), 100)
            seen = set()
            for x in d:
                rcpt, other = x.recipients
                self.assertEqual(other, "all@b.test")
                i, k = (int(n) for n in rcpt[1:].split("@")[0].split("."))
                self.assertEqual(x.sender, "c%d@a.test" % i)
                want = body_for(i, k).replace(b"\r\n", b"\n")
                got = x.stdin[x.stdin.index(b"Subject: "):]
                self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(want).hexdigest(),
                                 "message %d.%d altered or mixed" % (i, k))
                seen.add((i, k))
            self.assertEqual(len(seen), 100)
            self.assertEqual(srv.log().count("event=delivered"), 100)
            # every session process was reaped (their exit lines come after waitpid)
            self.assertEqual(harness.children(srv.proc.pid, zombies=True), [])
            self.assertNotIn("event=session-crashed", srv.log())

    def test_seventeenth_client_waits_in_the_backlog_and_is_served(self):
        with harness.Server() as srv:  # the default cap: 16 sessions
            first = []
            for _ in range(16):
                c = srv.raw(timeout=10)
                c.expect(220)
                first.append(c)
            waiting = [srv.raw(timeout=1) for _ in range(4)]
            for c in waiting:
                with self.assertRaises(socket.timeout):
                    c.reply()  # connected (the kernel accepted it) but no greeting
            srv.wait_log("event=session-cap active=16")
            # each slot that frees lets one waiting client in; the rest still wait
            first.pop().cmd("QUIT", 221)
            served = None
            deadline = time.time() + 10
            while served is None and time.time() < deadline:
                for c in waiting:
                    try:
                        c.sock.settimeout(0.2)
                        c.expect(220)
                        served = c
                        break
                    except socket.timeout:
                        pass
            self.assertIsNotNone(served, "no waiting client was served after a slot freed")
            waiting.remove(served)
            served.sock.settimeout(10)
            for c in waiting:
                c.sock.settimeout(0.5)
                with self.assertRaises(socket.timeout):
                    c.reply()  # 16 busy again: the others still wait
            served.cmd("EHLO late.test", 250)
            served.message("Subject: late\r\n\r\nfrom the backlog\r\n.\r\n", 250)
            served.cmd("QUIT", 221)
            # free every slot: all the others are served, none refused
            for c in first:
                c.cmd("QUIT", 221)
            for c in waiting:
                c.sock.settimeout(10)
                c.expect(220)
                c.cmd("QUIT", 221)
            self.assertTrue(srv.deliveries(1)[0].stdin.endswith(b"from the backlog\n"))

    def test_smtp_source_twenty_sessions(self):
        src = harness.clients()["SMTP_SOURCE"]
        with harness.Server() as srv:
            r = subprocess.run([src, "-s", "20", "-m", "100", "-l", "5000", "-f", "src@a.test",
                                "-t", "dst@b.test", "127.0.0.1:%d" % srv.port],
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            # smtp-source has quit its sessions: once they have exited,
            # the deliveries are final
            log = srv.wait_log(harness.sessions_over, timeout=120)
            self.assertNotIn("event=session-crashed", log)
            d = srv.deliveries()
            self.assertEqual(len(d), 100)
            for x in d:
                self.assertEqual((x.sender, x.recipients), ("src@a.test", ["dst@b.test"]))
                self.assertGreaterEqual(len(x.stdin), 5000)


if __name__ == "__main__":
    harness.main()
