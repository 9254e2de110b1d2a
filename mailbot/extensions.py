"""Staff-granted deadlines for one institution (as Moodle's assignment extensions)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from mailbot import store
from mailbot.errors import NotFound
from mailbot.models import Campaign


def grant(engine: Engine, campaign: Campaign, code: str, until: datetime, *, actor: str, reason: str) -> None:
    """Set (or move) one institution's deadline; lateness and reminders follow it from now on."""
    with store.atomic(engine) as conn:
        pk = store.institution_pk(conn, code)
        if pk is None:
            raise NotFound(f"no institution with code {code!r} in the roster")
        e = store.extensions
        conn.execute(e.delete().where(e.c.campaign_id == campaign.id, e.c.institution_id == pk))
        conn.execute(e.insert().values(campaign_id=campaign.id, institution_id=pk, until=until, reason=reason,
                                       actor=actor, at=store.now()))
        conn.execute(store.actions.insert().values(action="extend", actor=actor, at=store.now(),
                                                   detail=f"{campaign.id} {code} until {until.isoformat()} {reason}".strip()))


def all_extensions(engine: Engine) -> dict[tuple[str, str], datetime]:
    """(campaign id, institution code) → its own deadline."""
    e, i = store.extensions, store.institutions
    with engine.connect() as conn:
        rows = conn.execute(select(e.c.campaign_id, i.c.code, e.c.until).join(i, i.c.id == e.c.institution_id))
        return {(r.campaign_id, r.code): r.until for r in rows}
