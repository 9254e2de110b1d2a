"""Staff corrections end to end (#12 item 5): assigning a held message when two campaigns are open, dismissing one
(and undoing it), confirming or rejecting a submission recognised only by name, removing an extension. Real Dovecot,
real SMTP server, `python -m mailbot` subprocesses on one data folder."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from mailbot import store
from mailbot.demo import samples
from tests.conftest import Workspace, make_workspace
from tests.test_notify import smtp_section

STRANGER = "hoa.nguyen1987@yahoo.com"
# After the first campaign's deadline (5 Dec 17:00), before the second's (10 Dec 17:00): late or not depends on
# the campaign the message is assigned to.
AFTER_FIRST_DEADLINE = datetime(2023, 12, 7, 2, 0, tzinfo=UTC)
ON_TIME = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)
SECOND_CAMPAIGN = """
[[campaign]]
id = "thidua-2023"
title = "Báo cáo tổng kết công tác thi đua, khen thưởng năm 2023"
opens = 2023-11-01T00:00:00
deadline = 2023-12-10T17:00:00
keywords = ["thi đua"]
"""


def stranger_mail() -> bytes:
    """A report from an address off the roster that names no institution of the roster: held for staff."""
    return samples.make_email(
        sender=STRANGER,
        sender_name=None,
        subject="gửi báo cáo",
        body="Em gửi báo cáo ạ.",
        attachments=[("Bao cao.docx", samples.make_report_docx("Trường Mầm non Hoa Sen"), "application/octet-stream")],
    )


def named_mail() -> bytes:
    """A report from a personal address, recognised by the school's name in the subject and the heading."""
    return samples.make_email(
        sender="thanhhuong.vp85@gmail.com",
        sender_name="Thanh Hương",
        subject="THPT Ngô Quyền gửi báo cáo ANTQ 2023",
        body="Kính gửi Sở.",
        attachments=[("bao-cao.docx", samples.make_report_docx("Trường THPT Ngô Quyền"), "application/octet-stream")],
    )


@pytest.fixture
def sink_ws(tmp_path, dovecot, smtp_sink, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)

    def make(extra: str = "", notify: str = "") -> Workspace:
        return make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink, notify=notify) + extra)

    return make, dovecot, smtp_sink


def institution(ws: Workspace, code: str, campaign: str | None = None) -> dict:  # type: ignore[type-arg]
    args = ("status", "--json") + (("--campaign", campaign) if campaign else ())
    return next(i for i in json.loads(ws.cli(*args).stdout)["institutions"] if i["code"] == code)


def actions(ws: Workspace) -> list[tuple[str, str, str]]:
    a = store.actions
    with ws.engine().connect() as conn:
        rows = conn.execute(
            select(a.c.action, a.c.actor, a.c.detail).where(a.c.action.not_in(("roster_import", "campaign_import")))
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_assign_to_the_second_of_two_open_campaigns(sink_ws):  # type: ignore[no-untyped-def]
    make, dovecot, sink = sink_ws
    ws = make(extra=SECOND_CAMPAIGN)
    dovecot.append(stranger_mail(), AFTER_FIRST_DEADLINE)
    ws.cli("run", "--once")
    (held,) = ws.status()["review"]
    assert [c.message["X-Mailbot-Kind"] for c in sink.wait_for(1)] == ["ack_review"]
    sink.clear()

    # two campaigns open, none named: a clear error listing both, and nothing changes
    ambiguous = ws.cli("review", "assign", held["message_id"], "THPT-TPH", check=False)
    assert ambiguous.returncode == 1 and ambiguous.stderr.count("\n") == 1 and "Traceback" not in ambiguous.stderr
    assert ambiguous.stderr.startswith("error: several campaigns are open for THPT-TPH; name one with --campaign:")
    assert "antq-2023 (Báo cáo sơ kết" in ambiguous.stderr and "thidua-2023 (Báo cáo tổng kết" in ambiguous.stderr
    unknown = ws.cli("review", "assign", held["message_id"], "THPT-TPH", "--campaign", "thidua-2024", check=False)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: no campaign 'thidua-2024' (known: ") and unknown.stderr.count("\n") == 1
    assert "antq-2023" in unknown.stderr and "thidua-2023" in unknown.stderr
    assert [r["message_id"] for r in ws.status()["review"]] == [held["message_id"]] and actions(ws) == []

    out = ws.cli(
        "review", "assign", held["message_id"], "THPT-TPH", "--campaign", "thidua-2023", "--by", "Nguyễn Thị Lan"
    ).stdout
    # on time for the second campaign, though after the first one's deadline
    assert "campaign thidua-2023;" in out and "(late)" not in out and "receipt (ack) queued" in out
    (receipt,) = sink.wait_for(1)
    assert receipt.rcpt_tos == (STRANGER,) and receipt.message["X-Mailbot-Kind"] == "ack"
    assert receipt.message["In-Reply-To"] == held["message_id"]
    text = receipt.message.get_body(("plain",)).get_content()
    assert "Báo cáo tổng kết công tác thi đua, khen thưởng năm 2023" in text and "Đúng hạn" in text
    mine = institution(ws, "THPT-TPH", "thidua-2023")
    assert mine["status"] == "on_time" and mine["identified_by"] == "staff"
    assert institution(ws, "THPT-TPH", "antq-2023")["status"] == "missing"
    assert ws.status()["review"] == []
    assert actions(ws) == [("assign", "Nguyễn Thị Lan", "THPT-TPH")]
    # the same command again: no second receipt
    ws.cli("review", "assign", held["message_id"], "THPT-TPH", "--campaign", "thidua-2023")
    time.sleep(0.5)
    assert len(sink.messages) == 1


def test_assign_refuses_a_campaign_that_does_not_ask_the_group(sink_ws):  # type: ignore[no-untyped-def]
    make, dovecot, _ = sink_ws
    ws = make(extra=SECOND_CAMPAIGN.replace('keywords = ["thi đua"]', 'groups = ["Đại học"]'))
    dovecot.append(stranger_mail(), ON_TIME)
    ws.cli("run", "--once")
    (held,) = ws.status()["review"]
    refused = ws.cli("review", "assign", held["message_id"], "THPT-TPH", "--campaign", "thidua-2023", check=False)
    assert refused.returncode == 1 and "campaign thidua-2023 does not concern group 'THPT'" in refused.stderr
    # only one campaign asks THPT schools: that one, without --campaign
    assert "campaign antq-2023" in ws.cli("review", "assign", held["message_id"], "THPT-TPH").stdout


def test_dismiss_and_undo(sink_ws):  # type: ignore[no-untyped-def]
    make, dovecot, sink = sink_ws
    ws = make()
    dovecot.append(stranger_mail(), ON_TIME)
    ws.cli("run", "--once")
    (held,) = ws.status()["review"]
    sink.wait_for(1)
    sink.clear()

    no_reason = ws.cli("review", "dismiss", held["message_id"], check=False)
    assert no_reason.returncode == 2 and "--reason is required" in no_reason.stderr
    out = ws.cli("review", "dismiss", held["message_id"], "--reason", "  thư   quảng cáo ", "--by", "Lan").stdout
    assert out.endswith("dismissed\n")
    assert ws.status()["review"] == []
    engine = ws.engine()
    m = store.messages
    with engine.connect() as conn:
        row = conn.execute(select(m).where(m.c.message_id == held["message_id"])).one()
        dismissal = conn.execute(select(store.dismissals)).one()
    assert row.state == "dismissed" and row.reason == held["reason"]  # kept, with why it was held
    assert (dismissal.reason, dismissal.prior_state, dismissal.actor) == ("thư quảng cáo", "review", "Lan")
    assert "was already dismissed" in ws.cli("review", "dismiss", held["message_id"], "--reason", "x").stdout

    assert "is back in the review queue" in ws.cli("review", "dismiss", held["message_id"], "--undo").stdout
    (back,) = ws.status()["review"]
    assert back["message_id"] == held["message_id"] and back["reason"] == held["reason"]
    assert [a[0] for a in actions(ws)] == ["dismiss", "undismiss"]
    time.sleep(0.5)
    assert sink.messages == []  # a dismissal sends nothing


def test_confirm_a_submission_identified_by_name_sends_its_receipt_once(sink_ws):  # type: ignore[no-untyped-def]
    make, dovecot, sink = sink_ws
    # no automatic reply to unverified strangers today: the school got no receipt when its report came in
    ws = make(notify="max_unknown_replies_per_day = 0")
    dovecot.append(named_mail(), ON_TIME)
    ws.cli("run", "--once")
    before = institution(ws, "THPT-NQ")
    assert before["status"] == "on_time" and before["identified_by"] == "name"
    time.sleep(0.5)
    assert sink.messages == []

    out = ws.cli("review", "confirm", "THPT-NQ", "--campaign", "antq-2023", "--by", "Lan").stdout
    assert out.startswith("THPT-NQ: 1 submission(s) for antq-2023 confirmed; 1 receipt(s) queued")
    (receipt,) = sink.wait_for(1)
    assert receipt.rcpt_tos == ("thanhhuong.vp85@gmail.com",) and receipt.message["X-Mailbot-Kind"] == "ack"
    assert "Đơn vị gửi: Trường THPT Ngô Quyền (THPT-NQ)" in receipt.message.get_body(("plain",)).get_content()
    after = institution(ws, "THPT-NQ")
    assert after["status"] == "on_time" and after["identified_by"] == "staff"
    assert [(a, by) for a, by, _ in actions(ws)] == [("confirm", "Lan")]
    again = ws.cli("review", "confirm", "THPT-NQ", "--campaign", "antq-2023", check=False)
    assert again.returncode == 1 and "has no submission for campaign antq-2023 identified by name only" in again.stderr
    time.sleep(0.5)
    assert len(sink.messages) == 1


def test_reject_returns_the_submission_to_review(sink_ws):  # type: ignore[no-untyped-def]
    make, dovecot, sink = sink_ws
    ws = make()
    dovecot.append(named_mail(), ON_TIME)
    ws.cli("run", "--once")
    (submission,) = institution(ws, "THPT-NQ")["submissions"]
    out = ws.cli("review", "reject", "THPT-NQ", "--campaign", "antq-2023").stdout
    assert "no longer counted for antq-2023, back in the review queue" in out
    assert institution(ws, "THPT-NQ")["status"] == "missing"
    (held,) = ws.status()["review"]
    assert held["message_id"] == submission["message_id"]
    assert held["reason"].startswith("cán bộ xác định thư không phải của Trường THPT Ngô Quyền (THPT-NQ)")
    archive = ws.settings().archive_dir
    with ws.engine().connect() as conn:
        (path,) = conn.execute(select(store.files.c.path).where(store.files.c.path != "")).scalars()
    assert path.startswith("_review/") and (archive / path).is_file()
    # staff then settle it from the queue like any held message
    assert "assigned to THPT-TPH" in ws.cli("review", "assign", held["message_id"], "THPT-TPH").stdout
    assert institution(ws, "THPT-TPH")["status"] == "on_time"


def test_extend_remove(sink_ws):  # type: ignore[no-untyped-def]
    make, dovecot, _ = sink_ws
    ws = make()
    dovecot.append(named_mail(), AFTER_FIRST_DEADLINE)
    ws.cli("run", "--once")
    assert institution(ws, "THPT-NQ")["status"] == "late"
    ws.cli("extend", "THPT-NQ", "--until", "2023-12-08T17:00")
    assert institution(ws, "THPT-NQ")["status"] == "on_time"
    out = ws.cli("extend", "THPT-NQ", "--remove", "--campaign", "antq-2023", "--by", "Lan").stdout
    assert out == "THPT-NQ: extension removed; deadline for antq-2023 is 2023-12-05T17:00:00+07:00\n"
    after = institution(ws, "THPT-NQ")
    assert after["status"] == "late" and after["deadline"] == "2023-12-05T17:00:00+07:00"
    with ws.engine().connect() as conn:
        assert conn.execute(select(store.extensions)).first() is None
        assert conn.execute(select(store.messages.c.late)).scalars().all() == [True]
    assert actions(ws)[-1][:2] == ("extend_remove", "Lan")
    again = ws.cli("extend", "THPT-NQ", "--remove", check=False)
    assert again.returncode == 1 and again.stderr == "error: THPT-NQ has no extension for campaign antq-2023\n"
    both = ws.cli("extend", "THPT-NQ", "--remove", "--until", "2023-12-08T17:00", check=False)
    assert both.returncode == 2 and "either --until DATETIME or --remove" in both.stderr
