"""The campaign's report template (mẫu báo cáo) read once: its data tables (value columns and row labels) and the
headings of its narrative sections, the frame the template-driven consolidation fills.

A table's header is read as the shape-matching consolidation reads it (a caption row and a numbering row set aside,
two header rows joined as "Số học sinh - Nam"). Its label column is the first column whose cells are text; the
value columns are those to the right of it that the template leaves empty (or holds numbers in), a "Ghi chú" column
aside. Row labels are compared folded and without their numbering ("1.", "a)", "II.", "-").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbot.documents.decree30 import describe
from mailbot.documents.wordxml import Paragraph, Table, read_blocks
from mailbot.errors import MailbotError
from mailbot.reports.compile import header_candidates
from mailbot.reports.numbers import is_blank, parse_number
from mailbot.text import fold

INDEX_HEADERS = frozenset({"stt", "tt", "so tt", "so thu tu", "thu tu"})
_NOTE_HEADERS = ("ghi chu", "chu thich")
_NUMBERING = re.compile(r"^\s*(?:[IVXLC]{1,5}|\d{1,2}(?:\.\d{1,2})*|[a-zđA-ZĐ])\s*[.)/:]\s*|^\s*[-+•*–]\s*")
_HEADING = re.compile(r"^\s*(?:[IVX]{1,5}|\d{1,2}|[a-zđ])\s*[.)]\s*\S")
MAX_HEADING = 160  # characters: a longer numbered paragraph is text, not a heading


class TemplateProblem(MailbotError):
    """The template cannot drive the consolidation (unreadable, or no table to fill)."""


@dataclass(frozen=True)
class Column:
    index: int  # in the template's grid
    name: str
    key: str  # folded


@dataclass(frozen=True)
class Row:
    label: str  # as the template writes it, numbering kept
    key: str  # folded, numbering removed


@dataclass(frozen=True)
class TemplateTable:
    number: int  # 1 = the template's first data table
    title: str  # the paragraph just above the table, or its caption row, or ""
    label: Column  # the column of the row labels
    columns: tuple[Column, ...]  # the value columns, in order
    rows: tuple[Row, ...]

    @property
    def name(self) -> str:
        return f"Bảng {self.number}" + (f": {self.title}" if self.title else "")


@dataclass(frozen=True)
class Section:
    heading: str
    key: str


@dataclass(frozen=True)
class Template:
    name: str  # the file's name
    tables: tuple[TemplateTable, ...]
    sections: tuple[Section, ...]  # the numbered headings of the narrative, in order
    texts: frozenset[str]  # folded paragraphs of the template itself (instructions a school leaves in place)


def label_key(text: str) -> str:
    """A row label compared: folded, its numbering ("1.", "a)", "II.", "- ") removed."""
    previous = None
    while previous != text:
        previous, text = text, _NUMBERING.sub("", text, count=1)
    return fold(text)


def is_heading(text: str) -> bool:
    """A numbered heading of the narrative ("I. KẾT QUẢ ...", "2. Tồn tại, hạn chế")."""
    return len(text) <= MAX_HEADING and bool(_HEADING.match(text))


def read_template(data: bytes, name: str) -> Template:
    """The template's tables and sections; ``TemplateProblem`` when it is unreadable or has no table."""
    blocks = read_blocks(data)
    if blocks.problem is not None:
        raise TemplateProblem(f"the report template {name} cannot be read as a Word file")
    meta = describe(blocks)
    wanted = list(meta.tables)
    tables: list[TemplateTable] = []
    sections: list[Section] = []
    texts: set[str] = set()
    previous = ""
    for block in blocks.items:
        if isinstance(block, Paragraph):
            text = " ".join(block.text.split())
            if text:
                previous = text
                texts.add(fold(text))
                if is_heading(text):
                    sections.append(Section(text, label_key(text)))
        elif isinstance(block, Table) and wanted and block == wanted[0]:
            wanted.pop(0)
            table = read_table(block, len(tables) + 1, previous)
            if table is not None:
                tables.append(table)
    if not tables:
        raise TemplateProblem(f"the report template {name} has no table of figures to consolidate")
    return Template(name, tuple(tables), tuple(sections), frozenset(texts))


def grid(table: Table) -> list[list[str]]:
    """The table's cells, whitespace collapsed, every row as wide as the widest."""
    width = max((len(r) for r in table.rows), default=0)
    return [[" ".join(c.split()) for c in row] + [""] * (width - len(row)) for row in table.rows]


def read_table(table: Table, number: int, above: str) -> TemplateTable | None:
    """A template table's label column, value columns and rows; None when it has no value column or no row."""
    rows = grid(table)
    head = header_candidates(rows)[0]
    data = [row for row in rows[head.skip :] if any(row)]
    names = list(head.names) + [""] * (len(rows[0]) - len(head.names) if rows else 0)
    label = _label_column(names, data)
    if label is None:
        return None
    columns = tuple(
        Column(j, names[j], fold(names[j]))
        for j in range(label + 1, len(names))
        if fold(names[j])
        and fold(names[j]) not in INDEX_HEADERS
        and not fold(names[j]).startswith(_NOTE_HEADERS)
        and all(is_blank(row[j]) or parse_number(row[j]) is not None for row in data)
    )
    labelled = tuple(Row(row[label], label_key(row[label])) for row in data if label_key(row[label]))
    if not columns or not labelled:
        return None
    title = head.caption or (above if len(above) <= MAX_HEADING else "")
    return TemplateTable(number, title, Column(label, names[label], fold(names[label])), columns, labelled)


def _label_column(names: list[str], data: list[list[str]]) -> int | None:
    """The first column, index columns aside, whose data cells are mostly words."""
    for j, name in enumerate(names):
        if fold(name) in INDEX_HEADERS:
            continue
        cells = [row[j] for row in data if row[j]]
        words = [c for c in cells if parse_number(c) is None and label_key(c)]
        if cells and len(words) * 2 >= len(cells):
            return j
    return None


__all__ = [
    "INDEX_HEADERS",
    "Column",
    "Row",
    "Section",
    "Template",
    "TemplateProblem",
    "TemplateTable",
    "grid",
    "is_heading",
    "label_key",
    "read_table",
    "read_template",
]
