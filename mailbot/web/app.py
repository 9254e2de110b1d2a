"""The staff web application (Starlette, server-rendered Jinja2 pages): construction and shared helpers."""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mailbot import store
from mailbot.config import Settings
from mailbot.models import Campaign
from mailbot.web import auth
from mailbot.web.data import StatusCache
from mailbot.wording import IDENTIFIED_BY, STATUS, clip, input_time, local_time, warning_text, warning_texts

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"

SESSION_COOKIE = "mailbot_session"
LOGIN_COOKIE = "mailbot_login"
FLASH_COOKIE = "mailbot_flash"


@dataclass
class Web:
    """Everything the request handlers share; one per application."""

    settings: Settings
    engine: Engine
    sessions: auth.Sessions
    limiter: auth.LoginLimiter
    cache: StatusCache
    env: jinja2.Environment
    clock: Callable[[], datetime]

    @property
    def prefix(self) -> str:
        return self.settings.web.path_prefix.rstrip("/")

    @property
    def cookie_path(self) -> str:
        return self.prefix or "/"

    @property
    def campaigns(self) -> tuple[Campaign, ...]:
        return self.settings.campaigns()

    def url(self, path: str, params: dict[str, str] | None = None) -> str:
        """An absolute path under the configured prefix (what every link and redirect uses)."""
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.prefix}{path}{query}"

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=self.cookie_path,
            httponly=True,
            samesite="lax",
            secure=self.settings.web.https_only,
        )

    def clear_cookie(self, response: Response, name: str) -> None:
        response.delete_cookie(
            name, path=self.cookie_path, httponly=True, samesite="lax", secure=self.settings.web.https_only
        )

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        session = request.scope.get("mailbot.session")
        body = self.env.get_template(template).render(
            request=request,
            url=self.url,
            nonce=nonce,
            session=session,
            csrf=session.csrf if session else "",
            campaigns=self.campaigns,
            campaign_titles={c.id: c.title for c in self.campaigns},
            now=self.clock(),
            zone=self.settings.zone,
            flash=request.scope.get("mailbot.flash"),
            **context,
        )
        response = HTMLResponse(body, status_code=status_code)
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        return response


# --- template helpers ---------------------------------------------------------------------------------


def _size(n: int | None) -> str:
    """``12,3 KB`` (Vietnamese decimal comma)."""
    if n is None:
        return ""
    value, unit = float(n), "byte"
    for unit in ("byte", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    text = f"{value:.0f}" if unit == "byte" else f"{value:.1f}"
    return f"{text.replace('.', ',')} {unit}"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}".replace(".", ",") + "%"


def make_env(settings: Settings) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    zone = settings.zone
    env.filters["local"] = lambda moment: local_time(moment, zone)
    env.filters["input_local"] = lambda moment: input_time(moment, zone)
    env.filters["size"] = _size
    env.filters["clip"] = clip
    env.filters["percent"] = _percent
    env.filters["q"] = lambda text: quote(str(text), safe="")
    env.globals["STATUS"] = STATUS
    env.globals["IDENTIFIED_BY"] = IDENTIFIED_BY
    env.globals["warning_text"] = warning_text
    env.globals["warning_texts"] = warning_texts
    return env


class PathPrefix:
    """Serve the application under ``prefix`` behind a reverse proxy, whether the proxy keeps or strips the prefix."""

    def __init__(self, app: ASGIApp, prefix: str, web: Web | None = None) -> None:
        self.app, self.prefix = app, prefix
        self.web = web  # for tests and tools

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.prefix:
            path: str = scope["path"]
            if path == self.prefix or path.startswith(self.prefix + "/"):
                scope = dict(scope, path=path[len(self.prefix) :] or "/", root_path="")
                raw = scope.get("raw_path")
                if isinstance(raw, bytes) and raw.startswith(self.prefix.encode()):
                    scope["raw_path"] = raw[len(self.prefix.encode()) :] or b"/"
        await self.app(scope, receive, send)


class ClientAddress:
    """Who the client is: the connecting peer, or, only when that peer is one of ``[web] trusted_proxies``, the
    address the proxy reports in X-Forwarded-For (uvicorn's own middleware, given exactly those networks).

    The login limit is keyed on this address, so from anyone else forwarding headers are ignored (a client must not
    choose its own bucket); seeing them from an untrusted peer is logged once, since it usually means a proxy that
    is missing from the configuration and makes every user look like the proxy.
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in trusted)
        self.app: ASGIApp = ProxyHeadersMiddleware(app, trusted_hosts=list(trusted)) if trusted else app  # type: ignore[arg-type]
        self.warned = False

    def trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.warned:
            peer = scope["client"][0] if scope.get("client") else ""
            if not self.trusted(peer) and any(k == b"x-forwarded-for" for k, _ in scope["headers"]):
                self.warned = True
                log.warning(
                    "X-Forwarded-For from %s is ignored: if it is your reverse proxy, add it to "
                    "[web] trusted_proxies (until then every user looks like %s to the login limit)",
                    peer or "an unknown peer",
                    peer or "it",
                )
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Headers every response gets: no caching of archive pages, no framing, no sniffing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for name, value in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cache-control", b"no-store"),
                ):
                    if name not in names:
                        headers.append((name, value))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, with_headers)


async def _not_found(request: Request, exc: Exception) -> Response:
    return request.app.state.web.render(
        request, "error.html", 404, title="Không tìm thấy", message="Không tìm thấy trang hoặc tệp quý vị yêu cầu."
    )


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return request.app.state.web.render(
        request,
        "error.html",
        405,
        title="Thao tác không được hỗ trợ",
        message="Địa chỉ này không hỗ trợ thao tác quý vị vừa thực hiện.",
    )


def create_app(settings: Settings, engine: Engine | None = None, *, now: datetime | None = None) -> PathPrefix:
    """The ASGI application for ``settings``; ``now`` fixes the clock (previews and tests)."""
    from mailbot.web.routes import routes

    engine = engine or store.connect(settings.db_url)
    key = auth.load_or_create_key(auth.key_file(settings))
    web = Web(
        settings=settings,
        engine=engine,
        sessions=auth.Sessions(engine, key, settings.web.session_hours),
        limiter=auth.LoginLimiter(),
        cache=StatusCache(engine, settings.zone),
        env=make_env(settings),
        clock=(lambda: now) if now else (lambda: datetime.now(UTC)),
    )
    app = Starlette(routes=routes(), exception_handlers={404: _not_found, 405: _not_allowed})
    app.state.web = web
    return PathPrefix(ClientAddress(SecurityHeaders(app), settings.web.trusted_proxies), web.prefix, web)
