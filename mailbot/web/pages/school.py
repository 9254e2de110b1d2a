"""The schools' status page (``/s/{token}``): public and read-only, reached only through the personal link in a
school's receipts and reminders (``notify.links``). It shows one institution what the department has received from
it for one campaign, what is still missing and by when: nothing about any other institution, no staff link.

No session and no form. A token that was altered (or names a campaign or institution that is not there) is not
found, one whose campaign no longer accepts reports is refused; bad tokens are counted per client address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mailbot.models import Campaign, PaperMode
from mailbot.notify import links
from mailbot.notify.compose import department
from mailbot.reports import stamps
from mailbot.reports.status import InstitutionStatus
from mailbot.web import queries
from mailbot.web.access import client_ip
from mailbot.web.core import Web, time_left, web_of
from mailbot.wording import arrival_time, local_time, receipt_number

LIMITER_KEY = "status-link"  # the limiter's per-name bucket: one for every bad link of an address


@dataclass(frozen=True)
class Received:
    """One message the department counted for the campaign, as the school reads it."""

    receipt: str
    arrived: str
    report: bool  # it brought the Word file (else: mail without one, e.g. the stamped copy alone)
    late: bool
    files: tuple[str, ...]


@dataclass(frozen=True)
class Item:
    """One thing the campaign asks for, and whether the department has it."""

    label: str
    what: str  # in a sentence: "Còn thiếu: bản có dấu đỏ"
    done: bool
    detail: str  # what was received, or what is still expected


def received(messages: list[queries.MessageView], deadline: datetime, zone: ZoneInfo) -> tuple[Received, ...]:
    return tuple(
        Received(
            receipt_number(m.id),
            arrival_time(m.received_at, zone),
            m.state == "submission",
            m.received_at > deadline,
            tuple(f.name for f in m.files),
        )
        for m in messages
    )


def checklist(inst: InstitutionStatus, campaign: Campaign) -> tuple[Item, ...]:
    """The Word file, and the stamped copy when the campaign asks for one (``InstitutionStatus.stamped``: a PDF by
    mail where the campaign takes one, the paper copy staff ticked where it takes that)."""
    items = [
        Item(
            "Báo cáo bằng tệp Word",
            "tệp Word của báo cáo",
            bool(inst.submissions),
            "Sở đã nhận." if inst.submissions else "Sở chưa nhận; đề nghị gửi tệp Word vào hòm thư tiếp nhận báo cáo.",
        )
    ]
    if campaign.paper is not PaperMode.NONE:
        expected = {
            PaperMode.PDF: "đề nghị gửi bản chụp (PDF) có dấu đỏ qua thư điện tử.",
            PaperMode.POST: "đề nghị gửi bản giấy có dấu đỏ qua đường bưu điện.",
            PaperMode.EITHER: "đề nghị gửi bản chụp (PDF) có dấu đỏ qua thư điện tử hoặc bản giấy qua đường bưu điện.",
        }[campaign.paper]
        items.append(
            Item(
                "Bản có dấu đỏ",
                "bản có dấu đỏ",
                bool(inst.stamped),
                _stamped_line(inst) if inst.stamped else _not_yet(inst, expected),
            )
        )
    return tuple(items)


def _stamped_line(inst: InstitutionStatus) -> str:
    if inst.paper_on and inst.paper_mode in (PaperMode.POST, PaperMode.EITHER):
        return f"Sở đã nhận bản giấy ngày {inst.paper_on:%d/%m/%Y}."
    if inst.stamp and inst.stamp.verdict == stamps.OK:
        return f"Sở đã nhận bản PDF gửi qua thư điện tử: {stamps.text_vi(inst.stamp)}."
    return "Sở đã nhận bản PDF gửi qua thư điện tử."


def _not_yet(inst: InstitutionStatus, expected: str) -> str:
    """Not in yet; a PDF that came but is in doubt is named with the doubt, so that the school can fix it."""
    pdf_taken = inst.paper_mode in (PaperMode.PDF, PaperMode.EITHER)
    if inst.stamp and pdf_taken and inst.stamp.verdict == stamps.PENDING:
        return "Sở đã nhận bản PDF, đang kiểm tra."
    if inst.stamp and pdf_taken:
        doubts = "; ".join(stamps.doubt_vi(inst.stamp, c) for c in inst.stamp.doubts)
        return f"Sở đã nhận bản PDF nhưng chưa xác nhận được ({doubts}); {expected}"
    return f"Sở chưa nhận; {expected}"


def _refused(request: Request, web: Web, status: int, title: str, message: str) -> Response:
    page = web.render(
        request, "school_error.html", status, title=title, message=message, department=department(web.settings.outbox)
    )
    return _private(page)


def _private(response: Response) -> Response:
    """Not for search engines, and the token in the address never leaves in a Referer."""
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def school_status(request: Request) -> Response:
    web = web_of(request)
    ip = client_ip(request)
    if web.link_limiter.retry_after(ip, LIMITER_KEY) > 0:
        return _refused(
            request,
            web,
            429,
            "Tạm ngừng truy cập",
            "Có quá nhiều yêu cầu không hợp lệ. Quý đơn vị vui lòng thử lại sau ít phút.",
        )
    target = links.read_token(web.link_key, request.path_params["token"])
    # closed campaigns too: a school may still look up what it sent, until the link expires
    campaign = next((c for c in web.catalog().all if target and c.id == target.campaign_id), None)
    snap = await run_in_threadpool(web.cache.get, campaign) if campaign else None
    row = snap.by_code.get(target.code) if snap and target else None
    if campaign is None or row is None:
        web.link_limiter.failed(ip, LIMITER_KEY)
        return _refused(
            request,
            web,
            404,
            "Đường dẫn không hợp lệ",
            "Đường dẫn này không đúng hoặc đã bị thay đổi. Quý đơn vị vui lòng mở đường dẫn trong thư xác nhận "
            "hoặc thư nhắc gần nhất của Sở.",
        )
    now = web.clock()
    if now > links.expires(campaign):
        return _refused(
            request,
            web,
            403,
            "Đường dẫn đã hết hiệu lực",
            f"Đợt báo cáo “{campaign.title}” đã kết thúc việc tiếp nhận báo cáo nên đường dẫn theo dõi không còn hiệu "
            "lực." + (f" Mọi thắc mắc xin liên hệ {campaign.contact}." if campaign.contact else ""),
        )
    inst = row.inst
    messages = await run_in_threadpool(queries.campaign_messages, web.engine, campaign.id, inst.code)
    items = checklist(inst, campaign)
    left, overdue = time_left(inst.deadline, now)
    return _private(
        web.render(
            request,
            "school_status.html",
            title=f"Tình hình nộp báo cáo – {inst.name}",
            campaign=campaign,
            inst=inst,
            received=received(messages, inst.deadline, web.settings.zone),
            items=items,
            missing=[i for i in items if not i.done],
            deadline=local_time(inst.deadline, web.settings.zone),
            left=left,
            overdue=overdue,
            department=department(web.settings.outbox),
            inbox_address=web.settings.outbox.address,
        )
    )
