"""chase.due_notices, the reminder and late-notice rule (pure: no server, no database, milliseconds)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailbot.config import Chase
from mailbot.models import Campaign
from mailbot.notify.chase import Notice, due_notices
from mailbot.reports.status import CampaignStatus, InstitutionStatus, Submission

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DEADLINE = datetime(2023, 12, 5, 17, 0, tzinfo=ZONE)
CAMPAIGN = Campaign("antq-2023", "Báo cáo ANTQ", DEADLINE)
CHASE = Chase(reminders_before_days=(3, 1), late_every_days=2, late_until_days=6)


def institution(
    code: str = "THPT-NQ", *, deadline: datetime = DEADLINE, submitted: bool = False, active: bool = True
) -> InstitutionStatus:
    submissions = (
        (Submission(1, "<m@x>", "a@x.vn", "BC", DEADLINE - timedelta(days=1), "address", False, (), ()),)
        if submitted
        else ()
    )
    return InstitutionStatus(code, code, "THPT", submissions, deadline, active=active, extended=deadline != DEADLINE)


def notices(now: datetime, *insts: InstitutionStatus, chase: Chase = CHASE) -> list[Notice]:
    return due_notices(CampaignStatus(CAMPAIGN, insts or (institution(),), ()), chase, now, ZONE)


def at(day: int, hour: int = 8) -> datetime:
    """``hour`` o'clock in Vietnam on ``day`` December 2023 (the deadline is the 5th at 17:00)."""
    return datetime(2023, 12, day, hour, 0, tzinfo=ZONE)


def kinds_and_slots(now: datetime, chase: Chase = CHASE) -> list[tuple[str, int, str]]:
    return [(n.kind, n.days, n.key.rsplit(":", 1)[1]) for n in notices(now, chase=chase)]


def test_no_reminder_before_the_first_configured_day():
    assert notices(at(1)) == []  # four days before: the first reminder is three days before


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (2, [("reminder", 3, "d3")]),
        (3, [("reminder", 2, "d3")]),  # a day missed is caught up once: the same slot (and key) as day 2
        (4, [("reminder", 1, "d1")]),
        (5, [("reminder", 0, "d1")]),  # the deadline's morning: still the last reminder's slot
    ],
)
def test_reminders_before_the_deadline(day, expected):
    assert kinds_and_slots(at(day)) == expected


def test_same_slot_same_key_so_a_rerun_sends_nothing_new():
    assert notices(at(2))[0].key == notices(at(3))[0].key
    assert notices(at(4))[0].key != notices(at(2))[0].key


def test_the_deadline_to_the_second():
    assert kinds_and_slots(DEADLINE)[0][0] == "reminder"  # 17:00:00 is still on time
    assert notices(DEADLINE + timedelta(seconds=1)) == []  # late, but the first late notice is the next day


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (6, [("late", 1, "late-0")]),
        (7, [("late", 2, "late-0")]),  # every 2 days: day 2 is the first notice's slot
        (8, [("late", 3, "late-1")]),
        (10, [("late", 5, "late-2")]),
        (11, [("late", 6, "late-2")]),  # the last day still chased
        (12, []),  # past late_until_days
    ],
)
def test_late_notices_every_n_days_until_m(day, expected):
    assert kinds_and_slots(at(day)) == expected


def test_a_single_late_notice_when_every_is_zero():
    once = Chase((3, 1), late_every_days=0, late_until_days=30)
    assert {slot for day in range(6, 30) for _, _, slot in kinds_and_slots(at(day), once)} == {"late-once"}


def test_days_are_counted_in_the_configured_zone():
    # 23:30 UTC on the 5th is already the 6th in Vietnam: the first late day.
    assert kinds_and_slots(datetime(2023, 12, 5, 23, 30, tzinfo=ZoneInfo("UTC"))) == [("late", 1, "late-0")]


def test_only_missing_active_institutions_are_chased():
    chased = notices(
        at(6),
        institution("MISSING"),
        institution("SUBMITTED", submitted=True),
        institution("GONE", active=False),
    )
    assert [n.institution.code for n in chased] == ["MISSING"]


def test_an_extension_moves_lateness_and_brings_fresh_reminders():
    extended = institution("EXT", deadline=DEADLINE + timedelta(days=7))  # until the 12th
    plain = institution("PLAIN")
    due = {n.institution.code: n for n in notices(at(9), plain, extended)}
    assert due["PLAIN"].kind == "late" and due["PLAIN"].days == 4
    assert due["EXT"].kind == "reminder" and due["EXT"].days == 3
    # The key names the deadline: a reminder for the new deadline is not the one sent for the old.
    before = {n.institution.code: n.key for n in notices(at(2), plain, extended)}
    assert "2023-12-12T17:00:00+07:00" in due["EXT"].key and due["EXT"].key != before["PLAIN"]
    assert notices(at(13), extended)[0].kind == "late"


def test_no_reminders_configured_means_none_before_the_deadline():
    none_before = Chase((), late_every_days=1, late_until_days=2)
    assert kinds_and_slots(at(4), none_before) == []
    assert kinds_and_slots(at(7), none_before) == [("late", 2, "late-1")]
