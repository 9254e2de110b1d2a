"""A real SMTP server (aiosmtpd) on loopback that captures mail for tests.

Typical use (pytest fixtures are in ``tests/servers/smtp_fixtures.py``)::

    sink = SmtpSink(auth={"bot@x.vn": "pw"}, fail_next=[(451, "4.3.0 Try again later")])
    sink.start()
    ...  # send to sink.host:sink.port
    [msg] = sink.wait_for(1)
    assert msg.message["Subject"] == "..."
    sink.stop()

Options: ``auth`` (AUTH PLAIN/LOGIN required), ``starttls`` (STARTTLS
required; trust ``cert_path``), ``implicit_tls`` (SMTPS; use
``smtplib.SMTP_SSL``), ``reject`` (per-recipient replies at RCPT),
``fail_next`` (replies at DATA for the next N transactions), and
``down()``/``up()`` to simulate an outage on the same port.

OAuth2: ``xoauth2_tokens`` (``{access token: user}``) and/or
``xoauth2_validator`` (``(user, token) -> bool``, e.g.
``OAuthServer.validate`` from ``tests/servers/oauth.py``) offer and require
``AUTH XOAUTH2`` (alone, or next to PLAIN/LOGIN when ``auth`` is given too).
A refused token gets the XOAUTH2 error challenge (``334`` + base64 JSON), then
``535`` whatever the client answers.  Every AUTH attempt is recorded in
``logins`` as ``(mechanism, user, success)``.
"""

from __future__ import annotations

import binascii
import email
import email.policy
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Captured", "SmtpSink"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Captured:
    """One message accepted by the sink (envelope + raw DATA bytes)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            f"/CN={HOST}",
            "-addext",
            f"subjectAltName=IP:{HOST}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _parse_xoauth2(blob: bytes) -> tuple[str, str] | None:
    """``user=U\\x01auth=Bearer T\\x01\\x01`` -> (U, T), or None when malformed."""
    fields: dict[str, str] = {}
    for part in blob.decode("utf-8", "replace").split("\x01"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip().lower()] = value
    scheme, _, token = fields.get("auth", "").partition(" ")
    user = fields.get("user", "")
    if not user or scheme.lower() != "bearer" or not token.strip():
        return None
    return user, token.strip()


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 [initial-response] (the Google/Microsoft SASL mechanism)."""
        if len(args) == 1:  # no initial response: ask for it with an empty challenge
            blob = await server.challenge_auth("")
            if blob is MISSING:  # "*" or bad base64: already answered with 501
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        assert isinstance(blob, bytes)
        parsed = _parse_xoauth2(blob)
        if parsed is None:
            self.sink._record_login("XOAUTH2", "", False)
            await server.push("501 5.5.2 Malformed XOAUTH2 initial response")
            return AuthResult(success=False, handled=True)
        user, token = parsed
        ok = self.sink._check_token(user, token)
        self.sink._record_login("XOAUTH2", user, ok)
        if ok:
            return AuthResult(success=True, handled=False, auth_data=LoginPassword(user.encode(), b""))
        # As Gmail does: the error as a JSON challenge, then 535 after the
        # client's (normally empty) answer.
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
        answer = await server.challenge_auth(error)
        if answer is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.sink._lock:
            reply = self.sink.reject.get(address) or self.sink.reject.get(address.lower())
        if reply is not None:
            return f"{reply[0]} {reply[1]}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.sink._lock:
            if self.sink.fail_next:
                code, text = self.sink.fail_next.pop(0)
                return f"{code} {text}"
            content = envelope.original_content or envelope.content or b""
            data = content if isinstance(content, bytes) else content.encode()
            self.sink._messages.append(Captured(envelope.mail_from or "", tuple(envelope.rcpt_tos), data))
        return "250 OK: queued"


class SmtpSink:
    """Capturing SMTP server on 127.0.0.1 at a port fixed for its lifetime.

    ``reject`` and ``fail_next`` are public and may be changed between sends
    (``reject`` keys are matched as given or lower-cased).
    """

    def __init__(
        self,
        *,
        auth: dict[str, str] | None = None,
        starttls: bool = False,
        implicit_tls: bool = False,
        reject: dict[str, tuple[int, str]] | None = None,
        fail_next: list[tuple[int, str]] | None = None,
        xoauth2_tokens: dict[str, str] | None = None,
        xoauth2_validator: Callable[[str, str], bool] | None = None,
        ready_timeout: float = 5.0,
    ) -> None:
        if starttls and implicit_tls:
            raise ValueError("choose starttls or implicit_tls, not both")
        self.host = HOST
        self.port = _free_port()
        self.auth = dict(auth) if auth is not None else None
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.reject: dict[str, tuple[int, str]] = dict(reject or {})
        self.fail_next: list[tuple[int, str]] = list(fail_next or [])
        # token -> user; public and mutable (add or revoke tokens between sends)
        self.xoauth2_tokens: dict[str, str] | None = dict(xoauth2_tokens) if xoauth2_tokens is not None else None
        self.xoauth2_validator = xoauth2_validator
        self.logins: list[tuple[str, str, bool]] = []
        self.ready_timeout = ready_timeout
        self.cert_path: Path | None = None
        self._key_path: Path | None = None
        self._tmpdir: Path | None = None
        self._lock = threading.Lock()
        self._messages: list[Captured] = []
        self._controller: Controller | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> SmtpSink:
        """Start listening (no-op when already running)."""
        if (self.starttls or self.implicit_tls) and self.cert_path is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
            self.cert_path, self._key_path = _make_cert(self._tmpdir)
        self.up()
        return self

    def stop(self) -> None:
        """Stop listening and remove the certificate (idempotent)."""
        self.down()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = self.cert_path = self._key_path = None

    def down(self) -> None:
        """Stop the listener only (simulated outage); ``up()`` resumes it."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop(no_assert=True)

    def up(self) -> None:
        """(Re)start the listener on the same port."""
        if self._controller is not None:
            return
        if (self.starttls or self.implicit_tls) and self.cert_path is None:
            raise RuntimeError("call start() first: TLS certificate not generated")
        kwargs: dict[str, Any] = {}
        if self.starttls or self.implicit_tls:
            assert self.cert_path is not None and self._key_path is not None
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.cert_path, self._key_path)
            if self.starttls:
                kwargs.update(tls_context=ctx, require_starttls=True)
            else:
                kwargs.update(ssl_context=ctx)
        if self.xoauth2:
            if self.auth is None:  # XOAUTH2 only
                kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN"]
        else:
            kwargs["auth_exclude_mechanism"] = ["XOAUTH2"]
        if self.auth is not None or self.xoauth2:
            if not self.starttls:
                # aiosmtpd warns (per connection, from its thread) about AUTH
                # without TLS -- intended here.  Set from the calling thread, so
                # under pytest the filter is scoped to the current test.
                warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning, "aiosmtpd")
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=self.starttls)
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname=self.host,
            ready_timeout=self.ready_timeout,
            **kwargs,
        )
        try:
            controller.start()
        except BaseException:
            try:
                controller.stop(no_assert=True)
            except RuntimeError:  # loop already closed after a failed bind
                pass
            raise
        self._controller = controller

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def xoauth2(self) -> bool:
        """Whether AUTH XOAUTH2 is offered (fixed when the listener starts)."""
        return self.xoauth2_tokens is not None or self.xoauth2_validator is not None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- captured mail -----------------------------------------------------
    @property
    def messages(self) -> list[Captured]:
        """Snapshot of the accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Captured]:
        """Wait until at least ``count`` messages arrived; return all of them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                seen = [(m.mail_from, m.rcpt_tos, m.message["Subject"]) for m in got]
                raise AssertionError(
                    f"SMTP sink {self.host}:{self.port}: expected >= {count} message(s) "
                    f"within {timeout}s, got {len(got)}: {seen}"
                )
            time.sleep(0.02)

    # -- internals ---------------------------------------------------------
    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            self.auth is not None
            and mechanism in ("PLAIN", "LOGIN")
            and isinstance(auth_data, LoginPassword)
            and self.auth.get(auth_data.login.decode("utf-8", "replace"))
            == auth_data.password.decode("utf-8", "replace")
        )
        if isinstance(auth_data, LoginPassword):
            self._record_login(mechanism, auth_data.login.decode("utf-8", "replace"), ok)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _check_token(self, user: str, token: str) -> bool:
        with self._lock:
            owner = (self.xoauth2_tokens or {}).get(token)
        if owner is not None and owner.lower() == user.lower():
            return True
        return bool(self.xoauth2_validator is not None and self.xoauth2_validator(user, token))

    def _record_login(self, mechanism: str, user: str, ok: bool) -> None:
        with self._lock:
            self.logins.append((mechanism, user, ok))

    def __repr__(self) -> str:
        return f"<SmtpSink {self.host}:{self.port} running={self.running}>"
