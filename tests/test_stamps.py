"""The stamped copy verified (issue 17): signed PDFs (intact, whose certificate, trusted or not), scans (red seal,
number and date read by OCR against the Word file), Word exports, and files too costly to read; the verdicts in
status, tracker, institution page and digest; staff acceptance."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from mailbot import config, pipeline, store
from mailbot.config import Settings
from mailbot.demo import samples
from mailbot.demo.build import DIGEST_AT, ZONE, build_demo
from mailbot.demo.scans import scan_pdf
from mailbot.documents import pdfcheck, pdfscan, pdfsign
from mailbot.notify import digest
from mailbot.reports import stamps
from mailbot.reports.stamps import WordRef
from mailbot.reports.status import campaign_status
from mailbot.reports.workbook import save_tracker
from tests.conftest import first_campaign
from tests.pdf_samples import EXPORT_LINES, Authority, bomb_pdf, text_pdf
from tests.test_paper import CAMPAIGN, USER, C, csrf_of, flash, logged_in, mailbot, with_paper

NQ = "Trường THPT Ngô Quyền"
WORD = (WordRef("15/BC-THPTNQ", date(2023, 12, 5)),)

# OCR needs Debian's tesseract-ocr-vie (scripts/test.sh installs it); CI runs these tests whatever happens.
needs_ocr = pytest.mark.skipif(
    not pdfscan.ocr_available() and os.environ.get("CI") != "true", reason="tesseract-ocr-vie is not installed"
)


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority.make()


@pytest.fixture(scope="module")
def anchors(ca: Authority, tmp_path_factory: pytest.TempPathFactory) -> pdfcheck.Budget:
    pem = ca.pem(tmp_path_factory.mktemp("anchors") / "ca.pem")
    return pdfcheck.Budget(30, pdfsign.load_anchors((pem,)))


def verdict(tmp_path: Path, data: bytes, budget: pdfcheck.Budget, institution: str = NQ) -> stamps.Stamp:
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(data)
    return stamps.judge(pdfcheck.check(pdf, budget).to_json(), institution, WORD)


def test_a_pdf_signed_by_the_institution_with_a_trusted_certificate_is_verified(
    tmp_path: Path, ca: Authority, anchors: pdfcheck.Budget
) -> None:
    signed = ca.issue(NQ, "Nguyễn Văn An").sign(text_pdf(EXPORT_LINES))
    started = time.monotonic()
    found = verdict(tmp_path, signed, anchors)
    assert time.monotonic() - started < 2
    assert (found.kind, found.verdict, found.doubts, found.signer_org) == ("signed", "ok", (), NQ)
    assert stamps.text_vi(found).startswith(f"Bản ký số hợp lệ ({NQ}, ký lúc ")
    # Without the anchor the same signature is valid but its issuer unknown: said, not pretended.
    untrusted = verdict(tmp_path, signed, pdfcheck.Budget(30, ()))
    assert (untrusted.verdict, untrusted.doubts) == ("doubt", ("untrusted_issuer",))
    # Another anchor (another CA) does not make it trusted either.
    other = pdfcheck.Budget(30, (pdfsign.anchors_from_der((Authority.make().cert.public_bytes(_der()),))))
    assert verdict(tmp_path, signed, other).doubts == ("untrusted_issuer",)


def _der():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def test_a_signed_pdf_altered_after_signing_or_signed_by_another_institution_is_a_doubt(
    tmp_path: Path, ca: Authority, anchors: pdfcheck.Budget
) -> None:
    signed = ca.issue(NQ, "Nguyễn Văn An").sign(text_pdf(EXPORT_LINES))
    at = signed.index(b"Ket qua thuc hien")
    altered = signed[:at] + b"Ket qua thuc HIEN" + signed[at + 17 :]
    found = verdict(tmp_path, altered, anchors)
    assert found.kind == "signed" and "altered" in found.doubts and found.verdict == "doubt"
    assert "tệp đã bị sửa sau khi ký số" in stamps.text_vi(found)

    by_other = ca.issue("Trường THPT Thái Phiên", "Trần Thị Bình").sign(text_pdf(EXPORT_LINES))
    other = verdict(tmp_path, by_other, anchors)
    assert (other.verdict, other.doubts) == ("doubt", ("other_institution",))
    assert "chữ ký số của đơn vị khác (Trường THPT Thái Phiên)" in stamps.text_vi(other)
    # Folded as identification folds: "TRUONG THPT NGO QUYEN" in capitals without marks is the same school.
    plain = ca.issue("TRUONG TRUNG HOC PHO THONG NGO QUYEN", "NGUYEN VAN AN").sign(text_pdf(EXPORT_LINES))
    assert verdict(tmp_path, plain, anchors).verdict == "ok"


@needs_ocr
def test_scans_are_checked_for_the_seal_and_the_word_files_number(tmp_path: Path, anchors: pdfcheck.Budget) -> None:
    good = verdict(tmp_path, scan_pdf(NQ, "15/BC-THPTNQ", date(2023, 12, 5)), anchors)
    assert (good.kind, good.verdict, good.seal, good.number, good.date) == (
        "scan",
        "ok",
        True,
        "15/BC-THPTNQ",
        date(2023, 12, 5),
    )
    assert stamps.text_vi(good) == "Bản quét có dấu đỏ, số 15/BC-THPTNQ khớp với tệp Word"

    unsealed = verdict(tmp_path, scan_pdf(NQ, "15/BC-THPTNQ", date(2023, 12, 5), seal=False), anchors)
    assert (unsealed.verdict, unsealed.doubts, unsealed.seal) == ("doubt", ("no_seal",), False)
    assert "không thấy dấu đỏ" in stamps.text_vi(unsealed)

    last_year = verdict(tmp_path, scan_pdf(NQ, "16/BC-THPTNQ", date(2022, 12, 2)), anchors)
    assert last_year.doubts == ("number_mismatch", "date_mismatch")
    assert "số văn bản khác tệp Word (bản PDF: 16/BC-THPTNQ, tệp Word: 15/BC-THPTNQ)" in stamps.text_vi(last_year)


def test_a_word_export_is_not_a_stamped_copy(tmp_path: Path, anchors: pdfcheck.Budget) -> None:
    found = verdict(tmp_path, text_pdf(EXPORT_LINES), anchors)
    assert (found.kind, found.verdict, found.doubts) == ("export", "doubt", ("unsigned_export",))
    assert stamps.text_vi(found) == "Bản PDF cần kiểm tra: tệp PDF xuất từ Word, chưa ký"


@needs_ocr
def test_a_pdf_bomb_costs_a_bounded_time(tmp_path: Path, settings_budget: Settings) -> None:
    from mailbot import stamping

    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(bomb_pdf())
    started = time.monotonic()
    facts = stamping.check_file(settings_budget, bomb)
    assert time.monotonic() - started < settings_budget.documents.seconds_per_file + stamping.GRACE_SECONDS
    judged = stamps.judge(facts.to_json(), NQ, WORD)
    # Poppler may give up (memory, time) or, on a quick machine, draw the blank page within the limits: either way
    # the time is bounded and the file is never taken for the stamped copy.
    unread = facts.kind == "unknown" and bool(facts.problem) and judged.doubts == ("unreadable",)
    blank = facts.kind == "scan" and not facts.seal and not facts.number
    assert (unread or blank) and judged.verdict != "ok", facts


@needs_ocr
def test_a_long_scan_is_judged_by_its_first_page(tmp_path: Path) -> None:
    from mailbot import stamping

    # The default budget is ample for one page, even on a loaded CI host, and far too short for 300: the number is
    # only found when the first page alone is drawn and read.
    toml = tmp_path / "mailbot.toml"
    toml.write_text('[inbox]\nkind = "maildir"\npath = "Maildir"\n', encoding="utf-8")
    settings = config.load(toml)
    assert settings.documents.seconds_per_file >= 30
    long = tmp_path / "long.pdf"
    long.write_bytes(scan_pdf(NQ, "15/BC-THPTNQ", date(2023, 12, 5), pages=300))
    facts = stamping.check_file(settings, long)
    assert (facts.pages, facts.seal, facts.number, facts.problem) == (300, True, "15/BC-THPTNQ", "")


@needs_ocr
def test_a_scan_whose_header_is_not_read_in_time_keeps_its_pages_and_seal(tmp_path: Path) -> None:
    from mailbot.documents import pdfcheck

    # A budget that ends after the page is drawn and before OCR: the scan stays a scan with its seal.
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(scan_pdf(NQ, "15/BC-THPTNQ", date(2023, 12, 5), pages=3))
    real_ocr = pdfscan.ocr_header

    def late_ocr(pixels: Any, deadline: pdfscan.Deadline, workdir: Path) -> str:
        spent = pdfscan.Deadline(time.monotonic() - 1)  # the budget runs out while the page is examined
        return real_ocr(pixels, spent, workdir)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pdfscan, "ocr_header", late_ocr)
        facts = pdfcheck.check(pdf, pdfcheck.Budget(seconds=60))
    assert (facts.kind, facts.pages, facts.seal, facts.number) == ("scan", 3, True, None)
    assert "time limit" in facts.problem
    assert stamps.judge(facts.to_json(), NQ, WORD).doubts == ("unreadable",)


@pytest.fixture
def settings_budget(tmp_path: Path) -> Settings:
    from mailbot import config

    toml = tmp_path / "mailbot.toml"
    toml.write_text(
        '[inbox]\nkind = "maildir"\npath = "Maildir"\n[documents]\nseconds_per_file = 6\n', encoding="utf-8"
    )
    return config.load(toml)


# --- a campaign with every case: status --json, tracker, institution page, digest, staff acceptance ---------------

ARRIVAL = datetime(2023, 12, 6, 9, 0, tzinfo=ZONE)


def _drop(maildir: Path, sender: str, name: str, data: bytes, n: int) -> None:
    raw = samples.make_email(
        sender=sender,
        sender_name=None,
        subject="Bản có dấu đỏ báo cáo ANTQ 2023",
        body="Kính gửi Sở GDĐT, đơn vị gửi bản có dấu đỏ của báo cáo.",
        attachments=[(name, data, "application/pdf")],
        message_id=f"<stamp-{n}@truong.example>",
        date=ARRIVAL,
    )
    target = maildir / "new" / f"{int(ARRIVAL.timestamp())}.stamp{n}.test"
    target.write_bytes(raw)
    os.utime(target, (ARRIVAL.timestamp(), ARRIVAL.timestamp()))


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory, ca: Authority) -> Settings:
    """The demo (DH-HP sent its scan with the Word file) with paper = "either", the CA installed as trust anchor,
    and one PDF on its own from each of seven institutions."""
    root = tmp_path_factory.mktemp("stamps-demo")
    build_demo(root)
    ca.pem(root / "ca.pem")
    toml = root / "mailbot.toml"
    with_paper(toml, "either")
    toml.write_text(toml.read_text(encoding="utf-8") + '\n[documents]\ntrust_anchors = ["ca.pem"]\n', encoding="utf-8")
    emails = {r["code"]: r["emails"][0] for r in samples.load_demo_roster() if r["emails"]}
    export = text_pdf(EXPORT_LINES)
    signed_nq = ca.issue(NQ, "Nguyễn Văn An").sign(export)
    signed_hb = ca.issue("Trường THPT Hồng Bàng", "Lê Văn Cường").sign(export)
    at = signed_hb.index(b"Ket qua thuc hien")
    cases = {
        "THPT-NQ": signed_nq,
        "THPT-HB": signed_hb[:at] + b"Ket qua thuc HIEN" + signed_hb[at + 17 :],  # altered after signing
        "THPT-KA": signed_nq,  # Ngô Quyền's signed file, sent by Kiến An
        "THPT-VB": scan_pdf("Trường THPT Vĩnh Bảo", "15/BC-THPTVB", date(2023, 12, 4)),
        "THPT-TP": scan_pdf("Trường THPT chuyên Trần Phú", "15/BC-THPTTP", date(2023, 12, 1), seal=False),
        "PGD-KA": scan_pdf("Phòng GDĐT quận Kiến An", "16/BC-PGDKA", date(2023, 12, 4)),
        "TT-AD": export,
    }
    for n, (code, data) in enumerate(cases.items()):
        _drop(root / "Maildir", emails[code], f"BC ANTQ 2023 - {code}.pdf", data, n)
    settings = config.load(toml)
    engine = store.connect(settings.db_url)
    pipeline.run_once(settings, engine)  # the receipts first, then every PDF checked before it returns
    engine.dispose()
    return settings


def status_json(settings: Settings) -> dict[str, dict]:  # type: ignore[type-arg]
    done = mailbot(settings, "status", "--json")
    assert done.returncode == 0, done.stderr
    return {i["code"]: i for i in json.loads(done.stdout)["institutions"]}


@needs_ocr
def test_each_case_gets_its_verdict_and_only_verified_copies_count(campaign: Settings) -> None:
    found = status_json(campaign)
    verdicts = {code: (found[code]["stamp"]["verdict"], tuple(found[code]["stamp"]["doubts"])) for code in EXPECTED}
    assert verdicts == EXPECTED
    assert {c for c, i in found.items() if i["stamped"]} == {"THPT-NQ", "THPT-VB", "DH-HP"}
    nq = found["THPT-NQ"]["stamp"]
    assert (nq["kind"], nq["signer_org"], nq["seal"]) == ("signed", NQ, None) and nq["signed_at"]
    vb = found["THPT-VB"]["stamp"]
    assert (vb["kind"], vb["seal"], vb["number"], vb["date"]) == ("scan", True, "15/BC-THPTVB", "2023-12-04")
    # The PDF sent with the Word file carries its own verdict in its submission's files.
    (dh_pdf,) = [f for s in found["DH-HP"]["submissions"] for f in s["files"] if f["kind"] == "pdf"]
    assert dh_pdf["stamp"] == {
        "kind": "scan",
        "verdict": "ok",
        "signer_org": None,
        "signed_at": None,
        "seal": True,
        "number": "15/BC-DHHP",
        "date": "2023-12-05",
        "doubts": [],
    }
    assert found["THPT-TP"]["missing"] == ["stamped"] and found["THPT-VB"]["complete"] is True


EXPECTED = {
    "THPT-NQ": ("ok", ()),
    "THPT-HB": ("doubt", ("altered",)),
    "THPT-KA": ("doubt", ("other_institution",)),
    "THPT-VB": ("ok", ()),
    "THPT-TP": ("doubt", ("no_seal",)),
    "PGD-KA": ("doubt", ("number_mismatch",)),
    "TT-AD": ("doubt", ("unsigned_export",)),
    "DH-HP": ("ok", ()),
}


@needs_ocr
def test_the_tracker_and_the_digest_say_each_verdict(campaign: Settings, tmp_path: Path) -> None:
    cs = campaign_status(store.connect(campaign.db_url), first_campaign(campaign))
    path = tmp_path / "theo-doi.xlsx"
    save_tracker(cs, ZONE, path, generated_at=DIGEST_AT)
    wb = load_workbook(path)
    cells = {}
    for ws in wb.worksheets[1:]:
        header = [c.value for c in ws[1]]
        if "Bản có dấu đỏ" in header:
            at = header.index("Bản có dấu đỏ")
            cells.update({r[1]: r[at] for r in ws.iter_rows(min_row=2, values_only=True)})
    assert cells["THPT-NQ"].startswith(f"Bản ký số hợp lệ ({NQ}, ký lúc ")
    assert cells["THPT-VB"] == "Bản quét có dấu đỏ, số 15/BC-THPTVB khớp với tệp Word"
    assert cells["THPT-TP"] == "Bản quét cần kiểm tra: không thấy dấu đỏ"
    assert cells["PGD-KA"] == (
        "Bản quét cần kiểm tra: số văn bản khác tệp Word (bản PDF: 16/BC-PGDKA, tệp Word: 15/BC-PGDKA)"
    )
    assert cells["THPT-KA"] == f"Bản ký số cần kiểm tra: chữ ký số của đơn vị khác ({NQ})"
    assert cells["THPT-HB"] == "Bản ký số cần kiểm tra: tệp đã bị sửa sau khi ký số"
    assert cells["TT-AD"] == "Bản PDF cần kiểm tra: tệp PDF xuất từ Word, chưa ký"
    assert cells["THPT-TPH"] == "Chưa nhận"
    doubts = digest.campaign_context(cs, None, DIGEST_AT, ZONE)["stamped"]["doubts"]
    assert {d["name"] for d in doubts} == {
        "Trường THPT Hồng Bàng",
        "Trường THPT Kiến An",
        "Trường THPT chuyên Trần Phú",
        "Phòng GDĐT quận Kiến An",
        "Trung tâm GDNN-GDTX huyện An Dương",
    }


@needs_ocr
def test_staff_accept_a_doubtful_copy_on_the_page_or_the_command_line(campaign: Settings, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(campaign.data_dir.parent, root)
    settings = config.load(root / "mailbot.toml")
    staff = logged_in(settings)
    page_path = f"{C}/institutions/THPT-TP"
    page = staff.get(page_path).text
    assert "<b>Bản có dấu đỏ:</b> Bản quét cần kiểm tra: không thấy dấu đỏ" in page
    assert "Chấp nhận bản PDF" in page
    r = staff.post(f"{C}/stamp", data={"csrf": csrf_of(page), "code": "THPT-TP"}, follow_redirects=False)
    assert r.status_code == 303 and flash(staff, page_path) == "ok: Đã chấp nhận bản có dấu đỏ của đơn vị."
    page = staff.get(page_path).text
    assert "Cán bộ đã chấp nhận ngày" in page and "Bỏ chấp nhận bản PDF" in page
    assert f"<b>{USER}</b>: Chấp nhận bản có dấu đỏ (PDF)" in page
    assert status_json(settings)["THPT-TP"]["stamped"] is True

    done = mailbot(settings, "stamp", "accept", "PGD-KA", "--campaign", CAMPAIGN, "--by", "cán bộ A")
    assert done.returncode == 0 and "PGD-KA Phòng GDĐT quận Kiến An: stamped copy for antq-2023 accepted" in done.stdout
    assert status_json(settings)["PGD-KA"]["stamped"] is True and status_json(settings)["PGD-KA"]["stamp_accepted"]
    undone = mailbot(settings, "stamp", "accept", "PGD-KA", "--campaign", CAMPAIGN, "--undo", "--by", "cán bộ B")
    assert undone.returncode == 0 and "acceptance removed" in undone.stdout
    assert status_json(settings)["PGD-KA"]["stamped"] is False
    unknown = mailbot(settings, "stamp", "accept", "PGD-KAA", "--campaign", CAMPAIGN)
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr and "did you mean PGD-KA" in unknown.stderr
    a = store.actions
    with store.connect(settings.db_url).connect() as conn:
        rows = conn.execute(select(a.c.action, a.c.actor, a.c.detail).where(a.c.action.like("stamp%"))).all()
    assert [(r.action, r.actor, r.detail) for r in rows] == [
        ("stamp_accept", USER, "antq-2023 THPT-TP"),
        ("stamp_accept", "cán bộ A", "antq-2023 PGD-KA"),
        ("stamp_accept_undo", "cán bộ B", "antq-2023 PGD-KA"),
    ]


@needs_ocr
def test_the_school_is_told_in_its_thread_what_to_fix(campaign: Settings) -> None:
    """The receipt went out before the check; a doubt the school can fix follows it in the same thread, once."""
    o = store.outbox
    with store.connect(campaign.db_url).connect() as conn:
        sent = conn.execute(select(o).where(o.c.kind == "stamp_doubt").order_by(o.c.id)).all()
        receipts = {r.message_pk: r for r in conn.execute(select(o).where(o.c.kind.like("ack%")))}
        codes = dict(conn.execute(select(store.institutions.c.id, store.institutions.c.code)).all())
        ids = dict(conn.execute(select(store.messages.c.id, store.messages.c.message_id)).all())
    told = {codes[r.institution_id]: r for r in sent}
    assert set(told) == {"THPT-HB", "THPT-KA", "THPT-TP", "PGD-KA", "TT-AD"}  # not the verified ones
    emails = {r["code"]: r["emails"][0] for r in samples.load_demo_roster() if r["emails"]}
    for code, row in told.items():
        assert row.recipients == [emails[code]] and row.status == "sent"
        assert row.id > receipts[row.message_pk].id  # after the message's own receipt
        msg = message_from_bytes(row.raw, policy=default)
        assert msg["In-Reply-To"] == ids[row.message_pk] and msg["In-Reply-To"].startswith("<stamp-")
        assert msg["Subject"].startswith("Re: ") and msg["Auto-Submitted"] == "auto-replied"
    text = message_from_bytes(told["THPT-TP"].raw, policy=default).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Kính gửi: Trường THPT chuyên Trần Phú" in text and "chưa xác nhận được, vì:" in text
    assert "  - không thấy dấu đỏ" in text and "cùng số và ngày với tệp Word đã gửi" in text
    other = message_from_bytes(told["THPT-KA"].raw, policy=default).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"chữ ký số của đơn vị khác ({NQ})" in other and "bằng chứng thư số của chính đơn vị" in other
