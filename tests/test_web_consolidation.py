"""The consolidation page (/c/{cid}/consolidation) on the processed demo with a report template attached: the
department's table live, the unmatched list with each school's file, a mapping accepted and remembered, the downloads
(workbook linking to /files/{id}, texts, drafted report, also from a report template staff upload)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from mailbot import store
from mailbot.campaigns import catalog
from mailbot.config import Settings
from mailbot.demo.build import DIGEST_AT
from mailbot.demo.samples import demo_template_docx
from mailbot.reports import matching
from mailbot.reports.consolidate import campaign_template, consolidate_campaign
from mailbot.reports.numbers import vn_number
from tests.test_web import USER, csrf_of, flash, login, make_client
from tests.web_support import copy_of, processed_demo

PAGE = "/c/antq-2023/consolidation"


def renamed_template() -> bytes:
    """The demo template with "Số lượt người" called "Lượt tham dự": no school's column matches it by itself."""
    source = zipfile.ZipFile(io.BytesIO(demo_template_docx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml":
                data = data.replace("Số lượt người".encode(), "Lượt tham dự".encode())
            target.writestr(item, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return processed_demo(tmp_path_factory.mktemp("web-consolidation"))


@pytest.fixture
def demo(master: Path, tmp_path: Path) -> Settings:
    settings = copy_of(master, tmp_path)
    engine = store.connect(settings.db_url)
    catalog.attach(
        engine,
        settings.data_dir,
        "antq-2023",
        catalog.TEMPLATE,
        "Mẫu.docx",
        renamed_template(),
        actor="lan",
        now=DIGEST_AT,
    )
    return settings


@pytest.fixture
def staff(demo: Settings) -> TestClient:
    client = make_client(demo)
    assert login(client).status_code == 303
    return client


def _true_totals(settings: Settings) -> tuple[str, ...]:
    """The city-wide figures with the demo's own template, where every school's column matches."""
    engine = store.connect(settings.db_url)
    campaign = catalog.load(engine, settings).get("antq-2023")
    with engine.begin() as conn:
        conn.execute(store.campaign_files.update().values(path="demo-template.docx"))
    (settings.data_dir / "demo-template.docx").write_bytes(demo_template_docx())
    template = campaign_template(settings, engine, campaign.id)
    assert template is not None
    result = consolidate_campaign(settings, engine, campaign, template, now=DIGEST_AT).tables[0]
    return tuple(vn_number(result.total(r, 1)) for r in range(len(result.template.rows)))


def test_the_page_lists_what_did_not_match_and_an_accepted_mapping_is_remembered(demo: Settings, staff: TestClient):
    page = staff.get(PAGE)
    assert page.status_code == 200
    assert "Tổng hợp theo mẫu báo cáo <b>Mẫu.docx</b>" in page.text
    assert "Kết quả tuyên truyền, giáo dục trong năm 2023" in page.text
    items = re.findall(r'name="found" value="([^"]+)"', page.text)
    assert items and set(items) == {"Số lượt người"}  # every school's column, each with the form to accept it
    assert matching.COLUMN_NOT_IN_TEMPLATE in page.text
    # the files are linked, and they download
    file_ids = set(re.findall(r'href="/files/(\d+)" download', page.text))
    assert file_ids and all(staff.get(f"/files/{i}").status_code == 200 for i in list(file_ids)[:3])
    accepted = staff.post(
        f"{PAGE}/accept",
        data={"csrf": csrf_of(page.text), "kind": "column", "found": "Số lượt người", "target": "Lượt tham dự"},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    assert flash(staff, PAGE).startswith("ok: Đã ghi nhận: Cột “Số lượt người” được hiểu là “Lượt tham dự”")
    again = staff.get(PAGE)
    assert 'name="found" value="Số lượt người"' not in again.text
    engine = store.connect(demo.db_url)
    with engine.connect() as conn:
        assert conn.execute(select(store.compile_aliases.c.found, store.compile_aliases.c.target)).all() == [
            ("so luot nguoi", "luot tham du")
        ]
        logged = conn.execute(select(store.actions).where(store.actions.c.action == "compile_alias")).one()
    assert logged.actor == USER  # the logged-in user
    cells = re.findall(r'<td class="num"><b>([^<]+)</b></td>', again.text)
    assert tuple(cells[1::2]) == _true_totals(demo)  # the "Lượt tham dự" column now carries the schools' figures


def test_downloads(demo: Settings, staff: TestClient):
    got = staff.get("/c/antq-2023/consolidation.xlsx")
    assert got.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(got.content))
    assert wb.sheetnames == ["Tổng hợp chung", "Bảng 1", "Chi tiết bảng 1", "Chưa khớp mẫu"]
    assert wb["Bảng 1"].cell(5, 3).value.startswith("=SUM('Chi tiết bảng 1'!")
    link = wb["Chi tiết bảng 1"].cell(4, 3).hyperlink.target
    assert re.fullmatch(r"http://testserver/files/\d+", link)
    assert staff.get(link.removeprefix("http://testserver")).status_code == 200
    texts = staff.get(f"{PAGE}/texts.docx")
    assert texts.status_code == 200
    paragraphs = [p.text for p in docx.Document(io.BytesIO(texts.content)).paragraphs]
    assert "2. Công tác tuyên truyền, giáo dục" in paragraphs
    draft = staff.get(f"{PAGE}/report.docx")
    assert draft.status_code == 200
    assert any("Tổng số đơn vị phải báo cáo" in p.text for p in docx.Document(io.BytesIO(draft.content)).paragraphs)
    own = docx.Document()
    own.add_paragraph("Số buổi: {{ tong.so_buoi }}; đã nộp {{ thong_ke.da_nop }}.")
    buffer = io.BytesIO()
    own.save(buffer)
    page = staff.get(PAGE)
    filled = staff.post(
        f"{PAGE}/report.docx",
        data={"csrf": csrf_of(page.text)},
        files={"template": ("mau-so.docx", buffer.getvalue(), "application/octet-stream")},
    )
    assert filled.status_code == 200
    text = docx.Document(io.BytesIO(filled.content)).paragraphs[0].text
    assert re.fullmatch(r"Số buổi: [\d.]+; đã nộp \d+\.", text), text
    bad = staff.post(
        f"{PAGE}/report.docx",
        data={"csrf": csrf_of(page.text)},
        files={"template": ("mau-so.docx", b"PK not a docx", "application/octet-stream")},
        follow_redirects=False,
    )
    assert bad.status_code == 303 and flash(staff, PAGE).startswith("error: Không đọc được tệp mẫu báo cáo")


def test_without_template_the_page_says_so_and_login_is_required(master: Path, tmp_path: Path):
    settings = copy_of(master, tmp_path)
    client = make_client(settings)
    assert client.get(PAGE, follow_redirects=False).status_code in (302, 303)
    assert login(client).status_code == 303
    page = client.get(PAGE)
    assert "Đợt báo cáo này chưa có mẫu báo cáo" in page.text
    assert openpyxl.load_workbook(io.BytesIO(client.get("/c/antq-2023/consolidation.xlsx").content)).sheetnames[0] == (
        "Tổng hợp"
    )
