"""What every request handler shares: the ``Web`` object (settings, database, sessions, the snapshot cache, the
clock), its cookies, links and rendering, and the Jinja environment with the words pages print (sizes, shares,
time left).

The routes import this module and never ``app``, which only assembles the application from them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mailbot.campaigns import catalog
from mailbot.config import Settings
from mailbot.models import Campaign
from mailbot.web import auth
from mailbot.web.snapshot import StatusCache
from mailbot.wording import IDENTIFIED_BY, STATUS, clip, input_time, local_time, warning_text, warning_texts

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
    link_key: bytes = b""  # verifies the schools' status links (notify.links): the installation's secret.key
    # Bad status links per client address: a stranger trying tokens is slowed down (they cannot be guessed anyway).
    link_limiter: auth.LoginLimiter = field(default_factory=lambda: auth.LoginLimiter(attempts=20, per_ip=20))

    @property
    def prefix(self) -> str:
        return self.settings.web.path_prefix.rstrip("/")

    @property
    def cookie_path(self) -> str:
        return self.prefix or "/"

    @property
    def campaigns(self) -> tuple[Campaign, ...]:
        """The open campaigns, for the header and the default page."""
        return self.catalog().open

    def catalog(self) -> catalog.Catalog:
        """Every campaign, closed ones included (browsable under "Các đợt đã kết thúc")."""
        return catalog.load(self.engine, self.settings)

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
        open_now = self.campaigns  # read from the database: once per page
        body = self.env.get_template(template).render(
            request=request,
            url=self.url,
            nonce=nonce,
            session=session,
            csrf=session.csrf if session else "",
            campaigns=open_now,
            campaign_titles={c.id: c.title for c in open_now},
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


def web_of(request: Request) -> Web:
    """The application's ``Web``, as ``create_app`` left it on the Starlette state."""
    web: Web = request.app.state.web
    return web


# --- words pages print --------------------------------------------------------------------------------


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


def duration_words(seconds: float) -> str:
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} ngày {hours} giờ" if hours else f"{days} ngày"
    if hours:
        return f"{hours} giờ {minutes} phút" if minutes else f"{hours} giờ"
    return f"{max(minutes, 1)} phút"


def time_left(deadline: datetime, now: datetime) -> tuple[str, bool]:
    """("Còn 2 ngày 3 giờ", False) or ("Đã quá hạn 1 ngày 14 giờ", True)."""
    delta = (deadline - now).total_seconds()
    if delta > 0:
        return f"Còn {duration_words(delta)}", False
    return f"Đã quá hạn {duration_words(delta)}", True


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
    labels = {i.source: i.label for i in settings.inboxes}
    env.filters["inbox_name"] = lambda source: labels.get(source, source)  # an inbox no longer configured: as kept
    env.filters["percent"] = _percent
    env.filters["q"] = lambda text: quote(str(text), safe="")
    env.globals["STATUS"] = STATUS
    env.globals["IDENTIFIED_BY"] = IDENTIFIED_BY
    env.globals["warning_text"] = warning_text
    env.globals["warning_texts"] = warning_texts
    return env
