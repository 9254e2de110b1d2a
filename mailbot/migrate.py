"""Schema migrations: bring a database to the newest revision (mailbot/migrations), once, whatever number of
processes start at the same moment, and say where a database stands (`mailbot db current`, `check`).

Alembic (with the SQLAlchemy ORM it pulls in, ~17 MB that a process keeps for its life) is imported only when a
database is behind: a database already at the newest revision, every start but the first after an upgrade, is
recognised from its version table and the revision files' names alone; one that is behind is upgraded in a forked
child process, so that even a first start leaves no Alembic in the service's memory."""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import re
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from mailbot import store

if TYPE_CHECKING:
    from alembic.config import Config

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


VERSIONS = Path(__file__).parent / "migrations" / "versions"
VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps
_REVISION = re.compile(r"""^(down_revision|revision)\s*=\s*(None|"[^"]*"|'[^']*')""", re.M)


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


def head() -> str:
    from alembic.script import ScriptDirectory

    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found, "mailbot/migrations has no revision"
    return found


def level(engine: Engine) -> Level:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return Level(MigrationContext.configure(conn).get_current_revision(), head())


@cache
def _head_from_files() -> str | None:
    """The newest revision as the revision files declare it, without Alembic; None unless exactly one revision is
    no other's down_revision (a branched history is left to Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        found = dict(_REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" in found:
            revisions.add(found["revision"].strip("\"'"))
            parents.add(found.get("down_revision", "None").strip("\"'"))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _current_without_alembic(engine: Engine) -> str | None:
    """The database's revision read from Alembic's version table (None: no table, or not exactly one row)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    return str(rows[0][0]) if len(rows) == 1 else None


def upgrade(engine: Engine, meanwhile: Callable[[], object] | None = None) -> list[str]:
    """Apply the revisions the database lacks (a log line says which); nothing when it is up to date.

    ``meanwhile``, if given, is called once, while a forked child upgrades when it can: a first start compiles its
    templates during the migrations instead of after them."""
    quick = _head_from_files()
    if quick is not None and _current_without_alembic(engine) == quick:
        _call(meanwhile)
        return []  # the usual start: up to date, and Alembic not loaded at all
    if _forkable(engine):
        return _upgrade_in_child(engine, meanwhile)
    _call(meanwhile)
    return _upgrade(engine)


def _call(meanwhile: Callable[[], object] | None) -> None:
    if meanwhile is not None:
        meanwhile()


def _forkable(engine: Engine) -> bool:
    """Whether the upgrade can run in a forked child: a database another process can open, and no thread here that
    a fork could catch mid-work."""
    in_memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
    return not in_memory and threading.active_count() == 1 and "alembic" not in sys.modules


def _upgrade_in_child(engine: Engine, meanwhile: Callable[[], object] | None) -> list[str]:
    """The upgrade in a forked process: Alembic (and the ORM it pulls in, ~10 MB) never loads into a service or a
    run that will hold its memory for hours, even on a first start."""
    url = engine.url.render_as_string(hide_password=False)  # to the child's memory only, never logged
    with ProcessPoolExecutor(1, multiprocessing.get_context("fork")) as child:
        upgraded = child.submit(_upgrade_url, url)
        _call(meanwhile)
        return upgraded.result()


def _upgrade_url(url: str) -> list[str]:
    engine = store.connect(url, upgrade=False)
    try:
        return _upgrade(engine)
    finally:
        engine.dispose()


def _upgrade(engine: Engine) -> list[str]:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

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
    from alembic import command

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
