"""The Excel tracker staff open: a summary with a chart, one sheet per group."""

from __future__ import annotations

import io
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
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
from mailbot.models import Notice, PaperMode, WarningCode
from mailbot.reports import stamps
from mailbot.reports.status import CampaignStatus, FileRow, InstitutionStatus, ReviewItem
from mailbot.wording import IDENTIFIED_BY, STATUS, clip, document_title, local_time, warning_text, warning_texts

SUMMARY_SHEET = "Tổng hợp"
REVIEW_SHEET = "Thư chờ cán bộ xem xét"

GROUP_HEADERS = (
    "STT",
    "Mã đơn vị",
    "Tên đơn vị",
    "Tệp Word",
    "Thời điểm nộp lần đầu",
    "Số lần nộp",
    "Tệp đã nhận",
    "Văn bản (số, ngày)",
    "Trích yếu",
    "Người ký",
    "Bản có dấu đỏ",
    "Nhận diện",
    "Lưu ý",
)
SUMMARY_HEADERS = ("Nhóm", "Số đơn vị", STATUS["on_time"], STATUS["late"], STATUS["missing"], "Tỉ lệ đã nộp")
# Added to the summary when the campaign asks for the stamped copy: "submitted" stays the Word file.
STAMPED_HEADERS = ("Đã có bản dấu đỏ", "Đủ hồ sơ")
REVIEW_HEADERS = ("Số", "Người gửi", "Tiêu đề", "Nhận lúc", "Lý do", "Tệp")
STATUS_ORDER = ("on_time", "late", "missing")

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
_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
_SHEET_NAME_LIMIT = 31


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


# --- sheet names -------------------------------------------------------------------------------------------


def unique_sheet_name(wanted: str, taken: set[str]) -> str:
    """A legal Excel sheet name close to ``wanted`` (diacritics kept), not yet in ``taken``; adds it there.

    Excel compares sheet names without regard to case, so ``taken`` holds casefolded names.
    """
    base = sanitise_sheet_name(wanted)
    name, n = base, 1
    while name.casefold() in taken:
        n += 1
        suffix = f" ({n})"
        name = _clip(base, _SHEET_NAME_LIMIT - len(suffix)).rstrip() + suffix
    taken.add(name.casefold())
    return name


def sanitise_sheet_name(wanted: str) -> str:
    text = _FORBIDDEN.sub("-", unicodedata.normalize("NFC", wanted))
    # Excel refuses names that begin or end with an apostrophe.
    text = " ".join(text.split()).strip("'").strip()
    return _clip(text, _SHEET_NAME_LIMIT).rstrip() or "Nhóm"


def _clip(text: str, limit: int) -> str:
    # The limit counts UTF-16 units: every Vietnamese letter is one, a rare emoji is two.
    while len(text.encode("utf-16-le")) // 2 > limit:
        text = text[:-1]
    return text


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


def summary_row(group: str, members: Sequence[InstitutionStatus], *, stamped: bool = False) -> list[Any]:
    """Group, institutions, on time, late, missing (the Word file), the share submitted; with ``stamped``, also
    how many have the stamped copy in and how many are complete."""
    counts = [sum(1 for m in members if m.status == key) for key in STATUS_ORDER]
    total = len(members)
    extra = [sum(1 for m in members if m.stamped), sum(1 for m in members if m.complete)] if stamped else []
    return [group, total, *counts, _submitted_share(total, counts), *extra]


def summary_total(rows: Sequence[Sequence[Any]]) -> list[Any]:
    # Plain values, not formulas: openpyxl cannot compute formulas, so scripts reading the file would see None.
    sums = [sum(r[i] for r in rows) for i in range(1, 5)]
    extra = [sum(r[i] for r in rows) for i in range(6, len(rows[0]))] if rows else []
    return ["Tổng cộng", *sums, _submitted_share(sums[0], sums[1:]), *extra]


def _submitted_share(total: int, counts: Sequence[int]) -> float:
    return (counts[0] + counts[1]) / total if total else 0.0


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


def institution_row(number: int, inst: InstitutionStatus, zone: ZoneInfo) -> list[Any]:
    """STT, code, name, status word, first submission (naive local), count, files, identification, notes."""
    first = inst.submissions[0] if inst.submissions else None
    return [
        number,
        inst.code,
        inst.name,
        STATUS[inst.status],
        excel_time(inst.submitted_at, zone),
        len(inst.submissions),
        "\n".join(received_files(f for s in inst.submissions for f in s.files)),
        *document_cells(inst),
        stamped_text(inst, zone),
        IDENTIFIED_BY.get(first.identified_by, first.identified_by) if first else "",
        "\n".join(plain_warnings(inst)),
    ]


def stamped_text(inst: InstitutionStatus, zone: ZoneInfo) -> str:
    """The stamped copy in words, one line per way it came: the PDF's verdict (``Bản ký số hợp lệ (…)``, ``Bản quét
    có dấu đỏ, số … khớp với tệp Word``, or what is in doubt), ``Đã nhận bản giấy ngày 08/12/2023``; ``Chưa nhận``
    when the campaign asks for it and it is not in (the way it takes it); ``Không yêu cầu`` when the campaign does
    not ask for it and none came."""
    came = [
        *([pdf_text(inst, zone)] if inst.signed_copy or inst.stamp_accepted else []),
        *([f"Đã nhận bản giấy ngày {inst.paper_on:%d/%m/%Y}"] if inst.paper_on else []),
    ]
    if inst.stamped is False:  # what came, if anything, is not what the campaign takes or is in doubt
        if inst.stamp and inst.paper_mode in (PaperMode.PDF, PaperMode.EITHER):
            return "\n".join(came)
        wanted = {PaperMode.POST: "bản giấy gửi qua bưu chính", PaperMode.PDF: "tệp PDF gửi qua thư"}
        return f"Chưa nhận (đợt này yêu cầu {wanted[inst.paper_mode]})" if came else "Chưa nhận"
    return "\n".join(came) or "Không yêu cầu"


def pdf_text(inst: InstitutionStatus, zone: ZoneInfo) -> str:
    """The PDF that speaks for the institution, checked: its verdict, and staff's acceptance when they gave it."""
    verdict = stamps.text_vi(inst.stamp, zone) if inst.stamp else "Đã nhận (PDF qua thư)"
    if inst.stamp_accepted and not (inst.stamp and inst.stamp.verdict == stamps.OK):
        return f"Cán bộ đã chấp nhận ngày {inst.stamp_accepted.astimezone(zone):%d/%m/%Y} ({verdict})"
    return verdict


def document_cells(inst: InstitutionStatus) -> list[str]:
    """Number and date, title, signer of the latest Word report (what the document says about itself)."""
    metas = [f.meta for s in inst.submissions for f in s.files if f.meta]
    if not metas:
        return ["", "", ""]
    m = metas[-1]
    date = m.get("date") or ""
    when = f"{date[8:10]}/{date[5:7]}/{date[:4]}" if date else ""
    number = " ".join(filter(None, [f"Số {m['number']}" if m.get("number") else "", f"ngày {when}" if when else ""]))
    signer = " – ".join(
        filter(None, [str(m.get("signer_position") or "").replace("\n", " "), str(m.get("signer_name") or "")])
    )
    return [number, document_title(str(m.get("doc_type") or ""), str(m.get("title") or "")), signer]


def received_files(files: Iterable[FileRow]) -> list[str]:
    """Names of the files kept in the archive (as in ``status --json``); a file sent twice is listed once."""
    seen: set[tuple[str, str]] = set()
    names: list[str] = []
    for f in files:
        if f.path and (f.name, f.sha256) not in seen:
            seen.add((f.name, f.sha256))
            names.append(f.name)
    return names


def plain_warnings(inst: InstitutionStatus) -> list[str]:
    # Details after ':' (sizes, limits) collapse into one sentence each, in first-seen order.
    return warning_texts(inst.notices())


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


def review_row(item: ReviewItem, zone: ZoneInfo) -> list[Any]:
    return [
        item.pk,
        item.sender,
        clip(item.subject),
        excel_time(item.received_at, zone),
        review_reason(item),
        "\n".join(received_files(item.files)),
    ]


def review_reason(item: ReviewItem) -> str:
    # Messages set aside after an internal error carry a technical (English) reason; staff get the plain words first.
    if item.state != "error":
        return item.reason
    plain = warning_text(Notice(WarningCode.UNREADABLE_MESSAGE))
    return f"{plain} (chi tiết kỹ thuật: {item.reason})" if item.reason else plain


# --- shared layout -----------------------------------------------------------------------------------------


def excel_time(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Naive wall-clock time in ``zone``: Excel cells have no time zone."""
    return moment.astimezone(zone).replace(tzinfo=None) if moment else None


# Characters an XML 1.0 document cannot hold (a control byte in a subject): openpyxl refuses them, so the whole
# tracker, and with it the digest, would fail over one sender's subject.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


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
