"""fetch → parse → identify → archive → record, one message at a time, errors contained per message."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mailbot import store
from mailbot.campaigns import roster_import
from mailbot.config import Settings
from mailbot.context import Context, load_roster, make_context
from mailbot.documents.sanity import report_warnings
from mailbot.errors import MailbotError, StorageError
from mailbot.ingest import archive
from mailbot.ingest.authenticity import hold_if_forged
from mailbot.ingest.identify import identify
from mailbot.ingest.inbox import Inbox, open_inbox
from mailbot.ingest.parse import parse
from mailbot.ingest.record import Outcome, record, record_duplicate, record_oversized, set_aside
from mailbot.models import InboundMail, RawMail, Verdict
from mailbot.notify import outbox
from mailbot.notify.outbox import DeliveryReport

__all__ = ["Context", "Outcome", "RunReport", "drain", "import_roster", "load_roster", "make_context", "run_once"]

log = logging.getLogger("mailbot.pipeline")


@dataclass
class RunReport:
    states: Counter[str] = field(default_factory=Counter)
    moved: int = 0
    roster_problems: tuple[str, ...] = ()
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    @property
    def fetched(self) -> int:
        return sum(self.states.values())


def import_roster(settings: Settings, engine: Engine) -> tuple[str, ...]:
    """The configured roster file into the database, only if it changed since last seen (the database is the
    roster: a CLI import is never reverted); returns the problems found in the file when it was read."""
    return roster_import.import_configured(settings.roster.file, engine)


def run_once(
    settings: Settings,
    engine: Engine,
    *,
    inbox: Inbox | None = None,
    on_message: Callable[[Outcome], None] | None = None,
    now: datetime | None = None,
) -> RunReport:
    """Fetch and record everything new, move what was recorded (if configured), deliver the outbox."""
    report = RunReport(roster_problems=import_roster(settings, engine))
    archive.sweep_partial(settings.archive_dir)
    ctx = make_context(settings, engine, now)
    with inbox or open_inbox(settings.inbox, settings.limits.max_message_bytes) as box:
        drain(ctx, box, report, on_message)
    report.delivery = outbox.deliver_due(settings, engine, ctx.clock())
    return report


def drain(
    ctx: Context,
    box: Inbox,
    report: RunReport,
    on_message: Callable[[Outcome], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Process what is new in an open inbox; stops between two messages when asked (the rest waits)."""
    try:
        _drain(ctx, box, report, on_message, should_stop)
    except SQLAlchemyError as exc:  # a locked or unreachable database: nothing is lost, the mail waits
        raise StorageError(f"database unavailable: {str(getattr(exc, 'orig', exc)).splitlines()[0]}") from None


def _drain(
    ctx: Context,
    box: Inbox,
    report: RunReport,
    on_message: Callable[[Outcome], None] | None,
    should_stop: Callable[[], bool],
) -> None:
    report.moved += _retry_moves(box, ctx.engine)
    for batch in box.batches(lambda validity: _known(ctx.engine, box.source, validity)):
        done: list[Outcome] = []
        for raw in batch:
            if should_stop():
                break
            done.append(process(raw, ctx))
            report.states[done[-1].state] += 1
            if on_message:
                on_message(done[-1])
        archive.flush_to_disk()  # files and database rows of this batch are on disk before anything else happens
        store.checkpoint(ctx.engine)
        report.moved += _move(box, ctx.engine, [o.uid for o in done if o.state != "error" and not o.keep_on_server])
        if should_stop():
            return


def _known(engine: Engine, source: str, uidvalidity: int) -> set[str]:
    with engine.connect() as conn:
        return store.known_uids(conn, source, uidvalidity)


def _retry_moves(box: Inbox, engine: Engine) -> int:
    """Moves that a crash interrupted: recorded, but not yet confirmed as moved."""
    with engine.connect() as conn:
        pending = store.unmoved_uids(conn, box.source, box.uidvalidity)
    still_there = box.present(pending)
    if not still_there:
        return 0
    return _move(box, engine, still_there)


def _move(box: Inbox, engine: Engine, uids: list[str]) -> int:
    if not uids or not box.present(set(uids)):
        return 0
    store.checkpoint(engine)  # the record must survive a power cut before the server forgets the message
    box.move(uids)
    with store.atomic(engine) as conn:
        store.mark_moved(conn, box.source, box.uidvalidity, uids)
    return len(uids)


def process(raw: RawMail, ctx: Context) -> Outcome:
    """One message, end to end. A bug on this message sets it aside with the reason (never lost); a disk or
    database that cannot take it stops the pass (StorageError) and the message waits on the server."""
    try:
        return _process(raw, ctx)
    except MailbotError:
        raise
    except OSError as exc:
        raise StorageError(
            f"cannot write the archive under {ctx.settings.archive_dir}: {exc.strerror or exc}"
        ) from None
    except SQLAlchemyError as exc:
        raise StorageError(f"database unavailable: {str(getattr(exc, 'orig', exc)).splitlines()[0]}") from None


def _process(raw: RawMail, ctx: Context) -> Outcome:
    fingerprint = archive.sha256(raw.data)
    try:
        mail = parse(raw, ctx.settings.limits)
        if raw.oversized:
            return record_oversized(raw, fingerprint, mail, ctx)
        verdict = hold_if_forged(identify(mail, ctx.roster, ctx.campaigns, ctx.extensions), mail, ctx.settings.security)
        mail = with_report_warnings(mail, verdict, ctx)
    except Exception as exc:  # noqa: BLE001 - any bug on one message must not stop the others
        log.exception("uid %s: could not be read; set aside for staff", raw.uid)
        return set_aside(raw, fingerprint, ctx, f"internal error while reading: {type(exc).__name__}: {exc}")
    with ctx.engine.connect() as conn:
        duplicate = store.duplicate_of(conn, fingerprint, mail.message_id, mail.sender)
    if duplicate:
        return record_duplicate(raw, ctx, duplicate, mail)
    return record(raw, fingerprint, mail, verdict, ctx)


def with_report_warnings(mail: InboundMail, verdict: Verdict, ctx: Context) -> InboundMail:
    """Each Word report checked against who sent it and what was asked (wrong file, old report...)."""
    campaign = next((c for c in ctx.campaigns if c.id == verdict.campaign_id), None)
    checked = tuple(
        replace(
            f,
            warnings=tuple(
                dict.fromkeys(f.warnings + report_warnings(f.meta, verdict.institution, campaign, ctx.roster))
            ),
        )
        if f.meta
        else f
        for f in mail.files
    )
    return replace(mail, files=checked)
