"""The campaign as the pages show it: a snapshot of ``status.campaign_status`` and the cache that keeps it.

``campaign_status`` reads the whole campaign; pages are served from a snapshot of it that is rebuilt only when
the database changed (a cheap fingerprint query per request: new message, staff action, roster import,
extension, learned address) or after ``MAX_AGE`` seconds, so the overview and the table stay fast with
thousands of institutions and many staff looking at once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from mailbot import store
from mailbot.models import Campaign
from mailbot.reports.status import CampaignStatus, InstitutionStatus, campaign_status
from mailbot.reports.tracker_rows import STATUS_ORDER, institution_row
from mailbot.text import fold, strip_marks
from mailbot.wording import STATUS, local_time

MAX_AGE = 30.0  # seconds a snapshot is trusted even if the fingerprint did not move
RECHECK = 1.0  # seconds between two looks at the fingerprint
# The tracker's columns are STT, code, name, status, first submission, count, then text columns (files,
# identification, notes, ...): the table shows the first six itself and the rest as the tracker writes them.
FIRST_EXTRA = 6


@dataclass(frozen=True)
class TableRow:
    """One institution as the table (and the tracker's group sheets) show it, ready to print."""

    index: int  # roster order
    inst: InstitutionStatus
    key: str  # folded code, name and group, for the search box
    extra: tuple[tuple[str, ...], ...]  # the tracker's columns after "Số lần nộp", each as lines of text
    status: str  # on_time | late | missing (InstitutionStatus.status, computed once)
    submitted: str  # first submission, local time words
    submitted_ts: float | None
    deadline: str  # the institution's own deadline in words, when extended
    count: int
    name_key: str
    href: str  # the code, quoted for a URL

    @property
    def status_word(self) -> str:
        return STATUS[self.status]


@dataclass(frozen=True)
class GroupSummary:
    """How many institutions of a group (or of all) are on time, late and missing."""

    name: str
    total: int
    on_time: int
    late: int
    missing: int

    @property
    def submitted_share(self) -> float:
        return (self.on_time + self.late) / self.total if self.total else 0.0

    def share(self, key: str) -> float:
        return getattr(self, key) / self.total if self.total else 0.0


@dataclass(frozen=True)
class Snapshot:
    """A campaign's status with what the pages derive from it, built once per change of the data."""

    cs: CampaignStatus
    rows: tuple[TableRow, ...]
    by_code: dict[str, TableRow]
    groups: tuple[GroupSummary, ...]
    total: GroupSummary
    extended: int
    names: dict[str, str]  # code → name
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)  # rendered fragments

    def remember(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per snapshot and key (the snapshot is replaced when the data change)."""
        found = self.memo.get(key)
        if found is None:
            if len(self.memo) > 256:
                self.memo.clear()
            found = self.memo[key] = make()
        return found


def _summary(name: str, members: Sequence[InstitutionStatus]) -> GroupSummary:
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for m in members:
        counts[m.status] += 1
    return GroupSummary(name, len(members), counts["on_time"], counts["late"], counts["missing"])


def plain_words(text: str) -> str:
    """The text unaccented, lower case, in words of letters, digits and ``&``: what a search falls back on."""
    return " ".join(re.sub(r"[^0-9a-z&]+", " ", strip_marks(text).lower()).split())


def search_key(*parts: str) -> str:
    """What a query is matched against: the folded text (abbreviations unified) and the plain unaccented text."""
    text = " ".join(parts)
    return f"{fold(text)} | {plain_words(text)}"


def build_snapshot(cs: CampaignStatus, zone: ZoneInfo) -> Snapshot:
    rows = []
    for n, inst in enumerate(cs.institutions):
        cells = institution_row(n + 1, inst, zone)[FIRST_EXTRA:]  # the tracker's own row, so the columns agree
        rows.append(
            TableRow(
                n,
                inst,
                search_key(inst.code, inst.name, inst.group),
                tuple(tuple(line for line in str(c if c is not None else "").split("\n") if line) for c in cells),
                inst.status,
                local_time(inst.submitted_at, zone),
                inst.submitted_at.timestamp() if inst.submitted_at else None,
                local_time(inst.deadline, zone) if inst.extended else "",
                len(inst.submissions),
                fold(inst.name),
                quote(inst.code, safe=""),
            )
        )
    groups = tuple(_summary(g, members) for g, members in cs.groups().items())
    return Snapshot(
        cs,
        tuple(rows),
        {r.inst.code: r for r in rows},
        groups,
        _summary("Tổng cộng", cs.counted),
        sum(1 for i in cs.institutions if i.extended),
        {i.code: i.name for i in cs.institutions},
    )


def fingerprint(engine: Engine) -> tuple[Any, ...]:
    """Changes whenever something a page shows may have changed."""
    m, a, i, e, lr, f = store.messages, store.actions, store.institutions, store.extensions, store.learned, store.files
    query = select(
        select(func.max(m.c.id)).scalar_subquery(),
        select(func.max(a.c.id)).scalar_subquery(),
        select(func.max(f.c.id)).scalar_subquery(),
        select(func.count()).select_from(i).scalar_subquery(),
        select(func.max(i.c.updated_at)).scalar_subquery(),
        select(func.count()).select_from(e).scalar_subquery(),
        select(func.max(e.c.at)).scalar_subquery(),
        select(func.count()).select_from(lr).scalar_subquery(),
    )
    with engine.connect() as conn:
        return tuple(conn.execute(query).one())


@dataclass
class _Entry:
    version: tuple[Any, ...]
    built: float
    checked: float
    snap: Snapshot


class StatusCache:
    """campaign id → the latest snapshot; rebuilt by one thread at a time when the database moved.

    The fingerprint is looked at most once per ``recheck`` seconds: a change made by another process (the
    service recording new mail) shows within that delay; changes made through the pages call ``clear()``.
    While one request rebuilds a snapshot, the others are served the previous one rather than wait.
    """

    def __init__(self, engine: Engine, zone: ZoneInfo, max_age: float = MAX_AGE, recheck: float = RECHECK) -> None:
        self.engine, self.zone = engine, zone
        self.max_age, self.recheck = max_age, recheck
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, campaign: Campaign) -> Snapshot:
        now = time.monotonic()
        entry = self._entries.get(campaign.id)
        if entry and now - entry.checked < self.recheck and now - entry.built < self.max_age:
            return entry.snap
        version = fingerprint(self.engine)
        if entry and entry.version == version and now - entry.built < self.max_age:
            entry.checked = now
            return entry.snap
        if entry and not self._lock.acquire(blocking=False):
            return entry.snap  # another request is rebuilding it: the previous one is good enough meanwhile
        if not entry:
            self._lock.acquire()
        try:
            entry = self._entries.get(campaign.id)
            if entry and entry.version == version and time.monotonic() - entry.built < self.max_age:
                return entry.snap
            snap = build_snapshot(campaign_status(self.engine, campaign), self.zone)
            done = time.monotonic()
            self._entries[campaign.id] = _Entry(version, done, done, snap)
            return snap
        finally:
            self._lock.release()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
