"""The Excel tracker: built from a hand-made status, saved, and read back as staff (and scripts) would."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from mailbot.models import Campaign, Notice, WarningCode
from mailbot.reports.status import CampaignStatus, FileRow, InstitutionStatus, ReviewItem, Submission
from mailbot.reports.tracker_rows import (
    GROUP_HEADERS,
    REVIEW_HEADERS,
    REVIEW_SHEET,
    SUMMARY_HEADERS,
    SUMMARY_SHEET,
    sanitise_sheet_name,
    unique_sheet_name,
)
from mailbot.reports.workbook import build_tracker, save_tracker, tracker_bytes
from mailbot.wording import IDENTIFIED_BY, STATUS, warning_text
from tests.conftest import first_campaign

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
UTC = UTC
DEADLINE = datetime(2023, 12, 5, 10, 0, tzinfo=UTC)  # 17:00 in Hải Phòng
GENERATED = datetime(2023, 12, 6, 1, 30, tzinfo=UTC)  # 08:30 local
TITLE = "Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023"
SCHOOLS = "Trường THPT"
OTHERS = "Đơn vị trực thuộc/Khác"
OTHERS_SHEET = "Đơn vị trực thuộc-Khác"
LEGACY_DOC, TOO_LARGE = Notice(WarningCode.LEGACY_DOC), Notice(WarningCode.TOO_LARGE)


def _file(name: str, *, path: str = "archive/x", sha: str = "aa", warnings: tuple[Notice, ...] = ()) -> FileRow:
    return FileRow(name=name, kind="docx", sha256=sha, size=1000, path=path, warnings=warnings)


def _submission(
    pk: int, at: datetime, files: tuple[FileRow, ...], *, by: str = "address", warnings: tuple[Notice, ...] = ()
) -> Submission:
    return Submission(
        pk=pk,
        message_id=f"<{pk}@truong.edu.vn>",
        sender=f"s{pk}@haiphong.edu.vn",
        subject="Báo cáo",
        received_at=at,
        identified_by=by,
        late=at > DEADLINE,
        files=files,
        warnings=warnings,
    )


def _inst(code: str, name: str, group: str, *subs: Submission) -> InstitutionStatus:
    return InstitutionStatus(code=code, name=name, group=group, submissions=subs, deadline=DEADLINE)


ON_TIME_AT = datetime(2023, 12, 4, 7, 5, tzinfo=UTC)  # 14:05 local
LATE_AT = datetime(2023, 12, 5, 12, 15, tzinfo=UTC)  # 19:15 local
REVIEW_AT = datetime(2023, 12, 5, 2, 0, tzinfo=UTC)  # 09:00 local


@pytest.fixture()
def cs() -> CampaignStatus:
    on_time = _inst(
        "THPT01",
        "Trường THPT Ngô Quyền",
        SCHOOLS,
        _submission(
            1, ON_TIME_AT, (_file("Báo cáo ANTQ.docx", sha="a1", warnings=(LEGACY_DOC,)), _file("logo.png", path=""))
        ),
        # the same file sent again is listed once; the warning with a detail collapses into one sentence
        _submission(
            2,
            ON_TIME_AT + timedelta(hours=1),
            (_file("Báo cáo ANTQ.docx", sha="a1", warnings=(LEGACY_DOC,)), _file("Phụ lục.pdf", sha="p1")),
            warnings=(Notice(WarningCode.TOO_LARGE, "31457280"),),
        ),
    )
    late = _inst(
        "THPT02",
        "Trường THPT Trần Phú",
        SCHOOLS,
        _submission(
            3, LATE_AT, (_file("bao cao.docx", sha="b1"),), by="name", warnings=(Notice(WarningCode.TOO_LARGE, "1"),)
        ),
    )
    missing = _inst("TT01", "Trung tâm Giáo dục thường xuyên Hải Phòng", OTHERS)
    staff = _inst(
        "TT02",
        "Trung tâm Kỹ thuật tổng hợp – Hướng nghiệp",
        OTHERS,
        _submission(4, ON_TIME_AT, (_file("BC.docx", sha="c1"),), by="staff"),
    )
    review = (
        ReviewItem(
            pk=12,
            message_id="<r@gmail.com>",
            sender="nguoila@gmail.com",
            subject="Gửi báo cáo",
            received_at=REVIEW_AT,
            reason="không nhận ra đơn vị gửi thư",
            state="review",
            files=(_file("Báo cáo.docx", path="review/x"), _file("chu-ky.png", path="")),
        ),
        ReviewItem(
            pk=13,
            message_id="<x@unreadable.mailbot>",
            sender="",
            subject="",
            received_at=REVIEW_AT,
            reason="internal error while reading: ValueError: boom",
            state="error",
            files=(),
        ),
    )
    campaign = Campaign(id="antq-2023", title=TITLE, deadline=DEADLINE)
    return CampaignStatus(campaign=campaign, institutions=(on_time, late, missing, staff), review=review)


@pytest.fixture()
def saved(cs: CampaignStatus, tmp_path: Path) -> openpyxl.Workbook:
    path = save_tracker(cs, ZONE, tmp_path / "out" / "theo-doi.xlsx", generated_at=GENERATED)
    assert path == tmp_path / "out" / "theo-doi.xlsx"
    assert [p.name for p in path.parent.iterdir()] == ["theo-doi.xlsx"]  # no partial file left behind
    return openpyxl.load_workbook(path)


def _rows(ws, first: int = 2) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [row for row in ws.iter_rows(min_row=first, values_only=True) if any(v is not None for v in row)]


def test_sheet_names_keep_diacritics_and_are_legal(saved: openpyxl.Workbook) -> None:
    assert saved.sheetnames == [SUMMARY_SHEET, SCHOOLS, OTHERS_SHEET, REVIEW_SHEET]


def test_summary_header_lines(saved: openpyxl.Workbook) -> None:
    ws = saved[SUMMARY_SHEET]
    assert ws["A1"].value == TITLE
    assert ws["A2"].value == "Hạn nộp: 17:00 ngày 05/12/2023"
    assert ws["A3"].value == "Cập nhật lúc 08:30 ngày 06/12/2023"
    assert ws["A4"].value == "Thư chờ cán bộ xem xét: 2"


def test_summary_counts_per_group_and_total(saved: openpyxl.Workbook) -> None:
    ws = saved[SUMMARY_SHEET]
    table = [row[:6] for row in ws.iter_rows(min_row=6, max_row=9, values_only=True)]
    assert table[0] == SUMMARY_HEADERS
    assert table[1] == (SCHOOLS, 2, 1, 1, 0, 1.0)
    assert table[2] == (OTHERS, 2, 1, 0, 1, 0.5)
    assert table[3] == ("Tổng cộng", 4, 2, 1, 1, 0.75)
    assert ws["F7"].number_format.endswith("%")
    assert ws["A8"].hyperlink.location == f"'{OTHERS_SHEET}'!A1"


def test_summary_chart_is_stacked_with_three_series(saved: openpyxl.Workbook) -> None:
    charts = saved[SUMMARY_SHEET]._charts
    assert len(charts) == 1
    chart = charts[0]
    assert chart.grouping == "stacked"
    assert len(chart.series) == 3
    titles = [s.tx.strRef.f.replace("$", "") for s in chart.series]
    assert titles == [f"'{SUMMARY_SHEET}'!C6", f"'{SUMMARY_SHEET}'!D6", f"'{SUMMARY_SHEET}'!E6"]  # the status words
    for series in chart.series:  # the group names as text, without the total row
        assert series.cat.strRef.f.replace("$", "") == f"'{SUMMARY_SHEET}'!A7:A8"
    assert chart.x_axis.title is not None and chart.y_axis.title is not None


def test_group_rows_match_the_status(saved: openpyxl.Workbook) -> None:
    ws = saved[SCHOOLS]
    assert tuple(c.value for c in ws[1]) == GROUP_HEADERS
    first, second = _rows(ws)
    assert first == (
        1,
        "THPT01",
        "Trường THPT Ngô Quyền",
        STATUS["on_time"],
        datetime(2023, 12, 4, 14, 5),
        2,
        "Báo cáo ANTQ.docx\nPhụ lục.pdf",
        None,
        None,
        None,
        "Không yêu cầu",  # the campaign does not ask for the stamped copy (paper = "none"), and none came
        IDENTIFIED_BY["address"],
        f"{warning_text(LEGACY_DOC)}\n{warning_text(TOO_LARGE)}",
    )
    assert second == (
        2,
        "THPT02",
        "Trường THPT Trần Phú",
        STATUS["late"],
        datetime(2023, 12, 5, 19, 15),
        1,
        "bao cao.docx",
        None,
        None,
        None,
        "Không yêu cầu",  # the campaign does not ask for the stamped copy (paper = "none"), and none came
        IDENTIFIED_BY["name"],
        warning_text(TOO_LARGE),
    )
    assert ws["E2"].number_format == "dd/mm/yyyy hh:mm"
    assert ws["G2"].alignment.wrap_text


def test_missing_institution_row(saved: openpyxl.Workbook) -> None:
    missing, staff = _rows(saved[OTHERS_SHEET])
    assert missing == (
        1,
        "TT01",
        "Trung tâm Giáo dục thường xuyên Hải Phòng",
        "Chưa nộp",
        None,
        0,
        None,
        None,
        None,
        None,
        "Không yêu cầu",  # the campaign does not ask for the stamped copy (paper = "none"), and none came
        None,
        None,
    )
    assert staff[1:4] == ("TT02", "Trung tâm Kỹ thuật tổng hợp – Hướng nghiệp", "Đúng hạn")
    assert staff[11] == "Cán bộ xác nhận"


def test_header_frozen_filtered_and_printable(saved: openpyxl.Workbook) -> None:
    for name in (SCHOOLS, OTHERS_SHEET, REVIEW_SHEET):
        ws = saved[name]
        assert ws.freeze_panes == "A2"
        assert ws["A1"].font.b
        assert ws["A1"].fill.fgColor.rgb.endswith("D9E1F2")
        assert ws.page_setup.orientation == "landscape"
        assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert saved[SCHOOLS].auto_filter.ref == "A1:M3"
    assert saved[REVIEW_SHEET].auto_filter.ref == "A1:F3"


def test_column_widths_fit_within_bounds(saved: openpyxl.Workbook) -> None:
    from mailbot.reports.workbook import GROUP_WIDTHS, LINE_HEIGHT

    ws = saved[OTHERS_SHEET]
    widths = [ws.column_dimensions[chr(ord("A") + n)].width for n in range(13)]
    assert all(w <= cap for w, cap in zip(widths, GROUP_WIDTHS))
    assert sum(widths) <= 165  # printed on A4 landscape fitted to the width, the text stays near 7.5 pt
    # a long name wraps in its narrow column, in a row tall enough for it
    assert widths[2] < len("Trung tâm Kỹ thuật tổng hợp – Hướng nghiệp") and ws["C3"].alignment.wrap_text
    assert ws.row_dimensions[3].height >= 2 * LINE_HEIGHT


def test_status_cells_are_coloured_per_status(saved: openpyxl.Workbook) -> None:
    fills = {
        saved[SCHOOLS]["D2"].value: saved[SCHOOLS]["D2"].fill.fgColor.rgb,
        saved[SCHOOLS]["D3"].value: saved[SCHOOLS]["D3"].fill.fgColor.rgb,
        saved[OTHERS_SHEET]["D2"].value: saved[OTHERS_SHEET]["D2"].fill.fgColor.rgb,
    }
    assert set(fills) == set(STATUS.values())
    assert len(set(fills.values())) == 3
    assert saved[OTHERS_SHEET]["D3"].fill.fgColor.rgb == fills[STATUS["on_time"]]


def test_review_sheet_rows(saved: openpyxl.Workbook) -> None:
    ws = saved[REVIEW_SHEET]
    assert tuple(c.value for c in ws[1]) == REVIEW_HEADERS
    first, second = _rows(ws)
    assert first == (
        12,
        "nguoila@gmail.com",
        "Gửi báo cáo",
        datetime(2023, 12, 5, 9, 0),
        "không nhận ra đơn vị gửi thư",
        "Báo cáo.docx",
    )
    assert second[0] == 13
    assert second[4].startswith(warning_text(Notice(WarningCode.UNREADABLE_MESSAGE)))
    assert "ValueError: boom" in second[4]
    assert ws["A2"].number_format == '"#"0'


def test_tracker_bytes_load(cs: CampaignStatus) -> None:
    data = tracker_bytes(cs, ZONE, generated_at=GENERATED)
    assert data[:2] == b"PK"
    assert openpyxl.load_workbook(io.BytesIO(data)).sheetnames[0] == SUMMARY_SHEET


def test_empty_review_queue_still_has_its_sheet(cs: CampaignStatus) -> None:
    quiet = CampaignStatus(campaign=cs.campaign, institutions=cs.institutions, review=())
    wb = build_tracker(quiet, ZONE, generated_at=GENERATED)
    assert wb[REVIEW_SHEET].max_row == 1
    assert wb[REVIEW_SHEET].auto_filter.ref == "A1:F1"
    assert wb[SUMMARY_SHEET]["A4"].value == "Thư chờ cán bộ xem xét: 0"


def test_naive_generated_at_is_refused(cs: CampaignStatus) -> None:
    with pytest.raises(ValueError):
        build_tracker(cs, ZONE, generated_at=datetime(2023, 12, 6, 8, 30))


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("Đơn vị trực thuộc/Khác", "Đơn vị trực thuộc-Khác"),
        ("Mầm non [A]: *?\\", "Mầm non -A-- ---"),
        ("'Tiểu học'", "Tiểu học"),
        ("", "Nhóm"),
        ("Trường Trung học cơ sở quận Hồng Bàng", "Trường Trung học cơ sở quận Hồn"),
    ],
)
def test_sanitise_sheet_name(wanted: str, expected: str) -> None:
    assert sanitise_sheet_name(wanted) == expected
    assert len(sanitise_sheet_name(wanted)) <= 31


def test_unique_sheet_names_ignore_case() -> None:
    taken = {SUMMARY_SHEET.casefold()}
    long = "Trường Trung học cơ sở quận Hồng Bàng"
    names = [unique_sheet_name(n, taken) for n in ("Tổng hợp", "TIỂU HỌC", "Tiểu học", long, long + " 2")]
    assert names == [
        "Tổng hợp (2)",
        "TIỂU HỌC",
        "Tiểu học (2)",
        "Trường Trung học cơ sở quận Hồn",
        "Trường Trung học cơ sở quận (2)",
    ]
    assert all(len(n) <= 31 for n in names)


def test_every_group_from_the_roster_gets_a_sheet_even_with_colliding_names(cs: CampaignStatus) -> None:
    clash = [*cs.institutions, _inst("X1", "Trường X", "Đơn vị trực thuộc:Khác"), _inst("X2", "Trường Y", "Tổng hợp")]
    wb = build_tracker(
        CampaignStatus(campaign=cs.campaign, institutions=tuple(clash), review=()), ZONE, generated_at=GENERATED
    )
    assert wb.sheetnames == [SUMMARY_SHEET, SCHOOLS, OTHERS_SHEET, f"{OTHERS_SHEET} (2)", "Tổng hợp (2)", REVIEW_SHEET]
    codes = [r[1] for name in wb.sheetnames[1:-1] for r in _rows(wb[name])]
    assert codes == [i.code for i in clash]


def test_document_metadata_and_signed_copy_columns(cs: CampaignStatus) -> None:
    from dataclasses import replace

    from mailbot.reports.tracker_rows import document_cells

    meta = {
        "number": "15/BC-THPTNQ",
        "date": "2023-12-05",
        "doc_type": "BÁO CÁO",
        "title": "Sơ kết phong trào",
        "signer_position": "KT. HIỆU TRƯỞNG\nPHÓ HIỆU TRƯỞNG",
        "signer_name": "Nguyễn Văn A",
    }
    inst = cs.institutions[0]
    first = inst.submissions[0]
    with_meta = replace(
        inst, submissions=(replace(first, files=(replace(first.files[0], meta=meta),)),), signed_copy=True
    )
    assert document_cells(with_meta) == [
        "Số 15/BC-THPTNQ ngày 05/12/2023",
        "Báo cáo sơ kết phong trào",
        "KT. HIỆU TRƯỞNG PHÓ HIỆU TRƯỞNG – Nguyễn Văn A",
    ]
    # the type is not repeated before a title that already starts with it
    repeated = {**meta, "title": "Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023"}
    again = replace(with_meta, submissions=(replace(first, files=(replace(first.files[0], meta=repeated),)),))
    assert document_cells(again)[1] == "Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023"


# --- text from mail is never a formula -------------------------------------------------------------------

HOSTILE = ('=HYPERLINK("http://x","y")', "@SUM(A1)", "+1+2", "-3+4", "=1+1")


def formulas_in(data: bytes) -> list[str]:
    """Every <f> element of every sheet of a saved workbook: what Excel or LibreOffice would compute."""
    import re
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        assert sheets
        return [f for n in sheets for f in re.findall(r"<f[ >].*?</f>|<f/>", zf.read(n).decode("utf-8"))]


def quoted_text_cells(data: bytes) -> dict[str, bool]:
    """Every text cell's value → whether it carries the quote prefix (stays text when edited)."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert all(c.data_type == "s" for c in cells), [(c.coordinate, c.data_type) for c in cells if c.data_type != "s"]
    return {c.value: bool(c.quotePrefix) for c in cells}


def test_text_from_mail_is_never_a_formula(cs: CampaignStatus) -> None:
    from dataclasses import replace

    subject, sender, file_name, title, signer = HOSTILE
    meta = {"title": title, "signer_name": signer, "doc_type": ""}
    inst = cs.institutions[0]
    first = inst.submissions[0]
    hostile_inst = replace(
        inst, name="=2*3", submissions=(replace(first, files=(replace(first.files[0], meta=meta),)),)
    )
    item = replace(cs.review[0], subject=subject, sender=sender, files=(_file(f"{file_name}.docx", path="review/x"),))
    data = tracker_bytes(
        replace(cs, institutions=(hostile_inst, *cs.institutions[1:]), review=(item,)), ZONE, generated_at=GENERATED
    )
    assert formulas_in(data) == []
    text = quoted_text_cells(data)
    # shown exactly as sent, and marked so that editing the cell keeps it text
    for value in (subject, sender, "=2*3", f"{file_name}.docx", title, signer):
        assert text[value] is True, value
    assert text["Trường THPT Trần Phú"] is False  # ordinary text is left alone
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb[REVIEW_SHEET]["C2"].value == subject


def test_a_control_character_from_mail_is_dropped_not_fatal(cs: CampaignStatus) -> None:
    # A subject "Báo cáo\x01" (an encoded-word may carry any byte) made openpyxl refuse the whole tracker,
    # and with it the digest it is attached to.
    from dataclasses import replace

    item = replace(cs.review[0], subject="Báo cáo\x01 ANTQ\x0b", sender="a\x00@b.vn")
    wb = openpyxl.load_workbook(io.BytesIO(tracker_bytes(replace(cs, review=(item,)), ZONE, generated_at=GENERATED)))
    assert wb[REVIEW_SHEET]["C2"].value == "Báo cáo ANTQ"


def test_numbers_and_dates_stay_numbers_and_dates(saved: openpyxl.Workbook) -> None:
    ws = saved[SCHOOLS]
    assert ws["A2"].data_type == "n" and ws["F2"].data_type == "n" and ws["E2"].is_date
    assert saved[SUMMARY_SHEET]["F7"].data_type == "n"


def test_header_and_footer_name_the_group_and_number_the_pages(saved: openpyxl.Workbook) -> None:
    ws = saved[SCHOOLS]
    assert ws.oddHeader.center.text == SCHOOLS
    assert ws.oddFooter.right.text == "Trang &P / &N"
    assert ws.print_title_rows == "$1:$1"  # the header row repeats on every printed page
    assert (
        int(ws.page_setup.paperSize) == int(ws.PAPERSIZE_A4)
        and ws.page_setup.fitToWidth == 1
        and ws.page_setup.fitToHeight == 0
    )


def _pdf_pages(xlsx: Path, out: Path) -> list[tuple[float, float, float]]:
    """(width, height, median font size in points) of each page LibreOffice prints for ``xlsx``."""
    import shutil
    import statistics
    import subprocess

    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTChar, LTContainer

    soffice = shutil.which("soffice")
    assert soffice, "LibreOffice is needed: scripts/test.sh installs libreoffice-calc-nogui"
    profile = (out / "profile").as_uri()  # a private profile: conversions may run at once
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            str(xlsx),
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    pdf = out / f"{xlsx.stem}.pdf"
    assert pdf.exists(), "LibreOffice Calc could not open the workbook (is libreoffice-calc-nogui installed?)"

    def sizes(item: object) -> list[float]:
        if isinstance(item, LTChar):
            return [item.size]
        return [s for child in item for s in sizes(child)] if isinstance(item, LTContainer) else []

    return [(p.width, p.height, statistics.median(sizes(p) or [0.0])) for p in extract_pages(str(pdf))]


def test_demo_tracker_prints_on_a4_landscape_at_a_readable_size(tmp_path: Path) -> None:
    """Converted by LibreOffice as staff would print it: A4 landscape, text near 8 pt, a page or so per group."""
    from mailbot import pipeline, store
    from mailbot.demo.build import DIGEST_AT, build_demo
    from mailbot.reports.compile import compile_campaign
    from mailbot.reports.compile_output import save_xlsx
    from mailbot.reports.status import campaign_status
    from mailbot.reports.workbook import save_tracker

    settings = build_demo(tmp_path / "demo")
    engine = store.connect(settings.db_url)
    pipeline.run_once(settings, engine)
    campaign = first_campaign(settings)
    tracker = save_tracker(campaign_status(engine, campaign), ZONE, tmp_path / "theo-doi.xlsx", generated_at=DIGEST_AT)
    pages = _pdf_pages(tracker, tmp_path)
    assert all(round(w) == 842 and round(h) == 595 for w, h, _ in pages)  # A4 landscape, in points
    groups = 5
    assert groups + 2 <= len(pages) <= 2 * groups + 2  # summary, each group, the review queue
    group_pages = pages[1:-1]
    assert min(size for _, _, size in group_pages) >= 7.0, [round(s, 1) for _, _, s in pages]
    consolidation = save_xlsx(compile_campaign(settings, engine, campaign, now=DIGEST_AT), tmp_path / "tong-hop.xlsx")
    merged = _pdf_pages(consolidation, tmp_path)
    assert all(round(w) == 842 for w, _, _ in merged) and min(size for _, _, size in merged) >= 7.0


def test_the_tracker_leaves_numpy_and_pillow_out_of_the_process() -> None:
    # both are installed for scanned PDFs, and either would stay in the service's memory from its first digest on
    probe = (
        "import sys, mailbot.reports.workbook as w, openpyxl.compat.numbers as n, openpyxl.drawing.image as i; "
        "print('numpy' in sys.modules, 'PIL' in sys.modules, n.NUMPY, bool(i.PILImage), "
        "n.NUMERIC_TYPES == (int, float, __import__('decimal').Decimal)); "
        "from PIL import Image; print(Image.new('1', (1, 1)).size)"  # and Pillow still imports when it is wanted
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False", "False", "False", "True", "(1,", "1)"]
