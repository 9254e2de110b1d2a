"""The small frozen values passed between pipeline stages (fetch → parse → identify → record)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailbot.documents.docmeta import DocMeta


@dataclass(frozen=True)
class RawMail:
    """One message as the inbox holds it: where it lies, when it arrived, and its bytes."""

    source: str  # e.g. "imap://user@host:993/INBOX" or "maildir:/path"
    uidvalidity: int  # 0 for Maildir, whose keys never change
    uid: str
    internaldate: datetime  # aware, UTC: when the server received it
    data: bytes
    oversized: int = 0  # when the message is over the size limit: its size, and `data` holds only the header


class FileKind(StrEnum):
    DOCX = "docx"
    DOCM = "docm"
    DOC = "doc"
    PDF = "pdf"
    OTHER = "other"


REPORT_KINDS = frozenset({FileKind.DOCX, FileKind.DOCM, FileKind.DOC})


@dataclass(frozen=True)
class Attachment:
    """A file found in a message (directly, in a forward or inside a zip), sniffed by content."""

    name: str  # NFC, as the sender named it (never used as a path)
    kind: FileKind
    data: bytes
    origin: str = ""  # e.g. "bao-cao.zip" when unpacked from an archive
    heading: str = ""  # first lines of a Word file, for identification by name
    warnings: tuple[str, ...] = ()
    meta: DocMeta | None = None  # what a Word report says about itself

    @property
    def is_report(self) -> bool:
        return self.kind in REPORT_KINDS


@dataclass(frozen=True)
class Bounce:
    """A delivery status notification: which of our messages failed, for whom."""

    original_message_id: str
    recipients: tuple[str, ...]
    status: str  # e.g. "5.1.1"


@dataclass(frozen=True)
class AuthResult:
    """One resinfo of an Authentication-Results header (RFC 8601): ``method=result`` and its properties."""

    method: str  # lower-case: spf, dkim, dmarc, ...
    result: str  # lower-case: pass, fail, softfail, none, ...
    props: tuple[tuple[str, str], ...] = ()  # (lower-case "ptype.property", value), e.g. ("header.from", "a.vn")

    def prop(self, name: str) -> str:
        return next((value for key, value in self.props if key == name), "")


@dataclass(frozen=True)
class AuthHeader:
    """One Authentication-Results header: the server that wrote it (authserv-id) and what it recorded."""

    authserv_id: str  # lower-case, e.g. "mx.haiphong.edu.vn"
    results: tuple[AuthResult, ...] = ()


@dataclass(frozen=True)
class InboundMail:
    """What parsing learned from a message."""

    sender: str  # lower-case address, "" when none could be read
    sender_name: str
    subject: str
    message_id: str  # never empty: a stable substitute is made when the header is missing
    arrived: datetime  # the server's INTERNALDATE, aware
    files: tuple[Attachment, ...] = ()
    forwarded_senders: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    references: str = ""  # the References header, for threading a reply
    auto_markers: tuple[str, ...] = ()  # signs that a machine sent it (RFC 3834): never answer those
    bounce: Bounce | None = None
    auth_headers: tuple[AuthHeader, ...] = ()  # every Authentication-Results header, topmost first
    from_addresses: tuple[str, ...] = ()  # every distinct address of every From field (lower-case)

    @property
    def reports(self) -> tuple[Attachment, ...]:
        return tuple(f for f in self.files if f.is_report)

    @property
    def several_senders(self) -> bool:
        """A From with more than one address: which one "sent" it is anyone's guess, and DMARC may have
        checked another one than the address mailbot reads."""
        return len(self.from_addresses) > 1


class IdentifiedBy(StrEnum):
    ADDRESS = "address"
    NAME = "name"
    STAFF = "staff"


@dataclass(frozen=True)
class Institution:
    code: str
    name: str
    group: str
    emails: tuple[str, ...] = ()
    active: bool = True  # False once a `roster import --replace` left it out: kept for its history, never chased


@dataclass(frozen=True)
class Verdict:
    """Who sent a message and for which campaign; ``institution`` is None when staff must review."""

    institution: Institution | None
    identified_by: IdentifiedBy | None
    campaign_id: str | None
    late: bool = False
    reason: str = ""  # why it went to review, or how a name match was made

    @property
    def needs_review(self) -> bool:
        return self.institution is None or self.campaign_id is None


@dataclass(frozen=True)
class Campaign:
    id: str
    title: str
    deadline: datetime  # aware
    opens: datetime | None = None
    groups: tuple[str, ...] = ()  # empty = every group
    keywords: tuple[str, ...] = ()
    accept_late_days: int = 60
    plan: str = ""  # "số 1234/KH-SGDĐT ngày 20/11/2023": the plan the reminders cite
    contact: str = ""  # the person schools ask, with a phone number

    def concerns(self, group: str) -> bool:
        return not self.groups or group in self.groups


@dataclass(frozen=True)
class ArchivedFile:
    name: str
    kind: FileKind
    size: int
    sha256: str
    path: str  # relative to the archive root
    origin: str = ""
    heading: str = ""
    warnings: tuple[str, ...] = field(default=())
    meta: dict[str, object] = field(default_factory=dict)
