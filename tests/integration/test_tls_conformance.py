"""TLS conformance with real clients: an IP address sent as TLS server
name (SNI, which RFC 6066 3 forbids) and HELP with STARTTLS offered."""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_conformance import reply_bytes, send_exact  # noqa: E402

PKI = {}


def setUpModule():
    PKI.update(harness.make_pki())


def tearDownModule():
    shutil.rmtree(PKI["dir"], ignore_errors=True)


def tls_args(*extra):
    return ("-c", PKI["SERVER"], "-k", PKI["SERVER_KEY"]) + extra


def s_client(port, servername):
    """openssl s_client with STARTTLS, sending servername as SNI."""
    return subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                           "127.0.0.1:%d" % port, "-servername", servername, "-CAfile", PKI["CA"],
                           "-verify_return_error", "-verify_hostname", "localhost", "-quiet"],
                          input="EHLO c\r\nQUIT\r\n", capture_output=True, text=True, timeout=60)


def gnutls_cli(port, servername):
    """gnutls-cli with STARTTLS, sending servername as SNI."""
    return subprocess.run(["gnutls-cli", "--starttls-proto=smtp", "--port=%d" % port,
                           "--sni-hostname=" + servername, "--x509cafile=" + PKI["CA"],
                           "--verify-hostname=localhost", "127.0.0.1"],
                          input="EHLO c\r\nQUIT\r\n", capture_output=True, text=True, timeout=60)


class IpAddressAsServerName(unittest.TestCase):
    def test_ipv4_address_ignored_and_logged(self):
        for client in (s_client, gnutls_cli):
            with self.subTest(client=client.__name__), \
                    harness.Server(*tls_args(), log_level="debug") as srv:
                r = client(srv.port, "127.0.0.1")
                self.assertIn("221 2.0.0 Bye", r.stdout, (r.stdout, r.stderr, srv.log()))
                log = srv.wait_log("event=tls-sni-ignored")
                self.assertIn('event=tls-sni-ignored name="127.0.0.1" reason=ip-address', log)
                self.assertIn("event=starttls version=", log)

    def test_host_name_not_logged(self):
        with harness.Server(*tls_args(), log_level="debug") as srv:
            r = s_client(srv.port, "localhost")
            self.assertIn("221 2.0.0 Bye", r.stdout, r.stderr)
            self.assertNotIn("tls-sni", srv.wait_log("event=close"))

    def test_ipv6_address_refused_by_gnutls_explained(self):
        """GnuTLS (3.7 up to its current master) refuses a server name
        with a colon inside the ClientHello parser, before any hook
        could drop it; the log says why and what to do."""
        for client in (s_client, gnutls_cli):
            with self.subTest(client=client.__name__), \
                    harness.Server(*tls_args(), log_level="debug") as srv:
                r = client(srv.port, "::1")
                self.assertNotIn("221 2.0.0 Bye", r.stdout)
                log = srv.wait_log("event=tls-failed")
                self.assertIn('event=tls-failed client=127.0.0.1 error="the client sent the IP '
                              'address ::1 as TLS server name (SNI), which RFC 6066 forbids '
                              'and GnuTLS refuses; give the client the host name', log)
                self.assertNotIn("tls-sni-ignored", log)


class HelpWithStartTLS(unittest.TestCase):
    def test_help_lists_starttls(self):
        with harness.Server(*tls_args()) as srv:
            c = srv.raw()
            c.expect(220)
            send_exact(c, "HELP", b"214-2.0.0 smtpipe: commands supported:\r\n"
                       b"214-2.0.0   HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY\r\n"
                       b"214-2.0.0   STARTTLS\r\n214 2.0.0 End of HELP info\r\n")
        with harness.Server(*tls_args("--auth=alice,echo pw")) as srv:
            c = srv.raw()
            c.expect(220)
            c.send("HELP\r\n")
            self.assertIn(b"\r\n214-2.0.0   STARTTLS AUTH\r\n", reply_bytes(c))


if __name__ == "__main__":
    harness.main()
