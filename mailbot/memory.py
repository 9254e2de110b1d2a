"""How a lasting process (the service) uses the C library's memory: few malloc arenas, and freed memory handed back
to the system after a stretch of work, so that its footprint follows its load rather than its busiest hour.

CPython frees a batch's messages, documents and parse trees, but glibc keeps the pages they occupied for reuse, in
one arena per thread that ever allocated (the inbox loop, the scheduler, the deliveries, the web pages' workers).
``mallopt(M_ARENA_MAX)`` caps those arenas and ``malloc_trim(0)`` returns every whole free page of every arena, not
only the top of the heap. Elsewhere (musl, macOS) there are no such calls and nothing is done.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

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
