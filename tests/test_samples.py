"""The sample reports and emails are what they claim to be (parsed back with python-docx and the email package)."""

from __future__ import annotations

import email
import email.policy
import io
import time
import unicodedata
import zipfile
from datetime import date, datetime

import docx
import pytest

from mailbot.demo import samples
from mailbot.demo.scans import scan_pdf

NAME = "Báo cáo phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023 - Trường THPT chuyên Trần Phú.docx"


def _parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def _docx_text(data: bytes) -> str:
    document = docx.Document(io.BytesIO(data))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


def _email(**kwargs) -> bytes:
    defaults = {
        "sender": "thptchuyentranphu@haiphong.edu.vn",
        "sender_name": "Trường THPT chuyên Trần Phú",
        "subject": samples.DEFAULT_TITLE,
        "body": "Kính gửi: Phòng GDTX&ĐH\n",
        "attachments": [(NAME, b"report", samples.DOCX_TYPE)],
        "message_id": "<t1@haiphong.edu.vn>",
    }
    return samples.make_email(**{**defaults, **kwargs})


def test_report_opens_in_python_docx_with_name_heading_and_date():
    data = samples.make_report_docx("Trường THPT Lê Quý Đôn", date=datetime(2023, 12, 4).date())
    text = _docx_text(data)
    for expected in (
        "Trường THPT Lê Quý Đôn",
        "TRƯỜNG THPT LÊ QUÝ ĐÔN",
        "SỞ GD&ĐT HẢI PHÒNG",
        "BÁO CÁO",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Hải Phòng, ngày 04 tháng 12 năm 2023",
        samples.DEFAULT_TITLE,
    ):
        assert expected in text


def test_report_escapes_markup_and_is_deterministic():
    first = samples.make_report_docx("Trường <A> & B", signer="Trần Văn B", position="KT. HIỆU TRƯỞNG\nPHÓ HIỆU TRƯỞNG")
    assert first == samples.make_report_docx(
        "Trường <A> & B", signer="Trần Văn B", position="KT. HIỆU TRƯỞNG\nPHÓ HIỆU TRƯỞNG"
    )
    assert "TRƯỜNG <A> & B" in _docx_text(first) and "PHÓ HIỆU TRƯỞNG" in _docx_text(first)


@pytest.mark.parametrize("target", [40_000, 100_000])
def test_report_pads_to_about_the_requested_size(target):
    data = samples.make_report_docx("Trường THPT Thái Phiên", pad_to=target)
    assert abs(len(data) - target) < target * 0.05
    assert "PHỤ LỤC" in _docx_text(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert not [n for n in archive.namelist() if b"@@" in archive.read(n) or b"python-docx" in archive.read(n)]


@pytest.mark.parametrize("style", ["rfc2231", "rfc2047", "name_only"])
def test_attachment_filename_round_trips_as_nfc(style):
    raw = _email(filename_style=style)
    (part,) = _parse(raw).iter_attachments()
    assert part.get_filename() == NAME
    assert part.get_content() == b"report"
    if style == "name_only":
        assert "filename" not in str(part.get("Content-Disposition", ""))
    if style == "rfc2047":
        assert b'filename="=?utf-8?B?' in raw and b'name="=?utf-8?B?' in raw


@pytest.mark.parametrize("style", ["rfc2231", "nfd", "rfc2047", "name_only"])
def test_a_long_content_type_is_written_whole_as_clients_write_it(style):
    """The email package would write a .docx's 71-character type as RFC 2047 encoded words."""
    raw = samples.make_email(
        sender="c3tranphu@haiphong.edu.vn",
        sender_name=None,
        subject="Báo cáo",
        body="x",
        attachments=[(NAME, b"PK", samples.DOCX_TYPE)],
        filename_style=style,
    )
    assert f"Content-Type: {samples.DOCX_TYPE};".encode() in raw and b"=?utf-8?q?vnd" not in raw
    (part,) = _parse(raw).iter_attachments()
    assert part.get_content_type() == samples.DOCX_TYPE and part.get_filename() == unicodedata.normalize(
        "NFD" if style == "nfd" else "NFC", NAME
    )


def test_nfd_style_keeps_the_decomposed_name():
    (part,) = _parse(_email(filename_style="nfd")).iter_attachments()
    assert part.get_filename() == unicodedata.normalize("NFD", NAME) != NAME
    assert unicodedata.normalize("NFC", part.get_filename()) == NAME


def test_raw_bytes_use_crlf_only_and_keep_headers():
    raw = _email(date=samples.DEMO_DEADLINE, extra_headers={"X-Mailer": "Microsoft Outlook 16.0"})
    assert b"\n" not in raw.replace(b"\r\n", b"")
    msg = _parse(raw)
    assert msg["Subject"] == samples.DEFAULT_TITLE
    assert msg["From"].addresses[0].display_name == "Trường THPT chuyên Trần Phú"
    assert msg["Message-ID"] == "<t1@haiphong.edu.vn>" and msg["X-Mailer"] == "Microsoft Outlook 16.0"
    assert msg["Date"].datetime == samples.DEMO_DEADLINE
    assert msg.get_body(("plain",)).get_content() == "Kính gửi: Phòng GDTX&ĐH\r\n"  # CRLF survives decoding


def test_unknown_filename_style_is_refused():
    with pytest.raises(ValueError):
        _email(filename_style="utf7")


@pytest.mark.parametrize(
    "subject",
    [
        "Trường THPT Kiến An gửi báo cáo phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023",
        "Báo cáo của Trung tâm GDNN-GDTX huyện Thủy Nguyên: đã chỉnh sửa số liệu (lần 2) – ỹ ự ử",
    ],
)
def test_windows_1258_subject_decodes_to_the_same_text(subject):
    raw = _email(subject=subject, subject_charset="windows-1258")
    assert b"=?windows-1258?Q?" in raw
    decoded = _parse(raw)["Subject"]
    assert unicodedata.normalize("NFC", decoded) == subject
    assert samples.cp1258_bytes(subject).decode("cp1258") != subject  # tone marks really are combining there


def test_forward_keeps_the_inner_message_byte_for_byte():
    inner = _email()
    outer = samples.forward_as_attachment(inner, sender="vanthu.ttgdtx@haiphong.edu.vn", subject="Fwd: báo cáo")
    (part,) = _parse(outer).iter_attachments()
    assert part.get_content_type() == "message/rfc822"
    assert inner in outer
    (inner_part,) = part.get_content().iter_attachments()
    assert inner_part.get_filename() == NAME


def test_zip_bytes_flags_non_ascii_names_as_utf8():
    data = samples.zip_bytes([(NAME, b"x"), ("a.txt", b"y")])
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert [(i.filename, i.flag_bits & 0x800) for i in archive.infolist()] == [(NAME, 0x800), ("a.txt", 0)]
    assert NAME.encode("utf-8") in data and archive.read(NAME) == b"x"


def test_fake_doc_and_pdf_have_the_right_magic():
    assert samples.fake_legacy_doc().startswith(samples.OLE_MAGIC)
    assert "WordDocument".encode("utf-16-le") in samples.fake_legacy_doc()
    assert samples.minimal_pdf().startswith(b"%PDF-1.4") and samples.minimal_pdf().rstrip().endswith(b"%%EOF")


def test_a_scan_is_the_same_bytes_whenever_it_is_made(monkeypatch):
    """The demo messages are built twice in a run (and by `mailbot demo` on each machine): a scan dated by the
    clock made the two builds differ whenever a second went by between them."""
    first = scan_pdf("Trường Đại học Hải Phòng", "15/BC-DHHP", date(2023, 12, 4))
    real_gmtime, later = time.gmtime, time.time() + 400 * 86400
    monkeypatch.setattr(time, "gmtime", lambda secs=None: real_gmtime(later if secs is None else secs))
    assert scan_pdf("Trường Đại học Hải Phòng", "15/BC-DHHP", date(2023, 12, 4)) == first
    assert b"/CreationDate (D:20231204010000Z)" in first  # dated on the scan's day, 08:00 in Hải Phòng


def test_demo_roster_has_five_groups_and_unique_codes():
    rows = samples.load_demo_roster()
    assert len(rows) >= 35 and len({r["code"] for r in rows}) == len(rows)
    assert {r["group"] for r in rows} == {"Phòng GDĐT", "THPT", "GDNN-GDTX", "Đơn vị trực thuộc", "Đại học"}
    assert any(len(r["emails"]) == 2 for r in rows) and any(not r["emails"] for r in rows)
    assert all(unicodedata.is_normalized("NFC", r["name"]) for r in rows)


def _documents(msg: email.message.EmailMessage) -> list[str]:
    """Names of the files a message carries, looking inside zips and forwarded messages."""
    names: list[str] = []
    for part in msg.iter_attachments():
        if part.get_content_type() == "message/rfc822":
            names += _documents(part.get_content())
        elif (part.get_filename() or "").endswith(".zip"):
            names += zipfile.ZipFile(io.BytesIO(part.get_content())).namelist()
        else:
            names.append(unicodedata.normalize("NFC", part.get_filename()))
    return names


def test_demo_messages_match_their_declared_outcomes():
    rows = samples.load_demo_roster()
    codes = {r["code"] for r in rows}
    cases = samples.demo_cases(rows)
    assert len(cases) >= 12
    assert [(c.arrival, c.raw) for c in cases] == samples.demo_messages(rows)
    message_ids = [_parse(c.raw)["Message-ID"] for c in cases]
    assert message_ids == [c.message_id for c in cases] and len(set(message_ids)) == len(cases)
    for case in cases:
        assert case.expect is None or case.expect in codes
        assert case.late == (case.arrival > samples.DEMO_DEADLINE)
        assert _documents(_parse(case.raw)) == list(case.files), case.note
        assert b"\n" not in case.raw.replace(b"\r\n", b"")
    assert sum(c.late for c in cases) == 2 and sum(c.expect is None for c in cases) == 1
    assert [c.arrival for c in cases] == sorted(c.arrival for c in cases)
