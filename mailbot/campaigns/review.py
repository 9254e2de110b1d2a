"""Staff decisions on held messages: attribute one to an institution, optionally learning the address; the school
then gets the receipt its message would have had (queued with the decision, threaded to its message)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection, Row

from mailbot import store
from mailbot.campaigns import catalog
from mailbot.campaigns.extensions import all_extensions
from mailbot.config import Settings
from mailbot.errors import NotFound
from mailbot.ingest import archive
from mailbot.ingest.identify import campaign_for, is_late
from mailbot.models import Attachment, FileKind, IdentifiedBy, InboundMail, Institution, State, Verdict
from mailbot.notify import receipts
from mailbot.notify.compose import load_templates, secret_key


@dataclass(frozen=True)
class Assignment:
    message_pk: int
    institution: Institution
    campaign_id: str | None
    late: bool
    learned: bool
    receipt: str | None = None  # the kind of receipt queued for the sender (ack | ack_no_report), if any


def find_message(conn: Connection, ref: str) -> Row[Any]:
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


def _as_mail(conn: Connection, row: Row[Any]) -> tuple[InboundMail, tuple[int, ...]]:
    """Enough of the original message for campaign routing and its receipt (subject, files, headings, warnings,
    thread, machine markers), with the files' sizes."""
    files = list(conn.execute(select(store.files).where(store.files.c.message_pk == row.id).order_by(store.files.c.id)))
    kept = tuple(
        Attachment(f.name, FileKind(f.kind), b"", heading=f.heading, warnings=tuple(f.warnings)) for f in files
    )
    mail = InboundMail(
        row.sender,
        row.sender_name,
        row.subject,
        row.message_id,
        row.received_at,
        kept,
        warnings=tuple(row.warnings),
        references=row.references or "",
        auto_markers=tuple(row.auto_markers or ()),
    )
    return mail, tuple(f.size for f in files)


def assign(
    settings: Settings,
    engine: Engine,
    ref: str,
    code: str,
    *,
    actor: str,
    learn: bool = False,
    now: datetime | None = None,
) -> Assignment:
    """Attribute a message to ``code``: route it to a campaign, move its files, record who did it, and queue the
    sender's receipt (README: a submission identified by staff is acknowledged) in the same transaction."""
    templates, key, moment = load_templates(settings), secret_key(settings.data_dir), now or store.now()
    with store.atomic(engine) as conn:
        row = find_message(conn, ref)
        inst = next((i for i in store.load_institutions(conn) if i.code == code), None)
        if inst is None:
            raise NotFound(f"no institution with code {code!r} in the roster")
        mail, sizes = _as_mail(conn, row)
        campaign, _ = campaign_for(mail, inst, catalog.load(engine, settings).all)
        late = bool(campaign and is_late(campaign, mail.arrived, all_extensions(engine).get((campaign.id, code))))
        if campaign:
            _move_files(settings, conn, row.id, archive.institution_folder(campaign.id, inst))
        state = State.SUBMISSION if mail.reports else State.NO_REPORT
        conn.execute(
            update(store.messages)
            .where(store.messages.c.id == row.id)
            .values(
                institution_id=store.institution_pk(conn, code),
                identified_by=IdentifiedBy.STAFF.value,
                campaign_id=campaign.id if campaign else None,
                late=late,
                state=(state if campaign else State.REVIEW).value,
                reason="" if campaign else "không có đợt báo cáo nào đang mở cho đơn vị này",
            )
        )
        detail = f"{code}" + (f", learned {row.sender}" if learn and row.sender else "")
        conn.execute(
            store.actions.insert().values(
                message_pk=row.id, action="assign", actor=actor, detail=detail, at=store.now()
            )
        )
        if learn and row.sender:
            store.learn_address(conn, row.sender, store.institution_pk(conn, code), actor)  # type: ignore[arg-type]
        receipt = None
        if campaign:
            verdict = Verdict(inst, IdentifiedBy.STAFF, campaign, late, state=state)
            known = learn or row.sender in inst.emails  # the subject is quoted back only to the school's own address
            held = receipts.StaffReceipt(row.id, mail, sizes, verdict, campaign, known)
            receipt = receipts.queue_staff_receipt(conn, settings, templates, key, held, moment)
    return Assignment(row.id, inst, campaign.id if campaign else None, late, learn and bool(row.sender), receipt)


def _move_files(settings: Settings, conn: Connection, message_pk: int, folder: PurePosixPath) -> None:
    for f in conn.execute(select(store.files).where(store.files.c.message_pk == message_pk, store.files.c.path != "")):
        target = folder / PurePosixPath(f.path).name
        if f.path != str(target):
            archive.move(settings.archive_dir, f.path, target)
            conn.execute(update(store.files).where(store.files.c.id == f.id).values(path=str(target)))
