"""The school told when the stamped copy it sent (a PDF) could not be verified, and why, in the thread of its
message: its receipt went out before the check (the check runs off the receipt's path), so this is the receipt's
sequel. Once per file; only to the institution's roster address; never for a doubt the school cannot fix (the
department's trust anchors not installed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from mailbot import store
from mailbot.campaigns import catalog
from mailbot.config import Settings
from mailbot.documents.pdffacts import SIGNED
from mailbot.models import Campaign, PaperMode
from mailbot.notify import outbox
from mailbot.notify.compose import Templates, compose, department, reply_subject, secret_key
from mailbot.reports import stamps
from mailbot.reports.stamps import WordRef
from mailbot.wording import arrival_time, local_time, receipt_number

KIND = "stamp_doubt"
SCHOOL_CANNOT_FIX = frozenset({stamps.UNTRUSTED})  # the department's own configuration, not the school's file


@dataclass(frozen=True)
class Sent:
    """A PDF checked and found in doubt, as the school is told about it."""

    file_id: int
    message_pk: int
    sender: str
    message_id: str
    references: str
    subject: str
    received_at: datetime
    institution_id: int
    institution: str
    code: str
    campaign: Campaign
    file_name: str
    stamp: stamps.Stamp


def tell_school(settings: Settings, engine: Engine, templates: Templates, file_id: int, now: datetime) -> bool:
    """Queue the notice for one checked PDF when it is in doubt and the school can act on it; True when queued."""
    with engine.connect() as conn:
        doubt = _doubtful(conn, settings, file_id)
    if doubt is None:
        return False
    msg = compose(
        settings.outbox,
        secret_key(settings.data_dir),
        KIND,
        (doubt.sender,),
        templates.render(KIND, context(settings, doubt)),
        in_reply_to=doubt.message_id,
        references=f"{doubt.references} {doubt.message_id}".strip(),
        when=now,
    )
    item = outbox.Outgoing(
        f"{KIND}:{file_id}", KIND, msg, (doubt.sender,), doubt.message_pk, doubt.institution_id, doubt.campaign.id
    )
    with store.atomic(engine) as conn:
        return outbox.queue(conn, item, now, outbox.DailyCaps.of(settings, now)).status == "pending"


def _doubtful(conn: Connection, settings: Settings, file_id: int) -> Sent | None:
    m, f, i = store.messages, store.files, store.institutions
    row = conn.execute(
        select(m, f.c.name.label("file_name"), i.c.name.label("inst_name"), i.c.code, i.c.emails)
        .join(f, f.c.message_pk == m.c.id)
        .join(i, i.c.id == m.c.institution_id)
        .where(f.c.id == file_id, m.c.state.in_(("submission", "no_report")), m.c.campaign_id.is_not(None))
    ).first()
    if row is None or row.sender.lower() not in {e.lower() for e in row.emails}:
        return None  # not counted yet, or not from the institution's own address: staff decide, nobody is mailed
    campaign = catalog.load(conn.engine, settings).get(row.campaign_id)
    if campaign is None or campaign.paper not in (PaperMode.PDF, PaperMode.EITHER):
        return None
    facts = store.stamp_facts(conn, [file_id]).get(file_id)
    stamp = stamps.judge(facts, row.inst_name, _words(conn, row.id, row.institution_id, row.campaign_id))
    if stamp.verdict != stamps.DOUBT or set(stamp.doubts) <= SCHOOL_CANNOT_FIX:
        return None
    return Sent(
        file_id, row.id, row.sender, row.message_id, row.references, row.subject, row.received_at,
        row.institution_id, row.inst_name, row.code, campaign, row.file_name, stamp,
    )  # fmt: skip


def _words(conn: Connection, message_pk: int, institution_id: int, campaign_id: str) -> tuple[WordRef, ...]:
    """The Word files of the same message, else of any counted message of the institution for the campaign."""
    m, f = store.messages, store.files
    rows = conn.execute(
        select(f.c.message_pk, f.c.meta)
        .join(m, m.c.id == f.c.message_pk)
        .where(m.c.institution_id == institution_id, m.c.campaign_id == campaign_id, m.c.state == "submission")
        .where(f.c.kind != "pdf")
    ).all()
    refs = [(r.message_pk, stamps.word_ref(r.meta or {})) for r in rows if r.meta]
    own = tuple(ref for pk, ref in refs if pk == message_pk)
    return own or tuple(ref for _, ref in refs)


def context(settings: Settings, sent: Sent) -> dict[str, Any]:
    zone = settings.zone
    return {
        "department": department(settings.outbox),
        "inbox_address": settings.outbox.address,
        "institution": {"code": sent.code, "name": sent.institution},
        "campaign": {"id": sent.campaign.id, "title": sent.campaign.title, "paper": sent.campaign.paper.value},
        "deadline": local_time(sent.campaign.deadline, zone),
        "contact": sent.campaign.contact,
        "receipt": receipt_number(sent.message_pk),
        "arrived": arrival_time(sent.received_at, zone),
        "reply_subject": reply_subject(sent.subject),
        "file_name": sent.file_name,
        "doubts": [stamps.doubt_vi(sent.stamp, c) for c in sent.stamp.doubts if c not in SCHOOL_CANNOT_FIX],
        "signed": sent.stamp.kind == SIGNED,
    }
