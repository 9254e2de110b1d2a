"""Lateness: the deadline to the second, extensions, the window in which mail is still taken (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailbot.config import late_limit
from mailbot.ingest.identify import Roster, identify, is_late
from mailbot.models import Campaign, InboundMail, Institution
from mailbot.reports.status import InstitutionStatus, Submission

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2023, 12, 5, 17, 0, tzinfo=VN)
CAMPAIGN = Campaign("antq-2023", "Báo cáo ANTQ", DEADLINE, opens=datetime(2023, 11, 1, tzinfo=VN))
NQ = Institution("THPT-NQ", "Trường THPT Ngô Quyền", "THPT", ("thptngoquyen@haiphong.edu.vn",))
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("arrived", "late"),
    [
        (DEADLINE - SECOND, False),
        (DEADLINE, False),  # 17:00:00 is on time for 17:00
        (DEADLINE + SECOND, True),  # 17:00:01 is late
        (DEADLINE.astimezone(UTC), False),  # the same instant in another zone
        (datetime(2023, 12, 5, 10, 0, 1, tzinfo=UTC), True),
    ],
)
def test_late_means_after_the_deadline_to_the_second(arrived, late):
    assert is_late(CAMPAIGN, arrived) is late


def test_an_extension_replaces_the_deadline_both_ways():
    later, earlier = DEADLINE + timedelta(days=3), DEADLINE - timedelta(days=1)
    assert not is_late(CAMPAIGN, DEADLINE + timedelta(days=2), later)
    assert is_late(CAMPAIGN, later + SECOND, later)
    assert is_late(CAMPAIGN, DEADLINE, earlier)  # the extension is the deadline, not a bonus on top


def verdict(arrived: datetime, extensions: dict[tuple[str, str], datetime] | None = None):  # type: ignore[no-untyped-def]
    mail = InboundMail(NQ.emails[0], "", "Báo cáo", "<m@x>", arrived)
    return identify(mail, Roster.of((NQ,)), (CAMPAIGN,), extensions)


def test_identify_applies_the_institution_s_own_extension():
    assert verdict(DEADLINE + SECOND).late
    own = {("antq-2023", "THPT-NQ"): DEADLINE + timedelta(days=1)}
    assert not verdict(DEADLINE + SECOND, own).late
    assert verdict(DEADLINE + SECOND, {("antq-2023", "OTHER"): DEADLINE + timedelta(days=1)}).late


def test_mail_is_taken_from_opening_until_the_late_limit():
    limit = late_limit(CAMPAIGN)
    assert limit == DEADLINE + timedelta(days=60)
    assert verdict(limit).campaign_id == "antq-2023" and verdict(limit).late
    assert verdict(limit + SECOND).campaign_id is None
    assert verdict(CAMPAIGN.opens).campaign_id == "antq-2023"  # type: ignore[arg-type]
    assert verdict(CAMPAIGN.opens - SECOND).campaign_id is None  # type: ignore[operator]


def status_of(first: datetime | None, deadline: datetime = DEADLINE) -> str:
    subs = () if first is None else (Submission(1, "<m@x>", "a@x.vn", "BC", first, "address", False, (), ()),)
    return InstitutionStatus("X", "X", "THPT", subs, deadline).status


def test_the_status_follows_the_first_submission_and_the_institution_s_deadline():
    assert status_of(None) == "missing"
    assert status_of(DEADLINE) == "on_time"
    assert status_of(DEADLINE + SECOND) == "late"
    assert status_of(DEADLINE + SECOND, deadline=DEADLINE + timedelta(days=1)) == "on_time"
