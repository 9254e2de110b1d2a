"""The stamped copies verified off the receipt's path: each PDF recorded since the last pass is checked in a child
process (documents/pdfcheck.py, with a time and memory limit), its facts recorded and the school told of a doubt
(notify/stamp_notice.py); a file that cannot be read in its budget is recorded as unreadable, never a stalled or
crashed service."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select

from mailbot import store
from mailbot.clock import Clock
from mailbot.config import Settings
from mailbot.documents.pdffacts import UNKNOWN, PdfFacts
from mailbot.notify import stamp_notice
from mailbot.notify.compose import Templates, load_templates

log = logging.getLogger("mailbot.stamping")

BATCH = 20  # files per pass: a backlog of scans never holds the service for long between mail checks
GRACE_SECONDS = 15.0  # the child's start-up (Python, pyHanko) on top of the per-file budget


def pending(engine: Engine, limit: int = BATCH) -> list[tuple[int, str]]:
    """(file pk, archive path) of PDFs not yet checked, oldest first."""
    f, c = store.files, store.stamp_checks
    query = (
        select(f.c.id, f.c.path)
        .outerjoin(c, c.c.file_id == f.c.id)
        .where(f.c.kind == "pdf", f.c.path != "", c.c.file_id.is_(None))
        .order_by(f.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [(r.id, r.path) for r in conn.execute(query)]


def verify_pending(
    settings: Settings,
    engine: Engine,
    should_stop: Callable[[], bool] = lambda: False,
    *,
    clock: Clock | None = None,
    templates: Templates | None = None,
) -> int:
    """Check the PDFs waiting for it (one batch), record their facts and tell the school of a doubt it can fix;
    returns how many were checked."""
    todo = pending(engine)
    if todo and settings.notify.acknowledge and templates is None:
        templates = load_templates(settings)
    done = 0
    for file_id, path in todo:
        if should_stop():
            break
        facts = check_file(settings, settings.archive_dir / path)
        if facts.problem:
            log.warning("file %s: stamped copy not fully read: %s", file_id, facts.problem)
        record(engine, file_id, facts)
        if templates is not None and settings.notify.acknowledge:
            stamp_notice.tell_school(settings, engine, templates, file_id, (clock or Clock(settings.zone)).now())
        done += 1
    return done


def record(engine: Engine, file_id: int, facts: PdfFacts) -> None:
    with store.atomic(engine) as conn:
        store.insert_ignore(
            conn, store.stamp_checks, {"file_id": file_id, "facts": facts.to_json(), "checked_at": store.now()}
        )


def check_file(settings: Settings, pdf: Path) -> PdfFacts:
    """The facts of one archived PDF, from a child process that cannot take the service down with it."""
    budget = settings.documents.seconds_per_file
    args = [sys.executable, "-m", "mailbot.documents.pdfcheck", str(pdf), "--seconds", str(budget)]
    for anchor in settings.documents.trust_anchors:
        args += ["--anchor", str(anchor)]
    if not pdf.is_file():
        return PdfFacts(UNKNOWN, problem="file missing from the archive")
    try:
        done = subprocess.run(args, capture_output=True, timeout=budget + GRACE_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return PdfFacts(UNKNOWN, problem=f"not read within {budget:g} s")
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        return PdfFacts(UNKNOWN, problem=f"check failed: {why[-1][:200] if why else f'exit {done.returncode}'}")
    try:
        return PdfFacts.from_json(json.loads(done.stdout))
    except (ValueError, TypeError) as exc:
        return PdfFacts(UNKNOWN, problem=f"check gave no result: {exc}")
