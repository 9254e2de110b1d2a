"""A tiny OAuth2 authorization server on loopback for tests (stdlib only).

It plays two roles, on one port:

* a **token endpoint** ``POST /token`` (``grant_type=refresh_token``): checks
  ``refresh_token``, ``client_id`` and ``client_secret`` (form fields or HTTP
  Basic) against the configured values and answers
  ``{"access_token": <new random token>, "expires_in": N, "token_type": "Bearer"}``;
* a **token introspection endpoint** (RFC 7662) for Dovecot's ``oauth2``
  passdb at ``/introspect``, whatever Dovecot's ``introspection_mode``:
  ``post`` (form body ``token=...``), ``get`` (``/introspect?token=...`` or
  the token appended to the URL) or ``auth`` (``Authorization: Bearer ...``).
  It answers ``{"active": true, "username": <user>}`` for tokens it issued or
  that were added with :meth:`OAuthServer.add_token`, ``{"active": false}``
  otherwise (also after :meth:`OAuthServer.revoke`).

Typical use (the pytest fixture ``oauth_server`` is at the bottom)::

    oauth = OAuthServer(user="gdtx@haiphong.edu.vn").start()
    oauth.add_token("tok-123", "gdtx@haiphong.edu.vn")
    Dovecot(root, oauth2_introspection_url=oauth.introspect_url)
    SmtpSink(xoauth2_validator=oauth.validate)
    ...
    assert oauth.token_requests == 1
    oauth.stop()
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers.dovecot import DEFAULT_USER

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "REFRESH_TOKEN",
    "Introspection",
    "OAuthServer",
    "oauth_server",
]

HOST = "127.0.0.1"
CLIENT_ID = "mailbot-test-client"
CLIENT_SECRET = "client-secret-7f3a"
REFRESH_TOKEN = "refresh-token-91c2"


@dataclass(frozen=True)
class Introspection:
    """One introspection request as the server saw it."""

    mode: str  # "post", "get" or "auth"
    token: str
    active: bool


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    # -- plumbing ----------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _reply(self, status: int, payload: dict) -> None:  # type: ignore[type-arg]
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    # -- routes ------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        body = self._body()
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        if path == "/token":
            self._token(form)
        elif path.startswith("/introspect"):
            token = form.get("token") or self._bearer() or _query_token(query)
            self._introspect("post", token)
        else:
            self._reply(404, {"error": "not_found"})

    def do_GET(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        if not path.startswith("/introspect"):
            self._reply(404, {"error": "not_found"})
            return
        bearer = self._bearer()
        if bearer:
            self._introspect("auth", bearer)
            return
        # get mode: Dovecot appends the token to introspection_url as is.
        token = _query_token(query) or urllib.parse.unquote(path[len("/introspect") :].lstrip("/"))
        self._introspect("get", token)

    def _bearer(self) -> str:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""

    def _basic(self) -> tuple[str, str] | None:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return urllib.parse.unquote(user), urllib.parse.unquote(password)

    def _token(self, form: dict[str, str]) -> None:
        srv = self.server.owner
        with srv._lock:
            srv.token_requests += 1
            srv.token_forms.append(dict(form))
        client_id, client_secret = self._basic() or (form.get("client_id", ""), form.get("client_secret", ""))
        if form.get("grant_type") != "refresh_token":
            self._reply(400, {"error": "unsupported_grant_type"})
            return
        if client_id != srv.client_id or (srv.client_secret is not None and client_secret != srv.client_secret):
            self._reply(401, {"error": "invalid_client"})
            return
        user = srv.refresh_tokens.get(form.get("refresh_token", ""))
        if user is None:
            self._reply(400, {"error": "invalid_grant", "error_description": "bad refresh token"})
            return
        token = "at-" + secrets.token_urlsafe(24)
        with srv._lock:
            srv.tokens[token] = user
            srv.issued.append(token)
        self._reply(
            200,
            {
                "access_token": token,
                "expires_in": srv.expires_in,
                "token_type": "Bearer",
                **({"scope": form["scope"]} if "scope" in form else {}),
            },
        )

    def _introspect(self, mode: str, token: str) -> None:
        srv = self.server.owner
        user = srv.user_for(token) if token else None
        with srv._lock:
            srv.introspections.append(Introspection(mode, token, user is not None))
        if user is None:
            self._reply(200, {"active": False})
        else:
            self._reply(
                200,
                {"active": True, "username": user, "client_id": srv.client_id, "token_type": "Bearer", "scope": "mail"},
            )


def _query_token(query: str) -> str:
    values = urllib.parse.parse_qs(query).get("token") or urllib.parse.parse_qs(query).get("access_token")
    return values[-1] if values else ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: OAuthServer


class OAuthServer:
    """Token + introspection endpoint on 127.0.0.1 (port chosen at start).

    Public state (read it from tests): ``issued`` (access tokens handed out by
    ``/token``, in order), ``token_requests`` (calls to ``/token``, refused
    ones included), ``token_forms`` (their form fields), ``introspections``
    (:class:`Introspection` records), ``tokens`` (every valid token → user).
    """

    def __init__(
        self,
        *,
        user: str = DEFAULT_USER,
        client_id: str = CLIENT_ID,
        client_secret: str | None = CLIENT_SECRET,
        refresh_token: str = REFRESH_TOKEN,
        expires_in: int = 3600,
    ) -> None:
        self.user = user
        self.client_id = client_id
        self.client_secret = client_secret  # None: a public client, no secret checked
        self.refresh_token = refresh_token
        self.refresh_tokens: dict[str, str] = {refresh_token: user}  # refresh token → user
        self.expires_in = expires_in
        self.tokens: dict[str, str] = {}
        self.issued: list[str] = []
        self.token_requests = 0
        self.token_forms: list[dict[str, str]] = []
        self.introspections: list[Introspection] = []
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.host = HOST
        self.port: int | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> OAuthServer:
        if self._httpd is not None:
            return self
        httpd = _Server((self.host, self.port or 0), _Handler)
        httpd.owner = self
        self.port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"oauth-server-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def introspect_url(self) -> str:
        return self.url + "/introspect"

    # -- tokens ------------------------------------------------------------
    def add_token(self, token: str, user: str | None = None) -> str:
        """Make ``token`` a valid access token for ``user`` (default: the server's user)."""
        with self._lock:
            self.tokens[token] = user or self.user
        return token

    def new_token(self, user: str | None = None) -> str:
        """A fresh random valid access token (not counted as issued by /token)."""
        return self.add_token("at-" + secrets.token_urlsafe(24), user)

    def add_refresh_token(self, refresh_token: str, user: str) -> None:
        with self._lock:
            self.refresh_tokens[refresh_token] = user

    def revoke(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)

    def user_for(self, token: str) -> str | None:
        with self._lock:
            return self.tokens.get(token)

    def validate(self, user: str, token: str) -> bool:
        """True when ``token`` is valid and belongs to ``user`` (for SmtpSink's ``xoauth2_validator``)."""
        owner = self.user_for(token)
        return owner is not None and owner.lower() == user.lower()

    def __repr__(self) -> str:
        return f"<OAuthServer {self.url if self.port else '(not started)'} running={self.running}>"


@pytest.fixture
def oauth_server() -> Iterator[OAuthServer]:
    """A started :class:`OAuthServer` for the default Dovecot user."""
    server = OAuthServer().start()
    try:
        yield server
    finally:
        server.stop()
