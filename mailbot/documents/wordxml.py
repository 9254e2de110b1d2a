"""The one reader of a Word file: ``word/document.xml`` streamed once into decoded paragraphs and tables.

The package is read within one size limit (``MAX_XML_BYTES``, for document.xml and styles.xml alike), by libxml2
(lxml's C parser: several times faster than a pure-Python one) with entities left unexpanded, no network, no huge
text nodes and no DTD at all (a document that declares one is unreadable). Each run is decoded from its legacy encoding, if any (``mailbot.documents.vnenc``), by its
own font, else its character style's, its paragraph style's, then the document default (``word/styles.xml``, read
only as far as needed and only when a style can name a legacy font at all). Text boxes and ``mc:Fallback`` copies
are not part of the flow; a nested table's paragraphs join the enclosing cell.

A document.xml of up to ``WHOLE_TREE_BYTES`` is parsed whole and read from its tree; a larger one is streamed, so
that its tree never exists whole (``mailbot.documents.wordwalk`` reads the elements into runs either way).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import chain
from typing import IO, Any, NamedTuple

from lxml import etree

from mailbot.documents.vnenc import convert_run, detect, font_matters, is_uppercase_font
from mailbot.documents.wordwalk import DOCUMENT_TAGS, Element, Para, Parsed, Tbl, drop_read, font_of, parse_document
from mailbot.models import WarningCode
from mailbot.text import nfc

MAX_XML_BYTES = 20 * 1024 * 1024  # uncompressed document.xml (and styles.xml) read at most; more is a bomb
WHOLE_TREE_BYTES = 512 * 1024  # a document.xml up to this size is parsed whole (7 MB of tree for dense markup)
OPENING_PARAGRAPHS = 12  # the issuing body, number, date and title sit in the first lines (Decree 30/2020)

# What a damaged or hostile package can make zipfile, zlib or the parser raise (encrypted members: RuntimeError,
# unknown compression: NotImplementedError, a DTD: _DtdForbidden, libxml2's refusals: LxmlError, a ValueError).


class _DtdForbidden(ValueError):
    """A document type declaration: never needed by Word, the way in for entity bombs and external entities."""


_PARSE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    KeyError,
    etree.LxmlError,
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
UNREADABLE = WarningCode.UNREADABLE_DOCX
TOO_LARGE = WarningCode.DOCUMENT_TOO_LARGE


class Paragraph(NamedTuple):  # immutable like a frozen dataclass, and made several times faster: there are many
    """A paragraph once decoded: its text (NFC, soft hyphens gone) and whether it is centred."""

    text: str
    centered: bool = False


@dataclass(frozen=True)
class Table:
    """A table's cell texts, row by row (a merged cell repeats its text in every grid column it covers)."""

    rows: tuple[tuple[str, ...], ...] = ()


Block = Paragraph | Table


@dataclass(frozen=True)
class Blocks:
    """What ``read_blocks`` found: the flow of the document, and why nothing was found when it was not read."""

    items: tuple[Block, ...] = ()  # top-level paragraphs and tables, in document order
    opening: tuple[str, ...] = ()  # when asked for: the first non-blank paragraphs, text boxes and cells included
    truncated: bool = False  # reading stopped at ``max_paragraphs``
    legacy: tuple[str, ...] = ()  # the legacy encodings decoded ("tcvn3", "vni"), sorted
    problem: WarningCode | None = None  # UNREADABLE or TOO_LARGE; None when the document was read


# ---------------------------------------------------------------- the package


def read_blocks(
    data: bytes, *, max_paragraphs: int | None = None, opening: bool = False, archive: zipfile.ZipFile | None = None
) -> Blocks:
    """The decoded paragraphs and tables of a .docx; never raises on bad input (``problem`` says why).

    ``max_paragraphs`` stops reading after that many paragraphs (``truncated``), between top-level blocks only.
    ``opening`` also keeps the first lines as they stand, for naming a file not laid out as Decree 30 asks.
    ``archive``: ``data`` already opened (``sniff.open_zip``), not opened again (its central directory is a
    fifth of the reading of a small report's package).
    """
    try:
        with nullcontext(archive) if archive is not None else zipfile.ZipFile(io.BytesIO(data)) as archive:
            name = _main_part(archive)
            if name is None:
                return Blocks(problem=UNREADABLE)
            size = archive.getinfo(name).file_size
            if size > MAX_XML_BYTES:
                return Blocks(problem=TOO_LARGE)
            with archive.open(name) as raw:
                first = OPENING_PARAGRAPHS if opening else 0
                parsed = parse_document(
                    _document_events(raw, size), max_paragraphs, first, whole=size <= WHOLE_TREE_BYTES
                )
            fonts = _StyleFonts.load(archive, parsed) if parsed.unstyled_runs else _StyleFonts()
    except _TooLarge:
        return Blocks(problem=TOO_LARGE)
    except _PARSE_ERRORS:
        return Blocks(problem=UNREADABLE)
    return _decoded(parsed, fonts)


class _TooLarge(Exception):
    pass


class _Limited(io.RawIOBase):
    """A read-only stream that refuses to yield more than ``limit`` bytes (a zip member may lie about its size)."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw, self._left = raw, limit

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        chunk = self._raw.read(size if size is not None and size >= 0 else self._left + 1)
        self._left -= len(chunk)
        if self._left < 0:
            raise _TooLarge
        return chunk


# How libxml2 reads any part of a package, streamed or whole: entities never expanded nor fetched, no DTD loaded,
# a text node over 10 MB an error (``huge_tree`` off), comments and processing instructions dropped.
_SAFE_XML = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


def _document_events(raw: IO[bytes], size: int) -> Iterator[Any]:
    """document.xml's (event, element) pairs for ``Stream``: a small one parsed whole and walked (the same events,
    at a third of the cost of parsing them one by one), a large one streamed so that its tree never exists whole."""
    if size > WHOLE_TREE_BYTES:
        return _iterparse(_Limited(raw, MAX_XML_BYTES), DOCUMENT_TAGS)
    root = etree.fromstring(_Limited(raw, WHOLE_TREE_BYTES).read(), _safe_parser())  # zipfile yields no more
    _refuse_dtd(root)
    return iter(etree.iterwalk(root, events=("start", "end"), tag=DOCUMENT_TAGS))


def _safe_parser() -> etree.XMLParser:
    """libxml2 set up as for ``_iterparse``, for a whole document (one per call: a parser is not thread-safe)."""
    return etree.XMLParser(**_SAFE_XML)


def _refuse_dtd(elem: Element) -> None:
    info = elem.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise _DtdForbidden


def _iterparse(source: IO[bytes] | io.RawIOBase, tags: list[str] | None = None) -> Iterator[Any]:
    """(event, element) pairs ("start" and "end") from libxml2, refusing any DTD; entities are never expanded nor
    fetched, and a text node over libxml2's 10 MB (``huge_tree`` off) is an error. ``tags``: only these elements
    are reported (the others are still built into the tree, but cost no Python code)."""
    parser = etree.iterparse(source, events=("start", "end"), tag=tags, **_SAFE_XML)
    first = next(parser)  # the DTD, if any, is read before the first element: refuse it before anything is used
    _refuse_dtd(first[1])
    return chain((first,), parser)


def _main_part(archive: zipfile.ZipFile) -> str | None:
    names = set(archive.namelist())
    if "word/document.xml" in names:
        return "word/document.xml"
    if "_rels/.rels" not in names or archive.getinfo("_rels/.rels").file_size > 1 << 20:
        return None
    with archive.open("_rels/.rels") as rels:
        for event, elem in _iterparse(rels):
            if (
                event == "end"
                and isinstance(elem.tag, str)
                and elem.tag.endswith("}Relationship")
                and elem.get("Type", "").endswith("/officeDocument")
            ):
                target = elem.get("Target", "").lstrip("/")
                return target if target in names else None
    return None


# ---------------------------------------------------------------- styles.xml: fonts of the styles in use


def _may_name_legacy_fonts(xml: bytes) -> bool:
    """A cheap over-approximation: does any attribute value start with ".Vn" or "VNI" (any case)?"""
    lowered = xml.lower()
    return b'".vn' in lowered or b'"vni' in lowered


@dataclass
class _Style:
    """A ``w:style`` being read."""

    id: str | None
    default_paragraph: bool
    font: str | None = None
    based: str | None = None


class _StyleFonts:
    """Fonts from ``w:docDefaults`` and the styles a document uses; empty when no style can name a legacy font."""

    def __init__(self) -> None:
        self.default: str | None = None
        self.default_paragraph: str | None = None
        self.styles: dict[str, tuple[str | None, str | None]] = {}  # id → (font, basedOn)
        self.known = False  # whether anything was read

    @classmethod
    def load(cls, archive: zipfile.ZipFile, parsed: Parsed) -> _StyleFonts:
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
            paragraphs = [*_all_paragraphs(parsed.blocks), *parsed.opening]
            wanted = {p.style for p in paragraphs if p.style} | {r[2] for p in paragraphs for r in p.runs if r[2]}
            fonts._read(data, parsed.namespace, wanted)
        except _PARSE_ERRORS:
            pass  # damaged styles: keep what was read, the characters decide the rest
        fonts.known = bool(fonts.styles) or fonts.default is not None
        return fonts

    def _read(self, data: bytes, w: str, wanted: set[str]) -> None:
        """Stream styles.xml until the defaults, the default paragraph style and every wanted style are known."""
        style_tag, rfonts, based, defaults, table_style = (
            w + n for n in ("style", "rFonts", "basedOn", "docDefaults", "tblStylePr")
        )
        ascii_attr, hansi_attr, val = w + "ascii", w + "hAnsi", w + "val"
        depth = {defaults: 0, table_style: 0}  # inside w:docDefaults, inside a table style's conditional part
        current: _Style | None = None
        for event, elem in _iterparse(io.BytesIO(data)):
            tag = elem.tag
            if tag in depth:
                depth[tag] += 1 if event == "start" else -1
            elif event == "start":
                if tag == style_tag:
                    current = self._style_start(elem, w)
            elif tag == rfonts:
                font = font_of(elem, ascii_attr, hansi_attr)
                if depth[defaults] and self.default is None:
                    self.default = font
                elif current is not None and not depth[table_style] and current.font is None:
                    current.font = font
            elif tag == based and current is not None:
                current.based = elem.get(val)
            elif tag == style_tag and current is not None:
                self._style_end(current, wanted)
                current = None
                elem.clear()
                drop_read(elem)
                if self.default_paragraph is not None and wanted <= self.styles.keys():
                    break

    @staticmethod
    def _style_start(elem: Element, w: str) -> _Style:
        default = elem.get(w + "type") == "paragraph" and elem.get(w + "default") in ("1", "true", "on")
        return _Style(elem.get(w + "styleId"), default)

    def _style_end(self, style: _Style, wanted: set[str]) -> None:
        if not style.id:
            return
        self.styles[style.id] = (style.font, style.based)
        if style.default_paragraph and self.default_paragraph is None:
            self.default_paragraph = style.id
            wanted.add(style.id)
        if style.id in wanted and style.font is None and style.based:
            wanted.add(style.based)  # inherits: its parent is needed too

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


def _all_paragraphs(blocks: list[Para | Tbl]) -> Iterator[Para]:
    for block in blocks:
        if isinstance(block, Para):
            yield block
        else:
            for row in block.rows:
                for cell, _, _ in row:
                    yield from cell


# ---------------------------------------------------------------- runs → text


def _decoded(parsed: Parsed, fonts: _StyleFonts) -> Blocks:
    legacy: set[str] = set()
    items: list[Block] = [
        _paragraph((_text(b, fonts, legacy), b.centered)) if isinstance(b, Para) else _decoded_table(b, fonts, legacy)
        for b in parsed.blocks
    ]
    aside: set[str] = set()  # a text box's encoding is no warning: it is not part of the flow
    opening = tuple(text for text in (_text(p, fonts, aside) for p in parsed.opening) if text.strip())
    return Blocks(tuple(items), opening, parsed.truncated, tuple(sorted(legacy)))


_paragraph = Paragraph._make  # one call where Paragraph(text, centered) takes two: there are many


def _text(para: Para, fonts: _StyleFonts, legacy: set[str]) -> str:
    """A paragraph's text as shown: NFC, soft hyphens gone; the legacy encodings met are added to ``legacy``."""
    runs = para.runs
    if para.plain:  # the common case: nothing to decode whatever the styles say
        text = runs[0][0] if len(runs) == 1 else "".join(run[0] for run in runs)
        return nfc(text.replace("\u00ad", "") if "\u00ad" in text else text)
    text = "".join(_decode_group(font, caps, text, legacy) for font, caps, text in _font_groups(para, fonts))
    if "\u00ad" in text:
        text = text.replace("\u00ad", "")  # a soft hyphen left in Unicode text is invisible
    return nfc(text)


def _font_groups(para: Para, fonts: _StyleFonts) -> list[tuple[str | None, bool, str]]:
    """Neighbouring runs in one font and case, joined: Word may split "aù" (VNI á) between two runs."""
    groups: list[tuple[str | None, bool, list[str]]] = []
    known = fonts.known
    for text, font, rstyle, caps in para.runs:
        if font is None and known:
            font = fonts.resolve(rstyle, para.style)
        if groups and groups[-1][0] == font and groups[-1][1] == caps:
            groups[-1][2].append(text)
        else:
            groups.append((font, caps, [text]))
    return [(font, caps, "".join(texts)) for font, caps, texts in groups]


def _decode_group(font: str | None, caps: bool, text: str, legacy: set[str]) -> str:
    if not (font_matters(text) or is_uppercase_font(font)):
        return text.upper() if caps else text  # nothing to decode (NFC comes later)
    converted = convert_run(text, font)
    if converted != text:
        encoding = detect(font, text)
        if encoding != "unicode":
            legacy.add(encoding)
    return converted.upper() if caps else converted


def _decoded_table(table: Tbl, fonts: _StyleFonts, legacy: set[str]) -> Table:
    rows: list[tuple[str, ...]] = []
    previous: tuple[str, ...] = ()
    for row in table.rows:
        cells: list[str] = []
        for paragraphs, span, merged in row:
            column = len(cells)
            if merged and column < len(previous):
                text = previous[column]
            else:
                text = "\n".join([_text(p, fonts, legacy) for p in paragraphs]).strip()
            cells.extend([text] * span)
        previous = tuple(cells)
        rows.append(previous)
    return Table(tuple(rows))


__all__ = [
    "MAX_XML_BYTES",
    "OPENING_PARAGRAPHS",
    "TOO_LARGE",
    "UNREADABLE",
    "Block",
    "Blocks",
    "Paragraph",
    "Table",
    "read_blocks",
]
