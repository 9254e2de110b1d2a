"""`mailbot run` as a service, as a subprocess against a real Dovecot and a real SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from mailbot import store
from mailbot.demo import samples
from mailbot.ingest.inbox import ImapInbox
from mailbot.models import RawMail
from tests.conftest import PASSWORD_ENV, Workspace, make_workspace
from tests.test_notify import smtp_section

ARRIVAL = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)  # INTERNALDATE within the test campaign
FAST = """
retry_base_seconds = 1
deliver_every_seconds = 1
"""


class Running:
    """A `mailbot run` process whose log goes to a file we can read while it runs."""

    def __init__(self, ws: Workspace, *args: str) -> None:
        self.log_path = ws.root / f"daemon-{time.monotonic_ns()}.log"
        env = {**os.environ, PASSWORD_ENV: ws.password}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailbot", "--config", str(ws.config_path), *args, "run"],
            stderr=self.log_path.open("wb"),
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=ws.root,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not logged within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@pytest.fixture
def service(tmp_path, dovecot, smtp_sink, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    ws = make_workspace(
        tmp_path / "ws",
        dovecot,
        extra_inbox="poll_seconds = 2",
        extra=smtp_section(smtp_sink, extra=FAST, notify="max_auto_per_address_per_day = 1000"),
    )
    started: list[Running] = []

    def start(*args: str) -> Running:
        started.append(Running(ws, *args))
        return started[-1]

    yield ws, dovecot, smtp_sink, start
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def school_mail(n: int, code: str = "THPT-NQ") -> bytes:
    row = next(r for r in samples.load_demo_roster() if r["code"] == code)
    return samples.make_email(
        sender=row["emails"][0],
        sender_name=row["name"],
        subject=f"Báo cáo ANTQ lần {n}",
        body="Kính gửi Sở",
        message_id=f"<daemon-{code}-{n}@haiphong.edu.vn>",
        attachments=[("bc.docx", samples.make_report_docx(row["name"]), "application/octet-stream")],
    )


def receipts(sink, count: int, timeout: float = 10.0) -> list:  # type: ignore[no-untyped-def]
    """The acknowledgements among what the sink received (a digest may be sent at start-up too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in sink.messages if c.message["X-Mailbot-Kind"] == "ack"]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {count} receipt(s) within {timeout}s, got {len(found)}")


def counts(ws: Workspace) -> tuple[int, int]:
    with ws.engine().connect() as conn:
        messages = conn.execute(select(func.count()).select_from(store.messages)).scalar_one()
        locations = conn.execute(select(func.count()).select_from(store.locations)).scalar_one()
    return messages, locations


def test_new_mail_is_acknowledged_within_seconds_and_sigterm_exits_cleanly(service):
    ws, dovecot, sink, start = service
    daemon = start()
    daemon.wait_log("mailbot started")
    time.sleep(1.0)  # let it settle into IDLE
    began = time.monotonic()
    dovecot.append(school_mail(1), ARRIVAL)
    (ack,) = receipts(sink, 1)
    assert time.monotonic() - began < 5.0
    assert ack.message["In-Reply-To"] == "<daemon-THPT-NQ-1@haiphong.edu.vn>"
    assert "<daemon-THPT-NQ-1@haiphong.edu.vn>" in daemon.log()  # one line per event, with the Message-ID
    stopping = time.monotonic()
    assert daemon.stop() == 0 and time.monotonic() - stopping < 5.0
    assert "mailbot stopped" in daemon.log()


def test_a_second_instance_refuses_naming_the_first(service):
    ws, _, _, start = service
    first = start()
    first.wait_log("mailbot started")
    second = start()
    assert second.proc.wait(15) == 1
    assert f"pid {first.proc.pid}" in second.log() and "Traceback" not in second.log()
    assert first.stop() == 0


def test_dovecot_restart_mid_run_loses_and_doubles_nothing(service):
    ws, dovecot, sink, start = service
    for n in range(30):
        dovecot.append(school_mail(n), ARRIVAL)
    daemon = start()
    daemon.wait_log("mailbot started")
    dovecot.stop()
    daemon.wait_log("next attempt in", timeout=20)
    time.sleep(1.5)
    dovecot.start()
    for n in range(30, 40):
        dovecot.append(school_mail(n), ARRIVAL)
    got = receipts(sink, 40, timeout=60)
    assert sorted(c.message["In-Reply-To"] for c in got) == sorted(
        f"<daemon-THPT-NQ-{n}@haiphong.edu.vn>" for n in range(40)
    )
    assert counts(ws) == (40, 40)
    assert daemon.stop() == 0
    assert "inbox reachable again" in daemon.log()


def test_smtp_outage_then_every_receipt_is_delivered_once(service):
    ws, dovecot, sink, start = service
    sink.down()
    daemon = start()
    daemon.wait_log("mailbot started")
    for n in range(5):
        dovecot.append(school_mail(n), ARRIVAL)
    daemon.wait_log("cannot reach SMTP server", timeout=20)
    sink.up()
    got = receipts(sink, 5, timeout=30)
    time.sleep(3)  # more delivery rounds: nothing may be sent twice
    assert len(receipts(sink, 5)) == 5 == len({c.message["In-Reply-To"] for c in got})
    assert daemon.stop() == 0


def test_missed_digest_is_sent_once_after_restart(service):
    ws, dovecot, sink, start = service
    first = start("--now", "2023-12-06T09:00")  # digest_at 07:30 has passed today and nothing ran
    first.wait_log("digest: pending")
    # The late notices of the same catch-up may come first or in the same moment: only the digests are counted.
    deadline = time.monotonic() + 15
    while not (digests := [m for m in sink.messages if m.message["X-Mailbot-Kind"] == "digest"]):
        assert time.monotonic() < deadline, [m.message["Subject"] for m in sink.messages]
        time.sleep(0.05)
    assert [d.message["Subject"].startswith("Tổng hợp") for d in digests] == [True]
    assert first.stop() == 0
    again = start("--now", "2023-12-06T09:05")
    again.wait_log("mailbot started")
    time.sleep(3)
    assert again.stop() == 0
    assert sum("Tổng hợp" in c.message["Subject"] for c in sink.messages) == 1


def test_sighup_reloads_the_roster(service):
    ws, dovecot, sink, start = service
    daemon = start()
    daemon.wait_log("mailbot started")
    roster = ws.root / "roster.csv"
    roster.write_text(
        roster.read_text(encoding="utf-8").replace(
            "thptthaiphien@haiphong.edu.vn", "thptthaiphien@haiphong.edu.vn;tp.moi@gmail.com"
        ),
        encoding="utf-8",
    )
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_log("reloaded roster")
    dovecot.append(
        samples.make_email(
            sender="tp.moi@gmail.com",
            sender_name="",
            subject="Báo cáo",
            body="x",
            attachments=[("bc.docx", samples.make_report_docx("Trường THPT Thái Phiên"), "application/octet-stream")],
        ),
        ARRIVAL,
    )
    receipts(sink, 1)
    assert daemon.stop() == 0
    inst = next(i for i in ws.status()["institutions"] if i["code"] == "THPT-TPH")
    assert inst["identified_by"] == "address"


def test_check_reports_a_wrong_password_clearly(service, monkeypatch):
    ws, dovecot, _, _ = service
    ws.password = "not-the-password"
    result = ws.cli("check", check=False)
    assert result.returncode == 1
    assert "FAIL inbox: IMAP login refused" in result.stdout and "not-the-password" not in result.stdout + result.stderr
    assert "ok   outbox" in result.stdout


def test_mail_arriving_while_the_previous_one_is_processed_is_not_missed(service):
    """Dovecot sends "* n EXISTS" together with "+ idling"; a wait that only watches the socket misses it."""
    ws, dovecot, sink, start = service
    daemon = start()
    daemon.wait_log("mailbot started")
    time.sleep(1.0)
    expected = 0
    for n, gap in enumerate((0.3, 0.45, 0.5, 0.55, 0.7)):
        dovecot.append(school_mail(2 * n), ARRIVAL)
        time.sleep(gap)
        dovecot.append(school_mail(2 * n + 1), ARRIVAL)
        expected += 2
        # Each pair within seconds, not at the next IDLE refresh (10 minutes) or resync (15): 20 s leaves
        # room for a loaded CI machine and still tells the two apart.
        receipts(sink, expected, timeout=20.0)
    assert daemon.stop() == 0


def test_a_school_name_with_a_comma_still_gets_its_receipt(service):
    ws, dovecot, sink, start = service
    row = next(r for r in samples.load_demo_roster() if "," in r["name"] and r["emails"])
    dovecot.append(
        samples.make_email(
            sender=row["emails"][0],
            sender_name=row["name"],
            subject="Báo cáo",
            body="x",
            attachments=[("bc.docx", samples.make_report_docx(row["name"]), "application/octet-stream")],
        ),
        ARRIVAL,
    )
    ws.cli("run", "--once")
    (ack,) = receipts(sink, 1)
    assert ack.rcpt_tos == (row["emails"][0],)


def test_mail_announced_during_a_fetch_ends_the_next_wait(tmp_path, dovecot, monkeypatch):
    """Mail that arrives after a pass searched the folder is announced ("* n EXISTS") in the answer to one of that
    pass's later commands; IDLE never announces it again, so the wait must notice it was told already."""
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    settings = make_workspace(tmp_path / "ws", dovecot).settings()
    dovecot.append(school_mail(0), ARRIVAL)
    real_fetch = ImapInbox._fetch

    def fetch_after_more_mail(self: ImapInbox, uids: list[str]) -> list[RawMail]:
        dovecot.append(school_mail(1), ARRIVAL)  # after the UID SEARCH, before the FETCH whose answer announces it
        return real_fetch(self, uids)

    monkeypatch.setattr(ImapInbox, "_fetch", fetch_after_more_mail)
    with ImapInbox(settings.inbox) as box:
        first = [m.uid for batch in box.batches(lambda _validity: set()) for m in batch]
        monkeypatch.setattr(ImapInbox, "_fetch", real_fetch)
        started = time.monotonic()
        box.wait(2, lambda: time.monotonic() - started > 20)  # without the fix: until the IDLE refresh (10 minutes)
        waited = time.monotonic() - started
        second = [m.uid for batch in box.batches(lambda _validity: set(first)) for m in batch]
        started = time.monotonic()
        box.wait(2, lambda: time.monotonic() - started > 3)  # nothing new since: a real wait, not a busy loop
        idle = time.monotonic() - started
    assert (first, second) == (["1"], ["2"])
    assert waited < 5 and idle > 2.5, (waited, idle)
