"""Which institutions to remind before the deadline and to chase after it, today, and for what (pure).

The rule of the keys: one notice per (campaign, institution, kind, deadline, slot) *and what it asks for*. The
key names the parts it asks for (``word``, ``stamped``, ``word+stamped``), and a notice is due in a slot only
when something is owed now that no notice of that slot has asked for yet. So a school reminded for the Word
file and the stamped copy that then sends the Word file is not asked again in the same slot (the stamped copy
was asked for), while one reminded for the Word file alone (its stamped copy was in) that now owes the stamped
copy (staff took back a wrongly ticked paper copy) is asked for it at once. A key written before the parts
were named (``...:d3``) asked for everything.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from mailbot.config import Chase
from mailbot.models import Campaign
from mailbot.reports.status import STAMPED, WORD, CampaignStatus, InstitutionStatus


@dataclass(frozen=True)
class Notice:
    kind: str  # reminder | late
    campaign: Campaign
    institution: InstitutionStatus
    days: int  # days left before, or days after, the institution's deadline
    key: str  # see the module's docstring: once per slot and what it asks for, whatever reruns happen
    missing: tuple[str, ...] = ()  # what it asks for: "word" and/or "stamped"


def due_notices(
    cs: CampaignStatus, chase: Chase, now: datetime, zone: ZoneInfo, asked: Collection[str] = ()
) -> list[Notice]:
    """Notices due now for institutions that still owe something; a missed day is caught up once. ``asked``: the
    keys of the notices already queued (a notice whose slot already asked for everything owed is not due)."""
    out = []
    for inst in cs.institutions:
        if inst.complete or not inst.active:
            continue
        notice = _for(cs.campaign, inst, chase, now, zone)
        if notice and not _already_asked(notice, asked):
            out.append(notice)
    return out


def _already_asked(notice: Notice, asked: Collection[str]) -> bool:
    prefix, slot = _prefix(notice.kind, notice.campaign, notice.institution), notice.key.rsplit(":", 1)[1]
    if f"{prefix}:{slot}" in asked:  # a key from before the parts were named: it asked for everything
        return True
    covered = {p for part in _PARTS if f"{prefix}:{_parts(part)}:{slot}" in asked for p in part}
    return set(notice.missing) <= covered


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


_PARTS = ((WORD,), (STAMPED,), (WORD, STAMPED))


def _parts(missing: tuple[str, ...]) -> str:
    return "+".join(missing)


def _prefix(kind: str, campaign: Campaign, inst: InstitutionStatus) -> str:
    return f"{kind}:{campaign.id}:{inst.code}:{inst.deadline.isoformat()}"


def _notice(kind: str, campaign: Campaign, inst: InstitutionStatus, days: int, slot: str) -> Notice:
    missing = inst.missing
    key = f"{_prefix(kind, campaign, inst)}:{_parts(missing)}:{slot}"
    return Notice(kind, campaign, inst, days, key, missing)
