"""Command line: thin commands over the library; library errors become one clear line and an exit code."""

from __future__ import annotations

import getpass
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import click

from mailbot import config, pipeline, review, roster as roster_file, store
from mailbot.config import Settings
from mailbot.errors import MailbotError
from mailbot.status import as_json, campaign_status, pick_campaign


@dataclass
class State:
    config_path: Path
    now: datetime | None = None

    def settings(self) -> Settings:
        return config.load(self.config_path)

    def clock(self) -> datetime:
        return self.now or datetime.now(timezone.utc)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=config.DEFAULT_PATH,
              show_default=True, help="Configuration file (TOML).")
@click.option("--now", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]),
              help="Act as if at this time (previews and tests).")
@click.option("-v", "--verbose", is_flag=True, help="Log each message handled.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, now: datetime | None, verbose: bool) -> None:
    """mailbot: collects the reports schools send by email.

    Start with `mailbot demo`, then copy config.example.toml to mailbot.toml and run `mailbot check`.
    """
    _setup_logging(verbose)
    ctx.obj = State(config_path, now.astimezone(timezone.utc) if now else None)


@cli.command()
@click.option("--once", is_flag=True, help="Fetch and process everything new, then exit.")
@click.pass_obj
def run(state: State, once: bool) -> None:
    """Fetch new mail, identify and archive each report.

    Example: mailbot --config /etc/mailbot/mailbot.toml run --once
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    while True:
        report = pipeline.run_once(settings, engine)
        click.echo(_summary(report), err=True)
        if once:
            return
        time.sleep(60)


def _summary(report: pipeline.RunReport) -> str:
    parts = [f"{n} {state}" for state, n in sorted(report.states.items())] or ["nothing new"]
    return f"processed {report.fetched} message(s): " + ", ".join(parts) + (f"; moved {report.moved}" if report.moved else "")


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
    cs = campaign_status(engine, pick_campaign(settings.campaigns(), campaign_id, state.clock()))
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
@click.pass_obj
def roster_import(state: State, file: Path) -> None:
    """Import or update institutions from a .csv or .xlsx file.

    Columns: code, name, group, emails (or Mã đơn vị, Tên đơn vị, Nhóm, Email).
    Example: mailbot roster import danh-sach-don-vi.xlsx
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    read = roster_file.read(file)
    with store.atomic(engine) as conn:
        added, updated = store.upsert_institutions(conn, read.institutions)
    click.echo(f"{added} added, {updated} updated, {len(read.institutions) - added - updated} unchanged")
    if read.problems:
        click.echo(f"{len(read.problems)} row(s) skipped:\n" + roster_file.describe(read.problems), err=True)
        raise SystemExit(1)


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
    done = review.assign(settings, engine, message_id, code, actor=actor or getpass.getuser(), learn=learn)
    where = f"campaign {done.campaign_id}" + (" (late)" if done.late else "") if done.campaign_id else "no open campaign"
    click.echo(f"#{done.message_pk} assigned to {done.institution.code} {done.institution.name}: {where}"
               + ("; address learned" if done.learned else ""))


@cli.command()
@click.option("--dir", "folder", type=click.Path(path_type=Path), help="Build the demo here (default: a new temporary folder).")
def demo(folder: Path | None) -> None:
    """Build a demo (roster, Maildir inbox of school emails, config) and process it; no server needed.

    Example: mailbot demo --dir /tmp/mailbot-demo
    """
    from mailbot.console import print_status
    from mailbot.demo import build_demo

    settings = build_demo(folder)
    engine = store.connect(settings.db_url)
    report = pipeline.run_once(settings, engine)
    click.echo(_summary(report), err=True)
    campaign = settings.campaigns()[0]
    print_status(campaign_status(engine, campaign), settings.zone)
    click.echo(f"\nDemo folder: {settings.data_dir.parent}  (config: {settings.data_dir.parent / 'mailbot.toml'})")


@cli.command()
@click.pass_obj
def check(state: State) -> None:
    """Check the configuration, the roster and the inbox connection; exit 0 when all is well.

    Example: mailbot --config /etc/mailbot/mailbot.toml check
    """
    from mailbot.checks import run_checks

    ok = run_checks(state.config_path, echo=click.echo)
    raise SystemExit(0 if ok else 1)


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
    except KeyboardInterrupt:
        raise SystemExit(130) from None
