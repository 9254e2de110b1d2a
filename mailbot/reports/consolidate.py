"""The template-driven consolidation: every institution's latest report read against the campaign's template.

For each institution the campaign counts (roster order), the Word files of its latest submission are read once
(``compile.load_report``: a legacy ``.doc`` is converted), their data tables matched to the template's
(``mailbot.reports.matching``) and their paragraphs gathered under the template's section headings. The result holds,
per template table, one entry of figures per institution; what did not match, per institution, with the file to
open; the participation figures per group (on time, late, missing). The workbook, the texts and the drafted report
are written from it (``consolidation_xlsx``, ``narrative``). Without a template, ``mailbot.reports.compile`` (shape
matching) is the fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from mailbot import store
from mailbot.campaigns import catalog
from mailbot.config import Settings
from mailbot.documents.decree30 import describe
from mailbot.documents.wordxml import Paragraph, read_blocks
from mailbot.models import Campaign
from mailbot.reports.aliases import load_aliases
from mailbot.reports.compile import UNREADABLE, latest_reports, load_report
from mailbot.reports.matching import KIND_FILE, Aliases, Finding, match_tables, similar
from mailbot.reports.status import FileRow, InstitutionStatus, campaign_status
from mailbot.reports.template import (
    MAX_HEADING,
    Template,
    TemplateProblem,
    TemplateTable,
    is_heading,
    label_key,
    read_template,
)
from mailbot.text import fold

NO_WORD_FILE = "Đơn vị không gửi tệp Word (chỉ có {files}): cần nhập số liệu thủ công"
NOT_SUBMITTED = "Chưa nộp báo cáo"
_CLOSINGS = ("tren day la", "noi nhan")
MAX_SECTION_CHARS = 6_000  # of one institution's text under one heading (about two pages)
CUT_SHORT = "(Phần còn lại của mục này dài, xin xem toàn văn trong báo cáo của đơn vị.)"
DUPLICATE_FIGURE = "Số liệu đã có ở tệp khác của đơn vị: không cộng lần nữa"


@dataclass(frozen=True)
class Source:
    """An archived file: its name, its path under the archive, its row id (the web page's /files/{id})."""

    name: str
    path: str
    file_id: int | None = None


@dataclass(frozen=True)
class Entry:
    """One institution's figures for one template table (None: not given)."""

    code: str
    name: str
    group: str
    source: Source
    values: tuple[tuple[Decimal | None, ...], ...]  # template rows × template value columns


@dataclass(frozen=True)
class TableResult:
    template: TemplateTable
    entries: tuple[Entry, ...]  # group order, then roster order

    def total(self, row: int, column: int, group: str | None = None) -> Decimal:
        """The city-wide figure (or one group's): the sum over the institutions."""
        return sum(
            (e.values[row][column] or Decimal(0) for e in self.entries if group is None or e.group == group),
            Decimal(0),
        )

    def column_total(self, column: int, group: str | None = None) -> Decimal:
        return sum((self.total(r, column, group) for r in range(len(self.template.rows))), Decimal(0))


@dataclass(frozen=True)
class Item:
    """A line of the list of what did not match."""

    code: str
    name: str
    group: str
    source: Source | None
    table: int  # the template table (0: none)
    where: str
    kind: str
    found: str
    reason: str
    accept: str = ""  # "row"/"column": staff may map ``found`` to a template name


@dataclass(frozen=True)
class Passage:
    """What one institution wrote under one of the template's section headings."""

    section: int  # index in template.sections
    code: str
    name: str
    group: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Participation:
    group: str
    total: int
    on_time: int
    late: int
    missing: int

    @property
    def submitted(self) -> int:
        return self.on_time + self.late


@dataclass(frozen=True)
class Member:
    code: str
    name: str
    group: str
    status: str  # on_time, late, missing
    submitted_at: datetime | None


@dataclass(frozen=True)
class Consolidation:
    campaign: Campaign
    generated_at: datetime
    zone: ZoneInfo
    template: Template
    groups: tuple[str, ...]  # roster order
    members: tuple[Member, ...]
    tables: tuple[TableResult, ...]
    items: tuple[Item, ...]
    passages: tuple[Passage, ...]

    @property
    def participation(self) -> tuple[Participation, ...]:
        out = []
        for g in self.groups:
            ms = [m for m in self.members if m.group == g]
            count = {s: sum(1 for m in ms if m.status == s) for s in ("on_time", "late", "missing")}
            out.append(Participation(g, len(ms), count["on_time"], count["late"], count["missing"]))
        return tuple(out)

    @property
    def overall(self) -> Participation:
        parts = self.participation
        return Participation("", *(sum(getattr(p, f) for p in parts) for f in ("total", "on_time", "late", "missing")))


# ---------------------------------------------------------------- what is read


@dataclass(frozen=True)
class Report:
    """An institution's latest report as the consolidation takes it: its Word files, loaded on demand."""

    code: str
    name: str
    group: str
    files: tuple[tuple[Source, Callable[[], tuple[bytes | None, str]]], ...]
    other_files: tuple[Source, ...] = ()  # what it sent when it sent no Word file (a PDF scan)


def campaign_template(settings: Settings, engine: Engine, campaign_id: str) -> Template | None:
    """The campaign's report template read, or None when it has none (``TemplateProblem`` when unreadable)."""
    with engine.connect() as conn:
        files = [f for f in catalog.files_of(conn, campaign_id) if f.role == catalog.TEMPLATE]
    if not files:
        return None
    try:
        data = (settings.data_dir / files[-1].path).read_bytes()
    except OSError as exc:
        raise TemplateProblem(f"the report template {files[-1].name} cannot be read: {exc.strerror or exc}") from None
    return read_template(data, files[-1].name)


def consolidate_campaign(
    settings: Settings, engine: Engine, campaign: Campaign, template: Template, *, now: datetime
) -> Consolidation:
    """Every counted institution's latest report read against ``template`` (see the module doc)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cs = campaign_status(engine, campaign)
    members = tuple(Member(i.code, i.name, i.group, i.status, i.submitted_at) for i in cs.counted)
    reports = list(_reports(settings.archive_dir, cs.counted, _sent_without_report(engine, campaign.id)))
    ids = _file_ids(engine, [s.path for r in reports for s, _ in r.files])
    reports = [
        Report(r.code, r.name, r.group, tuple((_with_id(s, ids), load) for s, load in r.files), r.other_files)
        for r in reports
    ]
    return consolidate(
        campaign, template, reports, tuple(cs.groups()), members, load_aliases(engine), now, settings.zone
    )


def _reports(
    archive_dir: Path, institutions: Iterable[InstitutionStatus], scans: dict[str, list[Source]]
) -> Iterator[Report]:
    for inst in institutions:
        if not inst.submissions:
            if inst.code in scans:  # only the stamped copy came: no figures to read, but staff must know
                yield Report(inst.code, inst.name, inst.group, (), tuple(scans[inst.code]))
            continue
        _, files = latest_reports(inst)
        loaded = tuple((Source(f.name, f.path), _loader(archive_dir, f)) for f in files)
        others = () if files else tuple(Source(f.name, f.path) for f in inst.submissions[-1].files)
        yield Report(inst.code, inst.name, inst.group, loaded, others)


def _loader(archive_dir: Path, f: FileRow) -> Callable[[], tuple[bytes | None, str]]:
    return lambda: load_report(archive_dir, f)


def _sent_without_report(engine: Engine, campaign_id: str) -> dict[str, list[Source]]:
    """The files of the messages counted as no report (a PDF scan on its own), by institution code."""
    m, f, i = store.messages, store.files, store.institutions
    query = (
        select(i.c.code, f.c.id, f.c.name, f.c.path)
        .join(m, m.c.institution_id == i.c.id)
        .join(f, f.c.message_pk == m.c.id)
        .where(m.c.campaign_id == campaign_id, m.c.state == "no_report")
        .order_by(m.c.id, f.c.id)
    )
    out: dict[str, list[Source]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            out.setdefault(row.code, []).append(Source(row.name, row.path, row.id))
    return out


def _with_id(source: Source, ids: dict[str, int]) -> Source:
    return Source(source.name, source.path, ids.get(source.path))


def _file_ids(engine: Engine, paths: list[str]) -> dict[str, int]:
    f = store.files
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            for row in conn.execute(select(f.c.id, f.c.path).where(f.c.path.in_(chunk))):
                out.setdefault(row.path, row.id)
    return out


def consolidate(
    campaign: Campaign,
    template: Template,
    reports: Iterable[Report],
    groups: tuple[str, ...],
    members: tuple[Member, ...],
    aliases: Aliases,
    now: datetime,
    zone: ZoneInfo,
) -> Consolidation:
    """The consolidation of ``reports`` (what ``consolidate_campaign`` reads from the database and the archive)."""
    per_table: dict[int, list[Entry]] = {t.number: [] for t in template.tables}
    items: list[Item] = []
    passages: list[Passage] = []
    for report in reports:
        entries, found, texts = _read_report(report, template, aliases)
        for number, entry in entries.items():
            per_table[number].append(entry)
        items.extend(found)
        passages.extend(texts)
    rank = {g: i for i, g in enumerate(groups)}
    order = {m.code: i for i, m in enumerate(members)}

    def place(code: str, group: str) -> tuple[int, int]:
        return rank.get(group, len(rank)), order.get(code, len(order))

    tables = tuple(
        TableResult(t, tuple(sorted(per_table[t.number], key=lambda e: place(e.code, e.group))))
        for t in template.tables
    )
    items.sort(key=lambda i: place(i.code, i.group))
    passages.sort(key=lambda p: (p.section, *place(p.code, p.group)))
    known = set(groups) | {m.group for m in members}
    all_groups = (*groups, *sorted(known - set(groups)))
    return Consolidation(campaign, now, zone, template, all_groups, members, tables, tuple(items), tuple(passages))


def _read_report(
    report: Report, template: Template, aliases: Aliases
) -> tuple[dict[int, Entry], list[Item], list[Passage]]:
    """One institution's figures per template table, what did not match, and its texts by section."""
    values: dict[int, dict[tuple[int, int], Decimal]] = {}
    sources: dict[int, Source] = {}
    items: list[Item] = []
    texts: dict[int, list[str]] = {}

    def item(source: Source | None, f: Finding) -> Item:
        return Item(
            report.code, report.name, report.group, source, f.table, f.where, f.kind, f.found, f.reason, f.accept
        )

    if not report.files:
        files = ", ".join(s.name for s in report.other_files) or "không có tệp"
        first = report.other_files[0] if report.other_files else None
        items.append(item(first, Finding(0, "", KIND_FILE, files, NO_WORD_FILE.format(files=files))))
    for source, load in report.files:
        data, problem = load()
        blocks = read_blocks(data) if data is not None else None
        if blocks is None or blocks.problem is not None:
            items.append(item(source, Finding(0, "", KIND_FILE, source.name, problem or UNREADABLE)))
            continue
        meta = describe(blocks)
        match = match_tables(meta.tables, template, aliases)
        items.extend(item(source, f) for f in match.findings)
        for number, got in match.values.items():
            mine = values.setdefault(number, {})
            sources.setdefault(number, source)
            for key, value in got.items():
                if key in mine:
                    where = f"{template.tables[number - 1].rows[key[0]].label} / {template.tables[number - 1].columns[key[1]].name}"
                    items.append(item(source, Finding(number, where, "Ô", str(value), DUPLICATE_FIGURE)))
                else:
                    mine[key] = value
        _sections(blocks.items, template, texts)
    entries = {
        number: Entry(report.code, report.name, report.group, sources[number], _grid(template.tables[number - 1], got))
        for number, got in values.items()
    }
    passages = [Passage(s, report.code, report.name, report.group, tuple(ps)) for s, ps in texts.items() if ps]
    return entries, items, passages


def _grid(t: TemplateTable, got: dict[tuple[int, int], Decimal]) -> tuple[tuple[Decimal | None, ...], ...]:
    return tuple(tuple(got.get((r, c)) for c in range(len(t.columns))) for r in range(len(t.rows)))


def _sections(items: Iterable[object], template: Template, texts: dict[int, list[str]]) -> None:
    """The report's paragraphs under the template's section headings (the template's own instructions left out)."""
    if not template.sections:
        return
    keys = {s.key: i for i, s in enumerate(template.sections)}
    current: int | None = None
    for block in items:
        if not isinstance(block, Paragraph):
            continue
        text = " ".join(block.text.split())
        if not text:
            continue
        short = len(text) <= MAX_HEADING  # only a short paragraph can be a heading or one of the template's lines
        key = label_key(text) if short else ""
        section = keys.get(key) if short else None
        if section is None and short and is_heading(text):
            section = next((i for k, i in keys.items() if _same_heading(key, k)), None)
        if section is not None:
            current = section
        elif key.startswith(_CLOSINGS):
            current = None  # "Trên đây là báo cáo …", then the signature: no section's text
        elif current is not None and not (short and fold(text) in template.texts):
            kept = texts.setdefault(current, [])
            _keep(kept, text)


def _keep(kept: list[str], text: str) -> None:
    """A section's paragraphs up to MAX_SECTION_CHARS (a city's thousands of reports stay in memory), then a note."""
    used = sum(len(t) for t in kept)
    if used >= MAX_SECTION_CHARS:
        return
    if used + len(text) > MAX_SECTION_CHARS:
        kept.append(text[: MAX_SECTION_CHARS - used].rstrip() + "…")
        kept.append(CUT_SHORT)
        return
    kept.append(text)


def _same_heading(found: str, heading: str) -> bool:
    """A school's heading is the template's: nearly the same words, or all of them (three or more) and a few more."""
    words = set(heading.split())
    if len(words) >= 3 and words <= set(found.split()):
        return True
    return similar(found, heading) and not (set(found.split()) < words or words < set(found.split()))


__all__ = [
    "Consolidation",
    "Entry",
    "Item",
    "Member",
    "Participation",
    "Passage",
    "Report",
    "Source",
    "TableResult",
    "campaign_template",
    "consolidate",
    "consolidate_campaign",
]
