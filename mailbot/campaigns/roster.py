"""Roster files (.csv or .xlsx) as staff keep them → institutions, with bad rows named.

Staff's own lists have a title above the header, merged and two-row headers ("Thông tin liên hệ" over "Email" and
"Điện thoại"), Vietnamese or English column names, an STT column, section rows ("I. KHỐI THPT"), several addresses
in one cell, and often no code. The header is looked for in the first rows; a missing code is taken from the
institution already in the roster (same name or address) or derived from the name, so importing the same file
again changes nothing; a missing group is taken from the section row, the known institution or the name.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from mailbot import memory
from mailbot.errors import RosterError
from mailbot.models import Institution
from mailbot.text import fold, nfc, strip_marks

FIELDS = ("code", "name", "group", "emails", "contact", "phone")
REQUIRED = ("name", "emails")
HEADER_ROWS = 10  # the header is looked for in the first rows (a title and a blank line usually come first)

# Folded header → field; staff export rosters from many spreadsheets, so accept the usual spellings.
HEADERS = {
    **dict.fromkeys(("code", "ma", "ma don vi", "ma truong", "ma so", "ma dv", "ma co so"), "code"),
    **dict.fromkeys(
        ("name", "ten", "ten don vi", "ten truong", "don vi", "ten co so", "co so", "ten co quan", "institution"),
        "name",
    ),
    **dict.fromkeys(("group", "nhom", "khoi", "loai hinh", "nhom don vi", "loai don vi", "loai"), "group"),
    **dict.fromkeys(
        (
            "emails",
            "email",
            "e mail",
            "dia chi email",
            "dia chi e mail",
            "thu dien tu",
            "dia chi thu dien tu",
            "hop thu",
            "hop thu dien tu",
        ),
        "emails",
    ),
    **dict.fromkeys(
        (
            "contact",
            "nguoi lien he",
            "dau moi",
            "can bo dau moi",
            "ho ten nguoi lien he",
            "ho va ten nguoi lien he",
            "ten nguoi lien he",
            "can bo lien he",
        ),
        "contact",
    ),
    **dict.fromkeys(
        ("phone", "dien thoai", "so dien thoai", "sdt", "dt", "dien thoai lien he", "so dt", "dtdd"), "phone"
    ),
}
# Multi-word headers may carry more words after them ("Email đơn vị", "Điện thoại cơ quan").
_PREFIXES = sorted((k for k in HEADERS if " " in k or k in ("email", "emails")), key=len, reverse=True)
_SPLIT = re.compile(r"[,;/\s]+")
_SECTION = re.compile(r"^\s*(?:[IVXLC]+|[A-Z]|\d{1,2})\s*[.)/-]\s+\S|^\s*(?:khối|nhóm|loại hình)\s", re.IGNORECASE)
_SECTION_LEAD = re.compile(r"^\s*(?:[IVXLC]+|[A-Z]|\d{1,2})\s*[.)/-]\s*", re.IGNORECASE)
_SECTION_NUMBER = re.compile(r"^(?:[IVXLC]+|[A-Z])[.)]?$")
_ORDINAL = re.compile(r"^\(?\d{1,3}\)?$")
_GENERIC = {"truong", "phong", "trung", "tam", "vien", "so", "co", "quan"}  # leading words a code leaves out


@dataclass(frozen=True)
class RowProblem:
    """A row left out, with what is wrong in English (the CLI, logs) and in Vietnamese (the web pages)."""

    row: int
    en: str
    vi: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.en}"

    @property
    def text_vi(self) -> str:
        return f"Dòng {self.row}: {self.vi}"


@dataclass(frozen=True)
class RosterRead:
    institutions: tuple[Institution, ...]
    issues: tuple[RowProblem, ...] = ()
    columns: frozenset[str] = field(default_factory=lambda: frozenset(FIELDS))  # the fields the file gives

    @property
    def problems(self) -> tuple[str, ...]:  # "row N: what is wrong"
        return tuple(str(p) for p in self.issues)


class RosterFileError(RosterError):
    """The file as a whole cannot be used; ``vi`` says why to staff on the web pages."""

    def __init__(self, message: str, vi: str) -> None:
        super().__init__(message)
        self.vi = vi


def read(path: Path, known: Sequence[Institution] = ()) -> RosterRead:
    """Read a roster file; rows with problems are left out and described, the rest returned.

    ``known`` is the roster already in the database: a file without codes (or groups) takes them from it."""
    if not path.exists():
        raise RosterFileError(f"roster file {path} not found", "Không tìm thấy tệp danh sách.")
    if not path.is_file():
        raise RosterFileError(f"roster file {path} is not a file", "Không tìm thấy tệp danh sách.")
    if path.suffix.lower() in (".xlsx", ".xlsm"):  # openpyxl in a child: the service reads its roster at each start
        rows = memory.aside(functools.partial(_xlsx_rows, path))  # (a bad file: read again here, for the error)
    else:
        rows = _csv_rows(path)
    return _institutions(path, rows, known)


def _csv_rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1258"):  # Excel on Vietnamese Windows saves CSV as Windows-1258
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterFileError(
            f"{path}: cannot decode the file (save it as UTF-8 CSV)",
            "Không đọc được bảng mã của tệp CSV. Vui lòng lưu tệp dưới dạng Excel (.xlsx) hoặc CSV UTF-8.",
        )
    try:
        return list(csv.reader(io.StringIO(text), _dialect(text)))
    except csv.Error as exc:
        raise RosterFileError(
            f"{path}: not a CSV roster ({exc}); save the list as .xlsx or UTF-8 CSV",
            "Tệp không đúng định dạng CSV. Vui lòng lưu danh sách dưới dạng Excel (.xlsx) hoặc CSV UTF-8.",
        ) from None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    if not text.strip():
        return csv.excel
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:  # a title line above the header confuses the sniffer: the commonest separator wins

        class Counted(csv.excel):
            delimiter = max(",;\t", key=text[:4096].count)

        return Counted


def _xlsx_rows(path: Path) -> list[list[str]]:
    import mailbot.reports.lean_openpyxl  # noqa: F401  # before openpyxl: see there

    # isort: split
    from openpyxl import load_workbook  # heavy: only when an Excel roster is used

    try:
        # Not read-only: merged ranges are only known to a fully loaded sheet (a roster is a few hundred rows).
        sheet = load_workbook(path, data_only=True).worksheets[0]
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise RosterFileError(
            f"{path}: not a readable .xlsx file ({exc})",
            "Không đọc được tệp Excel. Vui lòng kiểm tra tệp có phải định dạng .xlsx và không bị hỏng.",
        ) from None
    rows = [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    for merged in sheet.merged_cells.ranges:  # a merged cell's value holds for every cell it covers
        top = rows[merged.min_row - 1][merged.min_col - 1] if merged.min_row <= len(rows) else ""
        for r in range(merged.min_row - 1, min(merged.max_row, len(rows))):
            for c in range(merged.min_col - 1, min(merged.max_col, len(rows[r]))):
                rows[r][c] = top
    return rows


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def header_field(title: str) -> str | None:
    """The field a column title names (``Địa chỉ email`` → emails), or None."""
    key = fold(re.sub(r"\(.*?\)|\*", " ", title))
    if key in HEADERS:
        return HEADERS[key]
    for prefix in _PREFIXES:
        if key.startswith(prefix + " "):
            return HEADERS[prefix]
    return None


def _mapping(*header_rows: list[str]) -> dict[str, int]:
    """Field → column, the lower row of a two-row header winning (it names what the upper one groups)."""
    columns: dict[str, int] = {}
    width = max(len(r) for r in header_rows)
    for index in range(width):
        for row in reversed(header_rows):
            name = header_field(row[index]) if index < len(row) else None
            if name:
                if name not in columns:
                    columns[name] = index
                break
    return columns


def _find_header(path: Path, rows: list[list[str]]) -> tuple[dict[str, int], int]:
    """The columns and the index of the first data row."""
    best: tuple[dict[str, int], int] = ({}, 0)
    for top in range(min(HEADER_ROWS, len(rows))):
        for depth in (1, 2):
            if top + depth > len(rows):
                continue
            columns = _mapping(*rows[top : top + depth])
            if len(columns) > len(best[0]):
                best = (columns, top + depth)
        if all(f in best[0] for f in REQUIRED) and top + 1 >= best[1]:
            break  # the header is found and the next row is not a second header line
    missing = [f for f in REQUIRED if f not in best[0]]
    if missing:
        raise RosterFileError(
            f"{path}: missing column(s) {', '.join(missing)} in the first {HEADER_ROWS} rows; expected name and "
            "emails (or Tên đơn vị, Email), and if known code, group, contact, phone (Mã, Nhóm, Người liên hệ, "
            "Điện thoại)",
            f"Không tìm thấy cột {' và '.join(_VI_FIELD[f] for f in missing)} trong {HEADER_ROWS} dòng đầu của "
            "tệp. Danh sách cần có ít nhất cột “Tên đơn vị” và cột “Email”; có thể có thêm các cột “Mã đơn vị”, "
            "“Nhóm”, “Người liên hệ”, “Điện thoại”.",
        )
    return best


_VI_FIELD = {
    "code": "mã đơn vị",
    "name": "tên đơn vị",
    "group": "nhóm",
    "emails": "địa chỉ thư điện tử",
    "contact": "người liên hệ",
    "phone": "điện thoại",
}


@dataclass
class _Reader:
    """The state of one pass over a file's rows."""

    columns: dict[str, int]
    known: Sequence[Institution]
    found: list[Institution] = field(default_factory=list)
    issues: list[RowProblem] = field(default_factory=list)
    codes: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    section: str = ""  # the group a section row ("I. KHỐI THPT") gives the rows below it

    def problem(self, number: int, en: str, vi: str) -> None:
        self.issues.append(RowProblem(number, en, vi))


def _institutions(path: Path, rows: list[list[str]], known: Sequence[Institution]) -> RosterRead:
    if not any(any(c.strip() for c in row) for row in rows):
        raise RosterFileError(f"{path}: the file is empty", "Tệp danh sách không có dữ liệu.")
    columns, start = _find_header(path, rows)
    reader = _Reader(columns, known)
    for number, row in enumerate(rows[start:], start=start + 1):
        cells = [nfc(c.strip()) for c in row]
        if _skipped(cells, columns):
            continue
        heading = _section(cells, columns)
        if heading is not None:
            reader.section = _section_group(heading, known)
            continue
        _row(reader, number, cells)
    return RosterRead(tuple(reader.found), tuple(reader.issues), frozenset(columns))


def _skipped(cells: list[str], columns: dict[str, int]) -> bool:
    """Empty rows, the column numbers under a header ("(1) (2) (3)"), a header repeated on a new page."""
    filled = [c for c in cells if c]
    if not filled or all(_ORDINAL.match(c) for c in filled):
        return True
    name = cells[columns["name"]] if columns["name"] < len(cells) else ""
    return header_field(name) == "name"


def _section(cells: list[str], columns: dict[str, int]) -> str | None:
    """The heading of a section row: one text (merged across the row, or alone) that numbers a part of the list."""
    filled = {c for c in cells if c}
    if len(filled) == 1:
        text = next(iter(filled))
        if "@" not in text and _SECTION.match(text):
            return text
    emails = cells[columns["emails"]] if columns["emails"] < len(cells) else ""
    numbers = {c for c in filled if _SECTION_NUMBER.match(c)}
    if len(filled) == 2 and len(numbers) == 1 and not emails:  # "I" in the STT column, "KHỐI THPT" beside it
        return next(iter(filled - numbers))
    return None


def _section_group(heading: str, known: Sequence[Institution]) -> str:
    """``I. KHỐI THPT`` → the roster's group ``THPT`` when one matches, else the heading without its number."""
    bare = _SECTION_LEAD.sub("", heading).strip()
    folded = fold(bare)
    for group in sorted({i.group for i in known}, key=len, reverse=True):
        if folded == fold(group) or _phrase_in(fold(group), folded):
            return group
    return re.sub(r"^(?:khối|nhóm|loại hình)\s+", "", bare, flags=re.IGNORECASE).strip()


def _phrase_in(phrase: str, text: str) -> bool:
    return bool(phrase) and f" {phrase} " in f" {text} "


def _row(reader: _Reader, number: int, cells: list[str]) -> None:
    cell = {f: cells[i] if i < len(cells) else "" for f, i in reader.columns.items()}
    name = cell["name"]
    if not name:
        return reader.problem(number, "name is empty", "thiếu tên đơn vị")
    emails, bad = split_emails(cell["emails"])
    if bad:
        return reader.problem(number, f"not an email address: {bad}", f"địa chỉ thư điện tử không hợp lệ: {bad}")
    match = _match(reader, name, emails) if "code" not in reader.columns or "group" not in reader.columns else None
    code = cell.get("code", "") if "code" in reader.columns else (match.code if match else _new_code(reader, name))
    if not code:
        return reader.problem(number, "code is empty", "thiếu mã đơn vị")
    if code in reader.codes or ("code" not in reader.columns and fold(name) in reader.names):
        what = f"code {code}" if "code" in reader.columns else f"institution {name}"
        vi = f"mã {code}" if "code" in reader.columns else f"đơn vị “{name}”"
        return reader.problem(number, f"{what} appears twice", f"{vi} xuất hiện hai lần trong tệp")
    group = cell.get("group", "") or reader.section or (match.group if match else _group_from_name(name, reader))
    if not group:
        return _no_group(reader, number)
    reader.codes.add(code)
    reader.names.add(fold(name))
    reader.found.append(Institution(code, name, group, emails, True, cell.get("contact", ""), _phone(cell)))


def _no_group(reader: _Reader, number: int) -> None:
    if "group" in reader.columns:
        return reader.problem(number, "group is empty", "thiếu nhóm đơn vị")
    return reader.problem(
        number,
        "no group: the file has no group column and the group cannot be told from the name (add a Nhóm column)",
        "không xác định được nhóm của đơn vị (tệp không có cột “Nhóm” và tên đơn vị không cho biết nhóm); "
        "vui lòng bổ sung cột “Nhóm”",
    )


def _phone(cell: dict[str, str]) -> str:
    phone = cell.get("phone", "")
    # A number typed into Excel loses its leading zero: 0912345678 comes back as 912345678.
    if phone.isdigit() and len(phone) in (9, 10) and not phone.startswith("0"):
        return "0" + phone
    return phone


def _match(reader: _Reader, name: str, emails: tuple[str, ...]) -> Institution | None:
    """The institution already in the roster that this row is: the same name (without marks), else an address."""
    taken = reader.codes
    folded = fold(name)
    same_name = [i for i in reader.known if fold(i.name) == folded and i.code not in taken]
    if same_name:
        return next((i for i in same_name if set(i.emails) & set(emails)), same_name[0])
    return next((i for i in reader.known if set(i.emails) & set(emails) and i.code not in taken), None)


def derive_code(name: str) -> str:
    """A code from the name: acronyms and numbers kept, other words by their initials, leading generic words
    before an acronym left out (``Trường THPT Ngô Quyền`` → THPT-NQ, ``Phòng GDĐT quận Lê Chân`` → GDDT-QLC)."""
    tokens: list[tuple[bool, str, str]] = []  # (kept whole, text, the bare lower-case word)
    for token in nfc(name).split():
        word = token.strip(".,;:()\"'–-")
        bare = re.sub(r"[^0-9A-Za-z-]", "", strip_marks(word)).strip("-")
        if not bare:
            continue
        whole = bare.isdigit() or (len(bare) >= 2 and word.upper() == word and any(ch.isalpha() for ch in word))
        tokens.append((whole, bare.upper() if whole else bare[0].upper(), strip_marks(word).lower()))
    if any(whole for whole, _, _ in tokens):
        while tokens and not tokens[0][0] and tokens[0][2] in _GENERIC:
            tokens.pop(0)
    runs: list[str] = []
    for index, (whole, text, _) in enumerate(tokens):
        if whole or index == 0 or tokens[index - 1][0]:
            runs.append(text)
        else:
            runs[-1] += text
    return "-".join(runs)[:32].strip("-") or "DV"


def _new_code(reader: _Reader, name: str) -> str:
    base = derive_code(name)
    others = {i.code for i in reader.known} | reader.codes
    code, n = base, 2
    while code in others:
        code, n = f"{base}-{n}", n + 1
    return code


def _group_from_name(name: str, reader: _Reader) -> str:
    """The one existing group whose name the institution's name contains (``Trường THPT …`` → THPT)."""
    folded = fold(name)
    groups = {i.group for i in reader.known}
    hits = [g for g in groups if _phrase_in(fold(g), folded)]
    return hits[0] if len(hits) == 1 else ""


def split_emails(value: str) -> tuple[tuple[str, ...], str]:
    """The addresses of a cell written ``a, b``, ``a; b``, ``a / b`` or one a line; or ((), the first bad piece)."""
    out: list[str] = []
    for piece in filter(None, _SPLIT.split(value)):
        address = parseaddr(piece)[1].lower()
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
            return (), piece
        out.append(address)
    return tuple(dict.fromkeys(out)), ""


def describe(problems: Iterable[str]) -> str:
    return "\n".join(f"  {p}" for p in problems)


def write_csv(path: Path, institutions: Iterable[Institution]) -> None:
    """A roster file in the format `read` takes (used by the demo and the tests)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["code", "name", "group", "emails"])
        for inst in institutions:
            writer.writerow([inst.code, inst.name, inst.group, "; ".join(inst.emails)])


def from_rows(rows: Iterable[dict]) -> list[Institution]:  # type: ignore[type-arg]
    return [Institution(r["code"], r["name"], r["group"], tuple(r["emails"])) for r in rows]
