"""The institutions: the table (search, filters, sorting, pages), one institution's page, and the extension form."""

from __future__ import annotations

from urllib.parse import quote

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mailbot.campaigns import extensions
from mailbot.errors import MailbotError, NotFound
from mailbot.models import Campaign
from mailbot.web import queries
from mailbot.web.access import campaign_page, campaign_route, form, redirect, user
from mailbot.web.core import Web, time_left
from mailbot.web.snapshot import Snapshot
from mailbot.web.table import TABLE_HEADERS, TableQuery, table
from mailbot.wording import INPUT_EXAMPLE, local_time, parse_input_time

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
    return redirect(web, back, ("ok", f"Đã gia hạn nộp báo cáo đến {local_time(until, web.settings.zone)}."))


def _bad_deadline(exc: extensions.BadDeadline, campaign: Campaign, web: Web) -> str:
    deadline = local_time(campaign.deadline, web.settings.zone)
    if exc.problem == "not_later":
        return f"Thời hạn mới phải sau hạn nộp chung của đợt báo cáo ({deadline}). Vui lòng chọn lại."
    return (
        f"Thời hạn mới không được quá một năm sau hạn nộp chung của đợt báo cáo "
        f"({deadline}). Vui lòng kiểm tra lại ngày, tháng, năm."
    )
