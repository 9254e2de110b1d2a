"""pytest fixtures running a real capturing SMTP server (aiosmtpd).

Load with ``pytest_plugins = ["tests.servers.smtp_fixtures"]`` in conftest.py.

* ``smtp_sink`` -- a started plain :class:`~tests.servers.smtp.SmtpSink` (no AUTH/TLS).
* ``smtp_factory`` -- ``smtp_factory(auth=..., starttls=..., ...)`` returns a
  started sink with those options; every sink it made is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.servers.smtp import Captured, SmtpSink

__all__ = ["Captured", "SmtpSink", "smtp_factory", "smtp_sink"]

SmtpFactory = Callable[..., SmtpSink]


@pytest.fixture
def smtp_factory() -> Iterator[SmtpFactory]:
    sinks: list[SmtpSink] = []

    def make(**options: Any) -> SmtpSink:
        sink = SmtpSink(**options)
        sinks.append(sink)
        return sink.start()

    try:
        yield make
    finally:
        for sink in sinks:
            sink.stop()


@pytest.fixture
def smtp_sink(smtp_factory: SmtpFactory) -> SmtpSink:
    return smtp_factory()
