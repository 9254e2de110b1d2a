"""Setting up and looking after an installation: demo, check, the web server, accounts, templates."""

from __future__ import annotations

import getpass
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailbot import pipeline, store
from mailbot.campaigns import catalog
from mailbot.cli.base import State, cli, summary_line
from mailbot.notify import dispatch, outbox
from mailbot.reports.status import campaign_status

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mailbot.config import Settings
    from mailbot.models import Campaign


@cli.command()
@click.option(
    "--dir", "folder", type=click.Path(path_type=Path), help="Build the demo here (default: a new temporary folder)."
)
def demo(folder: Path | None) -> None:
    """Build a demo (roster, Maildir inbox of school emails, config) and process it; no server needed.

    Example: mailbot demo --dir /tmp/mailbot-demo
    """
    from mailbot.console import print_status
    from mailbot.demo.build import DIGEST_AT, build_demo
    from mailbot.reports.workbook import save_tracker

    settings = build_demo(folder)
    engine = store.connect(settings.db_url)
    report = pipeline.run_once(settings, engine)
    click.echo(summary_line(report), err=True)
    campaign = catalog.load(engine, settings).all[0]
    status_now = campaign_status(engine, campaign)
    print_status(status_now, settings.zone)
    root = settings.data_dir.parent
    first_ack = next(iter(sorted(settings.outbox_dir.glob("*-ack.eml"))), None)
    if first_ack:
        click.echo(f"\n--- An acknowledgement, as the school receives it ({first_ack}) ---")
        click.echo(_plain_text(first_ack.read_bytes()))
    _, rendered = dispatch.queue_digest(settings, engine, DIGEST_AT)
    outbox.Delivery.of(settings, engine).deliver_due(store.now())
    click.echo(
        f"--- The staff digest of {DIGEST_AT:%d/%m/%Y %H:%M} ---\nSubject: {rendered.subject}\n\n{rendered.text}"
    )
    tracker = save_tracker(status_now, settings.zone, root / "theo-doi.xlsx", generated_at=DIGEST_AT)
    consolidation, draft = _demo_consolidation(settings, engine, campaign, root)
    click.echo(
        f"Demo folder: {root}\n  config: {root / 'mailbot.toml'}\n  archive: {settings.archive_dir}\n"
        f"  outgoing mail: {settings.outbox_dir}\n  Excel tracker: {tracker}\n"
        f"  consolidated figures by the campaign's report template (mailbot compile): {consolidation}\n"
        f"  the department's report, drafted from them: {draft}"
    )
    click.echo(demo_web_instructions(root / "mailbot.toml"))


def _demo_consolidation(settings: Settings, engine: Engine, campaign: Campaign, root: Path) -> tuple[Path, Path]:
    """The demo campaign gets its report template (the sample reports follow it) and is consolidated by it."""
    from mailbot.demo.build import DIGEST_AT
    from mailbot.demo.samples import demo_template_docx
    from mailbot.reports.consolidate import campaign_template, consolidate_campaign
    from mailbot.reports.consolidation_xlsx import linker, save_workbook
    from mailbot.reports.narrative import draft_bytes, save_docx

    catalog.attach(
        engine,
        settings.data_dir,
        campaign.id,
        catalog.TEMPLATE,
        "Mẫu báo cáo ANTQ 2023.docx",
        demo_template_docx(),
        actor="demo",
        now=DIGEST_AT,
    )
    template = campaign_template(settings, engine, campaign.id)
    if template is None:
        raise RuntimeError("the demo template was not attached")  # cannot happen: attached just above
    comp = consolidate_campaign(settings, engine, campaign, template, now=DIGEST_AT)
    links = linker(settings.web.public_url, settings.archive_dir, root)
    workbook = save_workbook(comp, root / "tong-hop.xlsx", links)
    return workbook, save_docx(root / "du-thao-bao-cao.docx", draft_bytes(comp, None)[0])


def demo_web_instructions(config_path: Path) -> str:
    """The commands that show the web pages as they stood on the demo's morning, not years later."""
    from mailbot.demo.build import DIGEST_AT

    at = f"{DIGEST_AT:%Y-%m-%dT%H:%M}"
    # The interpreter that runs this demo: in a virtualenv, a bare "python3" may not have mailbot installed.
    python = shlex.quote(sys.executable) if sys.executable else "python3"
    base = f"{python} -m mailbot --config {shlex.quote(str(config_path))} --now {at}"
    return f"Web pages as on the demo's morning ({DIGEST_AT:%d/%m/%Y %H:%M}):\n  {base} user add lan\n  {base} web"


def _plain_text(raw: bytes) -> str:
    import email
    from email import policy

    msg = email.message_from_bytes(raw, policy=policy.default)
    body = msg.get_body(("plain",))
    head = f"To: {msg['To']}\nSubject: {msg['Subject']}\n\n"
    return head + (body.get_content() if body else "")


@cli.command()
@click.pass_obj
def check(state: State) -> None:
    """Check the configuration, the roster and the inbox connection; exit 0 when all is well.

    Example: mailbot --config /etc/mailbot/mailbot.toml check
    """
    from mailbot.checks import run_checks

    ok = run_checks(state.config_path, echo=click.echo)
    raise SystemExit(0 if ok else 1)


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: [web] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: [web] port, 8080).")
@click.pass_obj
def web(state: State, host: str | None, port: int | None) -> None:
    """Serve the staff web pages: overview, institutions, review queue, downloads.

    Staff log in with accounts made by `mailbot user add`. Put it behind a TLS reverse proxy
    to reach it from other machines ([web] path_prefix, https_only).
    Example: mailbot --config /etc/mailbot/mailbot.toml web --port 8080
    """
    from mailbot.web.app import create_app
    from mailbot.web.auth import count_users
    from mailbot.web.serve import bind, server

    settings = state.settings()
    engine = store.connect(settings.db_url)
    app = create_app(settings, engine, now=state.now)
    host, port = host or settings.web.host, port or settings.web.port
    if not count_users(engine):
        click.echo("no web account yet: create one with `mailbot user add NAME`", err=True)
    sock = bind(host, port)  # an address in use: one line, no traceback
    if settings.web.enabled:
        click.echo("note: [web] enabled is set, so `mailbot run` serves these pages too", err=True)
    click.echo(f"serving on http://{host}:{port}{settings.web.path_prefix}/ (Ctrl+C stops)", err=True)
    server(app, in_thread=False).run(sockets=[sock])


@cli.group(name="user")
def user_group() -> None:
    """Staff accounts for the web pages."""


@user_group.command(name="add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.pass_obj
def user_add(state: State, name: str, password_stdin: bool) -> None:
    """Create a web account, or set a new password for an existing one (its sessions end).

    Example: mailbot user add lan.nguyen
    """
    from mailbot.web.auth import set_password

    settings = state.settings()
    engine = store.connect(settings.db_url)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    created = set_password(engine, name, password, actor=f"cli:{getpass.getuser()}")
    click.echo(f"account {name.strip().lower()} " + ("created" if created else "updated: new password, sessions ended"))


@user_group.command(name="disable")
@click.argument("name")
@click.pass_obj
def user_disable(state: State, name: str) -> None:
    """Stop an account from logging in; its open sessions end at once (`user enable` undoes it).

    Example: mailbot user disable lan.nguyen
    """
    _set_active(state, name, False)


@user_group.command(name="enable")
@click.argument("name")
@click.pass_obj
def user_enable(state: State, name: str) -> None:
    """Let a disabled account log in again, with its old password.

    Example: mailbot user enable lan.nguyen
    """
    _set_active(state, name, True)


def _set_active(state: State, name: str, active: bool) -> None:
    from mailbot.web.auth import set_active

    engine = store.connect(state.settings().db_url)
    changed = set_active(engine, name, active, actor=f"cli:{getpass.getuser()}")
    done, already = (
        ("enabled", "was already enabled") if active else ("disabled, sessions ended", "was already disabled")
    )
    click.echo(f"account {name.strip().lower()} " + (done if changed else already))


@user_group.command(name="remove")
@click.argument("name")
@click.pass_obj
def user_remove(state: State, name: str) -> None:
    """Delete an account and end its sessions; the log of what it did is kept.

    Example: mailbot user remove lan.nguyen
    """
    from mailbot.web.auth import remove_user

    engine = store.connect(state.settings().db_url)
    remove_user(engine, name, actor=f"cli:{getpass.getuser()}")
    click.echo(f"account {name.strip().lower()} removed, sessions ended")


@cli.group(name="templates")
def templates_group() -> None:
    """The email templates schools and staff receive."""


@templates_group.command(name="export")
@click.argument("folder", type=click.Path(path_type=Path))
def templates_export(folder: Path) -> None:
    """Copy the packaged email templates into FOLDER for staff to edit.

    Then set `[notify] templates_dir = "FOLDER"` and run `mailbot check`. A template missing from
    FOLDER is taken from the package, so FOLDER may keep only the ones staff changed. Existing files in
    FOLDER are never overwritten.

    Example: mailbot templates export /etc/mailbot/templates
    """
    from mailbot.notify.compose import export_templates

    written, kept = export_templates(folder)
    click.echo(
        f"{len(written)} template(s) written to {folder}" + (f", {len(kept)} already there kept" if kept else "")
    )


@cli.group(name="db")
def db_group() -> None:
    """The database schema (migrations)."""


@db_group.command(name="upgrade")
@click.pass_obj
def db_upgrade(state: State) -> None:
    """Bring the database to the newest schema (also done at every start); safe to repeat.

    Example: mailbot --config /etc/mailbot/mailbot.toml db upgrade
    """
    from mailbot import migrate

    settings = state.settings()
    engine = store.connect(settings.db_url, upgrade=False)
    done = migrate.upgrade(engine)
    click.echo(f"upgraded from {done[0]} to {done[1]}" if done else f"already at the newest revision {migrate.head()}")


@db_group.command(name="current")
@click.pass_obj
def db_current(state: State) -> None:
    """Print the database's schema revision and the newest one; exit 1 when it is behind.

    Example: mailbot db current
    """
    from mailbot import migrate

    settings = state.settings()
    found = migrate.level(store.connect(settings.db_url, upgrade=False))
    click.echo(f"current: {found.current or '(none)'}\nnewest:  {found.head}")
    if found.behind:
        raise SystemExit(1)
