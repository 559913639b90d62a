"""The examples in examples/, each tried for real where this machine allows.

- systemd units: `systemd-analyze verify`, then the ExecStart lines are run
  the way systemd would run them: smtpipe.service with NOTIFY_SOCKET (the
  test is the service manager and waits for READY=1 and STOPPING=1), the
  Accept=no pair under systemd-socket-activate (LISTEN_FDS), the Accept=yes
  pair under systemd-socket-activate --accept --inetd. No systemd runs as
  PID 1 here, so the sandboxing keys are checked by reading them.
- smtpipe.init: really starts smtpipe with start-stop-daemon as nobody (by
  --chuid, or started as root with --user=nobody),
  delivers a message, reloads and stops it.
- xinetd.smtpipe: really run by xinetd on a free port.
- pies.conf: GNU pies is not packaged in Debian 12; its component's command
  is run in the inetd mode pies would use, over a socketpair, and delivers.
- Containerfile: no container engine runs here; it is parsed, its build
  stage's commands are run on this tree, and its CMD serves a message from
  what that build installed.
- mockmta_fixture.py: run as the test it is.
"""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EX = os.path.join(harness.SOURCE, "examples")
MSMTP = "/usr/bin/msmtp -f %F --"  # the delivery command every example uses


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connect(port, timeout=10):
    """A socket to 127.0.0.1:port, retried until something listens."""
    deadline = time.time() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.time() > deadline:
                raise AssertionError("nothing listens on port %d" % port)
            time.sleep(0.05)


def send_one(sock, subject):
    """One whole SMTP transaction on sock; the 250 after DATA is asserted."""
    c = harness.RawClient(0, sock=sock)
    try:
        c.greet()
        c.message("Subject: %s\r\n\r\nbody of %s\r\n.\r\n" % (subject, subject))
        c.cmd("QUIT", 221)
    finally:
        c.close()


def unit(name):
    """A unit file as {section: {key: [values]}} (systemd's syntax: comments,
    sections, key=value; a key may repeat)."""
    out, section = {}, None
    with open(os.path.join(EX, name)) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = out.setdefault(line.strip("[]"), {})
                continue
            key, sep, value = line.partition("=")
            if not sep or section is None:
                raise AssertionError("%s: not a unit file line: %r" % (name, line))
            section.setdefault(key.strip(), []).append(value.strip())
    return out


def exec_argv(name, outdir):
    """ExecStart of a unit as the argv systemd would run (%% is %), with
    the installed paths replaced by the build and msmtp by the recorder."""
    line = unit(name)["Service"]["ExecStart"][0]
    argv = shlex.split(line.replace("%%", "%"))
    assert argv[0] == "/usr/bin/smtpipe", argv
    cmd = [a for a in argv if a.startswith("--command=")]
    assert cmd == ["--command=" + MSMTP], argv
    argv[argv.index(cmd[0])] = "--command=" + harness.recorder_command(outdir)
    return [harness.binary()] + argv[1:]


def recorded(outdir):
    """The deliveries the recorder wrote to outdir. Each 250 came after
    its command exited, so every file is complete when the client has it."""
    out = []
    for name in sorted(f[:-5] for f in os.listdir(outdir) if f.endswith(".json")):
        with open(os.path.join(outdir, name + ".json")) as f:
            meta = json.load(f)
        with open(os.path.join(outdir, name + ".msg"), "rb") as f:
            out.append(harness.Delivery(meta, f.read()))
    return out


class Notify:
    """The service manager's end of NOTIFY_SOCKET."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(20)

    def expect(self, what):
        got = self.sock.recv(4096).decode()
        if what not in got.split("\n"):
            raise AssertionError("notify: got %r, want %s" % (got, what))

    def close(self):
        self.sock.close()


def stop(proc, sig=signal.SIGTERM):
    """Signal proc and reap it; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=30)
    finally:
        for f in (proc.stdout, proc.stderr):
            if f:
                f.close()


class Systemd(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpipe-examples-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.out = os.path.join(self.tmp, "out")

    def deliveries(self, n):
        got = recorded(self.out)
        self.assertEqual(len(got), n)
        return got

    def test_units_verify(self):
        units = sorted(f for f in os.listdir(EX) if f.endswith((".service", ".socket")))
        self.assertEqual(units, ["smtpipe-activated.service", "smtpipe-activated.socket",
                                 "smtpipe.service", "smtpipe.socket", "smtpipe@.service"])
        self.assertEqual(harness.systemd_verify(EX, units, self.tmp), (0, ""))

    def test_hardening(self):
        # what systemd-analyze verify cannot tell: that the sandbox is there
        common = {"DynamicUser": ["yes"], "NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"],
                  "ProtectHome": ["yes"], "PrivateTmp": ["yes"]}
        for name in ("smtpipe.service", "smtpipe@.service", "smtpipe-activated.service"):
            s = unit(name)["Service"]
            for k, v in common.items():
                self.assertEqual(s.get(k), v, "%s %s" % (name, k))
        s = unit("smtpipe.service")["Service"]
        self.assertEqual(s["Type"], ["notify"])
        self.assertEqual(s["AmbientCapabilities"], ["CAP_NET_BIND_SERVICE"])
        self.assertEqual(s["CapabilityBoundingSet"], ["CAP_NET_BIND_SERVICE"])
        # the socket-activated services bind nothing: no capability at all
        for name in ("smtpipe@.service", "smtpipe-activated.service"):
            self.assertNotIn("AmbientCapabilities", unit(name)["Service"])
        self.assertEqual(unit("smtpipe-activated.service")["Service"]["Type"], ["notify"])
        self.assertEqual(unit("smtpipe.socket")["Socket"]["Accept"], ["yes"])
        self.assertEqual(unit("smtpipe@.service")["Service"]["StandardInput"], ["socket"])
        self.assertEqual(unit("smtpipe-activated.socket")["Socket"]["Accept"], ["no"])

    def test_notify_service_runs(self):
        argv = exec_argv("smtpipe.service", self.out)
        port = free_port()
        self.assertIn("--port=25", argv)
        argv[argv.index("--port=25")] = "--port=%d" % port
        notify = Notify(self.tmp)
        self.addCleanup(notify.close)
        p = subprocess.Popen(argv, env=dict(os.environ, NOTIFY_SOCKET=notify.path),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            notify.expect("READY=1")
            send_one(connect(port), "notify")
            # ExecReload, with $MAINPID as systemd fills it in
            reload = unit("smtpipe.service")["Service"]["ExecReload"][0]
            r = subprocess.run(shlex.split(reload.replace("$MAINPID", str(p.pid))), timeout=10)
            self.assertEqual(r.returncode, 0)
            send_one(connect(port), "after reload")
        finally:
            rc = stop(p)
        notify.expect("STOPPING=1")
        self.assertEqual(rc, 0)
        got = self.deliveries(2)
        self.assertEqual(got[0].recipients, ["c@d"])
        self.assertEqual(got[0].sender, "a@b")

    def listen_stream(self, name):
        addr = unit(name)["Socket"]["ListenStream"]
        self.assertEqual(addr, ["127.0.0.1:25"])
        return "127.0.0.1:%d" % free_port()

    def test_socket_activation_accept_no(self):
        addr = self.listen_stream("smtpipe-activated.socket")
        argv = exec_argv("smtpipe-activated.service", self.out)
        self.assertFalse([a for a in argv if a.startswith(("--port", "-p", "--interface"))])
        notify = Notify(self.tmp)
        self.addCleanup(notify.close)
        # systemd-socket-activate binds, waits for a client, then execs the
        # service with LISTEN_FDS=1 and the socket as fd 3, as systemd does
        # (it drops NOTIFY_SOCKET from the environment unless told with -E)
        p = subprocess.Popen(["systemd-socket-activate", "-l", addr,
                              "-E", "NOTIFY_SOCKET=" + notify.path] + argv,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            port = int(addr.rsplit(":", 1)[1])
            first = connect(port)
            notify.expect("READY=1")
            send_one(first, "activated")
            send_one(connect(port), "activated again")  # one process, many sessions
        finally:
            rc = stop(p)
        self.assertEqual(rc, 0)
        self.assertEqual(len(self.deliveries(2)), 2)

    def test_socket_accept_yes(self):
        addr = self.listen_stream("smtpipe.socket")
        argv = exec_argv("smtpipe@.service", self.out)
        self.assertIn("--inetd", argv)
        # one smtpipe per connection, the connection on stdin and stdout
        p = subprocess.Popen(["systemd-socket-activate", "-l", addr, "--accept", "--inetd"] + argv,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            port = int(addr.rsplit(":", 1)[1])
            send_one(connect(port), "inetd one")
            send_one(connect(port), "inetd two")
            got = self.deliveries(2)
        finally:
            stop(p)
        self.assertEqual(sorted(g.stdin.count(b"body of inetd") for g in got), [1, 1])


class Others(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpipe-examples-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o777)  # the services run as nobody

    def test_start_stop_daemon_script(self):
        self.start_stop_daemon("nobody", "")  # start-stop-daemon --chuid, as msmtpd's manual

    def test_start_stop_daemon_script_user(self):
        self.start_stop_daemon("", "--user=nobody")  # started as root, smtpipe drops it

    def start_stop_daemon(self, user, args):
        port = free_port()
        # a delivery command nobody can run, which records its argv and input
        record = os.path.join(self.tmp, "record")
        with open(record, "w") as f:
            f.write('#!/bin/sh\nprintf "%%s\\n" "$@" > %s/argv\ncat > %s/msg\n' % (self.tmp, self.tmp))
        os.chmod(record, 0o755)
        pidfile = os.path.join(self.tmp, "pid")
        env = dict(os.environ, SMTPIPE=harness.binary_for_others(), PIDFILE=pidfile, SMTPIPE_USER=user,
                   SMTPIPE_COMMAND=record + " -f %F --",
                   SMTPIPE_ARGS="--port=%d --log=none %s" % (port, args))
        init = os.path.join(EX, "smtpipe.init")

        def run(action):
            r = subprocess.run([init, action], env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, "%s: %s" % (action, r.stderr))

        run("start")
        try:
            send_one(connect(port), "init")
            with open(pidfile) as f:
                pid = int(f.read())
            with open("/proc/%d/status" % pid) as f:
                uid = [line.split()[1] for line in f if line.startswith("Uid:")][0]
            self.assertEqual(int(uid), 65534)  # --chuid nobody or --user=nobody took effect
            run("reload")
            send_one(connect(port), "reloaded")
            self.assertTrue(os.path.exists("/proc/%d" % pid))  # HUP reloads, does not stop
        finally:
            run("stop")
        self.assertFalse(os.path.exists(pidfile))
        self.assertFalse(os.path.exists("/proc/%d" % pid))
        with open(os.path.join(self.tmp, "argv")) as f:  # the command stayed one string
            self.assertEqual(f.read().split("\n"), ["-f", "a@b", "--", "c@d", ""])
        with open(os.path.join(self.tmp, "msg")) as f:
            self.assertIn("body of reloaded", f.read())

    def test_xinetd(self):
        port = free_port()
        with open(os.path.join(EX, "xinetd.smtpipe")) as f:
            conf = f.read()
        mbox = os.path.join(self.tmp, "m.mbox")
        edits = [(r"port\s*= 25", "port = %d" % port), ("/usr/bin/smtpipe", harness.binary_for_others()),
                 (r"user\s*= mail", "user = nobody"),
                 (re.escape("--command=" + MSMTP.replace(" ", "\\ ")), "--mailbox=" + mbox)]
        for old, new in edits:
            conf, n = re.subn(old, new, conf)
            self.assertEqual(n, 1, old)
        path = os.path.join(self.tmp, "xinetd.conf")
        with open(path, "w") as f:
            f.write("defaults\n{\n}\n" + conf)
        p = subprocess.Popen(["xinetd", "-dontfork", "-f", path, "-pidfile",
                              os.path.join(self.tmp, "x.pid")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            send_one(connect(port), "xinetd")
        finally:
            stop(p)
        with open(mbox) as f:
            self.assertIn("body of xinetd", f.read())

    def test_pies_component(self):
        with open(os.path.join(EX, "pies.conf")) as f:
            text = f.read()
        body = re.sub(r"#.*", "", text)
        self.assertEqual(body.count("{"), body.count("}"))
        stmts = [s.strip() for s in re.split(r"[{};]", body) if s.strip()]
        self.assertEqual(stmts[0], "component sm")
        self.assertIn("mode inetd", stmts)
        self.assertIn("socket inet://127.0.0.1:25", stmts)
        cmd = shlex.split([s for s in stmts if s.startswith("command ")][0])[1].split()
        self.assertEqual(cmd[0], "/usr/bin/mockmta")
        if shutil.which("pies"):
            r = subprocess.run(["pies", "--config-file", os.path.join(EX, "pies.conf"), "--lint"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
        # pies runs the command with the connection on stdin and stdout
        mbox = os.path.join(self.tmp, "dropmail")
        argv = [a.replace("/var/spool/mail/dropmail", mbox) for a in cmd[1:]]
        rc, err = harness.run_inetd(argv + ["--log=none"], lambda c: send_one(c.sock, "pies"),
                                    personality="mockmta")
        self.assertEqual(rc, 0, err)
        with open(mbox) as f:
            self.assertIn("body of pies", f.read())

    def test_test_suite_fixture(self):
        env = dict(os.environ, MOCKMTA=harness.mockmta_binary())
        r = subprocess.run([sys.executable, os.path.join(EX, "mockmta_fixture.py"), "-v"], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("test_the_application_sends_mail", r.stderr)
        self.assertIn("OK", r.stderr)


def containerfile():
    """The Containerfile as (instruction, argument) pairs: continuations
    joined, comments dropped."""
    with open(os.path.join(EX, "Containerfile")) as f:
        text = re.sub(r"(?m)^\s*#.*\n", "", f.read())
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word, rest.strip()))
    return out


class Container(unittest.TestCase):
    def test_containerfile(self):
        steps = containerfile()
        known = {"FROM", "RUN", "COPY", "EXPOSE", "USER", "CMD", "ENV", "WORKDIR", "LABEL"}
        self.assertEqual([w for w, _ in steps if w not in known], [])
        self.assertEqual(steps[0][0], "FROM")
        stages = [a.split() for w, a in steps if w == "FROM"]
        self.assertEqual(stages[0][1:], ["AS", "build"])
        self.assertEqual(stages[1], ["debian:12-slim"])
        i = [k for k, (w, _) in enumerate(steps) if w == "FROM"][1]
        build, final = steps[:i], steps[i:]
        self.assertIn(("COPY", ". /src"), build)
        self.assertIn(("COPY", "--from=build /usr/local/ /usr/local/"), final)
        self.assertIn(("USER", "nobody"), final)
        # every package it installs is one Debian knows
        for w, a in steps:
            if w == "RUN" and "apt-get install" in a:
                pkgs = re.search(r"--no-install-recommends (.*?)\s*&&", a).group(1).split()
                r = subprocess.run(["apt-cache", "show", "--no-all-versions"] + pkgs,
                                   capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
        # the build stage's commands, run on this tree
        with tempfile.TemporaryDirectory() as tmp:
            # only the cmake step: the apt-get steps are for the image
            run = [a for w, a in build if w == "RUN" and a.startswith("cmake ")][0]
            self.assertNotIn("apt-get", run)
            run = re.sub(r"(?<![\w/])/src\b", harness.SOURCE, run)
            run = re.sub(r"(?<![\w/])/build\b", os.path.join(tmp, "build"), run)
            root = os.path.join(tmp, "root")
            r = subprocess.run(["sh", "-c", run], env=dict(os.environ, DESTDIR=root),
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr)
            # COPY --from=build /usr/local/ then CMD, with msmtp replaced
            cmd = json.loads([a for w, a in final if w == "CMD"][0])
            self.assertTrue(cmd[0].startswith("/usr/local/"))
            exe = root + cmd[0]
            out = os.path.join(tmp, "out")
            args = {"--port=2525": "--port=0", "--command=msmtp -f %F --":
                    "--command=" + harness.recorder_command(out)}
            for a in args:
                self.assertIn(a, cmd)
            p = subprocess.Popen([exe] + [args.get(a, a) for a in cmd[1:]],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                port = int(p.stdout.readline())
                send_one(connect(port), "container")
            finally:
                rc = stop(p)
            self.assertEqual(rc, 0)
            self.assertEqual(len(recorded(out)), 1)


if __name__ == "__main__":
    harness.main()
