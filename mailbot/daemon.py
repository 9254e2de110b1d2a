"""`mailbot run`: watch the inbox (IDLE, else polling), run the scheduled jobs, ride out outages and signals; and,
with ``[web] enabled``, serve the web pages from the same process (one service runs everything)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from mailbot import config, memory, pipeline, stamping, store
from mailbot.clock import Clock
from mailbot.config import Settings
from mailbot.errors import AlreadyRunning, AuthError, ConfigError, MailbotError, one_line
from mailbot.ingest import archive, legacy
from mailbot.ingest.inbox import Inbox, open_inbox
from mailbot.ingest.readers import Readers
from mailbot.notify import dispatch
from mailbot.notify.compose import Templates, load_templates
from mailbot.notify.outbox import Delivery
from mailbot.oauth import TokenCache

if TYPE_CHECKING:
    from mailbot.web.serve import WebThread

log = logging.getLogger("mailbot.daemon")
MAX_BACKOFF = 300.0  # seconds between reconnection attempts, at most
AUTH_BACKOFF = 600.0  # a refused password is retried slowly: someone has to fix it


class Lock:
    """One `mailbot run` per data folder: an exclusive lock on a pid file, released when the process dies."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "mailbot.pid"
        self._fd: int | None = None

    def __enter__(self) -> Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(f"another mailbot run (pid {other}) is already using {self.path.parent}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


STAMP_EVERY_SECONDS = 20  # how often the PDFs recorded meanwhile are checked (documents/pdfcheck.py)
HEARTBEAT_SECONDS = 30  # the web pages call a service silent after a few missed beats


def backoff(attempt: int, *, auth: bool = False) -> float:
    return AUTH_BACKOFF if auth else min(MAX_BACKOFF, 2.0 ** min(attempt, 16))


@dataclass
class Daemon:
    config_path: Path
    start: datetime | None = None  # `--now`: the service's clock starts there and runs on (previews and tests)
    on_message: Callable[[pipeline.Outcome], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    wakes: list[threading.Event] = field(default_factory=list)  # per inbox: a resync asked by the scheduler
    reload: threading.Event = field(default_factory=threading.Event)
    _deliver_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.settings: Settings = config.load(self.config_path)
        self.engine = store.connect(self.settings.db_url)
        self.templates: Templates = load_templates(self.settings)
        self.clock = Clock(self.settings.zone, self.start).running()
        self.tokens = TokenCache()  # OAuth2 access tokens outlive reconnections, for the inbox and the outbox
        self.delivery = Delivery.of(self.settings, self.engine, self.tokens)
        self.wakes = [threading.Event() for _ in self.settings.inboxes]
        self.readers: Readers | None = None  # the service's reader processes, while it runs
        self.started = store.now()
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{int(self.started.timestamp())}"

    # --- life cycle -------------------------------------------------------------------------

    def run(self) -> int:
        # One service per SQLite database; on PostgreSQL any number of workers share the work (the database
        # dedupes messages, claims outbox rows and lets one worker at a time run a scheduled job).
        single = self.engine.dialect.name == "sqlite"
        memory.limit_arenas()  # before the threads start: each would otherwise keep a heap of its own for good
        with Lock(self.settings.data_dir) if single else contextlib.nullcontext():
            self._signals()
            # The reader processes first, while this process has no other thread: they are forked once and share
            # its memory for the service's life (a pool per pass would cost a fork server and its start each time).
            with Readers.of(self.settings, lasting=True) as readers:
                self.readers = readers
                web = self._web()  # bound here: an address in use stops the start with one line, before anything runs
                try:
                    self._run()
                finally:
                    if web:
                        web.stop()
                        log.info("web pages stopped")
        return 0

    def _web(self) -> WebThread | None:
        """The web pages in a thread of the service, when ``[web] enabled``; their clock is the service's."""
        w = self.settings.web
        if not w.enabled:
            return None
        from mailbot.web.app import create_app  # Starlette and the pages load only when they are served
        from mailbot.web.serve import WebThread

        web = WebThread(create_app(self.settings, self.engine, clock=self.clock.now), w.host, w.port)
        web.start()
        log.info("web pages on http://%s:%d%s/", w.host, w.port, w.path_prefix)
        return web

    def _run(self) -> None:
        pipeline.import_roster(self.settings, self.engine)  # only if the file changed: never reverts a CLI import
        swept = archive.sweep_partial(self.settings.archive_dir)
        if swept:
            log.info("removed %d partial file(s) left by an interrupted run", swept)
        scheduler = self._scheduler()
        self.heartbeat()
        scheduler.start()
        log.info(
            "mailbot started (pid %d), watching %s", os.getpid(), ", ".join(i.label for i in self.settings.inboxes)
        )
        try:
            self.catch_up()
            self.watch_all()
        finally:
            scheduler.shutdown(wait=True)
            try:
                store.worker_stopped(self.engine, self.worker)
            except Exception:  # noqa: BLE001 - a database down at exit: the row just ages on the pages
                log.debug("could not remove the heartbeat row", exc_info=True)
            log.info("mailbot stopped")

    def _signals(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s: finishing the message in hand", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda _signum, _frame: self.hup())

    def hup(self) -> None:
        """SIGHUP: the inbox loops reload the roster and templates before they look at the inbox again."""
        self.reload.set()
        self.wake()

    def _scheduler(self) -> BackgroundScheduler:
        s, zone = self.settings, self.settings.zone
        scheduler = BackgroundScheduler(
            timezone=zone, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
        )
        scheduler.add_job(self.deliver, IntervalTrigger(seconds=s.outbox.deliver_every_seconds), id="deliver")
        scheduler.add_job(self.run_job, _at(s.notify.remind_at, zone), args=["remind"], id="remind")
        scheduler.add_job(self.run_job, _at(s.notify.digest_at, zone), args=["digest"], id="digest")
        scheduler.add_job(self.wake, IntervalTrigger(minutes=s.inbox.resync_minutes), id="resync")
        scheduler.add_job(self.verify_stamps, IntervalTrigger(seconds=STAMP_EVERY_SECONDS), id="stamps")
        scheduler.add_job(self.convert_docs, IntervalTrigger(seconds=STAMP_EVERY_SECONDS), id="docs")
        scheduler.add_job(self.heartbeat, IntervalTrigger(seconds=HEARTBEAT_SECONDS), id="heartbeat")
        return scheduler

    # --- scheduled work ---------------------------------------------------------------------

    def deliver(self) -> None:
        """One delivery round; whatever goes wrong is logged in one line and the next round tries again."""
        with self._deliver_lock:
            try:
                self.delivery.deliver_due(self.clock.now())
            except MailbotError as exc:
                log.error("outbox delivery: %s", exc)
            except Exception as exc:  # noqa: BLE001 - the service must outlive any error of one round
                log.error(
                    "outbox delivery failed, next round in %.0f s: %s",
                    self.settings.outbox.deliver_every_seconds,
                    one_line(exc),
                )
                log.debug("outbox delivery failure", exc_info=True)

    def verify_stamps(self) -> None:
        """The PDFs recorded since the last round checked as stamped copies, in the scheduler's thread: the inbox
        loop and its receipts never wait for a scan's OCR."""
        try:
            while not self.stop.is_set() and stamping.verify_pending(
                self.settings, self.engine, self.stop.is_set, clock=self.clock, templates=self.templates
            ):
                pass
        except Exception as exc:  # noqa: BLE001 - a failed round must not stop the scheduler or the service
            log.error("stamped-copy check failed, next round in %d s: %s", STAMP_EVERY_SECONDS, one_line(exc))
            log.debug("stamped-copy check failure", exc_info=True)

    def convert_docs(self) -> None:
        """The legacy .doc files that were too slow to convert while their message was read (ingest/legacy.py),
        in the scheduler's thread: their receipts have gone out already."""
        try:
            while not self.stop.is_set() and legacy.convert_pending(
                self.settings, self.engine, self.stop.is_set, clock=self.clock
            ):
                pass
        except Exception as exc:  # noqa: BLE001 - a failed round must not stop the scheduler or the service
            log.error("legacy .doc conversion failed, next round in %d s: %s", STAMP_EVERY_SECONDS, one_line(exc))
            log.debug("legacy .doc conversion failure", exc_info=True)

    def heartbeat(self) -> None:
        """This service's sign of life in the database, for the web pages (a failure waits for the next beat)."""
        watched = "; ".join(i.label for i in self.settings.inboxes)
        try:
            store.heartbeat(
                self.engine,
                self.worker,
                host=socket.gethostname(),
                pid=os.getpid(),
                inbox=watched,
                started=self.started,
            )
        except Exception as exc:  # noqa: BLE001 - the database may be down: the inbox loop reports that
            log.debug("heartbeat not recorded: %s", one_line(exc))

    def run_job(self, name: str) -> None:
        """Reminders or digest for today, once: the database remembers what ran, across restarts."""
        now = self.clock.now()
        key = f"{name}:{now.astimezone(self.settings.zone):%Y-%m-%d}"
        try:
            with store.exclusive(self.engine, key) as mine:
                if mine:
                    self._job(name, key, now)
        except MailbotError as exc:
            log.error("%s job failed: %s", name, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a failed round must not stop the scheduler or the service
            log.error("%s job failed: %s", name, one_line(exc))
            log.debug("%s job failure", name, exc_info=True)
            return
        self.deliver()

    def _job(self, name: str, key: str, now: datetime) -> None:
        with self.engine.connect() as conn:
            if store.job_done(conn, key):
                return
        if name == "remind":
            planned = dispatch.queue_notices(self.settings, self.engine, now)
            log.info("reminders: %d notice(s) queued", sum(p.status == "pending" for p in planned))
        elif self.settings.notify.staff:
            queued, _ = dispatch.queue_digest(self.settings, self.engine, now)
            log.info("digest: %s", queued.status)
        with store.atomic(self.engine) as conn:
            store.mark_job(conn, key, now)

    def catch_up(self) -> None:
        """A job whose time passed today while mailbot was stopped runs now, once."""
        local = self.clock.local()
        for name, at in (("digest", self.settings.notify.digest_at), ("remind", self.settings.notify.remind_at)):
            hour, minute = map(int, at.split(":"))
            if (local.hour, local.minute) >= (hour, minute):
                self.run_job(name)

    # --- the inbox --------------------------------------------------------------------------

    def wake(self) -> None:
        """Every inbox looks for new mail now (a resync, a reload)."""
        for event in self.wakes:
            event.set()

    def watch_all(self) -> None:
        """Each configured inbox watched by its own loop (a thread each when there are several); returns on stop."""
        if len(self.settings.inboxes) == 1:
            self.watch(0)
            return
        threads = [
            threading.Thread(target=self.watch, args=(n,), name=f"inbox-{n + 1}", daemon=True)
            for n in range(len(self.settings.inboxes))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def watch(self, n: int) -> None:
        """Connect to inbox ``n``, serve it, and on any outage log one line, wait (exponential, capped) and start
        again."""
        source, attempt = self.settings.inboxes[n], 0
        while not self.stop.is_set():
            try:
                with open_inbox(source, self.settings.limits.max_message_bytes, self.tokens) as box:
                    if attempt:
                        log.info("inbox reachable again after %d failed attempt(s): %s", attempt, source.label)
                    attempt = 0
                    self.serve(box, n)
            except MailbotError as exc:  # the inbox is down or refuses us, the disk or the database is unavailable
                attempt += 1
                delay = backoff(attempt, auth=isinstance(exc, AuthError))
                log.warning("%s; next attempt in %.0f s", exc, delay)
                _sleep(delay, self.stop)
            except Exception:  # noqa: BLE001 - a bug must not stop the service: log it whole, pause, go on
                attempt += 1
                delay = backoff(attempt)
                log.exception("unexpected error; the inbox loop starts again in %.0f s", delay)
                _sleep(delay, self.stop)

    def serve(self, box: Inbox, n: int = 0) -> None:
        wake = self.wakes[n]
        while not self.stop.is_set():
            # Cleared before looking, not after: a wake (a SIGHUP, a resync) that comes during the pass must end
            # the wait that follows it, or a reload would wait for the next mail (CI once waited in vain).
            wake.clear()
            if self.reload.is_set():
                self._reload()
            ctx = pipeline.make_context(self.settings, self.engine, self.clock, templates=self.templates)
            report = pipeline.RunReport()
            pipeline.drain(ctx, box, report, self.on_message, should_stop=self.stop.is_set, readers=self.readers)
            if report.fetched:
                self.deliver()
                memory.trim()  # a pass's messages are gone: their pages go back before the service waits
            box.wait(self.settings.inboxes[n].poll_seconds, lambda: self.stop.is_set() or wake.is_set())

    def _reload(self) -> None:
        """SIGHUP: the roster file if it changed (imported, never reverting a CLI import) and the templates again
        (a broken template keeps the old ones)."""
        self.reload.clear()
        try:
            problems = pipeline.import_roster(self.settings, self.engine)
            self.templates = load_templates(self.settings)
            log.info("reloaded roster and templates%s", f" ({len(problems)} roster problem(s))" if problems else "")
        except (ConfigError, MailbotError) as exc:
            log.error("reload failed, keeping the previous roster/templates: %s", exc)


def _at(hhmm: str, zone: object) -> CronTrigger:
    hour, minute = hhmm.split(":")
    return CronTrigger(hour=int(hour), minute=int(minute), timezone=zone)


def _sleep(seconds: float, stop: threading.Event) -> None:
    stop.wait(seconds)
