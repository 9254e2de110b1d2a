"""The Word documents of a template-driven consolidation: the schools' texts gathered per section heading of the
template, by group; and the department's own report drafted from a report template staff upload.

A report template is any ``.docx`` whose paragraphs (body, table cells, headers and footers) may hold placeholders
``{{ tong.so_buoi }}`` (Jinja, sandboxed): ``tong.<column>`` is the city-wide total of that value column (its header
folded, words joined by "_") over the rows of the first template table that has it, ``tong.b<N>_<column>`` the same
for table N, ``tong.b<N>_d<K>_<column>`` row K of table N; ``thong_ke.tong_so``, ``da_nop``, ``dung_han``,
``nop_muon``, ``chua_nop``, ``ti_le`` the participation; ``dot.ten``, ``dot.han_nop``, ``ngay`` (the date of the
draft). A table whose cell reads ``[[bang N]]`` becomes template table N with its city-wide and per-group figures,
``[[tham_gia]]`` the participation per group. A paragraph with a placeholder keeps its first run's formatting; an
unknown name stays as it was written, and is reported. Without a report template a plain draft is built in the
same way from ``DEFAULT_REPORT``.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from mailbot.errors import MailbotError
from mailbot.files import save_output
from mailbot.reports.consolidate import Consolidation, Passage, TableResult
from mailbot.reports.numbers import vn_number
from mailbot.reports.tracker_rows import XML_ILLEGAL
from mailbot.text import fold
from mailbot.wording import local_time

if TYPE_CHECKING:
    from docx.document import Document as WordDocument
    from docx.table import Table as WordTable
    from docx.text.paragraph import Paragraph as WordParagraph

_MARKER = re.compile(r"\[\[\s*(bang\s*(\d+)|tham_gia)\s*\]\]")
NO_TEXT = "Chưa có đơn vị nào viết nội dung này."
CITY = "Toàn thành phố"


def _safe(text: str) -> str:
    return XML_ILLEGAL.sub("", text)


def slug(name: str) -> str:
    """A column's name as a placeholder key: "Số lượt người" → "so_luot_nguoi"."""
    return "_".join(fold(name).split())


# ---------------------------------------------------------------- the texts per section


def _p(text: str, style: str = "", run: str = "") -> str:
    """One paragraph of WordprocessingML: a style ("Heading1"), a run property ("<w:b/>")."""
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    rpr = f"<w:rPr>{run}</w:rPr>" if run else ""
    return f'<w:p>{props}<w:r>{rpr}<w:t xml:space="preserve">{escape(_safe(text))}</w:t></w:r></w:p>'


def _text_paragraphs(comp: Consolidation) -> Iterator[str]:
    overall = comp.overall
    yield _p(f"Tổng hợp nội dung báo cáo: {comp.campaign.title}", "Title")
    yield _p(
        f"Tổng hợp lúc {local_time(comp.generated_at, comp.zone)}; {overall.submitted}/{overall.total} đơn vị "
        f"đã nộp báo cáo. Nội dung dưới đây chép lại phần trình bày của từng đơn vị theo từng mục của mẫu báo cáo, "
        f"theo nhóm, làm tư liệu cho báo cáo chung.",
        run="<w:i/>",
    )
    by_section: dict[int, list[Passage]] = {}
    for passage in comp.passages:
        by_section.setdefault(passage.section, []).append(passage)
    for index, section in enumerate(comp.template.sections):
        yield _p(section.heading, "Heading1")
        passages = by_section.get(index, [])
        if not passages:
            yield _p(NO_TEXT, run="<w:i/>")
        for group in comp.groups:
            mine = [p for p in passages if p.group == group]
            if mine:
                yield _p(group, "Heading2")
            for p in mine:
                yield _p(f"{p.name} ({p.code}):", run="<w:b/>")
                for text in p.paragraphs:
                    yield _p(text)


def texts_bytes(comp: Consolidation) -> bytes:
    """The texts per section by group as a .docx, its body written as a stream (python-docx adds a paragraph in time
    proportional to the document, far too slow for a city's thousands of reports)."""
    import docx
    from docx.shared import Pt

    base = docx.Document()
    normal = base.styles["Normal"]
    normal.font.name, normal.font.size = "Times New Roman", Pt(13)
    base.core_properties.title = _safe(f"Tổng hợp nội dung: {comp.campaign.title}")
    base.core_properties.author = "mailbot"
    empty = io.BytesIO()
    base.save(empty)
    out = io.BytesIO()
    with zipfile.ZipFile(empty) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename != "word/document.xml":
                target.writestr(item, data)
                continue
            head, _, rest = data.decode().partition("<w:body>")
            with target.open("word/document.xml", "w") as stream:
                stream.write(f"{head}<w:body>".encode())
                for chunk in _text_paragraphs(comp):
                    stream.write(chunk.encode())
                stream.write(rest.encode())  # the section properties, then the end of the body
    return out.getvalue()


# ---------------------------------------------------------------- the drafted report


def context(comp: Consolidation) -> dict[str, Any]:
    """What the placeholders of a report template name (see the module doc)."""
    tong: dict[str, str] = {}
    for result in comp.tables:
        t = result.template
        for c, column in enumerate(t.columns):
            key = slug(column.name)
            total = vn_number(result.column_total(c))
            tong.setdefault(key, total)
            tong[f"b{t.number}_{key}"] = total
            for r in range(len(t.rows)):
                tong[f"b{t.number}_d{r + 1}_{key}"] = vn_number(result.total(r, c))
    overall = comp.overall
    share = Decimal(overall.submitted * 100) / overall.total if overall.total else Decimal(0)
    thong_ke = {
        "tong_so": overall.total,
        "da_nop": overall.submitted,
        "dung_han": overall.on_time,
        "nop_muon": overall.late,
        "chua_nop": overall.missing,
        "ti_le": f"{vn_number(share.quantize(Decimal('0.1')))} %",
    }
    nhom = [
        {
            "ten": p.group,
            "tong_so": p.total,
            "da_nop": p.submitted,
            "dung_han": p.on_time,
            "nop_muon": p.late,
            "chua_nop": p.missing,
        }
        for p in comp.participation
    ]
    local = comp.generated_at.astimezone(comp.zone)
    return {
        "tong": tong,
        "thong_ke": thong_ke,
        "nhom": nhom,
        "dot": {"ten": comp.campaign.title, "han_nop": local_time(comp.campaign.deadline, comp.zone)},
        "ngay": f"ngày {local.day:02d} tháng {local.month:02d} năm {local.year}",
    }


@dataclass
class Draft:
    document: WordDocument
    unknown: list[str] = field(default_factory=list)  # placeholders the template names and the context lacks


def draft_report(comp: Consolidation, template: bytes | None) -> Draft:
    """The department's report: ``template`` (a .docx) filled, or the built-in draft when None."""
    import docx

    try:
        data = template if template is not None else _default_with_tables(comp)
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several kinds on a damaged package
        raise MailbotError(f"the report template cannot be read as a Word file ({type(exc).__name__})") from None
    draft = Draft(document)
    env = _environment(draft.unknown)
    values = context(comp)
    for paragraph in _paragraphs(document):
        _render(paragraph, env, values, draft.unknown)
    for table in list(_tables(document)):
        _fill_marked(document, table, comp)
    return draft


def _environment(unknown: list[str]) -> Any:
    from jinja2 import Undefined
    from jinja2.sandbox import SandboxedEnvironment

    class Kept(Undefined):
        """An unknown name is written back as it was, and reported."""

        def __str__(self) -> str:
            name = self._undefined_name or "?"
            unknown.append(name)
            return "{{ " + name + " }}"

    return SandboxedEnvironment(undefined=Kept, autoescape=False, keep_trailing_newline=True)


def _paragraphs(document: WordDocument) -> Iterator[WordParagraph]:
    yield from document.paragraphs
    for table in _tables(document):
        for row in table.rows:
            for cell in row.cells:
                yield from cell.paragraphs
    for section in document.sections:
        for part in (section.header, section.footer):
            yield from part.paragraphs


def _tables(document: WordDocument) -> Iterator[WordTable]:
    stack = list(document.tables)
    while stack:
        table = stack.pop(0)
        yield table
        for row in table.rows:
            for cell in row.cells:
                stack.extend(cell.tables)


def _render(paragraph: WordParagraph, env: Any, values: dict[str, Any], unknown: list[str]) -> None:
    text = paragraph.text
    if "{{" not in text and "{%" not in text:
        return
    from jinja2 import TemplateError

    try:
        rendered = env.from_string(text).render(**values)
    except TemplateError as exc:
        unknown.append(f"{text[:60]} ({exc})")
        return
    runs = paragraph.runs
    if not runs:
        paragraph.add_run(_safe(rendered))
        return
    runs[0].text = _safe(rendered)
    for run in runs[1:]:
        run.text = ""


def _fill_marked(document: WordDocument, table: WordTable, comp: Consolidation) -> None:
    marker = next((m for cell in table._cells for m in [_MARKER.search(cell.text)] if m), None)
    if marker is None:
        return
    if marker.group(2):
        number = int(marker.group(2))
        result = next((r for r in comp.tables if r.template.number == number), None)
        rows = _figures_rows(result, comp) if result else [[f"Mẫu báo cáo không có bảng {number}"]]
    else:
        rows = _participation_rows(comp)
    new = document.add_table(rows=len(rows), cols=max(len(r) for r in rows))
    new.style = table.style if table.style is not None else "Table Grid"
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            new.cell(i, j).text = _safe(value)
            if i == 0:
                for run in new.cell(i, j).paragraphs[0].runs:
                    run.bold = True
    table._tbl.addnext(new._tbl)  # where the marked table stood
    table._tbl.getparent().remove(table._tbl)


def _figures_rows(result: TableResult, comp: Consolidation) -> list[list[str]]:
    t = result.template
    groups = [g for g in comp.groups if any(e.group == g for e in result.entries)]
    header = ["TT", t.label.name or "Nội dung"]
    for block in (CITY, *groups):
        header.extend(f"{block}: {c.name}" for c in t.columns)
    rows = [header]
    for r, row in enumerate(t.rows):
        line = [str(r + 1), row.label]
        for group in (None, *groups):
            line.extend(vn_number(result.total(r, c, group)) for c in range(len(t.columns)))
        rows.append(line)
    return rows


def _participation_rows(comp: Consolidation) -> list[list[str]]:
    rows = [["Nhóm", "Số đơn vị", "Đã nộp", "Đúng hạn", "Nộp muộn", "Chưa nộp"]]
    for p in (*comp.participation, comp.overall):
        name = p.group or "Tổng cộng"
        rows.append([name, *(str(v) for v in (p.total, p.submitted, p.on_time, p.late, p.missing))])
    return rows


def default_report() -> bytes:
    """The built-in report template: heading, participation, each table's figures, sections for staff to write."""
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    document = docx.Document()
    normal = document.styles["Normal"]
    normal.font.name, normal.font.size = "Times New Roman", Pt(13)
    for text in ("SỞ GIÁO DỤC VÀ ĐÀO TẠO", "BÁO CÁO", "{{ dot.ten }}"):
        p = document.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.add_run(text).bold = True
    document.add_paragraph("Hải Phòng, {{ ngay }}").alignment = WD_ALIGN_PARAGRAPH.RIGHT
    document.add_paragraph().add_run("I. TÌNH HÌNH CÁC ĐƠN VỊ GỬI BÁO CÁO").bold = True
    document.add_paragraph(
        "Tổng số đơn vị phải báo cáo: {{ thong_ke.tong_so }}; đã nộp: {{ thong_ke.da_nop }} ({{ thong_ke.ti_le }}), "
        "trong đó đúng hạn {{ thong_ke.dung_han }}, nộp muộn {{ thong_ke.nop_muon }}; chưa nộp: "
        "{{ thong_ke.chua_nop }}. Hạn nộp: {{ dot.han_nop }}."
    )
    document.add_table(rows=1, cols=1).cell(0, 0).text = "[[tham_gia]]"
    document.add_paragraph().add_run("II. KẾT QUẢ THỰC HIỆN").bold = True
    document.add_paragraph("Số liệu tổng hợp từ báo cáo của các đơn vị như sau:")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _default_with_tables(comp: Consolidation) -> bytes:
    import docx

    document = docx.Document(io.BytesIO(default_report()))
    for result in comp.tables:
        document.add_paragraph().add_run(_safe(result.template.name)).bold = True
        document.add_table(rows=1, cols=1).cell(0, 0).text = f"[[bang {result.template.number}]]"
    document.add_paragraph().add_run("III. ĐÁNH GIÁ CHUNG, TỒN TẠI VÀ ĐỀ XUẤT").bold = True
    document.add_paragraph("(Cán bộ phụ trách bổ sung nội dung.)")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def draft_bytes(comp: Consolidation, template: bytes | None) -> tuple[bytes, list[str]]:
    """The drafted report as bytes, and the placeholders left unknown."""
    draft = draft_report(comp, template)
    buffer = io.BytesIO()
    draft.document.save(buffer)
    return buffer.getvalue(), sorted(set(draft.unknown))


def save_docx(path: Path, data: bytes) -> Path:
    if path.suffix.lower() != ".docx":
        raise MailbotError(f"{path}: the document must be a .docx file")
    return save_output(path, data)


__all__ = [
    "Draft",
    "context",
    "default_report",
    "draft_bytes",
    "draft_report",
    "save_docx",
    "slug",
    "texts_bytes",
]
