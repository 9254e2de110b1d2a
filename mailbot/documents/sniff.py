"""What a file is (sniffed from its bytes) and, for Word files, the first lines of its text."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from mailbot.models import FileKind, WarningCode
from mailbot.text import nfc

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MAX_DOCUMENT_XML = 20 * 1024 * 1024  # a real report's document.xml is well under 1 MB; more is a bomb
HEADING_PARAGRAPHS = 12  # the issuing body, number, date and title sit in the first lines (Decree 30/2020)


def _utf16(word: str) -> bytes:
    return word.encode("utf-16-le")


def sniff(data: bytes, name: str = "") -> FileKind | str:
    """The kind of a file judged by its content; ``"zip"`` and ``"tnef"`` are containers to open."""
    if data.startswith(b"%PDF"):
        return FileKind.PDF
    if data.startswith(OLE_MAGIC):
        return (
            FileKind.DOC
            if _utf16("WordDocument") in data[: 1 << 20] or _utf16("EncryptedPackage") in data[: 1 << 20]
            else FileKind.OTHER
        )
    if data.startswith(b"\x78\x9f\x3e\x22"):
        return "tnef"
    if data.startswith((b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c")):
        return "rar7z"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return _sniff_zip(data, name)
    return FileKind.OTHER


def _sniff_zip(data: bytes, name: str) -> FileKind | str:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        # A truncated .docx still starts like a zip: keep it as a Word file and warn when it is read.
        return FileKind.DOCX if name.lower().endswith((".docx", ".docm")) else FileKind.OTHER
    if "word/document.xml" in names:
        return FileKind.DOCM if "word/vbaProject.bin" in names else FileKind.DOCX
    if any(n.startswith(("xl/", "ppt/")) for n in names) or "mimetype" in names:
        return FileKind.OTHER  # Excel, PowerPoint, OpenDocument
    return "zip"


def doc_to_docx(data: bytes, timeout: float = 120.0) -> bytes | None:
    """A legacy .doc converted by LibreOffice (headless) when it is installed; None otherwise or on failure."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        return None
    with tempfile.TemporaryDirectory(prefix="mailbot-doc-") as tmp:
        source = Path(tmp) / "report.doc"
        source.write_bytes(data)
        profile = Path(tmp) / "profile"  # a private profile: several conversions may run at once
        command = [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "docx",
            "--outdir",
            tmp,
            str(source),
        ]
        try:
            subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except (subprocess.TimeoutExpired, OSError):
            return None
        converted = Path(tmp) / "report.docx"
        return converted.read_bytes() if converted.exists() else None


def ole_warnings(data: bytes) -> tuple[WarningCode, ...]:
    if _utf16("EncryptedPackage") in data[: 1 << 20]:
        return (WarningCode.PASSWORD_PROTECTED,)
    return (WarningCode.LEGACY_DOC,)


def docx_heading(data: bytes) -> tuple[str, tuple[WarningCode, ...]]:
    """The text of the first paragraphs (header table included), reading no further than needed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if archive.getinfo("word/document.xml").file_size > MAX_DOCUMENT_XML:
                return "", (WarningCode.DOCUMENT_TOO_LARGE,)
            with archive.open("word/document.xml") as xml:
                return _first_paragraphs(xml), ()
    except (zipfile.BadZipFile, KeyError, ParseError, DefusedXmlException, EOFError, OSError, ValueError):
        return "", (WarningCode.UNREADABLE_DOCX,)


def _first_paragraphs(xml: io.BufferedIOBase) -> str:
    lines: list[str] = []
    parts: list[str] = []
    for _event, elem in iterparse(xml, events=("end",), forbid_dtd=True):
        if elem.tag == f"{_W}t" and elem.text:
            parts.append(elem.text)
        elif elem.tag == f"{_W}p":
            if parts:
                lines.append("".join(parts))
                parts = []
            elem.clear()
            if len(lines) >= HEADING_PARAGRAPHS:
                break
    return nfc("\n".join(lines))
