"""Logging in and out: the login form (its own signed token, since there is no session yet), the password check
under the login rate limit, and the session cookie.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailbot.web import auth
from mailbot.web.access import client_ip, staff
from mailbot.web.core import LOGIN_COOKIE, SESSION_COOKIE, Web, web_of


def _safe_next(web: Web, target: str | None) -> str:
    """Only a path of this application (never another site) is followed after login."""
    home = web.url("/")
    if not target or not target.startswith(web.prefix + "/") or target.startswith("//") or "\\" in target:
        return home
    if any(ch in target for ch in "\r\n\t") or target.startswith(web.prefix + "/login"):
        return home
    return target


async def login_form(request: Request) -> Response:
    web = web_of(request)
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
    web = web_of(request)
    form = await request.form()
    name = str(form.get("name", ""))[:64].strip()
    password = str(form.get("password", ""))
    nxt = _safe_next(web, str(form.get("next", "")))
    ip = client_ip(request)
    if not web.sessions.login_token_ok(request.cookies.get(LOGIN_COOKIE), str(form.get("token", ""))):
        return _login_page(
            request, web, nxt, "Biểu mẫu đăng nhập đã hết hiệu lực. Vui lòng đăng nhập lại.", name, status_code=403
        )
    wait = web.limiter.retry_after(ip, name)
    if wait > 0:
        return await _limited(request, web, nxt, name, ip, wait)
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


async def _limited(request: Request, web: Web, nxt: str, name: str, ip: str, wait: float) -> Response:
    """Too many failures for this account from this address: the form again, with how long to wait (429)."""
    await run_in_threadpool(auth.record_event, web.engine, "login_limited", name, ip=ip)
    minutes = max(1, round(wait / 60))
    response = _login_page(
        request,
        web,
        nxt,
        f"Tài khoản này đã đăng nhập sai quá nhiều lần từ máy của quý vị. Vui lòng thử lại sau khoảng {minutes} phút.",
        name,
        status_code=429,
    )
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response


@staff
async def logout(request: Request) -> Response:
    web = web_of(request)
    await run_in_threadpool(web.sessions.end, request.scope["mailbot.session"], client_ip(request))
    response = RedirectResponse(web.url("/login"), 303)
    web.clear_cookie(response, SESSION_COOKIE)
    return response
