"""The institutions table: the snapshot's rows filtered, counted, sorted and cut into pages, as the URL asks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailbot.reports.tracker_rows import GROUP_HEADERS, STATUS_ORDER
from mailbot.text import fold
from mailbot.web.snapshot import FIRST_EXTRA, Snapshot, TableRow, plain_words
from mailbot.wording import STATUS

PAGE_SIZE = 100

SORTS = ("stt", "code", "name", "group", "status", "submitted", "count")
# The tracker's text columns the table shows unless asked for all of them: the rest (files, number and date,
# title, signer) is on each institution's page, so the table fits a 1366-px laptop without sideways scrolling.
DEFAULT_EXTRA = ("Bản có dấu đỏ", "Nhận diện", "Lưu ý")


@dataclass
class TableQuery:
    """What the table is asked for in the URL: search, filters, sorting, page, columns."""

    q: str = ""
    group: str = ""
    status: str = ""
    sort: str = "stt"
    desc: bool = False
    page: int = 1
    all_columns: bool = False  # every column of the tracker, not only DEFAULT_EXTRA

    @property
    def extra(self) -> list[int]:
        """Which of the tracker's text columns (positions after its first six) the table shows."""
        names = GROUP_HEADERS[FIRST_EXTRA:]
        return [n for n, name in enumerate(names) if self.all_columns or name in DEFAULT_EXTRA]

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> TableQuery:
        sort = params.get("sort", "stt")
        status = params.get("status", "")
        try:
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            page = 1
        return cls(
            q=params.get("q", "").strip()[:200],
            group=params.get("group", "").strip()[:200],
            status=status if status in STATUS else "",
            sort=sort if sort in SORTS else "stt",
            desc=params.get("dir") == "desc",
            page=page,
            all_columns=params.get("columns") == "all",
        )

    def params(self, **change: Any) -> dict[str, str]:
        values = {
            "q": self.q,
            "group": self.group,
            "status": self.status,
            "sort": self.sort,
            "dir": "desc" if self.desc else "asc",
            "page": str(self.page),
            "columns": "all" if self.all_columns else "",
            **{k: str(v) for k, v in change.items()},
        }
        defaults = {"q": "", "group": "", "status": "", "sort": "stt", "dir": "asc", "page": "1", "columns": ""}
        return {k: v for k, v in values.items() if v != defaults[k]}


_STATUS_RANK = {key: n for n, key in enumerate(STATUS_ORDER)}


def _sort_key(sort: str) -> Callable[[TableRow], Any]:
    if sort == "code":
        return lambda r: r.inst.code.casefold()
    if sort == "name":
        return lambda r: (r.name_key, r.inst.name)
    if sort == "group":
        return lambda r: (fold(r.inst.group), r.index)
    if sort == "status":
        return lambda r: (_STATUS_RANK[r.status], r.index)
    if sort == "submitted":
        return lambda r: (r.submitted_ts is None, r.submitted_ts or 0.0, r.index)
    if sort == "count":
        return lambda r: (r.count, r.index)
    return lambda r: r.index


@dataclass
class TablePage:
    """One page of the table's matching rows."""

    rows: list[tuple[int, TableRow]]  # (number in the filtered list, row)
    matched: int
    page: int
    pages: int
    counts: dict[str, int] = field(default_factory=dict)  # status → count among the matched rows


def table(snap: Snapshot, query: TableQuery, page_size: int = PAGE_SIZE) -> TablePage:
    wanted = fold(query.q) if query.q else ""
    plain = plain_words(query.q) if query.q else ""
    rows = [
        r
        for r in snap.rows
        if (not query.group or r.inst.group == query.group)
        and (not wanted or wanted in r.key or (plain and plain in r.key))
    ]
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for r in rows:
        counts[r.status] += 1
    if query.status:
        rows = [r for r in rows if r.status == query.status]
    if query.sort != "stt" or query.desc:
        rows.sort(key=_sort_key(query.sort), reverse=query.desc)
    pages = max(1, -(-len(rows) // page_size))
    page = min(query.page, pages)
    start = (page - 1) * page_size
    return TablePage(
        [(start + n + 1, r) for n, r in enumerate(rows[start : start + page_size])], len(rows), page, pages, counts
    )


TABLE_HEADERS = GROUP_HEADERS  # the tracker's columns, in its order
