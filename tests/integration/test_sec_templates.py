"""The delivery command can never be turned against us (DESIGN.md invariant 4).

Issue 12 items 1-2 and issue 19 items 6, 9 and 11: a shell template puts
the sender where %F was as one word whatever its quotes, appends the
recipients as arguments of its last simple command, and start-up refuses
the templates for which that cannot be guaranteed; relative arguments of
the command work under -d as in the foreground; --max-recipients is
capped where the argument list still fits. Real binary, real socket,
real /bin/sh, real msmtp.
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import wait_for  # noqa: E402


def start_refused(cmd, *args, env=None):
    """Run smtpipe with --command=cmd; (exit code, stderr) of a start-up that
    must fail before it binds anything. One that starts instead is
    stopped with SIGTERM once it prints its port: (None, stderr)."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen([harness.binary(), "--interface=127.0.0.1", "--port=0", "--log=none",
                          "--command=" + cmd] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
    port = p.stdout.readline()  # EOF when it exits at start-up
    if port.strip():
        p.terminate()
    rc = p.wait(timeout=30)
    err = p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    return (None if port.strip() else rc), err


def nul_fields(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(b"\0"), data
    return [x.decode() for x in data[:-1].split(b"\0")]


# Senders a shell would act on if it ever parsed them (quoted local parts,
# RFC 5321 4.1.2): spaces, globs, $IFS, command substitution, quotes.
HOSTILE_SENDERS = [
    '"a --passwordeval=x"@e.org',
    '"two  words * ?"@e.org',
    '"$(id)`id`${IFS}x;#"@e.org',
    '"\'single\' \\"dq\\""@e.org',
    "plain@e.org",
]


class SenderQuoting(unittest.TestCase):
    """Finding 1: %F inside "..." or '...' of a shell template."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sp")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def deliver_args(self, template, sender, rcpts=("r@d.test",)):
        """Run a shell template whose printf writes its arguments (NUL after
        each) to a file; returns the fields it got"""
        args = os.path.join(self.tmp, "args")
        if os.path.exists(args):
            os.unlink(args)
        cmd = template.replace("ARGS", shlex.quote(args))
        with harness.Server(command=cmd) as srv:
            c = srv.raw().greet()
            c.message("Subject: q\r\n\r\nbody\r\n.\r\n", 250, sender=sender, rcpts=rcpts)
            wait_for(lambda: os.path.exists(args),
                     lambda: "%s; the log:\n%s" % (args, srv.log()))
        return nul_fields(args)

    def test_sender_in_every_quote_context_is_one_word(self):
        # each ends with a redirection, so a shell runs them: on main the
        # quoted forms left $SMTPIPE_SENDER unquoted (split, globbed)
        templates = {
            "double": "cat >/dev/null; printf '%s\\0' -f \"%F\" -- >ARGS",
            "single": "cat >/dev/null; printf '%s\\0' -f '%F' -- >ARGS",
            "bare": "cat >/dev/null; printf '%s\\0' -f %F -- >ARGS",
            "inside": "cat >/dev/null; printf '%s\\0' \"<%F>\" 'x%Fy' -- >ARGS",
        }
        for name, t in templates.items():
            for sender in HOSTILE_SENDERS:
                with self.subTest(template=name, sender=sender):
                    got = self.deliver_args(t, sender, rcpts=("r@d.test", '"x *"@d.test'))
                    if name == "inside":
                        want = ["<%s>" % sender, "x%sy" % sender, "--"]
                    else:
                        want = ["-f", sender, "--"]
                    self.assertEqual(got, want + ["r@d.test", '"x *"@d.test'])

    def test_msmtp_passwordeval_attack(self):
        # The exploit with the real msmtp: a sender that, split into
        # words, hands msmtp a --passwordeval option that runs touch.
        canary = os.path.join(self.tmp, "c")
        msmtp = shutil.which("msmtp") or harness.clients()["msmtp"]
        for q in ('"%F"', "'%F'"):
            with self.subTest(quotes=q):
                cmd = ("%s --host=127.0.0.1 --port=1 --auth=on --user=x -f %s -- 2>>%s"
                       % (shlex.quote(msmtp), q, shlex.quote(os.path.join(self.tmp, "err"))))
                sender = '"a --passwordeval=touch${IFS}%s;#"@e.org' % canary
                with harness.Server(command=cmd) as srv:
                    c = srv.raw().greet()
                    c.data(sender=sender, rcpts=("r@d.test",))
                    c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
                    code, _ = c.reply()
                    self.assertNotEqual(code, 250)  # msmtp cannot reach port 1
                    c.cmd("QUIT", 221)
                self.assertFalse(os.path.exists(canary), "the sender ran a command")

    def test_every_percent_f_is_the_sender(self):
        # finding 11: a second %F stayed literal; now each %F is the sender,
        # in both kinds of template
        got = self.deliver_args("cat >/dev/null; printf '%s\\0' %F \"%F\" '%F' -- >ARGS", "s@e.org")
        self.assertEqual(got, ["s@e.org"] * 3 + ["--", "r@d.test"])
        tmp = self.tmp
        rec = harness.recorder_command(os.path.join(tmp, "out"))
        rec = rec[:rec.rindex(" -- -f %F --")] + " -- -f %F --from=%F --"
        with harness.Server(command=rec) as srv:
            srv.outdir = os.path.join(tmp, "out")
            srv.raw().greet().message("Subject: x\r\n\r\nb\r\n.\r\n", 250, sender="s@e.org")
            argv = srv.deliveries(1)[0].argv
        self.assertEqual(argv[argv.index("--") + 1:], ["-f", "s@e.org", "--from=s@e.org", "--",
                                                       "c@d"])

    def test_null_sender_and_mailer_daemon_differ_in_the_environment(self):
        # finding 11: %F is MAILER-DAEMON for both (msmtpd), but
        # $SMTPIPE_SENDER is empty for <> in both kinds of template
        args = os.path.join(self.tmp, "args")
        shell = "cat >/dev/null; printf '%%s\\0' %%F \"$SMTPIPE_SENDER\" >%s; :" % shlex.quote(args)
        direct = ("sh -c 'cat >/dev/null; printf \"%%s\\0\" \"$1\" \"$SMTPIPE_SENDER\" >%s' sh %%F"
                  % shlex.quote(args))
        for name, cmd in (("shell", shell), ("direct", direct)):
            for sender, env in (("", ""), ("MAILER-DAEMON", "MAILER-DAEMON")):
                with self.subTest(template=name, sender=sender):
                    if os.path.exists(args):
                        os.unlink(args)
                    with harness.Server(command=cmd) as srv:
                        srv.raw().greet().message("Subject: x\r\n\r\nb\r\n.\r\n", 250,
                                                  sender=sender)
                        wait_for(lambda: os.path.exists(args),
                                 lambda: "%s; the log:\n%s" % (args, srv.log()))
                    self.assertEqual(nul_fields(args), ["MAILER-DAEMON", env])


class Recipients(unittest.TestCase):
    """Finding 2: the end of a shell template must be the end of a simple
    command's words, or "$@" becomes a command line or is dropped."""

    def test_templates_refused_at_start(self):
        bad = {
            "cat >/dev/null;": "ends with ';'",
            "cat >/dev/null &": "ends with '&'",
            "cat >/dev/null |": "ends with '|'",
            "cat >/dev/null &&": "ends with '&&'",
            "cat >/dev/null ||": "ends with '||'",
            "cat >/dev/null\n": "ends with a newline",
            "cat >/dev/null # keep": "ends in a comment",
            "cat >": "redirection",
            "msmtp -f \"$(echo %F)\" --; :": "$(...)",
            "msmtp -f `echo %F` --; :": "`...`",
            "msmtp -f ${X:-%F} --; :": "%F inside ${",
            "cat <<EOF\n%F\nEOF\n": "here-document",
            "if true; then cat; fi": "compound",
            "cat >/dev/null; %F": "names the program",
            "cat >/dev/null; eval echo %F": "eval",
            "X=1; >/dev/null": "no command word",
        }
        for cmd, why in bad.items():
            with self.subTest(cmd=cmd):
                rc, err = start_refused(cmd)
                self.assertEqual(rc, 3, err)
                lines = err.strip().splitlines()
                self.assertEqual(len(lines), 1, err)
                self.assertIn("--command", err)
                self.assertIn(why, err)

    def test_recipients_never_run_as_a_command(self):
        # on main, "cat >/dev/null;" ran "$@": a recipient named a program
        with tempfile.TemporaryDirectory(prefix="sp") as tmp:
            canary = os.path.join(tmp, "canary")
            prog = os.path.join(tmp, "run@d.test")
            with open(prog, "w") as f:
                f.write("#!/bin/sh\ntouch %s\n" % shlex.quote(canary))
            os.chmod(prog, 0o755)
            env = {"PATH": tmp + ":" + os.environ["PATH"]}
            rc, err = start_refused("cat >/dev/null;", env=env)
            if rc == 3:  # refused at start-up: nothing can run
                self.assertIn("ends with ';'", err)
                return
            # it started (on main it did): then a recipient must not run
            with harness.Server(command="cat >/dev/null;", env=env) as srv:
                srv.raw().greet().message("Subject: x\r\n\r\nb\r\n.\r\n", 250, rcpts=("run@d.test",))
            self.assertFalse(os.path.exists(canary), "a recipient ran as a command")

    def test_recipients_go_to_the_last_simple_command(self):
        with tempfile.TemporaryDirectory(prefix="sp") as tmp:
            args = os.path.join(tmp, "args")
            cmd = ("cat >/dev/null && true | printf '%%s\\0' -f %%F -- >%s 2>&1"
                   % shlex.quote(args))
            with harness.Server(command=cmd) as srv:
                srv.raw().greet().message("Subject: x\r\n\r\nb\r\n.\r\n", 250, sender="s@e.org",
                                          rcpts=("a@d.test", '"; touch x"@d.test'))
                wait_for(lambda: os.path.exists(args),
                         lambda: "%s; the log:\n%s" % (args, srv.log()))
            self.assertEqual(nul_fields(args), ["-f", "s@e.org", "--", "a@d.test",
                                                '"; touch x"@d.test'])


class CommandWords(unittest.TestCase):
    """Red team, round 2: a builtin quoted, escaped, split by a line
    continuation, reached through a variable, $(...) or command, or a
    command word that expands to nothing, got past the scanner, and a
    client's address ran as shell code or chose the program. Now the
    command word of every simple command is a plain word, and only then
    compared with the builtins; command and builtin are refused; $(...)
    and `...` are refused anywhere (they could read the message)."""

    NL = "\n"
    # (template, what the one-line refusal says)
    BYPASSES = [
        ("cat >/dev/null; 'eval'", "not a plain word"),
        ("cat >/dev/null; \"eval\"", "not a plain word"),
        ("cat >/dev/null; \\eval", "not a plain word"),
        ("cat >/dev/null; e\"\"val", "not a plain word"),
        ("cat >/dev/null; ev\\" + NL + "al", "not a plain word"),
        ("cat >/dev/null; X=eval; $X", "not a plain word"),
        ("cat >/dev/null; $(printf eval)", "$(...)"),
        ("cat >/dev/null; command eval", "'command'"),
        ("cat >/dev/null; command -p eval", "'command'"),
        ("'eval' %F; cat >/dev/null", "not a plain word"),
        ("command eval %F; cat >/dev/null", "'command'"),
        ("true; \"exec\"", "not a plain word"),
        ("cat >/dev/null; \\exec", "not a plain word"),
        ("cat >/dev/null; 'command'", "not a plain word"),
        ("cat >/dev/null; '.'", "not a plain word"),
        ("'trap' %F EXIT; cat >/dev/null", "not a plain word"),
        ("'cd' %F; cat >/dev/null", "not a plain word"),
        ("'export' \"X=$1\"; cat >/dev/null", "not a plain word"),
        ("'read' X; cat >/dev/null", "not a plain word"),
        ("'alias' x=%F; cat >/dev/null", "not a plain word"),
        ("command cd %F; cat >/dev/null", "'command'"),
        ("command export X=%F; cat >/dev/null", "'command'"),
        ("builtin eval %F; cat >/dev/null", "'builtin'"),
        ("hash -p /tmp/x cat; cat >/dev/null", "'hash'"),
        ("printf -v PATH %s %F; cat >/dev/null", "printf"),
        ("test -v \"$1\"; cat >/dev/null", "'test'"),
        # finding 2: a last command word that can expand to nothing
        ("cat >/dev/null; $DELIVER_HOOK", "not a plain word"),
        ("cat >/dev/null; $(true)", "$(...)"),
        # finding 3: command substitution anywhere, client variables unquoted
        ("rec.sh -f %F $(sed -n \"/^Subject:/s/^Subject://p\") -- 2>/dev/null; :", "$(...)"),
        ("rec.sh -f %F \"`cat`\" -- >/dev/null", "`...`"),
        ("rec.sh -f %F $SMTPIPE_AUTH_USER -- >/dev/null", "unquoted"),
    ]

    def test_bypasses_refused_at_start(self):
        for cmd, why in self.BYPASSES:
            with self.subTest(cmd=cmd):
                rc, err = start_refused(cmd)
                self.assertEqual(rc, 3, err)
                lines = err.strip().splitlines()
                self.assertEqual(len(lines), 1, err)
                self.assertIn("--command refused", err)
                self.assertIn(why, err)

    def test_client_never_runs_code_through_a_builtin(self):
        # the red team's exploit, end to end: wherever start-up accepted
        # one of these (it did on main), a recipient that is a command
        # substitution must not run, and a planted program named like a
        # recipient must not become the program
        with tempfile.TemporaryDirectory(prefix="sp") as tmp:
            os.chmod(tmp, 0o755)
            canary = os.path.join(tmp, "pwned")
            evil = "`touch${IFS}%s`@example.org" % canary
            planted = os.path.join(tmp, "rt-evil@x.org")
            with open(planted, "w") as f:
                f.write("#!/bin/sh\ntouch %s\n" % shlex.quote(canary))
            os.chmod(planted, 0o755)
            accepted = []
            for cmd in ("cat >/dev/null; 'eval'", "cat >/dev/null; e\"\"val",
                        "cat >/dev/null; X=eval; $X", "cat >/dev/null; command eval",
                        "'eval' %F; cat >/dev/null", "cat >/dev/null; $DELIVER_HOOK",
                        "cat >/dev/null; $(true)"):
                rc, err = start_refused(cmd)
                if rc == 3:
                    continue
                accepted.append(cmd)
                for rcpt in (evil, planted):
                    with self.subTest(cmd=cmd, rcpt=rcpt):
                        if os.path.exists(canary):
                            os.unlink(canary)
                        with harness.Server(command=cmd) as srv:
                            c = srv.raw().greet()
                            c.data(sender=evil, rcpts=(rcpt,))
                            c.send("Subject: x\r\n\r\nhi\r\n.\r\n")
                            c.reply()
                            c.cmd("QUIT", 221)
                        self.assertFalse(os.path.exists(canary),
                                         "a client ran code through [%s]" % cmd)
            self.assertEqual(accepted, [], "start-up accepted templates that run client code")

    def test_message_bytes_never_become_options(self):
        # 01b: an unquoted $(...) reading the message word-split it into
        # the command's options; the template is refused now, and a script
        # that reads the message itself is the way to write it
        with tempfile.TemporaryDirectory(prefix="sp") as tmp:
            args = os.path.join(tmp, "args")
            rec = os.path.join(tmp, "rec.sh")
            with open(rec, "w") as f:
                f.write("#!/bin/sh\nprintf '%%s\\0' \"$@\" >%s\ncat >/dev/null\n"
                        % shlex.quote(args))
            os.chmod(rec, 0o755)
            cmd = '%s -f %%F $(sed -n "/^Subject:/s/^Subject://p") -- 2>/dev/null; :' % rec
            rc, err = start_refused(cmd)
            if rc != 3:
                with harness.Server(command=cmd) as srv:
                    srv.raw().greet().message(
                        "Subject: hi --passwordeval=touch\x20/tmp/x\r\n\r\nb\r\n.\r\n", 250)
                wait_for(lambda: os.path.exists(args), args)
                self.assertNotIn("--passwordeval=touch", nul_fields(args))
            self.assertEqual(rc, 3, "a template that splits the message into options started")
            self.assertIn("$(...)", err)

    def test_plain_builtins_and_paths_still_deliver(self):
        # what the rule keeps: plain builtins with your own arguments,
        # exec looked through, a ~ path, client data quoted as arguments
        with tempfile.TemporaryDirectory(prefix="sp") as tmp:
            args = os.path.join(tmp, "args")
            cmd = ("umask 077; cd %s && export X=1 && [ -d . ] && cat >/dev/null; "
                   "exec printf '%%s\\0' -f %%F \"$SMTPIPE_SENDER\" -- >%s"
                   % (shlex.quote(tmp), shlex.quote(args)))
            with harness.Server(command=cmd) as srv:
                srv.raw().greet().message("Subject: x\r\n\r\nb\r\n.\r\n", 250,
                                          sender='"a b"@e.org', rcpts=("r@d.test",))
                wait_for(lambda: os.path.exists(args),
                         lambda: "%s; the log:\n%s" % (args, srv.log()))
            self.assertEqual(nul_fields(args), ["-f", '"a b"@e.org', '"a b"@e.org', "--",
                                                "r@d.test"])
            self.assertEqual(os.stat(args).st_mode & 0o777, 0o600)


class Detached(unittest.TestCase):
    """Finding 6: under -d the daemon works from /, yet 'sh deliver.sh'
    must find deliver.sh where it was started, as in the foreground."""

    def run_detached(self, tmp, cmd):
        pidfile = os.path.join(tmp, "pid")
        log = os.path.join(tmp, "log")
        r = subprocess.run([harness.real_binary(), "-d", "--interface=127.0.0.1", "--port=0",
                            "-P", pidfile, "--log=" + log, "--log-level=debug",
                            "--command=" + cmd],
                           capture_output=True, text=True, timeout=30, cwd=tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        port = int(r.stdout.split()[0])
        with open(pidfile) as f:
            pid = int(f.read())
        try:
            c = harness.RawClient(port, timeout=20).greet()
            c.data(sender="s@e.org", rcpts=("r@d.test",))
            c.send("Subject: d\r\n\r\ndetached\r\n.\r\n")
            code, lines = c.reply()
            c.cmd("QUIT", 221)
            c.close()
        finally:
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 30
            while os.path.exists(pidfile) and time.time() < deadline:
                time.sleep(0.05)
        with open(log) as f:
            return code, f.read()

    def test_relative_arguments_under_detach(self):
        for kind, cmd in (("direct", "sh deliver.sh -f %F --"),
                          ("shell", "sh deliver.sh -f %F -- 2>>err.log")):
            with self.subTest(kind=kind), tempfile.TemporaryDirectory(prefix="sp") as tmp:
                with open(os.path.join(tmp, "deliver.sh"), "w") as f:
                    f.write("cat > delivered.eml\nprintf '%s\\0' \"$@\" > args\n")
                code, log = self.run_detached(tmp, cmd)
                self.assertEqual(code, 250, log)
                with open(os.path.join(tmp, "delivered.eml"), "rb") as f:
                    self.assertTrue(f.read().endswith(b"Subject: d\n\ndetached\n"))
                self.assertEqual(nul_fields(os.path.join(tmp, "args")),
                                 ["-f", "s@e.org", "--", "r@d.test"])


class MaxRecipients(unittest.TestCase):
    """Finding 7: --max-recipients is capped where the command's argument
    list (and environment) still fits ARG_MAX with the longest addresses."""

    def largest(self, cmd):
        rc, err = start_refused(cmd, "--max-recipients=100000")
        self.assertEqual(rc, 3, err)
        m = re.search(r"largest allowed is (\d+)", err)
        self.assertTrue(m, err)
        return int(m.group(1))

    def test_too_many_refused_at_start(self):
        rc, err = start_refused("msmtp -f %F --", "--max-recipients=9000")
        self.assertEqual(rc, 3, err)
        self.assertIn("--max-recipients", err)
        self.assertIn("largest allowed is", err)

    def test_the_largest_allowed_value_delivers(self):
        with tempfile.TemporaryDirectory(prefix="sp") as tmp:
            count = os.path.join(tmp, "count")
            cmd = "sh -c 'cat >/dev/null; echo $# >%s' sh %%F" % count
            n = self.largest(cmd)
            self.assertGreater(n, 100)
            rc, err = start_refused(cmd, "--max-recipients=%d" % (n + 1))
            self.assertEqual(rc, 3, err)
            # n recipients of the longest form (254 octets), the longest sender
            local = "l" * 54
            domain = ".".join(["d" * 63, "d" * 63, "d" * 61])
            self.assertEqual(len(domain), 189)
            rcpts = ["%s%010d@%s" % (local, i, domain) for i in range(n)]
            self.assertEqual(len(rcpts[0]), 254)
            sender = "s" * 64 + "@" + domain
            with harness.Server("--max-recipients=%d" % n, command=cmd) as srv:
                c = srv.raw(timeout=60).greet()
                c.cmd("MAIL FROM:<%s>" % sender, 250)
                for i in range(0, n, 200):
                    chunk = rcpts[i:i + 200]
                    c.send("".join("RCPT TO:<%s>\r\n" % r for r in chunk))
                    for _ in chunk:
                        c.expect(250)
                c.cmd("RCPT TO:<one-more@d.test>", 452)
                c.cmd("DATA", 354)
                c.send("Subject: many\r\n\r\nb\r\n.\r\n")
                code, lines = c.reply()
                self.assertEqual(code, 250, "%s %s" % (lines, srv.log()[-2000:]))
                c.cmd("QUIT", 221)
            with open(count) as f:
                self.assertEqual(int(f.read()), 1 + n)  # %F, then the recipients


if __name__ == "__main__":
    harness.main()
