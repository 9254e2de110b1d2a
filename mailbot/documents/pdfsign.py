"""Digital signatures in a PDF (ký số), validated with pyHanko: intact, who signed, when, and whether the signing
certificate chains to a trust anchor the department installed."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from asn1crypto import pem, x509

from mailbot.errors import ConfigError

# pyHanko is imported where a signature is validated: it alone takes most of a second to load, which a child
# process checking a scan or an export would pay for nothing.

# pyHanko logs a traceback for every chain it cannot build (expected without anchors): the verdict says it once.
logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Signature:
    """One signature of the PDF, as pyHanko found it."""

    intact: bool  # the signed bytes are unchanged and the cryptography holds
    covers_document: bool  # nothing but form filling or further signatures was added after it
    trusted: bool  # the signing certificate chains to one of the configured anchors
    organisation: str  # the certificate subject's O (the institution), "" when absent
    person: str  # its CN (the signer, or the institution again)
    signed_at: datetime | None  # the time the signer's software reported


def load_anchors(paths: tuple[Path, ...]) -> tuple[x509.Certificate, ...]:
    """The trust anchors the operator installed (PEM or DER files, several certificates per PEM file allowed)."""
    found: list[x509.Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
            blobs = [der for _, _, der in pem.unarmor(data, multiple=True)] if pem.detect(data) else [data]
            found.extend(x509.Certificate.load(der) for der in blobs)
            for cert in found:
                cert.native  # noqa: B018 - parsing is lazy: a corrupt file must fail here, not at the first PDF
        except OSError as exc:
            raise ConfigError(f"documents.trust_anchors: cannot read {path}: {exc.strerror or exc}") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"documents.trust_anchors: {path} is not a PEM or DER certificate ({exc})") from None
    return tuple(found)


def anchors_from_der(blobs: tuple[bytes, ...]) -> tuple[x509.Certificate, ...]:
    return tuple(x509.Certificate.load(b) for b in blobs)


def signed(data: bytes) -> bool:
    """Whether the file holds a signature at all (every signature dictionary has a /ByteRange), without parsing it."""
    return b"/ByteRange" in data


def signatures(data: bytes, anchors: tuple[x509.Certificate, ...]) -> tuple[Signature, ...]:
    """Every signature of the PDF (empty: none). Raises pyHanko's PdfError on a file it cannot read."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(data), strict=False)
    return tuple(_validate(sig, anchors) for sig in reader.embedded_signatures)


def _validate(sig: object, anchors: tuple[x509.Certificate, ...]) -> Signature:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko_certvalidator import ValidationContext

    # No fetching: validation must not reach out to the internet (and never hang on it); an empty anchor list
    # means nothing is trusted (pyHanko would otherwise fall back to the system's web CAs, which sign no decree).
    context = ValidationContext(trust_roots=list(anchors), allow_fetching=False, revocation_mode="soft-fail")
    try:
        status = validate_pdf_signature(sig, context)  # type: ignore[arg-type]
    except (SignatureValidationError, PdfError, ValueError) as exc:
        logging.getLogger(__name__).info("signature not validated: %s", exc)
        return Signature(False, False, False, "", "", None)
    subject = status.signing_cert.subject.native if status.signing_cert else {}
    level = status.modification_level
    return Signature(
        intact=bool(status.intact and status.valid),
        covers_document=level is None or level.value <= ModificationLevel.FORM_FILLING.value,
        trusted=bool(status.trusted),
        organisation=str(subject.get("organization_name", "") or ""),
        person=str(subject.get("common_name", "") or ""),
        signed_at=status.signer_reported_dt,
    )


__all__ = ["Signature", "anchors_from_der", "load_anchors", "signatures", "signed"]
