"""Receipts, reminders, late notices and the digest, from a real Dovecot to a real SMTP server."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from mailbot.demo import samples
from tests.conftest import make_workspace

STAFF = "truongphong@haiphong.edu.vn"


def smtp_section(sink, *, extra: str = "", notify: str = "") -> str:  # type: ignore[no-untyped-def]
    return f"""
[outbox]
kind = "smtp"
host = "{sink.host}"
port = {sink.port}
security = "plain"
from = "Phòng GDTX&ĐH - Sở GDĐT Hải Phòng <gdtx@haiphong.edu.vn>"
{extra}

[notify]
staff = ["{STAFF}"]
reminders_before_days = [7, 3, 1]
late_every_days = 2
late_until_days = 10
{notify}
"""


@pytest.fixture
def setup(tmp_path, dovecot, smtp_sink, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    ws = make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink))
    return ws, dovecot, smtp_sink


def machine_mail() -> dict[str, bytes]:
    report = [("bc.docx", samples.make_report_docx("Trường THPT Thái Phiên"), "application/octet-stream")]
    school = "thptthaiphien@haiphong.edu.vn"
    base = {"sender_name": "", "subject": "Báo cáo", "body": "x", "attachments": report}
    return {
        "auto-reply": samples.make_email(sender=school, extra_headers={"Auto-Submitted": "auto-replied"}, **base),
        "out-of-office": samples.make_email(
            sender=school, extra_headers={"X-Autoreply": "yes", "Precedence": "bulk"}, **base
        ),
        "list": samples.make_email(sender=school, extra_headers={"List-Id": "<gv.haiphong.edu.vn>"}, **base),
        "noreply": samples.make_email(sender="no-reply@moet.gov.vn", **base),
        "ourselves": samples.make_email(sender="gdtx@haiphong.edu.vn", **base),
    }


def test_receipts_one_per_human_submission_in_thread_none_to_machines(setup):
    ws, dovecot, sink = setup
    cases = samples.demo_cases(samples.load_demo_roster())
    for case in cases:
        dovecot.append(case.raw, case.arrival)
    for raw in machine_mail().values():
        dovecot.append(raw, cases[0].arrival)
    ws.cli("run", "--once")
    got = sink.wait_for(len(cases))
    assert len(got) == len(cases)  # every demo message is from a person: submission, no-report or review receipt
    by_reply = {c.message["In-Reply-To"]: c for c in got}
    on_roster = {a for r in samples.load_demo_roster() for a in r["emails"]}
    for case in cases:
        receipt = by_reply[case.message_id]
        msg = receipt.message
        # the sender's subject is quoted only to a roster address (no backscatter, issue 10)
        assert msg["Subject"].startswith("Re: ") == (receipt.rcpt_tos[0] in on_roster)
        assert case.message_id in msg["References"]
        assert msg["Auto-Submitted"] == "auto-replied" and msg["X-Auto-Response-Suppress"] == "All"
        text = msg.get_body(("plain",)).get_content()
        assert "Số biên nhận" in text or "số biên nhận" in text
        if case.expect and case.files:
            assert ("Nộp muộn" in text) == case.late
            for name in case.files:
                assert name in text
    machines = {"no-reply@moet.gov.vn", "gdtx@haiphong.edu.vn", "thptthaiphien@haiphong.edu.vn"}
    assert not machines & {r for c in got for r in c.rcpt_tos}
    ws.cli("run", "--once")
    assert len(sink.messages) == len(got)  # a second run sends nothing new


def test_reminders_go_exactly_to_the_missing_once_per_slot(setup):
    ws, dovecot, sink = setup
    for case in samples.demo_cases(samples.load_demo_roster()):
        dovecot.append(case.raw, case.arrival)
    ws.cli("run", "--once")
    sink.clear()
    status = ws.status()
    missing = {i["code"] for i in status["institutions"] if i["status"] == "missing"}
    roster = {r["code"]: r["emails"] for r in samples.load_demo_roster()}
    with_address = {c for c in missing if roster[c]}

    ws.cli("--now", "2023-12-02T08:00", "remind")
    got = sink.wait_for(len(with_address))
    assert {tuple(sorted(c.rcpt_tos)) for c in got} == {tuple(sorted(roster[c])) for c in with_address}
    assert all(c.message["Auto-Submitted"] == "auto-generated" for c in got)
    assert "còn 3 ngày" in got[0].message.get_body(("plain",)).get_content()
    out = ws.cli("--now", "2023-12-02T15:00", "remind")  # same day again: nothing new
    assert "chờ gửi" not in out.stdout and len(sink.messages) == len(with_address)

    sink.clear()
    ws.cli("--now", "2023-12-06T08:00", "remind")  # the day after the deadline: late notices
    late = sink.wait_for(len(with_address))
    assert all(c.message["Subject"].startswith("V/v đôn đốc gửi báo cáo (đã quá hạn): ") for c in late)
    ws.cli("--now", "2023-12-07T08:00", "remind")  # late_every_days = 2: not again the next day
    assert len(sink.messages) == len(with_address)
    ws.cli("--now", "2023-12-08T08:00", "remind")
    assert len(sink.wait_for(2 * len(with_address))) == 2 * len(with_address)


def test_extension_moves_lateness_and_brings_fresh_reminders(setup):
    ws, dovecot, sink = setup
    ws.cli("run", "--once")
    sink.clear()
    out = ws.cli(
        "--now", "2023-12-06T09:00",
        "extend", "THPT-TPH", "--until", "2023-12-10T17:00", "--reason", "nhà trường xin gia hạn", "--by", "cán bộ A",
    )  # fmt: skip
    (told,) = sink.wait_for(1)  # the school is told at once, to its roster address
    assert "thptthaiphien@haiphong.edu.vn" in told.rcpt_tos and "told by email" in out.stdout
    assert told.message["Subject"].startswith("Gia hạn nộp báo cáo: ")
    text = told.message.get_body(("plain",)).get_content()
    assert "cho quý đơn vị đến 17:00 ngày 10/12/2023 (lý do: nhà trường xin gia hạn)" in text
    assert "chưa nhận được" in text and "trước thời hạn nêu trên" in text  # what it still owes
    ws.cli("extend", "THPT-TPH", "--until", "2023-12-10T17:00", "--no-notify")  # the same again, and not asked
    assert len(sink.messages) == 1
    sink.clear()
    ws.cli("--now", "2023-12-07T08:00", "remind")
    got = sink.wait_for(1)
    to_thai_phien = [c for c in got if "thptthaiphien@haiphong.edu.vn" in c.rcpt_tos]
    assert len(to_thai_phien) == 1 and to_thai_phien[0].message["Subject"].startswith("Nhắc gửi báo cáo")
    late_doc = samples.make_email(
        sender="thptthaiphien@haiphong.edu.vn",
        sender_name="",
        subject="Báo cáo",
        body="x",
        attachments=[("bc.docx", samples.make_report_docx("Trường THPT Thái Phiên"), "application/octet-stream")],
    )
    dovecot.append(late_doc, datetime(2023, 12, 8, 2, 0, tzinfo=UTC))
    ws.cli("run", "--once")
    inst = next(i for i in ws.status()["institutions"] if i["code"] == "THPT-TPH")
    assert inst["status"] == "on_time" and inst["deadline"].startswith("2023-12-10T17:00")


def test_digest_to_staff_with_tracker_matching_status(setup):
    ws, dovecot, sink = setup
    for case in samples.demo_cases(samples.load_demo_roster()):
        dovecot.append(case.raw, case.arrival)
    ws.cli("run", "--once")
    sink.clear()
    ws.cli("--now", "2023-12-06T07:30", "digest", "--send")
    (digest,) = sink.wait_for(1)
    assert digest.rcpt_tos == (STAFF,)
    msg = digest.message
    assert msg["Subject"].startswith("Tổng hợp tình hình nộp báo cáo ngày 06/12/2023")
    html = msg.get_body(("html",)).get_content()
    assert "Thư chờ cán bộ xem xét (1)" in html and "<script" not in html
    (attachment,) = [p for p in msg.iter_attachments() if p.get_filename().endswith(".xlsx")]
    book = load_workbook(io.BytesIO(attachment.get_content()))
    rows = {}
    for sheet in book.worksheets[1:-1]:
        for row in sheet.iter_rows(min_row=2, values_only=True):
            rows[row[1]] = row[3]
    from mailbot.wording import STATUS

    status = ws.status()
    assert rows == {i["code"]: STATUS[i["status"]] for i in status["institutions"]}
    ws.cli("--now", "2023-12-06T09:00", "digest", "--send")
    ws.cli("--now", "2023-12-06T09:00", "run", "--once")
    assert len(sink.messages) == 1


def test_smtp_auth_starttls_and_transient_failure_retry(tmp_path, dovecot, smtp_factory, monkeypatch):
    sink = smtp_factory(auth={"gdtx@haiphong.edu.vn": "smtp-pw-456"}, starttls=True)
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    monkeypatch.setenv("SMTP_PW", "smtp-pw-456")
    extra = f'username = "gdtx@haiphong.edu.vn"\npassword_env = "SMTP_PW"\nca_file = "{sink.cert_path}"'
    ws = make_workspace(
        tmp_path / "ws",
        dovecot,
        extra=smtp_section(sink, extra=extra).replace('security = "plain"', 'security = "starttls"'),
    )
    case = samples.demo_cases(samples.load_demo_roster())[0]
    dovecot.append(case.raw, case.arrival)
    sink.fail_next.append((451, "4.3.0 Try again later"))
    first = ws.cli("run", "--once")
    assert "chờ gửi lại 1" in first.stderr and "451" in first.stderr and "smtp-pw-456" not in first.stderr
    assert sink.messages == []
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    ws.cli("--now", later, "run", "--once")
    (got,) = sink.wait_for(1)
    assert got.message["In-Reply-To"] == case.message_id


def test_tls_settings_are_loaded_once_and_again_when_the_ca_file_changes(tmp_path, dovecot, smtp_factory, monkeypatch):
    """Every delivery round connects anew; loading the certificate store each time was ~40% of a burst's work."""
    import os
    import ssl

    from mailbot import config
    from mailbot.notify import outbox

    sink = smtp_factory(starttls=True)
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(sink.cert_path.read_bytes())
    section = smtp_section(sink, extra=f'ca_file = "{ca}"').replace('security = "plain"', 'security = "starttls"')
    settings = config.load(make_workspace(tmp_path / "ws", dovecot, extra=section).config_path).outbox
    loads = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda **kw: loads.append(kw) or real(**kw))

    def deliver_round() -> str:
        client = outbox.connect(settings)
        try:
            assert isinstance(client.sock, ssl.SSLSocket)  # verified TLS, every time
            return client.sock.getpeercert()["subject"][0][0][1]
        finally:
            client.quit()

    assert {deliver_round() for _ in range(3)} == {sink.host} and len(loads) == 1
    os.utime(ca, ns=(ca.stat().st_atime_ns, ca.stat().st_mtime_ns + 10**9))  # a renewed CA file
    deliver_round()
    assert len(loads) == 2 and loads[-1] == {"cafile": str(ca)}
    ca.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):  # the file as it is now, not as it was
        outbox.connect(settings)


def test_permanent_refusal_marks_address_and_digest_lists_it(tmp_path, dovecot, smtp_factory, monkeypatch):
    sink = smtp_factory(reject={"thptchuyentranphu@haiphong.edu.vn": (550, "5.1.1 No such user")})
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    ws = make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(sink))
    sender = next(r for r in samples.load_demo_roster() if r["code"] == "THPT-TP")["emails"][0]
    mail = samples.make_email(
        sender=sender,
        sender_name="",
        subject="BC",
        body="x",
        attachments=[("a.docx", samples.make_report_docx("Trường THPT chuyên Trần Phú"), "application/octet-stream")],
    )
    dovecot.append(mail, datetime(2023, 12, 1, 2, 0, tzinfo=UTC))
    ws.cli("run", "--once")
    assert "failed" in ws.cli("outbox", "list").stdout
    digest = ws.cli("--now", "2023-12-02T07:30", "digest").stdout
    assert sender in digest and "550" in digest


def test_rate_limit_per_address_per_day(tmp_path, dovecot, smtp_sink, monkeypatch):
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    ws = make_workspace(
        tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink, notify="max_auto_per_address_per_day = 3")
    )
    sender = "thptngoquyen@haiphong.edu.vn"
    for n in range(5):
        dovecot.append(
            samples.make_email(
                sender=sender,
                sender_name="",
                subject=f"Lần {n}",
                body="x",
                attachments=[("a.docx", samples.make_report_docx("Trường THPT Ngô Quyền"), "application/octet-stream")],
            ),
            datetime(2023, 12, 1, 2, n, tzinfo=UTC),
        )
    ws.cli("run", "--once")
    assert len(smtp_sink.wait_for(3)) == 3
    assert ws.cli("outbox", "list").stdout.count("suppressed") == 2


def dsn(original_message_id: str, recipient: str) -> bytes:
    """A delivery status notification as Postfix writes it (RFC 3464)."""
    return (
        "From: MAILER-DAEMON@mail.haiphong.edu.vn (Mail Delivery System)\r\n"
        "To: gdtx@haiphong.edu.vn\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mail.haiphong.edu.vn>\r\nAuto-Submitted: auto-replied\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail system: host said 550 5.1.1 User unknown\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.haiphong.edu.vn\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: gdtx@haiphong.edu.vn\r\nTo: {recipient}\r\nMessage-ID: {original_message_id}\r\nSubject: Re: x\r\n"
        "--B--\r\n"
    ).encode()


def test_bounce_of_our_message_marks_the_address_and_reminders_use_the_others(setup):
    ws, dovecot, sink = setup
    first, second = next(r for r in samples.load_demo_roster() if r["code"] == "PGD-LC")["emails"]
    dovecot.append(
        samples.make_email(sender=first, sender_name="", subject="Gửi báo cáo", body="Em gửi ạ", attachments=[]),
        datetime(2023, 11, 20, 2, 0, tzinfo=UTC),
    )
    ws.cli("run", "--once")
    (ack,) = sink.wait_for(1)
    assert ack.rcpt_tos == (first,) and "không kèm tệp báo cáo" in ack.message.get_body(("plain",)).get_content()
    dovecot.append(dsn(ack.message["Message-ID"], first), datetime(2023, 11, 20, 2, 5, tzinfo=UTC))
    dovecot.append(dsn("<someone-else@example.com>", second), datetime(2023, 11, 20, 2, 6, tzinfo=UTC))
    ws.cli("run", "--once")
    assert len(sink.messages) == 1  # no answer to the bounces
    digest = ws.cli("--now", "2023-11-21T07:30", "digest").stdout
    assert first in digest and second not in digest  # only a bounce of a message we really sent counts
    sink.clear()
    ws.cli("--now", "2023-12-02T08:00", "remind")
    to_lc = [c for c in sink.wait_for(1) if second in c.rcpt_tos or first in c.rcpt_tos]
    assert [c.rcpt_tos for c in to_lc] == [(second,)]


def test_broken_template_is_reported_before_anything_is_sent(tmp_path, dovecot, smtp_sink, monkeypatch):
    import shutil

    from mailbot.notify.compose import PACKAGED_TEMPLATES

    templates = tmp_path / "templates"
    shutil.copytree(PACKAGED_TEMPLATES, templates)
    (templates / "reminder.txt.j2").write_text("Kính gửi {{ institution.name }\n", encoding="utf-8")
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    ws = make_workspace(
        tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink, notify=f'templates_dir = "{templates}"')
    )
    result = ws.cli("run", "--once", check=False)
    assert result.returncode == 2 and "reminder.txt.j2" in result.stderr and "Traceback" not in result.stderr
    check = ws.cli("check", check=False)
    assert check.returncode == 1 and "reminder.txt.j2" in check.stdout


def test_an_oversized_message_from_a_school_gets_a_reply_and_waits_for_staff(tmp_path, dovecot, smtp_sink, monkeypatch):
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    ws = make_workspace(
        tmp_path / "ws",
        dovecot,
        extra_inbox='processed_folder = "Da-xu-ly"',
        extra=smtp_section(smtp_sink) + "\n[limits]\nmax_message_bytes = 1048576\n",
    )
    scan = [
        ("Bản dấu đỏ.pdf", samples.minimal_pdf() + bytes(3 << 20), "application/pdf"),
        ("Báo cáo.docx", samples.make_report_docx("Trường THPT Thái Phiên"), samples.DOCX_TYPE),
    ]
    school = samples.make_email(
        sender="thptthaiphien@haiphong.edu.vn",
        sender_name="Trường THPT Thái Phiên",
        subject="Báo cáo ANTQ 2023",
        body="x",
        attachments=scan,
        message_id="<big@thaiphien.vn>",
    )
    stranger = samples.make_email(
        sender="someone@gmail.com",
        sender_name="",
        subject="Báo cáo",
        body="x",
        attachments=scan,
        message_id="<big@gmail.com>",
    )
    for raw in (school, stranger):
        dovecot.append(raw, datetime(2023, 12, 4, 3, 0, tzinfo=UTC))
    ws.cli("run", "--once")
    (reply,) = smtp_sink.wait_for(1)
    msg = reply.message
    assert reply.rcpt_tos == ("thptthaiphien@haiphong.edu.vn",) and msg["In-Reply-To"] == "<big@thaiphien.vn>"
    assert msg["Auto-Submitted"] == "auto-replied"
    text = msg.get_body(("plain",)).get_content()
    assert "Kính gửi: Trường THPT Thái Phiên" in text and "vượt quá mức 1,0 MB" in text
    assert "chỉ đính kèm tệp Word báo cáo" in text and "nén hoặc giảm độ phân giải các bản chụp" in text
    assert "vượt quá mức 1,0 MB" in msg.get_body(("html",)).get_content()
    review = {r["message_id"]: r for r in ws.status()["review"]}
    assert set(review) == {"<big@thaiphien.vn>", "<big@gmail.com>"}
    assert (
        "quá lớn" in review["<big@thaiphien.vn>"]["reason"]
        and "đã đề nghị đơn vị" in review["<big@thaiphien.vn>"]["reason"]
    )
    assert "đã đề nghị" not in review["<big@gmail.com>"]["reason"]
    assert len(dovecot.uids()) == 2  # both stay in the inbox, never moved to the processed folder
    ws.cli("run", "--once")
    assert len(smtp_sink.messages) == 1 and len(dovecot.uids()) == 2  # told once; the mail stays for staff
    # The same message through another alias (other bytes, same Message-ID and sender): one record, one reply.
    dovecot.append(b"Delivered-To: baocao@haiphong.edu.vn\r\n" + school, datetime(2023, 12, 4, 3, 5, tzinfo=UTC))
    ws.cli("run", "--once")
    assert len(smtp_sink.messages) == 1 and {r["message_id"] for r in ws.status()["review"]} == set(review)


def test_a_pdf_alone_is_taken_as_the_stamped_copy_and_asks_for_the_word_file_only_when_it_is_missing(setup):
    """The plan asks for the Word file by email and the stamped copy besides: a school that sends the stamped PDF
    alone is asked for the Word file only while it has not sent it; after, the PDF is acknowledged as the copy."""
    ws, dovecot, sink = setup
    school = next(r for r in samples.load_demo_roster() if r["code"] == "THPT-NQ")
    address = school["emails"][0]
    pdf = ("BC ANTQ 2023 (bản có dấu).pdf", samples.minimal_pdf("ban co dau"), "application/pdf")
    word = ("Báo cáo ANTQ 2023.docx", samples.make_report_docx(school["name"]), samples.DOCX_TYPE)

    def send(files: list[tuple[str, bytes, str]], minute: int) -> tuple[str, str]:
        dovecot.append(
            samples.make_email(
                sender=address, sender_name="", subject="Gửi báo cáo", body="Kính gửi Sở.", attachments=files
            ),  # fmt: skip
            datetime(2023, 12, 1, 2, minute, tzinfo=UTC),
        )
        ws.cli("run", "--once")
        got = sink.wait_for(minute + 1)[-1]
        assert got.rcpt_tos == (address,)
        return str(got.message["X-Mailbot-Kind"]), str(got.message.get_body(("plain",)).get_content())

    kind, first = send([pdf], 0)  # the stamped copy before the report itself
    assert kind == "ack_no_report" and "kèm tệp PDF: BC ANTQ 2023 (bản có dấu).pdf" in first
    assert "chưa nhận được tệp báo cáo định dạng Word" in first and "Đề nghị quý đơn vị gửi bổ sung" in first
    assert send([word], 1)[0] == "ack"  # the report itself
    kind, again = send([pdf], 2)  # the stamped copy once more, the Word file being in
    assert kind == "ack_no_report" and "mà quý đơn vị đã gửi bằng tệp Word" in again and "kèm tệp PDF" in again
    assert "Đề nghị" not in again and "chưa nhận được" not in again


def test_compiled_templates_are_cached_and_an_edited_one_is_compiled_again(tmp_path):
    from mailbot.notify.compose import Templates
    from mailbot.notify.samples import SAMPLE_CONTEXTS

    staff, cache = tmp_path / "templates", tmp_path / "var" / "cache" / "templates"
    staff.mkdir()
    (staff / "ack.subject.j2").write_text("Đã nhận báo cáo {{ institution.name }}\n", encoding="utf-8")
    first = Templates(staff, cache).render("ack", SAMPLE_CONTEXTS["ack"])
    assert first.subject.startswith("Đã nhận báo cáo ") and any(cache.iterdir())  # compiled once, kept
    (staff / "ack.subject.j2").write_text("Sở đã nhận báo cáo của {{ institution.name }}\n", encoding="utf-8")
    again = Templates(staff, cache).render("ack", SAMPLE_CONTEXTS["ack"])
    assert again.subject.startswith("Sở đã nhận báo cáo của ") and again.text == first.text
    for entry in cache.iterdir():  # a damaged entry is compiled again, not an error
        entry.write_bytes(b"\x00garbage")
    assert Templates(staff, cache).render("ack", SAMPLE_CONTEXTS["ack"]) == again
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # a cache that cannot be made: rendering works without it
    assert Templates(staff, blocked / "templates").render("ack", SAMPLE_CONTEXTS["ack"]) == again
