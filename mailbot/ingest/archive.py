"""Files on disk: browsable folders, safe names, atomic writes (by a thread of their own during a batch)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path, PurePosixPath

from mailbot.files import PARTIAL_NAME, process_alive, write_atomic
from mailbot.models import Institution
from mailbot.text import nfc

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
_MAX_NAME_BYTES = 150  # well under the 255-byte limit of common file systems, room for the prefix
FILE_MODE = 0o640
DIR_MODE = 0o750


def safe_component(name: str, fallback: str = "file") -> str:
    """A single path component from any text: NFC, no separators or control characters, bounded length."""
    clean = _UNSAFE.sub("_", nfc(name)).strip(" .")
    if clean in ("", ".", ".."):
        clean = fallback
    stem, dot, ext = clean.rpartition(".")
    if not dot or len(ext) > 10:
        stem, ext = clean, ""
    while len(stem.encode("utf-8")) + len(ext) + 1 > _MAX_NAME_BYTES:
        stem = stem[:-1]
    return f"{stem}.{ext}" if ext else stem


def institution_folder(campaign_id: str, inst: Institution) -> PurePosixPath:
    """campaign / group / "CODE - Name": what staff browse to find a school's reports."""
    return PurePosixPath(
        safe_component(campaign_id), safe_component(inst.group, "group"), safe_component(f"{inst.code} - {inst.name}")
    )


def review_folder(arrived: datetime, zone: tzinfo) -> PurePosixPath:
    """``_review/2023-12-05``: the day in the department's time zone, as staff count days."""
    return PurePosixPath("_review", arrived.astimezone(zone).strftime("%Y-%m-%d"))


def eml_path(arrived: datetime, fingerprint: str) -> PurePosixPath:
    return PurePosixPath("_messages", arrived.strftime("%Y"), arrived.strftime("%m"), f"{fingerprint}.eml")


def file_name(arrived: datetime, zone: tzinfo, fingerprint: str, index: int, name: str) -> str:
    """``20231201-091200_<fp>_0_<name>``: the arrival time as staff see it everywhere else (the department's zone).

    Unique per message and position (the fingerprint, not the time, guarantees it, even across a clock change),
    so a resubmission never overwrites an earlier version.
    """
    return f"{arrived.astimezone(zone).strftime('%Y%m%d-%H%M%S')}_{fingerprint[:8]}_{index}_{safe_component(name)}"


def write(root: Path, relative: PurePosixPath, data: bytes) -> None:
    """Write atomically (temporary name, rename): a crash leaves no partial file under the final name.

    A file written again (an earlier attempt crashed before its database commit) gets the same bytes: the paths
    are unique per message. Durability against a power cut comes from ``flush_to_disk()`` once per batch, before
    the batch's messages are moved on the server (one sync per batch instead of one per file)."""
    target = _inside(root, relative)
    folder = os.path.dirname(target)
    if folder not in _made:
        _make_folder(folder)
    try:
        write_atomic(target, data, FILE_MODE)
    except FileNotFoundError:  # its folder was removed since (by hand): made again
        _make_folder(folder)
        write_atomic(target, data, FILE_MODE)


WriteFile = Callable[[Path, PurePosixPath, bytes], None]


THREADED_FILES = 16  # fewer files than this are written in the calling thread (see ``Writer``)


class Writer:
    """Archive files written by a thread of their own while the caller goes on recording: creating and filling a
    file is mostly the kernel's work (~0.3 ms for a report on a VM), which then overlaps the rows and receipts of
    the same batch instead of preceding them. ``wait`` before relying on the files.

    Only for a backlog's batch (``files`` of ``THREADED_FILES`` or more): the service's usual one or two messages
    are written in place, as a thread started per batch would cost more than it saves and keep a memory arena of
    its own (some MB of the service's footprint)."""

    def __init__(self, files: int) -> None:
        threaded = files >= THREADED_FILES
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="archive") if threaded else None
        self._pending: list[Future[None]] = []

    def write(self, root: Path, relative: PurePosixPath, data: bytes) -> None:
        if self._pool is None:
            write(root, relative, data)
        else:
            self._pending.append(self._pool.submit(write, root, relative, data))

    def wait(self) -> None:
        """Every file handed over so far written (atomically, as ``write``); the first failure raised (OSError)."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # no thread outlives the batch (worker processes are forked from this one)


def _make_folder(path: str) -> None:
    os.makedirs(path, mode=DIR_MODE, exist_ok=True)
    _made.add(path)


_made: set[str] = set()  # folders this process made or found: a backlog writes thousands of files into a few


def sweep_partial(root: Path) -> int:
    """Remove temporary files left by a process that died while writing them (kill -9, power cut)."""
    removed = 0
    for folder, _, names in os.walk(root):
        for name in names:
            match = PARTIAL_NAME.match(name)
            if match and not process_alive(int(match.group(1))):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed


def flush_to_disk() -> None:
    """Everything written so far, archive files and the database's journal alike, on disk (sync(2))."""
    os.sync()


def move(root: Path, old: str, new: PurePosixPath) -> None:
    source, target = _inside(root, PurePosixPath(old)), _inside(root, new)
    os.makedirs(os.path.dirname(target), mode=DIR_MODE, exist_ok=True)
    if os.path.exists(source):
        os.replace(source, target)


def _inside(root: Path, relative: PurePosixPath) -> str:
    """A relative archive path under the archive's root, refusing anything that would land outside it.

    The path is normalised as text, not resolved on disk: every component of it is made by mailbot (never a
    symlink), and resolving costs a system call per component of every file of a backlog."""
    base = _resolved(root)
    target = os.path.normpath(os.path.join(base, relative))
    if not target.startswith(base + os.sep):
        raise ValueError(f"refusing a path outside the archive: {relative}")
    return target


@lru_cache(maxsize=8)
def _resolved(root: Path) -> str:
    """The archive's real path: the same for every file of a run (resolving costs a system call per component)."""
    return str(root.resolve())
