"""fetch → parse → identify → archive → record, one message at a time, errors contained per message."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mailbot import archive, outbox, receipts, roster as roster_file, store
from mailbot.authenticity import hold_if_forged
from mailbot.config import Settings
from mailbot.docmeta import DocMeta
from mailbot.sanity import report_warnings
from mailbot.extensions import all_extensions
from mailbot.identify import Roster, identify
from mailbot.inbox import Inbox, open_inbox
from mailbot.models import ArchivedFile, Campaign, FileKind, InboundMail, RawMail, Verdict
from mailbot.notify import Templates, compose, is_ours, load_templates, secret_key
from mailbot.outbox import DeliveryReport
from mailbot.parse import parse

log = logging.getLogger("mailbot.pipeline")


@dataclass(frozen=True)
class Outcome:
    """What became of one fetched message."""

    uid: str
    state: str  # submission | no_report | review | error | duplicate
    message_pk: int
    institution: str = ""
    detail: str = ""
    keep_on_server: bool = False  # never moved to the processed folder (staff must see it in the mailbox)


@dataclass
class RunReport:
    states: Counter[str] = field(default_factory=Counter)
    moved: int = 0
    roster_problems: tuple[str, ...] = ()
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    @property
    def fetched(self) -> int:
        return sum(self.states.values())


@dataclass(frozen=True)
class Context:
    settings: Settings
    engine: Engine
    roster: Roster
    campaigns: tuple[Campaign, ...]
    templates: Templates
    key: bytes  # signs our Message-IDs so bounces can be matched to what we sent
    extensions: dict[tuple[str, str], datetime]
    now: datetime | None = None

    def clock(self) -> datetime:
        return self.now or store.now()

    @property
    def own_addresses(self) -> set[str]:
        return {self.settings.outbox.address, self.settings.inbox.username.lower()} - {""}


def make_context(
    settings: Settings, engine: Engine, now: datetime | None = None, *, templates: Templates | None = None
) -> Context:
    """Everything one pass needs, read fresh (roster, extensions) so that staff changes apply at once."""
    return Context(
        settings, engine, load_roster(engine), settings.campaigns(), templates or load_templates(settings),
        secret_key(settings.data_dir), all_extensions(engine), now,
    )


def import_roster(settings: Settings, engine: Engine) -> tuple[str, ...]:
    """Bring the configured roster file into the database; returns the problems found in it."""
    if settings.roster.file is None:
        return ()
    read = roster_file.read(settings.roster.file)
    with store.atomic(engine) as conn:
        store.upsert_institutions(conn, read.institutions)
    for problem in read.problems:
        log.warning("roster %s: %s", settings.roster.file.name, problem)
    return read.problems


def load_roster(engine: Engine) -> Roster:
    with engine.connect() as conn:
        return Roster.of(store.load_institutions(conn))


def run_once(
    settings: Settings, engine: Engine, *, inbox: Inbox | None = None,
    on_message: Callable[[Outcome], None] | None = None, now: datetime | None = None,
) -> RunReport:
    """Fetch and record everything new, move what was recorded (if configured), deliver the outbox."""
    report = RunReport(roster_problems=import_roster(settings, engine))
    ctx = make_context(settings, engine, now)
    with inbox or open_inbox(settings.inbox, settings.limits.max_message_bytes) as box:
        drain(ctx, box, report, on_message)
    report.delivery = outbox.deliver_due(settings, engine, ctx.clock())
    return report


def drain(
    ctx: Context, box: Inbox, report: RunReport, on_message: Callable[[Outcome], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Process what is new in an open inbox; stops between two messages when asked (the rest waits)."""
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
    """One message, end to end; an unexpected failure sets it aside with the reason (never lost)."""
    fingerprint = archive.sha256(raw.data)
    try:
        mail = parse(raw, ctx.settings.limits)
        if raw.oversized:
            return _record_oversized(raw, fingerprint, mail, ctx)
        verdict = hold_if_forged(identify(mail, ctx.roster, ctx.campaigns, ctx.extensions), mail, ctx.settings.security)
        mail = with_report_warnings(mail, verdict, ctx)
    except Exception as exc:  # noqa: BLE001 - any bug on one message must not stop the others
        log.exception("uid %s: could not be read; set aside for staff", raw.uid)
        return _set_aside(raw, fingerprint, ctx, f"internal error while reading: {type(exc).__name__}: {exc}")
    with ctx.engine.connect() as conn:
        duplicate = store.duplicate_of(conn, fingerprint, mail.message_id, mail.sender)
    if duplicate:
        return _record_duplicate(raw, ctx, duplicate, mail)
    return _record(raw, fingerprint, mail, verdict, ctx)


def with_report_warnings(mail: InboundMail, verdict: Verdict, ctx: Context) -> InboundMail:
    """Each Word report checked against who sent it and what was asked (wrong file, old report...)."""
    campaign = next((c for c in ctx.campaigns if c.id == verdict.campaign_id), None)
    checked = tuple(
        replace(f, warnings=tuple(dict.fromkeys(f.warnings + report_warnings(f.meta, verdict.institution, campaign, ctx.roster))))
        if f.meta else f
        for f in mail.files
    )
    return replace(mail, files=checked)


def _record_oversized(raw: RawMail, fingerprint: str, mail: InboundMail, ctx: Context) -> Outcome:
    """Over the size limit: its header is recorded and the message held for staff; it stays on the server."""
    size_mb = raw.oversized / (1 << 20)
    mail = replace(mail, files=(), warnings=(f"message_too_large:{raw.oversized}",))
    verdict = Verdict(None, None, None, reason=f"thư quá lớn ({size_mb:.0f} MB) nên chưa được xử lý; đề nghị xem trực tiếp trong hộp thư")
    return replace(_record(raw, fingerprint, mail, verdict, ctx), keep_on_server=True)


def _state(mail: InboundMail, verdict: Verdict, ctx: Context) -> str:
    if mail.bounce and is_ours(ctx.key, mail.bounce.original_message_id):
        return "bounce"
    if verdict.needs_review:
        return "review"
    return "submission" if mail.reports else "no_report"


def _record(raw: RawMail, fingerprint: str, mail: InboundMail, verdict: Verdict, ctx: Context) -> Outcome:
    state = _state(mail, verdict, ctx)
    folder = (
        archive.institution_folder(verdict.campaign_id, verdict.institution)
        if verdict.institution and verdict.campaign_id
        else archive.review_folder(mail.arrived)
    )
    eml = archive.eml_path(raw.internaldate, fingerprint)
    archive.write(ctx.settings.archive_dir, eml, raw.data)
    kept = [archive_file(ctx, folder, mail, fingerprint, i) for i in range(len(mail.files))]
    try:
        with store.atomic(ctx.engine) as conn:
            pk = insert_message(conn, raw, fingerprint, mail, verdict, state, str(eml))
            insert_files(conn, pk, kept)
            store.add_location(conn, raw.source, raw.uidvalidity, raw.uid, pk)
            if state == "bounce" and mail.bounce:
                for address in mail.bounce.recipients:
                    store.mark_undeliverable(conn, address, f"bounce {mail.bounce.status}".strip())
            acknowledge(conn, ctx, pk, mail, verdict, state)
    except IntegrityError:
        return _record_duplicate(raw, ctx, None, mail)  # recorded meanwhile by another run
    code = verdict.institution.code if verdict.institution else ""
    log.info("recorded %s from %s as %s%s", mail.message_id, mail.sender or "?", state, f" ({code})" if code else "",
             extra={"message_id": mail.message_id, "institution": code, "state": state})
    return Outcome(raw.uid, state, pk, code, verdict.reason)


def acknowledge(conn: Connection, ctx: Context, pk: int, mail: InboundMail, verdict: Verdict, state: str) -> None:
    """Queue the receipt in the same transaction as the record: recorded means acknowledged, exactly once."""
    kind = receipts.ack_kind(mail, verdict, state, ctx.own_addresses)
    if kind is None or not ctx.settings.notify.acknowledge:
        return
    campaign = next((c for c in ctx.campaigns if c.id == verdict.campaign_id), None)
    settings = ctx.settings
    context = receipts.ack_context(mail, verdict, campaign, pk, settings.outbox, settings.zone, settings.outbox.address)
    rendered = ctx.templates.render(kind, context)
    msg = compose(settings.outbox, ctx.key, kind, (mail.sender,), rendered, in_reply_to=mail.message_id,
                  references=mail.references, when=ctx.clock())
    inst_pk = store.institution_pk(conn, verdict.institution.code) if verdict.institution else None
    outbox.queue(conn, key=f"ack:{pk}", kind=kind, msg=msg, recipients=(mail.sender,), now=ctx.clock(),
                 day_start=local_day_start(ctx.clock(), settings.zone), limit=settings.notify.max_auto_per_address_per_day,
                 message_pk=pk, institution_id=inst_pk, campaign_id=verdict.campaign_id)


def local_day_start(moment: datetime, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def archive_file(ctx: Context, folder: PurePosixPath, mail: InboundMail, fingerprint: str, index: int) -> ArchivedFile:
    """Report files and PDF scans get their own copy in the institution's folder; the rest stays in the .eml."""
    item = mail.files[index]
    path = ""
    if item.data and (item.is_report or item.kind == FileKind.PDF):
        relative = folder / archive.file_name(mail.arrived, fingerprint, index, item.name)
        archive.write(ctx.settings.archive_dir, relative, item.data)
        path = str(relative)
    return ArchivedFile(
        item.name, item.kind, len(item.data), archive.sha256(item.data), path, item.origin, item.heading, item.warnings,
        meta_dict(item.meta) if item.meta else {},
    )


def meta_dict(meta: DocMeta) -> dict[str, object]:
    """What the store keeps of a report's metadata (the tables are re-read from the archive when needed)."""
    return {
        "issuer": meta.issuer, "issuer_parent": meta.issuer_parent, "number": meta.number, "place": meta.place,
        "date": meta.date.isoformat() if meta.date else None, "doc_type": meta.doc_type, "title": meta.title,
        "signer_position": meta.signer_position, "signer_name": meta.signer_name, "word_count": meta.word_count,
        "tables": len(meta.tables),
    }


def insert_message(conn, raw: RawMail, fingerprint: str, mail: InboundMail, verdict: Verdict, state: str, eml: str) -> int:  # type: ignore[no-untyped-def]
    inst_pk = store.institution_pk(conn, verdict.institution.code) if verdict.institution else None
    result = conn.execute(store.messages.insert(), dict(
        fingerprint=fingerprint, message_id=mail.message_id, sender=mail.sender, sender_name=mail.sender_name,
        subject=mail.subject, received_at=mail.arrived, institution_id=inst_pk, campaign_id=verdict.campaign_id,
        identified_by=verdict.identified_by.value if verdict.identified_by else None, late=verdict.late,
        state=state, reason=verdict.reason, eml_path=eml, size=len(raw.data), warnings=list(mail.warnings),
        references=mail.references, auto_markers=list(mail.auto_markers), recorded_at=store.now(),
    ))
    return int(result.inserted_primary_key[0])


def insert_files(conn, message_pk: int, kept: list[ArchivedFile]) -> None:  # type: ignore[no-untyped-def]
    if kept:
        conn.execute(store.files.insert(), [
            dict(message_pk=message_pk, name=f.name, kind=str(f.kind), size=f.size, sha256=f.sha256, path=f.path,
                 origin=f.origin, heading=f.heading, warnings=list(f.warnings), meta=f.meta)
            for f in kept
        ])


def _record_duplicate(raw: RawMail, ctx: Context, duplicate: int | None, mail: InboundMail) -> Outcome:
    with store.atomic(ctx.engine) as conn:
        target = duplicate or store.duplicate_of(conn, archive.sha256(raw.data), mail.message_id, mail.sender)
        if target is None:
            raise RuntimeError("duplicate without an original")  # cannot happen: the insert conflicted on it
        store.add_location(conn, raw.source, raw.uidvalidity, raw.uid, target)
    log.info("skipped %s: already recorded as #%d", mail.message_id, target)
    return Outcome(raw.uid, "duplicate", target)


def _set_aside(raw: RawMail, fingerprint: str, ctx: Context, reason: str) -> Outcome:
    """Keep the bytes and a row saying why, so staff can look and nothing is fetched in a loop."""
    eml = archive.eml_path(raw.internaldate, fingerprint)
    archive.write(ctx.settings.archive_dir, eml, raw.data)
    with store.atomic(ctx.engine) as conn:
        existing = store.duplicate_of(conn, fingerprint, "", "")
        pk = existing or int(conn.execute(store.messages.insert().values(
            fingerprint=fingerprint, message_id=f"<{fingerprint[:32]}@unreadable.mailbot>", sender="", sender_name="",
            subject="", received_at=raw.internaldate, state="error", reason=reason[:500], eml_path=str(eml),
            size=len(raw.data), warnings=["unreadable_message"], recorded_at=store.now(),
        )).inserted_primary_key[0])
        store.add_location(conn, raw.source, raw.uidvalidity, raw.uid, pk)
    return Outcome(raw.uid, "error", pk, detail=reason)
