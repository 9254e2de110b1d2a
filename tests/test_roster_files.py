"""Roster files as staff keep them: a title row, a merged two-row header, no code column, "a / b" addresses, an STT
column, section rows; codes kept or made stable so a re-import changes nothing; `roster import --dry-run`,
`roster list --json` and `roster export` then import again (CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook

from mailbot import store
from mailbot.campaigns import roster
from mailbot.campaigns.roster_import import import_configured, import_file
from mailbot.cli import cli
from mailbot.demo import samples
from mailbot.demo.build import build_demo
from mailbot.errors import RosterError
from mailbot.models import Institution

KNOWN = tuple(roster.from_rows(samples.load_demo_roster()))
BAD_ROW = 13  # the row of messy_workbook's bad address, as Excel numbers it


def messy_workbook(path: Path) -> Path:
    """A list as a department keeps it in Excel."""
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws["A1"] = "SỞ GIÁO DỤC VÀ ĐÀO TẠO HẢI PHÒNG"
    ws.merge_cells("A1:E1")
    ws["A2"] = "DANH SÁCH ĐƠN VỊ NỘP BÁO CÁO NĂM HỌC 2023 - 2024"
    ws.merge_cells("A2:E2")
    ws["A4"], ws["B4"], ws["C4"] = "STT", "Tên đơn vị", "Thông tin liên hệ"
    ws.merge_cells("A4:A5")
    ws.merge_cells("B4:B5")
    ws.merge_cells("C4:E4")
    ws["C5"], ws["D5"], ws["E5"] = "Địa chỉ email", "Người liên hệ", "Điện thoại"
    ws["A6"] = "I. KHỐI THPT"
    ws.merge_cells("A6:E6")
    rows = [
        (7, [1, "Trường THPT Ngô Quyền", "thptngoquyen@haiphong.edu.vn / vanthu.ngoquyen@haiphong.edu.vn",
             "Nguyễn Thị Hoa", 912345678]),
        (8, [2, "Trường THPT Tô Hiệu", "thpttohieu@haiphong.edu.vn;hieutruong.tohieu@haiphong.edu.vn", "", ""]),
        (9, [3, "Trường THPT Thủy Sinh", "thptthuysinh@haiphong.edu.vn", "Trần Văn Nam", "0225 3822 111"]),
        (11, ["II", "Khối Trung tâm GDNN-GDTX", None, None, None]),
        (12, [4, "Trung tâm GDNN-GDTX huyện An Dương", "ttgdnngdtxanduong@haiphong.edu.vn\nvanthu.ttad@haiphong.edu.vn",
              None, None]),
        (BAD_ROW, [5, "Trung tâm GDNN-GDTX huyện Mới", "khong-phai-dia-chi", None, None]),
    ]  # fmt: skip
    for number, values in rows:
        for col, value in enumerate(values, start=1):
            ws.cell(number, col, value)
    book.save(path)
    return path


def test_a_messy_workbook_is_read_as_staff_meant_it(tmp_path: Path) -> None:
    read = roster.read(messy_workbook(tmp_path / "danh-sach.xlsx"), KNOWN)
    found = {i.name: i for i in read.institutions}
    assert list(found) == [
        "Trường THPT Ngô Quyền",
        "Trường THPT Tô Hiệu",
        "Trường THPT Thủy Sinh",
        "Trung tâm GDNN-GDTX huyện An Dương",
    ]
    nq = found["Trường THPT Ngô Quyền"]
    assert nq == Institution(
        "THPT-NQ",  # the code the roster already has for this name
        "Trường THPT Ngô Quyền",
        "THPT",  # from the section row "I. KHỐI THPT", the roster's group
        ("thptngoquyen@haiphong.edu.vn", "vanthu.ngoquyen@haiphong.edu.vn"),  # "a / b"
        True,
        "Nguyễn Thị Hoa",
        "0912345678",  # typed as a number, its leading zero lost
    )
    assert found["Trường THPT Tô Hiệu"].code == "THPT-TH"  # new: made from the name
    assert found["Trường THPT Tô Hiệu"].emails == ("thpttohieu@haiphong.edu.vn", "hieutruong.tohieu@haiphong.edu.vn")
    assert found["Trường THPT Thủy Sinh"].code == "THPT-TS-2"  # THPT-TS is Thủy Sơn's
    assert found["Trường THPT Thủy Sinh"].phone == "0225 3822 111"
    ad = found["Trung tâm GDNN-GDTX huyện An Dương"]
    assert (ad.code, ad.group) == ("TT-AD", "GDNN-GDTX")
    assert ad.emails == ("ttgdnngdtxanduong@haiphong.edu.vn", "vanthu.ttad@haiphong.edu.vn")  # one a line
    assert read.problems == (f"row {BAD_ROW}: not an email address: khong-phai-dia-chi",)
    assert read.issues[0].text_vi == f"Dòng {BAD_ROW}: địa chỉ thư điện tử không hợp lệ: khong-phai-dia-chi"
    assert read.columns == frozenset({"name", "emails", "contact", "phone"})  # STT is no field


def test_reimporting_the_same_file_changes_nothing(tmp_path: Path) -> None:
    engine = store.connect(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with store.atomic(engine) as conn:
        store.upsert_institutions(conn, KNOWN)
    path = messy_workbook(tmp_path / "danh-sach.xlsx")
    first = import_file(engine, path, actor="test")
    assert [i.code for i in first.added] == ["THPT-TH", "THPT-TS-2"]
    assert [a.code for _, a in first.changed] == ["THPT-NQ", "TT-AD"]
    again = import_file(engine, path, actor="test", dry_run=True)
    assert again.empty and again.unchanged == 4, again


def test_codes_and_groups_without_a_roster(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "Danh sách các trường\n\nTT,Tên trường,Thư điện tử,SĐT\n"
        "1,Trường THPT Ngô Quyền,a@x.vn,\n"
        "2,Trường Mầm non Hoa Sen,b@x.vn,\n",
        encoding="utf-8",
    )
    known = (Institution("T1", "Trường THPT Lê Chân", "THPT", ()),)
    read = roster.read(path, known)
    assert [(i.code, i.group) for i in read.institutions] == [("THPT-NQ", "THPT")]  # the group named in the name
    assert read.problems == ("row 5: no group: the file has no group column and the group cannot be told from the "
                             "name (add a Nhóm column)",)  # fmt: skip


def test_a_file_without_a_name_or_address_column_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("Danh sách\nSTT,Đơn vị\n1,Trường A\n", encoding="utf-8")
    with pytest.raises(roster.RosterFileError, match="missing column.*emails") as caught:
        roster.read(path)
    assert "Không tìm thấy cột địa chỉ thư điện tử" in caught.value.vi


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    settings = build_demo(tmp_path / "demo")
    import_configured(settings.roster.file, store.connect(settings.db_url))  # as the service's first start does
    return tmp_path / "demo" / "mailbot.toml"


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


def test_cli_dry_run_prints_what_would_change(demo: Path, tmp_path: Path) -> None:
    code, out = run(demo, "roster", "import", str(messy_workbook(tmp_path / "ds.xlsx")), "--replace", "--dry-run")
    assert "Thêm            THPT-TH  Trường THPT Tô Hiệu (THPT)" in out
    assert "Cập nhật        THPT-NQ  địa chỉ thư: thptngoquyen@haiphong.edu.vn → thptngoquyen@haiphong.edu.vn; " in out
    assert "người liên hệ: (trống) → Nguyễn Thị Hoa" in out
    assert "Ngừng theo dõi  PGD-HB  Phòng GDĐT quận Hồng Bàng" in out
    assert f"row {BAD_ROW}: not an email address" in out and code == 1
    _, listed = run(demo, "roster", "list", "--json")
    assert {i["code"] for i in json.loads(listed)} >= {"PGD-HB"} and "THPT-TH" not in listed  # nothing changed


def test_export_then_import_round_trips(demo: Path, tmp_path: Path) -> None:
    code, out = run(demo, "roster", "import", str(messy_workbook(tmp_path / "ds.xlsx")))
    assert code == 1  # the bad row is reported; the others are imported
    run(demo, "roster", "import", str(tmp_path / "ds.xlsx"))
    before = json.loads(run(demo, "roster", "list", "--json")[1])
    nq = next(i for i in before if i["code"] == "THPT-NQ")
    assert (nq["contact"], nq["phone"], nq["active"]) == ("Nguyễn Thị Hoa", "0912345678", True)
    assert nq["emails"] == ["thptngoquyen@haiphong.edu.vn", "vanthu.ngoquyen@haiphong.edu.vn"]

    # One institution deactivated: the export keeps it apart, so importing the export with --replace changes nothing.
    run(demo, "roster", "import", str(tmp_path / "ds.xlsx"), "--replace")  # refused: the file has a bad row
    assert all(i["active"] for i in json.loads(run(demo, "roster", "list", "--json")[1]))
    code, out = run(demo, "roster", "export", str(tmp_path / "xuat.xlsx"))
    assert code == 0 and "Đã xuất" in out, out
    sheet = load_workbook(tmp_path / "xuat.xlsx").worksheets[0]
    assert [c.value for c in sheet[1]] == ["Mã đơn vị", "Tên đơn vị", "Nhóm", "Email", "Người liên hệ", "Điện thoại"]
    assert sheet.max_row == len(before) + 1
    code, out = run(demo, "roster", "import", str(tmp_path / "xuat.xlsx"), "--replace")
    assert code == 0 and "thêm 0, cập nhật 0, kích hoạt lại 0, ngừng theo dõi 0" in out, out
    assert json.loads(run(demo, "roster", "list", "--json")[1]) == before


def test_export_refuses_another_extension(demo: Path, tmp_path: Path) -> None:
    code, out = run(demo, "roster", "export", str(tmp_path / "x.csv"))
    assert code == 2 and "FILE.xlsx" in out


def test_a_formula_in_a_name_stays_text_in_the_export(tmp_path: Path) -> None:
    from mailbot.campaigns.roster_export import export_bytes

    (tmp_path / "x.xlsx").write_bytes(export_bytes([Institution("=1+1", '=HYPERLINK("x")', "G", ())]))
    cell = load_workbook(tmp_path / "x.xlsx").worksheets[0]["B2"]
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("x")'


def test_an_old_database_gains_contact_and_phone(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE institutions (id INTEGER PRIMARY KEY, code VARCHAR(64) NOT NULL UNIQUE, name TEXT NOT NULL,"
            " grp TEXT NOT NULL, emails TEXT NOT NULL, updated_at VARCHAR(32) NOT NULL, active BOOLEAN NOT NULL "
            "DEFAULT 1)"
        )
        conn.execute(
            "INSERT INTO institutions VALUES (1, 'A', 'Trường A', 'THPT', '[]', '2023-01-01T00:00:00+00:00', 1)"
        )
    engine = store.connect(f"sqlite:///{db}")
    with engine.connect() as conn:
        (inst,) = store.load_institutions(conn)
    assert (inst.contact, inst.phone) == ("", "")


def test_roster_error_is_a_one_line_cli_message(demo: Path, tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(demo), "roster", "import", str(tmp_path / "x.csv")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "missing column(s) name, emails" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert issubclass(roster.RosterFileError, RosterError)
