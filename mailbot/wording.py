"""The Vietnamese words staff and schools read: status names and warnings in plain language."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

STATUS = {"on_time": "Đúng hạn", "late": "Nộp muộn", "missing": "Chưa nộp"}
IDENTIFIED_BY = {"address": "Theo địa chỉ thư", "name": "Theo tên đơn vị (cần xác nhận)", "staff": "Cán bộ xác nhận"}

WARNINGS = {
    "legacy_doc": "Tệp định dạng Word cũ (.doc); đề nghị gửi lại tệp .docx nếu có thể",
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
    "legacy_doc_unread": "Tệp Word cũ (.doc) chưa đọc được nội dung trên máy chủ",
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
