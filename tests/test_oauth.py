"""OAuth2 (XOAUTH2) end to end: mailbot against a real Dovecot and a real SMTP server, tokens
from a real (loopback) token endpoint that Dovecot asks by RFC 7662 introspection."""

from __future__ import annotations

import imaplib
import smtplib
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailbot.demo import samples
from tests.conftest import Workspace, make_workspace
from tests.servers.oauth import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, OAuthServer
from tests.servers.smtp import SmtpSink
from tests.test_daemon import Running
from tests.test_notify import smtp_section

ARRIVAL = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)  # within the test campaign, before its deadline
CODE = "THPT-NQ"
SECRET_ENV = "MAILBOT_TEST_OAUTH_CLIENT_SECRET"
REFRESH_ENV = "MAILBOT_TEST_OAUTH_REFRESH_TOKEN"


def school_mail(code: str = CODE, n: int = 1) -> bytes:
    row = next(r for r in samples.load_demo_roster() if r["code"] == code)
    return samples.make_email(
        sender=row["emails"][0],
        sender_name=row["name"],
        subject=f"Báo cáo ANTQ lần {n}",
        body="Kính gửi Sở",
        message_id=f"<oauth-{code}-{n}@haiphong.edu.vn>",
        attachments=[("bc.docx", samples.make_report_docx(row["name"]), "application/octet-stream")],
    )


def token_command(token: str) -> str:
    return f'auth = "oauth2"\noauth2_token_command = "printf %s {token}"\n'


def refresh_flow(oauth: OAuthServer, client_id: str = CLIENT_ID) -> str:
    return (
        f'auth = "oauth2"\noauth2_token_url = "{oauth.token_url}"\noauth2_client_id = "{client_id}"\n'
        f'oauth2_client_secret_env = "{SECRET_ENV}"\noauth2_refresh_token_env = "{REFRESH_ENV}"\n'
        'oauth2_scope = "https://mail.google.com/"\n'
    )


def smtp_oauth(sink: SmtpSink, user: str, auth: str) -> str:
    return smtp_section(sink, extra=f'username = "{user}"\n{auth}\nretry_base_seconds = 1\n')


def institution(ws: Workspace, code: str = CODE) -> dict:  # type: ignore[type-arg]
    return next(i for i in ws.status()["institutions"] if i["code"] == code)


def output(result) -> str:  # type: ignore[no-untyped-def]
    return result.stdout + result.stderr


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    monkeypatch.setenv(REFRESH_ENV, REFRESH_TOKEN)


# -- the test servers themselves -------------------------------------------------------------


def test_dovecot_takes_introspected_bearer_tokens_and_still_passwords(dovecot_oauth2, oauth_server):
    token = oauth_server.new_token()
    for mechanism in ("XOAUTH2", "OAUTHBEARER"):
        conn = dovecot_oauth2.connect_oauth2(token, mechanism=mechanism)
        assert conn.select("INBOX")[0] == "OK"
        conn.logout()
    assert {"AUTH=XOAUTH2", "AUTH=OAUTHBEARER", "AUTH=PLAIN"} <= set(dovecot_oauth2.connect(login=False).capabilities)
    dovecot_oauth2.connect().logout()  # the passwd-file passdb still serves plain logins
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        dovecot_oauth2.connect(password=token)  # a token is no password ...
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        dovecot_oauth2.connect_oauth2(dovecot_oauth2.password)  # ... and a password no token
    oauth_server.revoke(token)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        dovecot_oauth2.connect_oauth2(token)
    other = oauth_server.new_token(user="someone.else@haiphong.edu.vn")
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        dovecot_oauth2.connect_oauth2(other)  # a valid token, but not this user's
    assert [(i.mode, i.active) for i in oauth_server.introspections] == [
        ("post", True),
        ("post", True),
        ("post", False),
        ("post", False),
        ("post", True),
    ]


@pytest.mark.parametrize("mode", ["get", "auth"])
def test_dovecot_other_introspection_modes(make_dovecot, oauth_server, mode):
    url = oauth_server.introspect_url + ("?token=" if mode == "get" else "")
    server = make_dovecot(oauth2_introspection_url=url, oauth2_introspection_mode=mode)
    server.connect_oauth2(oauth_server.new_token()).logout()
    with pytest.raises(imaplib.IMAP4.error):
        server.connect_oauth2("not-a-token")
    assert [(i.mode, i.active) for i in oauth_server.introspections] == [(mode, True), (mode, False)]


def test_smtp_sink_xoauth2(smtp_factory, oauth_server):
    token = oauth_server.new_token()
    sink = smtp_factory(xoauth2_validator=oauth_server.validate)
    user = oauth_server.user

    def xoauth2(t: str):  # type: ignore[no-untyped-def]
        return lambda challenge=None: f"user={user}\x01auth=Bearer {t}\x01\x01"

    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["XOAUTH2"]
        assert client.auth("XOAUTH2", xoauth2(token), initial_response_ok=True)[0] == 235
        client.sendmail(user, ["a@x.vn"], b"Subject: hi\r\n\r\nx\r\n")
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as bad:
            client.auth("XOAUTH2", xoauth2("wrong"), initial_response_ok=True)
        assert bad.value.smtp_code == 535
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail(user, ["a@x.vn"], b"Subject: no\r\n\r\nx\r\n")
    assert len(sink.wait_for(1)) == 1
    assert sink.logins == [("XOAUTH2", user, True), ("XOAUTH2", user, False)]


# -- mailbot ----------------------------------------------------------------------------------


def test_run_once_fetches_with_a_token_from_a_command(tmp_path: Path, dovecot_oauth2, oauth_server):
    dovecot_oauth2.append(school_mail(), ARRIVAL)
    token = oauth_server.new_token()
    ws = make_workspace(tmp_path / "ws", dovecot_oauth2, extra_inbox=token_command(token))
    before = len(dovecot_oauth2.log_text())
    ws.cli("run", "--once")
    assert institution(ws)["status"] == "on_time"
    assert [i.token for i in oauth_server.introspections] == [token]  # Dovecot checked exactly this token
    logins = [line for line in dovecot_oauth2.log_text()[before:].splitlines() if "imap-login: Info: Login:" in line]
    assert len(logins) == 1 and "method=XOAUTH2" in logins[0]


def test_refresh_flow_one_token_for_inbox_and_outbox(
    tmp_path: Path, dovecot_oauth2, oauth_server, smtp_factory, secrets_env
):
    """The same token endpoint and client id in [inbox] and [outbox]: one refresh serves both, as
    mailbot caches access tokens per (token URL, client id) within a process."""
    sink = smtp_factory(xoauth2_validator=oauth_server.validate)
    dovecot_oauth2.append(school_mail(), ARRIVAL)
    ws = make_workspace(
        tmp_path / "ws",
        dovecot_oauth2,
        extra_inbox=refresh_flow(oauth_server),
        extra=smtp_oauth(sink, dovecot_oauth2.user, refresh_flow(oauth_server)),
    )
    ws.cli("run", "--once")
    assert institution(ws)["status"] == "on_time"
    [token] = oauth_server.issued
    assert oauth_server.token_requests == 1
    assert oauth_server.token_forms == [
        {
            "grant_type": "refresh_token",
            "refresh_token": REFRESH_TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": "https://mail.google.com/",
        }
    ]
    assert [(i.token, i.active) for i in oauth_server.introspections] == [(token, True)]
    receipts = [c for c in sink.wait_for(1) if c.message["X-Mailbot-Kind"] == "ack"]
    assert [r.rcpt_tos for r in receipts] == [
        (next(r for r in samples.load_demo_roster() if r["code"] == CODE)["emails"][0],)
    ]
    assert sink.logins and all(login == ("XOAUTH2", dovecot_oauth2.user, True) for login in sink.logins)


def test_refresh_refused_is_a_clear_failure_without_secrets(tmp_path: Path, dovecot_oauth2, oauth_server, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "not-the-client-secret")
    monkeypatch.setenv(REFRESH_ENV, REFRESH_TOKEN)
    ws = make_workspace(tmp_path / "ws", dovecot_oauth2, extra_inbox=refresh_flow(oauth_server))
    result = ws.cli("check", check=False)
    assert result.returncode == 1
    assert "FAIL inbox: inbox: the token endpoint refused the refresh (401)" in result.stdout
    assert "Traceback" not in output(result)
    assert REFRESH_TOKEN not in output(result) and "not-the-client-secret" not in output(result)
    assert oauth_server.issued == [] and oauth_server.introspections == []


def test_outbox_sends_the_receipt_with_xoauth2(tmp_path: Path, dovecot, smtp_factory, oauth_server, monkeypatch):
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)  # the inbox logs in with a password here
    sink = smtp_factory(xoauth2_validator=oauth_server.validate)
    token = oauth_server.new_token()
    dovecot.append(school_mail(), ARRIVAL)
    ws = make_workspace(tmp_path / "ws", dovecot, extra=smtp_oauth(sink, oauth_server.user, token_command(token)))
    ws.cli("run", "--once")
    [receipt] = [c for c in sink.wait_for(1) if c.message["X-Mailbot-Kind"] == "ack"]
    assert receipt.message["In-Reply-To"] == f"<oauth-{CODE}-1@haiphong.edu.vn>"
    assert sink.logins and set(sink.logins) == {("XOAUTH2", oauth_server.user, True)}
    assert "ok   outbox: SMTP" in ws.cli("check").stdout

    oauth_server.revoke(token)
    result = ws.cli("check", check=False)
    assert result.returncode == 1
    assert f"FAIL outbox: SMTP login refused at {sink.host}:{sink.port} for {oauth_server.user} (535)" in result.stdout
    assert token not in output(result) and "Traceback" not in output(result)


def test_check_with_a_revoked_token_fails_clearly_and_never_shows_it(tmp_path: Path, dovecot_oauth2, oauth_server):
    token = oauth_server.new_token()
    ws = make_workspace(tmp_path / "ws", dovecot_oauth2, extra_inbox=token_command(token))
    assert "ok   inbox:" in ws.cli("check").stdout
    oauth_server.revoke(token)
    result = ws.cli("check", check=False)
    assert result.returncode == 1
    fail = [line for line in result.stdout.splitlines() if line.startswith("FAIL inbox:")]
    assert len(fail) == 1, result.stdout
    assert f"{dovecot_oauth2.host}:{dovecot_oauth2.port}" in fail[0]
    assert token not in output(result) and "Traceback" not in output(result)


def test_check_with_a_revoked_token_says_login_refused(tmp_path: Path, dovecot_oauth2, oauth_server):
    token = oauth_server.new_token()
    oauth_server.revoke(token)
    ws = make_workspace(tmp_path / "ws", dovecot_oauth2, extra_inbox=token_command(token))
    result = ws.cli("check", check=False)
    assert result.returncode == 1
    assert (
        f"FAIL inbox: IMAP login refused at {dovecot_oauth2.host}:{dovecot_oauth2.port} "
        f"for user {dovecot_oauth2.user} (check the OAuth2 token)"
    ) in result.stdout


def test_check_with_a_failing_token_command(tmp_path: Path, dovecot_oauth2, oauth_server):
    command = 'auth = "oauth2"\noauth2_token_command = "echo token service unavailable >&2; exit 3"\n'
    ws = make_workspace(tmp_path / "ws", dovecot_oauth2, extra_inbox=command)
    result = ws.cli("check", check=False)
    assert result.returncode == 1
    assert "FAIL inbox: inbox.oauth2_token_command failed (exit 3): token service unavailable" in result.stdout
    assert "Traceback" not in output(result)
    assert oauth_server.introspections == []  # nothing reached Dovecot's auth


def test_refresh_flow_two_accounts_same_client(
    tmp_path: Path, dovecot_oauth2, oauth_server, smtp_factory, secrets_env, monkeypatch
):
    sender = "noreply@haiphong.edu.vn"
    oauth_server.add_refresh_token("refresh-token-noreply", sender)
    monkeypatch.setenv("MAILBOT_TEST_OAUTH_REFRESH_TOKEN_2", "refresh-token-noreply")
    sink = smtp_factory(xoauth2_validator=oauth_server.validate)
    dovecot_oauth2.append(school_mail(), ARRIVAL)
    outbox_auth = refresh_flow(oauth_server).replace(REFRESH_ENV, "MAILBOT_TEST_OAUTH_REFRESH_TOKEN_2")
    ws = make_workspace(
        tmp_path / "ws",
        dovecot_oauth2,
        extra_inbox=refresh_flow(oauth_server),
        extra=smtp_oauth(sink, sender, outbox_auth),
    )
    ws.cli("run", "--once")
    assert oauth_server.token_requests == 2
    assert ("XOAUTH2", sender, True) in sink.logins


def test_service_refreshes_a_token_the_server_refused(
    tmp_path: Path, dovecot_oauth2, oauth_server, smtp_factory, secrets_env
):
    sink = smtp_factory(xoauth2_validator=oauth_server.validate)
    ws = make_workspace(
        tmp_path / "ws",
        dovecot_oauth2,
        extra_inbox=refresh_flow(oauth_server) + "poll_seconds = 2\n",
        extra=smtp_oauth(sink, dovecot_oauth2.user, refresh_flow(oauth_server) + "deliver_every_seconds = 1"),
    )
    daemon = Running(ws)
    try:
        daemon.wait_log("mailbot started")
        dovecot_oauth2.append(school_mail(n=1), ARRIVAL)
        acks = lambda: [c for c in sink.messages if c.message["X-Mailbot-Kind"] == "ack"]  # noqa: E731
        deadline = time.monotonic() + 15
        while not acks() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(acks()) == 1 and oauth_server.token_requests == 1
        oauth_server.revoke(
            oauth_server.issued[0]
        )  # the provider revokes the access token; the refresh token still works
        dovecot_oauth2.append(school_mail(n=2), ARRIVAL)  # fetched over the open IMAP session, its receipt needs SMTP
        deadline = time.monotonic() + 15
        while len(acks()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ("XOAUTH2", dovecot_oauth2.user, False) in sink.logins  # the revoked token was refused ...
        assert oauth_server.token_requests == 2 and len(acks()) == 2  # ... so a fresh one should have been fetched
    finally:
        daemon.stop()
