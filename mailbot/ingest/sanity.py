"""Warnings a Word report earns by what it says: another institution's heading, an unrelated title,
a date far from the campaign, an empty file or a blank template (pure)."""

from __future__ import annotations

from datetime import timedelta

from mailbot.documents.decree30 import DocMeta
from mailbot.ingest.identify import Roster, match_names
from mailbot.models import Campaign, Institution, Notice, WarningCode
from mailbot.text import fold

# Words every report title has; sharing only these says nothing about being the right report.
_COMMON = set(
    fold(
        "báo cáo kế hoạch tờ trình công văn v/v về việc của và các cho tại năm học kết quả tình hình thực hiện "
        "công tác trường thpt phòng gddt sở trung tâm đơn vị"
    ).split()
)
MAX_DATE_GAP = timedelta(days=120)


def significant_words(text: str) -> set[str]:
    return {w for w in fold(text).split() if w not in _COMMON and not w.isdigit() and len(w) > 1}


def report_warnings(
    meta: DocMeta, inst: Institution | None, campaign: Campaign | None, roster: Roster
) -> tuple[Notice, ...]:
    found = [Notice(code) for code in meta.warnings]
    named = match_names(f"{meta.issuer_parent}\n{meta.issuer}", roster) if meta.issuer else set()
    if inst and named and inst not in named:
        found.append(Notice(WarningCode.HEADING_OTHER_INSTITUTION, ",".join(sorted(i.code for i in named))))
    if campaign and meta.title:
        wanted = significant_words(" ".join([campaign.title, *campaign.keywords]))
        if wanted and not significant_words(meta.title) & wanted:
            found.append(Notice(WarningCode.TITLE_UNRELATED))
    if campaign and meta.date and abs(meta.date - campaign.deadline.date()) > MAX_DATE_GAP:
        found.append(Notice(WarningCode.DATE_FAR, f"{meta.date:%d/%m/%Y}"))
    return tuple(dict.fromkeys(found))
