"""Serving the web pages with uvicorn: in a thread of `mailbot run` (``[web] enabled``), or on their own (`mailbot web`).

The listening socket is bound before the server starts, in the caller's thread, so that an address already in use is
one clear error at start-up rather than a traceback in a thread, or a service that runs on without its pages.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from mailbot.errors import MailbotError

log = logging.getLogger("mailbot.web")
STOP_SECONDS = 5  # open requests get this long to finish when the service stops


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn listens on it), or one line saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise MailbotError(f"cannot serve the web pages on {host}:{port}: {exc.strerror or exc} ([web] host)") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MailbotError(
            f"cannot serve the web pages on {host}:{port}: {exc.strerror or exc} "
            "(is another program, or `mailbot web`, using it? see [web] port)"
        ) from None
    return sock


def server(app: Any, *, in_thread: bool) -> uvicorn.Server:
    """uvicorn as mailbot wants it: quiet, no Server header, no proxy headers of its own (the application believes
    X-Forwarded-For only from ``[web] trusted_proxies``, see ``web.app.ClientAddress``). In a thread of the service,
    its log lines go through mailbot's logging (plain or JSON) rather than uvicorn's own handlers."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
        timeout_graceful_shutdown=STOP_SECONDS,
        log_config=None if in_thread else LOGGING_CONFIG,
    )
    return uvicorn.Server(config)


class WebThread:
    """The web pages inside the service: started after the service took its lock, stopped with it."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self.sock = bind(host, port)
        self.server = server(app, in_thread=True)
        self.thread = threading.Thread(target=self._run, name="mailbot-web", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # noqa: BLE001 - uvicorn exits with SystemExit: one line, the service goes on
            log.error("the web pages stopped: %s", exc)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(STOP_SECONDS + 5)
        self.sock.close()
