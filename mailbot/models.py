"""The small frozen values passed between pipeline stages (fetch → parse → identify → record)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailbot.documents.decree30 import DocMeta


@dataclass(frozen=True)
class RawMail:
    """One message as the inbox holds it: where it lies, when it arrived, and its bytes."""

    source: str  # e.g. "imap://user@host:993/INBOX" or "maildir:/path"
    uidvalidity: int  # 0 for Maildir, whose keys never change
    uid: str
    internaldate: datetime  # aware, UTC: when the server received it
    data: bytes
    oversized: int = 0  # when the message is over the size limit: its size, and `data` holds only the header

    @cached_property
    def fingerprint(self) -> str:
        """The sha256 of its bytes: its identity against duplicates and its name in the archive (hashed once)."""
        return hashlib.sha256(self.data).hexdigest()


class FileKind(StrEnum):
    DOCX = "docx"
    DOCM = "docm"
    DOC = "doc"
    PDF = "pdf"
    OTHER = "other"


REPORT_KINDS = frozenset({FileKind.DOCX, FileKind.DOCM, FileKind.DOC})


class WarningCode(StrEnum):
    """What can be wrong with a message or a file; the value is what the database and ``status --json`` hold."""

    LEGACY_DOC = "legacy_doc"
    UNREADABLE_DOCX = "unreadable_docx"
    PASSWORD_PROTECTED = "password_protected"
    NOT_A_WORD_FILE = "not_a_word_file"
    MACROS = "macros"
    NO_REPORT_FILE = "no_report_file"
    NO_MESSAGE_ID = "no_message_id"
    NO_SENDER = "no_sender"
    UNDECODABLE_ATTACHMENT = "undecodable_attachment"
    TOO_LARGE = "too_large"  # detail: the file's size in bytes
    HEADING_OTHER_INSTITUTION = "heading_other_institution"  # detail: the codes named, comma-separated
    TITLE_UNRELATED = "title_unrelated"
    DATE_FAR = "date_far"  # detail: the document's date, dd/mm/yyyy
    EMPTY_DOCUMENT = "empty_document"
    BLANK_TEMPLATE = "blank_template"
    DOCUMENT_TOO_LARGE = "document_too_large"
    LEGACY_DOC_UNREAD = "legacy_doc_unread"
    LEGACY_DOC_PENDING = "legacy_doc_pending"  # not converted within the reading budget: converted after the batch
    LEGACY_ENCODING_TCVN3 = "legacy_encoding_tcvn3"
    LEGACY_ENCODING_VNI = "legacy_encoding_vni"
    BAD_DATE = "bad_date"
    TRUNCATED = "truncated"
    MESSAGE_TOO_LARGE = "message_too_large"  # detail: the message's size in bytes
    UNREADABLE_ARCHIVE = "unreadable_archive"
    ENCRYPTED_ARCHIVE = "encrypted_archive"
    ARCHIVE_TOO_MANY_ENTRIES = "archive_too_many_entries"
    ARCHIVE_TOO_LARGE = "archive_too_large"
    ARCHIVE_TOOL_MISSING = "archive_tool_missing"
    ARCHIVE_UNSAFE_NAMES = "archive_unsafe_names"
    UNREADABLE_TNEF = "unreadable_tnef"
    UNREADABLE_MESSAGE = "unreadable_message"
    OTHER = "other"  # a code this version does not know (written by another one): ``detail`` holds it whole


@dataclass(frozen=True)
class Notice:
    """One warning about a message or a file: a code and, for some codes, a detail (a size, a date, codes)."""

    code: WarningCode
    detail: str = ""

    def __str__(self) -> str:
        """The stored form: ``code`` or ``code:detail`` (an unknown code as it was read)."""
        if self.code is WarningCode.OTHER:
            return self.detail
        return f"{self.code.value}:{self.detail}" if self.detail else self.code.value

    @classmethod
    def parse(cls, stored: str) -> Notice:
        """The inverse of ``str``; only the store reads warnings back from text."""
        name, _, detail = stored.partition(":")
        try:
            return cls(WarningCode(name), detail)
        except ValueError:
            return cls(WarningCode.OTHER, stored)


@dataclass(frozen=True)
class Attachment:
    """A file found in a message (directly, in a forward or inside a zip), sniffed by content."""

    name: str  # NFC, as the sender named it (never used as a path)
    kind: FileKind
    data: bytes
    origin: str = ""  # e.g. "bao-cao.zip" when unpacked from an archive
    heading: str = ""  # first lines of a Word file, for identification by name
    warnings: tuple[Notice, ...] = ()
    meta: DocMeta | None = None  # what a Word report says about itself
    # of ``data``, hashed where the file is found (a reader process, during a backlog), not where it is recorded;
    # ``replace`` with new warnings keeps it (a file's bytes are never replaced: other bytes are another file)
    sha256: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

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
    # The value ends inside a comment or a quoted string: what follows the opening may have been swallowed
    # (a sender-chosen "a(b"@evil.example copied into a comment hides a later dmarc=fail), so nothing in it
    # can be trusted to be complete.
    malformed: bool = False


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
    warnings: tuple[Notice, ...] = ()
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
    contact: str = ""  # the person staff call there (Người liên hệ / đầu mối), as staff wrote it
    phone: str = ""


class State(StrEnum):
    """What became of a message; the value is what the database (``messages.state``) and the run summary hold."""

    SUBMISSION = "submission"  # counted: an institution's report for a campaign
    NO_REPORT = "no_report"  # from an identified institution, for a campaign, without a Word file
    REVIEW = "review"  # held for staff, with the reason
    BOUNCE = "bounce"  # a delivery failure of a message we sent
    ERROR = "error"  # could not be read at all: set aside with the reason
    DISMISSED = "dismissed"  # staff decided it is no report (spam, a question): kept, out of the queue, undoable
    DUPLICATE = "duplicate"  # already recorded (never stored as a state: the original keeps its own)


@dataclass(frozen=True)
class Verdict:
    """Who sent a message, for which campaign, and so what it counts as; ``institution`` is None when staff must
    review."""

    institution: Institution | None
    identified_by: IdentifiedBy | None
    campaign: Campaign | None
    late: bool = False
    reason: str = ""  # why it went to review, or how a name match was made
    state: State = State.REVIEW

    @property
    def campaign_id(self) -> str | None:
        return self.campaign.id if self.campaign else None

    @property
    def needs_review(self) -> bool:
        return self.institution is None or self.campaign is None


class PaperMode(StrEnum):
    """Whether a campaign wants the stamped copy (bản có dấu đỏ) besides the Word file, and how it may come."""

    NONE = "none"  # the Word file is all
    PDF = "pdf"  # a PDF (scan or signed) attached to an email
    POST = "post"  # the paper copy by post, ticked by staff
    EITHER = "either"  # a PDF by email or the paper copy by post


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
    paper: PaperMode = PaperMode.NONE
    closed: datetime | None = None  # when staff closed it: no longer routed to, chased or in the header

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
    warnings: tuple[Notice, ...] = field(default=())
    meta: dict[str, object] = field(default_factory=dict)
