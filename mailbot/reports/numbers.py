"""Numbers as Vietnamese tables write them: "1.234", "12,5", "(5)", "12 buổi", a dash for nothing.

``parse_number`` reads a cell that is a number and nothing else (what the shape-matching consolidation sums);
``read_figure`` is the tolerant reading the template-driven consolidation uses: a number followed by a unit or a
word ("12 buổi", "1.250 lượt") is read with a note, an empty cell or a dash counts as 0 with a note, and anything
else is no figure at all (staff see the text on the list of what did not match).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

Number = int | float

_BLANKS = frozenset({"", "-", "–", "—", "x", "X", "…", "..."})
_PATTERNS = (
    (re.compile(r"\d+"), None, None),
    (re.compile(r"[1-9]\d{0,2}(?:\.\d{3})+"), ".", None),  # 1.234 and 1.234.567
    (re.compile(r"[1-9]\d{0,2}(?:\.\d{3})+,\d+"), ".", ","),  # 1.234,5
    (re.compile(r"[1-9]\d{0,2}(?:,\d{3})+"), ",", None),  # 1,234
    (re.compile(r"[1-9]\d{0,2}(?:,\d{3})+\.\d+"), ",", "."),  # 1,234.5
    (re.compile(r"[1-9]\d{0,2}(?: \d{3})+(?:,\d+)?"), " ", ","),  # 1 234 and 1 234,5
    (re.compile(r"\d+,\d+"), None, ","),  # 12,5
    (re.compile(r"\d+\.\d+"), None, "."),  # 12.5 (and 0.250)
)
# A number, then words: "12 buổi", "1.250 lượt người", "05 cuộc", "3 (ba)". Digits inside the words stop it.
_NUMBER_AND_WORDS = re.compile(r"([-−–(]?\s*\d[\d., ]*?\)?)\s*([^\d\s][^\d]*)")

# The notes staff read beside a figure.
EMPTY_AS_ZERO = "Ô để trống, tính là 0"
WITH_WORDS = "Ô ghi kèm chữ, chỉ lấy số"


def is_blank(text: str) -> bool:
    """An empty cell, or a dash or an "x" standing for nothing."""
    return " ".join(text.split()) in _BLANKS


def parse_number(text: str) -> Decimal | None:
    """A cell's number, or None: "1.234" and "1,234" are 1234, "12,5" and "12.5" are 12.5, "(5)" and "-5" are -5."""
    s = " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())
    negative = False
    if s.startswith("(") and s.endswith(")"):
        s, negative = s[1:-1].strip(), True
    if s[:1] in ("-", "−", "–"):
        s, negative = s[1:].strip(), not negative
    if s.startswith("+"):
        s = s[1:].strip()
    for pattern, thousands, decimal in _PATTERNS:
        if pattern.fullmatch(s):
            if thousands:
                s = s.replace(thousands, "")
            if decimal:
                s = s.replace(decimal, ".")
            try:
                value = Decimal(s)
            except InvalidOperation:
                return None
            return -value if negative else value
    return None


@dataclass(frozen=True)
class Figure:
    """A cell read as a figure: its value (None when it holds no number) and a note when it was read leniently."""

    value: Decimal | None
    note: str = ""


def read_figure(text: str) -> Figure:
    """The tolerant reading: "1.234" → 1234; "12 buổi" → 12 (noted); "" or "-" → 0 (noted); "không có" → None."""
    if is_blank(text):
        return Figure(Decimal(0), EMPTY_AS_ZERO)
    value = parse_number(text)
    if value is not None:
        return Figure(value)
    match = _NUMBER_AND_WORDS.fullmatch(" ".join(text.split()))
    if match:
        value = parse_number(match.group(1).strip())
        if value is not None:
            return Figure(value, WITH_WORDS)
    return Figure(None)


def plain_number(value: Decimal) -> Number:
    """An int when whole, else a float (what a spreadsheet cell holds)."""
    return int(value) if value == value.to_integral_value() else float(value)


def vn_number(value: Decimal) -> str:
    """1234.5 → "1.234,5"."""
    whole, _, fraction = f"{abs(value):f}".partition(".")
    fraction = fraction.rstrip("0")
    text = f"{int(whole):,}".replace(",", ".") + ("," + fraction if fraction else "")
    return ("-" if value < 0 else "") + text


__all__ = [
    "EMPTY_AS_ZERO",
    "WITH_WORDS",
    "Figure",
    "Number",
    "is_blank",
    "parse_number",
    "plain_number",
    "read_figure",
    "vn_number",
]
