"""Legacy Word 97-2003 (.doc) files converted to .docx by LibreOffice, when it is installed.

A LibreOffice start costs a second or more of CPU, so each process keeps one running (``documents/uno_worker.py``,
under a system Python that has ``uno``) and hands it file after file. Each conversion has a time limit: past it the
converter is killed (its whole process group) and the next conversion starts a new one. A start that is merely slow
is not killed by a short reading budget (the next conversion finds it ready), only past ``STARTUP_SECONDS``.
Where no Python with ``uno`` is found, each file is converted by a LibreOffice of its own, as before.

Several processes (reader processes, ``reports compile``, the service) each have their own converter and profile;
in one process a lock lets one conversion run at a time. The converter stops with the process that started it,
even a SIGKILLed one (it watches its parent)."""

from __future__ import annotations

import atexit
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Literal

UNO_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")  # the Python that LibreOffice's ``uno`` is built for
STARTUP_SECONDS = 20.0  # a converter not listening after this long is hung: killed, the next call starts another
WORKER = Path(__file__).with_name("uno_worker.py")
OFFICE_SOCKETS = Path("/tmp")  # where LibreOffice puts its single-instance socket (sal/osl/unx/pipe.cxx: fixed)


@dataclass(frozen=True)
class Conversion:
    """A conversion's result: the .docx, or None with whether the time limit was the reason."""

    docx: bytes | None
    timed_out: bool = False


def converter() -> str | None:
    """The LibreOffice program, or None when it is not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def doc_to_docx(data: bytes, timeout: float = 120.0) -> bytes | None:
    """A legacy .doc converted by LibreOffice (headless) when it is installed; None otherwise or on failure."""
    return convert(data, timeout).docx


def convert(data: bytes, timeout: float) -> Conversion:
    """A legacy .doc converted within ``timeout`` seconds (waiting for the converter to start included)."""
    soffice = converter()
    if not soffice:
        return Conversion(None)
    running = _this_process_converter(soffice)
    if running is None:
        return Conversion(_cold(soffice, data, timeout))
    return running.convert(data, timeout)


_lock = threading.Lock()
_converters: dict[tuple[int, str], Converter | None] = {}


def _this_process_converter(soffice: str) -> Converter | None:
    """This process's converter (a forked reader must not talk to its parent's); None without a ``uno`` Python."""
    key = (os.getpid(), soffice)
    with _lock:
        if key not in _converters:
            python = uno_python()
            _converters[key] = Converter(soffice, python) if python else None
        return _converters[key]


@atexit.register
def close_all() -> None:
    """Stop this process's converters (at exit; their workers also notice a vanished parent by themselves)."""
    with _lock:
        mine = [c for (pid, _), c in _converters.items() if pid == os.getpid() and c is not None]
    for running in mine:
        running.close()


def uno_python() -> str | None:
    for python in UNO_PYTHONS:
        if os.access(python, os.X_OK):
            try:
                done = subprocess.run([python, "-c", "import uno"], capture_output=True, timeout=30, check=False)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if done.returncode == 0:
                return python
    return None


class Converter:
    """One LibreOffice listening, driven through ``uno_worker.py``; started on first use, restarted after a hang."""

    def __init__(self, soffice: str, python: str) -> None:
        self.soffice = soffice
        self.python = python
        self.lock = threading.Lock()
        self._worker: subprocess.Popen[bytes] | None = None
        self._office_group = 0  # LibreOffice's process group, as soon as the worker has started it
        self._listening = False
        self._folder = Path()  # the worker's private folder (removed when it stops), where the files go
        self._started = 0.0
        self._buffer = b""
        self.starts = 0  # how many converters this process started (the first and each restart)

    def convert(self, data: bytes, timeout: float) -> Conversion:
        deadline = time.monotonic() + timeout
        if not self.lock.acquire(timeout=max(timeout, 0.0)):  # another thread's conversion holds it past our budget
            return Conversion(None, timed_out=True)
        try:
            return self._convert(data, deadline)
        finally:
            self.lock.release()

    def _convert(self, data: bytes, deadline: float) -> Conversion:
        state = self._ready(deadline)
        if state == "hung":  # killed while starting: once more, with a fresh LibreOffice, if time is left
            state = self._ready(deadline)
        if state != "ready":
            return Conversion(None, timed_out=state != "failed")
        source, target = self._folder / "report.doc", self._folder / "report.docx"
        target.unlink(missing_ok=True)
        source.write_bytes(data)
        assert self._worker is not None and self._worker.stdin is not None  # _ready started it
        try:
            self._worker.stdin.write(f"{source}\t{target}\n".encode())
            self._worker.stdin.flush()
        except OSError:
            self._kill()
            return Conversion(None)
        answer = self._line(deadline)
        if not answer:  # hung (None) or died (""): never wait on it again
            self._kill()
            return Conversion(None, timed_out=answer is None)
        if answer != "ok" or not target.exists():
            return Conversion(None)
        return Conversion(target.read_bytes())

    def _ready(self, deadline: float) -> Literal["ready", "starting", "hung", "failed"]:
        """Whether the converter listens, starting it if needed: "starting" when the deadline came first (it goes
        on starting, for the next conversion), "hung" when its start took over STARTUP_SECONDS (it was killed),
        "failed" when it could not start at all."""
        if self._worker is not None and self._worker.poll() is not None:
            self._kill()  # died between two conversions
        if self._worker is None:
            self._start()
        if self._listening:
            return "ready"
        answer = self._line(min(deadline, self._started + STARTUP_SECONDS))
        if answer is not None and answer.startswith("office "):
            _, group, folder = answer.split(" ", 2)
            self._office_group, self._folder = int(group), Path(folder)
            answer = self._line(min(deadline, self._started + STARTUP_SECONDS))
        if answer == "ready":
            self._listening = True
            return "ready"
        if answer is not None:  # an error, or gone without a word
            self._kill()
            return "failed"
        if time.monotonic() >= self._started + STARTUP_SECONDS:
            self._kill()
            return "hung"
        return "starting"

    def _start(self) -> None:
        self._buffer = b""
        self._started = time.monotonic()
        self.starts += 1
        sweep_stale_office_sockets()
        # A session of its own: killing it never touches mailbot's group, and a terminal's ^C reaches mailbot only.
        self._worker = subprocess.Popen(
            [self.python, str(WORKER), self.soffice],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _line(self, deadline: float) -> str | None:
        """The worker's next line; None when it is not there by the deadline, "" when the worker has gone."""
        assert self._worker is not None and self._worker.stdout is not None
        fd = self._worker.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return ""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace").strip()

    def _kill(self) -> None:
        """The worker and its LibreOffice, at once (a hung LibreOffice does not listen to a polite request)."""
        worker, self._worker = self._worker, None
        group, self._office_group = self._office_group, 0
        self._listening = False
        if worker is None:
            return
        for pgid in (group, worker.pid):  # LibreOffice's group (if known), then the worker's own
            if pgid:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        worker.wait()
        for stream in (worker.stdin, worker.stdout):
            if stream is not None:
                stream.close()
        if self._folder.name.startswith("mailbot-office-"):  # killed, it could not remove its folder itself
            shutil.rmtree(self._folder, ignore_errors=True)
        self._folder = Path()

    def close(self) -> None:
        with self.lock:
            worker = self._worker
            if worker is not None and worker.poll() is None and worker.stdin is not None:
                try:
                    worker.stdin.close()  # the worker stops LibreOffice and removes its profile
                    worker.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self._kill()


def sweep_stale_office_sockets(folder: Path = OFFICE_SOCKETS) -> int:
    """Remove the single-instance sockets that LibreOffices of this user left when they were killed.

    Each LibreOffice listens on ``/tmp/OSL_PIPE_<uid>_SingleOfficeIPC_<hash of its profile>``, and a converter's
    also on ``/tmp/OSL_PIPE_<uid>_mailbot-<pid>-<n>`` (``uno_worker.py``); it removes them when it exits. One killed
    (hung, or mailbot SIGKILLed with it) leaves them behind, and with a fresh profile and pipe per converter the
    names never come back for LibreOffice to clean itself. A socket nobody listens on any more refuses a
    connection: that one goes, as LibreOffice would remove it; one that answers belongs to a running LibreOffice."""
    removed = 0
    uid = os.getuid()
    for path in chain(folder.glob(f"OSL_PIPE_{uid}_SingleOfficeIPC_*"), folder.glob(f"OSL_PIPE_{uid}_mailbot-*")):
        try:
            if not stat.S_ISSOCK(path.lstat().st_mode):
                continue  # connecting to a plain file is refused too: only a socket is judged by the answer
        except OSError:
            continue
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except ConnectionRefusedError:
                path.unlink(missing_ok=True)
                removed += 1
            except OSError:
                pass  # not a socket, or gone meanwhile: not ours to judge
    return removed


def _cold(soffice: str, data: bytes, timeout: float) -> bytes | None:
    """One LibreOffice for one file, with a private profile (several conversions may run at once)."""
    with tempfile.TemporaryDirectory(prefix="mailbot-doc-") as tmp:
        source = Path(tmp) / "report.doc"
        source.write_bytes(data)
        profile = Path(tmp) / "profile"
        command = [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "docx",
            "--outdir",
            tmp,
            str(source),
        ]
        try:
            subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except (subprocess.TimeoutExpired, OSError):
            return None
        converted = Path(tmp) / "report.docx"
        return converted.read_bytes() if converted.exists() else None
