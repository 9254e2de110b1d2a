"""The institutions: the table (search, filters, sorting, pages), one institution's page, its extension (grant,
change, remove), confirming or rejecting its submissions recognised only by name, and the tick for its paper
copy."""

from __future__ import annotations

from urllib.parse import quote

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mailbot.campaigns import extensions, named, paper, stamp_accept
from mailbot.errors import MailbotError, NotFound
from mailbot.models import Campaign
from mailbot.notify import extension_notice
from mailbot.reports.tracker_rows import stamped_text
from mailbot.web import queries
from mailbot.web.access import campaign_page, campaign_route, form, redirect, user
from mailbot.web.core import Web, time_left
from mailbot.web.snapshot import Snapshot
from mailbot.web.table import TABLE_HEADERS, TableQuery, table
from mailbot.wording import DATE_EXAMPLE, INPUT_EXAMPLE, local_time, parse_input_date, parse_input_time

MAX_REASON = 300


@campaign_page
async def institutions(request: Request, web: Web, campaign: Campaign, snap: Snapshot) -> Response:
    query = TableQuery.from_params(request.query_params)

    def fragment() -> Markup:  # the same for every user: rendered once per snapshot and query
        result = table(snap, query)
        template = web.env.get_template("_table.html")
        return Markup(
            template.render(url=web.url, campaign=campaign, query=query, result=result, headers=TABLE_HEADERS)
        )

    table_html = snap.remember(("table", tuple(sorted(query.params().items()))), fragment)
    return web.render(request, "institutions.html", campaign=campaign, snap=snap, query=query, table_html=table_html)


@campaign_page
async def institution(request: Request, web: Web, campaign: Campaign, snap: Snapshot) -> Response:
    row = snap.by_code.get(request.path_params["code"])
    if row is None:
        raise HTTPException(404)
    found = await run_in_threadpool(queries.institution_page, web.engine, campaign.id, row.inst.code)
    left, overdue = time_left(row.inst.deadline, web.clock())
    return web.render(
        request,
        "institution.html",
        title=row.inst.name,
        campaign=campaign,
        row=row,
        inst=row.inst,
        submissions=found.submissions,
        others=found.others,
        sent=found.sent,
        ext=found.extension,
        paper=found.paper,
        stamped=stamped_text(row.inst, web.settings.zone),
        today=f"{web.clock().astimezone(web.settings.zone):%d/%m/%Y}",
        actions=found.actions,
        left=left,
        overdue=overdue,
        OUTBOX_KIND=queries.OUTBOX_KIND,
        OUTBOX_STATUS=queries.OUTBOX_STATUS,
        MESSAGE_STATE=queries.MESSAGE_STATE,
    )


@campaign_route
async def grant_extension(request: Request, web: Web, campaign: Campaign) -> Response:
    checked = form(request)
    code = str(checked.get("code", ""))
    back = f"/c/{quote(campaign.id)}/institutions/{quote(code, safe='')}"
    until = parse_input_time(str(checked.get("until", "")), web.settings.zone)
    if until is None:
        example = f"ngày/tháng/năm giờ:phút, ví dụ {INPUT_EXAMPLE}"
        return redirect(
            web, back, ("error", f"Thời hạn mới không hợp lệ. Vui lòng nhập ngày và giờ theo dạng {example}.")
        )
    reason = " ".join(str(checked.get("reason", "")).split())[:MAX_REASON]
    try:
        await run_in_threadpool(extensions.grant, web.engine, campaign, code, until, actor=user(request), reason=reason)
        web.cache.clear()
    except NotFound:
        raise HTTPException(404) from None
    except extensions.BadDeadline as exc:
        return redirect(web, back, ("error", _bad_deadline(exc, campaign, web)))
    except MailbotError as exc:
        return redirect(web, back, ("error", f"Chưa ghi nhận được gia hạn: {exc}"))
    done = f"Đã gia hạn nộp báo cáo đến {local_time(until, web.settings.zone)}."
    if checked.get("notify"):
        done += " " + await run_in_threadpool(_tell_extension, web, campaign, code, reason)
    return redirect(web, back, ("ok", done))


def _tell_extension(web: Web, campaign: Campaign, code: str, reason: str) -> str:
    """Queue the school's notice of its new deadline (the service sends it); what staff are told about it."""
    try:
        told = extension_notice.tell_school(web.settings, web.engine, campaign, code, web.clock(), reason=reason)
    except MailbotError as exc:
        return f"Chưa gửi được thư báo gia hạn cho đơn vị: {exc}"
    if told is None or told.status == "failed":
        return "Đơn vị không có địa chỉ thư dùng được trong danh sách: chưa gửi được thư báo gia hạn."
    return f"Thư báo gia hạn cho đơn vị đã được đưa vào hàng đợi gửi ({', '.join(told.recipients)})."


def _bad_deadline(exc: extensions.BadDeadline, campaign: Campaign, web: Web) -> str:
    deadline = local_time(campaign.deadline, web.settings.zone)
    if exc.problem == "not_later":
        return f"Thời hạn mới phải sau hạn nộp chung của đợt báo cáo ({deadline}). Vui lòng chọn lại."
    return (
        f"Thời hạn mới không được quá một năm sau hạn nộp chung của đợt báo cáo "
        f"({deadline}). Vui lòng kiểm tra lại ngày, tháng, năm."
    )


def _institution_url(campaign: Campaign, code: str) -> str:
    return f"/c/{quote(campaign.id)}/institutions/{quote(code, safe='')}"


@campaign_route
async def remove_extension(request: Request, web: Web, campaign: Campaign) -> Response:
    code = str(form(request).get("code", ""))
    back = _institution_url(campaign, code)
    try:
        await run_in_threadpool(extensions.remove, web.engine, campaign, code, actor=user(request))
        web.cache.clear()
    except NotFound:
        raise HTTPException(404) from None
    except extensions.NoExtension:
        return redirect(web, back, ("error", "Đơn vị chưa được gia hạn trong đợt báo cáo này; không có gì để hủy."))
    except MailbotError as exc:
        return redirect(web, back, ("error", f"Chưa hủy được gia hạn: {exc}"))
    deadline = local_time(campaign.deadline, web.settings.zone)
    return redirect(web, back, ("ok", f"Đã hủy gia hạn; hạn nộp của đơn vị trở lại hạn chung {deadline}."))


@campaign_route
async def confirm_name(request: Request, web: Web, campaign: Campaign) -> Response:
    code = str(form(request).get("code", ""))
    back = _institution_url(campaign, code)
    try:
        done = await run_in_threadpool(
            named.confirm, web.settings, web.engine, campaign, code, actor=user(request), now=web.clock()
        )
        web.cache.clear()
    except NotFound:
        return await _nothing_by_name(web, campaign, code, back)
    except MailbotError as exc:
        return redirect(web, back, ("error", f"Chưa xác nhận được: {exc}"))
    receipt = "; thư xác nhận sẽ được gửi tới đơn vị" if done.receipts else ""
    return redirect(web, back, ("ok", f"Đã xác nhận báo cáo là của {done.institution.name}{receipt}."))


@campaign_route
async def reject_name(request: Request, web: Web, campaign: Campaign) -> Response:
    code = str(form(request).get("code", ""))
    back = _institution_url(campaign, code)
    try:
        done = await run_in_threadpool(named.reject, web.settings, web.engine, campaign, code, actor=user(request))
        web.cache.clear()
    except NotFound:
        return await _nothing_by_name(web, campaign, code, back)
    except MailbotError as exc:
        return redirect(web, back, ("error", f"Chưa ghi nhận được: {exc}"))
    numbers = ", ".join(f"số {pk}" for pk in done.message_pks)
    return redirect(
        web,
        back,
        (
            "ok",
            f"Đã ghi nhận thư {numbers} không phải của {done.institution.name}; thư đã trở lại danh sách chờ xem xét.",
        ),
    )


async def _nothing_by_name(web: Web, campaign: Campaign, code: str, back: str) -> Response:
    """An unknown code is not found; a known one without such submissions (a second click) is told so."""
    names = await run_in_threadpool(queries.institution_names, web.engine)
    if code not in names:
        raise HTTPException(404)
    return redirect(
        web, back, ("error", "Đơn vị không có báo cáo nào chờ xác nhận (nhận diện theo tên) trong đợt này.")
    )


@campaign_route
async def paper_copy(request: Request, web: Web, campaign: Campaign) -> Response:
    """Tick the paper copy as received on a day (``received=1``, ``received_on`` dd/mm/yyyy), or take the tick back
    (``undo=1``, or the box left unticked)."""
    checked = form(request)
    code = str(checked.get("code", ""))
    back = _institution_url(campaign, code)
    actor = user(request)
    try:
        if checked.get("undo") == "1" or checked.get("received") != "1":
            change = await run_in_threadpool(paper.undo, web.engine, campaign, code, actor=actor)
            web.cache.clear()
            if change.received_on is None:
                return redirect(web, back, ("error", "Chưa có bản giấy nào được ghi nhận để bỏ đánh dấu."))
            return redirect(web, back, ("ok", f"Đã bỏ ghi nhận bản giấy ngày {change.received_on:%d/%m/%Y}."))
        on = parse_input_date(str(checked.get("received_on", "")))
        if on is None:
            return redirect(
                web,
                back,
                (
                    "error",
                    f"Ngày nhận bản giấy không hợp lệ. Vui lòng nhập theo dạng ngày/tháng/năm, ví dụ {DATE_EXAMPLE}.",
                ),
            )
        today = web.clock().astimezone(web.settings.zone).date()
        await run_in_threadpool(paper.tick, web.engine, campaign, code, on, actor=actor, today=today)
        web.cache.clear()
    except NotFound:
        raise HTTPException(404) from None
    except paper.BadDate as exc:
        return redirect(web, back, ("error", _bad_paper_date(exc)))
    return redirect(web, back, ("ok", f"Đã ghi nhận bản giấy (bản có dấu đỏ) nhận ngày {on:%d/%m/%Y}."))


@campaign_route
async def accept_stamp(request: Request, web: Web, campaign: Campaign) -> Response:
    """Staff accept the institution's stamped copy (PDF) after looking at it (``undo=1`` takes it back)."""
    checked = form(request)
    code = str(checked.get("code", ""))
    back = _institution_url(campaign, code)
    undo = checked.get("undo") == "1"
    try:
        act = stamp_accept.undo if undo else stamp_accept.accept
        change = await run_in_threadpool(act, web.engine, campaign, code, actor=user(request))
    except NotFound:
        raise HTTPException(404) from None
    web.cache.clear()
    if undo:
        said = "Đã bỏ chấp nhận bản có dấu đỏ." if change.changed else "Bản có dấu đỏ chưa được chấp nhận trước đó."
    else:
        said = (
            "Đã chấp nhận bản có dấu đỏ của đơn vị." if change.changed else "Bản có dấu đỏ đã được chấp nhận trước đó."
        )
    return redirect(web, back, ("ok", said))


def _bad_paper_date(exc: paper.BadDate) -> str:
    if exc.problem == "future":
        return "Ngày nhận bản giấy không được sau ngày hôm nay. Vui lòng kiểm tra lại ngày, tháng, năm."
    return "Ngày nhận bản giấy sớm hơn đợt báo cáo quá một năm. Vui lòng kiểm tra lại ngày, tháng, năm."
