"""A campaign of real-world report shapes through Dovecot: metadata in Unicode, the right warnings."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from openpyxl import load_workbook

from mailbot.demo import samples
from tests.test_docmeta import build

WHEN = datetime(2023, 12, 4, 3, 0, tzinfo=UTC)
TITLE = "Sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023"
ROSTER = {r["code"]: r for r in samples.load_demo_roster()}


def tnef(files: list[tuple[str, bytes]]) -> bytes:
    """A minimal Outlook winmail.dat (MS-OXTNEF): one attachment block per file."""

    def attr(level: int, attr_id: int, data: bytes) -> bytes:
        return struct.pack("<BII", level, attr_id, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)

    out = struct.pack("<IH", 0x223E9F78, 1) + attr(1, 0x00089006, struct.pack("<I", 0x00010000))
    for name, data in files:
        out += attr(2, 0x00069002, bytes(14))  # attAttachRendData opens an attachment
        out += attr(2, 0x00018010, name.encode("ascii") + b"\0")  # attAttachTitle
        out += attr(2, 0x0006800F, data)  # attAttachData
    return out


def to_doc(docx: bytes) -> bytes:
    """A real Word 97 .doc, written by LibreOffice from a .docx."""
    soffice = shutil.which("soffice")
    assert soffice, "LibreOffice is needed (scripts/test.sh installs libreoffice-writer-nogui)"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "r.docx").write_bytes(docx)
        subprocess.run(
            [
                soffice,
                f"-env:UserInstallation=file://{tmp}/p",
                "--headless",
                "--convert-to",
                "doc",
                "--outdir",
                tmp,
                f"{tmp}/r.docx",
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
        return (Path(tmp) / "r.doc").read_bytes()


def send(code: str, attachments: list[tuple[str, bytes, str]]) -> bytes:
    row = ROSTER[code]
    return samples.make_email(
        sender=row["emails"][0],
        sender_name=row["name"],
        subject="Báo cáo ANTQ 2023",
        body="Kính gửi Sở",
        attachments=attachments,
    )


OCTET = "application/octet-stream"


def campaign_mail() -> dict[str, bytes]:
    unicode_doc = build(org="TRƯỜNG THPT NGÔ QUYỀN", title=TITLE)
    return {
        "THPT-NQ": send("THPT-NQ", [("bc.docx", unicode_doc, OCTET)]),
        "THPT-TPH": send(
            "THPT-TPH",
            [
                (
                    "bc.docx",
                    build(
                        org="TRƯỜNG THPT THÁI PHIÊN",
                        title=TITLE,
                        number="Số: 21/BC-THPTTP",
                        heading_font=".VnTimeH",
                        style_font=".VnTime",
                    ),
                    OCTET,
                )
            ],
        ),
        "THPT-LQD": send(
            "THPT-LQD",
            [
                (
                    "bc.docx",
                    build(
                        org="TRƯỜNG THPT LÊ QUÝ ĐÔN",
                        title=TITLE,
                        signer="Trần Thị Hương",
                        heading_font="VNI-Times",
                        default_font="VNI-Times",
                    ),
                    OCTET,
                )
            ],
        ),
        "THPT-HB": send(
            "THPT-HB", [("bc.doc", to_doc(build(org="TRƯỜNG THPT HỒNG BÀNG", title=TITLE)), "application/msword")]
        ),
        "THPT-KA": send(
            "THPT-KA",
            [
                (
                    "bc.zip",
                    samples.zip_bytes([("Báo cáo.docx", build(org="TRƯỜNG THPT KIẾN AN", title=TITLE))]),
                    "application/zip",
                )
            ],
        ),
        "THPT-TL": send(
            "THPT-TL",
            [
                (
                    "winmail.dat",
                    tnef([("baocao.docx", build(org="TRƯỜNG THPT TIÊN LÃNG", title=TITLE))]),
                    "application/ms-tnef",
                )
            ],
        ),
        "THPT-AD": send(
            "THPT-AD",
            [
                ("bc.docx", build(org="TRƯỜNG THPT AN DƯƠNG", title=TITLE), OCTET),
                ("bc-dau-do.pdf", samples.minimal_pdf(), "application/pdf"),
            ],
        ),
        "THPT-VB": send(
            "THPT-VB",
            [("bc.docx", build(org="TRƯỜNG THPT VĨNH BẢO", title="Kế hoạch tổ chức Hội khỏe Phù Đổng"), OCTET)],
        ),
        "THPT-DS": send("THPT-DS", [("bc.docx", build(org="TRƯỜNG THPT HẢI AN", title=TITLE), OCTET)]),
        "THPT-NBK": send(
            "THPT-NBK",
            [
                (
                    "bc.docx",
                    build(
                        org="TRƯỜNG THPT NGUYỄN BỈNH KHIÊM",
                        title=TITLE,
                        place_date="Hải Phòng, ngày 05 tháng 12 năm 2021",
                    ),
                    OCTET,
                )
            ],
        ),
    }


def test_every_shape_of_report_yields_unicode_metadata_and_the_right_warnings(workspace, dovecot, tmp_path):
    for raw in campaign_mail().values():
        dovecot.append(raw, WHEN)
    workspace.cli("run", "--once")
    by_code = {i["code"]: i for i in workspace.status()["institutions"]}

    def report(code: str) -> dict:  # type: ignore[type-arg]
        (submission,) = by_code[code]["submissions"]
        return next(f for f in submission["files"] if f["kind"] in ("docx", "doc"))

    for code in ("THPT-NQ", "THPT-TPH", "THPT-LQD", "THPT-HB", "THPT-KA", "THPT-TL", "THPT-AD"):
        meta = report(code)["meta"]
        name = ROSTER[code]["name"].upper().replace("TRƯỜNG ", "TRƯỜNG ")
        assert meta["issuer"] == name, code
        assert meta["title"] == TITLE and meta["doc_type"] == "BÁO CÁO", code
        assert meta["date"] == "2023-12-05", code
        expected = {
            "THPT-TPH": ["legacy_encoding_tcvn3"],
            "THPT-LQD": ["legacy_encoding_vni"],
            "THPT-HB": ["legacy_doc"],
        }
        assert by_code[code]["submissions"][0]["warnings"] == expected.get(code, []), code
    assert report("THPT-TPH")["meta"]["number"] == "21/BC-THPTTP"
    assert report("THPT-LQD")["meta"]["signer_name"] == "Trần Thị Hương"
    assert by_code["THPT-AD"]["signed_copy"] and not by_code["THPT-NQ"]["signed_copy"]
    warnings = {code: by_code[code]["submissions"][0]["warnings"] for code in ("THPT-VB", "THPT-DS", "THPT-NBK")}
    assert warnings["THPT-VB"] == ["title_unrelated"]
    assert warnings["THPT-DS"] == ["heading_other_institution:THPT-HA"]
    assert warnings["THPT-NBK"] == ["date_far:05/12/2021"]

    out = tmp_path / "theo-doi.xlsx"
    workspace.cli("export", "--output", str(out))
    rows = {r[1]: r for ws in load_workbook(out).worksheets[1:-1] for r in ws.iter_rows(min_row=2, values_only=True)}
    assert (
        rows["THPT-TPH"][7] == "Số 21/BC-THPTTP ngày 05/12/2023"
        and rows["THPT-TPH"][8] == f"Báo cáo {TITLE[0].lower()}{TITLE[1:]}"
    )
    assert "Phần đầu văn bản ghi tên đơn vị khác" in rows["THPT-DS"][12]
