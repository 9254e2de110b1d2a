"""The TLS settings mailbot verifies its mail servers with: made once per process (and per version of a CA file),
not at every connection.

Loading the system's certificate store costs ~15 ms of CPU and its memory churns the heap; a service delivering a
burst of receipts opens an SMTP connection per delivery round, and that load was ~40% of its main process's work
(py-spy over bench/burst.py). A context is safe to share between threads and connections. A CA file named in the
configuration is read again when it changes on disk (a renewed private CA), as a new connection would have read it.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificates and host names verified against ``ca_file``, else against the system's store."""
    if ca_file is None:
        return _context(None, None)
    try:
        stat = ca_file.stat()
        version: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None  # unreadable: ``create_default_context`` reports it, as it always did
    return _context(str(ca_file), version)


@functools.lru_cache(maxsize=8)
def _context(ca_file: str | None, _version: tuple[int, int] | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)
