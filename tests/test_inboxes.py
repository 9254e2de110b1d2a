"""Several inboxes (`[[inbox]]`): the demo's mail split between a real Dovecot account and a Maildir folder is
recorded as if it had come to one, by `run --once` and by the service, each held message saying which inbox it
came to; a single `[inbox]` table keeps its key names in errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailbot import config
from mailbot.demo import samples
from mailbot.demo.build import ROSTER_FILE, demo_config
from mailbot.errors import ConfigError
from tests.conftest import PASSWORD_ENV, write_roster

SECOND = "Hòm thư thứ hai"


def two_inboxes(root: Path, dovecot) -> Path:  # type: ignore[no-untyped-def]
    root.mkdir(parents=True, exist_ok=True)
    write_roster(root / "roster.csv", samples.load_demo_roster())
    for sub in ("cur", "new", "tmp"):
        (root / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    inboxes = f"""\
[[inbox]]
name = "Hòm thư chính"
kind = "imap"
host = "{dovecot.host}"
port = {dovecot.port}
security = "plain"
username = "{dovecot.user}"
password_env = "{PASSWORD_ENV}"

[[inbox]]
name = "{SECOND}"
kind = "maildir"
path = "Maildir"
"""
    outbox = '[outbox]\nkind = "file"\npath = "outbox"\nfrom = "Sở GDĐT Hải Phòng <gdtx@haiphong.edu.vn>"\n'
    (root / "mailbot.toml").write_text(demo_config(inboxes, ROSTER_FILE, outbox), encoding="utf-8")
    return root / "mailbot.toml"


def deliver(dovecot, maildir: Path) -> list[samples.DemoCase]:  # type: ignore[no-untyped-def]
    """The demo's messages, every other one to the Maildir."""
    cases = samples.demo_cases(samples.load_demo_roster())
    for n, case in enumerate(cases):
        if n % 2:
            target = maildir / "new" / f"{int(case.arrival.timestamp())}.M{n}.test"
            target.write_bytes(case.raw)
            os.utime(target, (case.arrival.timestamp(), case.arrival.timestamp()))
        else:
            dovecot.append(case.raw, case.arrival)
    return cases


def mailbot(toml: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(toml), *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result


def one_inbox_reference(tmp_path: Path) -> int:
    """How many submissions the same mail gives through the demo's single inbox."""
    from mailbot import pipeline, store
    from mailbot.campaigns import catalog
    from mailbot.demo.build import build_demo
    from mailbot.reports.status import campaign_status

    settings = build_demo(tmp_path / "reference")
    engine = store.connect(settings.db_url)
    pipeline.run_once(settings, engine)
    return sum(len(i.submissions) for i in campaign_status(engine, catalog.load(engine, settings).all[0]).institutions)


def recorded(toml: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(mailbot(toml, "status", "--json").stdout)


@pytest.fixture
def setup(tmp_path: Path, dovecot, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    toml = two_inboxes(tmp_path / "ws", dovecot)
    return toml, deliver(dovecot, tmp_path / "ws" / "Maildir")


def test_run_once_reads_every_inbox(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    toml, cases = setup
    mailbot(toml, "run", "--once")
    status = recorded(toml)
    submitted = sum(len(i["submissions"]) for i in status["institutions"])
    expected = one_inbox_reference(tmp_path)
    assert submitted == expected > 0
    settings = config.load(toml)
    assert [r["inbox"] for r in status["review"]] and {r["inbox"] for r in status["review"]} <= {
        i.source for i in settings.inboxes
    }
    from mailbot import store
    from tests.test_postgres import staff_client

    page = staff_client(settings, store.connect(settings.db_url)).get("/c/antq-2023/review").text
    held_in = next(i for i in settings.inboxes if i.source == status["review"][0]["inbox"])
    assert f'<dt>Hòm thư nhận</dt><dd class="small">{held_in.label}</dd>' in page  # staff see where it came
    mailbot(toml, "run", "--once")  # again: nothing new from either
    assert sum(len(i["submissions"]) for i in recorded(toml)["institutions"]) == expected
    checked = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(toml), "check"], capture_output=True, text=True, timeout=120
    ).stdout
    assert "ok   inbox 1: imap://" in checked and "ok   inbox 2: maildir:" in checked


def test_the_service_watches_every_inbox(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    toml, cases = setup
    expected = one_inbox_reference(tmp_path)
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(toml), "run"], stdout=subprocess.DEVNULL, stderr=log.open("w")
    )
    try:
        deadline = time.monotonic() + 180
        while sum(len(i["submissions"]) for i in recorded(toml)["institutions"]) < expected:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        assert "Hòm thư chính" in log.read_text() and SECOND in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()


def test_a_single_inbox_table_keeps_its_key_names_in_errors(tmp_path: Path) -> None:
    toml = tmp_path / "mailbot.toml"
    toml.write_text(
        '[inbox]\nkind = "imap"\nhost = "x"\n\n[[campaign]]\nid = "a"\ntitle = "A"\ndeadline = 2030-01-01\n'
    )
    with pytest.raises(ConfigError) as err:
        config.load(toml)
    assert "inbox: kind = 'imap' needs username" in str(err.value) and "inbox[0]" not in str(err.value)
