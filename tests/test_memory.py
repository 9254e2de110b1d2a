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


ASIDE_PROBE = """
import logging, os, sys, threading, time
from mailbot import memory

parent = os.getpid()
stop = threading.Event()

def chatter():  # another thread logging all along, as the service's threads do while a digest is built
    while not stop.is_set():
        logging.getLogger("busy").warning("working")

logging.basicConfig(stream=open(os.devnull, "w"))
threading.Thread(target=chatter, daemon=True).start()

def spreadsheet():
    import colorsys  # a module this process never loads: it must stay in the child
    return [colorsys.__name__, os.getpid() != parent, b"x" * 300_000]

name, in_child, payload = memory.aside(spreadsheet)
assert (name, in_child, len(payload)) == ("colorsys", True, 300_000) and "colorsys" not in sys.modules

def dies_in_the_child():
    if os.getpid() != parent:
        os._exit(3)
    return "done here"

assert memory.aside(dies_in_the_child) == "done here"

def hangs_in_the_child():
    if os.getpid() != parent:
        time.sleep(60)
    return "done here after the child ran out of time"

started = time.monotonic()
assert memory.aside(hangs_in_the_child, timeout=1.0).startswith("done here") and time.monotonic() - started < 10

def refuses():
    raise ValueError("a bad file")

try:
    memory.aside(refuses)
except ValueError as exc:
    assert str(exc) == "a bad file"  # raised here, where it can be reported
else:
    raise AssertionError("no error")
stop.set()
children = [p for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().split()[3] == str(parent)]
print("ok", len(children))
"""


def test_work_aside_runs_in_a_child_and_is_done_here_when_the_child_fails_dies_or_hangs() -> None:
    out = subprocess.run([sys.executable, "-c", ASIDE_PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "0"]  # every child collected: no zombie, nothing left running
