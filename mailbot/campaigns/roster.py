"""Roster files (.csv or .xlsx, English or Vietnamese headers) → institutions, with bad rows named."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

from mailbot.errors import RosterError
from mailbot.models import Institution
from mailbot.text import fold, nfc

# Folded header → field; staff export rosters from many spreadsheets, so accept the usual spellings.
HEADERS = {
    "code": "code",
    "ma don vi": "code",
    "ma": "code",
    "name": "name",
    "ten don vi": "name",
    "ten": "name",
    "group": "group",
    "nhom": "group",
    "emails": "emails",
    "email": "emails",
    "e mail": "emails",
    "thu dien tu": "emails",
}
_SPLIT = re.compile(r"[,;\s]+")


@dataclass(frozen=True)
class RosterRead:
    institutions: tuple[Institution, ...]
    problems: tuple[str, ...]  # "row N: what is wrong"


def read(path: Path) -> RosterRead:
    """Read a roster file; rows with problems are left out and described, the rest returned."""
    if not path.exists():
        raise RosterError(f"roster file {path} not found")
    if not path.is_file():
        raise RosterError(f"roster file {path} is not a file")
    rows = _xlsx_rows(path) if path.suffix.lower() in (".xlsx", ".xlsm") else _csv_rows(path)
    return _institutions(path, rows)


def _csv_rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1258"):  # Excel on Vietnamese Windows saves CSV as Windows-1258
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterError(f"{path}: cannot decode the file (save it as UTF-8 CSV)")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
        return list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise RosterError(f"{path}: not a CSV roster ({exc}); save the list as .xlsx or UTF-8 CSV") from None


def _xlsx_rows(path: Path) -> list[list[str]]:
    from openpyxl import load_workbook  # heavy: only when an Excel roster is used

    try:
        sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise RosterError(f"{path}: not a readable .xlsx file ({exc})") from None
    return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        field = HEADERS.get(fold(title))
        if field and field not in columns:
            columns[field] = index
    missing = [f for f in ("code", "name", "group", "emails") if f not in columns]
    if missing:
        raise RosterError(
            f"{path}: missing column(s) {', '.join(missing)}; expected code, name, group, emails "
            "(or Mã đơn vị, Tên đơn vị, Nhóm, Email)"
        )
    return columns


def _institutions(path: Path, rows: list[list[str]]) -> RosterRead:
    if not rows:
        raise RosterError(f"{path}: the file is empty")
    columns = _columns(path, rows[0])
    found: list[Institution] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        inst, problem = _row(row, columns, seen)
        if problem:
            problems.append(f"row {number}: {problem}")
        else:
            seen.add(inst.code)
            found.append(inst)
    return RosterRead(tuple(found), tuple(problems))


def _row(row: list[str], columns: dict[str, int], seen: set[str]) -> tuple[Institution, str]:
    cell = {f: nfc(row[i].strip()) if i < len(row) else "" for f, i in columns.items()}
    empty = Institution("", "", "")
    for field in ("code", "name", "group"):
        if not cell[field]:
            return empty, f"{field} is empty"
    if cell["code"] in seen:
        return empty, f"code {cell['code']} appears twice"
    emails, bad = _emails(cell["emails"])
    if bad:
        return empty, f"not an email address: {bad}"
    return Institution(cell["code"], cell["name"], cell["group"], emails), ""


def _emails(value: str) -> tuple[tuple[str, ...], str]:
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
