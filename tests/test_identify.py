"""Roster matching, campaign routing and lateness (pure functions)."""

import random
import unicodedata
from datetime import datetime, timedelta, timezone

from mailbot.ingest.identify import Roster, identify, match_names
from mailbot.models import Attachment, Campaign, FileKind, IdentifiedBy, InboundMail, Institution
from mailbot.text import fold, strip_marks
from tests.big_roster import city_roster, match_every_phrase, mentions

VN = timezone(timedelta(hours=7))
NQ = Institution("THPT-NQ", "Trường THPT Ngô Quyền", "THPT", ("thptngoquyen@haiphong.edu.vn",))
TP = Institution("THPT-TP", "Trường THPT chuyên Trần Phú", "THPT", ("c3tranphu@haiphong.edu.vn",))
LC = Institution("PGD-LC", "Phòng Giáo dục và Đào tạo quận Lê Chân", "Phòng GDĐT", ("pgdlechan@haiphong.edu.vn",))
TN = Institution("TT-TN", "Trung tâm GDNN-GDTX huyện Thuỷ Nguyên", "GDNN-GDTX", ())
ROSTER = Roster.of((NQ, TP, LC, TN))
DEADLINE = datetime(2023, 12, 5, 17, 0, tzinfo=VN)
CAMPAIGN = Campaign("antq-2023", "Báo cáo ANTQ", DEADLINE)


def mail(sender: str = "someone@gmail.com", subject: str = "", arrived: datetime = DEADLINE, files=()) -> InboundMail:
    return InboundMail(sender, "", subject, "<m@x>", arrived, tuple(files))


def test_fold_ignores_marks_d_and_tone_placement():
    assert fold("Thuỷ Nguyên") == fold("Thủy Nguyên") == "thuy nguyen"
    assert fold("ĐÀO TẠO") == "dao tao"
    assert fold("hoà") == fold("hòa")


def test_strip_marks_drops_every_combining_character_as_the_plain_definition_does():
    """The translate table covers Vietnamese; any other combining mark (Hebrew points, U+034F which has no
    combining class) is handled exactly as dropping every character whose combining class is not 0."""

    def plain(text: str) -> str:
        bare = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
        return bare.replace("đ", "d").replace("Đ", "D")

    pool = "aăâeêioôơuưyđĐAĂÂEÊOÔƠUƯY ̣́̀̃̉͏ְּ⃐᪰xyz-1ảẤỡỰ"
    rng = random.Random(15)
    texts = ["Thuỷ Nguyên", "Trường THPT Ngô Quyền", "Đồ Sơn", "plain ascii", ""]
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(2000)]
    assert [strip_marks(t) for t in texts] == [plain(t) for t in texts]
    assert strip_marks("Thuỷ") == strip_marks("Thủy") == "Thuy"


def test_sender_address_identifies_case_insensitively():
    verdict = identify(mail("thptngoquyen@haiphong.edu.vn".upper().lower()), ROSTER, (CAMPAIGN,))
    assert verdict.institution == NQ and verdict.identified_by is IdentifiedBy.ADDRESS
    assert verdict.campaign_id == "antq-2023" and not verdict.late


def test_name_without_diacritics_in_subject_identifies_by_name():
    verdict = identify(mail(subject="Bao cao THPT Ngo Quyen"), ROSTER, (CAMPAIGN,))
    assert verdict.institution == NQ and verdict.identified_by is IdentifiedBy.NAME


def test_abbreviation_and_admin_words_match_full_name():
    assert match_names("BC PGD&ĐT Lê Chân", ROSTER) == {LC}
    assert match_names("bao cao TT GDNN-GDTX Thủy Nguyên", ROSTER) == {TN}


def test_longer_name_wins_over_its_part():
    other = Institution("THPT-TP2", "Trường THPT Trần Phú", "THPT", ())
    roster = Roster.of((TP, other))
    assert match_names("Báo cáo THPT chuyên Trần Phú", roster) == {TP}


def test_name_in_word_heading_identifies():
    doc = Attachment("baocao.docx", FileKind.DOCX, b"x", heading="SỞ GD&ĐT HẢI PHÒNG\nTRƯỜNG THPT NGÔ QUYỀN")
    verdict = identify(mail(files=[doc]), ROSTER, (CAMPAIGN,))
    assert verdict.institution == NQ


def test_unknown_sender_and_no_name_goes_to_review_with_reason():
    verdict = identify(mail(subject="Gửi báo cáo"), ROSTER, (CAMPAIGN,))
    assert verdict.needs_review and "không nhận ra đơn vị" in verdict.reason


def test_two_names_equally_present_go_to_review():
    verdict = identify(mail(subject="THPT Ngô Quyền và THPT chuyên Trần Phú"), ROSTER, (CAMPAIGN,))
    assert verdict.needs_review and "nhiều đơn vị" in verdict.reason


def test_late_after_deadline():
    verdict = identify(mail(NQ.emails[0], arrived=DEADLINE + timedelta(minutes=1)), ROSTER, (CAMPAIGN,))
    assert verdict.late


def test_routing_by_keywords_when_two_campaigns_are_open():
    other = Campaign("stem-2023", "Báo cáo STEM", DEADLINE, keywords=("STEM",))
    antq = Campaign("antq-2023", "ANTQ", DEADLINE, keywords=("an ninh Tổ quốc",))
    v = identify(mail(NQ.emails[0], subject="Báo cáo phong trào bảo vệ an ninh To quoc"), ROSTER, (other, antq))
    assert v.campaign_id == "antq-2023"
    v = identify(mail(NQ.emails[0], subject="Báo cáo"), ROSTER, (other, antq))
    assert v.campaign_id is None and "nhiều đợt báo cáo" in v.reason


def test_campaign_groups_and_opening_limit_routing():
    only_pgd = Campaign("pgd", "Chỉ Phòng GDĐT", DEADLINE, groups=("Phòng GDĐT",))
    assert identify(mail(NQ.emails[0]), ROSTER, (only_pgd,)).campaign_id is None
    later = Campaign("later", "x", DEADLINE + timedelta(days=30), opens=DEADLINE + timedelta(days=1))
    assert identify(mail(NQ.emails[0]), ROSTER, (later,)).campaign_id is None


def test_forwarded_roster_address_counts_as_name_level():
    m = InboundMail("staff@gmail.com", "", "Fwd: báo cáo", "<m@x>", DEADLINE, (), ("pgdlechan@haiphong.edu.vn",))
    verdict = identify(m, ROSTER, (CAMPAIGN,))
    assert verdict.institution == LC and verdict.identified_by is IdentifiedBy.NAME


def test_names_are_matched_through_the_pair_index_exactly_as_by_trying_every_phrase():
    """The index of the phrases by a pair of adjacent words only skips phrases a text cannot hold: on a city-sized
    roster, whose names share words and sit inside one another, every text finds the same institutions as checking
    each phrase of the roster in turn."""
    for size in (41, 1500):
        roster = Roster.of(city_roster(size))
        assert len(roster.institutions) == size and sum(map(len, roster.by_pair.values())) == len(roster.name_keys)
        texts = mentions(roster.institutions, 1500, seed=size)
        matched = [match_names(text, roster) for text in texts]
        assert matched == [match_every_phrase(text, roster) for text in texts]
        assert sum(len(m) >= 2 for m in matched) > 100 and sum(not m for m in matched) > 50  # the texts vary
