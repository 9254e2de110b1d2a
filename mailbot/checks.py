"""`mailbot check`: each part of the set-up tried in turn, with a plain verdict per item."""

from __future__ import annotations

import email
import functools
import shutil
import smtplib
from collections import Counter
from collections.abc import Callable
from email.policy import compat32
from pathlib import Path

from mailbot import config, store
from mailbot.campaigns import catalog
from mailbot.campaigns import roster as roster_file
from mailbot.errors import MailbotError
from mailbot.ingest.authenticity import records_checks, trusted_server
from mailbot.ingest.inbox import open_inbox
from mailbot.ingest.parse import auth_headers
from mailbot.notify.compose import KINDS, load_templates
from mailbot.notify.outbox import connect as outbox_connect

Echo = Callable[[str], None]
RECENT_MESSAGES = 20  # how much recent mail `check` reads (headers only) to see what the server records


class Doubt(MailbotError):
    """Not an error, but something the operator must know: shown as ``warn``, and the check still passes."""


def run_checks(path: Path, echo: Echo) -> bool:
    """Configuration, database, roster, templates, inbox (and what its recent mail says about sender
    authentication), outbox; stops early only when the configuration is unusable."""
    try:
        settings = config.load(path)
    except MailbotError as exc:
        echo(f"FAIL config: {exc}")
        return False
    echo(f"ok   config: {path}")
    results = [
        _try(echo, "database", lambda: _database(settings.db_url)),
        _try(echo, "roster", lambda: _roster(settings.roster.file)),
        _try(echo, "campaigns", lambda: _campaigns(settings)),
        _try(echo, "templates", lambda: _templates(settings)),
        _try(echo, "web", lambda: _web(settings)),
        _try(echo, "document tools", _documents),
    ]
    for n, source in enumerate(settings.inboxes):
        what = "inbox" if len(settings.inboxes) == 1 else f"inbox {n + 1}"
        results.append(_try(echo, what, functools.partial(_inbox, source)))
        if results[-1]:  # an inbox that cannot be opened was reported once already
            results.append(_try(echo, "authentication", functools.partial(_authentication, settings, source)))
    results.append(_try(echo, "outbox", lambda: _outbox(settings)))
    return all(results)


def _try(echo: Echo, what: str, step: Callable[[], str]) -> bool:
    try:
        echo(f"ok   {what}: {step()}")
        return True
    except Doubt as exc:
        echo(f"warn {what}: {exc}")
        return True
    except MailbotError as exc:
        echo(f"FAIL {what}: {exc}")
        return False


def _database(url: str) -> str:
    """The connection, and the schema's revision: a database behind is upgraded by `run`, `web` or `db upgrade`."""
    from mailbot import migrate

    engine = store.connect(url, upgrade=False)
    found = migrate.level(engine)
    engine = store.connect(url)
    with engine.connect() as conn:
        counted = f"{store.count_messages(conn)} message(s) recorded"
    if found.behind:
        return f"{counted}; schema upgraded from revision {found.current or '(none)'} to {found.head}"
    return f"{counted}; schema at revision {found.head} (the newest)"


def _roster(file: Path | None) -> str:
    if file is None:
        return "no roster file configured (import one with `mailbot roster import`)"
    read = roster_file.read(file)
    if read.problems:
        raise MailbotError(f"{len(read.problems)} bad row(s):\n" + roster_file.describe(read.problems))
    return f"{len(read.institutions)} institution(s) in {file}"


def _campaigns(settings: config.Settings) -> str:
    """The campaigns as the database holds them; a group no institution belongs to fails (a typo in a group
    name would otherwise drop a whole group from the campaign without a word)."""
    engine = store.connect(settings.db_url)
    found = catalog.load(engine, settings)
    with engine.connect() as conn:
        groups = set(catalog.groups_in_roster(conn))
    if settings.roster.file and settings.roster.file.exists():
        groups |= {i.group for i in roster_file.read(settings.roster.file).institutions}
    bad = {c.id: [g for g in c.groups if g not in groups] for c in found.open}
    bad = {cid: missing for cid, missing in bad.items() if missing}
    if bad:
        known = ", ".join(sorted(groups)) or "none: import the roster first"
        raise MailbotError(
            "; ".join(
                f"campaign {cid}: group(s) {', '.join(map(repr, m))} match no institution" for cid, m in bad.items()
            )
            + f" (the roster's groups: {known})"
        )
    doubts = [
        f"campaign {c.id} has no opening date: reports sent at any time before it count"
        for c in found.open
        if c.opens is None
    ]
    doubts += [
        f"[[campaign]] {cid} in the configuration differs from the database, which is what mailbot uses "
        "(edit campaigns in the web pages or with `mailbot campaign edit`)"
        for cid in catalog.differences(engine, settings)
    ]
    if not found.open:
        doubts.append("no open campaign: create one in the web pages or with `mailbot campaign add`")
    summary = f"{len(found.open)} open, {len(found.closed)} closed"
    if doubts:
        raise Doubt(f"{summary}; " + "; ".join(doubts))
    return summary


def _documents() -> str:
    """The programs that read what schools send besides .docx: LibreOffice (legacy .doc), Poppler and Tesseract
    with its Vietnamese data (scanned stamped copies). Missing ones only warn: the files are kept, not read."""
    from mailbot.documents import convert, pdfscan  # the programs are looked up only when checked

    doubts = []
    soffice = convert.converter()
    if soffice is None:
        doubts.append(
            "LibreOffice not found: legacy .doc reports are kept but not read, nor compiled "
            "(Debian: apt-get install libreoffice-writer-nogui python3-uno)"
        )
    elif not convert.uno_python():
        doubts.append(
            "no Python with LibreOffice's UNO bridge: each .doc starts LibreOffice afresh, a second or more "
            "(Debian: apt-get install python3-uno)"
        )
    poppler = [p for p in ("pdftotext", "pdftoppm") if shutil.which(p) is None]
    if poppler:
        doubts.append(
            f"{' and '.join(poppler)} not found: stamped copies sent as PDF scans are not checked "
            "(Debian: apt-get install poppler-utils)"
        )
    if not pdfscan.ocr_available():
        doubts.append(
            "Tesseract with its Vietnamese data not found: a scanned stamped copy's heading is not read and "
            "staff confirm it by hand (Debian: apt-get install tesseract-ocr tesseract-ocr-vie)"
        )
    if doubts:
        raise Doubt("; ".join(doubts))
    return f"LibreOffice ({soffice}), Poppler, Tesseract (vie)"


def _templates(settings: config.Settings) -> str:
    load_templates(settings)
    where = f"{settings.templates_dir}, then the packaged ones" if settings.templates_dir else "the packaged ones"
    return f"{len(KINDS)} kinds render ({where})"


def _web(settings: config.Settings) -> str:
    """Whether `mailbot run` serves the web pages, where, and whether mail carries the schools' status links."""
    w = settings.web
    where = (
        f"served by `mailbot run` on http://{w.host}:{w.port}{w.path_prefix}/"
        if w.enabled
        else "not served by `mailbot run` ([web] enabled = false; `mailbot web` serves them)"
    )
    links = (
        f"receipts and reminders link to {w.public_url}/s/..."
        if w.public_url
        else "no status links in mail ([web] public_url not set)"
    )
    return f"{where}; {links}"


def _outbox(settings: config.Settings) -> str:
    s = settings.outbox
    if s.kind == "file":
        return f"messages are written as .eml files to {settings.outbox_dir}"
    try:
        client = outbox_connect(s)
        client.noop()
        client.quit()
    except smtplib.SMTPAuthenticationError as exc:
        raise MailbotError(
            f"SMTP login refused at {s.host}:{s.effective_port} for {s.username} ({exc.smtp_code})"
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise MailbotError(f"cannot reach SMTP server {s.host}:{s.effective_port}: {exc}") from None
    return f"SMTP {s.host}:{s.effective_port} ({s.security}{', logged in' if s.username else ''}) accepts connections"


def _inbox(source: config.InboxSettings) -> str:
    with open_inbox(source) as box:
        return f"{box.source} opened (UIDVALIDITY {box.uidvalidity})"


def _authentication(settings: config.Settings, source: config.InboxSettings) -> str:
    """Whether recent mail carries our server's Authentication-Results: without them any From can be forged."""
    with open_inbox(source) as box:
        found = [
            auth_headers(email.message_from_bytes(h, policy=compat32)) for h in box.recent_headers(RECENT_MESSAGES)
        ]
    if not found:
        return "no mail in the inbox yet to tell whether the server records SPF/DKIM/DMARC (run check again later)"
    security = settings.security
    servers = Counter(trusted_server(h, security) for h in found if records_checks(h, security))
    if not servers:
        wanted = f" from {security.authserv_id!r}" if security.authserv_id else ""
        seen = sorted({a.authserv_id for h in found for a in h} - {""})
        raise Doubt(
            f"none of the last {len(found)} messages carries Authentication-Results{wanted}"
            + (f" (seen: {', '.join(seen[:5])})" if seen else "")
            + ": any sender address can be forged; receipts to addresses off the roster are limited to "
            f"{settings.notify.max_unknown_replies_per_day} a day (see README, Security)"
        )
    if not security.authserv_id and len(servers) > 1:
        raise Doubt(
            f"the topmost Authentication-Results of recent mail come from {len(servers)} servers "
            f"({', '.join(s for s, _ in servers.most_common(5))}): if yours adds none, senders' own headers "
            "are believed; set [security] authserv_id to your server's"
        )
    server = servers.most_common(1)[0][0]
    return f"{servers.total()} of the last {len(found)} messages carry SPF/DKIM/DMARC results from {server}"
