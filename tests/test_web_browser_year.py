"""Staff run a campaign from the browser alone (issue #12), in Debian's headless Chromium driven by Playwright,
against `mailbot web` over a real Dovecot inbox and a real SMTP server:

create the next campaign with its plan and template, import the roster from a messy Excel list as staff keep it,
send the call (one email per institution, both files attached, found in the SMTP server), assign a held message
to the second of two open campaigns, dismiss a spam message, tick a paper copy, and open a school's status link
from its receipt (and fail to with a tampered token).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import docx
import pytest
from openpyxl import Workbook

from mailbot.demo import samples
from mailbot.web.snapshot import RECHECK
from tests.conftest import PASSWORD_ENV, Workspace, make_workspace
from tests.test_notify import smtp_section
from tests.test_web_browser import browser, shoot  # noqa: F401 - the browser fixture
from tests.web_support import free_port, serving

USER, PASSWORD = "thu.trang", "Mật-khẩu-trình-duyệt-2"
NOW = "2024-01-03T08:00"  # antq-2023 still takes late reports (until 03/02/2024) when hk1-2024 opens
NEW_SCHOOL = "Trường THPT Tô Hiệu"


@dataclass
class Site:
    ws: Workspace
    url: str
    sink: object
    dovecot: object
    tmp: Path

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.ws.cli("--now", NOW, *args) if input is None else _with_input(self.ws, input, *args)

    def status(self, campaign: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self.cli("status", "--campaign", campaign, "--json").stdout)


def _with_input(ws: Workspace, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(ws.config_path), "--now", NOW, *args],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def site(tmp_path_factory: pytest.TempPathFactory, dovecot, smtp_sink) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("browser-year")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    web = f'\n[web]\npublic_url = "{url}"\n'
    ws = make_workspace(tmp / "ws", dovecot, extra=smtp_section(smtp_sink) + web)
    s = Site(ws, url, smtp_sink, dovecot, tmp)
    s.cli("run", "--once")  # the roster file and the configured campaign imported
    s.cli("user", "add", USER, "--password-stdin", input=PASSWORD + "\n")
    with serving(ws.config_path, port, "--now", NOW, env={PASSWORD_ENV: ws.password}):
        yield s


def shown_within(seconds: float, shown: Callable[[], bool]) -> None:
    """The pages show what another process recorded within ``snapshot.RECHECK`` (they keep a snapshot of the
    campaign between two looks at the database): a page loaded at once may still be the one from before."""
    deadline = time.monotonic() + seconds
    while not shown() and time.monotonic() < deadline:
        time.sleep(0.2)


def template_docx(path: Path) -> Path:
    d = docx.Document()
    d.add_paragraph("MẪU BÁO CÁO SƠ KẾT HỌC KỲ I")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Nội dung", "Số lượng"
    buf = io.BytesIO()
    d.save(buf)
    path.write_bytes(buf.getvalue())
    return path


def messy_roster(path: Path) -> Path:
    """The high schools as staff keep them in Excel: a title row, a merged two-row header, no code column, and
    two addresses in one cell written "a / b"; one school is new."""
    rows = [r for r in samples.load_demo_roster() if r["group"] == "THPT"]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A1"] = "DANH SÁCH CÁC TRƯỜNG THPT NỘP BÁO CÁO NĂM HỌC 2023 - 2024"
    sheet.merge_cells("A1:E1")
    sheet["A3"], sheet["B3"], sheet["C3"], sheet["D3"] = "STT", "Tên đơn vị", "Loại hình", "Thông tin liên hệ"
    for column in "ABC":
        sheet.merge_cells(f"{column}3:{column}4")
    sheet.merge_cells("D3:E3")
    sheet["D4"], sheet["E4"] = "Email", "Điện thoại"
    listed = [(r["name"], " / ".join(r["emails"]), "") for r in rows]
    listed.append((NEW_SCHOOL, "thpttohieu@haiphong.edu.vn / vanthu.tohieu@haiphong.edu.vn", "0225 3822 999"))
    for n, (name, emails, phone) in enumerate(listed, start=1):
        for column, value in enumerate([n, name, "THPT", emails, phone], start=1):
            sheet.cell(4 + n, column, value)
    book.save(path)
    return path


def log_in(page, site: Site) -> None:  # type: ignore[no-untyped-def]
    page.goto(site.url + "/login")
    page.fill("#name", USER)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Đăng nhập')")
    page.wait_for_load_state()


def of_kind(sink, kind: str) -> list:  # type: ignore[no-untyped-def,type-arg]
    return [c for c in sink.messages if c.message["X-Mailbot-Kind"] == kind]


def test_staff_run_a_campaign_from_the_browser(site: Site, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="Europe/Paris")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, site)

    # 1. The roster from the staff's own Excel list: preview, then apply.
    page.click("#nav-roster")
    page.set_input_files("#roster-file", str(messy_roster(site.tmp / "danh-sach-thpt.xlsx")))
    page.click("#roster-preview")
    summary = page.inner_text("#roster-summary")
    assert "1" in summary and NEW_SCHOOL in page.inner_text("main")
    shoot(page, "roster-preview")
    page.click("#roster-apply")
    page.wait_for_load_state()
    roster = {r["name"]: r for r in json.loads(site.cli("roster", "list", "--json").stdout)}
    assert roster[NEW_SCHOOL]["emails"] == ["thpttohieu@haiphong.edu.vn", "vanthu.tohieu@haiphong.edu.vn"]
    assert roster[NEW_SCHOOL]["group"] == "THPT" and roster[NEW_SCHOOL]["code"]
    thpt = {r["code"]: r for r in roster.values() if r["group"] == "THPT" and r["active"]}

    # 2. The next campaign, with its plan and template; dates typed the Vietnamese way in a French-time browser.
    page.click("#cac-dot")
    page.click("#tao-dot-moi")
    page.fill("#id", "hk1-2024")
    page.fill("#title", "Báo cáo sơ kết học kỳ I năm học 2023-2024")
    page.fill("#plan", "Số 12/KH-SGDĐT ngày 02/01/2024")
    page.fill("#opens", "02/01/2024 08:00")
    page.fill("#deadline", "15/01/2024 17:00")
    page.check("input[name=groups][value='THPT']")
    page.select_option("#paper", "either")
    page.fill("#contact", "bà Nguyễn Thị Lan, điện thoại 0225.3841.234")
    page.fill("#keywords", "học kỳ I")
    plan = site.tmp / "Kế hoạch 12-KH-SGDĐT.pdf"
    plan.write_bytes(b"%PDF-1.4\n% the plan\n")
    page.set_input_files("#attachments", str(plan))
    page.set_input_files("#template", str(template_docx(site.tmp / "Mẫu báo cáo HK1.docx")))
    page.click("#luu-dot")
    page.wait_for_url("**/c/hk1-2024/settings")
    assert "Đã tạo đợt báo cáo" in page.inner_text(".flash.ok")
    assert "Kế hoạch 12-KH-SGDĐT.pdf" in page.inner_text("main") and "Mẫu báo cáo HK1.docx" in page.inner_text("main")
    assert page.input_value("#deadline") == "15/01/2024 17:00"
    shoot(page, "campaign")

    # 3. The call for reports: preview, send, and one email per high school with both files in the SMTP server.
    page.click("#gui-thong-bao")
    assert f"{len(thpt)}" in page.inner_text(".card b")
    page.click("#xac-nhan-gui")
    page.wait_for_load_state()
    assert f"Đã đưa {len(thpt)} thư thông báo vào hàng gửi" in page.inner_text(".flash.ok")
    site.cli("run", "--once")  # the service delivers the outbox
    calls = of_kind(site.sink, "announce")
    assert len(calls) == len(thpt)
    assert {c.rcpt_tos[0] for c in calls} == {r["emails"][0] for r in thpt.values()}
    for c in calls:
        assert [p.get_filename() for p in c.message.iter_attachments()] == [
            "Kế hoạch 12-KH-SGDĐT.pdf",
            "Mẫu báo cáo HK1.docx",
        ]

    # 4. A school reports; its receipt carries its status link, which shows it and nothing else.
    school = thpt["THPT-NQ"]
    report = samples.make_email(
        sender=school["emails"][0],
        sender_name=school["name"],
        subject="Báo cáo sơ kết học kỳ I",
        body="Kính gửi Sở, trường gửi báo cáo sơ kết học kỳ I.",
        attachments=[("bao-cao-hk1.docx", _report(school["name"]), samples.DOCX_TYPE)],
    )
    site.dovecot.append(report, datetime(2024, 1, 3, 0, 30, tzinfo=UTC))  # type: ignore[attr-defined]
    site.cli("run", "--once")
    assert {i["code"]: i for i in site.status("hk1-2024")["institutions"]}["THPT-NQ"]["status"] == "on_time"
    receipt = next(c for c in of_kind(site.sink, "ack") if school["emails"][0] in c.rcpt_tos)
    text = receipt.message.get_body(("plain",)).get_content()
    links = re.findall(re.escape(site.url) + r"/s/\S+", text)
    assert len(links) == 1
    visitor = browser.new_context().new_page()  # no login: a school's browser
    visitor.goto(links[0])
    assert school["name"] in visitor.inner_text("main") and "bao-cao-hk1.docx" in visitor.inner_text("main")
    other = next(r for r in thpt.values() if r["code"] != "THPT-NQ")
    assert other["name"] not in visitor.content()
    shoot(visitor, "school-status")
    tampered = links[0][:-3] + ("AAA" if not links[0].endswith("AAA") else "BBB")
    response = visitor.goto(tampered)
    assert response is not None and response.status in (403, 404)
    assert school["name"] not in visitor.content()

    # 5. With two campaigns open, a school's mail with no keyword in it is held; staff assign it to the second one.
    late_school = thpt["THPT-TPH"]
    held = samples.make_email(
        sender=late_school["emails"][0],
        sender_name=late_school["name"],
        subject="Gửi Sở báo cáo",
        body="Kính gửi Sở, trường gửi báo cáo.",
        attachments=[("baocao.docx", _report(late_school["name"], "Báo cáo kết quả thực hiện"), samples.DOCX_TYPE)],
    )
    spam = samples.make_email(
        sender="khuyenmai@quangcao.example",
        sender_name="Khuyến mãi",
        subject="Ưu đãi cuối năm",
        body="Mua một tặng một.",
        attachments=[],
    )
    site.dovecot.append(held, datetime(2024, 1, 3, 0, 40, tzinfo=UTC))  # type: ignore[attr-defined]
    site.dovecot.append(spam, datetime(2024, 1, 3, 0, 45, tzinfo=UTC))  # type: ignore[attr-defined]
    site.cli("run", "--once")
    item = page.locator("section.review-item", has_text=late_school["emails"][0])

    def held_shown() -> bool:
        page.goto(site.url + "/c/hk1-2024/review")
        return item.count() > 0

    shown_within(RECHECK + 4, held_shown)
    item.locator("input[type=search]").fill("thai phien")
    assert item.locator("select[name=code]").input_value() == "THPT-TPH"
    item.locator("select[name=campaign]").select_option("hk1-2024")
    shoot(page, "review-two-campaigns")
    item.locator("button:has-text('Giao cho đơn vị đã chọn')").click()
    page.wait_for_load_state()
    assert "Trường THPT Thái Phiên" in page.inner_text(".flash.ok")
    hk1 = {i["code"]: i for i in site.status("hk1-2024")["institutions"]}
    assert hk1["THPT-TPH"]["status"] == "on_time" and hk1["THPT-TPH"]["identified_by"] == "staff"

    # 6. The spam is dismissed with a reason: out of the queue, kept under "Đã loại".
    item = page.locator("section.review-item", has_text="khuyenmai@quangcao.example")
    item.locator("input[name=reason]").fill("Thư quảng cáo")
    item.locator("button:has-text('Loại thư')").click()
    page.wait_for_load_state()
    assert "khuyenmai@quangcao.example" not in page.locator("section.review-item").all_inner_texts()
    assert "Thư quảng cáo" in page.inner_text("#da-loai ~ *") or "Thư quảng cáo" in page.inner_text("main")
    assert site.status("hk1-2024")["review"] == []

    # 7. The stamped copy of Ngô Quyền comes by post: staff tick it with the date it arrived.
    page.goto(site.url + "/c/hk1-2024/institutions/THPT-NQ")
    page.check("#received")
    page.fill("#form-ban-giay input[name=received_on]", "03/01/2024")
    page.click("#form-ban-giay button:has-text('Lưu')")
    page.wait_for_load_state()
    assert "Đã ghi nhận bản giấy" in page.inner_text(".flash.ok")
    nq = {i["code"]: i for i in site.status("hk1-2024")["institutions"]}["THPT-NQ"]
    assert nq["paper"] == "2024-01-03" and nq["stamped"] is True and nq["complete"] is True
    visitor.goto(links[0])
    assert "bản giấy" in visitor.inner_text("main").lower()  # the school sees it too
    assert not errors, errors
    context.close()


def _report(name: str, title: str = "Báo cáo sơ kết học kỳ I năm học 2023-2024") -> bytes:
    return samples.make_report_docx(name, date=date(2024, 1, 3), title=title)
