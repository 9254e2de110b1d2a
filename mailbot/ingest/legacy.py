"""The legacy .doc reports converted off the receipt's path: a .doc that LibreOffice did not convert within the
reading budget ([limits] doc_seconds) was recorded and acknowledged without its metadata, marked
``legacy_doc_pending``; after the batch (``run --once``) or in the scheduler (the service) it is converted again with
the per-file limit ([documents] seconds_per_file), and its metadata, heading and warnings are recorded then, as the
reading would have recorded them. A conversion that fails again leaves ``legacy_doc_unread``: never a loop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, Text, cast, select

from mailbot import store
from mailbot.clock import Clock
from mailbot.config import Settings
from mailbot.context import Context, make_context
from mailbot.ingest.parse import legacy_word
from mailbot.ingest.record import meta_dict
from mailbot.ingest.sanity import report_warnings
from mailbot.models import Notice, WarningCode

log = logging.getLogger("mailbot.ingest.legacy")

BATCH = 20  # files per pass: the service returns to its other work between passes
ATTEMPTS = 2  # a conversion killed for a hang is tried once more, with a fresh LibreOffice


@dataclass(frozen=True)
class PendingDoc:
    file_id: int
    path: str
    warnings: tuple[Notice, ...]
    institution: str  # the sender's institution code, "" when not identified
    campaign: str  # the campaign id, "" when none


def pending(engine: Engine, limit: int = BATCH) -> list[PendingDoc]:
    """The .doc files still waiting for their conversion, oldest first."""
    f, m, i = store.files, store.messages, store.institutions
    query = (
        select(f.c.id, f.c.path, f.c.warnings, i.c.code, m.c.campaign_id)
        .join(m, m.c.id == f.c.message_pk)
        .outerjoin(i, i.c.id == m.c.institution_id)
        .where(f.c.kind == "doc", cast(f.c.warnings, Text).like(f"%{WarningCode.LEGACY_DOC_PENDING.value}%"))
        .order_by(f.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [PendingDoc(r.id, r.path, r.warnings, r.code or "", r.campaign_id or "") for r in conn.execute(query)]


def convert_pending(
    settings: Settings,
    engine: Engine,
    should_stop: Callable[[], bool] = lambda: False,
    *,
    clock: Clock | None = None,
    ctx: Context | None = None,
) -> int:
    """Convert one batch of the pending .doc files and record what they say; returns how many were done."""
    todo = pending(engine)
    if todo and ctx is None:
        ctx = make_context(settings, engine, clock)
    done = 0
    for doc in todo:
        if should_stop():
            break
        assert ctx is not None  # made above when there is work
        update(engine, doc.file_id, _read(ctx, doc))
        done += 1
    return done


@dataclass(frozen=True)
class Reading:
    heading: str
    warnings: tuple[Notice, ...]
    meta: dict[str, object]


def _read(ctx: Context, doc: PendingDoc) -> Reading:
    earlier = tuple(n for n in doc.warnings if n.code is not WarningCode.LEGACY_DOC_PENDING)
    source = ctx.settings.archive_dir / doc.path if doc.path else None
    if source is None or not source.is_file():
        log.warning("file %s: the .doc is missing from the archive; left unread", doc.file_id)
        return Reading("", _unique(earlier + (Notice(WarningCode.LEGACY_DOC_UNREAD),)), {})
    data = source.read_bytes()
    budget = ctx.settings.documents.seconds_per_file
    for attempt in range(1, ATTEMPTS + 1):
        meta, heading, codes = legacy_word(data, budget, last_try=attempt == ATTEMPTS)
        if WarningCode.LEGACY_DOC_PENDING not in codes:
            break
        log.warning("file %s: LibreOffice did not convert it within %g s; trying again", doc.file_id, budget)
    found = tuple(Notice(c) for c in codes)
    if meta is None:
        log.warning("file %s: the .doc could not be converted; left unread", doc.file_id)
        return Reading("", _unique(earlier + found), {})
    inst = ctx.roster.get(doc.institution) if doc.institution else None
    campaign = next((c for c in ctx.campaigns if c.id == doc.campaign), None)
    checked = report_warnings(meta, inst, campaign, ctx.roster)
    return Reading(heading, _unique(earlier + found + checked), meta_dict(meta))


def _unique(notices: tuple[Notice, ...]) -> tuple[Notice, ...]:
    return tuple(dict.fromkeys(notices))


def update(engine: Engine, file_id: int, reading: Reading) -> None:
    with store.atomic(engine) as conn:
        conn.execute(
            store.files.update()
            .where(store.files.c.id == file_id)
            .values(heading=reading.heading, warnings=reading.warnings, meta=reading.meta)
        )
    log.info("file %s: the .doc converted after its receipt%s", file_id, "" if reading.meta else " (unread)")
