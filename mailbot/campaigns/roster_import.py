"""Roster files into the database, which is the roster's one source of truth.

Staff import a file with `mailbot roster import FILE [--replace]`; the configured `[roster] file` is imported
by the service only when its content changed since mailbot last looked at it and it was saved after the last
import done with the CLI, so a start or a reload never reverts what staff imported. Both add and update
institutions (by code) and reactivate deactivated ones; only ``--replace`` deactivates those missing from the
file, keeping their history. Every import is written to the staff change log (`actions`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from mailbot import store
from mailbot.campaigns import roster as roster_file
from mailbot.errors import RosterError
from mailbot.models import Institution

log = logging.getLogger("mailbot.campaigns.roster")

SERVICE_ACTOR = "mailbot (tệp danh sách trong cấu hình)"
# meta keys: what the service last saw of the configured file, and when staff last imported with the CLI.
FILE_SHA = "roster_file_sha256"
FILE_MTIME = "roster_file_mtime"
CLI_IMPORT_AT = "roster_cli_import_at"
CLI_SHA = "roster_cli_sha256"


@dataclass(frozen=True)
class ImportPlan:
    """What importing a file changes, by code."""

    added: tuple[Institution, ...]
    changed: tuple[tuple[Institution, Institution], ...]  # (before, after); fields other than ``active`` differ
    reactivated: tuple[Institution, ...]
    deactivated: tuple[Institution, ...]
    unchanged: int
    problems: tuple[str, ...]  # "row N: what is wrong" (those rows are left out)
    rows: tuple[Institution, ...] = ()  # what is written: the file's rows, with what the file does not give kept

    @property
    def fingerprint(self) -> str:
        """Names this exact plan: the web pages apply a preview only if the plan is still the same."""
        text = repr((self.added, self.changed, self.reactivated, self.deactivated, self.rows))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.reactivated or self.deactivated)

    def log_text(self, source: str) -> str:
        """For the staff change log (web pages: Vietnamese)."""
        text = (
            f"Tệp {source}: thêm {len(self.added)}, cập nhật {len(self.changed)}, kích hoạt lại "
            f"{len(self.reactivated)}, ngừng theo dõi {len(self.deactivated)} đơn vị"
        )
        if self.deactivated:
            text += " (" + ", ".join(i.code for i in self.deactivated) + ")"
        return text

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.reactivated)} reactivated, "
            f"{len(self.deactivated)} deactivated, {self.unchanged} unchanged"
        )


def _same(a: Institution, b: Institution) -> bool:
    return (a.name, a.group, a.emails, a.contact, a.phone) == (b.name, b.group, b.emails, b.contact, b.phone)


def imported(conn: Connection) -> dict[str, Institution]:
    """The roster as imported (without learned addresses), by code, in roster order."""
    i = store.institutions
    return {
        r.code: Institution(r.code, r.name, r.grp, tuple(r.emails), bool(r.active), r.contact, r.phone)
        for r in conn.execute(select(i).order_by(i.c.grp, i.c.code))
    }


def read_file(conn: Connection, path: Path) -> roster_file.RosterRead:
    """The file read against the roster in the database (codes and groups a file leaves out come from it)."""
    return roster_file.read(path, tuple(imported(conn).values()))


def _kept(before: Institution, inst: Institution, columns: frozenset[str]) -> Institution:
    """A column the file does not have never erases what staff entered (a contact typed on the web page)."""
    if "contact" not in columns:
        inst = replace(inst, contact=before.contact)
    if "phone" not in columns:
        inst = replace(inst, phone=before.phone)
    return inst


def plan(conn: Connection, read: roster_file.RosterRead, *, replace: bool) -> ImportPlan:
    """Compare a file with the database; ``replace`` deactivates the active institutions the file leaves out."""
    old = imported(conn)
    added, changed, reactivated, unchanged, rows = [], [], [], 0, []
    for inst in read.institutions:
        before = old.get(inst.code)
        if before is not None:
            inst = _kept(before, inst, read.columns)
        rows.append(inst)
        if before is None:
            added.append(inst)
            continue
        if not before.active:
            reactivated.append(inst)
        if not _same(before, inst):
            changed.append((before, inst))
        elif before.active:
            unchanged += 1
    listed = {i.code for i in read.institutions}
    gone = tuple(i for code, i in old.items() if replace and i.active and code not in listed)
    return ImportPlan(tuple(added), tuple(changed), tuple(reactivated), gone, unchanged, read.problems, tuple(rows))


def apply(conn: Connection, found: ImportPlan, *, actor: str, source: str) -> None:
    """Write the plan and one line of the change log, in the caller's transaction."""
    store.upsert_institutions(conn, found.rows)
    store.deactivate_institutions(conn, (i.code for i in found.deactivated))
    conn.execute(
        store.actions.insert().values(
            action="roster_import", actor=actor, detail=found.log_text(source)[:2000], at=store.now()
        )
    )


class PlanChanged(RosterError):
    """The roster moved between a preview and its application: the preview no longer says what would happen."""


def import_file(
    engine: Engine,
    path: Path,
    *,
    actor: str,
    replace: bool = False,
    dry_run: bool = False,
    source: str | None = None,
    expect: str | None = None,
) -> ImportPlan:
    """`mailbot roster import`: the file's institutions added or updated (and, with ``replace``, the others
    deactivated). A replace from a file with bad rows changes nothing: a skipped row would deactivate its school.
    ``expect`` (a previewed plan's fingerprint) refuses to apply a plan other than the one previewed."""
    with store.atomic(engine) as conn:
        read = read_file(conn, path)
        found = plan(conn, read, replace=replace)
        if expect is not None and found.fingerprint != expect:
            raise PlanChanged(f"{path.name}: the roster changed since the preview; preview the file again")
        if replace and read.problems and not dry_run:
            raise RosterError(
                f"{path.name}: {len(read.problems)} bad row(s); with --replace nothing is imported "
                "until they are fixed (a skipped row would deactivate its institution):\n"
                + roster_file.describe(read.problems)
            )
        if replace and not read.institutions and not dry_run:
            # A header-only sheet (or the wrong sheet first) would otherwise stop the chasing of everyone.
            raise RosterError(
                f"{path.name} lists no institution; with --replace it would deactivate all "
                f"{len(found.deactivated)} active one(s): nothing imported"
            )
        if dry_run:
            return found
        apply(conn, found, actor=actor, source=source or path.name)
        store.set_meta(conn, CLI_IMPORT_AT, store.now().isoformat())
        store.set_meta(conn, CLI_SHA, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


@dataclass(frozen=True)
class FileState:
    sha256: str
    mtime: datetime


def file_state(path: Path) -> FileState:
    if not path.exists():
        raise RosterError(f"roster file {path} not found")
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return FileState(hashlib.sha256(path.read_bytes()).hexdigest(), mtime)


def import_configured(path: Path | None, engine: Engine) -> tuple[str, ...]:
    """At start and on SIGHUP: import `[roster] file` if it changed since last seen and was saved after the last
    CLI import; never deactivates. Returns the problems found in the file when it was read."""
    if path is None:
        return ()
    state = file_state(path)
    with engine.connect() as conn:
        seen, cli_at, cli_sha = (store.get_meta(conn, k) for k in (FILE_SHA, CLI_IMPORT_AT, CLI_SHA))
    if seen == state.sha256:
        log.info("roster file %s unchanged since it was last imported: the database is kept as it is", path.name)
        return ()
    if cli_sha == state.sha256:
        log.info("roster file %s was last imported with the CLI: nothing to do", path.name)
        _remember(engine, state)
        return ()
    if cli_at and state.mtime <= datetime.fromisoformat(cli_at):
        log.warning(
            "roster file %s changed but was saved before the roster import done with the CLI at %s: not "
            "imported, so that import stands (run `mailbot roster import %s` to use the file)",
            path.name,
            cli_at,
            path.name,
        )
        _remember(engine, state)
        return ()
    with store.atomic(engine) as conn:
        read = read_file(conn, path)
        found = plan(conn, read, replace=False)
        apply(conn, found, actor=SERVICE_ACTOR, source=path.name)
        _remember_in(conn, state)
    log.info("imported roster file %s (changed since last seen): %s", path.name, found.summary())
    for problem in read.problems:
        log.warning("roster %s: %s", path.name, problem)
    return read.problems


def _remember(engine: Engine, state: FileState) -> None:
    with store.atomic(engine) as conn:
        _remember_in(conn, state)


def _remember_in(conn: Connection, state: FileState) -> None:
    store.set_meta(conn, FILE_SHA, state.sha256)
    store.set_meta(conn, FILE_MTIME, state.mtime.isoformat())
