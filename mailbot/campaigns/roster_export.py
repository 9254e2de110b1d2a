"""The roster as an Excel workbook staff can edit and import again (`mailbot roster export`, the web download).

The first sheet lists the active institutions with the columns `roster import` reads (Vietnamese headers); the
deactivated ones are on a second sheet, which an import does not read, so exporting then importing (even with
``--replace``) changes nothing.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import mailbot.reports.lean_openpyxl  # noqa: F401  # before openpyxl: see there

# isort: split

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.files import write_atomic
from mailbot.models import Institution
from mailbot.reports.workbook import finish_table, write_table

HEADERS = ("Mã đơn vị", "Tên đơn vị", "Nhóm", "Email", "Người liên hệ", "Điện thoại")
ACTIVE_SHEET = "Danh sách đơn vị"
INACTIVE_SHEET = "Ngừng theo dõi"
CAPS = (16, 60, 24, 60, 30, 18)


def row(inst: Institution) -> list[Any]:
    return [inst.code, inst.name, inst.group, "; ".join(inst.emails), inst.contact, inst.phone]


def build(institutions: Iterable[Institution]) -> Workbook:
    everyone = list(institutions)
    book = Workbook()
    active = book.active
    assert isinstance(active, Worksheet)
    active.title = ACTIVE_SHEET
    _sheet(active, [i for i in everyone if i.active])
    gone = [i for i in everyone if not i.active]
    if gone:
        _sheet(book.create_sheet(INACTIVE_SHEET), gone)
    return book


def _sheet(ws: Worksheet, institutions: Sequence[Institution]) -> None:
    rows = [row(i) for i in institutions]
    write_table(ws, 1, HEADERS, rows)
    finish_table(ws, HEADERS, rows, wrap=(2, 4), caps=CAPS)


def export_bytes(institutions: Iterable[Institution]) -> bytes:
    buffer = io.BytesIO()
    build(institutions).save(buffer)
    return buffer.getvalue()


def export_file(institutions: Iterable[Institution], path: Path) -> Path:
    return write_atomic(path, export_bytes(institutions))
