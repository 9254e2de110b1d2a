"""document.xml's elements → paragraphs and tables of runs, each run with its font, style and capitals, not yet
decoded (``mailbot.documents.wordxml`` decodes them and owns the package, its limits and styles.xml).

Two readings give the same result: ``Plain`` visits the elements of a tree it has been given once each, in document
order, and infers each end from the next element; it reads most reports, at a third of the cost, and gives up
(None) on anything but a plain tree. ``Stream`` reacts to the start and end of each element and reads any tree, also
one streamed and trimmed as it is read, so that a large document never exists whole.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

from mailbot.documents.vnenc import font_encoding, font_matters

W_NAMESPACES = (
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
)  # transitional, strict
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
Element = Any  # lxml's _Element (lxml ships no type information)

_Run = tuple[str, str | None, str | None, bool]  # text, explicit font, character style, shown in capitals
_Cell = tuple[list["Para"], int, bool]  # paragraphs, grid columns spanned, continues the merged cell above


class Para:
    """A paragraph read: its runs, paragraph style and centring (kept plain, with slots: there are many)."""

    __slots__ = ("style", "runs", "centered", "plain")

    def __init__(self) -> None:
        self.style: str | None = None
        self.runs: list[_Run] = []
        self.centered = False
        self.plain = True  # no run has a font of its own or text whose reading depends on the font

    def add(self, run: _Run) -> bool:
        """Add a run; True when its style's font decides how it reads (styles.xml is then needed)."""
        self.runs.append(run)
        if run[1] is not None or run[3]:
            self.plain = False
        elif font_matters(run[0]):
            self.plain = False
            return True
        return False


class Tbl:
    """A table read: its rows of cells, and the row and cell being read."""

    __slots__ = ("rows", "row", "cell")

    def __init__(self) -> None:
        self.rows: list[list[_Cell]] = []
        self.row: list[_Cell] = []
        self.cell: list[Para] = []


@dataclass
class Parsed:
    blocks: list[Para | Tbl]
    opening: list[Para]
    truncated: bool
    unstyled_runs: bool  # a run whose reading depends on a font only styles.xml can name
    namespace: str


# what the stream reacts to; everything else (run and paragraph properties included) is read from the element
_P, _R, _TBL, _TR, _TC, _FALLBACK, _BODY = range(7)


DOCUMENT_TAGS = [
    *("{" + w + "}" + name for w in W_NAMESPACES for name in ("body", "p", "r", "tbl", "tr", "tc")),
    MC_FALLBACK,
]  # what Stream reacts to, in either namespace


def parse_document(events: Iterator[Any], max_paragraphs: int | None, opening: int = 0, *, whole: bool) -> Parsed:
    """Top-level paragraphs and tables in order, and the first ``opening`` paragraphs wherever they stand
    (``whole``: the events walk a tree already built, which there is no point in trimming as it is read)."""
    first = next(events)
    namespace = first[1].getroottree().getroot().tag[1:].partition("}")[0]
    if namespace not in W_NAMESPACES:
        raise ValueError("not a WordprocessingML document")
    if whole:  # most documents are plain enough to be read from the tree at a third of the cost
        plain = Plain("{" + namespace + "}", max_paragraphs, opening).read(first[1].getroottree().getroot())
        if plain is not None:
            return plain
    stream = Stream("{" + namespace + "}", max_paragraphs, opening, trim=not whole)
    stream.read(chain((first,), events))
    return stream.parsed()


class _Reading:
    """What a pass over document.xml has read so far (``Stream``, ``Plain``), and where it is to stop."""

    def __init__(self, w: str, max_paragraphs: int | None, opening: int) -> None:
        self.names = _RunNames(w)
        self.stop_at = sys.maxsize if max_paragraphs is None else max_paragraphs  # paragraphs read at most
        self.blocks: list[Para | Tbl] = []
        self.opening: list[Para] = []
        self.opening_left = opening
        self.count = 0  # paragraphs read, those in cells too
        self.truncated = self.unstyled = False

    def parsed(self) -> Parsed:
        return Parsed(self.blocks, self.opening, self.truncated, self.unstyled, self.names.w)

    def _note_opening(self, para: Para) -> None:
        """Keep a finished paragraph among the first lines as they stand, if they are still wanted and it has text."""
        if self.opening_left and any(run[0].strip() for run in para.runs):
            self.opening.append(para)
            self.opening_left -= 1

    def _top_level(self, block: Para | Tbl) -> bool:
        """Place a top-level block; True when reading is to stop there (between top-level blocks only, never
        inside a table)."""
        self.blocks.append(block)
        self.truncated = self.count >= self.stop_at
        return self.truncated


class Stream(_Reading):
    """The state of one pass over document.xml: open paragraphs and tables, the blocks finished so far."""

    def __init__(self, w: str, max_paragraphs: int | None, opening: int, *, trim: bool = True) -> None:
        super().__init__(w, max_paragraphs, opening)
        self.trim = trim  # drop what is read, so that a streamed document never exists whole
        self.kinds = {
            w + "p": _P,
            w + "r": _R,
            w + "tbl": _TBL,
            w + "tr": _TR,
            w + "tc": _TC,
            MC_FALLBACK: _FALLBACK,
            w + "body": _BODY,
        }
        self.paras: list[Para] = []  # open paragraphs: more than one inside a text box
        self.tables: list[Tbl] = []
        self.skip = 0  # inside mc:Fallback (a copy of the mc:Choice content)

    def read(self, events: Iterator[tuple[str, Any]]) -> None:
        kinds, paras, names = self.kinds, self.paras, self.names
        for event, elem in events:  # the hot loop: starts and runs, by far the most frequent, are handled inline
            kind = kinds.get(elem.tag)
            if kind is None:
                continue
            if event == "start":
                if kind == _P:
                    paras.append(Para())
                elif kind == _TBL:
                    self.tables.append(Tbl())
                elif kind == _FALLBACK:
                    self.skip += 1
                # a row or cell starts empty: the lists are renewed when the previous one ends
            elif kind == _R:
                run = names.run(elem) if paras and not self.skip else None
                if run is not None and paras[-1].add(run):
                    self.unstyled = True
            elif kind == _P:
                if self._paragraph_end(elem):
                    return
            elif kind == _TC:
                if self.tables:
                    table = self.tables[-1]
                    table.row.append((table.cell, *names.cell_properties(elem)))
                    table.cell = []
            elif kind == _TR:
                if self.tables:
                    self.tables[-1].rows.append(self.tables[-1].row)
                    self.tables[-1].row = []
            elif kind == _TBL:
                if self._table_end(elem):
                    return
            elif kind == _FALLBACK:
                self.skip -= 1
            else:  # the end of w:body: the section properties after it say nothing
                return

    def _paragraph_end(self, elem: Element) -> bool:
        """Place a finished paragraph; True when reading is to stop there."""
        para = self.paras.pop()
        if len(elem) and elem[0].tag == self.names.ppr:
            self.names.paragraph_properties(elem[0], para)
        if self.trim:
            elem.clear()
        self._note_opening(para)
        if self.paras:
            return False  # a text box's paragraph: not part of the flow
        self.count += 1
        if self.tables:
            self.tables[-1].cell.append(para)
            return False
        if self.trim:
            drop_read(elem)
        return self._top_level(para)

    def _table_end(self, elem: Element) -> bool:
        """Place a finished table; True when reading is to stop there."""
        table = self.tables.pop()
        if self.trim:
            elem.clear()
        if self.paras:
            return False  # a table in a text box: not part of the flow
        if self.tables:  # a nested table: its paragraphs join the enclosing cell
            self.tables[-1].cell.extend(p for row in table.rows for cell, _, _ in row for p in cell)
            return False
        if self.trim:
            drop_read(elem)
        return self._top_level(table)


class _NotPlain(Exception):
    """The tree holds what only ``Stream`` reads right: nesting (a paragraph in a paragraph, a run in a run, a table in
    a table) or a row or cell out of its place."""


class _Stop(Exception):
    """``max_paragraphs`` reached."""


_PLAIN_TAGS = (
    *("p", "r", "t", "tab", "br", "cr", "softHyphen", "noBreakHyphen", "rFonts", "rStyle", "caps", "smallCaps"),
    *("pStyle", "jc", "tbl", "tr", "tc", "gridSpan", "vMerge", "body"),
)


class Plain(_Reading):
    """``Stream``'s reading of a document whose tree is plain, at a third of its cost: the elements it uses are
    visited once each, in document order (libxml2 finds them), and each end is inferred from the next element.

    Plain: no text box and no ``mc:Fallback``; a paragraph, a run or a table never inside another of its kind; each
    row right in its table and each cell right in its row; ``w:body`` the last element of the root. What is read
    then is what ``Stream`` reads (tests compare the two on every document at hand and on random trees); anything
    else makes ``read`` answer None, and ``Stream`` reads the document."""

    def __init__(self, w: str, max_paragraphs: int | None, opening: int) -> None:
        super().__init__(w, max_paragraphs, opening)
        self.tags = [w + name for name in _PLAIN_TAGS]
        self.kinds = {tag: i for i, tag in enumerate(self.tags)}
        self.nesting = frozenset(w + n for n in ("p", "r", "tbl", "tr", "tc"))  # never inside one of these here
        self.outside = frozenset(w + n for n in ("tbl", "tr", "tc", "body"))  # a run up to these is in no paragraph
        self.para: Para | None = None  # the paragraph being read, ended by the next paragraph, table, row or cell
        self.runs: list[list[Any]] = []  # its runs: [parts, font, character style, capitals]
        self.table: Tbl | None = None  # the table being read (top level: tables do not nest here)
        self.table_elem: Element | None = None
        self.row: Element | None = None  # its row and cell being read
        self.cell: Element | None = None
        self.span, self.merged = 1, False  # that cell's properties

    def read(self, root: Element) -> Parsed | None:
        w = self.names.w
        body = root[-1] if len(root) else None
        if body is None or body.tag != w + "body":
            return None
        if next(root.iter(w + "txbxContent", MC_FALLBACK), None) is not None:
            return None
        try:
            self._walk(root, body)
            self._end_paragraph()
            self._end_table()
        except _NotPlain:
            return None
        except _Stop:
            pass
        return self.parsed()

    def _walk(self, root: Element, body: Element) -> None:  # long: the hot loop, one branch per element kind
        kinds, names = self.kinds, self.names
        para_elem = run_elem = ppr = tcpr = None
        run: list[Any] | None = None
        for elem in root.iter(self.tags):
            kind = kinds[elem.tag]
            if kind == 2:  # w:t
                if run is not None and elem.getparent() is run_elem:
                    text = elem.text
                    if text:
                        run[0].append(text)
            elif kind == 1:  # w:r
                run_elem, run = elem, None
                if elem.getparent() is para_elem or self._in_paragraph(elem, para_elem):
                    run = [[], None, None, False]
                    self.runs.append(run)
            elif kind == 0:  # w:p
                parent = elem.getparent()  # where it stands, checked before anything read so far is placed
                top = parent is body or (parent is not self.cell and self._placed(parent, root, body))
                self._end_paragraph()
                if top:
                    self._end_table()
                self.para, self.runs, para_elem, run = Para(), [], elem, None
                first = elem[0] if len(elem) else None
                ppr = first if first is not None and first.tag == names.ppr else None
            elif kind < 8:  # a tab, break or hyphen
                if run is not None and elem.getparent() is run_elem:
                    run[0].append(_RUN_CHARACTERS[kind])
            elif kind < 12:  # a run property
                if run is not None:
                    parent = elem.getparent()
                    if parent.tag == names.rpr and parent.getparent() is run_elem:
                        self._run_property(kind, elem, run)
            elif kind < 14:  # a paragraph property
                if ppr is not None and elem.getparent() is ppr and self.para is not None:
                    names.paragraph_property(elem, self.para)
            elif kind == 16:  # w:tc
                if self.row is None or elem.getparent() is not self.row:
                    raise _NotPlain
                self._end_paragraph()
                self._end_cell()
                self.cell, self.span, self.merged, run = elem, 1, False, None
                first = elem[0] if len(elem) else None
                tcpr = first if first is not None and first.tag == names.tcpr else None
            elif kind == 14:  # w:tbl
                self._table_start(elem, root, body)
                run = None
            elif kind == 15:  # w:tr
                if self.table is None or elem.getparent() is not self.table_elem:
                    raise _NotPlain
                self._end_paragraph()
                self._end_row()
                self.row, run = elem, None
            elif kind < 19:  # a cell property
                if tcpr is not None and elem.getparent() is tcpr:
                    if kind == 17:
                        self.span = names.grid_span(elem)
                    else:
                        self.merged = names.continues(elem)
            elif elem is not body:  # another w:body: Stream stops at the first one's end
                raise _NotPlain

    def _in_paragraph(self, run: Element, para: Element | None) -> bool:
        """Whether a run belongs to the paragraph being read (else it stands outside any: not read)."""
        node = run.getparent()
        while node is not None:
            if node is para:
                return True
            tag = node.tag
            if tag in self.outside:
                return False
            if tag in self.nesting:
                raise _NotPlain  # a run in a run (ruby), or in a paragraph not the one being read
            node = node.getparent()
        return False

    def _placed(self, node: Element, root: Element, body: Element) -> bool:
        """Whether a paragraph in ``node`` stands at the top level (else in the cell being read)."""
        while node is not None and node is not body and node is not root:
            if node is self.cell:
                return False
            if node.tag in self.nesting:
                raise _NotPlain
            node = node.getparent()
        return True

    def _table_start(self, elem: Element, root: Element, body: Element) -> None:
        node = elem.getparent()
        while node is not body and node is not root:
            if node is None or node.tag in self.nesting:
                raise _NotPlain  # a nested table (its paragraphs join the enclosing cell in Stream)
            node = node.getparent()
        self._end_paragraph()
        self._end_table()
        self.table, self.table_elem = Tbl(), elem

    def _run_property(self, kind: int, prop: Element, run: list[Any]) -> None:
        if kind == 8:
            run[1] = self.names.font(prop)
        elif kind == 9:
            run[2] = prop.get(self.names.val)
        else:
            run[3] = run[3] or self.names.capitals(prop)

    def _end_paragraph(self) -> None:
        para = self.para
        if para is None:
            return
        self.para = None
        for parts, font, style, caps in self.runs:
            if parts and para.add(("".join(parts), font, style, caps)):
                self.unstyled = True
        self._note_opening(para)
        self.count += 1
        if self.table is not None and self.cell is not None:
            self.table.cell.append(para)
            return
        self._place(para)

    def _end_cell(self) -> None:
        if self.cell is not None and self.table is not None:
            self.table.row.append((self.table.cell, self.span, self.merged))
            self.table.cell = []
        self.cell = None

    def _end_row(self) -> None:
        self._end_cell()
        if self.row is not None and self.table is not None:
            self.table.rows.append(self.table.row)
            self.table.row = []
        self.row = None

    def _end_table(self) -> None:
        if self.table is None:
            return
        self._end_row()
        table, self.table = self.table, None
        self._place(table)

    def _place(self, block: Para | Tbl) -> None:
        if self._top_level(block):
            raise _Stop


_RUN_CHARACTERS = {3: "\t", 4: "\n", 5: "\n", 6: "\u00ad", 7: "-"}  # tab, br, cr, softHyphen, noBreakHyphen


def drop_read(elem: Element) -> None:
    """Detach the top-level blocks read before this one: a cleared element still costs its node in the tree, and a
    document of a million empty paragraphs must not hold a million nodes."""
    while (previous := elem.getprevious()) is not None:
        elem.getparent().remove(previous)


class _RunNames:
    """Reads a finished run, paragraph or cell element in one namespace."""

    def __init__(self, w: str) -> None:
        self.w = w
        self.t, self.tab, self.br, self.cr, self.soft, self.nbh = (
            w + n for n in ("t", "tab", "br", "cr", "softHyphen", "noBreakHyphen")
        )
        self.rpr, self.rfonts, self.rstyle, self.ppr, self.pstyle, self.jc = (
            w + n for n in ("rPr", "rFonts", "rStyle", "pPr", "pStyle", "jc")
        )
        self.caps = frozenset((w + "caps", w + "smallCaps"))
        self.tcpr, self.span, self.vmerge = w + "tcPr", w + "gridSpan", w + "vMerge"
        self.ascii, self.hansi, self.val = w + "ascii", w + "hAnsi", w + "val"

    def run(self, elem: Element) -> _Run | None:
        """(text, font, character style, shown in capitals) of a ``w:r``; None when it holds no text."""
        parts: list[str] = []
        font: str | None = None
        style: str | None = None
        caps = False
        for child in elem:
            tag = child.tag
            if tag == self.t:
                if child.text:
                    parts.append(child.text)
            elif tag == self.rpr:
                for prop in child:  # direct children only: a w:rPrChange holds the old properties
                    if prop.tag == self.rfonts:
                        font = self.font(prop)
                    elif prop.tag == self.rstyle:
                        style = prop.get(self.val)
                    elif prop.tag in self.caps:
                        caps = caps or self.capitals(prop)
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

    def paragraph_properties(self, ppr: Element, para: Para) -> None:
        for prop in ppr:  # direct children only: a w:pPrChange holds the old properties
            self.paragraph_property(prop, para)

    def paragraph_property(self, prop: Element, para: Para) -> None:
        if prop.tag == self.pstyle:
            para.style = prop.get(self.val)
        elif prop.tag == self.jc:
            para.centered = prop.get(self.val) == "center"

    def font(self, rfonts: Element) -> str | None:
        return font_of(rfonts, self.ascii, self.hansi)

    def capitals(self, prop: Element) -> bool:
        """A ``w:caps`` or ``w:smallCaps`` that is on: typed in lower case, shown (and printed) in capitals."""
        return prop.get(self.val, "true").lower() not in ("0", "false", "off")

    def grid_span(self, prop: Element) -> int:
        value = prop.get(self.val, "1")
        return max(1, min(int(value), 64)) if value.isdigit() else 1

    def continues(self, prop: Element) -> bool:
        """A ``w:vMerge`` that continues the merged cell above (rather than starting one)."""
        value: str = prop.get(self.val, "continue")
        return value == "continue"

    def cell_properties(self, elem: Element) -> tuple[int, bool]:
        """(grid columns spanned, continues the merged cell above) of a ``w:tc``."""
        span, merged = 1, False
        if len(elem) and elem[0].tag == self.tcpr:
            for prop in elem[0]:
                if prop.tag == self.span:
                    span = self.grid_span(prop)
                elif prop.tag == self.vmerge:
                    merged = self.continues(prop)
        return span, merged


def font_of(rfonts: Element, ascii_attr: str, hansi_attr: str) -> str | None:
    """The Latin font a ``w:rFonts`` names: a legacy one if either slot has it, else hAnsi, else ascii."""
    hansi: str | None = rfonts.get(hansi_attr)
    ascii_: str | None = rfonts.get(ascii_attr)
    for name in (hansi, ascii_):
        if name and font_encoding(name):
            return name
    if hansi or ascii_:
        return hansi or ascii_
    if any(name.endswith(("}asciiTheme", "}hAnsiTheme")) for name in rfonts.attrib):
        return "+theme"  # a theme font (Calibri, Cambria…): never a legacy one
    return None  # only East Asian or complex-script slots: the Latin font is inherited
