"""fetch → parse → identify → archive → record + receipt, in arrival order, errors contained per message.

The one module that knows the order of the stages; it holds the transaction in which a message is recorded and
acknowledged. Parsing a batch (MIME, Word reports) runs in reader processes (``mailbot.ingest.readers``) while this
process records the batch before it and fetches the next one."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar, overload

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mailbot import stamping, store
from mailbot.campaigns import roster_import
from mailbot.clock import Clock
from mailbot.config import Settings
from mailbot.context import Context, load_roster, make_context
from mailbot.errors import MailbotError, StorageError, first_line
from mailbot.ingest import archive, legacy, record
from mailbot.ingest.authenticity import hold_if_forged
from mailbot.ingest.identify import by_address_only, identify, oversized_reason
from mailbot.ingest.inbox import Inbox, open_inbox
from mailbot.ingest.parse import parse
from mailbot.ingest.readers import Pending, Read, Readers
from mailbot.ingest.record import Outcome
from mailbot.ingest.sanity import report_warnings
from mailbot.models import InboundMail, Notice, RawMail, State, Verdict, WarningCode
from mailbot.notify import receipts
from mailbot.notify.compose import Templates, is_ours
from mailbot.notify.outbox import Delivery, DeliveryReport
from mailbot.oauth import TokenCache

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
    clock: Clock | None = None,
    templates: Templates | None = None,
) -> RunReport:
    """Fetch and record everything new, move what was recorded (if configured), deliver the outbox (``templates``:
    loaded already, else loaded now)."""
    report = RunReport(roster_problems=import_roster(settings, engine))
    archive.sweep_partial(settings.archive_dir)
    ctx = make_context(settings, engine, clock, templates=templates)
    tokens = TokenCache()  # one OAuth2 refresh serves the inbox and the outbox of the same account
    if inbox is not None:
        with inbox as box:
            drain(ctx, box, report, on_message)
    for source in () if inbox is not None else settings.inboxes:  # each configured inbox in turn
        with open_inbox(source, settings.limits.max_message_bytes, tokens) as box:
            drain(ctx, box, report, on_message)
    while stamping.verify_pending(settings, engine, clock=ctx.clock):  # after the receipts: a scan never delays one
        pass
    report.delivery = Delivery.of(settings, engine, tokens).deliver_due(ctx.clock.now())
    while legacy.convert_pending(settings, engine, ctx=ctx):  # the .doc files too slow to read: after the receipts
        pass
    return report


def drain(
    ctx: Context,
    box: Inbox,
    report: RunReport,
    on_message: Callable[[Outcome], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    readers: Readers | None = None,
) -> None:
    """Process what is new in an open inbox; stops between two messages when asked (the rest waits). ``readers``:
    the service's lasting reader processes; without them, readers are started for this pass."""
    try:
        with nullcontext(readers) if readers else Readers.of(ctx.settings) as r:
            _drain(ctx, box, report, on_message, should_stop, r)
    except SQLAlchemyError as exc:  # a locked or unreachable database: nothing is lost, the mail waits
        raise StorageError(f"database unavailable: {first_line(exc)}") from None


def _drain(
    ctx: Context,
    box: Inbox,
    report: RunReport,
    on_message: Callable[[Outcome], None] | None,
    should_stop: Callable[[], bool],
    readers: Readers,
) -> None:
    report.moved += _retry_moves(box, ctx.engine)
    waiting: Pending | None = None
    for batch in box.batches(lambda validity: _known(ctx.engine, box.source, validity)):
        pending = readers.submit(batch)  # read by the workers while the batch before is recorded
        if waiting is not None and not _record_batch(ctx, box, readers, waiting, report, on_message, should_stop):
            return
        waiting = pending
    if waiting is not None:
        _record_batch(ctx, box, readers, waiting, report, on_message, should_stop)


def _record_batch(
    ctx: Context,
    box: Inbox,
    readers: Readers,
    pending: Pending,
    report: RunReport,
    on_message: Callable[[Outcome], None] | None,
    should_stop: Callable[[], bool],
) -> bool:
    """Record a batch, then make it durable and move it; False when asked to stop (the rest of the batch, and
    whatever was fetched after it, waits on the server).

    The messages that are simply recorded (most of them) are recorded together, in one transaction with their
    receipts (``_Group``). A duplicate of a recorded message or a message set aside is noted at once in a small
    transaction of its own; a message that repeats one in the group (same bytes, or same Message-ID and sender)
    first commits the group, so that it is judged against what is recorded."""
    done: list[Outcome] = []
    group = _Group(ctx)

    def finished(outcome: Outcome) -> None:
        done.append(outcome)
        report.states[outcome.state] += 1
        if on_message:
            on_message(outcome)

    raws = [raw for raw, _ in pending.items]
    reads = list(readers.results(pending))
    seen = _recorded_among(ctx, raws, reads)
    for raw, read in zip(raws, reads, strict=True):
        if should_stop():
            break
        ready = process(raw, ctx, read, alone=False, seen=seen)
        if isinstance(ready, Outcome):
            finished(ready)
        elif group.repeats(ready):
            for outcome in group.commit():
                finished(outcome)
            finished(_record_alone(ctx, ready, recheck=True))
        else:
            group.add(ready)
    for outcome in group.commit():
        finished(outcome)
    # Files and database rows of this batch on disk before anything else happens: one sync(2) covers both (the
    # SQLite journal is a file like the archive's), so the move needs no checkpoint of its own.
    archive.flush_to_disk()
    moving = [o.uid for o in done if o.state != State.ERROR and not o.keep_on_server]
    report.moved += _move(box, ctx.engine, moving, durable=True)
    return not should_stop()


@dataclass(frozen=True)
class _Ready:
    """A message read and judged, not a duplicate of anything recorded: what remains is to record it."""

    raw: RawMail
    fingerprint: str
    mail: InboundMail
    verdict: Verdict
    keep_on_server: bool = False
    eml_kept: bool = False  # the reader process wrote its original to the archive already


class _Group:
    """Messages recorded in one transaction: files first, then every row and receipt, committed together (a crash
    records all of them or none; a message is moved on the server only after the batch is durable)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.items: list[_Ready] = []
        self.keys: set[object] = set()

    def repeats(self, ready: _Ready) -> bool:
        """Whether the message is the same as one in the group, or one the group committed earlier in the batch
        (neither is in what the batch saw recorded before it)."""
        return bool({ready.fingerprint, (ready.mail.message_id, ready.mail.sender)} & self.keys)

    def add(self, ready: _Ready) -> None:
        self.items.append(ready)
        self.keys |= {ready.fingerprint, (ready.mail.message_id, ready.mail.sender)}

    def commit(self) -> list[Outcome]:
        # The keys stay: a later message of the batch that repeats one committed now must be judged against the
        # database again (the batch's ``seen`` was read before this commit).
        items, self.items = self.items, []
        if not items:
            return []
        if len(items) == 1:
            return [_record_alone(self.ctx, items[0])]
        return _guarded(self.ctx, lambda: self._commit(items))

    def _commit(self, items: list[_Ready]) -> list[Outcome]:
        ctx = self.ctx
        at_most = sum(1 + len(r.mail.files) for r in items)  # files to write: each .eml and attachment, at most
        with archive.Writer(at_most) as writer:  # a backlog's files are written while the rows and receipts are made
            archived = [
                record.archive_message(r.raw, r.fingerprint, r.mail, r.verdict, ctx.settings, writer.write, r.eml_kept)
                for r in items
            ]
            try:
                with store.atomic(ctx.engine) as conn, store.remembering_institutions(conn):
                    rows = [record.Row(r.raw, r.fingerprint, r.mail, r.verdict, a) for r, a in zip(items, archived)]
                    pks = record.insert_many(conn, rows)
                    receipts.queue_receipts(
                        conn, ctx, [(pk, r.mail, r.verdict) for r, pk in zip(items, pks, strict=True)]
                    )
                    writer.wait()  # written before the rows that name them are committed (or the pass stops)
            except IntegrityError:  # another run recorded one of them meanwhile: each alone, as it would have been
                writer.wait()
                return [_record_ready(ctx, r, files, recheck=True) for r, files in zip(items, archived, strict=True)]
        return [
            replace(record.recorded(r.raw, r.mail, r.verdict, pk), keep_on_server=r.keep_on_server)
            for r, pk in zip(items, pks, strict=True)
        ]


def _recorded_among(ctx: Context, raws: list[RawMail], reads: list[Read]) -> store.Recorded:
    """Which of the batch is recorded already (before this batch): one look-up for all of it."""
    with ctx.engine.connect() as conn:
        return store.recorded_among(
            conn, [raw.fingerprint for raw in raws], [r.mail.message_id for r in reads if r.mail]
        )


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


def _move(box: Inbox, engine: Engine, uids: list[str], *, durable: bool = False) -> int:
    """Move recorded messages on the server; ``durable``: their records were just synced to disk."""
    if not uids or not box.present(set(uids)):
        return 0
    if not durable:
        store.checkpoint(engine)  # the record must survive a power cut before the server forgets the message
    box.move(uids)
    with store.atomic(engine) as conn:
        store.mark_moved(conn, box.source, box.uidvalidity, uids)
    return len(uids)


@overload
def process(raw: RawMail, ctx: Context, read: Read | None = None) -> Outcome: ...


@overload
def process(
    raw: RawMail, ctx: Context, read: Read | None, *, alone: Literal[False], seen: store.Recorded
) -> Outcome | _Ready: ...


def process(
    raw: RawMail, ctx: Context, read: Read | None = None, *, alone: bool = True, seen: store.Recorded | None = None
) -> Outcome | _Ready:
    """One message, end to end (``read``: its parsing, when a reader process did it). A bug on this message sets it
    aside with the reason (never lost); a disk or database that cannot take it stops the pass (StorageError) and the
    message waits on the server. With ``alone=False`` a message that is simply to be recorded is handed back
    (``_Ready``) for the batch's transaction; ``seen``: what of its batch was recorded before it."""
    ready = _guarded(ctx, lambda: _process(raw, ctx, read, seen))
    if alone and isinstance(ready, _Ready):
        return _record_alone(ctx, ready)
    return ready


def _record_alone(ctx: Context, ready: _Ready, *, recheck: bool = False) -> Outcome:
    return _guarded(ctx, lambda: _record_ready(ctx, ready, recheck=recheck))


T = TypeVar("T")


def _guarded(ctx: Context, work: Callable[[], T]) -> T:
    """A disk or database that cannot take the work stops the pass (StorageError): the mail waits on the server."""
    try:
        return work()
    except MailbotError:
        raise
    except OSError as exc:
        raise StorageError(
            f"cannot write the archive under {ctx.settings.archive_dir}: {exc.strerror or exc}"
        ) from None
    except SQLAlchemyError as exc:
        raise StorageError(f"database unavailable: {first_line(exc)}") from None


def _process(raw: RawMail, ctx: Context, read: Read | None, seen: store.Recorded | None) -> Outcome | _Ready:
    fingerprint = raw.fingerprint
    if read is not None and read.mail is None:  # reading it failed in a reader process
        log.error("uid %s: could not be read; set aside for staff\n%s", raw.uid, read.trace.rstrip())
        reason = f"internal error while reading: {read.error}"
        return record.set_aside(raw, fingerprint, ctx.settings.archive_dir, ctx.engine, reason)
    try:
        mail = read.mail if read is not None and read.mail is not None else parse(raw, ctx.settings.limits)
        if raw.oversized:
            original = _recorded_before(fingerprint, mail, ctx, seen)
            if original:  # the same message again (another alias, a resend): one record, one reply
                return record.record_duplicate(raw, ctx.engine, original, mail)
            return _oversized(raw, fingerprint, mail, ctx)
        verdict = judge(mail, ctx)
        mail = with_report_warnings(mail, verdict, ctx)
    except Exception as exc:  # noqa: BLE001 - any bug on one message must not stop the others
        log.exception("uid %s: could not be read; set aside for staff", raw.uid)
        reason = f"internal error while reading: {type(exc).__name__}: {exc}"
        return record.set_aside(raw, fingerprint, ctx.settings.archive_dir, ctx.engine, reason)
    duplicate = _recorded_before(fingerprint, mail, ctx, seen)
    if duplicate:
        return record.record_duplicate(raw, ctx.engine, duplicate, mail)
    return _Ready(raw, fingerprint, mail, verdict, eml_kept=read is not None and read.eml_kept)


def _recorded_before(
    fingerprint: str, mail: InboundMail, ctx: Context, seen: store.Recorded | None = None
) -> int | None:
    if seen is not None:
        return seen.of(fingerprint, mail.message_id, mail.sender)
    with ctx.engine.connect() as conn:
        return store.duplicate_of(conn, fingerprint, mail.message_id, mail.sender)


def judge(mail: InboundMail, ctx: Context) -> Verdict:
    """Who sent it and for which campaign, unless its From is not to be believed; a bounce of our own mail."""
    verdict = identify(mail, ctx.roster, ctx.campaigns, ctx.extensions)
    return bounce_checked(hold_if_forged(verdict, mail, ctx.settings.security), mail, ctx.key)


def bounce_checked(verdict: Verdict, mail: InboundMail, key: bytes) -> Verdict:
    """A delivery failure of a message we sent (its Message-ID signed with our key) is a bounce, whoever it is from."""
    if mail.bounce and is_ours(key, mail.bounce.original_message_id):
        return replace(verdict, state=State.BOUNCE)
    return verdict


def _record_ready(
    ctx: Context, ready: _Ready, archived: record.Archived | None = None, *, recheck: bool = False
) -> Outcome:
    """One message alone: files first, then its rows and receipt in one transaction (recorded means acknowledged,
    exactly once). ``recheck``: judged again against what is recorded (it may repeat a message just recorded)."""
    raw, fingerprint, mail, verdict = ready.raw, ready.fingerprint, ready.mail, ready.verdict
    original = _recorded_before(fingerprint, mail, ctx) if recheck else None
    if original:
        return record.record_duplicate(raw, ctx.engine, original, mail)
    archived = archived or record.archive_message(
        raw, fingerprint, mail, verdict, ctx.settings, eml_kept=ready.eml_kept
    )
    try:
        with store.atomic(ctx.engine) as conn:
            pk = record.insert(conn, raw, fingerprint, mail, verdict, archived)
            receipts.queue_receipt(conn, ctx, pk, mail, verdict)
    except IntegrityError as exc:
        original = _recorded_before(fingerprint, mail, ctx)
        if original is None:  # a conflict other than "recorded meanwhile": set aside, never a retry loop
            why = first_line(exc)
            return record.set_aside(raw, fingerprint, ctx.settings.archive_dir, ctx.engine, f"database refused: {why}")
        return record.record_duplicate(raw, ctx.engine, original, mail)  # recorded meanwhile by another run
    return replace(record.recorded(raw, mail, verdict, pk), keep_on_server=ready.keep_on_server)


def _oversized(raw: RawMail, fingerprint: str, mail: InboundMail, ctx: Context) -> _Ready:
    """Over the size limit: its header is recorded and the message held for staff; it stays on the server.

    A school known by its (authenticated) address is told, so that it can send the Word file alone in time;
    it stays held (no campaign) until staff have looked at it in the mailbox."""
    mail = replace(mail, files=(), warnings=(Notice(WarningCode.MESSAGE_TOO_LARGE, str(raw.oversized)),))
    verdict = hold_if_forged(by_address_only(mail, ctx.roster), mail, ctx.settings.security)
    told = ctx.settings.notify.acknowledge and receipts.would_answer(mail, verdict, ctx)
    why = oversized_reason(raw.oversized, ctx.settings.limits.max_message_bytes, told, verdict.reason)
    verdict = bounce_checked(replace(verdict, reason=why), mail, ctx.key)
    return _Ready(raw, fingerprint, mail, verdict, keep_on_server=True)


def with_report_warnings(mail: InboundMail, verdict: Verdict, ctx: Context) -> InboundMail:
    """Each Word report checked against who sent it and what was asked (wrong file, old report...)."""
    checked = tuple(
        replace(
            f,
            warnings=tuple(
                dict.fromkeys(f.warnings + report_warnings(f.meta, verdict.institution, verdict.campaign, ctx.roster))
            ),
        )
        if f.meta
        else f
        for f in mail.files
    )
    return replace(mail, files=checked)
