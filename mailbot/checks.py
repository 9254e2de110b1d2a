"""`mailbot check`: each part of the set-up tried in turn, with a plain verdict per item."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path

from mailbot import config, roster as roster_file, store
from mailbot.errors import MailbotError
from mailbot.inbox import open_inbox
from mailbot.notify import KINDS, load_templates
from mailbot.outbox import connect as outbox_connect

Echo = Callable[[str], None]


def run_checks(path: Path, echo: Echo) -> bool:
    """Configuration, database, roster and inbox; stops early only when the configuration is unusable."""
    try:
        settings = config.load(path)
    except MailbotError as exc:
        echo(f"FAIL config: {exc}")
        return False
    echo(f"ok   config: {path} ({len(settings.campaign)} campaign(s))")
    results = [_try(echo, "database", lambda: _database(settings.db_url)),
               _try(echo, "roster", lambda: _roster(settings.roster.file)),
               _try(echo, "templates", lambda: _templates(settings)),
               _try(echo, "inbox", lambda: _inbox(settings)),
               _try(echo, "outbox", lambda: _outbox(settings))]
    return all(results)


def _try(echo: Echo, what: str, step: Callable[[], str]) -> bool:
    try:
        echo(f"ok   {what}: {step()}")
        return True
    except MailbotError as exc:
        echo(f"FAIL {what}: {exc}")
        return False


def _database(url: str) -> str:
    engine = store.connect(url)
    with engine.connect() as conn:
        return f"{store.count_messages(conn)} message(s) recorded"


def _roster(file: Path | None) -> str:
    if file is None:
        return "no roster file configured (import one with `mailbot roster import`)"
    read = roster_file.read(file)
    if read.problems:
        raise MailbotError(f"{len(read.problems)} bad row(s):\n" + roster_file.describe(read.problems))
    return f"{len(read.institutions)} institution(s) in {file}"


def _templates(settings: config.Settings) -> str:
    load_templates(settings)
    where = f"{settings.templates_dir}, then the packaged ones" if settings.templates_dir else "the packaged ones"
    return f"{len(KINDS)} kinds render ({where})"


def _outbox(settings: config.Settings) -> str:
    s = settings.outbox
    if s.kind == "file":
        return f"messages are written as .eml files to {settings.outbox_dir}"
    try:
        client = outbox_connect(s)
        client.noop()
        client.quit()
    except smtplib.SMTPAuthenticationError as exc:
        raise MailbotError(f"SMTP login refused at {s.host}:{s.effective_port} for {s.username} ({exc.smtp_code})") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise MailbotError(f"cannot reach SMTP server {s.host}:{s.effective_port}: {exc}") from None
    return f"SMTP {s.host}:{s.effective_port} ({s.security}{', logged in' if s.username else ''}) accepts connections"


def _inbox(settings: config.Settings) -> str:
    with open_inbox(settings.inbox) as box:
        return f"{box.source} opened (UIDVALIDITY {box.uidvalidity})"
