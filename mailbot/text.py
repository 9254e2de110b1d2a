"""Vietnamese text helpers: NFC normalisation and diacritic-insensitive folding for matching."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Whole phrases that schools write either in full or abbreviated; both sides are folded to the short form.
_ABBREVIATIONS = (
    ("trung hoc pho thong", "thpt"),
    ("trung hoc co so", "thcs"),
    ("pho thong nhieu cap hoc", "pt nhieu cap hoc"),
    ("giao duc nghe nghiep", "gdnn"),
    ("giao duc thuong xuyen", "gdtx"),
    ("giao duc va dao tao", "gddt"),
    ("gd dt", "gddt"),
    ("gd&dt", "gddt"),
    ("dai hoc", "dh"),
    ("pgd&dt", "phong gddt"),
    ("pgddt", "phong gddt"),
    ("tt gdnn", "trung tam gdnn"),
    ("cao dang", "cd"),
)
_NON_WORD = re.compile(r"[^0-9a-z&]+")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# Vietnamese marks decompose into U+0300–U+036F: those are dropped in one C pass (str.translate), and đ/Đ mapped.
_MARKS: dict[int, str | None] = {cp: None for cp in range(0x300, 0x370) if unicodedata.combining(chr(cp))}
_MARKS.update({ord("đ"): "d", ord("Đ"): "D"})


def strip_marks(text: str) -> str:
    """Remove tone and vowel marks (every combining character) and map đ→d, so ``Thuỷ``, ``Thủy`` and ``Thuy``
    compare equal."""
    if text.isascii():
        return text  # nothing to strip (most addresses, codes and file names): no pass over its characters
    bare = unicodedata.normalize("NFD", text).translate(_MARKS)
    if bare.isascii():
        return bare  # Vietnamese text: done
    return "".join(ch for ch in bare if not unicodedata.combining(ch))  # marks of other scripts, one by one


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Lower-case, mark-free, punctuation-free words separated by single spaces, abbreviations unified.

    Remembered for the texts seen last: every message is checked against the same campaign titles, institution
    names and, from one school, the same report heading."""
    words = _NON_WORD.sub(" ", strip_marks(text).lower()).strip()
    padded = f" {words} "
    for long, short in _ABBREVIATIONS:
        padded = padded.replace(f" {long} ", f" {short} ")
    return padded.strip()


def contains_phrase(haystack: str, phrase: str) -> bool:
    """True when folded ``phrase`` appears in folded ``haystack`` on word boundaries."""
    return bool(phrase) and f" {phrase} " in f" {haystack} "
