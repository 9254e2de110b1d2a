"""Shared by the reliability tests (crash, outages, hostile mail): figures, IMAP appends, daemons, archive checks."""

from __future__ import annotations

import email.policy
import hashlib
import imaplib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import pytest

from mailbot.demo import samples
from tests.conftest import PASSWORD_ENV, Workspace

ROOT = Path(__file__).resolve().parents[1]
OUT_ENV = "MAILBOT_RELIABILITY_OUT"


# --- figures ----------------------------------------------------------------------------------------


def figures_dir(factory: pytest.TempPathFactory) -> Path:
    """Where the tests leave their figures for scripts/reliability.py: $MAILBOT_RELIABILITY_OUT, else pytest's tmp."""
    out = Path(os.environ[OUT_ENV]) if os.environ.get(OUT_ENV) else factory.getbasetemp() / "reliability"
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_figures(factory: pytest.TempPathFactory, name: str, figures: dict[str, Any]) -> Path:
    path = figures_dir(factory) / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return path


# --- mail ---------------------------------------------------------------------------------------------


def append_many(server, messages: list[bytes], when: datetime) -> list[bool]:  # type: ignore[no-untyped-def]
    """APPEND every message over one IMAP connection; which ones the server accepted."""
    conn = imaplib.IMAP4(server.host, server.port, timeout=60)
    conn.login(server.user, server.password)
    accepted = []
    date = imaplib.Time2Internaldate(when)
    try:
        for raw in messages:
            try:
                typ, _ = conn.append("INBOX", None, date, raw)
            except imaplib.IMAP4.error:
                typ = "NO"
            accepted.append(typ == "OK")
    finally:
        try:
            conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
    return accepted


def school_mails(
    count: int, tag: str, *, pad_to: int = 0, two_files_every: int = 10
) -> list[tuple[str, str, int, bytes]]:
    """(Message-ID, institution code, number of Word files, raw bytes): senders taken in turn from the roster
    rows that have an address, each with a Word report, every ``two_files_every``-th one with an appendix too."""
    rows = [r for r in samples.load_demo_roster() if r["emails"]]
    reports = {r["code"]: samples.make_report_docx(r["name"], pad_to=pad_to) for r in rows[:count]}
    out = []
    for i in range(count):
        row = rows[i % len(rows)]
        files = [("bao-cao-antq.docx", reports[row["code"]])]
        if two_files_every and i % two_files_every == 3:
            files.append(
                ("phu-luc.docx", samples.make_report_docx(row["name"], number=f"{i}/PL", title="Phụ lục số liệu"))
            )
        mid = f"<{tag}-{i}@{row['emails'][0].split('@')[1]}>"
        raw = samples.make_email(
            sender=row["emails"][0],
            sender_name=row["name"],
            subject=f"Báo cáo ANTQ năm 2023 - {row['name']} (lần {i})",
            body="Kính gửi Sở GDĐT, đơn vị gửi báo cáo.",
            message_id=mid,
            attachments=[(name, data, "application/octet-stream") for name, data in files],
        )
        out.append((mid, row["code"], len(files), raw))
    return out


def ack_parents(sink) -> Counter[str]:  # type: ignore[no-untyped-def]
    """How many receipts (X-Mailbot-Kind: ack) the SMTP sink received for each school Message-ID (In-Reply-To)."""
    parser = BytesHeaderParser(policy=email.policy.compat32)
    out: Counter[str] = Counter()
    for captured in sink.messages:
        head = parser.parsebytes(captured.data)
        if head["X-Mailbot-Kind"] == "ack":
            out[str(head["In-Reply-To"])] += 1
    return out


def sent_twice(sink) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Messages the SMTP sink received more than once (same Message-ID, whatever the kind): Message-ID → copies."""
    parser = BytesHeaderParser(policy=email.policy.compat32)
    counts = Counter(str(parser.parsebytes(c.data)["Message-ID"]) for c in sink.messages)
    return {mid: n for mid, n in counts.items() if n > 1}


# --- a `mailbot run` process -------------------------------------------------------------------------


class Daemon:
    """`mailbot run` (or ``command``, e.g. ``run --once``; or the crash probe) as a subprocess; its log goes to a
    file read while it runs."""

    def __init__(
        self,
        ws: Workspace,
        log_path: Path,
        *,
        probe: Path | None = None,
        hold: str = "",
        args: tuple[str, ...] = (),
        command: tuple[str, ...] = ("run",),
    ) -> None:
        self.log_path = log_path
        self.probe_path = probe
        env = {**os.environ, PASSWORD_ENV: ws.password, "PYTHONPATH": str(ROOT)}
        module = "mailbot"
        if probe is not None:
            module = "tests.crash_probe"
            env["MAILBOT_PROBE_FILE"] = str(probe)
            if hold:
                env["MAILBOT_PROBE_HOLD"] = hold
        self.started_at = time.monotonic()
        with log_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, "--config", str(ws.config_path), *args, *command],
                stderr=err,
                stdout=subprocess.DEVNULL,
                env=env,
                cwd=ws.root,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def probe(self) -> str:
        try:
            return self.probe_path.read_text(encoding="utf-8", errors="replace") if self.probe_path else ""
        except FileNotFoundError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        if not wait_until(lambda: text in self.log(), timeout, self):
            raise AssertionError(
                f"{text!r} not logged within {timeout}s (exit {self.proc.poll()}):\n{self.log()[-5000:]}"
            )

    def kill(self) -> None:
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> int:
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def wait_until(
    predicate: Callable[[], bool], timeout: float, daemon: Daemon | None = None, every: float = 0.01
) -> bool:
    """True as soon as ``predicate()`` holds; False after ``timeout`` or when the daemon died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if daemon is not None and not daemon.alive:
            return predicate()
        time.sleep(every)
    return False


# --- the database and the archive, read without mailbot --------------------------------------------


def db_rows(ws: Workspace, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """A read-only query on the workspace's SQLite file (safe while a daemon writes to it)."""
    path = ws.root / "var" / "mailbot.sqlite3"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(query, args).fetchall()
    except sqlite3.OperationalError:
        return []  # the schema is not there yet, or the file is locked for longer than the timeout
    finally:
        conn.close()


def db_count(ws: Workspace, table: str, where: str = "1") -> int:
    rows = db_rows(ws, f"SELECT count(*) FROM {table} WHERE {where}")
    return int(rows[0][0]) if rows else 0


def count_files(root: Path) -> int:
    total = 0
    stack = [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    else:
                        total += 1
        except FileNotFoundError:
            continue
    return total


def archive_problems(ws: Workspace) -> dict[str, list[str]]:
    """Every recorded file and original message against the archive: sha256, partial and unreferenced files."""
    archive = ws.root / "var" / "archive"
    problems: dict[str, list[str]] = {"missing": [], "sha256": [], "partial": [], "unreferenced": [], "outside": []}
    referenced: set[Path] = set()
    base = archive.resolve()
    for path, sha in db_rows(ws, "SELECT path, sha256 FROM files WHERE path != ''") + db_rows(
        ws, "SELECT eml_path, fingerprint FROM messages WHERE eml_path != ''"
    ):
        target = (archive / path).resolve()
        if not target.is_relative_to(base):
            problems["outside"].append(path)
            continue
        referenced.add(target)
        if not target.is_file():
            problems["missing"].append(path)
        elif hashlib.sha256(target.read_bytes()).hexdigest() != sha:
            problems["sha256"].append(path)
    for found in sorted(archive.rglob("*")) if archive.exists() else []:
        if found.is_dir():
            continue
        if found.name.startswith(".") and found.name.endswith(".tmp"):
            problems["partial"].append(str(found.relative_to(archive)))
        elif found.resolve() not in referenced:
            problems["unreferenced"].append(str(found.relative_to(archive)))
    return problems
