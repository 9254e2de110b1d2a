"""Which institutions to remind before the deadline and to chase after it, today (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from mailbot.config import Chase
from mailbot.models import Campaign
from mailbot.reports.status import CampaignStatus, InstitutionStatus


@dataclass(frozen=True)
class Notice:
    kind: str  # reminder | late
    campaign: Campaign
    institution: InstitutionStatus
    days: int  # days left before, or days after, the institution's deadline
    key: str  # one notice per (campaign, institution, kind, deadline, slot), whatever reruns happen


def due_notices(cs: CampaignStatus, chase: Chase, now: datetime, zone: ZoneInfo) -> list[Notice]:
    """Notices due now for institutions that have not submitted; a missed day is caught up once."""
    out = []
    for inst in cs.institutions:
        if inst.status != "missing" or not inst.active:
            continue
        notice = _for(cs.campaign, inst, chase, now, zone)
        if notice:
            out.append(notice)
    return out


def _for(campaign: Campaign, inst: InstitutionStatus, chase: Chase, now: datetime, zone: ZoneInfo) -> Notice | None:
    today = now.astimezone(zone).date()
    due = inst.deadline.astimezone(zone).date()
    if now <= inst.deadline:
        days_left = (due - today).days
        slots = [d for d in chase.reminders_before_days if d >= days_left]
        return _notice("reminder", campaign, inst, days_left, f"d{min(slots)}") if slots else None
    days_late = (today - due).days
    if days_late < 1 or days_late > chase.late_until_days:
        return None
    slot = "once" if chase.late_every_days == 0 else str((days_late - 1) // chase.late_every_days)
    return _notice("late", campaign, inst, days_late, f"late-{slot}")


def _notice(kind: str, campaign: Campaign, inst: InstitutionStatus, days: int, slot: str) -> Notice:
    key = f"{kind}:{campaign.id}:{inst.code}:{inst.deadline.isoformat()}:{slot}"
    return Notice(kind, campaign, inst, days, key)
