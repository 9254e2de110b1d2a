"""The Vietnamese words staff and schools read: status names and warnings in plain language."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

STATUS = {"on_time": "Đúng hạn", "late": "Nộp muộn", "missing": "Chưa nộp"}
IDENTIFIED_BY = {"address": "Theo địa chỉ thư", "name": "Theo tên đơn vị (cần xác nhận)", "staff": "Cán bộ xác nhận"}

WARNINGS = {
    "legacy_doc": "Tệp báo cáo ở định dạng Word cũ (.doc); đề nghị quý đơn vị gửi tệp .docx trong các lần báo cáo sau",
    "unreadable_docx": "Tệp Word bị hỏng hoặc không mở được",
    "password_protected": "Tệp Word có đặt mật khẩu, không mở được",
    "not_a_word_file": "Tệp mang tên Word nhưng nội dung không phải tệp Word",
    "macros": "Tệp Word có chứa macro (.docm)",
    "no_report_file": "Thư không kèm tệp Word báo cáo",
    "no_message_id": "Thư thiếu mã định danh (Message-ID)",
    "no_sender": "Không đọc được địa chỉ người gửi",
    "undecodable_attachment": "Không giải mã được tệp đính kèm",
    "too_large": "Tệp đính kèm vượt quá dung lượng cho phép",
    "heading_other_institution": "Phần đầu văn bản ghi tên đơn vị khác với đơn vị gửi",
    "title_unrelated": "Trích yếu của văn bản không khớp với nội dung báo cáo được yêu cầu (có thể gửi nhầm tệp)",
    "date_far": "Ngày của văn bản cách xa thời gian của đợt báo cáo (có thể là báo cáo cũ)",
    "empty_document": "Tệp Word không có nội dung",
    "blank_template": "Tệp Word là mẫu trống, chưa điền nội dung",
    "document_too_large": "Tệp Word quá lớn, không đọc được nội dung",
    "legacy_doc_unread": "Tệp báo cáo ở định dạng Word cũ (.doc), Sở chưa mở được; đề nghị quý đơn vị gửi lại tệp .docx",
    "legacy_encoding_tcvn3": "Văn bản gõ bằng bảng mã cũ TCVN3 (ABC), đã được chuyển sang Unicode",
    "legacy_encoding_vni": "Văn bản gõ bằng bảng mã cũ VNI, đã được chuyển sang Unicode",
    "bad_date": "Ngày tháng của văn bản không hợp lệ",
    "truncated": "Chỉ đọc được một phần văn bản",
    "message_too_large": "Thư vượt quá dung lượng cho phép, chưa được xử lý",
    "unreadable_archive": "Tệp nén bị hỏng, không giải nén được",
    "encrypted_archive": "Tệp nén có đặt mật khẩu, không giải nén được",
    "archive_too_many_entries": "Tệp nén chứa quá nhiều tệp",
    "archive_too_large": "Tệp nén khi giải nén vượt quá dung lượng cho phép",
    "archive_tool_missing": "Tệp nén RAR/7z chưa mở được trên máy chủ (thiếu công cụ giải nén)",
    "archive_unsafe_names": "Tệp nén chứa đường dẫn không an toàn, không giải nén",
    "unreadable_tnef": "Tệp winmail.dat (Outlook) bị hỏng, không mở được",
    "unreadable_message": "Không đọc được nội dung thư",
}


def warning_text(code: str) -> str:
    """``date_far:05/12/2022`` → the plain words for ``date_far``, with the detail where it helps."""
    name, _, detail = code.partition(":")
    text = WARNINGS.get(name, code)
    if name == "date_far" and detail:
        return f"{text} (ngày {detail})"
    if name == "heading_other_institution" and detail:
        return f"{text} ({detail})"
    return text


# A code that says everything another one says: only the fuller sentence is shown.
_SUPERSEDES = {"legacy_doc_unread": "legacy_doc"}


def warning_texts(codes: Iterable[str]) -> list[str]:
    """The plain sentences for a file's or a submission's warnings: each once, in first-seen order.

    A .doc that could not be read carries both ``legacy_doc`` and ``legacy_doc_unread``; the school reads one
    sentence about it, not two.
    """
    found = list(codes)
    names = {c.partition(":")[0] for c in found}
    hidden = {_SUPERSEDES[n] for n in names if n in _SUPERSEDES}
    return list(dict.fromkeys(warning_text(c) for c in found if c.partition(":")[0] not in hidden))


def document_title(doc_type: str, title: str) -> str:
    """The trích yếu as a department writes it: ``BÁO CÁO`` + ``Sơ kết …`` → ``Báo cáo sơ kết …``.

    The type is not repeated before a title that already starts with it (``Báo cáo sơ kết …``).
    """
    kind, text = " ".join(doc_type.split()), " ".join(title.split())
    if not kind:
        return text
    if not text:
        return kind.capitalize()
    if text.casefold().startswith(kind.casefold()):
        return text[0].upper() + text[1:]
    keep = len(text) > 1 and text[1].isupper()  # an abbreviation (UBND, THPT) keeps its capitals
    return f"{kind.capitalize()} {text if keep else text[0].lower() + text[1:]}"


INPUT_EXAMPLE = "08/12/2023 17:00"
_INPUT = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T,]+(\d{1,2})[:hg](\d{2})?)?")


def input_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """``05/12/2023 17:00``: how forms show a date and time, whatever the browser's language."""
    return f"{moment.astimezone(zone):%d/%m/%Y %H:%M}" if moment else ""


def parse_input_time(text: str, zone: ZoneInfo) -> datetime | None:
    """``05/12/2023 17:00`` (also ``5/12/2023 17h``, a bare date = the end of that day, or ISO) → aware, or None."""
    text = " ".join(text.split())
    match = _INPUT.fullmatch(text)
    try:
        if match:
            day, month, year, hour, minute = match.groups()
            if hour is None:
                moment = datetime(int(year), int(month), int(day), 23, 59)
            else:
                moment = datetime(int(year), int(month), int(day), int(hour), int(minute or 0))
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


SHOWN_CHARS = 300  # what pages, the digest and the tracker show of a sender's subject; the record keeps it whole


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters with "…": a 20,000-character subject must not swamp a page."""
    text = text or ""
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """``14:05 ngày 04/12/2023`` in the department's time zone."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{local:%H:%M} ngày {local:%d/%m/%Y}"


def arrival_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """``17:00:01 ngày 05/12/2023``: arrivals to the second, so that one just after a 17:00 deadline does not read
    as 17:00 while marked late (lateness is judged on this same whole-second time)."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{local:%H:%M:%S} ngày {local:%d/%m/%Y}"
