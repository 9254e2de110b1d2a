"""Bytes → ``email.message.Message`` (compat32): the standard library's parser, spared the work that cannot matter.

``email.feedparser`` reads a message line by line in Python. A school's report arrives as ~55 KB of base64, some
750 lines, and those lines were two thirds of parsing the whole message; each multipart also compiled a regular
expression for its boundary, unique to the message, so never found in ``re``'s cache. Three changes, each giving
the very tree the parser gives without it (tests/test_mime.py compares them over every message at hand):

- each long run of base64 lines is folded into one placeholder line before parsing and put back in the payload
  after: a line made only of base64 characters is neither a boundary ("--"), a header (":"), a continuation
  (leading space) nor the blank line that ends a block, so no decision of the parser depends on how many there are;
- a boundary is matched with string methods rather than a freshly compiled regular expression (``_Boundary``);
- a body's closing line end is searched at the end of the body only (``_LineEndAtEnd``).

A part's bytes (``decoded_payload``) come from ``Message.get_payload(decode=True)`` too, but a base64 body that is
plainly well formed is decoded by pybase64 (SIMD): the same bytes, a twentieth of the time of the standard
library's decoder, which was a twentieth of a report's whole reading.
"""

from __future__ import annotations

import binascii
import email
import re
from email import feedparser
from email.message import Message
from email.policy import compat32
from types import ModuleType
from typing import Any

import pybase64

# ---------------------------------------------------------------- folding the base64 runs

_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_FOLD_PREFIX = "QWxyZm9sZGVkTWFpbGJvdFJ1bg"  # base64 characters, so the placeholder line is of the same kind
MIN_FOLDED = 4096  # shorter runs are left as they are: folding them saves less than it costs


def message_from_bytes(data: bytes) -> Message:
    """The message as ``email.message_from_bytes(data, policy=compat32)`` reads it, only faster."""
    folded, runs = _fold(data)
    if not runs:
        return email.message_from_bytes(data, policy=compat32)
    msg = email.message_from_bytes(folded, policy=compat32)
    if _unfold(msg, runs) != len(runs):  # a placeholder the parser dropped or moved: read the original instead
        return email.message_from_bytes(data, policy=compat32)
    return msg


def _fold(data: bytes) -> tuple[bytes, dict[str, str]]:
    """``data`` with each long run of base64 lines that starts a body replaced by a placeholder, and the runs.

    Searched with ``bytes`` methods only (``find`` of one byte is ``memchr``): a regular expression, or even a
    search for two bytes, cost here about what folding saves."""
    eol = _line_end(data)
    if not eol or _FOLD_PREFIX.encode() in data:  # no lines, or a message quoting the placeholder itself
        return data, {}
    pieces: list[bytes] = []
    runs: dict[str, str] = {}
    done = 0
    start = _after_blank_line(data, 0, eol)
    while start >= 0:
        end = _run_end(data, start)
        if end - start >= MIN_FOLDED and _regular_base64(data[start:end], eol):
            token = f"{_FOLD_PREFIX}{len(runs):06d}"
            runs[token] = data[start:end].decode("ascii")
            pieces += (data[done:start], token.encode())
            done = end
        start = _after_blank_line(data, max(done, start), eol)
    if not runs:
        return data, {}
    pieces.append(data[done:])
    return b"".join(pieces), runs


def _line_end(data: bytes) -> bytes:
    """The message's line end, as its first line ends (runs in the other style are simply not folded)."""
    first = data.find(b"\n")
    return b"" if first < 0 else b"\r\n" if data[first - 1 : first] == b"\r" else b"\n"


def _after_blank_line(data: bytes, start: int, eol: bytes) -> int:
    """Where the line after the next blank line begins (a body starts there), or -1."""
    found = data.find(eol + eol, start)
    return found + 2 * len(eol) if found >= 0 else -1


def _run_end(data: bytes, start: int) -> int:
    """Where a run of base64 lines from ``start`` would end: before the line end of the last line that comes
    before the next "-" (a boundary's, perhaps; never a base64 character), blank lines left out."""
    dash = data.find(b"-", start)
    last = data.rfind(b"\n", start, dash if dash >= 0 else len(data))
    if last < 0:
        return start
    return start + len(data[start:last].rstrip(b"\r\n"))


def _regular_base64(run: bytes, eol: bytes) -> bool:
    """Lines of base64 characters of one width, each but the last ended by ``eol``: so none is blank, and no lone
    CR hides a line end. Checked with one ``translate`` and two strided slices."""
    width = run.find(b"\n") + 1 - len(eol)
    if width <= 0 or run[width : width + len(eol)] != eol:
        return False
    step = width + len(eol)
    lines = len(run) // step
    if not 0 < len(run) - lines * step <= width:
        return False
    return (
        run.translate(None, _BASE64) == eol * lines
        and run[width::step] == eol[:1] * lines
        and run[step - 1 :: step] == b"\n" * lines
    )


def _unfold(msg: Message, runs: dict[str, str]) -> int:
    """Put the runs back in place of their placeholders, in every part; returns how many were put back."""
    restored = 0
    for part in msg.walk():
        for field in ("_payload", "preamble", "epilogue"):
            text = getattr(part, field, None)
            if isinstance(text, str) and _FOLD_PREFIX in text:
                for token in re.findall(_FOLD_PREFIX + r"\d{6}", text):
                    text = text.replace(token, runs.get(token, token))
                    restored += token in runs
                setattr(part, field, text)
    return restored


# ---------------------------------------------------------------- a part's bytes


def decoded_payload(part: Message) -> bytes | None:
    """``part.get_payload(decode=True)``, the same bytes and defects, only faster for a well-formed base64 body.

    The standard library joins the body's lines and decodes them strictly, falling back to a lenient decoding (and a
    defect) when that fails. A body of ASCII whose lines join into a validly padded, strictly valid base64 string is
    decoded by pybase64 instead: where it succeeds strictly, the standard library does too, with the same bytes (and
    no defect). Anything else (bad padding, a stray character, 8-bit bytes) is left to the standard library."""
    text = part._payload  # type: ignore[attr-defined]  # the body as parsed; get_payload() re-decodes 8-bit text
    if isinstance(text, str) and text.isascii() and str(part.get("content-transfer-encoding", "")).lower() == "base64":
        joined = text.encode("ascii").translate(None, b"\r\n")  # bytes.splitlines() splits at these only
        if len(joined) % 4 == 0:
            try:
                return pybase64.b64decode(joined, validate=True)
            except binascii.Error:
                pass
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else None


# ---------------------------------------------------------------- boundaries without a compiled expression

_SEPARATOR_PATTERN = re.compile(
    r"\(\?P<sep>(?P<escaped>.*)\)\(\?P<end>--\)\?\(\?P<ws>\[ \\t\]\*\)\(\?P<linesep>\\r\\n\|\\r\|\\n\)\?\$", re.DOTALL
)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_LINE_ENDS = ("", "\r\n", "\r", "\n")


class _BoundaryMatch:
    __slots__ = ("_groups",)

    def __init__(self, sep: str, end: str | None, ws: str, linesep: str | None) -> None:
        self._groups = {"sep": sep, "end": end, "ws": ws, "linesep": linesep}

    def group(self, name: str) -> str | None:
        return self._groups[name]


class _Boundary:
    """What ``re.compile("(?P<sep>" + re.escape(separator) + r")(?P<end>--)?(?P<ws>[ \\t]*)(?P<linesep>\\r\\n|\\r|\\n)?$")``
    matches, for the single lines the parser hands it (each ends in at most one line end)."""

    def __init__(self, separator: str) -> None:
        self.separator = separator

    def match(self, line: str) -> _BoundaryMatch | None:
        if not line.startswith(self.separator):
            return None
        rest = line[len(self.separator) :]
        end = "--" if rest.startswith("--") else None
        if end:
            rest = rest[2:]
        tail = rest.lstrip(" \t")
        if tail not in _LINE_ENDS:
            return None
        return _BoundaryMatch(self.separator, end, rest[: len(rest) - len(tail)], tail or None)


class _ReForFeedparser(ModuleType):
    """``re`` as ``email.feedparser`` sees it: the same, but a boundary's expression is a ``_Boundary``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    def compile(pattern: Any, flags: int = 0) -> Any:
        found = _SEPARATOR_PATTERN.fullmatch(pattern) if isinstance(pattern, str) and not flags else None
        if found:
            separator = _ESCAPED.sub(r"\1", found.group("escaped"))
            if re.escape(separator) == found.group("escaped"):  # read back exactly, or left to re
                return _Boundary(separator)
        return re.compile(pattern, flags)


# ---------------------------------------------------------------- the closing line end


class _LineEndAtEnd:
    """``email.feedparser``'s search for the line end that closes a part's body, looking at the end only.

    The parser finds it with ``re.search(r"(\\r\\n|\\r|\\n)\\Z", body)``, which tries every position of the
    body from its start: for a report's 55 KB of base64 that was half the parsing of the whole message. A line end
    ending the text can only start in its last two characters, so the search starts there: the same match, always.
    """

    _pattern = re.compile(r"(\r\n|\r|\n)\Z")

    def search(self, text: str) -> re.Match[str] | None:
        return self._pattern.search(text, max(0, len(text) - 2))


feedparser.NLCRE_eol = _LineEndAtEnd()  # type: ignore[attr-defined]
feedparser.re = _ReForFeedparser("re")  # type: ignore[attr-defined]
