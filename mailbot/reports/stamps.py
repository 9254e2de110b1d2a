"""Whether a PDF is a good stamped copy (bản có dấu đỏ) for the institution that sent it: its checked facts
(documents/pdfcheck.py) against the institution's name and its Word file's number and date, and the words staff and
schools read for the verdict."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from mailbot.documents.pdffacts import EXPORT, SCAN, SIGNED, UNKNOWN, PdfFacts
from mailbot.ingest.identify import name_variants
from mailbot.text import contains_phrase, fold

OK, DOUBT, PENDING = "ok", "doubt", "pending"
ALTERED, UNTRUSTED, OTHER_INSTITUTION = "altered", "untrusted_issuer", "other_institution"
NO_SEAL, NUMBER_MISMATCH, DATE_MISMATCH = "no_seal", "number_mismatch", "date_mismatch"
UNSIGNED_EXPORT, UNREADABLE = "unsigned_export", "unreadable"


@dataclass(frozen=True)
class WordRef:
    """What the Word file of the same submission says about itself (decree30 meta)."""

    number: str | None
    date: date | None


@dataclass(frozen=True)
class Stamp:
    """The verdict on one PDF, in the ``status --json`` shape (``stamp``)."""

    kind: str  # signed | scan | export | unknown
    verdict: str  # ok | doubt | pending
    doubts: tuple[str, ...] = ()
    signer_org: str | None = None
    signer_name: str | None = None
    signed_at: datetime | None = None
    seal: bool | None = None
    number: str | None = None
    date: dt.date | None = None
    word_number: str | None = None  # the Word file's, when compared
    word_date: dt.date | None = None
    problem: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "verdict": self.verdict,
            "signer_org": self.signer_org,
            "signed_at": self.signed_at.isoformat() if self.signed_at else None,
            "seal": self.seal,
            "number": self.number,
            "date": self.date.isoformat() if self.date else None,
            "doubts": list(self.doubts),
        }


PENDING_STAMP = Stamp(UNKNOWN, PENDING)


def word_ref(meta: dict[str, Any]) -> WordRef:
    """The number and date of a Word file's stored metadata (``files.meta``)."""
    raw = meta.get("date")
    try:
        day = date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        day = None
    return WordRef(str(meta.get("number") or "") or None, day)


def judge(raw: dict[str, Any] | None, institution: str, words: tuple[WordRef, ...]) -> Stamp:
    """The verdict on one PDF for the institution named ``institution`` ("" when not known yet)."""
    if raw is None:
        return PENDING_STAMP
    facts = PdfFacts.from_json(raw)
    if facts.kind == SIGNED and facts.signatures:
        return _signed(facts, institution)
    if facts.kind == SCAN:
        return _scanned(facts, words)
    doubt = UNSIGNED_EXPORT if facts.kind == EXPORT else UNREADABLE
    return Stamp(facts.kind, DOUBT, (doubt,), number=facts.number, date=_day(facts.date), problem=facts.problem)


def _signed(facts: PdfFacts, institution: str) -> Stamp:
    sig = facts.signatures[0]
    doubts = [
        *([ALTERED] if not (sig.intact and sig.covers_document) else []),
        *([OTHER_INSTITUTION] if institution and not names(institution, f"{sig.organisation} {sig.person}") else []),
        *([UNTRUSTED] if sig.intact and not sig.trusted else []),
    ]
    when = datetime.fromisoformat(sig.signed_at) if sig.signed_at else None
    return Stamp(
        SIGNED,
        DOUBT if doubts else OK,
        tuple(doubts),
        signer_org=sig.organisation or None,
        signer_name=sig.person or None,
        signed_at=when,
    )


def names(institution: str, text: str) -> bool:
    """Whether ``text`` (a certificate's O and CN) names the institution, without diacritics, as identification does."""
    folded = fold(text)
    return any(contains_phrase(folded, v) for v in name_variants(institution))


def _scanned(facts: PdfFacts, words: tuple[WordRef, ...]) -> Stamp:
    day = _day(facts.date)
    numbers = [w.number for w in words if w.number and re.search(r"\d", w.number.split("/")[0])]
    days = [w.date for w in words if w.date]
    doubts = [
        *([NO_SEAL] if not facts.seal else []),
        *([UNREADABLE] if not facts.number else []),
        *(
            [NUMBER_MISMATCH]
            if facts.number and numbers and not any(same_number(facts.number, n) for n in numbers)
            else []
        ),
        *([DATE_MISMATCH] if day and days and day not in days else []),
    ]
    return Stamp(
        SCAN,
        DOUBT if doubts else OK,
        tuple(doubts),
        seal=facts.seal,
        number=facts.number,
        date=day,
        word_number=numbers[-1] if numbers else None,
        word_date=days[-1] if days else None,
        problem=facts.problem,
    )


def same_number(a: str, b: str) -> bool:
    return _key(a) == _key(b)


def _key(number: str) -> str:
    return re.sub(r"\s+", "", fold(number.replace("/", " / ").replace("-", " - "))).upper()


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


# ------------------------------------------------------------------ words


_DOUBT_VI = {
    ALTERED: "tệp đã bị sửa sau khi ký số",
    UNTRUSTED: "chữ ký số hợp lệ nhưng chưa xác minh được tổ chức cấp chứng thư số",
    OTHER_INSTITUTION: "chữ ký số của đơn vị khác",
    NO_SEAL: "không thấy dấu đỏ",
    NUMBER_MISMATCH: "số văn bản khác tệp Word",
    DATE_MISMATCH: "ngày văn bản khác tệp Word",
    UNSIGNED_EXPORT: "tệp PDF xuất từ Word, chưa ký",
    UNREADABLE: "không đọc được tệp PDF",
}


def doubt_vi(stamp: Stamp, code: str) -> str:
    """One doubt in words, with the values that make it checkable."""
    if code == OTHER_INSTITUTION and (stamp.signer_org or stamp.signer_name):
        return f"{_DOUBT_VI[code]} ({stamp.signer_org or stamp.signer_name})"
    if code == NUMBER_MISMATCH and stamp.number and stamp.word_number:
        return f"{_DOUBT_VI[code]} (bản PDF: {stamp.number}, tệp Word: {stamp.word_number})"
    if code == DATE_MISMATCH and stamp.date and stamp.word_date:
        return f"{_DOUBT_VI[code]} (bản PDF: {_vn_day(stamp.date)}, tệp Word: {_vn_day(stamp.word_date)})"
    if code == UNREADABLE and stamp.kind == SCAN:
        return "không đọc được số văn bản trên bản quét"
    return _DOUBT_VI.get(code, code)


def text_vi(stamp: Stamp, zone: tzinfo | None = None) -> str:
    """The verdict as staff and schools read it, e.g. "Bản quét có dấu đỏ, số 15/BC-THPTNQ khớp với tệp Word"."""
    if stamp.verdict == PENDING:
        return "Bản PDF đang được kiểm tra"
    if stamp.verdict == OK and stamp.kind == SIGNED:
        who = stamp.signer_org or stamp.signer_name or "không rõ đơn vị"
        when = f", ký lúc {stamp.signed_at.astimezone(zone).strftime('%H:%M %d/%m/%Y')}" if stamp.signed_at else ""
        return f"Bản ký số hợp lệ ({who}{when})"
    if stamp.verdict == OK:
        matched = " khớp với tệp Word" if stamp.word_number else ""
        return f"Bản quét có dấu đỏ, số {stamp.number}{matched}"
    what = {SIGNED: "Bản ký số", SCAN: "Bản quét"}.get(stamp.kind, "Bản PDF")
    return f"{what} cần kiểm tra: " + "; ".join(doubt_vi(stamp, c) for c in stamp.doubts)


def _vn_day(day: date) -> str:
    return day.strftime("%d/%m/%Y")
