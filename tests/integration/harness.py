"""harness.py - start the real smtpipe binary and talk to it in tests.

Every integration test imports this module. Servers listen on
127.0.0.1 with --port=0 (smtpipe prints the port it bound), log to a
file in their own temporary directory, and deliver to the recorder
(tests/tools/recorder.py) unless told otherwise, so tests can assert
the exact argv and stdin bytes each delivery got.
"""
import atexit
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

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("SMTPIPE_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
RECORDER = os.path.join(SOURCE, "tests", "tools", "recorder.py")


def real_binary():
    """Path of the smtpipe binary under test (ctest sets SMTPIPE)."""
    path = os.environ.get("SMTPIPE")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("SMTPIPE must name the smtpipe binary (run the tests through ctest)")
    return path


_wrappers = {}


def _valgrind_wrapper(target):
    """With SMTPIPE_VALGRIND_DIR set, run the binary under valgrind: a
    wrapper named like the personality, logs in that directory (the
    forked sessions stay under valgrind; commands they start do not)."""
    logdir = os.environ["SMTPIPE_VALGRIND_DIR"]
    if target not in _wrappers:
        d = tempfile.mkdtemp(prefix="smtpipe-vg-")
        atexit.register(shutil.rmtree, d, True)
        path = os.path.join(d, os.path.basename(target))
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexec valgrind -q --error-exitcode=99 --leak-check=full "
                    "--errors-for-leak-kinds=definite --show-leak-kinds=definite "
                    "--log-file=%s/vg.%%p.log %s \"$@\"\n" % (shlex.quote(logdir), shlex.quote(target)))
        os.chmod(path, 0o755)
        _wrappers[target] = path
    return _wrappers[target]


def binary():
    """The smtpipe personality to run (maybe wrapped in valgrind)."""
    if os.environ.get("SMTPIPE_VALGRIND_DIR"):
        return _valgrind_wrapper(real_binary())
    return real_binary()


def mockmta_binary():
    """The mockmta personality: the symlink beside the binary."""
    path = os.path.join(os.path.dirname(real_binary()), "mockmta")
    if os.environ.get("SMTPIPE_VALGRIND_DIR"):
        return _valgrind_wrapper(path)
    return path


def _others_can_run(path):
    """Whether a user other than root can reach and run path: every
    directory above it searchable by others, the file executable."""
    path = os.path.realpath(path)
    if not os.stat(path).st_mode & 0o001:
        return False
    d = os.path.dirname(path)
    while True:
        if not os.stat(d).st_mode & 0o001:
            return False
        if d == "/":
            return True
        d = os.path.dirname(d)


_shared = {}


def binary_for_others(personality="smtpipe"):
    """The binary for tests that run it as another user (start-stop-daemon
    --chuid nobody, xinetd's user = nobody): the build itself when others
    can reach it, else a copy in a world-readable temporary directory,
    since a clone under a mode-0700 home (/root) is out of their reach."""
    if _others_can_run(real_binary()):
        return binary() if personality == "smtpipe" else mockmta_binary()
    if "dir" not in _shared:
        d = tempfile.mkdtemp(prefix="smtpipe-shared-")
        atexit.register(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        shutil.copy2(real_binary(), os.path.join(d, "smtpipe"))
        os.chmod(os.path.join(d, "smtpipe"), 0o755)
        os.symlink("smtpipe", os.path.join(d, "mockmta"))
        _shared["dir"] = d
    return os.path.join(_shared["dir"], personality)


def make_pki():
    """Test certificates (tests/tools/make-certs.sh) in a new temporary
    directory: {"SERVER": path, "SERVER_KEY": path, ..., "dir": the
    directory}; the caller removes "dir" when done."""
    d = tempfile.mkdtemp(prefix="smtpipe-pki-")
    out = subprocess.run([os.path.join(SOURCE, "tests", "tools", "make-certs.sh"), d],
                         capture_output=True, text=True, check=True).stdout
    pki = dict(line.split("=", 1) for line in out.splitlines())
    pki["dir"] = d
    return pki


_clients = None


def clients():
    """Real client programs (swaks, msmtp, curl, smtp-source, msmtpd)."""
    global _clients
    if _clients is None:
        out = subprocess.run([os.path.join(SOURCE, "tests", "tools", "clients.sh")],
                             capture_output=True, text=True, check=True).stdout
        _clients = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        for name, path in _clients.items():
            if not path or not os.access(path, os.X_OK):
                raise RuntimeError("client %s is missing: %r" % (name, path))
    return _clients


def concurrently(n, fn):
    """fn(0) .. fn(n-1), each in its own thread, all at once; returns
    [(i, exception)] for each call that raised"""
    import threading
    errors = []

    def run(i):
        try:
            fn(i)
        except Exception as e:  # noqa: BLE001 - returned to the test
            errors.append((i, e))
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors


def recorder_command(outdir, *opts, exit_code=None, sleep=None, kill_with=None, noread=False,
                     stdout=None):
    """A --command that records each delivery into outdir (see recorder.py):
    it reads all of stdin, then exits exit_code, sleeps, or kills itself
    with kill_with (a signal number). Raw recorder options may be given as opts too."""
    opts = list(opts)
    if exit_code is not None:
        opts += ["--exit", str(exit_code)]
    if sleep is not None:
        opts += ["--sleep", str(sleep)]
    if kill_with is not None:
        opts += ["--signal", str(int(kill_with))]
    if noread:
        opts.append("--noread")
    if stdout is not None:
        opts += ["--stdout", stdout]
    return " ".join([shlex.quote(sys.executable), shlex.quote(RECORDER), shlex.quote(outdir)]
                    + [shlex.quote(o) for o in opts] + ["--", "-f", "%F", "--"])


class Delivery:
    def __init__(self, meta, data):
        self.argv = meta["argv"]
        self.sender_env = meta["sender_env"]
        self.fds = meta["fds"]
        self.stdin = data

    @property
    def env(self):
        """The environment the command saw (the subset the recorder keeps)."""
        return {"SMTPIPE_SENDER": self.sender_env}

    @property
    def recipients(self):
        """What followed the template's final "--"."""
        a = self.argv
        return a[len(a) - a[::-1].index("--"):]

    @property
    def sender(self):
        return self.argv[self.argv.index("-f") + 1]


HANG = 60  # seconds: a bound that only guards against a hang, never a timing assertion


def wait_for(fn, what, timeout=HANG):
    """fn()'s first true value, polled every 50 ms. The timeout only
    guards against a hang: past it, AssertionError naming what was
    awaited (what: a string, or a function giving one, called only
    then, e.g. to show the log)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %g s waiting for %s"
                                 % (timeout, what() if callable(what) else what))
        time.sleep(0.05)


def _proc_stat(pid):
    """(state letter, parent pid) of pid from /proc, or None once it is gone"""
    try:
        with open("/proc/%s/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):  # gone meanwhile, or half read
        return None


def alive(pid):
    """pid is a process and not a zombie (exited, not yet reaped)"""
    st = _proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


_SANITIZED = None


def sanitized():
    """True when the smtpipe under test is an AddressSanitizer build (CI's
    second stage): its allocator keeps freed memory in quarantine, unwiped
    and unreused, and it maps terabytes of shadow, so what a process's
    memory or RSS shows is the sanitizer's, not the C library's"""
    global _SANITIZED
    if _SANITIZED is None:
        with open(real_binary(), "rb") as f:
            _SANITIZED = b"__asan_init" in f.read()
    return _SANITIZED


SANITIZED_MEMORY = ("an ASan build: its allocator quarantines freed memory and maps terabytes "
                    "of shadow; the first stage's build runs this")


def writable_memory(pid):
    """(mapping name, bytes) of each writable mapping of pid, read through
    /proc/PID/mem (root: smtpipe's processes are not dumpable)"""
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb") as mem:
        for line in maps:
            f = line.split()
            if "rw" not in f[1]:
                continue
            a, b = (int(x, 16) for x in f[0].split("-"))
            try:
                mem.seek(a)
                data = mem.read(b - a)
            except OSError:  # a guard page, a mapping gone meanwhile
                continue
            yield (f[5] if len(f) > 5 else "anon"), data


def memory_hits(pid, needles):
    """needles found in pid's writable memory: {needle: [mapping, ...]}"""
    hits = {}
    for name, data in writable_memory(pid):
        for n in needles:
            if n in data:
                hits.setdefault(n, []).append(name)
    return hits


def connect_pids(log):
    """the pid of the process that served each session, in order (from
    each session's event=connect line)"""
    return [int(p) for p in re.findall(r"\[(\d+)\]: session=\S+ event=connect ", log)]


def sessions_closed(n):
    """a Server.wait_log condition: n sessions logged their close"""
    def over(log):
        """%d sessions closed"""
        return log.count("event=close ") >= n
    over.__doc__ = over.__doc__ % n
    return over


def children(pid, zombies=False, descendants=False):
    """pids of pid's child processes (from /proc, so those of every
    thread), sorted; zombies among them only when asked; with
    descendants, their children too, and theirs."""
    kids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            st = _proc_stat(p)
            if st is not None:
                kids.setdefault(st[1], []).append((int(p), st[0]))
    out, todo = [], [pid]
    while todo:
        for c, state in kids.get(todo.pop(), []):
            if zombies or state not in ("Z", "X"):
                out.append(c)
            if descendants:
                todo.append(c)
    return sorted(out)


def bound(name):
    """A limit's value as src/bounds.h defines it: N, or (N * M)"""
    with open(os.path.join(SOURCE, "src", "bounds.h")) as f:
        m = re.search(r"#define %s\s+\(?(\d+)(?: \* (\d+))?\)?" % name, f.read())
    assert m, "%s not in src/bounds.h" % name
    return int(m.group(1)) * int(m.group(2) or 1)


def bus_env(path):
    """The environment of a process that finds only the D-Bus session
    bus at path (which need not exist), and no display from which
    D-Bus could autolaunch another."""
    env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=" + path)
    env.pop("DISPLAY", None)
    return env


def log_matches(pattern, count=1):
    """For Server.wait_log: a test of the log, true once the regular
    expression pattern matches it count times."""

    def matches(log):
        return len(re.findall(pattern, log)) >= count
    matches.__doc__ = "%r x%d (a regular expression)" % (pattern, count)
    return matches


def sessions_over(log):
    """every session that logged its connect has ended and been reaped"""
    # A session logs event=connect before its greeting, and the listener
    # logs its exit (or crash) after waitpid(): so once the clients are
    # done, this is true exactly when no session of theirs still runs,
    # and with it every delivery they made is in. Needs --log-level=debug
    # (the harness's default), at which the listener logs the exits.
    return (log.count("event=session-exit ") + log.count("event=session-crashed ")
            >= log.count("event=connect "))


class Server:
    """A running smtpipe; use as a context manager."""

    def __init__(self, *args, command=None, recorder_opts=(), mailbox=None, env=None,
                 personality="smtpipe", expect_exit=0, port_arg=True, timeout=10,
                 log_level=None, prefix=(), preexec_fn=None):
        self.dir = tempfile.mkdtemp(prefix="smtpipe-test-")
        atexit.register(shutil.rmtree, self.dir, True)
        self.logfile = os.path.join(self.dir, "smtpipe.log")
        self.outdir = os.path.join(self.dir, "out")
        self.expect_exit = expect_exit
        self._raws = []
        exe = binary() if personality == "smtpipe" else mockmta_binary()
        argv = [exe, "--interface=127.0.0.1"]
        if port_arg:
            argv.append("--port=0")
        argv += ["--log=" + self.logfile, "--log-level=" + (log_level or "debug")]
        if mailbox is not None:
            self.mailbox = mailbox if os.path.isabs(mailbox) else os.path.join(self.dir, mailbox)
            argv.append(self.mailbox)
        else:
            argv.append("--command=" + (command or recorder_command(self.outdir, *recorder_opts)))
        argv[2:2] = list(args)
        if personality == "mockmta" and "-f" not in args and "-d" not in args:
            argv.insert(1, "-f")
        argv[0:0] = list(prefix)  # a wrapper that runs the binary, e.g. failsync
        e = dict(os.environ)
        e.update(env or {})
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                                     preexec_fn=preexec_fn)
        line = self._read_port(timeout)
        self.port = int(line)

    def _read_port(self, timeout):
        import select
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else b""
        if not line.strip():
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace")
            raise RuntimeError("smtpipe did not print its port: %s (%s)" % (err, self.argv))
        return line.decode().strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)
        return False

    def stop(self, check=True):
        for c in self._raws:
            c.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            if check:
                raise AssertionError("smtpipe did not stop on SIGTERM")
        self.proc.stdout.close()
        self.stderr = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        if check and rc != self.expect_exit:
            raise AssertionError("smtpipe exited %s, want %s; stderr: %s"
                                 % (rc, self.expect_exit, self.stderr))
        return rc

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def deliveries(self, wait_for=None, timeout=10):
        """What the recorder got, in order; optionally wait for a count."""
        deadline = time.time() + timeout
        while True:
            out = []
            if os.path.isdir(self.outdir):
                for name in sorted(os.listdir(self.outdir)):
                    if name.endswith(".json"):
                        base = os.path.join(self.outdir, name[:-5])
                        try:
                            with open(base + ".json") as f:
                                meta = json.load(f)
                        except ValueError:
                            continue  # still being written
                        with open(base + ".msg", "rb") as f:
                            out.append(Delivery(meta, f.read()))
            if wait_for is None or len(out) >= wait_for or time.time() > deadline:
                return out
            time.sleep(0.05)

    def wait_log(self, text, timeout=30, count=1):
        """The log once it holds text at least count times (text may also
        be a function of the log, true when the wait is over). The
        timeout only guards against a hang: past it, AssertionError
        naming what was awaited, with the end of the log.
        For "nothing was delivered", wait for the sessions' ends first,
        e.g. wait_log("event=session-exit ", count=n): a session's
        deliveries are all done before its process exits."""
        deadline = time.time() + timeout
        while True:
            log = self.log()
            if text(log) if callable(text) else log.count(text) >= count:
                return log
            if time.time() > deadline:
                what = (getattr(text, "__doc__", None) or getattr(text, "__name__", "a condition")
                        if callable(text) else "%r x%d" % (text, count))
                raise AssertionError("not in the log within %d s: %s\n%s"
                                     % (timeout, what, log[-4000:]))
            time.sleep(0.05)

    def smtp(self, **kw):
        import smtplib
        return smtplib.SMTP("127.0.0.1", self.port, timeout=kw.pop("timeout", 20), **kw)

    def raw(self, timeout=10):
        c = RawClient(self.port, timeout=timeout)
        self._raws.append(c)  # closed by stop()
        return c


class RawClient:
    """Bytes out, replies in: for byte-exact and hostile cases."""

    def __init__(self, port, timeout=10, host="127.0.0.1", sock=None):
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def reply(self):
        """One whole reply: (code, [text lines])."""
        lines = []
        while True:
            line = self._line()
            lines.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    read_reply = reply

    def expect(self, code, text=None):
        got, lines = self.reply()
        if got != code or (text and not any(text in l for l in lines)):
            raise AssertionError("got %d %s, want %d %s" % (got, lines, code, text or ""))
        return lines

    def cmd(self, line, code, text=None):
        self.send(line + "\r\n")
        return self.expect(code, text)

    def greet(self, name="c.test"):
        """Read the greeting and say EHLO; returns self."""
        self.expect(220)
        self.cmd("EHLO " + name, 250)
        return self

    def data(self, sender="a@b", rcpts=("c@d",)):
        """MAIL, RCPT..., and DATA up to its 354; returns self."""
        self.cmd("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            self.cmd("RCPT TO:<%s>" % r, 250)
        self.cmd("DATA", 354)
        return self

    def message(self, body, want=250, sender="a@b", rcpts=("c@d",)):
        """MAIL, RCPT..., DATA, the text (ending in CRLF.CRLF), and the
        reply to it, which must be want."""
        self.data(sender, rcpts).send(body)
        return self.expect(want)

    def closed(self, timeout=5):
        """True when the server closed the connection (EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def run_inetd(args, script, personality="smtpipe", timeout=30, env=None):
    """Run one --inetd session over a socketpair; script(client) talks.
    Returns (exit code, stderr)."""
    a, b = socket.socketpair()
    exe = binary() if personality == "smtpipe" else mockmta_binary()
    argv = [exe] + (["--inetd"] if personality == "smtpipe" else []) + list(args)
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen(argv, stdin=b, stdout=b, stderr=subprocess.PIPE, env=e)
    b.close()
    c = RawClient(0, sock=a, timeout=timeout)
    try:
        script(c)
    finally:
        a.close()
    rc = p.wait(timeout=timeout)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    return rc, err


def inetd_on_socket(args, log=None, env=None):
    """smtpipe --inetd (logging to log, if given) with one socket on 0, 1
    and 2 (as xinetd and GNU pies run it); returns the process and the
    client's end, whose reads give up after HANG (a guard against a hang)."""
    a, b = socket.socketpair()
    p = subprocess.Popen([binary(), "--inetd"] + (["--log=" + log] if log else []) + list(args),
                         stdin=b, stdout=b, stderr=b, env=env)
    b.close()
    a.settimeout(HANG)
    return p, a


def read_to_eof(sock):
    """Every byte the peer sends until it closes; sock is closed then."""
    got = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return got
            got += chunk
    finally:
        sock.close()


def systemd_verify(src_dir, names, tmp):
    """systemd-analyze verify of the units names in src_dir, copied into
    tmp with /usr/bin/smtpipe replaced by the binary under test (verify
    checks that ExecStart's program exists): (exit status, its stderr)"""
    for u in names:
        with open(os.path.join(src_dir, u)) as f:
            text = f.read().replace("/usr/bin/smtpipe", os.path.abspath(binary()))
        with open(os.path.join(tmp, u), "w") as f:
            f.write(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"]
                       + [os.path.join(tmp, u) for u in names],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stderr.strip()


def main():
    unittest.main(verbosity=2)
