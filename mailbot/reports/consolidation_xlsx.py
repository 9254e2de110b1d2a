"""The department's workbook from a template-driven consolidation.

Sheets: "Tổng hợp chung" (participation per group, the institutions still missing, the sheets); per template table
"Bảng N": one row per template row (its label as the template writes it), then the city-wide figure of each value
column and a block of the same columns per group; "Chi tiết bảng N": the same rows, and for each value column one
column per institution (grouped by group, roster order) under the institution's name, which links to its file.
Every figure of "Bảng N" is a formula ``=SUM(...)`` over a contiguous range of "Chi tiết bảng N" (the value
column's block, or the group's part of it), so staff trace any total back to the schools; Excel and LibreOffice
compute them on opening. "Chưa khớp mẫu" lists what did not match: institution, file (linked), table, row or column,
the text found, why.

Links: with ``[web] public_url`` set, a file links to the staff pages' ``/files/{id}`` (behind the staff login);
otherwise ``link_for`` is given by the caller (the CLI links the archived file by its path relative to the
workbook, which opens on the server or in a copy of the data folder kept beside it).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import mailbot.reports.lean_openpyxl  # noqa: F401  # before openpyxl: see there

# isort: split

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.errors import MailbotError
from mailbot.files import save_output
from mailbot.reports.consolidate import Consolidation, Source, TableResult
from mailbot.reports.numbers import plain_number
from mailbot.reports.workbook import fit_columns, print_setup, put, write_table
from mailbot.wording import local_time

SUMMARY_SHEET = "Tổng hợp chung"
UNMATCHED_SHEET = "Chưa khớp mẫu"
TABLE_SHEET = "Bảng {n}"
DETAIL_SHEET = "Chi tiết bảng {n}"
CITY = "Toàn thành phố"
PARTICIPATION_HEADERS = ("Nhóm", "Số đơn vị", "Đã nộp", "Đúng hạn", "Nộp muộn", "Chưa nộp")
UNMATCHED_HEADERS = (
    "Mã đơn vị",
    "Tên đơn vị",
    "Nhóm",
    "Tệp",
    "Bảng",
    "Dòng / cột",
    "Loại",
    "Nội dung tìm thấy",
    "Lý do",
)
MISSING_HEADERS = ("Mã đơn vị", "Tên đơn vị", "Nhóm")
FIRST_DATA_ROW = 5  # in both sheets of a table: title, block names, sub-names, column names, then the rows
MAX_COLUMNS = 16_000  # Excel's 16,384 columns, the label columns aside

Linker = Callable[[Source], str | None]

_BOLD = Font(bold=True)
_LINK = Font(color="0563C1", underline="single")
_HEAD_FILL = PatternFill("solid", fgColor="D9E1F2")
_CITY_FILL = PatternFill("solid", fgColor="FFF2CC")
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_TOP_WRAP = Alignment(vertical="top", wrap_text=True)


def linker(public_url: str, archive_dir: Path, beside: Path | None) -> Linker:
    """Where a file links: the staff pages' /files/{id} under ``public_url``, else its path relative to ``beside``
    (the workbook's folder), else none."""

    def link(source: Source) -> str | None:
        if public_url and source.file_id is not None:
            return f"{public_url.rstrip('/')}/files/{source.file_id}"
        if beside is not None:
            return os.path.relpath(archive_dir / source.path, beside.resolve()).replace(os.sep, "/")
        return None

    return link


def build_workbook(comp: Consolidation, link_for: Linker) -> Workbook:
    wb = Workbook()
    summary = wb.worksheets[0]
    summary.title = SUMMARY_SHEET
    for result in comp.tables:
        n = result.template.number
        detail = wb.create_sheet(DETAIL_SHEET.format(n=n))
        table = wb.create_sheet(TABLE_SHEET.format(n=n), index=len(wb.worksheets) - 1)
        spans = _detail_sheet(detail, comp, result, link_for)
        _table_sheet(table, comp, result, detail.title, spans)
    _unmatched_sheet(wb.create_sheet(UNMATCHED_SHEET), comp, link_for)
    _summary_sheet(summary, comp)
    wb.calculation.fullCalcOnLoad = True  # the totals are formulas: computed when the file is opened
    wb.properties.title = f"Tổng hợp: {comp.campaign.title}"
    wb.properties.creator = "mailbot"
    return wb


def save_workbook(comp: Consolidation, path: Path, link_for: Linker) -> Path:
    if path.suffix.lower() != ".xlsx":
        raise MailbotError(f"{path}: the workbook must be a .xlsx file")
    return _write(path, workbook_bytes(comp, link_for))


def workbook_bytes(comp: Consolidation, link_for: Linker) -> bytes:
    buffer = io.BytesIO()
    build_workbook(comp, link_for).save(buffer)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> Path:
    return save_output(path, data)


def _head(ws: Worksheet, row: int, col: int, value: str, width: int = 1) -> None:
    cell = put(ws, row, col, value)
    cell.font, cell.fill, cell.alignment = _BOLD, _HEAD_FILL, _CENTER
    if width > 1:
        ws.merge_cells(start_row=row, start_column=col, end_row=row, end_column=col + width - 1)


def _labels(ws: Worksheet, result: TableResult) -> None:
    """Columns A and B: the template row's number and label, and the headers above them."""
    t = result.template
    _head(ws, 2, 1, "TT")
    _head(ws, 2, 2, t.label.name or "Nội dung")
    for at in (3, 4):
        for col in (1, 2):
            ws.cell(at, col).fill = _HEAD_FILL
    ws.merge_cells(start_row=2, start_column=1, end_row=4, end_column=1)
    ws.merge_cells(start_row=2, start_column=2, end_row=4, end_column=2)
    for r, row in enumerate(t.rows):
        put(ws, FIRST_DATA_ROW + r, 1, r + 1)
        put(ws, FIRST_DATA_ROW + r, 2, row.label).alignment = _TOP_WRAP
    ws.column_dimensions["A"].width = 5
    ws.column_dimensions["B"].width = 45
    ws.freeze_panes = f"C{FIRST_DATA_ROW}"


Spans = dict[tuple[int, str | None], tuple[int, int]]  # (value column, group or None) → first, last detail column


def _detail_sheet(ws: Worksheet, comp: Consolidation, result: TableResult, link_for: Linker) -> Spans:
    t = result.template
    entries = result.entries
    if len(t.columns) * max(len(entries), 1) > MAX_COLUMNS:
        raise MailbotError(f"table {t.number}: too many institutions for one sheet ({len(entries)})")
    put(ws, 1, 1, f"{t.name} - số liệu của từng đơn vị").font = Font(bold=True, size=13)
    _labels(ws, result)
    spans: Spans = {}
    col = 3
    for c, column in enumerate(t.columns):
        width = max(len(entries), 1)
        _head(ws, 2, col, column.name, width)
        spans[(c, None)] = (col, col + width - 1)
        for k, e in enumerate(entries):
            at = col + k
            if (c, e.group) not in spans:
                size = sum(1 for x in entries if x.group == e.group)
                spans[(c, e.group)] = (at, at + size - 1)
                _head(ws, 3, at, e.group, size)
            cell = put(ws, 4, at, f"{e.name} ({e.code})")
            cell.font, cell.alignment, cell.fill = _LINK, _CENTER, _HEAD_FILL
            target = link_for(e.source)
            if target:
                cell.hyperlink = Hyperlink(ref=cell.coordinate, target=target, tooltip=e.source.name)
            for r, values in enumerate(e.values):
                value = values[c]
                if value is not None:
                    put(ws, FIRST_DATA_ROW + r, at, plain_number(value)).number_format = _format(value)
            ws.column_dimensions[get_column_letter(at)].width = 14
        col += width
    ws.row_dimensions[4].height = 60
    print_setup(ws, comp.campaign.title, ws.title, title_row=None)
    return spans


def _table_sheet(ws: Worksheet, comp: Consolidation, result: TableResult, detail: str, spans: Spans) -> None:
    t = result.template
    put(ws, 1, 1, t.name).font = Font(bold=True, size=13)
    _labels(ws, result)
    blocks: list[str | None] = [None, *(g for g in comp.groups if (0, g) in spans)]
    quoted = "'" + detail.replace("'", "''") + "'"
    col = 3
    for group in blocks:
        _head(ws, 2, col, CITY if group is None else group, len(t.columns))
        for c, column in enumerate(t.columns):
            _head(ws, 3, col + c, column.name)
            ws.merge_cells(start_row=3, start_column=col + c, end_row=4, end_column=col + c)
            first, last = spans[(c, group)]
            for r in range(len(t.rows)):
                row = FIRST_DATA_ROW + r
                span = f"{get_column_letter(first)}{row}:{get_column_letter(last)}{row}"
                cell = ws.cell(row, col + c, f"=SUM({quoted}!{span})")  # a formula by design: not through put
                cell.number_format = "#,##0.##"
                if group is None:
                    cell.fill, cell.font = _CITY_FILL, _BOLD
            ws.column_dimensions[get_column_letter(col + c)].width = 13
        col += len(t.columns)
    print_setup(ws, comp.campaign.title, ws.title, title_row=None)


def _format(value: Decimal) -> str:
    return "#,##0" if value == value.to_integral_value() else "#,##0.0##"


def _unmatched_sheet(ws: Worksheet, comp: Consolidation, link_for: Linker) -> None:
    names = {t.template.number: t.template.name for t in comp.tables}
    rows: list[Sequence[Any]] = [
        [
            i.code,
            i.name,
            i.group,
            i.source.name if i.source else "",
            names.get(i.table, ""),
            i.where,
            i.kind,
            i.found,
            i.reason,
        ]
        for i in comp.items
    ]
    write_table(ws, 1, UNMATCHED_HEADERS, rows)
    for r, item in enumerate(comp.items, start=2):
        target = link_for(item.source) if item.source else None
        if target:
            cell = ws.cell(r, 4)
            cell.hyperlink = Hyperlink(ref=cell.coordinate, target=target)
            cell.font = _LINK
        for col in (2, 5, 6, 8, 9):
            ws.cell(r, col).alignment = _TOP_WRAP
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(UNMATCHED_HEADERS))}{len(rows) + 1}"
    fit_columns(ws, [list(UNMATCHED_HEADERS), *rows], (11, 24, 12, 24, 24, 30, 8, 30, 40))
    print_setup(ws, comp.campaign.title, UNMATCHED_SHEET, title_row=1)


def _summary_sheet(ws: Worksheet, comp: Consolidation) -> None:
    c = comp.campaign
    overall = comp.overall
    put(ws, 1, 1, c.title).font = Font(bold=True, size=14)
    put(
        ws,
        2,
        1,
        f"Hạn nộp: {local_time(c.deadline, comp.zone)}; tổng hợp lúc {local_time(comp.generated_at, comp.zone)}",
    )
    put(ws, 3, 1, f"Theo mẫu báo cáo: {comp.template.name}")
    put(ws, 4, 1, f"Mục chưa khớp mẫu (trang “{UNMATCHED_SHEET}”): {len(comp.items)}")
    rows: list[list[Any]] = [[p.group, p.total, p.submitted, p.on_time, p.late, p.missing] for p in comp.participation]
    rows.append(["Tổng cộng", overall.total, overall.submitted, overall.on_time, overall.late, overall.missing])
    write_table(ws, 6, PARTICIPATION_HEADERS, rows)
    for col in range(1, len(PARTICIPATION_HEADERS) + 1):
        ws.cell(6 + len(rows), col).font = _BOLD
    at = 6 + len(rows) + 2
    put(ws, at, 1, "Các bảng tổng hợp").font = _BOLD
    for k, result in enumerate(comp.tables, start=1):
        cell = put(ws, at + k, 1, result.template.name)
        sheet = TABLE_SHEET.format(n=result.template.number)
        cell.hyperlink = Hyperlink(ref=cell.coordinate, location=f"'{sheet}'!A1")
        cell.font = _LINK
    at += len(comp.tables) + 2
    missing = [[m.code, m.name, m.group] for m in comp.members if m.status == "missing"]
    put(ws, at, 1, f"Đơn vị chưa nộp báo cáo ({len(missing)})").font = _BOLD
    write_table(ws, at + 1, MISSING_HEADERS, missing)
    fit_columns(
        ws, [list(PARTICIPATION_HEADERS), *rows, *([*m, "", "", ""] for m in missing)], (14, 40, 16, 10, 10, 10)
    )
    print_setup(ws, c.title, SUMMARY_SHEET, title_row=None)


__all__ = [
    "DETAIL_SHEET",
    "SUMMARY_SHEET",
    "TABLE_SHEET",
    "UNMATCHED_SHEET",
    "Linker",
    "build_workbook",
    "save_workbook",
    "workbook_bytes",
]
