"""TOML configuration → validated, frozen settings, passed explicitly to whatever needs them."""

from __future__ import annotations

import ipaddress
import os
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mailbot.errors import ConfigError
from mailbot.models import Campaign, PaperMode

DEFAULT_PATH = Path("mailbot.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _read_secret(section: str, key: str, env: str | None, file: Path | None) -> str | None:
    """A secret from an environment variable or a file; None when neither is configured."""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"{section}.{key}_env: environment variable {env} is not set")
        return value
    if file:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{section}.{key}_file: cannot read {file}: {exc.strerror}") from None
    return None


class Secret(_Section):
    """How to log in (password, or OAuth2 for XOAUTH2); secret values are read only when needed."""

    auth: Literal["password", "oauth2"] = "password"
    password_env: str | None = None
    password_file: Path | None = None
    # OAuth2: a command that prints a fresh access token (like mbsync's PassCmd) ...
    oauth2_token_command: str | None = None
    # ... or the built-in refresh-token flow.
    oauth2_token_url: str | None = None
    oauth2_client_id: str | None = None
    oauth2_client_secret_env: str | None = None
    oauth2_client_secret_file: Path | None = None
    oauth2_refresh_token_env: str | None = None
    oauth2_refresh_token_file: Path | None = None
    oauth2_scope: str | None = None

    def password(self, section: str) -> str:
        value = _read_secret(section, "password", self.password_env, self.password_file)
        if value is None:
            raise ConfigError(f"{section}: set password_env or password_file")
        return value

    def refresh_token(self, section: str) -> str:
        value = _read_secret(
            section, "oauth2_refresh_token", self.oauth2_refresh_token_env, self.oauth2_refresh_token_file
        )
        if value is None:
            raise ConfigError(f"{section}: set oauth2_refresh_token_env or oauth2_refresh_token_file")
        return value

    def client_secret(self, section: str) -> str | None:
        return _read_secret(
            section, "oauth2_client_secret", self.oauth2_client_secret_env, self.oauth2_client_secret_file
        )

    def _login_problem(self, server: str, *, logs_in: bool) -> str:
        """Why these settings cannot log in to ``server`` ('' when they can); a password only when ``logs_in``."""
        if logs_in and self.auth == "password" and not (self.password_env or self.password_file):
            return f"{server} needs password_env or password_file"
        return self._oauth_problem()

    def _oauth_problem(self) -> str:
        if self.auth != "oauth2":
            return ""
        if self.oauth2_token_command:
            return ""
        if not (self.oauth2_token_url and self.oauth2_client_id):
            return "auth = 'oauth2' needs oauth2_token_command, or oauth2_token_url and oauth2_client_id"
        if not (self.oauth2_refresh_token_env or self.oauth2_refresh_token_file):
            return "auth = 'oauth2' with oauth2_token_url needs oauth2_refresh_token_env or oauth2_refresh_token_file"
        return ""


class InboxSettings(Secret):
    name: str = ""  # how staff call it when there are several, e.g. "Hòm thư phòng GDTX"
    kind: Literal["imap", "maildir"] = "maildir"
    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "plain"] = "ssl"
    username: str = ""
    folder: str = "INBOX"
    processed_folder: str | None = None
    path: Path | None = None
    batch_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    reader_processes: int = Field(default=1, ge=0, le=16)  # parse a backlog beside the main process; 0: in it
    timeout_seconds: float = Field(default=60.0, gt=0)
    poll_seconds: float = Field(default=60.0, ge=1)
    resync_minutes: float = Field(default=15.0, ge=1)
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _needs(self) -> InboxSettings:
        if self.kind == "maildir" and self.path is None:
            raise ValueError("kind = 'maildir' needs path")
        if self.kind == "imap" and not self.username:
            raise ValueError("kind = 'imap' needs username")
        problem = self._login_problem("kind = 'imap'", logs_in=True) if self.kind == "imap" else ""
        if problem:
            raise ValueError(problem)
        return self

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "ssl" else 143)

    @property
    def source(self) -> str:
        """How its messages' locations are keyed in the database (mailbot/ingest/inbox.py uses the same)."""
        if self.kind == "imap":
            return f"imap://{self.username}@{self.host}:{self.effective_port}/{self.folder}"
        return f"maildir:{Path(self.path or '.').resolve()}"

    @property
    def label(self) -> str:
        """What logs and pages call it (never with a credential)."""
        where = f"{self.username}@{self.host}/{self.folder}" if self.kind == "imap" else f"maildir:{self.path}"
        return f"{self.name} ({where})" if self.name else where


class RosterSettings(_Section):
    file: Path | None = None


class LimitSettings(_Section):
    # Department mail servers accept messages up to 50 MB (scans of stamped copies are large); a message over
    # the limit is recorded from its header, held for staff and its sender (a known school) told what to send.
    max_message_bytes: int = Field(default=50 * 1024 * 1024, ge=64 * 1024)
    max_attachment_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_zip_entries: int = Field(default=200, ge=1)
    max_zip_total_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    max_zip_ratio: int = Field(default=100, ge=2)
    # A legacy .doc not converted within this while its message is read is recorded (and acknowledged) without its
    # metadata; the conversion is finished after the batch, with [documents] seconds_per_file as its limit.
    doc_seconds: float = Field(default=5.0, gt=0, le=600)


class OutboxSettings(Secret):
    kind: Literal["smtp", "file"] = "file"
    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "plain"] = "starttls"
    username: str = ""  # empty: no AUTH (a local relay)
    sender: str = Field(default="Phòng GDTX&ĐH - Sở GDĐT Hải Phòng <gdtx@haiphong.edu.vn>", alias="from")
    reply_to: str | None = None
    path: Path | None = None  # for kind = "file"; default data_dir/outbox
    timeout_seconds: float = Field(default=30.0, gt=0)
    ca_file: Path | None = None
    max_attempts: int = Field(default=8, ge=1)
    retry_base_seconds: float = Field(default=60.0, gt=0)  # first retry after this, doubling, at most 6 hours
    deliver_every_seconds: float = Field(default=30.0, ge=1)  # how often the service looks at the outbox

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _needs(self) -> OutboxSettings:
        if "@" not in parseaddr(self.sender)[1]:
            raise ValueError(f"from: not an email address: {self.sender!r}")
        problem = ""
        if self.kind == "smtp":
            problem = self._login_problem("kind = 'smtp' with a username", logs_in=bool(self.username))
        if problem:
            raise ValueError(problem)
        return self

    @property
    def effective_port(self) -> int:
        return self.port or {"ssl": 465, "starttls": 587, "plain": 25}[self.security]

    @property
    def address(self) -> str:
        return _parsed(self.sender)[1].lower()

    @property
    def name(self) -> str:
        """The sender's display name (the department, as it signs); "" when the sender is a bare address."""
        return _parsed(self.sender)[0]


@lru_cache(maxsize=16)
def _parsed(sender: str) -> tuple[str, str]:
    """``Name <address>`` taken apart once: every receipt's headers and signature ask for it several times."""
    return parseaddr(sender)


class ChaseSettings(_Section):
    """When to remind before the deadline and chase after it (also overridable per campaign)."""

    reminders_before_days: tuple[int, ...] | None = None
    late_every_days: int | None = Field(default=None, ge=0)
    late_until_days: int | None = Field(default=None, ge=0)


class NotifySettings(_Section):
    staff: tuple[str, ...] = ()
    digest_at: str = Field(default="07:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    remind_at: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    acknowledge: bool = True
    reminders_before_days: tuple[int, ...] = (7, 3, 1)
    late_every_days: int = Field(default=2, ge=0)
    late_until_days: int = Field(default=14, ge=0)
    max_auto_per_address_per_day: int = Field(default=5, ge=1)
    # Replies to addresses off the roster that our server did not authenticate (it adds no Authentication-Results):
    # at most this many a day in all, so that forged senders cannot make mailbot mail third parties. 0 = none.
    max_unknown_replies_per_day: int = Field(default=20, ge=0)
    templates_dir: Path | None = None

    @field_validator("staff")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if "@" not in parseaddr(item)[1]:
                raise ValueError(f"not an email address: {item!r}")
        return value


class SecuritySettings(_Section):
    # Hold a message that claims a roster address but fails the check the receiving server recorded in
    # Authentication-Results: "dmarc" (DMARC fails), "dkim_or_spf" (neither DKIM nor SPF passes), "off".
    require_auth: Literal["dmarc", "dkim_or_spf", "off"] = "dmarc"
    # Trust only Authentication-Results headers added by this server (RFC 8601 authserv-id); empty:
    # the topmost one, which the last server (ours) prepended.
    authserv_id: str = ""


class WebSettings(_Section):
    """The staff web pages (`mailbot web`, or inside `mailbot run` when ``enabled``) and the schools' status links."""

    # Serve the pages from `mailbot run` itself (one service for everything) instead of a separate `mailbot web`.
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # Behind a reverse proxy that serves the pages under a sub-path, e.g. "/mailbot"; "" = at the root.
    path_prefix: str = Field(default="", pattern=r"^(/[A-Za-z0-9._~-]+)*$")
    # The key that signs session cookies (created with mode 0600 when missing); default data_dir/web-secret.key.
    secret_key_file: Path | None = None
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # Send the session cookie over HTTPS only (set true when a TLS proxy is in front).
    https_only: bool = False
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For / X-Forwarded-Proto are believed;
    # from anyone else these headers are ignored, so a client cannot choose the address the login limit sees.
    trusted_proxies: tuple[str, ...] = ()
    # The address schools reach the pages at from outside (with path_prefix, if any), e.g.
    # "https://baocao.haiphong.edu.vn/mailbot": receipts and reminders then carry a personal status link under it.
    public_url: str = ""

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        url = value.strip()
        if not url:
            return ""
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port out of range
            ok = False
        if not ok or parts.query or parts.fragment or any(c.isspace() for c in url):
            raise ValueError(f"{value!r} is not an http(s) address such as https://baocao.haiphong.edu.vn/mailbot")
        return url.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network such as 127.0.0.1 or 10.0.0.0/24") from None
        return tuple(out)


class DocumentSettings(_Section):
    """How the stamped copies (PDF) are verified (documents/pdfcheck.py)."""

    # The CA certificates (PEM or DER files) whose chains make a digital signature trusted: the government CA
    # roots the operator installs. Without them a valid signature is reported as "issuer not trusted".
    trust_anchors: tuple[Path, ...] = ()
    # A PDF not read by then is a recorded warning; also the limit of a legacy .doc's conversion after the batch.
    seconds_per_file: float = Field(default=30.0, gt=0, le=600)


class CampaignSettings(_Section):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    title: str = Field(min_length=1)
    deadline: datetime | date
    opens: datetime | date | None = None
    groups: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    accept_late_days: int = Field(default=60, ge=0)
    plan: str = ""  # the plan the campaign implements, e.g. "số 1234/KH-SGDĐT ngày 20/11/2023"
    contact: str = ""  # whom schools call, e.g. "bà Nguyễn Thị Lan, điện thoại 0225.3xxx.xxx"
    paper: PaperMode = PaperMode.NONE  # the stamped copy: none | pdf (by email) | post | either
    notify: ChaseSettings = ChaseSettings()


class Settings(_Section):
    """Everything mailbot needs to know, already checked."""

    timezone: str = "Asia/Ho_Chi_Minh"
    data_dir: Path = Path("var")
    database_url: str | None = None
    # One [inbox] table, or several [[inbox]] (the department's address, a second one some schools use, ...).
    inboxes: tuple[InboxSettings, ...] = Field(alias="inbox", min_length=1)
    roster: RosterSettings = RosterSettings()
    limits: LimitSettings = LimitSettings()
    outbox: OutboxSettings = OutboxSettings()
    notify: NotifySettings = NotifySettings()
    web: WebSettings = WebSettings()
    security: SecuritySettings = SecuritySettings()
    documents: DocumentSettings = DocumentSettings()
    # Imported once into the database (mailbot/campaigns/catalog.py), which is the campaigns' source of truth.
    campaign: tuple[CampaignSettings, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("campaign")
    @classmethod
    def _unique_ids(cls, value: tuple[CampaignSettings, ...]) -> tuple[CampaignSettings, ...]:
        ids = [c.id for c in value]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"campaign id {dupes[0]!r} is used twice")
        return value

    @field_validator("inboxes", mode="before")
    @classmethod
    def _one_or_several(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @property
    def inbox(self) -> InboxSettings:
        """The first inbox: the department's own address where one is needed (the others are watched alike)."""
        return self.inboxes[0]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'mailbot.sqlite3'}"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def own_addresses(self) -> set[str]:
        """Our own addresses: mailbot never answers them (no loops with ourselves)."""
        return {self.outbox.address, *(i.username.lower() for i in self.inboxes)} - {""}

    @property
    def outbox_dir(self) -> Path:
        return self.outbox.path or self.data_dir / "outbox"

    @property
    def templates_dir(self) -> Path | None:
        """Staff's own copy of the email templates, if configured; the packaged ones fill any gap."""
        return self.notify.templates_dir


@dataclass(frozen=True)
class Chase:
    reminders_before_days: tuple[int, ...]  # largest first
    late_every_days: int  # 0 = a single late notice
    late_until_days: int


def _aware(value: datetime | date, zone: ZoneInfo, *, end_of_day: bool) -> datetime:
    """A TOML local datetime is read in the configured zone; a bare date means that whole day."""
    if not isinstance(value, datetime):
        moment = time(23, 59, 59) if end_of_day else time(0, 0)
        value = datetime.combine(value, moment)
    return value if value.tzinfo else value.replace(tzinfo=zone)


def plan_reference(text: str) -> str:
    """``Số 1234/KH-SGDĐT ngày …`` or ``Kế hoạch số …`` → ``số 1234/KH-SGDĐT ngày …``, to follow "Kế hoạch" in a sentence."""
    plan = " ".join(unicodedata.normalize("NFC", text).split())
    if plan.casefold().startswith("kế hoạch"):
        plan = plan[len("kế hoạch") :].strip()
    return "số" + plan[2:] if plan[:2] == "Số" else plan


def campaign_from_settings(c: CampaignSettings, zone: ZoneInfo) -> Campaign:
    """A `[[campaign]]` block as the value the database will hold (it is imported once)."""
    return Campaign(
        id=c.id,
        title=c.title,
        deadline=_aware(c.deadline, zone, end_of_day=True),
        opens=_aware(c.opens, zone, end_of_day=False) if c.opens else None,
        groups=c.groups,
        keywords=c.keywords,
        accept_late_days=c.accept_late_days,
        plan=plan_reference(c.plan),
        contact=" ".join(c.contact.split()),
        paper=c.paper,
    )


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against config.example.toml)"
        lines.append(f"{_where(err['loc'])}: {msg}")
    return "; ".join(lines)


def _resolve(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative paths in the file are relative to the file, not to the working directory."""

    def fix(section: dict[str, Any], key: str) -> None:
        if isinstance(section.get(key), str):
            section[key] = (
                str((base / section[key]).resolve()) if not Path(section[key]).is_absolute() else section[key]
            )

    fix(raw, "data_dir")
    raw.setdefault("data_dir", str((base / "var").resolve()))
    sections = {
        "inbox": ("path", "password_file", "ca_file"),
        "roster": ("file",),
        "outbox": ("path", "password_file", "ca_file"),
        "notify": ("templates_dir",),
        "web": ("secret_key_file",),
    }
    for name, keys in sections.items():
        found = raw.get(name)
        tables: list[Any] = found if isinstance(found, list) else [found]  # [[inbox]] is a list
        for table in tables:
            if isinstance(table, dict):
                for key in keys:
                    fix(table, key)
    docs = raw.get("documents")
    if isinstance(docs, dict) and isinstance(docs.get("trust_anchors"), list):
        docs["trust_anchors"] = [str(base / a) if isinstance(a, str) else a for a in docs["trust_anchors"]]
    return raw


def parse(raw: dict[str, Any], base: Path) -> Settings:
    try:
        return Settings.model_validate(_resolve(raw, base))
    except ValidationError as exc:
        explained = _explain(exc)
        if isinstance(raw.get("inbox"), dict):  # one [inbox] table: name its keys as the file does
            explained = explained.replace("inbox[0].", "inbox.").replace("inbox[0]", "inbox")
        raise ConfigError(f"invalid configuration: {explained}") from None


def load(path: Path) -> Settings:
    """Read and validate a TOML file; every problem becomes one ConfigError naming the key."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found (copy config.example.toml and edit it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(raw, path.resolve().parent)


def late_limit(campaign: Campaign) -> datetime:
    return campaign.deadline + timedelta(days=campaign.accept_late_days)
