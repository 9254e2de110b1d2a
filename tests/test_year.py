"""A school year as the department lives it, end to end against a real Dovecot and a real SMTP server with
`python -m mailbot` subprocesses: the autumn campaign from the configuration, a second campaign created by staff
for one group while the first still takes late reports, a report routed to the right one of the two, both closed,
then the roster replaced after the merger (district offices abolished, new schools added) and the next year's
campaign reminding only the active institutions of its groups."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from email.utils import getaddresses
from pathlib import Path

from mailbot.demo import samples
from tests.conftest import PASSWORD_ENV, Workspace, make_workspace, write_roster
from tests.test_notify import smtp_section


def hk1_report(name: str) -> bytes:
    return samples.make_report_docx(name, date=date(2024, 1, 10), title="Báo cáo sơ kết học kỳ I năm học 2023-2024")


def addressed(sink) -> set[str]:  # type: ignore[no-untyped-def]
    """Every address the sink's messages were sent to."""
    return {a.lower() for c in sink.messages for _, a in getaddresses([c.message["To"]])}


def emails_of(rows: list[dict], *, groups: set[str] | None = None) -> set[str]:  # type: ignore[type-arg]
    return {e for r in rows if groups is None or r["group"] in groups for e in r["emails"]}


def status(ws: Workspace, campaign: str) -> dict:  # type: ignore[type-arg]
    return json.loads(ws.cli("status", "--campaign", campaign, "--json").stdout)


def test_a_year_two_campaigns_a_merger_and_reminders_to_the_right_institutions(  # type: ignore[no-untyped-def]
    tmp_path: Path, dovecot, smtp_sink, monkeypatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    ws = make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink))
    rows = samples.load_demo_roster()
    ws.cli("run", "--once")  # the service's first pass: the roster file and the configured campaign imported

    # January: staff add a campaign for the high schools while antq-2023 still accepts late reports.
    ws.cli(
        "--now", "2024-01-02T08:00", "campaign", "add", "hk1-2024", "--title", "Báo cáo sơ kết học kỳ I",
        "--deadline", "2024-01-15T17:00", "--group", "THPT", "--keyword", "học kỳ I",
        "--plan", "Số 12/KH-SGDĐT ngày 02/01/2024",
    )  # fmt: skip
    school = next(r for r in rows if r["group"] == "THPT" and r["emails"])
    report = samples.make_email(
        sender=school["emails"][0],
        sender_name=school["name"],
        subject="Báo cáo sơ kết học kỳ I",
        body="Kính gửi Sở GDĐT, đơn vị gửi báo cáo sơ kết học kỳ I.",
        attachments=[("bao-cao-hk1.docx", hk1_report(school["name"]), samples.DOCX_TYPE)],
    )
    dovecot.append(report, datetime(2024, 1, 10, 2, 0, tzinfo=UTC))
    ws.cli("--now", "2024-01-10T09:05", "run", "--once")
    hk1 = {i["code"]: i for i in status(ws, "hk1-2024")["institutions"]}
    assert hk1[school["code"]]["status"] == "on_time"  # the keyword chose the second of the two open campaigns
    assert set(hk1) == {r["code"] for r in rows if r["group"] == "THPT"}

    smtp_sink.clear()
    ws.cli("--now", "2024-01-12T08:00", "remind")  # three days before hk1-2024's deadline
    thpt = emails_of(rows, groups={"THPT"})
    reminded = addressed(smtp_sink)
    assert reminded == thpt - set(school["emails"])  # the high schools only, not the one that sent its report
    assert all("Kế hoạch số 12/KH-SGDĐT" in c.message.get_body(("plain",)).get_content() for c in smtp_sink.messages)

    ws.cli("--now", "2024-02-10T08:00", "campaign", "close", "antq-2023")
    ws.cli("--now", "2024-02-10T08:00", "campaign", "close", "hk1-2024")

    # July 2025: the merger. The district offices are abolished; schools of the other province join.
    offices = {r["code"] for r in rows if r["group"] == "Phòng GDĐT"}
    newcomers = [
        {
            "code": "THPT-HD1",
            "name": "Trường THPT Nguyễn Trãi",
            "group": "THPT",
            "emails": ["thptnguyentrai@hd.edu.vn"],
        },
        {"code": "THPT-HD2", "name": "Trường THPT Hồng Quang", "group": "THPT", "emails": ["thpthongquang@hd.edu.vn"]},
    ]
    after_merger = [r for r in rows if r["code"] not in offices] + newcomers
    write_roster(tmp_path / "danh-sach-2025.csv", after_merger)
    ws.cli("--now", "2025-07-01T08:00", "roster", "import", str(tmp_path / "danh-sach-2025.csv"), "--replace")

    ws.cli(
        "--now", "2025-11-01T08:00", "campaign", "add", "antq-2025", "--title", "Báo cáo công tác ANTQ năm 2025",
        "--deadline", "2025-12-05T17:00",
    )  # fmt: skip
    smtp_sink.clear()
    ws.cli("--now", "2025-12-02T08:00", "remind")
    assert addressed(smtp_sink) == emails_of(after_merger)  # every active institution, no abolished office
    assert not addressed(smtp_sink) & emails_of([r for r in rows if r["code"] in offices])

    year = status(ws, "antq-2025")["institutions"]
    assert {i["code"] for i in year} == {r["code"] for r in after_merger}
    old = {i["code"]: i for i in status(ws, "hk1-2024")["institutions"]}
    assert old[school["code"]]["status"] == "on_time"  # a closed campaign keeps its record
    listing = {c["id"]: c for c in json.loads(ws.cli("campaign", "list", "--json").stdout)}
    assert listing["antq-2023"]["closed"] and listing["hk1-2024"]["closed"] and not listing["antq-2025"]["closed"]
