"""What the Excel tracker says, without the spreadsheet: its headers, sheet names and each institution's and held
message's row, for the workbook (``reports.workbook``, which needs openpyxl) and for the web pages and the digest,
which show the same words but must not load openpyxl into the service to do so."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailbot.models import Notice, PaperMode, WarningCode
from mailbot.reports import stamps
from mailbot.reports.status import FileRow, InstitutionStatus, ReviewItem
from mailbot.wording import IDENTIFIED_BY, STATUS, clip, document_title, warning_text, warning_texts

SUMMARY_SHEET = "Tổng hợp"
REVIEW_SHEET = "Thư chờ cán bộ xem xét"

GROUP_HEADERS = (
    "STT",
    "Mã đơn vị",
    "Tên đơn vị",
    "Tệp Word",
    "Thời điểm nộp lần đầu",
    "Số lần nộp",
    "Tệp đã nhận",
    "Văn bản (số, ngày)",
    "Trích yếu",
    "Người ký",
    "Bản có dấu đỏ",
    "Nhận diện",
    "Lưu ý",
)
SUMMARY_HEADERS = ("Nhóm", "Số đơn vị", STATUS["on_time"], STATUS["late"], STATUS["missing"], "Tỉ lệ đã nộp")
# Added to the summary when the campaign asks for the stamped copy: "submitted" stays the Word file.
STAMPED_HEADERS = ("Đã có bản dấu đỏ", "Đủ hồ sơ")
REVIEW_HEADERS = ("Số", "Người gửi", "Tiêu đề", "Nhận lúc", "Lý do", "Tệp")
STATUS_ORDER = ("on_time", "late", "missing")


_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
_SHEET_NAME_LIMIT = 31

# --- sheet names -------------------------------------------------------------------------------------------


def unique_sheet_name(wanted: str, taken: set[str]) -> str:
    """A legal Excel sheet name close to ``wanted`` (diacritics kept), not yet in ``taken``; adds it there.

    Excel compares sheet names without regard to case, so ``taken`` holds casefolded names.
    """
    base = sanitise_sheet_name(wanted)
    name, n = base, 1
    while name.casefold() in taken:
        n += 1
        suffix = f" ({n})"
        name = _clip(base, _SHEET_NAME_LIMIT - len(suffix)).rstrip() + suffix
    taken.add(name.casefold())
    return name


def sanitise_sheet_name(wanted: str) -> str:
    text = _FORBIDDEN.sub("-", unicodedata.normalize("NFC", wanted))
    # Excel refuses names that begin or end with an apostrophe.
    text = " ".join(text.split()).strip("'").strip()
    return _clip(text, _SHEET_NAME_LIMIT).rstrip() or "Nhóm"


def _clip(text: str, limit: int) -> str:
    # The limit counts UTF-16 units: every Vietnamese letter is one, a rare emoji is two.
    while len(text.encode("utf-16-le")) // 2 > limit:
        text = text[:-1]
    return text


def summary_row(group: str, members: Sequence[InstitutionStatus], *, stamped: bool = False) -> list[Any]:
    """Group, institutions, on time, late, missing (the Word file), the share submitted; with ``stamped``, also
    how many have the stamped copy in and how many are complete."""
    counts = [sum(1 for m in members if m.status == key) for key in STATUS_ORDER]
    total = len(members)
    extra = [sum(1 for m in members if m.stamped), sum(1 for m in members if m.complete)] if stamped else []
    return [group, total, *counts, _submitted_share(total, counts), *extra]


def summary_total(rows: Sequence[Sequence[Any]]) -> list[Any]:
    # Plain values, not formulas: openpyxl cannot compute formulas, so scripts reading the file would see None.
    sums = [sum(r[i] for r in rows) for i in range(1, 5)]
    extra = [sum(r[i] for r in rows) for i in range(6, len(rows[0]))] if rows else []
    return ["Tổng cộng", *sums, _submitted_share(sums[0], sums[1:]), *extra]


def _submitted_share(total: int, counts: Sequence[int]) -> float:
    return (counts[0] + counts[1]) / total if total else 0.0


def institution_row(number: int, inst: InstitutionStatus, zone: ZoneInfo) -> list[Any]:
    """STT, code, name, status word, first submission (naive local), count, files, identification, notes."""
    first = inst.submissions[0] if inst.submissions else None
    return [
        number,
        inst.code,
        inst.name,
        STATUS[inst.status],
        excel_time(inst.submitted_at, zone),
        len(inst.submissions),
        "\n".join(received_files(f for s in inst.submissions for f in s.files)),
        *document_cells(inst),
        stamped_text(inst, zone),
        IDENTIFIED_BY.get(first.identified_by, first.identified_by) if first else "",
        "\n".join(plain_warnings(inst)),
    ]


def stamped_text(inst: InstitutionStatus, zone: ZoneInfo) -> str:
    """The stamped copy in words, one line per way it came: the PDF's verdict (``Bản ký số hợp lệ (…)``, ``Bản quét
    có dấu đỏ, số … khớp với tệp Word``, or what is in doubt), ``Đã nhận bản giấy ngày 08/12/2023``; ``Chưa nhận``
    when the campaign asks for it and it is not in (the way it takes it); ``Không yêu cầu`` when the campaign does
    not ask for it and none came."""
    came = [
        *([pdf_text(inst, zone)] if inst.signed_copy or inst.stamp_accepted else []),
        *([f"Đã nhận bản giấy ngày {inst.paper_on:%d/%m/%Y}"] if inst.paper_on else []),
    ]
    if inst.stamped is False:  # what came, if anything, is not what the campaign takes or is in doubt
        if inst.stamp and inst.paper_mode in (PaperMode.PDF, PaperMode.EITHER):
            return "\n".join(came)
        wanted = {PaperMode.POST: "bản giấy gửi qua bưu chính", PaperMode.PDF: "tệp PDF gửi qua thư"}
        return f"Chưa nhận (đợt này yêu cầu {wanted[inst.paper_mode]})" if came else "Chưa nhận"
    return "\n".join(came) or "Không yêu cầu"


def pdf_text(inst: InstitutionStatus, zone: ZoneInfo) -> str:
    """The PDF that speaks for the institution, checked: its verdict, and staff's acceptance when they gave it."""
    verdict = stamps.text_vi(inst.stamp, zone) if inst.stamp else "Đã nhận (PDF qua thư)"
    if inst.stamp_accepted and not (inst.stamp and inst.stamp.verdict == stamps.OK):
        return f"Cán bộ đã chấp nhận ngày {inst.stamp_accepted.astimezone(zone):%d/%m/%Y} ({verdict})"
    return verdict


def document_cells(inst: InstitutionStatus) -> list[str]:
    """Number and date, title, signer of the latest Word report (what the document says about itself)."""
    metas = [f.meta for s in inst.submissions for f in s.files if f.meta]
    if not metas:
        return ["", "", ""]
    m = metas[-1]
    date = m.get("date") or ""
    when = f"{date[8:10]}/{date[5:7]}/{date[:4]}" if date else ""
    number = " ".join(filter(None, [f"Số {m['number']}" if m.get("number") else "", f"ngày {when}" if when else ""]))
    signer = " – ".join(
        filter(None, [str(m.get("signer_position") or "").replace("\n", " "), str(m.get("signer_name") or "")])
    )
    return [number, document_title(str(m.get("doc_type") or ""), str(m.get("title") or "")), signer]


def received_files(files: Iterable[FileRow]) -> list[str]:
    """Names of the files kept in the archive (as in ``status --json``); a file sent twice is listed once."""
    seen: set[tuple[str, str]] = set()
    names: list[str] = []
    for f in files:
        if f.path and (f.name, f.sha256) not in seen:
            seen.add((f.name, f.sha256))
            names.append(f.name)
    return names


def plain_warnings(inst: InstitutionStatus) -> list[str]:
    # Details after ':' (sizes, limits) collapse into one sentence each, in first-seen order.
    return warning_texts(inst.notices())


def review_row(item: ReviewItem, zone: ZoneInfo) -> list[Any]:
    return [
        item.pk,
        item.sender,
        clip(item.subject),
        excel_time(item.received_at, zone),
        review_reason(item),
        "\n".join(received_files(item.files)),
    ]


def review_reason(item: ReviewItem) -> str:
    # Messages set aside after an internal error carry a technical (English) reason; staff get the plain words first.
    if item.state != "error":
        return item.reason
    plain = warning_text(Notice(WarningCode.UNREADABLE_MESSAGE))
    return f"{plain} (chi tiết kỹ thuật: {item.reason})" if item.reason else plain


def excel_time(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Naive wall-clock time in ``zone``: Excel cells have no time zone."""
    return moment.astimezone(zone).replace(tzinfo=None) if moment else None


# Characters an XML 1.0 document cannot hold (a control byte in a subject): openpyxl refuses them, so the whole
# tracker, and with it the digest, would fail over one sender's subject.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
