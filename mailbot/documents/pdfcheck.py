"""What a PDF sent as the stamped copy (bản có dấu đỏ) is: digitally signed (by whom, when, intact, trusted), a scan
(with or without a red seal, its number and date read by OCR), a text export of the Word file, or unreadable.

The facts only: whether they make a good stamped copy for one institution is decided where the institution and its
Word file are known (reports/stamps.py). ``python -m mailbot.documents.pdfcheck FILE`` prints them as JSON: the
service runs it as a child process with a time and memory limit, so a PDF bomb ends as a warning."""

from __future__ import annotations

import argparse
import json
import resource
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from asn1crypto import x509

from mailbot.documents import pdfscan, pdfsign
from mailbot.documents.decree30 import find_number, find_place_date
from mailbot.documents.pdffacts import EXPORT, SCAN, SIGNED, UNKNOWN, PdfFacts, SignatureFacts
from mailbot.errors import ConfigError

DEFAULT_SECONDS = 30.0
MEMORY_BYTES = 1536 * 1024 * 1024  # the child's address space: a decompression bomb fails instead of swapping


@dataclass(frozen=True)
class Budget:
    seconds: float = DEFAULT_SECONDS
    anchors: tuple[x509.Certificate, ...] = field(default=())


def check(pdf: Path, budget: Budget) -> PdfFacts:
    """The facts of one PDF file; never raises for a bad file (the problem is in the result)."""
    deadline = pdfscan.Deadline.after(budget.seconds)
    data = pdf.read_bytes()
    try:
        found = pdfsign.signatures(data, budget.anchors) if pdfsign.signed(data) else ()
    except Exception:  # noqa: BLE001 - pyHanko is strict on damaged files that Poppler still reads: not signed
        found = ()
    shape: pdfscan.Layout | None = None
    try:
        shape = pdfscan.layout(pdf, deadline)
        if found:
            return PdfFacts(SIGNED, shape.pages, tuple(_signature(s) for s in found))
        if shape.image_coverage >= pdfscan.SCAN_COVERAGE:
            return _scan(pdf, shape, deadline)
        if shape.text_chars >= 20:
            return _with_header(PdfFacts(EXPORT, shape.pages), pdfscan.page_text(pdf, deadline))
        return PdfFacts(UNKNOWN, shape.pages, problem="neither text nor a scanned page on page 1")
    except pdfscan.ToolFailed as exc:
        kind = SIGNED if found else UNKNOWN
        pages = shape.pages if shape else 0  # what was learned before the time ran out is kept
        return PdfFacts(kind, pages, signatures=tuple(_signature(s) for s in found), problem=str(exc))


def _signature(sig: pdfsign.Signature) -> SignatureFacts:
    when = sig.signed_at.isoformat() if isinstance(sig.signed_at, datetime) else None
    return SignatureFacts(sig.intact, sig.covers_document, sig.trusted, sig.organisation, sig.person, when)


def _scan(pdf: Path, shape: pdfscan.Layout, deadline: pdfscan.Deadline) -> PdfFacts:
    with pdfscan.scratch() as tmp:
        pixels = pdfscan.first_page(pdf, deadline, Path(tmp))
        seal = pdfscan.red_seal(pixels)
        try:
            text = pdfscan.ocr_header(pixels, deadline, Path(tmp))
        except pdfscan.ToolFailed as exc:
            # The seal is already known: a scan whose number could not be read in time is still a scan, with a
            # doubt staff can settle by eye, not an unreadable file.
            return PdfFacts(SCAN, shape.pages, seal=seal, ocr=False, problem=str(exc))
    facts = PdfFacts(SCAN, shape.pages, seal=seal, ocr=pdfscan.ocr_available())
    return _with_header(facts, text)


def _with_header(facts: PdfFacts, text: str) -> PdfFacts:
    """The number and the date found in the first page's text (the Decree 30 header), if any."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    number = find_number(lines)
    when = find_place_date(lines)
    day: date | None = when.date if when else None
    return PdfFacts(
        facts.kind,
        facts.pages,
        facts.signatures,
        facts.seal,
        number.number if number and number.number else None,
        day.isoformat() if day else None,
        facts.ocr,
        facts.problem,
    )


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def main(argv: Sequence[str] | None = None) -> int:
    """The child process: facts of one file as one JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m mailbot.documents.pdfcheck", description=__doc__)
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--anchor", type=Path, action="append", default=[], help="a trust anchor (PEM or DER)")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    args = parser.parse_args(argv)
    _limit_memory()
    try:
        anchors = pdfsign.load_anchors(tuple(args.anchor))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    facts = check(args.pdf, Budget(args.seconds, anchors))
    print(json.dumps(facts.to_json(), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
