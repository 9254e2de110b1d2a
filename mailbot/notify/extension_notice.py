"""The school told of the extension staff granted it: its new deadline and what it still owes, to its roster
addresses, once for each deadline granted (moving it again tells it again). Its reminders and late notices already
count from that deadline; without this notice the school would learn it only from them, or by telephone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from mailbot import store
from mailbot.config import Settings
from mailbot.models import Campaign
from mailbot.notify.chase import Notice
from mailbot.notify.compose import load_templates, secret_key
from mailbot.notify.dispatch import Planned, queue_notice, recipients_for
from mailbot.reports.status import campaign_status
from mailbot.wording import local_time

KIND = "extension"


def tell_school(
    settings: Settings, engine: Engine, campaign: Campaign, code: str, now: datetime, *, reason: str = ""
) -> Planned | None:
    """Queue the notice of the extension ``code`` has now; None when it has none (or is not on the roster)."""
    inst = next((i for i in campaign_status(engine, campaign).institutions if i.code == code), None)
    if inst is None or not inst.extended:
        return None
    with engine.connect() as conn:
        undeliverable = store.undeliverable_addresses(conn)
    key = f"{KIND}:{campaign.id}:{code}:{inst.deadline.isoformat()}"
    notice = Notice(KIND, campaign, inst, 0, key, inst.missing)
    extra = {
        "campaign_deadline": local_time(campaign.deadline, settings.zone),
        "reason": reason,
        "contact": campaign.contact,
    }
    templates, signing = load_templates(settings), secret_key(settings.data_dir)
    return queue_notice(settings, engine, templates, signing, notice, recipients_for(notice, undeliverable), now, extra)
