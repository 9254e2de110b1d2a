"""The Vietnamese words staff and schools read: status names and warnings in plain language."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from mailbot.models import Notice, WarningCode

STATUS = {"on_time": "Đúng hạn", "late": "Nộp muộn", "missing": "Chưa nộp"}
IDENTIFIED_BY = {"address": "Theo địa chỉ thư", "name": "Theo tên đơn vị (cần xác nhận)", "staff": "Cán bộ xác nhận"}

WARNINGS: dict[WarningCode, str] = {
    WarningCode.LEGACY_DOC: "Tệp báo cáo ở định dạng Word cũ (.doc); đề nghị quý đơn vị gửi tệp .docx trong các lần báo cáo sau",
    WarningCode.UNREADABLE_DOCX: "Tệp Word bị hỏng hoặc không mở được",
    WarningCode.PASSWORD_PROTECTED: "Tệp Word có đặt mật khẩu, không mở được",
    WarningCode.NOT_A_WORD_FILE: "Tệp mang tên Word nhưng nội dung không phải tệp Word",
    WarningCode.MACROS: "Tệp Word có chứa macro (.docm)",
    WarningCode.NO_REPORT_FILE: "Thư không kèm tệp Word báo cáo",
    WarningCode.NO_MESSAGE_ID: "Thư thiếu mã định danh (Message-ID)",
    WarningCode.NO_SENDER: "Không đọc được địa chỉ người gửi",
    WarningCode.UNDECODABLE_ATTACHMENT: "Không giải mã được tệp đính kèm",
    WarningCode.TOO_LARGE: "Tệp đính kèm vượt quá dung lượng cho phép",
    WarningCode.HEADING_OTHER_INSTITUTION: "Phần đầu văn bản ghi tên đơn vị khác với đơn vị gửi",
    WarningCode.TITLE_UNRELATED: "Trích yếu của văn bản không khớp với nội dung báo cáo được yêu cầu (có thể gửi nhầm tệp)",
    WarningCode.DATE_FAR: "Ngày của văn bản cách xa thời gian của đợt báo cáo (có thể là báo cáo cũ)",
    WarningCode.EMPTY_DOCUMENT: "Tệp Word không có nội dung",
    WarningCode.BLANK_TEMPLATE: "Tệp Word là mẫu trống, chưa điền nội dung",
    WarningCode.DOCUMENT_TOO_LARGE: "Tệp Word quá lớn, không đọc được nội dung",
    WarningCode.LEGACY_DOC_UNREAD: "Tệp báo cáo ở định dạng Word cũ (.doc), Sở chưa mở được; đề nghị quý đơn vị gửi lại tệp .docx",
    WarningCode.LEGACY_DOC_PENDING: "Tệp báo cáo ở định dạng Word cũ (.doc) đang được Sở chuyển đổi để đọc nội dung",
    WarningCode.LEGACY_ENCODING_TCVN3: "Văn bản gõ bằng bảng mã cũ TCVN3 (ABC), đã được chuyển sang Unicode",
    WarningCode.LEGACY_ENCODING_VNI: "Văn bản gõ bằng bảng mã cũ VNI, đã được chuyển sang Unicode",
    WarningCode.BAD_DATE: "Ngày tháng của văn bản không hợp lệ",
    WarningCode.TRUNCATED: "Chỉ đọc được một phần văn bản",
    WarningCode.MESSAGE_TOO_LARGE: "Thư vượt quá dung lượng cho phép, chưa được xử lý",
    WarningCode.UNREADABLE_ARCHIVE: "Tệp nén bị hỏng, không giải nén được",
    WarningCode.ENCRYPTED_ARCHIVE: "Tệp nén có đặt mật khẩu, không giải nén được",
    WarningCode.ARCHIVE_TOO_MANY_ENTRIES: "Tệp nén chứa quá nhiều tệp",
    WarningCode.ARCHIVE_TOO_LARGE: "Tệp nén khi giải nén vượt quá dung lượng cho phép",
    WarningCode.ARCHIVE_TOOL_MISSING: "Tệp nén RAR/7z chưa mở được trên máy chủ (thiếu công cụ giải nén)",
    WarningCode.ARCHIVE_UNSAFE_NAMES: "Tệp nén chứa đường dẫn không an toàn nên không được giải nén",
    WarningCode.UNREADABLE_TNEF: "Tệp winmail.dat (Outlook) bị hỏng, không mở được",
    WarningCode.UNREADABLE_MESSAGE: "Không đọc được nội dung thư",
}


def warning_text(notice: Notice) -> str:
    """The plain words for a warning, with its detail where it helps (the date of an old report, the other
    institution named in the heading)."""
    text = WARNINGS.get(notice.code, notice.detail)  # a code this version does not know: shown as it was written
    if notice.code in _DETAILED and notice.detail:
        return f"{text} ({_DETAILED[notice.code]}{notice.detail})"
    return text


# The warnings whose detail the reader is shown, and the words before it.
_DETAILED = {WarningCode.DATE_FAR: "ngày ", WarningCode.HEADING_OTHER_INSTITUTION: ""}

# A code that says everything another one says: only the fuller sentence is shown.
_SUPERSEDES = {WarningCode.LEGACY_DOC_UNREAD: WarningCode.LEGACY_DOC}


def warning_texts(notices: Iterable[Notice]) -> list[str]:
    """The plain sentences for a file's or a submission's warnings: each once, in first-seen order.

    A .doc that could not be read carries both ``legacy_doc`` and ``legacy_doc_unread``; the school reads one
    sentence about it, not two.
    """
    found = list(notices)
    hidden = {_SUPERSEDES[n.code] for n in found if n.code in _SUPERSEDES}
    return list(dict.fromkeys(warning_text(n) for n in found if n.code not in hidden))


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


DATE_EXAMPLE = "08/12/2023"
_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def parse_input_date(text: str) -> date | None:
    """``08/12/2023`` (also ``8/12/2023``, ``8.12.2023``, or ISO ``2023-12-08``) → the day, or None: day first,
    as Vietnamese write it, whatever the browser's language."""
    text = text.strip()
    match = _DATE.fullmatch(text)
    try:
        if match:
            day, month, year = match.groups()
            return date(int(year), int(month), int(day))
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


def receipt_number(message_pk: int) -> str:
    """The receipt number a school is given (and staff type in `review assign`): the record's id, six digits."""
    return f"{message_pk:06d}"


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
