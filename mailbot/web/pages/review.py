"""The review queue: held messages with their files and why they are held, and assigning one to an institution."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mailbot.campaigns import review
from mailbot.errors import MailbotError, NotFound
from mailbot.models import Campaign
from mailbot.web import queries
from mailbot.web.access import campaign_page, campaign_route, form, redirect, row_id, user
from mailbot.web.core import Web
from mailbot.web.snapshot import Snapshot


@campaign_page
async def review_queue(request: Request, web: Web, campaign: Campaign, snap: Snapshot) -> Response:
    def load() -> tuple[list[queries.ReviewView], list[tuple[str, list[queries.Choice]]]]:
        return queries.review_items(web.engine, snap.cs), queries.choices(web.engine)

    items, choices = await run_in_threadpool(load)
    return web.render(request, "review.html", campaign=campaign, snap=snap, items=items, choices=choices)


@campaign_route
async def assign(request: Request, web: Web, campaign: Campaign) -> Response:
    pk = row_id(request, "pk")
    checked = form(request)
    code = str(checked.get("code", "")).strip()
    learn = checked.get("learn") in ("1", "on", "true")
    back = f"/c/{quote(campaign.id)}/review"
    msg = await run_in_threadpool(queries.message, web.engine, pk)
    if msg is None:
        raise HTTPException(404)
    if msg.state not in ("review", "error"):
        return redirect(web, back, ("error", f"Thư số {pk} đã được xử lý trước đó; không có thay đổi nào."))
    if not code:
        return redirect(web, back, ("error", f"Vui lòng chọn đơn vị cho thư số {pk}."))
    try:
        done = await run_in_threadpool(
            review.assign, web.settings, web.engine, f"#{pk}", code, actor=user(request), learn=learn, now=web.clock()
        )
        web.cache.clear()
    except MailbotError as exc:
        text = "không có đơn vị này trong danh sách" if isinstance(exc, NotFound) else str(exc)
        return redirect(web, back, ("error", f"Chưa giao được thư số {pk}: {text}."))
    return redirect(web, back, ("ok", _assigned(pk, msg.sender, done)))


def _assigned(pk: int, sender: str, done: review.Assignment) -> str:
    """``Đã giao thư số 12 cho …: tính vào đợt … (đúng hạn); đã ghi nhớ địa chỉ …; thư xác nhận sẽ được gửi tới …``."""
    where = (
        f"tính vào đợt {done.campaign_id}" + (" (nộp muộn)" if done.late else " (đúng hạn)")
        if done.campaign_id
        else "chưa có đợt báo cáo nào đang mở cho đơn vị này, thư vẫn chờ cán bộ xem xét"
    )
    learned = f"; đã ghi nhớ địa chỉ {sender}" if done.learned else ""
    receipt = f"; thư xác nhận sẽ được gửi tới {sender}" if done.receipt else ""
    return f"Đã giao thư số {pk} cho {done.institution.name}: {where}{learned}{receipt}."
