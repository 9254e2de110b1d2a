"""Who sent a message and for which campaign, and so what it counts as: roster matching, campaign routing,
lateness (pure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from mailbot.config import late_limit
from mailbot.models import Campaign, IdentifiedBy, InboundMail, Institution, State, Verdict
from mailbot.text import contains_phrase, fold

# Words that name a kind of place rather than the place: "Phòng GDĐT quận Lê Chân" is also "Phòng GDĐT Lê Chân".
_ADMIN_WORDS = ("quan", "huyen", "thanh pho", "thi xa", "tp")


@dataclass(frozen=True)
class Roster:
    """The institutions, indexed for matching by address and by name."""

    institutions: tuple[Institution, ...]
    by_address: dict[str, tuple[Institution, ...]]
    name_keys: tuple[tuple[str, Institution], ...]  # (folded phrase, institution), longest phrase first
    # Each phrase's position in ``name_keys``, filed under its rarest pair of adjacent words: a text can name only
    # the phrases whose pair it holds, so a message is checked against a handful of phrases, not the whole roster
    # (a merged city's thousands of names would otherwise cost more than reading the report; bench/identify.py).
    by_pair: dict[str, tuple[int, ...]]

    @classmethod
    def of(cls, institutions: tuple[Institution, ...]) -> Roster:
        by_address: dict[str, list[Institution]] = {}
        for inst in institutions:
            for address in inst.emails:
                by_address.setdefault(address.lower(), []).append(inst)
        keys = tuple(
            sorted(  # a deactivated institution is still known by its addresses, no longer by its name
                ((key, inst) for inst in institutions if inst.active for key in name_variants(inst.name)),
                key=lambda pair: -len(pair[0]),
            )
        )
        return cls(institutions, {a: tuple(v) for a, v in by_address.items()}, keys, _file_by_rarest_pair(keys))

    def get(self, code: str) -> Institution | None:
        return next((i for i in self.institutions if i.code == code), None)


def name_variants(name: str) -> set[str]:
    """The folded phrases by which a school may be named: with or without "Trường", "quận", etc."""
    full = fold(name)
    variants = {full, full.removeprefix("truong ")}
    for variant in list(variants):
        words = f" {variant} "
        for admin in _ADMIN_WORDS:
            words = words.replace(f" {admin} ", " ")
        variants.add(" ".join(words.split()))
    return {v for v in variants if len(v.split()) >= 2}


def _file_by_rarest_pair(keys: tuple[tuple[str, Institution], ...]) -> dict[str, tuple[int, ...]]:
    """(A name phrase has two words at least: ``name_variants``.)"""
    frequency = Counter(pair for key, _ in keys for pair in _pairs(key))
    filed: dict[str, list[int]] = {}
    for n, (key, _) in enumerate(keys):
        filed.setdefault(min(_pairs(key), key=lambda pair: (frequency[pair], pair)), []).append(n)
    return {pair: tuple(positions) for pair, positions in filed.items()}


def _pairs(folded: str) -> set[str]:
    """The pairs of adjacent words of a folded text: every pair of a phrase it contains is among them."""
    words = folded.split()
    return {f"{a} {b}" for a, b in zip(words, words[1:])}


def normalise_address(value: str) -> str:
    return parseaddr(value)[1].strip().lower()


def match_names(text: str, roster: Roster) -> set[Institution]:
    """Institutions named in ``text``; a phrase inside a longer matched phrase does not count."""
    folded = fold(text)
    positions = sorted({n for pair in _pairs(folded) for n in roster.by_pair.get(pair, ())})
    found: list[tuple[str, Institution]] = []
    for key, inst in (roster.name_keys[n] for n in positions):  # longest first, as in ``name_keys``
        if contains_phrase(folded, key) and not any(key in longer for longer, _ in found):
            found.append((key, inst))
    return {inst for _, inst in found}


def by_name(mail: InboundMail, roster: Roster) -> tuple[Institution | None, str]:
    """The institution most sources name (subject, file names, Word headings), or why none."""
    sources = [mail.subject] + [f.name.rsplit(".", 1)[0] for f in mail.files] + [f.heading for f in mail.files]
    votes: Counter[Institution] = Counter()
    for text in filter(None, sources):
        votes.update(match_names(text, roster))
    if not votes:
        return None, "không nhận ra đơn vị gửi: địa chỉ thư không có trong danh sách và thư không nêu tên đơn vị"
    ranked = votes.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        names = ", ".join(sorted(i.code for i, n in ranked if n == ranked[0][1]))
        return None, f"thư nêu tên nhiều đơn vị ({names})"
    return ranked[0][0], f"nhận diện theo tên đơn vị nêu trong thư: {ranked[0][0].name}"


def institution_of(mail: InboundMail, roster: Roster) -> tuple[Institution | None, IdentifiedBy | None, str]:
    """Sender address first; then names (also a forwarded sender's address), for staff to confirm."""
    owners = _prefer_active(roster.by_address.get(mail.sender, ()))
    if len(owners) == 1:
        return owners[0], IdentifiedBy.ADDRESS, ""
    if len(owners) > 1:
        inst, _ = by_name(mail, Roster.of(owners))
        if inst:
            return inst, IdentifiedBy.ADDRESS, ""
        return None, None, f"địa chỉ {mail.sender} thuộc nhiều đơn vị"
    for address in mail.forwarded_senders:
        forwarded = _prefer_active(roster.by_address.get(address, ()))
        if len(forwarded) == 1:
            return forwarded[0], IdentifiedBy.NAME, f"thư chuyển tiếp từ {address}"
    inst, why = by_name(mail, roster)
    return (inst, IdentifiedBy.NAME, why) if inst else (None, None, why)


def _prefer_active(owners: tuple[Institution, ...]) -> tuple[Institution, ...]:
    """An address handed from a deactivated institution to a current one belongs to the current one."""
    return tuple(i for i in owners if i.active) or owners


def campaign_for(mail: InboundMail, inst: Institution, campaigns: tuple[Campaign, ...]) -> tuple[Campaign | None, str]:
    """The campaign a message answers: the only one open for the institution, else by keywords."""
    open_now = [c for c in campaigns if c.concerns(inst.group) and accepts(c, mail.arrived)]
    if len(open_now) == 1:
        return open_now[0], ""
    if not open_now:
        return None, "không có đợt báo cáo nào đang mở cho đơn vị này khi thư đến"
    text = fold(" ".join([mail.subject, *(f.name for f in mail.files), *(f.heading for f in mail.files)]))
    hits = [c for c in open_now if any(contains_phrase(text, fold(k)) for k in c.keywords)]
    if len(hits) == 1:
        return hits[0], ""
    return None, "nhiều đợt báo cáo đang mở, không xác định được thư thuộc đợt nào: " + ", ".join(
        c.id for c in open_now
    )


def accepts(campaign: Campaign, arrived: datetime) -> bool:
    """Whether a message arriving then counts for the campaign: opened, not closed before, within the late limit."""
    if campaign.closed is not None and arrived > campaign.closed:  # staff closed it: nothing more is counted
        return False
    return (campaign.opens is None or arrived >= campaign.opens) and arrived <= late_limit(campaign)


def is_late(campaign: Campaign, arrived: datetime, extension: datetime | None = None) -> bool:
    return arrived > (extension or campaign.deadline)


def identify(
    mail: InboundMail,
    roster: Roster,
    campaigns: tuple[Campaign, ...],
    extensions: dict[tuple[str, str], datetime] | None = None,
) -> Verdict:
    """Attribute a parsed message to an institution and a campaign, or say why staff must look."""
    inst, how, why = institution_of(mail, roster)
    if inst is None:
        return Verdict(None, None, None, reason=why)
    if not inst.active:  # recognised, but no longer asked to report: staff decide what it is
        return Verdict(
            inst, how, None, reason=f"đơn vị {inst.name} ({inst.code}) đã ngừng theo dõi trong danh sách đơn vị"
        )
    campaign, why_not = campaign_for(mail, inst, campaigns)
    if campaign is None:
        return Verdict(inst, how, None, reason=why_not)
    own_deadline = (extensions or {}).get((campaign.id, inst.code))
    late = is_late(campaign, mail.arrived, own_deadline)
    return Verdict(inst, how, campaign, late, why, State.SUBMISSION if mail.reports else State.NO_REPORT)


def by_address_only(mail: InboundMail, roster: Roster) -> Verdict:
    """For a message whose files were never read (over the size limit): its sender if the address is one
    institution's, and held for staff in any case (no campaign)."""
    known = roster.by_address.get(mail.sender, ())
    return Verdict(known[0], IdentifiedBy.ADDRESS, None) if len(known) == 1 else Verdict(None, None, None)


def oversized_reason(size: int, limit: int, told: bool, doubt: str) -> str:
    """Why a message over the size limit is held: its size, whether the school was asked to send the Word file
    alone, why its sender is doubted (if it is)."""
    size_mb, limit_mb = size / (1 << 20), limit / (1 << 20)
    parts = (
        f"thư quá lớn ({size_mb:.0f} MB, giới hạn {limit_mb:.0f} MB) nên chưa được xử lý",
        "đã đề nghị đơn vị gửi lại riêng tệp Word" if told else "",
        doubt,
        "đề nghị xem trực tiếp trong hộp thư",
    )
    return "; ".join(filter(None, parts))
