"""A city-sized roster of plausible Vietnamese institution names, texts that name them, and the plain way of matching
them, for the name-matching tests and bench/identify.py.

Names are built the way a department's list reads: a kind of institution, often a person's or a place's name, often
the district ("Trường THCS Lê Lợi quận Ngô Quyền", "Phòng GDĐT huyện An Lão"), so that many names share words and
some names sit inside others, as in a real merged city's roster.
"""

from __future__ import annotations

import random

from mailbot.demo.samples import load_demo_roster
from mailbot.ingest.identify import Roster
from mailbot.models import Institution
from mailbot.text import contains_phrase, fold, strip_marks

# fmt: off
FIGURES = (
    "Ngô Quyền", "Trần Phú", "Lê Quý Đôn", "Nguyễn Trãi", "Lê Lợi", "Trần Hưng Đạo", "Nguyễn Du", "Lý Thường Kiệt",
    "Hồng Bàng", "Thái Phiên", "Lê Hồng Phong", "Nguyễn Bỉnh Khiêm", "Chu Văn An", "Bạch Đằng", "Tô Hiệu",
    "Võ Thị Sáu", "Nguyễn Khuyến", "Trần Nhân Tông", "Lê Chân", "Quang Trung", "Hùng Vương", "Phan Bội Châu",
    "Hàn Thuyên", "Mạc Đĩnh Chi", "Đinh Tiên Hoàng", "Lý Tự Trọng", "Kim Đồng", "Ngô Gia Tự", "Nguyễn Huệ",
    "Trưng Vương", "Tô Vĩnh Diện", "Hoa Sen", "Hoa Mai", "Sao Mai", "Ánh Dương", "Bình Minh", "Hải Thành",
)
PLACES = (
    "Hồng Bàng", "Ngô Quyền", "Lê Chân", "Hải An", "Kiến An", "Đồ Sơn", "Dương Kinh", "Thủy Nguyên", "An Dương",
    "An Lão", "Kiến Thụy", "Tiên Lãng", "Vĩnh Bảo", "Cát Hải", "Bạch Long Vĩ", "Chí Linh", "Kinh Môn", "Nam Sách",
    "Kim Thành", "Thanh Hà", "Cẩm Giàng", "Bình Giang", "Gia Lộc", "Tứ Kỳ", "Ninh Giang", "Thanh Miện",
)
# fmt: on
SCHOOL_KINDS = ("Trường THPT", "Trường THCS", "Trường Tiểu học", "Trường Mầm non", "Trường TH&THCS")
DISTRICT_WORDS = ("quận", "huyện", "thành phố", "thị xã")


def city_roster(n: int, seed: int = 15) -> tuple[Institution, ...]:
    """The demo roster and then ``n`` minus its size more institutions, every name different."""
    rng = random.Random(seed)
    demo = [Institution(r["code"], r["name"], r["group"], tuple(r["emails"])) for r in load_demo_roster()]
    names = {i.name for i in demo}
    for place in PLACES:  # each district's office and centre
        names.update({f"Phòng GDĐT {rng.choice(DISTRICT_WORDS)} {place}", f"Trung tâm GDNN-GDTX huyện {place}"})
    out = list(demo)
    candidates = sorted(names - {i.name for i in demo})
    while len(candidates) < n:
        kind, figure, place = rng.choice(SCHOOL_KINDS), rng.choice(FIGURES), rng.choice(PLACES)
        name = rng.choice((f"{kind} {figure}", f"{kind} {figure} {rng.choice(DISTRICT_WORDS)} {place}"))
        if name not in names:
            names.add(name)
            candidates.append(name)
    for k, name in enumerate(candidates[: max(0, n - len(demo))]):
        out.append(Institution(f"DV-{k:05d}", name, name.split()[1] if name.startswith("Trường") else "Khác", ()))
    return tuple(out[:n])


def mentions(roster: tuple[Institution, ...], count: int, seed: int = 15) -> list[str]:
    """Texts as schools write them (subjects, report headings): up to three names, written in full, without marks,
    in capitals or with "Trường" and the district word left out, among other words of the roster."""
    rng = random.Random(seed)
    vocabulary = sorted({w for i in roster for w in i.name.split()} | {"báo", "cáo", "số", "năm", "2023", "V/v"})
    texts = []
    for _ in range(count):
        parts = [" ".join(rng.choices(vocabulary, k=rng.randint(0, 6)))]
        for inst in rng.sample(roster, rng.randint(0, 3)):
            name = inst.name
            if rng.random() < 0.3:
                name = name.removeprefix("Trường ")
            if rng.random() < 0.3:
                name = " ".join(w for w in name.split() if w not in ("quận", "huyện"))
            parts.append(rng.choice((name, name.upper(), strip_marks(name))))
            parts.append(" ".join(rng.choices(vocabulary, k=rng.randint(0, 3))))
        texts.append(rng.choice((" ", "\n", " - ")).join(parts))
    return texts


def match_every_phrase(text: str, roster: Roster) -> set[Institution]:
    """The reference for ``identify.match_names``: each phrase of the roster tried in turn, no index."""
    folded, found = fold(text), []
    for key, inst in roster.name_keys:
        if contains_phrase(folded, key) and not any(key in longer for longer, _ in found):
            found.append((key, inst))
    return {inst for _, inst in found}
