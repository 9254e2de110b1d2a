"""Consolidation: the tables of every institution's latest report merged into one workbook, and the reports' texts
gathered into one Word document, as the raw material of the department's own report (`mailbot compile`).

For each institution of the campaign, the Word file(s) of its latest submission are read from the archive
(a legacy ``.doc`` is converted by LibreOffice when it is installed) once, with ``mailbot.documents.wordxml``, so text
typed in TCVN3 or VNI fonts arrives as Unicode; ``mailbot.documents.decree30`` tells the data tables from the
heading and signature tables. Each data table's header (its first one or two rows, a spanning caption row
and a "(1) (2) (3)" numbering row set aside) is compared folded (``mailbot.text.fold``: no marks, no case, no
punctuation). Tables whose header is shared by at least two institutions make one sheet: the institution's code,
name and group, then the table's columns, one line per data row, a subtotal line per group ("Cộng nhóm …") and a
grand total ("Tổng cộng"), computed here as numbers so the file reads right without Excel recalculating it.
A column is numeric when at least 80 % of its non-empty cells read as numbers written the Vietnamese way
("1.234", "12,5", and also "1,234", "1 234"); index columns (STT, TT) and rates are not summed. A school's own
total rows ("Tổng", "Cộng", "Tổng cộng") are left out of the lines and of the sums, and checked against them.
Whatever does not fit (a table no other institution has, an unreadable file, a report without a table, a cell
that is not a number in a numeric column, a school total that does not add up) is listed for a human.
``mailbot.reports.compile_output`` writes the result out: the workbook and the Word document.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from mailbot.config import Settings
from mailbot.documents.convert import converter, doc_to_docx
from mailbot.documents.decree30 import DocMeta, describe
from mailbot.documents.wordxml import Blocks, Paragraph, Table, read_blocks
from mailbot.models import Campaign, FileKind
from mailbot.reports.numbers import is_blank, parse_number, plain_number, vn_number
from mailbot.reports.status import FileRow, InstitutionStatus, campaign_status
from mailbot.reports.tracker_rows import unique_sheet_name
from mailbot.text import fold

SUMMARY_SHEET = "Tổng hợp"
REVIEW_SHEET = "Cần xem xét"

NUMERIC_SHARE = Decimal("0.8")  # a column is numeric when this share of its non-empty cells are numbers
MIN_INSTITUTIONS = 2  # a header shared by fewer institutions is not a shape to merge
_INDEX_HEADERS = frozenset({"stt", "tt", "so tt", "so thu tu", "thu tu"})
_RATE_WORDS = ("ty le", "ti le", "phan tram")

# Reasons staff read on the review sheet.
ONLY_ONE = "Mẫu bảng này chỉ có ở một đơn vị: cần tổng hợp thủ công"
NO_TABLE = "Báo cáo không có bảng số liệu"
UNREADABLE = "Không đọc được tệp Word"
NO_CONVERTER = "Tệp .doc chưa chuyển được sang .docx (cần cài LibreOffice trên máy chủ)"
NOT_CONVERTED = "LibreOffice không chuyển được tệp .doc này sang .docx (tệp hỏng hoặc có mật khẩu?)"
NOT_ARCHIVED = "Không tìm thấy tệp trong kho lưu trữ"
DUPLICATE = "Trùng với bảng {table} của tệp “{file}”: không cộng lần nữa"
NO_HEADER = "Bảng không có dòng tiêu đề"
EXTRA_CELLS = "Có số liệu ở cột không có tiêu đề: phần này chưa được tổng hợp"

Number = int | float
Cell = str | int | float | None


# ---------------------------------------------------------------- what a compilation holds


@dataclass(frozen=True)
class ReportFile:
    """One Word file of an institution's latest submission: its text in order (paragraphs and data tables)."""

    name: str
    path: str  # relative to settings.archive_dir
    kind: str
    blocks: tuple[str | Table, ...] = ()  # paragraphs (str) and data tables, in document order
    problem: str = ""  # why it could not be read, in Vietnamese; "" when it was


@dataclass(frozen=True)
class InstitutionReport:
    code: str
    name: str
    group: str
    submitted_at: datetime | None  # the latest submission's arrival; None when nothing was submitted
    files: tuple[ReportFile, ...] = ()

    @property
    def submitted(self) -> bool:
        return self.submitted_at is not None


@dataclass(frozen=True)
class MergedRow:
    code: str
    name: str
    group: str
    file: str
    table: int  # the table's number in its file (1 = the first data table)
    cells: tuple[Cell, ...]  # numeric columns hold numbers (None when empty), the others text


@dataclass(frozen=True)
class Subtotal:
    group: str  # "" for the grand total
    values: tuple[Number | None, ...]  # per table column; None where the column is not summed
    rows: int


@dataclass(frozen=True)
class Shape:
    """Tables of one header merged: the lines of every institution, sums per group (roster order) and in total."""

    number: int
    sheet: str
    header: tuple[str, ...]  # the table's columns as the first institution wrote them
    key: tuple[str, ...]  # the folded header they all share
    numeric: tuple[bool, ...]
    summed: tuple[bool, ...]
    rows: tuple[MergedRow, ...]
    groups: tuple[Subtotal, ...]
    total: Subtotal
    institutions: tuple[str, ...]  # codes, roster order
    tables: int
    caption: str = ""  # a title row above the header, if the first table had one

    def column(self, name: str) -> int:
        """The index of a column by its (folded) header."""
        return self.key.index(fold(name))

    def group_sum(self, group: str) -> Subtotal:
        return next(s for s in self.groups if s.group == group)


@dataclass(frozen=True)
class Leftover:
    """Something on the review sheet: a table that fits no shape, a file that could not be read, a doubtful cell."""

    code: str
    name: str
    group: str
    file: str
    table: int | None  # None when the note is about the whole file
    header: str
    rows: int | None  # the table's data rows; None when the note is about the whole file
    reason: str


@dataclass(frozen=True)
class Compilation:
    campaign: Campaign
    generated_at: datetime
    zone: ZoneInfo
    reports: tuple[InstitutionReport, ...]  # every institution of the campaign, roster order
    shapes: tuple[Shape, ...]
    leftovers: tuple[Leftover, ...]
    group_order: tuple[str, ...] = field(default=())

    @property
    def missing(self) -> tuple[InstitutionReport, ...]:
        return tuple(r for r in self.reports if not r.submitted)

    @property
    def readable(self) -> tuple[InstitutionReport, ...]:
        """Institutions with at least one readable report."""
        return tuple(r for r in self.reports if any(not f.problem for f in r.files))

    @property
    def contributors(self) -> tuple[str, ...]:
        """Codes of the institutions with lines in a merged sheet."""
        codes = {c for s in self.shapes for c in s.institutions}
        return tuple(r.code for r in self.reports if r.code in codes)


# ---------------------------------------------------------------- headers


@dataclass(frozen=True)
class _Head:
    names: tuple[str, ...]  # display names, trailing empty columns removed
    key: tuple[str, ...]
    skip: int  # rows taken by the caption, the header and a numbering row
    caption: str = ""


def _clean(text: str) -> str:
    return " ".join(text.split())


def _is_caption(row: Sequence[str]) -> bool:
    """A title row spanning the whole table ("BẢNG 1: KẾT QUẢ …"): every cell holds the same text."""
    cells = [c for c in row if c]
    return len(row) > 1 and len(cells) == len(row) and len(set(cells)) == 1 and parse_number(cells[0]) is None


_MARKER = re.compile(r"\(?[0-9]{1,2}\)?|\(?[A-Za-z]\)?|\(?[0-9A-Za-z]{1,2}\)?\s*=\s*[()0-9A-Za-z+\-*/ ]+")


def _is_numbering(row: Sequence[str]) -> bool:
    """The column-number row under a header: "(1) (2) (3)", "A B 1 2 3=1+2", or exactly 1 2 3 … n."""
    cells = [c for c in row if c]
    if len(cells) < 2 or not all(_MARKER.fullmatch(c) for c in cells):
        return False
    if all(c.isdigit() for c in cells):
        return len(cells) == len(row) >= 3 and [int(c) for c in cells] == list(range(1, len(cells) + 1))
    return True


def _has_numbers(row: Sequence[str]) -> bool:
    return any(parse_number(c) is not None for c in row if c)


def _looks_like_second_header(r1: Sequence[str], r2: Sequence[str]) -> bool:
    """Row 2 continues the header: cells merged down from row 1, or row 1 spanning sub-columns of row 2."""
    width = len(r1)
    for j in range(width):
        if r1[j] and r1[j] == r2[j]:
            return True  # a cell merged vertically repeats its text
        if j + 1 < width and r1[j] and r1[j] == r1[j + 1] and r2[j] != r2[j + 1]:
            return True  # a cell spanning two columns above two different sub-headings
        if not r1[j] and r2[j] and j and r1[j - 1] and r2[j - 1]:
            return True  # a heading left over two columns without merging them
    return False


def _names(r1: Sequence[str], r2: Sequence[str] | None) -> tuple[str, ...]:
    names: list[str] = []
    parent = ""
    for j, top in enumerate(r1):
        sub = r2[j] if r2 is not None else ""
        if top:
            parent = top if sub else ""
        elif sub and parent:
            top = parent
        if not sub or sub == top:
            names.append(top)
        elif not top:
            names.append(sub)
        else:
            names.append(f"{top} - {sub}")
    while names and not fold(names[-1]):
        names.pop()  # trailing empty columns
    return tuple(names)


def _head(rows: list[list[str]], start: int, height: int, caption: str) -> _Head:
    names = _names(rows[start], rows[start + 1] if height == 2 else None)
    skip = start + height
    if skip < len(rows) and _is_numbering(rows[skip]):
        skip += 1
    return _Head(names, tuple(fold(n) for n in names), skip, caption)


def header_candidates(rows: list[list[str]]) -> list[_Head]:
    """The ways to read a table's header, the likeliest first: one row, or two when the second continues it."""
    if not rows:
        return [_Head((), (), 0)]
    start, caption = 0, ""
    if len(rows) > 1 and _is_caption(rows[0]):
        start, caption = 1, next(c for c in rows[0] if c)
    one = _head(rows, start, 1, caption)
    if start + 1 >= len(rows):
        return [one]
    r1, r2 = rows[start], rows[start + 1]
    if not any(r2) or _is_numbering(r2) or _is_total(r2):
        return [one]
    two = _head(rows, start, 2, caption)
    if _has_numbers(r2):  # a data row, unless cells merged down from row 1 say otherwise ("2022 | 2023" under a span)
        return [two, one] if any(a and a == b for a, b in zip(r1, r2)) else [one]
    return [two, one] if _looks_like_second_header(r1, r2) else [one, two]


_TOTAL = re.compile(r"(?:tong cong|tong so|tong|cong)(?: (?:toan|chung|ca|cac)\b.*| [ivx0-9abc ]+)?")


def _is_total(row: Sequence[str]) -> bool:
    """A school's own total line: "Tổng", "Cộng", "Tổng cộng" (also "Tổng số", "Cộng toàn trường") in a first cell."""
    return any(_TOTAL.fullmatch(fold(c)) for c in row[:3] if c)


# ---------------------------------------------------------------- reading the reports


@dataclass
class _Found:
    inst: InstitutionStatus
    file: FileRow
    number: int
    rows: list[list[str]]
    candidates: list[_Head]
    chosen: _Head | None = None  # set by _choose

    @property
    def head(self) -> _Head:
        """The header the table is read with: the chosen one, else the likeliest."""
        return self.chosen or self.candidates[0]


def _normalised(table: Table) -> list[list[str]]:
    width = max((len(r) for r in table.rows), default=0)
    return [[_clean(c) for c in row] + [""] * (width - len(row)) for row in table.rows]


def latest_reports(inst: InstitutionStatus) -> tuple[datetime | None, list[FileRow]]:
    """The Word files of the latest submission that has any (a file sent twice in it counts once)."""
    for submission in reversed(inst.submissions):
        files, seen = [], set()
        for f in submission.files:
            if f.path and f.kind in (FileKind.DOCX, FileKind.DOCM, FileKind.DOC) and f.sha256 not in seen:
                seen.add(f.sha256)
                files.append(f)
        if files:
            return submission.received_at, files
    return (inst.submissions[-1].received_at if inst.submissions else None), []


def load_report(archive_dir: Path, f: FileRow) -> tuple[bytes | None, str]:
    root = archive_dir.resolve()
    path = (root / f.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None, NOT_ARCHIVED
    data = path.read_bytes()
    if f.kind == FileKind.DOC:
        converted = doc_to_docx(data)
        if converted is None:
            return None, NOT_CONVERTED if converter() else NO_CONVERTER
        return converted, ""
    return data, ""


def report_blocks(blocks: Blocks, meta: DocMeta) -> tuple[str | Table, ...]:
    """The paragraphs and data tables of a document in order, as ``read_blocks`` decoded them (TCVN3, VNI).

    The Decree 30 heading and signature tables are left out: ``meta`` (``describe(blocks)``) holds what they say.
    """
    wanted = list(meta.tables)
    out: list[str | Table] = []
    for block in blocks.items:
        if isinstance(block, Paragraph):
            if block.text.strip():
                out.append(block.text)
        elif wanted and block == wanted[0]:
            out.append(wanted.pop(0))
    return tuple(out)


def compile_campaign(settings: Settings, engine: Engine, campaign: Campaign, *, now: datetime) -> Compilation:
    """Read the latest report of every institution of ``campaign`` and merge their tables (see the module doc)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cs = campaign_status(engine, campaign)
    group_order = tuple(cs.groups())
    reports: list[InstitutionReport] = []
    found: list[_Found] = []
    leftovers: list[Leftover] = []
    for inst in cs.counted:  # the institutions that must report (a deactivated one is in no sum)
        report, tables, problems = _read_institution(settings.archive_dir, inst)
        reports.append(report)
        found.extend(tables)
        leftovers.extend(problems)
    shapes, more = _merge(found, group_order)
    order = {inst.code: i for i, inst in enumerate(cs.counted)}
    notes = tuple(sorted(leftovers + more, key=lambda note: order.get(note.code, len(order))))  # stable: roster order
    return Compilation(campaign, now, settings.zone, tuple(reports), shapes, notes, group_order)


def _read_institution(
    archive_dir: Path, inst: InstitutionStatus
) -> tuple[InstitutionReport, list[_Found], list[Leftover]]:
    """The Word files of an institution's latest submission, each read once, and their data tables."""
    submitted_at, files = latest_reports(inst)
    read: list[ReportFile] = []
    found: list[_Found] = []
    notes: list[Leftover] = []
    seen: dict[tuple[tuple[str, ...], ...], _Found] = {}
    for f in files:
        data, problem = load_report(archive_dir, f)
        blocks = read_blocks(data) if data is not None else None
        if blocks is None or blocks.problem is not None:
            read.append(ReportFile(f.name, f.path, f.kind, (), problem or UNREADABLE))
            notes.append(Leftover(inst.code, inst.name, inst.group, f.name, None, "", None, problem or UNREADABLE))
            continue
        meta = describe(blocks)
        read.append(ReportFile(f.name, f.path, f.kind, report_blocks(blocks, meta)))
        if not meta.tables:
            notes.append(Leftover(inst.code, inst.name, inst.group, f.name, None, "", None, NO_TABLE))
        for number, table in enumerate(meta.tables, start=1):
            rows = _normalised(table)
            found_table = _Found(inst, f, number, rows, header_candidates(rows))
            same = seen.setdefault(tuple(map(tuple, rows)), found_table)
            if same is found_table:
                found.append(found_table)
                continue
            found_table.chosen = found_table.candidates[0]  # the report sent twice (.doc and .docx): count it once
            duplicate = DUPLICATE.format(table=same.number, file=same.file.name)
            notes.append(_leftover(found_table, duplicate, _data_rows(found_table)))
    return InstitutionReport(inst.code, inst.name, inst.group, submitted_at, tuple(read)), found, notes


# ---------------------------------------------------------------- merging


def _choose(found: list[_Found]) -> None:
    """Each table takes its likeliest header, or another reading of it when only that one is shared."""
    holders: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for t in found:
        for head in t.candidates:
            if any(head.key):
                holders[head.key].add(t.inst.code)
    for t in found:
        t.chosen = t.candidates[0]
        if len(holders[t.chosen.key]) < MIN_INSTITUTIONS:
            t.chosen = next((h for h in t.candidates[1:] if len(holders[h.key]) >= MIN_INSTITUTIONS), t.chosen)


def _merge(found: list[_Found], group_order: tuple[str, ...]) -> tuple[tuple[Shape, ...], list[Leftover]]:
    _choose(found)
    by_key: dict[tuple[str, ...], list[_Found]] = defaultdict(list)
    for t in found:
        by_key[t.head.key].append(t)
    shapes: list[Shape] = []
    leftovers: list[Leftover] = []
    taken = {SUMMARY_SHEET.casefold(), REVIEW_SHEET.casefold()}
    for key, tables in by_key.items():  # first seen first: roster order, then table order
        if not any(key) or len({t.inst.code for t in tables}) < MIN_INSTITUTIONS:
            for t in tables:
                leftovers.append(_leftover(t, ONLY_ONE if any(key) else NO_HEADER, _data_rows(t)))
            continue
        shape, notes = _shape(len(shapes) + 1, key, tables, group_order, taken)
        shapes.append(shape)
        leftovers.extend(notes)
    return tuple(shapes), leftovers


def _data_rows(t: _Found) -> int:
    return sum(1 for row in t.rows[t.head.skip :] if any(row))


def _leftover(t: _Found, reason: str, rows: int) -> Leftover:
    header = " | ".join(n for n in t.chosen.names if n) if t.chosen else ""
    return Leftover(t.inst.code, t.inst.name, t.inst.group, t.file.name, t.number, header, rows, reason)


def _shape(
    number: int, key: tuple[str, ...], tables: list[_Found], group_order: tuple[str, ...], taken: set[str]
) -> tuple[Shape, list[Leftover]]:
    first = tables[0].head
    lines, own_totals, notes = _data_lines(tables, len(key))
    numeric = tuple(_is_numeric([r[j] for _, r in lines]) for j in range(len(key)))
    summed = tuple(
        n and k not in _INDEX_HEADERS and not _is_rate(name) for n, k, name in zip(numeric, key, first.names)
    )
    rank = {g: i for i, g in enumerate(group_order)}
    lines.sort(key=lambda item: rank.get(item[0].inst.group, len(rank)))  # stable: roster order within a group
    tally = _Tally(len(key))
    rows = tuple(_merged_row(t, row, numeric, summed, first.names, tally) for t, row in lines)
    notes += _doubtful_notes(tables, tally) + _total_notes(tables, own_totals, tally, summed, first.names)
    order = sorted(tally.sums, key=lambda g: rank.get(g, len(rank)))
    groups = tuple(_subtotal(g, tally.sums[g], tally.counts[g], summed) for g in order)
    grand = [sum((values[j] for values in tally.sums.values()), Decimal(0)) for j in range(len(key))]
    institutions = tuple(dict.fromkeys(r.code for r in rows)) or tuple(dict.fromkeys(t.inst.code for t in tables))
    sheet = unique_sheet_name(_sheet_title(number, first), taken)
    total = _subtotal("", grand, len(rows), summed)
    shape = Shape(
        number, sheet, first.names, key, numeric, summed, rows, groups, total, institutions, len(tables), first.caption
    )
    return shape, notes


def _data_lines(
    tables: list[_Found], width: int
) -> tuple[list[tuple[_Found, list[str]]], dict[int, list[list[str]]], list[Leftover]]:
    """The data rows cut or padded to ``width`` (school totals aside, by table index), and the tables wider than it."""
    lines: list[tuple[_Found, list[str]]] = []
    own_totals: dict[int, list[list[str]]] = defaultdict(list)
    notes: list[Leftover] = []
    for index, t in enumerate(tables):
        data = [row for row in t.rows[t.head.skip :] if any(row)]
        if any(any(row[width:]) for row in data):
            notes.append(_leftover(t, EXTRA_CELLS, len(data)))
        for row in data:
            if _is_total(row):
                own_totals[index].append(row[:width])
                continue
            lines.append((t, row[:width] + [""] * (width - len(row))))
    return lines, own_totals, notes


class _Tally:
    """What merging the rows adds up: sums and row counts per group, sums per table, cells that are not numbers."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.sums: dict[str, list[Decimal]] = {}  # per group, in the order groups are met
        self.counts: dict[str, int] = defaultdict(int)
        self.per_table: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * width)  # by id(_Found)
        self.doubtful: dict[int, list[str]] = defaultdict(list)  # by id(_Found)


def _merged_row(
    t: _Found,
    row: list[str],
    numeric: tuple[bool, ...],
    summed: tuple[bool, ...],
    names: tuple[str, ...],
    tally: _Tally,
) -> MergedRow:
    """One data row with numbers as numbers, added to the tally."""
    cells: list[Cell] = []
    group_sums = tally.sums.setdefault(t.inst.group, [Decimal(0)] * tally.width)
    tally.counts[t.inst.group] += 1
    for j, text in enumerate(row):
        if not numeric[j]:
            cells.append(text or None)
            continue
        value = None if is_blank(text) else parse_number(text)
        if value is None:
            cells.append(None if is_blank(text) else text)
            if not is_blank(text) and summed[j]:
                tally.doubtful[id(t)].append(f"“{names[j]}”: “{text}”")
            continue
        cells.append(plain_number(value))
        if summed[j]:
            group_sums[j] += value
            tally.per_table[id(t)][j] += value
    return MergedRow(t.inst.code, t.inst.name, t.inst.group, t.file.name, t.number, tuple(cells))


def _doubtful_notes(tables: list[_Found], tally: _Tally) -> list[Leftover]:
    notes = []
    for t in tables:
        doubtful = tally.doubtful[id(t)]
        if doubtful:
            cells = "; ".join(doubtful[:3]) + ("…" if len(doubtful) > 3 else "")
            notes.append(_leftover(t, f"Ô không phải số, không được cộng: {cells}", _data_rows(t)))
    return notes


def _total_notes(
    tables: list[_Found],
    own_totals: dict[int, list[list[str]]],
    tally: _Tally,
    summed: tuple[bool, ...],
    names: tuple[str, ...],
) -> list[Leftover]:
    notes = []
    for index, totals in own_totals.items():
        t = tables[index]
        mismatch = _total_mismatch(totals, tally.per_table[id(t)], summed, names)
        if mismatch:
            notes.append(_leftover(t, f"Dòng tổng của đơn vị không khớp với các dòng: {mismatch}", _data_rows(t)))
    return notes


def _subtotal(group: str, values: list[Decimal], rows: int, summed: tuple[bool, ...]) -> Subtotal:
    return Subtotal(group, tuple(plain_number(v) if summed[j] else None for j, v in enumerate(values)), rows)


def _is_numeric(texts: Iterable[str]) -> bool:
    filled = [t for t in texts if not is_blank(t)]
    if not filled:
        return False
    parsed = sum(1 for t in filled if parse_number(t) is not None)
    return Decimal(parsed) >= NUMERIC_SHARE * len(filled)


def _is_rate(name: str) -> bool:
    folded = fold(name)
    return "%" in name or any(f" {w} " in f" {folded} " for w in _RATE_WORDS)


def _total_mismatch(
    totals: list[list[str]], computed: list[Decimal], summed: tuple[bool, ...], names: tuple[str, ...]
) -> str:
    """The columns where a school's only total line differs from the sum of its lines ("" when all agree)."""
    if len(totals) != 1:
        return ""  # subtotals per section, or a total per part: no single line to check against
    out = []
    for j, text in enumerate(totals[0]):
        if not summed[j] or is_blank(text):
            continue
        stated = parse_number(text)
        if stated is not None and stated != computed[j]:
            out.append(f"“{names[j]}” ghi {text}, cộng các dòng được {vn_number(computed[j])}")
    return "; ".join(out)


def _sheet_title(number: int, head: _Head) -> str:
    """ "Bảng 1 - Nội dung, Số lượng": the first header words (index columns aside) that fit in 31 characters."""
    title = f"Bảng {number}"
    text = ", ".join(_clean(n) for n in head.names if n and fold(n) not in _INDEX_HEADERS)
    text = re.sub(r"[\[\]:*?/\\]", " ", text)
    if not text:
        return title
    room = 31 - len(title) - 3
    if len(text) > room:
        text = text[: room + 1]
        text = text[: text.rfind(" ")] if " " in text else text[:room]
    return f"{title} - {text.rstrip(' ,;-(')}"


__all__ = [
    "Compilation",
    "InstitutionReport",
    "Leftover",
    "MergedRow",
    "ReportFile",
    "Shape",
    "Subtotal",
    "compile_campaign",
    "header_candidates",
    "is_blank",
    "parse_number",
    "report_blocks",
]
