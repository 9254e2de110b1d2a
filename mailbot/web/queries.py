"""What the pages read from the database besides the snapshot: one institution's messages, the mail sent to it
and its extension; who changed what; the review queue's messages and the roster to choose from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from mailbot import store
from mailbot.models import Notice
from mailbot.reports.status import CampaignStatus, ReviewItem
from mailbot.reports.tracker_rows import review_reason
from mailbot.web.snapshot import search_key
from mailbot.wording import document_title

OUTBOX_KIND = {
    "ack": "Xác nhận đã nhận báo cáo",
    "ack_no_report": "Đề nghị gửi lại tệp báo cáo",
    "ack_review": "Xác nhận đã nhận thư (chờ cán bộ xem xét)",
    "too_large": "Thư vượt quá dung lượng: đề nghị gửi lại",
    "reminder": "Nhắc nộp báo cáo",
    "late": "Đôn đốc gửi báo cáo (quá hạn)",
    "extension": "Thông báo gia hạn nộp báo cáo",
    "digest": "Thư tổng hợp hằng ngày",
    "announce": "Công văn / thông báo về đợt báo cáo",
    "stamp_doubt": "Bản có dấu đỏ (PDF) chưa xác nhận được",
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
    "dismissed": "Đã loại (không phải báo cáo)",
}
ACTION = {
    "assign": "Giao thư cho đơn vị",
    "extend": "Gia hạn nộp",
    "extend_remove": "Hủy gia hạn nộp",
    "roster_import": "Nhập danh sách đơn vị",
    "roster_edit": "Sửa thông tin đơn vị",
    "dismiss": "Loại thư (không phải báo cáo)",
    "undismiss": "Đưa thư trở lại danh sách chờ xem xét",
    "confirm": "Xác nhận đơn vị gửi (nhận diện theo tên)",
    "reject": "Không đúng đơn vị (thư trở lại danh sách chờ xem xét)",
    "paper": "Ghi nhận đã nhận bản giấy (bản có dấu đỏ)",
    "paper_undo": "Bỏ ghi nhận bản giấy (bản có dấu đỏ)",
    "compile_alias": "Chấp nhận cách hiểu dòng, cột khi tổng hợp số liệu",
    "stamp_accept": "Chấp nhận bản có dấu đỏ (PDF)",
    "stamp_accept_undo": "Bỏ chấp nhận bản có dấu đỏ (PDF)",
}
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

# --- one institution ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileLink:
    """A file of a message, with what the page says about it and whether it can be downloaded."""

    id: int
    name: str
    kind: str
    size: int
    downloadable: bool
    heading: str
    warnings: tuple[Notice, ...]
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
    """A recorded message as the institution and review pages show it."""

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
    warnings: tuple[Notice, ...]
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


def campaign_messages(engine: Engine, campaign_id: str, code: str) -> list[MessageView]:
    """What the institution sent that counts for the campaign, oldest first: its reports, and its mail without a Word
    file (a stamped copy sent on its own, say)."""
    return [
        m
        for m in reversed(institution_messages(engine, code))
        if m.campaign_id == campaign_id and m.state in ("submission", "no_report")
    ]


@dataclass(frozen=True)
class SentMail:
    """A mail queued for the institution: a receipt, a reminder, a late notice."""

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
    """The institution's own deadline in a campaign, and who granted it when."""

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


@dataclass(frozen=True)
class InstitutionPage:
    """What one institution's page reads besides its snapshot row."""

    submissions: list[MessageView]  # this campaign's reports, newest first
    others: list[MessageView]  # its other messages: other campaigns, no report, held, duplicates
    sent: list[SentMail]
    extension: ExtensionView | None
    actions: list[ActionView]
    paper: PaperView | None = None


@dataclass(frozen=True)
class PaperView:
    """The paper copy staff ticked for this campaign: the day it arrived, who ticked it and when."""

    received_on: date
    actor: str
    at: datetime


def paper_view(engine: Engine, campaign_id: str, code: str) -> PaperView | None:
    p, i = store.paper, store.institutions
    query = (
        select(p.c.received_on, p.c.actor, p.c.at)
        .join(i, i.c.id == p.c.institution_id)
        .where(p.c.campaign_id == campaign_id, i.c.code == code)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return PaperView(row.received_on, row.actor, row.at) if row else None


def institution_page(engine: Engine, campaign_id: str, code: str) -> InstitutionPage:
    messages = institution_messages(engine, code)
    mine = [m for m in messages if m.campaign_id == campaign_id and m.state == "submission"]
    others = [m for m in messages if m not in mine]
    return InstitutionPage(
        mine,
        others,
        sent_to(engine, code),
        extension(engine, campaign_id, code),
        actions_for(engine, code),
        paper_view(engine, campaign_id, code),
    )


# --- who changed what ---------------------------------------------------------------------------------

_EXTEND = re.compile(r"^(?P<campaign>\S+) (?P<code>\S+) until (?P<until>\S+)\s*(?P<reason>.*)$", re.S)


@dataclass(frozen=True)
class ActionView:
    """A staff action, with what the log shows of its detail."""

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
    day: date | None = None  # paper copies: the day it arrived (or, for an undo, the day taken back)

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
    if r.action in ("confirm", "reject", "extend_remove"):
        first, _, rest = r.detail.partition(" ")
        second = rest.split(" ", 1)[0]
        # confirm/reject: "CODE CAMPAIGN"; extend_remove: "CAMPAIGN CODE was …"
        code, campaign = (first, second) if r.action != "extend_remove" else (second, first)
        return ActionView(r.id, r.action, r.actor, r.at, r.detail, r.message_pk, code, campaign_id=campaign)
    if r.action == "dismiss":
        return ActionView(r.id, r.action, r.actor, r.at, r.detail, r.message_pk, "", reason=r.detail)
    if r.action in ("paper", "paper_undo", "stamp_accept", "stamp_accept_undo"):
        campaign_id, code, day = (r.detail.split(" ") + ["", "", ""])[:3]
        try:
            when = date.fromisoformat(day)
        except ValueError:
            when = None
        return ActionView(
            r.id, r.action, r.actor, r.at, r.detail, r.message_pk, code, campaign_id=campaign_id, day=when
        )
    if r.action == "assign":
        code, _, rest = r.detail.partition(",")
        learned = rest.strip().removeprefix("learned ").strip() if rest else ""
        return ActionView(r.id, r.action, r.actor, r.at, r.detail, r.message_pk, code.strip(), learned=learned)
    if r.action == "roster_edit":  # "CODE: what changed"
        code, _, what = r.detail.partition(": ")
        return ActionView(r.id, r.action, r.actor, r.at, what, r.message_pk, code)
    return ActionView(r.id, r.action, r.actor, r.at, r.detail, r.message_pk, "")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def actions_for(engine: Engine, code: str) -> list[ActionView]:
    """Assignments to the institution, extensions granted or removed, names confirmed or rejected, edits of its
    details, paper copies ticked and stamped copies accepted, newest first."""
    a = store.actions
    c = _like_escape(code)
    query = (
        select(a)
        .where(
            or_(
                and_(a.c.action == "assign", or_(a.c.detail == code, a.c.detail.like(f"{c},%", escape="\\"))),
                and_(a.c.action == "extend", a.c.detail.like(f"% {c} until %", escape="\\")),
                and_(a.c.action == "roster_edit", a.c.detail.like(f"{c}: %", escape="\\")),
                and_(a.c.action == "extend_remove", a.c.detail.like(f"% {c} was %", escape="\\")),
                and_(a.c.action.in_(("confirm", "reject")), a.c.detail.like(f"{c} %", escape="\\")),
                and_(a.c.action.in_(("paper", "paper_undo")), a.c.detail.like(f"% {c} %", escape="\\")),
                and_(a.c.action.in_(("stamp_accept", "stamp_accept_undo")), a.c.detail.like(f"% {c}", escape="\\")),
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
    """A login, logout or account change."""

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
class ReviewView:
    """A held message with why it is held."""

    item: ReviewItem
    reason: str
    sender_name: str
    files: tuple[FileLink, ...]


def review_items(engine: Engine, cs: CampaignStatus) -> list[ReviewView]:
    files = files_by_message(engine, [r.pk for r in cs.review])
    m = store.messages
    with engine.connect() as conn:
        names = dict(conn.execute(select(m.c.id, m.c.sender_name).where(m.c.id.in_([r.pk for r in cs.review]))).all())
    return [ReviewView(r, review_reason(r), names.get(r.pk, ""), tuple(files[r.pk])) for r in cs.review]


@dataclass(frozen=True)
class Choice:
    """An institution in the review form's list."""

    code: str
    name: str
    group: str
    key: str


def choices(engine: Engine) -> list[tuple[str, list[Choice]]]:
    """Every active institution of the roster by group, in roster order (as the overview and the tracker show them)."""
    i = store.institutions
    grouped: dict[str, list[Choice]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(i.c.code, i.c.name, i.c.grp).where(i.c.active.is_(True)).order_by(i.c.id)):
            grouped.setdefault(r.grp, []).append(Choice(r.code, r.name, r.grp, search_key(r.code, r.name)))
    return list(grouped.items())


@dataclass(frozen=True)
class DismissedView:
    """A message staff dismissed as no report: why, who, when."""

    message: MessageView
    reason: str
    actor: str
    at: datetime


def dismissed(engine: Engine) -> list[DismissedView]:
    """Dismissed messages, most recently dismissed first."""
    m, d = store.messages, store.dismissals
    with engine.connect() as conn:
        rows = list(
            conn.execute(
                select(m, d.c.reason.label("dismissal"), d.c.actor, d.c.at)
                .join(d, d.c.message_pk == m.c.id)
                .where(m.c.state == "dismissed")
                .order_by(d.c.at.desc(), m.c.id.desc())
            )
        )
    files = files_by_message(engine, [r.id for r in rows])
    return [DismissedView(_message_view(r, files[r.id]), r.dismissal, r.actor, r.at) for r in rows]


def message(engine: Engine, pk: int) -> MessageView | None:
    m = store.messages
    with engine.connect() as conn:
        r = conn.execute(select(m).where(m.c.id == pk)).first()
    if r is None:
        return None
    return _message_view(r, files_by_message(engine, [pk])[pk])
