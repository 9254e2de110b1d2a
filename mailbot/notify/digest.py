"""The staff's daily digest: where each active campaign stands, what arrived, what needs a human."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from mailbot import store
from mailbot.models import Campaign, PaperMode
from mailbot.reports import stamps
from mailbot.reports.status import CampaignStatus, InstitutionStatus, ReviewItem, Submission
from mailbot.wording import arrival_time, clip, local_time, receipt_number, warning_texts


def active_campaigns(campaigns: tuple[Campaign, ...], now: datetime, late_until_days: int) -> tuple[Campaign, ...]:
    """Open now, or closed recently enough that late reports are still being chased; else the nearest one."""
    live = tuple(
        c
        for c in campaigns
        if (c.opens is None or c.opens <= now) and now <= c.deadline + timedelta(days=late_until_days + 1)
    )
    return live or (min(campaigns, key=lambda c: abs((c.deadline - now).total_seconds())),)


def time_left(deadline: datetime, now: datetime) -> str:
    delta = deadline - now
    if delta.total_seconds() < 0:
        return f"đã quá hạn {(-delta).days} ngày" if -delta >= timedelta(days=1) else "đã hết hạn"
    if delta >= timedelta(days=1):
        return f"còn {delta.days} ngày"
    return f"còn {int(delta.total_seconds() // 3600)} giờ"


def _pct(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


def _group(name: str, members: list[InstitutionStatus]) -> dict[str, Any]:
    counts = {k: sum(1 for m in members if m.status == k) for k in ("on_time", "late", "missing")}
    total = len(members)
    return {
        "name": name,
        "total": total,
        **counts,
        "submitted_pct": _pct(counts["on_time"] + counts["late"], total),
        "on_time_pct": _pct(counts["on_time"], total),
        "late_pct": _pct(counts["late"], total),
        "missing_pct": _pct(counts["missing"], total),
    }


def _document(s: Submission) -> str:
    """``Số 15/BC-THPTNQ ngày 05/12/2023`` from the submission's Word report, when it says so."""
    meta = next((f.meta for f in s.files if f.meta), None)
    if not meta:
        return ""
    date = str(meta.get("date") or "")
    parts = [
        f"số {meta['number']}" if meta.get("number") else "",
        f"ngày {date[8:10]}/{date[5:7]}/{date[:4]}" if date else "",
    ]
    return " ".join(filter(None, parts))


def campaign_context(cs: CampaignStatus, since: datetime | None, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    groups = [_group(name, members) for name, members in cs.groups().items()]
    totals = {k: sum(g[k] for g in groups) for k in ("total", "on_time", "late", "missing")}
    new = [
        {
            "name": i.name,
            "arrived": arrival_time(s.received_at, zone),
            "late": s.received_at > i.deadline,
            "identified_by": s.identified_by,
            "at": s.received_at,
            "document": _document(s),
        }
        for i in cs.institutions
        for s in i.submissions
        if (since is None or s.received_at > since) and s.received_at <= now
    ]
    warnings = [
        {"name": i.name, "text": text}
        for i in cs.institutions
        for s in i.submissions[-1:]
        for text in warning_texts([*s.warnings, *(x for f in s.files for x in f.warnings)])
    ]
    return {
        "id": cs.campaign.id,
        "title": cs.campaign.title,
        "deadline": local_time(cs.campaign.deadline, zone),
        "time_left": time_left(cs.campaign.deadline, now),
        "groups": groups,
        "totals": {**totals, "submitted": totals["on_time"] + totals["late"]},
        "new": sorted(new, key=lambda n: n["at"]),
        "missing": [
            {"group": g, "names": [m.name for m in ms if m.status == "missing"]}
            for g, ms in cs.groups().items()
            if any(m.status == "missing" for m in ms)
        ],
        "warnings": warnings,
        **_stamped(cs, zone),
    }


def _stamped(cs: CampaignStatus, zone: ZoneInfo) -> dict[str, Any]:
    """The stamped copy apart from the Word file: how many have it, how many are complete, who still owes it."""
    if cs.campaign.paper is PaperMode.NONE:
        return {"stamped": None}
    owing = [(g, [m.name for m in ms if m.stamped is False]) for g, ms in cs.groups().items()]
    return {
        "stamped": {
            "received": sum(1 for i in cs.counted if i.stamped),
            "complete": sum(1 for i in cs.counted if i.complete),
            "total": len(cs.counted),
            "missing": [{"group": g, "names": names} for g, names in owing if names],
            # A PDF came but its check left a doubt that staff have not settled: they look at it, then accept it.
            "doubts": [
                {"name": i.name, "text": stamps.text_vi(i.stamp, zone)}
                for i in cs.counted
                if i.stamped is False and i.stamp and i.stamp.verdict == stamps.DOUBT
            ],
        }
    }


def _review(items: tuple[ReviewItem, ...], zone: ZoneInfo) -> list[dict[str, str]]:
    return [
        {
            "receipt": receipt_number(r.pk),
            "sender": r.sender or "(không rõ)",
            "subject": clip(r.subject),
            "arrived": local_time(r.received_at, zone),
            "reason": r.reason,
        }
        for r in items
    ]


def _failed(engine: Engine) -> list[dict[str, str]]:
    o = store.outbox
    with engine.connect() as conn:
        rows = conn.execute(select(o).where(o.c.status == "failed").order_by(o.c.id)).all()
    return [
        {"to": ", ".join(r.recipients) or "(không có địa chỉ)", "subject": r.subject, "error": r.last_error}
        for r in rows
    ]


def _undeliverable(engine: Engine, statuses: list[CampaignStatus]) -> list[dict[str, str]]:
    owners = {a: i.name for cs in statuses for i in cs.institutions for a in i.emails}
    with engine.connect() as conn:
        bad = store.undeliverable_addresses(conn)
    return [{"address": a, "institution": owners.get(a, ""), "reason": why} for a, why in sorted(bad.items())]


def last_digest_at(engine: Engine) -> datetime | None:
    o = store.outbox
    with engine.connect() as conn:
        return conn.execute(
            select(o.c.created_at).where(o.c.kind == "digest").order_by(o.c.id.desc()).limit(1)
        ).scalar()


def digest_context(
    engine: Engine, statuses: list[CampaignStatus], now: datetime, zone: ZoneInfo, common: dict[str, Any]
) -> dict[str, Any]:
    since = last_digest_at(engine)
    local = now.astimezone(zone)
    return {
        **common,
        "today": f"{local:%d/%m/%Y}",
        "generated_at": local_time(now, zone),
        "campaigns": [campaign_context(cs, since, now, zone) for cs in statuses],
        "review": _review(statuses[0].review if statuses else (), zone),
        "failed": _failed(engine),
        "undeliverable": _undeliverable(engine, statuses),
    }
