"""Log lines a client cannot forge, and the fail2ban filter that reads them.

Issue 19 item 1: an AUTH user such as `x" client=203.0.113.7 mech=PLAIN x="`
made the auth-failed line offer 203.0.113.7 to fail2ban. Now the fields
the server knows come first and client text is escaped into one token
(smtpipe(8), LOGGING). The tests send hostile text in every place a
client can write (AUTH user, HELO, MAIL, RCPT, command output, client
certificate names over real TLS) and check every line of the real log;
examples/fail2ban/ is run through Debian's fail2ban-regex against it.
Issue 19 item 7: certificate names with bytes over 0x7f and over 255
bytes. Issue 12 item 9: an AUTH LOGIN user cut before the comparison.
"""
import base64
import os
import re
import shlex
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FORGED = 'x" client=203.0.113.7 mech=PLAIN x="'
FILTER = os.path.join(harness.SOURCE, "examples", "fail2ban", "filter.d", "smtpipe.conf")
JAIL = os.path.join(harness.SOURCE, "examples", "fail2ban", "jail.d", "smtpipe.conf")
PW = "right-password"
EVAL = "--auth=alice,printf '%s\\n' " + PW

# the line prefix of --log=FILE, then key=value fields and bare flags
PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (smtpipe|mockmta)\[\d+\]: ")
# a value: an escaped token in quotes (client text), a bare token, or
# the server's own error text in quotes (strerror, GnuTLS)
ESCAPED = r'"(?:[!#-<>-\[\]-~]|\\x[0-9a-f]{2})*"'
FIELD = re.compile(r'(?:([a-z][a-z0-9-]*)=(%s|[^\s"=]+)|(error)="([^"\\]*)"|([a-z][a-z-]*))(?: |$)'
                   % ESCAPED)
# fields whose value comes from the client; each must follow client=
CLIENT_TEXT = {"user", "from", "to", "name", "text", "client-cert"}


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def check_log(test, log):
    """Every line: printable ASCII, a known shape, at most one client=
    (the real peer), and it comes before every field of client text."""
    lines = log.splitlines()
    test.assertTrue(lines)
    for line in lines:
        test.assertTrue(all(0x20 <= ord(ch) < 0x7f for ch in line), "non-ASCII byte in %r" % line)
        m = PREFIX.match(line)
        test.assertTrue(m, "no prefix: %r" % line)
        pos, keys = m.end(), []
        while pos < len(line):
            f = FIELD.match(line, pos)
            test.assertTrue(f and f.end() > pos, "cannot parse %r at %d" % (line, pos))
            keys.append((f.group(1) or f.group(3) or f.group(5), f.group(2)))
            pos = f.end()
        clients = [v for k, v in keys if k == "client"]
        test.assertLessEqual(len(clients), 1, line)
        if clients:
            test.assertEqual(clients[0], "127.0.0.1", line)
            first_client = [k for k, _ in keys].index("client")
            for i, (k, _) in enumerate(keys):
                if k in CLIENT_TEXT:
                    test.assertGreater(i, first_client, "%s= before client= in %r" % (k, line))
        test.assertNotRegex(line, r"client=203")


def fail2ban_ips(logfile):
    """The addresses examples/fail2ban's filter takes from logfile."""
    r = subprocess.run(["fail2ban-regex", "--raw", "-o", "ip", logfile, FILTER],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("fail2ban-regex: %s %s" % (r.stdout, r.stderr))
    return r.stdout.split()


class Forgery(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server(EVAL)

    def tearDown(self):
        if self.srv.proc.returncode is None:  # not stopped by the test
            self.srv.stop()

    def test_auth_user_cannot_choose_the_banned_address(self):
        c = self.srv.raw()
        c.greet()
        c.cmd("AUTH PLAIN " + b64("\0alice\0wrong"), 535)  # an honest failure
        c.cmd("AUTH PLAIN " + b64("\0" + FORGED + "\0wrong"), 535)
        c.cmd("AUTH LOGIN " + b64(FORGED), 334)
        c.cmd(b64("wrong"), 535)
        c.cmd("AUTH PLAIN " + b64("\0x\u202e\x1b[31m\\\0wrong"), 535)
        c.cmd("AUTH PLAIN " + b64("\0alice\0" + PW), 235)  # not a failure
        c.cmd("QUIT", 221)
        self.assertTrue(c.closed())
        self.srv.stop()
        log = self.srv.log()
        failed = [ln for ln in log.splitlines() if "event=auth-failed" in ln]
        self.assertEqual(len(failed), 4, log)
        for ln in failed:
            self.assertRegex(ln, r"event=auth-failed client=127\.0\.0\.1 mech=(PLAIN|LOGIN) "
                                 r'user=%s$' % ESCAPED)
            # what fail2ban's old, documented regex and a lazy one take
            self.assertEqual(re.search(r'user="[^"]*" client=(\S+)', ln), None, ln)
            self.assertEqual(re.search(r"client=(\S+)", ln).group(1), "127.0.0.1", ln)
            self.assertEqual(re.findall(r".*client=(\S+)", ln), ["127.0.0.1"], ln)
        self.assertIn(r'user="x\x22\x20client\x3d203.0.113.7\x20mech\x3dPLAIN\x20x\x3d\x22"', log)
        self.assertIn(r'user="x\xe2\x80\xae\x1b[31m\x5c"', log)
        check_log(self, log)

    def test_fail2ban_regex_finds_only_the_real_address(self):
        c = self.srv.raw()
        c.greet()
        c.cmd("AUTH PLAIN " + b64("\0alice\0wrong"), 535)
        c.cmd("AUTH PLAIN " + b64("\0" + FORGED + "\0wrong"), 535)
        c.cmd("AUTH LOGIN " + b64(FORGED), 334)
        c.cmd(b64("wrong"), 535)
        c.cmd("AUTH PLAIN " + b64("\0alice\0" + PW), 235)
        c.cmd("QUIT", 221)
        self.assertTrue(c.closed())
        self.srv.stop()
        ips = fail2ban_ips(self.srv.logfile)
        self.assertEqual(ips, ["127.0.0.1"] * 3, self.srv.log())

    def test_every_field_of_client_text(self):
        """HELO, MAIL, RCPT and command output, each with a forged client=."""
        tmp = tempfile.mkdtemp(prefix="smtpipe-echo-")
        self.addCleanup(shutil.rmtree, tmp, True)
        # the command prints its sender: client text in its output
        script = "import sys; sys.stdin.buffer.read(); print(sys.argv[2])"
        srv = harness.Server(EVAL, command="%s -c %s -f %%F --" % (
            shlex.quote(sys.executable), shlex.quote(script)))
        try:
            c = srv.raw()
            c.expect(220)
            c.cmd('EHLO x"client=203.0.113.7', 250)
            c.cmd("AUTH PLAIN " + b64("\0alice\0" + PW), 235)
            sender = '"a client=203.0.113.7 \\"q\\""@b.test'
            c.cmd("MAIL FROM:<%s>" % sender, 250)
            c.cmd('RCPT TO:<"r client=203.0.113.7"@d.test>', 250)
            c.cmd("DATA", 354)
            c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
            c.expect(250)
            c.cmd("QUIT", 221)
            self.assertTrue(c.closed())
        finally:
            srv.stop()
        log = srv.log()
        for want in ('event=helo verb=EHLO name="x\\x22client\\x3d203.0.113.7"',
                     'event=mail size=0 from="\\x22a\\x20client',
                     'event=rcpt to="\\x22r\\x20client\\x3d203.0.113.7\\x22@d.test"',
                     'event=command-output text="\\x22a\\x20client\\x3d203.0.113.7',
                     'status=0 from="\\x22a\\x20client'):
            self.assertIn(want, log)
        check_log(self, log)
        self.assertEqual(fail2ban_ips(srv.logfile), [])


class AuthLogin(unittest.TestCase):
    def test_login_user_is_compared_whole(self):
        """Issue 12 item 9: a 255-byte user followed by anything was
        accepted by AUTH LOGIN; PLAIN refused it."""
        user = "u" * 255
        with harness.Server("--auth=%s,printf '%%s\\n' %s" % (user, PW)) as srv:
            c = srv.raw()
            c.greet()
            c.cmd("AUTH LOGIN " + b64(user + "-and-more"), 334)
            c.cmd(b64(PW), 535, "5.7.8")
            c.cmd("AUTH PLAIN " + b64("\0" + user + "-and-more\0" + PW), 535, "5.7.8")
            c.cmd("AUTH LOGIN", 334)
            c.cmd(b64(user + "x" * 5000), 334)
            c.cmd(b64(PW), 535, "5.7.8")
            c.cmd("AUTH LOGIN " + b64(user), 334)
            c.cmd(b64(PW), 235)
            c.cmd("QUIT", 221)
            self.assertTrue(c.closed())
        log = srv.log()
        self.assertEqual(len(re.findall("event=auth-failed", log)), 3, log)
        check_log(self, log)


class ClientCertificates(unittest.TestCase):
    """Issue 19 item 7: verified certificates with hostile names, signed
    by the test CA, presented over real TLS with -a CA."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="smtpipe-pki-")
        out = subprocess.run([os.path.join(harness.SOURCE, "tests", "tools", "make-certs.sh"),
                              cls.dir], capture_output=True, text=True, check=True).stdout
        cls.pki = dict(line.split("=", 1) for line in out.splitlines())
        with open(os.path.join(cls.dir, "client-ext.cnf"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                    "extendedKeyUsage=clientAuth\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def issue(self, name, subject):
        """A client certificate for subject (openssl -subj), signed by the CA."""
        key, csr, crt = (os.path.join(self.dir, name + s) for s in ("-key.pem", ".csr", ".pem"))
        subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", csr, "-utf8", "-subj", subject], capture_output=True, check=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", self.pki["CA"],
                        "-CAkey", os.path.join(self.dir, "ca-key.pem"), "-set_serial", str(abs(hash(name)) % 10**9),
                        "-days", "2", "-extfile", os.path.join(self.dir, "client-ext.cnf"),
                        "-out", crt], capture_output=True, check=True)
        return crt, key

    def present(self, crt, key):
        """STARTTLS with the certificate; returns the server's log."""
        with harness.Server("-c", self.pki["SERVER"], "-k", self.pki["SERVER_KEY"],
                            "-a", self.pki["CA"]) as srv:
            ctx = ssl.create_default_context(cafile=self.pki["CA"])
            ctx.load_cert_chain(crt, key)
            s = srv.smtp()
            s.starttls(context=ctx)
            s.ehlo()
            s.noop()
            s.quit()
        return srv.log()

    def starttls_line(self, log):
        lines = [ln for ln in log.splitlines() if "event=starttls" in ln]
        self.assertEqual(len(lines), 1, log)
        return lines[0]

    def test_hostile_subject_is_escaped(self):
        crt, key = self.issue("evil", '/O=smtpipe tests/CN=evil\u202e"x client=203.0.113.7 y="'
                                      '\u0085end')
        log = self.present(crt, key)
        line = self.starttls_line(log)
        self.assertRegex(line, r"event=starttls version=\S+ cipher=\S+ "
                               r"client-cert=%s$" % ESCAPED)
        self.assertIn(r"evil\xe2\x80\xae", line)  # U+202E, as bytes
        self.assertIn(r"\xc2\x85end", line)      # a C1 control
        self.assertNotIn("client=203", line)
        check_log(self, log)

    def test_long_subject_is_cut_not_dropped(self):
        # 300 bytes and more (the old bound: 255), longer than the log keeps
        ous = "".join("/OU=%s" % (chr(ord("a") + i) * 60) for i in range(10))
        crt, key = self.issue("long", "/O=smtpipe tests" + ous + "/CN=long-name-client")
        log = self.present(crt, key)
        line = self.starttls_line(log)
        self.assertRegex(line, r'client-cert="O\\x3dsmtpipe\\x20tests,OU\\x3daaaa[^"]*\.\.\."$')
        self.assertIn("f" * 60, line)
        check_log(self, log)


class Examples(unittest.TestCase):
    def test_jail_names_the_filter(self):
        with open(JAIL) as f:
            jail = f.read()
        self.assertRegex(jail, r"(?m)^filter\s*=\s*smtpipe$")
        self.assertTrue(os.path.exists(FILTER))


if __name__ == "__main__":
    harness.main()
