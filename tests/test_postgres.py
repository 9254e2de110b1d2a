"""mailbot on PostgreSQL (a throwaway cluster, tests/servers/postgres.py): the revisions build the declared schema,
the demo gives what it gives on SQLite (pipeline, status, notices, digest, consolidation, the web pages), and
several workers share one inbox and one database: every message recorded once, every email sent once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from mailbot import config, migrate, pipeline, store
from mailbot.campaigns import catalog
from mailbot.demo import samples
from mailbot.demo.build import DIGEST_AT, build_demo
from mailbot.notify import dispatch
from mailbot.reports.status import as_json, campaign_status
from mailbot.web import auth
from mailbot.web.app import create_app
from tests.conftest import PASSWORD_ENV, Workspace, make_workspace
from tests.test_notify import smtp_section

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def on(url: str, toml: Path) -> None:
    """Point a configuration at a database."""
    toml.write_text(f'database_url = "{url}"\n' + toml.read_text(encoding="utf-8"), encoding="utf-8")


def test_the_revisions_build_the_declared_schema_on_postgresql(postgres) -> None:  # type: ignore[no-untyped-def]
    engine = store.connect(postgres.create_database())
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), store.metadata) == []
    assert migrate.level(engine).current == migrate.head()


def demo_on(root: Path, url: str | None) -> dict:  # type: ignore[type-arg]
    build_demo(root)
    if url:
        on(url, root / "mailbot.toml")
    settings = config.load(root / "mailbot.toml")
    engine = store.connect(settings.db_url)
    pipeline.run_once(settings, engine)
    status = as_json(campaign_status(engine, catalog.load(engine, settings).all[0]))
    notices = dispatch.queue_notices(settings, engine, DIGEST_AT)
    digest, _ = dispatch.render_digest(settings, engine, DIGEST_AT)
    return {
        "institutions": [
            (i["code"], i["status"], i["identified_by"], len(i["submissions"]), i["stamped"], i["missing"])
            for i in status["institutions"]
        ],
        "review": [r["reason"] for r in status["review"]],
        "notices": sorted((p.notice.kind, p.notice.institution.code, p.status) for p in notices),
        "digest": digest.text,
    }


def test_the_demo_on_postgresql_gives_what_it_gives_on_sqlite(postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = postgres.create_database()
    assert demo_on(tmp_path / "pg", url) == demo_on(tmp_path / "lite", None)
    settings = config.load(tmp_path / "pg" / "mailbot.toml")
    engine = store.connect(settings.db_url)
    from mailbot.reports.compile import compile_campaign

    assert compile_campaign(settings, engine, catalog.load(engine, settings).all[0], now=DIGEST_AT).contributors
    client = staff_client(settings, engine)
    c = "/c/antq-2023"
    for path in (f"{c}/", f"{c}/institutions", f"{c}/institutions/THPT-NQ", f"{c}/review", f"{c}/log",
                 "/campaigns", "/roster", f"{c}/settings", f"{c}/announce", f"{c}/tracker.xlsx",
                 f"{c}/consolidation", f"{c}/consolidation.xlsx"):  # fmt: skip
        assert client.get(path).status_code == 200, path


@pytest.fixture
def workers(tmp_path: Path, dovecot, smtp_sink, postgres, monkeypatch) -> Workspace:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    ws = make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink))
    on(postgres.create_database(), ws.config_path)
    return ws


def run_together(ws: Workspace, *args: str, n: int = 2) -> list[subprocess.CompletedProcess[str]]:
    command = [sys.executable, "-m", "mailbot", "--config", str(ws.config_path), *args]
    env = {**os.environ, PASSWORD_ENV: ws.password}
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(n)
    ]
    out = [subprocess.CompletedProcess(p.args, p.wait(timeout=300), *p.communicate()) for p in procs]
    for r in out:
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return out


def test_two_workers_share_one_inbox_and_one_database(workers: Workspace, dovecot, smtp_sink) -> None:  # type: ignore[no-untyped-def]
    cases = samples.demo_cases(samples.load_demo_roster())
    for case in cases:
        dovecot.append(case.raw, case.arrival)
    run_together(workers, "run", "--once")
    engine = store.connect(workers.settings().db_url)
    with engine.connect() as conn:
        recorded = conn.execute(select(func.count()).select_from(store.messages)).scalar_one()
        queued = conn.execute(select(store.outbox.c.key)).scalars().all()
    assert recorded == len(cases)  # each message once, whichever worker took it
    receipts = smtp_sink.wait_for(len(queued))
    time.sleep(1)
    sent = [(c.rcpt_tos, c.message["Subject"], c.message["In-Reply-To"]) for c in smtp_sink.messages]
    assert len(sent) == len(queued) == len(set(sent)) and receipts  # each receipt once

    smtp_sink.clear()
    run_together(workers, "--now", "2023-12-02T08:00", "remind", n=3)
    with engine.connect() as conn:
        notices = conn.execute(select(store.outbox.c.key).where(store.outbox.c.kind == "reminder")).scalars().all()
    assert notices and len(notices) == len(set(notices))
    smtp_sink.wait_for(len(notices))
    time.sleep(1)
    assert len(smtp_sink.messages) == len(notices)  # each reminder once across three workers


def test_the_service_runs_as_several_workers_on_postgresql(workers: Workspace, tmp_path: Path) -> None:
    """On SQLite a second service refuses to start; on PostgreSQL both run (and stop cleanly)."""
    command = [sys.executable, "-m", "mailbot", "--config", str(workers.config_path), "run"]
    env = {**os.environ, PASSWORD_ENV: workers.password}
    logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
    procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("w"), env=env) for log in logs]
    try:
        deadline = time.monotonic() + 120
        while not all("mailbot started" in log.read_text() for log in logs):
            assert all(p.poll() is None for p in procs), [log.read_text() for log in logs]
            assert time.monotonic() < deadline, [log.read_text() for log in logs]
            time.sleep(0.2)
        engine = store.connect(workers.settings().db_url)
        with engine.connect() as conn:
            beats = conn.execute(select(store.workers.c.pid, store.workers.c.inbox)).all()
        assert sorted(pid for pid, _ in beats) == sorted(p.pid for p in procs)  # each worker's heartbeat
        page = staff_client(workers.settings(), engine).get("/system").text
        assert page.count("Đang hoạt động") == 2 and all(str(p.pid) in page for p in procs)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=60) for p in procs]
    assert codes == [0, 0], [log.read_text() for log in logs]
    with engine.connect() as conn:
        assert conn.execute(select(store.workers)).all() == []  # a clean stop removes the row


def staff_client(settings, engine) -> TestClient:  # type: ignore[no-untyped-def]
    auth.set_password(engine, "lan", "Mật-khẩu-thử-2023", actor="test")
    client = TestClient(create_app(settings, engine))
    token = re.search(r'name="token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"name": "lan", "password": "Mật-khẩu-thử-2023", "token": token, "next": "/"})
    return client


def test_a_silent_worker_is_shown_as_not_responding(tmp_path: Path) -> None:
    from datetime import timedelta

    build_demo(tmp_path / "demo")
    settings = config.load(tmp_path / "demo" / "mailbot.toml")
    engine = store.connect(settings.db_url)
    long_ago = store.now() - timedelta(minutes=10)
    store.heartbeat(engine, "may-2:4242:1", host="may-2", pid=4242, inbox="gdtx@mail/INBOX", started=long_ago)
    with engine.begin() as conn:
        conn.execute(store.workers.update().values(seen_at=long_ago))
    page = staff_client(settings, engine).get("/system").text
    assert "may-2" in page and "Không phản hồi" in page and "Đang hoạt động" not in page
    assert "phiên bản cấu trúc dữ liệu: " + migrate.head() in page


def backlog(n: int) -> list[tuple[str, bytes]]:
    """``n`` report emails from the roster's schools, each its own message: (Message-ID, raw)."""
    rows = [r for r in samples.load_demo_roster() if r["emails"]]
    out = []
    for k in range(n):
        school = rows[k % len(rows)]
        raw = samples.make_email(
            sender=school["emails"][0],
            sender_name=school["name"],
            subject=f"Báo cáo lần {k}",
            body="Kính gửi Sở, đơn vị gửi báo cáo.",
            attachments=[(f"bao-cao-{k}.docx", samples.make_report_docx(school["name"]), samples.DOCX_TYPE)],
            message_id=f"<backlog-{k}@{school['emails'][0].split('@')[1]}>",
        )
        out.append((f"<backlog-{k}@{school['emails'][0].split('@')[1]}>", raw))
    return out


@pytest.mark.crash
def records(engine) -> dict[str, tuple[object, ...]]:  # type: ignore[no-untyped-def]
    """Message-ID → what became of it (institution, campaign, state, lateness, how identified, its files)."""
    m, i, f = store.messages, store.institutions, store.files
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                m.c.id, m.c.message_id, i.c.code, m.c.campaign_id, m.c.state, m.c.late, m.c.identified_by
            ).select_from(m.outerjoin(i, i.c.id == m.c.institution_id))
        ).all()
        files = {pk: sorted(names) for pk, names in _files_by_message(conn, f)}
    return {
        r.message_id: (r.code, r.campaign_id, r.state, bool(r.late), r.identified_by, files.get(r.id, [])) for r in rows
    }


def _files_by_message(conn, f):  # type: ignore[no-untyped-def]
    grouped: dict[int, list[str]] = {}
    for pk, name in conn.execute(select(f.c.message_pk, f.c.name)):
        grouped.setdefault(pk, []).append(name)
    return grouped.items()


def test_three_workers_with_kills_record_and_answer_each_message_once(  # type: ignore[no-untyped-def]
    tmp_path: Path, dovecot, make_dovecot, smtp_sink, postgres, monkeypatch
) -> None:
    """Three services on one PostgreSQL and one Dovecot work through a backlog while workers are SIGKILLed and
    restarted: each message recorded once, as one worker on SQLite records it, each receipt sent once but for the
    one a killed worker may have had in flight at the SMTP server (at most one per kill, the documented window)."""
    import random

    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    ws = make_workspace(
        tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink, notify="max_auto_per_address_per_day = 1000")
    )
    on(postgres.create_database(), ws.config_path)
    ws.cli("--now", "2023-12-01T08:00", "run", "--once")  # the schema, the roster, the campaign
    mail = backlog(300)
    for _, raw in mail:
        dovecot.append(raw, datetime(2023, 12, 1, 2, 0, tzinfo=UTC))
    command = [sys.executable, "-m", "mailbot", "--config", str(ws.config_path), "run"]
    env = {**os.environ, PASSWORD_ENV: ws.password}
    logs = tmp_path / "workers.log"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=logs.open("a"), env=env)

    engine = store.connect(ws.settings().db_url)

    def counted() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(store.messages)).scalar_one())

    workers, kills, rng = [start() for _ in range(3)], 0, random.Random(14)
    try:
        deadline = time.monotonic() + 600
        while counted() < len(mail) and kills < 6:
            time.sleep(rng.uniform(1.0, 3.0))
            victim = rng.randrange(3)
            workers[victim].kill()
            workers[victim].wait()
            workers[victim] = start()
            kills += 1
        while True:
            with engine.connect() as conn:
                pending = conn.execute(
                    select(func.count())
                    .select_from(store.outbox)
                    .where(store.outbox.c.status.in_(("pending", "sending")))
                ).scalar_one()
            if counted() == len(mail) and pending == 0:
                break
            assert time.monotonic() < deadline, logs.read_text()[-3000:]
            time.sleep(1)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=60)
    assert kills >= 1
    with engine.connect() as conn:
        ids = conn.execute(select(store.messages.c.message_id)).scalars().all()
        acks = conn.execute(
            select(func.count()).select_from(store.outbox).where(store.outbox.c.kind == "ack")
        ).scalar_one()
    assert sorted(ids) == sorted(m for m, _ in mail)  # each message recorded exactly once
    single = make_dovecot()  # the same backlog, one worker, SQLite
    for _, raw in mail:
        single.append(raw, datetime(2023, 12, 1, 2, 0, tzinfo=UTC))
    monkeypatch.setenv(PASSWORD_ENV, single.password)
    alone = make_workspace(tmp_path / "alone", single)
    alone.cli("run", "--once")
    assert records(engine) == records(alone.engine())  # the same records as one worker on SQLite
    assert acks == len(mail)  # one receipt queued per message
    time.sleep(1)
    replies = [c.message["In-Reply-To"] for c in smtp_sink.messages if c.message["X-Mailbot-Kind"] == "ack"]
    assert set(replies) == {m for m, _ in mail}  # every school got its receipt
    doubled = len(replies) - len(set(replies))
    assert doubled <= kills, f"{doubled} receipts sent twice for {kills} kills"
