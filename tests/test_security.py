"""Sender authenticity, secrets kept out of logs and the database, and hostile names."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from mailbot import pipeline, store
from mailbot.config import LimitSettings, SecuritySettings
from mailbot.demo import samples
from mailbot.ingest.authenticity import problem
from mailbot.ingest.parse import parse
from mailbot.models import RawMail
from tests.conftest import make_workspace

WHEN = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)
NQ = "thptngoquyen@haiphong.edu.vn"


def mail_with(headers: dict[str, str], sender: str = NQ, name: str = "Trường THPT Ngô Quyền") -> bytes:
    return samples.make_email(
        sender=sender,
        sender_name=name,
        subject="Báo cáo",
        body="x",
        extra_headers=headers,
        attachments=[("bc.docx", samples.make_report_docx("Trường THPT Ngô Quyền"), "application/octet-stream")],
    )


def parsed(raw: bytes):  # type: ignore[no-untyped-def]
    return parse(RawMail("t", 0, "1", WHEN, raw), LimitSettings())


def test_only_the_topmost_authentication_results_is_trusted():
    raw = mail_with(
        {
            "Authentication-Results": "mx.haiphong.edu.vn; spf=fail smtp.mailfrom=x; dmarc=fail header.from=haiphong.edu.vn"
        }
    )
    forged = b"Authentication-Results: mx.haiphong.edu.vn; dmarc=pass\r\n"
    # the sender's own (forged) header sits below the one our server prepends
    raw = raw.replace(b"Authentication-Results:", forged + b"Authentication-Results:", 1)
    raw = b"Authentication-Results: mx.haiphong.edu.vn; dmarc=fail header.from=haiphong.edu.vn\r\n" + raw.replace(
        forged, b""
    )
    assert "DMARC" in problem(parsed(raw), SecuritySettings(require_auth="dmarc"))
    assert problem(parsed(raw), SecuritySettings(require_auth="off")) == ""
    ok = mail_with(
        {"Authentication-Results": "mx.haiphong.edu.vn; spf=pass smtp.mailfrom=haiphong.edu.vn; dkim=fail; dmarc=pass"}
    )
    assert problem(parsed(ok), SecuritySettings(require_auth="dkim_or_spf")) == ""
    assert problem(parsed(mail_with({})), SecuritySettings(require_auth="dkim_or_spf")) == ""  # nothing recorded


def test_failing_dmarc_on_a_roster_address_is_held_and_display_names_never_identify(workspace, dovecot):
    dovecot.append(mail_with({"Authentication-Results": "mx.haiphong.edu.vn; spf=fail; dkim=none; dmarc=fail"}), WHEN)
    # A stranger borrowing a school's name as display name, with no name in subject or files
    stranger = samples.make_email(
        sender="lures@evil.example",
        sender_name="Trường THPT Ngô Quyền",
        subject="gửi",
        body="x",
        attachments=[("a.docx", samples.make_report_docx("Công ty ABC"), "application/octet-stream")],
    )
    dovecot.append(stranger, WHEN)
    workspace.cli("run", "--once")
    status = workspace.status()
    inst = next(i for i in status["institutions"] if i["code"] == "THPT-NQ")
    assert inst["status"] == "missing"
    reasons = [r["reason"] for r in status["review"]]
    assert any("DMARC" in r for r in reasons) and len(reasons) == 2


def test_secrets_never_reach_logs_errors_or_the_database(workspace, dovecot):
    dovecot.append(mail_with({}), WHEN)
    result = workspace.cli("-v", "--log-format", "json", "run", "--once")
    bad = workspace.cli("check", check=False)  # fine: prints ok lines
    workspace.password = "wrong-" + workspace.password
    refused = workspace.cli("check", check=False)
    secret = dovecot.password.encode()
    db = (workspace.root / "var" / "mailbot.sqlite3").read_bytes()
    wal = workspace.root / "var" / "mailbot.sqlite3-wal"
    for blob in (
        result.stderr.encode(),
        bad.stdout.encode(),
        refused.stdout.encode(),
        refused.stderr.encode(),
        db,
        wal.read_bytes() if wal.exists() else b"",
    ):
        assert secret not in blob
    assert b"wrong-" not in refused.stdout.encode() + refused.stderr.encode()


def test_archive_files_are_private_and_names_cannot_escape(workspace, dovecot):
    evil = samples.make_email(
        sender=NQ,
        sender_name="",
        subject="Báo cáo",
        body="x",
        attachments=[
            (
                "../../../../tmp/evil.docx",
                samples.make_report_docx("Trường THPT Ngô Quyền"),
                "application/octet-stream",
            ),
            ("C:\\Windows\\..\\x.docx", samples.make_report_docx("Trường THPT Ngô Quyền"), "application/octet-stream"),
        ],
    )
    dovecot.append(evil, WHEN)
    engine = workspace.engine()
    pipeline.run_once(workspace.settings(), engine)
    archive = (workspace.root / "var" / "archive").resolve()
    with engine.connect() as conn:
        paths = [r.path for r in conn.execute(select(store.files)) if r.path]
    assert len(paths) == 2
    for path in paths:
        full = (archive / path).resolve()
        assert full.is_relative_to(archive) and full.exists()
        assert stat.S_IMODE(full.stat().st_mode) & 0o007 == 0
    assert not os.path.exists("/tmp/evil.docx")


def test_the_archive_refuses_paths_outside_it_and_makes_again_a_folder_removed_meanwhile(tmp_path):
    """archive.write checks paths as text and remembers the folders it made (pure, on a temporary folder)."""
    import shutil
    from pathlib import PurePosixPath

    from mailbot.ingest import archive

    root = tmp_path / "archive"
    root.mkdir()
    for bad in ("../x.eml", "a/../../x.eml", ".", "a/.."):
        with pytest.raises(ValueError, match="outside the archive"):
            archive.write(root, PurePosixPath(bad), b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]
    archive.write(root, PurePosixPath("c/g/one.eml"), b"one")
    shutil.rmtree(root / "c")  # staff tidy the folders while mailbot runs
    archive.write(root, PurePosixPath("c/g/two.eml"), b"two")
    assert (root / "c" / "g" / "two.eml").read_bytes() == b"two"
    archive.write(root, PurePosixPath("c/g/two.eml"), b"two")  # written again after a crash: same bytes, no error
    assert sorted(p.name for p in (root / "c" / "g").iterdir()) == ["two.eml"]  # nothing partial left


def test_the_archive_writer_thread_writes_every_file_and_reports_a_failure_when_waited_on(tmp_path):
    """archive.Writer: files written by a thread of its own, a failure raised by ``wait`` (then the batch's rows are
    not committed), and no thread left once the batch is done (worker processes are forked from this one)."""
    import threading
    from pathlib import PurePosixPath

    from mailbot.ingest import archive

    root = tmp_path / "archive"
    root.mkdir()
    (root / "taken").write_bytes(b"a file where a folder is wanted")
    with archive.Writer(50) as writer:
        for i in range(50):
            writer.write(root, PurePosixPath(f"c/g/{i}.eml"), bytes([i]) * 1000)
        writer.wait()
        assert sorted(int(p.stem) for p in (root / "c" / "g").iterdir()) == list(range(50))
        assert all((root / "c" / "g" / f"{i}.eml").read_bytes() == bytes([i]) * 1000 for i in range(50))
        writer.write(root, PurePosixPath("taken/x.eml"), b"x")
        writer.write(root, PurePosixPath("c/g/after.eml"), b"after")
        with pytest.raises(OSError):
            writer.wait()
        writer.wait()  # a failure is reported once
    assert (root / "c" / "g" / "after.eml").read_bytes() == b"after"  # the others were still written
    assert not [t for t in threading.enumerate() if t.name.startswith("archive")]
    with archive.Writer(2) as writer:  # a service's message or two: written in place, no thread started
        writer.write(root, PurePosixPath("c/g/small.eml"), b"small")
        assert (root / "c" / "g" / "small.eml").read_bytes() == b"small"
        assert not [t for t in threading.enumerate() if t.name.startswith("archive")]
        with pytest.raises(OSError):
            writer.write(root, PurePosixPath("taken/y.eml"), b"y")


def test_html_shows_mail_content_escaped(workspace, dovecot, tmp_path):
    from mailbot.notify.compose import Templates
    from mailbot.notify.samples import SAMPLE_CONTEXTS

    templates = Templates()
    context = {**SAMPLE_CONTEXTS["ack"], "files": [{"name": "<script>alert(1)</script>{{ 7*7 }}.docx", "size": "1 KB"}]}
    rendered = templates.render("ack", context)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "{{ 7*7 }}" in rendered.text and "49" not in rendered.text  # sender text is data, never template


# --- forged senders and backscatter (issue 10, items 3 and 4) ------------------------------------------

MX = "mx.haiphong.edu.vn"
STRANGER_SUBJECT = "KHUYẾN MÃI LỚN tại http://spam.example"


def with_auth(raw: bytes, value: str) -> bytes:
    """Our server's header, prepended as a receiving server does (the bytes as written, never re-encoded)."""
    return f"Authentication-Results: {value}\r\n".encode() + raw


def report_mail(
    sender: str, *, subject: str = "Báo cáo", school: str = "Trường THPT Ngô Quyền", from_header: str = ""
) -> bytes:
    raw = samples.make_email(
        sender=sender,
        sender_name="",
        subject=subject,
        body="Kính gửi Sở",
        attachments=[("bc.docx", samples.make_report_docx(school), "application/octet-stream")],
    )
    return raw.replace(f"From: {sender}\r\n".encode(), f"From: {from_header}\r\n".encode(), 1) if from_header else raw


@pytest.fixture
def mailed(tmp_path, dovecot, smtp_sink, monkeypatch):  # type: ignore[no-untyped-def]
    """A workspace that sends through a real SMTP server; ``notify`` adds [notify] keys."""
    from tests.test_notify import smtp_section

    def make(notify: str = ""):  # type: ignore[no-untyped-def]
        monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
        return make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink, notify=notify))

    return make


def test_forged_senders_are_held_and_get_no_reply(mailed, dovecot, smtp_sink):
    ws = mailed()
    forged = {
        # a sender-chosen envelope address that reads as "dmarc=pass" to a regular expression
        "mailfrom-trick": with_auth(
            report_mail(NQ), f"{MX}; spf=fail smtp.mailfrom=dmarc=pass@evil.example; dmarc=fail"
        ),
        # a DMARC pass, but for another domain than the From's
        "other-domain": with_auth(
            report_mail(NQ), f"{MX}; spf=pass smtp.mailfrom=evil.example; dmarc=pass header.from=evil.example"
        ),
        # several From addresses: the server may have checked the other one
        "several": with_auth(
            report_mail(NQ, from_header=f"{NQ}, lures@evil.example"), f"{MX}; dmarc=pass header.from=evil.example"
        ),
        # a stranger that fails (its report names a school): held, and no neutral receipt either
        "stranger": with_auth(
            report_mail("lures@evil.example"), f"{MX}; spf=fail smtp.mailfrom=evil.example; dmarc=fail"
        ),
    }
    for raw in forged.values():
        dovecot.append(raw, WHEN)
    genuine = with_auth(
        report_mail("thptthaiphien@haiphong.edu.vn", school="Trường THPT Thái Phiên"),
        f"{MX}; spf=pass smtp.mailfrom=haiphong.edu.vn; dmarc=pass header.from=haiphong.edu.vn",
    )
    dovecot.append(genuine, WHEN)
    ws.cli("run", "--once")
    status = ws.status()
    by_code = {i["code"]: i["status"] for i in status["institutions"]}
    assert by_code["THPT-NQ"] == "missing" and by_code["THPT-TPH"] == "on_time"
    reasons = sorted(r["reason"] for r in status["review"])
    assert len(reasons) == 4
    assert sum("DMARC" in r for r in reasons) == 3 and sum("nhiều địa chỉ người gửi" in r for r in reasons) == 1
    assert [c.rcpt_tos for c in smtp_sink.messages] == [("thptthaiphien@haiphong.edu.vn",)]


def test_unknown_addresses_get_a_receipt_only_when_authentic_and_never_their_subject(mailed, dovecot, smtp_sink):
    ws = mailed()
    verified, unverified = "hieutruong.nq@gmail.example", "lures@evil.example"
    dovecot.append(
        with_auth(
            report_mail(verified, subject=STRANGER_SUBJECT, school="Công ty ABC"),
            f"{MX}; dkim=pass header.d=gmail.example; spf=pass smtp.mailfrom=gmail.example; dmarc=pass header.from=gmail.example",
        ),
        WHEN,
    )
    dovecot.append(
        with_auth(
            report_mail(unverified, subject=STRANGER_SUBJECT, school="Công ty ABC"),
            f"{MX}; spf=softfail smtp.mailfrom=evil.example; dmarc=none header.from=evil.example",
        ),
        WHEN,
    )
    dovecot.append(
        with_auth(report_mail(NQ, subject="Báo cáo ANTQ trường Ngô Quyền"), f"{MX}; spf=none; dmarc=none"), WHEN
    )
    ws.cli("run", "--once")
    got = {c.rcpt_tos[0]: c.message for c in smtp_sink.messages}
    assert set(got) == {verified, NQ}  # the known school is not affected; the unauthenticated stranger gets nothing
    assert got[NQ]["Subject"] == "Re: Báo cáo ANTQ trường Ngô Quyền"
    to_stranger = got[verified]
    assert to_stranger["Subject"] == "Xác nhận đã nhận thư" and to_stranger["In-Reply-To"]
    assert (
        "KHUYẾN MÃI" not in to_stranger.as_string()
        and "spam.example" not in to_stranger.get_body(("plain",)).get_content()
    )


def test_without_authentication_results_replies_to_unknown_addresses_are_capped_per_day(mailed, dovecot, smtp_sink):
    ws = mailed("max_unknown_replies_per_day = 2")
    strangers = [f"victim{n}@third-party.example" for n in range(4)]
    for n, address in enumerate(strangers):
        dovecot.append(report_mail(address, subject=f"{STRANGER_SUBJECT} {n}", school="Công ty ABC"), WHEN)
    dovecot.append(report_mail(NQ), WHEN)  # a known school is never capped
    ws.cli("run", "--once")
    sent = smtp_sink.messages
    to_strangers = [c for c in sent if c.rcpt_tos[0] in strangers]
    assert len(to_strangers) == 2 and any(c.rcpt_tos == (NQ,) for c in sent) and len(sent) == 3
    assert all("KHUYẾN MÃI" not in c.message.as_string() for c in to_strangers)
    listing = ws.cli("outbox", "list").stdout
    assert listing.count("suppressed") == 2
    ws.cli("run", "--once")
    assert len(smtp_sink.messages) == 3  # held back for good, never sent later


def test_a_database_of_the_previous_version_gains_the_new_column(tmp_path):
    from sqlalchemy import create_engine, inspect, text

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    store.connect(url).dispose()
    old = create_engine(url)
    with old.begin() as conn:  # a development build before the column (and before migrations)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("ALTER TABLE outbox DROP COLUMN unverified"))
    old.dispose()
    engine = store.connect(url)
    assert "unverified" in {c["name"] for c in inspect(engine).get_columns("outbox")}


def test_check_warns_when_recent_mail_carries_no_authentication_results(workspace, dovecot):
    dovecot.append(report_mail(NQ), WHEN)
    dovecot.append(with_auth(report_mail(NQ), "evil.example; dmarc=pass header.from=haiphong.edu.vn"), WHEN)
    ws = workspace
    (ws.root / "mailbot.toml").write_text(ws.config_path.read_text() + f'\n[security]\nauthserv_id = "{MX}"\n')
    result = ws.cli("check", check=False)
    line = next(line for line in result.stdout.splitlines() if " authentication:" in line)
    assert line.startswith("warn") and "can be forged" in line and "evil.example" in line
    assert result.returncode == 0  # a warning, not a failure: the service may still start
    assert all("Seen" not in flags for flags in dovecot.fetch_flags().values())  # headers were only peeked at
    dovecot.append(with_auth(report_mail(NQ), f"{MX}; spf=pass smtp.mailfrom=haiphong.edu.vn"), WHEN)
    line = next(line for line in ws.cli("check").stdout.splitlines() if " authentication:" in line)
    assert line.startswith("ok") and MX in line
