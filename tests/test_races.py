"""Several mailbot processes on one data folder at once (real processes, one SQLite file, a real SMTP server).

The service, `remind`, `outbox retry`, `digest --send` and `run --once` started together: every receipt, reminder and digest
reaches the SMTP server exactly once (counted per Message-ID and per outbox key), every message is recorded
once, and no process prints a traceback. Then the pieces those races rely on, in process: queueing the same key
from two connections, claims that lapse, and a database made before the claim columns existed.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from types import SimpleNamespace

import pytest
from sqlalchemy import event, func, select, text, update

from mailbot import store
from mailbot.config import OutboxSettings
from mailbot.demo import samples
from mailbot.notify import outbox
from mailbot.notify.compose import secret_key
from mailbot.web.auth import load_or_create_key
from tests.conftest import PASSWORD_ENV, Workspace, make_workspace
from tests.reliability_support import (
    ROOT,
    Daemon,
    ack_parents,
    append_many,
    db_count,
    db_rows,
    school_mails,
    wait_until,
)
from tests.test_notify import smtp_section

ARRIVAL = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)  # INTERNALDATE within the test campaign
NOW = "2023-12-02T08:30"  # three days before the deadline: reminders are due; after remind_at and digest_at
EARLIER = "2023-12-01T10:00"  # when the backlog was first processed, with the SMTP server refusing or down
FAST = "retry_base_seconds = 1\ndeliver_every_seconds = 1\n"
NOTIFY = "max_auto_per_address_per_day = 1000"
ROSTER = [r for r in samples.load_demo_roster() if r["emails"]]
SUBMITTING = ROSTER[:20]
UNSENT = "SELECT id, kind, status, last_error FROM outbox WHERE status != 'sent'"  # the other institutions never submit: they get a reminder


class Cli:
    """`python -m mailbot ... ARGS` started now, read when it has finished."""

    def __init__(self, ws: Workspace, *args: str) -> None:
        env = {**os.environ, PASSWORD_ENV: ws.password, "PYTHONPATH": str(ROOT)}
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailbot", "--config", str(ws.config_path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ws.root,
        )

    def finish(self, timeout: float = 180.0) -> tuple[int, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out + err


def mails(start: int, stop: int) -> list[tuple[str, bytes]]:
    """(Message-ID, raw) of school reports, three per submitting institution in all."""
    out = []
    for i in range(start, stop):
        row = SUBMITTING[i % len(SUBMITTING)]
        mid = f"<race-{i}@{row['emails'][0].split('@')[1]}>"
        out.append(
            (
                mid,
                samples.make_email(
                    sender=row["emails"][0],
                    sender_name=row["name"],
                    subject=f"Báo cáo ANTQ năm 2023 (lần {i})",
                    body="Kính gửi Sở GDĐT, đơn vị gửi báo cáo.",
                    message_id=mid,
                    attachments=[
                        ("bao-cao-antq.docx", samples.make_report_docx(row["name"]), "application/octet-stream")
                    ],
                ),
            )
        )
    return out


@pytest.fixture
def ws(tmp_path, dovecot, smtp_sink, monkeypatch) -> Workspace:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    return make_workspace(
        tmp_path / "ws",
        dovecot,
        extra_inbox="poll_seconds = 2",
        extra=smtp_section(smtp_sink, extra=FAST, notify=NOTIFY),
    )


def append(dovecot, batch: list[tuple[str, bytes]]) -> None:  # type: ignore[no-untyped-def]
    assert all(append_many(dovecot, [raw for _, raw in batch], ARRIVAL))


def deliveries(sink) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(str(c.message["Message-ID"]) for c in sink.messages)


def settled(ws: Workspace, expected: int) -> bool:
    return db_count(ws, "messages") >= expected and db_count(ws, "outbox", "status IN ('pending', 'sending')") == 0


def test_service_two_reminds_a_retry_and_a_digest_together_send_everything_exactly_once(
    ws, dovecot, smtp_sink, tmp_path
):
    sink = smtp_sink
    # A backlog as a weekend would leave it: 10 receipts refused for good (they wait for `outbox retry`) ...
    append(dovecot, mails(0, 10))
    sink.fail_next = [(554, "5.7.1 Refused for the test")] * 10
    ws.cli("--now", EARLIER, "run", "--once")
    assert db_count(ws, "outbox", "status = 'failed'") == 10 and not sink.messages
    # ... 40 receipts waiting while the SMTP server was down ...
    sink.down()
    append(dovecot, mails(10, 50))
    ws.cli("--now", EARLIER, "run", "--once")
    assert db_count(ws, "outbox", "status = 'pending'") == 40
    sink.up()
    # ... and 10 new messages the service records while the others deliver.
    append(dovecot, mails(50, 60))

    service = Daemon(ws, tmp_path / "service.log", args=("--now", NOW))
    others = [
        Cli(ws, "--now", NOW, "remind"),
        Cli(ws, "--now", NOW, "remind"),
        Cli(ws, "--now", NOW, "outbox", "retry"),
        Cli(ws, "--now", NOW, "digest", "--send"),
    ]
    finished = [cli.finish() for cli in others]
    done = wait_until(lambda: settled(ws, 60), 120, service, every=0.5)
    time.sleep(3)  # more delivery rounds of the service: anything sent twice would show now
    assert service.stop() == 0

    for cli, (code, output) in zip(others, finished):
        assert code == 0 and "Traceback" not in output, f"mailbot {' '.join(cli.args)} exited {code}:\n{output}"
    assert "Traceback" not in service.log(), service.log()[-5000:]
    assert done, f"not settled: {db_rows(ws, UNSENT)}"
    retried = next(out for cli, (_, out) in zip(others, finished) if "retry" in cli.args)
    assert int(retried.split(" message(s) queued again")[0].split()[-1]) >= 10  # the refused receipts took part

    got = deliveries(sink)
    assert {mid: n for mid, n in got.items() if n > 1} == {}
    rows = db_rows(ws, "SELECT key, kind, status, our_message_id, recipients FROM outbox")
    keys = Counter(key for key, *_ in rows)
    assert max(keys.values()) == 1
    sent = {mid: key for key, _, status, mid, _ in rows if status == "sent"}
    assert set(got) == set(sent)  # each sent row reached the server once, and nothing else did
    assert [(key, status) for key, _, status, _, recipients in rows if status != "sent"] == [
        (key, "failed") for key, _, status, _, recipients in rows if recipients == "[]"
    ]  # only "no usable address"

    acks = ack_parents(sink)
    assert acks == Counter({mid: 1 for mid, _ in mails(0, 60)})
    reminded = Counter(tuple(sorted(c.rcpt_tos)) for c in sink.messages if c.message["X-Mailbot-Kind"] == "reminder")
    assert reminded == Counter({tuple(sorted(r["emails"])): 1 for r in ROSTER[20:]})
    assert sum(c.message["X-Mailbot-Kind"] == "digest" for c in sink.messages) == 1


def test_run_once_while_the_service_runs_neither_fails_nor_doubles(ws, dovecot, smtp_sink, tmp_path):
    backlog = school_mails(40, "once-race", two_files_every=0)
    assert all(append_many(dovecot, [raw for *_, raw in backlog], ARRIVAL))
    service = Daemon(ws, tmp_path / "service.log", args=("--now", NOW))
    once = [Cli(ws, "--now", NOW, "run", "--once") for _ in range(2)]
    finished = [cli.finish() for cli in once]
    done = wait_until(lambda: settled(ws, len(backlog)), 120, service, every=0.5)
    time.sleep(3)
    assert service.stop() == 0

    for code, output in finished:
        assert code == 0 and "Traceback" not in output and "UNIQUE" not in output, output
    assert "Traceback" not in service.log(), service.log()[-5000:]
    assert done
    recorded = Counter(mid for (mid,) in db_rows(ws, "SELECT message_id FROM messages"))
    assert recorded == Counter({mid: 1 for mid, *_ in backlog})
    assert db_count(ws, "locations") == len(backlog)
    assert ack_parents(smtp_sink) == Counter({mid: 1 for mid, *_ in backlog})
    assert max(deliveries(smtp_sink).values()) == 1


# --- in process -----------------------------------------------------------------------------------------


def notice(key: str, to: str = "thpt@haiphong.edu.vn") -> EmailMessage:
    msg = EmailMessage()
    msg["To"], msg["Subject"], msg["Message-ID"] = to, "Nhắc nộp báo cáo", f"<{key}@mailbot.test>"
    msg.set_content("Kính gửi nhà trường.")
    return msg


def queue(conn, key: str, when):  # type: ignore[no-untyped-def]
    item = outbox.Outgoing(key, "reminder", notice(key), ("thpt@haiphong.edu.vn",))
    return outbox.queue(conn, item, when, outbox.DailyCaps(day_start=when - timedelta(hours=1), per_address=10))


def test_queueing_the_same_key_from_two_connections_is_a_no_op(tmp_path):
    url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    first, second = store.connect(url), store.connect(url)
    when = store.now()
    about_to_insert = threading.Event()

    def seen(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX "):
            about_to_insert.set()

    event.listen(second, "before_cursor_execute", seen)
    result: list[object] = []

    def other_run() -> None:
        try:
            with store.atomic(second) as conn:
                result.append(queue(conn, "reminder:x", when))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            result.append(exc)

    with store.atomic(first) as conn:
        mine = queue(conn, "reminder:x", when)
        thread = threading.Thread(target=other_run)
        thread.start()
        # the other run has looked for the key (not committed yet: absent) and is about to insert it
        assert about_to_insert.wait(10)
    thread.join(30)
    assert result == [outbox.Queued("exists", mine.outbox_id)]
    with first.connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.outbox)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(store.outbox_rcpt)).scalar_one() == 1


def _key_when_all_start(barrier, make, out) -> None:  # type: ignore[no-untyped-def]
    barrier.wait()
    out.put(make())


@pytest.mark.parametrize("which", ["secret.key", "web-secret.key"])
def test_processes_starting_together_on_a_new_folder_all_get_the_same_whole_key(tmp_path, which):
    # CI once saw two `run --once` fail at start: both found no key, one lost the O_EXCL create and crashed,
    # and a reader between another's create and write would have read an empty key.
    forked, keys = multiprocessing.get_context("fork"), set()
    for round_ in range(15):
        folder = tmp_path / str(round_) / "var"
        make = partial(secret_key, folder) if which == "secret.key" else partial(load_or_create_key, folder / which)
        barrier, out = forked.Barrier(6), forked.Queue()
        workers = [forked.Process(target=_key_when_all_start, args=(barrier, make, out)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert [worker.exitcode for worker in workers] == [0] * 6
        got = {out.get(timeout=5) for _ in workers}
        assert len(got) == 1 and len(key := got.pop()) >= 32
        assert key not in keys  # a new key for each new folder
        keys.add(key)
        assert sorted(p.name for p in folder.iterdir()) == [which]  # no temporary file left behind
        assert (folder / which).stat().st_mode & 0o777 == 0o600


@pytest.fixture
def file_less(tmp_path, smtp_sink):  # type: ignore[no-untyped-def]
    """Settings delivering to the SMTP sink (no inbox is used here), and their engine."""
    server = SimpleNamespace(host="127.0.0.1", port=1, user="u", password="p")
    ws = make_workspace(tmp_path / "ws", server, extra=smtp_section(smtp_sink, extra=FAST, notify=NOTIFY))
    settings = ws.settings()
    return settings, store.connect(settings.db_url), smtp_sink


def claimed(engine, key: str, token: str, until) -> None:  # type: ignore[no-untyped-def]
    with store.atomic(engine) as conn:
        conn.execute(
            update(store.outbox)
            .where(store.outbox.c.key == key)
            .values(status="sending", claim_token=token, claimed_until=until)
        )


def test_claims_of_live_senders_hold_and_lapsed_or_abandoned_ones_return_to_the_pool(file_less):
    settings, engine, sink = file_less
    now = store.now()
    with store.atomic(engine) as conn:
        for key in ("elsewhere-live", "elsewhere-lapsed", "here-dead", "here-live", "free"):
            queue(conn, key, now)
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "60"])
    try:
        claimed(engine, "elsewhere-live", f"other-host#x/{os.getpid()}/abc", now + timedelta(minutes=4))
        claimed(engine, "elsewhere-lapsed", "other-host#x/1/abc", now - timedelta(seconds=1))
        claimed(engine, "here-dead", f"{outbox.MACHINE}/{dead.pid}/abc", now + timedelta(minutes=4))
        claimed(engine, "here-live", f"{outbox.MACHINE}/{alive.pid}/abc", now + timedelta(minutes=4))
        delivery = outbox.Delivery.of(settings, engine)
        report = delivery.deliver_due(now)
        again = delivery.deliver_due(now)
    finally:
        alive.kill()
        alive.wait()
    assert (report.sent, again.sent) == (3, 0)
    assert sorted(deliveries(sink)) == sorted(f"<{k}@mailbot.test>" for k in ("elsewhere-lapsed", "here-dead", "free"))
    with engine.connect() as conn:
        left = dict(conn.execute(select(store.outbox.c.key, store.outbox.c.status)).all())
        tokens = set(conn.execute(select(store.outbox.c.claim_token).where(store.outbox.c.status == "sent")).scalars())
    assert left == {
        "elsewhere-live": "sending",
        "elsewhere-lapsed": "sent",
        "here-dead": "sent",
        "here-live": "sending",
        "free": "sent",
    }
    assert tokens == {None}


def test_a_database_made_before_claims_gets_the_columns(tmp_path):
    url = f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    old = store.connect(url)
    with old.begin() as conn:  # what a version before claims (and before migrations) created
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("ALTER TABLE outbox DROP COLUMN claim_token"))
        conn.execute(text("ALTER TABLE outbox DROP COLUMN claimed_until"))
        queue(conn, "before-upgrade", store.now())
    old.dispose()
    engine = store.connect(url)
    with engine.connect() as conn:
        columns = {r[1] for r in conn.execute(text("PRAGMA table_info(outbox)"))}
        assert {"claim_token", "claimed_until"} <= columns
        assert conn.execute(select(store.outbox.c.status)).scalar_one() == "pending"
    delivery = outbox.Delivery(engine, OutboxSettings(), tmp_path / "outbox")
    assert [r.key for r in delivery.claim(store.now())] == ["before-upgrade"]


def test_the_service_outlives_any_error_of_one_round(file_less, monkeypatch, caplog):
    from mailbot import daemon as daemon_module

    settings, _, _ = file_less
    service = daemon_module.Daemon(settings.data_dir.parent / "mailbot.toml")

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug in one round\nsecond line")

    monkeypatch.setattr(service.delivery, "deliver_due", broken)
    monkeypatch.setattr(daemon_module.dispatch, "queue_notices", broken)
    service.deliver()
    service.run_job("remind")
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "outbox delivery failed, next round in 1 s: RuntimeError: a bug in one round",
        "remind job failed: RuntimeError: a bug in one round",
    ]
    assert not any(r.exc_info for r in caplog.records if r.levelno >= 20)


def test_a_reload_asked_during_a_pass_is_done_right_after_it(tmp_path, monkeypatch):
    """SIGHUP while the inbox loop is draining: the reload must not wait for the next mail or poll (60 s here)."""
    from mailbot import daemon as daemon_module
    from mailbot.demo.build import build_demo
    from mailbot.ingest.inbox import open_inbox

    settings = build_demo(tmp_path / "demo")
    service = daemon_module.Daemon(settings.data_dir.parent / "mailbot.toml")
    assert service.settings.inboxes[0].poll_seconds >= 60
    drain, passes, reloads = daemon_module.pipeline.drain, [], []

    def drain_then_hup(*args, **kwargs):  # type: ignore[no-untyped-def]
        drain(*args, **kwargs)
        passes.append(time.monotonic())
        if len(passes) == 1:
            service.hup()  # what the signal handler calls, arriving while the first pass ends

    monkeypatch.setattr(daemon_module.pipeline, "drain", drain_then_hup)
    real_reload = service._reload
    monkeypatch.setattr(service, "_reload", lambda: (reloads.append(time.monotonic()), real_reload()))
    with open_inbox(service.settings.inboxes[0]) as box:
        loop = threading.Thread(target=service.serve, args=(box, 0), daemon=True)
        loop.start()
        try:
            wait_until(lambda: reloads, timeout=10)
        finally:
            service.stop.set()
            loop.join(10)
    assert not loop.is_alive()
    assert len(reloads) == 1 and reloads[0] - passes[0] < 5, (passes, reloads)
    assert len(passes) == 2  # the reload came with a second look at the inbox, then the loop stopped
