"""What the pages show, computed from the library (``status.campaign_status``) and a few read-only queries.

``campaign_status`` reads the whole campaign; pages are served from a snapshot of it that is rebuilt only when
the database changed (a cheap fingerprint query per request: new message, staff action, roster import,
extension, learned address) or after ``MAX_AGE`` seconds, so the overview and the table stay fast with
thousands of institutions and many staff looking at once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, func, or_, select

from mailbot import store
from mailbot.models import Campaign
from mailbot.reports.status import CampaignStatus, InstitutionStatus, ReviewItem, campaign_status
from mailbot.reports.workbook import GROUP_HEADERS, STATUS_ORDER, institution_row, review_reason
from mailbot.text import fold, strip_marks
from mailbot.wording import STATUS, document_title, local_time

MAX_AGE = 30.0  # seconds a snapshot is trusted even if the fingerprint did not move
RECHECK = 1.0  # seconds between two looks at the fingerprint
PAGE_SIZE = 100
# The tracker's columns are STT, code, name, status, first submission, count, then text columns (files,
# identification, notes, ...): the table shows the first six itself and the rest as the tracker writes them.
FIRST_EXTRA = 6

OUTBOX_KIND = {
    "ack": "Xác nhận đã nhận báo cáo",
    "ack_no_report": "Đề nghị gửi lại tệp báo cáo",
    "ack_review": "Xác nhận đã nhận thư (chờ cán bộ xem xét)",
    "too_large": "Thư vượt quá dung lượng: đề nghị gửi lại",
    "reminder": "Nhắc nộp báo cáo",
    "late": "Thông báo quá hạn nộp",
    "digest": "Thư tổng hợp hằng ngày",
}
OUTBOX_STATUS = {
    "pending": "Đang chờ gửi",
    "sending": "Đang gửi",
    "sent": "Đã gửi",
    "failed": "Gửi không thành công",
    "suppressed": "Không gửi (vượt giới hạn thư tự động)",
}
MESSAGE_STATE = {
    "submission": "Báo cáo",
    "no_report": "Thư không kèm báo cáo",
    "review": "Chờ cán bộ xem xét",
    "error": "Không đọc được thư",
    "duplicate": "Thư trùng",
}
ACTION = {"assign": "Giao thư cho đơn vị", "extend": "Gia hạn nộp", "roster_import": "Nhập danh sách đơn vị"}
EVENT = {
    "login": "Đăng nhập",
    "login_failed": "Đăng nhập không thành công",
    "login_limited": "Bị tạm khóa đăng nhập",
    "logout": "Đăng xuất",
    "user_added": "Tạo tài khoản",
    "password_set": "Đổi mật khẩu",
    "user_disabled": "Khóa tài khoản",
    "user_enabled": "Mở lại tài khoản",
    "user_removed": "Xóa tài khoản",
}

SORTS = ("stt", "code", "name", "group", "status", "submitted", "count")
# The tracker's text columns the table shows unless asked for all of them: the rest (files, number and date,
# title, signer) is on each institution's page, so the table fits a 1366-px laptop without sideways scrolling.
DEFAULT_EXTRA = ("Bản có dấu (PDF)", "Nhận diện", "Lưu ý")


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
    cs: CampaignStatus
    rows: tuple[TableRow, ...]
    by_code: dict[str, TableRow]
    groups: tuple[GroupSummary, ...]
    total: GroupSummary
    extended: int
    names: dict[str, str]  # code → name
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)  # rendered fragments

    def remember(self, key: Any, make: Any) -> Any:
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


def search_key(*parts: str) -> str:
    """What a query is matched against: the folded text (abbreviations unified) and the plain unaccented text."""
    text = " ".join(parts)
    plain = " ".join(re.sub(r"[^0-9a-z&]+", " ", strip_marks(text).lower()).split())
    return f"{fold(text)} | {plain}"


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


# --- the institutions table ---------------------------------------------------------------------------


@dataclass
class TableQuery:
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
    def from_params(cls, params: Any) -> TableQuery:
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


def _sort_key(sort: str):  # type: ignore[no-untyped-def]
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
    rows: list[tuple[int, TableRow]]  # (number in the filtered list, row)
    matched: int
    page: int
    pages: int
    counts: dict[str, int] = field(default_factory=dict)  # status → count among the matched rows


def table(snap: Snapshot, query: TableQuery, page_size: int = PAGE_SIZE) -> TablePage:
    wanted = fold(query.q) if query.q else ""
    plain = " ".join(re.sub(r"[^0-9a-z&]+", " ", strip_marks(query.q).lower()).split()) if query.q else ""
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


# --- one institution ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileLink:
    id: int
    name: str
    kind: str
    size: int
    downloadable: bool
    heading: str
    warnings: tuple[str, ...]
    origin: str
    about: str = ""  # what the Word report says about itself (type, title, number, date, signer)


def meta_summary(meta: dict[str, Any] | None) -> str:
    """``Báo cáo Sơ kết … · Số 15/BC-THPTNQ · ngày 04/12/2023 · Người ký: Hiệu trưởng – Nguyễn Văn A``."""
    if not meta:
        return ""
    title = document_title(str(meta.get("doc_type") or ""), str(meta.get("title") or ""))
    parts = [title] if title else []
    if meta.get("number"):
        parts.append(f"Số {meta['number']}")
    date = str(meta.get("date") or "")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        parts.append(f"ngày {date[8:10]}/{date[5:7]}/{date[:4]}")
    signer = " – ".join(
        str(meta[k]).replace("\n", " ").strip() for k in ("signer_position", "signer_name") if meta.get(k)
    )
    if signer:
        parts.append(f"Người ký: {signer}")
    return " · ".join(parts)


@dataclass(frozen=True)
class MessageView:
    id: int
    message_id: str
    sender: str
    sender_name: str
    subject: str
    received_at: datetime
    state: str
    campaign_id: str | None
    late: bool
    identified_by: str
    reason: str
    warnings: tuple[str, ...]
    files: tuple[FileLink, ...]
    has_original: bool


def files_by_message(engine: Engine, message_pks: Sequence[int]) -> dict[int, list[FileLink]]:
    out: dict[int, list[FileLink]] = {pk: [] for pk in message_pks}
    if not message_pks:
        return out
    f = store.files
    with engine.connect() as conn:
        for r in conn.execute(select(f).where(f.c.message_pk.in_(list(message_pks))).order_by(f.c.id)):
            out[r.message_pk].append(
                FileLink(
                    r.id,
                    r.name,
                    r.kind,
                    r.size,
                    bool(r.path),
                    r.heading,
                    tuple(r.warnings),
                    r.origin,
                    meta_summary(getattr(r, "meta", None)),
                )
            )
    return out


def institution_messages(engine: Engine, code: str) -> list[MessageView]:
    """Every message recorded for the institution (any campaign, any state), newest first."""
    m, i = store.messages, store.institutions
    with engine.connect() as conn:
        rows = list(
            conn.execute(
                select(m)
                .join(i, i.c.id == m.c.institution_id)
                .where(i.c.code == code)
                .order_by(m.c.received_at.desc(), m.c.id.desc())
            )
        )
    files = files_by_message(engine, [r.id for r in rows])
    return [_message_view(r, files[r.id]) for r in rows]


def _message_view(r: Any, files: list[FileLink]) -> MessageView:
    return MessageView(
        r.id,
        r.message_id,
        r.sender,
        r.sender_name,
        r.subject,
        r.received_at,
        r.state,
        r.campaign_id,
        bool(r.late),
        r.identified_by or "",
        r.reason,
        tuple(r.warnings),
        tuple(files),
        bool(r.eml_path),
    )


@dataclass(frozen=True)
class SentMail:
    id: int
    kind: str
    recipients: tuple[str, ...]
    subject: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    last_error: str


def sent_to(engine: Engine, code: str) -> list[SentMail]:
    """Receipts, reminders and late notices queued for the institution (or answering one of its messages)."""
    o, m = store.outbox, store.messages
    with engine.connect() as conn:
        pk = store.institution_pk(conn, code)
        if pk is None:
            return []
        mine = select(m.c.id).where(m.c.institution_id == pk)
        rows = conn.execute(
            select(
                o.c.id, o.c.kind, o.c.recipients, o.c.subject, o.c.status, o.c.created_at, o.c.sent_at, o.c.last_error
            )
            .where(or_(o.c.institution_id == pk, o.c.message_pk.in_(mine)))
            .order_by(o.c.created_at.desc(), o.c.id.desc())
        )
        return [
            SentMail(r.id, r.kind, tuple(r.recipients), r.subject, r.status, r.created_at, r.sent_at, r.last_error)
            for r in rows
        ]


@dataclass(frozen=True)
class ExtensionView:
    until: datetime
    reason: str
    actor: str
    at: datetime


def extension(engine: Engine, campaign_id: str, code: str) -> ExtensionView | None:
    e, i = store.extensions, store.institutions
    with engine.connect() as conn:
        r = conn.execute(
            select(e).join(i, i.c.id == e.c.institution_id).where(e.c.campaign_id == campaign_id, i.c.code == code)
        ).first()
    return ExtensionView(r.until, r.reason, r.actor, r.at) if r else None


# --- who changed what ---------------------------------------------------------------------------------

_EXTEND = re.compile(r"^(?P<campaign>\S+) (?P<code>\S+) until (?P<until>\S+)\s*(?P<reason>.*)$", re.S)


@dataclass(frozen=True)
class ActionView:
    id: int
    action: str
    actor: str
    at: datetime
    detail: str
    message_pk: int | None
    code: str  # the institution concerned, when known
    until: datetime | None = None  # extensions
    reason: str = ""
    campaign_id: str = ""
    learned: str = ""  # assignments that taught an address

    @property
    def label(self) -> str:
        return ACTION.get(self.action, self.action)


def _action_view(r: Any) -> ActionView:
    if r.action == "extend":
        match = _EXTEND.match(r.detail)
        if match:
            try:
                until = datetime.fromisoformat(match["until"])
            except ValueError:
                until = None
            return ActionView(
                r.id,
                r.action,
                r.actor,
                r.at,
                r.detail,
                r.message_pk,
                match["code"],
                until,
                match["reason"].strip(),
                match["campaign"],
            )
    if r.action == "assign":
        code, _, rest = r.detail.partition(",")
        learned = rest.strip().removeprefix("learned ").strip() if rest else ""
        return ActionView(r.id, r.action, r.actor, r.at, r.detail, r.message_pk, code.strip(), learned=learned)
    return ActionView(r.id, r.action, r.actor, r.at, r.detail, r.message_pk, "")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def actions_for(engine: Engine, code: str) -> list[ActionView]:
    """Assignments to the institution and extensions granted to it, newest first."""
    a = store.actions
    c = _like_escape(code)
    query = (
        select(a)
        .where(
            or_(
                and_(a.c.action == "assign", or_(a.c.detail == code, a.c.detail.like(f"{c},%", escape="\\"))),
                and_(a.c.action == "extend", a.c.detail.like(f"% {c} until %", escape="\\")),
            )
        )
        .order_by(a.c.id.desc())
    )
    with engine.connect() as conn:
        return [_action_view(r) for r in conn.execute(query)]


def recent_actions(engine: Engine, limit: int = 10) -> list[ActionView]:
    a = store.actions
    with engine.connect() as conn:
        return [_action_view(r) for r in conn.execute(select(a).order_by(a.c.id.desc()).limit(limit))]


@dataclass(frozen=True)
class EventView:
    at: datetime
    event: str
    actor: str
    ip: str
    detail: str

    @property
    def label(self) -> str:
        return EVENT.get(self.event, self.event)


def recent_events(engine: Engine, limit: int = 100) -> list[EventView]:
    ev = store.web_events
    with engine.connect() as conn:
        return [
            EventView(r.at, r.event, r.actor, r.ip, r.detail)
            for r in conn.execute(select(ev).order_by(ev.c.id.desc()).limit(limit))
        ]


def institution_names(engine: Engine) -> dict[str, str]:
    i = store.institutions
    with engine.connect() as conn:
        return {r.code: r.name for r in conn.execute(select(i.c.code, i.c.name))}


# --- the review queue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    code: str
    name: str
    group: str
    key: str


@dataclass(frozen=True)
class ReviewView:
    item: ReviewItem
    reason: str
    files: tuple[FileLink, ...]
    sender_name: str


def review_items(engine: Engine, cs: CampaignStatus) -> list[ReviewView]:
    files = files_by_message(engine, [r.pk for r in cs.review])
    m = store.messages
    with engine.connect() as conn:
        names = dict(conn.execute(select(m.c.id, m.c.sender_name).where(m.c.id.in_([r.pk for r in cs.review]))).all())
    return [ReviewView(r, review_reason(r), tuple(files[r.pk]), names.get(r.pk, "")) for r in cs.review]


def choices(engine: Engine) -> list[tuple[str, list[Choice]]]:
    """Every active institution of the roster by group, in roster order (as the overview and the tracker show them)."""
    i = store.institutions
    grouped: dict[str, list[Choice]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(i.c.code, i.c.name, i.c.grp).where(i.c.active.is_(True)).order_by(i.c.id)):
            grouped.setdefault(r.grp, []).append(Choice(r.code, r.name, r.grp, search_key(r.code, r.name)))
    return list(grouped.items())


def message(engine: Engine, pk: int) -> MessageView | None:
    m = store.messages
    with engine.connect() as conn:
        r = conn.execute(select(m).where(m.c.id == pk)).first()
    if r is None:
        return None
    return _message_view(r, files_by_message(engine, [pk])[pk])


# --- time words ---------------------------------------------------------------------------------------


def duration_words(seconds: float) -> str:
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} ngày {hours} giờ" if hours else f"{days} ngày"
    if hours:
        return f"{hours} giờ {minutes} phút" if minutes else f"{hours} giờ"
    return f"{max(minutes, 1)} phút"


def time_left(deadline: datetime, now: datetime) -> tuple[str, bool]:
    """("Còn 2 ngày 3 giờ", False) or ("Đã quá hạn 1 ngày 14 giờ", True)."""
    delta = (deadline - now).total_seconds()
    if delta > 0:
        return f"Còn {duration_words(delta)}", False
    return f"Đã quá hạn {duration_words(delta)}", True
