"""pytest fixtures: a real SMTP peer (mockmta) whose deliveries land in a
Maildir (or an mbox) that the test reads with Python's standard library.

Copy this file next to your tests and load it as a plugin, in the
top-level conftest.py:

    pytest_plugins = ["mockmta_pytest"]

then:

    def test_welcome_mail(mockmta):
        app.send_welcome("user@example.org", smtp_port=mockmta.port)
        (msg,) = mockmta.messages()
        assert msg["Subject"] == "Welcome"
        assert mockmta.envelope(msg) == ("<app@example.org>", ["user@example.org"])

    @pytest.mark.mockmta("--auth-accept-any", store="mbox")
    def test_with_login(mockmta): ...

The marker's arguments are mockmta options (any of smtpipe(8)'s), and
store= is "maildir" (default), "mbox" or "stdout" (--mailbox=-: messages
read from mockmta's standard output); faults= is a list of fault rules
(smtpipe(8) FAULTS), each given as --fault=RULE:

    @pytest.mark.mockmta(faults=["rcpt *@bounce.test 550 5.1.1 No such user"])
 MOCKMTA names the binary (default:
mockmta on PATH). Every stored message begins with Return-Path: and
X-Envelope-To: (all envelope recipients, Bcc included); envelope() reads
them. Without pytest, MockMTA works as a context manager (unittest).
"""
import email.utils
import mailbox
import os
import select
import shutil
import subprocess
import tempfile
import threading

try:
    import pytest
except ImportError:  # MockMTA alone still works, e.g. under unittest
    pytest = None


class MockMTA:
    """mockmta -f -p 0 [options] STORE, listening on 127.0.0.1:port."""

    def __init__(self, *options, store="maildir", directory=None, binary=None, faults=()):
        self._own_dir = directory is None
        self.dir = str(directory) if directory else tempfile.mkdtemp(prefix="mockmta-")
        self.store = store
        if store == "maildir":
            self.path = os.path.join(self.dir, "Maildir") + "/"  # '/': a Maildir
        elif store == "mbox":
            self.path = os.path.join(self.dir, "mail.mbox")
        elif store == "stdout":
            self.path = "--mailbox=-"
        else:
            raise ValueError("store: maildir, mbox or stdout, not %r" % store)
        binary = binary or os.environ.get("MOCKMTA") or shutil.which("mockmta")
        if not binary:
            raise RuntimeError("mockmta is not on PATH (or set MOCKMTA)")
        self.argv = [binary, "-f", "-p", "0", "--log=none"] + list(options)
        self.argv += ["--fault=" + rule for rule in faults] + [self.path]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # the port is the first line, once it accepts connections
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip():
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace")
            self.proc.wait()
            raise RuntimeError("mockmta did not start: %s" % err.strip())
        self.port = int(line)
        self._out = bytearray()
        self._reader = None
        if store == "stdout":  # read all along, so that mockmta never waits for us
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()

    def _read(self):
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            self._out += chunk

    def messages(self):
        """Every message stored so far (a 250 means it is there), in order
        of arrival, as email.message.Message objects."""
        if self.store == "maildir":
            box = mailbox.Maildir(self.path, factory=None, create=False)
            try:  # names start with seconds.Mmicroseconds: arrival order
                return [box[k] for k in sorted(box.keys())]
            finally:
                box.close()
        if self.store == "stdout":
            fd, name = tempfile.mkstemp(dir=self.dir, suffix=".mbox")
            with os.fdopen(fd, "wb") as f:
                f.write(bytes(self._out))
        else:
            name = self.path
        if not os.path.exists(name):
            return []
        box = mailbox.mbox(name, create=False)
        try:
            return list(box)
        finally:
            box.close()

    @staticmethod
    def envelope(msg):
        """(sender with its <>, [recipients]) from the envelope headers"""
        rcpts = [a for _, a in email.utils.getaddresses(msg.get_all("X-Envelope-To", []))]
        return msg["Return-Path"], rcpts

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        if self._reader:
            self._reader.join(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


if pytest is not None:
    def pytest_configure(config):
        config.addinivalue_line(
            "markers",
            "mockmta(*options, store='maildir', faults=()): how the mockmta fixture starts it")

    @pytest.fixture
    def mockmta(request, tmp_path):
        """A running mockmta for one test; see the module's docstring."""
        marker = request.node.get_closest_marker("mockmta")
        args, kwargs = (marker.args, marker.kwargs) if marker else ((), {})
        server = MockMTA(*args, directory=tmp_path, **kwargs)
        yield server
        server.close()
