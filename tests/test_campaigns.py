"""Campaigns in the database: `mailbot campaign add|edit|list|close` as real subprocesses on a demo folder, the
configuration's `[[campaign]]` imported once and never reverting staff's edits, `check` failing on a group that
matches no institution, and a closed campaign no longer counting mail."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import docx
import pytest

from mailbot import pipeline, store
from mailbot.campaigns import catalog
from mailbot.demo.build import build_demo
from mailbot.ingest.identify import campaign_for
from mailbot.models import Campaign, InboundMail, Institution, PaperMode


def mailbot(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(root / "mailbot.toml"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stderr
    return result


def campaigns(root: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["id"]: c for c in json.loads(mailbot(root, "campaign", "list", "--json").stdout)}


def template_docx(path: Path) -> Path:
    d = docx.Document()
    d.add_paragraph("MẪU BÁO CÁO")
    d.add_table(rows=2, cols=2).cell(0, 0).text = "Nội dung"
    buf = io.BytesIO()
    d.save(buf)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    build_demo(tmp_path / "demo")
    return tmp_path / "demo"


def test_add_with_files_then_edit_and_close(demo: Path, tmp_path: Path) -> None:
    plan = tmp_path / "ke-hoach-12.pdf"
    plan.write_bytes(b"%PDF-1.4 plan")
    template = template_docx(tmp_path / "mẫu báo cáo.docx")
    added = mailbot(
        demo, "--now", "2024-01-02T08:00", "campaign", "add", "hk1-2024",
        "--title", "Báo cáo sơ kết học kỳ I năm học 2023-2024",
        "--deadline", "2024-01-15", "--group", "THPT", "--group", "GDNN-GDTX",
        "--plan", "Số 12/KH-SGDĐT ngày 02/01/2024", "--attach", str(plan), "--template", str(template),
        "--paper", "either", "--contact", "bà Nguyễn Thị Lan, 0225.3841.234", "--keyword", "học kỳ I",
    )  # fmt: skip
    assert "created campaign hk1-2024" in added.stdout
    c = campaigns(demo)["hk1-2024"]
    assert c["deadline"] == "2024-01-15T23:59:59+07:00"  # a bare date: the end of that day, Vietnam time
    assert c["opens"] == "2024-01-02T08:00:00+07:00"  # left out: from the moment it was created
    assert (c["groups"], c["paper"], c["plan"]) == (["THPT", "GDNN-GDTX"], "either", "số 12/KH-SGDĐT ngày 02/01/2024")
    assert (c["attachments"], c["template"], c["closed"]) == (["ke-hoach-12.pdf"], "mẫu báo cáo.docx", None)
    assert "antq-2023" in campaigns(demo)  # the configured one, imported

    mailbot(demo, "campaign", "edit", "hk1-2024", "--deadline", "2024-01-20T17:00", "--group", "THPT")
    c = campaigns(demo)["hk1-2024"]
    assert (c["deadline"], c["groups"], c["title"]) == (
        "2024-01-20T17:00:00+07:00",
        ["THPT"],
        "Báo cáo sơ kết học kỳ I năm học 2023-2024",
    )  # only what was given changed

    mailbot(demo, "--now", "2024-02-01T08:00", "campaign", "close", "hk1-2024")
    assert campaigns(demo)["hk1-2024"]["closed"] == "2024-02-01T08:00:00+07:00"
    listing = mailbot(demo, "campaign", "list").stdout
    assert "closed 2024-02-01" in listing and "template: mẫu báo cáo.docx" in listing
    engine = store.connect(f"sqlite:///{demo / 'var' / 'mailbot.sqlite3'}")
    with engine.connect() as conn:
        log = [r.detail for r in conn.execute(store.actions.select().order_by(store.actions.c.id))]
    assert any("Tạo đợt hk1-2024" in d for d in log) and any("Kết thúc đợt hk1-2024" in d for d in log)
    assert any("Sửa đợt hk1-2024: deadline, groups" in d for d in log)


def test_an_unknown_group_is_refused_naming_the_groups_that_exist(demo: Path) -> None:
    result = mailbot(
        demo, "campaign", "add", "x-2024", "--title", "X", "--deadline", "2030-01-01", "--group", "GDNN GDTX",
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "GDNN GDTX" in result.stderr and "GDNN-GDTX" in result.stderr and "THPT" in result.stderr
    assert "x-2024" not in campaigns(demo)
    bad_id = mailbot(demo, "campaign", "add", "năm 2024", "--title", "X", "--deadline", "2030-01-01",
                     "--group", "THPT", check=False)  # fmt: skip
    assert bad_id.returncode == 2 and "Mã đợt" in bad_id.stderr
    past = mailbot(demo, "--now", "2024-03-01T00:00", "campaign", "add", "y-2024", "--title", "Y",
                   "--deadline", "2024-02-01", "--group", "THPT", check=False)  # fmt: skip
    assert past.returncode == 2 and "Hạn nộp phải sau" in past.stderr


def test_the_configured_campaign_is_imported_once_and_staff_edits_stay(demo: Path) -> None:
    mailbot(demo, "campaign", "edit", "antq-2023", "--title", "Sơ kết ANTQ 2023 (đã sửa)", "--paper", "post")
    config = demo / "mailbot.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("opens = 2023-11-01", "opens = 2023-11-02"))
    c = campaigns(demo)["antq-2023"]
    assert (c["title"], c["paper"]) == ("Sơ kết ANTQ 2023 (đã sửa)", "post")  # the file does not revert it
    assert c["opens"].startswith("2023-11-01")
    check = mailbot(demo, "check", check=False).stdout
    assert "warn campaigns" in check and "antq-2023 in the configuration differs from the database" in check


def test_check_fails_on_a_campaign_group_that_matches_no_institution(demo: Path) -> None:
    config = demo / "mailbot.toml"
    text = config.read_text(encoding="utf-8").replace(
        'title = "Báo cáo', 'groups = ["THPT", "GDNN GDTX"]\ntitle = "Báo cáo', 1
    )
    config.write_text(text, encoding="utf-8")
    result = mailbot(demo, "check", check=False)
    assert result.returncode == 1
    line = next(x for x in result.stdout.splitlines() if "campaigns" in x)
    assert line.startswith("FAIL") and "'GDNN GDTX' match no institution" in line and "GDNN-GDTX" in line


def _mail(arrived: datetime) -> InboundMail:
    return InboundMail("a@b.vn", "", "Báo cáo", "<m@x>", arrived)


def test_a_closed_campaign_counts_mail_sent_before_it_closed_only() -> None:
    inst = Institution("THPT-NQ", "Trường THPT Ngô Quyền", "THPT", ("a@b.vn",))
    closed_at = datetime(2023, 12, 20, tzinfo=UTC)
    c = Campaign("c", "C", datetime(2023, 12, 5, tzinfo=UTC), opens=datetime(2023, 11, 1, tzinfo=UTC),
                 closed=closed_at)  # fmt: skip
    assert campaign_for(_mail(datetime(2023, 12, 19, tzinfo=UTC)), inst, (c,))[0] == c
    found, reason = campaign_for(_mail(datetime(2023, 12, 21, tzinfo=UTC)), inst, (c,))
    assert found is None and "không có đợt báo cáo nào đang mở" in reason


def test_catalog_reads_times_in_the_configured_zone_and_chase_overrides_survive_import(demo: Path) -> None:
    config = demo / "mailbot.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[campaign.notify]\nreminders_before_days = [2]\n")
    settings = build_settings(demo)
    engine = store.connect(settings.db_url)
    pipeline.import_roster(settings, engine)
    found = catalog.load(engine, settings)
    c = found.get("antq-2023")
    assert c.deadline.utcoffset().total_seconds() == 7 * 3600 and c.deadline.hour == 17  # type: ignore[union-attr]
    assert catalog.chase_for(settings, found, "antq-2023").reminders_before_days == (2,)
    assert c.paper is PaperMode.NONE and c.closed is None


def build_settings(root: Path):  # type: ignore[no-untyped-def]
    from mailbot import config

    return config.load(root / "mailbot.toml")


def test_the_call_for_reports_goes_once_to_each_institution_with_both_files(tmp_path, dovecot, smtp_sink, monkeypatch):  # type: ignore[no-untyped-def]
    from tests.conftest import PASSWORD_ENV, make_workspace, write_roster
    from tests.test_notify import smtp_section

    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    ws = make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink))
    plan = tmp_path / "Kế hoạch 12-KH-SGDĐT.pdf"
    plan.write_bytes(b"%PDF-1.4 the plan")
    template = template_docx(tmp_path / "Mẫu báo cáo.docx")
    ws.cli(
        "--now", "2024-01-02T08:00", "campaign", "add", "hk1-2024", "--title", "Báo cáo sơ kết học kỳ I",
        "--deadline", "2024-01-15T17:00", "--group", "GDNN-GDTX", "--plan", "Số 12/KH-SGDĐT ngày 02/01/2024",
        "--attach", str(plan), "--template", str(template), "--paper", "post", "--contact", "bà Lan, 0225.3841.234",
    )  # fmt: skip
    rows = [r for r in _roster_rows(ws) if r["group"] == "GDNN-GDTX"]
    preview = ws.cli("--now", "2024-01-02T08:00", "campaign", "announce", "hk1-2024", "--dry-run").stdout
    assert preview.count("would send") == len(rows) and "Kính gửi: " in preview
    assert not smtp_sink.messages  # a dry run sends nothing

    ws.cli("--now", "2024-01-02T08:00", "campaign", "announce", "hk1-2024")
    got = smtp_sink.wait_for(len(rows))
    assert sorted(c.rcpt_tos[0] for c in got) == sorted(r["emails"][0] for r in rows)
    for captured in got:
        m = captured.message
        names = [p.get_filename() for p in m.iter_attachments()]
        assert names == ["Kế hoạch 12-KH-SGDĐT.pdf", "Mẫu báo cáo.docx"]
        text = m.get_body(("plain",)).get_content()
        inst = next(r for r in rows if r["emails"][0] in captured.rcpt_tos)
        assert f"Kính gửi: {inst['name']}" in text and "Kế hoạch số 12/KH-SGDĐT ngày 02/01/2024" in text
        assert "17:00 ngày 15/01/2024" in text and "qua đường bưu điện" in text and "bà Lan" in text
        assert m["Subject"] == "Đề nghị gửi báo cáo: Báo cáo sơ kết học kỳ I (hạn nộp 15/01/2024)"

    again = ws.cli("--now", "2024-01-03T08:00", "campaign", "announce", "hk1-2024")
    assert "queued" not in again.stdout and again.stdout.count("sent ") == len(rows)
    newcomer = {"code": "TT-NEW", "name": "Trung tâm GDNN-GDTX huyện Mới", "group": "GDNN-GDTX",
                "emails": ["ttmoi@haiphong.edu.vn"]}  # fmt: skip
    write_roster(tmp_path / "them.csv", [newcomer])
    ws.cli("roster", "import", str(tmp_path / "them.csv"))
    ws.cli("--now", "2024-01-04T08:00", "campaign", "announce", "hk1-2024")
    assert smtp_sink.wait_for(len(rows) + 1)[-1].rcpt_tos == ("ttmoi@haiphong.edu.vn",)
    status = ws.cli("status", "--campaign", "hk1-2024", "--json").stdout
    announced = {i["code"]: i["announced_at"] for i in json.loads(status)["institutions"]}
    assert announced["TT-NEW"].startswith("2024-01-04") and all(announced[r["code"]] for r in rows)


def _roster_rows(ws) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return json.loads(ws.cli("roster", "list", "--json").stdout)
