"""Atomic file writes: neither a reader nor a crash mid-write ever leaves half a file under its final name."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

from mailbot.errors import MailbotError

# The temporary name names the writing process, so that what a dead one left can be told from a write in progress.
PARTIAL_NAME = re.compile(r"^\..+\.(\d+)\.tmp$")


def write_atomic(target: Path | str, data: bytes, mode: int = 0o666) -> Path:
    """Write ``data`` to ``target`` under a temporary name in the same folder, then rename it into place.

    ``mode`` applies to a new file (less the umask). The folder must exist."""
    folder, name = os.path.split(target)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(target)


def create_once(target: Path, data: bytes, mode: int = 0o600) -> bytes:
    """The contents of ``target``, written with ``data`` first if the file does not exist yet.

    Processes starting together on a new data folder all read the same whole file: it appears under its name
    complete (hard-linked from a finished temporary file), and the first link wins. The folder must exist."""
    if os.path.exists(target):
        return Path(target).read_bytes()
    folder, name = os.path.split(target)
    # The thread in the name too: two threads of one process may create the same file.
    tmp = os.path.join(folder, f".{name}.{threading.get_ident()}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return Path(target).read_bytes()


def save_output(target: Path, data: bytes) -> Path:
    """A file staff asked for (a workbook, a document): its folder made, written atomically, and a failure
    as one clear error rather than a traceback."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(target, data)
    except OSError as exc:
        raise MailbotError(f"cannot write {target}: {exc.strerror or exc}") from None


def process_alive(pid: int) -> bool:
    """Whether a process of this number runs (one of another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != 0
