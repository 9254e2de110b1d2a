"""Import openpyxl without numpy: import this module before openpyxl wherever a process may import openpyxl first.

openpyxl imports numpy when it is installed (it is, for reading scanned PDFs), only to accept numpy numbers as cell
values, which mailbot never writes; numpy would stay in the service's memory (~8 MB) from its first digest on."""

from __future__ import annotations

import sys

if "openpyxl" not in sys.modules and "numpy" not in sys.modules:
    sys.modules["numpy"] = None  # type: ignore[assignment]  # None here makes `import numpy` raise ImportError
    try:
        import openpyxl  # noqa: F401
    finally:
        del sys.modules["numpy"]
