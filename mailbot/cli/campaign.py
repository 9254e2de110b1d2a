"""`mailbot campaign`: create, edit, list and close campaigns, and send their call for reports."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, time
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine

from mailbot import pipeline, store
from mailbot.campaigns import catalog
from mailbot.cli.base import ISO, State, cli, delivery_line
from mailbot.config import Settings
from mailbot.models import Campaign, PaperMode
from mailbot.notify import announce, outbox

PAPER = click.Choice([m.value for m in PaperMode])


def _aware(value: datetime, settings: Settings, *, end_of_day: bool = False) -> datetime:
    """Naive values are local time; a bare date as a deadline means the end of that day."""
    if end_of_day and value.time() == time(0, 0) and value.tzinfo is None:
        value = value.replace(hour=23, minute=59, second=59)
    return value if value.tzinfo else value.replace(tzinfo=settings.zone)


def _options(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options `add` and `edit` share; for `edit` every one is optional and only those given change."""
    options = [
        click.option("--title", required=required, help="The campaign's title, as schools read it."),
        click.option(
            "--deadline", type=ISO, required=required, help="Deadline, local time (a bare date: end of that day)."
        ),
        click.option("--opens", type=ISO, help="From when reports count (default: now)."),
        click.option(
            "--group",
            "groups",
            multiple=True,
            help="A roster group that must report (repeatable; none given to `add`: every group).",
        ),
        click.option("--plan", help='The plan\'s reference, e.g. "Số 1234/KH-SGDĐT ngày 20/11/2023".'),
        click.option("--attach", "attach", multiple=True, type=click.Path(path_type=Path, exists=True, dir_okay=False)),
        click.option(
            "--template",
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            help="The report template (.docx) schools fill in; sent with the call.",
        ),
        click.option("--paper", type=PAPER, help="The stamped copy: none, pdf (by email), post, either."),
        click.option("--contact", help='Whom schools call, e.g. "bà Nguyễn Thị Lan, 0225.3841.234".'),
        click.option("--keyword", "keywords", multiple=True, help="A word that routes a message here (repeatable)."),
        click.option("--late-days", type=click.IntRange(0, 366), help="Days after the deadline reports still count."),
        click.option("--by", "actor", default=None, help="Who makes the change (default: the login name)."),
    ]

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


@cli.group(name="campaign")
def campaign_group() -> None:
    """Campaigns (đợt báo cáo): kept in the database, also editable in the web pages."""


@campaign_group.command(name="add")
@click.argument("campaign_id", metavar="ID")
@_options(required=True)
@click.pass_obj
def campaign_add(state: State, /, campaign_id: str, **given: Any) -> None:
    """Create a campaign for the roster's groups, with its plan and report template.

    Example: mailbot campaign add antq-2024 --title "Báo cáo công tác ANTQ năm 2024"
    --deadline 2024-12-05T17:00 --group THPT --group "GDNN-GDTX" --plan "Số 1234/KH-SGDĐT ngày 20/11/2024"
    --attach ke-hoach.pdf --template mau-bao-cao.docx --paper either --contact "bà Lan, 0225.3841.234"
    """
    settings = state.settings()
    engine = _engine(settings)
    now = state.clock(settings).now()
    draft = Campaign(
        id=campaign_id,
        title=given["title"],
        deadline=_aware(given["deadline"], settings, end_of_day=True),
        opens=_aware(given["opens"], settings) if given["opens"] else None,
        groups=given["groups"],
        keywords=given["keywords"],
        plan=given["plan"] or "",
        contact=given["contact"] or "",
        paper=PaperMode(given["paper"] or "none"),
        accept_late_days=60 if given["late_days"] is None else given["late_days"],
    )
    actor = given["actor"] or getpass.getuser()
    uploads = _uploads(given)
    campaign = catalog.add(engine, draft, actor=actor, now=now)
    _attach(settings, campaign.id, uploads, actor, now)
    click.echo(f"created campaign {campaign.id}: {campaign.title}, deadline {campaign.deadline:%Y-%m-%d %H:%M}")


@campaign_group.command(name="edit")
@click.argument("campaign_id", metavar="ID")
@_options(required=False)
@click.pass_obj
def campaign_edit(state: State, /, campaign_id: str, **given: Any) -> None:
    """Change a campaign: only the options given change (--group replaces the groups, --attach adds a file).

    Example: mailbot campaign edit antq-2024 --deadline 2024-12-10T17:00
    """
    settings = state.settings()
    engine = _engine(settings)
    now = state.clock(settings).now()
    before = catalog.load(engine, settings).get(campaign_id)
    draft = _changed(before, given, settings)
    actor = given["actor"] or getpass.getuser()
    uploads = _uploads(given)
    after = catalog.edit(engine, campaign_id, draft, actor=actor, now=now)
    _attach(settings, campaign_id, uploads, actor, now)
    click.echo(f"saved campaign {after.id}: {after.title}, deadline {after.deadline:%Y-%m-%d %H:%M}")


def _engine(settings: Settings) -> Engine:
    """The database, with the configured roster file imported if it changed: groups are chosen from the roster."""
    engine = store.connect(settings.db_url)
    pipeline.import_roster(settings, engine)
    return engine


def _changed(draft: Campaign, given: dict[str, Any], settings: Settings) -> Campaign:
    changes: dict[str, Any] = {}
    for key in ("title", "plan", "contact"):
        if given[key] is not None:
            changes[key] = given[key]
    if given["deadline"]:
        changes["deadline"] = _aware(given["deadline"], settings, end_of_day=True)
    if given["opens"]:
        changes["opens"] = _aware(given["opens"], settings)
    if given["groups"]:
        changes["groups"] = given["groups"]
    if given["keywords"]:
        changes["keywords"] = given["keywords"]
    if given["paper"]:
        changes["paper"] = PaperMode(given["paper"])
    if given["late_days"] is not None:
        changes["accept_late_days"] = given["late_days"]
    return replace(draft, **changes)


def _uploads(given: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    """The files given, read and checked before anything is saved."""
    paths = [(catalog.ATTACHMENT, p) for p in given["attach"]]
    if given["template"]:
        paths.append((catalog.TEMPLATE, given["template"]))
    uploads = [(role, path.name, path.read_bytes()) for role, path in paths]
    for role, name, data in uploads:
        catalog.check_upload(role, name, data)
    return uploads


def _attach(
    settings: Settings, campaign_id: str, uploads: list[tuple[str, str, bytes]], actor: str, now: datetime
) -> None:
    engine = store.connect(settings.db_url)
    for role, name, data in uploads:
        f = catalog.attach(engine, settings.data_dir, campaign_id, role, name, data, actor=actor, now=now)
        click.echo(f"  {'template' if role == catalog.TEMPLATE else 'attachment'}: {f.name} ({f.size} bytes)")


@campaign_group.command(name="list")
@click.option("--json", "as_json_", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def campaign_list(state: State, as_json_: bool) -> None:
    """Every campaign, open and closed, with its groups and files.

    Example: mailbot campaign list --json
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    found = catalog.load(engine, settings)
    with engine.connect() as conn:
        files = {c.id: catalog.files_of(conn, c.id) for c in found.all}
    if as_json_:
        click.echo(json.dumps([_as_json(c, files[c.id]) for c in found.all], ensure_ascii=False, indent=2))
        return
    for c in found.all:
        state_word = f"closed {c.closed:%Y-%m-%d}" if c.closed else "open"
        click.echo(f"{c.id:16} {state_word:17} deadline {c.deadline:%Y-%m-%d %H:%M}  {c.title}")
        click.echo(f"{'':16} groups: {', '.join(c.groups) or '(all)'}; stamped copy: {c.paper.value}")
        for f in files[c.id]:
            click.echo(f"{'':16} {f.role}: {f.name}")
    if not found.all:
        click.echo("no campaign yet: create one with `mailbot campaign add` or in the web pages", err=True)


def _as_json(c: Campaign, files: tuple[catalog.CampaignFile, ...]) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "plan": c.plan,
        "opens": c.opens.isoformat() if c.opens else None,
        "deadline": c.deadline.isoformat(),
        "groups": list(c.groups),
        "keywords": list(c.keywords),
        "paper": c.paper.value,
        "contact": c.contact,
        "attachments": [f.name for f in files if f.role == catalog.ATTACHMENT],
        "template": next((f.name for f in files if f.role == catalog.TEMPLATE), None),
        "closed": c.closed.isoformat() if c.closed else None,
    }


@campaign_group.command(name="close")
@click.argument("campaign_id", metavar="ID")
@click.option("--reopen", is_flag=True, help="Open a closed campaign again.")
@click.option("--by", "actor", default=None, help="Who closes it (default: the login name).")
@click.pass_obj
def campaign_close(state: State, campaign_id: str, reopen: bool, actor: str | None) -> None:
    """Close a campaign: no more routing, reminders or header link; its records stay browsable.

    Example: mailbot campaign close antq-2023
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    now = state.clock(settings).now()
    done = catalog.close(engine, campaign_id, actor=actor or getpass.getuser(), now=now, reopen=reopen)
    click.echo(f"campaign {done.id} {'reopened' if reopen else 'closed'}")


@campaign_group.command(name="announce")
@click.argument("campaign_id", metavar="ID")
@click.option("--dry-run", is_flag=True, help="Only list who would be sent the call, and print the first email.")
@click.option("--only", "only", multiple=True, metavar="CODE", help="Only these institutions (repeatable).")
@click.pass_obj
def campaign_announce(state: State, campaign_id: str, dry_run: bool, only: tuple[str, ...]) -> None:
    """Send the call for reports (công văn): one email per institution of the campaign's groups, with the
    campaign's attachments and report template. Institutions sent it before are skipped, so running it again
    after a roster change reaches only the new ones.

    Example: mailbot campaign announce hk1-2024 --dry-run
    """
    settings = state.settings()
    engine = _engine(settings)
    now = state.clock(settings).now()
    campaign = catalog.load(engine, settings).get(campaign_id)
    done = announce.announce(settings, engine, campaign, now, only=only, dry_run=dry_run)
    for call in done.queued:
        click.echo(
            f"{'would send' if dry_run else 'queued':10} {call.institution.code:14} {', '.join(call.recipients)}"
        )
    for call in done.already:
        at = call.sent_at.astimezone(settings.zone) if call.sent_at else now
        click.echo(f"{'sent':10} {call.institution.code:14} on {at:%d/%m/%Y %H:%M}")
    for inst in done.no_address:
        click.echo(f"{'NO EMAIL':10} {inst.code:14} {inst.name}: no address in the roster")
    click.echo(
        f"{len(done.queued)} call(s) {'to send' if dry_run else 'queued'}, {len(done.already)} sent before, "
        f"{len(done.no_address)} without an address",
        err=True,
    )
    if dry_run and done.queued:
        with engine.connect() as conn:
            files = catalog.files_of(conn, campaign.id)
        first = announce.render(settings, campaign, done.queued[0].institution, files)
        click.echo(f"\nSubject: {first.subject}\nAttachments: {', '.join(f.name for f in files) or '(none)'}\n")
        click.echo(first.text)
    elif done.queued:
        click.echo(delivery_line(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)
