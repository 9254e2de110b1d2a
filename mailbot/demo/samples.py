"""Sample school emails and Word reports for the demo, tests and benchmarks."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import functools
import hashlib
import io
import random
import re
import struct
import tomllib
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from importlib import resources
from typing import Any
from xml.sax.saxutils import escape

import docx
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from docx.table import Table
from docx.text.paragraph import Paragraph

from mailbot.demo.scans import scan_pdf

VN_TZ = timezone(timedelta(hours=7), "ICT")  # Asia/Ho_Chi_Minh: UTC+7 all year, no DST
DEMO_DEADLINE = datetime(2023, 12, 5, 17, 0, tzinfo=VN_TZ)
CAMPAIGN_ADDRESS = "gdtx@haiphong.edu.vn"
DEFAULT_TITLE = "Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
FILENAME_STYLES = ("rfc2231", "rfc2047", "name_only", "nfd")

RosterRow = dict[str, Any]  # a row of the demo roster: code, name, group (str) and emails (list[str])
Build = Callable[[datetime, str], bytes]  # (arrival, Message-ID) -> the raw message

# Serialise with CRLF and keep headers stored with set_raw() exactly as written (they are pre-folded).
_POLICY = SMTP.clone(refold_source="none")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # what Word itself writes into a .docx

# ---------------------------------------------------------------- Word report

_BODY = (
    ("h", "I. KẾT QUẢ THỰC HIỆN"),
    ("h", "1. Công tác lãnh đạo, chỉ đạo"),
    (
        "p",
        "Ngay từ đầu năm, đơn vị đã quán triệt, triển khai các văn bản chỉ đạo của cấp trên về công tác bảo đảm "
        "an ninh, trật tự; kiện toàn Ban Chỉ đạo xây dựng phong trào toàn dân bảo vệ an ninh Tổ quốc, phân công "
        "nhiệm vụ cụ thể cho từng thành viên; đưa nội dung phong trào vào kế hoạch năm học và tiêu chí thi đua.",
    ),
    ("h", "2. Công tác tuyên truyền, giáo dục"),
    (
        "p",
        "Đơn vị đã tổ chức @@N1@@ buổi tuyên truyền, phổ biến giáo dục pháp luật về an ninh, trật tự, an toàn giao "
        "thông, phòng chống ma túy, tệ nạn xã hội, bạo lực học đường và phòng chống cháy nổ với @@N2@@ lượt cán bộ, "
        "giáo viên, nhân viên, học sinh tham gia; phối hợp với Công an phường, xã tổ chức ký cam kết không vi phạm "
        "pháp luật, không tàng trữ, sử dụng pháo nổ.",
    ),
    ("h", "3. Công tác phối hợp bảo đảm an ninh, trật tự"),
    (
        "p",
        "Đơn vị duy trì chế độ trực bảo vệ 24/24 giờ, thường xuyên kiểm tra hệ thống phòng cháy, chữa cháy; phối hợp "
        "chặt chẽ với lực lượng Công an và chính quyền địa phương giữ gìn an ninh, trật tự khu vực cổng trường. "
        "Trong năm, không để xảy ra vụ việc phức tạp về an ninh, trật tự; @@N3@@ tập thể, cá nhân được khen thưởng.",
    ),
    ("h", "4. Hưởng ứng Ngày hội toàn dân bảo vệ an ninh Tổ quốc (19/8)"),
    (
        "p",
        "Đơn vị tổ chức các hoạt động hưởng ứng Ngày hội toàn dân bảo vệ an ninh Tổ quốc gắn với hoạt động đầu năm "
        "học mới, thu hút đông đảo cán bộ, giáo viên và học sinh tham gia.",
    ),
    ("h", "II. TỒN TẠI, HẠN CHẾ"),
    (
        "p",
        "Một số học sinh còn vi phạm quy định về an toàn giao thông; việc sử dụng mạng xã hội của một bộ phận học "
        "sinh chưa được kiểm soát chặt chẽ.",
    ),
    ("h", "III. PHƯƠNG HƯỚNG, NHIỆM VỤ NĂM 2024"),
    (
        "p",
        "Tiếp tục đẩy mạnh công tác tuyên truyền, nâng cao nhận thức của cán bộ, giáo viên, học sinh về phong trào "
        "toàn dân bảo vệ an ninh Tổ quốc; duy trì, nhân rộng các mô hình tự quản về an ninh, trật tự trong trường "
        "học; phối hợp chặt chẽ với lực lượng Công an trong phòng ngừa, đấu tranh với tội phạm và tệ nạn xã hội.",
    ),
    ("p", "@@PAD@@"),
    ("p", "Trên đây là báo cáo kết quả xây dựng phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023 của @@ORG@@./."),
)

# Material for the appendix lines that pad a report to a given size.
_ACTIVITIES = (
    "tuyên truyền về an toàn giao thông",
    "ngoại khóa phòng chống ma túy",
    "diễn tập phòng cháy, chữa cháy",
    "tọa đàm phòng chống bạo lực học đường",
    "sinh hoạt chuyên đề về an ninh mạng",
    "ký cam kết không sử dụng pháo nổ",
    "hội thi tìm hiểu pháp luật",
    "tập huấn kỹ năng thoát hiểm",
    "tuyên truyền phòng chống tín dụng đen",
    "kiểm tra công tác bảo vệ cơ quan",
    "giao ban an ninh trật tự với Công an phường",
)
_AUDIENCES = (
    "học sinh khối 10",
    "học sinh khối 11",
    "học sinh khối 12",
    "cán bộ, giáo viên, nhân viên",
    "đội viên, đoàn viên",
    "cha mẹ học sinh",
    "lực lượng bảo vệ",
)


def make_report_docx(
    institution_name: str,
    *,
    number: str | None = None,
    date: dt.date = dt.date(2023, 12, 5),
    title: str = DEFAULT_TITLE,
    signer: str = "Nguyễn Văn A",
    position: str = "HIỆU TRƯỞNG",
    issuing_body_parent: str = "SỞ GD&ĐT HẢI PHÒNG",
    pad_to: int = 0,
) -> bytes:
    """A Decree 30/2020-style report; ``pad_to`` adds appendix paragraphs until the file is about that many bytes.

    ``number`` defaults to ``15/BC-`` plus the initials of the institution. A "\\n" in ``position`` starts a new line
    (e.g. ``"KT. HIỆU TRƯỞNG\\nPHÓ HIỆU TRƯỞNG"``). The same arguments always give the same bytes.
    """
    rng = random.Random(f"{institution_name}|{number}|{date}")
    values = {
        "PARENT": issuing_body_parent,
        "ORG_UPPER": institution_name.upper(),
        "ORG": institution_name,
        "NUMBER": f"Số: {number or _default_number(institution_name)}",
        "TITLE": title,
        "PLACE_DATE": f"Hải Phòng, ngày {date.day:02d} tháng {_month(date.month)} năm {date.year}",
        "POSITION": position,
        "SIGNER": signer,
        "N1": str(rng.randint(6, 24)),
        "N2": f"{rng.randint(400, 2600):,}".replace(",", "."),
        "N3": str(rng.randint(2, 9)),
    }
    for i, (sessions, people) in enumerate(statistics(institution_name, number, date), start=1):
        values[f"S{i}"], values[f"P{i}"] = str(sessions), f"{people:,}".replace(",", ".")
    parts = dict(_template_parts())
    parts["docProps/core.xml"] = (
        _fill(parts["docProps/core.xml"], values)
        .replace("2023-01-01T00:00:00Z", f"{date.isoformat()}T07:30:00Z")
        .encode()
    )
    document = _fill(parts["word/document.xml"], values)
    padding = ""
    for _ in range(6):  # converge on the target size: each round adds what is still missing
        parts["word/document.xml"] = _PAD_PARAGRAPH.sub(_constant(padding), document).encode()
        data = _zip_parts(parts)
        if len(data) >= pad_to * 0.98:
            return data
        padding += _padding_xml(rng, pad_to - len(data), not padding)
    return data


def _month(month: int) -> str:
    return f"{month:02d}" if month < 3 else str(month)  # Decree 30: "tháng 01", "tháng 02", then "tháng 3"


def _default_number(name: str) -> str:
    words = [w for w in name.split() if w != "Trường"]
    initials = "".join(w if w.isupper() else w[0] for w in words if w[0].isupper())
    return f"15/BC-{initials}"


def _constant(text: str) -> Callable[[re.Match[str]], str]:
    """A replacement for re.sub that inserts ``text`` as it is (no backslash escapes)."""
    return lambda _match: text


def _fill(xml: bytes | str, values: dict[str, str]) -> str:
    text = xml.decode() if isinstance(xml, bytes) else xml
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", escape(value).replace("\n", '</w:t><w:br/><w:t xml:space="preserve">'))
    return text


_PAD_PARAGRAPH = re.compile(r"<w:p>(?:(?!</w:p>).)*@@PAD@@(?:(?!</w:p>).)*</w:p>", re.S)


def _padding_xml(rng: random.Random, missing: int, first: bool) -> str:
    """Appendix paragraphs whose deflated size is about (rather under) ``missing`` bytes."""
    lines = ["PHỤ LỤC: CÁC HOẠT ĐỘNG ĐÃ TRIỂN KHAI TRONG NĂM 2023"] if first else []
    sample = "".join(_padding_paragraph(rng) for _ in range(40))
    ratio = _deflated_size(sample) / len(sample)  # a small sample compresses worse: the estimate stays under
    paragraphs, size = [_padding_paragraph(rng, t) for t in lines] + [sample], len(sample)
    while size < missing / ratio:
        paragraphs.append(_padding_paragraph(rng))
        size += len(paragraphs[-1])
    return "".join(paragraphs)


def _padding_paragraph(rng: random.Random, text: str | None = None) -> str:
    if text is None:
        cost = f"{rng.randint(1, 95) * 100_000:,}".replace(",", ".")
        text = (
            f"- Ngày {rng.randint(1, 28):02d}/{rng.randint(1, 11):02d}/2023: {rng.choice(_ACTIVITIES)} cho "
            f"{rng.randint(25, 980)} {rng.choice(_AUDIENCES)}, kinh phí {cost} đồng; "
            f"mã hồ sơ {rng.getrandbits(40):010x}."
        )
    return f'<w:p><w:pPr><w:jc w:val="both"/></w:pPr><w:r><w:t>{escape(text)}</w:t></w:r></w:p>'


def _deflated_size(text: str) -> int:
    """Bytes ``text`` takes deflated as a zip member (to estimate padding)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return len(compressor.compress(text.encode()) + compressor.flush())


def _zip_parts(parts: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@functools.cache
def _template_parts() -> tuple[tuple[str, bytes], ...]:
    """The report built once by python-docx with @@PLACEHOLDERS@@; each call only substitutes text."""
    document = docx.Document()
    _set_page_and_font(document)
    _header_table(document)
    _paragraph(document, "BÁO CÁO", bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, space_before=12)
    _paragraph(document, "@@TITLE@@", bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, space_after=12)
    _paragraph(
        document,
        "Thực hiện Kế hoạch của Sở Giáo dục và Đào tạo Hải Phòng về xây dựng phong trào toàn dân "
        "bảo vệ an ninh Tổ quốc năm 2023 của ngành Giáo dục và Đào tạo, @@ORG@@ báo cáo kết quả "
        "thực hiện như sau:",
        indent=True,
    )
    for kind, text in _BODY:
        _paragraph(document, text, bold=kind == "h", indent=kind == "p")
    _statistics_table(document)
    _signature_table(document)
    props = document.core_properties
    props.author = props.last_modified_by = "Admin"
    props.comments = ""
    props.title, props.created, props.modified = "@@TITLE@@", datetime(2023, 1, 1), datetime(2023, 1, 1)
    props.revision = 1
    buffer = io.BytesIO()
    document.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return tuple((name, archive.read(name)) for name in archive.namelist())


def _set_page_and_font(document: docx.document.Document) -> None:
    section = document.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)  # A4
    section.top_margin, section.bottom_margin, section.left_margin, section.right_margin = Cm(2), Cm(2), Cm(3), Cm(2)
    normal = document.styles["Normal"]
    normal.font.name, normal.font.size = "Times New Roman", Pt(14)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "Times New Roman")
    normal.paragraph_format.space_after = Pt(6)


def _paragraph(
    container: Any,  # a Document or a table cell: both have paragraphs and add_paragraph()
    text: str,
    *,
    bold: bool = False,
    italic: bool = False,
    size: float | None = None,
    align: WD_ALIGN_PARAGRAPH = WD_ALIGN_PARAGRAPH.JUSTIFY,
    indent: bool = False,
    space_before: float = 0,
    space_after: float = 6,
    first: bool = False,
) -> Paragraph:
    paragraph: Paragraph = container.paragraphs[0] if first else container.add_paragraph()
    paragraph.alignment = align
    fmt = paragraph.paragraph_format
    fmt.space_before, fmt.space_after = Pt(space_before), Pt(space_after)
    if indent:
        fmt.first_line_indent = Cm(1)
    run = paragraph.add_run(text)
    run.bold, run.italic = bold or None, italic or None
    if size:
        run.font.size = Pt(size)
    return paragraph


def _table(document: docx.document.Document, rows: int, widths: tuple[float, float]) -> Table:
    table: Table = document.add_table(rows=rows, cols=2)
    table.alignment, table.autofit = WD_TABLE_ALIGNMENT.CENTER, False
    for row in table.rows:
        for cell, width in zip(row.cells, widths):
            cell.width = Cm(width)
    return table


STAT_HEADER = ("TT", "Nội dung", "Số buổi", "Số lượt người")
STAT_ROWS = (
    "Tuyên truyền pháp luật về an ninh, trật tự",
    "Ngoại khóa phòng chống ma túy, tội phạm",
    "Diễn tập phòng cháy, chữa cháy",
)


def _statistics_table(document: docx.document.Document) -> None:
    """The figures every school reports, the same shape for all (what `mailbot compile` merges and sums)."""
    _paragraph(document, "Số liệu cụ thể như sau:", indent=True)
    table = document.add_table(rows=len(STAT_ROWS) + 1, cols=len(STAT_HEADER))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, STAT_HEADER):
        cell.text = text
    for i, (row, label) in enumerate(zip(table.rows[1:], STAT_ROWS), start=1):
        for cell, text in zip(row.cells, (str(i), label, f"@@S{i}@@", f"@@P{i}@@")):
            cell.text = text


def demo_template_docx() -> bytes:
    """The demo campaign's report template (mẫu báo cáo): the sample reports' headings, each with what to write
    under it, and their statistics table left blank; what `mailbot demo` attaches to the campaign and consolidates by.
    """
    document = docx.Document()
    _set_page_and_font(document)
    _header_table(document)
    blanks = {
        "@@PARENT@@": "SỞ GD&ĐT HẢI PHÒNG",
        "@@ORG_UPPER@@": "TÊN ĐƠN VỊ",
        "@@NUMBER@@": "Số:     /BC-…",
        "@@PLACE_DATE@@": "…, ngày … tháng 12 năm 2023",
    }
    for cell in document.tables[0]._cells:
        for run in (r for p in cell.paragraphs for r in p.runs):
            run.text = blanks.get(run.text, run.text)
    _paragraph(document, "BÁO CÁO", bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, space_before=12)
    _paragraph(document, DEFAULT_TITLE, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, space_after=12)
    for kind, text in _BODY:
        if kind == "h":
            _paragraph(document, text, bold=True)
            _paragraph(document, "(Đơn vị trình bày ngắn gọn, cụ thể, có số liệu minh họa.)", italic=True, indent=True)
    _paragraph(document, "Số liệu cụ thể như sau:", indent=True)
    _paragraph(document, "Kết quả tuyên truyền, giáo dục trong năm 2023", bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    table = document.add_table(rows=len(STAT_ROWS) + 1, cols=len(STAT_HEADER))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, STAT_HEADER):
        cell.text = text
    for i, (row, label) in enumerate(zip(table.rows[1:], STAT_ROWS), start=1):
        row.cells[0].text, row.cells[1].text = str(i), label
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def statistics(institution_name: str, number: str | None, date: dt.date) -> tuple[tuple[int, int], ...]:
    """The (sessions, people) figures a sample report carries; the same arguments give the same figures."""
    rng = random.Random(f"stats|{institution_name}|{number}|{date}")
    return tuple((rng.randint(1, 12), rng.randint(100, 1800)) for _ in STAT_ROWS)


def _header_table(document: docx.document.Document) -> None:
    """Decree 30 heading: issuing body on the left, national motto on the right, number and place/date below."""
    table = _table(document, 2, (6.5, 9.5))
    (left, right), (number, place) = (r.cells for r in table.rows)
    centre = WD_ALIGN_PARAGRAPH.CENTER
    _paragraph(left, "@@PARENT@@", size=13, align=centre, space_after=0, first=True)
    _paragraph(left, "@@ORG_UPPER@@", bold=True, size=13, align=centre, space_after=0)
    _paragraph(right, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", bold=True, size=13, align=centre, space_after=0, first=True)
    _paragraph(right, "Độc lập - Tự do - Hạnh phúc", bold=True, align=centre, space_after=0)
    _paragraph(number, "@@NUMBER@@", size=13, align=centre, space_before=6, first=True)
    _paragraph(place, "@@PLACE_DATE@@", italic=True, align=centre, space_before=6, first=True)


def _signature_table(document: docx.document.Document) -> None:
    ((left, right),) = (r.cells for r in _table(document, 1, (7.5, 8.5)).rows)
    _paragraph(
        left, "Nơi nhận:", bold=True, italic=True, size=12, align=WD_ALIGN_PARAGRAPH.LEFT, space_after=0, first=True
    )
    for line in ("- Sở GDĐT (Phòng GDTX&ĐH) (để b/c);", "- Lưu: VT."):
        _paragraph(left, line, size=11, align=WD_ALIGN_PARAGRAPH.LEFT, space_after=0)
    _paragraph(right, "@@POSITION@@", bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, space_after=60, first=True)
    _paragraph(right, "@@SIGNER@@", bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)


# ---------------------------------------------------------------- other files


def zip_bytes(files: list[tuple[str, bytes]]) -> bytes:
    """A zip archive; non-ASCII member names are stored as UTF-8 with the language-encoding flag (bit 11) set."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(unicodedata.normalize("NFC", name), (2023, 12, 4, 10, 15, 0))
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)  # zipfile sets bit 11 for a non-ASCII name
    return buffer.getvalue()


def fake_legacy_doc() -> bytes:
    """NOT a real Word 97-2003 file: an OLE2 header and one directory sector naming "WordDocument".

    Enough for content sniffing (magic D0 CF 11 E0 A1 B1 1A E1 plus the UTF-16 stream name); Word would reject it.
    """
    header = OLE_MAGIC + bytes(16) + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
    header = header.ljust(512, b"\0")

    def entry(name: str, kind: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le")
        return encoded.ljust(64, b"\0") + struct.pack("<HBB", len(encoded), kind, 1) + bytes(60)

    directory = entry("Root Entry", 5) + entry("WordDocument", 2) + entry("\x01CompObj", 2) + entry("1Table", 2)
    return header + directory + bytes(1024)


def minimal_pdf(text: str = "scan") -> bytes:
    """A one-page PDF 1.4 with a correct xref table, standing in for a scanned, stamped copy."""
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents 4 0 R>>",
    ]
    stream = f"BT /F1 12 Tf 72 770 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects.append(b"<</Length %d>>stream\n%s\nendstream" % (len(stream), stream))
    return pdf_of(objects, b"1.4")


def pdf_of(objects: list[bytes], version: bytes) -> bytes:
    """A PDF file of these numbered objects (1 is the catalog), with a correct cross-reference table."""
    out, offsets = bytearray(b"%PDF-" + version + b"\n%\xe2\xe3\xcf\xd3\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# ---------------------------------------------------------------- emails

_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


def cp1258_bytes(text: str) -> bytes:
    """``text`` as Vietnamese Windows writes it: precomposed where cp1258 has the letter, else base + tone mark."""
    out = bytearray()
    for char in unicodedata.normalize("NFC", text):
        try:
            out += char.encode("cp1258")
        except UnicodeEncodeError:
            decomposed = unicodedata.normalize("NFD", char)
            base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONE_MARKS))
            out += (base + "".join(c for c in decomposed if c in _TONE_MARKS)).encode("cp1258")
    return bytes(out)


def cp1258_subject(text: str) -> str:
    """``text`` as folded ``=?windows-1258?Q?...?=`` encoded-words, never splitting a letter from its tone mark."""
    words, current = [], ""
    for char in unicodedata.normalize("NFC", text):
        token = "".join(chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in cp1258_bytes(char))
        if len(current) + len(token) > 56:  # 17 + 56 + 2 = 75 characters per encoded-word (RFC 2047)
            words.append(current)
            current = ""
        current += token
    words.append(current)
    return "\n ".join(f"=?windows-1258?Q?{w}?=" for w in words)


def _rfc2047_words(text: str) -> list[str]:
    """UTF-8 base64 encoded-words of at most 75 characters, each holding whole characters."""
    chunks, current = [], ""
    for char in text:
        if len((current + char).encode()) > 39:  # base64 of 39 bytes: a 64-character encoded-word
            chunks.append(current)
            current = ""
        current += char
    chunks.append(current)
    return [f"=?utf-8?B?{base64.b64encode(c.encode()).decode()}?=" for c in chunks]


def _content_type(mimetype: str, name: str) -> str:
    """``mimetype; name*=…`` (RFC 2231) folded as mail clients fold it: the type whole on the first line.

    The email package, folding the header whole, writes a type too long for one line (a .docx's is 71
    characters) as RFC 2047 encoded words, which no client writes and no parser reads back as the type. So the
    parameters are folded after a short stand-in, which the type then replaces."""
    stand_in = EmailMessage(policy=_POLICY)
    stand_in.add_header("Content-Type", "x/x", name=name)
    folded: str = _POLICY.fold("Content-Type", stand_in["Content-Type"])
    return mimetype + folded.removeprefix("Content-Type: x/x").rstrip("\r\n")


def _attachment_part(name: str, data: bytes, mimetype: str, style: str) -> EmailMessage:
    """One base64 attachment, its name written the way a given kind of mail client writes it."""
    if style not in FILENAME_STYLES:
        raise ValueError(f"filename_style must be one of {FILENAME_STYLES}, not {style!r}")
    part = EmailMessage(policy=_POLICY)
    if style in ("rfc2231", "nfd"):
        name = unicodedata.normalize("NFD" if style == "nfd" else "NFC", name)
        part.set_raw("Content-Type", _content_type(mimetype, name))
        part.set_raw("Content-Transfer-Encoding", "base64")
        part.add_header("Content-Disposition", "attachment", filename=name)
    else:
        quoted = '"' + "\n ".join(_rfc2047_words(unicodedata.normalize("NFC", name))) + '"'
        part.set_raw("Content-Type", f"{mimetype};\n\tname={quoted}")
        part.set_raw("Content-Transfer-Encoding", "base64")
        disposition = "attachment" if style == "name_only" else f"attachment;\n\tfilename={quoted}"
        part.set_raw("Content-Disposition", disposition)
    part.set_payload(base64.encodebytes(data).decode("ascii"))
    return part


def _message(
    body: str,
    *,
    sender: str,
    sender_name: str | None,
    to: str,
    subject: str,
    subject_charset: str = "utf-8",
    date: datetime | None,
    message_id: str | None,
    extra_headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A text message with its headers, ready for attachments."""
    msg = EmailMessage(policy=_POLICY)
    msg["Date"] = format_datetime(date or datetime.now(VN_TZ))
    msg.set_raw("From", f"{_display_name(sender_name)} <{sender}>" if sender_name else sender)
    msg["To"] = to
    if subject_charset.lower() in ("windows-1258", "cp1258"):
        msg.set_raw("Subject", cp1258_subject(subject))
    else:
        msg.set_raw("Subject", _encoded_text(subject))
    msg["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2] or None)
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg["MIME-Version"] = "1.0"
    msg.set_content(body, cte="quoted-printable")
    return msg


def _display_name(name: str) -> str:
    """A From display name: as-is (quoted if needed) when ASCII, else one UTF-8 encoded-word, as Gmail writes it.

    One word even when longer than 75 characters: the email package's address parser keeps the folding space
    between two encoded-words of a display name ("Vĩnh Bả o"), so splitting would garble it.
    """
    name = unicodedata.normalize("NFC", name)
    if not name.isascii():
        return f"=?utf-8?B?{base64.b64encode(name.encode()).decode()}?="
    if re.search(r'[()<>@,;:\\".\[\]]', name):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


def _encoded_text(text: str) -> str:
    """An unstructured header value: as-is when ASCII, else folded UTF-8 encoded-words carrying their own spaces.

    Written here rather than by the email package, whose folder can drop the space between two encoded-words.
    """
    text = unicodedata.normalize("NFC", text)
    return text if text.isascii() else "\n ".join(_rfc2047_words(text))


def _boundary(msg: EmailMessage) -> str:
    return "000000000000" + hashlib.sha1(str(msg["Message-ID"]).encode()).hexdigest()[:16]


def make_email(
    *,
    sender: str,
    sender_name: str | None,
    subject: str,
    body: str,
    attachments: list[tuple[str, bytes, str]],
    message_id: str | None = None,
    date: datetime | None = None,
    to: str = CAMPAIGN_ADDRESS,
    filename_style: str = "rfc2231",
    extra_headers: dict[str, str] | None = None,
    subject_charset: str = "utf-8",
) -> bytes:
    """Raw RFC 5322 bytes (CRLF) of a message with a text body and ``(filename, data, mimetype)`` attachments.

    ``filename_style``: ``rfc2231`` (filename*=utf-8''…), ``rfc2047`` (old Outlook: "=?utf-8?B?…?=" in both
    ``filename`` and ``name``), ``name_only`` (only Content-Type ``name``), ``nfd`` (RFC 2231, name in NFD).
    ``subject_charset="windows-1258"`` writes the Subject as cp1258 Q encoded-words.
    """
    msg = _message(
        body,
        sender=sender,
        sender_name=sender_name,
        to=to,
        subject=subject,
        subject_charset=subject_charset,
        date=date,
        message_id=message_id,
        extra_headers=extra_headers,
    )
    if attachments:
        msg.make_mixed()
        msg.set_boundary(_boundary(msg))
        for name, data, mimetype in attachments:
            msg.attach(_attachment_part(name, data, mimetype, filename_style))
    return msg.as_bytes(policy=_POLICY)


def forward_as_attachment(
    inner: bytes,
    *,
    sender: str,
    subject: str,
    sender_name: str | None = None,
    body: str = "Chuyển tiếp báo cáo (thư gốc đính kèm).",
    date: datetime | None = None,
    message_id: str | None = None,
    to: str = CAMPAIGN_ADDRESS,
) -> bytes:
    """A message carrying ``inner`` unchanged, byte for byte, as a ``message/rfc822`` attachment."""
    msg = _message(
        body, sender=sender, sender_name=sender_name, to=to, subject=subject, date=date, message_id=message_id
    )
    msg.make_mixed()
    msg.set_boundary(_boundary(msg))
    part = EmailMessage(policy=_POLICY)
    part.set_raw("Content-Type", "message/rfc822")
    part.set_raw("Content-Transfer-Encoding", "7bit" if inner.isascii() else "8bit")
    part.set_raw("Content-Disposition", "attachment")
    part.set_payload(inner.decode("ascii", "surrogateescape"))  # the generator writes a str payload verbatim
    msg.attach(part)
    return msg.as_bytes(policy=_POLICY)


# ---------------------------------------------------------------- roster and demo campaign


def load_demo_roster() -> list[RosterRow]:
    """The demo roster as dicts ``code, name, group, emails`` (``emails`` a list, possibly empty)."""
    text = resources.files("mailbot.demo.data").joinpath("roster.csv").read_text(encoding="utf-8")
    return [
        {**row, "emails": [e.strip() for e in row["emails"].split(";") if e.strip()]}
        for row in csv.DictReader(io.StringIO(text))
    ]


@dataclass(frozen=True)
class DemoCase:
    """One demo message and what a correct pipeline should conclude from it."""

    arrival: datetime
    raw: bytes
    message_id: str
    expect: str | None  # institution code, or None for the review queue
    late: bool
    files: tuple[str, ...]  # NFC names of the documents inside (after unpacking zips and forwards)
    note: str


_UNIVERSITY_PARENTS = {
    "DH-HP": "UBND THÀNH PHỐ HẢI PHÒNG",
    "DH-HH": "BỘ GIAO THÔNG VẬN TẢI",
    "DH-YD": "BỘ Y TẾ",
    "DH-QLCN": "BỘ GIÁO DỤC VÀ ĐÀO TẠO",
}
_SIGNERS = (
    "Nguyễn Thị Thu Hà",
    "Trần Văn Hùng",
    "Phạm Minh Đức",
    "Vũ Thị Lan Anh",
    "Đỗ Quang Huy",
    "Lê Thị Hồng Nhung",
    "Hoàng Văn Tuấn",
    "Bùi Thị Mai",
    "Đặng Văn Long",
    "Ngô Thị Phương",
)


def _parent_and_position(row: RosterRow) -> tuple[str, str]:
    """Who issues a report's heading, and who signs it, by group (Decree 30 layout)."""
    name, group = row["name"], row["group"]
    if group in ("Phòng GDĐT", "GDNN-GDTX"):  # both sit under the district People's Committee
        district = name.split(" ", 2)[2] if group == "Phòng GDĐT" else name.split(" ", 3)[3]
        return f"UBND {district.upper()}", "TRƯỞNG PHÒNG" if group == "Phòng GDĐT" else "GIÁM ĐỐC"
    if group == "Đại học":
        return _UNIVERSITY_PARENTS.get(row["code"], "BỘ GIÁO DỤC VÀ ĐÀO TẠO"), "KT. HIỆU TRƯỞNG\nPHÓ HIỆU TRƯỞNG"
    return "SỞ GD&ĐT HẢI PHÒNG", "GIÁM ĐỐC" if name.startswith("Trung tâm") else "HIỆU TRƯỞNG"


def report_for(
    row: RosterRow, when: datetime, *, number: int = 15, title: str = DEFAULT_TITLE, pad_to: int = 0
) -> bytes:
    """The Word report a roster institution would send on ``when``."""
    parent, position = _parent_and_position(row)
    signer = _SIGNERS[int(hashlib.sha1(row["code"].encode()).hexdigest(), 16) % len(_SIGNERS)]
    abbreviation = row["code"].replace("-", "")
    return make_report_docx(
        row["name"],
        number=f"{number}/BC-{abbreviation}",
        date=when.date(),
        title=title,
        signer=signer,
        position=position,
        issuing_body_parent=parent,
        pad_to=pad_to,
    )


def _greeting(name: str, extra: str = "") -> str:
    return (
        f"Kính gửi: Phòng GDTX&ĐH - Sở GDĐT Hải Phòng\n\n"
        f"Thực hiện Kế hoạch của Sở GDĐT về xây dựng phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023, "
        f"{name} xin gửi báo cáo (file đính kèm).{extra}\n\nTrân trọng!\n\n--\nVăn thư {name}\n"
    )


def _mid(key: str, domain: str) -> str:
    return f"<{hashlib.sha1(key.encode()).hexdigest()[:24].upper()}@{domain}>"


_SUBJECT = "V/v gửi báo cáo phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023"


def demo_cases(roster_rows: list[RosterRow], base: datetime = DEMO_DEADLINE) -> list[DemoCase]:
    """The demo campaign's messages (demo/data/cases.toml) with their expected outcomes; ``base`` is the deadline.

    Arrival times are offsets from ``base``, so a negative offset is on time and a positive one late.
    """
    rows = {r["code"]: r for r in roster_rows}
    cases: list[DemoCase] = []
    for spec in _case_specs():
        offset, code, filename = _offset(spec.pop("at")), spec.pop("code", None), spec.pop("file", "")
        arrival = base + offset
        message_id = _mid(f"{spec.pop('key')}|{arrival.isoformat()}", spec.pop("domain", "haiphong.edu.vn"))
        forward, note = spec.pop("forward", False), spec.pop("note")
        row = rows[code] if code else {}
        build = _forward_case(row, filename) if forward else _case(row, filename, **spec)
        files = tuple(f for f in (filename, spec.get("scan", "")) if f)
        cases.append(
            DemoCase(arrival, build(arrival, message_id), message_id, code, offset > timedelta(0), files, note)
        )
    return sorted(cases, key=lambda c: c.arrival)


def _case_specs() -> list[dict[str, Any]]:
    text = resources.files("mailbot.demo.data").joinpath("cases.toml").read_text(encoding="utf-8")
    cases: list[dict[str, Any]] = tomllib.loads(text)["case"]
    return cases


_OFFSET = re.compile(r"^(-)?\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?$")


def _offset(text: str) -> timedelta:
    """ "-4d 7h 48m" -> minus 4 days, 7 hours and 48 minutes."""
    match = _OFFSET.match(text.strip())
    if not match:
        raise ValueError(f"demo case: bad offset {text!r}")
    sign, days, hours, minutes = match.groups()
    span = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0))
    return -span if sign else span


def _case(
    row: RosterRow,
    filename: str,
    *,
    sender: str = "",
    second_address: bool = False,
    sender_name: str = "{name}",
    subject: str = _SUBJECT,
    body: str = "",
    extra: str = "",
    attach: str = "report",
    scan: str = "",
    sent_before: int = 25,
    **options: Any,
) -> Build:
    """A message as cases.toml describes it; by default from the institution's roster address, with its report.

    ``{name}`` in ``sender_name`` and ``subject`` is the institution's name; ``body`` replaces the usual greeting
    (with ``extra`` added to it); ``options`` go to the report (``number``) and to make_email."""
    name = row.get("name", "")
    number = options.pop("number", 15)

    def build(arrival: datetime, message_id: str) -> bytes:
        attachments = _attachments(attach, row, filename, arrival, number)
        if scan:
            number_text = f"{number}/BC-{row.get('code', '').replace('-', '')}"
            attachments.append((scan, scan_pdf(name, number_text, arrival.date()), "application/pdf"))
        return make_email(
            sender=sender or row["emails"][1 if second_address else 0],
            sender_name=sender_name.replace("{name}", name),
            subject=subject.replace("{name}", name),
            body=body or _greeting(name, extra),
            attachments=attachments,
            message_id=message_id,
            date=arrival - timedelta(seconds=sent_before),
            filename_style=options.get("style", "rfc2231"),
            extra_headers=options.get("headers"),
            subject_charset=options.get("charset", "utf-8"),
        )

    return build


def _attachments(
    attach: str, row: RosterRow, filename: str, arrival: datetime, number: int
) -> list[tuple[str, bytes, str]]:
    """report: the institution's Word report; zip: that report inside ``filename`` as a .zip; legacy_doc: an old
    .doc; kindergarten: the report of an institution that is not on the roster; none: nothing."""
    if attach == "none":
        return []
    if attach == "legacy_doc":
        return [(filename, fake_legacy_doc(), _mime(filename))]
    if attach == "kindergarten":
        report = make_report_docx(
            "Trường Mầm non tư thục Hoa Sen",
            number="07/BC-MNHS",
            date=arrival.date(),
            issuing_body_parent="UBND QUẬN DƯƠNG KINH",
            signer="Lương Thị Hải Yến",
        )
        return [(filename, report, DOCX_TYPE)]
    if attach == "zip":
        zipped = zip_bytes([(filename, report_for(row, arrival, number=number))])
        return [("Bao cao ANTQ 2023 - THPT Vinh Bao.zip", zipped, _mime("x.zip"))]
    return [(filename, report_for(row, arrival, number=number), _mime(filename))]


def demo_messages(roster_rows: list[RosterRow], base: datetime = DEMO_DEADLINE) -> list[tuple[datetime, bytes]]:
    """``(arrival, raw bytes)`` of the demo campaign's messages, in arrival order; ``base`` is the deadline."""
    return [(case.arrival, case.raw) for case in demo_cases(roster_rows, base)]


def _mime(filename: str) -> str:
    return {
        "docx": DOCX_TYPE,
        "doc": "application/msword",
        "pdf": "application/pdf",
        "zip": "application/x-zip-compressed",
    }.get(filename.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def _forward_case(row: RosterRow, filename: str) -> Build:
    def build(arrival: datetime, message_id: str) -> bytes:
        sent = arrival - timedelta(hours=5, minutes=55)
        inner = make_email(
            sender="nguyenthuhang.gdtx@gmail.com",
            sender_name="Nguyễn Thu Hằng",
            to=row["emails"][1],
            subject="Báo cáo ANTQ 2023 TT GDTX HP",
            body="Chị ơi, em gửi báo cáo phong trào ANTQ năm 2023, chị chuyển Sở giúp em ạ.\n",
            attachments=[(filename, report_for(row, sent), DOCX_TYPE)],
            message_id=_mid(f"inner|{message_id}", "mail.gmail.com"),
            date=sent,
        )
        return forward_as_attachment(
            inner,
            sender=row["emails"][1],
            sender_name="Văn thư TT GDTX Hải Phòng",
            subject="Fwd: Báo cáo ANTQ 2023 TT GDTX HP",
            date=arrival,
            message_id=message_id,
            body=_greeting(row["name"], " Văn thư chuyển tiếp thư gốc của cán bộ phụ trách."),
        )

    return build
