"""Schema migrations: bring a database to the newest revision (mailbot/migrations), once, whatever number of
processes start at the same moment, and say where a database stands (`mailbot db current`, `check`)."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from mailbot import store

log = logging.getLogger("mailbot.migrate")
# Alembic narrates every connection (context, plugins) at INFO: one line of ours says what was upgraded.
logging.getLogger("alembic").setLevel(logging.WARNING)

FIRST_RELEASE = "0001"  # the schema `create_all` made before there were migrations
FIRST_RELEASE_TABLES = frozenset(
    {"institutions", "messages", "files", "locations", "actions", "outbox", "outbox_rcpt", "undeliverable",
     "extensions", "jobs", "meta", "learned_addresses", "web_users", "web_sessions", "web_events"}
)  # fmt: skip
LOCK_ID = 0x6D61696C626F74  # "mailbot": the PostgreSQL advisory lock several workers' starts queue on


@dataclass(frozen=True)
class Level:
    current: str | None  # None: an empty database, or one made before migrations
    head: str

    @property
    def behind(self) -> bool:
        return self.current != self.head


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


def head() -> str:
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found, "mailbot/migrations has no revision"
    return found


def level(engine: Engine) -> Level:
    with engine.connect() as conn:
        return Level(MigrationContext.configure(conn).get_current_revision(), head())


def upgrade(engine: Engine) -> list[str]:
    """Apply the revisions the database lacks (a log line says which); nothing when it is up to date."""
    newest = head()
    if level(engine).current == newest:
        return []
    with _exclusive(engine) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        if before == newest:  # another process upgraded it while we waited
            return []
        cfg = _config()
        cfg.attributes["connection"] = conn
        if before is None and set(inspect(conn).get_table_names()) & set(store.metadata.tables):
            before = _adopt(conn, cfg)
        command.upgrade(cfg, "head")
    log.info("database schema upgraded from %s to %s", before or "empty", newest)
    return [before or "empty", newest]


def _adopt(conn: Connection, cfg: Config) -> str:
    """A database made by `create_all` before migrations: the first release's is stamped as revision 0001 (the
    later revisions then run on it); an older development build's gets the tables and columns it lacks and is
    stamped as the newest. Returns the revision it now has."""
    tables = set(inspect(conn).get_table_names())
    added = store.add_missing_columns(conn)
    if added:
        log.info("columns added to a database made before migrations: %s", ", ".join(added))
    if tables >= FIRST_RELEASE_TABLES:
        command.stamp(cfg, FIRST_RELEASE)
        return FIRST_RELEASE
    store.metadata.create_all(conn)
    command.stamp(cfg, "head")
    return head()


@contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    """One transaction that only one process at a time holds for migrating: an advisory lock on PostgreSQL, a
    lock file beside an SQLite database."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
            yield conn
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        with engine.begin() as conn:
            yield conn
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with engine.begin() as conn:
            yield conn
