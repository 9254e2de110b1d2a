"""The durable outbox: each message is stored first (idempotent key), then delivered by SMTP or as a file.

Several processes may deliver at once (the service, `remind`, `digest --send`, `outbox retry`, `run --once`).
Each row is claimed before it is sent, in one UPDATE (``pending`` → ``sending`` with this process's claim token
and a lease, ``claimed_until``); only the rows carrying our token are sent, and only while the token still
matches is the result written. A claim lapses when its lease ends (real time, whatever ``--now`` says) or, on
this machine, as soon as the process that holds it is gone, so a killed sender strands nothing.

Delivery window: a message is marked sent only after the SMTP server accepted it. A crash between
the server's acceptance and that mark makes the next run send it again: at most one duplicate per
message, only in that window. Nothing else is sent twice.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.engine import Connection, Row

from mailbot import store
from mailbot.config import OutboxSettings, Settings
from mailbot.errors import MailbotError, StorageError
from mailbot.notify.compose import as_bytes
from mailbot.oauth import access_token, forget, xoauth2

log = logging.getLogger("mailbot.notify.outbox")
UNLIMITED_KINDS = {"digest"}  # the staff's own digest is not an automatic reply to anyone
MAX_BACKOFF = timedelta(hours=6)
OUTAGE_BACKOFF = timedelta(minutes=5)
CLAIM_LEASE = timedelta(minutes=5)  # at least; renewed before each message, far longer than one SMTP transaction


@dataclass(frozen=True)
class Queued:
    status: str  # pending | suppressed | exists
    outbox_id: int


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def queue(
    conn: Connection,
    *,
    key: str,
    kind: str,
    msg: Message,
    recipients: tuple[str, ...],
    now: datetime,
    day_start: datetime,
    limit: int,
    message_pk: int | None = None,
    institution_id: int | None = None,
    campaign_id: str | None = None,
    unverified_limit: int | None = None,
) -> Queued:
    """Store a message for delivery unless the same key was queued before; over the per-address daily
    limit it is stored as suppressed, so that staff can see what was held back. With ``unverified_limit`` it
    is a reply to an unauthenticated address off the roster, also held back once that many went out today."""
    existing = _queued_id(conn, key)
    if existing:
        return Queued("exists", existing)
    allowed = (
        recipients
        if kind in UNLIMITED_KINDS
        else tuple(r for r in recipients if _sent_today(conn, r, day_start) < limit)
    )
    why = f"more than {limit} automatic messages today to this address"
    if allowed and unverified_limit is not None and _unverified_today(conn, day_start) >= unverified_limit:
        allowed = ()
        why = f"more than {unverified_limit} automatic replies today to unauthenticated addresses not on the roster"
    status = "pending" if allowed else "suppressed"
    if allowed != recipients:
        msg.replace_header("To", ", ".join(allowed or recipients))
    inserted = store.insert_ignore(
        conn,
        store.outbox,
        {
            "key": key,
            "kind": kind,
            "message_pk": message_pk,
            "institution_id": institution_id,
            "campaign_id": campaign_id,
            "recipients": list(allowed or recipients),
            "subject": str(make_header(decode_header(msg["Subject"]))),
            "our_message_id": str(msg["Message-ID"]),
            "raw": as_bytes(msg),
            "status": status,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "" if allowed else why,
            "created_at": now,
            "unverified": unverified_limit is not None,
        },
    )
    outbox_id = _queued_id(conn, key)
    if not inserted:  # another process queued the same key since we looked
        return Queued("exists", outbox_id)
    if kind not in UNLIMITED_KINDS and allowed:
        conn.execute(
            store.outbox_rcpt.insert(), [{"outbox_id": outbox_id, "address": a, "created_at": now} for a in allowed]
        )
    return Queued(status, outbox_id)


def _queued_id(conn: Connection, key: str) -> int:
    return int(conn.execute(select(store.outbox.c.id).where(store.outbox.c.key == key)).scalar() or 0)


def _sent_today(conn: Connection, address: str, day_start: datetime) -> int:
    o, r = store.outbox, store.outbox_rcpt
    query = (
        select(func.count())
        .select_from(r.join(o, o.c.id == r.c.outbox_id))
        .where(
            r.c.address == address,
            r.c.created_at >= day_start,
            o.c.status.in_(("pending", "sending", "sent")),
        )
    )
    return int(conn.execute(query).scalar_one())


def _unverified_today(conn: Connection, day_start: datetime) -> int:
    o = store.outbox
    query = (
        select(func.count())
        .select_from(o)
        .where(
            o.c.unverified,
            o.c.created_at >= day_start,
            o.c.status.in_(("pending", "sending", "sent")),
        )
    )
    return int(conn.execute(query).scalar_one())


def day_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """Local midnight: the per-address limit counts a calendar day where the department is."""
    local = moment.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


# Messages the SMTP server accepted while the database could not record it (locked, say): kept in memory
# and recorded as soon as the database answers, never sent again by this process.
_accepted_unrecorded: dict[int, tuple[Row, datetime, dict[str, tuple[int, str]]]] = {}
_one_round = threading.Lock()  # one delivery round at a time in this process: its rounds share one claim token


def _this_machine() -> str:
    """Host name and PID namespace: a claim made here can be checked by looking for its process."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}#{namespace}"


MACHINE = _this_machine()
TOKEN = f"{MACHINE}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


def deliver_due(settings: Settings, engine: Engine, now: datetime) -> DeliveryReport:
    """Send every pending message whose time has come and that this process wins the claim of; transient
    failures are retried later."""
    lease = lease_for(settings.outbox)
    with _one_round:
        _record_accepted(engine)
        rows = claim(engine, now, lease)
        report = DeliveryReport()
        if not rows:
            return report
        if settings.outbox.kind == "file":
            for row in rows:
                if _renew(engine, row, lease):
                    _write_file(settings.outbox_dir, row)
                    _mark_sent(engine, row, now, {})
                    report.sent += 1
            return report
        _deliver_smtp(settings.outbox, engine, rows, now, report)
        return report


def lease_for(s: OutboxSettings) -> timedelta:
    """How long a claim holds: one SMTP transaction is a few exchanges, each bounded by the time-out."""
    return max(CLAIM_LEASE, timedelta(seconds=10 * s.timeout_seconds))


def claim(engine: Engine, now: datetime, lease: timedelta = CLAIM_LEASE) -> list[Row]:
    """Claim, in one UPDATE, every due row nobody else holds; returns the rows this process now holds.

    Due: pending and its time has come (``now``, the business clock), or claimed by a sender whose lease
    has run out (real time), that is gone from this machine, or that is this very process (a round that
    could not write its results back: rounds are serialised, so nothing of ours is in flight)."""
    o, real_now = store.outbox, store.now()
    held = list(_accepted_unrecorded)
    with store.atomic(engine) as conn:
        ours = [TOKEN, *_abandoned_claims(conn, real_now)]
        due = or_(
            and_(o.c.status == "pending", o.c.next_attempt_at <= now),
            and_(o.c.status == "sending", or_(o.c.claimed_until < real_now, o.c.claim_token.in_(ours))),
        )
        if conn.execute(select(o.c.id).where(due, o.c.id.not_in(held)).limit(1)).first() is None:
            return []  # nothing due: no write, so an idle service never waits on a busy database
        conn.execute(
            update(o)
            .where(due, o.c.id.not_in(held))
            .values(status="sending", claim_token=TOKEN, claimed_until=real_now + lease)
        )
        query = select(o).where(o.c.status == "sending", o.c.claim_token == TOKEN, o.c.id.not_in(held))
        return list(conn.execute(query.order_by(o.c.id)).all())


def _abandoned_claims(conn: Connection, real_now: datetime) -> list[str]:
    """Unexpired claims made on this machine by processes that no longer exist (killed senders)."""
    o = store.outbox
    tokens = conn.execute(
        select(o.c.claim_token)
        .distinct()
        .where(o.c.status == "sending", o.c.claimed_until >= real_now, o.c.claim_token != TOKEN)
    ).scalars()
    return [t for t in tokens if t and _claimant_gone(t)]


def _claimant_gone(token: str) -> bool:
    machine, _, rest = token.rpartition("/")[0].rpartition("/")
    if machine != MACHINE or not rest.isdigit():
        return False  # another machine: only its lease tells
    try:
        os.kill(int(rest), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, under another user
    return _zombie(int(rest))


def _zombie(pid: int) -> bool:
    """Killed but not yet reaped by its parent: it will never send anything again."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _renew(engine: Engine, row: Row, lease: timedelta) -> bool:
    """Extend our claim just before sending; False when another sender took the row over (our lease ran out)."""
    o = store.outbox
    with store.atomic(engine) as conn:
        result = conn.execute(
            update(o)
            .where(o.c.id == row.id, o.c.status == "sending", o.c.claim_token == TOKEN)
            .values(claimed_until=store.now() + lease)
        )
    if result.rowcount:
        return True
    log.warning("outbox #%d was taken over by another sender; not sending it from here", row.id)
    return False


def _write_file(folder: Path, row: Row) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{row.id:06d}-{row.kind}.eml"
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(row.raw)
    os.replace(tmp, target)


def connect(s: OutboxSettings) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
    if s.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.effective_port, timeout=s.timeout_seconds, context=context)
    else:
        client = smtplib.SMTP(s.host, s.effective_port, timeout=s.timeout_seconds)
        if s.security == "starttls":
            client.starttls(context=context)
    if s.username and s.auth == "oauth2":
        token = access_token(s, "outbox")
        client.ehlo_or_helo_if_needed()
        try:
            # after a refusal the server sends an error challenge, answered with an empty line
            client.auth(
                "XOAUTH2",
                lambda challenge=None: xoauth2(s.username, token) if challenge is None else "",
                initial_response_ok=True,
            )
        except smtplib.SMTPAuthenticationError:
            forget(s, "outbox")
            client.close()
            raise
    elif s.username:
        client.login(s.username, s.password("outbox"))
    return client


def _deliver_smtp(s: OutboxSettings, engine: Engine, rows: list[Row], now: datetime, report: DeliveryReport) -> None:
    where = f"{s.host}:{s.effective_port}"
    try:
        client = connect(s)
    except smtplib.SMTPAuthenticationError as exc:
        _all_retry(s, engine, rows, now, report, f"SMTP login refused at {where} for {s.username}: {exc.smtp_code}")
        return
    except (OSError, smtplib.SMTPException) as exc:
        _all_retry(s, engine, rows, now, report, f"cannot reach SMTP server {where}: {exc}")
        return
    except MailbotError as exc:  # no OAuth2 token could be had
        _all_retry(s, engine, rows, now, report, str(exc))
        return
    try:
        for index, row in enumerate(rows):
            if not _send_one(client, s, engine, row, now, report):
                _all_retry(s, engine, rows[index + 1 :], now, report, "SMTP connection lost")
                return
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            pass  # the server hung up first; nothing is pending on this connection


def _send_one(
    client: smtplib.SMTP, s: OutboxSettings, engine: Engine, row: Row, now: datetime, report: DeliveryReport
) -> bool:
    """Send one row; False when the connection is unusable and the rest must wait."""
    if not _renew(engine, row, lease_for(s)):
        return True
    try:
        refused = client.sendmail(s.address, list(row.recipients), row.raw)
    except smtplib.SMTPRecipientsRefused as exc:
        _refused(s, engine, row, now, report, {a: (c, m) for a, (c, m) in exc.recipients.items()})
        return True
    except smtplib.SMTPResponseException as exc:
        _failure(s, engine, row, now, report, exc.smtp_code, f"{exc.smtp_code} {_text(exc.smtp_error)}")
        return not isinstance(exc, smtplib.SMTPServerDisconnected)
    except (OSError, smtplib.SMTPException) as exc:
        _failure(s, engine, row, now, report, 0, f"SMTP connection lost: {exc}")
        return False
    _mark_sent(engine, row, now, {a: (c, _text(m)) for a, (c, m) in refused.items()})
    report.sent += 1
    return True


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _refused(s: OutboxSettings, engine: Engine, row: Row, now: datetime, report: DeliveryReport, refused: dict) -> None:  # type: ignore[type-arg]
    detail = "; ".join(f"{a}: {c} {_text(m)}" for a, (c, m) in refused.items())
    permanent = all(c >= 500 for c, _ in refused.values())
    with store.atomic(engine) as conn:
        for address, (code, message) in refused.items():
            if code >= 500:
                store.mark_undeliverable(conn, address, f"{code} {_text(message)}")
    _failure(s, engine, row, now, report, 550 if permanent else 450, detail)


def _failure(
    s: OutboxSettings, engine: Engine, row: Row, now: datetime, report: DeliveryReport, code: int, detail: str
) -> None:
    attempts = row.attempts + 1
    # code 0: the server was unreachable or hung up. That is an outage, not this message's fault: it
    # never gives up on the message, and retries at least every OUTAGE_BACKOFF so it recovers by itself.
    permanent = code >= 500 or (code != 0 and attempts >= s.max_attempts)
    cap = MAX_BACKOFF if code else OUTAGE_BACKOFF
    delay = min(timedelta(seconds=s.retry_base_seconds * 2 ** min(attempts - 1, 20)), cap)
    with store.atomic(engine) as conn:
        result = conn.execute(
            update(store.outbox)
            .where(*_held(row))
            .values(
                attempts=attempts,
                last_error=detail[:500],
                status="failed" if permanent else "pending",
                next_attempt_at=None if permanent else now + delay,
                claim_token=None,
                claimed_until=None,
            )
        )
    if not result.rowcount:
        log.warning("outbox #%d was taken over by another sender meanwhile; its result here is dropped", row.id)
        return
    if permanent:
        report.failed += 1
        log.warning("outbox #%d to %s failed for good: %s", row.id, ", ".join(row.recipients), detail)
    else:
        report.retrying += 1
        log.warning("outbox #%d to %s will be retried in %s: %s", row.id, ", ".join(row.recipients), delay, detail)
    report.errors.append(detail)


def _all_retry(
    s: OutboxSettings, engine: Engine, rows: list[Row], now: datetime, report: DeliveryReport, detail: str
) -> None:
    log.warning("%s; %d message(s) wait for the next attempt", detail, len(rows))
    for row in rows:
        _failure(s, engine, row, now, report, 0, detail)


def _record_accepted(engine: Engine) -> None:
    for row_id, (row, when, refused) in list(_accepted_unrecorded.items()):
        _mark_sent(engine, row, when, refused)  # raises StorageError again while the database is still locked
        _accepted_unrecorded.pop(row_id, None)


def _mark_sent(engine: Engine, row: Row, now: datetime, refused: dict[str, tuple[int, str]]) -> None:
    try:
        _write_sent(engine, row, now, refused)
    except StorageError:
        _accepted_unrecorded[row.id] = (row, now, refused)
        raise


def _write_sent(engine: Engine, row: Row, now: datetime, refused: dict[str, tuple[int, str]]) -> None:
    with store.atomic(engine) as conn:
        result = conn.execute(
            update(store.outbox)
            .where(*_held(row))
            .values(
                status="sent",
                sent_at=now,
                attempts=row.attempts + 1,
                claim_token=None,
                claimed_until=None,
                last_error="; ".join(f"{a}: {c} {m}" for a, (c, m) in refused.items()),
            )
        )
        if not result.rowcount:  # our lease ran out mid-send and another sender took the row: it is its to record
            log.warning("outbox #%d was sent here after another sender took it over", row.id)
        for address, (code, message) in refused.items():
            if code >= 500:
                store.mark_undeliverable(conn, address, f"{code} {message}")
    log.info("sent outbox #%d (%s) to %s", row.id, row.kind, ", ".join(row.recipients))


def _held(row: Row) -> tuple:  # type: ignore[type-arg]
    """The row, as long as this process's claim on it stands."""
    o = store.outbox
    return o.c.id == row.id, o.c.status == "sending", o.c.claim_token == TOKEN


def retry_failed(engine: Engine, now: datetime) -> int:
    """Put failed messages back in the queue (after staff fixed the address or the server)."""
    with store.atomic(engine) as conn:
        result = conn.execute(
            update(store.outbox)
            .where(store.outbox.c.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=now)
        )
    return int(result.rowcount or 0)


def sender_of(settings: Settings) -> str:
    return parseaddr(settings.outbox.sender)[1].lower()


def require_deliverable(settings: Settings) -> None:
    if settings.outbox.kind == "smtp" and not settings.outbox.host:
        raise MailbotError("outbox.host is empty")


def recent(engine: Engine, limit: int) -> list[Row]:
    with engine.connect() as conn:
        o = store.outbox
        return list(reversed(conn.execute(select(o).order_by(o.c.id.desc()).limit(limit)).all()))
