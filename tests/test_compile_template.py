"""`mailbot compile` with the campaign's report template: thirty filled copies with the variations schools make,
consolidated into the department's tables, the list of what did not match, the texts by section and a drafted report.

The template (two tables, the second with a merged two-row header, and numbered sections) and the thirty reports are
built here with python-docx, mailed into a Maildir, run through the real pipeline and consolidated. Every expected
figure is computed in this file from the schools' own numbers, independently of the code under test.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import docx
import openpyxl
import pytest
from click.testing import CliRunner
from openpyxl.utils import column_index_from_string

from mailbot import pipeline, store
from mailbot.campaigns import catalog, roster
from mailbot.cli import cli
from mailbot.demo import samples
from mailbot.demo.build import DEADLINE, _write_maildir, build_demo
from mailbot.errors import MailbotError
from mailbot.reports import matching
from mailbot.reports.aliases import load_aliases, remember_alias
from mailbot.reports.consolidate import NO_WORD_FILE, Consolidation, campaign_template, consolidate_campaign
from mailbot.reports.consolidation_xlsx import DETAIL_SHEET, TABLE_SHEET, UNMATCHED_SHEET, save_workbook
from mailbot.reports.narrative import draft_bytes, save_docx, texts_bytes
from mailbot.reports.numbers import EMPTY_AS_ZERO, WITH_WORDS, read_figure
from mailbot.reports.template import TemplateProblem, read_template
from tests.conftest import first_campaign

NOW = DEADLINE + timedelta(days=2)
T1_TITLE = "Bảng 1. Kết quả tuyên truyền, giáo dục"
T1_COLUMNS = ("Số buổi", "Số lượt người tham gia")
T1_ROWS = (
    "Tuyên truyền pháp luật về an ninh, trật tự",
    "Ngoại khóa phòng chống ma túy, tội phạm",
    "Diễn tập phòng cháy, chữa cháy",
    "Ký cam kết không vi phạm pháp luật",
)
T2_COLUMNS = ("Số học sinh được giáo dục - Nam", "Số học sinh được giáo dục - Nữ", "Số vụ vi phạm")
T2_ROWS = ("Khối 10", "Khối 11", "Khối 12")
SECTIONS = ("I. KẾT QUẢ THỰC HIỆN", "1. Công tác tuyên truyền", "2. Công tác phối hợp", "II. ĐỀ XUẤT, KIẾN NGHỊ")
GROUPS = ("Phòng GDĐT", "THPT", "GDNN-GDTX")


# ---------------------------------------------------------------- the template


def _heading_table(document, name: str) -> None:
    heading = document.add_table(rows=2, cols=2)
    heading.cell(0, 0).text = f"SỞ GD&ĐT HẢI PHÒNG\n{name.upper()}"
    heading.cell(0, 1).text = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc"
    heading.cell(1, 0).text = "Số: 15/BC"
    heading.cell(1, 1).text = "Hải Phòng, ngày 04 tháng 12 năm 2023"
    document.add_paragraph("BÁO CÁO")
    document.add_paragraph("Kết quả phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023")


def _fill(table, top: int, rows: list[list[str]]) -> None:
    for i, row in enumerate(rows, start=top):
        for j, text in enumerate(row):
            table.cell(i, j).text = text


def table1(document, header: list[str], rows: list[list[str]]) -> None:
    table = document.add_table(rows=1 + len(rows), cols=len(header))
    table.style = "Table Grid"
    _fill(table, 0, [header, *rows])


def table2(document, rows: list[list[str]], top: str = "Số học sinh được giáo dục") -> None:
    """Merged header: "Số học sinh được giáo dục" over "Nam" and "Nữ", the other headers merged down."""
    table = document.add_table(rows=2 + len(rows), cols=5)
    table.style = "Table Grid"
    table.cell(0, 0).merge(table.cell(1, 0)).text = "TT"
    table.cell(0, 1).merge(table.cell(1, 1)).text = "Khối"
    table.cell(0, 2).merge(table.cell(0, 3)).text = top
    table.cell(1, 2).text, table.cell(1, 3).text = "Nam", "Nữ"
    table.cell(0, 4).merge(table.cell(1, 4)).text = "Số vụ vi phạm"
    _fill(table, 2, rows)


def template_docx() -> bytes:
    document = docx.Document()
    _heading_table(document, "Tên đơn vị")
    document.add_paragraph(SECTIONS[0])
    document.add_paragraph(SECTIONS[1])
    document.add_paragraph("(Đơn vị nêu rõ các hình thức tuyên truyền đã thực hiện)")
    document.add_paragraph(T1_TITLE)
    table1(
        document,
        ["TT", "Nội dung", *T1_COLUMNS, "Ghi chú"],
        [[str(i), label, "", "", ""] for i, label in enumerate(T1_ROWS, start=1)],
    )
    document.add_paragraph(SECTIONS[2])
    document.add_paragraph("Bảng 2. Học sinh được giáo dục và số vụ vi phạm")
    table2(document, [[str(i), label, "", "", ""] for i, label in enumerate(T2_ROWS, start=1)])
    document.add_paragraph(SECTIONS[3])
    document.add_paragraph("Trên đây là báo cáo của đơn vị./.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- the schools and their variations


@dataclass
class School:
    code: str
    name: str
    group: str
    variation: str = "copy"
    t1: list[list[int]] = field(default_factory=list)  # the true figures, template rows × columns
    t2: list[list[int]] = field(default_factory=list)
    late: bool = False

    @property
    def email(self) -> str:
        return f"{self.code.lower()}@haiphong.edu.vn"

    @property
    def text(self) -> str:
        return f"{self.name} đã tổ chức tuyên truyền cho toàn thể học sinh ({self.code})."


VARIATIONS = (
    "reordered",  # rows in another order, numbered a) b) c)
    "extra_row",  # a row the template has not: listed, not summed
    "renamed_column",  # "Số buổi tổ chức" for "Số buổi": matched
    "unknown_column",  # "Lượt tham dự" for "Số lượt người tham gia": listed, not summed (until accepted)
    "text_numbers",  # "12 buổi", "1.250 lượt", an empty cell, "-", "khoảng 30"
    "split",  # table 1 split in two across a page break
    "last_year",  # last year's template: nothing matches
    "pdf",  # a PDF only
    "no_marks",  # labels typed without diacritics, in capitals
    "own_total",  # its own "Tổng cộng" row: listed, not summed
    "extra_column",  # a "Kinh phí" column: listed, not summed
    "missing_row",  # leaves out a template row: listed
    "line_breaks",  # header cells with line breaks, a one-row header for table 2
    "missing",  # sends nothing
)


def schools() -> list[School]:
    out = []
    for k in range(30):
        group = GROUPS[0] if k < 10 else GROUPS[1] if k < 25 else GROUPS[2]
        variation = VARIATIONS[k] if k < len(VARIATIONS) else "copy"
        t1 = [[(k * 7 + r * 3 + c) % 13 + 1 if c == 0 else 100 + k * 37 + r * 211 for c in range(2)] for r in range(4)]
        t2 = [[150 + k * 3 + r, 140 + k * 5 + r, (k + r) % 3] for r in range(3)]
        kind = {GROUPS[0]: "Phòng GDĐT", GROUPS[1]: "Trường THPT", GROUPS[2]: "Trung tâm GDNN-GDTX"}[group]
        out.append(School(f"DV{k:02d}", f"{kind} số {k:02d}", group, variation, t1, t2, late=k % 9 == 4))
    return out


def _vn(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def report_docx(s: School) -> bytes:
    document = docx.Document()
    _heading_table(document, s.name)
    document.add_paragraph(SECTIONS[0])
    document.add_paragraph(SECTIONS[1])
    document.add_paragraph(s.text)
    document.add_paragraph(T1_TITLE)
    _school_table1(document, s)
    document.add_paragraph(SECTIONS[2])
    document.add_paragraph(f"Phối hợp với Công an phường trong năm học ({s.code}).")
    rows2 = [[str(r + 1), T2_ROWS[r], *(_vn(v) for v in s.t2[r])] for r in range(3)]
    if s.variation == "last_year":  # last year's second table too
        table1(document, ["TT", "Khối", "Số lớp", "Số giáo viên chủ nhiệm"], [["1", "Khối 10", "12", "12"]])
    elif s.variation == "line_breaks":
        table1(
            document,
            ["TT", "Khối", "Số học sinh được\ngiáo dục - Nam", "Số học sinh được giáo dục -\nNữ", "Số vụ\nvi phạm"],
            rows2,
        )
    else:
        table2(document, rows2)
    document.add_paragraph(SECTIONS[3])
    document.add_paragraph(f"Đề nghị Sở tổ chức tập huấn ({s.code}).")
    document.add_paragraph(f"Trên đây là báo cáo của {s.name}./.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _school_table1(document, s: School) -> None:
    header = ["TT", "Nội dung", *T1_COLUMNS]
    labels = list(T1_ROWS)
    rows = [[str(r + 1), labels[r], str(s.t1[r][0]), _vn(s.t1[r][1])] for r in range(4)]
    v = s.variation
    if v == "last_year":
        table1(
            document,
            ["STT", "Hoạt động", "Năm 2021", "Năm 2022"],
            [["1", "Họp giao ban", "4", "5"], ["2", "Kiểm tra", "2", "3"]],
        )
        return
    if v == "reordered":
        rows = [[f"{'abcd'[i]})", *row[1:]] for i, row in enumerate([rows[2], rows[0], rows[3], rows[1]])]
    elif v == "extra_row":
        rows.append(["5", "Hội thi vẽ tranh về an ninh học đường", "9", "999"])
    elif v == "renamed_column":
        header[2] = "Số buổi tổ chức"
    elif v == "unknown_column":
        header[3] = "Lượt tham dự"
    elif v == "text_numbers":
        rows[0][2], rows[0][3] = f"{s.t1[0][0]} buổi", f"{_vn(s.t1[0][1])} lượt"
        rows[1][2], rows[1][3] = "", "-"
        rows[2][2] = "khoảng 30"
    elif v == "no_marks":
        rows = [[row[0], _plain(row[1]).upper(), *row[2:]] for row in rows]
    elif v == "own_total":
        rows.append(["", "Tổng cộng", str(sum(r[0] for r in s.t1)), _vn(sum(r[1] for r in s.t1))])
    elif v == "extra_column":
        header.append("Kinh phí (triệu đồng)")
        rows = [[*row, "12,5"] for row in rows]
    elif v == "missing_row":
        rows = rows[:3]
    if v == "split":
        table1(document, header, rows[:2])
        document.add_page_break()
        table1(document, rows[2], rows[3:])  # python-docx: the first row of the second part is a data row
        return
    table1(document, header, rows)


def _plain(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFD", text.replace("đ", "d")) if unicodedata.category(c) != "Mn")


def expected_t1(s: School, accepted: bool = False) -> dict[tuple[int, int], int]:
    """What the consolidation must count of a school's table 1: (row, column) → figure."""
    v = s.variation
    if v in ("last_year", "pdf", "missing"):
        return {}
    got = {(r, c): s.t1[r][c] for r in range(4) for c in range(2)}
    if v == "unknown_column" and not accepted:
        got = {k: x for k, x in got.items() if k[1] != 1}
    if v == "text_numbers":
        got[(1, 0)] = got[(1, 1)] = 0  # empty and "-": 0
        del got[(2, 0)]  # "khoảng 30": not a number, not counted
    if v == "missing_row":
        got = {k: x for k, x in got.items() if k[0] != 3}
    return got


def expected_t2(s: School) -> dict[tuple[int, int], int]:
    if s.variation in ("last_year", "pdf", "missing"):
        return {}
    return {(r, c): s.t2[r][c] for r in range(3) for c in range(3)}


# ---------------------------------------------------------------- the campaign


def _emails(all_schools: list[School]) -> list[tuple]:
    messages = []
    for n, s in enumerate(all_schools):
        if s.variation == "missing":
            continue
        arrival = DEADLINE + (timedelta(hours=5) if s.late else -timedelta(days=1, minutes=n))
        if s.variation == "pdf":
            attachment = (f"Bao cao {s.code}.pdf", samples.minimal_pdf("bao cao"), "application/pdf")
        else:
            attachment = (f"Báo cáo ANTQ 2023 - {s.code}.docx", report_docx(s), samples.DOCX_TYPE)
        raw = samples.make_email(
            sender=s.email,
            sender_name=s.name,
            subject=f"Báo cáo ANTQ 2023 - {s.name}",
            body=f"Kính gửi Phòng GDTX&ĐH,\n{s.name} gửi báo cáo.\n",
            message_id=f"<tpl-{n}@haiphong.edu.vn>",
            attachments=[attachment],
            date=arrival - timedelta(seconds=30),
        )
        messages.append((arrival, raw))
    return messages


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("tpl") / "d"
    settings = build_demo(root)
    all_schools = schools()
    rows = [{"code": s.code, "name": s.name, "group": s.group, "emails": [s.email]} for s in all_schools]
    roster.write_csv(root / "roster.csv", roster.from_rows(rows))
    _write_maildir(root / "Maildir", _emails(all_schools))
    engine = store.connect(settings.db_url)
    pipeline.run_once(settings, engine)
    campaign = first_campaign(settings)
    catalog.attach(
        engine,
        settings.data_dir,
        campaign.id,
        catalog.TEMPLATE,
        "Mẫu báo cáo.docx",
        template_docx(),
        actor="lan",
        now=NOW,
    )
    return settings, engine, campaign, all_schools


@pytest.fixture(scope="module")
def comp(setup) -> Consolidation:
    settings, engine, campaign, _ = setup
    template = campaign_template(settings, engine, campaign.id)
    assert template is not None
    return consolidate_campaign(settings, engine, campaign, template, now=NOW)


def _sums(all_schools, expect, group: str | None = None) -> dict[tuple[int, int], Decimal]:
    out: dict[tuple[int, int], Decimal] = {}
    for s in all_schools:
        if group is None or s.group == group:
            for key, value in expect(s).items():
                out[key] = out.get(key, Decimal(0)) + value
    return out


# ---------------------------------------------------------------- the tests


def test_the_template_is_read_with_its_tables_rows_and_sections():
    t = read_template(template_docx(), "mau.docx")
    assert [c.name for c in t.tables[0].columns] == list(T1_COLUMNS)  # "Ghi chú" is no value column
    assert [r.label for r in t.tables[0].rows] == list(T1_ROWS)
    assert [c.name for c in t.tables[1].columns] == list(T2_COLUMNS)  # the merged header joined
    assert [r.label for r in t.tables[1].rows] == list(T2_ROWS)
    assert [s.heading for s in t.sections] == list(SECTIONS)
    assert t.tables[0].title == T1_TITLE


def test_city_wide_and_group_totals_equal_the_schools_figures(comp, setup):
    all_schools = setup[3]
    for result, expect in zip(comp.tables, (expected_t1, expected_t2)):
        t = result.template
        for group in (None, *GROUPS):
            sums = _sums(all_schools, expect, group)
            for r in range(len(t.rows)):
                for c in range(len(t.columns)):
                    assert result.total(r, c, group) == sums.get((r, c), 0), (t.number, group, r, c)


def _items(comp, code):
    return [i for i in comp.items if i.code == code]


def test_every_variation_is_matched_or_listed(comp, setup):
    all_schools = setup[3]
    by = {s.variation: s for s in all_schools}
    reasons = lambda v: {i.reason for i in _items(comp, by[v].code)}  # noqa: E731
    assert matching.ROW_NOT_IN_TEMPLATE in reasons("extra_row")
    assert any(i.found == "Hội thi vẽ tranh về an ninh học đường" for i in _items(comp, by["extra_row"].code))
    assert {matching.COLUMN_NOT_IN_TEMPLATE, matching.COLUMNS_MISSING} <= reasons("unknown_column")
    assert any(i.found == "Lượt tham dự" and i.accept == "column" for i in _items(comp, by["unknown_column"].code))
    assert {WITH_WORDS, EMPTY_AS_ZERO, matching.NOT_A_NUMBER} <= reasons("text_numbers")
    assert any(i.found == "khoảng 30" for i in _items(comp, by["text_numbers"].code))
    assert {matching.NOT_TEMPLATE_TABLE, matching.NOT_TEMPLATE_FILE} <= reasons("last_year")
    pdf = _items(comp, by["pdf"].code)
    assert [i.reason.split(" (")[0] for i in pdf] == [NO_WORD_FILE.split(" (")[0]]
    assert pdf[0].source is not None and pdf[0].source.name.endswith(".pdf") and pdf[0].source.file_id
    assert matching.OWN_TOTAL in reasons("own_total")
    assert matching.COLUMN_NOT_IN_TEMPLATE in reasons("extra_column")
    assert any(i.found == "Kinh phí (triệu đồng)" for i in _items(comp, by["extra_column"].code))
    assert matching.ROWS_MISSING in reasons("missing_row")
    # matched without a word: reordered and re-numbered rows, a longer column name, a split table, no diacritics,
    # header cells broken over lines, and the plain copies
    for v in ("reordered", "renamed_column", "split", "no_marks", "line_breaks", "copy"):
        assert _items(comp, by[v].code) == [], v
    for s in all_schools:  # every school that sent a Word report of the template has its entries
        codes = {e.code for r in comp.tables for e in r.entries}
        assert (s.code in codes) == (s.variation not in ("last_year", "pdf", "missing"))


def test_participation_per_group(comp, setup):
    all_schools = setup[3]
    for p in comp.participation:
        mine = [s for s in all_schools if s.group == p.group]
        assert p.total == len(mine)
        assert p.missing == sum(1 for s in mine if s.variation in ("missing", "pdf"))  # a scan alone is no report
        assert p.late == sum(1 for s in mine if s.late and s.variation != "missing")


def test_texts_are_gathered_per_section_by_group(comp, setup):
    all_schools = setup[3]
    document = docx.Document(io.BytesIO(texts_bytes(comp)))
    texts = [p.text for p in document.paragraphs]
    tuyen_truyen, phoi_hop = texts.index(SECTIONS[1]), texts.index(SECTIONS[2])
    copy = next(s for s in all_schools if s.variation == "copy")
    assert tuyen_truyen < texts.index(copy.text) < phoi_hop
    assert f"Phối hợp với Công an phường trong năm học ({copy.code})." in texts[phoi_hop:]
    assert "(Đơn vị nêu rõ các hình thức tuyên truyền đã thực hiện)" not in texts  # the template's own words
    assert not any(t.startswith("Trên đây là báo cáo") for t in texts)


def _evaluate(wb, formula: str) -> Decimal:
    """=SUM('Sheet'!C5:F5) computed here, from the detail sheet's cells."""
    m = re.fullmatch(r"=SUM\('((?:[^']|'')+)'!([A-Z]+)(\d+):([A-Z]+)(\d+)\)", formula)
    assert m, formula
    ws = wb[m.group(1).replace("''", "'")]
    row = int(m.group(3))
    assert row == int(m.group(5))
    cells = range(column_index_from_string(m.group(2)), column_index_from_string(m.group(4)) + 1)
    return sum((Decimal(str(ws.cell(row, c).value or 0)) for c in cells), Decimal(0))


def test_workbook_tables_are_formulas_over_the_detail_and_link_to_the_files(comp, setup, tmp_path):
    settings, _, _, all_schools = setup
    path = save_workbook(comp, tmp_path / "tong-hop.xlsx", lambda s: f"https://mailbot.example/files/{s.file_id}")
    wb = openpyxl.load_workbook(path)
    for result, expect in zip(comp.tables, (expected_t1, expected_t2)):
        t = result.template
        ws = wb[TABLE_SHEET.format(n=t.number)]
        city = _sums(all_schools, expect)
        for r, row in enumerate(t.rows):
            assert ws.cell(5 + r, 2).value == row.label
            for c in range(len(t.columns)):
                formula = ws.cell(5 + r, 3 + c).value
                assert formula.startswith("=SUM('Chi tiết bảng")
                assert _evaluate(wb, formula) == city.get((r, c), 0)
        # the group blocks follow the city-wide one, in roster order
        for g, group in enumerate(GROUPS, start=1):
            assert ws.cell(2, 3 + g * len(t.columns)).value == group
            sums = _sums(all_schools, expect, group)
            for c in range(len(t.columns)):
                assert _evaluate(wb, ws.cell(5, 3 + g * len(t.columns) + c).value) == sums.get((0, c), 0)
        detail = wb[DETAIL_SHEET.format(n=t.number)]
        heads = [detail.cell(4, col) for col in range(3, 3 + len(result.entries))]
        assert all(
            h.hyperlink is not None and h.hyperlink.target.startswith("https://mailbot.example/files/") for h in heads
        )
        assert all(not h.hyperlink.target.endswith("None") for h in heads)
    # LibreOffice computes the formulas to the same figures (sheet 2 is "Bảng 1")
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice is a test dependency"
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{tmp_path}/lo",
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,2",
            "--outdir",
            str(tmp_path / "csv"),
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    lines = next((tmp_path / "csv").glob("*.csv")).read_text(encoding="utf-8").splitlines()
    city = _sums(all_schools, expected_t1)
    for r in range(4):
        cells = next(csv.reader([lines[4 + r]]))
        assert [Decimal(cells[2]), Decimal(cells[3])] == [city.get((r, 0), 0), city.get((r, 1), 0)]
    unmatched = wb[UNMATCHED_SHEET]
    header = [c.value for c in unmatched[1]]
    assert header[:6] == ["Mã đơn vị", "Tên đơn vị", "Nhóm", "Tệp", "Bảng", "Dòng / cột"]
    found = [row[7] for row in unmatched.iter_rows(min_row=2, values_only=True)]
    assert "Lượt tham dự" in found and "khoảng 30" in found
    assert unmatched.max_row - 1 == len(comp.items)


def test_an_accepted_mapping_is_remembered(setup, tmp_path):
    settings, engine, campaign, all_schools = setup
    remember_alias(engine, "column", "Lượt tham dự", "Số lượt người tham gia", actor="lan", now=NOW)
    assert load_aliases(engine).columns == {"luot tham du": "so luot nguoi tham gia"}
    template = campaign_template(settings, engine, campaign.id)
    comp = consolidate_campaign(settings, engine, campaign, template, now=NOW)
    unknown = next(s for s in all_schools if s.variation == "unknown_column")
    assert _items(comp, unknown.code) == []
    sums = _sums(all_schools, lambda s: expected_t1(s, accepted=True))
    assert comp.tables[0].total(0, 1) == sums[(0, 1)]
    with engine.begin() as conn:
        conn.execute(store.compile_aliases.delete())  # the module's other tests see the list without it


def test_drafted_report_carries_the_totals_and_opens_in_libreoffice(comp, setup, tmp_path):
    all_schools = setup[3]
    staff = docx.Document()
    staff.add_paragraph("BÁO CÁO TỔNG HỢP")
    p = staff.add_paragraph("Tổng số buổi tuyên truyền: ")
    p.add_run("{{ tong.so_buoi }}").bold = True
    p.add_run(" buổi; lượt người: {{ tong.so_luot_nguoi_tham_gia }}.")
    staff.add_paragraph(
        "Đã nộp {{ thong_ke.da_nop }}/{{ thong_ke.tong_so }} đơn vị, chưa nộp {{ thong_ke.chua_nop }}. {{ tong.khong_co }}"
    )
    staff.add_table(rows=1, cols=1).cell(0, 0).text = "[[bang 2]]"
    buffer = io.BytesIO()
    staff.save(buffer)
    data, unknown = draft_bytes(comp, buffer.getvalue())
    assert unknown == ["khong_co"]
    path = save_docx(tmp_path / "bao-cao.docx", data)
    document = docx.Document(str(path))
    text = "\n".join(p.text for p in document.paragraphs)
    so_buoi = sum(_sums(all_schools, expected_t1)[(r, 0)] for r in range(4))
    luot = sum(_sums(all_schools, expected_t1).get((r, 1), 0) for r in range(4))
    assert f"Tổng số buổi tuyên truyền: {_vn(int(so_buoi))} buổi; lượt người: {_vn(int(luot))}." in text
    assert document.paragraphs[1].runs[0].text.startswith("Tổng số buổi")
    overall = comp.overall
    assert f"Đã nộp {overall.submitted}/30 đơn vị, chưa nộp 2. {{{{ khong_co }}}}" in text
    table = document.tables[0]
    nam = _sums(all_schools, expected_t2)[(0, 0)]
    assert table.cell(1, 1).text == "Khối 10" and table.cell(1, 2).text == _vn(int(nam))
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice is a test dependency"
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{tmp_path}/lo",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = tmp_path / "bao-cao.pdf"
    assert pdf.stat().st_size > 1000
    if shutil.which("pdftotext"):
        out = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert _vn(int(so_buoi)) in out


def test_cli_compile_with_the_template(setup, tmp_path):
    settings = setup[0]
    config = settings.data_dir.parent / "mailbot.toml"
    out = tmp_path / "x.xlsx"
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config),
            "--now",
            NOW.strftime("%Y-%m-%dT%H:%M"),
            "compile",
            "--campaign",
            "antq-2023",
            "--output",
            str(out),
            "--docx",
            str(tmp_path / "y.docx"),
            "--report",
            str(tmp_path / "z.docx"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "template" in result.output
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[:3] == ["Tổng hợp chung", "Bảng 1", "Chi tiết bảng 1"]
    link = wb["Chi tiết bảng 1"].cell(4, 3).hyperlink.target
    assert (out.parent / link).resolve().is_file()  # the archived file, relative to the workbook
    draft = docx.Document(str(tmp_path / "z.docx"))
    assert any("Tổng số đơn vị phải báo cáo: 30" in p.text for p in draft.paragraphs)
    assert docx.Document(str(tmp_path / "y.docx")).paragraphs


def test_read_figure():
    assert read_figure("1.234").value == 1234
    assert read_figure("12 buổi") == read_figure("12 buổi")
    assert read_figure("12 buổi").value == 12 and read_figure("12 buổi").note == WITH_WORDS
    assert read_figure("").value == 0 and read_figure("-").note == EMPTY_AS_ZERO
    assert read_figure("khoảng 30").value is None
    assert read_figure("1,5").value == Decimal("1.5")


def test_a_template_that_cannot_drive_the_consolidation_is_refused_in_one_line():
    with pytest.raises(TemplateProblem, match="cannot be read as a Word file"):
        read_template(b"PK\x03\x04 not a package", "mau.docx")
    document = docx.Document()
    document.add_paragraph("I. KẾT QUẢ THỰC HIỆN")
    buffer = io.BytesIO()
    document.save(buffer)
    with pytest.raises(TemplateProblem, match="has no table of figures"):
        read_template(buffer.getvalue(), "mau.docx")


def test_cli_accepts_a_mapping_before_compiling(setup, tmp_path):
    settings, engine = setup[0], setup[1]
    config = settings.data_dir.parent / "mailbot.toml"
    out = tmp_path / "x.xlsx"
    base = ["--config", str(config), "--now", NOW.strftime("%Y-%m-%dT%H:%M"), "compile", "--output", str(out)]
    try:
        result = CliRunner().invoke(
            cli, [*base, "--accept", "column", "Lượt tham dự", "Số lượt người tham gia", "--by", "lan"]
        )
        assert result.exit_code == 0, result.output
        assert "accepted: the column 'Lượt tham dự' is read as the template's 'Số lượt người tham gia'" in result.output
        found = [row[7] for row in openpyxl.load_workbook(out)[UNMATCHED_SHEET].iter_rows(min_row=2, values_only=True)]
        assert "Lượt tham dự" not in found and "khoảng 30" in found
        with engine.connect() as conn:
            logged = conn.execute(store.actions.select().where(store.actions.c.action == "compile_alias")).all()
        assert [a.actor for a in logged][-1] == "lan"
        bad = CliRunner().invoke(cli, [*base, "--accept", "cell", "a", "b"])
        assert isinstance(bad.exception, MailbotError) and "must be row or column" in str(bad.exception)
    finally:
        with engine.begin() as conn:
            conn.execute(store.compile_aliases.delete())
