"""Who gets an acknowledgement and what it says.

The rule (also in the README):
- never to a machine (RFC 3834 markers, bounces, mailer-daemon/noreply senders) nor to ourselves;
- a counted submission (identified by address, by name or by staff) gets ``ack``; a held message that staff
  attribute (`review assign`, the web review queue) gets it then, threaded to the held message; when the
  campaign asks for the stamped copy and it is not in yet (no PDF by mail, no paper copy ticked, as the
  campaign's paper mode takes it), the receipt says so and how to send it;
- a message from an identified institution without a Word file gets ``ack_no_report``; one with a PDF (the
  stamped copy sent alone) is acknowledged as such, asking for the Word file only while the report is not in;
- a message held for review that carries a Word file gets the neutral ``ack_review`` (which, for a roster
  address held only because the campaign is unclear, says so instead of calling the address unknown);
- a message over the size limit from a roster address (held for staff) gets ``too_large``: what to send instead;
- anything else (held without a Word file, unreadable, a duplicate, our own bounces) gets nothing.

With ``[web] public_url`` set, a receipt that goes to the institution's own address about one campaign carries
the institution's personal status link for it (``notify.links``); one to any other address never does.

And whom it may reach (no backscatter: mailbot must not be a way to mail third parties):
- nothing to a sender that fails authentication or whose From holds several addresses (held for staff);
- a roster address gets its receipt as always;
- another address only when our server's Authentication-Results shows it authentic; where the server recorded
  nothing at all, within a global daily cap (``max_unknown_replies_per_day``); the sender's subject is never
  quoted to an address off the roster.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from mailbot import store
from mailbot.config import OutboxSettings, SecuritySettings, Settings
from mailbot.ingest.authenticity import evidence, problem
from mailbot.models import Campaign, FileKind, IdentifiedBy, InboundMail, PaperMode, State, Verdict, WarningCode
from mailbot.notify import links, outbox
from mailbot.notify.compose import Draft, Templates, compose, department, human_size, reply_subject
from mailbot.wording import arrival_time, local_time, receipt_number, warning_texts

if TYPE_CHECKING:
    from mailbot.context import Context

log = logging.getLogger("mailbot.notify.receipts")


def ack_kind(mail: InboundMail, verdict: Verdict, own: set[str]) -> str | None:
    """The template of the receipt the message earns by what it counts as (``verdict.state``), or None."""
    if mail.auto_markers or not mail.sender or mail.sender in own:
        return None
    if too_large(mail):
        return "too_large" if verdict.institution else None
    if verdict.state is State.SUBMISSION:
        return "ack"
    if verdict.state is State.NO_REPORT and verdict.institution:
        return "ack_no_report"
    if verdict.state is State.REVIEW and mail.reports:
        return "ack_review"
    return None


def would_answer(mail: InboundMail, verdict: Verdict, ctx: Context) -> bool:
    """Whether the message earns a receipt that may reach its sender (whatever ``notify.acknowledge`` says)."""
    reach = audience(mail, ctx.roster.by_address, ctx.settings.security)
    return ack_kind(mail, verdict, ctx.settings.own_addresses) is not None and reach is not None


class Audience(StrEnum):
    """Whom a receipt would reach."""

    ROSTER = "roster"  # a roster address: the receipt as always
    VERIFIED = "verified"  # off the roster, shown authentic by our server: no quoted subject
    UNVERIFIED = "unverified"  # off the roster, our server recorded nothing: no quoted subject, global daily cap


def audience(mail: InboundMail, roster_addresses: Collection[str], security: SecuritySettings) -> Audience | None:
    """None when no automatic reply may go: the From is forged, or off the roster and not shown authentic.
    Replies follow our server's header whatever ``require_auth`` says: that setting is about holding mail."""
    if mail.several_senders or problem(mail, security):
        return None
    if mail.sender in roster_addresses:
        return Audience.ROSTER
    seen = evidence(mail, security)
    if seen.authentic:
        return Audience.VERIFIED
    return None if seen.recorded else Audience.UNVERIFIED


def too_large(mail: InboundMail) -> int:
    """The size of a message held because it is over the size limit, else 0."""
    return next((int(n.detail or 0) for n in mail.warnings if n.code is WarningCode.MESSAGE_TOO_LARGE), 0)


def ack_context(
    mail: InboundMail,
    verdict: Verdict,
    campaign: Campaign | None,
    message_pk: int,
    outbox: OutboxSettings,
    zone: ZoneInfo,
    inbox_address: str,
    contact: str = "",
    *,
    quote_subject: bool = True,
    max_message_bytes: int = 0,
    sizes: Sequence[int] | None = None,
    status_url: str = "",
    stamped_owed: bool = False,
    word_in: bool = False,
) -> dict[str, Any]:
    """Plain values only: subjects and file names from the sender are data for the template, never template.
    Without ``quote_subject`` the sender's subject is left out (the templates then use their own). ``sizes``
    gives the files' sizes when their bytes are not at hand (a message attributed later by staff)."""
    inst = verdict.institution
    warnings = [*mail.warnings, *(w for f in mail.files for w in f.warnings)]
    return {
        "department": department(outbox),
        "inbox_address": inbox_address,
        "receipt": receipt_number(message_pk),
        "reply_subject": reply_subject(mail.subject) if quote_subject else "",
        "institution": {"code": inst.code, "name": inst.name, "group": inst.group} if inst else None,
        "campaign": {
            "id": campaign.id,
            "title": campaign.title,
            "plan": campaign.plan,
            "contact": campaign.contact,
            "paper": campaign.paper.value,
        }
        if campaign
        else None,
        "stamped_owed": stamped_owed,
        # a message without a Word file but with a PDF: the stamped copy, of a report sent before (``word_in``) or not
        "pdfs": [f.name for f in mail.files if f.kind is FileKind.PDF],
        "word_in": word_in,
        "contact": campaign.contact if campaign and campaign.contact else contact,
        "deadline": local_time(campaign.deadline, zone) if campaign else "",
        "arrived": arrival_time(mail.arrived, zone),
        "files": [
            {"name": f.name, "size": human_size(sizes[n] if sizes is not None else len(f.data))}
            for n, f in enumerate(mail.files)
            if f.is_report or f.kind == "pdf"
        ],
        "warnings": warning_texts(n for n in warnings if n.code is not WarningCode.NO_REPORT_FILE),
        "late": verdict.late,
        "identified_by": verdict.identified_by.value if verdict.identified_by else "",
        "sender": mail.sender,
        "message_size": human_size(too_large(mail)),
        "max_message_size": human_size(max_message_bytes),
        "status_url": status_url,
    }


def receipt_link(settings: Settings, key: bytes, verdict: Verdict, campaign: Campaign | None, now: datetime) -> str:
    """The institution's status link for a receipt known to go to one of its own addresses; "" otherwise."""
    if verdict.institution is None or campaign is None:
        return ""
    return links.status_url(settings.web.public_url, key, verdict.institution.code, campaign, now)


def word_in(conn: Connection, campaign: Campaign | None, inst_pk: int | None) -> bool:
    """Whether the institution's Word report for the campaign is in already (a later PDF is then its stamped copy,
    and its receipt must not ask for the report again)."""
    return campaign is not None and inst_pk is not None and store.has_submission(conn, inst_pk, campaign.id)


def stamped_owed(conn: Connection, campaign: Campaign | None, inst_pk: int | None, mail: InboundMail) -> bool:
    """Whether the campaign asks this institution for a stamped copy that is not in yet, counting this message's
    own PDF: what a Word file's receipt then reminds the school of."""
    if campaign is None or inst_pk is None or campaign.paper is PaperMode.NONE:
        return False
    # One institution's rows, not the campaign's: a backlog queues a receipt for each of thousands of messages.
    if campaign.paper in (PaperMode.PDF, PaperMode.EITHER) and (
        any(f.kind is FileKind.PDF for f in mail.files) or store.has_signed_copy(conn, inst_pk, campaign.id)
    ):
        return False
    return not (
        campaign.paper in (PaperMode.POST, PaperMode.EITHER) and store.has_paper_copy(conn, inst_pk, campaign.id)
    )


def queue_receipt(conn: Connection, ctx: Context, pk: int, mail: InboundMail, verdict: Verdict) -> None:
    """Queue the receipt in the caller's transaction, the one that records the message: recorded means
    acknowledged, exactly once."""
    made = receipt(conn, ctx, pk, mail, verdict)
    if made is not None:
        item, caps = made
        outbox.queue(conn, item, ctx.clock.now(), caps)


def queue_receipts(conn: Connection, ctx: Context, recorded: list[tuple[int, InboundMail, Verdict]]) -> None:
    """``queue_receipt`` for a batch of messages recorded in the caller's transaction, queued together."""
    made = [receipt(conn, ctx, pk, mail, verdict) for pk, mail, verdict in recorded]
    outbox.queue_fresh(conn, [m for m in made if m is not None], ctx.clock.now())


def receipt(
    conn: Connection, ctx: Context, pk: int, mail: InboundMail, verdict: Verdict
) -> tuple[outbox.Outgoing, outbox.DailyCaps] | None:
    """The receipt a message just recorded (as ``pk``) earns, and the caps it counts against; None if none."""
    kind = ack_kind(mail, verdict, ctx.settings.own_addresses)
    if kind is None or not ctx.settings.notify.acknowledge:
        return None
    settings, now = ctx.settings, ctx.clock.now()
    reach = audience(mail, ctx.roster.by_address, settings.security)
    if reach is None:
        log.info("no receipt for %s: %s is not shown authentic", mail.message_id, mail.sender or "?")
        return None
    campaign = verdict.campaign
    # A message not yet tied to a campaign still names someone to call: the first campaign that has a contact.
    fallback = next((c.contact for c in ctx.campaigns if c.contact), "")
    inst_pk = store.institution_pk(conn, verdict.institution.code) if verdict.institution else None
    context = ack_context(
        mail,
        verdict,
        campaign,
        pk,
        settings.outbox,
        settings.zone,
        settings.outbox.address,
        fallback,
        quote_subject=reach is Audience.ROSTER,
        max_message_bytes=settings.limits.max_message_bytes,
        # the link only to the institution's own address: an address matched by name may be anyone's
        status_url=receipt_link(settings, ctx.key, verdict, campaign, now)
        if reach is Audience.ROSTER and verdict.identified_by is IdentifiedBy.ADDRESS
        else "",
        stamped_owed=kind == "ack" and stamped_owed(conn, campaign, inst_pk, mail),
        word_in=kind == "ack_no_report" and word_in(conn, campaign, inst_pk),
    )
    subject = ctx.templates.subject(kind, context)
    msg = Draft(subject, partial(_composed, ctx, kind, context, subject, mail, now))
    item = outbox.Outgoing(f"ack:{pk}", kind, msg, (mail.sender,), pk, inst_pk, verdict.campaign_id, fresh=True)
    return item, outbox.DailyCaps.of(settings, now, unverified=reach is Audience.UNVERIFIED)


def _composed(
    ctx: Context, kind: str, context: dict[str, Any], subject: str, mail: InboundMail, when: datetime
) -> Message:
    """A receipt composed, threaded to the message it answers (only once it is known to go out: ``Draft``)."""
    return compose(
        ctx.settings.outbox,
        ctx.key,
        kind,
        (mail.sender,),
        ctx.templates.render(kind, context, subject),
        in_reply_to=mail.message_id,
        references=mail.references,
        when=when,
    )


@dataclass(frozen=True)
class StaffReceipt:
    """A held message that staff attributed: what the receipt is about."""

    message_pk: int
    mail: InboundMail
    sizes: tuple[int, ...]  # of ``mail.files``, in order
    verdict: Verdict  # its state: submission | no_report
    campaign: Campaign
    quote_subject: bool  # only to an address of the institution (roster or learned): no backscatter of the subject


def queue_staff_receipt(
    conn: Connection,
    settings: Settings,
    templates: Templates,
    key: bytes,
    held: StaffReceipt,
    now: datetime,
) -> str | None:
    """The receipt a school gets once staff attributed its held message, in the staff's transaction, threaded to
    that message. Attributing it again to the same institution and campaign queues nothing more. Returns the kind."""
    if too_large(held.mail):  # its files were never read: the school was already told what to send instead
        return None
    kind = ack_kind(held.mail, held.verdict, settings.own_addresses)
    if kind is None or not settings.notify.acknowledge:
        return None
    inst = held.verdict.institution
    inst_pk = store.institution_pk(conn, inst.code) if inst else None
    context = ack_context(
        held.mail,
        held.verdict,
        held.campaign,
        held.message_pk,
        settings.outbox,
        settings.zone,
        settings.outbox.address,
        held.campaign.contact,
        quote_subject=held.quote_subject,
        sizes=held.sizes,
        status_url=receipt_link(settings, key, held.verdict, held.campaign, now) if held.quote_subject else "",
        stamped_owed=kind == "ack" and stamped_owed(conn, held.campaign, inst_pk, held.mail),
        word_in=kind == "ack_no_report" and word_in(conn, held.campaign, inst_pk),
    )
    msg = compose(
        settings.outbox,
        key,
        kind,
        (held.mail.sender,),
        templates.render(kind, context),
        in_reply_to=held.mail.message_id,
        references=held.mail.references,
        when=now,
    )
    item = outbox.Outgoing(
        f"ack-staff:{held.message_pk}:{inst.code if inst else ''}:{held.campaign.id}",
        kind,
        msg,
        (held.mail.sender,),
        held.message_pk,
        inst_pk,
        held.campaign.id,
    )
    outbox.queue(conn, item, now, outbox.DailyCaps.of(settings, now))
    return kind
