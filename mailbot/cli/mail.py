"""The mail commands: run the service or one pass, status, reminders, the digest, exports, the outbox."""

from __future__ import annotations

import json
import sys
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailbot import pipeline, store
from mailbot.campaigns import catalog
from mailbot.cli.base import State, cli, delivery_line, summary_line
from mailbot.errors import MailbotError
from mailbot.notify import dispatch, outbox
from mailbot.notify.compose import load_templates
from mailbot.reports.status import as_json, campaign_status, pick_campaign

if TYPE_CHECKING:
    from datetime import datetime

    from rich.progress import Progress, TaskID
    from sqlalchemy import Engine

    from mailbot.config import Settings
    from mailbot.models import Campaign
    from mailbot.reports.template import Template


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
    templates = cache(partial(load_templates, settings))
    engine = store.connect(settings.db_url, meanwhile=templates)  # a first start compiles them while it migrates
    progress = _Progress()
    try:
        report = pipeline.run_once(
            settings, engine, clock=state.clock(settings), on_message=progress, templates=templates()
        )
    finally:
        progress.close()
    click.echo(summary_line(report), err=True)


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
    cs = campaign_status(
        engine, pick_campaign(catalog.load(engine, settings).all, campaign_id, state.clock(settings).now())
    )
    if as_json_:
        click.echo(json.dumps(as_json(cs), ensure_ascii=False, indent=2))
    else:
        from mailbot.console import print_status

        print_status(cs, settings.zone)


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
        click.echo(delivery_line(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)


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
        click.echo(delivery_line(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)
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
    cs = campaign_status(engine, pick_campaign(catalog.load(engine, settings).all, campaign_id, now))
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
        click.echo(delivery_line(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)
        return
    for row in outbox.recent(engine, limit):
        click.echo(
            f"#{row.id:<5} {row.status:10} {row.kind:13} {', '.join(row.recipients)[:40]:40} "
            f"{row.attempts} {row.last_error[:60]}"
        )


@cli.command(name="compile")
@click.option("--campaign", "campaign_id", help="Campaign id (default: the one whose deadline is nearest).")
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="The .xlsx file to write.")
@click.option(
    "--docx",
    "docx_path",
    type=click.Path(path_type=Path),
    help="Also write the reports' texts to this .docx (per section of the template and by group, with a template).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    help="Also draft the department's report (.docx) with the totals and participation (needs a template).",
)
@click.option(
    "--report-template",
    "report_template",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The department's own report .docx with {{ tong.<column> }} placeholders (default: a plain draft).",
)
@click.option(
    "--accept",
    nargs=3,
    multiple=True,
    metavar="row|column FOUND TEMPLATE_NAME",
    help="Remember first that a school's row or column FOUND is the template's TEMPLATE_NAME (for every later "
    "consolidation too; recorded in the change log).",
)
@click.option("--by", "actor", default=None, help="Who accepts the mappings (default: the login name).")
@click.pass_obj
def compile_command(  # noqa: PLR0913 - the command's options
    state: State,
    campaign_id: str | None,
    output: Path,
    docx_path: Path | None,
    report_path: Path | None,
    report_template: Path | None,
    accept: tuple[tuple[str, str, str], ...],
    actor: str | None,
) -> None:
    """Consolidate each institution's latest report.

    With the campaign's report template (campaign add/edit --template): one sheet per template table with the
    city-wide and per-group totals as formulas over a detail sheet, and the list of what did not match. Without
    one: tables of the same shape merged, sums per group and in total.
    Example: mailbot compile --campaign antq-2023 --output tong-hop.xlsx --docx noi-dung.docx --report bao-cao.docx
    """
    from mailbot.reports.compile import compile_campaign
    from mailbot.reports.compile_output import save_docx, save_xlsx
    from mailbot.reports.consolidate import campaign_template

    settings = state.settings()
    engine = store.connect(settings.db_url)
    now = state.clock(settings).now()
    campaign = pick_campaign(catalog.load(engine, settings).all, campaign_id, now)
    _accept(engine, accept, actor, now)
    template = campaign_template(settings, engine, campaign.id)
    if template is not None:
        _compile_with_template(
            settings, engine, campaign, template, now, output, docx_path, report_path, report_template
        )
        return
    if report_path or report_template:
        raise MailbotError(
            f"--report needs the campaign's report template: mailbot campaign edit {campaign.id} --template FILE.docx"
        )
    comp = compile_campaign(settings, engine, campaign, now=now)
    click.echo(
        f"wrote {save_xlsx(comp, output)}: no report template, {len(comp.shapes)} merged table(s) from "
        f"{len(comp.contributors)} institution(s), {len(comp.leftovers)} item(s) to review, "
        f"{len(comp.missing)} institution(s) missing"
    )
    if docx_path:
        click.echo(f"wrote {save_docx(comp, docx_path)}")


def _accept(engine: Engine, mappings: tuple[tuple[str, str, str], ...], actor: str | None, now: datetime) -> None:
    import getpass

    from mailbot.reports.aliases import KINDS, remember_alias

    for kind, found, target in mappings:
        if kind not in KINDS:
            raise MailbotError(f"--accept: the first value must be row or column, not {kind!r}")
        try:
            remember_alias(engine, kind, found, target, actor=actor or getpass.getuser(), now=now)
        except ValueError:
            raise MailbotError(f"--accept: {found!r} and {target!r} must both have words") from None
        click.echo(f"accepted: the {kind} {found!r} is read as the template's {target!r}")


def _compile_with_template(  # noqa: PLR0913 - the command's options, passed on
    settings: Settings,
    engine: Engine,
    campaign: Campaign,
    template: Template,
    now: datetime,
    output: Path,
    docx_path: Path | None,
    report_path: Path | None,
    report_template: Path | None,
) -> None:
    from mailbot.reports.consolidate import consolidate_campaign
    from mailbot.reports.consolidation_xlsx import linker, save_workbook
    from mailbot.reports.narrative import draft_bytes, save_docx, texts_bytes

    comp = consolidate_campaign(settings, engine, campaign, template, now=now)
    links = linker(settings.web.public_url, settings.archive_dir, output.parent)
    entries = len({e.code for t in comp.tables for e in t.entries})
    click.echo(
        f"wrote {save_workbook(comp, output, links)}: template {template.name}, {len(comp.tables)} table(s) "
        f"from {entries} institution(s), {len(comp.items)} item(s) not matched, {comp.overall.missing} missing"
    )
    if docx_path:
        click.echo(f"wrote {save_docx(docx_path, texts_bytes(comp))}")
    if report_path:
        data, unknown = draft_bytes(comp, report_template.read_bytes() if report_template else None)
        click.echo(f"wrote {save_docx(report_path, data)}")
        if unknown:
            click.echo(f"warning: unknown placeholder(s) left as written: {', '.join(unknown)}", err=True)
