"""The database: schema, and the few queries and writes the pipeline and the CLI need."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC as TZ_UTC
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Engine,
    ForeignKey,
    Index,
    Insert,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    false,
    func,
    inspect,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from mailbot.errors import MailbotError, StorageError, first_line
from mailbot.models import Institution, Notice


class UTC(TypeDecorator[datetime]):
    """Aware datetimes stored as sortable UTC ISO text, whatever the database."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> str | None:
        # Lossless: what is compared in memory is what is compared in SQL. Whole seconds have no fraction
        # ("…T10:00:00+00:00"); "+" sorts before ".", so text order stays time order with or without one.
        return value.astimezone(TZ_UTC).isoformat() if value else None

    def process_result_value(self, value: str | None, dialect: Any) -> datetime | None:
        return datetime.fromisoformat(value) if value else None


class JSONList(TypeDecorator[list[str]]):
    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Iterable[str] | None, dialect: Any) -> str:
        return json.dumps(list(value or ()), ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Any) -> list[str]:
        return json.loads(value) if value else []


class Notices(TypeDecorator[tuple[Notice, ...]]):
    """Warnings as values in memory, stored as before: a JSON list of ``code`` or ``code:detail`` strings (the one
    place where they are written as text and read back)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Iterable[Notice] | None, dialect: Any) -> str:
        return json.dumps([str(n) for n in value or ()], ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Any) -> tuple[Notice, ...]:
        return tuple(Notice.parse(s) for s in json.loads(value)) if value else ()


# Every table and column below is created by the revisions in mailbot/migrations/versions, never by create_all:
# a new table or column needs a new revision there too (README, "Upgrades"; tests/test_migrations.py compares them).
metadata = MetaData()

institutions = Table(
    "institutions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("grp", Text, nullable=False),
    Column("emails", JSONList, nullable=False),
    Column("updated_at", UTC, nullable=False),
    # False once `roster import --replace` left it out: its history stays, it is no longer chased nor counted.
    Column("active", Boolean, nullable=False, default=True, server_default=true()),
    Column("contact", Text, nullable=False, default="", server_default=text("''")),  # the person staff call there
    Column("phone", Text, nullable=False, default="", server_default=text("''")),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    # sha256 of the raw bytes. Unique and set by mailbot, so it tells SQLite which new id is whose: a batch's rows
    # are then inserted by one statement, not one each (SQLAlchemy's "insert sentinel"; the DDL is the same)
    Column("fingerprint", String(64), nullable=False, unique=True, insert_sentinel=True),
    Column("message_id", Text, nullable=False, index=True),
    Column("sender", Text, nullable=False),
    Column("sender_name", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("received_at", UTC, nullable=False),
    Column("institution_id", Integer, ForeignKey("institutions.id"), index=True),
    Column("campaign_id", String(64), index=True),
    Column("identified_by", String(16)),
    Column("late", Boolean, nullable=False, default=False),
    Column("state", String(16), nullable=False),  # submission | no_report | review | error | dismissed
    Column("reason", Text, nullable=False, default=""),
    Column("eml_path", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("warnings", Notices, nullable=False),
    Column("references", Text, nullable=False, default=""),
    Column("auto_markers", JSONList, nullable=False, default=list),
    Column("recorded_at", UTC, nullable=False),
)

files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("origin", Text, nullable=False, default=""),
    Column("heading", Text, nullable=False, default=""),
    Column("warnings", Notices, nullable=False),
    Column("meta", JSON, nullable=False, default=dict),  # what the Word report says about itself
)

# Where a message lies on a server: it is never fetched again from here once a row exists.
locations = Table(
    "locations",
    metadata,
    Column("source", Text, primary_key=True),
    Column("uidvalidity", Integer, primary_key=True),
    Column("uid", String(255), primary_key=True),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False),
    Column("moved_at", UTC),
)

# Who changed what by hand, and when.
actions = Table(
    "actions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_pk", Integer, ForeignKey("messages.id")),
    Column("action", String(32), nullable=False),
    Column("actor", Text, nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("at", UTC, nullable=False),
)

# Every message mailbot sends, written before it is sent; `key` makes queueing the same notice twice a no-op.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", Text, nullable=False, unique=True, insert_sentinel=True),  # a batch inserted by one statement
    Column("kind", String(16), nullable=False),  # ack | ack_no_report | ack_review | reminder | late | digest
    Column("message_pk", Integer, ForeignKey("messages.id")),
    Column("institution_id", Integer, ForeignKey("institutions.id")),
    Column("campaign_id", String(64)),
    Column("recipients", JSONList, nullable=False),
    Column("subject", Text, nullable=False),
    Column("our_message_id", Text, nullable=False, index=True),
    Column("raw", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sending | sent | failed | suppressed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTC),
    Column("last_error", Text, nullable=False, default=""),
    Column("created_at", UTC, nullable=False),
    Column("sent_at", UTC),
    # A reply to an address off the roster that our server did not authenticate: counted against the global
    # daily cap (notify.max_unknown_replies_per_day), so that forged senders cannot make mailbot mail the world.
    Column("unverified", Boolean, nullable=False, default=False, server_default=false()),
    # A sender claims a row (status "sending") before it sends it; the claim lapses at claimed_until (real time)
    # so that a sender killed mid-way does not strand the row. See outbox.py.
    Column("claim_token", String(160)),
    Column("claimed_until", UTC),
    Index("outbox_due", "status", "next_attempt_at"),  # the service looks for due rows every few seconds
)

# One row per recipient of an automatic message, so the per-address daily limit is an index lookup.
outbox_rcpt = Table(
    "outbox_rcpt",
    metadata,
    Column("outbox_id", Integer, ForeignKey("outbox.id"), primary_key=True),
    Column("address", Text, primary_key=True),
    Column("created_at", UTC, nullable=False),
    Index("outbox_rcpt_by_address", "address", "created_at"),
)

# Addresses that bounced (or were refused) for one of our messages: reminders use the others.
undeliverable = Table(
    "undeliverable",
    metadata,
    Column("address", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("since", UTC, nullable=False),
)

# A later deadline for one institution, granted by staff.
extensions = Table(
    "extensions",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("institution_id", Integer, ForeignKey("institutions.id"), primary_key=True),
    Column("until", UTC, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("actor", Text, nullable=False),
    Column("at", UTC, nullable=False),
)

# The campaigns (đợt báo cáo): the database is their one source of truth. Staff create them in the web pages or
# with `mailbot campaign add`; a `[[campaign]]` block of the configuration is imported once, when its id is new.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("plan", Text, nullable=False, default=""),
    Column("opens", UTC),
    Column("deadline", UTC, nullable=False),
    Column("groups", JSONList, nullable=False),
    Column("keywords", JSONList, nullable=False),
    Column("accept_late_days", Integer, nullable=False, default=60),
    Column("paper", String(16), nullable=False, default="none"),
    Column("contact", Text, nullable=False, default=""),
    Column("chase", JSON, nullable=False, default=dict),  # the configuration's per-campaign [campaign.notify]
    Column("closed_at", UTC),
    Column("source", String(16), nullable=False),  # "config" (imported from the TOML file) or "staff"
    Column("created_at", UTC, nullable=False),
    Column("updated_at", UTC, nullable=False),
)

# What a campaign sends with its call for reports: the plan (kế hoạch) and the report template (mẫu báo cáo).
campaign_files = Table(
    "campaign_files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", String(64), ForeignKey("campaigns.id"), nullable=False, index=True),
    Column("role", String(16), nullable=False),  # attachment (the plan, a letter) | template (the report form)
    Column("name", Text, nullable=False),  # as staff uploaded it (NFC), the name schools see
    Column("path", Text, nullable=False),  # relative to data_dir
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("added_at", UTC, nullable=False),
)

# Held messages staff set aside as no report (`review dismiss`): why, and the state to go back to on undo.
dismissals = Table(
    "dismissals",
    metadata,
    Column("message_pk", Integer, ForeignKey("messages.id"), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("prior_state", String(16), nullable=False),  # review | error
    Column("actor", Text, nullable=False),
    Column("at", UTC, nullable=False),
)

# The stamped copy (bản có dấu đỏ) received by post, ticked by staff: one row per campaign and institution.
paper = Table(
    "paper",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", String(64), nullable=False, index=True),
    Column("institution_id", Integer, ForeignKey("institutions.id"), nullable=False),
    Column("received_on", Date, nullable=False),  # the day it arrived, as staff say (no time: the post has none)
    Column("actor", Text, nullable=False),
    Column("at", UTC, nullable=False),
    UniqueConstraint("campaign_id", "institution_id", name="paper_once"),
)

# What a PDF file turned out to be once checked (documents/pdfcheck.py facts as JSON); no row yet: check pending.
# Only the facts of the file: the verdict for an institution is derived when shown (reports/stamps.py), so that a
# message attributed later, or a Word file arriving later, is taken into account.
stamp_checks = Table(
    "stamp_checks",
    metadata,
    Column("file_id", Integer, ForeignKey("files.id"), primary_key=True),
    Column("facts", JSON, nullable=False),
    Column("checked_at", UTC, nullable=False),
)

# Staff accepted an institution's stamped copy by hand (a doubt they resolved): it counts as verified.
stamp_accepted = Table(
    "stamp_accepted",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", String(64), nullable=False, index=True),
    Column("institution_id", Integer, ForeignKey("institutions.id"), nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", UTC, nullable=False),
    UniqueConstraint("campaign_id", "institution_id", name="stamp_accepted_once"),
)

# Scheduled work that has been done (digest of a day, reminder round of a day), so a restart never repeats it.
jobs = Table(
    "jobs",
    metadata,
    Column("key", Text, primary_key=True),
    Column("done_at", UTC, nullable=False),
)

# Mappings staff accepted in the consolidation: a school's name for a row or column of the report template
# ("Số buổi TT" is the template's "Số buổi"), both folded; kept across campaigns.
compile_aliases = Table(
    "compile_aliases",
    metadata,
    Column("kind", String(8), primary_key=True),  # "row" or "column"
    Column("found", Text, primary_key=True),
    Column("target", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", UTC, nullable=False),
)

# The services running (`mailbot run`), each with its last sign of life: the web pages show them, so that a
# worker that died on another host is seen. A service removes its row when it stops cleanly.
workers = Table(
    "workers",
    metadata,
    Column("id", String(160), primary_key=True),  # host:pid:start
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("inbox", Text, nullable=False),  # what it watches, without credentials
    Column("started_at", UTC, nullable=False),
    Column("seen_at", UTC, nullable=False),
)

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets `status` read while `run` writes; commits are made durable before any server move (a sync of the
    # batch, or checkpoint()).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def connect(url: str, *, upgrade: bool = True, meanwhile: Callable[[], object] | None = None) -> Engine:
    """An engine with the schema at the newest revision (``upgrade=False``: as it is, for `mailbot db current`);
    ``meanwhile`` is called while the schema is upgraded (see ``migrate.upgrade``)."""
    try:
        engine = create_engine(url)
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        if upgrade:
            from mailbot.migrate import upgrade as upgrade_schema  # Alembic: loaded only where a schema is checked

            upgrade_schema(engine, meanwhile)
    except SQLAlchemyError as exc:
        raise MailbotError(f"cannot open the database: {first_line(exc)}") from None
    return engine


def add_missing_columns(conn: Connection) -> list[str]:
    """For a database made before migrations by a development build: each column the live table lacks is added
    with its server default, so that it can be stamped with the first release's revision and upgraded."""
    added = []
    live_tables = set(inspect(conn).get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in live_tables:
            continue
        for column in table.columns:
            if column.name not in _live_columns(conn, table.name):
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN {_column_ddl(column, conn)}'))
                added.append(f"{table.name}.{column.name}")
    return added


def _live_columns(conn: Connection, table: str) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns(table)}


def _column_ddl(column: Column[Any], conn: Connection) -> str:
    ddl = f'"{column.name}" {column.type.compile(conn.dialect)}'
    if column.server_default is not None:  # a NOT NULL column can only be added with a default
        default = column.server_default.arg  # type: ignore[attr-defined]
        value = (
            default
            if isinstance(default, str)
            else default.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        )
        ddl += f" DEFAULT {value}" + ("" if column.nullable else " NOT NULL")
    return ddl


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same primary or unique key exists; True when this call inserted it.

    Another process may write the same row between our look-up and our insert: that is a no-op, not an
    IntegrityError (INSERT ... ON CONFLICT DO NOTHING, or a SAVEPOINT on other databases)."""
    return _inserted_key(conn, table, values) is not None


def insert_ignore_id(conn: Connection, table: Table, values: dict[str, Any]) -> int | None:
    """``insert_ignore`` for a table with one integer key: the new row's id, or None when the row existed."""
    key = _inserted_key(conn, table, values)
    return None if key is None else int(key[0])


def _inserted_key(conn: Connection, table: Table, values: dict[str, Any]) -> tuple[Any, ...] | None:
    """The primary key of the row this call inserted, or None when one with the same key existed."""
    statement = _insert_or_nothing(conn, table)
    if statement is not None:
        # RETURNING says whether a row went in: psycopg reports no row count for INSERT ... ON CONFLICT DO NOTHING
        row = conn.execute(statement.returning(*table.primary_key.columns), values).first()
        return None if row is None else tuple(row)
    try:
        with conn.begin_nested():
            return tuple(conn.execute(table.insert().values(**values)).inserted_primary_key or ())
    except IntegrityError:
        return None


def _insert_or_nothing(conn: Connection, table: Table) -> Insert | None:
    """INSERT ... ON CONFLICT DO NOTHING for the dialect, built once per table: the values go as parameters, so
    the statement is compiled once, not for every row."""
    return _conflict_free(conn.dialect.name, table)


@cache
def _conflict_free(dialect: str, table: Table) -> Insert | None:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    return None


@contextmanager
def atomic(engine: Engine) -> Iterator[Connection]:
    """One transaction: everything inside is recorded together or not at all."""
    try:
        with engine.begin() as conn:
            yield conn
    except OperationalError as exc:
        raise StorageError(f"database error: {first_line(exc)}") from None


def checkpoint(engine: Engine) -> None:
    """Make committed rows durable on disk before acting on the mail server."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(FULL)"))


def now() -> datetime:
    return datetime.now(TZ_UTC)


# --- roster -----------------------------------------------------------------------------------


def upsert_institutions(conn: Connection, rows: Iterable[Institution]) -> tuple[int, int]:
    """Insert new institutions and update known ones in place (by code), reactivating any that were deactivated;
    returns (added, updated)."""
    existing = {r.code: r for r in conn.execute(select(institutions))}
    added = updated = 0
    for inst in rows:
        values = {
            "name": inst.name,
            "grp": inst.group,
            "emails": list(inst.emails),
            "contact": inst.contact,
            "phone": inst.phone,
            "active": True,
            "updated_at": now(),
        }
        old = existing.get(inst.code)
        if old is None:
            # insert-or-ignore: another process (the service, `run --once`) may import the same roster right now
            if insert_ignore(conn, institutions, {"code": inst.code, **values}):
                added += 1
            else:
                conn.execute(institutions.update().where(institutions.c.code == inst.code).values(**values))
        elif (old.name, old.grp, old.emails, old.contact, old.phone, old.active) != (
            inst.name,
            inst.group,
            list(inst.emails),
            inst.contact,
            inst.phone,
            True,
        ):
            conn.execute(institutions.update().where(institutions.c.code == inst.code).values(**values))
            updated += 1
    return added, updated


def deactivate_institutions(conn: Connection, codes: Iterable[str]) -> int:
    """No longer chased nor counted; their messages, files and learned addresses are kept."""
    wanted = list(codes)
    if not wanted:
        return 0
    query = update(institutions).where(institutions.c.code.in_(wanted), institutions.c.active.is_(True))
    return conn.execute(query.values(active=False, updated_at=now())).rowcount


def load_institutions(conn: Connection, *, active_only: bool = False) -> tuple[Institution, ...]:
    """The roster as imported, with the addresses staff taught it (``review assign --learn``) added.

    Deactivated institutions are included (``active=False``) unless ``active_only``: a message from one of their
    addresses is still recognised (and held for staff), while status, reminders and counts leave them out."""
    extra: dict[str, list[str]] = {}
    for address, code in learned_addresses(conn).items():
        extra.setdefault(code, []).append(address)
    query = select(institutions).order_by(institutions.c.grp, institutions.c.code)
    if active_only:
        query = query.where(institutions.c.active.is_(True))
    return tuple(
        Institution(
            r.code,
            r.name,
            r.grp,
            tuple(dict.fromkeys([*r.emails, *extra.get(r.code, [])])),
            bool(r.active),
            r.contact,
            r.phone,
        )
        for r in conn.execute(query)
    )


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()


def set_meta(conn: Connection, key: str, value: str) -> None:
    conn.execute(meta.delete().where(meta.c.key == key))
    conn.execute(meta.insert().values(key=key, value=value))


def institution_pk(conn: Connection, code: str) -> int | None:
    """The row id of an institution; within ``remembering_institutions`` each code is looked up once."""
    memo: dict[str, int] | None = conn.info.get(_INSTITUTION_MEMO)
    if memo is not None and code in memo:
        return memo[code]
    pk: int | None = conn.execute(select(institutions.c.id).where(institutions.c.code == code)).scalar()
    if memo is not None and pk is not None:
        memo[code] = pk
    return pk


_INSTITUTION_MEMO = "institution_pks"


@contextmanager
def remembering_institutions(conn: Connection) -> Iterator[Connection]:
    """Within one transaction that adds no institution (recording a batch of mail), their row ids, read at once (a
    backlog's batch names dozens of institutions: one query instead of one each)."""
    conn.info[_INSTITUTION_MEMO] = dict(conn.execute(select(institutions.c.code, institutions.c.id)).all())
    try:
        yield conn
    finally:
        conn.info.pop(_INSTITUTION_MEMO, None)


# --- fetch bookkeeping -------------------------------------------------------------------------


def known_uids(conn: Connection, source: str, uidvalidity: int) -> set[str]:
    query = select(locations.c.uid).where(locations.c.source == source, locations.c.uidvalidity == uidvalidity)
    return set(conn.execute(query).scalars())


def unmoved_uids(conn: Connection, source: str, uidvalidity: int) -> set[str]:
    """Recorded messages whose move to the processed folder has not been confirmed yet."""
    query = (
        select(locations.c.uid)
        .join(messages)
        .where(
            locations.c.source == source,
            locations.c.uidvalidity == uidvalidity,
            locations.c.moved_at.is_(None),
            messages.c.state != "error",
            type_coerce(messages.c.warnings, Text).not_like("%message_too_large%"),  # held in the mailbox on purpose
        )
    )
    return set(conn.execute(query).scalars())


def mark_moved(conn: Connection, source: str, uidvalidity: int, uids: Iterable[str]) -> None:
    conn.execute(
        update(locations)
        .where(locations.c.source == source, locations.c.uidvalidity == uidvalidity, locations.c.uid.in_(list(uids)))
        .values(moved_at=now())
    )


def add_location(conn: Connection, source: str, uidvalidity: int, uid: str, message_pk: int) -> bool:
    """Where a message lies; False when another run recorded this location meanwhile (nothing to do)."""
    return insert_ignore(
        conn, locations, {"source": source, "uidvalidity": uidvalidity, "uid": uid, "message_pk": message_pk}
    )


def add_locations(conn: Connection, found: list[tuple[str, int, str, int]]) -> None:
    """``add_location`` for a batch: (source, uidvalidity, uid, message pk) each; a location recorded meanwhile by
    another run is left as it is."""
    statement = _insert_or_nothing(conn, locations)
    if statement is None:
        for source, uidvalidity, uid, pk in found:
            add_location(conn, source, uidvalidity, uid, pk)
    elif found:
        keys = ("source", "uidvalidity", "uid", "message_pk")
        conn.execute(statement, [dict(zip(keys, row, strict=True)) for row in found])


def duplicate_of(conn: Connection, fingerprint: str, message_id: str, sender: str) -> int | None:
    """A message already recorded: the same bytes, or the same Message-ID from the same sender."""
    same_bytes: int | None = conn.execute(select(messages.c.id).where(messages.c.fingerprint == fingerprint)).scalar()
    if same_bytes:
        return same_bytes
    query = select(messages.c.id).where(messages.c.message_id == message_id, messages.c.sender == sender)
    found: int | None = conn.execute(query.limit(1)).scalar()
    return found


@dataclass(frozen=True)
class Recorded:
    """Which of a batch's messages are recorded already, read in two queries for the batch (``duplicate_of`` for
    each message would cost two each)."""

    by_fingerprint: dict[str, int]
    by_message_id: dict[tuple[str, str], int]  # (Message-ID, sender) → the first message recorded with them

    def of(self, fingerprint: str, message_id: str, sender: str) -> int | None:
        return self.by_fingerprint.get(fingerprint) or self.by_message_id.get((message_id, sender))


def recorded_among(conn: Connection, fingerprints: list[str], message_ids: list[str]) -> Recorded:
    """What ``duplicate_of`` would answer for each of these messages, in two queries."""
    m = messages
    same_bytes = conn.execute(select(m.c.fingerprint, m.c.id).where(m.c.fingerprint.in_(fingerprints)))
    same_id = conn.execute(
        select(m.c.message_id, m.c.sender, func.min(m.c.id))
        .where(m.c.message_id.in_(set(message_ids)))
        .group_by(m.c.message_id, m.c.sender)
    )
    return Recorded({str(f): int(pk) for f, pk in same_bytes}, {(str(i), str(s)): int(pk) for i, s, pk in same_id})


def first_queued(conn: Connection, kind: str, campaign_id: str) -> dict[str, datetime]:
    """institution code → when a message of this kind for this campaign was first queued for it (e.g. the call)."""
    o, i = outbox, institutions
    rows = conn.execute(
        select(i.c.code, func.min(o.c.created_at))  # min() keeps the column's type: aware datetimes
        .join(i, i.c.id == o.c.institution_id)
        .where(o.c.kind == kind, o.c.campaign_id == campaign_id)
        .group_by(i.c.code)
    )
    return {str(code): at for code, at in rows}


def sources_of(conn: Connection, message_pks: list[int]) -> dict[int, str]:
    """message pk → the inbox it was first fetched from (several inboxes may be watched)."""
    if not message_pks:
        return {}
    rows = conn.execute(
        select(locations.c.message_pk, func.min(locations.c.source))
        .where(locations.c.message_pk.in_(message_pks))
        .group_by(locations.c.message_pk)
    )
    return {int(pk): str(source) for pk, source in rows}


def count_messages(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(messages)).scalar_one()


# --- learned addresses (kept apart from the roster file, so a re-import does not forget them) ----

learned = Table(
    "learned_addresses",
    metadata,
    Column("address", Text, primary_key=True),
    Column("institution_id", Integer, ForeignKey("institutions.id"), nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", UTC, nullable=False),
)


def learn_address(conn: Connection, address: str, institution_id: int, actor: str) -> None:
    conn.execute(learned.delete().where(learned.c.address == address))
    conn.execute(learned.insert().values(address=address, institution_id=institution_id, actor=actor, at=now()))


def learned_addresses(conn: Connection) -> dict[str, str]:
    """address → institution code."""
    query = select(learned.c.address, institutions.c.code).join(institutions)
    return {r.address: r.code for r in conn.execute(query)}


def mark_undeliverable(conn: Connection, address: str, reason: str) -> None:
    conn.execute(undeliverable.delete().where(undeliverable.c.address == address.lower()))
    conn.execute(undeliverable.insert().values(address=address.lower(), reason=reason[:300], since=now()))


def undeliverable_addresses(conn: Connection) -> dict[str, str]:
    return {r.address: r.reason for r in conn.execute(select(undeliverable))}


def has_submission(conn: Connection, institution_pk: int, campaign_id: str) -> bool:
    """Whether a message counted as the institution's report for the campaign (with a Word file) is recorded."""
    query = select(messages.c.id).where(
        messages.c.institution_id == institution_pk,
        messages.c.campaign_id == campaign_id,
        messages.c.state == "submission",
    )
    return conn.execute(query.limit(1)).first() is not None


def signed_copies(conn: Connection, campaign_id: str) -> set[int]:
    """Institutions that sent a PDF scan for this campaign (in a report message or on its own)."""
    return set(conn.execute(_signed(campaign_id)).scalars())


def has_signed_copy(conn: Connection, institution_pk: int, campaign_id: str) -> bool:
    """Whether this institution sent one: its own rows, by index (a receipt asks for each message of a backlog)."""
    query = _signed(campaign_id).where(messages.c.institution_id == institution_pk).limit(1)
    return conn.execute(query).first() is not None


def _signed(campaign_id: str) -> Select[Any]:
    return (
        select(messages.c.institution_id)
        .join(files, files.c.message_pk == messages.c.id)
        .where(
            messages.c.campaign_id == campaign_id,
            messages.c.state.in_(("submission", "no_report")),
            files.c.kind == "pdf",
        )
    )


def has_paper_copy(conn: Connection, institution_pk: int, campaign_id: str) -> bool:
    """Whether staff recorded the institution's paper copy for the campaign."""
    query = select(paper.c.institution_id).where(
        paper.c.institution_id == institution_pk, paper.c.campaign_id == campaign_id
    )
    return conn.execute(query.limit(1)).first() is not None


def paper_received(conn: Connection, campaign_id: str) -> dict[int, date]:
    """institution pk → the day staff say its paper copy arrived, for one campaign."""
    query = select(paper.c.institution_id, paper.c.received_on).where(paper.c.campaign_id == campaign_id)
    return {r.institution_id: r.received_on for r in conn.execute(query)}


@contextmanager
def exclusive(engine: Engine, key: str) -> Iterator[bool]:
    """Whether this process may do the work named ``key`` now: on PostgreSQL a session advisory lock that one
    worker holds and the others skip (True for the holder only); elsewhere always True (one service per
    SQLite database, ensured by the service's lock file)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    with engine.connect() as conn:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id}).scalar())
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
                conn.commit()


def heartbeat(engine: Engine, worker: str, *, host: str, pid: int, inbox: str, started: datetime) -> None:
    """Record that ``worker`` is alive now (a row per running service)."""
    seen = now()
    with engine.begin() as conn:
        values = {"host": host, "pid": pid, "inbox": inbox, "started_at": started, "seen_at": seen}
        if not insert_ignore(conn, workers, {"id": worker, **values}):
            conn.execute(update(workers).where(workers.c.id == worker).values(seen_at=seen))


def worker_stopped(engine: Engine, worker: str) -> None:
    with engine.begin() as conn:
        conn.execute(workers.delete().where(workers.c.id == worker))


def job_done(conn: Connection, key: str) -> bool:
    return conn.execute(select(jobs.c.key).where(jobs.c.key == key)).first() is not None


def mark_job(conn: Connection, key: str, at: datetime) -> None:
    insert_ignore(conn, jobs, {"key": key, "done_at": at})


# --- staff web pages (`mailbot web`) --------------------------------------------------------------
# Changes made on the pages (assignments, extensions) go to `actions` with the logged-in user as actor.

# Staff accounts, created with `mailbot user add`; only an argon2 hash of the password is kept.
web_users = Table(
    "web_users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTC, nullable=False),
    Column("password_set_at", UTC, nullable=False),
)

# Logged-in sessions: the cookie carries a random token (signed); only its sha256 is stored here.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("web_users.id"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("ip", Text, nullable=False, default=""),
    Column("created_at", UTC, nullable=False),
    Column("expires_at", UTC, nullable=False, index=True),
)

# Security events: logins (successful or not), logouts, accounts added, disabled, enabled or removed, passwords changed.
web_events = Table(
    "web_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTC, nullable=False),
    # login | login_failed | login_limited | logout | user_added | password_set | user_disabled | user_enabled
    # | user_removed
    Column("event", String(32), nullable=False),
    Column("actor", Text, nullable=False),
    Column("ip", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
)


def stamp_facts(conn: Connection, file_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """file pk → the facts its check recorded (absent: not checked yet)."""
    ids = list(file_ids)
    if not ids:
        return {}
    query = select(stamp_checks.c.file_id, stamp_checks.c.facts).where(stamp_checks.c.file_id.in_(ids))
    return {r.file_id: r.facts for r in conn.execute(query)}


def stamp_accepted_by(conn: Connection, campaign_id: str) -> dict[int, datetime]:
    """institution pk → when staff accepted its stamped copy by hand, for one campaign."""
    a = stamp_accepted
    return {r.institution_id: r.at for r in conn.execute(select(a).where(a.c.campaign_id == campaign_id))}
