"""Templates → outgoing messages: acknowledgements, reminders, late notices and the digest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)
from jinja2.bccache import Bucket

from mailbot.config import OutboxSettings, Settings
from mailbot.errors import ConfigError
from mailbot.files import create_once


class _Wire(Compat32):
    """compat32 with CRLF line ends, writing a short ASCII header as it is: compat32 builds a ``Header`` to fold
    every header of every part (about twenty per receipt), which cost more than rendering the receipt."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if isinstance(value, str) and value.isascii() and "\r" not in value:
            lines = f"{name}: {value}".split("\n")
            if all(len(line) <= (self.max_line_length or 78) for line in lines) and all(
                line[:1] in (" ", "\t") and line.strip() for line in lines[1:]
            ):  # short, or folded already (an encoded Subject, From): as it is
                return self.linesep.join(lines) + self.linesep
        folded: str = super()._fold(name, value, sanitize)  # type: ignore[misc]
        return folded


SMTP_COMPAT = _Wire(linesep="\r\n")
KINDS = (
    "ack",
    "ack_no_report",
    "ack_review",
    "too_large",
    "reminder",
    "late",
    "extension",
    "digest",
    "announce",
    "stamp_doubt",
)
AUTO_REPLY = {
    "ack",
    "ack_no_report",
    "ack_review",
    "too_large",
    "stamp_doubt",
}  # RFC 3834: replies say auto-replied, the rest auto-generated


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Draft:
    """A message not composed yet: its subject, for the outbox's record, and how to compose it once it is known
    to go out. A receipt held back by a daily cap is recorded with its subject and never composed: in a backlog
    where one address sent many messages, most of them are such."""

    subject: str
    make: Callable[[], Message]


PACKAGED_TEMPLATES = Path(__file__).resolve().parent / "templates"


class Templates:
    """The email templates: staff's own copy first (``[notify] templates_dir``), then the packaged ones.

    The fallback means a staff copy may hold only the templates staff changed, and a template added by
    an upgrade is found even where staff copied the folder before it existed. Sender-supplied text only
    ever enters as (escaped) values.
    """

    def __init__(self, folder: Path | None = None, cache: Path | None = None) -> None:
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"notify.templates_dir: {folder} is not a folder")
        self.folder = folder or PACKAGED_TEMPLATES
        folders = [str(f) for f in (folder, PACKAGED_TEMPLATES) if f is not None]
        self.env = Environment(
            loader=FileSystemLoader(folders),
            autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Loaded once and checked (``load_templates``); an edited file applies on reload (SIGHUP, next
            # command), never half-checked mid-pass, and no stat() of three files per message rendered.
            auto_reload=False,
            bytecode_cache=_QuietCache.at(cache) if cache else None,
        )

    def subject(self, kind: str, context: dict[str, Any]) -> str:
        return " ".join(self.env.get_template(f"{kind}.subject.j2").render(context).split())

    def render(self, kind: str, context: dict[str, Any], subject: str | None = None) -> Rendered:
        """The three parts (``subject``: rendered already, by ``subject``)."""
        subject = self.subject(kind, context) if subject is None else subject
        return Rendered(
            subject,
            self.env.get_template(f"{kind}.txt.j2").render(context),
            self.env.get_template(f"{kind}.html.j2").render({**context, "title": subject}),
        )

    def problems(self) -> list[str]:
        """Every template rendered once with sample values: a mistake shows now, not at send time."""
        from mailbot.notify.samples import SAMPLE_CONTEXTS

        found = []
        for kind in KINDS:
            sample = SAMPLE_CONTEXTS[kind]
            try:
                self.render(kind, sample)
                if "status_url" in sample:  # and as it goes out without ``[web] public_url``
                    self.render(kind, {**sample, "status_url": ""})
            except (TemplateError, OSError) as exc:
                where = getattr(exc, "filename", None) or getattr(exc, "name", None) or kind
                line = getattr(exc, "lineno", None)
                found.append(f"{Path(str(where)).name}{f':{line}' if line else ''}: {exc}")
        return found


class _QuietCache(FileSystemBytecodeCache):
    """Templates compiled once per installation, not at every start (about 0.1 s for all of them, at each command
    and each ``run --once`` of a timer). Jinja keys an entry by the template's path and checks its source, so an
    edited template is compiled again. The cache only saves time: a folder that cannot be written is no error."""

    @classmethod
    def at(cls, folder: Path) -> _QuietCache | None:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return None
        return cls(str(folder))

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - unreadable or damaged (a partial disk, a Python upgrade): compiled again
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def export_templates(folder: Path) -> tuple[list[Path], list[Path]]:
    """Copy the packaged templates into ``folder``, never overwriting a file: (written, kept)."""
    written, kept = [], []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for source in sorted(PACKAGED_TEMPLATES.iterdir()):
            if source.suffix not in (".j2", ".md"):
                continue
            target = folder / source.name
            if target.exists():
                kept.append(target)
                continue
            target.write_bytes(source.read_bytes())
            written.append(target)
    except OSError as exc:
        raise ConfigError(f"cannot write templates to {folder}: {exc.strerror or exc}") from None
    return written, kept


def load_templates(settings: Settings) -> Templates:
    """The templates, refusing to start when any of them is broken."""
    templates = Templates(settings.templates_dir, settings.data_dir / "cache" / "templates")
    problems = templates.problems()
    if problems:
        raise ConfigError("broken template(s): " + "; ".join(problems))
    return templates


# --- our own Message-IDs, signed so that a bounce can be matched to a message we really sent ---


def secret_key(data_dir: Path) -> bytes:
    """A per-installation key, kept beside the database (never in it), created on first use."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return bytes.fromhex(create_once(data_dir / "secret.key", secrets.token_hex(32).encode()).decode().strip())


def _sign(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()[:16]


def make_message_id(key: bytes, sender: str) -> str:
    token = _unique_hex(16)
    domain = sender.rpartition("@")[2] or "mailbot.invalid"
    return f"<mailbot.{token}.{_sign(key, token)}@{domain}>"


def is_ours(key: bytes, message_id: str) -> bool:
    local = message_id.strip().strip("<>").partition("@")[0]
    parts = local.split(".")
    return len(parts) == 3 and parts[0] == "mailbot" and hmac.compare_digest(parts[2], _sign(key, parts[1]))


def reply_subject(original: str) -> str:
    """``Re: <subject>`` once, whatever prefixes the thread already has."""
    if not original:
        return ""
    return original if original.lower().startswith(("re:", "trả lời:", "tl:")) else f"Re: {original}"


def compose(
    outbox: OutboxSettings,
    key: bytes,
    kind: str,
    to: tuple[str, ...],
    rendered: Rendered,
    *,
    in_reply_to: str = "",
    references: str = "",
    when: datetime,
    attachments: tuple[tuple[str, bytes, str], ...] = (),
) -> Message:
    """An outgoing message with the headers that keep machines from answering it (RFC 3834)."""
    body = MIMEMultipart("alternative", boundary=_boundary())
    body.attach(text_part(rendered.text, "plain"))
    body.attach(text_part(rendered.html, "html"))
    msg = _with_attachments(body, attachments) if attachments else body
    msg["From"] = _address_header(outbox.sender)
    msg["To"] = ", ".join(to)
    if outbox.reply_to:
        msg["Reply-To"] = _address_header(outbox.reply_to)
    msg["Subject"] = _encoded_subject(rendered.subject)
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_message_id(key, outbox.address)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join(filter(None, [references, in_reply_to]))
    msg["Auto-Submitted"] = "auto-replied" if kind in AUTO_REPLY else "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Loop"] = outbox.address
    msg["X-Mailbot-Kind"] = kind
    return msg


def text_part(text: str, subtype: str) -> Message:
    """What ``MIMEText(text, subtype, "utf-8")`` makes, header for header and byte for byte, without its detour
    through ``email.charset`` (which encodes the body in Python, one line at a time: a third of composing)."""
    part = Message()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["MIME-Version"] = "1.0"
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(base64.encodebytes(text.encode("utf-8")).decode("ascii"))
    return part


def _with_attachments(body: Message, attachments: tuple[tuple[str, bytes, str], ...]) -> Message:
    mixed = MIMEMultipart("mixed", boundary=_boundary())
    mixed.attach(body)
    for filename, data, mime in attachments:
        part = MIMEApplication(data, _subtype=mime.partition("/")[2] or "octet-stream")
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
        mixed.attach(part)
    return mixed


def _boundary() -> str:
    """Our own boundary: the generator would otherwise compile a regex per message to check its random one.
    "--" never starts a line of the base64 bodies mailbot writes, so this cannot collide."""
    return f"=_mailbot_{_unique_hex(24)}"


def _unique_hex(digits: int) -> str:
    """Random hex for what must only be unique (a boundary, a Message-ID's token, which the HMAC beside it makes
    ours): the ``random`` module draws it in memory, reseeded from the OS at start and in every forked child,
    where ``secrets`` costs a system call each (~50 µs on a VM, twice per receipt)."""
    return f"{random.getrandbits(digits * 4):0{digits}x}"


@lru_cache(maxsize=256)
def _encoded_subject(subject: str) -> str:
    """RFC 2047 words, encoded once per subject: schools copy the plan's subject line, so receipts share a few, and
    ``email.header`` measures every character of a Vietnamese subject (a fifth of composing a receipt)."""
    return Header(subject, "utf-8", header_name="Subject").encode()


@lru_cache(maxsize=64)
def _address_header(value: str) -> str:
    """``Name <addr>`` with the name RFC 2047-encoded once (the same sender heads every message)."""
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8")


def as_bytes(msg: Message) -> bytes:
    """The wire form, CRLF line ends (smtplib does not fix line ends of bytes)."""
    parts: list[str] = []
    if _write_plain(msg, parts):
        return "".join(parts).encode("ascii")
    return msg.as_bytes(policy=SMTP_COMPAT)


_LINE_END = re.compile(r"\r\n|\r|\n")


@lru_cache(maxsize=256)
def _folded(name: str, value: str) -> str:
    """A header line as written; the long ones that are the same in every message (From) are folded once."""
    return SMTP_COMPAT.fold(name, value)


def _write_plain(msg: Message, out: list[str]) -> bool:
    """The messages mailbot composes (ASCII headers and bodies, parts in a multipart without preamble or epilogue)
    written as the email package's generator writes them, without its machinery (a buffer and a generator per
    part); False, with ``out`` to be dropped, for anything else: the generator writes that."""
    for name, value in msg.raw_items():
        if not isinstance(value, str) or not value.isascii():
            return False
        out.append(_folded(name, value))
    out.append("\r\n")
    payload = msg.get_payload()
    if msg.get_content_maintype() != "multipart":
        if not isinstance(payload, str) or not payload.isascii():
            return False
        out.append(payload.replace("\n", "\r\n") if "\r" not in payload else "\r\n".join(_LINE_END.split(payload)))
        return True
    boundary = msg.get_boundary()
    if not isinstance(payload, list) or not payload or not boundary or (msg.preamble, msg.epilogue) != (None, None):
        return False
    for i, part in enumerate(payload):
        out.append(("\r\n--" if i else "--") + boundary + "\r\n")
        if not isinstance(part, Message) or not _write_plain(part, out):
            return False
    out.append("\r\n--" + boundary + "--\r\n")
    return True


def department(outbox: OutboxSettings) -> str:
    return outbox.name or outbox.address


def human_size(size: int) -> str:
    """Sizes as Vietnamese write them: ``38,5 KB``."""
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}".replace(".", ",")
    return f"{size} byte"
