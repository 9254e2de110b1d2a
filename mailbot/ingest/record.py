"""Record stage: archive a message's bytes and files, then write its rows in the transaction the pipeline holds."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from mailbot import store
from mailbot.config import Settings
from mailbot.documents.decree30 import DocMeta
from mailbot.ingest import archive
from mailbot.models import ArchivedFile, FileKind, InboundMail, Notice, RawMail, State, Verdict, WarningCode

log = logging.getLogger("mailbot.ingest.record")


@dataclass(frozen=True)
class Outcome:
    """What became of one fetched message."""

    uid: str
    state: State
    message_pk: int
    institution: str = ""
    detail: str = ""
    keep_on_server: bool = False  # never moved to the processed folder (staff must see it in the mailbox)


@dataclass(frozen=True)
class Archived:
    """Where a message was written in the archive, before its rows are."""

    eml: PurePosixPath  # the whole original message
    files: tuple[ArchivedFile, ...]


def archive_message(
    raw: RawMail,
    fingerprint: str,
    mail: InboundMail,
    verdict: Verdict,
    settings: Settings,
    write: archive.WriteFile = archive.write,
    eml_kept: bool = False,
) -> Archived:
    """The original message, and its reports and scans in the institution's folder (or the review folder).
    ``write``: how each file is written (``archive.Writer.write`` hands them to a thread of their own);
    ``eml_kept``: the original is written already (by the reader process that read it)."""
    folder = (
        archive.institution_folder(verdict.campaign.id, verdict.institution)
        if verdict.institution and verdict.campaign
        else archive.review_folder(mail.arrived, settings.zone)
    )
    eml = archive.eml_path(raw.internaldate, fingerprint)
    if not eml_kept:
        write(settings.archive_dir, eml, raw.data)
    kept = tuple(archive_file(settings, folder, mail, fingerprint, i, write) for i in range(len(mail.files)))
    return Archived(eml, kept)


def insert(
    conn: Connection, raw: RawMail, fingerprint: str, mail: InboundMail, verdict: Verdict, archived: Archived
) -> int:
    """The message's rows, in the caller's transaction; returns its primary key (IntegrityError when another run
    recorded it meanwhile). A bounce of our own mail marks its recipients undeliverable."""
    return insert_many(conn, [Row(raw, fingerprint, mail, verdict, archived)])[0]


@dataclass(frozen=True)
class Row:
    """One message of a batch to record: what ``insert`` takes, as one value."""

    raw: RawMail
    fingerprint: str
    mail: InboundMail
    verdict: Verdict
    archived: Archived


def insert_many(conn: Connection, rows: list[Row]) -> list[int]:
    """A batch's rows in one statement per table (the caller's transaction), in order; returns their primary keys.
    A backlog pays the database's per-statement cost once per batch; ``insert`` is the case of one message."""
    statement = store.messages.insert().returning(store.messages.c.id, sort_by_parameter_order=True)
    values = [_message_values(conn, r.raw, r.fingerprint, r.mail, r.verdict, str(r.archived.eml)) for r in rows]
    pks = [int(pk) for pk in conn.execute(statement, values).scalars()]
    files = [_file_values(pk, f) for pk, r in zip(pks, rows, strict=True) for f in r.archived.files]
    if files:
        conn.execute(store.files.insert(), files)
    store.add_locations(conn, [(r.raw.source, r.raw.uidvalidity, r.raw.uid, pk) for r, pk in zip(rows, pks)])
    for r in rows:
        _mark_bounced(conn, r.mail, r.verdict)
    return pks


def _mark_bounced(conn: Connection, mail: InboundMail, verdict: Verdict) -> None:
    if verdict.state is State.BOUNCE and mail.bounce:
        for address in mail.bounce.recipients:
            store.mark_undeliverable(conn, address, f"bounce {mail.bounce.status}".strip())


def recorded(raw: RawMail, mail: InboundMail, verdict: Verdict, pk: int) -> Outcome:
    """The log line and outcome of a message just committed."""
    code = verdict.institution.code if verdict.institution else ""
    log.info(
        "recorded %s from %s as %s%s",
        mail.message_id,
        mail.sender or "?",
        verdict.state,
        f" ({code})" if code else "",
        extra={"message_id": mail.message_id, "institution": code, "state": verdict.state.value},
    )
    return Outcome(raw.uid, verdict.state, pk, code, verdict.reason)


def archive_file(
    settings: Settings,
    folder: PurePosixPath,
    mail: InboundMail,
    fingerprint: str,
    index: int,
    write: archive.WriteFile = archive.write,
) -> ArchivedFile:
    """Report files and PDF scans get their own copy in the institution's folder; the rest stays in the .eml."""
    item = mail.files[index]
    path = ""
    if item.data and (item.is_report or item.kind == FileKind.PDF):
        relative = folder / archive.file_name(mail.arrived, settings.zone, fingerprint, index, item.name)
        write(settings.archive_dir, relative, item.data)
        path = str(relative)
    return ArchivedFile(
        item.name,
        item.kind,
        len(item.data),
        item.sha256,
        path,
        item.origin,
        item.heading,
        item.warnings,
        meta_dict(item.meta) if item.meta else {},
    )


def meta_dict(meta: DocMeta) -> dict[str, object]:
    """What the store keeps of a report's metadata (the tables are re-read from the archive when needed)."""
    return {
        "issuer": meta.issuer,
        "issuer_parent": meta.issuer_parent,
        "number": meta.number,
        "place": meta.place,
        "date": meta.date.isoformat() if meta.date else None,
        "doc_type": meta.doc_type,
        "title": meta.title,
        "signer_position": meta.signer_position,
        "signer_name": meta.signer_name,
        "word_count": meta.word_count,
        "tables": len(meta.tables),
    }


def _message_values(
    conn: Connection, raw: RawMail, fingerprint: str, mail: InboundMail, verdict: Verdict, eml: str
) -> dict[str, object]:
    inst_pk = store.institution_pk(conn, verdict.institution.code) if verdict.institution else None
    return {
        "fingerprint": fingerprint,
        "message_id": mail.message_id,
        "sender": mail.sender,
        "sender_name": mail.sender_name,
        "subject": mail.subject,
        "received_at": mail.arrived,
        "institution_id": inst_pk,
        "campaign_id": verdict.campaign.id if verdict.campaign else None,
        "identified_by": verdict.identified_by.value if verdict.identified_by else None,
        "late": verdict.late,
        "state": verdict.state.value,
        "reason": verdict.reason,
        "eml_path": eml,
        "size": len(raw.data),
        "warnings": mail.warnings,
        "references": mail.references,
        "auto_markers": list(mail.auto_markers),
        "recorded_at": store.now(),
    }


def _file_values(message_pk: int, f: ArchivedFile) -> dict[str, object]:
    return {
        "message_pk": message_pk,
        "name": f.name,
        "kind": str(f.kind),
        "size": f.size,
        "sha256": f.sha256,
        "path": f.path,
        "origin": f.origin,
        "heading": f.heading,
        "warnings": f.warnings,
        "meta": f.meta,
    }


def record_duplicate(raw: RawMail, engine: Engine, original: int, mail: InboundMail) -> Outcome:
    """Note where a message already recorded (as ``original``) lies again. Another run may have recorded this
    very location meanwhile (the service and `run --once` fetching the same message): then there is nothing
    to add."""
    with store.atomic(engine) as conn:
        store.add_location(conn, raw.source, raw.uidvalidity, raw.uid, original)
    log.info("skipped %s: already recorded as #%d", mail.message_id, original)
    return Outcome(raw.uid, State.DUPLICATE, original)


def set_aside(raw: RawMail, fingerprint: str, archive_dir: Path, engine: Engine, reason: str) -> Outcome:
    """Keep the bytes and a row saying why, so staff can look and nothing is fetched in a loop."""
    eml = archive.eml_path(raw.internaldate, fingerprint)
    archive.write(archive_dir, eml, raw.data)
    with store.atomic(engine) as conn:
        # insert-or-ignore: another run may set the same message aside at the same moment
        store.insert_ignore(
            conn,
            store.messages,
            {
                "fingerprint": fingerprint,
                "message_id": f"<{fingerprint[:32]}@unreadable.mailbot>",
                "sender": "",
                "sender_name": "",
                "subject": "",
                "received_at": raw.internaldate,
                "state": State.ERROR.value,
                "reason": reason[:500],
                "eml_path": str(eml),
                "size": len(raw.data),
                "warnings": (Notice(WarningCode.UNREADABLE_MESSAGE),),
                "references": "",
                "auto_markers": [],
                "late": False,
                "recorded_at": store.now(),
            },
        )
        pk = store.duplicate_of(conn, fingerprint, "", "")
        assert pk is not None  # inserted just now, or by the other run
        store.add_location(conn, raw.source, raw.uidvalidity, raw.uid, pk)
    return Outcome(raw.uid, State.ERROR, pk, detail=reason)
