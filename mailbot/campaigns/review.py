"""Staff decisions on held messages: attribute one to an institution and a campaign, optionally learning the
address (the school then gets the receipt its message would have had, queued with the decision, threaded to its
message); or dismiss one as no report (spam, a question), kept and undoable. Each decision is in the change log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection, Row

from mailbot import store
from mailbot.campaigns.catalog import Catalog
from mailbot.campaigns.extensions import all_extensions
from mailbot.config import Settings
from mailbot.errors import MailbotError, NotFound
from mailbot.ingest import archive
from mailbot.ingest.identify import accepts, campaign_for, is_late
from mailbot.models import Attachment, Campaign, FileKind, IdentifiedBy, InboundMail, Institution, State, Verdict
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


class CampaignChoice(MailbotError):
    """Several campaigns are open for the institution and the message does not say which one it answers: staff
    must name it (``--campaign``; the web page's list). ``candidates`` are the ones to choose from."""

    def __init__(self, code: str, candidates: tuple[Campaign, ...]) -> None:
        names = ", ".join(f"{c.id} ({c.title})" for c in candidates)
        super().__init__(f"several campaigns are open for {code}; name one with --campaign: {names}")
        self.candidates = candidates


class NotConcerned(MailbotError):
    """Staff named a campaign that does not ask the institution's group for this report."""


class NotHeld(MailbotError):
    """The message is not where the action expects it (not in the review queue, or not dismissed)."""


def open_campaigns(campaigns: tuple[Campaign, ...], moment: datetime) -> tuple[Campaign, ...]:
    """The campaigns taking reports at ``moment`` (late ones included): not closed, opened, within the late limit.
    The web review page asks staff for the campaign only when there are several."""
    return tuple(c for c in campaigns if c.closed is None and accepts(c, moment))


def _route(
    mail: InboundMail, inst: Institution, campaigns: tuple[Campaign, ...], wanted: str | None
) -> Campaign | None:
    """The campaign staff named (it must concern the institution's group), else the one the message answers by
    the automatic rule (the only one open for the group when it arrived, or its keywords). Several candidates
    and no way to choose: CampaignChoice. None: no campaign was open for the institution."""
    if wanted:
        campaign = Catalog(campaigns).get(wanted)
        if not campaign.concerns(inst.group):
            raise NotConcerned(
                f"campaign {campaign.id} does not concern group {inst.group!r} of {inst.code} "
                f"(its groups: {', '.join(campaign.groups)})"
            )
        return campaign
    live = tuple(c for c in campaigns if c.closed is None)
    found, _ = campaign_for(mail, inst, live)
    if found is None:
        candidates = tuple(c for c in live if c.concerns(inst.group) and accepts(c, mail.arrived))
        if len(candidates) > 1:
            raise CampaignChoice(inst.code, candidates)
    return found


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


def as_mail(conn: Connection, row: Row[Any]) -> tuple[InboundMail, tuple[int, ...]]:
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
    campaigns: tuple[Campaign, ...],
    campaign_id: str | None = None,
    learn: bool = False,
    now: datetime | None = None,
) -> Assignment:
    """Attribute a message to ``code`` and to the campaign ``campaign_id`` (default: the one it answers, see
    ``_route``): move its files, record who did it, and queue the sender's receipt (README: a submission
    identified by staff is acknowledged) in the same transaction. Late or not against that campaign's deadline
    or the institution's extension."""
    moment = now or store.now()
    with store.atomic(engine) as conn:
        row = find_message(conn, ref)
        inst = institution(conn, code)
        mail, sizes = as_mail(conn, row)
        campaign = _route(mail, inst, campaigns, campaign_id)
        late = bool(campaign and is_late(campaign, mail.arrived, all_extensions(engine).get((campaign.id, code))))
        if campaign:
            move_files(settings, conn, row.id, archive.institution_folder(campaign.id, inst))
        state = State.SUBMISSION if mail.reports else State.NO_REPORT
        conn.execute(store.dismissals.delete().where(store.dismissals.c.message_pk == row.id))  # staff changed mind
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
            receipt = staff_receipt(conn, settings, held, moment)
    return Assignment(row.id, inst, campaign.id if campaign else None, late, learn and bool(row.sender), receipt)


def institution(conn: Connection, code: str) -> Institution:
    """The roster's institution (with its learned addresses); an unknown code is NotFound."""
    found = next((i for i in store.load_institutions(conn) if i.code == code), None)
    if found is None:
        raise NotFound(f"no institution with code {code!r} in the roster")
    return found


def staff_receipt(conn: Connection, settings: Settings, held: receipts.StaffReceipt, now: datetime) -> str | None:
    """Queue the receipt the message would have had if recognised at once (durable outbox, idempotent key), in the
    caller's transaction."""
    templates, key = load_templates(settings), secret_key(settings.data_dir)
    return receipts.queue_staff_receipt(conn, settings, templates, key, held, now)


def move_files(settings: Settings, conn: Connection, message_pk: int, folder: PurePosixPath) -> None:
    """Move a message's archived files to ``folder`` (an institution's, or back to the review folder)."""
    for f in conn.execute(select(store.files).where(store.files.c.message_pk == message_pk, store.files.c.path != "")):
        target = folder / PurePosixPath(f.path).name
        if f.path != str(target):
            archive.move(settings.archive_dir, f.path, target)
            conn.execute(update(store.files).where(store.files.c.id == f.id).values(path=str(target)))


@dataclass(frozen=True)
class Dismissal:
    message_pk: int
    changed: bool  # False: it was already so (repeating the command changes nothing)


def dismiss(engine: Engine, ref: str, *, reason: str, actor: str) -> Dismissal:
    """Take a held message out of the review queue as no report, with the reason; nothing is deleted and nothing
    is sent."""
    why = " ".join(reason.split())
    if not why:
        raise MailbotError("a reason is required to dismiss a message")
    with store.atomic(engine) as conn:
        row = find_message(conn, ref)
        if row.state == State.DISMISSED:
            return Dismissal(row.id, False)
        if row.state not in (State.REVIEW, State.ERROR):
            raise NotHeld(f"message #{row.id} is not in the review queue (it is {row.state})")
        d = store.dismissals
        conn.execute(d.delete().where(d.c.message_pk == row.id))
        conn.execute(
            d.insert().values(message_pk=row.id, reason=why, prior_state=row.state, actor=actor, at=store.now())
        )
        conn.execute(update(store.messages).where(store.messages.c.id == row.id).values(state=State.DISMISSED.value))
        _log(conn, row.id, "dismiss", actor, why)
    return Dismissal(row.id, True)


def undismiss(engine: Engine, ref: str, *, actor: str) -> Dismissal:
    """Put a dismissed message back in the review queue, as it was held before."""
    with store.atomic(engine) as conn:
        row = find_message(conn, ref)
        if row.state in (State.REVIEW, State.ERROR):
            return Dismissal(row.id, False)
        if row.state != State.DISMISSED:
            raise NotHeld(f"message #{row.id} was not dismissed (it is {row.state})")
        d = store.dismissals
        prior = conn.execute(select(d.c.prior_state).where(d.c.message_pk == row.id)).scalar() or State.REVIEW.value
        conn.execute(d.delete().where(d.c.message_pk == row.id))
        conn.execute(update(store.messages).where(store.messages.c.id == row.id).values(state=prior))
        _log(conn, row.id, "undismiss", actor, "")
    return Dismissal(row.id, True)


def _log(conn: Connection, message_pk: int | None, action: str, actor: str, detail: str) -> None:
    conn.execute(
        store.actions.insert().values(message_pk=message_pk, action=action, actor=actor, detail=detail, at=store.now())
    )
