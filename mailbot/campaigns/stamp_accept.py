"""Staff accept an institution's stamped copy by hand (a PDF whose doubt they resolved by looking at it), or take
the acceptance back; each in the change log."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from mailbot import store
from mailbot.campaigns.paper import institution_of, log_action
from mailbot.models import Campaign


@dataclass(frozen=True)
class StampChange:
    code: str
    name: str
    changed: bool  # False: it was already so (accepted twice, or nothing to undo)


def accept(engine: Engine, campaign: Campaign, code: str, *, actor: str) -> StampChange:
    """Record that staff accept the institution's stamped copy for the campaign (once; a repeat changes nothing)."""
    with store.atomic(engine) as conn:
        pk, name = institution_of(conn, code)
        values = {"campaign_id": campaign.id, "institution_id": pk, "actor": actor, "at": store.now()}
        added = store.insert_ignore(conn, store.stamp_accepted, values)
        if added:
            log_action(conn, "stamp_accept", actor, f"{campaign.id} {code}")
    return StampChange(code, name, added)


def undo(engine: Engine, campaign: Campaign, code: str, *, actor: str) -> StampChange:
    """Take the acceptance back: the stamped copy counts again only if a PDF was verified."""
    with store.atomic(engine) as conn:
        pk, name = institution_of(conn, code)
        a = store.stamp_accepted
        where = (a.c.campaign_id == campaign.id, a.c.institution_id == pk)
        was = conn.execute(select(a.c.id).where(*where)).first() is not None
        if was:
            conn.execute(a.delete().where(*where))
            log_action(conn, "stamp_accept_undo", actor, f"{campaign.id} {code}")
    return StampChange(code, name, was)
