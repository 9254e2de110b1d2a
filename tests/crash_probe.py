"""`python -m tests.crash_probe --config X run`: mailbot with phase markers, for the crash tests.

The probe does not change what mailbot does; it only records, in a marker file, when each thread enters
and leaves the steps a crash can interrupt, so that a test which SIGKILLs the process knows exactly where
it was (the markers are plain ``os.write`` calls on an ``O_APPEND`` file: they reach the kernel before
the next instruction and survive the kill).

    MAILBOT_PROBE_FILE   the marker file; one line per event: ``<time> <thread> B|E|H <phase>``
                         (B = entered, E = left, H = holding: see below)
    MAILBOT_PROBE_HOLD   ``<phase>:<n>:<seconds>``: at the n-th occurrence of the phase in this process,
                         write an ``H`` line and sleep there, so that a SIGKILL sent from outside on seeing
                         it lands inside the phase. Holding only widens a window that exists anyway;
                         mailbot's code and order of operations stay the same.

Phases:
    fetch     ``ImapInbox._fetch``: the FETCH of a batch; held once the bytes are in memory, nothing recorded
    parse     parsing and identifying one message; held (hold ``parse``) before parsing it, wherever that runs: a
              reader process forked from a single-threaded `run --once` inherits the probe
    archive   ``archive.write``; held with half of the data in the temporary file
    commit    the transaction that records a message, from the INSERT of its row until COMMIT returned; held
              with every row of the message inserted, before COMMIT
    sync      ``archive.flush_to_disk`` after a batch, and the WAL checkpoint before moving messages recorded earlier
    smtp      ``outbox.Delivery._send_one``: one SMTP transaction and the record that it was sent; held before
              ``sendmail`` (hold ``smtp``) or after the server accepted the message and before it is marked
              sent (hold ``accepted``: the documented duplicate window)
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

PHASES = ("fetch", "parse", "archive", "commit", "sync", "smtp")

_fd: int | None = None
_counts: Counter[str] = Counter()
_lock = threading.Lock()
_hold_phase, _hold_n, _hold_seconds = "", 0, 0.0


def mark(kind: str, phase: str) -> None:
    if _fd is not None:
        os.write(_fd, f"{time.time():.6f} {threading.get_ident()} {kind} {phase}\n".encode())


def _should_hold(phase: str) -> bool:
    """Counts occurrences of a hold point; True at the configured one."""
    if phase != _hold_phase:
        return False
    with _lock:
        _counts[phase] += 1
        return _counts[phase] == _hold_n


def hold(phase: str) -> None:
    if _should_hold(phase):
        mark("H", phase)
        time.sleep(_hold_seconds)


@contextlib.contextmanager
def in_phase(phase: str) -> Iterator[None]:
    mark("B", phase)
    try:
        yield
    finally:
        mark("E", phase)


def _wrap(phase: str, fn: Callable[..., Any], hold_after: str = "", hold_before: str = "") -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with in_phase(phase):
            if hold_before:
                hold(hold_before)
            result = fn(*args, **kwargs)
            if hold_after:
                hold(hold_after)
            return result

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


class _HalfWriter:
    """A file object that writes the first half, holds, then the rest (a crash mid-write)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def write(self, data: bytes) -> int:
        half = len(data) // 2
        self.inner.write(data[:half])
        self.inner.flush()
        mark("H", "archive")
        time.sleep(_hold_seconds)
        return half + self.inner.write(data[half:])

    def __enter__(self) -> _HalfWriter:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self.inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _replace_everywhere(original: Any, replacement: Any) -> int:
    """Put ``replacement`` wherever a loaded mailbot module holds ``original`` (``from x import f`` included)."""
    found = 0
    for name, module in list(sys.modules.items()):
        if not (name == "mailbot" or name.startswith("mailbot.")) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, replacement)
                found += 1
    if not found:
        raise RuntimeError(
            f"crash probe: {original!r} is not used by any mailbot module any more; update tests/crash_probe.py"
        )
    return found


def install() -> None:
    global _fd, _hold_phase, _hold_n, _hold_seconds
    path = os.environ.get("MAILBOT_PROBE_FILE")
    if path:
        _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    spec = os.environ.get("MAILBOT_PROBE_HOLD", "")
    if spec:
        phase, n, seconds = spec.split(":")
        _hold_phase, _hold_n, _hold_seconds = phase, int(n), float(seconds)

    from sqlalchemy import event

    import mailbot.cli  # noqa: F401 - load everything `run` uses before replacing functions in it
    import mailbot.daemon  # noqa: F401
    from mailbot import files, store
    from mailbot.ingest import archive, identify, inbox, parse
    from mailbot.notify import outbox

    inbox.ImapInbox._fetch = _wrap("fetch", inbox.ImapInbox._fetch, hold_after="fetch")  # type: ignore[method-assign]
    _replace_everywhere(parse.parse, _wrap("parse", parse.parse, hold_before="parse"))
    _replace_everywhere(identify.identify, _wrap("parse", identify.identify))

    # archive.write: the phase around it, and (when held) a file object that stops half-way.
    real_write = archive.write
    local = threading.local()

    def write(*args: Any, **kwargs: Any) -> Any:
        with in_phase("archive"):
            local.half = _should_hold("archive")
            try:
                return real_write(*args, **kwargs)
            finally:
                local.half = False

    _replace_everywhere(real_write, write)
    real_fdopen = os.fdopen

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        f = real_fdopen(fd, *args, **kwargs)
        return _HalfWriter(f) if getattr(local, "half", False) else f

    archive_os = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    archive_os.fdopen = fdopen
    files.os = archive_os  # type: ignore[attr-defined]  # archive.write writes through files.write_atomic
    _replace_everywhere(archive.flush_to_disk, _wrap("sync", archive.flush_to_disk))
    _replace_everywhere(store.checkpoint, _wrap("sync", store.checkpoint))

    # The record transaction: from the INSERT of a message row until its COMMIT has returned.
    real_atomic = store.atomic
    watched: set[int] = set()

    def insert_seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MESSAGES") and not conn.info.get("probe_record"):
            conn.info["probe_record"] = True
            mark("B", "commit")

    @contextlib.contextmanager
    def atomic(engine: Any) -> Iterator[Any]:
        if id(engine) not in watched:
            watched.add(id(engine))
            event.listen(engine, "before_cursor_execute", insert_seen)
        record = False
        try:
            with real_atomic(engine) as conn:
                yield conn
                record = bool(conn.info.pop("probe_record", False))
                if record:
                    hold("commit")  # every row of the message inserted, COMMIT not yet issued
        finally:
            if record:
                mark("E", "commit")

    _replace_everywhere(real_atomic, atomic)

    delivery = outbox.Delivery
    delivery._send_one = _wrap("smtp", delivery._send_one, hold_before="smtp")  # type: ignore[method-assign]
    real_mark_sent = delivery._mark_sent

    def mark_sent(*args: Any, **kwargs: Any) -> Any:
        hold("accepted")  # the server said 250; nothing recorded yet
        return real_mark_sent(*args, **kwargs)

    delivery._mark_sent = mark_sent  # type: ignore[method-assign]


def open_phases(text: str) -> set[str]:
    """The phases some thread was inside when the marker file ends (the process was killed there)."""
    stacks: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue  # a line cut by the kill (cannot happen with one write per line, but be safe)
        _, thread, kind, phase = parts
        stack = stacks.setdefault(thread, [])
        if kind == "B":
            stack.append(phase)
        elif kind == "E" and phase in stack:
            del stack[len(stack) - 1 - stack[::-1].index(phase)]
    return {p for stack in stacks.values() for p in stack}


def held(text: str) -> str:
    """The phase an ``H`` line says the process was held in, or ""."""
    for line in reversed(text.splitlines()):
        parts = line.split()
        if len(parts) == 4 and parts[2] == "H":
            return parts[3]
    return ""


if __name__ == "__main__":
    install()
    from mailbot.cli import main

    sys.argv[0] = "mailbot"
    main()
