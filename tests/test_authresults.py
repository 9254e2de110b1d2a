"""Authentication-Results read as RFC 8601 (pure): the parser, alignment, what counts for the From address,
several From addresses, and whom a receipt may reach."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailbot.config import LimitSettings, SecuritySettings
from mailbot.demo import samples
from mailbot.ingest.authenticity import aligned, evidence, problem
from mailbot.ingest.authresults import parse_header
from mailbot.ingest.parse import parse
from mailbot.models import AuthResult, RawMail
from mailbot.notify.receipts import Audience, audience

WHEN = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)
NQ = "thptngoquyen@haiphong.edu.vn"
MX = "mx.haiphong.edu.vn"
DMARC = SecuritySettings(require_auth="dmarc")
DKIM_OR_SPF = SecuritySettings(require_auth="dkim_or_spf")
OFF = SecuritySettings(require_auth="off")


def results(value: str) -> list[tuple[str, str, dict[str, str]]]:
    return [(r.method, r.result, dict(r.props)) for r in parse_header(value).results]


# --- the parser ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        # RFC 8601 appendix B
        ("example.com; none", []),
        ("example.com; spf=pass smtp.mailfrom=example.net", [("spf", "pass", {"smtp.mailfrom": "example.net"})]),
        (
            "example.com; auth=pass (cram-md5) smtp.auth=sender@example.net; spf=pass smtp.mailfrom=example.net",
            [("auth", "pass", {"smtp.auth": "sender@example.net"}), ("spf", "pass", {"smtp.mailfrom": "example.net"})],
        ),
        (
            "example.com; sender-id=fail header.from=example.com; dkim=pass (good signature) header.d=example.com",
            [("sender-id", "fail", {"header.from": "example.com"}), ("dkim", "pass", {"header.d": "example.com"})],
        ),
        ("example.com; iprev=pass policy.iprev=192.0.2.200", [("iprev", "pass", {"policy.iprev": "192.0.2.200"})]),
        # what Gmail writes
        (
            "mx.google.com; dkim=pass header.i=@haiphong.edu.vn header.s=s1 header.b=Ab+/c=; spf=pass (google.com: "
            "domain of a@haiphong.edu.vn designates 1.2.3.4 as permitted sender) smtp.mailfrom=a@haiphong.edu.vn; "
            "dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=haiphong.edu.vn",
            [
                ("dkim", "pass", {"header.i": "@haiphong.edu.vn", "header.s": "s1", "header.b": "Ab+/c="}),
                ("spf", "pass", {"smtp.mailfrom": "a@haiphong.edu.vn"}),
                ("dmarc", "pass", {"header.from": "haiphong.edu.vn"}),
            ],
        ),
        # what Microsoft 365 writes (action= is not RFC 8601: skipped, the properties after it still read)
        (
            "spf.protection.outlook.com; spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=contoso.com; dkim=pass (signature "
            "was verified) header.d=contoso.com;dmarc=pass action=none header.from=contoso.com;compauth=pass reason=100",
            [
                ("spf", "pass", {"smtp.mailfrom": "contoso.com"}),
                ("dkim", "pass", {"header.d": "contoso.com"}),
                ("dmarc", "pass", {"header.from": "contoso.com"}),
                ("compauth", "pass", {}),
            ],
        ),
        # versions, spaces around "=", quoted values, upper case
        (
            'example.com 1; dkim / 1 = pass reason = "good; fine" header.d = a.example',
            [("dkim", "pass", {"header.d": "a.example"})],
        ),
        (
            'example.com; SPF=PASS smtp.mailfrom="a b"@x.example',
            [("spf", "pass", {"smtp.mailfrom": '"a b"@x.example'})],
        ),
    ],
)
def test_rfc_8601_values_as_servers_write_them(value, expected):
    assert results(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        # the issue's case: a sender-chosen envelope address that looks like a result
        f"{MX}; spf=fail smtp.mailfrom=dmarc=pass@evil.example; dmarc=fail",
        # the same inside a quoted local part with a ";", inside a comment, inside a nested comment with an escaped ")"
        f'{MX}; spf=fail smtp.mailfrom="x;dmarc=pass"@evil.example; dmarc=fail',
        f"{MX}; spf=fail (domain of x;dmarc=pass@evil.example) smtp.mailfrom=evil.example; dmarc=fail",
        f"{MX}; spf=fail (a (b \\) ; dmarc=pass) c) smtp.mailfrom=evil.example; dmarc=fail",
        # an encoded-word copied from the envelope must not turn into a ";" (never RFC 2047-decoded)
        f"{MX}; spf=fail smtp.mailfrom==?utf-8?Q?x=3B_dmarc=3Dpass?=@evil.example; dmarc=fail",
        # results written after the properties of a resinfo are not results
        f"{MX}; spf=fail smtp.mailfrom=evil.example dmarc=pass; dmarc=fail header.from=haiphong.edu.vn dmarc=pass",
    ],
)
def test_a_result_is_read_only_where_a_resinfo_starts(value):
    dmarc = [(m, r) for m, r, _ in results(value) if m == "dmarc"]
    assert dmarc == [("dmarc", "fail")]


def test_a_malformed_resinfo_is_dropped_alone_and_unterminated_text_swallows_nothing_into_results():
    assert results(f"{MX}; spf=pass smtp.mailfrom=a.vn; ; =pass; dmarc; dkim=pass header.d=a.vn") == [
        ("spf", "pass", {"smtp.mailfrom": "a.vn"}),
        ("dkim", "pass", {"header.d": "a.vn"}),
    ]
    assert [m for m, _, _ in results(f"{MX}; spf=fail (unclosed; dmarc=pass")] == ["spf"]
    assert [m for m, _, _ in results(f'{MX}; spf=fail smtp.mailfrom="unclosed; dmarc=pass')] == ["spf"]
    assert parse_header('"quoted id" ; dmarc=fail').authserv_id == "quoted id"
    assert parse_header("").results == () and parse_header("").authserv_id == ""


# --- what counts for the From address -----------------------------------------------------------------


def mail(authentication_results: list[str], sender: str = NQ, from_header: str | None = None):  # type: ignore[no-untyped-def]
    raw = samples.make_email(sender=sender, sender_name="", subject="Báo cáo", body="x", attachments=[])
    if from_header is not None:
        raw = raw.replace(f"From: {sender}\r\n".encode(), f"From: {from_header}\r\n".encode(), 1)
    raw = b"".join(f"Authentication-Results: {v}\r\n".encode() for v in authentication_results) + raw
    return parse(RawMail("t", 0, "1", WHEN, raw), LimitSettings())


@pytest.mark.parametrize(
    "checked, sender, expected",
    [
        ("haiphong.edu.vn", "haiphong.edu.vn", True),
        ("mail.haiphong.edu.vn", "haiphong.edu.vn", True),
        ("haiphong.edu.vn", "thpt.haiphong.edu.vn", True),
        ("edu.vn", "haiphong.edu.vn", True),  # simplified: no Public Suffix List (see aligned())
        ("vn", "haiphong.edu.vn", False),
        ("evil.example", "haiphong.edu.vn", False),
        ("xhaiphong.edu.vn", "haiphong.edu.vn", False),
        ("a.haiphong.edu.vn", "b.haiphong.edu.vn", False),
        ("", "haiphong.edu.vn", False),
    ],
)
def test_alignment(checked, sender, expected):
    assert aligned(checked, sender) is expected


def test_the_issues_forged_pass_is_held():
    forged = mail([f"{MX}; spf=fail smtp.mailfrom=dmarc=pass@evil.example; dmarc=fail"])
    assert "DMARC" in problem(forged, DMARC) and not evidence(forged, DMARC).authentic


def test_a_comment_left_open_by_a_copied_address_fails_closed():
    # The sender chooses the envelope address; the server copies it into a comment. An unbalanced "(" in it
    # swallowed the dmarc=fail that followed, and the forged message counted for the school.
    swallowed = (
        f'{MX}; dkim=none; spf=softfail (domain of "a(b"@evil.example does not designate 192.0.2.1) '
        f'smtp.mailfrom="a(b"@evil.example; dmarc=fail (p=NONE) header.from=haiphong.edu.vn'
    )
    assert parse_header(swallowed).malformed
    forged = mail([swallowed])
    assert "cắt dở" in problem(forged, DMARC) and problem(forged, DKIM_OR_SPF)
    assert not evidence(forged, DMARC).authentic
    balanced = mail([swallowed.replace('"a(b"', '"ab"')])
    assert not parse_header(swallowed.replace('"a(b"', '"ab"')).malformed
    assert "DMARC" in problem(balanced, DMARC)  # the same header, readable: held for its dmarc=fail
    assert problem(forged, SecuritySettings(require_auth="off")) == ""


def test_a_dmarc_pass_for_another_domain_is_not_a_pass_for_the_sender():
    other = mail([f"{MX}; spf=pass smtp.mailfrom=evil.example; dmarc=pass header.from=evil.example"])
    assert "evil.example" in problem(other, DMARC)
    assert problem(other, DKIM_OR_SPF) and not evidence(other, DMARC).authentic
    own = mail([f"{MX}; spf=pass smtp.mailfrom=haiphong.edu.vn; dmarc=pass header.from=haiphong.edu.vn"])
    assert problem(own, DMARC) == "" and evidence(own, DMARC).authentic


@pytest.mark.parametrize(
    "value, authentic",
    [
        (f"{MX}; spf=pass smtp.mailfrom=bounce@mail.haiphong.edu.vn; dmarc=none", True),
        (f"{MX}; dkim=pass header.d=haiphong.edu.vn; spf=softfail smtp.mailfrom=x@evil.example", True),
        (f"{MX}; dkim=fail header.d=haiphong.edu.vn; dkim=pass header.i=@haiphong.edu.vn", True),
        (f"{MX}; spf=pass smtp.mailfrom=x@evil.example; dkim=pass header.d=evil.example", False),  # not aligned
        (f"{MX}; spf=pass; dkim=pass; dmarc=pass", False),  # a pass for no named domain is a pass for nobody
        (f"{MX}; spf=pass smtp.mailfrom=haiphong.edu.vn; dmarc=fail header.from=haiphong.edu.vn", False),
    ],
)
def test_spf_and_dkim_count_only_aligned_with_the_from_domain(value, authentic):
    got = mail([value])
    assert evidence(got, DKIM_OR_SPF).authentic is authentic
    assert (problem(got, DKIM_OR_SPF) == "") is authentic


def test_only_our_servers_header_is_believed():
    forged_below = [f"{MX}; spf=none; dmarc=none", f"{MX}; dmarc=pass header.from=haiphong.edu.vn"]
    assert not evidence(mail(forged_below), DMARC).authentic  # the topmost header of our server that records dmarc
    foreign_top = ["evil.example; dmarc=pass header.from=haiphong.edu.vn", f"{MX}; dmarc=fail"]
    assert "DMARC" in problem(mail(foreign_top), SecuritySettings(authserv_id=MX))
    assert evidence(mail(foreign_top), SecuritySettings(authserv_id=MX)).recorded
    assert not evidence(
        mail(["evil.example; dmarc=pass header.from=haiphong.edu.vn"]), SecuritySettings(authserv_id=MX)
    ).recorded
    assert not evidence(mail([]), DMARC).recorded and problem(mail([]), DMARC) == ""


@pytest.mark.parametrize(
    "from_header",
    [
        f"{NQ}, lures@evil.example",
        f"Trường THPT Ngô Quyền <{NQ}>, <lures@evil.example>",
        f"Nhóm: {NQ}, lures@evil.example;",
    ],
)
def test_a_from_with_several_addresses_is_never_believed(from_header):
    got = mail([f"{MX}; dmarc=pass header.from=haiphong.edu.vn"], from_header=from_header)
    assert got.several_senders and "nhiều địa chỉ" in problem(got, OFF)
    assert not evidence(got, DMARC).authentic and audience(got, {NQ}, DMARC) is None


def test_two_from_fields_count_as_several_addresses_and_names_never_do():
    raw = samples.make_email(sender=NQ, sender_name="", subject="x", body="x", attachments=[])
    two = parse(RawMail("t", 0, "1", WHEN, b"From: lures@evil.example\r\n" + raw), LimitSettings())
    assert two.from_addresses == ("lures@evil.example", NQ) and two.several_senders
    for name in (
        '"Trường A, THCS" <a@x.vn>',
        "=?utf-8?Q?b@y.vn,_c@z.vn?= <a@x.vn>",
        "Trường A, THCS <a@x.vn>",
        "A <a@x.vn>, a@X.VN",
    ):
        assert not mail([], sender="a@x.vn", from_header=name).several_senders, name


# --- whom a receipt may reach -------------------------------------------------------------------------


def test_whom_a_receipt_may_reach():
    roster = {NQ}
    assert audience(mail([]), roster, DMARC) is Audience.ROSTER
    assert (
        audience(mail([f"{MX}; spf=softfail smtp.mailfrom=haiphong.edu.vn; dmarc=none"]), roster, DMARC)
        is Audience.ROSTER
    )
    assert audience(mail([f"{MX}; dmarc=fail header.from=haiphong.edu.vn"]), roster, DMARC) is None
    stranger = "hieutruong@gmail.example"
    assert audience(mail([], sender=stranger), roster, DMARC) is Audience.UNVERIFIED
    assert (
        audience(mail([f"{MX}; dmarc=pass header.from=gmail.example"], sender=stranger), roster, OFF)
        is Audience.VERIFIED
    )
    assert audience(mail([f"{MX}; spf=softfail smtp.mailfrom=gmail.example"], sender=stranger), roster, OFF) is None
    assert audience(mail([f"{MX}; dmarc=fail"], sender=stranger), roster, OFF) is None


def test_auth_result_props_are_looked_up_by_name():
    result = AuthResult("dkim", "pass", (("header.d", "a.vn"), ("header.d", "b.vn")))
    assert result.prop("header.d") == "a.vn" and result.prop("header.i") == ""
