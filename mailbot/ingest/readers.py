"""Read fetched messages (MIME parsing, Word reports) in worker processes, so that both cores work during a backlog;
a worker also writes the original of each message it read to the archive (``read_many``).

The main process keeps fetching, identifying and recording, in arrival order; only the CPU-heavy reading of a batch
moves to the workers, while the main process fetches the next batch and records the previous one. A process with
no other thread (`run --once`) forks its workers: they share its memory (code, roster) page for page. The service
has threads (scheduler, web) that must never be forked mid-work: its workers come from a fork server, a fresh
interpreter that has imported the readers once and shares that with them.

A worker that dies (killed, out of memory, a crash in a C library) loses nothing: the pool is started again and
each message it had not answered is read again, alone; a message whose reading kills a worker twice is handed back
as an error, to be set aside for staff like any message that cannot be read. Small batches (the service's usual
one or two new messages) and very large messages are read in the main process: there a worker would cost more
than it saves (start-up latency, a copy of a large message). So is a share of a batch that no worker has begun
when the main process would otherwise wait for it: the two sides stay balanced. What the main process reads is
noted on disk while it reads it (``Guard``): a crash there sends those messages to a worker from then on, never
into a loop of crashes.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import multiprocessing
import os
import threading
import time
import traceback
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from mailbot.config import LimitSettings, Settings
from mailbot.files import process_alive, write_atomic
from mailbot.ingest import archive
from mailbot.ingest.parse import parse
from mailbot.models import InboundMail, RawMail

log = logging.getLogger("mailbot.ingest.readers")

MIN_POOLED_BATCH = 4  # fewer messages than this are read in the main process: no worker start-up on the way
MAX_POOLED_BYTES = 4 * 1024 * 1024  # a larger message is read in the main process: no copies to and from a worker
SHARE_BYTES = 256 * 1024  # messages handed to a worker as one task, about this much mail at a time
PIPE_BYTES = 1024 * 1024  # each pipe to and from the workers (kernel memory, Linux's default maximum for a user)
SUSPECTS_KEPT = 1000  # fingerprints of messages that crashed a process reading them in place, the latest kept
LEFT_TO_WORKERS = 4  # shares per worker of the newest batch never taken back to read here (see ``_take_one``)
TASKS_PER_WORKER = 50  # a service's worker is replaced after this many shares: whatever it leaked goes with it
WORKER_DIED = "the worker process reading it died twice"
DIED_IN_PLACE = "mailbot stopped while reading it (a crash of the process), and no worker process may read it"


@dataclass(frozen=True)
class Read:
    """A message read: its contents, or why it could not be read (a bug on this message, never the others)."""

    mail: InboundMail | None
    error: str = ""  # "ValueError: ..." when reading raised
    trace: str = ""  # the traceback, for the log
    eml_kept: bool = False  # the worker wrote the original to the archive (``archive.eml_path``)


def read_one(raw: RawMail, limits: LimitSettings) -> Read:
    """Parse one message; an exception becomes the error of this message (runs in a worker or in the main process)."""
    try:
        return Read(parse(raw, limits))
    except Exception as exc:  # noqa: BLE001 - any bug on one message must not stop the others
        return Read(None, f"{type(exc).__name__}: {exc}", traceback.format_exc())


def _watch_parent() -> None:
    """In a worker: exit when the process that started it is gone (a SIGKILLed service must leave no reader behind;
    a forked worker holds both ends of its task pipe and would otherwise wait for work forever)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _shares(raws: list[RawMail]) -> Iterator[list[RawMail]]:
    """A batch in shares of about ``SHARE_BYTES``: few tasks per batch, and never a whole batch's readings held at once
    by a worker (the pickled answer and the answer itself both stay in memory until it is sent)."""
    share: list[RawMail] = []
    size = 0
    for raw in raws:
        if share and size + len(raw.data) > SHARE_BYTES:
            yield share
            share, size = [], 0
        share.append(raw)
        size += len(raw.data)
    if share:
        yield share


def _widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Pipes of ``PIPE_BYTES`` between the pool and its workers, rather than 64 KB.

    The pool's side of each pipe is served by a thread of this process, which waits for the GIL while this process
    records a batch: a worker's answer (a share's Word files, some 200 KB) or its next task (raw mail) then passed
    64 KB at a time, and the worker stood still between two (about 1 s of a 2,000-message backlog). Best effort:
    a system that refuses the size keeps its default, and a Python whose pool is built otherwise is left as it is."""
    for queue in (getattr(pool, "_call_queue", None), getattr(pool, "_result_queue", None)):
        for end in (getattr(queue, "_reader", None), getattr(queue, "_writer", None)):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                fcntl.fcntl(end.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[union-attr]


def read_many(raws: list[RawMail], limits: LimitSettings, archive_dir: Path | None = None) -> list[Read]:
    """A share of a batch, read in a worker: one task and one answer for many messages (each message a task of its
    own would cost two thread switches in the main process per message, and its threads wait for the GIL).
    ``archive_dir``: each message read is also written there as its .eml (see ``_keep_original``)."""
    return [_keep_original(read_one(raw, limits), raw, archive_dir) for raw in raws]


def _keep_original(read: Read, raw: RawMail, archive_dir: Path | None) -> Read:
    """The original written to the archive by the worker, as the main process would write it before recording it.

    Its path depends on its bytes and arrival alone, so it needs no verdict; creating the file (mostly the kernel's
    work) then leaves the main process, the one that records and so paces a backlog. A message written here and then
    recorded by nobody (a duplicate, a run stopped) is the same as a crash between archive and record: the file
    waits, and is written again with the same bytes. A failure (a full disk) is left for the main process to meet
    and report, as before."""
    if archive_dir is None or read.mail is None:
        return read
    try:
        archive.write(archive_dir, archive.eml_path(raw.internaldate, raw.fingerprint), raw.data)
    except OSError:
        return read
    return replace(read, eml_kept=True)


@dataclass
class Share:
    """Part of a batch handed to one worker: its messages and the worker's answer to come."""

    raws: list[RawMail]
    future: Future[list[Read]]
    answer: list[Read] | None = None  # its readings, once come (from the worker, or read here instead)


@dataclass
class Pending:
    """A batch handed to the readers: each message with the share it is read in, or None (read in place)."""

    items: list[tuple[RawMail, Share | None]]
    generation: int  # the pool the futures belong to
    shares: list[Share] = field(default_factory=list)  # each once, in order


class _Handed(threading.local):
    """One inbox thread's batches in reading: a share is only ever taken by the thread that waits for its batch.
    Held weakly: a batch its caller dropped unrecorded (a pass asked to stop) is not kept, nor read here."""

    def __init__(self) -> None:
        self.batches: list[weakref.ref[Pending]] = []


class Guard:
    """What this process is reading in place, on disk while it reads it, so that a crash there cannot loop.

    A worker that dies is replaced and its messages read again, each alone; the main process has no such net. So
    before it reads a message itself (a small batch, a large message, a share it takes to help), it writes the
    message's fingerprint to ``reading.<pid>`` in the data folder, and clears it after. A process that dies
    there (a crash in a C library, the OOM killer) leaves its file behind: the next one moves what it lists to
    ``suspects``, and a suspect is never read in place again, only by a worker (or, without workers, not at all:
    it is set aside for staff)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.suspects = self._adopt(folder)
        self._path = folder / f"reading.{os.getpid()}"
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._lock = threading.Lock()  # a service's inbox threads may each read in place at the same moment
        self._reading: dict[int, list[str]] = {}  # thread → the fingerprints it is reading; the file lists them all

    @staticmethod
    def _adopt(folder: Path) -> frozenset[str]:
        """The suspects known, with those of every process that died reading in place."""
        listed = folder / "suspects"
        for left in folder.glob("reading.*"):
            pid = left.suffix[1:]
            if not pid.isdigit() or (int(pid) != os.getpid() and process_alive(int(pid))):
                continue  # a live process's (ours, if any, is an earlier process's that had the same number)
            found = left.read_text(errors="replace").split()
            if found:
                log.warning("a process died reading %d message(s) in place; only a worker reads them now", len(found))
                with listed.open("a") as out:
                    out.write("".join(f"{fingerprint}\n" for fingerprint in found))
            left.unlink(missing_ok=True)
        return frozenset(_kept(listed)) if listed.exists() else frozenset()

    def reading(self, raws: list[RawMail]) -> None:
        self._note([raw.fingerprint for raw in raws])

    def done(self) -> None:
        self._note([])

    def _note(self, fingerprints: list[str]) -> None:
        """This thread's messages noted (or, empty, cleared), beside those other threads are reading."""
        with self._lock:
            self._reading[threading.get_ident()] = fingerprints
            text = "".join(f"{fingerprint}\n" for found in self._reading.values() for fingerprint in found).encode()
            os.pwrite(self._fd, text, 0)
            os.ftruncate(self._fd, len(text))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._path.unlink(missing_ok=True)


def _kept(listed: Path) -> list[str]:
    """The suspects listed, the latest ``SUSPECTS_KEPT`` of them: the file is cut back when it holds more (a message
    that crashed a process that long ago is not worth a look-up for every message read since)."""
    lines = listed.read_text(errors="replace").split()
    found = list(dict.fromkeys(reversed(lines)))[:SUSPECTS_KEPT][::-1]
    if len(lines) > SUSPECTS_KEPT:
        write_atomic(listed, "".join(f"{fingerprint}\n" for fingerprint in found).encode(), 0o600)
    return found


def _unbegun(pending: Pending) -> list[Share]:
    """A batch's shares that no worker has begun, in order."""
    return [s for s in pending.shares if s.answer is None and not s.future.running() and not s.future.done()]


class Readers:
    """Worker processes reading messages; ``workers=0`` reads everything in the calling process."""

    def __init__(
        self,
        limits: LimitSettings,
        workers: int,
        *,
        lasting: bool = False,
        guard: Guard | None = None,
        archive_dir: Path | None = None,
    ) -> None:
        """``lasting``: the readers of a service, entered before its threads start and kept for its life (its
        workers are forked then, sharing its memory; one that dies is replaced from a fork server). ``guard``:
        where what is read in this process is noted while it is read (see ``Guard``). ``archive_dir``: where the
        workers write the originals they read (``Read.eml_kept``)."""
        self.limits = limits
        self.archive_dir = archive_dir
        self.workers = workers
        self.lasting = lasting
        self.guard = guard
        self.suspects = guard.suspects if guard else frozenset()
        self._pool: ProcessPoolExecutor | None = None
        self._fork = threading.active_count() == 1  # decided once: a broken pool's own thread must not change it
        self._starting = threading.Lock()  # a service's inbox threads share one pool
        self.restarts = 0  # how many times a worker died (the generation of the current pool)
        self._handed = _Handed()  # per inbox thread, its batches submitted and not yet all yielded by ``results``

    @classmethod
    def of(cls, settings: Settings, *, lasting: bool = False) -> Readers:
        """The configured readers, noting what is read in place in the data folder."""
        guard = Guard(settings.data_dir)
        workers = settings.inbox.reader_processes
        return cls(settings.limits, workers, lasting=lasting, guard=guard, archive_dir=settings.archive_dir)

    def __enter__(self) -> Readers:
        if self.workers > 0 and self._fork:
            # Fork now, while this process holds no mail: a worker forked later would keep a private copy of
            # whatever batch was in memory then. (A fork server's workers start lean whenever they start.)
            self._pool_now().submit(int).result()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self.guard is not None:
            self.guard.close()

    def submit(self, batch: list[RawMail]) -> Pending:
        """Start reading a batch, in shares spread over the workers; its results come, in order, from ``results``."""
        pooling = self.workers > 0 and len(batch) >= MIN_POOLED_BATCH
        pooled = [raw for raw in batch if self.workers and (pooling and self._poolable(raw) or self._suspect(raw))]
        shares = [self._share(share) for share in _shares(pooled)]
        share_of = {raw.uid: share for share in shares for raw in share.raws}
        pending = Pending([(raw, share_of.get(raw.uid)) for raw in batch], self.restarts, shares)
        self._handed.batches.append(weakref.ref(pending))
        return pending

    def results(self, pending: Pending) -> Iterator[Read]:
        """Each message's reading, in batch order, waiting for the workers as needed."""
        try:
            for raw, share in pending.items:
                if share is None:
                    yield self._here([raw])[0]
                    continue
                while share.answer is None and not share.future.done() and self._take_one():
                    pass  # rather than wait, this process reads a share the workers have not begun, from the last
                if share.answer is None:
                    share.answer = self._answer(share, pending.generation)
                yield share.answer[share.raws.index(raw)]
        finally:
            handed = self._handed.batches
            handed[:] = [ref for ref in handed if (kept := ref()) is not None and kept is not pending]

    def _take_one(self) -> bool:
        """Read here a share handed over that no worker has begun (its task withdrawn); False if none.

        When the workers are behind, this process would otherwise wait for them with nothing to do. It takes the
        last share of the batch it waits for, then the last of the batch fetched after it, but not the first
        ``LEFT_TO_WORKERS`` shares per worker of that newer batch: the workers go on with those while this process
        records. Neither what is read nor the order in which it is recorded changes."""
        waiting = [_unbegun(pending) for ref in self._handed.batches if (pending := ref()) is not None]
        if len(waiting) > 1:  # the newest batch's first ones stay (of the last batch, every share may be taken)
            waiting[-1] = waiting[-1][LEFT_TO_WORKERS * self.workers :]
        for share in (share for shares in waiting for share in reversed(shares)):
            if not any(map(self._suspect, share.raws)) and share.future.cancel():
                share.answer = self._here(share.raws)
                return True
        return False

    def _suspect(self, raw: RawMail) -> bool:
        return bool(self.suspects) and raw.fingerprint in self.suspects

    def _here(self, raws: list[RawMail]) -> list[Read]:
        """Messages read in this process, noted on disk while they are; a suspect is not read but set aside (there
        is no worker to read it, or it would have gone to one)."""
        if self.guard is None:
            return [read_one(raw, self.limits) for raw in raws]
        self.guard.reading(raws)
        try:
            return [Read(None, DIED_IN_PLACE) if self._suspect(raw) else read_one(raw, self.limits) for raw in raws]
        finally:
            self.guard.done()

    @staticmethod
    def _poolable(raw: RawMail) -> bool:
        return not raw.oversized and len(raw.data) <= MAX_POOLED_BYTES

    def _pool_now(self) -> ProcessPoolExecutor:
        with self._starting:
            return self._pool or self._start_pool()

    def _start_pool(self) -> ProcessPoolExecutor:
        if self._fork:  # no other thread to catch mid-work: fork, sharing this process's memory
            # Objects alive now are left out of cyclic collections, here and in the workers: a collection
            # writes to every object it visits, which would copy every shared page into each process.
            gc.freeze()
            self._pool = ProcessPoolExecutor(
                self.workers, multiprocessing.get_context("fork"), initializer=_watch_parent
            )
        else:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            self._pool = ProcessPoolExecutor(
                self.workers, context, initializer=_watch_parent, max_tasks_per_child=TASKS_PER_WORKER
            )
        _widen_pipes(self._pool)
        return self._pool

    def _share(self, raws: list[RawMail]) -> Share:
        try:
            return Share(raws, self._pool_now().submit(read_many, raws, self.limits, self.archive_dir))
        except BrokenProcessPool:  # a worker died while idle (killed, out of memory): not these messages' doing
            self._restart(raws[0])
            return Share(raws, self._pool_now().submit(read_many, raws, self.limits, self.archive_dir))

    def _answer(self, share: Share, generation: int) -> list[Read]:
        try:
            return share.future.result()
        except BrokenProcessPool:
            pass
        if generation == self.restarts:  # the current pool broke; else it was replaced already
            self._restart(share.raws[0])
        return [self._alone(raw) for raw in share.raws]

    def _alone(self, raw: RawMail) -> Read:
        """A message of a share whose worker died, read again alone: if the pool breaks now, it is the cause."""
        try:
            return self._share([raw]).future.result()[0]
        except BrokenProcessPool:
            self._restart(raw)
            return Read(None, WORKER_DIED)

    def _restart(self, raw: RawMail) -> None:
        """A worker died: the broken pool goes, a new one starts at the next submission."""
        with self._starting:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
        self.restarts += 1
        self._fork = self._fork and not self.lasting  # a service's threads run by now: never fork them mid-work
        log.warning("a reader process died; uid %s and the messages after it are read again", raw.uid)
