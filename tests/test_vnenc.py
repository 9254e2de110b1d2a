"""Legacy Vietnamese encodings: the TCVN3 table against glibc's iconv, VNI against an independent encoder."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import unicodedata

import pytest

from mailbot.documents import vnenc
from mailbot.documents.vnenc import convert_run, detect, from_unicode, to_unicode

TONES = ("", "\u0301", "\u0300", "\u0309", "\u0303", "\u0323")  # none, acute, grave, hook, tilde, dot
SHAPED = {
    "a": ("", "\u0302", "\u0306"),
    "e": ("", "\u0302"),
    "i": ("",),
    "o": ("", "\u0302", "\u031b"),
    "u": ("", "\u031b"),
    "y": ("",),
}


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


LOWER = sorted(
    {nfc(base + shape + tone) for base, shapes in SHAPED.items() for shape in shapes for tone in TONES} - set("aeiouy")
    | {"đ"}
)
LETTERS = LOWER + [ch.upper() for ch in LOWER]  # the 134 letters beyond ASCII


def test_letter_list_is_the_vietnamese_alphabet():
    assert len(LOWER) == 67 and len(set(LETTERS)) == 134


# ---------------------------------------------------------------- TCVN3 against glibc


def _iconv_has_tcvn() -> bool:
    if not shutil.which("iconv"):
        return False
    listing = subprocess.run(["iconv", "-l"], capture_output=True, text=True).stdout
    return "TCVN5712-1" in listing.upper()


needs_iconv = pytest.mark.skipif(not _iconv_has_tcvn(), reason="glibc iconv with TCVN5712-1 not available")


def _iconv(data: bytes, source: str, target: str) -> bytes:
    return subprocess.run(["iconv", "-f", source, "-t", target], input=data, capture_output=True, check=True).stdout


# TCVN 5712 VN1 puts toned capitals here; ABC's VN3 fonts do not (their capitals come from the "H" fonts), Word
# stores bytes 0x80-0x9F in those fonts as Windows punctuation, and mapping 0xC0-0xC5 or 0xE0 would garble
# Unicode typed into a .VnTime paragraph ("và" → "vỔ"), so the module deliberately leaves them alone.
VN1_ONLY = frozenset(
    [
        0x01,
        0x02,
        *range(0x04, 0x07),
        *range(0x11, 0x18),
        *range(0x80, 0xA0),
        0xAF,
        0xBA,
        0xBF,
        *range(0xC0, 0xC6),
        0xCD,
        0xD9,
        0xDA,
        0xDB,
        0xE0,
        0xF0,
        0xFF,
    ]
)


@needs_iconv
def test_tcvn3_table_matches_glibc_iconv_byte_by_byte():
    compared = 0
    for byte in range(256):
        decoded = nfc(_iconv(bytes([byte]), "TCVN5712-1", "UTF-8").decode())
        ours = vnenc.TCVN3.get(chr(byte))
        is_letter = decoded in LETTERS or decoded in "\u0300\u0301\u0303\u0309\u0323"
        if ours is not None:
            assert ours == decoded, f"0x{byte:02X}: ours {ours!r}, iconv {decoded!r}"
            compared += 1
        elif is_letter:
            assert byte in VN1_ONLY, f"0x{byte:02X} is {decoded!r} for iconv but missing from the table"
        else:
            assert decoded == chr(byte), f"0x{byte:02X}: iconv {decoded!r} is neither a letter nor itself"
    assert compared == len(vnenc.TCVN3) == 7 + 5 + 67  # base capitals, tone marks, lower-case letters


@needs_iconv
def test_tcvn3_decodes_text_iconv_encoded():
    text = (
        "trường trung học phổ thông ngô quyền báo cáo sơ kết phong trào toàn dân bảo vệ an ninh tổ quốc "
        "năm 2023 kế hoạch tờ trình quyết định đồng chí nguyễn thị thuỷ thuở khuỷu tay người nghiêng "
        "ĐƯƠNG Ăn Âu Êm Ôn Ơn Ưng " + " ".join(LOWER)
    )
    encoded = _iconv(text.encode(), "UTF-8", "TCVN5712-1")
    assert all(b < 0x80 or b >= 0xA0 for b in encoded)
    assert to_unicode(encoded.decode("latin-1"), "tcvn3") == text


def test_tcvn3_every_letter_lower_directly_upper_through_h_fonts_or_combining_marks():
    values = set(vnenc.TCVN3.values())
    assert set(LOWER) <= values and set("ĂÂÊÔƠƯĐ") <= values
    for letter in LOWER:
        legacy = from_unicode(letter, "tcvn3")
        assert len(legacy) == 1 and legacy in vnenc.TCVN3
        assert convert_run(legacy, ".VnTimeH") == letter.upper()
        assert to_unicode(from_unicode(letter.upper(), "tcvn3"), "tcvn3") == letter.upper()


def test_tcvn3_examples():
    assert convert_run("B¸o c¸o", ".VnTime") == "Báo cáo"
    assert convert_run("B¸O C¸O", ".VnTimeH") == "BÁO CÁO"
    assert convert_run("b¸o c¸o kÕt qu¶", ".VnTimeH") == "BÁO CÁO KẾT QUẢ"
    assert convert_run("b¸o c¸o", ".VnArialH") == "BÁO CÁO"
    assert convert_run("Tr\xadêng THPT Ng« QuyÒn", ".VnTime") == "Trường THPT Ngô Quyền"  # ư is a soft hyphen
    assert from_unicode("Trường", "tcvn3") == "Tr\xadêng"
    assert convert_run("§ång chÝ Lª ThÞ Hoa", ".VnTime") == "Đồng chí Lê Thị Hoa"
    assert convert_run("U\xb1y ban", ".VnTime") == "Ủy ban"  # capital built with a combining tone mark
    assert convert_run("“kÕ ho¹ch” – 2023", ".VnTime") == "“kế hoạch” – 2023"  # Windows punctuation stays


# ---------------------------------------------------------------- VNI against an independent encoder

_VNI_TONE = {"\u0301": "ù", "\u0300": "ø", "\u0309": "û", "\u0303": "õ", "\u0323": "ï"}
_VNI_CIRCUMFLEX = {"": "â", "\u0301": "á", "\u0300": "à", "\u0309": "å", "\u0303": "ã", "\u0323": "ä"}
_VNI_BREVE = {"": "ê", "\u0301": "é", "\u0300": "è", "\u0309": "ú", "\u0303": "ü", "\u0323": "ë"}
_VNI_I = {"\u0301": "í", "\u0300": "ì", "\u0309": "æ", "\u0303": "ó", "\u0323": "ò"}


def vni_encode(text: str) -> str:
    """VNI written from the rules (base letter + shape/tone code), not from the module's table."""
    out = []
    for ch in nfc(text):
        upper = ch.isupper()
        decomposed = unicodedata.normalize("NFD", ch.lower())
        base, marks = decomposed[0], decomposed[1:]
        tone = next((m for m in marks if m in _VNI_TONE), "")
        shape = next((m for m in marks if m in "\u0302\u0306\u031b"), "")
        if ch in "đĐ":
            code = "ñ"
        elif base not in "aeiouy" or not marks:
            out.append(ch)
            continue
        elif shape == "\u031b":
            code = {"o": "ô", "u": "ö"}[base] + _VNI_TONE.get(tone, "")
        elif shape == "\u0302":
            code = base + _VNI_CIRCUMFLEX[tone]
        elif shape == "\u0306":
            code = base + _VNI_BREVE[tone]
        elif base == "i":
            code = _VNI_I[tone]
        elif base == "y" and tone == "\u0323":
            code = "î"
        else:
            code = base + _VNI_TONE[tone]
        out.append(code.upper() if upper else code)
    return "".join(out)


INITIALS = (
    "",
    "b",
    "c",
    "ch",
    "d",
    "đ",
    "g",
    "gh",
    "gi",
    "h",
    "k",
    "kh",
    "l",
    "m",
    "n",
    "ng",
    "ngh",
    "nh",
    "p",
    "ph",
    "qu",
    "r",
    "s",
    "t",
    "th",
    "tr",
    "v",
    "x",
)
RHYMES = (
    "a",
    "ac",
    "ach",
    "ai",
    "am",
    "an",
    "ang",
    "anh",
    "ao",
    "ap",
    "at",
    "au",
    "ay",
    "ăc",
    "ăm",
    "ăn",
    "ăng",
    "ăp",
    "ăt",
    "âc",
    "âm",
    "ân",
    "âng",
    "âp",
    "ât",
    "âu",
    "ây",
    "e",
    "ec",
    "em",
    "en",
    "eng",
    "eo",
    "ep",
    "et",
    "ê",
    "êch",
    "êm",
    "ên",
    "ênh",
    "êp",
    "êt",
    "êu",
    "i",
    "ia",
    "ich",
    "iêc",
    "iêm",
    "iên",
    "iêng",
    "iêp",
    "iêt",
    "iêu",
    "im",
    "in",
    "inh",
    "ip",
    "it",
    "iu",
    "o",
    "oa",
    "oac",
    "oach",
    "oai",
    "oan",
    "oang",
    "oanh",
    "oao",
    "oap",
    "oat",
    "oay",
    "oăc",
    "oăm",
    "oăn",
    "oăng",
    "oăt",
    "oc",
    "oe",
    "oen",
    "oet",
    "oi",
    "om",
    "on",
    "ong",
    "op",
    "ot",
    "ô",
    "ôc",
    "ôi",
    "ôm",
    "ôn",
    "ông",
    "ôp",
    "ôt",
    "ơ",
    "ơi",
    "ơm",
    "ơn",
    "ơp",
    "ơt",
    "u",
    "ua",
    "uân",
    "uâng",
    "uât",
    "uây",
    "uc",
    "uê",
    "uêch",
    "uênh",
    "ui",
    "um",
    "un",
    "ung",
    "uôc",
    "uôi",
    "uôm",
    "uôn",
    "uông",
    "uôt",
    "up",
    "ut",
    "uy",
    "uya",
    "uych",
    "uyên",
    "uyêt",
    "uynh",
    "uyt",
    "uyu",
    "ư",
    "ưa",
    "ưc",
    "ưi",
    "ưng",
    "ươc",
    "ươi",
    "ươm",
    "ươn",
    "ương",
    "ươp",
    "ươt",
    "ươu",
    "ưt",
    "ưu",
    "y",
    "yêm",
    "yên",
    "yêt",
    "yêu",
)


def _toned(rhyme: str, tone: str) -> str:
    """The rhyme with its tone on the vowel that carries it (old-style placement is fine for a round trip)."""
    vowels = [i for i, ch in enumerate(rhyme) if unicodedata.normalize("NFD", ch)[0] in "aeiouy"]
    shaped = [i for i in vowels if len(unicodedata.normalize("NFD", rhyme[i])) > 1]
    if shaped:
        index = shaped[-1]
    elif len(vowels) > 1 and vowels[-1] != len(rhyme) - 1:
        index = vowels[-1]
    else:
        index = vowels[-2] if len(vowels) > 1 else vowels[0]
    return rhyme[:index] + nfc(rhyme[index] + tone) + rhyme[index + 1 :]


SYLLABLES = [initial + _toned(rhyme, tone) for initial, rhyme, tone in itertools.product(INITIALS, RHYMES, TONES)]
SENTENCES = (
    "Sở Giáo dục và Đào tạo Hải Phòng",
    "TRƯỜNG TRUNG HỌC PHỔ THÔNG NGÔ QUYỀN",
    "Ủy ban nhân dân quận Lê Chân",
    "Ước tính đến ngày 05 tháng 12 năm 2023, Ấp Bắc, Ỷ Lan, Ơn nghĩa, Ứng Hòa, Ễnh ương, Ỹ, Ỵ",
    "Nguyễn Thị Thuỷ, Đặng Văn Long, Vũ Thị Lan Anh, Phạm Minh Đức, khuỷu tay, thuở nhỏ, người nghiêng ngả",
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM — Độc lập - Tự do - Hạnh phúc",
)


def test_vni_table_covers_every_letter_and_agrees_with_the_rules():
    assert set(LETTERS) <= set(vnenc.VNI.values())
    for letter in LETTERS:
        assert vnenc.VNI[vni_encode(letter)] == letter
        assert from_unicode(letter, "vni") == vni_encode(letter)


def test_vni_round_trip_on_every_syllable_shape():
    assert len(SYLLABLES) > 25_000
    for chunk in range(0, len(SYLLABLES), 500):
        for case in (str.lower, str.title, str.upper):
            text = case(" ".join(SYLLABLES[chunk : chunk + 500]))
            assert to_unicode(vni_encode(text), "vni") == text
    for sentence in SENTENCES:
        assert convert_run(vni_encode(sentence), "VNI-Times") == sentence


def test_tcvn3_round_trip_on_every_syllable_shape():
    for chunk in range(0, len(SYLLABLES), 500):
        text = " ".join(SYLLABLES[chunk : chunk + 500])
        assert to_unicode(from_unicode(text, "tcvn3"), "tcvn3") == text
        assert convert_run(from_unicode(text, "tcvn3"), ".VnTimeH") == text.upper()
    for sentence in SENTENCES:
        assert convert_run(from_unicode(sentence, "tcvn3"), ".VnTime") == sentence


def test_vni_examples():
    assert convert_run("Baùo caùo", "VNI-Times") == "Báo cáo"
    assert convert_run("Tröôøng", "VNI-Times") == "Trường"
    assert convert_run("Ñoàng", "VNI-Times") == "Đồng"
    assert convert_run("BAÙO CAÙO KEÁT QUAÛ", "VNI-Helve") == "BÁO CÁO KẾT QUẢ"
    assert (
        convert_run("Vieät Nam, Thuûy, Nguyeãn, khuyûu, ñöôïc, Quaûng Ninh", "VNI-Times")
        == "Việt Nam, Thủy, Nguyễn, khuỷu, được, Quảng Ninh"
    )
    assert convert_run("AÙnh, Aùnh", "VNI-Times") == "Ánh, Ánh"  # the vowel decides the case of a loose code


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("font", "expected"),
    [
        (".VnTime", "tcvn3"),
        (".VnTimeH", "tcvn3"),
        (".VnArial", "tcvn3"),
        (".VnCentury Schoolbook", "tcvn3"),
        ("VNI-Times", "vni"),
        ("VNI-Helve-Condense", "vni"),
        ("Times New Roman", "unicode"),
        ("Arial", "unicode"),
        (None, "unicode"),
        ("", "unicode"),
    ],
)
def test_detect_by_font(font, expected):
    assert detect(font, "Baso") == expected


def test_uppercase_fonts():
    assert vnenc.is_uppercase_font(".VnTimeH") and vnenc.is_uppercase_font(".VnArialH")
    assert not vnenc.is_uppercase_font(".VnTime") and not vnenc.is_uppercase_font("VNI-Times")
    assert not vnenc.is_uppercase_font("Arial Narrow H") and not vnenc.is_uppercase_font(None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B¸o c¸o", "tcvn3"),
        ("Tr\xadêng THPT Ng« QuyÒn b¸o c¸o kÕt qu¶", "tcvn3"),
        ("®¹i héi", "tcvn3"),
        ("Baùo caùo", "vni"),
        ("Tröôøng THPT Ngoâ Quyeàn", "vni"),
        ("Ñoàng", "vni"),
        ("Báo cáo", "unicode"),  # Latin-1 letters only, but no legacy pattern
        ("Trường THPT Ngô Quyền", "unicode"),
        ("Hòa Bình, toà án, khoá học", "unicode"),
        ("Microsoft® Word©", "unicode"),
        ("Café où", "unicode"),
        ("plain ASCII", "unicode"),
        ("", "unicode"),
    ],
)
def test_detect_by_characters(text, expected):
    assert detect(None, text) == expected
    assert detect("Times New Roman", text) == expected


def test_unicode_typed_in_a_legacy_font_stays_unicode():
    assert detect(".VnTime", "Trường THPT") == "unicode"
    assert convert_run("Báo cáo kết quả", ".VnTime") == "Báo cáo kết quả"
    assert convert_run("Trường", "VNI-Times") == "Trường"
    assert convert_run("TRƯỜNG", ".VnTimeH") == "TRƯỜNG"


def test_plain_unicode_untouched_and_nfc():
    for text in ("Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023", "Độc lập - Tự do", "", "x"):
        assert convert_run(text, "Times New Roman") == text
        assert convert_run(text, None) == text
    decomposed = unicodedata.normalize("NFD", "Thuỷ Nguyễn")
    assert convert_run(decomposed, None) == "Thuỷ Nguyễn"
    assert to_unicode(decomposed, "unicode") == "Thuỷ Nguyễn"


def test_unknown_encoding_is_an_error():
    with pytest.raises(ValueError):
        to_unicode("x", "viscii")
    with pytest.raises(ValueError):
        from_unicode("x", "viscii")
