"""Staff decisions on held messages: attribute one to an institution, optionally learning the address."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection, Row

from mailbot import archive, store
from mailbot.config import Settings
from mailbot.errors import NotFound
from mailbot.extensions import all_extensions
from mailbot.identify import campaign_for, is_late
from mailbot.models import Attachment, FileKind, IdentifiedBy, InboundMail, Institution


@dataclass(frozen=True)
class Assignment:
    message_pk: int
    institution: Institution
    campaign_id: str | None
    late: bool
    learned: bool


def find_message(conn: Connection, ref: str) -> Row:
    """By Message-ID (with or without <>) or by receipt number (#12 or 12)."""
    m = store.messages
    if ref.lstrip("#").isdigit():
        row = conn.execute(select(m).where(m.c.id == int(ref.lstrip("#")))).first()
    else:
        wanted = ref if ref.startswith("<") else f"<{ref}>"
        row = conn.execute(select(m).where(m.c.message_id.in_((wanted, ref))).order_by(m.c.id)).first()
    if row is None:
        raise NotFound(f"no recorded message {ref!r}")
    return row


def _as_mail(conn: Connection, row: Row) -> InboundMail:
    """Enough of the original message for campaign routing (subject, file names, headings)."""
    files = conn.execute(select(store.files).where(store.files.c.message_pk == row.id))
    kept = tuple(Attachment(f.name, FileKind(f.kind), b"", heading=f.heading) for f in files)
    return InboundMail(row.sender, row.sender_name, row.subject, row.message_id, row.received_at, kept)


def assign(settings: Settings, engine: Engine, ref: str, code: str, *, actor: str, learn: bool = False) -> Assignment:
    """Attribute a message to ``code``: route it to a campaign, move its files, record who did it."""
    with store.atomic(engine) as conn:
        row = find_message(conn, ref)
        inst = next((i for i in store.load_institutions(conn) if i.code == code), None)
        if inst is None:
            raise NotFound(f"no institution with code {code!r} in the roster")
        mail = _as_mail(conn, row)
        campaign, _ = campaign_for(mail, inst, settings.campaigns())
        late = bool(campaign and is_late(campaign, mail.arrived, all_extensions(engine).get((campaign.id, code))))
        if campaign:
            _move_files(settings, conn, row.id, archive.institution_folder(campaign.id, inst))
        state = "submission" if any(f.is_report for f in mail.files) else "no_report"
        conn.execute(update(store.messages).where(store.messages.c.id == row.id).values(
            institution_id=store.institution_pk(conn, code), identified_by=IdentifiedBy.STAFF.value,
            campaign_id=campaign.id if campaign else None, late=late,
            state=state if campaign else "review", reason="" if campaign else "không có đợt báo cáo nào đang mở cho đơn vị này",
        ))
        detail = f"{code}" + (f", learned {row.sender}" if learn and row.sender else "")
        conn.execute(store.actions.insert().values(message_pk=row.id, action="assign", actor=actor, detail=detail, at=store.now()))
        if learn and row.sender:
            store.learn_address(conn, row.sender, store.institution_pk(conn, code), actor)  # type: ignore[arg-type]
    return Assignment(row.id, inst, campaign.id if campaign else None, late, learn and bool(row.sender))


def _move_files(settings: Settings, conn: Connection, message_pk: int, folder: PurePosixPath) -> None:
    for f in conn.execute(select(store.files).where(store.files.c.message_pk == message_pk, store.files.c.path != "")):
        target = folder / PurePosixPath(f.path).name
        if f.path != str(target):
            archive.move(settings.archive_dir, f.path, target)
            conn.execute(update(store.files).where(store.files.c.id == f.id).values(path=str(target)))
