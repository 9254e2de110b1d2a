"""What a Word report says about itself (Decree 30/2020 layout): issuing body, number, place and date, type and title,
signer; and its data tables.

The document is read once by ``mailbot.documents.wordxml`` (decoded paragraphs and tables); each Decree 30 part is
then picked out of those blocks by a function of its own:

    SỞ GD&ĐT HẢI PHÒNG                 CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM       ← header table (find_header)
    TRƯỜNG THPT NGÔ QUYỀN                  Độc lập - Tự do - Hạnh phúc
    Số: 15/BC-THPTNQ               Hải Phòng, ngày 05 tháng 12 năm 2023         ← find_number, find_place_date
                               BÁO CÁO                                          ← type (find_title)
          Sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023            ← title (trích yếu)
    … body, data tables …                                                       ← body_stats
    Nơi nhận:                                  HIỆU TRƯỞNG                      ← signature table (find_signature)
    - …                                        Nguyễn Văn A
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailbot.documents.wordxml import Block, Blocks, Paragraph, Table, read_blocks
from mailbot.models import WarningCode
from mailbot.text import strip_marks

# Document types of Decree 30/2020 (Appendix III) plus the letter (công văn), which has no type line.
DOC_TYPES = (
    "NGHỊ QUYẾT",
    "QUYẾT ĐỊNH",
    "CHỈ THỊ",
    "QUY CHẾ",
    "QUY ĐỊNH",
    "THÔNG CÁO",
    "THÔNG BÁO",
    "HƯỚNG DẪN",
    "CHƯƠNG TRÌNH",
    "KẾ HOẠCH",
    "PHƯƠNG ÁN",
    "ĐỀ ÁN",
    "DỰ ÁN",
    "BÁO CÁO",
    "BIÊN BẢN",
    "TỜ TRÌNH",
    "HỢP ĐỒNG",
    "CÔNG ĐIỆN",
    "BẢN GHI NHỚ",
    "BẢN THỎA THUẬN",
    "GIẤY ỦY QUYỀN",
    "GIẤY MỜI",
    "GIẤY GIỚI THIỆU",
    "GIẤY NGHỈ PHÉP",
    "PHIẾU GỬI",
    "PHIẾU CHUYỂN",
    "PHIẾU BÁO",
    "THƯ CÔNG",
    "CÔNG VĂN",
)


@dataclass(frozen=True)
class DocMeta:
    issuer: str = ""  # the institution: last line of the header's left cell, e.g. "TRƯỜNG THPT NGÔ QUYỀN"
    issuer_parent: str = ""  # the line(s) above it, e.g. "SỞ GD&ĐT HẢI PHÒNG"
    number: str = ""  # "15/BC-THPTNQ"; "/BC-THPTNQ" in an unnumbered draft; "" when there is no "Số:" line
    number_blank: bool = False  # a "Số:" line whose serial is left blank
    place: str = ""  # "Hải Phòng"
    date: dt.date | None = None
    date_blank: bool = False  # "ngày … tháng … năm 2023" left to fill in
    doc_type: str = ""  # "BÁO CÁO", "KẾ HOẠCH", "TỜ TRÌNH", "CÔNG VĂN"…
    title: str = ""  # the trích yếu (for a công văn, what follows "V/v")
    signer_position: str = ""  # as written, e.g. "KT. HIỆU TRƯỞNG\nPHÓ HIỆU TRƯỞNG"
    signer_name: str = ""
    word_count: int = 0  # whitespace-separated words of the whole text, header and signature included
    tables: tuple[Table, ...] = ()  # the data tables (not the header or signature layout tables)
    warnings: tuple[WarningCode, ...] = ()


@dataclass(frozen=True)
class Header:
    """The heading above the type line: who issues the document, and where the body starts."""

    issuer: str = ""
    issuer_parent: str = ""
    lines: tuple[str, ...] = ()  # every line of the heading
    cells: tuple[tuple[str, ...], ...] = ()  # its lines cell by cell (a heading without a table: one cell)
    used: frozenset[int] = frozenset()  # the blocks it takes
    body_from: int = 0  # the first block after it


@dataclass(frozen=True)
class Number:
    number: str = ""
    blank: bool = False  # "Số:      /BC-THPTNQ": the serial is left to fill in


@dataclass(frozen=True)
class PlaceDate:
    place: str = ""
    date: dt.date | None = None
    blank: bool = False  # "ngày … tháng … năm 2023"
    invalid: bool = False  # "ngày 31 tháng 02 năm 2023"


@dataclass(frozen=True)
class Title:
    doc_type: str = ""
    title: str = ""
    used: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Signature:
    position: str = ""
    name: str = ""
    used: frozenset[int] = frozenset()


@dataclass(frozen=True)
class BodyStats:
    word_count: int = 0  # the whole text
    body_words: int = 0  # outside the heading, the title and the signature
    tables: tuple[Table, ...] = ()  # the data tables


# ---------------------------------------------------------------- the document as a whole


def read_meta(data: bytes, *, max_paragraphs: int | None = None) -> DocMeta:
    """The metadata of a .docx; never raises on bad input (warnings ``unreadable_docx``, ``document_too_large``).

    ``max_paragraphs`` stops reading after that many paragraphs (warning ``truncated``): the heading is in the
    first dozen, but the signer, the tables and the word count need the whole document.
    """
    return describe(read_blocks(data, max_paragraphs=max_paragraphs))


def describe(blocks: Blocks) -> DocMeta:
    """The Decree 30 parts of a document already read (``wordxml.read_blocks``)."""
    if blocks.problem is not None:
        return DocMeta(warnings=(blocks.problem,))
    items = blocks.items
    head = find_header(items)
    early = [*head.lines, *(b.text for b in items[head.body_from : head.body_from + 12] if isinstance(b, Paragraph))]
    number = find_number(head.lines) or find_number(early) or Number()
    when = find_place_date(head.lines) or find_place_date(early) or PlaceDate()
    title = find_title(items, head)
    signature = find_signature(items, head.body_from, head.used | title.used)
    stats = body_stats(items, head.used | title.used | signature.used)
    return DocMeta(
        issuer=head.issuer,
        issuer_parent=head.issuer_parent,
        number=number.number,
        number_blank=number.blank,
        place=when.place,
        date=when.date,
        date_blank=when.blank,
        doc_type=title.doc_type,
        title=title.title,
        signer_position=signature.position,
        signer_name=signature.name,
        word_count=stats.word_count,
        tables=stats.tables,
        warnings=_warnings(blocks, number, when, stats),
    )


_LEGACY_ENCODING = {"tcvn3": WarningCode.LEGACY_ENCODING_TCVN3, "vni": WarningCode.LEGACY_ENCODING_VNI}


def _warnings(blocks: Blocks, number: Number, when: PlaceDate, stats: BodyStats) -> tuple[WarningCode, ...]:
    warnings = [WarningCode.BAD_DATE] if when.invalid else []
    if blocks.truncated:
        warnings.append(WarningCode.TRUNCATED)  # what was not read cannot be judged empty
    elif stats.body_words == 0:
        warnings.append(WarningCode.EMPTY_DOCUMENT)
    if number.blank and when.blank and stats.body_words < 50 and not blocks.truncated:
        warnings.append(WarningCode.BLANK_TEMPLATE)
    warnings.extend(_LEGACY_ENCODING[name] for name in blocks.legacy)
    return tuple(warnings)


def heading(meta: DocMeta, blocks: Blocks) -> str:
    """The lines that name the issuer and the subject, for identification by name; else the file's first lines."""
    return meta_heading(meta) or "\n".join(blocks.opening)  # the latter: not laid out as Decree 30 asks


def meta_heading(meta: DocMeta) -> str:
    """The issuer (and the bodies above it), the type and the title; "" when it names neither issuer nor title."""
    if meta.issuer or meta.title:
        return "\n".join(filter(None, [meta.issuer_parent, meta.issuer, meta.doc_type, meta.title]))
    return ""


# ---------------------------------------------------------------- the header


def find_header(items: Sequence[Block]) -> Header:
    """A table holding the national motto near the top, else the first paragraphs (tabs or centred lines)."""
    found = _header_table(items) or _header_paragraphs(items)
    if found is None:
        return Header()
    issuer_lines, head = found
    issuer, parent = _issuer(issuer_lines)
    return Header(issuer, parent, head.lines, head.cells, head.used, head.body_from)


def _header_table(items: Sequence[Block]) -> tuple[list[str], Header] | None:
    for at, block in enumerate(items[:6]):
        if isinstance(block, Table) and any(_is_motto(c) for row in block.rows for c in row):
            return _table_heading(at, block.rows)
    return None


def _table_heading(at: int, rows: tuple[tuple[str, ...], ...]) -> tuple[list[str], Header]:
    """The issuer's lines (the cell beside the motto) and the heading table's lines."""
    cells = tuple(tuple(_lines(cell)) for row in rows for cell in row)
    issuer_lines: list[str] = []
    for row in rows:
        motto = next((j for j, c in enumerate(row) if _is_motto(c)), None)
        if motto is not None:
            issuer_lines = _lines(next((c for j, c in enumerate(row) if j != motto), ""))
            break
    lines = tuple(line for cell in cells for line in cell)
    return issuer_lines, Header(lines=lines, cells=cells, used=frozenset({at}), body_from=at + 1)


def _header_paragraphs(items: Sequence[Block]) -> tuple[list[str], Header] | None:
    """A heading laid out with tabs, or as centred paragraphs, without a table; it holds the motto."""
    motto_seen = False
    region: list[int] = []
    issuer_lines: list[str] = []
    lines: list[str] = []
    for i, block in enumerate(items[:10]):
        if not isinstance(block, Paragraph) or _doc_type(" ".join(block.text.split())):
            break
        segments = [s.strip() for s in re.split(r"\t+", block.text) if s.strip()]
        if not segments:
            continue
        region.append(i)
        lines.extend(segments)
        if any(_is_motto(s) for s in segments):
            motto_seen = True
            if len(segments) > 1:
                issuer_lines.append(segments[0])
        elif not motto_seen or len(segments) > 1 and not (_NUMBER.match(segments[0]) or _ABOUT.match(segments[0])):
            issuer_lines.append(segments[0])
        if motto_seen and find_place_date([segments[-1]]):
            break  # the place and date close the heading
    if not motto_seen:
        return None
    head = Header(lines=tuple(lines), cells=(tuple(lines),), used=frozenset(region), body_from=region[-1] + 1)
    return issuer_lines, head


def _issuer(issuer_lines: list[str]) -> tuple[str, str]:
    """(institution, the bodies above it) from the lines of the heading's left part."""
    kept: list[str] = []
    for line in issuer_lines:
        if _is_separator(line) or _is_motto(line):
            continue
        if _NUMBER.match(line) and find_number([line]) or _ABOUT.match(line) or _DATE.search(line):
            break
        kept.append(line)
    if len(kept) >= 2 and not _names_a_body(kept[-1]) and _names_a_body(kept[-2]):
        kept[-2:] = [f"{kept[-2]} {kept[-1]}"]  # "TRƯỜNG TRUNG HỌC CƠ SỞ" / "LẠI XUÂN": one name on two lines
    return (kept[-1] if kept else ""), "\n".join(kept[:-1])


# ---------------------------------------------------------------- the type and title


def find_title(items: Sequence[Block], head: Header) -> Title:
    """The type line and the title under it; for a letter, what follows "V/v" under the number or the heading."""
    typed = _typed_title(items, head.body_from)
    if typed is not None:
        return typed
    after = [_lines(b.text) for b in items[head.body_from : head.body_from + 3] if isinstance(b, Paragraph)]
    about = _about([list(cell) for cell in head.cells] + after)
    return Title("CÔNG VĂN", about) if about is not None else Title()


def _typed_title(items: Sequence[Block], start: int) -> Title | None:
    seen = 0
    for i in range(start, len(items)):
        block = items[i]
        if not isinstance(block, Paragraph):
            break
        text = " ".join(block.text.split())
        if not text:
            continue
        seen += 1
        if seen > 12:
            break
        found = _doc_type(text)
        if found is not None:
            doc_type, rest = found
            lines, used = _title_lines(items, i + 1, [rest] if rest else [])
            return Title(doc_type, " ".join(lines), frozenset({i, *used}))
    return None


def _title_lines(items: Sequence[Block], start: int, lines: list[str]) -> tuple[list[str], list[int]]:
    """The title's lines under the type line (centred, up to a rule or the body), and the blocks they take."""
    used: list[int] = []
    for j in range(start, min(start + 7, len(items))):
        block = items[j]
        if not isinstance(block, Paragraph):
            break
        line = " ".join(block.text.split())
        if not line:
            if lines:
                break
            continue
        if _is_separator(line):
            used.append(j)
            break
        if _BODY_START.match(line) or (lines and not block.centered):
            break
        if not lines and not block.centered and len(line) > 300:
            break
        lines.append(line)
        used.append(j)
    return lines, used


# ---------------------------------------------------------------- the signature


def find_signature(items: Sequence[Block], start: int, used: frozenset[int]) -> Signature:
    """A one-row table near the end ("Nơi nhận" on the left), else the last paragraphs."""
    return _signature_table(items, start, used) or _signature_paragraphs(items, start, used) or Signature()


def _signature_table(items: Sequence[Block], start: int, used: frozenset[int]) -> Signature | None:
    last_table = max((i for i, b in enumerate(items) if isinstance(b, Table)), default=None)
    for i in range(len(items) - 1, start - 1, -1):
        block = items[i]
        if i in used or not isinstance(block, Table) or len(block.rows) != 1 or not 2 <= len(block.rows[0]) <= 3:
            continue
        cells = block.rows[0]
        recipients = [c for c in cells if _folded(c).startswith("noi nhan")]
        others = [c for c in cells if c not in recipients and _lines(c)]
        if others and (recipients or i == last_table):
            lines = [line for line in _lines(others[-1]) if not _SIGN_NOTE.match(line)]
            if not lines:
                return Signature(used=frozenset({i}))
            return Signature("\n".join(lines[:-1]), lines[-1], frozenset({i}))
    return None


def _signature_paragraphs(items: Sequence[Block], start: int, used: frozenset[int]) -> Signature | None:
    """The signer's name on the last line, the position in capitals above it (at most three lines)."""
    lines = _signature_lines(items, start, used)
    if not lines:
        return None
    i, name = lines[-1]
    if len(name) > 50 or len(name.split()) > 7 or name.endswith((".", ":", ";", ",")):
        return None
    position: list[tuple[int, str]] = []
    for j, line in reversed(lines[:-1]):
        if line != line.upper() or not any(ch.isalpha() for ch in line) or len(position) >= 3:
            break
        position.insert(0, (j, line))
    if not position:
        return None
    return Signature("\n".join(line for _, line in position), name, frozenset({i, *(j for j, _ in position)}))


def _signature_lines(items: Sequence[Block], start: int, used: frozenset[int]) -> list[tuple[int, str]]:
    """The right-hand lines of the last paragraphs (at most twelve), recipients and notes left out."""
    tail: list[tuple[int, str]] = []
    for i in range(len(items) - 1, start - 1, -1):
        block = items[i]
        if not isinstance(block, Paragraph) or i in used:
            break
        segments = [s.strip() for s in re.split(r"\t+", block.text) if s.strip()]
        if segments:
            tail.append((i, segments[-1]))
        if len(tail) >= 12:
            break
    tail.reverse()
    return [
        (i, line)
        for i, text in tail
        for line in _lines(text)
        if not _SIGN_NOTE.match(line)
        and not line.startswith(("-", "+", "•"))
        and not _folded(line).startswith("noi nhan")
    ]


# ---------------------------------------------------------------- the body


def body_stats(items: Sequence[Block], used: frozenset[int]) -> BodyStats:
    """Words in the whole text and in the body, and the data tables (the blocks not in ``used``)."""
    tables = tuple(b for i, b in enumerate(items) if isinstance(b, Table) and i not in used)
    counts = [len((b.text if isinstance(b, Paragraph) else _table_text(b)).split()) for b in items]  # _words
    body_words = sum(n for i, n in enumerate(counts) if i not in used)
    if body_words < 50:  # a small body: do not count separator lines and bullets as words
        body_words = sum(
            _words(t) for t in _block_texts(items, used) if any(ch.isalnum() for ch in t) and not _is_separator(t)
        )
    return BodyStats(sum(counts), body_words, tables)


def _table_text(table: Table) -> str:
    return "\n".join(c for row in table.rows for c in row)


def _words(text: str) -> int:
    """Whitespace-separated words (a lone "-" counts too: regex word matching would cost more than parsing)."""
    return len(text.split())


def _block_texts(items: Sequence[Block], used: frozenset[int]) -> list[str]:
    """The lines of the blocks not in ``used`` (cells one by one)."""
    texts: list[str] = []
    for i, block in enumerate(items):
        if i not in used:
            cells = [block.text] if isinstance(block, Paragraph) else [c for row in block.rows for c in row]
            texts.extend(line for cell in cells for line in cell.split("\n"))
    return texts


# ---------------------------------------------------------------- reading the lines

_SEPARATOR_CHARACTERS = re.compile(r"[\s\-_=*~.·•–—+]")
_NUMBER = re.compile(r"^\s*(?:số|so)\b\s*[:.]?\s*(?P<rest>.*)$", re.I)
_ABOUT = re.compile(r"^\s*(?:v/v|v\.v|về việc)\s*[:.]?\s*(?P<rest>.*)$", re.I)
_DATE = re.compile(
    r"(?P<place>[^\n\t,]*?)[\s,]*\bngày\b[\s.…_]*(?P<d>\d{1,2})?[\s.…_/]*\btháng\b[\s.…_]*"
    r"(?P<m>\d{1,2})?[\s.…_/]*\bnăm\b[\s.…_]*(?P<y>\d{4})?",
    re.I,
)
_MOTTO = ("cong hoa xa hoi", "doc lap tu do")
_BODY_START = re.compile(r"^\s*(?:kính gửi|căn cứ|thực hiện|i\.|1\.)(?:\s|:|$)", re.I)
_SIGN_NOTE = re.compile(r"^\s*[(\[].*[)\]]\s*$|^\s*(?:đã ký|da ky)\b", re.I)
_TYPE_KEYS = {re.sub(r"[^a-z]", "", strip_marks(t).lower()): t for t in DOC_TYPES}


def _is_separator(line: str) -> bool:
    """A rule under a heading: "--------", "___", "-----o0o-----", "***"."""
    rest = _SEPARATOR_CHARACTERS.sub("", line)
    return len(line) - len(rest) >= 3 and len(rest) <= 3


def _folded(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", strip_marks(text).lower()).split())


def _is_motto(text: str) -> bool:
    lowered = text.lower()
    if not any(hint in lowered for hint in ("hòa", "hoà", "hoa", "lập", "lap")):
        return False  # cheap: most cells are not the motto
    folded = _folded(text)
    return any(m in folded for m in _MOTTO)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in re.split(r"[\n\t]+", text) if line.strip()]


def find_number(lines: Sequence[str]) -> Number | None:
    """The "Số: 15/BC-THPTNQ" line's number, from the first line that holds one."""
    for line in lines:
        match = _NUMBER.match(line)
        if not match or len(line) > 80:
            continue
        rest = match.group("rest")
        if rest and not re.search(r"[/\d]", rest) and not re.fullmatch(r"[\s.…_]*", rest):
            continue  # "Số liệu…": a sentence, not the number
        rest = re.sub(r"\s*([/-])\s*", r"\1", rest).lstrip(" .…_")
        number = rest.split()[0] if rest.split() else ""
        if number and not re.search(r"[/\d]", number):
            continue  # "Số điện thoại: …"
        serial = number.split("/")[0]
        return Number(number, not re.search(r"\d", serial))
    return None


def find_place_date(lines: Sequence[str]) -> PlaceDate | None:
    """Place and date from the first "…, ngày … tháng … năm …" line."""
    for line in lines:
        # the expression needs "ngày" (any case); searched for only where it is, since it tries every position
        match = _DATE.search(line) if "ngày" in line.lower() else None
        if not match:
            continue
        place = match.group("place").strip(" ,.\t")
        if len(place.split()) > 6:
            continue  # a sentence mentioning a date, not the place-and-date line
        day, month, year = match.group("d"), match.group("m"), match.group("y")
        if not (day and month and year):
            return PlaceDate(place, None, blank=True)
        try:
            return PlaceDate(place, dt.date(int(year), int(month), int(day)))
        except ValueError:
            return PlaceDate(place, None, invalid=True)
    return None


_BODIES = tuple(
    tuple(words.split())
    for words in (
        "TRUONG",
        "PHONG",
        "SO",
        "TRUNG TAM",
        "TT",
        "UBND",
        "UY BAN",
        "BO",
        "BAN",
        "DAI HOC",
        "HOC VIEN",
        "VIEN",
        "CONG TY",
        "HOI",
        "HOI DONG",
        "DOAN",
        "CONG DOAN",
        "DANG BO",
        "CHI BO",
        "LIEN DOI",
        "TO",
        "KHOA",
        "CUC",
        "VU",
    )
)


def _names_a_body(line: str) -> bool:
    """Whether a heading line starts with a kind of organisation: "TRƯỜNG …", "PHÒNG …", "UBND …"."""
    words = strip_marks(line).upper().replace(".", " ").split()
    return any(tuple(words[: len(kind)]) == kind for kind in _BODIES)


def _about(cells: Sequence[Sequence[str]]) -> str | None:
    """What follows "V/v" in a cell, with the lines that continue it."""
    for lines in cells:
        for k, line in enumerate(lines):
            match = _ABOUT.match(line)
            if not match:
                continue
            more = []
            for nxt in lines[k + 1 :]:
                if (
                    _is_separator(nxt)
                    or _is_motto(nxt)
                    or _DATE.search(nxt)
                    or _NUMBER.match(nxt)
                    or _BODY_START.match(nxt)
                ):
                    break
                more.append(nxt)
            return " ".join([match.group("rest").strip(), *more]).strip()
    return None


def _doc_type(text: str) -> tuple[str, str] | None:
    """(type, rest of the line) when a paragraph is a type line such as "BÁO CÁO" or "BÁO CÁO KẾT QUẢ …"."""
    if len(text) > 300 or (len(text) > 40 and text != text.upper()):
        return None  # a body paragraph
    key = re.sub(r"[^a-z]", "", strip_marks(text).lower())
    if key in _TYPE_KEYS:
        return _TYPE_KEYS[key], ""
    if text != text.upper():
        return None
    words = text.split()
    bare = strip_marks(text).upper().split()
    for canonical in DOC_TYPES:
        type_words = strip_marks(canonical).split()
        if len(bare) > len(type_words) and bare[: len(type_words)] == type_words:
            return canonical, " ".join(words[len(type_words) :])
    return None
