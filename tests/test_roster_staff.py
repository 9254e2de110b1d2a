"""Roster and staff actions end to end: `roster import --replace` stops the chasing of a removed institution,
the configured roster file never reverts a CLI import, `review assign` acknowledges, and a known school's
held message is not called unknown. Real Dovecot, real SMTP server, `python -m mailbot` subprocesses."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from mailbot import store
from mailbot.demo import samples
from tests.conftest import Workspace, first_campaign, make_workspace, write_roster
from tests.test_notify import smtp_section

ARRIVAL = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)  # within the test campaign, before its deadline
REVIEW_SENDER = "hoa.nguyen1987@yahoo.com"


@pytest.fixture
def setup(tmp_path, dovecot, smtp_sink, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    ws = make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink))
    return ws, dovecot, smtp_sink


def roster_list(ws: Workspace) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["code"]: r for r in json.loads(ws.cli("roster", "list", "--json").stdout)}


def text_of(captured) -> str:  # type: ignore[no-untyped-def]
    return captured.message.get_body(("plain",)).get_content()


def test_replace_stops_the_chasing_of_a_removed_institution_and_keeps_its_history(setup, tmp_path):
    ws, dovecot, sink = setup
    rows = samples.load_demo_roster()
    for case in samples.demo_cases(rows):
        dovecot.append(case.raw, case.arrival)
    ws.cli("run", "--once")
    before = {i["code"]: i for i in ws.status()["institutions"]}
    gone = next(r for r in rows if before[r["code"]]["status"] == "missing" and r["emails"])  # never sent anything
    done = next(r for r in rows if before[r["code"]]["status"] == "on_time")  # sent its report, then removed
    new_file = tmp_path / "danh-sach-moi.csv"
    write_roster(new_file, [r for r in rows if r["code"] not in (gone["code"], done["code"])])

    preview = ws.cli("roster", "import", str(new_file), "--replace", "--dry-run").stdout
    assert f"Ngừng theo dõi  {gone['code']}" in preview and f"Ngừng theo dõi  {done['code']}" in preview
    assert (
        "Chạy thử, chưa thay đổi gì" in preview
        and "ngừng theo dõi 2," in preview
        and roster_list(ws)[gone["code"]]["active"] is True
    )  # a dry run changes nothing

    out = ws.cli("roster", "import", str(new_file), "--replace", "--by", "Nguyễn Thị Lan").stdout
    assert "Đã nhập danh sách đơn vị: thêm 0, cập nhật 0, kích hoạt lại 0, ngừng theo dõi 2," in out
    ws.cli("run", "--once")  # the configured roster.csv (still listing both) must not bring them back
    listed = roster_list(ws)
    assert listed[gone["code"]]["active"] is False and listed[done["code"]]["active"] is False
    assert listed[gone["code"]]["emails"] == gone["emails"]  # kept, with its addresses

    status = {i["code"]: i for i in ws.status()["institutions"]}
    assert gone["code"] not in status  # not counted, not missing
    kept = status[done["code"]]  # its report stays visible, flagged, outside every count
    assert kept["active"] is False and kept["status"] == "on_time"
    assert kept["submissions"] == before[done["code"]]["submissions"]

    sink.clear()
    ws.cli("--now", "2023-12-06T08:00", "remind")  # after the deadline: late notices to the missing only
    still_missing = [
        r for r in rows if r["code"] in status and status[r["code"]]["status"] == "missing" and r["emails"]
    ]
    got = sink.wait_for(len(still_missing))
    time.sleep(0.5)
    reached = {a for c in sink.messages for a in c.rcpt_tos}
    assert len(sink.messages) == len(still_missing) and reached == {a for r in still_missing for a in r["emails"]}
    assert not set(gone["emails"]) & reached and all(c.message["X-Mailbot-Kind"] == "late" for c in got)

    digest = ws.cli("--now", "2023-12-06T07:30", "digest", "--print").stdout
    assert gone["name"] not in digest and still_missing[0]["name"] in digest

    tracker = tmp_path / "theo-doi.xlsx"
    ws.cli("export", "--output", str(tracker))
    book = load_workbook(tracker)
    codes = {row[1] for sheet in book.worksheets[1:-1] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert gone["code"] not in codes and done["code"] not in codes
    total = next(r for r in book.worksheets[0].iter_rows(values_only=True) if r[0] == "Tổng cộng")
    active = [c for c, i in status.items() if i["active"]]
    assert total[1] == len(active) == len(rows) - 2
    assert total[4] == sum(1 for c in active if status[c]["status"] == "missing")

    with ws.engine().connect() as conn:
        logged = conn.execute(
            select(store.actions).where(store.actions.c.action == "roster_import").order_by(store.actions.c.id.desc())
        ).first()
    assert logged.actor == "Nguyễn Thị Lan" and gone["code"] in logged.detail and "ngừng theo dõi 2" in logged.detail

    ws.cli("roster", "import", str(ws.root / "roster.csv"))  # listed again: reactivated, chased again
    assert roster_list(ws)[gone["code"]]["active"] is True
    assert next(i for i in ws.status()["institutions"] if i["code"] == gone["code"])["status"] == "missing"


def test_a_message_from_a_deactivated_institution_is_recorded_and_held(setup, tmp_path):
    ws, dovecot, sink = setup
    rows = samples.load_demo_roster()
    write_roster(tmp_path / "b.csv", [r for r in rows if r["code"] != "THPT-NQ"])
    ws.cli("run", "--once")
    ws.cli("roster", "import", str(tmp_path / "b.csv"), "--replace")
    dovecot.append(
        samples.make_email(
            sender="thptngoquyen@haiphong.edu.vn",
            sender_name="",
            subject="Báo cáo ANTQ",
            body="x",
            attachments=[("bc.docx", samples.make_report_docx("Trường THPT Ngô Quyền"), "application/octet-stream")],
        ),
        ARRIVAL,
    )
    ws.cli("run", "--once")
    (held,) = ws.status()["review"]
    assert (
        held["from"] == "thptngoquyen@haiphong.edu.vn"
        and "THPT-NQ" in held["reason"]
        and "ngừng theo dõi" in held["reason"]
    )
    with ws.engine().connect() as conn:
        row = conn.execute(select(store.messages)).one()
        assert row.state == "review" and row.institution_id == store.institution_pk(conn, "THPT-NQ")


def test_configured_file_is_imported_only_when_changed_and_never_reverts_a_cli_import(workspace, tmp_path):
    ws = workspace
    rows = samples.load_demo_roster()
    ws.cli("run", "--once")
    assert len(roster_list(ws)) == len(rows)
    changed = [
        {**r, "emails": ["vanthu.ngoquyen@haiphong.edu.vn"]} if r["code"] == "THPT-NQ" else r
        for r in rows
        if r["code"] != "THPT-HB"
    ]
    write_roster(tmp_path / "b.csv", changed)
    ws.cli("roster", "import", str(tmp_path / "b.csv"), "--replace")

    ws.cli("run", "--once")  # roster.csv is unchanged since the service imported it: nothing reverted
    listed = roster_list(ws)
    assert listed["THPT-NQ"]["emails"] == ["vanthu.ngoquyen@haiphong.edu.vn"] and listed["THPT-HB"]["active"] is False

    configured = ws.root / "roster.csv"
    extra = {"code": "THPT-MOI", "name": "Trường THPT Mới", "group": "THPT", "emails": ["thptmoi@haiphong.edu.vn"]}
    write_roster(configured, [*rows, extra])
    past = time.time() - 3600
    os.utime(configured, (past, past))  # changed, but saved before the CLI import: that import stands
    result = ws.cli("run", "--once")
    assert "not imported" in result.stderr and "THPT-MOI" not in roster_list(ws)

    write_roster(
        configured,
        [
            *rows,
            extra,
            {**extra, "code": "THPT-MOI2", "name": "Trường THPT Mới 2", "emails": ["thptmoi2@haiphong.edu.vn"]},
        ],
    )  # saved now, after the import
    ws.cli("run", "--once")
    listed = roster_list(ws)
    assert {"THPT-MOI", "THPT-MOI2"} <= set(listed)  # imported: added and updated, as the file now says
    assert listed["THPT-NQ"]["emails"] == ["thptngoquyen@haiphong.edu.vn"] and listed["THPT-HB"]["active"] is True
    with ws.engine().connect() as conn:
        actors = [r.actor for r in conn.execute(select(store.actions).where(store.actions.c.action == "roster_import"))]
    assert len(actors) == 3 and actors[0] == actors[2] != actors[1]  # service, CLI user, service


def test_replace_with_bad_rows_changes_nothing(workspace, tmp_path):
    ws = workspace
    ws.cli("run", "--once")
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,group,emails\nTHPT-NQ,Trường THPT Ngô Quyền,THPT,not-an-address\n", encoding="utf-8")
    result = ws.cli("roster", "import", str(bad), "--replace", check=False)
    assert (
        result.returncode == 2
        and "row 2: not an email address" in result.stderr
        and "nothing is imported" in result.stderr
    )
    assert "Traceback" not in result.stderr and all(r["active"] for r in roster_list(ws).values())


def test_review_assign_sends_the_receipt_threaded_to_the_held_message(setup):
    ws, dovecot, sink = setup
    for case in samples.demo_cases(samples.load_demo_roster()):
        dovecot.append(case.raw, case.arrival)
    ws.cli("run", "--once")
    (held,) = ws.status()["review"]
    assert held["from"] == REVIEW_SENDER
    first = [c for c in sink.wait_for(1) if REVIEW_SENDER in c.rcpt_tos]
    assert [c.message["X-Mailbot-Kind"] for c in first] == ["ack_review"]
    sink.clear()

    out = ws.cli("review", "assign", held["message_id"], "THPT-TPH", "--by", "Nguyễn Thị Lan").stdout
    assert "receipt (ack) queued" in out
    (receipt,) = sink.wait_for(1)
    msg = receipt.message
    assert receipt.rcpt_tos == (REVIEW_SENDER,) and msg["X-Mailbot-Kind"] == "ack"
    assert msg["In-Reply-To"] == held["message_id"] and held["message_id"] in msg["References"]
    # not learned, so not the school's own address: its subject is not quoted back (no backscatter)
    assert msg["Subject"] == "Xác nhận đã nhận báo cáo: " + first_campaign(ws.settings()).title
    assert msg["Auto-Submitted"] == "auto-replied"
    text = text_of(receipt)
    assert "Đơn vị gửi: Trường THPT Thái Phiên (THPT-TPH)" in text and "Đúng hạn" in text
    assert "Bao cao.docx" in text and "KB" in text and "xác nhận đã nhận được báo cáo" in text
    ws.cli("review", "assign", held["message_id"], "THPT-TPH")  # the same decision again: no second receipt
    time.sleep(0.5)
    assert len(sink.messages) == 1


def test_known_school_held_between_two_campaigns_is_not_told_its_address_is_unknown(
    tmp_path, dovecot, smtp_sink, monkeypatch
):
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    ws = make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink))
    ws.config_path.write_text(
        ws.config_path.read_text(encoding="utf-8")
        + """
[[campaign]]
id = "thidua-2023"
title = "Báo cáo tổng kết công tác thi đua, khen thưởng năm 2023"
opens = 2023-11-01T00:00:00
deadline = 2023-12-10T17:00:00
keywords = ["thi đua"]
""",
        encoding="utf-8",
    )
    dovecot.append(
        samples.make_email(
            sender="thptngoquyen@haiphong.edu.vn",
            sender_name="Trường THPT Ngô Quyền",
            subject="Gửi báo cáo",
            body="x",
            attachments=[
                ("bao-cao.docx", samples.make_report_docx("Trường THPT Ngô Quyền"), "application/octet-stream")
            ],
        ),
        ARRIVAL,
    )
    ws.cli("run", "--once")
    (held,) = ws.status()["review"]
    assert "nhiều đợt báo cáo đang mở" in held["reason"]
    (receipt,) = smtp_sink.wait_for(1)
    assert receipt.message["X-Mailbot-Kind"] == "ack_review" and receipt.rcpt_tos == ("thptngoquyen@haiphong.edu.vn",)
    text = text_of(receipt)
    html = receipt.message.get_body(("html",)).get_content()
    for body in (text, html):
        assert "chưa có trong danh sách" not in body and "chưa xác định được đơn vị gửi" not in body
        assert "Kính gửi: Trường THPT Ngô Quyền" in body and "đã nhận được thư của quý đơn vị" in body
        assert "ghi nhận báo cáo vào đúng đợt báo cáo" in body and "bao-cao.docx" in body


def test_existing_database_gains_the_active_column(tmp_path: Path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the institutions table as the previous version made it
        db.execute(
            "CREATE TABLE institutions (id INTEGER PRIMARY KEY, code VARCHAR(64) NOT NULL UNIQUE, "
            "name TEXT NOT NULL, grp TEXT NOT NULL, emails TEXT NOT NULL, updated_at VARCHAR(32) NOT NULL)"
        )
        db.execute(
            "INSERT INTO institutions VALUES (1, 'THPT-NQ', 'Trường THPT Ngô Quyền', 'THPT', "
            "'[\"thptngoquyen@haiphong.edu.vn\"]', '2023-11-01T00:00:00+00:00')"
        )
    engine = store.connect(f"sqlite:///{path}")
    with engine.connect() as conn:
        (inst,) = store.load_institutions(conn)
    assert inst.code == "THPT-NQ" and inst.active is True
    store.connect(f"sqlite:///{path}")  # a second time: nothing left to add, nothing fails
    with sqlite3.connect(path) as db:
        assert [r[1] for r in db.execute("PRAGMA table_info(institutions)")].count("active") == 1


def test_replace_from_a_file_listing_no_institution_changes_nothing(workspace, tmp_path):
    ws = workspace
    ws.cli("run", "--once")
    header_only = tmp_path / "chi-tieu-de.csv"
    header_only.write_text("code,name,group,emails\n", encoding="utf-8")
    result = ws.cli("roster", "import", str(header_only), "--replace", check=False)
    assert result.returncode == 2 and "lists no institution" in result.stderr and "Traceback" not in result.stderr
    assert all(r["active"] for r in roster_list(ws).values())


@pytest.mark.parametrize("kind", ["passwd", "folder"])
def test_a_file_that_is_no_roster_gets_one_line(workspace, tmp_path, kind):
    target = tmp_path / "x"
    if kind == "folder":
        target.mkdir()
    else:
        target.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    result = workspace.cli("roster", "import", str(target), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "error:" in result.stderr
