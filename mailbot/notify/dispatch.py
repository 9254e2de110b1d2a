"""Scheduled mail into the outbox: reminders and late notices to the missing, the digest to staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from mailbot import store
from mailbot.campaigns import catalog
from mailbot.config import Settings
from mailbot.errors import MailbotError
from mailbot.notify import links, outbox
from mailbot.notify.chase import Notice, due_notices
from mailbot.notify.compose import Rendered, Templates, compose, department, load_templates, secret_key
from mailbot.notify.digest import active_campaigns, digest_context
from mailbot.reports import spreadsheets
from mailbot.reports.status import STAMPED, WORD, CampaignStatus, campaign_status
from mailbot.wording import local_time

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Planned:
    notice: Notice
    recipients: tuple[str, ...]
    status: str  # what queueing did: pending | suppressed | exists | failed (no usable address) | dry-run


def _common(settings: Settings, now: datetime) -> dict[str, Any]:
    return {
        "department": department(settings.outbox),
        "inbox_address": settings.outbox.address,
        "now": local_time(now, settings.zone),
    }


def statuses(settings: Settings, engine: Engine, now: datetime) -> list[CampaignStatus]:
    found = catalog.load(engine, settings)
    live = active_campaigns(found.open, now, settings.notify.late_until_days)
    return [campaign_status(engine, c) for c in live]


def recipients_for(notice: Notice, undeliverable: dict[str, str]) -> tuple[str, ...]:
    """The institution's addresses that have not bounced; all of them if every one has."""
    good = tuple(a for a in notice.institution.emails if a not in undeliverable)
    return good or ()


def asked_keys(engine: Engine, campaign_id: str) -> set[str]:
    """The keys of the reminders and late notices already queued for a campaign (what each slot asked for)."""
    o = store.outbox
    query = select(o.c.key).where(o.c.campaign_id == campaign_id, o.c.kind.in_(("reminder", "late")))
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def plan_notices(settings: Settings, engine: Engine, now: datetime) -> list[Notice]:
    found = catalog.load(engine, settings)
    return [
        n
        for cs in statuses(settings, engine, now)
        for n in due_notices(
            cs,
            catalog.chase_for(settings, found, cs.campaign.id),
            now,
            settings.zone,
            asked_keys(engine, cs.campaign.id),
        )
    ]


def queue_notices(settings: Settings, engine: Engine, now: datetime, *, dry_run: bool = False) -> list[Planned]:
    """Queue each due notice once (its key makes reruns and restarts harmless)."""
    notices = plan_notices(settings, engine, now)
    with engine.connect() as conn:
        bad = store.undeliverable_addresses(conn)
    if dry_run:
        return [Planned(n, recipients_for(n, bad), "dry-run") for n in notices]
    templates, key = load_templates(settings), secret_key(settings.data_dir)
    return [queue_notice(settings, engine, templates, key, n, recipients_for(n, bad), now) for n in notices]


def _notice_context(settings: Settings, key: bytes, n: Notice, now: datetime) -> dict[str, Any]:
    i, zone = n.institution, settings.zone
    return {
        **_common(settings, now),
        "institution": {"code": i.code, "name": i.name, "group": i.group},
        "campaign": {
            "id": n.campaign.id,
            "title": n.campaign.title,
            "plan": n.campaign.plan,
            "contact": n.campaign.contact,
            "paper": n.campaign.paper.value,
        },
        "missing": {"word": WORD in n.missing, "stamped": STAMPED in n.missing},
        "contact": "",  # the notice's body already names the campaign's contact; the footer does not repeat it
        "deadline": local_time(i.deadline, zone),
        "deadline_short": f"{i.deadline.astimezone(zone):%d/%m/%Y}",
        "days_left": n.days,
        "days_late": n.days,
        "status_url": links.status_url(settings.web.public_url, key, i.code, n.campaign, now),
    }


def queue_notice(
    settings: Settings,
    engine: Engine,
    templates: Templates,
    key: bytes,
    n: Notice,
    to: tuple[str, ...],
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> Planned:
    """Queue one notice to an institution (``extra``: what its template needs besides a reminder's values); an
    institution without a usable address gets a failed row, so that staff see it was not told."""
    rendered = templates.render(n.kind, {**_notice_context(settings, key, n, now), **(extra or {})})
    msg = compose(settings.outbox, key, n.kind, to or ("undisclosed-recipients:;",), rendered, when=now)
    with store.atomic(engine) as conn:
        inst_pk = store.institution_pk(conn, n.institution.code)
        item = outbox.Outgoing(n.key, n.kind, msg, to, institution_id=inst_pk, campaign_id=n.campaign.id)
        queued = outbox.queue(conn, item, now, outbox.DailyCaps.of(settings, now))
        if not to and queued.status != "exists":
            conn.execute(
                store.outbox.update()
                .where(store.outbox.c.id == queued.outbox_id)
                .values(status="failed", last_error="đơn vị không có địa chỉ thư dùng được trong danh sách")
            )
            return Planned(n, to, "failed")
    return Planned(n, to, queued.status)


def render_digest(settings: Settings, engine: Engine, now: datetime) -> tuple[Rendered, list[CampaignStatus]]:
    found = statuses(settings, engine, now)
    context = digest_context(engine, found, now, settings.zone, _common(settings, now))
    return load_templates(settings).render("digest", context), found


def queue_digest(settings: Settings, engine: Engine, now: datetime) -> tuple[outbox.Queued, Rendered]:
    """Today's digest to staff, with one Excel tracker per active campaign; once per day."""
    if not settings.notify.staff:
        raise MailbotError("notify.staff is empty: list the staff addresses that receive the digest")
    rendered, found = render_digest(settings, engine, now)
    day = now.astimezone(settings.zone)
    trackers = spreadsheets.trackers(found, settings.zone, now)
    attachments = tuple(
        (f"theo-doi-{cs.campaign.id}-{day:%Y%m%d}.xlsx", tracker, XLSX) for cs, tracker in zip(found, trackers)
    )
    msg = compose(
        settings.outbox,
        secret_key(settings.data_dir),
        "digest",
        settings.notify.staff,
        rendered,
        when=now,
        attachments=attachments,
    )
    with store.atomic(engine) as conn:
        item = outbox.Outgoing(f"digest:{day:%Y-%m-%d}", "digest", msg, tuple(settings.notify.staff))
        queued = outbox.queue(conn, item, now, outbox.DailyCaps.of(settings, now))  # the digest is not capped
    return queued, rendered
