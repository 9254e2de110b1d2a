"""The spreadsheets a lasting process hands out (the digest's trackers, the web pages' downloads), each built in a
short-lived child (``memory.aside``): openpyxl and the workbook leave with the child and never load into the
service. The modules that write them are imported there, inside the functions below, and nowhere else here."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from mailbot import memory
from mailbot.models import Institution
from mailbot.reports.status import CampaignStatus

if TYPE_CHECKING:
    from mailbot.reports.consolidate import Consolidation
    from mailbot.reports.consolidation_xlsx import Linker


def trackers(found: Sequence[CampaignStatus], zone: ZoneInfo, now: datetime) -> list[bytes]:
    """Each campaign's Excel tracker (``reports.workbook``), in one child."""
    return memory.aside(functools.partial(_trackers, found, zone, now))


def consolidation(comp: Consolidation, links: Linker) -> bytes:
    """The consolidation workbook (``reports.consolidation_xlsx``)."""
    return memory.aside(functools.partial(_consolidation, comp, links))


def roster(institutions: Sequence[Institution]) -> bytes:
    """The roster as an Excel file (``campaigns.roster_export``): rows read beforehand, the child opens no database."""
    return memory.aside(functools.partial(_roster, institutions))


def _trackers(found: Sequence[CampaignStatus], zone: ZoneInfo, now: datetime) -> list[bytes]:
    from mailbot.reports.workbook import tracker_bytes

    return [tracker_bytes(cs, zone, generated_at=now) for cs in found]


def _consolidation(comp: Consolidation, links: Linker) -> bytes:
    from mailbot.reports.consolidation_xlsx import workbook_bytes

    return workbook_bytes(comp, links)


def _roster(institutions: Sequence[Institution]) -> bytes:
    from mailbot.campaigns import roster_export

    return roster_export.export_bytes(institutions)
