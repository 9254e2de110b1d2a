"""Identification beyond tests/test_identify.py: name variants, shared and deactivated addresses, review reasons
(pure: no server, no database, milliseconds)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mailbot.ingest.identify import Roster, identify, institution_of, name_variants, normalise_address
from mailbot.models import Attachment, Campaign, FileKind, IdentifiedBy, InboundMail, Institution

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2023, 12, 5, 17, 0, tzinfo=VN)
CAMPAIGN = Campaign("antq-2023", "Báo cáo ANTQ", DEADLINE)
NQ = Institution("THPT-NQ", "Trường THPT Ngô Quyền", "THPT", ("thptngoquyen@haiphong.edu.vn",))
LC = Institution("PGD-LC", "Phòng Giáo dục và Đào tạo quận Lê Chân", "Phòng GDĐT", ("pgdlechan@haiphong.edu.vn",))
TN = Institution("TT-TN", "Trung tâm GDNN-GDTX huyện Thủy Nguyên", "GDNN-GDTX", ("ttthuynguyen@haiphong.edu.vn",))


def mail(sender: str = "someone@gmail.com", subject: str = "", files: tuple[Attachment, ...] = ()) -> InboundMail:
    return InboundMail(sender, "", subject, "<m@x>", DEADLINE - timedelta(days=1), files)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Trường THPT Ngô Quyền", {"truong thpt ngo quyen", "thpt ngo quyen"}),
        # the usual abbreviations are folded in: "Giáo dục và Đào tạo" is "GDĐT", as schools write it
        ("Phòng Giáo dục và Đào tạo quận Lê Chân", {"phong gddt quan le chan", "phong gddt le chan"}),
        (
            "Trung tâm GDNN-GDTX huyện Thủy Nguyên",
            {"trung tam gdnn gdtx huyen thuy nguyen", "trung tam gdnn gdtx thuy nguyen"},
        ),
    ],
)
def test_name_variants_drop_the_kind_of_place(name, expected):
    assert name_variants(name) == expected


def test_a_one_word_variant_is_too_vague_to_match():
    assert name_variants("Trường Hoa") == {"truong hoa"}  # "hoa" alone would match anything


@pytest.mark.parametrize(
    "subject",
    ["BC PGD&ĐT Lê Chân", "Báo cáo Phòng GDĐT quận Lê Chân", "phong giao duc va dao tao le chan gui bao cao"],
)
def test_abbreviations_and_no_diacritics_name_the_office(subject):
    assert identify(mail(subject=subject), Roster.of((NQ, LC, TN)), (CAMPAIGN,)).institution == LC


def test_address_matching_ignores_case_and_display_name():
    assert normalise_address('"Văn thư" <ThptNgoQuyen@HaiPhong.edu.vn>') == NQ.emails[0]


def test_the_address_wins_over_a_name_in_the_subject():
    verdict = identify(mail(NQ.emails[0], subject="Báo cáo của PGD Lê Chân"), Roster.of((NQ, LC)), (CAMPAIGN,))
    assert verdict.institution == NQ and verdict.identified_by is IdentifiedBy.ADDRESS


def test_names_are_counted_across_subject_file_names_and_headings():
    word = Attachment("BC THPT Ngo Quyen.docx", FileKind.DOCX, b"x", heading="TRƯỜNG THPT NGÔ QUYỀN")
    verdict = identify(mail(subject="Báo cáo PGD Lê Chân", files=(word,)), Roster.of((NQ, LC)), (CAMPAIGN,))
    assert verdict.institution == NQ and verdict.identified_by is IdentifiedBy.NAME  # two sources against one
    assert "Ngô Quyền" in verdict.reason


def test_an_address_shared_by_two_institutions_is_settled_by_name_or_held():
    shared = "vanthu@haiphong.edu.vn"
    a = Institution("A", "Trường THPT Ngô Quyền", "THPT", (shared,))
    b = Institution("B", "Trường THPT Lê Chân", "THPT", (shared,))
    roster = Roster.of((a, b))
    settled = identify(mail(shared, subject="Báo cáo THPT Lê Chân"), roster, (CAMPAIGN,))
    assert settled.institution == b and settled.identified_by is IdentifiedBy.ADDRESS
    held = identify(mail(shared, subject="Báo cáo"), roster, (CAMPAIGN,))
    assert held.needs_review and f"địa chỉ {shared} thuộc nhiều đơn vị" in held.reason


def test_an_address_handed_on_belongs_to_the_active_institution():
    old = Institution("OLD", "Trường THPT Cũ", "THPT", (NQ.emails[0],), active=False)
    inst, how, _ = institution_of(mail(NQ.emails[0]), Roster.of((old, NQ)))
    assert inst == NQ and how is IdentifiedBy.ADDRESS


def test_a_deactivated_institution_is_known_by_address_held_with_the_reason_and_not_by_name():
    gone = Institution("GONE", "Trường THPT Hải An", "THPT", ("thpthaian@haiphong.edu.vn",), active=False)
    roster = Roster.of((NQ, gone))
    by_address = identify(mail("thpthaian@haiphong.edu.vn"), roster, (CAMPAIGN,))
    assert by_address.institution == gone and by_address.campaign_id is None
    assert "đã ngừng theo dõi" in by_address.reason
    assert identify(mail(subject="Báo cáo THPT Hải An"), roster, (CAMPAIGN,)).institution is None


def test_a_forwarded_message_is_attributed_to_the_roster_address_it_forwards():
    forwarded = InboundMail("nhanvien@gmail.com", "", "Fwd: BC", "<m@x>", DEADLINE, (), (TN.emails[0],))
    verdict = identify(forwarded, Roster.of((NQ, TN)), (CAMPAIGN,))
    assert verdict.institution == TN and verdict.identified_by is IdentifiedBy.NAME
    assert TN.emails[0] in verdict.reason


@pytest.mark.parametrize(
    ("campaigns", "reason"),
    [
        ((), "không có đợt báo cáo nào đang mở"),
        ((Campaign("pgd", "Chỉ PGD", DEADLINE, groups=("Phòng GDĐT",)),), "không có đợt báo cáo nào đang mở"),
        (
            (CAMPAIGN, Campaign("stem", "STEM", DEADLINE, keywords=("STEM",))),
            "nhiều đợt báo cáo đang mở, không xác định được thư thuộc đợt nào: antq-2023, stem",
        ),
    ],
)
def test_review_reasons_for_the_campaign(campaigns, reason):
    verdict = identify(mail(NQ.emails[0]), Roster.of((NQ,)), campaigns)
    assert verdict.institution == NQ and verdict.campaign_id is None and reason in verdict.reason
