"""A compilation written out (`mailbot compile`): the workbook (a summary sheet, a sheet per table shape shared by
several institutions with its group subtotals and grand total, and the sheet of what needs a human) and the Word
document gathering every institution's report text by group. What goes into them is worked out in
``mailbot.reports.compile``."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mailbot.reports.lean_openpyxl  # noqa: F401  # before openpyxl: see there

# isort: split

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.documents.wordxml import Table
from mailbot.errors import MailbotError
from mailbot.files import save_output
from mailbot.reports.compile import REVIEW_SHEET, SUMMARY_SHEET, Compilation, InstitutionReport, Shape
from mailbot.reports.tracker_rows import XML_ILLEGAL
from mailbot.reports.workbook import finish_table, fit_columns, print_setup, put, wrap_rows, write_table
from mailbot.wording import local_time

if TYPE_CHECKING:
    from docx.document import Document as WordDocument  # python-docx is loaded only to build one

LEAD_HEADERS = ("Mã đơn vị", "Tên đơn vị", "Nhóm")
SOURCE_HEADER = "Tệp nguồn"
REVIEW_HEADERS = ("Mã đơn vị", "Tên đơn vị", "Nhóm", "Tệp", "Bảng số", "Tiêu đề cột", "Số dòng", "Lý do")
SHAPE_HEADERS = ("Bảng", "Trang tính", "Tiêu đề cột", "Số đơn vị", "Số bảng", "Số dòng", "Cột được cộng")
MISSING_HEADERS = ("Mã đơn vị", "Tên đơn vị", "Nhóm")
TEXT_WIDTH = 22  # the widest a text column grows before it wraps (the sheets are printed, fitted to A4 width)
GROUP_TOTAL = "Cộng nhóm {group}"
GRAND_TOTAL = "Tổng cộng"
NOT_SUBMITTED = "Chưa nộp báo cáo"

_SUBTOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")
_TOTAL_FILL = PatternFill("solid", fgColor="D9E1F2")
_BOLD = Font(bold=True)
_WRAP = Alignment(vertical="top", wrap_text=True)
_INTEGER_FORMAT = "#,##0"
_DECIMAL_FORMAT = "#,##0.0##"


# ---------------------------------------------------------------- the workbook


def _safe(value: Any) -> Any:
    """For python-docx, which (unlike ``workbook.put``) writes what it is given."""
    return XML_ILLEGAL.sub("", value) if isinstance(value, str) else value


def build_workbook(comp: Compilation) -> Workbook:
    wb = Workbook()
    summary = wb.worksheets[0]  # a new workbook's one sheet
    summary.title = SUMMARY_SHEET
    for shape in comp.shapes:
        _shape_sheet(wb.create_sheet(shape.sheet), comp, shape)
    _review_sheet(wb.create_sheet(REVIEW_SHEET), comp)
    _summary_sheet(summary, comp)
    wb.properties.title = f"Tổng hợp: {comp.campaign.title}"
    wb.properties.creator = "mailbot"
    return wb


def save_xlsx(comp: Compilation, path: Path) -> Path:
    """Write the workbook to ``path`` (parents created) through a temporary file."""
    return _save(Path(path), ".xlsx", "the workbook", lambda out: build_workbook(comp).save(out))


def _save(path: Path, suffix: str, what: str, save: Callable[[io.BytesIO], object]) -> Path:
    if path.suffix.lower() != suffix:
        raise MailbotError(f"{path}: {what} must be a {suffix} file")
    buffer = io.BytesIO()
    save(buffer)
    return _write(path, buffer.getvalue())


def _write(path: Path, data: bytes) -> Path:
    return save_output(path, data)


def _number_format(shape: Shape, j: int) -> str:
    values = [r.cells[j] for r in shape.rows if isinstance(r.cells[j], (int, float))]
    return _INTEGER_FORMAT if all(isinstance(v, int) for v in values) else _DECIMAL_FORMAT


def _shape_sheet(ws: Worksheet, comp: Compilation, shape: Shape) -> None:
    headers = (*LEAD_HEADERS, *shape.header, SOURCE_HEADER)
    lead = len(LEAD_HEADERS)
    lines: list[list[Any]] = []
    kinds: list[str] = []  # "row", "group", "total"
    for subtotal in shape.groups:
        for row in (row for row in shape.rows if row.group == subtotal.group):
            lines.append([row.code, row.name, row.group, *row.cells, f"{row.file} (bảng {row.table})"])
            kinds.append("row")
        lines.append(["", GROUP_TOTAL.format(group=subtotal.group), subtotal.group, *subtotal.values, ""])
        kinds.append("group")
    lines.append(["", GRAND_TOTAL, "", *shape.total.values, ""])
    kinds.append("total")
    write_table(ws, 1, headers, lines)
    formats = {lead + j + 1: _number_format(shape, j) for j in range(len(shape.header)) if shape.numeric[j]}
    for r, (line, kind) in enumerate(zip(lines, kinds), start=2):
        for col, value in enumerate(line, start=1):
            cell = ws.cell(r, col)
            if col in formats:
                cell.number_format = formats[col]
            elif isinstance(value, str) and "\n" in value:
                cell.alignment = _WRAP
            if kind != "row":
                cell.font = _BOLD
                cell.fill = _TOTAL_FILL if kind == "total" else _SUBTOTAL_FILL
    ws.freeze_panes = "C2"  # the header and the institution's code and name stay in sight
    ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(lines)}"  # the grand total stays below it
    # Narrow columns that wrap, so the sheet prints on A4 landscape at a readable size.
    caps = (11, 24, 12, *(TEXT_WIDTH for _ in shape.header), TEXT_WIDTH)
    widths = fit_columns(ws, [headers, *lines], caps)
    text_columns = [col for col in range(2, len(headers) + 1) if col not in formats]
    wrap_rows(ws, 1, [headers, *lines], widths, text_columns)
    print_setup(ws, comp.campaign.title, shape.sheet, title_row=1)


def _review_sheet(ws: Worksheet, comp: Compilation) -> None:
    rows = [[i.code, i.name, i.group, i.file, i.table, i.header, i.rows, i.reason] for i in comp.leftovers]
    write_table(ws, 1, REVIEW_HEADERS, rows)
    finish_table(ws, REVIEW_HEADERS, rows, (2, 4, 6, 8), (11, 24, 12, TEXT_WIDTH, 8, TEXT_WIDTH, 8, 30))
    print_setup(ws, comp.campaign.title, REVIEW_SHEET, title_row=1)


def _summary_sheet(ws: Worksheet, comp: Compilation) -> None:
    c = comp.campaign
    total = len(comp.reports)
    submitted = sum(1 for r in comp.reports if r.submitted)
    put(ws, 1, 1, c.title).font = Font(bold=True, size=14)
    ws["A2"] = f"Hạn nộp: {local_time(c.deadline, comp.zone)}"
    ws["A3"] = f"Tổng hợp lúc {local_time(comp.generated_at, comp.zone)}"
    ws["A4"] = (
        f"Đơn vị đã nộp: {submitted}/{total}; đọc được báo cáo: {len(comp.readable)}; "
        f"có số liệu trong các bảng tổng hợp: {len(comp.contributors)}"
    )
    ws["A5"] = f"Mục cần xem xét (trang “{REVIEW_SHEET}”): {len(comp.leftovers)}"
    header_row = 7
    shape_rows = [
        [
            s.number,
            s.sheet,
            " | ".join(n for n in s.header if n),
            len(s.institutions),
            s.tables,
            len(s.rows),
            ", ".join(n for n, on in zip(s.header, s.summed) if on),
        ]
        for s in comp.shapes
    ]
    write_table(ws, header_row, SHAPE_HEADERS, shape_rows)
    for offset, shape in enumerate(comp.shapes, start=1):
        cell = ws.cell(header_row + offset, 2)
        cell.hyperlink = Hyperlink(ref=cell.coordinate, location=f"'{shape.sheet.replace(chr(39), chr(39) * 2)}'!A1")
        cell.font = Font(color="0563C1", underline="single")
        ws.cell(header_row + offset, 3).alignment = _WRAP
    missing_at = header_row + len(shape_rows) + 2
    ws.cell(missing_at, 1, f"Đơn vị chưa nộp báo cáo ({len(comp.missing)})").font = _BOLD
    missing_rows = [[r.code, r.name, r.group] for r in comp.missing]
    write_table(ws, missing_at + 1, MISSING_HEADERS, missing_rows)
    width = len(SHAPE_HEADERS)
    fit_columns(ws, [list(SHAPE_HEADERS), *shape_rows, *([*r, *[None] * (width - 3)] for r in missing_rows)])
    print_setup(ws, c.title, SUMMARY_SHEET, title_row=None)


# ---------------------------------------------------------------- the Word document


def build_docx(comp: Compilation) -> WordDocument:
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    document = docx.Document()
    normal = document.styles["Normal"]
    normal.font.name, normal.font.size = "Times New Roman", Pt(13)
    title = document.add_heading(_safe(_title(comp)), level=0)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    submitted = sum(1 for r in comp.reports if r.submitted)
    intro = document.add_paragraph()
    intro.add_run(
        f"Tổng hợp lúc {local_time(comp.generated_at, comp.zone)}; {submitted}/{len(comp.reports)} "
        f"đơn vị đã nộp báo cáo. Văn bản dưới đây chép lại nội dung báo cáo của từng đơn vị, "
        f"theo nhóm, làm tư liệu cho báo cáo chung."
    ).italic = True
    by_group: dict[str, list[InstitutionReport]] = defaultdict(list)
    for r in comp.reports:
        by_group[r.group].append(r)
    for group in (*comp.group_order, *(g for g in by_group if g not in comp.group_order)):
        if group not in by_group:
            continue
        document.add_heading(_safe(group), level=1)
        for r in by_group[group]:
            document.add_heading(_safe(f"{r.name} ({r.code})"), level=2)
            if not r.submitted:
                _note(document, NOT_SUBMITTED)
                continue
            when = local_time(r.submitted_at, comp.zone)
            _note(document, f"Nộp lúc {when}; tệp: {', '.join(f.name for f in r.files) or '(không có tệp Word)'}")
            for f in r.files:
                if len(r.files) > 1:
                    document.add_heading(_safe(f.name), level=3)
                if f.problem:
                    _note(document, f.problem)
                    continue
                for block in f.blocks:
                    if isinstance(block, str):
                        document.add_paragraph(_safe(block))
                    else:
                        _word_table(document, block)
    document.core_properties.title = _safe(_title(comp))
    document.core_properties.author = "mailbot"
    return document


def _title(comp: Compilation) -> str:
    return f"Tổng hợp báo cáo: {comp.campaign.title}"


def _note(document: WordDocument, text: str) -> None:
    document.add_paragraph().add_run(_safe(text)).italic = True


def _word_table(document: WordDocument, table: Table) -> None:
    width = max((len(r) for r in table.rows), default=0)
    if not width:
        return
    out = document.add_table(rows=len(table.rows), cols=width)
    out.style = "Table Grid"
    for i, row in enumerate(table.rows):
        cells = out.rows[i].cells
        for j, text in enumerate(row):
            cells[j].text = _safe(text)
            if i == 0:
                for run in cells[j].paragraphs[0].runs:
                    run.bold = True
    document.add_paragraph()


def save_docx(comp: Compilation, path: Path) -> Path:
    """Write the Word document to ``path`` (parents created) through a temporary file."""
    return _save(Path(path), ".docx", "the document", lambda out: build_docx(comp).save(out))


__all__ = ["GRAND_TOTAL", "NOT_SUBMITTED", "build_docx", "build_workbook", "save_docx", "save_xlsx"]
