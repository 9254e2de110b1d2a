"""The service's use of the C library's memory (mailbot.memory), checked in a process of its own."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import re
from mailbot import memory

def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024

assert memory.limit_arenas()
blocks = [bytes(2000) + bytes([i % 256]) for i in range(60_000)]  # ~120 MB of blocks from malloc, not obmalloc
kept = blocks[::50]  # a few stay, scattered over the heap: it cannot shrink from its top
del blocks
before = rss()
assert memory.trim()
print(before, rss(), len(kept))
"""


def test_freed_memory_goes_back_to_the_system_even_when_the_heap_is_fragmented() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60)
    before, after, kept = out.stdout.split()
    assert float(before) > 100 and float(after) < float(before) - 80 and kept == "1200"
