"""Record stage: archive a message and write its rows (and its receipt) in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from sqlalchemy.exc import IntegrityError

from mailbot import store
from mailbot.context import Context
from mailbot.documents.docmeta import DocMeta
from mailbot.ingest import archive
from mailbot.ingest.authenticity import hold_if_forged
from mailbot.models import ArchivedFile, FileKind, IdentifiedBy, InboundMail, RawMail, Verdict
from mailbot.notify import receipts
from mailbot.notify.compose import is_ours

log = logging.getLogger("mailbot.ingest.record")


@dataclass(frozen=True)
class Outcome:
    """What became of one fetched message."""

    uid: str
    state: str  # submission | no_report | review | error | duplicate
    message_pk: int
    institution: str = ""
    detail: str = ""
    keep_on_server: bool = False  # never moved to the processed folder (staff must see it in the mailbox)


def record_oversized(raw: RawMail, fingerprint: str, mail: InboundMail, ctx: Context) -> Outcome:
    """Over the size limit: its header is recorded and the message held for staff; it stays on the server.

    A school known by its (authenticated) address is told, so that it can send the Word file alone in time;
    it stays held (no campaign) until staff have looked at it in the mailbox."""
    size_mb, limit_mb = raw.oversized / (1 << 20), ctx.settings.limits.max_message_bytes / (1 << 20)
    mail = replace(mail, files=(), warnings=(f"message_too_large:{raw.oversized}",))
    known = ctx.roster.by_address.get(mail.sender, ())
    verdict = Verdict(known[0], IdentifiedBy.ADDRESS, None) if len(known) == 1 else Verdict(None, None, None)
    verdict = hold_if_forged(verdict, mail, ctx.settings.security)
    told = (
        ctx.settings.notify.acknowledge
        and receipts.ack_kind(mail, verdict, "review", ctx.own_addresses)
        and receipts.audience(mail, ctx.roster.by_address, ctx.settings.security) is not None
    )
    reason = "; ".join(
        filter(
            None,
            (
                f"thư quá lớn ({size_mb:.0f} MB, giới hạn {limit_mb:.0f} MB) nên chưa được xử lý",
                "đã đề nghị đơn vị gửi lại riêng tệp Word" if told else "",
                verdict.reason,  # why the sender is doubted
                "đề nghị xem trực tiếp trong hộp thư",
            ),
        )
    )
    return replace(record(raw, fingerprint, mail, replace(verdict, reason=reason), ctx), keep_on_server=True)


def _state(mail: InboundMail, verdict: Verdict, ctx: Context) -> str:
    if mail.bounce and is_ours(ctx.key, mail.bounce.original_message_id):
        return "bounce"
    if verdict.needs_review:
        return "review"
    return "submission" if mail.reports else "no_report"


def record(raw: RawMail, fingerprint: str, mail: InboundMail, verdict: Verdict, ctx: Context) -> Outcome:
    state = _state(mail, verdict, ctx)
    folder = (
        archive.institution_folder(verdict.campaign_id, verdict.institution)
        if verdict.institution and verdict.campaign_id
        else archive.review_folder(mail.arrived, ctx.settings.zone)
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
            receipts.queue_receipt(conn, ctx, pk, mail, verdict, state)
    except IntegrityError:
        return record_duplicate(raw, ctx, None, mail)  # recorded meanwhile by another run
    code = verdict.institution.code if verdict.institution else ""
    log.info(
        "recorded %s from %s as %s%s",
        mail.message_id,
        mail.sender or "?",
        state,
        f" ({code})" if code else "",
        extra={"message_id": mail.message_id, "institution": code, "state": state},
    )
    return Outcome(raw.uid, state, pk, code, verdict.reason)


def archive_file(ctx: Context, folder: PurePosixPath, mail: InboundMail, fingerprint: str, index: int) -> ArchivedFile:
    """Report files and PDF scans get their own copy in the institution's folder; the rest stays in the .eml."""
    item = mail.files[index]
    path = ""
    if item.data and (item.is_report or item.kind == FileKind.PDF):
        relative = folder / archive.file_name(mail.arrived, ctx.settings.zone, fingerprint, index, item.name)
        archive.write(ctx.settings.archive_dir, relative, item.data)
        path = str(relative)
    return ArchivedFile(
        item.name,
        item.kind,
        len(item.data),
        archive.sha256(item.data),
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


def insert_message(
    conn, raw: RawMail, fingerprint: str, mail: InboundMail, verdict: Verdict, state: str, eml: str
) -> int:  # type: ignore[no-untyped-def]
    inst_pk = store.institution_pk(conn, verdict.institution.code) if verdict.institution else None
    result = conn.execute(
        store.messages.insert(),
        {
            "fingerprint": fingerprint,
            "message_id": mail.message_id,
            "sender": mail.sender,
            "sender_name": mail.sender_name,
            "subject": mail.subject,
            "received_at": mail.arrived,
            "institution_id": inst_pk,
            "campaign_id": verdict.campaign_id,
            "identified_by": verdict.identified_by.value if verdict.identified_by else None,
            "late": verdict.late,
            "state": state,
            "reason": verdict.reason,
            "eml_path": eml,
            "size": len(raw.data),
            "warnings": list(mail.warnings),
            "references": mail.references,
            "auto_markers": list(mail.auto_markers),
            "recorded_at": store.now(),
        },
    )
    return int(result.inserted_primary_key[0])


def insert_files(conn, message_pk: int, kept: list[ArchivedFile]) -> None:  # type: ignore[no-untyped-def]
    if kept:
        conn.execute(
            store.files.insert(),
            [
                {
                    "message_pk": message_pk,
                    "name": f.name,
                    "kind": str(f.kind),
                    "size": f.size,
                    "sha256": f.sha256,
                    "path": f.path,
                    "origin": f.origin,
                    "heading": f.heading,
                    "warnings": list(f.warnings),
                    "meta": f.meta,
                }
                for f in kept
            ],
        )


def record_duplicate(raw: RawMail, ctx: Context, duplicate: int | None, mail: InboundMail) -> Outcome:
    """Note where a message already recorded lies again. Another run may have recorded this very location
    meanwhile (the service and `run --once` fetching the same message): then there is nothing to add."""
    with store.atomic(ctx.engine) as conn:
        target = duplicate or store.duplicate_of(conn, archive.sha256(raw.data), mail.message_id, mail.sender)
        if target is None:
            raise RuntimeError("duplicate without an original")  # cannot happen: the insert conflicted on it
        store.add_location(conn, raw.source, raw.uidvalidity, raw.uid, target)
    log.info("skipped %s: already recorded as #%d", mail.message_id, target)
    return Outcome(raw.uid, "duplicate", target)


def set_aside(raw: RawMail, fingerprint: str, ctx: Context, reason: str) -> Outcome:
    """Keep the bytes and a row saying why, so staff can look and nothing is fetched in a loop."""
    eml = archive.eml_path(raw.internaldate, fingerprint)
    archive.write(ctx.settings.archive_dir, eml, raw.data)
    with store.atomic(ctx.engine) as conn:
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
                "state": "error",
                "reason": reason[:500],
                "eml_path": str(eml),
                "size": len(raw.data),
                "warnings": ["unreadable_message"],
                "references": "",
                "auto_markers": [],
                "late": False,
                "recorded_at": store.now(),
            },
        )
        pk = store.duplicate_of(conn, fingerprint, "", "")
        assert pk is not None  # inserted just now, or by the other run
        store.add_location(conn, raw.source, raw.uidvalidity, raw.uid, pk)
    return Outcome(raw.uid, "error", pk, detail=reason)
