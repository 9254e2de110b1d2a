"""Stamped copies (bản có dấu đỏ): the paper tick (library, CLI, web), the status, the tracker and digest columns,
and notices that ask only for what is missing (issue 12, item 4)."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from mailbot import pipeline, store
from mailbot.config import Chase, Settings
from mailbot.demo import samples
from mailbot.demo.build import DIGEST_AT, ZONE, build_demo
from mailbot.models import Campaign, PaperMode
from mailbot.notify import dispatch
from mailbot.notify.chase import due_notices
from mailbot.reports.stamps import Stamp
from mailbot.reports.status import CampaignStatus, InstitutionStatus, Submission, as_json, campaign_status
from mailbot.reports.tracker_rows import GROUP_HEADERS, STAMPED_HEADERS, SUMMARY_HEADERS, SUMMARY_SHEET
from mailbot.reports.workbook import save_tracker
from mailbot.web import auth
from mailbot.web.app import create_app
from tests.conftest import first_campaign, make_workspace
from tests.test_notify import smtp_section
from tests.web_support import copy_of, processed_demo

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

CAMPAIGN = "antq-2023"
C = f"/c/{CAMPAIGN}"
USER, PASSWORD = "lan.nguyen", "Mật-khẩu-thử-2023"
PLAN = "Kế hoạch số 2516/KH-SGDĐT ngày 30/10/2023"


def with_paper(toml: Path, mode: str, *, plan: bool = False) -> None:
    """The campaign's block is the last of the demo's configuration: its paper mode (and plan) go at the end."""
    extra = f'paper = "{mode}"\n' + ('plan = "Số 2516/KH-SGDĐT ngày 30/10/2023"\n' if plan else "")
    toml.write_text(toml.read_text(encoding="utf-8") + extra, encoding="utf-8")


@pytest.fixture(scope="module")
def demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return processed_demo(tmp_path_factory.mktemp("paper-demo"), lambda toml: with_paper(toml, "either"))


@pytest.fixture
def demo(demo_master: Path, tmp_path: Path) -> Settings:
    return copy_of(demo_master, tmp_path)


def mailbot(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    config_path = settings.data_dir.parent / "mailbot.toml"
    return subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def status_of(settings: Settings) -> dict[str, dict]:  # type: ignore[type-arg]
    found = as_json(campaign_status(store.connect(settings.db_url), first_campaign(settings)))
    return {i["code"]: i for i in found["institutions"]}


# --- the paper tick from the command line, and the status -------------------------------------------------


def test_paper_tick_default_date_undo_and_the_change_log(demo: Settings) -> None:
    before = status_of(demo)
    assert before["DH-HP"]["stamped"] is True and before["DH-HP"]["paper"] is None  # its PDF counts (either)
    assert before["THPT-NQ"]["stamped"] is False and before["THPT-NQ"]["complete"] is False
    assert before["THPT-NQ"]["missing"] == ["stamped"] and before["THPT-TPH"]["missing"] == ["word", "stamped"]

    done = mailbot(demo, "paper", "THPT-NQ", "--campaign", CAMPAIGN, "--date", "2023-12-06", "--by", "cán bộ A")
    assert done.returncode == 0, done.stderr
    assert "THPT-NQ Trường THPT Ngô Quyền: paper copy for antq-2023 received on 2023-12-06" in done.stdout
    after = status_of(demo)["THPT-NQ"]
    assert (after["paper"], after["stamped"], after["complete"], after["missing"]) == ("2023-12-06", True, True, [])
    assert after["status"] == "on_time"  # the Word file's status is unchanged

    # Default day: today in Vietnam, not in UTC (23:00 UTC on the 7th is already the 8th there).
    moved = mailbot(demo, "--now", "2023-12-07T23:00:00+00:00", "paper", "THPT-NQ", "--campaign", CAMPAIGN)
    assert moved.returncode == 0, moved.stderr
    assert status_of(demo)["THPT-NQ"]["paper"] == "2023-12-08"

    undone = mailbot(demo, "paper", "THPT-NQ", "--campaign", CAMPAIGN, "--undo", "--by", "cán bộ B")
    assert undone.returncode == 0 and "removed (it said 2023-12-08)" in undone.stdout
    gone = status_of(demo)["THPT-NQ"]
    assert gone["paper"] is None and gone["stamped"] is False
    again = mailbot(demo, "paper", "THPT-NQ", "--campaign", CAMPAIGN, "--undo")
    assert again.returncode == 0 and "was not ticked" in again.stdout

    a = store.actions
    with store.connect(demo.db_url).connect() as conn:
        rows = conn.execute(
            select(a.c.action, a.c.actor, a.c.detail).where(a.c.action.like("paper%")).order_by(a.c.id)
        ).all()
        kept = conn.execute(select(store.paper)).all()
    assert [(r.action, r.detail) for r in rows] == [
        ("paper", "antq-2023 THPT-NQ 2023-12-06"),
        ("paper", "antq-2023 THPT-NQ 2023-12-08"),
        ("paper_undo", "antq-2023 THPT-NQ 2023-12-08"),
    ]
    assert rows[0].actor == "cán bộ A" and rows[2].actor == "cán bộ B" and kept == []


def test_a_receipt_asks_for_the_stamped_copy_exactly_when_the_status_says_it_is_missing(demo: Settings) -> None:
    """receipts.stamped_owed looks up one institution (a backlog asks it for every message); it must agree with the
    campaign's status, institution by institution, before and after a paper tick (either mode: PDF or post)."""
    from mailbot.models import InboundMail
    from mailbot.notify.receipts import stamped_owed

    engine, campaign = store.connect(demo.db_url), first_campaign(demo)
    word_only = InboundMail("x@y.vn", "", "", "<m@y.vn>", datetime(2023, 12, 1, tzinfo=ZONE), ())

    def owed_and_missing() -> dict[str, tuple[bool, bool]]:
        status = status_of(demo)
        with engine.connect() as conn:
            pks = {code: store.institution_pk(conn, code) for code in status}
            return {
                code: (stamped_owed(conn, campaign, pks[code], word_only), "stamped" in i["missing"])
                for code, i in status.items()
            }

    before = owed_and_missing()
    assert all(owed == missing for owed, missing in before.values()), before
    assert before["DH-HP"] == (False, False) and before["THPT-NQ"] == (True, True)  # its PDF; no stamped copy yet
    assert mailbot(demo, "paper", "THPT-NQ", "--campaign", CAMPAIGN, "--date", "2023-12-06").returncode == 0
    after = owed_and_missing()
    assert after["THPT-NQ"] == (False, False) and {k: v for k, v in after.items() if k != "THPT-NQ"} == {
        k: v for k, v in before.items() if k != "THPT-NQ"
    }


def test_paper_command_refuses_what_it_cannot_record_in_one_line(demo: Settings) -> None:
    unknown = mailbot(demo, "paper", "THPT-NQQ", "--campaign", CAMPAIGN)
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip().count("\n") == 0 and "no institution with code 'THPT-NQQ'" in unknown.stderr
    assert "did you mean THPT-NQ" in unknown.stderr
    wrong = mailbot(demo, "paper", "THPT-NQ", "--campaign", "antq-2024")
    assert wrong.returncode != 0 and "antq-2024" in wrong.stderr and "antq-2023" in wrong.stderr
    assert wrong.stderr.strip().count("\n") == 0
    future = mailbot(
        demo, "--now", "2023-12-07T08:00", "paper", "THPT-NQ", "--campaign", CAMPAIGN, "--date", "2023-12-09"
    )
    assert future.returncode != 0 and "after today" in future.stderr and "Traceback" not in future.stderr
    bad = mailbot(demo, "paper", "THPT-NQ", "--campaign", CAMPAIGN, "--date", "08/12/2023")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr.replace("%Y-%m-%d", "YYYY-MM-DD")
    assert status_of(demo)["THPT-NQ"]["paper"] is None


def test_without_a_stamped_copy_asked_for_nothing_is_owed_but_the_word_file(tmp_path: Path) -> None:
    settings = build_demo(tmp_path)  # the demo campaign: paper = "none"
    engine = store.connect(settings.db_url)
    pipeline.run_once(settings, engine)
    found = status_of(settings)
    assert {i["stamped"] for i in found.values()} == {None}
    assert all(i["complete"] == (i["status"] != "missing") for i in found.values())
    assert found["DH-HP"]["signed_copy"] is True  # its PDF is still shown
    ticked = mailbot(settings, "paper", "THPT-NQ", "--campaign", CAMPAIGN, "--date", "2023-12-01")
    assert ticked.returncode == 0 and "recorded but not counted" in ticked.stderr
    assert status_of(settings)["THPT-NQ"]["paper"] == "2023-12-01"


# --- which notices, asking for what (pure) -----------------------------------------------------------------

DEADLINE = datetime(2023, 12, 5, 17, 0, tzinfo=ZONE)
CHASE = Chase(reminders_before_days=(3, 1), late_every_days=2, late_until_days=6)


def inst(
    code: str, *, word: bool, pdf: bool = False, posted: date | None = None, mode: PaperMode, verdict: str = "ok"
) -> InstitutionStatus:
    """``pdf``: a PDF came, its check gave ``verdict`` (issue 17: only a verified one counts)."""
    subs = (Submission(1, "<m@x>", "a@x.vn", "BC", DEADLINE - timedelta(days=3), "address", False, (), ()),)
    checked = (Stamp("scan", verdict),) if pdf else ()
    return InstitutionStatus(
        code,
        code,
        "THPT",
        subs if word else (),
        DEADLINE,
        signed_copy=pdf,
        paper_mode=mode,
        paper_on=posted,
        stamps=checked,
    )


def test_notices_ask_only_for_what_is_missing_per_paper_mode() -> None:
    now = datetime(2023, 12, 2, 8, 0, tzinfo=ZONE)
    post = Campaign(CAMPAIGN, "BC", DEADLINE, paper=PaperMode.POST)
    insts = (
        inst("BOTH", word=False, mode=PaperMode.POST),
        inst("STAMP", word=True, mode=PaperMode.POST),
        inst("PDF-ONLY", word=True, pdf=True, mode=PaperMode.POST),  # a PDF does not count when post is asked
        inst("WORD", word=False, posted=date(2023, 12, 1), mode=PaperMode.POST),
        inst("DONE", word=True, posted=date(2023, 12, 1), mode=PaperMode.POST),
    )
    due = {n.institution.code: n.missing for n in due_notices(CampaignStatus(post, insts, ()), CHASE, now, ZONE)}
    assert due == {"BOTH": ("word", "stamped"), "STAMP": ("stamped",), "PDF-ONLY": ("stamped",), "WORD": ("word",)}
    either = Campaign(CAMPAIGN, "BC", DEADLINE, paper=PaperMode.EITHER)
    pdf_in = (inst("PDF", word=True, pdf=True, mode=PaperMode.EITHER),)
    assert due_notices(CampaignStatus(either, pdf_in, ()), CHASE, now, ZONE) == []
    doubtful = (inst("PDF", word=True, pdf=True, mode=PaperMode.EITHER, verdict="doubt"),)  # e.g. no seal on it
    assert [n.missing for n in due_notices(CampaignStatus(either, doubtful, ()), CHASE, now, ZONE)] == [("stamped",)]


def test_a_slot_asks_for_each_missing_part_once() -> None:
    post = Campaign(CAMPAIGN, "BC", DEADLINE, paper=PaperMode.POST)
    day2, day3 = datetime(2023, 12, 2, 8, 0, tzinfo=ZONE), datetime(2023, 12, 3, 8, 0, tzinfo=ZONE)

    def due(i: InstitutionStatus, now: datetime, asked: set[str]) -> list[str]:
        return [n.key for n in due_notices(CampaignStatus(post, (i,), ()), CHASE, now, ZONE, asked)]

    both = due(inst("A", word=False, mode=PaperMode.POST), day2, set())
    assert len(both) == 1 and both[0].endswith(":word+stamped:d3")
    # It sent the Word file next day (same slot): the stamped copy was already asked for in this slot.
    assert due(inst("A", word=True, mode=PaperMode.POST), day3, set(both)) == []
    # Asked for the Word file alone (its paper copy was ticked), then the tick was taken back: asked for it now.
    word_only = due(inst("A", word=False, posted=date(2023, 12, 1), mode=PaperMode.POST), day2, set())
    assert word_only[0].endswith(":word:d3")
    now_both = due(inst("A", word=False, mode=PaperMode.POST), day3, set(word_only))
    assert len(now_both) == 1 and now_both[0].endswith(":word+stamped:d3")
    # A key written before parts were named asked for everything; the next slot asks again.
    legacy = {word_only[0].replace(":word:d3", ":d3")}
    assert due(inst("A", word=False, mode=PaperMode.POST), day3, legacy) == []
    assert due(inst("A", word=True, mode=PaperMode.POST), datetime(2023, 12, 4, 8, 0, tzinfo=ZONE), set(both))


# --- receipts and notices as mailed (a real Dovecot, a real SMTP server) -----------------------------------


def _text(captured) -> str:  # type: ignore[no-untyped-def]
    return str(captured.message.get_body(("plain",)).get_content())


def _to(got, address: str) -> list:  # type: ignore[no-untyped-def,type-arg]
    return [c for c in got if address in c.rcpt_tos]


def test_receipts_and_reminders_ask_for_what_is_missing(tmp_path, dovecot, smtp_sink, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    ws = make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink))
    with_paper(ws.config_path, "post", plan=True)
    thai_phien, ngo_quyen, an_duong = (
        "thptthaiphien@haiphong.edu.vn",
        "thptngoquyen@haiphong.edu.vn",
        "thptanduong@haiphong.edu.vn",
    )
    report = [("bc.docx", samples.make_report_docx("Trường THPT Thái Phiên"), "application/octet-stream")]
    raw = samples.make_email(
        sender=thai_phien, sender_name=None, subject="Báo cáo ANTQ", body="Kính gửi", attachments=report
    )
    dovecot.append(raw, datetime(2023, 12, 1, 9, 0, tzinfo=ZONE))
    ws.cli("--now", "2023-12-01T10:00", "run", "--once")
    receipt = _text(smtp_sink.wait_for(1)[0])
    assert "xác nhận đã nhận được báo cáo" in receipt and f"Thực hiện: {PLAN}" in receipt
    assert "quý đơn vị gửi thêm bản báo cáo có dấu đỏ qua đường bưu chính về Phòng GDTX&ĐH" in receipt
    assert "chưa nhận được bản có dấu đỏ của quý đơn vị" in receipt

    ws.cli("--now", "2023-12-02T07:00", "paper", "THPT-NQ", "--campaign", CAMPAIGN, "--date", "2023-12-01")
    smtp_sink.clear()
    roster = [r for r in samples.load_demo_roster() if r["emails"]]
    ws.cli("--now", "2023-12-02T08:00", "remind")
    got = smtp_sink.wait_for(len(roster))
    assert len(got) == len(roster)  # everyone still owes something
    stamped_only, word_only, both = _to(got, thai_phien), _to(got, ngo_quyen), _to(got, an_duong)
    assert stamped_only[0].message["Subject"].startswith("Nhắc gửi bản có dấu đỏ của báo cáo: ")
    text = _text(stamped_only[0])
    assert f"Thực hiện {PLAN} của Sở Giáo dục và Đào tạo" in text
    assert "chưa nhận được bản báo cáo có dấu đỏ của quý đơn vị" in text
    assert "gửi bản báo cáo có dấu đỏ qua đường bưu chính" in text and "gửi bản Word báo cáo vào hòm thư" not in text
    text = _text(word_only[0])
    assert word_only[0].message["Subject"].startswith("Nhắc gửi báo cáo: ")
    assert "gửi bản Word báo cáo vào hòm thư gdtx@haiphong.edu.vn đúng thời hạn" in text
    assert "gửi bản báo cáo có dấu đỏ" not in text
    text = _text(both[0])
    assert (
        "gửi bản Word báo cáo vào hòm thư gdtx@haiphong.edu.vn và gửi bản báo cáo có dấu đỏ qua đường bưu chính" in text
    )

    # Same slot: the Ngô Quyền tick was a mistake. It was asked for the Word file only: now for both, once.
    ws.cli("--now", "2023-12-02T09:00", "paper", "THPT-NQ", "--campaign", CAMPAIGN, "--undo")
    smtp_sink.clear()
    ws.cli("--now", "2023-12-02T15:00", "remind")
    again = smtp_sink.wait_for(1)
    assert [tuple(c.rcpt_tos) for c in again] == [(ngo_quyen,)]
    assert "gửi bản Word báo cáo vào hòm thư gdtx@haiphong.edu.vn và gửi bản báo cáo có dấu đỏ" in _text(again[0])
    ws.cli("--now", "2023-12-02T16:00", "remind")
    assert len(smtp_sink.messages) == 1  # nothing more in this slot

    # Thái Phiên's paper copy arrives: complete, so the next slot leaves it alone.
    ws.cli("--now", "2023-12-03T09:00", "paper", "THPT-TPH", "--campaign", CAMPAIGN)
    assert next(i for i in ws.status()["institutions"] if i["code"] == "THPT-TPH")["complete"] is True
    smtp_sink.clear()
    ws.cli("--now", "2023-12-04T08:00", "remind")
    later = smtp_sink.wait_for(len(roster) - 1)
    assert not _to(later, thai_phien) and len(later) == len(roster) - 1


# --- tracker and digest ------------------------------------------------------------------------------------


def test_tracker_has_the_word_file_and_the_stamped_copy_as_two_columns(demo: Settings) -> None:
    assert mailbot(demo, "paper", "THPT-TL", "--campaign", CAMPAIGN, "--date", "2023-12-06").returncode == 0
    path = demo.data_dir / "theo-doi.xlsx"
    save_tracker(campaign_status(store.connect(demo.db_url), first_campaign(demo)), ZONE, path, generated_at=DIGEST_AT)
    wb = load_workbook(path)
    ws = wb["THPT"]
    header = [c.value for c in ws[1]]
    assert header == list(GROUP_HEADERS) and "Tệp Word" in header and "Bản có dấu đỏ" in header
    word, stamped = header.index("Tệp Word"), header.index("Bản có dấu đỏ")
    rows = {r[1]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    assert (rows["THPT-TL"][word], rows["THPT-TL"][stamped]) == ("Nộp muộn", "Đã nhận bản giấy ngày 06/12/2023")
    assert (rows["THPT-NQ"][word], rows["THPT-NQ"][stamped]) == ("Đúng hạn", "Chưa nhận")
    assert (rows["THPT-TPH"][word], rows["THPT-TPH"][stamped]) == ("Chưa nộp", "Chưa nhận")
    universities = {r[1]: r for r in wb["Đại học"].iter_rows(min_row=2, values_only=True)}
    # Its PDF is the demo's scan, seal and number checked (issue 17): the verdict replaces "a PDF came".
    assert (universities["DH-HP"][word], universities["DH-HP"][stamped]) == (
        "Đúng hạn",
        "Bản quét có dấu đỏ, số 15/BC-DHHP khớp với tệp Word",
    )
    summary = wb[SUMMARY_SHEET]
    table = list(summary.iter_rows(min_row=6, values_only=True))
    assert table[0][:8] == (*SUMMARY_HEADERS, *STAMPED_HEADERS)
    thpt = next(r for r in table if r[0] == "THPT")
    found = status_of(demo)
    thpt_codes = [c for c, i in found.items() if i["group"] == "THPT" and i["active"]]
    assert thpt[6] == sum(1 for c in thpt_codes if found[c]["stamped"])
    assert thpt[7] == sum(1 for c in thpt_codes if found[c]["complete"]) == 1  # THPT-TL, ticked above
    total = table[-1] if table[-1][0] == "Tổng cộng" else next(r for r in table if r[0] == "Tổng cộng")
    assert total[6] == sum(1 for i in found.values() if i["stamped"] and i["active"])


def test_digest_counts_the_stamped_copy_apart(demo: Settings) -> None:
    rendered, _ = dispatch.render_digest(demo, store.connect(demo.db_url), DIGEST_AT)
    found = status_of(demo)
    received = sum(1 for i in found.values() if i["stamped"])
    for body in (rendered.text, rendered.html):
        assert f"Bản có dấu đỏ: đã nhận {received}/" in re.sub(r"</?strong>", "", body)
        assert "Đơn vị chưa gửi bản có dấu đỏ" in body
    owing = rendered.text.split("Đơn vị chưa gửi bản có dấu đỏ:")[1].split("\n\n")[0]
    assert "Trường THPT Ngô Quyền" in owing and found["DH-HP"]["name"] not in owing


# --- the web pages -----------------------------------------------------------------------------------------


def client_for(settings: Settings) -> TestClient:
    engine = store.connect(settings.db_url)
    auth.set_password(engine, USER, PASSWORD, actor="test")
    return TestClient(create_app(settings, engine, now=DIGEST_AT), base_url="http://testserver")


def logged_in(settings: Settings) -> TestClient:
    client = client_for(settings)
    token = re.search(r'name="token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/login", data={"name": USER, "password": PASSWORD, "token": token, "next": "/"}, follow_redirects=False
    )
    assert r.status_code == 303
    return client


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def flash(client: TestClient, path: str) -> str:
    found = re.search(r'<div class="flash (ok|error)"[^>]*>([^<]*)</div>', client.get(path).text)
    return f"{found.group(1)}: {found.group(2)}" if found else ""


def paper_rows(settings: Settings) -> list:  # type: ignore[type-arg]
    with store.connect(settings.db_url).connect() as conn:
        return list(conn.execute(select(store.paper)))


def test_web_paper_needs_a_login_and_the_form_token(demo: Settings) -> None:
    anonymous = client_for(demo)
    r = anonymous.post(
        f"{C}/paper",
        data={"code": "THPT-NQ", "received": "1", "received_on": "06/12/2023", "csrf": "x"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    staff = logged_in(demo)
    for extra in ({}, {"csrf": "wrong-token"}):
        r = staff.post(
            f"{C}/paper",
            data={"code": "THPT-NQ", "received": "1", "received_on": "06/12/2023", **extra},
            follow_redirects=False,
        )
        assert r.status_code == 403 and "Biểu mẫu đã hết hiệu lực" in r.text
    assert paper_rows(demo) == []


def test_web_tick_with_a_vietnamese_date_and_undo(demo: Settings) -> None:
    staff = logged_in(demo)
    page_path = f"{C}/institutions/THPT-NQ"
    page = staff.get(page_path).text
    assert 'id="received_on"' in page and 'name="received"' in page and 'value="07/12/2023"' in page  # today, VN
    assert "<b>Bản có dấu đỏ:</b> Chưa nhận" in page
    csrf = csrf_of(page)
    for typed in ("12/31/2023", "31/02/2023", "mai"):
        r = staff.post(
            f"{C}/paper",
            data={"csrf": csrf, "code": "THPT-NQ", "received": "1", "received_on": typed},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == page_path
        assert flash(staff, page_path) == (
            "error: Ngày nhận bản giấy không hợp lệ. Vui lòng nhập theo dạng ngày/tháng/năm, ví dụ 08/12/2023."
        )
    future = {"csrf": csrf, "code": "THPT-NQ", "received": "1", "received_on": "08/12/2023"}
    assert staff.post(f"{C}/paper", data=future, follow_redirects=False).status_code == 303
    assert "không được sau ngày hôm nay" in flash(staff, page_path)  # the pages' today is 07/12/2023
    assert paper_rows(demo) == []

    tick = {"csrf": csrf, "code": "THPT-NQ", "received": "1", "received_on": " 6/12/2023 "}
    assert staff.post(f"{C}/paper", data=tick, follow_redirects=False).status_code == 303
    page = staff.get(page_path).text
    assert "Đã ghi nhận bản giấy (bản có dấu đỏ) nhận ngày 06/12/2023." in page
    assert "Đã nhận bản giấy ngày <b>06/12/2023</b>" in page and f"Ghi nhận bởi {USER}" in page
    assert "<b>Bản có dấu đỏ:</b> Đã nhận bản giấy ngày 06/12/2023" in page
    assert f"<b>{USER}</b>: Ghi nhận đã nhận bản giấy (bản có dấu đỏ)" in page and "ngày 06/12/2023" in page
    (row,) = paper_rows(demo)
    assert row.received_on == date(2023, 12, 6) and row.actor == USER
    assert status_of(demo)["THPT-NQ"]["paper"] == "2023-12-06"
    table = staff.get(f"{C}/institutions", params={"q": "ngo quyen"}).text
    assert "Đã nhận bản giấy ngày 06/12/2023" in table

    r = staff.post(f"{C}/paper", data={"csrf": csrf, "code": "THPT-NQ", "undo": "1"}, follow_redirects=False)
    assert r.status_code == 303
    page = staff.get(page_path).text
    assert "Đã bỏ ghi nhận bản giấy ngày 06/12/2023." in page
    assert f"<b>{USER}</b>: Bỏ ghi nhận bản giấy (bản có dấu đỏ)" in page
    assert paper_rows(demo) == [] and status_of(demo)["THPT-NQ"]["paper"] is None
    assert (
        staff.post(
            f"{C}/paper", data={"csrf": csrf, "code": "KHONG-CO", "received": "1", "received_on": "06/12/2023"}
        ).status_code
        == 404
    )
