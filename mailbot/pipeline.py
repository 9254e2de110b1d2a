"""fetch → parse → identify → archive → record + receipt, in arrival order, errors contained per message.

The one module that knows the order of the stages; it holds the transaction in which a message is recorded and
acknowledged. Parsing a batch (MIME, Word reports) runs in reader processes (``mailbot.ingest.readers``) while this
process records the batch before it and fetches the next one."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mailbot import stamping, store
from mailbot.campaigns import roster_import
from mailbot.clock import Clock
from mailbot.config import Settings
from mailbot.context import Context, load_roster, make_context
from mailbot.errors import MailbotError, StorageError, first_line
from mailbot.ingest import archive, record
from mailbot.ingest.authenticity import hold_if_forged
from mailbot.ingest.identify import by_address_only, identify, oversized_reason
from mailbot.ingest.inbox import Inbox, open_inbox
from mailbot.ingest.parse import parse
from mailbot.ingest.readers import Pending, Read, Readers
from mailbot.ingest.record import Outcome
from mailbot.ingest.sanity import report_warnings
from mailbot.models import InboundMail, Notice, RawMail, State, Verdict, WarningCode
from mailbot.notify import receipts
from mailbot.notify.compose import is_ours
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
) -> RunReport:
    """Fetch and record everything new, move what was recorded (if configured), deliver the outbox."""
    report = RunReport(roster_problems=import_roster(settings, engine))
    archive.sweep_partial(settings.archive_dir)
    ctx = make_context(settings, engine, clock)
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
        raise StorageError(f"database unavailable: {first_line(exc)}") from None


def _drain(
    ctx: Context,
    box: Inbox,
    report: RunReport,
    on_message: Callable[[Outcome], None] | None,
    should_stop: Callable[[], bool],
) -> None:
    report.moved += _retry_moves(box, ctx.engine)
    with Readers(ctx.settings.limits, ctx.settings.inbox.reader_processes) as readers:
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
    """Record a batch in arrival order, then make it durable and move it; False when asked to stop (the rest of the
    batch, and whatever was fetched after it, waits on the server)."""
    done: list[Outcome] = []
    for raw, read in zip([raw for raw, _ in pending.items], readers.results(pending), strict=True):
        if should_stop():
            break
        done.append(process(raw, ctx, read))
        report.states[done[-1].state] += 1
        if on_message:
            on_message(done[-1])
    archive.flush_to_disk()  # files and database rows of this batch are on disk before anything else happens
    store.checkpoint(ctx.engine)
    report.moved += _move(box, ctx.engine, [o.uid for o in done if o.state != State.ERROR and not o.keep_on_server])
    return not should_stop()


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


def process(raw: RawMail, ctx: Context, read: Read | None = None) -> Outcome:
    """One message, end to end (``read``: its parsing, when a reader process did it). A bug on this message sets it
    aside with the reason (never lost); a disk or database that cannot take it stops the pass (StorageError) and the
    message waits on the server."""
    try:
        return _process(raw, ctx, read)
    except MailbotError:
        raise
    except OSError as exc:
        raise StorageError(
            f"cannot write the archive under {ctx.settings.archive_dir}: {exc.strerror or exc}"
        ) from None
    except SQLAlchemyError as exc:
        raise StorageError(f"database unavailable: {first_line(exc)}") from None


def _process(raw: RawMail, ctx: Context, read: Read | None) -> Outcome:
    fingerprint = archive.sha256(raw.data)
    if read is not None and read.mail is None:  # reading it failed in a reader process
        log.error("uid %s: could not be read; set aside for staff\n%s", raw.uid, read.trace.rstrip())
        reason = f"internal error while reading: {read.error}"
        return record.set_aside(raw, fingerprint, ctx.settings.archive_dir, ctx.engine, reason)
    try:
        mail = read.mail if read is not None and read.mail is not None else parse(raw, ctx.settings.limits)
        if raw.oversized:
            original = _recorded_before(fingerprint, mail, ctx)
            if original:  # the same message again (another alias, a resend): one record, one reply
                return record.record_duplicate(raw, ctx.engine, original, mail)
            return _record_oversized(raw, fingerprint, mail, ctx)
        verdict = judge(mail, ctx)
        mail = with_report_warnings(mail, verdict, ctx)
    except Exception as exc:  # noqa: BLE001 - any bug on one message must not stop the others
        log.exception("uid %s: could not be read; set aside for staff", raw.uid)
        reason = f"internal error while reading: {type(exc).__name__}: {exc}"
        return record.set_aside(raw, fingerprint, ctx.settings.archive_dir, ctx.engine, reason)
    duplicate = _recorded_before(fingerprint, mail, ctx)
    if duplicate:
        return record.record_duplicate(raw, ctx.engine, duplicate, mail)
    return _record(raw, fingerprint, mail, verdict, ctx)


def _recorded_before(fingerprint: str, mail: InboundMail, ctx: Context) -> int | None:
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


def _record(raw: RawMail, fingerprint: str, mail: InboundMail, verdict: Verdict, ctx: Context) -> Outcome:
    """Files first, then the rows and the receipt in one transaction: recorded means acknowledged, exactly once."""
    archived = record.archive_message(raw, fingerprint, mail, verdict, ctx.settings)
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
    return record.recorded(raw, mail, verdict, pk)


def _record_oversized(raw: RawMail, fingerprint: str, mail: InboundMail, ctx: Context) -> Outcome:
    """Over the size limit: its header is recorded and the message held for staff; it stays on the server.

    A school known by its (authenticated) address is told, so that it can send the Word file alone in time;
    it stays held (no campaign) until staff have looked at it in the mailbox."""
    mail = replace(mail, files=(), warnings=(Notice(WarningCode.MESSAGE_TOO_LARGE, str(raw.oversized)),))
    verdict = hold_if_forged(by_address_only(mail, ctx.roster), mail, ctx.settings.security)
    told = ctx.settings.notify.acknowledge and receipts.would_answer(mail, verdict, ctx)
    why = oversized_reason(raw.oversized, ctx.settings.limits.max_message_bytes, told, verdict.reason)
    verdict = bounce_checked(replace(verdict, reason=why), mail, ctx.key)
    return replace(_record(raw, fingerprint, mail, verdict, ctx), keep_on_server=True)


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
