"""How a lasting process (the service) keeps its memory small: few malloc arenas, freed memory handed back to the
system after a stretch of work (so that its footprint follows its load rather than its busiest hour), and the
occasional heavy job (a digest's spreadsheet) done in a short-lived child, so that its libraries never load here.

CPython frees a batch's messages, documents and parse trees, but glibc keeps the pages they occupied for reuse, in
one arena per thread that ever allocated (the inbox loop, the scheduler, the deliveries, the web pages' workers).
``mallopt(M_ARENA_MAX)`` caps those arenas and ``malloc_trim(0)`` returns every whole free page of every arena, not
only the top of the heap. Elsewhere (musl, macOS) there are no such calls and nothing is done.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import os
import pickle
import select
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast

T = TypeVar("T")

ARENAS = 2  # the service's threads mostly wait; two arenas keep contention low and the heap small
_M_ARENA_MAX = -8  # from glibc's malloc.h


@functools.cache
def _libc() -> Any:
    return ctypes.CDLL(None)  # the C library this process runs on


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas; call before the threads start. False where there is no way to."""
    try:
        return bool(_libc().mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def trim() -> bool:
    """Return the C library's free pages to the system (a few milliseconds); False where there is no way to."""
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


# --- work done in a child -------------------------------------------------------------------------------------

ASIDE_SECONDS = 300.0  # a child still working after this long is stopped, and the work done here instead


def aside(work: Callable[[], T], timeout: float = ASIDE_SECONDS) -> T:
    """``work()`` in a forked child, its result sent back pickled: what the work imports and allocates (openpyxl
    and a workbook, for a digest's tracker) leaves with the child instead of staying in a lasting process.

    The child only computes and writes to a pipe, then leaves without running any clean-up, logging or stdio (it
    may have been forked beside the service's other threads, whose locks it must not need). Where no child can be
    had, or it fails, dies or takes longer than ``timeout``, the work is done here, as it would have been."""
    if not hasattr(os, "fork"):
        return work()
    try:
        reading, writing = os.pipe()
        pid = os.fork()
    except OSError:
        return work()
    if pid == 0:  # the child
        os.close(reading)
        _child(work, writing)
    os.close(writing)
    answer = None
    try:
        answer = _read_answer(reading, time.monotonic() + timeout)
    finally:
        os.close(reading)
        finished = _reap(pid, stop=answer is None)
    if not answer or not finished:
        return work()
    return cast(T, pickle.loads(answer))


def _child(work: Callable[[], object], writing: int) -> NoReturn:
    # No cyclic collection in a child that lives for seconds: a collection writes to every object it visits, which
    # would copy the parent's whole heap, page by page, into the child.
    gc.disable()
    status = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a warning would be printed to stderr, whose lock may be held
            view = memoryview(pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL))
        while view:
            view = view[os.write(writing, view) :]
        status = 0
    except BaseException:  # noqa: BLE001, S110 - the parent sees no answer and does the work itself, and reports
        pass
    finally:
        os._exit(status)


def _read_answer(reading: int, deadline: float) -> bytes | None:
    """All the child wrote until it left (empty: it failed or died), or None when it had not left by ``deadline``."""
    chunks: list[bytes] = []
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([reading], [], [], left)
        if not ready:
            break
        chunk = os.read(reading, 1 << 20)
        if not chunk:  # its end of the pipe closed: the child has left
            return b"".join(chunks)
        chunks.append(chunk)
    return None


def _reap(pid: int, *, stop: bool) -> bool:
    """Whether the child finished its work (exit status 0), once collected; ``stop``: it is still at work (out of
    time), and is killed first."""
    if stop:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
