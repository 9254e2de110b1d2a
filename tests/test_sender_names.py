"""The sender's address survives whatever the display name holds (the crash test found schools whose receipt was lost)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailbot.config import LimitSettings
from mailbot.demo import samples
from mailbot.ingest.parse import parse
from mailbot.models import RawMail

ROWS = [r for r in samples.load_demo_roster() if r["emails"]]
WHEN = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)


def sender_of(raw: bytes) -> tuple[str, str]:
    mail = parse(RawMail("test", 0, "1", WHEN, raw), LimitSettings())
    return mail.sender, mail.sender_name


@pytest.mark.parametrize("row", ROWS, ids=[r["code"] for r in ROWS])
def test_every_roster_sender_is_read_with_its_name_as_mail_clients_write_it(row):
    # Gmail and Outlook write a non-ASCII display name as one RFC 2047 encoded-word; a name such as
    # "Trường Tiểu học, THCS và THPT Edison" holds a comma once decoded.
    raw = samples.make_email(
        sender=row["emails"][0], sender_name=row["name"], subject="Báo cáo", body="x", attachments=[]
    )
    assert sender_of(raw) == (row["emails"][0], row["name"])


@pytest.mark.parametrize(
    "header",
    [
        "=?utf-8?B?VHLGsOG7nW5nIFRp4buDdSBo4buNYywgVEhDUyB2w6AgVEhQVCBFZGlzb24=?= <ptedison@haiphong.edu.vn>",
        "=?utf-8?Q?Tr=C6=B0=E1=BB=9Dng_Ti=E1=BB=83u_h=E1=BB=8Dc=2C_THCS_v=C3=A0_THPT_Edison?= <ptedison@haiphong.edu.vn>",
        '"Trường Tiểu học, THCS và THPT Edison" <ptedison@haiphong.edu.vn>',
        "=?utf-8?B?PGV2aWxAZXhhbXBsZS5jb20+?= <ptedison@haiphong.edu.vn>",  # the name is "<evil@example.com>"
    ],
)
def test_an_encoded_display_name_never_changes_the_address(header):
    raw = (f"From: {header}\r\nTo: gdtx@haiphong.edu.vn\r\nSubject: x\r\nMessage-ID: <n@x>\r\n\r\nbody\r\n").encode()
    assert sender_of(raw)[0] == "ptedison@haiphong.edu.vn"


@pytest.mark.parametrize(
    "name",
    [
        "=?utf-8?Q?thptngoquyen@haiphong.edu.vn?=",
        "=?utf-8?B?PHRocHRuZ29xdXllbkBoYWlwaG9uZy5lZHUudm4+?=",  # "<thptngoquyen@haiphong.edu.vn>"
        '"thptngoquyen@haiphong.edu.vn"',
    ],
)
def test_the_address_in_angle_brackets_is_the_sender_whatever_the_name_holds(name):
    """Display names never identify a sender (issue 6), and never replace the real address either."""
    raw = (
        f"From: {name} <stranger@gmail.com>\r\nTo: gdtx@haiphong.edu.vn\r\nSubject: x\r\n"
        "Message-ID: <s@x>\r\n\r\nbody\r\n"
    ).encode()
    assert sender_of(raw)[0] == "stranger@gmail.com"
