"""The schools' personal status links: ``{[web] public_url}/s/{token}``, a token signed with the installation's key
that names one institution and one campaign, read by the public status page (``web/pages/status.py``).

No account is needed: whoever holds the link sees that institution's status for that campaign, and nothing else.
The token cannot be forged or altered without the key (``data_dir/secret.key``, which also signs Message-IDs);
it expires with the campaign, at its late limit (``config.late_limit``), after which nothing can be submitted to it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer

from mailbot.config import late_limit
from mailbot.models import Campaign

SALT = "mailbot.status-link"  # this key signs other things (Message-IDs): the salt keeps their signatures apart
PATH = "/s/"  # the page's path under the application's root


@dataclass(frozen=True)
class LinkTarget:
    """What a valid token names."""

    code: str
    campaign_id: str


def _serializer(key: bytes) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})


def make_token(key: bytes, code: str, campaign_id: str) -> str:
    return _serializer(key).dumps([code, campaign_id])


def read_token(key: bytes, token: str) -> LinkTarget | None:
    """The institution and campaign a token names; None when it was altered, made with another key, or malformed."""
    if len(token) > 1000:  # no real token is this long: not worth verifying
        return None
    try:
        payload = _serializer(key).loads(token)
    except BadSignature:
        return None
    if not (isinstance(payload, list) and len(payload) == 2 and all(isinstance(p, str) for p in payload)):
        return None
    return LinkTarget(payload[0], payload[1])


def expires(campaign: Campaign) -> datetime:
    """When the campaign's links stop working: when the campaign stops accepting reports."""
    return late_limit(campaign)


def status_url(public_url: str, key: bytes, code: str, campaign: Campaign, now: datetime) -> str:
    """The institution's link for the campaign; "" when ``[web] public_url`` is not set or the link would be dead."""
    if not public_url or now > expires(campaign):
        return ""
    return f"{public_url.rstrip('/')}{PATH}{make_token(key, code, campaign.id)}"
