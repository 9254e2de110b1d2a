"""The campaigns, kept in the database: created, edited and closed by staff, with the files their call sends.

The database is the one source of truth. A `[[campaign]]` block of the configuration is imported once, the
first time its id is seen; after that the block is not read again (`mailbot check` says when it differs), so
what staff change in the web pages or with `mailbot campaign edit` is never reverted by a restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from mailbot import store
from mailbot.config import Chase, Settings, campaign_from_settings, plan_reference
from mailbot.errors import MailbotError, NotFound
from mailbot.files import write_atomic
from mailbot.ingest.archive import safe_component
from mailbot.models import Campaign, PaperMode

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ATTACHMENT = "attachment"  # the plan (kế hoạch), the official letter (công văn): sent with the call
TEMPLATE = "template"  # the report template (mẫu báo cáo) schools fill in; one per campaign
MAX_FILE_BYTES = 20 * 1024 * 1024  # a call for reports goes to every institution: keep it mailable


class CampaignProblem(MailbotError):
    """A campaign that cannot be saved as given; ``problems`` maps a field to what is wrong (Vietnamese, for
    staff; the CLI prints them too)."""

    exit_code = 2

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems


@dataclass(frozen=True)
class CampaignFile:
    id: int
    campaign_id: str
    role: str
    name: str
    path: str  # relative to data_dir
    size: int
    sha256: str


@dataclass(frozen=True)
class Catalog:
    """Every campaign, closed ones included, in deadline order."""

    all: tuple[Campaign, ...]
    chase: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → the configuration's overrides

    @property
    def open(self) -> tuple[Campaign, ...]:
        return tuple(c for c in self.all if c.closed is None)

    @property
    def closed(self) -> tuple[Campaign, ...]:
        return tuple(c for c in self.all if c.closed is not None)

    def get(self, campaign_id: str) -> Campaign:
        for c in self.all:
            if c.id == campaign_id:
                return c
        known = ", ".join(c.id for c in self.all) or "none yet"
        raise NotFound(f"no campaign {campaign_id!r} (known: {known})")


def load(engine: Engine, settings: Settings) -> Catalog:
    """The campaigns, after importing any configured `[[campaign]]` whose id the database does not hold yet."""
    import_configured(engine, settings)
    with engine.connect() as conn:
        return catalog(conn, settings.zone)


def catalog(conn: Connection, zone: tzinfo = UTC) -> Catalog:
    """Every campaign, its times in ``zone`` (the configured one, so that they read as staff entered them)."""
    c = store.campaigns
    rows = list(conn.execute(select(c).order_by(c.c.deadline, c.c.id)))
    return Catalog(tuple(_campaign(r, zone) for r in rows), {r.id: dict(r.chase or {}) for r in rows})


def _campaign(r: Any, zone: tzinfo) -> Campaign:
    return Campaign(
        id=r.id,
        title=r.title,
        deadline=r.deadline.astimezone(zone),
        opens=r.opens.astimezone(zone) if r.opens else None,
        groups=tuple(r.groups),
        keywords=tuple(r.keywords),
        accept_late_days=r.accept_late_days,
        plan=r.plan,
        contact=r.contact,
        paper=PaperMode(r.paper) if r.paper in PaperMode.__members__.values() else PaperMode.NONE,
        closed=r.closed_at.astimezone(zone) if r.closed_at else None,
    )


def import_configured(engine: Engine, settings: Settings) -> list[str]:
    """Each configured campaign whose id is new to the database, imported; returns the ids imported."""
    if not settings.campaign:
        return []
    with engine.connect() as conn:
        known = set(conn.execute(select(store.campaigns.c.id)).scalars())
    new = [c for c in settings.campaign if c.id not in known]
    imported = []
    if new:
        now = store.now()
        with store.atomic(engine) as conn:
            for block in new:
                row = _row(campaign_from_settings(block, settings.zone)) | {
                    "chase": block.notify.model_dump(exclude_none=True),
                    "source": "config",
                    "created_at": now,
                    "updated_at": now,
                }
                if store.insert_ignore(conn, store.campaigns, row):
                    imported.append(block.id)
                    _log(conn, "campaign_import", "mailbot (cấu hình)", f"Nhập đợt {block.id} từ tệp cấu hình", now)
    return imported


def differences(engine: Engine, settings: Settings) -> list[str]:
    """Configured campaigns that no longer match the database (which is what mailbot uses): for `check`."""
    found = load(engine, settings)
    out = []
    for block in settings.campaign:
        stored = next((c for c in found.all if c.id == block.id), None)
        configured = campaign_from_settings(block, settings.zone)
        if stored and replace(stored, closed=None) != configured:
            out.append(block.id)
    return out


def chase_for(settings: Settings, found: Catalog, campaign_id: str) -> Chase:
    """The reminder cadence of one campaign: the configuration's overrides imported with it, else [notify]'s."""
    own = found.chase.get(campaign_id, {})
    n = settings.notify
    before = own.get("reminders_before_days", n.reminders_before_days)
    return Chase(
        tuple(sorted(set(before), reverse=True)),
        own.get("late_every_days", n.late_every_days),
        own.get("late_until_days", n.late_until_days),
    )


def groups_in_roster(conn: Connection) -> list[str]:
    """The groups of the active institutions: what a campaign may choose from."""
    i = store.institutions
    return sorted(set(conn.execute(select(i.c.grp).where(i.c.active)).scalars()))


def validate(draft: Campaign, groups: Iterable[str]) -> dict[str, str]:
    """What is wrong with a campaign staff filled in, by field, in Vietnamese; empty when it can be saved."""
    import re

    known = list(groups)
    problems: dict[str, str] = {}
    if not re.match(ID_PATTERN, draft.id):
        problems["id"] = (
            "Mã đợt chỉ gồm chữ cái không dấu, chữ số và các dấu . _ -, bắt đầu bằng chữ hoặc số (ví dụ: antq-2024)."
        )
    if not draft.title.strip():
        problems["title"] = "Vui lòng nhập tên đợt báo cáo."
    if draft.opens and draft.opens >= draft.deadline:
        problems["deadline"] = "Hạn nộp phải sau ngày bắt đầu nhận báo cáo."
    unknown = [g for g in draft.groups if g not in known]
    if unknown:
        problems["groups"] = (
            f"Nhóm không có trong danh sách đơn vị: {', '.join(unknown)}. "
            f"Các nhóm hiện có: {', '.join(known) or '(chưa có đơn vị nào)'}."
        )
    if not 0 <= draft.accept_late_days <= 366:
        problems["accept_late_days"] = "Số ngày nhận báo cáo muộn phải từ 0 đến 366."
    return problems


def add(engine: Engine, draft: Campaign, *, actor: str, now: datetime) -> Campaign:
    """A new campaign; its groups must exist in the roster. ``opens`` left out means from now on."""
    draft = _tidy(replace(draft, opens=draft.opens or now))
    with store.atomic(engine) as conn:
        problems = validate(draft, groups_in_roster(conn))
        if conn.execute(select(store.campaigns.c.id).where(store.campaigns.c.id == draft.id)).first():
            problems["id"] = f"Mã đợt {draft.id} đã được dùng cho một đợt khác."
        if problems:
            raise CampaignProblem(problems)
        campaign = replace(draft, closed=None)
        conn.execute(
            store.campaigns.insert().values(
                **_row(campaign), chase={}, source="staff", created_at=store.now(), updated_at=store.now()
            )
        )
        _log(conn, "campaign_add", actor, f"Tạo đợt {campaign.id}: {campaign.title}", now)
    return campaign


def edit(engine: Engine, campaign_id: str, draft: Campaign, *, actor: str, now: datetime) -> Campaign:
    """Save a changed campaign (the id stays, and whether it is closed); each changed field is named in the change
    log."""
    draft = _tidy(replace(draft, id=campaign_id))
    with store.atomic(engine) as conn:
        before = catalog(conn).get(campaign_id)
        problems = validate(draft, {*groups_in_roster(conn), *before.groups})
        if problems:
            raise CampaignProblem(problems)
        after = replace(draft, opens=draft.opens or before.opens, closed=before.closed)
        changed = [k for k, v in asdict(after).items() if v != asdict(before)[k]]
        values = _row(after)
        conn.execute(
            store.campaigns.update().where(store.campaigns.c.id == campaign_id).values(**values, updated_at=store.now())
        )
        if changed:
            _log(conn, "campaign_edit", actor, f"Sửa đợt {campaign_id}: {', '.join(changed)}", now)
    return after


def close(engine: Engine, campaign_id: str, *, actor: str, now: datetime, reopen: bool = False) -> Campaign:
    """Close a campaign (no longer routed to, chased or in the header; still browsable), or reopen it."""
    with store.atomic(engine) as conn:
        before = catalog(conn).get(campaign_id)
        at = None if reopen else (before.closed or now)
        conn.execute(
            store.campaigns.update().where(store.campaigns.c.id == campaign_id).values(closed_at=at, updated_at=now)
        )
        if (before.closed is None) != (at is None):
            _log(
                conn,
                "campaign_reopen" if reopen else "campaign_close",
                actor,
                f"{'Mở lại' if reopen else 'Kết thúc'} đợt {campaign_id}",
                now,
            )
    return replace(before, closed=at)


def attach(
    engine: Engine, data_dir: Path, campaign_id: str, role: str, name: str, data: bytes, *, actor: str, now: datetime
) -> CampaignFile:
    """Keep a file the call for reports sends (a new template replaces the old one; attachments add up)."""
    check_upload(role, name, data)
    digest = hashlib.sha256(data).hexdigest()
    safe = safe_component(name)
    rel = Path("campaigns") / safe_component(campaign_id) / f"{digest[:12]}-{safe}"
    (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(data_dir / rel, data)
    f = store.campaign_files
    with store.atomic(engine) as conn:
        catalog(conn).get(campaign_id)
        if role == TEMPLATE:
            conn.execute(f.delete().where(f.c.campaign_id == campaign_id, f.c.role == TEMPLATE))
        conn.execute(f.delete().where(f.c.campaign_id == campaign_id, f.c.role == role, f.c.sha256 == digest))
        values = {"campaign_id": campaign_id, "role": role, "name": name, "path": str(rel), "sha256": digest}
        result = conn.execute(f.insert().values(**values, size=len(data), added_at=now))
        pk = int(result.inserted_primary_key[0]) if result.inserted_primary_key else 0
        label = "mẫu báo cáo" if role == TEMPLATE else "tệp đính kèm"
        _log(conn, "campaign_file", actor, f"Đợt {campaign_id}: thêm {label} {name}", now)
    return CampaignFile(pk, campaign_id, role, name, str(rel), len(data), digest)


def check_upload(role: str, name: str, data: bytes) -> None:
    """Refuse an empty file, one too large to mail to every institution, or a template that is not .docx."""
    if len(data) > MAX_FILE_BYTES:
        raise CampaignProblem({role: f"Tệp {name} quá lớn (tối đa {MAX_FILE_BYTES // (1024 * 1024)} MB)."})
    if not data:
        raise CampaignProblem({role: f"Tệp {name} trống."})
    if role == TEMPLATE and (not name.lower().endswith(".docx") or not data.startswith(b"PK")):
        raise CampaignProblem({role: f"Mẫu báo cáo phải là tệp Word .docx (tệp {name} không phải)."})


def detach(engine: Engine, campaign_id: str, file_id: int, *, actor: str, now: datetime) -> None:
    f = store.campaign_files
    with store.atomic(engine) as conn:
        row = conn.execute(select(f).where(f.c.id == file_id, f.c.campaign_id == campaign_id)).first()
        if row is None:
            raise NotFound(f"campaign {campaign_id} has no file {file_id}")
        conn.execute(f.delete().where(f.c.id == file_id))
        _log(conn, "campaign_file", actor, f"Đợt {campaign_id}: bỏ tệp {row.name}", now)


def files_of(conn: Connection, campaign_id: str) -> tuple[CampaignFile, ...]:
    """The files the call for reports sends, attachments first, then the template."""
    f = store.campaign_files
    rows = conn.execute(select(f).where(f.c.campaign_id == campaign_id).order_by(f.c.role, f.c.id))
    found = [CampaignFile(r.id, r.campaign_id, r.role, r.name, r.path, r.size, r.sha256) for r in rows]
    return tuple(sorted(found, key=lambda x: (x.role == TEMPLATE, x.id)))


def _tidy(d: Campaign) -> Campaign:
    return replace(
        d,
        id=d.id.strip(),
        title=" ".join(d.title.split()),
        groups=tuple(dict.fromkeys(g.strip() for g in d.groups if g.strip())),
        keywords=tuple(dict.fromkeys(k.strip() for k in d.keywords if k.strip())),
        plan=plan_reference(d.plan),
        contact=" ".join(d.contact.split()),
    )


def _row(c: Campaign) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "plan": c.plan,
        "opens": c.opens,
        "deadline": c.deadline,
        "groups": list(c.groups),
        "keywords": list(c.keywords),
        "accept_late_days": c.accept_late_days,
        "paper": c.paper.value,
        "contact": c.contact,
    }


def _log(conn: Connection, action: str, actor: str, detail: str, at: datetime) -> None:
    conn.execute(store.actions.insert().values(message_pk=None, action=action, actor=actor, detail=detail, at=at))
