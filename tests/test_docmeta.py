"""Decree 30 metadata from .docx: sample reports, TCVN3 and VNI documents, drafts, tables and hostile input."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import docx
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn

from mailbot.demo.samples import DEFAULT_TITLE, STAT_HEADER, make_report_docx
from mailbot.documents import wordxml
from mailbot.documents.decree30 import DocMeta, read_meta
from mailbot.documents.vnenc import font_encoding, from_unicode, is_uppercase_font
from mailbot.documents.wordxml import Table

BODY = (
    "Thực hiện Kế hoạch của Sở Giáo dục và Đào tạo Hải Phòng, nhà trường báo cáo kết quả thực hiện như sau:",
    "I. KẾT QUẢ THỰC HIỆN",
    "Nhà trường đã tổ chức 12 buổi tuyên truyền, phổ biến giáo dục pháp luật về an ninh, trật tự, an toàn "
    "giao thông cho 1.250 lượt cán bộ, giáo viên, nhân viên và học sinh; phối hợp với Công an phường tổ chức "
    "ký cam kết không vi phạm pháp luật. Trường học an toàn, không để xảy ra vụ việc phức tạp.",
    "II. PHƯƠNG HƯỚNG NĂM 2024",
    "Tiếp tục đẩy mạnh công tác tuyên truyền, nâng cao nhận thức của cán bộ, giáo viên và học sinh; duy trì "
    "các mô hình tự quản về an ninh, trật tự trong trường học; phối hợp chặt chẽ với lực lượng Công an.",
)
NUMBERS = (
    ("TT", "Nội dung", "Số buổi", "Số lượt người"),
    ("1", "Tuyên truyền pháp luật", "12", "1.250"),
    ("2", "Ngoại khóa phòng chống ma túy", "4", "860"),
    ("3", "Diễn tập phòng cháy, chữa cháy", "2", "1.100"),
)


# ---------------------------------------------------------------- building documents with python-docx


def _legacy(text: str, font: str | None) -> str:
    """``text`` as Word stores it when typed in ``font`` (lower-case letters in a TCVN3 "H" font)."""
    encoding = font_encoding(font)
    if encoding is None:
        return text
    return from_unicode(text.lower() if is_uppercase_font(font) else text, encoding)


def _para(container, text: str, font: str | None, *, center: bool = False, bold: bool = False, first: bool = False):
    paragraph = container.paragraphs[0] if first else container.add_paragraph()
    if center:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for i, line in enumerate(text.split("\n")):
        if i:
            paragraph.add_run().add_break()
        run = paragraph.add_run(_legacy(line, font))
        run.bold = bold or None
        if font:
            run.font.name = font
    return paragraph


def _set_default_font(document, font: str) -> None:
    rfonts = (
        document.styles.element.find(qn("w:docDefaults"))
        .find(qn("w:rPrDefault"))
        .find(qn("w:rPr"))
        .find(qn("w:rFonts"))
    )
    for theme in ("w:asciiTheme", "w:hAnsiTheme"):
        rfonts.attrib.pop(qn(theme), None)
    rfonts.set(qn("w:ascii"), font)
    rfonts.set(qn("w:hAnsi"), font)


def build(
    *,
    heading_font: str | None = None,
    body_font: str | None = None,
    style_font: str | None = None,
    default_font: str | None = None,
    parent: str = "SỞ GD&ĐT HẢI PHÒNG",
    org: str = "TRƯỜNG THPT NGÔ QUYỀN",
    number: str = "Số: 15/BC-THPTNQ",
    place_date: str = "Hải Phòng, ngày 05 tháng 12 năm 2023",
    doc_type: str | None = "BÁO CÁO",
    title: str = "Kết quả công tác bảo đảm an ninh, trật tự năm 2023",
    body: tuple[str, ...] = BODY,
    table: tuple[tuple[str, ...], ...] | None = None,
    position: str = "HIỆU TRƯỞNG",
    signer: str = "Nguyễn Văn An",
    about: str | None = None,
) -> bytes:
    """A Decree 30 report; fonts at run level (``heading_font`` for the capitals, ``body_font``), on the Normal
    style (``style_font``) or in the document defaults (``default_font``)."""
    document = docx.Document()
    if style_font:
        document.styles["Normal"].font.name = style_font
    if default_font:
        _set_default_font(document, default_font)
    inherited = style_font or default_font
    text_font = body_font or inherited  # what the runs without a font of their own are typed in

    def body_para(container, text, **kw):
        paragraph = _para(container, _legacy(text, text_font) if not body_font else text, body_font, **kw)
        return paragraph

    header = document.add_table(rows=2, cols=2)
    (left, right), (below_left, below_right) = (row.cells for row in header.rows)
    _para(left, parent, heading_font, center=True, first=True)
    _para(left, org, heading_font, center=True, bold=True)
    _para(right, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", heading_font, center=True, bold=True, first=True)
    body_para(right, "Độc lập - Tự do - Hạnh phúc", center=True, bold=True)
    body_para(right, "-------------------", center=True)
    body_para(below_left, number, center=True, first=True)
    if about:
        body_para(below_left, about, center=True)
    body_para(below_right, place_date, center=True)
    if doc_type:
        _para(document, doc_type, heading_font, center=True, bold=True)
        body_para(document, title, center=True, bold=True)
        body_para(document, "-----o0o-----", center=True)
    for text in body:
        body_para(document, text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table):
            for cell, value in zip(row.cells, values):
                body_para(cell, value, first=True)
        body_para(document, "Trên đây là báo cáo của nhà trường./.")
    signature = document.add_table(rows=1, cols=2)
    left, right = signature.rows[0].cells
    body_para(left, "Nơi nhận:", first=True, bold=True)
    body_para(left, "- Sở GDĐT (để b/c);")
    body_para(left, "- Lưu: VT.")
    _para(right, position, heading_font, center=True, bold=True, first=True)
    body_para(right, "(Đã ký)", center=True)
    body_para(right, "")
    body_para(right, signer, center=True, bold=True)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def package(document_xml: str | bytes, styles_xml: str | None = None) -> bytes:
    """A minimal .docx around a hand-written document.xml."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        archive.writestr("word/document.xml", document_xml)
        if styles_xml:
            archive.writestr("word/styles.xml", styles_xml)
    return buffer.getvalue()


W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def body_xml(inner: str, namespace: str = W) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{namespace}" '
        f'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body>{inner}'
        f"<w:sectPr/></w:body></w:document>"
    )


def p(text: str, font: str | None = None) -> str:
    props = f'<w:rPr><w:rFonts w:ascii="{font}" w:hAnsi="{font}"/></w:rPr>' if font else ""
    return f'<w:p><w:r>{props}<w:t xml:space="preserve">{text}</w:t></w:r></w:p>'


def python_docx_words(data: bytes) -> int:
    document = docx.Document(io.BytesIO(data))
    words = sum(len(p.text.split()) for p in document.paragraphs)
    return words + sum(len(c.text.split()) for t in document.tables for row in t.rows for c in row.cells)


# ---------------------------------------------------------------- the sample report (Unicode)


def test_sample_report_every_field():
    data = make_report_docx("Trường THPT Ngô Quyền", pad_to=40_000)
    meta = read_meta(data)
    assert meta == DocMeta(
        issuer="TRƯỜNG THPT NGÔ QUYỀN",
        issuer_parent="SỞ GD&ĐT HẢI PHÒNG",
        number="15/BC-THPTNQ",
        number_blank=False,
        place="Hải Phòng",
        date=dt.date(2023, 12, 5),
        date_blank=False,
        doc_type="BÁO CÁO",
        title=DEFAULT_TITLE,
        signer_position="HIỆU TRƯỞNG",
        signer_name="Nguyễn Văn A",
        word_count=python_docx_words(data),
        tables=meta.tables,
        warnings=(),
    )
    assert meta.word_count > 1000
    (table,) = meta.tables
    assert table.rows[0] == STAT_HEADER and len(table.rows) == 4


def test_sample_report_university_with_deputy_signer():
    data = make_report_docx(
        "Trường Đại học Hàng hải Việt Nam",
        number="112/BC-ĐHHHVN",
        date=dt.date(2024, 1, 9),
        signer="Trần Văn Hùng",
        position="KT. HIỆU TRƯỞNG\nPHÓ HIỆU TRƯỞNG",
        issuing_body_parent="BỘ GIAO THÔNG VẬN TẢI",
        title="Báo cáo tổng kết năm 2023",
    )
    meta = read_meta(data)
    assert (meta.issuer, meta.issuer_parent) == ("TRƯỜNG ĐẠI HỌC HÀNG HẢI VIỆT NAM", "BỘ GIAO THÔNG VẬN TẢI")
    assert (meta.number, meta.number_blank, meta.place, meta.date) == (
        "112/BC-ĐHHHVN",
        False,
        "Hải Phòng",
        dt.date(2024, 1, 9),
    )
    assert (meta.doc_type, meta.title) == ("BÁO CÁO", "Báo cáo tổng kết năm 2023")
    assert (meta.signer_position, meta.signer_name) == ("KT. HIỆU TRƯỞNG\nPHÓ HIỆU TRƯỞNG", "Trần Văn Hùng")
    assert meta.warnings == ()


def test_max_paragraphs_reads_only_the_heading():
    data = make_report_docx("Trường THPT Ngô Quyền", pad_to=40_000)
    meta = read_meta(data, max_paragraphs=8)
    assert (meta.issuer, meta.number, meta.date, meta.doc_type) == (
        "TRƯỜNG THPT NGÔ QUYỀN",
        "15/BC-THPTNQ",
        dt.date(2023, 12, 5),
        "BÁO CÁO",
    )
    assert meta.signer_name == "" and meta.warnings == ("truncated",)
    assert meta.word_count < read_meta(data).word_count


# ---------------------------------------------------------------- built documents


def test_unicode_document_built_with_python_docx():
    data = build(heading_font="Times New Roman", body_font="Times New Roman")
    meta = read_meta(data)
    assert meta == DocMeta(
        issuer="TRƯỜNG THPT NGÔ QUYỀN",
        issuer_parent="SỞ GD&ĐT HẢI PHÒNG",
        number="15/BC-THPTNQ",
        place="Hải Phòng",
        date=dt.date(2023, 12, 5),
        doc_type="BÁO CÁO",
        title="Kết quả công tác bảo đảm an ninh, trật tự năm 2023",
        signer_position="HIỆU TRƯỞNG",
        signer_name="Nguyễn Văn An",
        word_count=python_docx_words(data),
        tables=(),
        warnings=(),
    )


def test_tcvn3_document_vntimeh_headings_and_vntime_body_style():
    data = build(heading_font=".VnTimeH", style_font=".VnTime")
    raw = docx.Document(io.BytesIO(data))
    assert raw.paragraphs[0].text == "b¸o c¸o"  # what python-docx (or any naive reader) sees
    assert raw.paragraphs[1].text.startswith("KÕt qu¶")
    meta = read_meta(data)
    assert (meta.issuer, meta.issuer_parent) == ("TRƯỜNG THPT NGÔ QUYỀN", "SỞ GD&ĐT HẢI PHÒNG")
    assert (meta.number, meta.number_blank) == ("15/BC-THPTNQ", False)
    assert (meta.place, meta.date, meta.date_blank) == ("Hải Phòng", dt.date(2023, 12, 5), False)
    assert (meta.doc_type, meta.title) == ("BÁO CÁO", "Kết quả công tác bảo đảm an ninh, trật tự năm 2023")
    assert (meta.signer_position, meta.signer_name) == ("HIỆU TRƯỞNG", "Nguyễn Văn An")
    assert meta.tables == ()
    assert meta.word_count == python_docx_words(data)
    assert meta.warnings == ("legacy_encoding_tcvn3",)


def test_tcvn3_document_fonts_on_runs_with_a_table():
    data = build(heading_font=".VnArialH", body_font=".VnTime", table=NUMBERS, title="Về công tác an ninh")
    assert docx.Document(io.BytesIO(data)).tables[1].rows[2].cells[1].text == "Ngo¹i khãa phßng chèng ma tóy"
    meta = read_meta(data)
    assert meta.title == "Về công tác an ninh"
    assert meta.doc_type == "BÁO CÁO" and meta.issuer == "TRƯỜNG THPT NGÔ QUYỀN"
    assert meta.tables == (Table(NUMBERS),)
    assert meta.signer_name == "Nguyễn Văn An"


def test_vni_document_font_from_document_defaults():
    data = build(
        heading_font="VNI-Times",
        default_font="VNI-Times",
        org="TRƯỜNG THCS ĐỒNG HÒA",
        parent="UBND QUẬN KIẾN AN",
        number="Số: 07/KH-THCSĐH",
        doc_type="KẾ HOẠCH",
        title="Tổ chức Ngày hội toàn dân bảo vệ an ninh Tổ quốc",
        position="KT. HIỆU TRƯỞNG\nPHÓ HIỆU TRƯỞNG",
        signer="Phạm Thị Thuỷ",
        place_date="Kiến An, ngày 19 tháng 8 năm 2023",
    )
    assert docx.Document(io.BytesIO(data)).paragraphs[0].text == "KEÁ HOAÏCH"
    assert read_meta(data) == DocMeta(
        issuer="TRƯỜNG THCS ĐỒNG HÒA",
        issuer_parent="UBND QUẬN KIẾN AN",
        number="07/KH-THCSĐH",
        number_blank=False,
        place="Kiến An",
        date=dt.date(2023, 8, 19),
        date_blank=False,
        doc_type="KẾ HOẠCH",
        title="Tổ chức Ngày hội toàn dân bảo vệ an ninh Tổ quốc",
        signer_position="KT. HIỆU TRƯỞNG\nPHÓ HIỆU TRƯỞNG",
        signer_name="Phạm Thị Thuỷ",
        word_count=python_docx_words(data),
        tables=(),
        warnings=("legacy_encoding_vni",),
    )


def _shown_in_capitals(data: bytes, stored: set[str]) -> bytes:
    """The runs holding one of the ``stored`` texts get Word's "All caps" (typed in lower case, shown in capitals)."""
    document = docx.Document(io.BytesIO(data))
    runs = [r for t in document.tables for row in t.rows for c in row.cells for p in c.paragraphs for r in p.runs]
    marked = [r for r in runs if r.text in stored]
    for run in marked:
        run.font.all_caps = True
    assert {r.text for r in marked} == stored
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_vni_capitals_typed_as_capitals_or_shown_by_all_caps():
    # VNI-Windows as documented (base letter + shape/tone byte; capitals take the capital codes Ö Ô Ù Ø Û Ä Â À):
    # TRƯỜNG = T R Ö ÔØ N G, HIỆU = H I EÄ U, TRƯỞNG = T R Ö ÔÛ N G, NGÔ = N G OÂ, QUYỀN = Q U Y EÀ N.
    documented = {
        "TRÖÔØNG THPT NGOÂ QUYEÀN": "TRƯỜNG THPT NGÔ QUYỀN",
        "HIEÄU TRÖÔÛNG": "HIỆU TRƯỞNG",
        "Tröôøng THPT Ngoâ Quyeàn": "Trường THPT Ngô Quyền",
        "Hieäu tröôûng": "Hiệu trưởng",
    }
    assert {from_unicode(text, "vni"): text for text in documented.values()} == documented
    typed = build(heading_font="VNI-Times", org="TRƯỜNG THPT NGÔ QUYỀN", position="HIỆU TRƯỞNG")
    shown = _shown_in_capitals(
        build(heading_font="VNI-Times", org="Trường THPT Ngô Quyền", position="Hiệu trưởng"),
        {"Tröôøng THPT Ngoâ Quyeàn", "Hieäu tröôûng"},
    )
    for data in (typed, shown):
        meta = read_meta(data)
        assert (meta.issuer, meta.signer_position, meta.signer_name) == (
            "TRƯỜNG THPT NGÔ QUYỀN",
            "HIỆU TRƯỞNG",
            "Nguyễn Văn An",
        )
        assert meta.warnings == ("legacy_encoding_vni",)


def test_unicode_typed_into_a_legacy_style_is_kept():
    data = build(style_font=".VnTime", heading_font=".VnTimeH", body=("Trường học an toàn, thân thiện.",))
    document = docx.Document(io.BytesIO(data))
    document.add_paragraph("Nhà trường đề nghị Sở xem xét.")  # Unicode in a .VnTime paragraph
    buffer = io.BytesIO()
    document.save(buffer)
    meta = read_meta(buffer.getvalue())
    assert meta.title == "Kết quả công tác bảo đảm an ninh, trật tự năm 2023"
    assert meta.signer_name == "Nguyễn Văn An"


def test_draft_with_blank_number_and_date():
    data = build(
        heading_font="Times New Roman",
        number="Số:        /BC-THPTNQ",
        place_date="Hải Phòng, ngày      tháng      năm 2023",
        body=("Nội dung báo cáo.",),
        signer="Nguyễn Văn An",
    )
    meta = read_meta(data)
    assert (meta.number, meta.number_blank) == ("/BC-THPTNQ", True)
    assert (meta.place, meta.date, meta.date_blank) == ("Hải Phòng", None, True)
    assert (meta.doc_type, meta.issuer, meta.signer_name) == ("BÁO CÁO", "TRƯỜNG THPT NGÔ QUYỀN", "Nguyễn Văn An")
    assert meta.warnings == ("blank_template",)


def test_dotted_blanks_count_as_blank():
    data = build(number="Số: ........./KH-THPTNQ", place_date="Hải Phòng, ngày ... tháng ... năm 20...")
    meta = read_meta(data)
    assert (meta.number, meta.number_blank, meta.date, meta.date_blank) == ("/KH-THPTNQ", True, None, True)
    assert "blank_template" not in meta.warnings  # the body is written


def test_impossible_date_is_flagged():
    meta = read_meta(build(place_date="Hải Phòng, ngày 31 tháng 02 năm 2023"))
    assert (meta.place, meta.date, meta.date_blank) == ("Hải Phòng", None, False)
    assert meta.warnings == ("bad_date",)


def test_data_table_is_listed_layout_tables_are_not():
    data = build(table=NUMBERS)
    meta = read_meta(data)
    assert meta.tables == (Table(NUMBERS),)
    assert meta.tables[0].rows[3] == ("3", "Diễn tập phòng cháy, chữa cháy", "2", "1.100")
    assert meta.signer_name == "Nguyễn Văn An" and meta.number == "15/BC-THPTNQ"
    assert meta.word_count == python_docx_words(data)


def test_letter_without_type_line_is_a_cong_van():
    data = build(
        doc_type=None,
        about="V/v báo cáo kết quả công tác\nan ninh, trật tự năm 2023",
        body=("Kính gửi: Sở Giáo dục và Đào tạo Hải Phòng", *BODY),
    )
    meta = read_meta(data)
    assert (meta.doc_type, meta.title) == ("CÔNG VĂN", "báo cáo kết quả công tác an ninh, trật tự năm 2023")
    assert (meta.number, meta.issuer) == ("15/BC-THPTNQ", "TRƯỜNG THPT NGÔ QUYỀN")


def test_one_row_heading_with_the_number_under_the_issuer():
    document = docx.Document()
    left, right = document.add_table(rows=1, cols=2).rows[0].cells
    for i, line in enumerate(
        (
            "UBND HUYỆN THỦY NGUYÊN",
            "TRƯỜNG TRUNG HỌC CƠ SỞ",
            "LẠI XUÂN",
            "--------",
            "Số: 45/THCS-LX",
            "V/v tổ chức ngoại khóa",
            "phòng chống ma túy",
        )
    ):
        _para(left, line, None, first=not i)
    for i, line in enumerate(
        (
            "CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            "Độc lập – Tự do – Hạnh phúc",
            "______________________",
            "Thủy Nguyên, ngày 3 tháng 10 năm 2023",
        )
    ):
        _para(right, line, None, first=not i)
    for line in (
        "Kính gửi: Các trường THCS trong huyện",
        "Trường THCS Lại Xuân tổ chức ngoại khóa cho học sinh.",
        "HIỆU TRƯỞNG",
        "",
        "Trần Thị Bình",
    ):
        _para(document, line, None)
    buffer = io.BytesIO()
    document.save(buffer)
    meta = read_meta(buffer.getvalue())
    assert (meta.issuer, meta.issuer_parent) == ("TRƯỜNG TRUNG HỌC CƠ SỞ LẠI XUÂN", "UBND HUYỆN THỦY NGUYÊN")
    assert (meta.number, meta.place, meta.date) == ("45/THCS-LX", "Thủy Nguyên", dt.date(2023, 10, 3))
    assert (meta.doc_type, meta.title) == ("CÔNG VĂN", "tổ chức ngoại khóa phòng chống ma túy")
    assert (meta.signer_position, meta.signer_name) == ("HIỆU TRƯỞNG", "Trần Thị Bình")


def test_empty_document():
    buffer = io.BytesIO()
    docx.Document().save(buffer)
    assert read_meta(buffer.getvalue()) == DocMeta(warnings=("empty_document",))


def test_heading_only_is_empty_and_a_blank_template():
    data = build(number="Số:    /BC-THPTNQ", place_date="Hải Phòng, ngày    tháng    năm 2023", body=())
    meta = read_meta(data)
    assert meta.doc_type == "BÁO CÁO" and meta.signer_name == "Nguyễn Văn An"
    assert meta.warnings == ("empty_document", "blank_template")


# ---------------------------------------------------------------- hand-written XML: layouts and structure


def test_heading_laid_out_with_tabs_and_signature_in_paragraphs():
    inner = "".join(
        p(t)
        for t in (
            "UBND QUẬN LÊ CHÂN\tCỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            "PHÒNG GIÁO DỤC VÀ ĐÀO TẠO\tĐộc lập - Tự do - Hạnh phúc",
            "Số: 231/TTr-PGDĐT\tLê Chân, ngày 02 tháng 3 năm 2024",
            "TỜ TRÌNH",
            "Về việc đề nghị khen thưởng",
            "Kính gửi: Ủy ban nhân dân quận Lê Chân",
            "Phòng Giáo dục và Đào tạo kính trình Ủy ban nhân dân quận xem xét, quyết định./.",
            "TRƯỞNG PHÒNG",
            "",
            "",
            "Đỗ Quang Huy",
            "Nơi nhận:",
            "- Như trên;",
            "- Lưu: VT.",
        )
    )
    meta = read_meta(package(body_xml(inner.replace("\t", "</w:t></w:r><w:r><w:tab/><w:t>"))))
    assert (meta.issuer, meta.issuer_parent) == ("PHÒNG GIÁO DỤC VÀ ĐÀO TẠO", "UBND QUẬN LÊ CHÂN")
    assert (meta.number, meta.place, meta.date) == ("231/TTr-PGDĐT", "Lê Chân", dt.date(2024, 3, 2))
    assert (meta.doc_type, meta.title) == ("TỜ TRÌNH", "Về việc đề nghị khen thưởng")
    assert (meta.signer_position, meta.signer_name) == ("TRƯỞNG PHÒNG", "Đỗ Quang Huy")
    assert meta.warnings == ()


def test_type_and_title_on_one_line():
    inner = p("BÁO CÁO KẾT QUẢ THI ĐUA NĂM HỌC 2022-2023") + p("Nội dung.")
    meta = read_meta(package(body_xml(inner)))
    assert (meta.doc_type, meta.title) == ("BÁO CÁO", "KẾT QUẢ THI ĐUA NĂM HỌC 2022-2023")


def test_runs_soft_hyphen_element_breaks_and_text_boxes():
    tcvn = '<w:rPr><w:rFonts w:ascii=".VnTime" w:hAnsi=".VnTime"/></w:rPr>'
    inner = (
        f"<w:p><w:r>{tcvn}<w:t>Tr</w:t><w:softHyphen/><w:t>êng THPT</w:t></w:r>"
        f'<w:r><w:t xml:space="preserve"> Kiến An</w:t></w:r>'
        "<w:r><w:drawing><w:txbxContent><w:p><w:r><w:t>IN A TEXT BOX</w:t></w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>BOXED TABLE</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
        "</w:txbxContent></w:drawing></w:r>"
        '<mc:AlternateContent><mc:Choice Requires="w14"><w:r><w:t>!</w:t></w:r></mc:Choice>'
        "<mc:Fallback><w:r><w:t>!</w:t></w:r></mc:Fallback></mc:AlternateContent></w:p>"
        "<w:p><w:del><w:r><w:delText>deleted</w:delText></w:r></w:del><w:r><w:t>A</w:t><w:br/>"
        '<w:t>B</w:t><w:tab/><w:t>C</w:t><w:br w:type="page"/><w:t>D</w:t></w:r></w:p>'
    )
    meta = read_meta(package(body_xml(inner)))
    assert meta.word_count == len(["Trường", "THPT", "Kiến", "An!", "A", "B", "C", "D"])
    assert meta.issuer == "" and meta.tables == () and meta.warnings == ("legacy_encoding_tcvn3",)


def test_runs_in_one_font_decode_together():
    vni = '<w:rPr><w:rFonts w:ascii="VNI-Times" w:hAnsi="VNI-Times"/></w:rPr>'
    inner = (
        f'<w:p><w:r>{vni}<w:t>Ba</w:t></w:r><w:r>{vni}<w:t xml:space="preserve">ùo caùo cuûa Tröô</w:t></w:r>'
        f'<w:r>{vni}<w:t>øng</w:t></w:r><w:r><w:t xml:space="preserve"> (Unicode ở đây)</w:t></w:r></w:p>'
    )
    meta = read_meta(package(body_xml(inner)))
    assert meta.word_count == 7 and meta.warnings == ("legacy_encoding_vni",)
    assert (
        read_meta(package(body_xml("<w:p><w:r><w:t>BÁO CÁO</w:t></w:r></w:p>" + inner))).title
        == "Báo cáo của Trường (Unicode ở đây)"
    )


def test_damaged_styles_do_not_spoil_the_document():
    hostile = BILLION_LAUGHS.replace("w:document", "w:styles").replace(".VnTime", "")
    styles = hostile.replace(
        "<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body>",
        '<w:style w:styleId="x"><w:rPr><w:rFonts w:ascii=".VnTime"/></w:rPr></w:style>',
    )
    meta = read_meta(package(body_xml(p("BÁO CÁO") + p("b¸o c¸o kÕt qu¶ c«ng t¸c") + p("Nội dung.")), styles))
    assert meta.doc_type == "BÁO CÁO" and meta.title == "báo cáo kết quả công tác"  # decided by the characters


def test_nested_and_merged_tables():
    def cell(text: str, props: str = "") -> str:
        return f"<w:tc>{props}{p(text)}</w:tc>"

    nested = f"<w:tc><w:tbl><w:tr>{cell('a')}{cell('b')}</w:tr></w:tbl><w:p/></w:tc>"
    inner = (
        p("Nội dung báo cáo.")
        + "<w:tbl><w:tr>"
        + cell("Nội dung", '<w:tcPr><w:vMerge w:val="restart"/></w:tcPr>')
        + cell("Kết quả", '<w:tcPr><w:gridSpan w:val="2"/></w:tcPr>')
        + "</w:tr>"
        + "<w:tr>"
        + cell("", "<w:tcPr><w:vMerge/></w:tcPr>")
        + cell("Kỳ I")
        + cell("Kỳ II")
        + "</w:tr>"
        + "<w:tr>"
        + cell("Tuyên truyền")
        + cell("5")
        + nested
        + "</w:tr></w:tbl>"
    )
    meta = read_meta(package(body_xml(inner)))
    assert meta.tables == (
        Table((("Nội dung", "Kết quả", "Kết quả"), ("Nội dung", "Kỳ I", "Kỳ II"), ("Tuyên truyền", "5", "a\nb"))),
    )


def test_strict_ooxml_namespace():
    strict = "http://purl.oclc.org/ooxml/wordprocessingml/main"
    meta = read_meta(package(body_xml(p("BÁO CÁO") + p("Nội dung."), strict)))
    assert meta.doc_type == "BÁO CÁO"


def test_style_chain_and_character_style_fonts():
    styles = (
        f'<?xml version="1.0"?><w:styles xmlns:w="{W}"><w:docDefaults><w:rPrDefault><w:rPr>'
        '<w:rFonts w:asciiTheme="minorHAnsi"/></w:rPr></w:rPrDefault></w:docDefaults>'
        '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:rPr><w:rFonts w:ascii="Arial"/>'
        "</w:rPr></w:style>"
        '<w:style w:type="paragraph" w:styleId="Body"><w:basedOn w:val="Base"/></w:style>'
        '<w:style w:type="character" w:styleId="Vni"><w:rPr><w:rFonts w:ascii="VNI-Times"/></w:rPr></w:style>'
        '<w:style w:type="paragraph" w:styleId="Base"><w:rPr><w:rFonts w:ascii=".VnTime"/></w:rPr>'
        "</w:style></w:styles>"
    )
    inner = (
        '<w:p><w:pPr><w:pStyle w:val="Body"/></w:pPr><w:r><w:t>vµ</w:t></w:r></w:p>'
        '<w:p><w:r><w:rPr><w:rStyle w:val="Vni"/></w:rPr><w:t>vaø</w:t></w:r></w:p>'
        "<w:p><w:r><w:t>và</w:t></w:r></w:p>"
        '<w:p><w:pPr><w:pStyle w:val="Missing"/></w:pPr><w:r><w:t>và</w:t></w:r></w:p>'
    )
    data = package(body_xml(inner), styles)
    fonts = wordxml._StyleFonts()
    fonts._read(styles.encode(), "{" + W + "}", {"Body", "Vni", "Missing"})
    assert fonts.resolve(None, "Body") == ".VnTime" and fonts.resolve("Vni", "Body") == "VNI-Times"
    assert fonts.resolve(None, None) == "Arial" and fonts.resolve(None, "Missing") == "Arial"
    assert read_meta(data).word_count == 4
    assert read_meta(data).warnings == ("legacy_encoding_tcvn3", "legacy_encoding_vni")


# ---------------------------------------------------------------- bad input: a warning, never an exception

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
    + f']><w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body>'
    "</w:document>"
)
EXTERNAL_ENTITY = (
    f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    f'<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>'
)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a zip at all",
        b"PK\x03\x04" + b"\x00" * 100,
        make_report_docx("Trường THPT Lê Quý Đôn")[:3000],
        package(BILLION_LAUGHS),
        package(EXTERNAL_ENTITY),
        package("<w:document"),
        package(""),
        package("<html><body>not Word</body></html>"),
        package(b"\xff\xfe<\x00"),
    ],
    ids=[
        "empty",
        "text",
        "zip-header",
        "truncated",
        "billion-laughs",
        "external-entity",
        "broken-xml",
        "empty-part",
        "not-word",
        "bad-encoding",
    ],
)
def test_unreadable(data):
    assert read_meta(data) == DocMeta(warnings=("unreadable_docx",))


def test_zip_without_document_part():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/styles.xml", "<x/>")
    assert read_meta(buffer.getvalue()).warnings == ("unreadable_docx",)


def test_document_part_found_through_relationships():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats'
            '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"'
            ' Target="word/document2.xml"/></Relationships>',
        )
        archive.writestr("word/document2.xml", body_xml(p("BÁO CÁO") + p("Nội dung.")))
    assert read_meta(buffer.getvalue()).doc_type == "BÁO CÁO"


def test_document_too_large(monkeypatch):
    data = make_report_docx("Trường THPT Ngô Quyền")
    monkeypatch.setattr(wordxml, "MAX_XML_BYTES", 4096)
    assert read_meta(data) == DocMeta(warnings=("document_too_large",))


def test_member_larger_than_it_claims():
    """A size field patched down in the zip directories: zipfile stops there and the CRC fails."""
    data = bytearray(make_report_docx("Trường THPT Ngô Quyền"))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        real = archive.getinfo("word/document.xml").file_size
    size = real.to_bytes(4, "little")
    assert data.count(size) >= 2
    data = bytes(data).replace(size, (100).to_bytes(4, "little"))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.getinfo("word/document.xml").file_size == 100
    assert read_meta(data) == DocMeta(warnings=("unreadable_docx",))


def test_reading_stops_at_the_limit():
    limited = wordxml._Limited(io.BytesIO(b"x" * 10_000), 4096)
    assert len(limited.read(4000)) == 4000
    with pytest.raises(wordxml._TooLarge):
        limited.read(4000)


def test_random_damage_never_raises():
    import random

    rng = random.Random(30)
    base = make_report_docx("Trường THPT Ngô Quyền")
    for _ in range(300):
        damaged = bytearray(base)
        for _ in range(rng.randint(1, 12)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        assert isinstance(read_meta(bytes(damaged)), DocMeta)
        assert isinstance(read_meta(base[: rng.randrange(len(base))]), DocMeta)


def test_the_place_and_date_line_is_found_in_any_case_and_only_where_the_expression_finds_it() -> None:
    from mailbot.documents.decree30 import _DATE, find_place_date

    lines = [
        "HẢI PHÒNG, NGÀY 05 THÁNG 12 NĂM 2023",
        "Hải Phòng, Ngày 5 Tháng 12 Năm 2023",
        "Trường THPT Ngô Quyền tổng hợp số liệu",  # "ng" everywhere, no date
        "Hải Phòng, ngay 05 thang 12 nam 2023",  # without marks: not a date line
        "Hải Phòng, nga\u0300y 05 tha\u0301ng 12 năm 2023",  # decomposed: not one either
    ]
    for line in lines:
        found = find_place_date([line])
        assert (found is not None) == bool(_DATE.search(line)), line
    upper = find_place_date(lines[:1])
    assert upper is not None and upper.place == "HẢI PHÒNG" and str(upper.date) == "2023-12-05"
