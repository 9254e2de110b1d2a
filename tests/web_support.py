"""What the web tests share: a processed demo folder to copy per test, and `mailbot web` as a real process."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from mailbot import config, pipeline, store
from mailbot.config import Settings
from mailbot.demo.build import build_demo


def processed_demo(root: Path, edit: Callable[[Path], None] | None = None) -> Path:
    """`mailbot demo`'s folder at ``root``, its configuration changed by ``edit`` first, processed once."""
    build_demo(root)
    if edit:
        edit(root / "mailbot.toml")
    settings = config.load(root / "mailbot.toml")
    engine = store.connect(settings.db_url)
    pipeline.run_once(settings, engine)
    store.checkpoint(engine)
    engine.dispose()
    return root


def copy_of(master: Path, tmp_path: Path) -> Settings:
    """A test's own copy of a processed demo folder (building one per test would cost seconds each)."""
    root = tmp_path / "demo"
    shutil.copytree(master, root)
    return config.load(root / "mailbot.toml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(config_path: Path, port: int, *options: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`mailbot [options] web --port PORT` as a real process on loopback; its URL while it runs."""
    log_path = config_path.parent / f"web-{port}.log"
    command = [sys.executable, "-m", "mailbot", "--config", str(config_path), *options, "web", "--port", str(port)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mailbot web did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
