"""outbox.queue on a temporary SQLite database: idempotent keys and the daily caps, without any server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from mailbot import store
from mailbot.config import Settings
from mailbot.notify import outbox
from mailbot.notify.compose import Draft
from mailbot.notify.outbox import DailyCaps, Outgoing
from tests.conftest import db_url

NOW = datetime(2023, 12, 5, 3, 0, tzinfo=UTC)  # 10:00 in Vietnam
DAY = DailyCaps(day_start=datetime(2023, 12, 4, 17, 0, tzinfo=UTC), per_address=2)
SCHOOL, OTHER = "thpt@haiphong.edu.vn", "pgd@haiphong.edu.vn"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return store.connect(db_url(tmp_path / "mailbot.sqlite3"))


def message(key: str, to: tuple[str, ...]) -> EmailMessage:
    msg = EmailMessage()
    msg["To"], msg["Subject"], msg["Message-ID"] = (
        ", ".join(to),
        "Nhắc nộp báo cáo",
        f"<{key.replace(':', '-')}@mailbot.test>",
    )
    msg.set_content("Kính gửi nhà trường.")
    return msg


def put(
    engine: Engine, key: str, to: tuple[str, ...] = (SCHOOL,), caps: DailyCaps = DAY, kind: str = "reminder"
) -> outbox.Queued:
    with store.atomic(engine) as conn:
        return outbox.queue(conn, Outgoing(key, kind, message(key, to), to, campaign_id="antq"), NOW, caps)


def row(engine: Engine, outbox_id: int):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(store.outbox).where(store.outbox.c.id == outbox_id)).one()


def recipients_counted(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(store.outbox_rcpt.c.address)).scalars())


def test_a_key_is_queued_once(engine: Engine) -> None:
    first = put(engine, "reminder:1")
    again = put(engine, "reminder:1")
    assert first.status == "pending" and again == outbox.Queued("exists", first.outbox_id)
    stored = row(engine, first.outbox_id)
    assert (stored.kind, stored.recipients, stored.campaign_id, stored.status) == (
        "reminder",
        [SCHOOL],
        "antq",
        "pending",
    )
    assert stored.subject == "Nhắc nộp báo cáo" and stored.our_message_id == "<reminder-1@mailbot.test>"
    assert stored.next_attempt_at == NOW and stored.unverified is False
    assert recipients_counted(engine) == [SCHOOL]


def test_over_the_per_address_cap_the_message_is_kept_as_suppressed(engine: Engine) -> None:
    assert [put(engine, f"reminder:{n}").status for n in range(3)] == ["pending", "pending", "suppressed"]
    held = row(engine, 3)
    assert held.recipients == [SCHOOL] and "more than 2 automatic messages today" in held.last_error
    assert recipients_counted(engine) == [SCHOOL, SCHOOL]  # a suppressed message does not count


def test_a_draft_is_composed_only_when_it_goes_out(engine: Engine) -> None:
    """A receipt is queued as a draft: over the cap it is recorded with its subject, never composed nor stored."""
    composed: list[str] = []

    def draft(key: str) -> Draft:
        return Draft("Xác nhận đã nhận báo cáo", lambda: composed.append(key) or message(key, (SCHOOL,)))

    with store.atomic(engine) as conn:
        outbox.queue_fresh(
            conn, [(Outgoing(f"ack:{n}", "ack", draft(f"ack:{n}"), (SCHOOL,), fresh=True), DAY) for n in (1, 2, 3)], NOW
        )
    rows = [row(engine, n) for n in (1, 2, 3)]
    assert composed == ["ack:1", "ack:2"] and [r.status for r in rows] == ["pending", "pending", "suppressed"]
    assert all(r.subject == "Xác nhận đã nhận báo cáo" for r in rows)
    assert b"Message-ID: <ack-2@mailbot.test>" in rows[1].raw and rows[1].our_message_id == "<ack-2@mailbot.test>"
    assert (rows[2].raw, rows[2].our_message_id, rows[2].recipients) == (b"", "", [SCHOOL])


def test_only_the_addresses_under_the_cap_are_kept(engine: Engine) -> None:
    put(engine, "reminder:1")
    put(engine, "reminder:2")
    both = put(engine, "reminder:3", (SCHOOL, OTHER))
    stored = row(engine, both.outbox_id)
    assert both.status == "pending" and stored.recipients == [OTHER] and stored.last_error == ""
    assert f"To: {OTHER}\r\n" in stored.raw.decode()
    assert recipients_counted(engine) == [OTHER, SCHOOL, SCHOOL]


def test_messages_of_an_earlier_day_do_not_count(engine: Engine) -> None:
    put(engine, "reminder:1")
    assert put(engine, "reminder:2", caps=DailyCaps(DAY.day_start, per_address=1)).status == "suppressed"
    next_day = DailyCaps(day_start=DAY.day_start + timedelta(days=1), per_address=1)
    assert put(engine, "reminder:3", caps=next_day).status == "pending"


def test_replies_to_unverified_addresses_are_capped_in_all(engine: Engine) -> None:
    caps = DailyCaps(DAY.day_start, per_address=5, unverified=1)
    first = put(engine, "ack:1", ("a@gmail.com",), caps, "ack")
    second = put(engine, "ack:2", ("b@gmail.com",), caps, "ack")
    assert (first.status, second.status) == ("pending", "suppressed")
    assert row(engine, first.outbox_id).unverified is True
    assert (
        "more than 1 automatic replies today to unauthenticated addresses" in row(engine, second.outbox_id).last_error
    )
    assert put(engine, "ack:3", ("c@haiphong.edu.vn",), DAY, "ack").status == "pending"  # a verified reply is not


def test_the_digest_is_never_capped_nor_counted(engine: Engine) -> None:
    put(engine, "reminder:1")
    put(engine, "reminder:2")
    digest = put(engine, "digest:2023-12-05", (SCHOOL,), kind="digest")
    assert digest.status == "pending" and recipients_counted(engine) == [SCHOOL, SCHOOL]


def test_the_configured_caps_count_the_local_day(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path,
            "inbox": {"kind": "maildir", "path": tmp_path / "mail"},
            "notify": {"max_auto_per_address_per_day": 3, "max_unknown_replies_per_day": 7},
            "campaign": [{"id": "antq", "title": "Báo cáo", "deadline": "2023-12-05T17:00:00"}],
        }
    )
    evening = datetime(2023, 12, 5, 18, 30, tzinfo=UTC)  # 01:30 on 6 December in Vietnam
    assert DailyCaps.of(settings, evening) == DailyCaps(datetime(2023, 12, 5, 17, 0, tzinfo=UTC), 3)
    assert DailyCaps.of(settings, evening, unverified=True).unverified == 7


def test_a_failure_under_a_future_now_is_retried_from_the_real_time(engine: Engine, tmp_path: Path) -> None:
    # A --now years ahead used to park the row until then: neither the service nor `outbox retry` sent it.
    import socket

    from mailbot.config import OutboxSettings
    from mailbot.notify.outbox import Delivery

    with socket.socket() as probe:  # a loopback port nothing listens on: the SMTP server is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = OutboxSettings(kind="smtp", host="127.0.0.1", port=port, security="plain", timeout_seconds=2)
    queued = put(engine, "reminder:future")
    future = store.now() + timedelta(days=3650)
    report = Delivery(engine, settings, tmp_path / "outbox").deliver_due(future)
    assert report.retrying == 1
    retry = row(engine, queued.outbox_id)
    assert retry.status == "pending" and retry.next_attempt_at < store.now() + timedelta(hours=1)
    assert outbox.retry_at(NOW, timedelta(minutes=1)) == NOW + timedelta(minutes=1)  # a past --now: as before
