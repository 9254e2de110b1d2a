"""A throwaway PostgreSQL cluster for tests: initdb into a temporary folder (as the `postgres` system user, since
initdb refuses root), listening on a free loopback port with trust authentication, removed afterwards; and a fresh
database per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SYSTEM_USER = "postgres"


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        pytest.fail(
            f"{name} not found: the PostgreSQL tests need Debian's postgresql package "
            "(`bash scripts/test.sh` installs it)",
            pytrace=False,
        )
    return str(found)


def _as_postgres(*command: str) -> list[str]:
    return list(command) if os.geteuid() != 0 else ["runuser", "-u", SYSTEM_USER, "--", *command]


@dataclass
class Cluster:
    root: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SYSTEM_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={SYSTEM_USER} dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster() -> Cluster:
    root = Path(tempfile.mkdtemp(prefix="pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, SYSTEM_USER, SYSTEM_USER)
    subprocess.run(
        _as_postgres(_bin("initdb"), "-D", str(data), "-A", "trust", "-U", SYSTEM_USER, "-E", "UTF8", "--no-sync"),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        _as_postgres(_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"),
        check=True,
        capture_output=True,
    )
    return Cluster(root, port)


def stop_cluster(cluster: Cluster) -> None:
    subprocess.run(
        _as_postgres(_bin("pg_ctl"), "-D", str(cluster.root / "data"), "-m", "immediate", "-w", "stop"),
        capture_output=True,
    )
    shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One PostgreSQL cluster for the session; tests take a database each with ``create_database()``."""
    try:
        cluster = start_cluster()
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"cannot start PostgreSQL for tests: {exc.stderr.decode(errors='replace')}", pytrace=False)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


_shared: Cluster | None = None
ENV = "MAILBOT_TEST_DATABASE"  # "postgresql": the storage, pipeline, outbox and job tests use PostgreSQL


def shared_database() -> str | None:
    """When ``MAILBOT_TEST_DATABASE=postgresql``, a fresh database on a cluster started once for the whole run
    (stopped at exit); otherwise None: the tests use their SQLite file."""
    global _shared
    if os.environ.get(ENV, "sqlite") != "postgresql":
        return None
    if _shared is None:
        import atexit

        _shared = start_cluster()
        atexit.register(stop_cluster, _shared)
    return _shared.create_database()
