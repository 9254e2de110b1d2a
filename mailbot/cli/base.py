"""What every command shares: the root group, the options it parses (--config, --now), the run summaries."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import click

from mailbot import config, logs, pipeline
from mailbot.clock import Clock
from mailbot.config import Settings
from mailbot.notify import outbox


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


def summary_line(report: pipeline.RunReport) -> str:
    from mailbot.console import run_summary

    return run_summary(dict(report.states), report.moved) + "\n" + delivery_line(report.delivery)


def delivery_line(d: outbox.DeliveryReport) -> str:
    from mailbot.console import delivery_summary

    return delivery_summary(d.sent, d.retrying, d.failed, d.errors[-1] if d.errors else "")
