"""What staff and schools read, read back from what the demo produces: receipts, notices, digest, tracker, CLI."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from mailbot import pipeline, store
from mailbot.cli import cli
from mailbot.config import Settings
from mailbot.demo.build import DIGEST_AT, ZONE, build_demo
from mailbot.models import Notice, WarningCode
from mailbot.notify import dispatch, outbox
from mailbot.reports.status import campaign_status
from mailbot.reports.workbook import save_tracker
from mailbot.wording import parse_input_time, warning_texts
from tests.conftest import first_campaign

PLAN = "Thực hiện Kế hoạch số 2516/KH-SGDĐT ngày 30/10/2023 của Sở Giáo dục và Đào tạo"
CONTACT = "bà Nguyễn Thị Lan, chuyên viên Phòng GDTX&ĐH, điện thoại 0225.3xxx.xxx"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = build_demo(tmp_path_factory.mktemp("wording"))
    engine = store.connect(settings.db_url)
    pipeline.run_once(settings, engine)
    return settings


def _mail(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def _texts(msg: email.message.EmailMessage) -> tuple[str, str]:
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def _sent(settings: Settings, kind: str) -> list[email.message.EmailMessage]:
    return [_mail(p) for p in sorted(settings.outbox_dir.glob(f"*-{kind}.eml"))]


def test_a_legacy_doc_gets_one_sentence_and_the_footer_names_the_contact(demo: Settings) -> None:
    receipt = next(m for m in _sent(demo, "ack") if "Kính gửi: Trung tâm GDNN-GDTX huyện Vĩnh Bảo" in _texts(m)[0])
    text, html = _texts(receipt)
    one = "Tệp báo cáo ở định dạng Word cũ (.doc), Sở chưa mở được; đề nghị quý đơn vị gửi lại tệp .docx"
    assert one in text and one in html
    assert "Tệp Word cũ (.doc) chưa đọc được" not in text and "nếu có thể" not in text
    assert len([line for line in text.splitlines() if "Word cũ" in line]) == 1  # one bullet, not two
    for body in (text, html):
        assert f"Mọi thắc mắc xin liên hệ {CONTACT}" in body.replace("&amp;", "&")


def test_warning_texts_merge_the_two_doc_warnings_but_keep_one_alone() -> None:
    doc, unread = Notice(WarningCode.LEGACY_DOC), Notice(WarningCode.LEGACY_DOC_UNREAD)
    assert warning_texts([doc, unread]) == [
        "Tệp báo cáo ở định dạng Word cũ (.doc), Sở chưa mở được; đề nghị quý đơn vị gửi lại tệp .docx"
    ]
    assert len(warning_texts([doc])) == 1 and "Sở chưa mở được" not in warning_texts([doc])[0]


def test_reminder_and_late_notice_cite_the_plan_and_the_contact(demo: Settings) -> None:
    engine = store.connect(demo.db_url)
    for when in (datetime(2023, 12, 2, 8, 0, tzinfo=ZONE), datetime(2023, 12, 6, 8, 0, tzinfo=ZONE)):
        dispatch.queue_notices(demo, engine, when)
        outbox.Delivery.of(demo, engine).deliver_due(when)
    reminder, late = _sent(demo, "reminder")[0], _sent(demo, "late")[0]
    assert reminder["Subject"].startswith("Nhắc gửi báo cáo: ")
    assert late["Subject"] == (
        "V/v đôn đốc gửi báo cáo (đã quá hạn): Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023"
    )
    for msg in (reminder, late):
        text, html = _texts(msg)
        for body in (text, html.replace("&amp;", "&")):
            assert PLAN in body
            assert "bản Word" in body and "gdtx@haiphong.edu.vn" in body
            assert "bản có dấu đỏ" not in body  # the demo campaign does not ask for it (paper = "none")
            assert f"liên hệ Phòng GDTX&ĐH - Sở GDĐT Hải Phòng ({CONTACT})" in body
    for body in _texts(late):
        assert "của Sở Giáo dục và Đào tạo, hạn nộp báo cáo" in body and "hạn gửi" not in body.lower()


def test_notices_read_naturally_without_plan_or_contact(tmp_path: Path) -> None:
    settings = build_demo(tmp_path)
    toml = settings.data_dir.parent / "mailbot.toml"
    toml.write_text(
        "\n".join(
            line
            for line in toml.read_text(encoding="utf-8").splitlines()
            if not line.startswith(("plan =", "contact ="))
        )
        + "\n",
        encoding="utf-8",
    )
    from mailbot import config

    settings = config.load(toml)
    engine = store.connect(settings.db_url)
    pipeline.run_once(settings, engine)
    when = datetime(2023, 12, 2, 8, 0, tzinfo=ZONE)
    dispatch.queue_notices(settings, engine, when)
    outbox.Delivery.of(settings, engine).deliver_due(when)
    text, _ = _texts(_sent(settings, "reminder")[0])
    assert "Thực hiện kế hoạch của Sở Giáo dục và Đào tạo, các đơn vị gửi báo cáo" in text
    assert "liên hệ Phòng GDTX&ĐH - Sở GDĐT Hải Phòng để được hỗ trợ" in text and "Mọi thắc mắc" not in text
    ack_text, _ = _texts(_sent(settings, "ack")[0])
    assert "quý đơn vị không cần trả lời thư này.\n" in ack_text and "Mọi thắc mắc" not in ack_text


def test_digest_wording(demo: Settings) -> None:
    rendered, _ = dispatch.render_digest(demo, store.connect(demo.db_url), DIGEST_AT)
    for body in (rendered.text, rendered.html):
        assert "Báo cáo nhận được kể từ lần tổng hợp trước (16)" in body
        assert "Gửi kèm thư này bảng theo dõi chi tiết (tệp Excel)." in body
        assert "được đính kèm thư này" not in body
    assert rendered.text.count("Trung tâm GDNN-GDTX huyện Vĩnh Bảo: ") == 1  # one warning line for its .doc


def test_tracker_title_is_not_preceded_by_its_repeated_type(demo: Settings, tmp_path: Path) -> None:
    cs = campaign_status(store.connect(demo.db_url), first_campaign(demo))
    wb = load_workbook(save_tracker(cs, ZONE, tmp_path / "t.xlsx", generated_at=DIGEST_AT))
    titles = [row[8] for ws in wb.worksheets[1:-1] for row in ws.iter_rows(min_row=2, values_only=True) if row[8]]
    assert "Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023" in titles
    assert not [t for t in titles if t.upper().startswith("BÁO CÁO BÁO CÁO") or t.startswith("BÁO CÁO ")]


def test_archive_names_carry_the_arrival_in_vietnam_time(demo: Settings) -> None:
    folder = demo.archive_dir / "antq-2023" / "THPT" / "THPT-TP - Trường THPT chuyên Trần Phú"
    (report,) = [p.name for p in folder.iterdir()]
    assert report.startswith("20231201-091200_")  # received at 09:12 on 01/12/2023, Vietnam time (02:12 UTC)


def test_staff_read_vietnamese_after_a_command(tmp_path: Path) -> None:
    demo_run = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path)])
    assert demo_run.exit_code == 0, demo_run.output
    out = demo_run.output
    assert "Đã xử lý 18 thư: 16 báo cáo được ghi nhận, 1 thư không kèm tệp Word, 1 thư chờ cán bộ xem xét" in out
    assert "Thư đi: đã gửi 18, chờ gửi lại 0, gửi không thành công 0" in out
    assert "processed" not in out and "(antq-2023)" not in out
    # the demo's web instructions show the pages at the demo's moment, not years after its deadline
    config_path = tmp_path / "mailbot.toml"
    assert f"--config {config_path} --now 2023-12-07T07:30 web" in out
    remind = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailbot",
            "--config",
            str(config_path),
            "--now",
            "2023-12-02T08:00",
            "remind",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert remind.returncode == 0, remind.stderr
    assert "dự kiến – thư nhắc hạn – THPT-TPH – thptthaiphien@haiphong.edu.vn" in remind.stdout
    assert "thư nhắc hạn, đôn đốc sẽ được gửi hôm nay (chạy thử, chưa gửi)" in remind.stderr


def test_form_dates_are_read_as_staff_type_them() -> None:
    assert parse_input_time("08/12/2023 17:00", ZONE) == datetime(2023, 12, 8, 17, 0, tzinfo=ZONE)
    assert parse_input_time(" 8/12/2023  7:05 ", ZONE) == datetime(2023, 12, 8, 7, 5, tzinfo=ZONE)
    assert parse_input_time("08/12/2023", ZONE) == datetime(2023, 12, 8, 23, 59, tzinfo=ZONE)
    assert parse_input_time("2023-12-08T17:00", ZONE) == datetime(2023, 12, 8, 17, 0, tzinfo=ZONE)
    for wrong in ("12/31/2023 17:00", "31/02/2023", "08/12/2023 24:00", "mai", ""):
        assert parse_input_time(wrong, ZONE) is None, wrong
