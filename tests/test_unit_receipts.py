"""receipts.ack_kind, the acknowledgement rule, and receipts.audience, whom a receipt may reach (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from mailbot.config import SecuritySettings
from mailbot.models import (
    Attachment,
    AuthHeader,
    AuthResult,
    Campaign,
    FileKind,
    IdentifiedBy,
    InboundMail,
    Institution,
    Notice,
    State,
    Verdict,
    WarningCode,
)
from mailbot.notify.receipts import Audience, ack_kind, audience, too_large

VN = timezone(timedelta(hours=7))
NQ = Institution("THPT-NQ", "Trường THPT Ngô Quyền", "THPT", ("thptngoquyen@haiphong.edu.vn",))
OWN = {"gdtx@haiphong.edu.vn"}
WORD = Attachment("bao-cao.docx", FileKind.DOCX, b"x")
PDF = Attachment("scan.pdf", FileKind.PDF, b"x")
CAMPAIGN = Campaign("antq-2023", "Báo cáo ANTQ", datetime(2023, 12, 5, 17, tzinfo=VN))
IDENTIFIED = Verdict(NQ, IdentifiedBy.ADDRESS, CAMPAIGN, state=State.SUBMISSION)
UNKNOWN = Verdict(None, None, None, reason="không nhận ra đơn vị gửi", state=State.REVIEW)


def mail(sender: str = NQ.emails[0], files: tuple[Attachment, ...] = (WORD,), **more: object) -> InboundMail:
    return replace(InboundMail(sender, "", "Báo cáo", "<m@x>", datetime(2023, 12, 1, 9, tzinfo=VN), files), **more)


@pytest.mark.parametrize(
    ("state", "verdict", "files", "expected"),
    [
        (State.SUBMISSION, IDENTIFIED, (WORD,), "ack"),
        (State.SUBMISSION, replace(IDENTIFIED, identified_by=IdentifiedBy.NAME), (WORD,), "ack"),
        (State.NO_REPORT, IDENTIFIED, (PDF,), "ack_no_report"),
        (State.NO_REPORT, UNKNOWN, (PDF,), None),  # nobody to ask for the Word file
        (State.REVIEW, UNKNOWN, (WORD,), "ack_review"),
        (State.REVIEW, IDENTIFIED, (WORD,), "ack_review"),  # a roster address held because the campaign is unclear
        (State.REVIEW, UNKNOWN, (PDF,), None),  # held without a Word file: nothing
        (State.REVIEW, UNKNOWN, (), None),
        (State.ERROR, UNKNOWN, (WORD,), None),
        (State.DUPLICATE, IDENTIFIED, (WORD,), None),
        (State.BOUNCE, UNKNOWN, (), None),
    ],
)
def test_the_receipt_follows_the_state(state, verdict, files, expected):
    assert ack_kind(mail(files=files), replace(verdict, state=state), OWN) == expected


@pytest.mark.parametrize(
    "machine",
    [
        {"auto_markers": ("auto-submitted: auto-replied",)},
        {"sender": ""},
        {"sender": "gdtx@haiphong.edu.vn"},  # ourselves
    ],
)
def test_never_to_a_machine_nor_to_ourselves(machine):
    assert ack_kind(mail(**machine), IDENTIFIED, OWN) is None


def test_too_large_only_to_a_known_institution():
    big = mail(files=(), warnings=(Notice(WarningCode.MESSAGE_TOO_LARGE, "73400320"),))
    assert too_large(big) == 73400320 and too_large(mail()) == 0
    assert ack_kind(big, replace(IDENTIFIED, state=State.REVIEW), OWN) == "too_large"
    assert ack_kind(big, UNKNOWN, OWN) is None


def header(*results: AuthResult, server: str = "mx.haiphong.edu.vn") -> tuple[AuthHeader, ...]:
    return (AuthHeader(server, results),)


DMARC_PASS = AuthResult("dmarc", "pass", (("header.from", "gmail.com"),))
DMARC_FAIL = AuthResult("dmarc", "fail", (("header.from", "gmail.com"),))
ROSTER = {NQ.emails[0]}
SECURITY = SecuritySettings()


def test_a_roster_address_gets_its_receipt():
    assert audience(mail(), ROSTER, SECURITY) is Audience.ROSTER


def test_off_the_roster_authentic_verified_unknown_capped_failed_nothing():
    stranger = "someone@gmail.com"
    assert audience(mail(stranger, auth_headers=header(DMARC_PASS)), ROSTER, SECURITY) is Audience.VERIFIED
    assert audience(mail(stranger), ROSTER, SECURITY) is Audience.UNVERIFIED  # the server recorded nothing
    assert audience(mail(stranger, auth_headers=header(DMARC_FAIL)), ROSTER, SECURITY) is None


def test_several_from_addresses_get_nothing_even_from_the_roster():
    forged = mail(from_addresses=(NQ.emails[0], "other@gmail.com"))
    assert audience(forged, ROSTER, SECURITY) is None
