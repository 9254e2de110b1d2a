"""Paper copies received by post: staff tick the stamped copy (bản có dấu đỏ) of one institution, with the day."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from mailbot import store
from mailbot.errors import MailbotError, NotFound
from mailbot.models import Campaign, PaperMode

# A paper copy dated this long before the campaign opened, or after today, is a typing mistake (a wrong year).
MAX_DAYS_BEFORE = 366


class BadDate(MailbotError):
    """The day cannot be when the paper copy arrived: in the future, or long before the campaign."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem  # "future" | "too_early" (the web pages word it for staff)


@dataclass(frozen=True)
class PaperChange:
    """What a tick or an undo did."""

    code: str
    name: str
    received_on: date | None  # the day now recorded (tick) or the day that was removed (undo); None: nothing was
    counts: bool  # whether the campaign's paper mode takes a paper copy as the stamped copy


def counts_by_post(campaign: Campaign) -> bool:
    return campaign.paper in (PaperMode.POST, PaperMode.EITHER)


def check_day(campaign: Campaign, on: date, today: date) -> None:
    if on > today:
        raise BadDate(f"{on.isoformat()} is after today ({today.isoformat()})", "future")
    start = (campaign.opens or campaign.deadline).date()
    if (start - on).days > MAX_DAYS_BEFORE:
        raise BadDate(
            f"{on.isoformat()} is more than a year before the campaign opened ({start.isoformat()})", "too_early"
        )


def tick(engine: Engine, campaign: Campaign, code: str, on: date, *, actor: str, today: date) -> PaperChange:
    """Record that the institution's paper copy arrived on ``on`` (a second tick moves the day)."""
    check_day(campaign, on, today)
    with store.atomic(engine) as conn:
        pk, name = institution_of(conn, code)
        p = store.paper
        conn.execute(p.delete().where(p.c.campaign_id == campaign.id, p.c.institution_id == pk))
        conn.execute(
            p.insert().values(campaign_id=campaign.id, institution_id=pk, received_on=on, actor=actor, at=store.now())
        )
        log_action(conn, "paper", actor, f"{campaign.id} {code} {on.isoformat()}")
    return PaperChange(code, name, on, counts_by_post(campaign))


def undo(engine: Engine, campaign: Campaign, code: str, *, actor: str) -> PaperChange:
    """Remove the tick (a mistake); nothing happens, and nothing is logged, when there was none."""
    with store.atomic(engine) as conn:
        pk, name = institution_of(conn, code)
        p = store.paper
        where = (p.c.campaign_id == campaign.id, p.c.institution_id == pk)
        was = conn.execute(select(p.c.received_on).where(*where)).scalar()
        if was is not None:
            conn.execute(p.delete().where(*where))
            log_action(conn, "paper_undo", actor, f"{campaign.id} {code} {was.isoformat()}")
    return PaperChange(code, name, was, counts_by_post(campaign))


def received_on(engine: Engine, campaign_id: str, code: str) -> date | None:
    p, i = store.paper, store.institutions
    query = select(p.c.received_on).join(i, i.c.id == p.c.institution_id)
    with engine.connect() as conn:
        found: date | None = conn.execute(query.where(p.c.campaign_id == campaign_id, i.c.code == code)).scalar()
    return found


def institution_of(conn: Connection, code: str) -> tuple[int, str]:
    row = conn.execute(
        select(store.institutions.c.id, store.institutions.c.name).where(store.institutions.c.code == code)
    ).first()
    if row is None:
        codes = list(conn.execute(select(store.institutions.c.code)).scalars())
        near = difflib.get_close_matches(code, codes, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(near)}?" if near else "`mailbot roster list` shows them"
        raise NotFound(f"no institution with code {code!r} in the roster of {len(codes)} institutions: {hint}")
    return row.id, row.name


def log_action(conn: Connection, action: str, actor: str, detail: str) -> None:
    conn.execute(store.actions.insert().values(action=action, actor=actor, at=store.now(), detail=detail))
