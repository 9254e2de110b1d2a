"""Who gets an acknowledgement and what it says.

The rule (also in the README):
- never to a machine (RFC 3834 markers, bounces, mailer-daemon/noreply senders) nor to ourselves;
- a counted submission (identified by address, by name or by staff) gets ``ack``;
- a message from an identified institution without a Word file gets ``ack_no_report``;
- a message held for review that carries a Word file gets the neutral ``ack_review``;
- anything else (held without a Word file, unreadable, a duplicate, our own bounces) gets nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from mailbot import outbox, store
from mailbot.config import OutboxSettings
from mailbot.models import Campaign, InboundMail, Verdict
from mailbot.notify import compose, department, human_size, reply_subject
from mailbot.wording import local_time, warning_text

if TYPE_CHECKING:
    from mailbot.context import Context


def receipt_number(message_pk: int) -> str:
    return f"{message_pk:06d}"


def ack_kind(mail: InboundMail, verdict: Verdict, state: str, own: set[str]) -> str | None:
    if mail.auto_markers or not mail.sender or mail.sender in own:
        return None
    if state == "submission":
        return "ack"
    if state == "no_report" and verdict.institution:
        return "ack_no_report"
    if state == "review" and mail.reports:
        return "ack_review"
    return None


def ack_context(
    mail: InboundMail, verdict: Verdict, campaign: Campaign | None, message_pk: int, outbox: OutboxSettings,
    zone: ZoneInfo, inbox_address: str,
) -> dict[str, Any]:
    """Plain values only: subjects and file names from the sender are data for the template, never template."""
    inst = verdict.institution
    warnings = [*mail.warnings, *(w for f in mail.files for w in f.warnings)]
    return {
        "department": department(outbox),
        "inbox_address": inbox_address,
        "receipt": receipt_number(message_pk),
        "reply_subject": reply_subject(mail.subject),
        "institution": {"code": inst.code, "name": inst.name, "group": inst.group} if inst else None,
        "campaign": {"id": campaign.id, "title": campaign.title} if campaign else None,
        "deadline": local_time(campaign.deadline, zone) if campaign else "",
        "arrived": local_time(mail.arrived, zone),
        "files": [{"name": f.name, "size": human_size(len(f.data))} for f in mail.files if f.is_report or f.kind == "pdf"],
        "warnings": list(dict.fromkeys(warning_text(w) for w in warnings if w != "no_report_file")),
        "late": verdict.late,
        "identified_by": verdict.identified_by.value if verdict.identified_by else "",
        "sender": mail.sender,
    }


def queue_receipt(conn: Connection, ctx: Context, pk: int, mail: InboundMail, verdict: Verdict, state: str) -> None:
    """Queue the receipt in the same transaction as the record: recorded means acknowledged, exactly once."""
    kind = ack_kind(mail, verdict, state, ctx.own_addresses)
    if kind is None or not ctx.settings.notify.acknowledge:
        return
    campaign = next((c for c in ctx.campaigns if c.id == verdict.campaign_id), None)
    settings = ctx.settings
    context = ack_context(mail, verdict, campaign, pk, settings.outbox, settings.zone, settings.outbox.address)
    rendered = ctx.templates.render(kind, context)
    msg = compose(settings.outbox, ctx.key, kind, (mail.sender,), rendered, in_reply_to=mail.message_id,
                  references=mail.references, when=ctx.clock())
    inst_pk = store.institution_pk(conn, verdict.institution.code) if verdict.institution else None
    outbox.queue(conn, key=f"ack:{pk}", kind=kind, msg=msg, recipients=(mail.sender,), now=ctx.clock(),
                 day_start=outbox.day_start(ctx.clock(), settings.zone), limit=settings.notify.max_auto_per_address_per_day,
                 message_pk=pk, institution_id=inst_pk, campaign_id=verdict.campaign_id)
