"""Listeners (issue 15): one daemon on IPv4, IPv6, implicit TLS and a Unix
socket at once, from the command line and from systemd's LISTEN_FDS.

Real clients on each kind of listener: smtplib over IPv4 and IPv6,
SMTP_SSL on a tls listener while STARTTLS works on a plain one, curl
over the Unix socket. This machine's ::1 is required: a host without
IPv6 fails these tests (setUpModule) instead of skipping them.
"""
import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import wait_for  # noqa: E402

PKI = {}
EX = os.path.join(harness.SOURCE, "examples", "listeners")

# A delivery command that records the SMTPIPE_* environment it got and
# its stdin, one DIR/N.json per delivery (written whole, then renamed).
ENV_RECORDER = r'''
import json, os, sys
out = sys.argv[1]
data = sys.stdin.buffer.read().decode(errors="replace")
env = {k: v for k, v in os.environ.items() if k.startswith("SMTPIPE_")}
tmp = os.path.join(out, ".%d" % os.getpid())
with open(tmp, "w") as f:
    json.dump({"env": env, "stdin": data, "argv": sys.argv[2:]}, f)
os.rename(tmp, os.path.join(out, "%d.json" % os.getpid()))
'''

# A launcher as systemd is one: sockets at fds 3.., LISTEN_PID naming
# the process that execs smtpipe (the pid survives the exec), the ports
# written to a file for the test.
LAUNCHER = r'''
import fcntl, json, os, socket, sys
out, sock_path, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
socks = [socket.socket(socket.AF_INET), socket.socket(socket.AF_INET6),
         socket.socket(socket.AF_INET), socket.socket(socket.AF_UNIX)]
socks[0].bind(("127.0.0.1", 0))
socks[1].bind(("::1", 0))
socks[2].bind(("127.0.0.1", 0))
socks[3].bind(sock_path)
ports = [s.getsockname()[1] for s in socks[:3]]
high = []
for s in socks:
    s.listen(16)
    high.append(fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 100))  # 3..6 may be taken
    s.close()
for i, h in enumerate(high):
    os.dup2(h, 3 + i)  # inheritable
    os.close(h)
with open(out, "w") as f:
    json.dump(ports, f)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="4",
                  LISTEN_FDNAMES="smtp:smtp:smtps:local")
os.execv(argv[0], argv)
'''


def setUpModule():
    # IPv6 loopback is part of what is tested: no silent skip without it
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError as e:
        raise RuntimeError("this machine has no usable ::1 (%s): the IPv6 listener tests "
                           "cannot run" % e)
    PKI.update(harness.make_pki())


def tearDownModule():
    shutil.rmtree(PKI["dir"], ignore_errors=True)


def tls_args():
    return ("-c", PKI["SERVER"], "-k", PKI["SERVER_KEY"])


def context():
    return ssl.create_default_context(cafile=PKI["CA"])


def env_command(outdir):
    os.makedirs(outdir, exist_ok=True)
    script = os.path.join(outdir, "..", "env_recorder.py")
    with open(script, "w") as f:
        f.write(ENV_RECORDER)
    return "%s %s %s -f %%F --" % (sys.executable, script, outdir)


def recorded(outdir, n, timeout=30):
    """The n deliveries env_command recorded, oldest first (waits for them)."""
    deadline = time.time() + timeout
    while True:
        names = [f for f in os.listdir(outdir) if f.endswith(".json")]
        if len(names) >= n or time.time() > deadline:
            break
        time.sleep(0.05)
    got = []
    for name in names:
        with open(os.path.join(outdir, name)) as f:
            got.append(json.load(f))
    if len(got) != n:
        raise AssertionError("got %d deliveries, want %d" % (len(got), n))
    return got


def by_subject(deliveries):
    out = {}
    for d in deliveries:
        for line in d["stdin"].splitlines():
            if line.startswith("Subject: "):
                out[line[9:]] = d
    return out


def message(subject):
    return "From: a@b\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (subject, subject)


def curl_unix(path, subject):
    """One message over the Unix socket with curl --unix-socket."""
    clients = harness.clients()
    r = subprocess.run([clients.get("curl", "curl"), "-sS", "--unix-socket", path,
                        "smtp://localhost", "--mail-from", "a@b", "--mail-rcpt", "c@d",
                        "-T", "-"], input=message(subject).encode(), capture_output=True,
                       timeout=60)
    return r


def next_port(srv, timeout=30):
    """The next port line after the harness read the first (from the
    buffered stdout it read that one from); the bound only guards
    against a hang"""
    import threading
    got = []
    t = threading.Thread(target=lambda: got.append(srv.proc.stdout.readline()), daemon=True)
    t.start()
    t.join(timeout)
    if not got or not got[0].strip():
        raise AssertionError("no further port line on stdout within %d s" % timeout)
    return int(got[0])


def connect_retry(host, port, timeout=30):
    """A connection once a launcher (systemd-socket-activate) listens"""
    deadline = time.time() + timeout
    while True:
        try:
            return socket.create_connection((host, port), timeout=timeout)
        except ConnectionRefusedError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def free_port_both():
    """A port free on 127.0.0.1 and on ::1 at once (for systemd's 25)."""
    for _ in range(100):
        with socket.socket() as s4:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6) as s6:
                    s6.bind(("::1", port))
                    return port
            except OSError:
                continue
    raise AssertionError("no port free on both 127.0.0.1 and ::1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, personality="smtpipe"):
    """smtpipe with exactly args (no harness defaults); (proc, stdout, stderr)
    once it exited, for start-up failures"""
    exe = harness.binary() if personality == "smtpipe" else harness.mockmta_binary()
    r = subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=60)
    return r


class EveryKind(unittest.TestCase):
    """The issue's example: 127.0.0.1, [::1], 127.0.0.1 with implicit TLS
    and a Unix socket, all in one daemon (ports 0 here, not 25 and 465)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpipe-listeners-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.out = os.path.join(self.tmp, "out")
        self.sock = os.path.join(self.tmp, "smtp.sock")

    def test_one_daemon_every_kind_with_real_clients(self):
        srv = harness.Server("--listen=[::1]:0", "--listen=127.0.0.1:0,tls",
                             "--listen=unix:%s,mode=0666" % self.sock, *tls_args(),
                             command=env_command(self.out))
        with srv:
            # the first line is the --interface listener (harness), then the
            # --listen ones with port 0, in the order given
            v4, v6, tls = srv.port, int(next_port(srv)), int(next_port(srv))
            self.assertEqual(len({v4, v6, tls}), 3)
            log = srv.log()
            self.assertIn("event=start listener=127.0.0.1:%d " % v4, log)
            self.assertIn("event=listen listener=[::1]:%d\n" % v6, log)
            self.assertIn("event=listen listener=127.0.0.1:%d tls=implicit\n" % tls, log)
            self.assertIn("event=listen listener=unix:%s\n" % self.sock, log)
            self.assertTrue(stat.S_ISSOCK(os.stat(self.sock).st_mode))
            self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o666)

            # IPv4, with STARTTLS on the plain listener
            with smtplib.SMTP("127.0.0.1", v4, timeout=30) as s:
                s.starttls(context=context())
                s.sendmail("a@b", ["c@d"], message("v4 starttls"))
            # IPv6
            with smtplib.SMTP("::1", v6, timeout=30) as s:
                s.ehlo()
                self.assertTrue(s.has_extn("starttls"))
                s.sendmail("a@b", ["c@d"], message("v6"))
            # implicit TLS: the handshake before the greeting
            with smtplib.SMTP_SSL("127.0.0.1", tls, timeout=30, context=context()) as s:
                s.ehlo()
                self.assertFalse(s.has_extn("starttls"))  # already TLS
                s.sendmail("a@b", ["c@d"], message("implicit"))
            # the same port spoken in plain text gets no greeting: TLS first
            with socket.create_connection(("127.0.0.1", tls), timeout=30) as c:
                c.sendall(b"EHLO plain\r\n")
                try:
                    got = c.recv(100)
                except ConnectionResetError:
                    got = b""
                self.assertFalse(got.startswith(b"220"), got)
            # the Unix socket, with curl
            r = curl_unix(self.sock, "unix")
            self.assertEqual(r.returncode, 0, r.stderr)

            got = by_subject(recorded(self.out, 4))
            log = srv.log()
        uid = os.geteuid()
        # Received: protocol and peer per listener
        self.assertRegex(got["v4 starttls"]["stdin"], r"\(\[127\.0\.0\.1\]\)\n\tby .* with ESMTPS ")
        self.assertRegex(got["v6"]["stdin"], r"\(\[::1\]\)\n\tby .* with ESMTP ")
        self.assertRegex(got["implicit"]["stdin"], r"\(\[127\.0\.0\.1\]\)\n\tby .* with ESMTPS ")
        self.assertRegex(got["unix"]["stdin"], r"\(\[unix:%d\]\)\n\tby .* with ESMTP " % uid)
        # the command's view of the client
        self.assertEqual(got["unix"]["env"]["SMTPIPE_CLIENT"], "unix:%d" % uid)
        self.assertEqual(got["unix"]["env"]["SMTPIPE_CLIENT_UID"], str(uid))
        self.assertEqual(got["unix"]["env"]["SMTPIPE_LISTENER"], "unix:" + self.sock)
        self.assertEqual(got["v6"]["env"]["SMTPIPE_CLIENT"], "::1")
        self.assertEqual(got["v6"]["env"]["SMTPIPE_LISTENER"], "[::1]:%d" % v6)
        self.assertNotIn("SMTPIPE_CLIENT_UID", got["v6"]["env"])
        self.assertEqual(got["implicit"]["env"]["SMTPIPE_LISTENER"], "127.0.0.1:%d" % tls)
        # every session's log line names its listener; unix with the uid
        self.assertRegex(log, r"event=connect client=127\.0\.0\.1 listener=127\.0\.0\.1:%d\n" % v4)
        self.assertRegex(log, r"event=connect client=::1 listener=\[::1\]:%d\n" % v6)
        self.assertRegex(log, r"event=connect client=127\.0\.0\.1 listener=127\.0\.0\.1:%d "
                              r"tls=implicit\n" % tls)
        self.assertRegex(log, r"event=connect client=unix:%d uid=%d listener=unix:%s\n"
                         % (uid, uid, self.sock))
        # removed at exit
        self.assertFalse(os.path.lexists(self.sock))

    def test_forged_client_variables_are_replaced(self):
        # the daemon's own environment must not speak for a client
        srv = harness.Server(command=env_command(self.out),
                             env={"SMTPIPE_CLIENT_UID": "0", "SMTPIPE_CLIENT": "unix:0",
                                  "SMTPIPE_LISTENER": "forged"})
        with srv:
            with srv.smtp() as s:
                s.sendmail("a@b", ["c@d"], message("tcp"))
            got = recorded(self.out, 1)[0]
        self.assertEqual(got["env"]["SMTPIPE_CLIENT"], "127.0.0.1")
        self.assertEqual(got["env"]["SMTPIPE_LISTENER"], "127.0.0.1:%d" % srv.port)
        self.assertNotIn("SMTPIPE_CLIENT_UID", got["env"])

    def test_port_zero_lines_in_the_order_given(self):
        # every listener with port 0 prints one line, in the order given,
        # before serving; unix: and fixed ports print none
        fixed = free_port()
        srv = harness.Server("--listen=unix:%s" % self.sock, "--listen=[::1]:0",
                             "--listen=127.0.0.1:%d" % fixed, "--listen=127.0.0.2:0",
                             port_arg=True)
        with srv:
            ports = [srv.port, int(next_port(srv)), int(next_port(srv))]
            log = srv.log()
            self.assertIn("event=start listener=127.0.0.1:%d " % ports[0], log)
            self.assertIn("listener=[::1]:%d\n" % ports[1], log)
            self.assertIn("listener=127.0.0.1:%d\n" % fixed, log)
            self.assertIn("listener=127.0.0.2:%d\n" % ports[2], log)
            # each one answers, on the address it names
            for host, port in (("127.0.0.1", ports[0]), ("::1", ports[1]),
                               ("127.0.0.1", fixed), ("127.0.0.2", ports[2])):
                with smtplib.SMTP(host, port, timeout=30) as s:
                    self.assertEqual(s.noop()[0], 250)
            # nothing more on stdout
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.stdout.read(), b"")

    def test_repeated_interface_adds_listeners(self):
        # msmtpd's --interface, repeated: one listener each, all on --port
        # (with --port=0 one free port for all, one line); --listen adds up
        srv = harness.Server("--interface=::1", "--interface=127.0.0.2", "--listen=[::1]:0")
        with srv:
            other = int(next_port(srv))
            for host, port in (("127.0.0.1", srv.port), ("::1", srv.port),
                               ("127.0.0.2", srv.port), ("::1", other)):
                with smtplib.SMTP(host, port, timeout=30) as s:
                    self.assertEqual(s.noop()[0], 250)
            log = srv.log()
            for name in ("127.0.0.1:%d " % srv.port, "[::1]:%d\n" % srv.port,
                         "127.0.0.2:%d\n" % srv.port, "[::1]:%d\n" % other):
                self.assertIn("listener=" + name, log)

    def test_star_is_ipv4_and_ipv6(self):
        srv = harness.Server("--listen=*:0")
        with srv:
            port = int(next_port(srv))
            for host in ("127.0.0.1", "::1"):
                with smtplib.SMTP(host, port, timeout=30) as s:
                    self.assertEqual(s.noop()[0], 250)
            self.assertIn("listener=[::]:%d\n" % port, srv.log())
            self.assertIn("listener=0.0.0.0:%d\n" % port, srv.log())

    def test_mockmta_p_ip_port(self):
        mbox = os.path.join(self.tmp, "mbox")
        port = free_port()
        exe = harness.mockmta_binary()
        p = subprocess.Popen([exe, "-f", "-p", "[::1]:0", "-p", "127.0.0.1:%d" % port, mbox],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            r, _, _ = __import__("select").select([p.stdout], [], [], 30)
            v6 = int(p.stdout.readline())
            with smtplib.SMTP("::1", v6, timeout=30) as s:
                s.sendmail("a@b", ["c@d"], message("mock v6"))
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                s.sendmail("a@b", ["c@d"], message("mock v4"))
        finally:
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=30), 0)
            p.stdout.close()
            p.stderr.close()
        with open(mbox) as f:
            text = f.read()
        self.assertIn("body of mock v6", text)
        self.assertIn("body of mock v4", text)

    def test_client_cap_across_listeners_and_unix_by_uid(self):
        # --max-sessions-per-client=1 with loopback counted: a session on
        # one listener holds the client's allowance on the others too
        srv = harness.Server("--listen=127.0.0.1:0", "--listen=unix:" + self.sock,
                             "--max-sessions-per-client=1", "--client-limit-loopback")
        with srv:
            other = int(next_port(srv))
            first = srv.raw()
            first.expect(220)
            # a second 127.0.0.1 client, on the other listener
            with socket.create_connection(("127.0.0.1", other), timeout=30) as c:
                r = harness.RawClient(0, sock=c)
                r.expect(421, "Too many sessions")
            # a Unix-socket client is counted by its uid, apart from 127.0.0.1
            u1 = socket.socket(socket.AF_UNIX)
            u1.connect(self.sock)
            r1 = harness.RawClient(0, sock=u1, timeout=30)
            r1.expect(220)
            u2 = socket.socket(socket.AF_UNIX)
            u2.connect(self.sock)
            r2 = harness.RawClient(0, sock=u2, timeout=30)
            r2.expect(421, "Too many sessions")
            u1.close()
            u2.close()
            self.assertRegex(srv.log(), r"event=client-cap client=unix:%d sessions=1 "
                                        r"listener=unix:" % os.geteuid())

    def test_session_cap_across_listeners(self):
        # --max-sessions=1: a session on one listener keeps a client of
        # another in the backlog until it ends (no listener has its own cap)
        srv = harness.Server("--listen=[::1]:0", "--max-sessions=1")
        with srv:
            v6 = next_port(srv)
            a = srv.raw(timeout=30)
            a.greet()
            b = harness.RawClient(v6, host="::1", timeout=30)
            a.cmd("QUIT", 221)
            b.expect(220)  # served once a's session ended
            b.cmd("QUIT", 221)
            b.close()
            srv.wait_log("event=close", count=2)
            log = srv.log()
        self.assertLess(log.index("event=close client=127.0.0.1"),
                        log.index("event=connect client=::1"))
        self.assertIn("event=session-cap active=1", log)

    def test_unix_exempt_by_default(self):
        # local clients (loopback, Unix socket) are exempt by default
        srv = harness.Server("--listen=unix:" + self.sock, "--max-sessions-per-client=1")
        with srv:
            socks = []
            for _ in range(3):
                u = socket.socket(socket.AF_UNIX)
                u.connect(self.sock)
                socks.append(u)
                harness.RawClient(0, sock=u, timeout=30).expect(220)
            for u in socks:
                u.close()


class ManualExample(unittest.TestCase):
    """The command line smtpipe(8) shows, run as written but for the ports,
    the paths and --user (free ports, a temporary directory, this user)."""

    def example(self):
        with open(os.path.join(harness.SOURCE, "doc", "smtpipe.8")) as f:
            src = f.read()
        block = src.split(".nf\nsmtpipe \\-\\-listen=", 1)[1].split("\n.fi", 1)[0]
        text = ("smtpipe --listen=" + block).replace("\\-", "-").replace("\\e\n", " ")
        return text.split()

    def test_manual_example_runs(self):
        tmp = tempfile.mkdtemp(prefix="smtpipe-listeners-")
        self.addCleanup(shutil.rmtree, tmp, True)
        argv = self.example()
        self.assertEqual(argv, ["smtpipe", "--listen=127.0.0.1:25", "--listen=[::1]:25",
                                "--listen=127.0.0.1:465,tls",
                                "--listen=unix:/run/smtpipe/smtp.sock", "-c", "cert.pem",
                                "-k", "key.pem", "--user=smtpipe"])
        p25, p465 = free_port_both(), free_port()
        sock = os.path.join(tmp, "smtp.sock")
        subst = {"--listen=127.0.0.1:25": "--listen=127.0.0.1:%d" % p25,
                 "--listen=[::1]:25": "--listen=[::1]:%d" % p25,
                 "--listen=127.0.0.1:465,tls": "--listen=127.0.0.1:%d,tls" % p465,
                 "--listen=unix:/run/smtpipe/smtp.sock": "--listen=unix:" + sock,
                 "cert.pem": PKI["SERVER"], "key.pem": PKI["SERVER_KEY"]}
        argv = [subst.get(a, a) for a in argv[1:] if a != "--user=smtpipe"]
        out = os.path.join(tmp, "out")
        log = os.path.join(tmp, "log")
        p = subprocess.Popen([harness.binary()] + argv + ["--log=" + log,
                                                          "--command=" + env_command(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: os.path.exists(log) and "event=listen listener=unix:" in
                     open(log).read(), "the start-up lines")
            with smtplib.SMTP("127.0.0.1", p25, timeout=30) as s:
                s.sendmail("a@b", ["c@d"], message("man v4"))
            with smtplib.SMTP("::1", p25, timeout=30) as s:
                s.sendmail("a@b", ["c@d"], message("man v6"))
            with smtplib.SMTP_SSL("127.0.0.1", p465, timeout=30, context=context()) as s:
                s.sendmail("a@b", ["c@d"], message("man tls"))
            r = curl_unix(sock, "man unix")
            self.assertEqual(r.returncode, 0, r.stderr)
            got = by_subject(recorded(out, 4))
            self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o600)
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=30)
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(rc, 0)
        self.assertIn("with ESMTPS", got["man tls"]["stdin"])
        self.assertIn("([unix:%d])" % os.geteuid(), got["man unix"]["stdin"])
        self.assertFalse(os.path.lexists(sock))


class Refusals(unittest.TestCase):
    """Start-up failures: a clear line, the personality's status, nothing
    left half-started."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpipe-listeners-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.sock = os.path.join(self.tmp, "smtp.sock")

    def test_busy_port(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        self.addCleanup(busy.close)
        pidfile = os.path.join(self.tmp, "pid")
        for personality, status in (("smtpipe", 3), ("mockmta", 1)):
            args = ["-P", pidfile, "--listen=unix:" + self.sock, "--listen=[::1]:0",
                    "--listen=127.0.0.1:%d" % port, "--log=none"]
            args += ["-f", os.path.join(self.tmp, "mbox")] if personality == "mockmta" \
                else ["--command=true"]
            r = start(args, personality)
            self.assertEqual(r.returncode, status, (personality, r.stderr))
            self.assertEqual(r.stdout, "", "a port was printed before the failure")
            self.assertEqual(r.stderr.strip(), "%s: cannot listen on 127.0.0.1 port %d: "
                             "Address already in use" % (personality, port))
            # nothing half-started: the Unix socket made first is gone
            self.assertFalse(os.path.lexists(self.sock))
            self.assertFalse(os.path.lexists(pidfile))

    def test_stale_socket_is_replaced(self):
        # a socket file nobody listens on (a daemon that was killed -9)
        old = socket.socket(socket.AF_UNIX)
        old.bind(self.sock)
        old.close()
        srv = harness.Server("--listen=unix:" + self.sock)
        with srv:
            self.assertIn("event=stale-socket-removed path=%s" % self.sock, srv.log())
            u = socket.socket(socket.AF_UNIX)
            u.connect(self.sock)
            harness.RawClient(0, sock=u, timeout=30).expect(220)
            u.close()
        self.assertFalse(os.path.lexists(self.sock))

    def test_live_socket_is_refused(self):
        # another process listens there: not taken over, not removed
        live = socket.socket(socket.AF_UNIX)
        live.bind(self.sock)
        live.listen(1)
        self.addCleanup(live.close)
        r = start(["--listen=unix:" + self.sock, "--command=true"])
        self.assertEqual(r.returncode, 3)
        self.assertEqual(r.stderr.strip(), "smtpipe: cannot listen on unix:%s: another "
                                           "process listens there" % self.sock)
        c = socket.socket(socket.AF_UNIX)
        c.connect(self.sock)  # still the other process's
        c.close()

    def test_regular_file_is_refused_not_deleted(self):
        with open(self.sock, "w") as f:
            f.write("precious\n")
        for personality, status in (("smtpipe", 3), ("mockmta", 1)):
            args = ["--listen=unix:" + self.sock]
            args += ["-f", os.path.join(self.tmp, "mbox")] if personality == "mockmta" \
                else ["--command=true"]
            r = start(args, personality)
            self.assertEqual(r.returncode, status, r.stderr)
            self.assertEqual(r.stderr.strip(), "%s: unix:%s: exists and is not a socket "
                                               "(left alone)" % (personality, self.sock))
            with open(self.sock) as f:
                self.assertEqual(f.read(), "precious\n")

    def test_auth_accept_any_checks_every_listener(self):
        # --auth-accept-any is for loopback and Unix sockets only: a second
        # --interface or a --listen must not open it to the network
        for args, want in (
                (["--listen=0.0.0.0:0"], "--listen=0.0.0.0:0 is not"),
                (["--listen=*:0"], "--listen=*:0 is not"),
                (["--listen=[::]:0"], "--listen=[::]:0 is not"),
                (["--interface=0.0.0.0", "--interface=127.0.0.1"], "--interface=0.0.0.0 is not"),
                (["-p", "0.0.0.0:0"], "--listen=0.0.0.0:0 is not"),
        ):
            r = start(["--auth-accept-any", "--log=none", "--command=cat"] + args)
            self.assertEqual(r.returncode, 3, (args, r.stderr))
            self.assertIn(want, r.stderr, args)
            self.assertEqual(r.stdout, "", args)
        # loopback and Unix sockets are fine
        srv = harness.Server("--auth-accept-any", "--listen=[::1]:0", "--listen=127.0.0.2:0",
                             "--listen=unix:" + self.sock)
        with srv:
            next_port(srv)
            next_port(srv)

    def test_symlink_is_refused_not_followed(self):
        target = os.path.join(self.tmp, "target")
        with open(target, "w") as f:
            f.write("x")
        os.symlink(target, self.sock)
        r = start(["--listen=unix:" + self.sock, "--command=true"])
        self.assertEqual(r.returncode, 3)
        self.assertIn("exists and is not a socket", r.stderr)
        self.assertTrue(os.path.islink(self.sock))

    def test_tls_listener_needs_a_certificate(self):
        r = start(["--listen=127.0.0.1:0,tls", "--command=true"])
        self.assertEqual(r.returncode, 3)
        self.assertRegex(r.stderr, r"^smtpipe: 127\.0\.0\.1:\d+: implicit TLS needs -c CERT "
                                   r"and -k KEY\n$")
        self.assertEqual(r.stdout, "")

    def test_bad_values_are_usage_errors(self):
        for value, want in (("127.0.0.1", "has no port"), ("::1:25", "in brackets"),
                            ("127.0.0.1:25,mode=0600", "unix: sockets only"),
                            ("unix:/x,bogus", "unknown option")):
            r = start(["--listen=" + value, "--command=true"])
            self.assertEqual(r.returncode, 3, value)
            self.assertIn(want, r.stderr, value)

    def test_unknown_owner_or_group_refused_at_start(self):
        # one line naming the missing name, and no socket left behind
        for owner, why in (("no-such-user-x", "no such user 'no-such-user-x'"),
                           ("root:no-such-group-x", "no such group 'no-such-group-x'")):
            with self.subTest(owner=owner):
                r = start(["--listen=unix:%s,owner=%s" % (self.sock, owner), "--command=true"])
                self.assertEqual((r.returncode, r.stdout, r.stderr),
                                 (3, "", "smtpipe: --listen: owner=%s: %s\n" % (owner, why)))
                self.assertFalse(os.path.lexists(self.sock))

    def test_mode_and_owner(self):
        if os.geteuid() != 0:
            raise AssertionError("owner= needs root to give a socket away; run as root")
        srv = harness.Server("--listen=unix:%s,mode=0660,owner=nobody:nogroup" % self.sock)
        with srv:
            st = os.stat(self.sock)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
            import pwd
            import grp
            self.assertEqual(st.st_uid, pwd.getpwnam("nobody").pw_uid)
            self.assertEqual(st.st_gid, grp.getgrnam("nogroup").gr_gid)
        # the default: the daemon's user only
        srv = harness.Server("--listen=unix:" + self.sock)
        with srv:
            self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o600)


class Systemd(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpipe-listeners-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.out = os.path.join(self.tmp, "out")

    def test_listen_fds_four_sockets(self):
        # IPv4, IPv6, IPv4 named smtps, and a Unix socket, as systemd passes them
        launcher = os.path.join(self.tmp, "launcher.py")
        with open(launcher, "w") as f:
            f.write(LAUNCHER)
        portfile = os.path.join(self.tmp, "ports")
        sock = os.path.join(self.tmp, "sd.sock")
        srv = harness.Server(*tls_args(), command=env_command(self.out),
                             prefix=[sys.executable, launcher, portfile, sock])
        with srv:
            with open(portfile) as f:
                v4, v6, tls = json.load(f)
            self.assertEqual(srv.port, v4)  # --port=0: the launcher's ports, fd 3 first
            self.assertEqual([int(next_port(srv)) for _ in range(2)], [v6, tls])
            with smtplib.SMTP("127.0.0.1", v4, timeout=30) as s:
                s.starttls(context=context())
                s.sendmail("a@b", ["c@d"], message("sd v4"))
            with smtplib.SMTP("::1", v6, timeout=30) as s:
                s.sendmail("a@b", ["c@d"], message("sd v6"))
            with smtplib.SMTP_SSL("127.0.0.1", tls, timeout=30, context=context()) as s:
                s.sendmail("a@b", ["c@d"], message("sd smtps"))
            r = curl_unix(sock, "sd unix")
            self.assertEqual(r.returncode, 0, r.stderr)
            got = by_subject(recorded(self.out, 4))
            log = srv.log()
        self.assertIn("with ESMTPS", got["sd smtps"]["stdin"])
        self.assertIn("([unix:%d])" % os.geteuid(), got["sd unix"]["stdin"])
        self.assertIn("event=listen listener=127.0.0.1:%d tls=implicit\n" % tls, log)
        self.assertIn("event=listen listener=unix:%s\n" % sock, log)
        self.assertNotIn("--interface", log)
        # the harness's --interface=127.0.0.1 --port=0 bound nothing: systemd's sockets only
        self.assertEqual(log.count("event=listen "), 3)
        # LISTEN_* reached no command
        for d in got.values():
            self.assertFalse([k for k in d["env"] if k.startswith("LISTEN")])
        # systemd's Unix socket is systemd's: left in place
        self.assertTrue(os.path.exists(sock))

    def units(self):
        """The example units, parsed: {name: {section: {key: [values]}}}."""
        out = {}
        for name in sorted(os.listdir(EX)):
            sect = None
            u = out.setdefault(name, {})
            with open(os.path.join(EX, name)) as f:
                for line in f:
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    if line.startswith("["):
                        sect = u.setdefault(line[1:-1], {})
                    else:
                        k, v = line.split("=", 1)
                        sect.setdefault(k, []).append(v)
        return out

    def test_example_units_verify(self):
        names = sorted(os.listdir(EX))
        self.assertEqual(names, ["smtpipe-listeners-smtps.socket", "smtpipe-listeners.service",
                                 "smtpipe-listeners.socket"])
        self.assertEqual(harness.systemd_verify(EX, names, self.tmp), (0, ""))

    def test_example_units_run(self):
        # the three ListenStream= lines of the example, on free ports, passed
        # by systemd-socket-activate with the units' names, to the ExecStart
        units = self.units()
        svc = units["smtpipe-listeners.service"]["Service"]
        order = svc["Sockets"][0].split()
        self.assertEqual(order, ["smtpipe-listeners.socket", "smtpipe-listeners-smtps.socket"])
        listen, names = [], []
        for sname in order:
            s = units[sname]["Socket"]
            listen += s["ListenStream"]
            names += s["FileDescriptorName"] * len(s["ListenStream"])
        self.assertEqual(listen, ["127.0.0.1:25", "[::1]:25", "127.0.0.1:465"])
        self.assertEqual(names, ["smtp", "smtp", "smtps"])
        p25, p465 = free_port_both(), free_port()
        addrs = [a.replace(":25", ":%d" % p25).replace(":465", ":%d" % p465) for a in listen]
        creds = os.path.join(self.tmp, "creds")
        os.mkdir(creds)
        shutil.copy(PKI["SERVER"], os.path.join(creds, "cert.pem"))
        shutil.copy(PKI["SERVER_KEY"], os.path.join(creds, "key.pem"))
        import shlex
        argv = shlex.split(svc["ExecStart"][0].replace("%%", "%"))
        argv = [a.replace("${CREDENTIALS_DIRECTORY}", creds) for a in argv]
        self.assertEqual(argv[0], "/usr/bin/smtpipe")
        argv[0] = harness.binary()
        log = os.path.join(self.tmp, "log")
        argv = [("--log=" + log) if a == "--log=syslog" else
                ("--command=" + env_command(self.out)) if a.startswith("--command=") else a
                for a in argv]
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        npath = os.path.join(self.tmp, "notify")
        notify.bind(npath)
        notify.settimeout(30)
        self.addCleanup(notify.close)
        cmd = ["systemd-socket-activate", "--fdname=" + ":".join(names),
               "-E", "NOTIFY_SOCKET=" + npath]
        for a in addrs:
            cmd += ["-l", a]
        p = subprocess.Popen(cmd + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # systemd-socket-activate execs on the first client
            first = connect_retry("127.0.0.1", p25)
            self.assertEqual(notify.recv(100), b"READY=1")
            with smtplib.SMTP() as s:
                s.sock = first
                s.file = None
                s.getreply()
                s.sendmail("a@b", ["c@d"], message("unit v4"))
            with smtplib.SMTP("::1", p25, timeout=30) as s:
                s.sendmail("a@b", ["c@d"], message("unit v6"))
            with smtplib.SMTP_SSL("127.0.0.1", p465, timeout=30, context=context()) as s:
                s.sendmail("a@b", ["c@d"], message("unit smtps"))
            got = by_subject(recorded(self.out, 3))
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=30)
            err = p.stderr.read().decode(errors="replace")
            p.stderr.close()
        self.assertEqual(rc, 0, err)
        self.assertIn("with ESMTPS", got["unit smtps"]["stdin"])
        self.assertRegex(got["unit v4"]["stdin"], r"with ESMTP ")
        self.assertIn("([::1])", got["unit v6"]["stdin"])
        with open(log) as f:
            text = f.read()
        self.assertIn("event=listen listener=127.0.0.1:%d tls=implicit" % p465, text)


if __name__ == "__main__":
    harness.main()
