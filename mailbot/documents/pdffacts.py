"""The facts found in a PDF sent as the stamped copy, as values and as the JSON the database keeps (light: no PDF
library is loaded to read them back)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SIGNED, SCAN, EXPORT, UNKNOWN = "signed", "scan", "export", "unknown"


@dataclass(frozen=True)
class SignatureFacts:
    intact: bool
    covers_document: bool
    trusted: bool
    organisation: str
    person: str
    signed_at: str | None  # ISO


@dataclass(frozen=True)
class PdfFacts:
    kind: str  # signed | scan | export | unknown
    pages: int = 0
    signatures: tuple[SignatureFacts, ...] = ()
    seal: bool | None = None  # scans only
    number: str | None = None  # "15/BC-THPTNQ" as read (OCR on a scan, the text of an export)
    date: str | None = None  # ISO day
    ocr: bool = False  # whether the scan's header was read by OCR
    problem: str = ""  # why the file could not be read in full (English, for the log and staff)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PdfFacts:
        sigs = tuple(SignatureFacts(**s) for s in raw.get("signatures", ()))
        return cls(**{**{k: v for k, v in raw.items() if k in _FIELDS}, "signatures": sigs})


_FIELDS = frozenset(PdfFacts.__dataclass_fields__)
