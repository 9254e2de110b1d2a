"""Staff-granted deadlines for one institution (as Moodle's assignment extensions): grant, move or remove one; the
institution's recorded messages follow the deadline in force (their ``late`` flag), as status always does."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection

from mailbot import store
from mailbot.errors import MailbotError, NotFound
from mailbot.models import Campaign

# An extension past this is a typing mistake (a wrong year), not a decision: refused rather than kept.
MAX_EXTENSION = timedelta(days=366)


class BadDeadline(MailbotError):
    """The new deadline is not later than the campaign's, or absurdly far after it.

    ``problem`` is ``"not_later"`` or ``"too_far"`` (the web pages word it for staff; the message is for the CLI).
    """

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


def check_until(campaign: Campaign, until: datetime) -> None:
    """Raise BadDeadline unless ``until`` (aware) lies after the campaign deadline and within MAX_EXTENSION of it."""
    deadline = campaign.deadline
    # Aware datetimes compare without building a new one, so even year 1 or 9999 cannot overflow here.
    if until <= deadline:
        raise BadDeadline(
            f"the new deadline {_iso(until)} must be later than the campaign deadline {deadline.isoformat()}",
            "not_later",
        )
    if until - deadline > MAX_EXTENSION:
        raise BadDeadline(
            f"the new deadline {_iso(until)} is more than a year after the campaign deadline {deadline.isoformat()}",
            "too_far",
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def grant(engine: Engine, campaign: Campaign, code: str, until: datetime, *, actor: str, reason: str) -> None:
    """Set (or move) one institution's deadline; lateness and reminders follow it from now on.

    ``until`` must be aware, later than the campaign deadline and at most MAX_EXTENSION after it (BadDeadline).
    """
    if until.tzinfo is None:
        raise ValueError("until must be timezone-aware")
    check_until(campaign, until)
    with store.atomic(engine) as conn:
        pk = store.institution_pk(conn, code)
        if pk is None:
            raise NotFound(f"no institution with code {code!r} in the roster")
        e = store.extensions
        conn.execute(e.delete().where(e.c.campaign_id == campaign.id, e.c.institution_id == pk))
        conn.execute(
            e.insert().values(
                campaign_id=campaign.id, institution_id=pk, until=until, reason=reason, actor=actor, at=store.now()
            )
        )
        _relate(conn, campaign.id, pk, until)
        conn.execute(
            store.actions.insert().values(
                action="extend",
                actor=actor,
                at=store.now(),
                detail=f"{campaign.id} {code} until {until.isoformat()} {reason}".strip(),
            )
        )


class NoExtension(MailbotError):
    """The institution has no extension to remove for this campaign."""


def remove(engine: Engine, campaign: Campaign, code: str, *, actor: str) -> datetime:
    """Take back an institution's own deadline: the campaign's applies again (lateness, reminders). Returns the
    deadline that was removed."""
    with store.atomic(engine) as conn:
        pk = store.institution_pk(conn, code)
        if pk is None:
            raise NotFound(f"no institution with code {code!r} in the roster")
        e = store.extensions
        until: datetime | None = conn.execute(
            select(e.c.until).where(e.c.campaign_id == campaign.id, e.c.institution_id == pk)
        ).scalar()
        if until is None:
            raise NoExtension(f"{code} has no extension for campaign {campaign.id}")
        conn.execute(e.delete().where(e.c.campaign_id == campaign.id, e.c.institution_id == pk))
        _relate(conn, campaign.id, pk, campaign.deadline)
        conn.execute(
            store.actions.insert().values(
                action="extend_remove",
                actor=actor,
                at=store.now(),
                detail=f"{campaign.id} {code} was {until.isoformat()}",
            )
        )
    return until


def _relate(conn: Connection, campaign_id: str, institution_pk: int, deadline: datetime) -> None:
    """The institution's messages of the campaign, late or not against the deadline now in force."""
    m = store.messages
    mine = (m.c.campaign_id == campaign_id, m.c.institution_id == institution_pk)
    conn.execute(update(m).where(*mine, m.c.received_at > deadline).values(late=True))
    conn.execute(update(m).where(*mine, m.c.received_at <= deadline).values(late=False))


def all_extensions(engine: Engine) -> dict[tuple[str, str], datetime]:
    """(campaign id, institution code) → its own deadline."""
    e, i = store.extensions, store.institutions
    with engine.connect() as conn:
        rows = conn.execute(select(e.c.campaign_id, i.c.code, e.c.until).join(i, i.c.id == e.c.institution_id))
        return {(r.campaign_id, r.code): r.until for r in rows}
