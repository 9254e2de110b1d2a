"""Tests of the SMTP test server itself (tests/servers/smtp.py), via stdlib smtplib."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

import pytest

from tests.servers.smtp import SmtpSink
from tests.servers.smtp_fixtures import SmtpFactory, smtp_factory, smtp_sink  # noqa: F401

USER, PASSWORD = "bot@sgd.vn", "s3cret-pw"


def _msg(subject: str = "Nhắc nộp báo cáo", to: str = "truong@x.vn") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = USER, to, subject
    msg.set_content("Kính gửi nhà trường,\nvui lòng nộp báo cáo.\n")
    return msg


def _trust(sink: SmtpSink) -> ssl.SSLContext:
    assert sink.cert_path is not None and sink.cert_path.exists()
    return ssl.create_default_context(cafile=str(sink.cert_path))


def test_plain_send_is_captured(smtp_sink: SmtpSink) -> None:
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.send_message(_msg(), from_addr="bounce@sgd.vn", to_addrs=["a@x.vn", "b@x.vn"])
    [got] = smtp_sink.wait_for(1)
    assert got.mail_from == "bounce@sgd.vn"
    assert got.rcpt_tos == ("a@x.vn", "b@x.vn")
    assert got.message["Subject"] == "Nhắc nộp báo cáo"
    assert got.message["To"] == "truong@x.vn"
    assert "vui lòng nộp" in got.message.get_content()
    smtp_sink.clear()
    assert smtp_sink.messages == []


def test_wait_for_times_out_with_clear_message(smtp_sink: SmtpSink) -> None:
    with pytest.raises(AssertionError, match=r"expected >= 1 message\(s\) within 0.1s, got 0"):
        smtp_sink.wait_for(1, timeout=0.1)


def test_auth_required(smtp_factory: SmtpFactory) -> None:
    sink = smtp_factory(auth={USER: PASSWORD})
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(USER, ["a@x.vn"], _msg().as_bytes())
        assert refused.value.smtp_code == 530
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as bad:
            client.login(USER, "wrong")
        assert bad.value.smtp_code == 535
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.login(USER, PASSWORD)  # AUTH PLAIN
        client.send_message(_msg("plain"))
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.ehlo()
        client.user, client.password = USER, PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235
        client.send_message(_msg("login"))
    assert [m.message["Subject"] for m in sink.wait_for(2)] == ["plain", "login"]


def test_starttls_required_and_trusted(smtp_factory: SmtpFactory) -> None:
    sink = smtp_factory(starttls=True, auth={USER: PASSWORD})
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(USER, ["a@x.vn"], b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.smtp_code == 530
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.starttls(context=_trust(sink))  # verifies cert + hostname 127.0.0.1
        client.login(USER, PASSWORD)
        client.send_message(_msg())
    assert sink.wait_for(1)[0].message["Subject"] == "Nhắc nộp báo cáo"


def test_implicit_tls(smtp_factory: SmtpFactory) -> None:
    sink = smtp_factory(implicit_tls=True, auth={USER: PASSWORD})
    with smtplib.SMTP_SSL(sink.host, sink.port, context=_trust(sink), timeout=10) as client:
        client.login(USER, PASSWORD)
        client.send_message(_msg())
    assert len(sink.wait_for(1)) == 1


def test_reject_recipient_at_rcpt(smtp_factory: SmtpFactory) -> None:
    sink = smtp_factory(reject={"bad@x.vn": (550, "5.1.1 No such user")})
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(USER, ["bad@x.vn"], _msg().as_bytes())
        assert refused.value.recipients == {"bad@x.vn": (550, b"5.1.1 No such user")}
        partial = client.sendmail(USER, ["bad@x.vn", "ok@x.vn"], _msg().as_bytes())
        assert partial == {"bad@x.vn": (550, b"5.1.1 No such user")}
    [got] = sink.wait_for(1)
    assert got.rcpt_tos == ("ok@x.vn",)


def test_fail_next_is_transient(smtp_factory: SmtpFactory) -> None:
    sink = smtp_factory(fail_next=[(451, "4.3.0 Try again later")])
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as failed:
            client.send_message(_msg("first"))
        assert (failed.value.smtp_code, failed.value.smtp_error) == (451, b"4.3.0 Try again later")
        assert sink.messages == []
        client.send_message(_msg("retry"))
    assert [m.message["Subject"] for m in sink.wait_for(1)] == ["retry"]


def test_down_and_up_on_same_port(smtp_sink: SmtpSink) -> None:
    port = smtp_sink.port
    with smtplib.SMTP(smtp_sink.host, port, timeout=10) as client:
        client.send_message(_msg("before"))
    smtp_sink.down()
    assert not smtp_sink.running
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(smtp_sink.host, port, timeout=5)
    smtp_sink.up()
    assert smtp_sink.port == port
    with smtplib.SMTP(smtp_sink.host, port, timeout=10) as client:
        client.send_message(_msg("after"))
    assert [m.message["Subject"] for m in smtp_sink.wait_for(2)] == ["before", "after"]


def test_start_stop_idempotent() -> None:
    sink = SmtpSink(starttls=True)
    sink.start()
    sink.start()
    cert = sink.cert_path
    assert cert is not None and cert.exists()
    sink.stop()
    sink.stop()
    assert not sink.running and not cert.exists()
