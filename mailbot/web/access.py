"""Who may reach a page and what its handler is handed.

``staff``: a live session (else to the login form) and, on POST, the session's CSRF token. ``campaign_page``
and ``campaign_route`` add the campaign named in the URL (unknown: 404), and for a page its cached snapshot, so a
handler starts from what it shows. The small helpers read the checked form and the user, and redirect with a
message for the next page.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from itsdangerous import BadSignature
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailbot.models import Campaign
from mailbot.web import auth
from mailbot.web.core import FLASH_COOKIE, SESSION_COOKIE, Web, web_of
from mailbot.web.snapshot import Snapshot

Handler = Callable[[Request], Awaitable[Response]]
CampaignHandler = Callable[[Request, Web, Campaign], Awaitable[Response]]
PageHandler = Callable[[Request, Web, Campaign, Snapshot], Awaitable[Response]]

MAX_ID = 2**63 - 1  # SQLite's largest integer: a bigger id in a URL names nothing (and must not reach the driver)
FLASH_SECONDS = 300


def staff(handler: Handler) -> Handler:
    """Login required (else to the login form); on POST, the form's CSRF token must match the session's."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        web = web_of(request)
        session = web.sessions.lookup(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return _to_login(request, web)
        request.scope["mailbot.session"] = session
        if request.method == "POST":
            form = await request.form()
            if not auth.csrf_ok(session, form.get("csrf")):  # type: ignore[arg-type]
                return _stale_form(request, web)
            request.scope["mailbot.form"] = form
        flash_cookie = request.cookies.get(FLASH_COOKIE)
        if flash_cookie:
            try:
                request.scope["mailbot.flash"] = web.sessions.flash_signer.loads(flash_cookie, max_age=FLASH_SECONDS)
            except BadSignature:
                pass
        response = await handler(request)
        if flash_cookie and request.method == "GET":
            web.clear_cookie(response, FLASH_COOKIE)
        return response

    return wrapped


def _to_login(request: Request, web: Web) -> Response:
    """To the login form, coming back here afterwards (after a GET); a dead session's cookie is dropped."""
    here = web.prefix + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(web.url("/login", {"next": here} if request.method == "GET" else None), 303)
    if request.cookies.get(SESSION_COOKIE):
        web.clear_cookie(response, SESSION_COOKIE)
    return response


def _stale_form(request: Request, web: Web) -> Response:
    return web.render(
        request,
        "error.html",
        403,
        title="Yêu cầu không hợp lệ",
        message="Biểu mẫu đã hết hiệu lực hoặc không hợp lệ. Vui lòng tải lại trang và thực hiện lại thao tác.",
    )


def campaign_of(request: Request, web: Web) -> Campaign:
    """The campaign the URL's ``{cid}`` names, closed ones included; any other is not found."""
    cid = request.path_params["cid"]
    for c in web.catalog().all:
        if c.id == cid:
            return c
    raise HTTPException(404)


def campaign_route(handler: CampaignHandler) -> Handler:
    """``staff``, and the handler is called with the application and the campaign of the URL."""

    @staff
    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        web = web_of(request)
        return await handler(request, web, campaign_of(request, web))

    return wrapped


def campaign_page(handler: PageHandler) -> Handler:
    """``campaign_route``, and the campaign's snapshot (from the cache, rebuilt when the database moved)."""

    @staff
    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        web = web_of(request)
        campaign = campaign_of(request, web)
        snap = await run_in_threadpool(web.cache.get, campaign)
        return await handler(request, web, campaign, snap)

    return wrapped


def form(request: Request) -> FormData:
    """The POST form ``staff`` read and checked."""
    checked: FormData = request.scope["mailbot.form"]
    return checked


def user(request: Request) -> str:
    """The logged-in user's name: the actor of what the request changes."""
    name: str = request.scope["mailbot.session"].user.name
    return name


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def row_id(request: Request, name: str) -> int:
    """A row id from the path; anything no row can have (not plain digits, 0, too big for SQLite) is not found.

    The path parameter is taken as text: Starlette's ``int`` convertor fails with a 500 on thousands of digits.
    """
    text: str = request.path_params[name]
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)) or not 0 < int(text) <= MAX_ID:
        raise HTTPException(404)
    return int(text)


def redirect(
    web: Web, path: str, flash: tuple[str, str] | None = None, params: dict[str, str] | None = None
) -> RedirectResponse:
    """A 303 to ``path``, carrying ``(kind, text)`` for the next page to show once."""
    response = RedirectResponse(web.url(path, params), 303)
    if flash:
        web.set_cookie(response, FLASH_COOKIE, web.sessions.flash_signer.dumps(list(flash)), max_age=FLASH_SECONDS)
    return response
