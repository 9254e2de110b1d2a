"""Sender authenticity, secrets kept out of logs and the database, and hostile names."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timezone

from sqlalchemy import select

from mailbot import pipeline, samples, store
from mailbot.authenticity import problem
from mailbot.config import SecuritySettings, LimitSettings
from mailbot.models import RawMail
from mailbot.parse import parse

WHEN = datetime(2023, 12, 1, 2, 0, tzinfo=timezone.utc)
NQ = "thptngoquyen@haiphong.edu.vn"


def mail_with(headers: dict[str, str], sender: str = NQ, name: str = "Trường THPT Ngô Quyền") -> bytes:
    return samples.make_email(sender=sender, sender_name=name, subject="Báo cáo", body="x", extra_headers=headers,
                              attachments=[("bc.docx", samples.make_report_docx("Trường THPT Ngô Quyền"), "application/octet-stream")])


def parsed(raw: bytes):  # type: ignore[no-untyped-def]
    return parse(RawMail("t", 0, "1", WHEN, raw), LimitSettings())


def test_only_the_topmost_authentication_results_is_trusted():
    raw = mail_with({"Authentication-Results": "mx.haiphong.edu.vn; spf=fail smtp.mailfrom=x; dmarc=fail header.from=haiphong.edu.vn"})
    forged = b"Authentication-Results: mx.haiphong.edu.vn; dmarc=pass\r\n"
    # the sender's own (forged) header sits below the one our server prepends
    raw = raw.replace(b"Authentication-Results:", forged + b"Authentication-Results:", 1)
    raw = b"Authentication-Results: mx.haiphong.edu.vn; dmarc=fail header.from=haiphong.edu.vn\r\n" + raw.replace(forged, b"")
    assert "DMARC" in problem(parsed(raw), SecuritySettings(require_auth="dmarc"))
    assert problem(parsed(raw), SecuritySettings(require_auth="off")) == ""
    ok = mail_with({"Authentication-Results": "mx.haiphong.edu.vn; spf=pass; dkim=fail; dmarc=pass"})
    assert problem(parsed(ok), SecuritySettings(require_auth="dkim_or_spf")) == ""
    assert problem(parsed(mail_with({})), SecuritySettings(require_auth="dkim_or_spf")) == ""  # nothing recorded


def test_failing_dmarc_on_a_roster_address_is_held_and_display_names_never_identify(workspace, dovecot):
    dovecot.append(mail_with({"Authentication-Results": "mx.haiphong.edu.vn; spf=fail; dkim=none; dmarc=fail"}), WHEN)
    # A stranger borrowing a school's name as display name, with no name in subject or files
    stranger = samples.make_email(sender="lures@evil.example", sender_name="Trường THPT Ngô Quyền", subject="gửi",
                                  body="x", attachments=[("a.docx", samples.make_report_docx("Công ty ABC"), "application/octet-stream")])
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
    for blob in (result.stderr.encode(), bad.stdout.encode(), refused.stdout.encode(), refused.stderr.encode(),
                 db, wal.read_bytes() if wal.exists() else b""):
        assert secret not in blob
    assert b"wrong-" not in refused.stdout.encode() + refused.stderr.encode()


def test_archive_files_are_private_and_names_cannot_escape(workspace, dovecot):
    evil = samples.make_email(sender=NQ, sender_name="", subject="Báo cáo", body="x", attachments=[
        ("../../../../tmp/evil.docx", samples.make_report_docx("Trường THPT Ngô Quyền"), "application/octet-stream"),
        ("C:\\Windows\\..\\x.docx", samples.make_report_docx("Trường THPT Ngô Quyền"), "application/octet-stream")])
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


def test_html_shows_mail_content_escaped(workspace, dovecot, tmp_path):
    from mailbot.notify import Templates
    from mailbot.notify_samples import SAMPLE_CONTEXTS

    templates = Templates()
    context = {**SAMPLE_CONTEXTS["ack"], "files": [{"name": "<script>alert(1)</script>{{ 7*7 }}.docx", "size": "1 KB"}]}
    rendered = templates.render("ack", context)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "{{ 7*7 }}" in rendered.text and "49" not in rendered.text  # sender text is data, never template
