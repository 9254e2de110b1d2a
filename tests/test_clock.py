"""The one business clock: `--now` (naive read in the configured zone) or the system time; the service's runs on."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailbot.clock import Clock

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def test_a_naive_now_is_read_in_the_configured_zone() -> None:
    clock = Clock(ZONE, datetime(2023, 12, 5, 17, 0))
    assert clock.now() == datetime(2023, 12, 5, 10, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert clock.local() == datetime(2023, 12, 5, 17, 0, tzinfo=ZONE) and clock.local().tzinfo is ZONE


def test_an_aware_now_keeps_its_instant() -> None:
    clock = Clock(ZONE, datetime(2023, 12, 5, 23, 30, tzinfo=UTC))
    assert clock.now() == datetime(2023, 12, 5, 23, 30, tzinfo=UTC)
    assert clock.local().date().isoformat() == "2023-12-06"  # already the next day in Vietnam


def test_a_fixed_clock_does_not_move() -> None:
    clock = Clock(ZONE, datetime(2023, 12, 5, 17, 0))
    first = clock.now()
    time.sleep(0.01)
    assert clock.now() == first


def test_the_system_clock_is_real_time_in_utc() -> None:
    clock = Clock(ZONE)
    before = datetime.now(UTC)
    now = clock.now()
    assert before <= now <= datetime.now(UTC) and now.tzinfo is UTC
    assert clock.local().utcoffset() == timedelta(hours=7)
    assert clock.running() is clock


def test_a_running_clock_starts_at_now_and_moves_on() -> None:
    start = datetime(2023, 12, 5, 16, 59, 59, tzinfo=ZONE)
    clock = Clock(ZONE, start).running()
    first = clock.now()
    assert timedelta(0) <= first - start < timedelta(seconds=5)
    time.sleep(0.05)
    assert clock.now() - first >= timedelta(seconds=0.05)


def test_the_clock_is_frozen() -> None:
    clock = Clock(ZONE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        clock.fixed = datetime(2023, 1, 1, tzinfo=UTC)  # type: ignore[misc]
