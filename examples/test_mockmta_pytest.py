"""The test of mockmta_pytest.py, run by CTest as
`python3 -m pytest -p mockmta_pytest examples/test_mockmta_pytest.py`
(with examples/ on PYTHONPATH and MOCKMTA naming the binary)."""
import smtplib

import pytest

from mockmta_pytest import MockMTA


def send(port, sender, rcpts, text, login=None):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        if login:
            s.login(*login)
        s.sendmail(sender, rcpts, text)


def test_maildir_with_a_bcc_recipient(mockmta):
    send(mockmta.port, "app@example.org", ["user@example.org", "audit@example.org"],
         "Subject: Welcome\r\nTo: user@example.org\r\n\r\nHello!\r\n")
    (msg,) = mockmta.messages()
    assert msg["Subject"] == "Welcome"
    assert msg.get_payload() == "Hello!\n"
    # the Bcc recipient is only in the envelope, and the envelope is in the message
    assert mockmta.envelope(msg) == ("<app@example.org>", ["user@example.org", "audit@example.org"])


@pytest.mark.mockmta(store="mbox")
def test_mbox_in_order(mockmta):
    for i in range(3):
        send(mockmta.port, "", ["u%d@example.org" % i], "Subject: %d\r\n\r\nFrom here\r\n" % i)
    msgs = mockmta.messages()
    assert [m["Subject"] for m in msgs] == ["0", "1", "2"]
    assert mockmta.envelope(msgs[2]) == ("<>", ["u2@example.org"])


@pytest.mark.mockmta("--auth-accept-any", store="stdout")
def test_login_and_stdout(mockmta):
    send(mockmta.port, "a@example.org", ["b@example.org"], "Subject: authed\r\n\r\nx\r\n",
         login=("any-user", "any-password"))
    with pytest.raises(smtplib.SMTPSenderRefused):  # AUTH is required now
        send(mockmta.port, "a@example.org", ["b@example.org"], "Subject: no\r\n\r\nx\r\n")
    mockmta.close()  # all of standard output read
    (msg,) = mockmta.messages()
    assert msg["Subject"] == "authed"
    assert "with ESMTPA id" in msg["Received"]


@pytest.mark.mockmta(faults=["rcpt *@bounce.test 550 5.1.1 No such user",
                             "dot every 2 451 4.3.0 Try again later"])
def test_faults(mockmta):
    refused = []
    with smtplib.SMTP("127.0.0.1", mockmta.port, timeout=30) as s:
        refused = s.sendmail("a@example.org", ["x@bounce.test", "y@example.org"], "Subject: 1\r\n\r\n")
    assert refused == {"x@bounce.test": (550, b"5.1.1 No such user")}
    with pytest.raises(smtplib.SMTPDataError) as e:  # the second message
        send(mockmta.port, "a@example.org", ["y@example.org"], "Subject: 2\r\n\r\n")
    assert e.value.smtp_code == 451
    assert [m["Subject"] for m in mockmta.messages()] == ["1"]


def test_without_the_fixture_as_unittest_would(tmp_path):
    with MockMTA("--max-recipients=2", directory=tmp_path) as m:
        with smtplib.SMTP("127.0.0.1", m.port, timeout=30) as s:
            refused = s.sendmail("a@example.org", ["x@example.org", "y@example.org",
                                                   "z@example.org"], "Subject: two\r\n\r\n.\r\n")
        assert list(refused) == ["z@example.org"] and refused["z@example.org"][0] == 452
        (msg,) = m.messages()
        assert m.envelope(msg) == ("<a@example.org>", ["x@example.org", "y@example.org"])
        assert msg.get_payload() == ".\n"
