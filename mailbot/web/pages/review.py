"""The review queue: held messages with their files and why they are held; assigning one to an institution (and,
when several campaigns are open, to a campaign); dismissing one as no report, and the list of those dismissed,
each of which can be put back."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mailbot.campaigns import review
from mailbot.errors import MailbotError, NotFound
from mailbot.models import Campaign, State
from mailbot.web import queries
from mailbot.web.access import campaign_page, campaign_route, form, redirect, row_id, user
from mailbot.web.core import Web
from mailbot.web.snapshot import Snapshot

MAX_REASON = 300
HELD = (State.REVIEW.value, State.ERROR.value)


@campaign_page
async def review_queue(request: Request, web: Web, campaign: Campaign, snap: Snapshot) -> Response:
    def load() -> tuple[list[queries.ReviewView], list[tuple[str, list[queries.Choice]]], list[queries.DismissedView]]:
        return queries.review_items(web.engine, snap.cs), queries.choices(web.engine), queries.dismissed(web.engine)

    items, choices, dismissed = await run_in_threadpool(load)
    live = review.open_campaigns(web.campaigns, web.clock())
    return web.render(
        request,
        "review.html",
        campaign=campaign,
        snap=snap,
        items=items,
        choices=choices,
        dismissed=dismissed,
        open_campaigns=live if len(live) > 1 else (),
    )


def _back(campaign: Campaign, anchor: str = "") -> str:
    return f"/c/{quote(campaign.id)}/review" + anchor


async def _held(web: Web, pk: int) -> queries.MessageView:
    msg = await run_in_threadpool(queries.message, web.engine, pk)
    if msg is None:
        raise HTTPException(404)
    return msg


@campaign_route
async def assign(request: Request, web: Web, campaign: Campaign) -> Response:
    pk = row_id(request, "pk")
    checked = form(request)
    code = str(checked.get("code", "")).strip()
    chosen = str(checked.get("campaign", "")).strip() or None
    learn = checked.get("learn") in ("1", "on", "true")
    back = _back(campaign)
    msg = await _held(web, pk)
    if msg.state not in HELD:
        return redirect(web, back, ("error", f"Thư số {pk} đã được xử lý trước đó; không có thay đổi nào."))
    if not code:
        return redirect(web, back, ("error", f"Vui lòng chọn đơn vị cho thư số {pk}."))
    try:
        done = await run_in_threadpool(
            review.assign,
            web.settings,
            web.engine,
            f"#{pk}",
            code,
            actor=user(request),
            campaigns=web.catalog().all,
            campaign_id=chosen,
            learn=learn,
            now=web.clock(),
        )
        web.cache.clear()
    except MailbotError as exc:
        return redirect(web, back, ("error", f"Chưa giao được thư số {pk}: {_why_not(exc, chosen)}."))
    return redirect(web, back, ("ok", _assigned(pk, msg.sender, done)))


def _why_not(exc: MailbotError, chosen: str | None) -> str:
    if isinstance(exc, review.CampaignChoice):
        names = "; ".join(c.title for c in exc.candidates)
        return f"có nhiều đợt báo cáo đang mở cho đơn vị này ({names}), vui lòng chọn đợt báo cáo"
    if isinstance(exc, review.NotConcerned):
        return "đợt báo cáo đã chọn không áp dụng cho nhóm của đơn vị này, vui lòng chọn lại"
    if isinstance(exc, NotFound):
        if chosen and str(exc).startswith("no campaign"):
            return "không có đợt báo cáo đã chọn, vui lòng chọn lại"
        return "không có đơn vị này trong danh sách"
    return str(exc)


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


@campaign_route
async def dismiss(request: Request, web: Web, campaign: Campaign) -> Response:
    pk = row_id(request, "pk")
    reason = " ".join(str(form(request).get("reason", "")).split())[:MAX_REASON]
    back = _back(campaign)
    msg = await _held(web, pk)
    if msg.state not in HELD:
        return redirect(
            web, back, ("error", f"Thư số {pk} không còn trong danh sách chờ xem xét; không có thay đổi nào.")
        )
    if not reason:
        return redirect(
            web, back, ("error", f"Vui lòng ghi lý do loại thư số {pk} (ví dụ: thư quảng cáo, thư hỏi đáp).")
        )
    try:
        await run_in_threadpool(review.dismiss, web.engine, f"#{pk}", reason=reason, actor=user(request))
        web.cache.clear()
    except MailbotError as exc:
        return redirect(web, back, ("error", f"Chưa loại được thư số {pk}: {exc}."))
    return redirect(web, back, ("ok", f"Đã loại thư số {pk} khỏi danh sách chờ xem xét (lý do: {reason})."))


@campaign_route
async def restore(request: Request, web: Web, campaign: Campaign) -> Response:
    pk = row_id(request, "pk")
    back = _back(campaign)
    msg = await _held(web, pk)
    if msg.state != State.DISMISSED.value:
        return redirect(web, back, ("error", f"Thư số {pk} không nằm trong danh sách đã loại; không có thay đổi nào."))
    try:
        await run_in_threadpool(review.undismiss, web.engine, f"#{pk}", actor=user(request))
        web.cache.clear()
    except MailbotError as exc:
        return redirect(web, back, ("error", f"Chưa đưa lại được thư số {pk}: {exc}."))
    return redirect(web, back, ("ok", f"Đã đưa thư số {pk} trở lại danh sách chờ xem xét."))
