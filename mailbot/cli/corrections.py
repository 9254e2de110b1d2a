"""What staff settle by hand: held messages and submissions identified by name (`review`), extensions (`extend`),
paper copies received (`paper`), stamped copies accepted by hand (`stamp accept`).

Every command records who did it (``--by``, default the login name) in the change log; a receipt it queues is
delivered at once through the durable outbox (its key makes a repeated command send nothing more)."""

from __future__ import annotations

import getpass
from datetime import date, datetime

import click
from sqlalchemy import Engine

from mailbot import store
from mailbot.campaigns import catalog, extensions, named, paper, review, stamp_accept
from mailbot.cli.base import ISO, State, cli, delivery_line
from mailbot.config import Settings
from mailbot.models import Campaign
from mailbot.notify import extension_notice, outbox
from mailbot.reports.status import pick_campaign

BY = click.option("--by", "actor", default=None, help="Who decides (default: the login name).")


def _campaigns(settings: Settings, engine: Engine) -> tuple[Campaign, ...]:
    """The one place this module reads the campaigns (all of them, closed included)."""
    return catalog.load(engine, settings).all


def _deliver(settings: Settings, engine: Engine, now: datetime) -> None:
    click.echo(delivery_line(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)


@cli.group(name="review")
def review_group() -> None:
    """Held messages and submissions identified by name, which staff settle by hand."""


@review_group.command(name="assign")
@click.argument("message_id")
@click.argument("code")
@click.option("--campaign", "campaign_id", help="Campaign id (needed when several are open for the institution).")
@click.option("--learn", is_flag=True, help="Also remember the sender's address for this institution.")
@BY
@click.pass_obj
def review_assign(
    state: State, message_id: str, code: str, campaign_id: str | None, learn: bool, actor: str | None
) -> None:
    """Attribute a message (Message-ID or #receipt number) to an institution and a campaign.

    Example: mailbot review assign '<abc@mail.gmail.com>' THPT-NQ --campaign antq-2023 --learn
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    now = state.clock(settings).now()
    done = review.assign(
        settings,
        engine,
        message_id,
        code,
        actor=actor or getpass.getuser(),
        campaigns=_campaigns(settings, engine),
        campaign_id=campaign_id,
        learn=learn,
        now=now,
    )
    where = (
        f"campaign {done.campaign_id}" + (" (late)" if done.late else "") if done.campaign_id else "no open campaign"
    )
    click.echo(
        f"#{done.message_pk} assigned to {done.institution.code} {done.institution.name}: {where}"
        + ("; address learned" if done.learned else "")
        + (f"; receipt ({done.receipt}) queued for the sender" if done.receipt else "")
    )
    if done.receipt:
        _deliver(settings, engine, now)


@review_group.command(name="dismiss")
@click.argument("message_id")
@click.option("--reason", default="", help="Why it is no report (spam, a question...); required unless --undo.")
@click.option("--undo", is_flag=True, help="Put a dismissed message back in the review queue.")
@BY
@click.pass_obj
def review_dismiss(state: State, message_id: str, reason: str, undo: bool, actor: str | None) -> None:
    """Take a held message out of the review queue as no report; it is kept, and nothing is sent.

    Example: mailbot review dismiss '#42' --reason "thư quảng cáo"
    """
    if not undo and not reason.strip():
        raise click.UsageError("--reason is required (why the message is no report)")
    settings = state.settings()
    engine = store.connect(settings.db_url)
    who = actor or getpass.getuser()
    if undo:
        done = review.undismiss(engine, message_id, actor=who)
        click.echo(f"#{done.message_pk} " + ("is back in the review queue" if done.changed else "was not dismissed"))
    else:
        done = review.dismiss(engine, message_id, reason=reason, actor=who)
        click.echo(f"#{done.message_pk} " + ("dismissed" if done.changed else "was already dismissed"))


@review_group.command(name="confirm")
@click.argument("code")
@click.option("--campaign", "campaign_id", required=True, help="Campaign id.")
@BY
@click.pass_obj
def review_confirm(state: State, code: str, campaign_id: str, actor: str | None) -> None:
    """Confirm the submissions of an institution recognised only by its name; the school gets its receipt.

    Example: mailbot review confirm THPT-NQ --campaign antq-2023
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    now = state.clock(settings).now()
    campaign = catalog.load(engine, settings).get(campaign_id)
    done = named.confirm(settings, engine, campaign, code, actor=actor or getpass.getuser(), now=now)
    click.echo(
        f"{code}: {len(done.message_pks)} submission(s) for {campaign.id} confirmed"
        + (f"; {done.receipts} receipt(s) queued" if done.receipts else "")
    )
    if done.receipts:
        _deliver(settings, engine, now)


@review_group.command(name="reject")
@click.argument("code")
@click.option("--campaign", "campaign_id", required=True, help="Campaign id.")
@BY
@click.pass_obj
def review_reject(state: State, code: str, campaign_id: str, actor: str | None) -> None:
    """Reject the submissions attributed to an institution by its name only: they go back to the review queue.

    Example: mailbot review reject THPT-NQ --campaign antq-2023
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    campaign = catalog.load(engine, settings).get(campaign_id)
    done = named.reject(settings, engine, campaign, code, actor=actor or getpass.getuser())
    numbers = ", ".join(f"#{pk}" for pk in done.message_pks)
    click.echo(f"{code}: {numbers} no longer counted for {campaign.id}, back in the review queue")


@cli.command()
@click.argument("code")
@click.option("--until", "until", type=ISO, help="The institution's own deadline (local time).")
@click.option("--remove", is_flag=True, help="Remove the institution's extension: the campaign deadline applies.")
@click.option("--campaign", "campaign_id", help="Campaign id (default: the one whose deadline is nearest).")
@click.option("--reason", default="", help="Why (kept with the record, and told to the institution).")
@click.option(
    "--notify/--no-notify",
    default=True,
    help="Email the institution its new deadline and what it still owes (default: yes; sent at once).",
)
@BY
@click.pass_obj
def extend(
    state: State,
    code: str,
    until: datetime | None,
    remove: bool,
    campaign_id: str | None,
    reason: str,
    notify: bool,
    actor: str | None,
) -> None:
    """Grant one institution a later deadline, or remove it; lateness and reminders follow.

    Example: mailbot extend THPT-NQ --until 2023-12-08T17:00 --reason "mất điện"
    """
    if (until is None) == (not remove):
        raise click.UsageError("give either --until DATETIME or --remove")
    settings = state.settings()
    engine = store.connect(settings.db_url)
    campaign = pick_campaign(_campaigns(settings, engine), campaign_id, state.clock(settings).now())
    who = actor or getpass.getuser()
    if until is None:
        extensions.remove(engine, campaign, code, actor=who)
        click.echo(f"{code}: extension removed; deadline for {campaign.id} is {campaign.deadline.isoformat()}")
        return
    deadline = until.replace(tzinfo=settings.zone) if until.tzinfo is None else until
    extensions.grant(engine, campaign, code, deadline, actor=who, reason=reason)
    click.echo(f"{code}: deadline for {campaign.id} is now {deadline.isoformat()}")
    if notify:
        _tell_extension(settings, engine, campaign, code, reason, state.clock(settings).now())


def _tell_extension(
    settings: Settings, engine: Engine, campaign: Campaign, code: str, reason: str, now: datetime
) -> None:
    told = extension_notice.tell_school(settings, engine, campaign, code, now, reason=reason)
    if told is None or told.status == "failed":
        why = "not among the campaign's institutions" if told is None else "no usable address on the roster"
        click.echo(f"{code}: not told by email ({why})", err=True)
        return
    click.echo(f"{code}: told by email ({', '.join(told.recipients)}): {told.status}")
    click.echo(delivery_line(outbox.Delivery.of(settings, engine).deliver_due(now)), err=True)


@cli.command(name="paper")
@click.argument("code")
@click.option("--campaign", "campaign_id", required=True, help="Campaign id.")
@click.option(
    "--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]), help="The day it arrived (default: today, local)."
)
@click.option("--undo", is_flag=True, help="Remove the tick (it was a mistake).")
@click.option("--by", "actor", default=None, help="Who records it (default: the login name).")
@click.pass_obj
def paper_copy(state: State, code: str, campaign_id: str, on: datetime | None, undo: bool, actor: str | None) -> None:
    """Record that an institution's stamped paper copy (bản có dấu đỏ) arrived by post, or undo it.

    Example: mailbot paper THPT-NQ --campaign antq-2023 --date 2023-12-08
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    today = state.clock(settings).now().astimezone(settings.zone).date()
    campaign = pick_campaign(catalog.load(engine, settings).all, campaign_id, state.clock(settings).now())
    who = actor or getpass.getuser()
    if undo:
        change = paper.undo(engine, campaign, code, actor=who)
        was = f"removed (it said {change.received_on.isoformat()})" if change.received_on else "was not ticked: nothing"
        click.echo(f"{change.code} {change.name}: paper copy for {campaign.id} {was}")
        return
    day: date = on.date() if on else today
    change = paper.tick(engine, campaign, code, day, actor=who, today=today)
    click.echo(f"{change.code} {change.name}: paper copy for {campaign.id} received on {day.isoformat()}")
    if not change.counts:
        click.echo(_paper_note(campaign.paper.value), err=True)


def _paper_note(mode: str) -> str:
    what = "does not ask for a stamped copy" if mode == "none" else "takes the stamped copy as a PDF by mail only"
    return f"note: this campaign {what} (paper = {mode!r}): the paper copy is recorded but not counted"


@cli.group(name="stamp")
def stamp_group() -> None:
    """The stamped copy (bản có dấu đỏ) sent as a PDF: what staff decide when its check left a doubt."""


@stamp_group.command(name="accept")
@click.argument("code")
@click.option("--campaign", "campaign_id", required=True, help="Campaign id.")
@click.option("--undo", is_flag=True, help="Take the acceptance back (it was a mistake).")
@BY
@click.pass_obj
def stamp_accept_cmd(state: State, code: str, campaign_id: str, undo: bool, actor: str | None) -> None:
    """Accept the institution's stamped copy after looking at it: it counts as verified, whatever its check said.

    Example: mailbot stamp accept THPT-NQ --campaign antq-2023
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    campaign = pick_campaign(_campaigns(settings, engine), campaign_id, state.clock(settings).now())
    who = actor or getpass.getuser()
    if undo:
        change = stamp_accept.undo(engine, campaign, code, actor=who)
        click.echo(f"{change.code} {change.name}: " + ("acceptance removed" if change.changed else "was not accepted"))
        return
    change = stamp_accept.accept(engine, campaign, code, actor=who)
    click.echo(
        f"{change.code} {change.name}: stamped copy for {campaign.id} accepted"
        + ("" if change.changed else " (already)")
    )
