"""One lateness rule everywhere: the arrival kept, compared with the deadline and shown is the server's time to
the whole second; late means it is after the deadline. A fraction of a second never makes the record, the
status and the receipt disagree."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from datetime import UTC, timedelta
from email import policy
from pathlib import Path

from mailbot import pipeline, store
from mailbot.clock import Clock
from mailbot.demo import samples
from mailbot.demo.build import DEADLINE, build_demo
from mailbot.models import RawMail


def _school(rows: list[dict], k: int) -> dict:  # type: ignore[type-arg]
    return [r for r in rows if r["emails"]][k]


def _raw(school: dict, n: int) -> bytes:  # type: ignore[type-arg]
    return samples.make_email(
        sender=school["emails"][0],
        sender_name=school["name"],
        subject=f"Báo cáo ANTQ - {school['name']}",
        body="Kính gửi Phòng GDTX&ĐH",
        message_id=f"<arrival-{n}@haiphong.edu.vn>",
        attachments=[("Báo cáo.docx", samples.make_report_docx(school["name"]), samples.DOCX_TYPE)],
    )


def _status(root: Path) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(root / "mailbot.toml"), "status", "--json"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
        check=True,
    )
    return {i["code"]: i for i in json.loads(done.stdout)["institutions"]}


def test_a_maildir_arrival_half_a_second_after_the_deadline_is_shown_and_judged_to_the_second(tmp_path: Path):
    root = tmp_path / "d"
    settings = build_demo(root)
    rows = samples.load_demo_roster()
    a, b = _school(rows, 0), _school(rows, 1)
    maildir = root / "Maildir"
    for old in (maildir / "new").iterdir():
        old.unlink()
    at_deadline = int(DEADLINE.timestamp())
    for n, (school, ns) in enumerate(((a, at_deadline * 10**9 + 500_000_000), (b, (at_deadline + 1) * 10**9))):
        target = maildir / "new" / f"{n}.M{n}.test"
        target.write_bytes(_raw(school, n))
        os.utime(target, ns=(ns, ns))
    pipeline.run_once(settings, store.connect(settings.db_url))
    status = _status(root)
    assert status[a["code"]]["submitted_at"] == "2023-12-05T17:00:00+07:00" and status[a["code"]]["status"] == "on_time"
    assert status[b["code"]]["submitted_at"] == "2023-12-05T17:00:01+07:00" and status[b["code"]]["status"] == "late"
    receipts = {}
    for path in (root / "outbox").rglob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        receipts[msg["To"].addresses[0].addr_spec] = msg.get_body(("plain",)).get_content()
    assert "Thời điểm nhận: 17:00:00 ngày 05/12/2023" in receipts[a["emails"][0]]
    assert "Tình trạng: Đúng hạn" in receipts[a["emails"][0]]
    assert "Thời điểm nhận: 17:00:01 ngày 05/12/2023" in receipts[b["emails"][0]]
    assert "Tình trạng: Nộp muộn" in receipts[b["emails"][0]]


def test_the_stored_arrival_is_the_one_the_verdict_used(tmp_path: Path):
    """Whatever precision an inbox gives, the record keeps it: the status never contradicts the verdict."""
    root = tmp_path / "d"
    settings = build_demo(root)
    engine = store.connect(settings.db_url)
    school = _school(samples.load_demo_roster(), 2)
    arrived = DEADLINE.astimezone(UTC) + timedelta(microseconds=500_000)
    pipeline.import_roster(settings, engine)
    ctx = pipeline.make_context(settings, engine, Clock(settings.zone, DEADLINE))
    outcome = pipeline.process(RawMail("test:", 0, "1", arrived, _raw(school, 9)), ctx)
    with engine.connect() as conn:
        row = conn.execute(store.messages.select().where(store.messages.c.id == outcome.message_pk)).one()
    assert row.received_at == arrived and row.late is True
    assert _status(root)[school["code"]]["status"] == "late"
