"""The installation at a glance for staff and the IT person: the services running and their last sign of life,
and the database's schema revision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mailbot import store
from mailbot.web.access import staff
from mailbot.web.core import web_of

SILENT_AFTER = timedelta(seconds=90)  # three missed heartbeats (the service beats every 30 s)


@dataclass(frozen=True)
class WorkerView:
    host: str
    pid: int
    inbox: str
    started_at: datetime
    seen_at: datetime
    alive: bool


def workers(engine: Engine, now: datetime) -> list[WorkerView]:
    w = store.workers
    with engine.connect() as conn:
        rows = conn.execute(select(w).order_by(w.c.host, w.c.started_at)).all()
    return [WorkerView(r.host, r.pid, r.inbox, r.started_at, r.seen_at, now - r.seen_at <= SILENT_AFTER) for r in rows]


@staff
async def system(request: Request) -> Response:
    from mailbot import migrate

    web = web_of(request)
    found = await run_in_threadpool(workers, web.engine, store.now())
    level = await run_in_threadpool(migrate.level, web.engine)
    return web.render(
        request,
        "system.html",
        title="Tình trạng hệ thống",
        workers=found,
        level=level,
        database=web.engine.dialect.name,
    )
