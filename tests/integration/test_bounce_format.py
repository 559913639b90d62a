"""The queue's bounce (src/bounce.c) read back by Python's email package
as a valid delivery status notification (issue 17): a multipart/report
of report-type delivery-status, a message/delivery-status part that
parses into one block per recipient, and the original headers, whole or
cut at a line end, in the text/rfc822-headers part. The DSN is written
to a real file by the unit test binary's --write mode (the real
bounce_write, reading a real message file)."""
import email
import email.policy
import email.utils
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NOW = 1700000000
ARRIVAL = NOW - 3600
HEADERS = (b"Received: from client.example ([127.0.0.1])\n\tby mx.example.org (smtpipe) with ESMTP"
           b" id Q1.1;\n\tTue, 14 Nov 2023 21:13:20 +0000\n"
           b"From: Carol <carol@example.com>\nSubject: quarterly report\n"
           b"Message-ID: <abc@example.com>\n")
MESSAGE = HEADERS + b"\nHello,\n\nthe report is attached.\n"


BOUND_BOUNCE_HEADERS = harness.bound("BOUND_BOUNCE_HEADERS")


def helper():
    """The unit test binary, whose --write mode calls bounce_write."""
    build = os.environ.get("SMTPIPE_BUILD_DIR")
    if not build:
        raise RuntimeError("SMTPIPE_BUILD_DIR must name the build tree (run the tests through ctest)")
    path = os.path.join(build, "tests", "test_bounce")
    if not os.access(path, os.X_OK):
        raise RuntimeError("%s is missing: build with -DSMTPIPE_BUILD_TESTS=ON" % path)
    return path


class BounceFormat(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpipe-bounce-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])

    def bounce(self, rcpts, message=MESSAGE, sender="carol@example.com", status="5.0.0",
               diag="smtp; 554 5.0.0 command exited 67 (EX_NOUSER)", expired=False, qid="Q1a2b3",
               want_rc=0):
        """Write the DSN with the real bounce_write; its bytes, or the error"""
        msg = "-"
        if message is not None:
            msg = os.path.join(self.dir, "msg")
            with open(msg, "wb") as f:
                f.write(message)
        out = os.path.join(self.dir, "dsn")
        argv = [helper(), "--write", msg, out, "mx.example.org", qid, sender, status, diag,
                str(ARRIVAL), str(NOW), "1" if expired else "0"] + list(rcpts)
        r = subprocess.run(argv, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, want_rc, r.stderr)
        with open(out, "rb") as f:
            data = f.read()
        return data if want_rc == 0 else (data, r.stderr.decode(errors="replace"))

    def parse(self, data, crs=0):
        """The DSN as email reads it, after the checks every DSN passes;
        its only CRs are the crs of the copied headers"""
        self.assertEqual(data.count(b"\r"), crs)
        m = email.message_from_bytes(data, policy=email.policy.default)
        self.assertFalse(m.defects, m.defects)
        self.assertTrue(m.is_multipart())
        self.assertEqual(m.get_content_type(), "multipart/report")
        self.assertEqual(m.get_param("report-type"), "delivery-status")
        self.assertEqual(m["From"].addresses[0].addr_spec, "MAILER-DAEMON@mx.example.org")
        self.assertEqual(m["Auto-Submitted"], "auto-replied")
        self.assertEqual(m["Subject"], "Undelivered Mail Returned to Sender")
        self.assertEqual(email.utils.parsedate_to_datetime(m["Date"]).timestamp(), NOW)
        self.assertIn("mx.example.org", m["Message-ID"])
        for p in m.walk():
            self.assertFalse(p.defects, (p.get_content_type(), p.defects))
        return m

    def report(self, m, rcpts, status, diag, utf8=False):
        """Part 2: the per-message block, then one block per recipient;
        with a UTF-8 address, RFC 6533's message/global-delivery-status
        (which email reads as one message: the first block its headers,
        the others its body) and the utf-8 address type"""
        part = m.get_payload()[1]
        if utf8:
            self.assertEqual(part.get_content_type(), "message/global-delivery-status")
            [first] = part.get_payload()
            rest = first.get_payload(decode=True).decode("utf-8")
            blocks = [first] + [email.message_from_string(b, policy=email.policy.default)
                                for b in rest.strip("\n").split("\n\n")]
        else:
            self.assertEqual(part.get_content_type(), "message/delivery-status")
            blocks = part.get_payload()
        self.assertEqual(len(blocks), 1 + len(rcpts), [dict(b) for b in blocks])
        self.assertEqual(blocks[0]["Reporting-MTA"], "dns; mx.example.org")
        self.assertEqual(
            email.utils.parsedate_to_datetime(blocks[0]["Arrival-Date"]).timestamp(), ARRIVAL)
        for rcpt, b in zip(rcpts, blocks[1:]):
            kind = "utf-8" if utf8 and not rcpt.isascii() else "rfc822"
            self.assertEqual(b["Final-Recipient"], kind + "; " + rcpt)
            self.assertEqual(b["Action"], "failed")
            self.assertEqual(b["Status"], status)
            self.assertEqual(b["Diagnostic-Code"], diag)
        return blocks

    def headers_part(self, m):
        part = m.get_payload()[2]
        self.assertEqual(part.get_content_type(), "text/rfc822-headers")
        return part.get_payload(decode=True)

    def test_valid_dsn(self):
        rcpts = ["alice@example.org", "bob@example.net"]
        diag = "smtp; 554 5.0.0 command exited 67 (EX_NOUSER)"
        m = self.parse(self.bounce(rcpts))
        self.assertEqual(m["To"].addresses[0].addr_spec, "carol@example.com")
        self.assertEqual(m["X-Smtpipe-Queue-Id"], "Q1a2b3")
        self.assertEqual(len(m.get_payload()), 3)
        text = m.get_payload()[0]
        self.assertEqual(text.get_content_type(), "text/plain")
        body = text.get_content()
        for want in ["<alice@example.org>", "<bob@example.net>", diag, "Q1a2b3"]:
            self.assertIn(want, body)
        blocks = self.report(m, rcpts, "5.0.0", diag)
        self.assertEqual(blocks[0]["X-Smtpipe-Queue-Id"], "Q1a2b3")
        self.assertEqual(self.headers_part(m), HEADERS)

    def test_expired(self):
        m = self.parse(self.bounce(["alice@example.org"], status="4.4.7", diag="", expired=True))
        self.report(m, ["alice@example.org"], "4.4.7", None)
        self.assertIn("queue lifetime", m.get_payload()[0].get_content())

    def test_hostile_addresses(self):
        """Quoted local parts with spaces, quotes and specials: written as
        they are, each on a line of its own field"""
        rcpts = ['"john doe"@example.com', '"a>b,c;<d>: e"@example.com',
                 '"say \\"hi\\""@example.com', '"--=_Q1a2b3.1700000000--"@example.com']
        for sender in rcpts:
            with self.subTest(sender=sender):
                data = self.bounce(rcpts, sender=sender)
                m = self.parse(data)
                self.assertIn(("To: <%s>\n" % sender).encode(), data)
                self.report(m, rcpts, "5.0.0", "smtp; 554 5.0.0 command exited 67 (EX_NOUSER)")
                self.assertEqual(self.headers_part(m), HEADERS)

    def test_utf8_addresses(self):
        """SMTPUTF8: a UTF-8 sender or recipient makes the report and the
        headers RFC 6533's global types, 8bit, with the utf-8 address type"""
        utf = "δοκιμή@παράδειγμα.δοκιμή"
        for sender, rcpts in ((utf, ["alice@example.org"]), ("carol@example.com", [utf, "b@x.org"])):
            with self.subTest(sender=sender, rcpts=rcpts):
                data = self.bounce(rcpts, sender=sender)
                m = self.parse(data)
                self.assertIn(("To: <%s>\n" % sender).encode(), data)
                self.assertEqual(m["Content-Transfer-Encoding"], "8bit")
                self.report(m, rcpts, "5.0.0", "smtp; 554 5.0.0 command exited 67 (EX_NOUSER)",
                            utf8=True)
                for r in rcpts:
                    self.assertIn(r, m.get_payload()[0].get_content())
                hdrs = m.get_payload()[2]
                self.assertEqual(hdrs.get_content_type(), "message/global-headers")
                self.assertEqual(hdrs.get_payload()[0]["Message-ID"], "<abc@example.com>")
                tail = b"\n\n" + HEADERS + b"\n--" + m.get_param("boundary").encode() + b"--\n"
                self.assertTrue(data.endswith(tail))

    def test_injection_refused(self):
        """CR or LF in any field: exit 1, an error, and nothing written"""
        bad = ["carol@example.com\r\nBcc: victim@example.net", "carol@example.com\nX-A: b",
               "carol\r@example.com"]
        for v in bad:
            for field in ("sender", "rcpt", "diag", "qid"):
                with self.subTest(field=field, value=v):
                    kw = {"sender": v} if field == "sender" else {}
                    if field == "diag":
                        kw["diag"] = "smtp; 554 x" + v
                    if field == "qid":
                        kw["qid"] = v
                    rcpts = [v] if field == "rcpt" else ["alice@example.org"]
                    data, err = self.bounce(rcpts, want_rc=1, **kw)
                    self.assertEqual(data, b"")
                    self.assertIn("control byte", err)

    def test_boundary_in_headers(self):
        """Headers that hold the boundary the DSN would use, as a line of
        its own, the closing delimiter, and after a bare CR"""
        base = email.message_from_bytes(self.bounce(["a@example.org"])).get_param("boundary")
        hostile = (HEADERS + ("X-Evil: x\n--%s\n--%s--\nX-CR: a\r--%s\n" % (base, base, base))
                   .encode())
        m = self.parse(self.bounce(["a@example.org"], message=hostile + b"\nbody\n"), crs=1)
        self.assertNotEqual(m.get_param("boundary"), base)
        self.assertEqual(len(m.get_payload()), 3)
        self.assertEqual(self.headers_part(m), hostile)

    def test_huge_headers_cut_at_line_end(self):
        line = b"X-Pad: " + b"a" * 56 + b"\n"  # 64 bytes
        big = HEADERS + line * (3 * BOUND_BOUNCE_HEADERS // 64)
        m = self.parse(self.bounce(["a@example.org"], message=big + b"\nbody\n"))
        got = self.headers_part(m)
        self.assertLessEqual(len(got), BOUND_BOUNCE_HEADERS)
        self.assertGreater(len(got), BOUND_BOUNCE_HEADERS - 64)
        self.assertTrue(big.startswith(got))
        self.assertTrue(got.endswith(b"\n"))
        self.assertIn("cut", m.get_payload()[0].get_content())

    def test_no_headers_and_no_message(self):
        m = self.parse(self.bounce(["a@example.org"], message=b"\nonly a body\n"))
        self.assertEqual(self.headers_part(m), b"")
        m = self.parse(self.bounce(["a@example.org"], message=None))
        self.assertEqual(len(m.get_payload()), 2)
        self.report(m, ["a@example.org"], "5.0.0", "smtp; 554 5.0.0 command exited 67 (EX_NOUSER)")


if __name__ == "__main__":
    harness.main()
