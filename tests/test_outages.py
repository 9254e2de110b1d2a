"""Outages while `mailbot run` works: the IMAP server, the SMTP server, the database, the disk.

In every case: no message lost or recorded twice, no receipt sent twice, a clear log line saying what is wrong,
no traceback, and the service carries on by itself once the outage is over. Each test writes its figures
(``outage-<kind>.json``) for scripts/reliability.py, then asserts. When the service dies during an outage, the
test notes it and starts it again (as systemd would) to see what else went wrong, then fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import PASSWORD_ENV, Workspace, make_workspace
from tests.reliability_support import (
    Daemon,
    ack_parents,
    append_many,
    archive_problems,
    db_count,
    db_rows,
    school_mails,
    sent_twice,
    wait_until,
    write_figures,
)
from tests.servers.stall import StallRelay
from tests.test_notify import smtp_section

ARRIVAL = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)
FAST = """
retry_base_seconds = 1
deliver_every_seconds = 1
"""
NOTIFY = "max_auto_per_address_per_day = 1000"
RECOVERY = 60.0  # seconds after an outage ends within which the service must have caught up by itself


class Env:
    """A workspace whose outbox goes through a StallRelay in front of the SMTP sink, and its daemons."""

    def __init__(self, tmp_path: Path, dovecot, sink, factory: pytest.TempPathFactory) -> None:  # type: ignore[no-untyped-def]
        self.tmp_path, self.dovecot, self.sink, self.factory = tmp_path, dovecot, sink, factory
        self.relay = StallRelay(sink.host, sink.port).start()
        self.ws: Workspace | None = None
        self.daemons: list[Daemon] = []
        self.problems: list[str] = []
        self.began = time.monotonic()

    def workspace(self, outbox: str = "") -> Workspace:
        self.ws = make_workspace(
            self.tmp_path / "ws",
            self.dovecot,
            extra_inbox="poll_seconds = 2",
            extra=smtp_section(self.relay, extra=FAST + outbox, notify=NOTIFY),
        )
        return self.ws

    def start(self) -> Daemon:
        assert self.ws is not None
        daemon = Daemon(self.ws, self.tmp_path / f"daemon-{len(self.daemons)}.log")
        self.daemons.append(daemon)
        daemon.wait_log("mailbot started")
        return daemon

    def log(self) -> str:
        return "".join(d.log() for d in self.daemons)

    def still_running(self, daemon: Daemon, during: str) -> Daemon:
        """The daemon should have ridden out the outage; if it died, note it and start another one."""
        if daemon.alive:
            return daemon
        self.problems.append(
            f"mailbot run exited with {daemon.proc.returncode} during {during}: {last_lines(daemon.log(), 6)}"
        )
        return self.start()

    def append(self, mails: list[tuple[str, str, int, bytes]]) -> None:
        assert all(append_many(self.dovecot, [raw for *_, raw in mails], ARRIVAL))

    def mark(self) -> int:
        """Where the log stands now: expect_log(..., since=mark) looks only at what comes after."""
        return len(self.log())

    def expect_log(self, what: str, *needles: str, timeout: float = 30.0, since: int = 0) -> str:
        """Wait for a line holding any of the needles; note a problem when none comes."""
        found = ""

        def look() -> bool:
            nonlocal found
            for line in self.log()[since:].splitlines():
                if any(n in line for n in needles):
                    found = line
                    return True
            return False

        if not wait_until(look, timeout, every=0.2):
            self.problems.append(f"no log line about {what} (looked for {needles})")
        return found.split(": ", 1)[-1] if found else ""

    def verify(self, mails: list[tuple[str, str, int, bytes]], timeout: float = 60.0) -> dict:  # type: ignore[type-arg]
        """Wait until every message is recorded and acknowledged; then count what is lost or doubled."""
        assert self.ws is not None
        ws, expected = self.ws, {mid for mid, *_ in mails}
        done = wait_until(
            lambda: (
                db_count(ws, "messages") >= len(expected)
                and expected <= set(ack_parents(self.sink))
                and db_count(ws, "outbox", "status IN ('pending', 'sending')") == 0
            ),
            timeout,
            every=0.5,
        )
        time.sleep(2.5)  # more delivery rounds: a receipt sent twice would show now
        recorded = [mid for (mid,) in db_rows(ws, "SELECT message_id FROM messages")]
        receipts = ack_parents(self.sink)
        on_server = len(self.dovecot.uids())
        not_recorded = len(expected - set(recorded))
        figures = {
            "messages": len(expected),
            "not_recorded": not_recorded,
            # mailbot never deletes mail and no processed_folder is set here: a message is lost only when it is
            # neither recorded nor still on the server
            "lost": not_recorded if on_server < len(expected) else 0,
            "recorded_twice": len(recorded) - len(set(recorded)),
            "locations": db_count(ws, "locations"),
            "on_server": on_server,
            "unacknowledged": len(expected - set(receipts)),
            "duplicate_receipts": sum(n - 1 for n in receipts.values() if n > 1),
            "sent_twice": sum(n - 1 for n in sent_twice(self.sink).values()),  # any kind: receipts, digest
            "outbox_not_sent": db_rows(
                ws, "SELECT id, kind, status, attempts, last_error FROM outbox WHERE status != 'sent'"
            ),
            "archive": {k: len(v) for k, v in archive_problems(ws).items()},
        }
        if not done:
            self.problems.append(f"not everything recorded and acknowledged within {timeout:.0f} s")
        if not_recorded:
            self.problems.append(
                f"{not_recorded} message(s) not recorded by the end of the test "
                f"({on_server} of {len(expected)} still on the server)"
            )
        for key in ("recorded_twice", "unacknowledged", "sent_twice"):
            if figures[key]:
                self.problems.append(f"{key}: {figures[key]}")
        if figures["locations"] != len(expected) - not_recorded or on_server != len(expected):
            self.problems.append(
                f"{figures['locations']} locations, {on_server} on the server, for {len(expected)} messages"
            )
        if figures["outbox_not_sent"]:
            self.problems.append(f"outbox rows not sent: {figures['outbox_not_sent'][:5]}")
        archive = dict(figures["archive"])
        if not_recorded:  # files archived for a message not recorded yet are expected until it is
            archive.pop("unreferenced")
        if any(archive.values()):
            self.problems.append(f"archive: {figures['archive']}")
        if "Traceback" in self.log():
            self.problems.append("a traceback in the log: " + self.log().split("Traceback", 1)[1][:1500])
        return figures

    def finish(self, kind: str, outage: str, figures: dict, **extra: object) -> None:  # type: ignore[type-arg]
        for daemon in self.daemons:
            if daemon.alive and daemon.stop() != 0:
                self.problems.append("mailbot run did not exit 0 on SIGTERM")
        write_figures(
            self.factory,
            f"outage-{kind}",
            {
                "kind": kind,
                "outage": outage,
                **figures,
                **extra,
                "restarts_needed": len(self.daemons) - 1,
                "seconds": round(time.monotonic() - self.began, 1),
                "problems": self.problems,
                "passed": not self.problems,
            },
        )
        assert not self.problems, "\n".join(self.problems)


def last_lines(text: str, n: int) -> str:
    return " | ".join(text.strip().splitlines()[-n:])


@pytest.fixture
def env(tmp_path, dovecot, smtp_sink, monkeypatch, tmp_path_factory) -> Iterator[Env]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    e = Env(tmp_path, dovecot, smtp_sink, tmp_path_factory)
    yield e
    for daemon in e.daemons:
        daemon.kill()
    e.relay.stop()


# --- (a) the IMAP server ------------------------------------------------------------------------------


def test_dovecot_stopped_in_the_middle_of_a_large_fetch(env):
    env.workspace()
    mails = school_mails(300, "imap-outage", pad_to=120_000)  # ~0.3 MB each: many size-bounded batches
    env.append(mails)
    daemon = env.start()
    assert wait_until(lambda: db_count(env.ws, "messages") >= 20, 60, daemon, every=0.005)
    recorded_at_stop = db_count(env.ws, "messages")
    env.dovecot.stop()
    line = env.expect_log("the lost IMAP connection", "IMAP connection lost", "cannot connect to IMAP", timeout=60)
    time.sleep(3)
    recorded_during = db_count(env.ws, "messages")
    env.dovecot.start()
    env.expect_log("the recovery", "inbox reachable again", timeout=60)
    daemon = env.still_running(daemon, "the IMAP outage")
    figures = env.verify(mails, timeout=120)
    if not 0 < recorded_at_stop < len(mails):
        env.problems.append(f"Dovecot was not stopped mid-fetch: {recorded_at_stop} of {len(mails)} recorded")
    env.finish(
        "imap",
        "Dovecot stopped in the middle of fetching a backlog of 300 messages, restarted 3 s later",
        figures,
        log_line=line,
        recorded_when_stopped=recorded_at_stop,
        recorded_while_down=recorded_during,
    )


# --- (b) the SMTP server ------------------------------------------------------------------------------


def test_smtp_refusing_timing_out_dropping_then_back(env):
    env.workspace(outbox="timeout_seconds = 2")
    daemon = env.start()
    lines: dict[str, str] = {}

    env.sink.fail_next = [(451, "4.3.0 Try again later")] * 6  # (1) the server refuses for a while
    refused = school_mails(5, "smtp-refused", two_files_every=0)
    env.append(refused)
    lines["refusing"] = env.expect_log("the refusal", "451 4.3.0")
    assert wait_until(lambda: not env.sink.fail_next, 60, daemon, every=0.2)

    since = env.mark()
    env.relay.mode = "hang"  # (2) the server accepts the connection and never answers
    hung = school_mails(10, "smtp-hung", two_files_every=0)[5:]
    env.append(hung)
    lines["timing out"] = env.expect_log("the time-out", "timed out", since=since)
    time.sleep(4)

    since = env.mark()
    env.relay.mode = "drop"  # (3) the server closes every connection at once
    lines["dropping"] = env.expect_log("the dropped connection", "Connection unexpectedly closed;", since=since)
    time.sleep(2)

    env.relay.mode = "pass"  # (4) back
    daemon = env.still_running(daemon, "the SMTP outages")
    figures = env.verify(refused + hung, timeout=90)
    attempts = dict(db_rows(env.ws, "SELECT id, attempts FROM outbox"))
    env.finish(
        "smtp",
        "SMTP server refusing (451), accepting connections and never answering (2 s time-out), "
        "closing connections, then back",
        figures,
        log_lines=lines,
        hung_connections=env.relay.hung,
        max_attempts_used=max(attempts.values(), default=0),
    )


def test_smtp_outage_longer_than_the_retry_budget_recovers_by_itself(env):
    """A long outage (here scaled down: max_attempts = 3, 1 s base) must not leave receipts undelivered for good.

    With the defaults (retry_base_seconds = 60, max_attempts = 8) the budget is about 2 hours: an SMTP outage
    over a weekend leaves every receipt queued meanwhile 'failed' until staff run `mailbot outbox retry`."""
    env.workspace(outbox="timeout_seconds = 2\nmax_attempts = 3")
    daemon = env.start()
    env.relay.mode = "drop"
    mails = school_mails(3, "smtp-long", two_files_every=0)
    env.append(mails)
    line = env.expect_log("the outage", "cannot reach SMTP server", "Connection unexpectedly closed")
    gave_up = wait_until(lambda: db_count(env.ws, "outbox", "status = 'failed'") >= len(mails), 30, daemon, every=0.2)
    env.relay.mode = "pass"
    daemon = env.still_running(daemon, "the long SMTP outage")
    figures = env.verify(mails, timeout=30)
    env.finish(
        "smtp-long",
        "SMTP server unreachable for longer than the retry budget (max_attempts), then back",
        figures,
        log_line=line,
        failed_for_good_during_outage=gave_up,
    )


# --- (c) the database ---------------------------------------------------------------------------------

LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


@contextlib.contextmanager
def locked_database(ws: Workspace, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holding BEGIN EXCLUSIVE on the database file for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(ws.root / "var" / "mailbot.sqlite3"), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.wait(seconds + 30)


LOCK_SECONDS = 20.0  # longer than SQLite's busy_timeout (15 s): writes fail instead of waiting
# While receipts go out: the first delivery round after the lock may be spent failing to record a failed attempt
# (15 s); the next one sends, and its record fails too when the lock outlasts it by another 15 s.
OUTBOX_LOCK_SECONDS = 35.0


def test_database_locked_by_another_process_while_mail_arrives(env):
    env.workspace()
    daemon = env.start()
    before = school_mails(3, "db-before", two_files_every=0)
    env.append(before)
    assert wait_until(lambda: {m for m, *_ in before} <= set(ack_parents(env.sink)), 30, daemon, every=0.2)
    during = school_mails(8, "db-locked", two_files_every=0)[3:]
    with locked_database(env.ws, LOCK_SECONDS) as locker:
        env.append(during)
        locked_at = time.monotonic()
        line = env.expect_log("the locked database", "database is locked", "database error", timeout=LOCK_SECONDS + 10)
        recorded_during = db_count(env.ws, "messages")
        assert locker.stdout is not None and locker.stdout.readline().strip() == "released"
    released_after = time.monotonic() - locked_at
    daemon = env.still_running(daemon, "the database lock")
    recovered = wait_until(lambda: db_count(env.ws, "messages") >= len(before) + len(during), RECOVERY, every=0.2)
    recovery_seconds = round(time.monotonic() - locked_at - released_after, 1)
    if not recovered:
        backoff = [ln for ln in env.log().splitlines() if "next attempt in" in ln]
        env.problems.append(
            f"not everything recorded within {RECOVERY:.0f} s after the lock was released; "
            f"{last_lines(chr(10).join(backoff), 2)}"
        )
    figures = env.verify(before + during, timeout=30)
    env.finish(
        "database",
        f"another process holding BEGIN EXCLUSIVE on the SQLite file for {LOCK_SECONDS:.0f} s while mail arrives",
        figures,
        log_line=line,
        recorded_during_lock=recorded_during,
        seconds_to_record_after_release=recovery_seconds if recovered else None,
    )


def test_database_locked_while_receipts_are_being_delivered(env):
    env.workspace()
    daemon = env.start()
    env.relay.mode = "drop"  # receipts wait in the outbox ...
    mails = school_mails(3, "db-outbox", two_files_every=0)
    env.append(mails)
    assert wait_until(lambda: db_count(env.ws, "outbox", "kind = 'ack'") >= len(mails), 30, daemon, every=0.2)
    env.expect_log("the SMTP outage", "cannot reach SMTP server", "Connection unexpectedly closed")
    with locked_database(env.ws, OUTBOX_LOCK_SECONDS) as locker:
        env.relay.mode = "pass"  # ... and go out while the database cannot record that they went
        line = env.expect_log("the locked database", "database is locked", "database error", timeout=LOCK_SECONDS + 10)
        assert locker.stdout is not None and locker.stdout.readline().strip() == "released"
    daemon = env.still_running(daemon, "the database lock")
    figures = env.verify(mails, timeout=60)
    env.finish(
        "database-outbox",
        f"another process holding BEGIN EXCLUSIVE for {OUTBOX_LOCK_SECONDS:.0f} s while receipts are delivered",
        figures,
        log_line=line,
    )


# --- (d) the disk -------------------------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(where: Path, megabytes: int) -> Iterator[str]:
    """A file system with ``megabytes`` free mounted on ``where``: a tmpfs, else (or with
    MAILBOT_DISK_FULL_FS=loop) a loop-mounted ext4 image, bigger, whose extra room a filler file takes."""
    where.mkdir(parents=True, exist_ok=True)
    image = where.parent / "disk.img"
    kind, tmpfs_error = os.environ.get("MAILBOT_DISK_FULL_FS", "tmpfs"), ""
    if kind == "tmpfs":
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        tmpfs_error = result.stderr.strip()
        kind = "tmpfs" if result.returncode == 0 else "loop"
    if kind == "loop":
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={image}", "bs=1M", f"count={megabytes + 16}"], check=True, capture_output=True
        )
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True, capture_output=True)
        mounted = subprocess.run(["mount", "-o", "loop", str(image), str(where)], capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.fail(
                f"cannot mount a small file system (tmpfs: {tmpfs_error or 'not tried'}; loop: "
                f"{mounted.stderr.strip()}); the disk-full test needs root",
                pytrace=False,
            )
        os.chmod(where, 0o755)
        filler = where / "filler"
        with filler.open("wb") as f:
            f.write(b"\0" * max(0, shutil.disk_usage(where).free - megabytes * 1024 * 1024))
    try:
        yield kind
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        image.unlink(missing_ok=True)


def grow(where: Path, kind: str, megabytes: int) -> None:
    """Free space: remount the tmpfs bigger, or delete the loop file system's filler."""
    if kind == "tmpfs":
        subprocess.run(["mount", "-o", f"remount,size={megabytes}m", str(where)], check=True, capture_output=True)
    else:
        (where / "filler").unlink(missing_ok=True)


def test_disk_full_while_archiving(env):
    ws = env.workspace()
    archive = ws.root / "var" / "archive"
    with small_filesystem(archive, 2) as kind:
        daemon = env.start()
        mails = school_mails(8, "disk-full", pad_to=300_000, two_files_every=0)  # ~0.7 MB archived per message
        env.append(mails)
        line = env.expect_log("the full disk", "No space left", "disk full", "ENOSPC", timeout=30)
        time.sleep(3)
        crashed = not daemon.alive
        recorded_while_full = db_count(ws, "messages")
        on_server = len(env.dovecot.uids())
        if recorded_while_full >= len(mails):
            env.problems.append("the archive never filled up: the test did not test anything")
        if on_server != len(mails):
            env.problems.append(f"{on_server} of {len(mails)} messages left on the server while the disk was full")
        errors = db_rows(ws, "SELECT message_id, reason FROM messages WHERE state = 'error'")
        grow(archive, kind, 64)
        grown_at = time.monotonic()
        daemon = env.still_running(daemon, "the full disk")
        recovered = wait_until(lambda: db_count(ws, "messages") >= len(mails), RECOVERY, every=0.2)
        if not recovered:
            backoff = [ln for ln in env.log().splitlines() if "next attempt in" in ln]
            env.problems.append(
                f"not everything recorded within {RECOVERY:.0f} s after space was freed; "
                f"{last_lines(chr(10).join(backoff), 1)}"
            )
        recovery_seconds = round(time.monotonic() - grown_at, 1) if recovered else None
        figures = env.verify(mails, timeout=30)
        env.finish(
            "disk",
            f"archive on a {kind} file system with 2 MB free, filled by 8 messages of ~0.7 MB, then freed",
            figures,
            log_line=line,
            crashed=crashed,
            recorded_while_full=recorded_while_full,
            set_aside_while_full=len(errors),
            seconds_to_record_after_space_freed=recovery_seconds,
        )
