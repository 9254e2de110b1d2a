"""The durable outbox: each message is stored first (idempotent key), then delivered by SMTP or as a file.

Queueing is a plain function on the caller's transaction (:func:`queue`); sending is done by one
:class:`Delivery` per process, which owns its claim token and what the server accepted but the database could not
record yet.

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
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, update
from sqlalchemy.engine import Connection, Row

from mailbot import store
from mailbot.config import OutboxSettings, Settings
from mailbot.errors import MailbotError, StorageError
from mailbot.files import write_atomic
from mailbot.notify.compose import Draft, as_bytes
from mailbot.oauth import TokenCache, xoauth2
from mailbot.tls import client_context

log = logging.getLogger("mailbot.notify.outbox")
UNLIMITED_KINDS = {"digest", "announce", "extension"}  # staff's digest, what staff send: not replies to anyone
LIVE = ("pending", "sending", "sent")  # the rows that count against a daily cap (not failed, not suppressed)
MAX_BACKOFF = timedelta(hours=6)
OUTAGE_BACKOFF = timedelta(minutes=5)
# At least; renewed before a message once half of it is gone; far longer than one SMTP transaction.
CLAIM_LEASE = timedelta(minutes=5)
OutboxRow = Row[Any]  # a row of store.outbox


@dataclass(frozen=True)
class Queued:
    status: str  # pending | suppressed | exists
    outbox_id: int


@dataclass(frozen=True)
class Outgoing:
    """One message to queue: its idempotency key (queueing the same key again, from any process, is a no-op),
    what it is, to whom, and the rows it is about. ``msg`` may be a ``Draft``, composed only if it goes out."""

    key: str
    kind: str
    msg: Message | Draft
    recipients: tuple[str, ...]
    message_pk: int | None = None
    institution_id: int | None = None
    campaign_id: str | None = None
    fresh: bool = False  # the key names a row made in this transaction (a receipt's message): no look-up first


@dataclass(frozen=True)
class DailyCaps:
    """The daily caps on automatic mail that a queued message counts against; the day starts at ``day_start``."""

    day_start: datetime
    per_address: int  # automatic messages to one address
    unverified: int | None = None  # set for a reply to an unauthenticated address off the roster: capped in all too

    @classmethod
    def of(cls, settings: Settings, now: datetime, *, unverified: bool = False) -> DailyCaps:
        """The configured caps, for the calendar day of ``now`` where the department is."""
        n = settings.notify
        limit = n.max_unknown_replies_per_day if unverified else None
        return cls(day_start(now, settings.zone), n.max_auto_per_address_per_day, limit)


def _mark_refused(conn: Connection, refused: dict[str, tuple[int, str]]) -> None:
    """A recipient the server refused for good (5xx) is undeliverable: reminders use the others."""
    for address, (code, message) in refused.items():
        if code >= 500:
            store.mark_undeliverable(conn, address, f"{code} {message}")


def retry_at(business_now: datetime, delay: timedelta) -> datetime:
    """When a failed row is due again: after the delay, from ``--now`` or the real time, whichever is earlier.
    A ``--now`` in the future (a preview, a mistake) must not park a row until that date, where neither the
    service nor ``outbox retry`` (which resets only failed rows) would reach it."""
    return min(business_now, store.now()) + delay


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def queue(conn: Connection, item: Outgoing, now: datetime, caps: DailyCaps) -> Queued:
    """Store a message for delivery unless the same key was queued before; over a daily cap it is stored as
    suppressed, with the reason, so that staff can see what was held back."""
    if not item.fresh:
        existing = _queued_id(conn, item.key)
        if existing:
            return Queued("exists", existing)
    row, allowed = _capped_row(conn, item, now, caps)
    outbox_id = store.insert_ignore_id(conn, store.outbox, row)
    if outbox_id is None:  # another process queued the same key since we looked
        return Queued("exists", _queued_id(conn, item.key))
    if item.kind not in UNLIMITED_KINDS and allowed:
        conn.execute(
            store.outbox_rcpt.insert(), [{"outbox_id": outbox_id, "address": a, "created_at": now} for a in allowed]
        )
    _counted(conn, item, caps, allowed)
    return Queued("pending" if allowed else "suppressed", outbox_id)


def queue_fresh(conn: Connection, items: list[tuple[Outgoing, DailyCaps]], now: datetime) -> None:
    """``queue`` for many messages under new keys (the receipts of a batch just recorded), in one statement per
    table; a key that exists all the same raises IntegrityError, as recording its message twice would."""
    rows, links = [], []
    with _tallying(conn):
        _count_ahead(conn, items)
        for item, caps in items:
            row, allowed = _capped_row(conn, item, now, caps)
            rows.append(row)
            links.append(allowed if item.kind not in UNLIMITED_KINDS else ())
            _counted(conn, item, caps, allowed)
    if not rows:
        return
    statement = store.outbox.insert().returning(store.outbox.c.id, sort_by_parameter_order=True)
    ids = conn.execute(statement, rows).scalars().all()
    rcpt = [{"outbox_id": i, "address": a, "created_at": now} for i, to in zip(ids, links, strict=True) for a in to]
    if rcpt:
        conn.execute(store.outbox_rcpt.insert(), rcpt)


def _capped_row(
    conn: Connection, item: Outgoing, now: datetime, caps: DailyCaps
) -> tuple[dict[str, object], tuple[str, ...]]:
    """The outbox row of a message, addressed to the recipients still under today's caps, and those recipients."""
    allowed, why = _allowed(conn, item, caps)
    msg = _composed(item.msg) if allowed else None
    if msg is not None and allowed != item.recipients:
        msg.replace_header("To", ", ".join(allowed))
    return _outbox_row(item, msg, now, caps, allowed, why), allowed


def _composed(msg: Message | Draft) -> Message:
    return msg.make() if isinstance(msg, Draft) else msg


def _subject(msg: Message | Draft) -> str:
    return msg.subject if isinstance(msg, Draft) else str(make_header(decode_header(msg["Subject"])))


def _allowed(conn: Connection, item: Outgoing, caps: DailyCaps) -> tuple[tuple[str, ...], str]:
    """The recipients still under today's caps, and why the others are held back."""
    allowed = (
        item.recipients
        if item.kind in UNLIMITED_KINDS
        else tuple(r for r in item.recipients if _today(conn, r, caps.day_start) < caps.per_address)
    )
    why = f"more than {caps.per_address} automatic messages today to this address"
    if allowed and caps.unverified is not None and _today(conn, None, caps.day_start) >= caps.unverified:
        return (), f"more than {caps.unverified} automatic replies today to unauthenticated addresses not on the roster"
    return allowed, why


def _outbox_row(
    item: Outgoing, msg: Message | None, now: datetime, caps: DailyCaps, allowed: tuple[str, ...], why: str
) -> dict[str, object]:
    """The row: held back entirely (``suppressed``: all recipients and the subject kept for staff to see, the
    message itself never composed nor stored) when none is allowed."""
    return {
        "key": item.key,
        "kind": item.kind,
        "message_pk": item.message_pk,
        "institution_id": item.institution_id,
        "campaign_id": item.campaign_id,
        "recipients": list(allowed or item.recipients),
        "subject": _subject(item.msg),
        "our_message_id": str(msg["Message-ID"]) if msg is not None else "",
        "raw": as_bytes(msg) if msg is not None else b"",
        "status": "pending" if allowed else "suppressed",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "" if allowed else why,
        "created_at": now,
        "unverified": caps.unverified is not None,
    }


def _queued_id(conn: Connection, key: str) -> int:
    return int(conn.execute(select(store.outbox.c.id).where(store.outbox.c.key == key)).scalar() or 0)


_TALLY = "mailbot_tally"
Tally = dict[tuple[str | None, datetime], int]  # (address, or None: unverified replies; day start) → count


@contextmanager
def _tallying(conn: Connection) -> Iterator[None]:
    """Within one transaction that queues many messages, each day's count (of an address, of unverified replies) is
    read once and then kept up to date as rows are queued, instead of counted again for every message."""
    if _TALLY in conn.info:
        yield
        return
    conn.info[_TALLY] = {}
    try:
        yield
    finally:
        conn.info.pop(_TALLY, None)


def _today(conn: Connection, address: str | None, day_start: datetime) -> int:
    """Today's automatic messages to ``address`` (None: replies to unauthenticated addresses off the roster)."""
    tally: Tally | None = conn.info.get(_TALLY)
    if tally is not None and (address, day_start) in tally:
        return tally[(address, day_start)]
    found = _count_today(conn, address, day_start) if address is not None else _unverified_today(conn, day_start)
    if tally is not None:
        tally[(address, day_start)] = found
    return found


def _counted(conn: Connection, item: Outgoing, caps: DailyCaps, allowed: tuple[str, ...]) -> None:
    """A message just queued counts against today's caps (in the transaction's tally, if one is kept)."""
    tally: Tally | None = conn.info.get(_TALLY)
    if tally is None or not allowed or item.kind in UNLIMITED_KINDS:
        return
    keys = [*allowed, *([None] if caps.unverified is not None else [])]
    for key in keys:
        if (key, caps.day_start) in tally:  # else the next look-up counts it, this row included
            tally[(key, caps.day_start)] += 1


def _count_ahead(conn: Connection, items: list[tuple[Outgoing, DailyCaps]]) -> None:
    """Today's count of every address these messages go to, in one query per day (the tally must be kept)."""
    tally: Tally = conn.info[_TALLY]
    by_day: dict[datetime, set[str]] = {}
    for item, caps in items:
        if item.kind not in UNLIMITED_KINDS:
            by_day.setdefault(caps.day_start, set()).update(item.recipients)
    o, r = store.outbox, store.outbox_rcpt
    for day, addresses in by_day.items():
        todo = [a for a in addresses if (a, day) not in tally]
        if not todo:
            continue
        tally.update({(a, day): 0 for a in todo})
        counted = conn.execute(
            select(r.c.address, func.count())
            .select_from(r.join(o, o.c.id == r.c.outbox_id))
            .where(r.c.address.in_(todo), r.c.created_at >= day, o.c.status.in_(LIVE))
            .group_by(r.c.address)
        )
        tally.update({(str(a), day): int(n) for a, n in counted})


def _count_today(conn: Connection, address: str, day_start: datetime) -> int:
    o, r = store.outbox, store.outbox_rcpt
    query = (
        select(func.count())
        .select_from(r.join(o, o.c.id == r.c.outbox_id))
        .where(
            r.c.address == address,
            r.c.created_at >= day_start,
            o.c.status.in_(LIVE),
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
            o.c.status.in_(LIVE),
        )
    )
    return int(conn.execute(query).scalar_one())


def day_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """Local midnight: the per-address limit counts a calendar day where the department is."""
    local = moment.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


# --- delivery -------------------------------------------------------------------------------------------------


def _this_machine() -> str:
    """Host name and PID namespace: a claim made here can be checked by looking for its process."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}#{namespace}"


MACHINE = _this_machine()


def lease_for(s: OutboxSettings) -> timedelta:
    """How long a claim holds: one SMTP transaction is a few exchanges, each bounded by the time-out."""
    return max(CLAIM_LEASE, timedelta(seconds=10 * s.timeout_seconds))


@dataclass(frozen=True)
class _Accepted:
    """A message the SMTP server accepted while the database could not record it (locked, say)."""

    row: OutboxRow
    when: datetime
    refused: dict[str, tuple[int, str]]


@dataclass(frozen=True)
class _Round:
    """One delivery round: its business time (``next_attempt_at``, ``sent_at``) and what it reports."""

    now: datetime
    report: DeliveryReport


class Delivery:
    """Sends the outbox from this process. Keep one per process for as long as it runs (the service holds one):
    the claim token names this sender, rounds are serialised (they share the token), and a message the server
    accepted but the database could not record is kept here, recorded as soon as the database answers, and never
    sent again by this process."""

    def __init__(self, engine: Engine, s: OutboxSettings, folder: Path, tokens: TokenCache | None = None) -> None:
        self.engine, self.settings, self.folder = engine, s, folder
        self.tokens = tokens or TokenCache()
        self.token = f"{MACHINE}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
        self.lease = lease_for(s)
        self._accepted_unrecorded: dict[int, _Accepted] = {}
        self._one_round = threading.Lock()

    @classmethod
    def of(cls, settings: Settings, engine: Engine, tokens: TokenCache | None = None) -> Delivery:
        return cls(engine, settings.outbox, settings.outbox_dir, tokens)

    def deliver_due(self, now: datetime) -> DeliveryReport:
        """Send every pending message whose time (``now``, the business clock) has come and that this process
        wins the claim of; transient failures are retried later."""
        with self._one_round:
            self._record_accepted()
            rows = self.claim(now)
            at = _Round(now, DeliveryReport())
            if not rows:
                return at.report
            if self.settings.kind == "file":
                for row in rows:
                    if self._renew(row):
                        _write_file(self.folder, row)
                        self._mark_sent(row, now, {})
                        at.report.sent += 1
                return at.report
            self._deliver_smtp(rows, at)
            return at.report

    def claim(self, now: datetime) -> list[OutboxRow]:
        """Claim, in one UPDATE, every due row nobody else holds; returns the rows this process now holds.

        Due: pending and its time has come (``now``, the business clock), or claimed by a sender whose lease
        has run out (real time), that is gone from this machine, or that is this very sender (a round that
        could not write its results back: rounds are serialised, so nothing of ours is in flight)."""
        o, real_now = store.outbox, store.now()
        held = list(self._accepted_unrecorded)
        with store.atomic(self.engine) as conn:
            ours = [self.token, *self._abandoned_claims(conn, real_now)]
            due = or_(
                and_(o.c.status == "pending", o.c.next_attempt_at <= now),
                and_(o.c.status == "sending", or_(o.c.claimed_until < real_now, o.c.claim_token.in_(ours))),
            )
            if conn.execute(select(o.c.id).where(due, o.c.id.not_in(held)).limit(1)).first() is None:
                return []  # nothing due: no write, so an idle service never waits on a busy database
            conn.execute(
                update(o)
                .where(due, o.c.id.not_in(held))
                .values(status="sending", claim_token=self.token, claimed_until=real_now + self.lease)
            )
            query = select(o).where(o.c.status == "sending", o.c.claim_token == self.token, o.c.id.not_in(held))
            return list(conn.execute(query.order_by(o.c.id)).all())

    def _abandoned_claims(self, conn: Connection, real_now: datetime) -> list[str]:
        """Unexpired claims made on this machine by processes that no longer exist (killed senders)."""
        o = store.outbox
        tokens = conn.execute(
            select(o.c.claim_token)
            .distinct()
            .where(o.c.status == "sending", o.c.claimed_until >= real_now, o.c.claim_token != self.token)
        ).scalars()
        return [t for t in tokens if t and _claimant_gone(t)]

    def _renew(self, row: OutboxRow) -> bool:
        """Extend our claim before sending, once less than half of it is left (a claim that young cannot have
        lapsed, nor been taken over: a round of many receipts is not a transaction more per message); False when
        another sender took the row over (our lease ran out)."""
        if row.claimed_until is not None and row.claimed_until - store.now() > self.lease / 2:
            return True
        o = store.outbox
        with store.atomic(self.engine) as conn:
            result = conn.execute(
                update(o)
                .where(o.c.id == row.id, o.c.status == "sending", o.c.claim_token == self.token)
                .values(claimed_until=store.now() + self.lease)
            )
        if result.rowcount:
            return True
        log.warning("outbox #%d was taken over by another sender; not sending it from here", row.id)
        return False

    def _deliver_smtp(self, rows: list[OutboxRow], at: _Round) -> None:
        s = self.settings
        where = f"{s.host}:{s.effective_port}"
        try:
            client = connect(s, self.tokens)
        except smtplib.SMTPAuthenticationError as exc:
            self._all_retry(rows, at, f"SMTP login refused at {where} for {s.username}: {exc.smtp_code}")
            return
        except (OSError, smtplib.SMTPException) as exc:
            self._all_retry(rows, at, f"cannot reach SMTP server {where}: {exc}")
            return
        except MailbotError as exc:  # no OAuth2 token could be had
            self._all_retry(rows, at, str(exc))
            return
        try:
            for index, row in enumerate(rows):
                if not self._send_one(client, row, at):
                    self._all_retry(rows[index + 1 :], at, "SMTP connection lost")
                    return
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                pass  # the server hung up first; nothing is pending on this connection

    def _send_one(self, client: smtplib.SMTP, row: OutboxRow, at: _Round) -> bool:
        """Send one row; False when the connection is unusable and the rest must wait."""
        if not self._renew(row):
            return True
        try:
            refused = client.sendmail(self.settings.address, list(row.recipients), row.raw)
        except smtplib.SMTPRecipientsRefused as exc:
            self._refused(row, at, {a: (c, _text(m)) for a, (c, m) in exc.recipients.items()})
            return True
        except smtplib.SMTPResponseException as exc:
            self._failure(row, at, exc.smtp_code, f"{exc.smtp_code} {_text(exc.smtp_error)}")
            return not isinstance(exc, smtplib.SMTPServerDisconnected)
        except (OSError, smtplib.SMTPException) as exc:
            self._failure(row, at, 0, f"SMTP connection lost: {exc}")
            return False
        self._mark_sent(row, at.now, {a: (c, _text(m)) for a, (c, m) in refused.items()})
        at.report.sent += 1
        return True

    def _refused(self, row: OutboxRow, at: _Round, refused: dict[str, tuple[int, str]]) -> None:
        detail = "; ".join(f"{a}: {c} {m}" for a, (c, m) in refused.items())
        permanent = all(c >= 500 for c, _ in refused.values())
        with store.atomic(self.engine) as conn:
            _mark_refused(conn, refused)
        self._failure(row, at, 550 if permanent else 450, detail)

    def _failure(self, row: OutboxRow, at: _Round, code: int, detail: str) -> None:
        attempts = row.attempts + 1
        # code 0: the server was unreachable or hung up. That is an outage, not this message's fault: it
        # never gives up on the message, and retries at least every OUTAGE_BACKOFF so it recovers by itself.
        permanent = code >= 500 or (code != 0 and attempts >= self.settings.max_attempts)
        cap = MAX_BACKOFF if code else OUTAGE_BACKOFF
        delay = min(timedelta(seconds=self.settings.retry_base_seconds * 2 ** min(attempts - 1, 20)), cap)
        with store.atomic(self.engine) as conn:
            result = conn.execute(
                update(store.outbox)
                .where(*self._held(row))
                .values(
                    attempts=attempts,
                    last_error=detail[:500],
                    status="failed" if permanent else "pending",
                    next_attempt_at=None if permanent else retry_at(at.now, delay),
                    claim_token=None,
                    claimed_until=None,
                )
            )
        if not result.rowcount:
            log.warning("outbox #%d was taken over by another sender meanwhile; its result here is dropped", row.id)
            return
        _count_failure(at.report, row, permanent, delay, detail)

    def _all_retry(self, rows: list[OutboxRow], at: _Round, detail: str) -> None:
        log.warning("%s; %d message(s) wait for the next attempt", detail, len(rows))
        for row in rows:
            self._failure(row, at, 0, detail)

    def _record_accepted(self) -> None:
        for row_id, accepted in list(self._accepted_unrecorded.items()):
            # raises StorageError again while the database is still locked
            self._mark_sent(accepted.row, accepted.when, accepted.refused)
            self._accepted_unrecorded.pop(row_id, None)

    def _mark_sent(self, row: OutboxRow, now: datetime, refused: dict[str, tuple[int, str]]) -> None:
        try:
            self._write_sent(row, now, refused)
        except StorageError:
            self._accepted_unrecorded[row.id] = _Accepted(row, now, refused)
            raise

    def _write_sent(self, row: OutboxRow, now: datetime, refused: dict[str, tuple[int, str]]) -> None:
        with store.atomic(self.engine) as conn:
            result = conn.execute(
                update(store.outbox)
                .where(*self._held(row))
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
            _mark_refused(conn, refused)
        log.info("sent outbox #%d (%s) to %s", row.id, row.kind, ", ".join(row.recipients))

    def _held(self, row: OutboxRow) -> tuple[ColumnElement[bool], ...]:
        """The row, as long as this sender's claim on it stands."""
        o = store.outbox
        return o.c.id == row.id, o.c.status == "sending", o.c.claim_token == self.token


def _count_failure(report: DeliveryReport, row: OutboxRow, permanent: bool, delay: timedelta, detail: str) -> None:
    if permanent:
        report.failed += 1
        log.warning("outbox #%d to %s failed for good: %s", row.id, ", ".join(row.recipients), detail)
    else:
        report.retrying += 1
        log.warning("outbox #%d to %s will be retried in %s: %s", row.id, ", ".join(row.recipients), delay, detail)
    report.errors.append(detail)


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


def _write_file(folder: Path, row: OutboxRow) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{row.id:06d}-{row.kind}.eml"
    write_atomic(target, row.raw)


def connect(s: OutboxSettings, tokens: TokenCache | None = None) -> smtplib.SMTP:
    """A logged-in SMTP connection (password or XOAUTH2 with a token from ``tokens``)."""
    if s.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            s.host, s.effective_port, timeout=s.timeout_seconds, context=client_context(s.ca_file)
        )
    else:
        client = smtplib.SMTP(s.host, s.effective_port, timeout=s.timeout_seconds)
        if s.security == "starttls":
            client.starttls(context=client_context(s.ca_file))
    if s.username and s.auth == "oauth2":
        _login_xoauth2(client, s, tokens or TokenCache())
    elif s.username:
        client.login(s.username, s.password("outbox"))
    return client


def _login_xoauth2(client: smtplib.SMTP, s: OutboxSettings, tokens: TokenCache) -> None:
    token = tokens.access_token(s, "outbox")
    client.ehlo_or_helo_if_needed()
    try:
        # after a refusal the server sends an error challenge, answered with an empty line
        client.auth(
            "XOAUTH2",
            lambda challenge=None: xoauth2(s.username, token) if challenge is None else "",
            initial_response_ok=True,
        )
    except smtplib.SMTPAuthenticationError:
        tokens.forget(s, "outbox")
        client.close()
        raise


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def retry_failed(engine: Engine, now: datetime) -> int:
    """Put failed messages back in the queue (after staff fixed the address or the server)."""
    with store.atomic(engine) as conn:
        result = conn.execute(
            update(store.outbox)
            .where(store.outbox.c.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=now)
        )
    return int(result.rowcount or 0)


def require_deliverable(settings: Settings) -> None:
    if settings.outbox.kind == "smtp" and not settings.outbox.host:
        raise MailbotError("outbox.host is empty")


def recent(engine: Engine, limit: int) -> list[OutboxRow]:
    with engine.connect() as conn:
        o = store.outbox
        return list(reversed(conn.execute(select(o).order_by(o.c.id.desc()).limit(limit)).all()))
