"""What a Word report says about itself (Decree 30/2020 layout): issuing body, number, place and date, type and title, signer; and its tables.

``word/document.xml`` is streamed once (defusedxml, no DTD) into paragraphs and tables of runs; each run is
decoded from its legacy encoding, if any (``mailbot.documents.vnenc``), by its own font, else its character style's, its
paragraph style's, then the document default (``word/styles.xml``, read only as far as needed and only when a
style can name a legacy font at all). The Decree 30 parts are then picked out of the text:

    SỞ GD&ĐT HẢI PHÒNG                 CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM       ← header table
    TRƯỜNG THPT NGÔ QUYỀN                  Độc lập - Tự do - Hạnh phúc
    Số: 15/BC-THPTNQ               Hải Phòng, ngày 05 tháng 12 năm 2023
                               BÁO CÁO                                          ← type
          Sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023            ← title (trích yếu)
    … body, data tables …
    Nơi nhận:                                  HIỆU TRƯỞNG                      ← signature table
    - …                                        Nguyễn Văn A
"""

from __future__ import annotations

import datetime as dt
import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from mailbot.documents.vnenc import convert_run, detect, font_encoding, font_matters, is_uppercase_font
from mailbot.models import WarningCode
from mailbot.text import nfc, strip_marks

MAX_XML_BYTES = 20 * 1024 * 1024  # uncompressed document.xml (and styles.xml) read at most

_W_NAMESPACES = (
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
)  # transitional, strict
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
# What a damaged or hostile package can make zipfile, zlib or the parser raise (encrypted members: RuntimeError,
# unknown compression: NotImplementedError, DTDs and entities: DefusedXmlException, a ValueError).
_PARSE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    KeyError,
    ParseError,
    DefusedXmlException,
    EOFError,
    OSError,
    ValueError,
    LookupError,
    zlib.error,
    struct.error,
    RuntimeError,
    NotImplementedError,
    StopIteration,
    OverflowError,
    RecursionError,
    MemoryError,
)

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
class Table:
    """A table's cell texts, row by row (a merged cell repeats its text in every grid column it covers)."""

    rows: tuple[tuple[str, ...], ...] = ()


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


# ---------------------------------------------------------------- reading the package


def read_meta(data: bytes, *, max_paragraphs: int | None = None) -> DocMeta:
    """The metadata of a .docx; never raises on bad input (warnings ``unreadable_docx``, ``document_too_large``).

    ``max_paragraphs`` stops reading after that many paragraphs (warning ``truncated``): the heading is in the
    first dozen, but the signer, the tables and the word count need the whole document.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            name = _main_part(archive)
            if name is None:
                return DocMeta(warnings=(WarningCode.UNREADABLE_DOCX,))
            if archive.getinfo(name).file_size > MAX_XML_BYTES:
                return DocMeta(warnings=(WarningCode.DOCUMENT_TOO_LARGE,))
            with archive.open(name) as raw:
                parsed = _parse_document(_Limited(raw, MAX_XML_BYTES), max_paragraphs)
            fonts = _StyleFonts.load(archive, parsed) if parsed.unstyled_runs else _StyleFonts()
    except _TooLarge:
        return DocMeta(warnings=(WarningCode.DOCUMENT_TOO_LARGE,))
    except _PARSE_ERRORS:
        return DocMeta(warnings=(WarningCode.UNREADABLE_DOCX,))
    return _extract(parsed, fonts)


class _TooLarge(Exception):
    pass


class _Limited(io.RawIOBase):
    """A read-only stream that refuses to yield more than ``limit`` bytes (a zip member may lie about its size)."""

    def __init__(self, raw, limit: int) -> None:
        self._raw, self._left = raw, limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size if size is not None and size >= 0 else self._left + 1)
        self._left -= len(chunk)
        if self._left < 0:
            raise _TooLarge
        return chunk


def _main_part(archive: zipfile.ZipFile) -> str | None:
    names = set(archive.namelist())
    if "word/document.xml" in names:
        return "word/document.xml"
    if "_rels/.rels" not in names or archive.getinfo("_rels/.rels").file_size > 1 << 20:
        return None
    with archive.open("_rels/.rels") as rels:
        for _, elem in iterparse(rels, forbid_dtd=True):
            if elem.tag.endswith("}Relationship") and elem.get("Type", "").endswith("/officeDocument"):
                target = elem.get("Target", "").lstrip("/")
                return target if target in names else None
    return None


# ---------------------------------------------------------------- document.xml → paragraphs and tables of runs


class _Para:
    __slots__ = ("style", "runs", "centered", "plain")

    def __init__(self) -> None:
        self.style: str | None = None
        self.runs: list[tuple[str, str | None, str | None, bool]] = []  # text, explicit font, character style, caps
        self.centered = False
        self.plain = True  # no run has a font of its own or text whose reading depends on the font


class _Tbl:
    __slots__ = ("rows", "row", "cell")

    def __init__(self) -> None:
        self.rows: list[list[tuple[list[_Para], int, bool]]] = []  # cells: paragraphs, grid span, merged above
        self.row: list[tuple[list[_Para], int, bool]] = []
        self.cell: list[_Para] = []


class _Parsed:
    __slots__ = ("blocks", "truncated", "unstyled_runs", "namespace")

    def __init__(self, blocks: list, truncated: bool, unstyled_runs: bool, namespace: str) -> None:
        self.blocks, self.truncated, self.unstyled_runs, self.namespace = blocks, truncated, unstyled_runs, namespace


# what the stream reacts to; everything else (run and paragraph properties included) is read from the element
_P, _R, _TBL, _TR, _TC, _FALLBACK, _BODY = range(7)


def _parse_document(xml, max_paragraphs: int | None) -> _Parsed:
    """Top-level paragraphs and tables in order; a nested table's paragraphs join its cell, text boxes are left out."""
    events = iterparse(xml, events=("start", "end"), forbid_dtd=True)
    _, root = next(events)
    namespace = root.tag[1:].partition("}")[0]
    if namespace not in _W_NAMESPACES:
        raise ValueError("not a WordprocessingML document")
    w = "{" + namespace + "}"
    kinds = {
        w + "p": _P,
        w + "r": _R,
        w + "tbl": _TBL,
        w + "tr": _TR,
        w + "tc": _TC,
        _MC_FALLBACK: _FALLBACK,
        w + "body": _BODY,
    }
    names = _RunNames(w)
    blocks: list[_Para | _Tbl] = []
    paras: list[_Para] = []  # open paragraphs: more than one inside a text box
    tables: list[_Tbl] = []
    skip = 0  # inside mc:Fallback (a copy of the mc:Choice content)
    count = 0
    truncated = unstyled = False
    for event, elem in events:
        kind = kinds.get(elem.tag)
        if kind is None:
            continue
        if event == "start":
            if kind == _P:
                paras.append(_Para())
            elif kind == _TBL:
                tables.append(_Tbl())
            elif kind == _FALLBACK:
                skip += 1
            continue  # a row or cell starts empty: the lists are renewed when the previous one ends
        if kind == _R:
            if paras and not skip:
                run = names.run(elem)
                if run is not None:
                    para = paras[-1]
                    para.runs.append(run)
                    if run[1] is not None or run[3]:
                        para.plain = False
                    elif font_matters(run[0]):
                        para.plain = False
                        unstyled = True  # its style's font decides how it reads: styles.xml is needed
        elif kind == _P:
            para = paras.pop()
            if len(elem) and elem[0].tag == names.ppr:
                names.paragraph_properties(elem[0], para)
            elem.clear()
            if paras:
                continue  # a text box's paragraph: not part of the flow
            count += 1
            if tables:
                tables[-1].cell.append(para)
                continue
            blocks.append(para)
            if max_paragraphs is not None and count >= max_paragraphs:
                truncated = True  # stops between top-level blocks only, never inside a table
                break
        elif kind == _TC:
            if tables:
                table = tables[-1]
                table.row.append((table.cell, *names.cell_properties(elem)))
                table.cell = []
        elif kind == _TR:
            if tables:
                tables[-1].rows.append(tables[-1].row)
                tables[-1].row = []
        elif kind == _TBL:
            table = tables.pop()
            elem.clear()
            if paras:
                continue  # a table in a text box: not part of the flow
            if tables:  # a nested table: its paragraphs join the enclosing cell
                tables[-1].cell.extend(p for row in table.rows for cell, _, _ in row for p in cell)
                continue
            blocks.append(table)
            if max_paragraphs is not None and count >= max_paragraphs:
                truncated = True
                break
        elif kind == _FALLBACK:
            skip -= 1
        else:  # the end of w:body: the section properties after it say nothing
            break
    return _Parsed(blocks, truncated, unstyled, w)


class _RunNames:
    """Reads a finished run, paragraph or cell element in one namespace."""

    def __init__(self, w: str) -> None:
        self.t, self.tab, self.br, self.cr, self.soft, self.nbh = (
            w + n for n in ("t", "tab", "br", "cr", "softHyphen", "noBreakHyphen")
        )
        self.rpr, self.rfonts, self.rstyle, self.ppr, self.pstyle, self.jc = (
            w + n for n in ("rPr", "rFonts", "rStyle", "pPr", "pStyle", "jc")
        )
        self.caps = frozenset((w + "caps", w + "smallCaps"))
        self.tcpr, self.span, self.vmerge = w + "tcPr", w + "gridSpan", w + "vMerge"
        self.ascii, self.hansi, self.val = w + "ascii", w + "hAnsi", w + "val"

    def run(self, elem) -> tuple[str, str | None, str | None, bool] | None:
        """(text, font, character style, shown in capitals) of a ``w:r``; None when it holds no text."""
        parts: list[str] = []
        font = style = None
        caps = False
        for child in elem:
            tag = child.tag
            if tag == self.t:
                if child.text:
                    parts.append(child.text)
            elif tag == self.rpr:
                for prop in child:  # direct children only: a w:rPrChange holds the old properties
                    if prop.tag == self.rfonts:
                        font = _font_of(prop, self.ascii, self.hansi)
                    elif prop.tag == self.rstyle:
                        style = prop.get(self.val)
                    elif prop.tag in self.caps:  # typed in lower case, shown (and printed) in capitals
                        caps = caps or prop.get(self.val, "true").lower() not in ("0", "false", "off")
            elif tag == self.tab:
                parts.append("\t")
            elif tag == self.br or tag == self.cr:
                parts.append("\n")  # a line, page or column break: words on either side stay apart
            elif tag == self.soft:
                parts.append("\u00ad")  # ư in a TCVN3 run; dropped from Unicode text
            elif tag == self.nbh:
                parts.append("-")
        if not parts:
            return None
        return "".join(parts), font, style, caps

    def paragraph_properties(self, ppr, para: _Para) -> None:
        for prop in ppr:  # direct children only: a w:pPrChange holds the old properties
            if prop.tag == self.pstyle:
                para.style = prop.get(self.val)
            elif prop.tag == self.jc:
                para.centered = prop.get(self.val) == "center"

    def cell_properties(self, elem) -> tuple[int, bool]:
        """(grid columns spanned, continues the merged cell above) of a ``w:tc``."""
        span, merged = 1, False
        if len(elem) and elem[0].tag == self.tcpr:
            for prop in elem[0]:
                if prop.tag == self.span:
                    value = prop.get(self.val, "1")
                    span = max(1, min(int(value), 64)) if value.isdigit() else 1
                elif prop.tag == self.vmerge:
                    merged = prop.get(self.val, "continue") == "continue"
        return span, merged


def _font_of(rfonts, ascii_attr: str, hansi_attr: str) -> str | None:
    """The Latin font a ``w:rFonts`` names: a legacy one if either slot has it, else hAnsi, else ascii."""
    hansi, ascii_ = rfonts.get(hansi_attr), rfonts.get(ascii_attr)
    for name in (hansi, ascii_):
        if name and font_encoding(name):
            return name
    if hansi or ascii_:
        return hansi or ascii_
    if any(name.endswith(("}asciiTheme", "}hAnsiTheme")) for name in rfonts.attrib):
        return "+theme"  # a theme font (Calibri, Cambria…): never a legacy one
    return None  # only East Asian or complex-script slots: the Latin font is inherited


# ---------------------------------------------------------------- styles.xml: fonts of the styles in use


def _may_name_legacy_fonts(xml: bytes) -> bool:
    """A cheap over-approximation: does any attribute value start with ".Vn" or "VNI" (any case)?"""
    lowered = xml.lower()
    return b'".vn' in lowered or b'"vni' in lowered


class _StyleFonts:
    """Fonts from ``w:docDefaults`` and the styles a document uses; empty when no style can name a legacy font."""

    def __init__(self) -> None:
        self.default: str | None = None
        self.default_paragraph: str | None = None
        self.styles: dict[str, tuple[str | None, str | None]] = {}  # id → (font, basedOn)
        self.known = False  # whether anything was read

    @classmethod
    def load(cls, archive: zipfile.ZipFile, parsed: _Parsed) -> _StyleFonts:
        fonts = cls()
        try:
            info = archive.getinfo("word/styles.xml")
        except KeyError:
            return fonts
        if info.file_size > MAX_XML_BYTES:
            return fonts
        try:
            data = archive.read(info)
            if not _may_name_legacy_fonts(data):
                return fonts  # whatever the styles say, no run can inherit a legacy font
            wanted = {p.style for p in _all_paragraphs(parsed.blocks) if p.style}
            wanted |= {run[2] for p in _all_paragraphs(parsed.blocks) for run in p.runs if run[2]}
            fonts._read(data, parsed.namespace, wanted)
        except _PARSE_ERRORS:
            pass  # damaged styles: keep what was read, the characters decide the rest
        fonts.known = bool(fonts.styles) or fonts.default is not None
        return fonts

    def _read(self, data: bytes, w: str, wanted: set[str]) -> None:
        """Stream styles.xml until the defaults, the default paragraph style and every wanted style are known."""
        STYLE, RFONTS, BASED, DOCDEFAULTS, TBLSTYLEPR = (
            w + n for n in ("style", "rFonts", "basedOn", "docDefaults", "tblStylePr")
        )
        ASCII, HANSI, VAL, STYLEID, TYPE, DEFAULT = (
            w + n for n in ("ascii", "hAnsi", "val", "styleId", "type", "default")
        )
        in_defaults = in_tblstyle = 0
        current: dict | None = None
        seen_default_paragraph = False
        for event, elem in iterparse(io.BytesIO(data), events=("start", "end"), forbid_dtd=True):
            tag = elem.tag
            if event == "start":
                if tag == STYLE:
                    default = elem.get(TYPE) == "paragraph" and elem.get(DEFAULT) in ("1", "true", "on")
                    current = {"id": elem.get(STYLEID), "font": None, "based": None, "default_paragraph": default}
                elif tag == DOCDEFAULTS:
                    in_defaults += 1
                elif tag == TBLSTYLEPR:
                    in_tblstyle += 1
                continue
            if tag == RFONTS:
                font = _font_of(elem, ASCII, HANSI)
                if in_defaults and self.default is None:
                    self.default = font
                elif current is not None and not in_tblstyle and current["font"] is None:
                    current["font"] = font
            elif tag == BASED and current is not None:
                current["based"] = elem.get(VAL)
            elif tag == DOCDEFAULTS:
                in_defaults -= 1
            elif tag == TBLSTYLEPR:
                in_tblstyle -= 1
            elif tag == STYLE and current is not None:
                if current["id"]:
                    self.styles[current["id"]] = (current["font"], current["based"])
                    if current["default_paragraph"] and not seen_default_paragraph:
                        seen_default_paragraph = True
                        self.default_paragraph = current["id"]
                        wanted.add(current["id"])
                    if current["id"] in wanted and current["font"] is None and current["based"]:
                        wanted.add(current["based"])  # inherits: its parent is needed too
                current = None
                elem.clear()
                if seen_default_paragraph and wanted <= self.styles.keys():
                    break

    def font(self, style_id: str | None) -> str | None:
        for _ in range(16):  # basedOn chains are short; a cycle must not hang
            if not style_id or style_id not in self.styles:
                return None
            font, style_id = self.styles[style_id]
            if font:
                return font
        return None

    def resolve(self, run_style: str | None, paragraph_style: str | None) -> str | None:
        """The font a run without one of its own shows in (an unknown paragraph style means the default one)."""
        if paragraph_style not in self.styles:
            paragraph_style = self.default_paragraph
        return self.font(run_style) or self.font(paragraph_style) or self.default


def _all_paragraphs(blocks):
    for block in blocks:
        if isinstance(block, _Para):
            yield block
        else:
            for row in block.rows:
                for cell, _, _ in row:
                    yield from cell


# ---------------------------------------------------------------- text


class _Text:
    """A paragraph once decoded: its text (NFC, soft hyphens gone) and whether it is centred."""

    __slots__ = ("text", "centered")

    def __init__(self, text: str, centered: bool) -> None:
        self.text, self.centered = text, centered


def _decode(para: _Para, fonts: _StyleFonts, legacy: set[str]) -> _Text:
    runs = para.runs
    known = fonts.known
    if para.plain:  # the common case: nothing to decode whatever the styles say
        text = runs[0][0] if len(runs) == 1 else "".join(run[0] for run in runs)
        return _Text(nfc(text.replace("\u00ad", "") if "\u00ad" in text else text), para.centered)
    groups: list[tuple[str | None, bool, list[str]]] = []  # neighbouring runs in one font decode together:
    for text, font, rstyle, caps in runs:  # Word may split "aù" (VNI á) between two runs
        if font is None and known:
            font = fonts.resolve(rstyle, para.style)
        if groups and groups[-1][:2] == (font, caps):
            groups[-1][2].append(text)
        else:
            groups.append((font, caps, [text]))
    parts = []
    for font, caps, texts in groups:
        text = "".join(texts)
        if not (font_matters(text) or is_uppercase_font(font)):
            parts.append(text.upper() if caps else text)  # nothing to decode (NFC comes below)
            continue
        converted = convert_run(text, font)
        if converted != text:
            encoding = detect(font, text)
            if encoding != "unicode":
                legacy.add(encoding)
        parts.append(converted.upper() if caps else converted)
    text = "".join(parts)
    if "\u00ad" in text:
        text = text.replace("\u00ad", "")  # a soft hyphen left in Unicode text is invisible
    return _Text(nfc(text), para.centered)


def _cell_text(cell: list[_Text]) -> str:
    return "\n".join(p.text for p in cell).strip()


def _decoded_rows(table: _Tbl, fonts: _StyleFonts, legacy: set[str]) -> list[list[str]]:
    rows: list[list[str]] = []
    previous: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        for paragraphs, span, merged in row:
            column = len(cells)
            if merged and column < len(previous):
                text = previous[column]
            else:
                text = _cell_text([_decode(p, fonts, legacy) for p in paragraphs])
            cells.extend([text] * span)
        rows.append(cells)
        previous = cells
    return rows


def _words(text: str) -> int:
    """Whitespace-separated words (a lone "-" counts too: regex word matching would cost more than parsing)."""
    return len(text.split())


# ---------------------------------------------------------------- the Decree 30 parts

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


def _number(lines: list[str]) -> tuple[str, bool] | None:
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
        return number, not re.search(r"\d", serial)
    return None


def _date(lines: list[str]) -> tuple[str, dt.date | None, bool, bool] | None:
    """(place, date, blank, invalid) from the first "…, ngày … tháng … năm …" line."""
    for line in lines:
        match = _DATE.search(line) if "ng" in line.lower() else None
        if not match:
            continue
        place = match.group("place").strip(" ,.\t")
        if len(place.split()) > 6:
            continue  # a sentence mentioning a date, not the place-and-date line
        day, month, year = match.group("d"), match.group("m"), match.group("y")
        if not (day and month and year):
            return place, None, True, False
        try:
            return place, dt.date(int(year), int(month), int(day)), False, False
        except ValueError:
            return place, None, False, True
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


def _about(cells: list[list[str]]) -> str | None:
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


def _block_texts(blocks: list, used: set[int]) -> list[str]:
    """The lines of the blocks not in ``used`` (cells one by one)."""
    texts = []
    for i, block in enumerate(blocks):
        if i not in used:
            cells = [block.text] if isinstance(block, _Text) else [c for row in block for c in row]
            texts.extend(line for cell in cells for line in cell.split("\n"))
    return texts


_LEGACY_ENCODING = {"tcvn3": WarningCode.LEGACY_ENCODING_TCVN3, "vni": WarningCode.LEGACY_ENCODING_VNI}


def _extract(parsed: _Parsed, fonts: _StyleFonts) -> DocMeta:
    legacy: set[str] = set()
    blocks: list[_Text | list[list[str]]] = [
        _decode(b, fonts, legacy) if isinstance(b, _Para) else _decoded_rows(b, fonts, legacy) for b in parsed.blocks
    ]
    warnings: list[WarningCode] = []
    used: set[int] = set()  # blocks that are heading, title or signature rather than body

    # the header: a table holding the national motto near the top, else the first paragraphs
    header_at = next(
        (i for i, b in enumerate(blocks[:6]) if isinstance(b, list) and any(_is_motto(c) for row in b for c in row)),
        None,
    )
    issuer_lines: list[str] = []
    header_lines: list[str] = []
    header_cells: list[list[str]] = []
    if header_at is not None:
        used.add(header_at)
        rows = blocks[header_at]
        header_cells = [_lines(cell) for row in rows for cell in row]
        header_lines = [line for cell in header_cells for line in cell]
        for row in rows:
            motto = next((j for j, c in enumerate(row) if _is_motto(c)), None)
            if motto is not None:
                issuer_lines = _lines(next((c for j, c in enumerate(row) if j != motto), ""))
                break
        search_from = header_at + 1
    else:  # a heading laid out with tabs, or as centred paragraphs, without a table
        search_from = 0
        motto_seen = False
        region: list[int] = []
        for i, block in enumerate(blocks[:10]):
            if not isinstance(block, _Text) or _doc_type(" ".join(block.text.split())):
                break
            segments = [s.strip() for s in re.split(r"\t+", block.text) if s.strip()]
            if not segments:
                continue
            region.append(i)
            header_lines.extend(segments)
            if any(_is_motto(s) for s in segments):
                motto_seen = True
                if len(segments) > 1:
                    issuer_lines.append(segments[0])
            elif not motto_seen or len(segments) > 1 and not (_NUMBER.match(segments[0]) or _ABOUT.match(segments[0])):
                issuer_lines.append(segments[0])
            if motto_seen and _date([segments[-1]]):
                break  # the place and date close the heading
        if motto_seen:
            used.update(region)
            search_from = region[-1] + 1
            header_cells = [header_lines]
        else:
            issuer_lines, header_lines = [], []
    kept: list[str] = []
    for line in issuer_lines:
        if _is_separator(line) or _is_motto(line):
            continue
        if _NUMBER.match(line) and _number([line]) or _ABOUT.match(line) or _DATE.search(line):
            break
        kept.append(line)
    if len(kept) >= 2 and not _names_a_body(kept[-1]) and _names_a_body(kept[-2]):
        kept[-2:] = [f"{kept[-2]} {kept[-1]}"]  # "TRƯỜNG TRUNG HỌC CƠ SỞ" / "LẠI XUÂN": one name on two lines
    issuer = kept[-1] if kept else ""
    issuer_parent = "\n".join(kept[:-1])

    early = header_lines + [b.text for b in blocks[search_from : search_from + 12] if isinstance(b, _Text)]
    number, number_blank = _number(header_lines) or _number(early) or ("", False)
    place, date, date_blank, bad_date = _date(header_lines) or _date(early) or ("", None, False, False)
    if bad_date:
        warnings.append(WarningCode.BAD_DATE)

    # the type line and the title under it
    doc_type = title = ""
    seen = 0
    for i in range(search_from, len(blocks)):
        block = blocks[i]
        if not isinstance(block, _Text):
            break
        text = " ".join(block.text.split())
        if not text:
            continue
        seen += 1
        if seen > 12:
            break
        found = _doc_type(text)
        if found is None:
            continue
        doc_type, rest = found
        used.add(i)
        title_lines = [rest] if rest else []
        for j in range(i + 1, min(i + 8, len(blocks))):
            nxt = blocks[j]
            if not isinstance(nxt, _Text):
                break
            line = " ".join(nxt.text.split())
            if not line:
                if title_lines:
                    break
                continue
            if _is_separator(line):
                used.add(j)
                break
            if _BODY_START.match(line) or (title_lines and not nxt.centered):
                break
            if not title_lines and not nxt.centered and len(line) > 300:
                break
            title_lines.append(line)
            used.add(j)
        title = " ".join(title_lines)
        break
    if not doc_type:  # a letter: "V/v …" under the number, or just below the heading
        after = [_lines(b.text) for b in blocks[search_from : search_from + 3] if isinstance(b, _Text)]
        about = _about(header_cells + after)
        if about is not None:
            doc_type, title = "CÔNG VĂN", about

    # the signature: a one-row table near the end ("Nơi nhận" on the left), else the last paragraphs
    signer_position = signer_name = ""
    signature_at = None
    last_table = max((i for i, b in enumerate(blocks) if isinstance(b, list)), default=None)
    for i in range(len(blocks) - 1, search_from - 1, -1):
        block = blocks[i]
        if i in used or not isinstance(block, list):
            continue
        if len(block) == 1 and 2 <= len(block[0]) <= 3:
            cells = block[0]
            recipients = [c for c in cells if _folded(c).startswith("noi nhan")]
            others = [c for c in cells if c not in recipients and _lines(c)]
            if others and (recipients or i == last_table):
                signature_at = i
                lines = [line for line in _lines(others[-1]) if not _SIGN_NOTE.match(line)]
                if lines:
                    signer_name, signer_position = lines[-1], "\n".join(lines[:-1])
                used.add(i)
                break
    if signature_at is None:
        tail: list[tuple[int, str]] = []
        for i in range(len(blocks) - 1, search_from - 1, -1):
            block = blocks[i]
            if not isinstance(block, _Text) or i in used:
                break
            segments = [s.strip() for s in re.split(r"\t+", block.text) if s.strip()]
            if segments:
                tail.append((i, segments[-1]))
            if len(tail) >= 12:
                break
        tail.reverse()
        lines = [
            (i, line)
            for i, text in tail
            for line in _lines(text)
            if not _SIGN_NOTE.match(line)
            and not line.startswith(("-", "+", "•"))
            and not _folded(line).startswith("noi nhan")
        ]
        if lines:
            i, name = lines[-1]
            if len(name) <= 50 and len(name.split()) <= 7 and not name.endswith((".", ":", ";", ",")):
                position = []
                for j, line in reversed(lines[:-1]):
                    if line != line.upper() or not any(ch.isalpha() for ch in line) or len(position) >= 3:
                        break
                    position.insert(0, (j, line))
                if position:
                    signer_name, signer_position = name, "\n".join(line for _, line in position)
                    used.update(j for j, _ in position)
                    used.add(i)

    tables = tuple(
        Table(tuple(tuple(row) for row in b)) for i, b in enumerate(blocks) if isinstance(b, list) and i not in used
    )
    counts = [
        _words(b.text) if isinstance(b, _Text) else _words("\n".join(c for row in b for c in row)) for b in blocks
    ]
    word_count = sum(counts)
    body_words = sum(n for i, n in enumerate(counts) if i not in used)
    if body_words < 50:  # a small body: do not count separator lines and bullets as words
        body_words = sum(
            _words(t) for t in _block_texts(blocks, used) if any(ch.isalnum() for ch in t) and not _is_separator(t)
        )
    if parsed.truncated:
        warnings.append(WarningCode.TRUNCATED)  # what was not read cannot be judged empty
    elif body_words == 0:
        warnings.append(WarningCode.EMPTY_DOCUMENT)
    if number_blank and date_blank and body_words < 50 and not parsed.truncated:
        warnings.append(WarningCode.BLANK_TEMPLATE)
    warnings.extend(_LEGACY_ENCODING[name] for name in sorted(legacy))
    return DocMeta(
        issuer=issuer,
        issuer_parent=issuer_parent,
        number=number,
        number_blank=number_blank,
        place=place,
        date=date,
        date_blank=date_blank,
        doc_type=doc_type,
        title=title,
        signer_position=signer_position,
        signer_name=signer_name,
        word_count=word_count,
        tables=tables,
        warnings=tuple(warnings),
    )
