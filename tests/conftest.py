"""Shared fixtures: a real Dovecot (tests/servers), and a mailbot workspace pointed at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailbot import config, store
from mailbot.campaigns import catalog, roster
from mailbot.config import Settings
from mailbot.demo import samples
from mailbot.demo.build import ROSTER_FILE, demo_config
from mailbot.models import Campaign

pytest_plugins = ["tests.servers.fixtures", "tests.servers.smtp_fixtures", "tests.servers.postgres"]

PASSWORD_ENV = "MAILBOT_TEST_IMAP_PASSWORD"

# The suites that take minutes (reliability, hostile mail, the corpus, the browser, the wheel): marked `slow`, so
# that `bash scripts/test.sh -m "not slow"` is the quick loop. CI runs everything.
SLOW_FILES = frozenset(
    {
        "test_crash.py",
        "test_hostile.py",
        "test_outages.py",
        "test_web_browser.py",
        "test_web_browser_year.py",
        "test_packaging.py",
    }
)
SLOW_MARKS = frozenset({"crash", "corpus"})


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_FILES or any(item.get_closest_marker(name) for name in SLOW_MARKS):
            item.add_marker(pytest.mark.slow)


IMAP_INBOX = """\
[inbox]
kind = "imap"
host = "{host}"
port = {port}
security = "plain"
username = "{user}"
password_env = "{password_env}"
{extra_inbox}
"""


@dataclass
class Workspace:
    root: Path
    config_path: Path
    password: str

    def settings(self) -> Settings:
        return config.load(self.config_path)

    def engine(self):  # type: ignore[no-untyped-def]
        return store.connect(self.settings().db_url)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, PASSWORD_ENV: self.password}
        result = subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"mailbot {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def status(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.cli("status", "--json").stdout)


def db_url(path: Path) -> str:
    """The test's database: the SQLite file ``path``, or a fresh PostgreSQL database under
    MAILBOT_TEST_DATABASE=postgresql."""
    from tests.servers.postgres import shared_database

    return shared_database() or f"sqlite:///{path}"


def first_campaign(settings: Settings) -> Campaign:
    """The first campaign of a workspace, as the database holds it (its `[[campaign]]` block imported)."""
    return catalog.load(store.connect(settings.db_url), settings).all[0]


def write_roster(path: Path, rows: list[dict]) -> None:  # type: ignore[type-arg]
    roster.write_csv(path, roster.from_rows(rows))


def make_workspace(root: Path, server, extra_inbox: str = "", extra: str = "") -> Workspace:  # type: ignore[no-untyped-def]
    root.mkdir(parents=True, exist_ok=True)
    write_roster(root / "roster.csv", samples.load_demo_roster())
    inbox = IMAP_INBOX.format(
        host=server.host, port=server.port, user=server.user, password_env=PASSWORD_ENV, extra_inbox=extra_inbox
    )
    text = demo_config(inbox, ROSTER_FILE, extra)  # the demo's zone, data folder and campaign
    from tests.servers.postgres import shared_database  # (a plugin: imported by pytest before this runs)

    shared = shared_database()  # MAILBOT_TEST_DATABASE=postgresql: the same test on PostgreSQL
    if shared:
        text = f'database_url = "{shared}"\n' + text
    (root / "mailbot.toml").write_text(text, encoding="utf-8")
    return Workspace(root, root / "mailbot.toml", server.password)


@pytest.fixture
def workspace(tmp_path: Path, dovecot, monkeypatch: pytest.MonkeyPatch) -> Workspace:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    return make_workspace(tmp_path / "ws", dovecot)
