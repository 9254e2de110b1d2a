"""The call for reports (công văn / thông báo): one email per institution of a campaign's groups, with the plan and
the report template attached, through the durable outbox.

Each institution is sent the call once (the outbox key ``announce:<campaign>:<code>``): announcing again reaches
only the institutions added to the roster since, so staff can press the button after every roster change.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from mailbot import store
from mailbot.campaigns import catalog
from mailbot.config import Settings
from mailbot.errors import MailbotError
from mailbot.models import Campaign, Institution
from mailbot.notify import outbox
from mailbot.notify.compose import Rendered, Templates, compose, department, load_templates, secret_key
from mailbot.reports.status import ANNOUNCE
from mailbot.wording import local_time

KIND = ANNOUNCE


@dataclass(frozen=True)
class Call:
    """The call for one institution: to whom it goes, and whether it was sent before (then it is not again)."""

    institution: Institution
    recipients: tuple[str, ...]
    sent_at: datetime | None  # when it was queued before, if it was


@dataclass(frozen=True)
class Announced:
    """What announcing did: the calls queued now, those sent before, and institutions without an address."""

    queued: tuple[Call, ...]
    already: tuple[Call, ...]
    no_address: tuple[Institution, ...]


def key(campaign_id: str, code: str) -> str:
    return f"{KIND}:{campaign_id}:{code}"


def plan(conn: Connection, campaign: Campaign, only: tuple[str, ...] = ()) -> list[Call]:
    """The active institutions of the campaign's groups (or those of ``only``), with their addresses."""
    roster = store.load_institutions(conn, active_only=True)
    if only:
        unknown = sorted(set(only) - {i.code for i in roster})
        if unknown:
            raise MailbotError(f"not active institutions of the roster: {', '.join(unknown)}")
    bad = store.undeliverable_addresses(conn)
    sent = store.first_queued(conn, KIND, campaign.id)
    return [
        Call(i, tuple(a for a in i.emails if a not in bad) or i.emails, sent.get(i.code))
        for i in roster
        if campaign.concerns(i.group) and (not only or i.code in only)
    ]


def context(settings: Settings, campaign: Campaign, files: tuple[catalog.CampaignFile, ...]) -> dict[str, Any]:
    """What the template needs, but the institution (the preview shows it for the first one)."""
    zone = settings.zone
    return {
        "department": department(settings.outbox),
        "inbox_address": settings.outbox.address,
        "campaign": {"id": campaign.id, "title": campaign.title, "plan": campaign.plan, "contact": campaign.contact},
        "contact": "",  # the body names the campaign's contact; the footer does not repeat it
        "deadline": local_time(campaign.deadline, zone),
        "deadline_short": f"{campaign.deadline.astimezone(zone):%d/%m/%Y}",
        "paper": campaign.paper.value,
        "attachments": [f.name for f in files if f.role == catalog.ATTACHMENT],
        "template": next((f.name for f in files if f.role == catalog.TEMPLATE), ""),
    }


def render(
    settings: Settings,
    campaign: Campaign,
    institution: Institution,
    files: tuple[catalog.CampaignFile, ...],
    templates: Templates | None = None,
) -> Rendered:
    """The call for one institution (``templates``: loaded once by the caller that renders many)."""
    base = context(settings, campaign, files)
    inst = {"code": institution.code, "name": institution.name, "group": institution.group}
    return (templates or load_templates(settings)).render(KIND, {**base, "institution": inst})


def announce(
    settings: Settings,
    engine: Engine,
    campaign: Campaign,
    now: datetime,
    *,
    only: tuple[str, ...] = (),
    dry_run: bool = False,
) -> Announced:
    """Queue the call for every institution of the campaign not yet sent it (``only``: just those codes)."""
    with engine.connect() as conn:
        calls = plan(conn, campaign, only)
        files = catalog.files_of(conn, campaign.id)
    todo = [c for c in calls if c.sent_at is None and c.recipients]
    result = Announced(
        tuple(todo),
        tuple(c for c in calls if c.sent_at is not None),
        tuple(c.institution for c in calls if c.sent_at is None and not c.recipients),
    )
    if dry_run or not todo:
        return result
    attachments = tuple((f.name, (settings.data_dir / f.path).read_bytes(), _mime(f.name)) for f in files)
    signing, templates = secret_key(settings.data_dir), load_templates(settings)
    for call in todo:
        msg = compose(
            settings.outbox,
            signing,
            KIND,
            call.recipients,
            render(settings, campaign, call.institution, files, templates),
            when=now,
            attachments=attachments,
        )
        with store.atomic(engine) as conn:
            item = outbox.Outgoing(
                key(campaign.id, call.institution.code), KIND, msg, call.recipients,
                institution_id=store.institution_pk(conn, call.institution.code), campaign_id=campaign.id,
            )  # fmt: skip
            outbox.queue(conn, item, now, outbox.DailyCaps.of(settings, now))
    return result


def _mime(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
