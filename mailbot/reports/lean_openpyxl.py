"""Import openpyxl without numpy and Pillow: import this module before openpyxl wherever a process may import openpyxl
first.

openpyxl imports numpy when it is installed (it is, for reading scanned PDFs), only to accept numpy numbers as cell
values, which mailbot never writes; and Pillow (installed for the same scans), only to insert or keep pictures,
which mailbot never inserts and never reads back (its one workbook read is a roster's cells). Either would stay in
the service's memory from its first digest on: numpy ~8 MB, Pillow and its image libraries ~2.4 MB."""

from __future__ import annotations

import sys

_LEFT_OUT = ("numpy", "PIL")

if "openpyxl" not in sys.modules:
    blocked = [name for name in _LEFT_OUT if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # None here makes `import <name>` raise ImportError
    try:
        import openpyxl  # noqa: F401
        import openpyxl.drawing.image  # noqa: F401  # where openpyxl looks for Pillow, once
    finally:
        for name in blocked:
            del sys.modules[name]
