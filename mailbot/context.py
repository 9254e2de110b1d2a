"""What one processing pass needs, read fresh: settings, roster, campaigns, templates, signing key, clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from mailbot import store
from mailbot.campaigns import catalog
from mailbot.campaigns.extensions import all_extensions
from mailbot.clock import Clock
from mailbot.config import Settings
from mailbot.ingest.identify import Roster
from mailbot.models import Campaign
from mailbot.notify.compose import Templates, load_templates, secret_key


@dataclass(frozen=True)
class Context:
    settings: Settings
    engine: Engine
    roster: Roster
    campaigns: tuple[Campaign, ...]
    templates: Templates
    key: bytes  # signs our Message-IDs so bounces can be matched to what we sent
    extensions: dict[tuple[str, str], datetime]
    clock: Clock


def make_context(
    settings: Settings, engine: Engine, clock: Clock | None = None, *, templates: Templates | None = None
) -> Context:
    """Everything one pass needs, read fresh (roster, extensions) so that staff changes apply at once."""
    return Context(
        settings,
        engine,
        load_roster(engine),
        catalog.load(engine, settings).all,
        templates or load_templates(settings),
        secret_key(settings.data_dir),
        all_extensions(engine),
        clock or Clock(settings.zone),
    )


def load_roster(engine: Engine) -> Roster:
    with engine.connect() as conn:
        return Roster.of(store.load_institutions(conn))
