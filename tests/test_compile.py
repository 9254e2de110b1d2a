"""`mailbot compile`: the tables of every institution's latest report merged, summed per group, and the texts gathered.

A campaign of eight institutions in two groups is built without a mail server: our own roster and a Maildir of
emails carrying Word reports made here with python-docx, then run through the real pipeline and compiled.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import docx
import openpyxl
import pytest
from click.testing import CliRunner

from mailbot import pipeline, store
from mailbot.campaigns import roster
from mailbot.cli import cli
from mailbot.demo import samples
from mailbot.demo.build import DEADLINE, _write_maildir, build_demo
from mailbot.documents.vnenc import from_unicode
from mailbot.errors import MailbotError
from mailbot.reports.compile import (
    NO_TABLE,
    ONLY_ONE,
    REVIEW_SHEET,
    SUMMARY_SHEET,
    Compilation,
    compile_campaign,
    header_candidates,
    is_blank,
    parse_number,
)
from mailbot.reports.compile_output import GRAND_TOTAL, NOT_SUBMITTED, save_docx, save_xlsx
from mailbot.text import fold
from tests.conftest import first_campaign

NOW = DEADLINE + timedelta(days=2)
HEADER = ("STT", "Nội dung", "Số lượng", "Kinh phí (triệu đồng)")
PUPILS_TOP = ("STT", "Khối", "Số học sinh", "Số học sinh")  # "Số học sinh" spans Nam and Nữ
PUPILS_SUB = ("STT", "Khối", "Nam", "Nữ")
ODD_HEADER = ("STT", "Họ và tên", "Chức vụ")

PGD, THPT = "Phòng GDĐT", "THPT"


@dataclass
class School:
    code: str
    name: str
    group: str
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # the statistics table's data rows
    pupils: list[tuple[str, str, str, str]] = field(default_factory=list)  # the two-row-header table, if any
    extra_rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # the school's own total line(s)
    odd: bool = False  # sends a table nobody else has
    font: str | None = None  # a legacy font for the body and the statistics table
    sends: bool = True

    @property
    def email(self) -> str:
        return f"{self.code.lower()}@haiphong.edu.vn"

    @property
    def body(self) -> str:
        return f"{self.name} báo cáo kết quả thực hiện phong trào năm 2023 như sau (mã {self.code})."


SCHOOLS = [
    School(
        "PGD-HB",
        "Phòng GDĐT quận Hồng Bàng",
        PGD,
        rows=[
            ("1", "Tuyên truyền pháp luật", "12", "1.250"),
            ("2", "Diễn tập phòng cháy, chữa cháy", "3", "12,5"),
            ("3", "Ký cam kết không vi phạm", "1.250", ""),
        ],
        pupils=[("1", "Khối 10", "120", "135"), ("2", "Khối 11", "98", "110")],
    ),
    School(
        "PGD-LC",
        "Phòng GDĐT quận Lê Chân",
        PGD,  # resubmits: only the second version counts
        rows=[
            ("1", "Tuyên truyền pháp luật", "1,234", "7,25"),
            ("2", "Diễn tập phòng cháy, chữa cháy", "5", "0,5"),
            ("3", "Ký cam kết không vi phạm", "2.400", "3"),
        ],
    ),
    School("PGD-HA", "Phòng GDĐT quận Hải An", PGD, odd=True),
    School("PGD-KA", "Phòng GDĐT quận Kiến An", PGD, sends=False),
    School(
        "THPT-NQ",
        "Trường THPT Ngô Quyền",
        THPT,
        rows=[
            ("1", "Tuyên truyền pháp luật", "8", "2,75"),
            ("2", "Diễn tập phòng cháy, chữa cháy", "2", "15"),
            ("3", "Ký cam kết không vi phạm", "1.180", "0"),
        ],
        pupils=[("1", "Khối 10", "201", "187"), ("2", "Khối 11", "190", "205"), ("3", "Khối 12", "176", "199")],
    ),
    School(
        "THPT-TP",
        "Trường THPT Thái Phiên",
        THPT,  # its own correct total line: kept out of the sums
        rows=[
            ("1", "Tuyên truyền pháp luật", "10", "4,5"),
            ("2", "Diễn tập phòng cháy, chữa cháy", "1", "1.000"),
            ("3", "Ký cam kết không vi phạm", "950", "2"),
        ],
        extra_rows=[("", "Tổng cộng", "961", "1.006,5")],
    ),
    School(
        "THPT-TPH",
        "Trường THPT Trần Phú",
        THPT,  # its own total line does not add up
        rows=[
            ("1", "Tuyên truyền pháp luật", "6", "3"),
            ("2", "Diễn tập phòng cháy, chữa cháy", "4", "20,25"),
            ("3", "Ký cam kết không vi phạm", "870", "1"),
        ],
        extra_rows=[("", "Cộng", "800", "24,25")],
    ),
    School(
        "THPT-LQD",
        "Trường THPT Lê Quý Đôn",
        THPT,
        font=".VnTime",  # typed in TCVN3
        rows=[
            ("1", "Tuyên truyền pháp luật", "14", "6,5"),
            ("2", "Diễn tập phòng cháy, chữa cháy", "2", "9"),
            ("3", "Ký cam kết không vi phạm", "1.020", ""),
        ],
    ),
]
FIRST_VERSION = [("1", "Tuyên truyền pháp luật", "999", "9.999"), ("2", "Diễn tập phòng cháy, chữa cháy", "999", "999")]
BY_CODE = {s.code: s for s in SCHOOLS}


def value(text: str) -> Decimal:
    """The number a test cell stands for, written out independently of the parser under test."""
    if not text:
        return Decimal(0)
    if text.count(".") and "," in text:  # "1.006,5"
        return Decimal(text.replace(".", "").replace(",", "."))
    if "," in text:
        return Decimal(text.replace(",", "")) if len(text.split(",")[1]) == 3 else Decimal(text.replace(",", "."))
    if "." in text:
        return Decimal(text.replace(".", ""))
    return Decimal(text)


# ---------------------------------------------------------------- building the reports and the campaign


def _cell(cell, text: str, font: str | None, bold: bool = False) -> None:
    run = cell.paragraphs[0].add_run(from_unicode(text, "tcvn3") if font else text)
    run.bold = bold or None
    if font:
        run.font.name = font


def _stats_table(document, rows, font: str | None) -> None:
    table = document.add_table(rows=1 + len(rows), cols=len(HEADER))
    table.style = "Table Grid"
    for j, title in enumerate(HEADER):
        _cell(table.cell(0, j), title, font, bold=True)
    for i, row in enumerate(rows, start=1):
        for j, text in enumerate(row):
            _cell(table.cell(i, j), text, font)


def _pupils_table(document, rows) -> None:
    table = document.add_table(rows=2 + len(rows), cols=4)
    table.style = "Table Grid"
    table.cell(0, 0).merge(table.cell(1, 0)).text = "STT"
    table.cell(0, 1).merge(table.cell(1, 1)).text = "Khối"
    table.cell(0, 2).merge(table.cell(0, 3)).text = "Số học sinh"
    table.cell(1, 2).text, table.cell(1, 3).text = "Nam", "Nữ"
    for i, row in enumerate(rows, start=2):
        for j, text in enumerate(row):
            table.cell(i, j).text = text


def report_docx(school: School, rows=None) -> bytes:
    """A Decree 30 report: heading table, type and title, a paragraph, the data tables, the signature table."""
    document = docx.Document()
    heading = document.add_table(rows=2, cols=2)
    heading.cell(0, 0).text = f"SỞ GD&ĐT HẢI PHÒNG\n{school.name.upper()}"
    heading.cell(0, 1).text = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc"
    heading.cell(1, 0).text = "Số: 15/BC"
    heading.cell(1, 1).text = "Hải Phòng, ngày 04 tháng 12 năm 2023"
    document.add_paragraph("BÁO CÁO")
    document.add_paragraph("Kết quả phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023")
    paragraph = document.add_paragraph()
    run = paragraph.add_run(from_unicode(school.body, "tcvn3") if school.font else school.body)
    if school.font:
        run.font.name = school.font
    if school.odd:
        table = document.add_table(rows=3, cols=3)
        for i, row in enumerate(
            (ODD_HEADER, ("1", "Nguyễn Văn Bình", "Trưởng phòng"), ("2", "Trần Thị Cúc", "Chuyên viên"))
        ):
            for j, text in enumerate(row):
                table.cell(i, j).text = text
    else:
        _stats_table(document, (rows or school.rows) + school.extra_rows, school.font)
    if school.pupils:
        document.add_paragraph("Số học sinh theo khối:")
        _pupils_table(document, school.pupils)
    document.add_paragraph(f"Trên đây là báo cáo của {school.name}./.")
    signature = document.add_table(rows=1, cols=2)
    signature.cell(0, 0).text = "Nơi nhận:\n- Sở GDĐT (Phòng GDTX&ĐH);\n- Lưu: VT."
    signature.cell(0, 1).text = "HIỆU TRƯỞNG\n\n\nNguyễn Văn An"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _email(
    school: School,
    data: bytes,
    arrival: datetime,
    n: int,
    filename: str | None = None,
    mimetype: str = samples.DOCX_TYPE,
    more: tuple[tuple[str, bytes, str], ...] = (),
) -> tuple[datetime, bytes]:
    raw = samples.make_email(
        sender=school.email,
        sender_name=school.name,
        subject=f"Báo cáo ANTQ 2023 - {school.name}",
        body=f"Kính gửi Phòng GDTX&ĐH,\n{school.name} gửi báo cáo.\n",
        message_id=f"<compile-{n}@haiphong.edu.vn>",
        attachments=[(filename or f"Báo cáo ANTQ 2023 - {school.code}.docx", data, mimetype), *more],
        date=arrival - timedelta(seconds=30),
    )
    return arrival, raw


def _campaign(root: Path, schools: list[School], messages: list[tuple[datetime, bytes]]):
    settings = build_demo(root)  # the demo's config; our own roster and inbox replace the demo's
    roster.write_csv(
        root / "roster.csv",
        roster.from_rows([{"code": s.code, "name": s.name, "group": s.group, "emails": [s.email]} for s in schools]),
    )
    _write_maildir(root / "Maildir", messages)
    engine = store.connect(settings.db_url)
    report = pipeline.run_once(settings, engine)
    assert report.states.get("submission") == len(messages), report.states
    return settings, engine


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("compile") / "d"
    messages, n = [], 0
    for k, school in enumerate(s for s in SCHOOLS if s.sends):
        arrival = DEADLINE - timedelta(days=1, hours=k)
        if school.code == "PGD-LC":
            n += 1
            messages.append(_email(school, report_docx(school, FIRST_VERSION), arrival - timedelta(days=2), n))
        n += 1
        messages.append(_email(school, report_docx(school), arrival, n))
    settings, engine = _campaign(root, SCHOOLS, messages)
    comp = compile_campaign(settings, engine, first_campaign(settings), now=NOW)
    return settings, comp


# ---------------------------------------------------------------- expectations, computed from the inputs


def expected_sums(rows_of, columns: tuple[int, ...]) -> tuple[dict[str, list[Decimal]], list[Decimal]]:
    per_group: dict[str, list[Decimal]] = {}
    for school in SCHOOLS:
        rows = rows_of(school)
        if not rows:
            continue
        sums = per_group.setdefault(school.group, [Decimal(0)] * len(columns))
        for row in rows:
            for k, j in enumerate(columns):
                sums[k] += value(row[j])
    total = [sum((s[k] for s in per_group.values()), Decimal(0)) for k in range(len(columns))]
    return per_group, total


def stats_shape(comp: Compilation):
    return next(s for s in comp.shapes if s.key == tuple(fold(h) for h in HEADER))


def pupils_shape(comp: Compilation):
    return next(s for s in comp.shapes if "Số học sinh - Nam" in s.header)


# ---------------------------------------------------------------- the compilation


def test_tables_of_one_header_are_merged_one_line_per_school_row(campaign):
    _, comp = campaign
    shape = stats_shape(comp)
    assert shape.header == HEADER
    expected = [
        (s.code, row[0], row[1]) for group in (PGD, THPT) for s in SCHOOLS if s.group == group for row in s.rows
    ]
    assert [(r.code, str(r.cells[0]), r.cells[1]) for r in shape.rows] == expected
    assert len(shape.rows) == 18  # six schools, three lines each: the schools' own totals are not lines
    assert shape.institutions == ("PGD-HB", "PGD-LC", "THPT-NQ", "THPT-TP", "THPT-TPH", "THPT-LQD")
    assert shape.numeric == (True, False, True, True) and shape.summed == (False, False, True, True)
    hb = [r for r in shape.rows if r.code == "PGD-HB"]
    assert [r.cells[2:] for r in hb] == [(12, 1250), (3, 12.5), (1250, None)]
    assert all(r.name == BY_CODE[r.code].name and r.group == BY_CODE[r.code].group for r in shape.rows)


def test_group_sums_and_total_equal_the_schools_numbers(campaign):
    _, comp = campaign
    shape = stats_shape(comp)
    per_group, total = expected_sums(lambda s: s.rows, (2, 3))
    assert [g.group for g in shape.groups] == [PGD, THPT]  # roster order
    for group, sums in per_group.items():
        got = shape.group_sum(group)
        assert got.values[0] is None and got.values[1] is None  # STT and text are not summed
        assert got.values[2:] == (pytest.approx(float(sums[0])), pytest.approx(float(sums[1])))
    assert shape.total.values[2:] == (pytest.approx(float(total[0])), pytest.approx(float(total[1])))
    assert shape.total.rows == 18
    assert shape.group_sum(PGD).values[2] == 12 + 3 + 1250 + 1234 + 5 + 2400  # whole numbers stay whole


def test_only_the_latest_submission_counts(campaign):
    _, comp = campaign
    lc = [r for r in stats_shape(comp).rows if r.code == "PGD-LC"]
    assert [r.cells[2] for r in lc] == [1234, 5, 2400]
    assert all(999 not in r.cells and 9999 not in r.cells for r in lc)


def test_tcvn3_table_matches_the_unicode_header_and_reads_as_unicode(campaign):
    _, comp = campaign
    lqd = [r for r in stats_shape(comp).rows if r.code == "THPT-LQD"]
    assert [r.cells[1] for r in lqd] == [row[1] for row in BY_CODE["THPT-LQD"].rows]
    assert [r.cells[2] for r in lqd] == [14, 2, 1020]
    report = next(r for r in comp.reports if r.code == "THPT-LQD")
    assert BY_CODE["THPT-LQD"].body in report.files[0].blocks


def test_two_row_header_with_merged_cells(campaign):
    _, comp = campaign
    shape = pupils_shape(comp)
    assert shape.header == ("STT", "Khối", "Số học sinh - Nam", "Số học sinh - Nữ")
    assert shape.institutions == ("PGD-HB", "THPT-NQ") and len(shape.rows) == 5
    per_group, total = expected_sums(lambda s: s.pupils, (2, 3))
    for group, sums in per_group.items():
        assert shape.group_sum(group).values[2:] == tuple(int(v) for v in sums)
    assert shape.total.values[2:] == tuple(int(v) for v in total)


def test_odd_tables_and_doubtful_totals_are_listed_for_review(campaign):
    _, comp = campaign
    odd = [i for i in comp.leftovers if i.code == "PGD-HA"]
    assert len(odd) == 1
    assert (odd[0].table, odd[0].header, odd[0].rows, odd[0].reason) == (1, " | ".join(ODD_HEADER), 2, ONLY_ONE)
    assert odd[0].file.endswith(".docx")
    wrong = [i for i in comp.leftovers if i.code == "THPT-TPH"]
    assert len(wrong) == 1 and "không khớp" in wrong[0].reason and "“Số lượng” ghi 800" in wrong[0].reason
    assert wrong[0].reason.endswith("cộng các dòng được 880")  # 6 + 4 + 870; the money column adds up
    assert not [i for i in comp.leftovers if i.code == "THPT-TP"]  # a total that adds up is no news
    assert {i.code for i in comp.leftovers} == {"PGD-HA", "THPT-TPH"}


def test_missing_institutions(campaign):
    _, comp = campaign
    assert [r.code for r in comp.missing] == ["PGD-KA"]
    assert len(comp.reports) == 8 and len(comp.readable) == 7
    assert comp.contributors == ("PGD-HB", "PGD-LC", "THPT-NQ", "THPT-TP", "THPT-TPH", "THPT-LQD")


# ---------------------------------------------------------------- the workbook


def _rows(ws):
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_workbook(campaign, tmp_path):
    _, comp = campaign
    path = save_xlsx(comp, tmp_path / "out" / "tong-hop.xlsx")
    wb = openpyxl.load_workbook(path)
    names = wb.sheetnames
    assert names[0] == SUMMARY_SHEET and names[-1] == REVIEW_SHEET and len(names) == 4
    assert all(len(n) <= 31 for n in names) and len({n.casefold() for n in names}) == len(names)
    stats = stats_shape(comp)
    assert stats.sheet in names and stats.sheet.startswith("Bảng 1 - Nội dung")

    ws = wb[stats.sheet]
    rows = _rows(ws)
    assert rows[0] == ["Mã đơn vị", "Tên đơn vị", "Nhóm", *HEADER, "Tệp nguồn"]
    assert ws.freeze_panes == "C2" and ws.auto_filter.ref and ws["A1"].font.b
    data = [r for r in rows[1:] if r[0]]
    assert len(data) == 18
    assert sum(1 for r in data if r[0] == "THPT-LQD") == 3
    per_group, total = expected_sums(lambda s: s.rows, (2, 3))
    for group, sums in per_group.items():
        line = next(r for r in rows if r[1] == f"Cộng nhóm {group}")
        assert line[2] == group and line[3] is None and line[4] is None
        assert line[5:7] == [pytest.approx(float(sums[0])), pytest.approx(float(sums[1]))]
    last = rows[-1]
    assert last[1] == GRAND_TOTAL and last[5:7] == [pytest.approx(float(total[0])), pytest.approx(float(total[1]))]
    # a subtotal follows its group's lines
    order = [r[1] if not r[0] else r[2] for r in rows[1:]]
    assert order == [PGD] * 6 + [f"Cộng nhóm {PGD}"] + [THPT] * 12 + [f"Cộng nhóm {THPT}", GRAND_TOTAL]
    assert isinstance(data[0][6], int) and data[1][6] == 12.5  # numbers, not text

    review = _rows(wb[REVIEW_SHEET])
    assert review[0] == ["Mã đơn vị", "Tên đơn vị", "Nhóm", "Tệp", "Bảng số", "Tiêu đề cột", "Số dòng", "Lý do"]
    odd = next(r for r in review if r[0] == "PGD-HA")
    assert odd[4:7] == [1, "STT | Họ và tên | Chức vụ", 2]

    summary = _rows(wb[SUMMARY_SHEET])
    flat = "\n".join(str(c) for r in summary for c in r if c is not None)
    assert comp.campaign.title in flat and "Đơn vị đã nộp: 7/8" in flat
    assert "PGD-KA" in flat and "Đơn vị chưa nộp báo cáo (1)" in flat
    shape_lines = [r for r in summary if r[1] in (stats.sheet, pupils_shape(comp).sheet)]
    assert [(r[3], r[4], r[5]) for r in shape_lines] == [(6, 6, 18), (2, 2, 5)]


# ---------------------------------------------------------------- the Word document


def test_word_document(campaign, tmp_path):
    _, comp = campaign
    path = save_docx(comp, tmp_path / "tong-hop.docx")
    document = docx.Document(str(path))
    paragraphs = [(p.style.name, p.text) for p in document.paragraphs]
    headings = [text for style, text in paragraphs if style == "Heading 2"]
    assert headings == [f"{s.name} ({s.code})" for group in (PGD, THPT) for s in SCHOOLS if s.group == group]
    assert [text for style, text in paragraphs if style == "Heading 1"] == [PGD, THPT]
    texts = [text for _, text in paragraphs]
    for school in SCHOOLS:
        at = texts.index(f"{school.name} ({school.code})")
        following = texts[at + 1 : at + 8]
        if school.sends:
            assert school.body in following, school.code  # TCVN3 included: converted to Unicode
        else:
            assert following[0] == NOT_SUBMITTED
    assert "Sè l\xadîng" not in "\n".join(texts)
    tables = [[[c.text for c in row.cells] for row in t.rows] for t in document.tables]
    assert len(tables) == 6 + 1 + 2  # six statistics tables, the odd one, two pupils tables; no heading/signature
    assert [list(HEADER)] + [list(r) for r in BY_CODE["THPT-LQD"].rows] in tables
    assert not any("CỘNG HÒA" in c for t in tables for row in t for c in row)


# ---------------------------------------------------------------- the command line


def test_cli_compile(campaign, tmp_path):
    settings, _ = campaign
    config = settings.data_dir.parent / "mailbot.toml"
    out, words = tmp_path / "th.xlsx", tmp_path / "th.docx"
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config),
            "--now",
            "2023-12-07T08:00",
            "compile",
            "--campaign",
            "antq-2023",
            "--output",
            str(out),
            "--docx",
            str(words),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 merged table(s) from 6 institution(s), 2 item(s) to review, 1 institution(s) missing" in result.output
    assert openpyxl.load_workbook(out).sheetnames[0] == SUMMARY_SHEET and docx.Document(str(words)).paragraphs
    bad = CliRunner().invoke(cli, ["--config", str(config), "compile", "--output", str(tmp_path / "th.csv")])
    assert isinstance(bad.exception, MailbotError) and ".xlsx" in str(bad.exception)


# ---------------------------------------------------------------- legacy .doc, and a report without tables


@pytest.mark.skipif(
    not (shutil.which("soffice") or shutil.which("libreoffice")),
    reason="LibreOffice (soffice) is not installed: .doc reports cannot be converted",
)
def test_legacy_doc_report_is_converted_and_merged(tmp_path):
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    a = School("THPT-A", "Trường THPT An Lão", THPT, rows=[("1", "Tuyên truyền", "12", "1.250")])
    b = School("THPT-B", "Trường THPT Kiến Thụy", THPT, rows=[("1", "Tuyên truyền", "7", "12,5")])
    c = School("THPT-C", "Trường THPT Tô Hiệu", THPT)  # a report with prose only
    source = tmp_path / "b.docx"
    source.write_bytes(report_docx(b))
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
            "--headless",
            "--convert-to",
            "doc",
            "--outdir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    legacy = (tmp_path / "b.doc").read_bytes()
    assert legacy.startswith(b"\xd0\xcf\x11\xe0")
    prose = docx.Document()
    prose.add_paragraph("Trường THPT Tô Hiệu báo cáo bằng lời, không có bảng.")
    buffer = io.BytesIO()
    prose.save(buffer)
    messages = [
        _email(a, report_docx(a), DEADLINE - timedelta(hours=3), 1),
        _email(b, legacy, DEADLINE - timedelta(hours=2), 2, "Bao cao.doc", "application/msword"),
        _email(c, buffer.getvalue(), DEADLINE - timedelta(hours=1), 3),
    ]
    settings, engine = _campaign(tmp_path / "d", [a, b, c], messages)
    comp = compile_campaign(settings, engine, first_campaign(settings), now=NOW)
    (shape,) = comp.shapes
    assert [(r.code, r.cells[2], r.cells[3]) for r in shape.rows] == [("THPT-A", 12, 1250), ("THPT-B", 7, 12.5)]
    assert shape.total.values[2:] == (19, pytest.approx(1262.5))
    assert [(i.code, i.reason) for i in comp.leftovers] == [("THPT-C", NO_TABLE)]


def test_a_report_attached_twice_is_counted_once(tmp_path):
    a = School("THPT-A", "Trường THPT An Lão", THPT, rows=[("1", "Tuyên truyền", "12", "1.250")])
    b = School("THPT-B", "Trường THPT Kiến Thụy", THPT, rows=[("1", "Tuyên truyền", "7", "12,5")])
    copy = School(a.code, a.name, a.group, rows=a.rows, font=".VnTime")  # other bytes (TCVN3), the same table
    messages = [
        _email(
            a,
            report_docx(a),
            DEADLINE - timedelta(hours=3),
            1,
            more=(("Bản sao báo cáo.docx", report_docx(copy), samples.DOCX_TYPE),),
        ),
        _email(b, report_docx(b), DEADLINE - timedelta(hours=2), 2),
    ]
    settings, engine = _campaign(tmp_path / "d", [a, b], messages)
    comp = compile_campaign(settings, engine, first_campaign(settings), now=NOW)
    (shape,) = comp.shapes
    assert [r.code for r in shape.rows] == ["THPT-A", "THPT-B"] and shape.total.values[2] == 19
    (note,) = comp.leftovers
    assert (note.code, note.file, note.table) == ("THPT-A", "Bản sao báo cáo.docx", 1)
    assert note.reason.startswith("Trùng với bảng 1 của tệp “Báo cáo ANTQ 2023 - THPT-A.docx”")
    assert len(next(r for r in comp.reports if r.code == "THPT-A").files) == 2  # both texts in the Word document


# ---------------------------------------------------------------- the pieces


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("12", Decimal(12)),
        ("1.250", Decimal(1250)),
        ("1.250.000", Decimal(1250000)),
        ("12,5", Decimal("12.5")),
        ("1,234", Decimal(1234)),
        ("1.234,56", Decimal("1234.56")),
        ("1,234.5", Decimal("1234.5")),
        ("1 234", Decimal(1234)),
        ("0,250", Decimal("0.25")),
        ("12.5", Decimal("12.5")),
        ("-3", Decimal(-3)),
        ("(5)", Decimal(-5)),
        (" 7 ", Decimal(7)),
        ("12%", None),
        ("khoảng 20", None),
        ("1.23.4", None),
        ("", None),
        ("2023-12-05", None),
        ("1,2,3", None),
    ],
)
def test_parse_number(text, number):
    assert parse_number(text) == number


def test_blank_cells():
    assert is_blank("") and is_blank(" - ") and is_blank("x") and not is_blank("0")


def test_header_readings():
    caption = ["BẢNG 1: KẾT QUẢ"] * 3
    assert header_candidates([caption, ["STT", "Nội dung", "Số lượng"], ["1", "a", "2"]])[0].names == (
        "STT",
        "Nội dung",
        "Số lượng",
    )
    numbered = header_candidates([["STT", "Nội dung", "Số lượng"], ["(1)", "(2)", "(3)"], ["1", "a", "5"]])
    assert numbered[0].skip == 2 and len(numbered) == 1
    unmerged = header_candidates([["STT", "Khối", "Số học sinh", ""], ["", "", "Nam", "Nữ"], ["1", "10", "3", "4"]])
    assert unmerged[0].names == ("STT", "Khối", "Số học sinh - Nam", "Số học sinh - Nữ")
    trailing = header_candidates([["STT", "Nội dung", "Số lượng", "", ""], ["1", "a", "2", "", ""]])
    assert trailing[0].key == ("stt", "noi dung", "so luong")
    years = header_candidates([["STT", "Số HS", "Số HS"], ["STT", "2022", "2023"], ["1", "5", "6"]])
    assert years[0].names == ("STT", "Số HS - 2022", "Số HS - 2023")


def test_cells_from_reports_are_never_formulas(tmp_path):
    """A school's table cell "=1+1" or "@SUM(A1)" is shown as typed, as text, in the consolidation workbook."""
    import re
    import zipfile

    a = School(
        "THPT-A",
        "Trường THPT An Lão",
        THPT,
        rows=[("1", "=1+1", "12", "1.250"), ("2", '=HYPERLINK("http://x","y")', "3", "@SUM(A1)")],
    )
    b = School("THPT-B", "Trường THPT Kiến Thụy", THPT, rows=[("1", "@SUM(A1)", "7", "12,5")])
    messages = [_email(s, report_docx(s), DEADLINE - timedelta(hours=3 - k), k) for k, s in enumerate((a, b), 1)]
    settings, engine = _campaign(tmp_path / "d", [a, b], messages)
    comp = compile_campaign(settings, engine, first_campaign(settings), now=NOW)
    path = save_xlsx(comp, tmp_path / "tong-hop.xlsx")
    with zipfile.ZipFile(path) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/sheet")]
        assert len(sheets) == 3  # summary, the merged table, the review list
        assert not [n for n in sheets if re.search(r"<f[ >/]", zf.read(n).decode("utf-8"))]
    wb = openpyxl.load_workbook(path)
    texts = {c.value: c for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    for typed in ("=1+1", '=HYPERLINK("http://x","y")', "@SUM(A1)"):
        assert texts[typed].data_type == "s" and texts[typed].quotePrefix, typed
    merged = wb[comp.shapes[0].sheet]
    assert [merged.cell(r, 5).value for r in (2, 3, 4)] == ["=1+1", '=HYPERLINK("http://x","y")', "@SUM(A1)"]
    assert texts["Trường THPT An Lão"].quotePrefix is False  # ordinary text is left alone
