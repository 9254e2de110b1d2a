"""The pages and downloads: thin handlers over the library (status, review, extensions, workbook).

Every route but the login form needs a live session; every POST needs the session's CSRF token. Changes are
made by the library functions with the logged-in user as the actor, so they land in ``actions`` with who and when.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from mailbot.campaigns import extensions, review
from mailbot.errors import MailbotError, NotFound
from mailbot.models import Campaign
from mailbot.reports.status import pick_campaign
from mailbot.reports.workbook import tracker_bytes
from mailbot.web import auth, data, downloads
from mailbot.web.app import FLASH_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, Web
from mailbot.wording import INPUT_EXAMPLE, local_time, parse_input_time

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_REASON = 300
MAX_ID = 2**63 - 1  # SQLite's largest integer: a bigger id in a URL names nothing (and must not reach the driver)


def _web(request: Request) -> Web:
    return request.app.state.web


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _pk(request: Request, name: str) -> int:
    """A row id from the path; anything no row can have (not plain digits, 0, too big for SQLite) is not found.

    The path parameter is taken as text: Starlette's ``int`` convertor fails with a 500 on thousands of digits.
    """
    text: str = request.path_params[name]
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)) or not 0 < int(text) <= MAX_ID:
        raise HTTPException(404)
    return int(text)


def _attachment(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=utf-8''{quote(name)}"


# --- access -------------------------------------------------------------------------------------------


def staff(handler: Handler) -> Handler:
    """Login required (else to the login form); on POST, the form's CSRF token must match the session's."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        web = _web(request)
        session = web.sessions.lookup(request.cookies.get(SESSION_COOKIE))
        if session is None:
            here = web.prefix + request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(web.url("/login", {"next": here} if request.method == "GET" else None), 303)
            if request.cookies.get(SESSION_COOKIE):
                web.clear_cookie(response, SESSION_COOKIE)
            return response
        request.scope["mailbot.session"] = session
        if request.method == "POST":
            form = await request.form()
            if not auth.csrf_ok(session, form.get("csrf")):  # type: ignore[arg-type]
                return web.render(
                    request,
                    "error.html",
                    403,
                    title="Yêu cầu không hợp lệ",
                    message="Biểu mẫu đã hết hiệu lực hoặc không hợp lệ. Vui lòng tải lại trang "
                    "và thực hiện lại thao tác.",
                )
            request.scope["mailbot.form"] = form
        flash_cookie = request.cookies.get(FLASH_COOKIE)
        if flash_cookie:
            try:
                request.scope["mailbot.flash"] = web.sessions.flash_signer.loads(flash_cookie, max_age=300)
            except BadSignature:
                pass
        response = await handler(request)
        if flash_cookie and request.method == "GET":
            web.clear_cookie(response, FLASH_COOKIE)
        return response

    return wrapped


def _form(request: Request) -> Any:
    return request.scope["mailbot.form"]


def _user(request: Request) -> str:
    return request.scope["mailbot.session"].user.name


def _redirect(
    web: Web, path: str, flash: tuple[str, str] | None = None, params: dict[str, str] | None = None
) -> RedirectResponse:
    response = RedirectResponse(web.url(path, params), 303)
    if flash:
        web.set_cookie(response, FLASH_COOKIE, web.sessions.flash_signer.dumps(list(flash)), max_age=300)
    return response


def _safe_next(web: Web, target: str | None) -> str:
    """Only a path of this application (never another site) is followed after login."""
    home = web.url("/")
    if not target or not target.startswith(web.prefix + "/") or target.startswith("//") or "\\" in target:
        return home
    if any(ch in target for ch in "\r\n\t") or target.startswith(web.prefix + "/login"):
        return home
    return target


async def login_form(request: Request) -> Response:
    web = _web(request)
    nxt = _safe_next(web, request.query_params.get("next"))
    if web.sessions.lookup(request.cookies.get(SESSION_COOKIE)):
        return RedirectResponse(nxt, 303)
    return _login_page(request, web, nxt)


def _login_page(
    request: Request, web: Web, nxt: str, error: str = "", name: str = "", status_code: int = 200
) -> Response:
    cookie, token = web.sessions.login_token()
    response = web.render(
        request, "login.html", status_code, title="Đăng nhập", token=token, next=nxt, error=error, name=name
    )
    web.set_cookie(response, LOGIN_COOKIE, cookie, max_age=24 * 3600)
    return response


async def login_submit(request: Request) -> Response:
    web = _web(request)
    form = await request.form()
    name = str(form.get("name", ""))[:64].strip()
    password = str(form.get("password", ""))
    nxt = _safe_next(web, str(form.get("next", "")))
    ip = _ip(request)
    if not web.sessions.login_token_ok(request.cookies.get(LOGIN_COOKIE), str(form.get("token", ""))):
        return _login_page(
            request, web, nxt, "Biểu mẫu đăng nhập đã hết hiệu lực. Vui lòng đăng nhập lại.", name, status_code=403
        )
    wait = web.limiter.retry_after(ip, name)
    if wait > 0:
        await run_in_threadpool(auth.record_event, web.engine, "login_limited", name, ip=ip)
        minutes = max(1, round(wait / 60))
        response = _login_page(
            request,
            web,
            nxt,
            "Tài khoản này đã đăng nhập sai quá nhiều lần từ máy của quý vị. "
            f"Vui lòng thử lại sau khoảng {minutes} phút.",
            name,
            status_code=429,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await run_in_threadpool(auth.authenticate, web.engine, name, password)
    if user is None:
        web.limiter.failed(ip, name)
        await run_in_threadpool(auth.record_event, web.engine, "login_failed", name, ip=ip)
        return _login_page(request, web, nxt, "Tên đăng nhập hoặc mật khẩu không đúng.", name)
    web.limiter.succeeded(ip, name)
    cookie, _ = await run_in_threadpool(web.sessions.start, user, ip)
    response = RedirectResponse(nxt, 303)
    web.set_cookie(response, SESSION_COOKIE, cookie, max_age=int(web.sessions.lifetime.total_seconds()))
    web.clear_cookie(response, LOGIN_COOKIE)
    return response


@staff
async def logout(request: Request) -> Response:
    web = _web(request)
    await run_in_threadpool(web.sessions.end, request.scope["mailbot.session"], _ip(request))
    response = RedirectResponse(web.url("/login"), 303)
    web.clear_cookie(response, SESSION_COOKIE)
    return response


# --- pages --------------------------------------------------------------------------------------------


def _campaign(request: Request) -> Campaign:
    cid = request.path_params["cid"]
    for c in _web(request).campaigns:
        if c.id == cid:
            return c
    raise HTTPException(404)


async def _snapshot(web: Web, campaign: Campaign) -> data.Snapshot:
    return await run_in_threadpool(web.cache.get, campaign)


@staff
async def home(request: Request) -> Response:
    web = _web(request)
    campaign = pick_campaign(web.campaigns, None, web.clock())
    return RedirectResponse(web.url(f"/c/{quote(campaign.id)}/"), 303)


@staff
async def overview(request: Request) -> Response:
    web = _web(request)
    campaign = _campaign(request)
    snap = await _snapshot(web, campaign)
    left, overdue = data.time_left(campaign.deadline, web.clock())
    recent = await run_in_threadpool(data.recent_actions, web.engine, 8)
    return web.render(
        request,
        "overview.html",
        title="Tổng quan",
        campaign=campaign,
        snap=snap,
        left=left,
        overdue=overdue,
        recent=recent,
        names=snap.names,
        page="overview",
    )


@staff
async def institutions(request: Request) -> Response:
    web = _web(request)
    campaign = _campaign(request)
    snap = await _snapshot(web, campaign)
    query = data.TableQuery.from_params(request.query_params)

    def fragment() -> Markup:  # the same for every user: rendered once per snapshot and query
        return Markup(
            web.env.get_template("_table.html").render(
                url=web.url, campaign=campaign, query=query, result=data.table(snap, query), headers=data.TABLE_HEADERS
            )
        )

    table_html = snap.remember(("table", tuple(sorted(query.params().items()))), fragment)
    return web.render(
        request,
        "institutions.html",
        title="Danh sách đơn vị",
        campaign=campaign,
        snap=snap,
        query=query,
        table_html=table_html,
        page="institutions",
    )


@staff
async def institution(request: Request) -> Response:
    web = _web(request)
    campaign = _campaign(request)
    snap = await _snapshot(web, campaign)
    row = snap.by_code.get(request.path_params["code"])
    if row is None:
        raise HTTPException(404)
    code = row.inst.code

    def load() -> tuple[Any, ...]:
        return (
            data.institution_messages(web.engine, code),
            data.sent_to(web.engine, code),
            data.extension(web.engine, campaign.id, code),
            data.actions_for(web.engine, code),
        )

    messages, sent, ext, actions = await run_in_threadpool(load)
    mine = [m for m in messages if m.campaign_id == campaign.id and m.state == "submission"]
    others = [m for m in messages if m not in mine]
    left, overdue = data.time_left(row.inst.deadline, web.clock())
    return web.render(
        request,
        "institution.html",
        title=row.inst.name,
        campaign=campaign,
        row=row,
        inst=row.inst,
        submissions=mine,
        others=others,
        sent=sent,
        ext=ext,
        actions=actions,
        left=left,
        overdue=overdue,
        page="institutions",
        OUTBOX_KIND=data.OUTBOX_KIND,
        OUTBOX_STATUS=data.OUTBOX_STATUS,
        MESSAGE_STATE=data.MESSAGE_STATE,
    )


@staff
async def grant_extension(request: Request) -> Response:
    web = _web(request)
    campaign = _campaign(request)
    form = _form(request)
    code = str(form.get("code", ""))
    back = f"/c/{quote(campaign.id)}/institutions/{quote(code, safe='')}"
    until = parse_input_time(str(form.get("until", "")), web.settings.zone)
    if until is None:
        return _redirect(
            web,
            back,
            (
                "error",
                "Thời hạn mới không hợp lệ. Vui lòng nhập ngày và giờ theo dạng "
                f"ngày/tháng/năm giờ:phút, ví dụ {INPUT_EXAMPLE}.",
            ),
        )
    reason = " ".join(str(form.get("reason", "")).split())[:MAX_REASON]
    try:
        await run_in_threadpool(
            extensions.grant, web.engine, campaign, code, until, actor=_user(request), reason=reason
        )
        web.cache.clear()
    except NotFound:
        raise HTTPException(404) from None
    except extensions.BadDeadline as exc:
        return _redirect(web, back, ("error", _bad_deadline(exc, campaign, web)))
    except MailbotError as exc:
        return _redirect(web, back, ("error", f"Chưa ghi nhận được gia hạn: {exc}"))
    return _redirect(web, back, ("ok", f"Đã gia hạn nộp báo cáo đến {local_time(until, web.settings.zone)}."))


def _bad_deadline(exc: extensions.BadDeadline, campaign: Campaign, web: Web) -> str:
    deadline = local_time(campaign.deadline, web.settings.zone)
    if exc.problem == "not_later":
        return f"Thời hạn mới phải sau hạn nộp chung của đợt báo cáo ({deadline}). Vui lòng chọn lại."
    return (
        f"Thời hạn mới không được quá một năm sau hạn nộp chung của đợt báo cáo "
        f"({deadline}). Vui lòng kiểm tra lại ngày, tháng, năm."
    )


@staff
async def review_queue(request: Request) -> Response:
    web = _web(request)
    campaign = _campaign(request)
    snap = await _snapshot(web, campaign)

    def load() -> tuple[Any, ...]:
        return data.review_items(web.engine, snap.cs), data.choices(web.engine)

    items, choices = await run_in_threadpool(load)
    return web.render(
        request,
        "review.html",
        title="Thư chờ xem xét",
        campaign=campaign,
        snap=snap,
        items=items,
        choices=choices,
        page="review",
    )


@staff
async def assign(request: Request) -> Response:
    web = _web(request)
    campaign = _campaign(request)
    pk = _pk(request, "pk")
    form = _form(request)
    code = str(form.get("code", "")).strip()
    learn = form.get("learn") in ("1", "on", "true")
    back = f"/c/{quote(campaign.id)}/review"
    msg = await run_in_threadpool(data.message, web.engine, pk)
    if msg is None:
        raise HTTPException(404)
    if msg.state not in ("review", "error"):
        return _redirect(web, back, ("error", f"Thư số {pk} đã được xử lý trước đó; không có thay đổi nào."))
    if not code:
        return _redirect(web, back, ("error", f"Vui lòng chọn đơn vị cho thư số {pk}."))
    try:
        done = await run_in_threadpool(
            review.assign, web.settings, web.engine, f"#{pk}", code, actor=_user(request), learn=learn, now=web.clock()
        )
        web.cache.clear()
    except MailbotError as exc:
        text = "không có đơn vị này trong danh sách" if isinstance(exc, NotFound) else str(exc)
        return _redirect(web, back, ("error", f"Chưa giao được thư số {pk}: {text}."))
    where = (
        f"tính vào đợt {done.campaign_id}" + (" (nộp muộn)" if done.late else " (đúng hạn)")
        if done.campaign_id
        else "chưa có đợt báo cáo nào đang mở cho đơn vị này, thư vẫn chờ xem xét"
    )
    learned = f"; đã ghi nhớ địa chỉ {msg.sender}" if done.learned else ""
    receipt = f"; thư xác nhận sẽ được gửi tới {msg.sender}" if done.receipt else ""
    return _redirect(web, back, ("ok", f"Đã giao thư số {pk} cho {done.institution.name}: {where}{learned}{receipt}."))


@staff
async def changes(request: Request) -> Response:
    web = _web(request)
    campaign = _campaign(request)

    def load() -> tuple[Any, ...]:
        return (
            data.recent_actions(web.engine, 200),
            data.recent_events(web.engine, 100),
            data.institution_names(web.engine),
        )

    actions, events, names = await run_in_threadpool(load)
    return web.render(
        request,
        "log.html",
        title="Nhật ký thay đổi",
        campaign=campaign,
        actions=actions,
        events=events,
        names=names,
        page="log",
    )


# --- downloads ----------------------------------------------------------------------------------------


@staff
async def tracker(request: Request) -> Response:
    web = _web(request)
    campaign = _campaign(request)
    snap = await _snapshot(web, campaign)
    now = web.clock()
    body = await run_in_threadpool(tracker_bytes, snap.cs, web.settings.zone, generated_at=now)
    name = f"theo-doi-{campaign.id}-{now.astimezone(web.settings.zone):%Y%m%d-%H%M}.xlsx"
    return Response(body, media_type=XLSX, headers={"Content-Disposition": _attachment(name)})


@staff
async def consolidation(request: Request) -> Response:
    """The consolidation workbook (`mailbot compile`): the schools' tables merged, with sums per group."""
    web = _web(request)
    campaign = _campaign(request)
    now = web.clock()
    body = await run_in_threadpool(_consolidation_bytes, web, campaign, now)
    name = f"tong-hop-{campaign.id}-{now.astimezone(web.settings.zone):%Y%m%d-%H%M}.xlsx"
    return Response(body, media_type=XLSX, headers={"Content-Disposition": _attachment(name)})


def _consolidation_bytes(web, campaign, now) -> bytes:  # type: ignore[no-untyped-def]
    import io

    from mailbot.reports.compile import build_workbook, compile_campaign

    buffer = io.BytesIO()
    build_workbook(compile_campaign(web.settings, web.engine, campaign, now=now)).save(buffer)
    return buffer.getvalue()


@staff
async def reports_zip(request: Request) -> Response:
    web = _web(request)
    campaign = _campaign(request)
    snap = await _snapshot(web, campaign)
    entries = await run_in_threadpool(downloads.latest_reports, snap.cs, web.settings.archive_dir)
    name = f"bao-cao-{campaign.id}-{web.clock().astimezone(web.settings.zone):%Y%m%d-%H%M}.zip"
    return StreamingResponse(
        downloads.stream_zip(entries, web.settings.zone),
        media_type="application/zip",
        headers={"Content-Disposition": _attachment(name)},
    )


def _file_response(found: downloads.Download | None) -> Response:
    if found is None:
        raise HTTPException(404)
    return FileResponse(
        found.path, media_type=found.media_type, filename=found.name, content_disposition_type="attachment"
    )


@staff
async def stored_file(request: Request) -> Response:
    web = _web(request)
    found = await run_in_threadpool(
        downloads.stored_file, web.engine, web.settings.archive_dir, _pk(request, "file_id")
    )
    return _file_response(found)


@staff
async def original(request: Request) -> Response:
    web = _web(request)
    found = await run_in_threadpool(
        downloads.original_message, web.engine, web.settings.archive_dir, _pk(request, "pk")
    )
    return _file_response(found)


def routes() -> list[Route]:
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", home, methods=["GET"]),
        Route("/c/{cid}/", overview, methods=["GET"]),
        Route("/c/{cid}/institutions", institutions, methods=["GET"]),
        Route("/c/{cid}/institutions/{code:path}", institution, methods=["GET"]),
        Route("/c/{cid}/extension", grant_extension, methods=["POST"]),
        Route("/c/{cid}/review", review_queue, methods=["GET"]),
        Route("/c/{cid}/review/{pk}/assign", assign, methods=["POST"]),
        Route("/c/{cid}/log", changes, methods=["GET"]),
        Route("/c/{cid}/tracker.xlsx", tracker, methods=["GET"]),
        Route("/c/{cid}/consolidation.xlsx", consolidation, methods=["GET"]),
        Route("/c/{cid}/reports.zip", reports_zip, methods=["GET"]),
        Route("/files/{file_id}", stored_file, methods=["GET"]),
        Route("/messages/{pk}/original.eml", original, methods=["GET"]),
    ]
