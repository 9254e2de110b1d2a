"""The Excel tracker staff open: a summary with a chart, one sheet per group (what its cells say:
``reports.tracker_rows``)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import mailbot.reports.lean_openpyxl  # noqa: F401  # before openpyxl: see there

# isort: split

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.data_source import AxDataSource, StrRef
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.header_footer import HeaderFooterItem
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.files import write_atomic
from mailbot.models import PaperMode
from mailbot.reports.status import CampaignStatus, InstitutionStatus
from mailbot.reports.tracker_rows import (
    GROUP_HEADERS,
    REVIEW_HEADERS,
    REVIEW_SHEET,
    STAMPED_HEADERS,
    STATUS_ORDER,
    SUMMARY_HEADERS,
    SUMMARY_SHEET,
    XML_ILLEGAL,
    institution_row,
    review_row,
    summary_row,
    summary_total,
    unique_sheet_name,
)
from mailbot.wording import local_time

DATE_FORMAT = "dd/mm/yyyy hh:mm"
PERCENT_FORMAT = "0.0%"
RECEIPT_FORMAT = '"#"0'  # shows #12, the number staff type in `mailbot review assign`

MIN_WIDTH, MAX_WIDTH = 8, 60
LINE_HEIGHT = 15.0  # points per line of the default 11 pt font
# Widest each column may grow (text wraps below it). Staff print the tracker for the director on A4 landscape,
# fitted to the page width: about 160 width units in all keep the printed text near 7.5 pt (LibreOffice-measured).
GROUP_WIDTHS = (4, 11, 20, 9, 16, 5, 16, 13, 22, 14, 8, 9, 15)
REVIEW_WIDTHS = (6, 24, 40, 16, 40, 30)

# Excel's own Good / Neutral / Bad styles: light fills with dark text stay legible when printed in grey,
# and the status word itself carries the meaning.
STATUS_FILL = {"on_time": "C6EFCE", "late": "FFEB9C", "missing": "FFC7CE"}
STATUS_FONT = {"on_time": "006100", "late": "9C5700", "missing": "9C0006"}
# Chart colours differ in lightness too, so the three series stay apart on a black-and-white printout.
SERIES_COLOUR = {"on_time": "70AD47", "late": "FFC000", "missing": "C00000"}

_HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
_HEADER_FONT = Font(bold=True)
_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_TOP = Alignment(vertical="top")
_WRAP = Alignment(vertical="top", wrap_text=True)
FORMULA_LEADS = ("=", "+", "-", "@")  # what makes Excel or LibreOffice read typed text as a formula


def build_tracker(cs: CampaignStatus, zone: ZoneInfo, *, generated_at: datetime) -> Workbook:
    """The whole tracker in memory; ``generated_at`` must be aware (it is printed in ``zone``)."""
    if generated_at.tzinfo is None:
        raise ValueError("generated_at must be timezone-aware")
    wb = Workbook()
    summary = wb.worksheets[0]  # a new workbook's one sheet
    summary.title = SUMMARY_SHEET
    taken = {SUMMARY_SHEET.casefold(), REVIEW_SHEET.casefold()}
    sheet_of: dict[str, str] = {}
    for group, members in cs.groups().items():
        sheet_of[group] = unique_sheet_name(group, taken)
        _group_sheet(wb.create_sheet(sheet_of[group]), cs, group, members, zone)
    _review_sheet(wb.create_sheet(REVIEW_SHEET), cs, zone)
    _summary_sheet(summary, cs, sheet_of, zone, generated_at)
    wb.properties.title = cs.campaign.title
    wb.properties.creator = "mailbot"
    return wb


def save_tracker(cs: CampaignStatus, zone: ZoneInfo, path: Path, *, generated_at: datetime) -> Path:
    """Write the tracker to ``path`` (parents created) via a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, tracker_bytes(cs, zone, generated_at=generated_at))


def tracker_bytes(cs: CampaignStatus, zone: ZoneInfo, *, generated_at: datetime) -> bytes:
    """The .xlsx file as bytes, e.g. for an email attachment."""
    buffer = io.BytesIO()
    build_tracker(cs, zone, generated_at=generated_at).save(buffer)
    return buffer.getvalue()


# --- summary -----------------------------------------------------------------------------------------------


def _summary_sheet(
    ws: Worksheet, cs: CampaignStatus, sheet_of: dict[str, str], zone: ZoneInfo, generated_at: datetime
) -> None:
    put(ws, 1, 1, cs.campaign.title).font = Font(bold=True, size=14)
    ws["A2"] = f"Hạn nộp: {local_time(cs.campaign.deadline, zone)}"
    ws["A3"] = f"Cập nhật lúc {local_time(generated_at, zone)}"
    ws["A4"] = f"Thư chờ cán bộ xem xét: {len(cs.review)}"
    header_row = 6
    stamped = cs.campaign.paper is not PaperMode.NONE
    headers = (*SUMMARY_HEADERS, *STAMPED_HEADERS) if stamped else SUMMARY_HEADERS
    rows = [summary_row(group, members, stamped=stamped) for group, members in cs.groups().items()]
    rows.append(summary_total(rows))
    write_table(ws, header_row, headers, rows)
    last = header_row + len(rows)
    for r in range(header_row + 1, last + 1):
        ws.cell(r, 6).number_format = PERCENT_FORMAT
    for col in range(1, len(headers) + 1):
        ws.cell(last, col).font = Font(bold=True)
    _link_groups(ws, header_row + 1, list(sheet_of.values()))
    fit_columns(ws, [headers, *rows])  # the title lines above may overflow to the right
    chart_at = f"{get_column_letter(len(headers) + 2)}{header_row}"
    ws.add_chart(_status_chart(ws, header_row, last - 1, rows[:-1]), chart_at)
    print_setup(ws, cs.campaign.title, SUMMARY_SHEET, title_row=None)


def _link_groups(ws: Worksheet, first_row: int, sheets: Sequence[str]) -> None:
    """Each group's name jumps to its sheet, a convenience for staff with many groups."""
    for offset, sheet in enumerate(sheets):
        cell = ws.cell(first_row + offset, 1)
        cell.hyperlink = Hyperlink(ref=cell.coordinate, location=f"'{sheet.replace(chr(39), chr(39) * 2)}'!A1")
        cell.font = Font(color="0563C1", underline="single")


def _status_chart(ws: Worksheet, header_row: int, last_row: int, rows: Sequence[Sequence[Any]]) -> BarChart:
    chart = BarChart()
    chart.type = "col"
    chart.grouping = "stacked"
    chart.overlap = 100  # stacked bars need full overlap, otherwise Excel draws them side by side
    chart.title = "Tình hình nộp báo cáo theo nhóm"
    chart.x_axis.title = "Nhóm đơn vị"
    chart.y_axis.title = "Số đơn vị"
    data = Reference(ws, min_col=3, max_col=5, min_row=header_row, max_row=last_row)
    chart.add_data(data, titles_from_data=True)
    groups = Reference(ws, min_col=1, min_row=header_row + 1, max_row=last_row)
    for series, key in zip(chart.series, STATUS_ORDER):
        # Group names are text: a string reference (set_categories would declare them numbers).
        series.cat = AxDataSource(strRef=StrRef(f=str(groups)))
        series.graphicalProperties.solidFill = SERIES_COLOUR[key]
        series.graphicalProperties.line.solidFill = SERIES_COLOUR[key]
    _integer_axis(chart, max((r[1] for r in rows), default=0))
    # openpyxl >= 3.1 marks axes as deleted by default, and recent Excel then hides them.
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.legend.position = "b"
    chart.width = max(16.0, 2.5 * len(rows) + 6)  # type: ignore[assignment]  # cm: the stubs say int, Excel takes any
    chart.height = 9.0
    return chart


def _integer_axis(chart: BarChart, biggest: int) -> None:
    # Institutions come whole: avoid ticks at 0.5 when groups are small.
    chart.y_axis.scaling.min = 0
    chart.y_axis.majorUnit = max(1, math.ceil(biggest / 10))
    chart.y_axis.number_format = "0"


# --- one sheet per group -----------------------------------------------------------------------------------


def _group_sheet(
    ws: Worksheet, cs: CampaignStatus, group: str, members: Sequence[InstitutionStatus], zone: ZoneInfo
) -> None:
    rows = [institution_row(n, inst, zone) for n, inst in enumerate(members, start=1)]
    write_table(ws, 1, GROUP_HEADERS, rows)
    for r, inst in enumerate(members, start=2):
        ws.cell(r, 5).number_format = DATE_FORMAT
        _paint_status(cast(Cell, ws.cell(r, 4)), inst.status)
    finish_table(ws, GROUP_HEADERS, rows, wrap=(3, 7, 8, 9, 10, 12, 13), caps=GROUP_WIDTHS)
    print_setup(ws, cs.campaign.title, group, title_row=1)


def _paint_status(cell: Cell, status: str) -> None:
    cell.fill = PatternFill("solid", fgColor=STATUS_FILL[status])
    cell.font = Font(bold=True, color=STATUS_FONT[status])


# --- review queue ------------------------------------------------------------------------------------------


def _review_sheet(ws: Worksheet, cs: CampaignStatus, zone: ZoneInfo) -> None:
    rows = [review_row(item, zone) for item in cs.review]
    write_table(ws, 1, REVIEW_HEADERS, rows)
    for r in range(2, len(rows) + 2):
        ws.cell(r, 1).number_format = RECEIPT_FORMAT
        ws.cell(r, 4).number_format = DATE_FORMAT
    finish_table(ws, REVIEW_HEADERS, rows, wrap=(2, 3, 5, 6), caps=REVIEW_WIDTHS)
    print_setup(ws, cs.campaign.title, REVIEW_SHEET, title_row=1)


# --- shared layout -----------------------------------------------------------------------------------------


def put(ws: Worksheet, row: int, col: int, value: Any) -> Cell:
    """Write ``value``; text is always a text cell, never a formula, whatever a sender put in a subject or a table.

    openpyxl turns any str that starts with '=' into a formula (``=HYPERLINK(...)`` from a subject would be a live
    link in every digest's tracker). Text cells also get Excel's quote prefix (the leading apostrophe, not shown)
    when they start with '=', '+', '-' or '@', so they stay text when staff edit them or save them as CSV.
    """
    cell = cast(Cell, ws.cell(row, col))  # a MergedCell only inside a merged range: mailbot merges none
    if isinstance(value, str):
        value = XML_ILLEGAL.sub("", value)
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
        if value.startswith(FORMULA_LEADS):
            cell.quotePrefix = True
    return cell


def write_table(ws: Worksheet, header_row: int, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A bordered table: the header row in bold on grey, then the rows, every value written through ``put``."""
    for col, title in enumerate(headers, start=1):
        cell = put(ws, header_row, col, title)
        cell.font, cell.fill, cell.border = _HEADER_FONT, _HEADER_FILL, _BORDER
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    for r, row in enumerate(rows, start=header_row + 1):
        for col, value in enumerate(row, start=1):
            cell = put(ws, r, col, value)
            cell.border, cell.alignment = _BORDER, _TOP


def finish_table(
    ws: Worksheet, headers: Sequence[str], rows: Sequence[Sequence[Any]], wrap: Sequence[int], caps: Sequence[int] = ()
) -> None:
    """Header frozen and filtered, widths fitted (within ``caps``), wrapped columns given row heights."""
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(rows) + 1}"
    widths = fit_columns(ws, [headers, *rows], caps)
    wrap_rows(ws, 1, [headers, *rows], widths, wrap)


def wrap_rows(
    ws: Worksheet, first_row: int, rows: Sequence[Sequence[Any]], widths: Sequence[float], wrap: Sequence[int]
) -> None:
    """Wrap the text of ``wrap`` columns and make each row tall enough for it (header rows wrap every column)."""
    for r, row in enumerate(rows, start=first_row):
        columns = range(1, len(row) + 1) if r == first_row else wrap
        for col in columns:
            if r != first_row:
                ws.cell(r, col).alignment = _WRAP
        lines = max((_line_count(row[c - 1], widths[c - 1]) for c in columns), default=1)
        if lines > 1:
            # Excel does not grow rows for wrapped text written by a program, so size them here.
            ws.row_dimensions[r].height = LINE_HEIGHT * lines


def fit_columns(ws: Worksheet, table: Sequence[Sequence[Any]], caps: Sequence[int] = ()) -> list[float]:
    """Each column as wide as its longest line, between MIN_WIDTH and its cap (MAX_WIDTH by default)."""
    widths: list[float] = []
    for col in range(1, len(table[0]) + 1):
        longest = max(_display_length(row[col - 1]) for row in table)
        cap = caps[col - 1] if col <= len(caps) else MAX_WIDTH
        width = float(min(cap, max(min(MIN_WIDTH, cap), longest + 2)))
        ws.column_dimensions[get_column_letter(col)].width = width
        widths.append(width)
    return widths


def _display_length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return len(DATE_FORMAT)
    if isinstance(value, float):
        return 7  # "100.0%"
    return max((len(line) for line in str(value).split("\n")), default=0)


def _line_count(value: Any, width: float) -> int:
    # A rough estimate (one character per width unit) that errs towards a taller row rather than hidden text.
    usable = max(1, int(width) - 2)
    return sum(max(1, math.ceil(len(line) / usable)) for line in str(value or "").split("\n"))


def print_setup(ws: Worksheet, title: str, sheet_label: str, title_row: int | None) -> None:
    """A4 landscape, fitted to the page width, narrow margins; the sheet (the group) heads every page."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages tall as needed
    if ws.sheet_properties.pageSetUpPr is None:
        ws.sheet_properties.pageSetUpPr = PageSetupProperties()
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.75, bottom=0.6, header=0.3, footer=0.3)
    ws.print_options.horizontalCentered = True
    if title_row:
        ws.print_title_rows = f"{title_row}:{title_row}"  # repeat the header on every printed page
    # '&' starts a code in Excel headers, so a literal one is doubled.
    header, footer = cast(HeaderFooterItem, ws.oddHeader), cast(HeaderFooterItem, ws.oddFooter)  # never None
    header.center.text = sheet_label.replace("&", "&&")
    header.center.font = "-,Bold"
    header.center.size = 12
    footer.left.text = title.replace("&", "&&")
    footer.left.size = 8
    footer.right.text = "Trang &P / &N"
