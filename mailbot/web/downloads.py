"""Files out of the archive: one file by its database id, and a zip of every institution's latest report.

Nothing here takes a path from the request: a file is named by its row id, its path comes from the database,
and the resolved path must lie inside the archive folder (a row pointing elsewhere, or a symlink leading out,
is refused).
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path, PurePosixPath
from typing import IO, cast
from urllib.parse import quote

from sqlalchemy import Engine, select

from mailbot import store
from mailbot.ingest.archive import safe_component
from mailbot.reports.status import CampaignStatus

log = logging.getLogger(__name__)

CHUNK = 64 * 1024

MEDIA_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "docm": "application/vnd.ms-word.document.macroEnabled.12",
    "doc": "application/msword",
    "pdf": "application/pdf",
}


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def attachment(name: str) -> str:
    """A Content-Disposition that keeps a Vietnamese file name (RFC 6266) with an ASCII fallback."""
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=utf-8''{quote(name)}"


def stamp(zone: tzinfo, now: datetime) -> str:
    """The local time in a download's name: ``20231207-0730``."""
    return f"{now.astimezone(zone):%Y%m%d-%H%M}"


def inside_archive(archive_dir: Path, relative: str) -> Path | None:
    """The file ``relative`` names under the archive, or None when it is empty, absolute, escapes or is missing."""
    if not relative or "\x00" in relative:
        return None
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts:
        return None
    root = archive_dir.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


@dataclass(frozen=True)
class Download:
    path: Path
    name: str
    media_type: str


def stored_file(engine: Engine, archive_dir: Path, file_id: int) -> Download | None:
    f = store.files
    with engine.connect() as conn:
        row = conn.execute(select(f.c.name, f.c.kind, f.c.path).where(f.c.id == file_id)).first()
    if row is None:
        return None
    path = inside_archive(archive_dir, row.path)
    if path is None:
        return None
    return Download(path, safe_component(row.name), MEDIA_TYPES.get(row.kind, "application/octet-stream"))


def original_message(engine: Engine, archive_dir: Path, message_pk: int) -> Download | None:
    m = store.messages
    with engine.connect() as conn:
        row = conn.execute(select(m.c.eml_path).where(m.c.id == message_pk)).first()
    if row is None:
        return None
    path = inside_archive(archive_dir, row.eml_path)
    if path is None:
        return None
    return Download(path, f"thu-goc-{message_pk}.eml", "message/rfc822")


# --- the zip of latest reports ------------------------------------------------------------------------


@dataclass(frozen=True)
class ZipEntry:
    arcname: str
    path: Path | None  # None: recorded but missing from the archive
    received_at: datetime


def latest_reports(cs: CampaignStatus, archive_dir: Path) -> list[ZipEntry]:
    """Each institution's latest submission's files, as ``campaign/group/CODE - Name/file``."""
    entries: list[ZipEntry] = []
    top = safe_component(cs.campaign.id)
    for inst in cs.institutions:
        if not inst.submissions:
            continue
        latest = inst.submissions[-1]
        folder = f"{top}/{safe_component(inst.group, 'nhom')}/{safe_component(f'{inst.code} - {inst.name}')}"
        taken: set[str] = set()
        for f in latest.files:
            if not f.path:
                continue
            name = _unique(safe_component(f.name), taken)
            entries.append(ZipEntry(f"{folder}/{name}", inside_archive(archive_dir, f.path), latest.received_at))
    return entries


def _unique(name: str, taken: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})"
    taken.add(candidate.casefold())
    return candidate


class _Pipe:
    """A write-only file that hands what was written to the generator reading it."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.written = 0

    def write(self, data: bytes) -> int:
        if data:
            self.chunks.append(bytes(data))
            self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def stream_zip(entries: list[ZipEntry], zone: tzinfo, note_name: str = "TỆP BỊ THIẾU.txt") -> Iterator[bytes]:
    """The zip, produced piece by piece (memory stays flat whatever the archive's size); times in ``zone``."""
    pipe = _Pipe()
    missing: list[str] = []
    stream = cast(IO[bytes], pipe)  # write-only: zipfile writing to a stream needs only write() and tell()
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for entry in entries:
            if entry.path is None:
                missing.append(entry.arcname)
                continue
            local = entry.received_at.astimezone(zone).timetuple()[:6]
            info = zipfile.ZipInfo(entry.arcname, date_time=max(local, (1980, 1, 1, 0, 0, 0)))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o640 << 16
            try:
                with entry.path.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                    while block := src.read(CHUNK):
                        dst.write(block)
                        if pipe.written and len(pipe.chunks) > 4:
                            yield pipe.take()
            except OSError as exc:
                log.warning("zip: cannot read %s: %s", entry.path, exc)
                missing.append(entry.arcname)
            if pipe.chunks:
                yield pipe.take()
        if missing:
            text = "Các tệp sau đã được ghi nhận nhưng không còn trong kho lưu trữ:\n" + "\n".join(missing) + "\n"
            zf.writestr(note_name, text.encode("utf-8"))
    yield pipe.take()
