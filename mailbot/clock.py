"""The one business clock: the system time, or the moment given with ``--now`` (previews, dry runs, tests).

Lateness, reminders, the digest's day and what pages show follow this clock. Things that must follow real time
whatever ``--now`` says (outbox claim leases, web sessions, the record's own timestamps) use ``store.now()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Clock:
    """``fixed``: every reading is that moment (a naive one is read in ``zone``). ``offset``: the system time shifted,
    for a service started with ``--now`` whose time must go on from there (see :meth:`running`)."""

    zone: ZoneInfo
    fixed: datetime | None = None
    offset: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.fixed is not None and self.fixed.tzinfo is None:
            object.__setattr__(self, "fixed", self.fixed.replace(tzinfo=self.zone))

    def now(self) -> datetime:
        """Now, aware, in UTC."""
        if self.fixed is not None:
            return self.fixed.astimezone(UTC)
        return datetime.now(UTC) + self.offset

    def local(self) -> datetime:
        """Now in the configured zone (the department's calendar day and hours)."""
        return self.now().astimezone(self.zone)

    def running(self) -> Clock:
        """A clock that starts at the fixed moment and then moves on with real time (the service's jobs and timers
        need time to pass); the system clock as it is."""
        if self.fixed is None:
            return self
        return Clock(self.zone, None, self.fixed - datetime.now(UTC))
