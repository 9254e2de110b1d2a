"""One LibreOffice kept running, converting .doc files to .docx on request (runs under a Python that has ``uno``).

Started by ``mailbot.documents.convert`` as ``python3 uno_worker.py SOFFICE``, in a session of its own. It starts
LibreOffice listening on a private pipe with a private profile, says ``office PGID`` on stdout (LibreOffice's
process group, for the parent to kill when it hangs, and a private folder for the files, removed when it stops)
and ``ready`` once it listens, then reads ``SOURCE<TAB>TARGET`` lines on stdin and
answers each with ``ok`` or ``error WHY``. It stops, LibreOffice with it, when stdin closes or when the process that
started it is gone (a SIGKILLed mailbot must leave no LibreOffice behind).

Standard library and ``uno`` only: this file runs under the system Python, outside mailbot's environment.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

WATCH_SECONDS = 0.2
PR_SET_CHILD_SUBREAPER = 36
CONNECT_EVERY_SECONDS = 0.1


def _start_office(soffice: str, profile: Path, pipe: str) -> subprocess.Popen[bytes]:
    command = [
        soffice,
        f"-env:UserInstallation={profile.as_uri()}",
        "--headless",
        "--invisible",
        "--nologo",
        "--nodefault",
        "--norestore",
        "--nolockcheck",
        f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext",
    ]
    # A group of its own: LibreOffice's launcher forks soffice.bin, and the whole group is killed at once.
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _become_subreaper() -> None:
    """LibreOffice's launcher forks soffice.bin: made our child when the launcher dies, it is reaped here, not left
    a zombie under an init that may not reap (a container's)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the launcher's parent is init, as usual
        pass


def _stop(office: subprocess.Popen[bytes], profile: Path) -> None:
    try:
        os.killpg(office.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # every process of the group, the launcher's orphans included
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.02)
    shutil.rmtree(profile.parent, ignore_errors=True)


def _watch_parent(office: subprocess.Popen[bytes], profile: Path) -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        _stop(office, profile)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _desktop(pipe: str, office: subprocess.Popen[bytes]) -> Any:
    import uno  # type: ignore[import-not-found]  # noqa: PLC0415 - only the system Python has it

    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    while True:  # the parent decides how long a start may take, and kills us past that
        try:
            ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
            return ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        except Exception:  # noqa: BLE001 - NoConnectException until LibreOffice listens
            if office.poll() is not None:
                raise RuntimeError(f"LibreOffice exited with {office.returncode}") from None
            time.sleep(CONNECT_EVERY_SECONDS)


def _props(**values: object) -> tuple[Any, ...]:
    from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]  # noqa: PLC0415

    out = []
    for name, value in values.items():
        prop = PropertyValue()
        prop.Name, prop.Value = name, value
        out.append(prop)
    return tuple(out)


def _convert(desktop: Any, source: Path, target: Path) -> None:
    document = desktop.loadComponentFromURL(
        source.as_uri(), "_blank", 0, _props(Hidden=True, ReadOnly=True, MacroExecutionMode=0)
    )
    if document is None:
        raise RuntimeError("LibreOffice could not open the file")
    try:
        document.storeToURL(target.as_uri(), _props(FilterName="MS Word 2007 XML", Overwrite=True))
    finally:
        document.close(True)


def main(soffice: str) -> int:
    _become_subreaper()
    profile = Path(tempfile.mkdtemp(prefix="mailbot-office-")) / "profile"
    pipe = f"mailbot-{os.getpid()}-{time.monotonic_ns()}"
    office = _start_office(soffice, profile, pipe)
    _watch_parent(office, profile)
    # Its process group, for the parent to kill if it hangs; the folder for the files, removed with the profile.
    print(f"office {office.pid} {profile.parent}", flush=True)
    try:
        desktop = _desktop(pipe, office)
        print("ready", flush=True)
        for line in sys.stdin:
            source, _, target = line.rstrip("\n").partition("\t")
            try:
                _convert(desktop, Path(source), Path(target))
                answer = "ok"
            except Exception as exc:  # noqa: BLE001 - a file LibreOffice cannot read: an answer, not a crash
                answer = "error " + " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            print(answer, flush=True)
    except Exception as exc:  # noqa: BLE001 - tell the parent in one line, then stop
        print("error " + " ".join(f"{type(exc).__name__}: {exc}".split())[:300], flush=True)
        return 1
    finally:
        _stop(office, profile)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a plain termination still stops LibreOffice
    sys.exit(main(sys.argv[1]))
