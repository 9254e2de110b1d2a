"""The staff web application assembled: Starlette over the pages' routes, behind the path prefix, the client
address rules and the security headers every response gets; the 404 and 405 pages."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mailbot import store
from mailbot.clock import Clock
from mailbot.config import Settings
from mailbot.notify.compose import secret_key
from mailbot.web import auth
from mailbot.web.core import Web, make_env, web_of
from mailbot.web.pages import routes
from mailbot.web.snapshot import StatusCache

log = logging.getLogger(__name__)


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
        # uvicorn and Starlette each declare the same ASGI callable types of their own
        self.app: ASGIApp = ProxyHeadersMiddleware(app, trusted_hosts=list(trusted)) if trusted else app  # type: ignore[arg-type, assignment]
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

        async def with_headers(message: Message) -> None:
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
    return web_of(request).render(
        request, "error.html", 404, title="Không tìm thấy", message="Không tìm thấy trang hoặc tệp quý vị yêu cầu."
    )


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return web_of(request).render(
        request,
        "error.html",
        405,
        title="Thao tác không được hỗ trợ",
        message="Địa chỉ này không hỗ trợ thao tác quý vị vừa thực hiện.",
    )


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    now: datetime | None = None,
    clock: Callable[[], datetime] | None = None,
) -> PathPrefix:
    """The ASGI application for ``settings``; ``now`` fixes the clock (previews and tests), ``clock`` shares one
    (the service's, which runs on from its ``--now``)."""
    engine = engine or store.connect(settings.db_url)
    key = auth.load_or_create_key(auth.key_file(settings))
    web = Web(
        settings=settings,
        engine=engine,
        sessions=auth.Sessions(engine, key, settings.web.session_hours),
        limiter=auth.LoginLimiter(),
        cache=StatusCache(engine, settings.zone),
        env=make_env(settings),
        clock=clock or Clock(settings.zone, now).now,
        link_key=secret_key(settings.data_dir),
    )
    app = Starlette(routes=routes(), exception_handlers={404: _not_found, 405: _not_allowed})
    app.state.web = web
    return PathPrefix(ClientAddress(SecurityHeaders(app), settings.web.trusted_proxies), web.prefix, web)
