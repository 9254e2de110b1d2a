"""A TCP relay in front of a test server that can also play dead: for outage tests.

    relay = StallRelay(sink.host, sink.port).start()   # point the client at relay.port
    relay.mode = "hang"    # accept connections and never say a word (the client times out)
    relay.mode = "drop"    # accept connections and close them at once
    relay.mode = "pass"    # relay to the real server again (connections made while hanging stay hung)
    relay.stop()

Only the standard library; one thread per connection direction.
"""

from __future__ import annotations

import contextlib
import socket
import threading

HOST = "127.0.0.1"


class StallRelay:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = HOST
        self.mode = "pass"
        self.accepted = 0  # connections accepted, whatever the mode
        self.hung = 0  # connections left without an answer
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.port = 0

    def start(self) -> StallRelay:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, name="stall-relay", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()
            self._sockets.clear()

    def __enter__(self) -> StallRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _keep(self, s: socket.socket) -> None:
        with self._lock:
            self._sockets.append(s)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            mode = self.mode
            if mode == "drop":
                client.close()
            elif mode == "hang":
                self.hung += 1
                self._keep(client)  # never read, never answered; closed at stop()
            else:
                threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()  # the real server is down: the client sees the connection closed
            return
        server.settimeout(None)
        self._keep(client)
        self._keep(server)
        threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()
        self._pipe(client, server)

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
