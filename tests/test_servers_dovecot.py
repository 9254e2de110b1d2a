"""Tests of the real-Dovecot test helper itself (tests/servers/dovecot.py)."""

from __future__ import annotations

import imaplib
import re
import shutil
import socket
import ssl
import tempfile
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.servers import dovecot as dovecot_module
from tests.servers import fixtures
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import dovecot, dovecot_session  # noqa: F401

MSG = (
    b"From: Truong THPT <thpt@haiphong.edu.vn>\r\n"
    b"To: gdtx@haiphong.edu.vn\r\n"
    b"Subject: =?utf-8?b?QsOhbyBjw6FvIHR14bqnbg==?=\r\n"
    b"Message-ID: <report-1@haiphong.edu.vn>\r\n"
    b"\r\n"
    b"Bao cao tuan.\r\n"
)


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return True
    return False


def test_plain_login(dovecot: Dovecot) -> None:
    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    try:
        assert conn.welcome.startswith(b"* OK")
        typ, _ = conn.login(dovecot.user, dovecot.password)
        assert typ == "OK"
        assert "IDLE" in conn.capabilities
        typ, data = conn.select("INBOX")
        assert typ == "OK" and data == [b"0"]
    finally:
        conn.logout()


def test_ssl_login_trusting_cert_path(dovecot: Dovecot) -> None:
    ctx = ssl.create_default_context(cafile=str(dovecot.cert_path))
    conn = imaplib.IMAP4_SSL(dovecot.host, dovecot.ssl_port, ssl_context=ctx)
    try:
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert conn.login(dovecot.user, dovecot.password)[0] == "OK"
    finally:
        conn.logout()


def test_ssl_rejects_untrusted_client_context(dovecot: Dovecot) -> None:
    # The system CA store does not know our throwaway certificate.
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(dovecot.host, dovecot.ssl_port, ssl_context=ssl.create_default_context())


def test_wrong_password_is_rejected(dovecot: Dovecot) -> None:
    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            conn.login(dovecot.user, "wrong-password")
    finally:
        conn.shutdown()


def test_append_sets_internaldate(dovecot: Dovecot) -> None:
    ict = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh
    when = datetime(2024, 3, 5, 8, 30, 15, tzinfo=ict)
    dovecot.append(MSG, when=when)
    naive = datetime(2023, 12, 31, 23, 59, 58)
    dovecot.append(MSG, when=naive)

    uids = dovecot.uids()
    assert len(uids) == 2 and dovecot.count() == 2
    dates = dovecot.fetch_internaldates()
    # Same instant.  (Maildir stores INTERNALDATE as the file's mtime, so
    # Dovecot reports it in the server's zone, pinned to UTC, not in +07:00.)
    assert dates[uids[0]] == when
    assert dates[uids[1]] == naive.replace(tzinfo=UTC)

    # Cross-check with a raw imaplib FETCH, independent of the helper's parser.
    conn = dovecot.connect()
    try:
        conn.select("INBOX", readonly=True)
        typ, data = conn.uid("FETCH", str(uids[0]), "(INTERNALDATE)")
        assert typ == "OK"
        assert b'INTERNALDATE "05-Mar-2024 01:30:15 +0000"' in data[0]
        assert time.mktime(imaplib.Internaldate2tuple(data[0])) == when.timestamp()
    finally:
        conn.logout()


def test_append_flags_and_new_folder(dovecot: Dovecot) -> None:
    folder = "Báo cáo/2024"
    assert not dovecot.folder_exists(folder)
    dovecot.append(MSG, folder=folder, flags="\\Seen \\Flagged")
    assert dovecot.folder_exists(folder)
    assert folder in dovecot.folders()
    assert dovecot.count(folder) == 1
    assert dovecot.count("INBOX") == 0
    (flags,) = dovecot.fetch_flags(folder).values()
    assert set(flags.split()) >= {"\\Seen", "\\Flagged"}


def test_reset_uidvalidity_keeps_messages(dovecot: Dovecot) -> None:
    for day in (1, 2, 3):
        dovecot.append(MSG, when=datetime(2024, 1, day, tzinfo=UTC))
    before = dovecot.uidvalidity()
    assert len(dovecot.uids()) == 3

    returned = dovecot.reset_uidvalidity()

    after = dovecot.uidvalidity()
    assert returned == after != before
    assert dovecot.count() == 3
    assert len(dovecot.uids()) == 3
    assert sorted(d.day for d in dovecot.fetch_internaldates().values()) == [1, 2, 3]


def test_reset_uidvalidity_other_folder(dovecot: Dovecot) -> None:
    folder = "Lưu trữ/2024"  # non-ASCII: stored on disk in modified UTF-7
    dovecot.append(MSG, folder=folder)
    dovecot.append(MSG)
    inbox_before = dovecot.uidvalidity("INBOX")
    before = dovecot.uidvalidity(folder)
    assert dovecot.reset_uidvalidity(folder) != before
    assert dovecot.count(folder) == 1
    assert dovecot.uidvalidity("INBOX") == inbox_before


def test_stop_start_restart(dovecot: Dovecot) -> None:
    dovecot.append(MSG)
    port, ssl_port = dovecot.port, dovecot.ssl_port

    dovecot.stop()
    assert not dovecot.running
    assert _refused(dovecot.host, port)
    dovecot.stop()  # idempotent

    dovecot.start()
    assert (dovecot.port, dovecot.ssl_port) == (port, ssl_port)
    assert dovecot.count() == 1

    conn = dovecot.connect()  # an open client session must not block restart
    conn.select("INBOX")
    started = time.monotonic()
    dovecot.restart()
    assert time.monotonic() - started < 5
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        conn.noop()
    assert dovecot.count() == 1
    assert "starting up" in dovecot.log_text()


def test_idle_reports_new_mail(dovecot: Dovecot) -> None:
    conn = dovecot.connect()
    try:
        conn.select("INBOX")
        tag = conn._new_tag().decode()
        conn.send(f"{tag} IDLE\r\n".encode())
        assert conn.readline().startswith(b"+")
        dovecot.append(MSG)
        conn.sock.settimeout(10)
        line = conn.readline()
        assert re.match(rb"\* 1 EXISTS", line), line
        conn.send(b"DONE\r\n")
        while not (line := conn.readline()).startswith(tag.encode()):
            pass
        assert b"OK" in line
    finally:
        conn.logout()


def test_extra_users_and_context_manager() -> None:
    root = tempfile.mkdtemp(prefix="dovecot-")
    try:
        with Dovecot(root, extra_users={"other@haiphong.edu.vn": "pw-2"}) as server:
            server.append(MSG, user="other@haiphong.edu.vn")
            assert server.count(user="other@haiphong.edu.vn") == 1
            assert server.count() == 0
            server.add_user("late@haiphong.edu.vn", "pw-3")  # while running
            conn = server.connect(user="late@haiphong.edu.vn", password="pw-3")
            conn.logout()
        assert not server.running
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_session_fixture(dovecot_session: Dovecot) -> None:
    folder = "session-test"
    dovecot_session.append(MSG, folder=folder)
    assert dovecot_session.running
    assert dovecot_session.count(folder) >= 1


def test_missing_dovecot_fails_instead_of_skipping(monkeypatch) -> None:
    def missing() -> str:
        raise dovecot_module.DovecotError("Dovecot IMAP server is not installed")

    monkeypatch.setattr(dovecot_module, "find_dovecot", missing)
    with pytest.raises(pytest.fail.Exception, match="not installed"):
        fixtures._start()
