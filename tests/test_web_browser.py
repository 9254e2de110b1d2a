"""End to end in a real browser: Debian's headless Chromium, driven by Playwright, against `mailbot web`.

The server runs as a subprocess on a free loopback port, over a processed demo folder. Chromium comes from
Debian's `chromium` package (`bash scripts/test.sh` installs it); Playwright's own browser downloads are not
used. Without Chromium this test fails (it must not be skipped silently).
Set MAILBOT_SCREENSHOTS=DIR to keep screenshots of the pages it visits.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import load_workbook

from mailbot.demo import samples
from tests.web_support import free_port, processed_demo, serving

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USER, PASSWORD = "thu.trang", "Mật-khẩu-trình-duyệt-1"
NOW = "2023-12-07T07:30"  # the morning after the demo's deadline


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "chromium is not installed: the browser tests need Debian's chromium package "
            "(apt-get install -y chromium; `bash scripts/test.sh` installs it)",
            pytrace=False,
        )
    return path


@dataclass
class Server:
    root: Path
    url: str

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(self.root / "mailbot.toml"), "--now", NOW, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result

    def status(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.cli("status", "--json").stdout)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = processed_demo(tmp_path_factory.mktemp("browser-demo"))
    port = free_port()
    srv = Server(root, f"http://127.0.0.1:{port}")
    srv.cli("user", "add", USER, "--password-stdin", input=PASSWORD + "\n")
    with serving(root / "mailbot.toml", port, "--now", NOW):
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Python Playwright is missing: pip install -e '.[test]'", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    folder = os.environ.get("MAILBOT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_anonymous_gets_the_login_page(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    for path in ("/", "/c/antq-2023/institutions/THPT-NQ", "/files/1", "/c/antq-2023/reports.zip"):
        page.goto(server.url + path)
        assert page.url.startswith(server.url + "/login?next=")
        assert page.locator("h1").inner_text() == "Đăng nhập"
        assert "Ngô Quyền" not in page.content()
    context.close()


def test_staff_day_in_the_browser(server: Server, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    # log in
    page.goto(server.url + "/")
    page.fill("#name", USER)
    page.fill("#password", "sai-mat-khau")
    page.click("button:has-text('Đăng nhập')")
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in page.inner_text("main")
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Đăng nhập')")
    page.wait_for_url(server.url + "/c/antq-2023/")
    assert "Đã quá hạn 1 ngày 14 giờ" in page.inner_text("main")
    assert "Tiến độ theo nhóm đơn vị" in page.inner_text("main")
    shoot(page, "overview")

    # find a school by typing its name without diacritics, open its report
    page.click("nav >> text=Danh sách đơn vị")
    page.fill("#q", "ngo quyen")
    page.press("#q", "Enter")
    page.wait_for_url("**/institutions?q=ngo+quyen*")
    rows = page.locator("#bang-don-vi tbody tr")
    assert rows.count() == 2
    assert "Trường THPT Ngô Quyền" in rows.all_inner_texts()[1] or "Trường THPT Ngô Quyền" in rows.all_inner_texts()[0]
    shoot(page, "institutions")
    page.click("text=Trường THPT Ngô Quyền")
    assert page.locator("h1").inner_text() == "Trường THPT Ngô Quyền"
    with page.expect_download() as report:
        page.click("a:has-text('baocao_ANTQ_2023.docx')")
    saved = tmp_path / "report.docx"
    report.value.save_as(saved)
    assert report.value.suggested_filename == "baocao_ANTQ_2023.docx"
    assert zipfile.ZipFile(saved).read("[Content_Types].xml")  # a real Word file
    shoot(page, "institution")

    # settle the held message: search without diacritics, remember the address
    page.click("nav >> text=Thư chờ cán bộ xem xét")
    item = page.locator("section.review-item").first
    assert "hoa.nguyen1987@yahoo.com" in item.inner_text()
    item.locator("input[type=search]").fill("thai phien")
    assert item.locator("select").input_value() == "THPT-TPH"  # the only match is chosen
    item.locator("input[name=learn]").check()
    shoot(page, "review")
    item.locator("button:has-text('Giao cho đơn vị đã chọn')").click()
    page.wait_for_load_state()
    assert "Đã giao thư số" in page.locator(".flash.ok").inner_text()
    assert "Trường THPT Thái Phiên" in page.locator(".flash.ok").inner_text()
    assert "Không có thư nào đang chờ cán bộ xem xét." in page.inner_text("main")
    status = server.status()
    tph = next(i for i in status["institutions"] if i["code"] == "THPT-TPH")
    assert tph["identified_by"] == "staff" and tph["status"] == "on_time"
    assert status["review"] == []

    # grant an extension to the school that was late
    page.goto(server.url + "/c/antq-2023/institutions?status=late")
    page.click("text=Trường THPT Tiên Lãng")
    assert page.input_value("#until") == "05/12/2023 17:00"  # dd/mm/yyyy hh:mm, whatever the browser's language
    page.fill("#until", "08/12/2023 17:00")
    page.fill("#reason", "Đơn vị bị mất điện")
    page.click("button:has-text('Ghi nhận gia hạn')")
    page.wait_for_load_state()
    text = page.inner_text("main")
    assert "Đã gia hạn nộp báo cáo đến 17:00 ngày 08/12/2023." in text
    assert "Đơn vị được gia hạn đến 17:00 ngày 08/12/2023 — lý do: Đơn vị bị mất điện." in text
    assert f"{USER}: Gia hạn nộp" in text
    tl = next(i for i in server.status()["institutions"] if i["code"] == "THPT-TL")
    assert tl["status"] == "on_time" and tl["deadline"].startswith("2023-12-08T17:00")

    # download the tracker and the zip
    with page.expect_download() as tracker:
        page.click("nav >> text=Bảng theo dõi (Excel)")
    xlsx = tmp_path / tracker.value.suggested_filename
    tracker.value.save_as(xlsx)
    wb = load_workbook(xlsx)
    assert wb.sheetnames[0] == "Tổng hợp" and "THPT" in wb.sheetnames
    with page.expect_download() as bundle:
        page.click("nav >> text=Toàn bộ báo cáo (.zip)")
    zpath = tmp_path / bundle.value.suggested_filename
    bundle.value.save_as(zpath)
    names = zipfile.ZipFile(io.BytesIO(zpath.read_bytes())).namelist()
    assert "antq-2023/THPT/THPT-NQ - Trường THPT Ngô Quyền/baocao_ANTQ_2023.docx" in names
    assert any(n.startswith("antq-2023/THPT/THPT-TPH - Trường THPT Thái Phiên/") for n in names)  # just assigned
    assert {n.split("/")[1] for n in names} == {"Phòng GDĐT", "THPT", "GDNN-GDTX", "Đơn vị trực thuộc", "Đại học"}

    # on a phone: nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (
        "/c/antq-2023/",
        "/c/antq-2023/institutions",
        "/c/antq-2023/institutions/THPT-TL",
        "/c/antq-2023/review",
    ):
        page.goto(server.url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a phone screen"
    shoot(page, "institutions-phone")

    # log out: the pages are closed again
    page.click("button:has-text('Đăng xuất')")
    page.wait_for_url("**/login")
    page.goto(server.url + "/c/antq-2023/")
    assert page.url.startswith(server.url + "/login")
    assert errors == []
    context.close()


LAPTOP, PHONE = {"width": 1366, "height": 768}, {"width": 390, "height": 844}
HUGE_SUBJECT = "Gửi báo cáo " + "rất-dài-" * 2500  # 20,000 characters, one endless word


def log_in(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/login")
    page.fill("#name", USER)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Đăng nhập')")
    page.wait_for_url("**/c/antq-2023/")


def sideways(page, selector: str = "") -> int:  # type: ignore[no-untyped-def]
    """How many pixels the page (or each element matching ``selector``) is wider than its box."""
    if not selector:
        return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return page.evaluate(
        "(s) => Math.max(0, ...[...document.querySelectorAll(s)].map(e => e.scrollWidth - e.clientWidth))", selector
    )


def test_tables_and_review_queue_fit_a_laptop_and_a_phone(server: Server, browser) -> None:  # type: ignore[no-untyped-def]
    # a held message with a 20,000-character subject and a long file name, as a careless sender writes them
    raw = samples.make_email(
        sender="nguoi.la.2023@gmail.com",
        sender_name="",
        subject=HUGE_SUBJECT,
        body="Gửi Sở.",
        attachments=[
            (
                "bao-cao-" + "phong-trao-" * 20 + ".docx",
                samples.make_report_docx("Không rõ đơn vị"),
                "application/octet-stream",
            )
        ],
    )
    (server.root / "Maildir" / "new" / "1701759600.M9999.huge").write_bytes(raw)
    server.cli("run", "--once")
    assert any(r["subject"] == HUGE_SUBJECT for r in server.status()["review"])  # the record keeps it whole

    for viewport in (LAPTOP, PHONE):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        log_in(page, server.url)
        name = f"{viewport['width']}x{viewport['height']}"
        page.goto(server.url + "/c/antq-2023/institutions")
        assert sideways(page) <= 0, f"the institutions page scrolls sideways at {name}"
        assert sideways(page, ".table-wrap") <= 0, f"the institutions table scrolls sideways at {name}"
        if viewport is LAPTOP:
            for header in ("Nhận diện", "Lưu ý"):  # in sight without scrolling
                box = page.locator(f"#bang-don-vi th:has-text('{header}')").bounding_box()
                assert box and box["x"] + box["width"] <= viewport["width"], f"{header} is off screen at {name}"
        shoot(page, f"institutions-{name}")
        if viewport is PHONE:
            missing = page.locator("#bang-don-vi tbody tr", has_text="THPT-TPH")
            labels = missing.locator("td").evaluate_all(
                "tds => tds.filter(td => getComputedStyle(td).display !== 'none').map(td => td.textContent.trim())"
            )
            assert all(labels), f"a missing school shows empty labels on a phone: {labels}"
            height = page.evaluate("document.documentElement.scrollHeight")
            assert height < 15000, f"the institutions page is {height}px tall on a phone"

        started = time.monotonic()
        page.goto(server.url + "/c/antq-2023/review")
        took = time.monotonic() - started
        assert took < 1.5, f"the review queue took {took:.2f}s with a 20,000-character subject"
        assert sideways(page) <= 0, f"the review queue scrolls sideways at {name}"
        assert sideways(page, "section.review-item") <= 0, f"a review card overflows at {name}"
        heading = page.locator("section.review-item h2", has_text="rất-dài-").inner_text()
        assert heading.endswith("…") and len(heading) < 400
        shoot(page, f"review-{name}")
        context.close()
