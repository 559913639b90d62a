"""STARTTLS and implicit TLS with real clients verifying against a test CA."""
import hashlib
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PKI = {}


def setUpModule():
    PKI.update(harness.make_pki())


def tearDownModule():
    shutil.rmtree(PKI["dir"], ignore_errors=True)


def tls_args(*extra):
    return ("-c", PKI["SERVER"], "-k", PKI["SERVER_KEY"]) + extra


def context(**kw):
    ctx = ssl.create_default_context(cafile=PKI["CA"])
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def fingerprint(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        c = harness.RawClient(0, sock=s)
        c.expect(220)
        c.cmd("EHLO c", 250)
        c.cmd("STARTTLS", 220)
        ctx = context()
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


class StartTLS(unittest.TestCase):
    def test_smtplib_verified_and_received_header(self):
        with harness.Server(*tls_args()) as srv:
            s = srv.smtp()
            s.ehlo()
            self.assertTrue(s.has_extn("starttls"))
            s.starttls(context=context())
            s.ehlo()
            self.assertFalse(s.has_extn("starttls"))
            s.sendmail("a@a.test", ["b@b.test"], "Subject: tls\r\n\r\nover tls\r\n")
            s.quit()
            d = srv.deliveries(1)[0]
            self.assertIn(b"with ESMTPS id", d.stdin)
            self.assertIn(b"(version=TLS1.3 cipher=", d.stdin)
            self.assertRegex(srv.log(), r"event=starttls version=TLS1\.3 cipher=\S+")

    def test_starttls_protocol_errors(self):
        with harness.Server(*tls_args()) as srv:
            c = srv.raw()
            c.expect(220)
            c.cmd("STARTTLS", 503)
            c.cmd("EHLO c", 250)
            c.cmd("STARTTLS now", 501)
            c.cmd("MAIL FROM:<a@b>", 250)
            c.cmd("STARTTLS", 220, "Ready to start TLS")
            t = context().wrap_socket(c.sock, server_hostname="localhost")
            c2 = harness.RawClient(0, sock=t)
            c2.cmd("MAIL FROM:<a@b>", 503, "HELO")  # the session starts over
            lines = c2.cmd("EHLO c", 250)
            self.assertNotIn("STARTTLS", lines)
            c2.cmd("STARTTLS", 503, "already active")
            c2.cmd("QUIT", 221)

    def test_old_tls_refused_tls13_works(self):
        with harness.Server(*tls_args()) as srv:
            s = srv.smtp()
            s.ehlo()
            ctx = context(maximum_version=ssl.TLSVersion.TLSv1_1, minimum_version=ssl.TLSVersion.TLSv1)
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            with self.assertRaises((ssl.SSLError, OSError, smtplib.SMTPException)):
                s.starttls(context=ctx)
            s.close()
            s = srv.smtp()
            s.ehlo()
            s.starttls(context=context(minimum_version=ssl.TLSVersion.TLSv1_3))
            self.assertEqual(s.sock.version(), "TLSv1.3")
            s.quit()
            self.assertIn("event=tls-failed", srv.log())

    def test_swaks(self):
        with harness.Server(*tls_args()) as srv:
            r = subprocess.run([harness.clients()["SWAKS"], "-s", "127.0.0.1", "-p", str(srv.port),
                                "-f", "a@a.test", "-t", "b@b.test", "--tls", "--tls-verify",
                                "--tls-ca-path", PKI["CA"]], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:])
            self.assertEqual(len(srv.deliveries(1)), 1)

    def test_curl(self):
        with harness.Server(*tls_args()) as srv, tempfile.NamedTemporaryFile("wb") as f:
            f.write(b"Subject: curl\r\n\r\nvia curl over tls\r\n")
            f.flush()
            r = subprocess.run([harness.clients()["CURL"], "-sS", "--ssl-reqd", "--cacert", PKI["CA"],
                                "smtp://localhost:%d" % srv.port, "--mail-from", "a@a.test",
                                "--mail-rcpt", "b@b.test", "--upload-file", f.name],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(srv.deliveries(1)[0].stdin.endswith(b"via curl over tls\n"))

    def test_openssl_s_client(self):
        with harness.Server(*tls_args()) as srv:
            r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                                "127.0.0.1:%d" % srv.port, "-CAfile", PKI["CA"], "-verify_return_error",
                                "-verify_hostname", "localhost", "-quiet"],
                               input="EHLO c\r\nQUIT\r\n", capture_output=True, text=True, timeout=30)
            self.assertIn("221 2.0.0", r.stdout)
            self.assertIn("verify return:1", r.stderr)

    def test_msmtp_client(self):
        with harness.Server(*tls_args("--auth=alice,echo pw")) as srv, tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "rc")
            with open(conf, "w") as f:
                f.write("account default\nhost localhost\nport %d\nfrom m@a.test\ntls on\n"
                        "tls_starttls on\ntls_trust_file %s\nauth on\nuser alice\npassword pw\n"
                        % (srv.port, PKI["CA"]))
            os.chmod(conf, 0o600)
            r = subprocess.run([harness.clients()["MSMTP"], "-C", conf, "b@b.test"],
                               input=b"Subject: m\n\nmsmtp over tls\n", capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"with ESMTPSA id", srv.deliveries(1)[0].stdin)

    def test_tls_required_hides_auth(self):
        with harness.Server(*tls_args("--tls-required", "--auth=alice,echo pw")) as srv:
            c = srv.raw()
            c.expect(220)
            lines = c.cmd("EHLO c", 250)
            self.assertIn("STARTTLS", lines)
            self.assertFalse(any(l.startswith("AUTH") for l in lines))
            c.cmd("AUTH PLAIN AGFsaWNlAHB3", 530, "Must issue a STARTTLS command first")
            c.cmd("MAIL FROM:<a@b>", 530, "Must issue a STARTTLS command first")
            c.close()
            s = srv.smtp()
            s.starttls(context=context())
            s.ehlo()
            self.assertTrue(s.has_extn("auth"))
            s.login("alice", "pw")
            s.sendmail("a@a.test", ["b@b.test"], "x\r\n")
            s.quit()

    def test_implicit_tls(self):
        with harness.Server(*tls_args("--tls-implicit")) as srv:
            s = smtplib.SMTP_SSL("localhost", srv.port, context=context(), timeout=20)
            s.ehlo()
            self.assertFalse(s.has_extn("starttls"))
            s.sendmail("a@a.test", ["b@b.test"], "Subject: 465\r\n\r\nimplicit\r\n")
            s.quit()
            self.assertIn(b"with ESMTPS", srv.deliveries(1)[0].stdin)

    def test_client_certificate_subject_logged(self):
        with harness.Server(*tls_args("-a", PKI["CA"])) as srv:
            ctx = context()
            ctx.load_cert_chain(PKI["CLIENT"], PKI["CLIENT_KEY"])
            s = srv.smtp()
            s.starttls(context=ctx)
            s.ehlo()
            s.noop()
            s.quit()
            self.assertRegex(srv.log(), r'client-cert="\S*CN\\x3dsmtpipe\\x20test\\x20client')

    def test_sighup_reloads_certificates(self):
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            shutil.copy(PKI["SERVER"], cert)
            shutil.copy(PKI["SERVER_KEY"], key)
            with harness.Server("-c", cert, "-k", key) as srv:
                before = fingerprint(srv.port)
                old = srv.raw()
                old.expect(220)
                old.cmd("EHLO c", 250)
                shutil.copy(PKI["SERVER2"], cert)
                shutil.copy(PKI["SERVER2_KEY"], key)
                srv.proc.send_signal(signal.SIGHUP)
                srv.wait_log("event=tls-reloaded")
                after = fingerprint(srv.port)
                self.assertNotEqual(before, after)
                with open(PKI["SERVER2"]) as f:
                    want = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()
                self.assertEqual(after, want)
                old.cmd("NOOP", 250)  # a session from before goes on
                old.cmd("QUIT", 221)
                with open(cert, "w") as f:
                    f.write("garbage")
                srv.proc.send_signal(signal.SIGHUP)
                srv.wait_log("event=tls-reload-failed")
                self.assertEqual(fingerprint(srv.port), after)  # the old credentials stay

    def test_startup_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            box = os.path.join(tmp, "m")
            cases = [(["-c", "/nonexistent.pem", "-k", PKI["SERVER_KEY"]], "/nonexistent.pem"),
                     (["-c", PKI["SERVER"], "-k", PKI["OTHER_KEY"]], "key"),
                     (["-c", PKI["SERVER"], "-k", PKI["SERVER_KEY"], "-a", "/nonexistent-ca"], "CA")]
            for args, msg in cases:
                for exe, want in ((harness.binary(), 3), (harness.mockmta_binary(), 1)):
                    with self.subTest(args=args, exe=exe):
                        extra = ["--command=true"] if exe == harness.binary() else [box]
                        r = subprocess.run([exe, "--port=0"] + args + extra, capture_output=True,
                                           text=True, timeout=10, stdin=subprocess.DEVNULL)
                        self.assertEqual(r.returncode, want, r.stderr)
                        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
                        self.assertIn(msg, r.stderr)


if __name__ == "__main__":
    harness.main()
