"""The one reader of a Word file: a received .docx is parsed once, its heading and its metadata come from that
parse, and the size limit is applied in one place."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailbot.demo import samples
from mailbot.documents import wordwalk, wordxml
from mailbot.documents.decree30 import DocMeta, describe, read_meta
from mailbot.documents.vnenc import from_unicode
from mailbot.documents.wordxml import Paragraph, Table, read_blocks
from mailbot.models import FileKind, WarningCode
from tests.test_docmeta import body_xml, p, package
from tests.test_parse import mail, parsed
from tests.word_trees import TreeMaker, readings

REPORT = samples.make_report_docx("Trường THPT Ngô Quyền")
# Not laid out as Decree 30 asks: no motto, no type line. Its first lines, a text box included, name the school.
TEXT_BOX = (
    '<w:p><w:r><w:t>Kèm theo: </w:t></w:r><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing>'
    "<w:txbxContent>" + p("Trường THPT Ngô Quyền") + "</w:txbxContent></w:drawing></mc:Choice>"
    "<mc:Fallback><w:pict><w:txbxContent>" + p("Trường THPT Ngô Quyền") + "</w:txbxContent></w:pict>"
    "</mc:Fallback></mc:AlternateContent></w:r></w:p>"
)
PLAIN = package(
    body_xml(
        p(from_unicode("Sở Giáo dục và Đào tạo", "tcvn3"), ".VnTime")
        + TEXT_BOX
        + "".join(p(f"Dòng {i}.") for i in range(1, 20))
    )
)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the passes over a document.xml."""
    calls: list[int] = []
    real = wordwalk.parse_document

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(wordxml, "parse_document", counted)
    return calls


def test_a_received_report_is_parsed_once_for_its_heading_and_its_metadata(parses: list[int]) -> None:
    (f,) = parsed(mail([("bc.docx", REPORT, "application/octet-stream")])).files
    assert len(parses) == 1
    assert f.kind is FileKind.DOCX and f.meta is not None
    assert f.meta.issuer == "TRƯỜNG THPT NGÔ QUYỀN" and f.meta.doc_type == "BÁO CÁO"
    assert f.heading.splitlines()[:3] == [f.meta.issuer_parent, f.meta.issuer, f.meta.doc_type]


def test_a_file_not_laid_out_as_decree_30_is_named_by_its_first_lines_from_the_same_parse(parses: list[int]) -> None:
    (f,) = parsed(mail([("bc.docx", PLAIN, "application/octet-stream")])).files
    assert len(parses) == 1
    assert f.meta is not None and not f.meta.issuer and not f.meta.title
    lines = f.heading.splitlines()
    assert lines[0] == "Sở Giáo dục và Đào tạo"  # the TCVN3 run decoded, as the metadata decodes it
    assert "Trường THPT Ngô Quyền" in lines  # the text box, once (its mc:Fallback copy is not read)
    assert lines.count("Trường THPT Ngô Quyền") == 1
    assert len(lines) == wordxml.OPENING_PARAGRAPHS and lines[-1] == "Dòng 9."
    assert WarningCode.LEGACY_ENCODING_TCVN3 in [n.code for n in f.warnings]


def test_one_read_gives_both_the_blocks_and_the_metadata(parses: list[int]) -> None:
    blocks = read_blocks(REPORT)
    meta = describe(blocks)
    assert len(parses) == 1
    assert meta == read_meta(REPORT) and len(parses) == 2  # read_meta is that same read, composed
    assert meta.tables and all(t in blocks.items for t in meta.tables)
    assert any(isinstance(b, Paragraph) and b.text == meta.title for b in blocks.items)
    assert any(isinstance(b, Table) and meta.issuer in b.rows[0][0] for b in blocks.items)
    assert blocks.opening == ()  # the first lines as they stand only when asked for (ingest names files by them)
    assert read_blocks(REPORT, opening=True).opening[:2] == ("SỞ GD&ĐT HẢI PHÒNG", meta.issuer)


def test_the_size_limit_is_one_setting_applied_once(monkeypatch: pytest.MonkeyPatch, parses: list[int]) -> None:
    monkeypatch.setattr(wordxml, "MAX_XML_BYTES", 4096)
    assert read_blocks(REPORT) == wordxml.Blocks(problem=wordxml.TOO_LARGE)
    assert parses == []  # the declared size says so: document.xml is not opened
    (f,) = parsed(mail([("bc.docx", REPORT, "application/octet-stream")])).files
    assert f.meta == DocMeta(warnings=("document_too_large",)) and f.heading == ""
    assert [n.code for n in f.warnings] == [WarningCode.DOCUMENT_TOO_LARGE]
    monkeypatch.setattr(wordxml, "MAX_XML_BYTES", 20 * 1024 * 1024)
    (f,) = parsed(mail([("bc.docx", REPORT, "application/octet-stream")])).files
    assert f.meta is not None and f.meta.issuer and f.warnings == ()


def test_a_small_document_parsed_whole_reads_exactly_as_when_streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ways into the one reader (``_Stream``): a tree walked, or events parsed one by one. Every document at
    hand, the corpus's Word files too when it is beside the project, reads the same both ways."""
    from tests.test_bad_input import CORPUS

    docs = [
        REPORT,
        PLAIN,
        samples.report_for(samples.load_demo_roster()[3], datetime(2023, 11, 2, 8, tzinfo=UTC), pad_to=40_000),
    ]
    docs += [p.read_bytes() for p in sorted(CORPUS.rglob("*.doc[xm]"))] if CORPUS.is_dir() else []
    for data in docs:
        for options in ({}, {"opening": True}, {"max_paragraphs": 5, "opening": True}):
            monkeypatch.setattr(wordxml, "WHOLE_TREE_BYTES", wordxml.MAX_XML_BYTES)
            whole = read_blocks(data, **options)  # type: ignore[arg-type]
            monkeypatch.setattr(wordxml, "WHOLE_TREE_BYTES", 0)
            assert read_blocks(data, **options) == whole  # type: ignore[arg-type]
    assert read_blocks(PLAIN, opening=True).legacy == ("tcvn3",)  # what the comparison covers is read at all


def _root(data: bytes) -> object:
    import io
    import zipfile

    from lxml import etree

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return etree.fromstring(archive.read("word/document.xml"), wordxml._safe_parser())


def test_a_plain_tree_is_walked_once_in_order_and_a_text_box_sends_it_to_the_stream() -> None:
    """The quick walk (``_Plain``) takes the usual report and gives it up for what only the stream reads right."""
    w = "{" + wordwalk.W_NAMESPACES[0] + "}"
    assert wordwalk.Plain(w, None, 12).read(_root(REPORT)) is not None
    assert wordwalk.Plain(w, None, 12).read(_root(PLAIN)) is None  # a text box and its mc:Fallback copy
    nested = package(
        body_xml("<w:tbl><w:tr><w:tc><w:tbl><w:tr><w:tc>" + p("a") + "</w:tc></w:tr></w:tbl></w:tc></w:tr></w:tbl>")
    )
    assert wordwalk.Plain(w, None, 12).read(_root(nested)) is None
    assert read_blocks(nested).items == (Table(rows=(("a",),)),)  # the nested table's text joins its cell


def test_the_quick_walk_reads_random_trees_exactly_as_the_stream_does() -> None:
    """Random trees, plain and odd (text boxes, fallbacks, ruby, nesting, rows and cells out of place, tracked
    changes, properties not first): wherever the quick walk does not give up, it reads what the stream reads."""
    maker = TreeMaker(seed=20261201)
    taken = given_up = 0
    for _ in range(1500):
        root = maker.document()
        for max_paragraphs, opening in ((None, 0), (None, 12), (3, 5), (1, 1)):
            plain, exact = readings(root, max_paragraphs, opening)
            if plain is None:
                given_up += 1
            else:
                taken += 1
                assert plain == exact
    assert taken > 2500 and given_up > 500  # both ways were exercised


def test_a_received_report_is_opened_once_for_sniffing_and_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    opened: list[int] = []
    real = zipfile.ZipFile._RealGetContents  # type: ignore[attr-defined]

    def counted(self: zipfile.ZipFile) -> None:
        opened.append(1)
        real(self)

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", counted)
    (f,) = parsed(mail([("bc.docx", REPORT, "application/octet-stream")])).files
    assert f.kind is FileKind.DOCX and f.meta is not None and f.meta.issuer
    assert len(opened) == 1  # its central directory read once, not once to sniff and again to read
    (bad,) = parsed(mail([("bc.docx", REPORT[:300], "application/octet-stream")])).files
    assert bad.kind is FileKind.DOCX and WarningCode.UNREADABLE_DOCX in [n.code for n in bad.warnings]
