"""MIME → InboundMail on bytes (pure): names, charsets, containers, machine mail."""

from __future__ import annotations

from datetime import UTC, datetime

from mailbot.config import LimitSettings
from mailbot.demo import samples
from mailbot.ingest.parse import parse
from mailbot.models import FileKind, Notice, RawMail, WarningCode
from tests.test_documents_e2e import tnef, to_doc

WHEN = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)
DOCX = samples.make_report_docx("Trường THPT Ngô Quyền")


def parsed(raw: bytes, limits: LimitSettings | None = None):  # type: ignore[no-untyped-def]
    return parse(RawMail("t", 0, "1", WHEN, raw), limits or LimitSettings())


def mail(attachments, **kw):  # type: ignore[no-untyped-def]
    return samples.make_email(
        sender=kw.pop("sender", "a@haiphong.edu.vn"),
        sender_name="",
        subject=kw.pop("subject", "BC"),
        body="x",
        attachments=attachments,
        **kw,
    )


def test_every_filename_style_ends_as_the_same_nfc_name():
    name = "Báo cáo phong trào - Trường THPT Ngô Quyền.docx"
    for style in ("rfc2231", "rfc2047", "name_only", "nfd"):
        (f,) = parsed(mail([(name, DOCX, "application/octet-stream")], filename_style=style)).files
        assert f.name == name and f.kind is FileKind.DOCX, style


def test_windows_1258_subject_decodes():
    m = parsed(mail([], subject="Báo cáo phong trào toàn dân bảo vệ an ninh Tổ quốc", subject_charset="windows-1258"))
    assert m.subject == "Báo cáo phong trào toàn dân bảo vệ an ninh Tổ quốc"


def test_reports_inside_zip_and_forward_are_found():
    zipped = samples.zip_bytes([("Báo cáo.docx", DOCX), ("ảnh.jpg", b"\xff\xd8\xff")])
    inner = mail([("bc.docx", DOCX, "application/octet-stream")], sender="pgdlechan@haiphong.edu.vn")
    m = parsed(samples.forward_as_attachment(inner, sender="staff@gmail.com", subject="Fwd: BC"))
    assert [f.name for f in m.reports] == ["bc.docx"] and m.forwarded_senders == ("pgdlechan@haiphong.edu.vn",)
    z = parsed(mail([("bc.zip", zipped, "application/zip")]))
    assert [(f.name, f.origin) for f in z.reports] == [("Báo cáo.docx", "bc.zip")]


def test_outlook_winmail_dat_is_unpacked():
    winmail = tnef([("bao-cao.doc", to_doc(DOCX)), ("ban-dau-do.pdf", samples.minimal_pdf())])
    m = parsed(mail([("winmail.dat", winmail, "application/ms-tnef")]))
    kinds = {f.name: f.kind for f in m.files}
    assert kinds["bao-cao.doc"] is FileKind.DOC and kinds["ban-dau-do.pdf"] is FileKind.PDF
    assert all(f.origin == "winmail.dat" for f in m.files)


def test_zip_bomb_and_encrypted_zip_become_warnings():
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bom.docx", b"\0" * (200 * 1024 * 1024))
    m = parsed(mail([("bom.zip", buffer.getvalue(), "application/zip")]))
    assert m.files[0].warnings == (Notice(WarningCode.ARCHIVE_TOO_LARGE),) and not m.reports


def test_machine_mail_is_recognised():
    for headers in (
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"List-Id": "<x>"},
        {"X-Autoreply": "yes"},
    ):
        assert parsed(mail([], extra_headers=headers)).auto_markers
    assert parsed(mail([], sender="MAILER-DAEMON@mx.example")).auto_markers
    assert not parsed(mail([], extra_headers={"Auto-Submitted": "no"})).auto_markers


def test_reports_inside_7z_are_found_with_unar():
    import io

    import py7zr

    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.writestr(DOCX, "Báo cáo ANTQ.docx")
    m = parsed(mail([("bc.7z", buffer.getvalue(), "application/x-7z-compressed")]))
    assert [(f.name, f.origin, f.kind) for f in m.reports] == [("Báo cáo ANTQ.docx", "bc.7z", FileKind.DOCX)]


def test_legacy_doc_is_converted_by_libreoffice_for_reading():
    from mailbot.documents.convert import doc_to_docx
    from mailbot.documents.wordxml import read_blocks

    converted = doc_to_docx(to_doc(DOCX))  # a real Word 97 file, written by LibreOffice
    assert converted is not None, "LibreOffice (soffice) is needed: scripts/test.sh installs libreoffice-writer-nogui"
    blocks = read_blocks(converted, opening=True)
    assert blocks.problem is None and "TRƯỜNG THPT NGÔ QUYỀN" in "\n".join(blocks.opening)


def test_attachment_over_the_limit_is_named_but_not_kept():
    import os

    m = parsed(mail([("video.mp4", os.urandom(200_000), "video/mp4")]), LimitSettings(max_attachment_bytes=100_000))
    (f,) = m.files
    assert f.name == "video.mp4" and f.data == b"" and f.warnings == (Notice(WarningCode.TOO_LARGE, "200000"),)


def test_raw_8bit_headers_in_utf8_or_windows_1258_read_and_identify_by_name():
    from mailbot.ingest.identify import identify
    from mailbot.models import IdentifiedBy
    from tests.hostile_mail import cp1258, eight_bit_mail
    from tests.test_identify import CAMPAIGN, NQ, ROSTER

    for encode in (lambda t: t.encode("utf-8"), cp1258):
        raw = eight_bit_mail(
            encode,
            "<someone@gmail.com>",
            "<m@x>",
            samples.minimal_pdf(),
            subject="Báo cáo ANTQ - Trường THPT Ngô Quyền",
            name="Bản dấu đỏ báo cáo ANTQ Ngô Quyền.pdf",
        )
        m = parsed(raw)
        assert m.subject == "Báo cáo ANTQ - Trường THPT Ngô Quyền"
        assert (m.sender, m.sender_name) == ("someone@gmail.com", "Trường THPT Ngô Quyền")
        assert [(f.name, f.kind) for f in m.files] == [("Bản dấu đỏ báo cáo ANTQ Ngô Quyền.pdf", FileKind.PDF)]
        verdict = identify(m, ROSTER, (CAMPAIGN,))
        assert verdict.institution == NQ and verdict.identified_by is IdentifiedBy.NAME


def test_zip_names_without_the_utf8_flag_try_utf8_then_cp1258_then_cp437():
    from tests.hostile_mail import cp1258, legacy_zip

    names = ["Báo cáo Trường THPT Ngô Quyền.docx", "Bảng số liệu ĐÃ DUYỆT.docx"]
    for encode in (cp1258, lambda t: t.encode("utf-8")):
        m = parsed(mail([("bc.zip", legacy_zip([(n, DOCX) for n in names], encode), "application/zip")]))
        assert [f.name for f in m.files] == names
    box = "Übersicht für Schule.docx"  # cp437 bytes that are neither UTF-8 nor Windows-1258 (0x9A, 0x81)
    m = parsed(mail([("bc.zip", legacy_zip([(box, DOCX)], lambda t: t.encode("cp437")), "application/zip")]))
    assert [f.name for f in m.files] == [box]
    assert not any("\ufffd" in f.name for f in m.files)


def test_a_name_never_starts_with_a_combining_mark_nor_is_made_of_them():
    from mailbot.ingest.unpack import safe_basename, zip_name

    assert safe_basename("\u0300BC.docx") == "BC.docx"  # cp1258 byte 0xCC read from another code page
    assert safe_basename(zip_name(b"\xec\xcc")) == "file"
    assert safe_basename("Ba\u0300o ca\u0301o.docx") == "Bào cáo.docx"  # marks on a letter are kept (NFC)


def test_the_parsers_end_of_body_search_finds_what_the_full_search_finds() -> None:
    """mailbot.ingest.mime makes email.feedparser look for a body's closing line end at the end only (pure)."""
    import email.feedparser
    import email.policy
    import re

    full = re.compile(r"(\r\n|\r|\n)\Z")
    bodies = ["", "\n", "\r", "\r\n", "x", "abc\n", "abc\r\n", "abc\r", "a\n\n", "a\r\r\n", "a\n\r", "a\r\n\r\n"]
    bodies += ["QUJD" * 19 + "\r\n" for _ in range(3)] + ["x\ny", "\n\nx"]
    for body in bodies:
        ours, theirs = email.feedparser.NLCRE_eol.search(body), full.search(body)
        assert (ours and (ours.span(), ours.group(0))) == (theirs and (theirs.span(), theirs.group(0))), repr(body)
    assert email.feedparser.NLCRE_eol is not None and not isinstance(email.feedparser.NLCRE_eol, re.Pattern)
    # and what it is for: the line end before a boundary belongs to the boundary, not to the part
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nline one\r\nline two\r\n\r\n--b--\r\n'
    part = email.message_from_bytes(raw, policy=email.policy.compat32).get_payload(0)
    assert part.get_payload() == "line one\r\nline two\r\n"


def test_a_file_is_hashed_where_it_is_found_and_keeps_its_hash_when_warnings_are_added():
    import hashlib
    from dataclasses import replace

    (f,) = parsed(mail([("bc.docx", DOCX, "application/octet-stream")])).files
    assert f.sha256 == hashlib.sha256(DOCX).hexdigest()
    again = replace(f, warnings=(Notice(WarningCode.DATE_FAR, "01/01/2020"),))
    assert again.sha256 == f.sha256 and again.warnings != f.warnings
