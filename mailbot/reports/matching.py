"""A school's tables matched to the campaign template's: which table, which columns, which rows, and every figure.

Headers and row labels are compared folded (no marks, no case, no punctuation), row labels without their numbering;
a name that is not the template's word for word still matches when it contains all the template's words ("Số buổi
tuyên truyền" for "Số buổi"), or the other way round, or is nearly the same string; a mapping staff accepted
(``Aliases``) comes first. A school's table is matched to the template table whose columns and rows it shares most;
a table with no header right after a matched one, as wide as it, is that table continued across a page break.
Whatever is not matched (a table, a row, a column) or not read as a number is a ``Finding``: nothing is dropped
without a word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from difflib import SequenceMatcher

from mailbot.documents.wordxml import Table
from mailbot.reports.compile import header_candidates
from mailbot.reports.numbers import EMPTY_AS_ZERO, WITH_WORDS, read_figure
from mailbot.reports.template import INDEX_HEADERS, Template, TemplateTable, grid, label_key
from mailbot.text import fold

_DIGITS = re.compile(r"\d+")
SIMILAR = 0.86  # SequenceMatcher ratio from which two folded names are the same name written differently
_TOTALS = frozenset({"tong", "tong cong", "cong", "tong so", "cong chung", "tong cong toan truong"})

# What staff read in the "Loại" column of the list of what did not match.
KIND_FILE = "Tệp"
KIND_TABLE = "Bảng"
KIND_ROW = "Dòng"
KIND_COLUMN = "Cột"
KIND_CELL = "Ô"
NOT_TEMPLATE_TABLE = "Bảng không khớp với bảng nào của mẫu báo cáo: cần tổng hợp thủ công"
NOT_TEMPLATE_FILE = "Tệp không theo mẫu báo cáo của đợt này (không có bảng nào khớp với mẫu)"
ROW_NOT_IN_TEMPLATE = "Dòng không có trong mẫu: số liệu của dòng này chưa được cộng"
COLUMN_NOT_IN_TEMPLATE = "Cột không có trong mẫu: số liệu của cột này chưa được cộng"
ROWS_MISSING = "Thiếu dòng của mẫu (tính là không có số liệu)"
COLUMNS_MISSING = "Thiếu cột của mẫu (tính là không có số liệu)"
NOT_A_NUMBER = "Ô không phải là số: không được cộng"
OWN_TOTAL = "Dòng tổng của đơn vị: không cộng (tổng được tính lại từ các dòng)"
DUPLICATE_ROW = "Dòng lặp lại dòng đã có của mẫu: không cộng lần nữa"


@dataclass(frozen=True)
class Aliases:
    """Mappings staff accepted: a folded name found in a school's table → the folded name in the template."""

    columns: Mapping[str, str] = field(default_factory=dict)
    rows: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """Something in a school's file that did not match the template, or a figure read leniently."""

    table: int  # the template table concerned (0: none, the file or an unmatched table)
    where: str  # "Bảng 2 của tệp", the row or column concerned
    kind: str  # KIND_*
    found: str  # the text found in the school's file
    reason: str
    accept: str = ""  # "row" or "column" when staff can map ``found`` to a template name


Values = dict[tuple[int, int], Decimal]  # (template row, template column) → figure


@dataclass(frozen=True)
class FileMatch:
    values: dict[int, Values]  # template table number → the figures read
    findings: tuple[Finding, ...]


@dataclass
class _Mapping:
    table: TemplateTable
    skip: int
    label: int  # the school's label column
    columns: dict[int, int]  # school column → index in table.columns
    extra: list[tuple[int, str]]  # school columns with a header and no template column
    rows: dict[int, int]  # school data row (grid index) → template row index
    stray: list[int]  # school data rows with a label and no template row

    @property
    def score(self) -> int:
        return 2 * len(self.columns) + len(self.rows)


def similar(a: str, b: str) -> bool:
    """Two folded names are the same: equal, one's words all in the other's, or nearly the same string."""
    if not a or not b:
        return False
    if a == b:
        return True
    if _DIGITS.findall(a) != _DIGITS.findall(b):
        return False  # "Khối 10" is not "Khối 11", however alike the strings
    wa, wb = set(a.split()), set(b.split())
    if wa <= wb or wb <= wa:
        return len(wa & wb) >= min(2, len(wa), len(wb))
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= SIMILAR


def _assign(found: Sequence[tuple[int, str]], wanted: Sequence[str], aliases: Mapping[str, str]) -> dict[int, int]:
    """Each found name (by position) to at most one wanted name: aliases, then equal names, then similar ones."""
    out: dict[int, int] = {}
    taken: set[int] = set()
    for rule in ("alias", "equal", "similar"):
        for pos, key in found:
            if pos in out or not key:
                continue
            target = aliases.get(key) if rule == "alias" else key
            for i, w in enumerate(wanted):
                if i in taken or target is None:
                    continue
                if (rule != "similar" and w == target) or (rule == "similar" and similar(key, w)):
                    out[pos] = i
                    taken.add(i)
                    break
    return out


def _map(rows: list[list[str]], names: Sequence[str], skip: int, t: TemplateTable, aliases: Aliases) -> _Mapping:
    keys = [fold(n) for n in names]
    label = next((j for j, k in enumerate(keys) if k and (k == t.label.key or similar(k, t.label.key))), -1)
    data = [i for i in range(skip, len(rows)) if any(rows[i])]
    if label < 0:  # no header over the labels: the first column holding words
        label = next((j for j in range(len(keys)) if _words_in(rows, data, j) and keys[j] not in INDEX_HEADERS), 0)
    found = [(j, k) for j, k in enumerate(keys) if j != label and k and k not in INDEX_HEADERS]
    columns = _assign(found, [c.key for c in t.columns], aliases.columns)
    extra = [(j, names[j]) for j, _ in found if j not in columns]
    labelled = [(i, label_key(rows[i][label])) for i in data if label < len(rows[i])]
    matched = _assign(labelled, [r.key for r in t.rows], aliases.rows)
    stray = [i for i, key in labelled if key and i not in matched]
    return _Mapping(t, skip, label, columns, extra, matched, stray)


def _words_in(rows: list[list[str]], data: list[int], j: int) -> bool:
    cells = [rows[i][j] for i in data if j < len(rows[i]) and rows[i][j]]
    return bool(cells) and sum(1 for c in cells if read_figure(c).value is None) * 2 >= len(cells)


def _best(rows: list[list[str]], template: Template, aliases: Aliases) -> _Mapping | None:
    best: _Mapping | None = None
    for head in header_candidates(rows):
        names = list(head.names) + [""] * (len(rows[0]) - len(head.names))
        for t in template.tables:
            m = _map(rows, names, head.skip, t, aliases)
            if m.columns and m.rows and (best is None or m.score > best.score):
                best = m
    return best


def match_tables(tables: Sequence[Table], template: Template, aliases: Aliases) -> FileMatch:
    """The figures of one file's tables by template table, and what did not match."""
    values: dict[int, Values] = {}
    findings: list[Finding] = []
    previous: _Mapping | None = None
    previous_width = 0
    seen: dict[int, tuple[set[int], set[int]]] = {}  # template table → its rows and columns found in the file
    for k, table in enumerate(tables, start=1):
        rows = grid(table)
        where = f"Bảng {k} của tệp"
        if not rows:
            continue
        m = _best(rows, template, aliases)
        if m is None and previous is not None and len(rows[0]) == previous_width:
            m = _continued_rows(rows, previous, aliases)
        if m is None:
            findings.append(Finding(0, where, KIND_TABLE, _head_text(rows), NOT_TEMPLATE_TABLE))
            previous = None
            continue
        previous, previous_width = m, len(rows[0])
        found_rows, found_columns = seen.setdefault(m.table.number, (set(), set()))
        found_rows.update(m.rows.values())
        found_columns.update(m.columns.values())
        _read(rows, m, values.setdefault(m.table.number, {}), findings, where)
    if tables and not values:
        findings.append(Finding(0, "", KIND_FILE, "", NOT_TEMPLATE_FILE))
    for number, (found_rows, found_columns) in seen.items():
        findings.extend(_missing(template.tables[number - 1], found_rows, found_columns))
    return FileMatch(values, tuple(findings))


def _continued_rows(rows: list[list[str]], previous: _Mapping, aliases: Aliases) -> _Mapping | None:
    t = previous.table
    labelled = [(i, label_key(rows[i][previous.label])) for i in range(len(rows)) if any(rows[i])]
    matched = _assign(labelled, [r.key for r in t.rows], aliases.rows)
    if not matched:
        return None
    stray = [i for i, key in labelled if key and i not in matched]
    return _Mapping(t, 0, previous.label, dict(previous.columns), [], matched, stray)


def _head_text(rows: list[list[str]]) -> str:
    return " | ".join(dict.fromkeys(c for c in rows[0] if c))[:300]


def _read(rows: list[list[str]], m: _Mapping, got: Values, findings: list[Finding], where: str) -> None:
    t = m.table
    for j, name in m.extra:
        if any(rows[i][j] for i in range(m.skip, len(rows))):
            findings.append(Finding(t.number, where, KIND_COLUMN, name, COLUMN_NOT_IN_TEMPLATE, "column"))
    for i in m.stray:
        label = rows[i][m.label]
        if label_key(label) in _TOTALS:
            findings.append(Finding(t.number, where, KIND_ROW, label, OWN_TOTAL))
        else:
            findings.append(Finding(t.number, where, KIND_ROW, label, ROW_NOT_IN_TEMPLATE, "row"))
    empty: list[str] = []
    for i, r in m.rows.items():
        if any((r, c) in got for c in m.columns.values()):
            findings.append(Finding(t.number, where, KIND_ROW, rows[i][m.label], DUPLICATE_ROW))
            continue
        for j, c in m.columns.items():
            text = rows[i][j] if j < len(rows[i]) else ""
            figure = read_figure(text)
            cell = f"{t.rows[r].label} / {t.columns[c].name}"
            if figure.value is None:
                findings.append(Finding(t.number, cell, KIND_CELL, text, NOT_A_NUMBER))
                continue
            got[(r, c)] = figure.value
            if figure.note == EMPTY_AS_ZERO:
                empty.append(cell)
            elif figure.note == WITH_WORDS:
                findings.append(Finding(t.number, cell, KIND_CELL, text, WITH_WORDS))
    if empty:
        shown = "; ".join(empty[:5]) + ("…" if len(empty) > 5 else "")
        findings.append(Finding(t.number, where, KIND_CELL, f"{len(empty)} ô: {shown}", EMPTY_AS_ZERO))


def _missing(t: TemplateTable, found_rows: set[int], found_columns: set[int]) -> list[Finding]:
    out = []
    rows = [row.label for r, row in enumerate(t.rows) if r not in found_rows]
    if rows:
        out.append(Finding(t.number, "", KIND_ROW, "; ".join(rows), ROWS_MISSING))
    columns = [col.name for c, col in enumerate(t.columns) if c not in found_columns]
    if columns:
        out.append(Finding(t.number, "", KIND_COLUMN, "; ".join(columns), COLUMNS_MISSING))
    return out


__all__ = [
    "Aliases",
    "FileMatch",
    "Finding",
    "Values",
    "match_tables",
    "similar",
]
