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
    """``too_large:31457280`` → the plain words for ``too_large`` (details stay in the log)."""
    return WARNINGS.get(code.split(":", 1)[0], code)


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """``14:05 ngày 04/12/2023`` in the department's time zone."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{local:%H:%M} ngày {local:%d/%m/%Y}"
