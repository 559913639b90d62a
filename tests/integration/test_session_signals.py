"""A session's signal set-up, made once per process instead of once per session:
a client gone before its reply is an EPIPE, never a death by SIGPIPE, both
under --inetd (main.c ignores SIGPIPE) and under the daemon (the listener
ignores it before forking sessions)."""
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class SessionSignals(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.cmd = "--command=" + harness.recorder_command(self.tmp)

    def test_inetd_reader_gone_is_no_sigpipe(self):
        # stdout a pipe whose reader is closed: the greeting's write gets
        # EPIPE, and the session ends by itself with a failure status
        out_r, out_w = os.pipe()
        os.close(out_r)
        in_r, in_w = os.pipe()
        os.write(in_w, b"EHLO gone\r\nQUIT\r\n")  # buffered: the session may end first
        os.close(in_w)
        p = subprocess.Popen([harness.binary(), "--inetd", self.cmd], stdin=in_r, stdout=out_w,
                             stderr=subprocess.PIPE)
        os.close(in_r)
        os.close(out_w)
        rc = p.wait(timeout=30)
        p.stderr.close()
        self.assertNotEqual(rc, -signal.SIGPIPE, "the session died of SIGPIPE")
        self.assertEqual(rc, 1)

    def test_daemon_sessions_ignore_sigpipe(self):
        # the session no longer sets SIGPIPE itself: it must come ignored
        # from the daemon (a TLS write to a client gone would kill it);
        # fork per accept: the one child is the session (spares: test_pool.py)
        with harness.Server("--spare-sessions=0") as srv:
            c = harness.RawClient(srv.port)
            c.expect(220)
            with open("/proc/%d/task/%d/children" % (srv.proc.pid, srv.proc.pid)) as f:
                kids = f.read().split()
            self.assertEqual(len(kids), 1, kids)
            with open("/proc/%s/status" % kids[0]) as f:
                ign = [int(l.split()[1], 16) for l in f if l.startswith("SigIgn:")][0]
            self.assertTrue(ign & (1 << (signal.SIGPIPE - 1)), "SigIgn %x" % ign)
            c.cmd("QUIT", 221)
            c.close()

if __name__ == "__main__":
    harness.main()
