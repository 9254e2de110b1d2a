"""Atomic file writes: neither a reader nor a crash mid-write ever leaves half a file under its final name."""

from __future__ import annotations

import contextlib
import os
import re
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
