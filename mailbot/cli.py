"""Command line: thin commands over the library; library errors become one clear line and an exit code."""

from __future__ import annotations

import getpass
import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy.exc import SQLAlchemyError

from mailbot import config, logs, pipeline, store
from mailbot.campaigns import extensions, review
from mailbot.campaigns import roster as roster_file
from mailbot.campaigns.roster_import import import_file, imported
from mailbot.clock import Clock
from mailbot.config import Settings
from mailbot.errors import MailbotError, one_line
from mailbot.notify import dispatch, outbox
from mailbot.reports.status import as_json, campaign_status, pick_campaign

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class IsoDateTime(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.2; we allow 8.1
    """``2023-12-02T08:00``, ``2023-12-02 08:00:00+07:00`` or ``2023-12-02``; without an offset, local time."""

    name = "ISO-DATETIME"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO date-time such as 2023-12-05T17:00", param, ctx)


ISO = IsoDateTime()


@dataclass
class State:
    config_path: Path
    now: datetime | None = None  # naive values are read in the configured time zone

    def settings(self) -> Settings:
        return config.load(self.config_path)

    def clock(self, settings: Settings) -> Clock:
        """``--now`` or the system time, in the configured zone."""
        return Clock(settings.zone, self.now)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=config.DEFAULT_PATH,
    show_default=True,
    help="Configuration file (TOML).",
)
@click.option("--now", type=ISO, help="Act as if at this time (previews and tests).")
@click.option("-v", "--verbose", is_flag=True, help="Log each message handled (always on for `run`).")
@click.option(
    "--log-format",
    type=click.Choice(["plain", "json"]),
    default="plain",
    show_default=True,
    help="Log lines on stderr as text or as JSON objects.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path, now: datetime | None, verbose: bool, log_format: str) -> None:
    """mailbot: collects the reports schools send by email.

    Start with `mailbot demo`, then copy config.example.toml to mailbot.toml and run `mailbot check`.
    """
    daemon = ctx.invoked_subcommand == "run" and "--once" not in sys.argv
    logs.setup(logging.INFO if verbose or daemon else logging.WARNING, log_format)
    ctx.obj = State(config_path, now)


@cli.command()
@click.option("--once", is_flag=True, help="Fetch and process everything new, deliver the outbox, then exit.")
@click.pass_obj
def run(state: State, once: bool) -> None:
    """Watch the inbox and process each school email as it arrives (the service).

    Uses IMAP IDLE where the server offers it, polling otherwise; sends reminders and the
    digest at their hours; rides out server outages. SIGTERM/SIGINT stop it cleanly,
    SIGHUP reloads the roster and the templates.
    Example: mailbot --config /etc/mailbot/mailbot.toml run
    """
    if not once:
        from mailbot.daemon import Daemon

        daemon = Daemon(state.config_path, state.now)
        raise SystemExit(daemon.run())
    settings = state.settings()
    engine = store.connect(settings.db_url)
    progress = _Progress()
    try:
        report = pipeline.run_once(settings, engine, clock=state.clock(settings), on_message=progress)
    finally:
        progress.close()
    click.echo(_summary(report), err=True)


class _Progress:
    """A progress bar on a terminal while a backlog is worked through; silent when not a terminal."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, _outcome: pipeline.Outcome) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None or self.task is None:
            from rich.progress import Progress  # rich is slow to import: only on a terminal

            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task("processing mail", total=None)
        self.bar.advance(self.task)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _summary(report: pipeline.RunReport) -> str:
    from mailbot.console import run_summary

    return run_summary(dict(report.states), report.moved) + "\n" + _delivery(report.delivery)


def _delivery(d: outbox.DeliveryReport) -> str:
    from mailbot.console import delivery_summary

    return delivery_summary(d.sent, d.retrying, d.failed, d.errors[-1] if d.errors else "")


@cli.command()
@click.option("--campaign", "campaign_id", help="Campaign id (default: the one whose deadline is nearest).")
@click.option("--json", "as_json_", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(state: State, campaign_id: str | None, as_json_: bool) -> None:
    """Who has submitted, late, or not yet; and what waits for staff review.

    Example: mailbot status --campaign antq-2023 --json
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    cs = campaign_status(engine, pick_campaign(settings.campaigns(), campaign_id, state.clock(settings).now()))
    if as_json_:
        click.echo(json.dumps(as_json(cs), ensure_ascii=False, indent=2))
    else:
        from mailbot.console import print_status

        print_status(cs, settings.zone)


@cli.group(name="roster")
def roster_group() -> None:
    """The list of institutions that must report."""


@roster_group.command(name="import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--replace",
    is_flag=True,
    help="Also deactivate the institutions missing from the file (their history is kept; they are no "
    "longer chased nor counted).",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be added, changed, reactivated, deactivated.")
@click.option("--by", "actor", default=None, help="Who imports (default: the login name), for the change log.")
@click.pass_obj
def roster_import(state: State, file: Path, replace: bool, dry_run: bool, actor: str | None) -> None:
    """Import or update institutions (by code) from a .csv or .xlsx file; the database is the roster.

    Columns: code, name, group, emails (or Mã đơn vị, Tên đơn vị, Nhóm, Email). A deactivated institution
    listed again is reactivated. The service never reverts this import: it imports `[roster] file` only
    when that file is changed afterwards.
    Example: mailbot roster import danh-sach-don-vi.xlsx --replace --dry-run
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    found = import_file(engine, file, actor=actor or getpass.getuser(), replace=replace, dry_run=dry_run)
    from mailbot.console import roster_plan_lines, roster_summary

    for line in roster_plan_lines(found):
        click.echo(line)
    click.echo(roster_summary(found, dry_run))
    if found.problems:
        click.echo(f"{len(found.problems)} row(s) skipped:\n" + roster_file.describe(found.problems), err=True)
        raise SystemExit(1)


@roster_group.command(name="list")
@click.option("--json", "as_json_", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def roster_list(state: State, as_json_: bool) -> None:
    """The institutions in the database: code, name, group, emails, active.

    Addresses taught with `review assign --learn` are listed apart ("learned").
    Example: mailbot roster list --json
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    with engine.connect() as conn:
        taught = store.learned_addresses(conn)
        found = [(i, sorted(a for a, code in taught.items() if code == i.code)) for i in imported(conn).values()]
    if as_json_:
        click.echo(
            json.dumps(
                [
                    {
                        "code": i.code,
                        "name": i.name,
                        "group": i.group,
                        "emails": list(i.emails),
                        "learned": learned,
                        "active": i.active,
                    }
                    for i, learned in found
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    for i, learned in found:
        emails = "; ".join([*i.emails, *(f"{a} (learned)" for a in learned)])
        click.echo(f"{i.code:12} {'active' if i.active else 'INACTIVE':8} {i.group:18} {i.name}  {emails}")
    active = sum(i.active for i, _ in found)
    click.echo(f"{active} active, {len(found) - active} inactive", err=True)


@cli.group(name="review")
def review_group() -> None:
    """Messages that staff must attribute by hand."""


@review_group.command(name="assign")
@click.argument("message_id")
@click.argument("code")
@click.option("--learn", is_flag=True, help="Also remember the sender's address for this institution.")
@click.option("--by", "actor", default=None, help="Who decides (default: the login name).")
@click.pass_obj
def review_assign(state: State, message_id: str, code: str, learn: bool, actor: str | None) -> None:
    """Attribute a message (Message-ID or #receipt number) to an institution.

    Example: mailbot review assign '<abc@mail.gmail.com>' THPT-NQ --learn
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    now = state.clock(settings).now()
    done = review.assign(settings, engine, message_id, code, actor=actor or getpass.getuser(), learn=learn, now=now)
    where = (
        f"campaign {done.campaign_id}" + (" (late)" if done.late else "") if done.campaign_id else "no open campaign"
    )
    click.echo(
        f"#{done.message_pk} assigned to {done.institution.code} {done.institution.name}: {where}"
        + ("; address learned" if done.learned else "")
        + (f"; receipt ({done.receipt}) queued for the sender" if done.receipt else "")
    )
    if done.receipt:
        click.echo(_delivery(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list who would be reminded or chased.")
@click.pass_obj
def remind(state: State, dry_run: bool) -> None:
    """Queue and send today's reminders (before the deadline) and late notices (after it).

    Each notice goes once per institution and day slot, whatever reruns happen.
    Example: mailbot --now 2023-12-02T08:00 remind --dry-run
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    now = state.clock(settings).now()
    from mailbot.console import notice_line, notices_summary

    planned = dispatch.queue_notices(settings, engine, now, dry_run=dry_run)
    for p in planned:
        click.echo(
            notice_line(p.status, p.notice.kind, p.notice.campaign.title, p.notice.institution.code, p.recipients)
        )
    click.echo(notices_summary(len(planned), dry_run), err=True)
    if not dry_run:
        click.echo(_delivery(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)


@cli.command()
@click.option("--print", "print_", is_flag=True, default=True, help="Print the digest's text (default).")
@click.option("--send", is_flag=True, help="Send today's digest to [notify] staff, with the Excel tracker.")
@click.pass_obj
def digest(state: State, print_: bool, send: bool) -> None:
    """The staff's daily digest: progress per group, new reports, the review queue, failures.

    Example: mailbot digest --send
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    now = state.clock(settings).now()
    if send:
        queued, _ = dispatch.queue_digest(settings, engine, now)
        click.echo(
            "Thư tổng hợp hôm nay đã được gửi trước đó"
            if queued.status == "exists"
            else "Đã đưa thư tổng hợp hôm nay vào hàng đợi gửi",
            err=True,
        )
        click.echo(_delivery(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)
        return
    rendered, _ = dispatch.render_digest(settings, engine, now)
    click.echo(f"Subject: {rendered.subject}\n\n{rendered.text}")


@cli.command()
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="The .xlsx file to write.")
@click.option("--campaign", "campaign_id", help="Campaign id (default: the one whose deadline is nearest).")
@click.pass_obj
def export(state: State, output: Path, campaign_id: str | None) -> None:
    """Write the Excel tracker (summary with chart, one sheet per group, review queue).

    Example: mailbot export --output theo-doi.xlsx
    """
    from mailbot.reports.workbook import save_tracker

    settings = state.settings()
    engine = store.connect(settings.db_url)
    now = state.clock(settings).now()
    cs = campaign_status(engine, pick_campaign(settings.campaigns(), campaign_id, now))
    click.echo(f"wrote {save_tracker(cs, settings.zone, output, generated_at=now)}")


@cli.command(name="outbox")
@click.argument("action", type=click.Choice(["list", "retry"]), default="list")
@click.option("--limit", default=50, show_default=True, help="How many recent messages to list.")
@click.pass_obj
def outbox_command(state: State, action: str, limit: int) -> None:
    """List what mailbot sent or failed to send, or retry the failed ones.

    Example: mailbot outbox retry
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    now = state.clock(settings).now()
    if action == "retry":
        click.echo(f"{outbox.retry_failed(engine, now)} message(s) queued again", err=True)
        click.echo(_delivery(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)
        return
    for row in outbox.recent(engine, limit):
        click.echo(
            f"#{row.id:<5} {row.status:10} {row.kind:13} {', '.join(row.recipients)[:40]:40} "
            f"{row.attempts} {row.last_error[:60]}"
        )


@cli.command()
@click.argument("code")
@click.option("--until", "until", required=True, type=ISO, help="The institution's own deadline (local time).")
@click.option("--campaign", "campaign_id", help="Campaign id (default: the one whose deadline is nearest).")
@click.option("--reason", default="", help="Why (kept with the record).")
@click.option("--by", "actor", default=None, help="Who grants it (default: the login name).")
@click.pass_obj
def extend(state: State, code: str, until: datetime, campaign_id: str | None, reason: str, actor: str | None) -> None:
    """Grant one institution a later deadline; lateness and reminders follow it.

    Example: mailbot extend THPT-NQ --until 2023-12-08T17:00 --reason "mất điện"
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    campaign = pick_campaign(settings.campaigns(), campaign_id, state.clock(settings).now())
    deadline = until.replace(tzinfo=settings.zone) if until.tzinfo is None else until
    extensions.grant(engine, campaign, code, deadline, actor=actor or getpass.getuser(), reason=reason)
    click.echo(f"{code}: deadline for {campaign.id} is now {deadline.isoformat()}")


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
    click.echo(_summary(report), err=True)
    campaign = settings.campaigns()[0]
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
    from mailbot.reports.compile import compile_campaign, save_xlsx

    consolidation = save_xlsx(compile_campaign(settings, engine, campaign, now=DIGEST_AT), root / "tong-hop.xlsx")
    click.echo(
        f"Demo folder: {root}\n  config: {root / 'mailbot.toml'}\n  archive: {settings.archive_dir}\n"
        f"  outgoing mail: {settings.outbox_dir}\n  Excel tracker: {tracker}\n"
        f"  consolidated figures (mailbot compile): {consolidation}"
    )
    click.echo(demo_web_instructions(root / "mailbot.toml"))


def demo_web_instructions(config_path: Path) -> str:
    """The commands that show the web pages as they stood on the demo's morning, not years later."""
    from mailbot.demo.build import DIGEST_AT

    at = f"{DIGEST_AT:%Y-%m-%dT%H:%M}"
    base = f"python3 -m mailbot --config {config_path} --now {at}"
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
    import uvicorn

    from mailbot.web.app import create_app
    from mailbot.web.auth import count_users

    settings = state.settings()
    engine = store.connect(settings.db_url)
    app = create_app(settings, engine, now=state.now)
    host, port = host or settings.web.host, port or settings.web.port
    if not count_users(engine):
        click.echo("no web account yet: create one with `mailbot user add NAME`", err=True)
    click.echo(f"serving on http://{host}:{port}{settings.web.path_prefix}/ (Ctrl+C stops)", err=True)
    # The application itself believes X-Forwarded-For only from [web] trusted_proxies (web.app.ClientAddress);
    # uvicorn's own handling would trust 127.0.0.1 (or $FORWARDED_ALLOW_IPS) whatever the configuration says.
    uvicorn.run(
        app, host=host, port=port, log_level="warning", access_log=False, server_header=False, proxy_headers=False
    )


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


@cli.command(name="compile")
@click.option("--campaign", "campaign_id", help="Campaign id (default: the one whose deadline is nearest).")
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="The .xlsx file to write.")
@click.option(
    "--docx",
    "docx_path",
    type=click.Path(path_type=Path),
    help="Also write every institution's report text, by group, to this .docx file.",
)
@click.pass_obj
def compile_command(state: State, campaign_id: str | None, output: Path, docx_path: Path | None) -> None:
    """Merge the tables of each institution's latest report: one sheet per table shape, sums per group and in total.

    Tables that fit no shape shared by two institutions are listed on the sheet "Cần xem xét".
    Example: mailbot compile --campaign antq-2023 --output tong-hop.xlsx --docx tong-hop.docx
    """
    from mailbot.reports.compile import compile_campaign, save_docx, save_xlsx

    settings = state.settings()
    engine = store.connect(settings.db_url)
    now = state.clock(settings).now()
    comp = compile_campaign(settings, engine, pick_campaign(settings.campaigns(), campaign_id, now), now=now)
    click.echo(
        f"wrote {save_xlsx(comp, output)}: {len(comp.shapes)} merged table(s) from "
        f"{len(comp.contributors)} institution(s), {len(comp.leftovers)} item(s) to review, "
        f"{len(comp.missing)} institution(s) missing"
    )
    if docx_path:
        click.echo(f"wrote {save_docx(comp, docx_path)}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        raise SystemExit(130) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except MailbotError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    except SQLAlchemyError as exc:  # a database that another process holds too long, say: one line, not a traceback
        click.echo(f"error: database error: {one_line(exc)}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
