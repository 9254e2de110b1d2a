"""OAuth2 access tokens for XOAUTH2 (IMAP and SMTP): from a command, or refreshed from a refresh token."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from mailbot.config import Secret
from mailbot.errors import AuthError, MailbotError

REFRESH_MARGIN = 120.0  # seconds: refresh this long before the token expires


@dataclass(frozen=True)
class _Cached:
    token: str
    expires: float  # time.time() at which the provider stops accepting it


# One account: token endpoint, client id, the refresh token's sha256 (never the token itself) and the scope.
AccountKey = tuple[str, str, str, str]


class TokenCache:
    """Access tokens reused across reconnections until shortly before they expire; one per long-lived owner (the
    service, one command), shared by its inbox and outbox so that one refresh serves both for the same account."""

    def __init__(self) -> None:
        self._tokens: dict[AccountKey, _Cached] = {}

    def access_token(self, s: Secret, section: str) -> str:
        """A valid access token for ``section`` (``inbox`` or ``outbox``); errors never contain the secret."""
        if s.oauth2_token_command:
            return _from_command(s.oauth2_token_command, section)
        key = _key(s, section)
        cached = self._tokens.get(key)
        if cached is None or cached.expires - REFRESH_MARGIN <= time.time():
            cached = self._tokens[key] = _refresh(s, section)
        return cached.token

    def forget(self, s: Secret, section: str) -> None:
        """Drop the cached access token after the server refused it: the next login refreshes."""
        if s.auth == "oauth2" and not s.oauth2_token_command:
            try:
                self._tokens.pop(_key(s, section), None)
            except MailbotError:
                pass


def _key(s: Secret, section: str) -> AccountKey:
    """One cached token per account: the refresh token (hashed) and scope are part of the key."""
    digest = hashlib.sha256(s.refresh_token(section).encode()).hexdigest()
    return (s.oauth2_token_url or "", s.oauth2_client_id or "", digest, s.oauth2_scope or "")


def _from_command(command: str, section: str) -> str:
    try:
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise AuthError(f"{section}.oauth2_token_command took longer than 60 s") from None
    token = done.stdout.strip()
    if done.returncode != 0 or not token:
        raise AuthError(f"{section}.oauth2_token_command failed (exit {done.returncode}): {done.stderr.strip()[:200]}")
    return token.splitlines()[0]


def _refresh(s: Secret, section: str) -> _Cached:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": s.refresh_token(section),
        "client_id": s.oauth2_client_id or "",
    }
    secret = s.client_secret(section)
    if secret:
        form["client_secret"] = secret
    if s.oauth2_scope:
        form["scope"] = s.oauth2_scope
    request = urllib.request.Request(
        s.oauth2_token_url or "", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:
        raise AuthError(f"{section}: the token endpoint refused the refresh ({exc.code})") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AuthError(f"{section}: cannot reach the token endpoint {s.oauth2_token_url}: {exc}") from None
    if "access_token" not in body:
        raise AuthError(f"{section}: the token endpoint gave no access_token")
    return _Cached(body["access_token"], time.time() + float(body.get("expires_in", 3600)))


def xoauth2(username: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64, which the protocol libraries add)."""
    return f"user={username}\x01auth=Bearer {token}\x01\x01"
