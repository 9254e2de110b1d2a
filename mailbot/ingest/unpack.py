"""Containers schools put reports in: zip, rar and 7z (with `unar`), Outlook winmail.dat; always within limits."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from tnefparse import TNEF

from mailbot.config import LimitSettings
from mailbot.documents.sniff import sniff
from mailbot.models import Notice, WarningCode
from mailbot.text import nfc


@dataclass(frozen=True)
class Found:
    name: str
    data: bytes
    origin: str = ""
    warnings: tuple[Notice, ...] = ()


def safe_basename(name: str) -> str:
    """The last path component of a sender-supplied name, NFC; never a path."""
    base = nfc(PureWindowsPath(PurePosixPath(name.replace("\x00", "")).name).name).strip().strip(".")
    # A combining mark with nothing to sit on (cp1258 bytes of another code page) is not a name's start.
    while base and unicodedata.category(base[0]).startswith("M"):
        base = base[1:].lstrip().lstrip(".")
    return base or "file"


def unzip(found: Found, limits: LimitSettings, depth: int = 0) -> list[Found]:
    """The files inside a zip, within limits on entries, total size and compression ratio."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(found.data))
        entries = [e for e in archive.infolist() if not e.is_dir()]
    except (zipfile.BadZipFile, ValueError, OSError):
        return [Found(found.name, found.data, warnings=(Notice(WarningCode.UNREADABLE_ARCHIVE),))]
    problem = _zip_problem(entries, len(found.data), limits)
    if problem:
        return [Found(found.name, b"", warnings=(problem,))]
    out: list[Found] = []
    budget = limits.max_zip_total_bytes  # the sizes in a zip's directory can lie: count what really comes out
    for entry in entries:
        if budget <= 0:
            out.append(Found(_entry_name(entry), b"", found.name, (Notice(WarningCode.ARCHIVE_TOO_LARGE),)))
            continue
        unpacked = _unzip_entry(archive, entry, found.name, limits, depth, budget)
        budget -= sum(len(f.data) for f in unpacked)
        out += unpacked
    return out


def _zip_problem(entries: list[zipfile.ZipInfo], packed: int, limits: LimitSettings) -> Notice | None:
    total = sum(e.file_size for e in entries)
    if len(entries) > limits.max_zip_entries:
        return Notice(WarningCode.ARCHIVE_TOO_MANY_ENTRIES)
    if total > limits.max_zip_total_bytes or total > max(packed, 1) * limits.max_zip_ratio:
        return Notice(WarningCode.ARCHIVE_TOO_LARGE)
    if any(e.flag_bits & 0x1 for e in entries):
        return Notice(WarningCode.ENCRYPTED_ARCHIVE)
    return None


# Names in a zip without the UTF-8 flag are bytes in whatever code page wrote them: tools that write UTF-8
# anyway, Windows in Vietnamese (cp1258), and the OEM code page the format assumes (cp437), in that order.
_ZIP_NAME_ENCODINGS = ("utf-8", "cp1258")


def zip_name(raw: bytes) -> str:
    """An unflagged zip entry name from its bytes; never holds U+FFFD (cp437 decodes every byte)."""
    for encoding in _ZIP_NAME_ENCODINGS:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp437")


def _entry_name(entry: zipfile.ZipInfo) -> str:
    name = entry.filename
    if not entry.flag_bits & 0x800:  # zipfile decoded the bytes as cp437: get them back and decode them again
        try:
            name = zip_name(name.encode("cp437"))
        except UnicodeEncodeError:  # not what zipfile produced (cannot happen): keep it as it is
            pass
    return safe_basename(name.replace("\ufffd", "_"))


def _unzip_entry(
    archive: zipfile.ZipFile, entry: zipfile.ZipInfo, origin: str, limits: LimitSettings, depth: int, budget: int
) -> list[Found]:
    cap = min(limits.max_attachment_bytes, budget)
    try:
        with archive.open(entry) as stream:
            data = stream.read(cap + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, ValueError):
        return [Found(_entry_name(entry), b"", origin, (Notice(WarningCode.UNREADABLE_ARCHIVE),))]
    if len(data) > cap:
        too_large = Notice(WarningCode.TOO_LARGE, str(entry.file_size))
        problem = too_large if cap == limits.max_attachment_bytes else Notice(WarningCode.ARCHIVE_TOO_LARGE)
        return [Found(_entry_name(entry), b"", origin, (problem,))]
    inner = Found(_entry_name(entry), data, origin)
    if depth < 1 and sniff(data, inner.name) == "zip":
        return unzip(inner, limits, depth + 1)
    return [inner]


def untnef(found: Found, limits: LimitSettings) -> list[Found]:
    """The files inside an Outlook winmail.dat (TNEF), within the attachment size limit."""
    try:
        parts = TNEF(found.data).attachments
    except Exception:  # noqa: BLE001 - tnefparse raises many kinds on a damaged stream
        return [Found(found.name, found.data, found.origin, (Notice(WarningCode.UNREADABLE_TNEF),))]
    out = []
    for part in parts:
        name = safe_basename(part.long_filename() or part.name or "attachment")
        data = part.data if isinstance(part.data, bytes) else b""
        if len(data) > limits.max_attachment_bytes:
            out.append(Found(name, b"", found.name, (Notice(WarningCode.TOO_LARGE, str(len(data))),)))
        elif data:
            out.append(Found(name, data, found.name))
    return out


def unarchive(found: Found, limits: LimitSettings) -> list[Found]:
    """rar and 7z, through Debian's `unar`/`lsar` when installed: listed first, refused when over the
    limits or with unsafe names, then extracted into a private temporary folder."""
    if not (shutil.which("lsar") and shutil.which("unar")):
        return [Found(found.name, found.data, found.origin, (Notice(WarningCode.ARCHIVE_TOOL_MISSING),))]
    with tempfile.TemporaryDirectory(prefix="mailbot-unar-") as tmp:
        packed = Path(tmp) / "in.bin"
        packed.write_bytes(found.data)
        problem = _listing_problem(packed, len(found.data), limits)
        if problem:
            return [Found(found.name, b"", found.origin, (problem,))]
        out = Path(tmp) / "out"
        done = subprocess.run(
            ["unar", "-q", "-no-directory", "-o", str(out), "-p", "", str(packed)], capture_output=True, timeout=120
        )
        if done.returncode != 0 or not out.exists():
            return [Found(found.name, b"", found.origin, (Notice(WarningCode.UNREADABLE_ARCHIVE),))]
        return [
            Found(safe_basename(f.name), f.read_bytes(), found.name)
            for f in sorted(out.rglob("*"))
            if f.is_file() and not f.is_symlink()
        ]


def _listing_problem(packed: Path, size: int, limits: LimitSettings) -> Notice | None:
    try:
        done = subprocess.run(["lsar", "-j", str(packed)], capture_output=True, timeout=60)
        entries = json.loads(done.stdout or b"{}").get("lsarContents", [])
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return Notice(WarningCode.UNREADABLE_ARCHIVE)
    if done.returncode != 0:
        return Notice(WarningCode.UNREADABLE_ARCHIVE)
    names = [str(e.get("XADFileName", "")) for e in entries]
    if any(e.get("XADIsEncrypted") for e in entries):
        return Notice(WarningCode.ENCRYPTED_ARCHIVE)
    if len(entries) > limits.max_zip_entries:
        return Notice(WarningCode.ARCHIVE_TOO_MANY_ENTRIES)
    total = sum(int(e.get("XADFileSize", 0) or 0) for e in entries)
    if total > limits.max_zip_total_bytes or total > max(size, 1) * limits.max_zip_ratio:
        return Notice(WarningCode.ARCHIVE_TOO_LARGE)
    if any(n.startswith(("/", "\\")) or ".." in PurePosixPath(n.replace("\\", "/")).parts for n in names):
        return Notice(WarningCode.ARCHIVE_UNSAFE_NAMES)
    return None
