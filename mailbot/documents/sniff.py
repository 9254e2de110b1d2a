"""What a file is, sniffed from its bytes (the name it was sent under is not trusted)."""

from __future__ import annotations

import io
import zipfile

from mailbot.models import FileKind, WarningCode

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _utf16(word: str) -> bytes:
    return word.encode("utf-16-le")


def open_zip(data: bytes) -> zipfile.ZipFile | None:
    """The zip archive a file is, opened once for sniffing and reading it (a .docx: ``wordxml.read_blocks``); None
    when it does not start as one or cannot be opened."""
    if not data.startswith(_ZIP_MAGIC):
        return None
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        return None


def sniff(data: bytes, name: str = "", archive: zipfile.ZipFile | None = None) -> FileKind | str:
    """The kind of a file judged by its content; ``"zip"`` and ``"tnef"`` are containers to open. ``archive``: the
    file already opened by ``open_zip``."""
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
    if data.startswith(_ZIP_MAGIC):
        return _sniff_zip(archive if archive is not None else open_zip(data), name)
    return FileKind.OTHER


def _sniff_zip(archive: zipfile.ZipFile | None, name: str) -> FileKind | str:
    if archive is None:
        # A truncated .docx still starts like a zip: keep it as a Word file and warn when it is read.
        return FileKind.DOCX if name.lower().endswith((".docx", ".docm")) else FileKind.OTHER
    names = set(archive.namelist())
    if "word/document.xml" in names:
        return FileKind.DOCM if "word/vbaProject.bin" in names else FileKind.DOCX
    if any(n.startswith(("xl/", "ppt/")) for n in names) or "mimetype" in names:
        return FileKind.OTHER  # Excel, PowerPoint, OpenDocument
    return "zip"


def ole_warnings(data: bytes) -> tuple[WarningCode, ...]:
    """What an OLE Word file earns: it is encrypted, or it is in the legacy format."""
    if _utf16("EncryptedPackage") in data[: 1 << 20]:
        return (WarningCode.PASSWORD_PROTECTED,)
    return (WarningCode.LEGACY_DOC,)
