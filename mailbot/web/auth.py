"""Staff accounts, login sessions, CSRF tokens and the login rate limit of the web pages.

Passwords are kept as argon2id hashes (argon2-cffi). A session is a random token: the cookie carries it signed
(itsdangerous, with the key in ``[web] secret_key_file``), the database keeps only its sha256 with the user, an
expiry and the session's CSRF token, so logging out or changing a password really ends a session.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Engine, delete, select

from mailbot import store
from mailbot.config import Settings
from mailbot.errors import MailbotError, NotFound
from mailbot.files import create_once

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this only bounds the work an attacker can ask for
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-@")

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class User:
    id: int
    name: str


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    token_hash: str
    expires_at: datetime


# --- the signing key ----------------------------------------------------------------------------------


def key_file(settings: Settings) -> Path:
    return settings.web.secret_key_file or settings.data_dir / "web-secret.key"


def load_or_create_key(path: Path) -> bytes:
    """The signing key; a new random one is written (mode 0600) the first time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = create_once(path, (secrets.token_hex(32) + "\n").encode()).decode("ascii").strip()
        if path.stat().st_mode & 0o077:
            log.warning("%s can be read by other users; chmod 600 it", path)
    except (OSError, UnicodeDecodeError) as exc:
        raise MailbotError(f"cannot read or create the web key {path}: {exc}") from None
    if len(key) < 32:
        raise MailbotError(f"the web key in {path} is too short (delete the file to have a new one made)")
    return key.encode("ascii")


# --- accounts -----------------------------------------------------------------------------------------


def check_name(name: str) -> str:
    clean = name.strip().lower()
    if not clean or len(clean) > 64 or not set(clean) <= _NAME_CHARS:
        raise MailbotError(f"user name {name!r}: use 1 to 64 letters a-z, digits, '.', '_', '-' or '@'")
    return clean


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise MailbotError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise MailbotError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def set_password(engine: Engine, name: str, password: str, *, actor: str) -> bool:
    """Create the account, or give an existing one a new password (ending its sessions); True when created."""
    name = check_name(name)
    check_password(password)
    hashed = _hasher.hash(password)
    u = store.web_users
    with store.atomic(engine) as conn:
        pk = conn.execute(select(u.c.id).where(u.c.name == name)).scalar()
        now = store.now()
        if pk is None:
            conn.execute(
                u.insert().values(name=name, password_hash=hashed, active=True, created_at=now, password_set_at=now)
            )
        else:
            conn.execute(u.update().where(u.c.id == pk).values(password_hash=hashed, active=True, password_set_at=now))
            conn.execute(delete(store.web_sessions).where(store.web_sessions.c.user_id == pk))
        record(conn, "user_added" if pk is None else "password_set", actor, detail=name)
    return pk is None


def set_active(engine: Engine, name: str, active: bool, *, actor: str) -> bool:
    """Enable or disable an account; disabling ends its sessions at once. False when it already was so."""
    name = check_name(name)
    u = store.web_users
    with store.atomic(engine) as conn:
        row = conn.execute(select(u.c.id, u.c.active).where(u.c.name == name)).first()
        if row is None:
            raise NotFound(f"no web account named {name!r}")
        if not active:
            conn.execute(delete(store.web_sessions).where(store.web_sessions.c.user_id == row.id))
        if bool(row.active) == active:
            return False
        conn.execute(u.update().where(u.c.id == row.id).values(active=active))
        record(conn, "user_enabled" if active else "user_disabled", actor, detail=name)
    return True


def remove_user(engine: Engine, name: str, *, actor: str) -> None:
    """Delete an account and its sessions; the security events that name it stay, as the record of who did what."""
    name = check_name(name)
    u = store.web_users
    with store.atomic(engine) as conn:
        pk = conn.execute(select(u.c.id).where(u.c.name == name)).scalar()
        if pk is None:
            raise NotFound(f"no web account named {name!r}")
        conn.execute(delete(store.web_sessions).where(store.web_sessions.c.user_id == pk))
        conn.execute(delete(u).where(u.c.id == pk))
        record(conn, "user_removed", actor, detail=name)


def count_users(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(store.web_users.c.id).where(store.web_users.c.active)).all())


def authenticate(engine: Engine, name: str, password: str) -> User | None:
    """The user when name and password match an active account (constant work whether the name exists or not)."""
    u = store.web_users
    with engine.connect() as conn:
        row = conn.execute(select(u).where(u.c.name == name.strip().lower(), u.c.active)).first()
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        with store.atomic(engine) as conn:
            conn.execute(u.update().where(u.c.id == row.id).values(password_hash=_hasher.hash(password)))
    return User(row.id, row.name)


def record(conn, event: str, actor: str, *, ip: str = "", detail: str = "") -> None:  # type: ignore[no-untyped-def]
    conn.execute(
        store.web_events.insert().values(at=store.now(), event=event, actor=actor[:64], ip=ip[:64], detail=detail[:300])
    )


def record_event(engine: Engine, event: str, actor: str, *, ip: str = "", detail: str = "") -> None:
    with store.atomic(engine) as conn:
        record(conn, event, actor, ip=ip, detail=detail)


# --- sessions -----------------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class Sessions:
    """Signed session cookies backed by the ``web_sessions`` table."""

    def __init__(self, engine: Engine, key: bytes, hours: float) -> None:
        self.engine = engine
        self.lifetime = timedelta(hours=hours)
        self.signer = URLSafeTimedSerializer(key, salt="mailbot.web.session")
        self.login_signer = URLSafeTimedSerializer(key, salt="mailbot.web.login-form")
        self.flash_signer = URLSafeTimedSerializer(key, salt="mailbot.web.flash")

    def start(self, user: User, ip: str) -> tuple[str, Session]:
        """A new session for ``user``: (cookie value, session)."""
        token = secrets.token_urlsafe(32)
        now = store.now()
        session = Session(user, secrets.token_urlsafe(32), _digest(token), now + self.lifetime)
        s = store.web_sessions
        with store.atomic(self.engine) as conn:
            conn.execute(s.delete().where(s.c.expires_at < now))
            conn.execute(
                s.insert().values(
                    token_hash=session.token_hash,
                    user_id=user.id,
                    csrf=session.csrf,
                    ip=ip[:64],
                    created_at=now,
                    expires_at=session.expires_at,
                )
            )
            record(conn, "login", user.name, ip=ip)
        return self.signer.dumps(token), session

    def lookup(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, or None (bad signature, expired, logged out, account disabled)."""
        if not cookie:
            return None
        try:
            token = self.signer.loads(cookie, max_age=int(self.lifetime.total_seconds()))
        except BadSignature:
            return None
        if not isinstance(token, str):
            return None
        s, u = store.web_sessions, store.web_users
        query = (
            select(s.c.token_hash, s.c.csrf, s.c.expires_at, u.c.id, u.c.name)
            .join(u, u.c.id == s.c.user_id)
            .where(s.c.token_hash == _digest(token), u.c.active)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.expires_at <= store.now():
            return None
        return Session(User(row.id, row.name), row.csrf, row.token_hash, row.expires_at)

    def end(self, session: Session, ip: str) -> None:
        with store.atomic(self.engine) as conn:
            conn.execute(store.web_sessions.delete().where(store.web_sessions.c.token_hash == session.token_hash))
            record(conn, "logout", session.user.name, ip=ip)

    # The login form has no session yet: a random token in a signed cookie, repeated in the form.
    def login_token(self) -> tuple[str, str]:
        """(cookie value, form value)."""
        token = secrets.token_urlsafe(24)
        return self.login_signer.dumps(token), token

    def login_token_ok(self, cookie: str | None, form_value: str) -> bool:
        if not cookie or not form_value:
            return False
        try:
            token = self.login_signer.loads(cookie, max_age=24 * 3600)
        except BadSignature:
            return False
        return isinstance(token, str) and hmac.compare_digest(token, form_value)


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf.encode(), str(submitted).encode())


# --- the login rate limit -----------------------------------------------------------------------------


class LoginLimiter:
    """At most ``attempts`` failed logins per (address, user name) in ``window`` seconds, and ``per_ip`` per address.

    Kept in memory: a restart forgets it, which is acceptable for an internal page (argon2 keeps each guess slow).
    """

    def __init__(self, attempts: int = 5, window: float = 15 * 60, per_ip: int = 30, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.attempts, self.window, self.per_ip, self.clock = attempts, window, per_ip, clock
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._by_ip: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _trim(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()

    def retry_after(self, ip: str, name: str) -> float:
        """Seconds until another attempt is allowed; 0 when it is allowed now."""
        now = self.clock()
        with self._lock:
            waits = []
            for times, limit in (
                (self._failures.get((ip, name.strip().lower())), self.attempts),
                (self._by_ip.get(ip), self.per_ip),
            ):
                if times is None:
                    continue
                self._trim(times, now)
                if len(times) >= limit:
                    waits.append(times[0] + self.window - now)
            return max(waits, default=0.0)

    def failed(self, ip: str, name: str) -> None:
        now = self.clock()
        with self._lock:
            self._failures[(ip, name.strip().lower())].append(now)
            self._by_ip[ip].append(now)
            if len(self._failures) > 10_000 or len(self._by_ip) > 10_000:  # bound memory whatever is thrown at it
                _forget_stale(self._failures, now - self.window)
                _forget_stale(self._by_ip, now - self.window)

    def succeeded(self, ip: str, name: str) -> None:
        with self._lock:
            self._failures.pop((ip, name.strip().lower()), None)


_Key = TypeVar("_Key")


def _forget_stale(table: dict[_Key, deque[float]], oldest: float) -> None:
    """Drop the keys whose last failure is older than ``oldest``."""
    for key in [k for k, v in table.items() if not v or v[-1] <= oldest]:
        del table[key]
