"""The campaign pages over HTTP: create with the plan and the template, Vietnamese validation, edit, close into the
archive, and the call for reports (preview, then one queued email per institution)."""

from __future__ import annotations

import io
import re

import docx
import pytest
from sqlalchemy import select

from mailbot import store
from mailbot.campaigns import catalog
from mailbot.config import Settings
from tests.test_web import csrf_of, demo, demo_master, login, make_client  # noqa: F401 - fixtures

NEW = {
    "id": "hk1-2024",
    "title": "Báo cáo sơ kết học kỳ I năm học 2023-2024",
    "plan": "Số 12/KH-SGDĐT ngày 02/01/2024",
    "opens": "02/01/2024 08:00",
    "deadline": "15/01/2024 17:00",
    "groups": ["THPT", "GDNN-GDTX"],
    "paper": "either",
    "contact": "bà Nguyễn Thị Lan, 0225.3841.234",
    "keywords": "học kỳ I, sơ kết",
    "accept_late_days": "30",
}


def template_bytes() -> bytes:
    d = docx.Document()
    d.add_paragraph("MẪU BÁO CÁO SƠ KẾT HỌC KỲ I")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


@pytest.fixture
def staff(demo: Settings):  # type: ignore[no-untyped-def]  # noqa: F811
    client = make_client(demo)
    assert login(client).status_code == 303
    return client


def files() -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("attachments", ("Kế hoạch 12-KH-SGDĐT.pdf", b"%PDF-1.4 plan", "application/pdf")),
        ("template", ("Mẫu báo cáo.docx", template_bytes(), "application/octet-stream")),
    ]


def create(staff, data: dict, with_files: bool = True):  # type: ignore[no-untyped-def,type-arg]
    token = csrf_of(staff.get("/campaigns/new").text)
    return staff.post(
        "/campaigns/new", data={**data, "csrf": token}, files=files() if with_files else None, follow_redirects=False
    )


def test_campaign_pages_need_a_login_and_a_csrf_token(demo: Settings) -> None:  # noqa: F811
    anonymous = make_client(demo, user=False)
    for path in ("/campaigns", "/campaigns/new", "/c/antq-2023/settings", "/c/antq-2023/announce"):
        r = anonymous.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    for path in ("/campaigns/new", "/c/antq-2023/settings", "/c/antq-2023/close", "/c/antq-2023/announce"):
        assert anonymous.post(path, data={"title": "x"}, follow_redirects=False).status_code == 303
    client = make_client(demo)
    assert login(client).status_code == 303
    forged = client.post("/campaigns/new", data={**NEW, "csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    closing = client.post("/c/antq-2023/close", data={"csrf": "forged"}, follow_redirects=False)
    assert closing.status_code == 403
    engine = store.connect(demo.db_url)
    with engine.connect() as conn:
        assert catalog.catalog(conn).get("antq-2023").closed is None
        assert [c.id for c in catalog.catalog(conn).all] == ["antq-2023"]


def test_validation_speaks_vietnamese_and_keeps_what_was_typed(staff, demo: Settings) -> None:  # noqa: F811
    bad = create(staff, {**NEW, "deadline": "31/02/2024", "groups": ["THPT", "Trung tâm XYZ"]}, with_files=False)
    assert bad.status_code == 400
    assert "Hạn nộp không hợp lệ" in bad.text and 'value="Báo cáo sơ kết học kỳ I năm học 2023-2024"' in bad.text
    unknown = create(staff, {**NEW, "groups": ["THPT", "Trung tâm XYZ"]}, with_files=False)
    assert unknown.status_code == 400 and "Nhóm không có trong danh sách đơn vị: Trung tâm XYZ" in unknown.text
    early = create(staff, {**NEW, "opens": "20/01/2024 08:00"}, with_files=False)
    assert early.status_code == 400 and "Hạn nộp phải sau ngày bắt đầu nhận báo cáo" in early.text
    token = csrf_of(staff.get("/campaigns/new").text)
    wrong_template = staff.post(
        "/campaigns/new",
        data={**NEW, "csrf": token},
        files=[("template", ("mau.xlsx", b"PK\x03\x04 not a docx", "application/octet-stream"))],
    )
    assert wrong_template.status_code == 400 and "Mẫu báo cáo phải là tệp Word .docx" in wrong_template.text
    engine = store.connect(demo.db_url)
    with engine.connect() as conn:
        assert [c.id for c in catalog.catalog(conn).all] == ["antq-2023"]  # nothing was saved


def test_create_edit_close_and_browse_the_archive(staff, demo: Settings) -> None:  # noqa: F811
    made = create(staff, NEW)
    assert made.status_code == 303 and made.headers["location"] == "/c/hk1-2024/settings"
    page = staff.get("/c/hk1-2024/settings").text
    assert "Kế hoạch 12-KH-SGDĐT.pdf" in page and "Mẫu báo cáo.docx" in page and "Đã tạo đợt báo cáo" in page
    engine = store.connect(demo.db_url)
    with engine.connect() as conn:
        c = catalog.catalog(conn, demo.zone).get("hk1-2024")
        names = [(f.role, f.name) for f in catalog.files_of(conn, "hk1-2024")]
    assert (c.deadline.day, c.deadline.hour, c.deadline.utcoffset().total_seconds()) == (15, 17, 7 * 3600)  # type: ignore[union-attr]
    assert c.groups == ("THPT", "GDNN-GDTX") and c.paper.value == "either" and c.accept_late_days == 30
    assert c.plan == "số 12/KH-SGDĐT ngày 02/01/2024" and c.keywords == ("học kỳ I", "sơ kết")
    assert names == [("attachment", "Kế hoạch 12-KH-SGDĐT.pdf"), ("template", "Mẫu báo cáo.docx")]

    token = csrf_of(page)
    saved = staff.post("/c/hk1-2024/settings", data={**NEW, "deadline": "20/01/2024", "csrf": token})
    assert saved.status_code == 200 and "Đã lưu thông tin đợt báo cáo" in saved.text
    with engine.connect() as conn:
        after = catalog.catalog(conn, demo.zone).get("hk1-2024")
    assert (after.deadline.day, after.deadline.hour, after.deadline.minute) == (20, 23, 59)  # a bare date: that day

    closed = staff.post("/c/hk1-2024/close", data={"csrf": token}, follow_redirects=True)
    assert "Đã kết thúc đợt báo cáo" in closed.text
    listing = staff.get("/campaigns").text
    archive = listing.split("Các đợt đã kết thúc", 1)[1]
    assert "Báo cáo sơ kết học kỳ I năm học 2023-2024" in archive
    assert staff.get("/c/hk1-2024/").status_code == 200  # still browsable
    header = staff.get("/c/antq-2023/").text.split("<main", 1)[0]
    assert "hk1-2024" not in header  # no longer in the header
    log = staff.get("/c/antq-2023/log").text
    assert "Tạo đợt hk1-2024" in log and "Kết thúc đợt hk1-2024" in log and "lan.nguyen" in log


def test_the_call_for_reports_preview_then_send(staff, demo: Settings) -> None:  # noqa: F811
    create(staff, NEW)
    preview = staff.get("/c/hk1-2024/announce")
    assert preview.status_code == 200
    count = int(re.search(r"<b>(\d+)</b> đơn vị sẽ được gửi thư", preview.text).group(1))  # type: ignore[union-attr]
    engine = store.connect(demo.db_url)
    with engine.connect() as conn:
        expected = [i for i in store.load_institutions(conn, active_only=True) if i.group in NEW["groups"]]
    with_address = [i for i in expected if i.emails]
    assert count == len(with_address) > 0
    assert "Kính gửi: " in preview.text and "Kế hoạch số 12/KH-SGDĐT ngày 02/01/2024" in preview.text
    sent = staff.post("/c/hk1-2024/announce", data={"csrf": csrf_of(preview.text)}, follow_redirects=True)
    assert f"Đã đưa {count} thư thông báo vào hàng gửi" in sent.text
    with engine.connect() as conn:
        rows = list(conn.execute(select(store.outbox).where(store.outbox.c.kind == "announce")))
    assert len(rows) == count and {r.campaign_id for r in rows} == {"hk1-2024"}
    again = staff.post("/c/hk1-2024/announce", data={"csrf": csrf_of(preview.text)}, follow_redirects=True)
    assert "tất cả đã được gửi thông báo trước đó" in again.text
    inst = with_address[0]
    page = staff.get(f"/c/hk1-2024/institutions/{inst.code}").text
    assert "Công văn / thông báo về đợt báo cáo" in page
