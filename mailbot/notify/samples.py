"""Sample values for every template, used to prove each one renders before anything is sent."""

from __future__ import annotations

from typing import Any

_INSTITUTION = {"code": "THPT-NQ", "name": "Trường THPT Ngô Quyền", "group": "THPT"}
_CAMPAIGN = {
    "id": "antq-2023",
    "title": "Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023",
    "plan": "số 2816/KH-SGDĐT ngày 20/11/2023",
    "contact": "bà Nguyễn Thị Lan, điện thoại 0225.3xxx.xxx",
    "paper": "either",
}
_COMMON = {
    "department": "Phòng GDTX&ĐH - Sở GDĐT Hải Phòng",
    "inbox_address": "gdtx@haiphong.edu.vn",
    "campaign": _CAMPAIGN,
    "deadline": "17:00 ngày 05/12/2023",
    "deadline_short": "05/12/2023",
    "now": "08:00 ngày 02/12/2023",
    "contact": "bà Nguyễn Thị Lan, điện thoại 0225.3xxx.xxx",
}
# The school's personal status link (``[web] public_url`` set); `check` also renders every template without it.
_LINK = {"status_url": "https://baocao.haiphong.edu.vn/mailbot/s/WyJUSFBULU5RIiwiYW50cS0yMDIzIl0.chu-ky-mau"}
_MISSING = {"word": True, "stamped": True}
_RECEIPT = {
    **_COMMON,
    "institution": _INSTITUTION,
    "receipt": "000014",
    "reply_subject": "Re: Báo cáo ANTQ 2023",
    "arrived": "09:12 ngày 01/12/2023",
    "files": [{"name": "Báo cáo.docx", "size": "38,5 KB"}],
    "warnings": ["Tệp báo cáo ở định dạng Word cũ (.doc), Sở chưa mở được; đề nghị quý đơn vị gửi lại tệp .docx"],
    "late": False,
    "identified_by": "name",
    "sender": "thpt.nq@gmail.com",
    **_LINK,
    "stamped_owed": True,
    "pdfs": [],
    "word_in": False,
}
_GROUP = {
    "name": "THPT",
    "total": 17,
    "on_time": 5,
    "late": 1,
    "missing": 11,
    "submitted_pct": 35,
    "on_time_pct": 29,
    "late_pct": 6,
    "missing_pct": 65,
}

SAMPLE_CONTEXTS: dict[str, dict[str, Any]] = {
    "stamp_doubt": {  # no status link: the notice is about one file, and says what to send
        **{k: v for k, v in _RECEIPT.items() if k != "status_url"},
        "file_name": "BC ANTQ 2023 (bản có dấu).pdf",
        "doubts": ["không thấy dấu đỏ", "số văn bản khác tệp Word (bản PDF: 16/BC-THPTNQ, tệp Word: 15/BC-THPTNQ)"],
        "signed": False,
    },
    "ack": _RECEIPT,
    "ack_no_report": {  # the stamped copy as a PDF, after the Word report (the other wording is the plain one)
        **_RECEIPT,
        "files": [{"name": "BC ANTQ 2023 (bản có dấu).pdf", "size": "412,0 KB"}],
        "pdfs": ["BC ANTQ 2023 (bản có dấu).pdf"],
        "word_in": True,
    },
    "ack_review": {**_RECEIPT, "institution": None},
    "too_large": {**_RECEIPT, "files": [], "warnings": [], "message_size": "63,2 MB", "max_message_size": "50,0 MB"},
    "reminder": {**_COMMON, **_LINK, "institution": _INSTITUTION, "days_left": 3, "missing": _MISSING},
    "late": {**_COMMON, **_LINK, "institution": _INSTITUTION, "days_late": 2, "missing": _MISSING},
    "extension": {
        **_COMMON,
        **_LINK,
        "institution": _INSTITUTION,
        "deadline": "17:00 ngày 08/12/2023",
        "deadline_short": "08/12/2023",
        "campaign_deadline": "17:00 ngày 05/12/2023",
        "reason": "đơn vị bị mất điện diện rộng",
        "missing": {"word": True, "stamped": False},
    },
    "announce": {
        **_COMMON,
        "institution": _INSTITUTION,
        "paper": "either",
        "attachments": ["Kế hoạch 2516-KH-SGDĐT.pdf"],
        "template": "Mẫu báo cáo ANTQ 2023.docx",
    },
    "digest": {
        **_COMMON,
        "today": "02/12/2023",
        "generated_at": "07:30 ngày 02/12/2023",
        "campaigns": [
            {
                **_CAMPAIGN,
                "deadline": "17:00 ngày 05/12/2023",
                "time_left": "còn 3 ngày",
                "totals": {"total": 17, "submitted": 6, "on_time": 5, "late": 1, "missing": 11},
                "groups": [_GROUP],
                "new": [
                    {
                        "name": "Trường THPT Ngô Quyền",
                        "arrived": "09:12 ngày 01/12/2023",
                        "late": False,
                        "identified_by": "name",
                        "document": "số 15/BC-THPTNQ ngày 01/12/2023",
                    }
                ],
                "missing": [{"group": "THPT", "names": ["Trường THPT Thái Phiên"]}],
                "stamped": {
                    "received": 4,
                    "complete": 3,
                    "total": 17,
                    "missing": [{"group": "THPT", "names": ["Trường THPT Thái Phiên", "Trường THPT Ngô Quyền"]}],
                    "doubts": [{"name": "Trường THPT Ngô Quyền", "text": "Bản quét cần kiểm tra: không thấy dấu đỏ"}],
                },
                "warnings": [
                    {
                        "name": "Trường THPT Ngô Quyền",
                        "text": "Tệp báo cáo ở định dạng Word cũ (.doc), Sở chưa mở được; đề nghị quý đơn vị gửi lại tệp .docx",
                    }
                ],
            }
        ],
        "review": [
            {
                "receipt": "000015",
                "sender": "x@yahoo.com",
                "subject": "gửi báo cáo",
                "arrived": "13:00 ngày 05/12/2023",
                "reason": "không nhận ra đơn vị gửi",
            }
        ],
        "failed": [{"to": "a@haiphong.edu.vn", "subject": "Nhắc gửi báo cáo", "error": "550 5.1.1 No such user"}],
        "undeliverable": [
            {"address": "a@haiphong.edu.vn", "institution": "Trường THPT Ngô Quyền", "reason": "550 5.1.1"}
        ],
    },
}
