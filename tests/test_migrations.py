"""Schema migrations: the revisions build exactly the schema the code declares, a database made by the first
release (kept here as tests/data/release-1.sqlite3.gz: `mailbot demo` of that release, processed) upgrades in
place with nothing lost, and processes starting together on a new database migrate it once."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from mailbot import migrate, store
from mailbot.demo.build import build_demo

RELEASE_1 = Path(__file__).parent / "data" / "release-1.sqlite3.gz"


def mailbot(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(config), *args], capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_the_revisions_build_the_schema_the_code_declares(tmp_path: Path) -> None:
    engine = store.connect(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), store.metadata) == []
    assert migrate.level(engine).current == migrate.head() and not migrate.level(engine).behind


def counts(url: str) -> dict[str, int]:
    engine = store.connect(url, upgrade=False)
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (store.messages, store.files, store.outbox, store.institutions, store.locations, store.actions)
        }


def test_a_first_release_database_upgrades_in_place_with_nothing_lost(tmp_path: Path) -> None:
    build_demo(tmp_path / "demo")  # a configuration; its database is replaced by the first release's
    db = tmp_path / "demo" / "var" / "mailbot.sqlite3"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(gzip.decompress(RELEASE_1.read_bytes()))
    url = f"sqlite:///{db}"
    before = counts(url)
    assert before["messages"] == 18 and before["institutions"] == 41
    config = tmp_path / "demo" / "mailbot.toml"

    behind = mailbot(config, "db", "current", check=False)
    assert behind.returncode == 1 and "current: (none)" in behind.stdout
    assert f"upgraded from 0001 to {migrate.head()}" in mailbot(config, "db", "upgrade").stdout
    assert mailbot(config, "db", "current").stdout.startswith(f"current: {migrate.head()}")
    assert "already at the newest revision" in mailbot(config, "db", "upgrade").stdout
    after = counts(url)
    assert {k: after[k] for k in before if k != "actions"} == {k: v for k, v in before.items() if k != "actions"}

    engine = store.connect(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), store.metadata) == []
        columns = {r[1] for r in conn.execute(text("PRAGMA table_info(institutions)"))}
    assert {"contact", "phone", "active"} <= columns
    status = json.loads(mailbot(config, "status", "--json").stdout)  # the old records read by today's code
    submitted = [i for i in status["institutions"] if i["submissions"]]
    assert len(submitted) >= 10 and all(s["received_at"] for i in submitted for s in i["submissions"])
    mailbot(config, "--now", "2023-12-07T07:30", "campaign", "edit", "antq-2023", "--paper", "either")


def test_several_processes_starting_together_migrate_a_new_database_once(tmp_path: Path) -> None:
    build_demo(tmp_path / "demo")
    config = tmp_path / "demo" / "mailbot.toml"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mailbot", "--config", str(config), "db", "upgrade"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert sum("upgraded from empty" in out for out, _ in outputs) == 1  # one did it, the others found it done
    assert mailbot(config, "db", "current").returncode == 0


def test_a_database_at_the_newest_revision_opens_without_loading_alembic(tmp_path: Path) -> None:
    # Alembic and the ORM it pulls in stay in a service's memory for its life: a database at the newest revision
    # does not load them, and an empty one (a first start) is upgraded by a forked child that does.
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    probe = "import sys; from mailbot import store; store.connect(sys.argv[1]); print('alembic' in sys.modules)"
    first, again = (
        subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, check=True, timeout=60)
        for _ in range(2)
    )
    assert (first.stdout.strip(), again.stdout.strip()) == ("False", "False")
    assert migrate.level(store.connect(url, upgrade=False)).current == migrate.head()


def test_what_is_to_be_done_meanwhile_runs_once_here_while_a_child_upgrades(tmp_path: Path) -> None:
    """A first start compiles its templates while the schema is upgraded: the work given as ``meanwhile`` runs in
    this process, once, while the forked child that migrates is there; once as well on a database up to date."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    probe = (
        "import multiprocessing, sys; from mailbot import store\n"
        "seen = []\n"
        "store.connect(sys.argv[1], meanwhile=lambda: seen.append(len(multiprocessing.active_children())))\n"
        "print(seen)\n"
    )
    first, again = (
        subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, check=True, timeout=60)
        for _ in range(2)
    )
    assert (first.stdout.strip(), again.stdout.strip()) == ("[1]", "[0]")  # the child migrating; none needed then
    assert migrate.level(store.connect(url, upgrade=False)).current == migrate.head()
