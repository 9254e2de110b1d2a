"""What staff settle by hand: held messages (`review`), extensions (`extend`)."""

from __future__ import annotations

import getpass
from datetime import datetime

import click

from mailbot import store
from mailbot.campaigns import catalog, extensions, review
from mailbot.cli.base import ISO, State, cli, delivery_line
from mailbot.notify import outbox
from mailbot.reports.status import pick_campaign


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
        click.echo(delivery_line(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)


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
    campaign = pick_campaign(catalog.load(engine, settings).all, campaign_id, state.clock(settings).now())
    deadline = until.replace(tzinfo=settings.zone) if until.tzinfo is None else until
    extensions.grant(engine, campaign, code, deadline, actor=actor or getpass.getuser(), reason=reason)
    click.echo(f"{code}: deadline for {campaign.id} is now {deadline.isoformat()}")
