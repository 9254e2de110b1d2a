"""The roster pages over HTTP: login and CSRF on every route, an uploaded list previewed then applied (exactly what
was previewed), replace deactivating, an institution edited with Vietnamese validation messages, the Excel export;
every change in the change log with the logged-in user."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from mailbot import store
from mailbot.campaigns import roster
from mailbot.campaigns.roster_import import imported
from mailbot.config import Settings
from mailbot.models import Institution
from tests.test_roster_files import BAD_ROW, messy_workbook
from tests.test_web import (  # noqa: F401 - fixtures
    USER,
    C,
    TestClient,
    client,
    csrf_of,
    demo,
    demo_master,
    flash,
    staff,
    status_of,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GETS = ["/roster", "/roster/export.xlsx", "/roster/i/THPT-NQ"]
POSTS = ["/roster/preview", "/roster/apply", "/roster/i/THPT-NQ"]


def roster_now(settings: Settings) -> dict[str, Institution]:
    with store.connect(settings.db_url).connect() as conn:
        return imported(conn)


def roster_actions(settings: Settings) -> list[tuple[str, str, str]]:
    a = store.actions
    with store.connect(settings.db_url).connect() as conn:
        rows = conn.execute(select(a.c.action, a.c.actor, a.c.detail).where(a.c.actor == USER).order_by(a.c.id))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def upload(staff: TestClient, path: Path, *, replace: bool = False):  # type: ignore[no-untyped-def]
    token = csrf_of(staff.get("/roster").text)
    data = {"csrf": token, **({"replace": "1"} if replace else {})}
    with path.open("rb") as handle:
        return staff.post(
            "/roster/preview", data=data, files={"file": (path.name, handle, XLSX)}, follow_redirects=False
        )


def apply_form(page: str) -> dict[str, str]:
    form = re.search(r'<form[^>]*id="roster-apply-form".*?</form>', page, re.S)
    assert form, "no apply form on the preview page"
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)))


@pytest.mark.parametrize("path", GETS)
def test_roster_pages_need_a_login(client: TestClient, path: str) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", POSTS)
def test_roster_posts_need_a_login_and_the_form_token(
    client: TestClient, demo: Settings, path: str, tmp_path: Path
) -> None:
    before = roster_now(demo)
    form = {"name": "Đổi tên", "group": "THPT", "emails": "x@haiphong.edu.vn", "sha256": "0" * 64}
    anonymous = client.post(path, data={**form, "csrf": "x"}, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    from tests.test_web import login

    assert login(client).status_code == 303
    for extra in ({}, {"csrf": "wrong-token"}):
        with messy_workbook(tmp_path / "ds.xlsx").open("rb") as handle:
            r = client.post(path, data={**form, **extra}, files={"file": ("ds.xlsx", handle, XLSX)})
        assert r.status_code == 403 and "Biểu mẫu đã hết hiệu lực" in r.text
    assert roster_now(demo) == before and roster_actions(demo) == []
    assert not any((demo.data_dir / "roster-uploads").glob("*"))  # nothing kept from a refused upload


def test_preview_then_apply_a_messy_workbook(staff: TestClient, demo: Settings, tmp_path: Path) -> None:
    page = upload(staff, messy_workbook(tmp_path / "danh-sách.xlsx"))
    assert page.status_code == 200
    text = page.text
    assert "Đơn vị được thêm (2)" in text and "Trường THPT Tô Hiệu" in text and "THPT-TS-2" in text
    assert "Đơn vị được sửa thông tin (2)" in text
    assert "thptngoquyen@haiphong.edu.vn → <b>thptngoquyen@haiphong.edu.vn, vanthu.ngoquyen@haiphong.edu.vn</b>" in text
    assert "Người liên hệ: (trống) → <b>Nguyễn Thị Hoa</b>" in text
    assert f"Dòng {BAD_ROW}: địa chỉ thư điện tử không hợp lệ: khong-phai-dia-chi" in text
    assert "ngừng theo dõi <b>0</b>" in text
    assert "THPT-TH" not in roster_now(demo)  # a preview changes nothing

    done = staff.post("/roster/apply", data=apply_form(text), follow_redirects=False)
    assert done.status_code == 303
    assert flash(staff, "/roster") == (
        "ok: Đã cập nhật danh sách đơn vị từ tệp danh-sách.xlsx: thêm 2, cập nhật 2, kích hoạt lại 0, ngừng theo dõi "
        "0 đơn vị."
    )
    now = roster_now(demo)
    assert now["THPT-TH"].emails == ("thpttohieu@haiphong.edu.vn", "hieutruong.tohieu@haiphong.edu.vn")
    assert (now["THPT-NQ"].contact, now["THPT-NQ"].phone) == ("Nguyễn Thị Hoa", "0912345678")
    (log,) = roster_actions(demo)
    assert log[0] == "roster_import" and "danh-sách.xlsx (trang web): thêm 2, cập nhật 2" in log[2]
    assert not any((demo.data_dir / "roster-uploads").glob("*"))  # the applied upload is not kept
    again = staff.post("/roster/apply", data=apply_form(text), follow_redirects=False)  # the same form twice
    assert again.status_code == 303 and len(roster_actions(demo)) == 1
    assert "không còn trên máy chủ" in flash(staff, "/roster")


def test_apply_refuses_a_plan_other_than_the_one_previewed(staff: TestClient, demo: Settings, tmp_path: Path) -> None:
    text = upload(staff, messy_workbook(tmp_path / "ds.xlsx")).text
    form = apply_form(text)
    engine = store.connect(demo.db_url)
    with store.atomic(engine) as conn:  # someone else adds Tô Hiệu meanwhile
        store.upsert_institutions(conn, [Institution("THPT-TH", "Trường THPT Tô Hiệu", "THPT", ())])
    again = staff.post("/roster/apply", data=form)
    assert again.status_code == 200 and "đã thay đổi kể từ khi xem trước" in again.text
    assert "Đơn vị được thêm (1)" in again.text and roster_actions(demo) == []
    assert roster_now(demo)["THPT-NQ"].contact == ""
    staff.post("/roster/apply", data=apply_form(again.text))
    assert roster_now(demo)["THPT-NQ"].contact == "Nguyễn Thị Hoa"


def test_replace_deactivates_those_left_out(staff: TestClient, demo: Settings, tmp_path: Path) -> None:
    everyone = list(roster_now(demo).values())
    gone = [i for i in everyone if i.group == "Phòng GDĐT"]  # the district offices, abolished
    path = tmp_path / "sau-sap-nhap.csv"
    roster.write_csv(path, [i for i in everyone if i not in gone])
    text = upload(staff, path, replace=True).text
    assert f"Đơn vị ngừng theo dõi ({len(gone)})" in text and "Phòng GDĐT quận Hồng Bàng" in text
    assert apply_form(text)["replace"] == "1"
    staff.post("/roster/apply", data=apply_form(text))
    now = roster_now(demo)
    assert all(not now[i.code].active for i in gone) and sum(i.active for i in now.values()) == len(everyone) - len(
        gone
    )
    counted = {i["code"] for i in status_of(demo)["institutions"] if i["active"]}  # a removed one's report stays
    assert counted and not counted & {i.code for i in gone}
    assert "Phòng GDĐT quận Hồng Bàng" in staff.get("/roster").text  # still listed, as no longer followed
    assert "Ngừng theo dõi" in staff.get("/roster").text


def test_replace_from_a_file_with_bad_rows_is_blocked(staff: TestClient, demo: Settings, tmp_path: Path) -> None:
    text = upload(staff, messy_workbook(tmp_path / "ds.xlsx"), replace=True).text
    assert 'id="roster-blocked"' in text and "không được có dòng lỗi" in text
    assert 'id="roster-apply-form"' not in text
    sha = re.search(r"[0-9a-f]{64}", str(list((demo.data_dir / "roster-uploads").iterdir()))).group(0)  # type: ignore[union-attr]
    token = csrf_of(staff.get("/roster").text)
    forced = staff.post("/roster/apply", data={"csrf": token, "sha256": sha, "replace": "1", "plan": "x"})
    assert 'id="roster-blocked"' in forced.text and roster_actions(demo) == []
    assert all(i.active for i in roster_now(demo).values())


def test_an_unusable_upload_is_explained(staff: TestClient, tmp_path: Path) -> None:
    (tmp_path / "ds.pdf").write_bytes(b"%PDF-1.4")
    upload(staff, tmp_path / "ds.pdf")
    assert "Tệp phải có định dạng Excel (.xlsx) hoặc CSV (.csv)" in flash(staff, "/roster")
    (tmp_path / "ds.csv").write_text("STT,Đơn vị\n1,Trường A\n", encoding="utf-8")
    upload(staff, tmp_path / "ds.csv")
    assert "Không tìm thấy cột địa chỉ thư điện tử" in flash(staff, "/roster")


def test_edit_an_institution(staff: TestClient, demo: Settings) -> None:
    page = staff.get("/roster/i/THPT-NQ")
    assert page.status_code == 200 and 'id="institution-edit"' in page.text
    form = {
        "csrf": csrf_of(page.text),
        "name": "Trường THPT Ngô Quyền",
        "group": "__new__",
        "new_group": "THPT công lập",
        "emails": "thptngoquyen@haiphong.edu.vn\nvanthu.nq@haiphong.edu.vn",
        "contact": "Nguyễn Thị Hoa",
        "phone": "0225 3846 111",
    }  # "active" unticked: no longer followed
    done = staff.post("/roster/i/THPT-NQ", data=form, follow_redirects=False)
    assert done.status_code == 303
    shown = flash(staff, "/roster/i/THPT-NQ")
    assert shown.startswith("ok: Đã lưu thông tin đơn vị Trường THPT Ngô Quyền: nhóm: “THPT” → “THPT công lập”")
    inst = roster_now(demo)["THPT-NQ"]
    assert inst == Institution(
        "THPT-NQ",
        "Trường THPT Ngô Quyền",
        "THPT công lập",
        ("thptngoquyen@haiphong.edu.vn", "vanthu.nq@haiphong.edu.vn"),
        False,
        "Nguyễn Thị Hoa",
        "0225 3846 111",
    )
    ((action, actor, detail),) = roster_actions(demo)
    assert (
        (action, actor) == ("roster_edit", USER) and detail.startswith("THPT-NQ: nhóm:") and "ngừng theo dõi" in detail
    )
    page = staff.get("/roster/i/THPT-NQ").text
    assert "Sửa thông tin đơn vị" in page and "ngừng theo dõi" in page  # its change log
    shown_in_status = {i["code"]: i for i in status_of(demo)["institutions"]}
    assert shown_in_status["THPT-NQ"]["active"] is False  # its report stays visible, outside every count


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"emails": "thptngoquyen@haiphong.edu.vn, khong-hop-le"}, "Địa chỉ thư điện tử “khong-hop-le” không hợp lệ"),
        ({"name": "  "}, "Vui lòng nhập tên đơn vị."),
        ({"group": "__new__", "new_group": ""}, "Vui lòng nhập tên nhóm mới."),
        ({"group": "Nhóm gõ tay"}, "Nhóm “Nhóm gõ tay” không có trong danh sách"),
        ({"phone": "gọi Zalo"}, "Số điện thoại không hợp lệ"),
    ],
)
def test_edit_is_checked_in_vietnamese(staff: TestClient, demo: Settings, change: dict[str, str], words: str) -> None:
    before = roster_now(demo)
    page = staff.get("/roster/i/THPT-NQ").text
    form = {"csrf": csrf_of(page), "name": "Trường THPT Ngô Quyền", "group": "THPT", "emails": "a@haiphong.edu.vn"}
    r = staff.post("/roster/i/THPT-NQ", data={**form, "active": "1", **change})
    assert r.status_code == 400 and words in r.text and "Chưa lưu được thông tin đơn vị" in r.text
    assert roster_now(demo) == before and roster_actions(demo) == []


def test_edit_of_an_unknown_institution_is_not_found(staff: TestClient) -> None:
    assert staff.get("/roster/i/KHONG-CO").status_code == 404
    token = csrf_of(staff.get("/roster").text)
    r = staff.post("/roster/i/KHONG-CO", data={"csrf": token, "name": "A", "group": "THPT", "emails": ""})
    assert r.status_code == 404


def test_export_downloads_the_roster(staff: TestClient, demo: Settings) -> None:
    r = staff.get("/roster/export.xlsx")
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    assert "danh-sach-don-vi-" in r.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(r.content)).worksheets[0]
    codes = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert codes == [i.code for i in roster_now(demo).values()]


def test_roster_page_lists_and_links(staff: TestClient) -> None:
    page = staff.get("/roster").text
    assert 'id="roster-upload"' in page and 'name="replace"' in page and 'id="roster-export"' in page
    assert 'href="/roster/i/THPT-NQ"' in page and "Trường THPT Ngô Quyền" in page
    assert 'href="/roster/i/THPT-NQ"' in staff.get(f"{C}/institutions/THPT-NQ").text
