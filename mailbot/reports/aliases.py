"""Mappings staff accepted in the consolidation ("this school's 'Số buổi TT' is the template's 'Số buổi'"), kept in
the database (``store.compile_aliases``) for every later consolidation, and logged in the change log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from mailbot import store
from mailbot.reports.matching import Aliases
from mailbot.reports.template import label_key
from mailbot.text import fold

KINDS = ("row", "column")


def load_aliases(engine: Engine) -> Aliases:
    t = store.compile_aliases
    with engine.connect() as conn:
        rows = list(conn.execute(select(t.c.kind, t.c.found, t.c.target)))
    return Aliases(
        columns={r.found: r.target for r in rows if r.kind == "column"},
        rows={r.found: r.target for r in rows if r.kind == "row"},
    )


def key_of(kind: str, text: str) -> str:
    """How a name is compared: a row label without its numbering, a column header folded."""
    return label_key(text) if kind == "row" else fold(text)


def remember_alias(engine: Engine, kind: str, found: str, target: str, *, actor: str, now: datetime) -> None:
    """From now on ``found`` (a school's row label or column header) is read as the template's ``target``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    t = store.compile_aliases
    values = {"kind": kind, "found": key_of(kind, found), "target": key_of(kind, target), "actor": actor, "at": now}
    if not values["found"] or not values["target"]:
        raise ValueError("both names must have words")
    what = "dòng" if kind == "row" else "cột"
    with store.atomic(engine) as conn:
        conn.execute(t.delete().where(t.c.kind == kind, t.c.found == values["found"]))
        conn.execute(t.insert().values(**values))
        conn.execute(
            store.actions.insert().values(
                action="compile_alias",
                actor=actor,
                detail=f"Tổng hợp: {what} “{found}” được hiểu là “{target}” của mẫu báo cáo",
                at=now,
            )
        )


__all__ = ["KINDS", "key_of", "load_aliases", "remember_alias"]
