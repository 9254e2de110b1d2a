"""Submissions recognised only by an institution's name (in the subject, a file name or the report's heading):
staff confirm them (then they count as surely as one from the school's own address, and the school gets the
receipt it would have had) or reject them (the message goes back to the review queue, no longer counted for that
institution). Each decision is in the change log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection, Row

from mailbot import store
from mailbot.campaigns.extensions import all_extensions
from mailbot.campaigns.review import as_mail, institution, move_files, staff_receipt
from mailbot.config import Settings
from mailbot.errors import NotFound
from mailbot.ingest import archive
from mailbot.ingest.identify import is_late
from mailbot.models import Campaign, IdentifiedBy, Institution, State, Verdict
from mailbot.notify import receipts

COUNTED = (State.SUBMISSION.value, State.NO_REPORT.value)
# A receipt the school already has for the message: confirming it sends no second one.
ACKNOWLEDGED = ("ack", "ack_no_report")


@dataclass(frozen=True)
class Decision:
    institution: Institution
    campaign_id: str
    message_pks: tuple[int, ...]
    receipts: int = 0  # receipts queued by this decision


def by_name(conn: Connection, campaign_id: str, code: str) -> list[Row[Any]]:
    """The institution's messages in the campaign that count on the strength of its name alone, oldest first."""
    m, i = store.messages, store.institutions
    query = (
        select(m)
        .join(i, i.c.id == m.c.institution_id)
        .where(
            i.c.code == code,
            m.c.campaign_id == campaign_id,
            m.c.identified_by == IdentifiedBy.NAME.value,
            m.c.state.in_(COUNTED),
        )
        .order_by(m.c.received_at, m.c.id)
    )
    return list(conn.execute(query))


def _pending(conn: Connection, campaign: Campaign, code: str) -> tuple[Institution, list[Row[Any]]]:
    inst = institution(conn, code)
    rows = by_name(conn, campaign.id, code)
    if not rows:
        raise NotFound(f"{code} has no submission for campaign {campaign.id} identified by name only")
    return inst, rows


def confirm(
    settings: Settings, engine: Engine, campaign: Campaign, code: str, *, actor: str, now: datetime | None = None
) -> Decision:
    """Staff confirm the name: the submissions become identified by staff, and a school that has no receipt for
    one yet gets it now (threaded to its message, once: the outbox key is the message's)."""
    moment, queued = now or store.now(), 0
    own_deadline = all_extensions(engine).get((campaign.id, code))
    with store.atomic(engine) as conn:
        inst, rows = _pending(conn, campaign, code)
        for row in rows:
            conn.execute(
                update(store.messages)
                .where(store.messages.c.id == row.id)
                .values(identified_by=IdentifiedBy.STAFF.value)
            )
            _log(conn, row.id, "confirm", actor, f"{code} {campaign.id}")
            if _acknowledged(conn, row.id):
                continue
            mail, sizes = as_mail(conn, row)
            verdict = Verdict(
                inst,
                IdentifiedBy.STAFF,
                campaign,
                is_late(campaign, mail.arrived, own_deadline),
                state=State(row.state),
            )
            held = receipts.StaffReceipt(row.id, mail, sizes, verdict, campaign, row.sender in inst.emails)
            queued += staff_receipt(conn, settings, held, moment) is not None
    return Decision(inst, campaign.id, tuple(r.id for r in rows), queued)


def reject(settings: Settings, engine: Engine, campaign: Campaign, code: str, *, actor: str) -> Decision:
    """Staff say the name was wrong: the messages go back to the review queue with the reason (their files back to
    the review folder), no longer counted for the institution. Nothing is sent: staff settle them from the queue."""
    with store.atomic(engine) as conn:
        inst, rows = _pending(conn, campaign, code)
        for row in rows:
            move_files(settings, conn, row.id, archive.review_folder(row.received_at, settings.zone))
            conn.execute(
                update(store.messages)
                .where(store.messages.c.id == row.id)
                .values(
                    institution_id=None,
                    identified_by=None,
                    campaign_id=None,
                    late=False,
                    state=State.REVIEW.value,
                    reason=f"cán bộ xác định thư không phải của {inst.name} ({inst.code}); cần giao lại cho đúng đơn vị",
                )
            )
            _log(conn, row.id, "reject", actor, f"{code} {campaign.id}")
    return Decision(inst, campaign.id, tuple(r.id for r in rows))


def _acknowledged(conn: Connection, message_pk: int) -> bool:
    o = store.outbox
    query = select(o.c.id).where(o.c.message_pk == message_pk, o.c.kind.in_(ACKNOWLEDGED), o.c.status != "suppressed")
    return conn.execute(query.limit(1)).first() is not None


def _log(conn: Connection, message_pk: int, action: str, actor: str, detail: str) -> None:
    conn.execute(
        store.actions.insert().values(message_pk=message_pk, action=action, actor=actor, detail=detail, at=store.now())
    )
