"""Legacy Vietnamese encodings (TCVN3/ABC, VNI) detected per run and converted to Unicode NFC.

Before Unicode, Vietnamese offices typed with ABC (TCVN 5712:1993 "VN3", fonts ``.VnTime``, ``.VnArial``…) or
VNI (fonts ``VNI-Times``, ``VNI-Helve``…). Word keeps such text as the code points of the legacy bytes (Latin-1
for 0xA0–0xFF), so it reads as ``B¸o c¸o`` (TCVN3) or ``Baùo caùo`` (VNI) until converted here.

TCVN3 (VN3) is single-byte: lower-case letters and the seven base capitals Ă Â Ê Ô Ơ Ư Đ; toned capitals are
drawn by the "H" fonts (``.VnTimeH``), which show the lower-case code points as capitals. 0xB0–0xB4 are the
combining tone marks. The full standard (VN1, glibc's ``TCVN5712-1``) also puts capitals at 0x01–0x17 and
0x80–0x9F and a few more; ABC fonts do not (Word stores 0x80–0x9F as Windows punctuation ’ “ ” – — …), so
those are left alone.

VNI writes a letter as its base plus a following code for the vowel shape and tone (``aù`` = á, ``aâ`` = â,
``aá`` = ấ, ``aê`` = ă…), with single codes for đ (``ñ``), ơ (``ô``), ư (``ö``), the toned i's and ỵ (``î``).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "TCVN3",
    "VNI",
    "convert_run",
    "detect",
    "font_encoding",
    "font_matters",
    "from_unicode",
    "is_uppercase_font",
    "to_unicode",
]

ENCODINGS = ("unicode", "tcvn3", "vni")

# ---------------------------------------------------------------- TCVN3 (ABC, TCVN 5712:1993 VN3)

# Code point as Word stores it (= the legacy byte) → Unicode. Checked against glibc iconv in tests/test_vnenc.py.
TCVN3: dict[str, str] = {
    # base capitals and lower-case letters with a shape mark, and đ
    "\xa1": "Ă",
    "\xa2": "Â",
    "\xa3": "Ê",
    "\xa4": "Ô",
    "\xa5": "Ơ",
    "\xa6": "Ư",
    "\xa7": "Đ",
    "\xa8": "ă",
    "\xa9": "â",
    "\xaa": "ê",
    "\xab": "ô",
    "\xac": "ơ",
    "\xad": "ư",
    "\xae": "đ",
    # the five tone marks, combining (used to build capitals in the non-H fonts)
    "\xb0": "\u0300",
    "\xb1": "\u0309",
    "\xb2": "\u0303",
    "\xb3": "\u0301",
    "\xb4": "\u0323",
    # a ă â: grave, hook, tilde, acute, dot
    "\xb5": "à",
    "\xb6": "ả",
    "\xb7": "ã",
    "\xb8": "á",
    "\xb9": "ạ",
    "\xbb": "ằ",
    "\xbc": "ẳ",
    "\xbd": "ẵ",
    "\xbe": "ắ",
    "\xc6": "ặ",
    "\xc7": "ầ",
    "\xc8": "ẩ",
    "\xc9": "ẫ",
    "\xca": "ấ",
    "\xcb": "ậ",
    # e ê
    "\xcc": "è",
    "\xce": "ẻ",
    "\xcf": "ẽ",
    "\xd0": "é",
    "\xd1": "ẹ",
    "\xd2": "ề",
    "\xd3": "ể",
    "\xd4": "ễ",
    "\xd5": "ế",
    "\xd6": "ệ",
    # i
    "\xd7": "ì",
    "\xd8": "ỉ",
    "\xdc": "ĩ",
    "\xdd": "í",
    "\xde": "ị",
    # o ô ơ
    "\xdf": "ò",
    "\xe1": "ỏ",
    "\xe2": "õ",
    "\xe3": "ó",
    "\xe4": "ọ",
    "\xe5": "ồ",
    "\xe6": "ổ",
    "\xe7": "ỗ",
    "\xe8": "ố",
    "\xe9": "ộ",
    "\xea": "ờ",
    "\xeb": "ở",
    "\xec": "ỡ",
    "\xed": "ớ",
    "\xee": "ợ",
    # u ư
    "\xef": "ù",
    "\xf1": "ủ",
    "\xf2": "ũ",
    "\xf3": "ú",
    "\xf4": "ụ",
    "\xf5": "ừ",
    "\xf6": "ử",
    "\xf7": "ữ",
    "\xf8": "ứ",
    "\xf9": "ự",
    # y
    "\xfa": "ỳ",
    "\xfb": "ỷ",
    "\xfc": "ỹ",
    "\xfd": "ý",
    "\xfe": "ỵ",
}
# Deliberately absent: the toned capitals the full standard (VN1) puts at 0x01–0x17, 0x80–0x9F and at 0xAF 0xBA
# 0xBF–0xC5 0xCD 0xD9–0xDB 0xE0 0xF0 0xFF. ABC's VN3 fonts have none of them, and mapping them would turn
# Unicode typed into a .VnTime paragraph ("và", "BÁO") into nonsense ("vỔ", "BẦO").

# ---------------------------------------------------------------- VNI (VNI-Windows)

# Legacy sequence (one or two code points) → Unicode; decoded greedily, two-character sequences first.
# Tone codes after a plain vowel: ù acute, ø grave, û hook, õ tilde, ï dot; â circumflex, ê breve (a only);
# circumflex + tone: á à å ã ä; breve + tone: é è ú ü ë. Upper-case letters take the upper-case codes.
VNI: dict[str, str] = {
    "aù": "á",
    "aø": "à",
    "aû": "ả",
    "aõ": "ã",
    "aï": "ạ",
    "aâ": "â",
    "aá": "ấ",
    "aà": "ầ",
    "aå": "ẩ",
    "aã": "ẫ",
    "aä": "ậ",
    "aê": "ă",
    "aé": "ắ",
    "aè": "ằ",
    "aú": "ẳ",
    "aü": "ẵ",
    "aë": "ặ",
    "eù": "é",
    "eø": "è",
    "eû": "ẻ",
    "eõ": "ẽ",
    "eï": "ẹ",
    "eâ": "ê",
    "eá": "ế",
    "eà": "ề",
    "eå": "ể",
    "eã": "ễ",
    "eä": "ệ",
    "í": "í",
    "ì": "ì",
    "æ": "ỉ",
    "ó": "ĩ",
    "ò": "ị",
    "où": "ó",
    "oø": "ò",
    "oû": "ỏ",
    "oõ": "õ",
    "oï": "ọ",
    "oâ": "ô",
    "oá": "ố",
    "oà": "ồ",
    "oå": "ổ",
    "oã": "ỗ",
    "oä": "ộ",
    "ô": "ơ",
    "ôù": "ớ",
    "ôø": "ờ",
    "ôû": "ở",
    "ôõ": "ỡ",
    "ôï": "ợ",
    "uù": "ú",
    "uø": "ù",
    "uû": "ủ",
    "uõ": "ũ",
    "uï": "ụ",
    "ö": "ư",
    "öù": "ứ",
    "öø": "ừ",
    "öû": "ử",
    "öõ": "ữ",
    "öï": "ự",
    "yù": "ý",
    "yø": "ỳ",
    "yû": "ỷ",
    "yõ": "ỹ",
    "î": "ỵ",
    "ñ": "đ",
    "AÙ": "Á",
    "AØ": "À",
    "AÛ": "Ả",
    "AÕ": "Ã",
    "AÏ": "Ạ",
    "AÂ": "Â",
    "AÁ": "Ấ",
    "AÀ": "Ầ",
    "AÅ": "Ẩ",
    "AÃ": "Ẫ",
    "AÄ": "Ậ",
    "AÊ": "Ă",
    "AÉ": "Ắ",
    "AÈ": "Ằ",
    "AÚ": "Ẳ",
    "AÜ": "Ẵ",
    "AË": "Ặ",
    "EÙ": "É",
    "EØ": "È",
    "EÛ": "Ẻ",
    "EÕ": "Ẽ",
    "EÏ": "Ẹ",
    "EÂ": "Ê",
    "EÁ": "Ế",
    "EÀ": "Ề",
    "EÅ": "Ể",
    "EÃ": "Ễ",
    "EÄ": "Ệ",
    "Í": "Í",
    "Ì": "Ì",
    "Æ": "Ỉ",
    "Ó": "Ĩ",
    "Ò": "Ị",
    "OÙ": "Ó",
    "OØ": "Ò",
    "OÛ": "Ỏ",
    "OÕ": "Õ",
    "OÏ": "Ọ",
    "OÂ": "Ô",
    "OÁ": "Ố",
    "OÀ": "Ồ",
    "OÅ": "Ổ",
    "OÃ": "Ỗ",
    "OÄ": "Ộ",
    "Ô": "Ơ",
    "ÔÙ": "Ớ",
    "ÔØ": "Ờ",
    "ÔÛ": "Ở",
    "ÔÕ": "Ỡ",
    "ÔÏ": "Ợ",
    "UÙ": "Ú",
    "UØ": "Ù",
    "UÛ": "Ủ",
    "UÕ": "Ũ",
    "UÏ": "Ụ",
    "Ö": "Ư",
    "ÖÙ": "Ứ",
    "ÖØ": "Ừ",
    "ÖÛ": "Ử",
    "ÖÕ": "Ữ",
    "ÖÏ": "Ự",
    "YÙ": "Ý",
    "YØ": "Ỳ",
    "YÛ": "Ỷ",
    "YÕ": "Ỹ",
    "Î": "Ỵ",
    "Ñ": "Đ",
}

# ---------------------------------------------------------------- decoding machinery

_TCVN3_TRANSLATE = {ord(k): v for k, v in TCVN3.items()}
_TCVN3_KEYS = frozenset(TCVN3)
# Tolerate a code whose case differs from its vowel's ("Aù"): the vowel decides the case.
_VNI_DECODE = {**{k[0] + k[1].swapcase(): v for k, v in VNI.items() if len(k) == 2}, **VNI}
_VNI_PATTERN = re.compile("|".join(re.escape(k) for k in sorted(_VNI_DECODE, key=len, reverse=True)))
_VNI_PAIRS = frozenset(k for k in _VNI_DECODE if len(k) == 2)

# Letters only Unicode text can hold: a run containing any of them is Unicode whatever its font says (people
# often type Unicode into a paragraph still formatted .VnTime; Word substitutes a font and it looks right).
_UNICODE_ONLY = re.compile(
    "[\u0102\u0103\u0110\u0111\u01a0\u01a1\u01af\u01b0\u0300\u0301\u0303\u0309\u0323\u1ea0-\u1ef9]"
)
# TCVN3 letters that are symbols (or rare letters) in Latin-1: B¸o, c¸c, vµ, ®i, Tr\xadêng…
_TCVN3_MARKS = frozenset("¡¢£¤¥¦§¨©ª«¬\xad®°±²³´µ¶·¸¹»¼½¾×÷ÐÞ")
_VNI_VOWELS = frozenset("aeiouyAEIOUYôöÔÖ")


def font_encoding(font: str | None) -> str | None:
    """``"tcvn3"`` for ABC fonts (``.Vn…``), ``"vni"`` for ``VNI-…`` fonts, else None."""
    if not font:
        return None
    name = font.strip().lower()
    if name.startswith(".vn"):
        return "tcvn3"
    if name.startswith(("vni-", "vni ", "vni_")):
        return "vni"
    return None


def is_uppercase_font(font: str | None) -> bool:
    """True for the ABC "H" fonts (``.VnTimeH``, ``.VnArialH``…) that draw every letter as a capital."""
    return font is not None and font_encoding(font) == "tcvn3" and font.strip().endswith("H")


def font_matters(text: str) -> bool:
    """Whether the font may change how ``text`` decodes (False for ASCII and for text that must be Unicode)."""
    if text.isascii() or _UNICODE_ONLY.search(text):
        return False
    return text != text.upper() or not _TCVN3_KEYS.isdisjoint(text) or _VNI_PATTERN.search(text) is not None


def detect(font: str | None, text: str) -> str:
    """How ``text`` (one run in ``font``) is encoded: ``"unicode"``, ``"tcvn3"`` or ``"vni"``.

    Letters that exist only in Unicode settle it first; then the font name; then the characters themselves.
    """
    if _UNICODE_ONLY.search(text):
        return "unicode"
    by_font = font_encoding(font)
    if by_font:
        return by_font
    if text.isascii():
        return "unicode"
    return _detect_by_characters(text)


def _detect_by_characters(text: str) -> str:
    tcvn3 = flanked = vni = 0
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch in _TCVN3_MARKS:
            before = i > 0 and (text[i - 1].isalpha() or text[i - 1] in _TCVN3_MARKS)
            after = i < last and (text[i + 1].isalpha() or text[i + 1] in _TCVN3_MARKS)
            tcvn3 += before or after
            flanked += before and after
        if i < last:
            pair = text[i : i + 2]
            if pair in _VNI_PAIRS or pair in ("öô", "ÖÔ") or (ch in "ñÑ" and text[i + 1] in _VNI_VOWELS):
                vni += 1
    tcvn3_likely = tcvn3 >= 2 and flanked >= 1
    vni_likely = vni >= 2
    if tcvn3_likely and (not vni_likely or tcvn3 >= vni):
        return "tcvn3"
    return "vni" if vni_likely else "unicode"


def to_unicode(text: str, encoding: str, *, upper: bool = False) -> str:
    """``text`` decoded from ``encoding`` (see ``detect``) to Unicode NFC; ``upper`` for the TCVN3 "H" fonts."""
    if encoding == "tcvn3":
        text = text.translate(_TCVN3_TRANSLATE)
    elif encoding == "vni":
        text = _VNI_PATTERN.sub(lambda m: _VNI_DECODE[m.group()], text)
    elif encoding != "unicode":
        raise ValueError(f"unknown encoding {encoding!r}, expected one of {ENCODINGS}")
    text = unicodedata.normalize("NFC", text)
    return _upper(text) if upper else text


def _upper(text: str) -> str:
    upper = text.upper()
    if len(upper) == len(text):
        return upper
    return "".join(ch.upper() if len(ch.upper()) == 1 else ch for ch in text)  # keep ß, ŉ… one character


def convert_run(text: str, font: str | None) -> str:
    """One run's text in Unicode NFC, decoded according to its font and characters."""
    encoding = detect(font, text)
    return to_unicode(text, encoding, upper=encoding == "tcvn3" and is_uppercase_font(font))


# ---------------------------------------------------------------- encoding (for tests and samples)

_TCVN3_ENCODE = {
    v: k for k, v in TCVN3.items() if len(v) == 1 and not unicodedata.combining(v) and (v.islower() or v in "ĂÂÊÔƠƯĐ")
}  # VN3 only: no toned capitals
_TCVN3_TONE_BYTES = {v: k for k, v in TCVN3.items() if unicodedata.combining(v)}
_VNI_ENCODE = {v: k for k, v in VNI.items()}


def from_unicode(text: str, encoding: str) -> str:
    """``text`` as Word stores it when typed in a TCVN3 (VN3) or VNI font; the inverse of ``to_unicode``.

    TCVN3 has no toned capitals: they are written as the capital base plus a combining tone mark (0xB0–0xB4).
    Characters the encoding cannot hold are kept as they are.
    """
    text = unicodedata.normalize("NFC", text)
    if encoding == "unicode":
        return text
    if encoding == "vni":
        return "".join(_VNI_ENCODE.get(ch, ch) for ch in text)
    if encoding != "tcvn3":
        raise ValueError(f"unknown encoding {encoding!r}, expected one of {ENCODINGS}")
    out = []
    for ch in text:
        if ch in _TCVN3_ENCODE:
            out.append(_TCVN3_ENCODE[ch])
            continue
        decomposed = unicodedata.normalize("NFD", ch)
        tone = next((mark for mark in decomposed[1:] if mark in _TCVN3_TONE_BYTES), "")
        base = unicodedata.normalize("NFC", decomposed.replace(tone, "")) if tone else ch
        out.append(_TCVN3_ENCODE.get(base, base) + _TCVN3_TONE_BYTES.get(tone, ""))
    return "".join(out)
