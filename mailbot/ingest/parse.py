"""MIME → InboundMail: sender, subject, Message-ID, arrival, and the report files wherever they hide."""

from __future__ import annotations

import email
import hashlib
import re
from email.header import Header, decode_header
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parseaddr
from typing import cast
from zipfile import ZipFile

from mailbot.config import LimitSettings
from mailbot.documents import convert
from mailbot.documents.decree30 import DocMeta, describe, heading, meta_heading
from mailbot.documents.sniff import ole_warnings, open_zip, sniff
from mailbot.documents.wordxml import read_blocks
from mailbot.ingest.authresults import parse_header
from mailbot.ingest.mime import decoded_payload, message_from_bytes
from mailbot.ingest.unpack import Found, safe_basename, unarchive, untnef, unzip
from mailbot.models import Attachment, AuthHeader, Bounce, FileKind, InboundMail, Notice, RawMail, WarningCode
from mailbot.text import nfc

# Vietnamese senders with old software write 8-bit headers in Windows-1258 or TCVN; try the likely ones.
_FALLBACK_CHARSETS = ("utf-8", "cp1258", "latin-1")
_BODY_TYPES = ("text/plain", "text/html", "text/enriched", "text/calendar")


def decode_bytes(raw: bytes, charset: str | None = None) -> str:
    for candidate in ((charset,) if charset else ()) + _FALLBACK_CHARSETS:
        try:
            return raw.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("latin-1")


def raw_header_text(value: object) -> str:
    """A header as written, its raw 8-bit bytes (not RFC 2047) decoded as UTF-8, else Windows-1258.

    The parser hands such a header over as a ``Header`` in the ``unknown-8bit`` charset whose ``str()`` has
    already put U+FFFD in place of every byte; the original bytes are still inside it, so read those."""
    if isinstance(value, Header):
        try:
            return "".join(
                decode_bytes(raw, None if cs in (None, "unknown-8bit", "us-ascii") else cs)
                for raw, cs in decode_header(value)
            )
        except Exception:  # noqa: BLE001 - a header object we cannot take apart: keep what str() gives
            return str(value)
    text = str(value)
    if not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text):  # raw bytes smuggled in by the parser
        text = decode_bytes(text.encode("ascii", "surrogateescape"))
    return text


def decode_header_value(value: object) -> str:
    """RFC 2047 words, raw 8-bit bytes and unknown charsets all end as NFC text; never raises."""
    if value is None:
        return ""
    text = raw_header_text(value)
    try:
        chunks = decode_header(text)
    except Exception:  # noqa: BLE001 - malformed encoded words: keep the text as written
        return nfc(" ".join(text.split()))
    out = "".join(c if isinstance(c, str) else decode_bytes(c, cs) for c, cs in chunks)
    return nfc(" ".join(out.split()))


def _header(msg: Message, name: str) -> str:
    try:
        return decode_header_value(msg.get(name))
    except Exception:  # noqa: BLE001 - a header object we cannot even turn into text
        return ""


def _raw_text(raw: object) -> str:
    """A header value as written, undecoded; raw 8-bit bytes read in the likely charsets."""
    return " ".join(raw_header_text(raw).split())


def _all_values(msg: Message, name: str) -> list[object]:
    try:
        return list(msg.get_all(name, []))
    except Exception:  # noqa: BLE001 - a header object we cannot read
        return []


def sender_of(msg: Message) -> tuple[str, str]:
    """(lower-case address, display name) from From, falling back to Sender and Return-Path.

    The address is split from the name before the name is decoded: a decoded name may hold a comma
    ("Trường Tiểu học, THCS và THPT Edison") that would otherwise cut the address in two."""
    for name in ("From", "Sender", "Return-Path"):
        try:
            raw = msg.get(name)
        except Exception:  # noqa: BLE001 - a header object we cannot read
            continue
        if raw is None:
            continue
        display, address = _split_address(_raw_text(raw))
        if "@" in address:
            return address.strip().lower(), decode_header_value(display)
    return "", ""


_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")


def from_addresses(msg: Message) -> tuple[str, ...]:
    """Every distinct address of every From field (RFC 5322 allows a list of authors; a server may check
    DMARC on another one than the address mailbot reads). Encoded-words can only be names, so they are masked
    first: neither an "@" nor a comma inside one makes an address."""
    values = [_ENCODED_WORD.sub("x", _raw_text(raw)) for raw in _all_values(msg, "From")]
    try:
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001 - the address parser gave up on this text
        return ()
    found = (address.strip().lower() for _, address in pairs)
    return tuple(dict.fromkeys(a for a in found if _is_address(a)))


def _is_address(text: str) -> bool:
    local, at, domain = text.rpartition("@")
    return bool(at and local and domain)


_ANGLE_ADDRESS = re.compile(r"^(.*)<([^<>\s]+@[^<>\s]+)>\s*$")


def _split_address(value: str) -> tuple[str, str]:
    """An address in angle brackets wins: an unquoted encoded-word holding "@" in the name must not
    pass for the address (``=?utf-8?Q?school@haiphong.edu.vn?= <stranger@gmail.com>``)."""
    angle = _ANGLE_ADDRESS.match(value)
    if angle:
        return angle.group(1).strip().strip('"'), angle.group(2)
    return parseaddr(value)


def message_id_of(msg: Message, data: bytes) -> tuple[str, tuple[Notice, ...]]:
    value = _header(msg, "Message-ID").strip()
    if value:
        return value, ()
    # A stable stand-in, so that re-reading the same bytes gives the same identity.
    return f"<{hashlib.sha256(data).hexdigest()[:32]}@missing-message-id.mailbot>", (Notice(WarningCode.NO_MESSAGE_ID),)


def _filename(part: Message) -> str:
    try:
        raw = part.get_filename() or part.get_param("name")
    except Exception:  # noqa: BLE001 - broken RFC 2231 parameters
        raw = None
    if isinstance(raw, tuple):  # an RFC 2231 value that compat32 left undecoded
        raw = email.utils.collapse_rfc2231_value(raw)
    return raw if isinstance(raw, str) else ""


def _redecoded(part: Message) -> Message:
    """The part's naming headers with their raw 8-bit bytes decoded (the parser turned them into U+FFFD)."""
    headers = Message()
    for name in ("Content-Disposition", "Content-Type"):
        value = part.get(name)
        if value is not None:
            headers[name] = raw_header_text(value)
    return headers


def _part_name(part: Message) -> str:
    raw = _filename(part)
    if "\ufffd" in raw:
        raw = _filename(_redecoded(part)) or raw
    return safe_basename(decode_header_value(raw)) if raw else ""


def _payload(part: Message) -> bytes | None:
    try:
        return decoded_payload(part)
    except Exception:  # noqa: BLE001 - a transfer encoding the parser cannot undo
        return None


def _is_attachment(part: Message, name: str) -> bool:
    if part.is_multipart():
        return False
    if name:
        return True
    disposition = (part.get("Content-Disposition") or "").lower()
    return (
        disposition.startswith("attachment")
        or part.get_content_type() not in _BODY_TYPES + ("message/rfc822",)
        and part.get_content_maintype() == "application"
    )


def _walk_files(msg: Message, limits: LimitSettings) -> list[Found]:
    found: list[Found] = []
    for part in msg.walk():
        if part.is_multipart():
            continue  # a container is never a file (``_is_attachment``): its name is not worth decoding
        name = _part_name(part)
        if not _is_attachment(part, name):
            continue
        data = _payload(part)
        if data is None:
            found.append(Found(name or "attachment", b"", warnings=(Notice(WarningCode.UNDECODABLE_ATTACHMENT),)))
        elif len(data) > limits.max_attachment_bytes:
            found.append(Found(name or "attachment", b"", warnings=(Notice(WarningCode.TOO_LARGE, str(len(data))),)))
        else:
            found.append(Found(name or "attachment", data))
    return found


def _forwarded_senders(msg: Message) -> tuple[str, ...]:
    out: list[str] = []
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822" and isinstance(part.get_payload(), list):
            for inner in _parts(part):
                values = [decode_header_value(v) for v in inner.get_all("From", [])]
                out += [addr.lower() for _, addr in getaddresses(values) if "@" in addr]
    return tuple(dict.fromkeys(out))


def _attachment(found: Found, limits: LimitSettings) -> list[Attachment]:
    if not found.data:
        return [Attachment(found.name, FileKind.OTHER, b"", found.origin, warnings=found.warnings)]
    archive = open_zip(found.data)  # once, for sniffing and reading
    kind = sniff(found.data, found.name, archive)
    if kind == "zip":
        return [a for inner in unzip(found, limits) for a in _attachment(inner, limits)]
    if kind == "tnef":
        return [a for inner in untnef(found, limits) for a in _attachment(inner, limits)]
    if kind == "rar7z":
        return [a for inner in unarchive(found, limits) for a in _attachment(inner, limits)]
    meta: DocMeta | None = None
    heading = ""
    codes: tuple[WarningCode, ...] = ()
    if kind in (FileKind.DOCX, FileKind.DOCM):
        meta, heading = _word(found.data, archive)
        codes = meta.warnings + ((WarningCode.MACROS,) if kind == FileKind.DOCM else ())
    elif kind == FileKind.DOC:
        meta, heading, codes = legacy_word(found.data, limits.doc_seconds)
    elif kind == FileKind.OTHER and found.name.lower().endswith((".doc", ".docx", ".docm")):
        codes = (WarningCode.NOT_A_WORD_FILE,)  # the name says Word, the bytes do not
    warnings = found.warnings + tuple(Notice(c) for c in codes)
    return [Attachment(found.name, FileKind(kind), found.data, found.origin, heading, warnings, meta)]


def _word(data: bytes, archive: ZipFile | None = None) -> tuple[DocMeta, str]:
    """The metadata of a .docx and the lines that name its issuer and subject, from one reading of the file."""
    blocks = read_blocks(data, opening=True, archive=archive)
    meta = describe(blocks)
    return meta, heading(meta, blocks)


def legacy_word(
    data: bytes, seconds: float, *, last_try: bool = False
) -> tuple[DocMeta | None, str, tuple[WarningCode, ...]]:
    """A .doc is read through LibreOffice when it is installed; it still earns the legacy warning. One that is not
    converted within ``seconds`` is marked pending (converted later, off the receipt's path), unless ``last_try``."""
    warnings = ole_warnings(data)
    if WarningCode.PASSWORD_PROTECTED in warnings:
        return None, "", warnings
    conversion = convert.convert(data, seconds)
    if conversion.docx is None:
        late = conversion.timed_out and not last_try
        return None, "", warnings + (WarningCode.LEGACY_DOC_PENDING if late else WarningCode.LEGACY_DOC_UNREAD,)
    meta = describe(read_blocks(conversion.docx))
    return meta, meta_heading(meta), warnings + meta.warnings  # its Decree 30 parts only, not its first lines


_MACHINE_LOCALPARTS = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|auto[-_.]?reply)([+-].*)?$"
)


def auto_markers(msg: Message, sender: str) -> tuple[str, ...]:
    """Why this message looks machine-sent (RFC 3834 and common practice); empty for a person."""
    found: list[str] = []
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        found.append(f"auto-submitted: {auto}")
    if _header(msg, "Precedence").lower() in ("bulk", "junk", "list"):
        found.append(f"precedence: {_header(msg, 'Precedence').lower()}")
    found += [
        name.lower()
        for name in ("List-Id", "List-Unsubscribe", "X-Autoreply", "X-Autorespond", "X-Loop")
        if msg.get(name) is not None
    ]
    if msg.get("Return-Path") is not None and _header(msg, "Return-Path").strip() in ("<>", ""):
        found.append("empty return-path")
    if _MACHINE_LOCALPARTS.match(sender.split("@")[0]):
        found.append(f"machine sender {sender}")
    if msg.get_content_type() == "multipart/report":
        found.append("multipart/report")
    return tuple(found)


def bounce_of(msg: Message) -> Bounce | None:
    """The failed recipients and original Message-ID of a delivery status notification (RFC 3464)."""
    if msg.get_content_type() != "multipart/report":
        return None
    recipients: list[str] = []
    status, original = "", ""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            blocks = _parts(part) if isinstance(part.get_payload(), list) else []
            for block in blocks:
                if str(block.get("Action", "")).strip().lower() == "failed":
                    recipients.append(str(block.get("Final-Recipient", "")).split(";")[-1].strip().strip("<>").lower())
                    status = status or str(block.get("Status", "")).strip()
        elif kind in ("text/rfc822-headers", "message/rfc822") and not original:
            original = _original_message_id(part)
    if not recipients or not original:
        return None
    return Bounce(original, tuple(r for r in recipients if r), status)


def _parts(container: Message) -> list[Message]:
    """The inner messages of a multipart or message/* part (its payload when that is a list)."""
    return cast(list[Message], container.get_payload())


def _original_message_id(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return _header(_parts(part)[0], "Message-ID").strip()
    raw = decoded_payload(part) or b""
    headers = email.message_from_bytes(raw, policy=compat32)
    return _header(headers, "Message-ID").strip()


def auth_headers(msg: Message) -> tuple[AuthHeader, ...]:
    """Every Authentication-Results header, topmost first (RFC 8601), read as written: never RFC 2047-decoded
    (see mailbot.ingest.authresults)."""
    return tuple(parse_header(_raw_text(v)) for v in _all_values(msg, "Authentication-Results"))


def parse(raw: RawMail, limits: LimitSettings) -> InboundMail:
    """Read one message; whatever is wrong with it becomes a warning, never an exception."""
    msg = message_from_bytes(raw.data)
    sender, display = sender_of(msg)
    message_id, warnings = message_id_of(msg, raw.data)
    files = tuple(a for f in _walk_files(msg, limits) for a in _attachment(f, limits))
    if not sender:
        warnings += (Notice(WarningCode.NO_SENDER),)
    if not any(f.is_report for f in files):
        warnings += (Notice(WarningCode.NO_REPORT_FILE),)
    return InboundMail(
        sender=sender,
        sender_name=display,
        subject=_header(msg, "Subject"),
        message_id=message_id,
        arrived=raw.internaldate,
        files=files,
        forwarded_senders=_forwarded_senders(msg),
        warnings=warnings,
        references=_header(msg, "References"),
        auto_markers=auto_markers(msg, sender),
        bounce=bounce_of(msg),
        auth_headers=auth_headers(msg),
        from_addresses=from_addresses(msg),
    )
