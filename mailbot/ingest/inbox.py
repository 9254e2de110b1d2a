"""IMAP and Maildir sources: yield, in bounded batches, the messages not yet recorded."""

from __future__ import annotations

import imaplib
import io
import mailbox
import re
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, cast

from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError, MailboxLoginError

from mailbot.config import InboxSettings
from mailbot.errors import InboxAuthError, InboxError
from mailbot.models import RawMail
from mailbot.oauth import TokenCache
from mailbot.tls import client_context

MAX_BATCH_MESSAGES = 100
_MAX_HEADER_BYTES = 1024 * 1024  # enough for any real header; `check` reads no further
_UID_CHUNK = 500  # UIDs per command line, well under servers' line limits
_UID_ITEM = re.compile(rb"UID (\d+)")
_SIZE_ITEM = re.compile(rb"RFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_FROM_ADDRESS = re.compile(rb"[\w.+'-]+@[\w.-]+")
_NETWORK_ERRORS = (OSError, ssl.SSLError, imaplib.IMAP4.abort, imaplib.IMAP4.error, ImapToolsError)

# Given a UIDVALIDITY, the UIDs already recorded for this source under it.
KnownUids = Callable[[int], set[str]]
AnyMailBox = MailBox | MailBoxStartTls | MailBoxUnencrypted


class Inbox(Protocol):
    source: str
    uidvalidity: int
    pending: int

    def __enter__(self) -> Inbox: ...

    def __exit__(self, *exc: object) -> None: ...

    def batches(self, known: KnownUids) -> Iterator[list[RawMail]]: ...

    def present(self, uids: set[str]) -> list[str]: ...

    def move(self, uids: list[str]) -> None: ...

    def wait(self, seconds: float, stop: Callable[[], bool]) -> None: ...

    def recent_headers(self, count: int) -> list[bytes]: ...


IDLE_REFRESH_SECONDS = 10 * 60  # re-issue IDLE well before the 29-minute limit of RFC 2177


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep in short slices so that a signal is noticed within a second."""
    deadline = time.monotonic() + seconds
    while not stop() and time.monotonic() < deadline:
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def open_inbox(
    settings: InboxSettings, max_message_bytes: int = 50 * 1024 * 1024, tokens: TokenCache | None = None
) -> Inbox:
    """The configured source; ``tokens`` lets OAuth2 access tokens outlive this connection (the service's)."""
    if settings.kind == "maildir":
        assert settings.path is not None
        return MaildirInbox(settings.path)
    return ImapInbox(settings, max_message_bytes, tokens)


def arrival(moment: datetime) -> datetime:
    """The arrival time mailbot keeps, compares with deadlines and shows: the server's, to the whole second.

    IMAP's INTERNALDATE has no fraction; a Maildir file's time has one, which is dropped so that a message shown
    as arriving at 17:00:00 is judged as arriving at 17:00:00 (on time for a 17:00 deadline)."""
    return moment.astimezone(UTC).replace(microsecond=0)


def _internaldate(value: str) -> datetime:
    """IMAP's ``05-Dec-2023 09:30:00 +0700`` (the day may be space-padded) as an aware UTC datetime."""
    return datetime.strptime(value.strip(), "%d-%b-%Y %H:%M:%S %z").astimezone(UTC)


class MaildirInbox:
    """A Maildir folder, read in place (for the demo and for replaying an exported mailbox)."""

    def __init__(self, path: Path) -> None:
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise InboxError(f"{path} is not a Maildir folder (no cur/ or new/ inside)")
        self.path = path
        self.source = f"maildir:{path.resolve()}"
        self.uidvalidity = 0
        self.pending = 0  # how many the current pass will fetch (for a progress bar)
        self._box = mailbox.Maildir(path, factory=None, create=False)

    def __enter__(self) -> MaildirInbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self._box.close()

    def batches(self, known: KnownUids) -> Iterator[list[RawMail]]:
        done = known(0)
        keys = sorted((k for k in self._box.iterkeys() if k not in done), key=self._mtime)
        self.pending = len(keys)
        for start in range(0, len(keys), MAX_BATCH_MESSAGES):
            yield [self._read(k) for k in keys[start : start + MAX_BATCH_MESSAGES]]

    def _mtime(self, key: str) -> float:
        # Delivery time: Maildir writers set the file's time to when the message arrived.
        relative: str = self._box._lookup(key)  # type: ignore[attr-defined]  # noqa: SLF001 - mailbox has no public way
        return (self.path / relative).stat().st_mtime

    def _read(self, key: str) -> RawMail:
        arrived = arrival(datetime.fromtimestamp(self._mtime(key), UTC))
        return RawMail(self.source, 0, key, arrived, self._box.get_bytes(key))

    def recent_headers(self, count: int) -> list[bytes]:
        """The header of the ``count`` most recent messages (for `mailbot check`)."""
        keys = sorted(self._box.iterkeys(), key=self._mtime)[-count:] if count > 0 else []
        return [self._header(k) for k in keys]

    def _header(self, key: str) -> bytes:
        header = bytearray()
        with self._box.get_file(key) as handle:
            for line in handle:
                if not line.strip() or len(header) > _MAX_HEADER_BYTES:
                    break
                header += line
        return bytes(header)

    def present(self, uids: set[str]) -> list[str]:
        return []  # a Maildir is left as it is: it is usually an export being replayed

    def move(self, uids: list[str]) -> None:
        return None

    def wait(self, seconds: float, stop: Callable[[], bool]) -> None:
        _sleep(seconds, stop)
        self._box = mailbox.Maildir(self.path, factory=None, create=False)  # see files added meanwhile


class ImapInbox:
    """One IMAP folder; handled mail may be moved to ``processed_folder`` once it is recorded."""

    def __init__(
        self, settings: InboxSettings, max_message_bytes: int = 50 * 1024 * 1024, tokens: TokenCache | None = None
    ) -> None:
        self.settings = settings
        self.max_message_bytes = max_message_bytes
        self.tokens = tokens or TokenCache()
        self.source = settings.source
        self.uidvalidity = 0
        self.pending = 0  # how many the current pass will fetch (for a progress bar)
        self._box: AnyMailBox | None = None

    def __enter__(self) -> ImapInbox:
        self._box = self._login()
        self._select()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._box is not None:
            try:
                self._box.logout()
            except _NETWORK_ERRORS:
                pass  # the connection is gone already; nothing was pending on it
            self._box = None

    @property
    def box(self) -> AnyMailBox:
        if self._box is None:
            raise InboxError("the IMAP connection is not open")
        return self._box

    def _login(self) -> AnyMailBox:
        s = self.settings
        where = f"{s.host}:{s.effective_port}"
        secret = self.tokens.access_token(s, "inbox") if s.auth == "oauth2" else s.password("inbox")
        try:
            box = self._connect()
        except _NETWORK_ERRORS as exc:
            raise InboxError(f"cannot connect to IMAP server {where}: {exc}") from None
        try:
            if s.auth == "oauth2":
                box.xoauth2(s.username, secret, initial_folder=None)
            else:
                box.login(s.username, secret, initial_folder=None)
        except (MailboxLoginError, imaplib.IMAP4.error) as exc:
            # imaplib's authenticate() (XOAUTH2) raises IMAP4.error on NO instead of returning it
            if isinstance(exc, imaplib.IMAP4.abort):
                raise InboxError(f"IMAP login failed at {where}: {exc}") from None
            what = "the OAuth2 token" if s.auth == "oauth2" else "the password"
            self.tokens.forget(s, "inbox")
            raise InboxAuthError(f"IMAP login refused at {where} for user {s.username} (check {what})") from None
        except _NETWORK_ERRORS as exc:
            raise InboxError(f"IMAP login failed at {where}: {exc}") from None
        return box

    def _connect(self) -> AnyMailBox:
        s = self.settings
        if s.security == "ssl":
            return MailBox(s.host, s.effective_port, timeout=s.timeout_seconds, ssl_context=client_context(s.ca_file))
        if s.security == "starttls":
            context = client_context(s.ca_file)
            return MailBoxStartTls(s.host, s.effective_port, timeout=s.timeout_seconds, ssl_context=context)
        return MailBoxUnencrypted(s.host, s.effective_port, timeout=s.timeout_seconds)

    def _select(self) -> None:
        folder = self.settings.folder
        try:
            status = self.box.folder.status(folder, ["UIDVALIDITY"])
            self.box.folder.set(folder)
        except _NETWORK_ERRORS as exc:
            raise InboxError(f"cannot open IMAP folder {folder!r}: {exc}") from None
        self.uidvalidity = int(status["UIDVALIDITY"])

    def batches(self, known: KnownUids) -> Iterator[list[RawMail]]:
        """Search UIDs, skip recorded ones, fetch the rest with BODY.PEEK in size-bounded batches."""
        try:
            done = known(self.uidvalidity)
            self._announced()  # whatever the server announced so far, this search finds
            uids = [u for u in self.box.uids("ALL") if u not in done]
            self.pending = len(uids)
            sizes = dict(self._sizes(sorted(uids, key=int)))
            for batch in self._size_batches(self._fair_order(list(sizes)), sizes):
                fetched = self._fetch([u for u in batch if sizes[u] <= self.max_message_bytes]) + self._headers_only(
                    [u for u in batch if sizes[u] > self.max_message_bytes], sizes
                )
                rank = {uid: i for i, uid in enumerate(batch)}
                yield sorted(fetched, key=lambda m: rank[m.uid])  # the server answers in its own order
        except _NETWORK_ERRORS as exc:
            raise InboxError(f"IMAP connection lost: {exc}") from None

    def _fair_order(self, uids: list[str]) -> list[str]:
        """Round-robin over senders, so a flood from one address cannot delay every other school."""
        queues: dict[str, list[str]] = {}
        for uid, sender in self._senders(uids):
            queues.setdefault(sender, []).append(uid)
        order: list[str] = []
        while queues:
            for sender in list(queues):
                order.append(queues[sender].pop(0))
                if not queues[sender]:
                    del queues[sender]
        return order

    def _senders(self, uids: list[str]) -> Iterator[tuple[str, str]]:
        for start in range(0, len(uids), _UID_CHUNK):
            chunk = uids[start : start + _UID_CHUNK]
            _, data = self.box.client.uid("FETCH", ",".join(chunk), "(UID BODY.PEEK[HEADER.FIELDS (FROM)])")
            found = {}
            for item in data:
                if isinstance(item, tuple) and len(item) == 2:
                    uid = _UID_ITEM.search(item[0])
                    if uid:
                        found[uid.group(1).decode()] = _FROM_ADDRESS.findall(item[1].lower())[-1:] or [b""]
            yield from ((u, found.get(u, [b""])[0].decode(errors="replace")) for u in chunk)

    def _size_batches(self, uids: list[str], sizes: dict[str, int]) -> Iterator[list[str]]:
        budget, used = self.settings.batch_bytes, 0
        batch: list[str] = []
        for uid in uids:
            size = min(sizes[uid], self.max_message_bytes)
            if batch and (used + size > budget or len(batch) >= MAX_BATCH_MESSAGES):
                yield batch
                batch, used = [], 0
            batch.append(uid)
            used += size
        if batch:
            yield batch

    def _headers_only(self, uids: list[str], sizes: dict[str, int]) -> list[RawMail]:
        """Messages over the size limit: only their header is fetched, so that they can be recorded and held."""
        if not uids:
            return []
        typ, data = self.box.client.uid("FETCH", ",".join(uids), "(UID INTERNALDATE BODY.PEEK[HEADER])")
        found = (self._raw(item[0], item[1]) for item in data if isinstance(item, tuple) and len(item) == 2)
        return [RawMail(m.source, m.uidvalidity, m.uid, m.internaldate, m.data, sizes[m.uid]) for m in found if m]

    def _sizes(self, uids: list[str]) -> Iterator[tuple[str, int]]:
        for start in range(0, len(uids), _UID_CHUNK):
            chunk = uids[start : start + _UID_CHUNK]
            _, data = self.box.client.uid("FETCH", ",".join(chunk), "(UID RFC822.SIZE)")
            sizes: dict[str, int] = {}
            for item in data:
                line = (item[0] if isinstance(item, tuple) else item) or b""
                uid, size = _UID_ITEM.search(line), _SIZE_ITEM.search(line)
                if uid and size:
                    sizes[uid.group(1).decode()] = int(size.group(1))
            yield from ((u, sizes[u]) for u in chunk if u in sizes)  # expunged meanwhile: skip

    def _fetch(self, uids: list[str]) -> list[RawMail]:
        if not uids:
            return []
        typ, data = self.box.client.uid("FETCH", ",".join(uids), "(UID INTERNALDATE BODY.PEEK[])")
        if typ != "OK":
            raise InboxError(f"IMAP FETCH failed: {data!r}"[:300])
        found = (self._raw(item[0], item[1]) for item in data if isinstance(item, tuple) and len(item) == 2)
        return [m for m in found if m is not None]

    def _raw(self, head: bytes, body: bytes) -> RawMail | None:
        uid, when = _UID_ITEM.search(head), _INTERNALDATE.search(head)
        if not uid:
            return None
        arrived = arrival(_internaldate(when.group(1).decode()) if when else datetime.now(UTC))
        return RawMail(self.source, self.uidvalidity, uid.group(1).decode(), arrived, body)

    @property
    def can_idle(self) -> bool:
        return "IDLE" in self.box.client.capabilities

    def wait(self, seconds: float, stop: Callable[[], bool]) -> None:
        """Until the server announces new mail (IDLE), ``seconds`` pass, or ``stop()`` says so."""
        if not self.can_idle:
            _sleep(seconds, stop)
            self.box.client.noop()  # keeps the session alive and lets the server report changes
            return
        deadline = time.monotonic() + IDLE_REFRESH_SECONDS  # the server wakes us; `seconds` is for polling
        try:
            if self._announced():
                return  # new mail was announced in the answer to a command after the last search: IDLE won't again
            self.box.idle.start()
            try:
                while not stop() and time.monotonic() < deadline:
                    # imaplib may already hold "* n EXISTS" (sent with "+ idling") where select() cannot see it.
                    lines = self._buffered_lines() or self.box.idle.poll(timeout=1.0)
                    if self._announced() or any(b"EXISTS" in line for line in lines):
                        break
            finally:
                self.box.idle.stop()
        except _NETWORK_ERRORS as exc:
            raise InboxError(f"IMAP connection lost while waiting: {exc}") from None

    def _announced(self) -> bool:
        """Whether the server announced new mail ("* n EXISTS") since the last call, and forget it.

        A server announces a message once, in the answer to whatever command comes next: mail that arrives while a
        pass fetches what its search found is announced in a FETCH's answer, where imaplib files it away, and
        never again in the IDLE that follows."""
        return bool(self.box.client.untagged_responses.pop("EXISTS", None))

    def _buffered_lines(self) -> list[bytes]:
        """Lines imaplib has read from the socket but not handed out yet."""
        client = self.box.client
        lines: list[bytes] = []
        while self._has_buffered(client):
            lines.append(client._get_line())  # noqa: SLF001 - imaplib has no public way to read a pending line
        return lines

    @staticmethod
    def _has_buffered(client: imaplib.IMAP4) -> bool:
        sock, old = client.sock, client.sock.gettimeout()
        sock.settimeout(0)  # peek must not wait for the network, only look at the buffer
        try:
            return bool(cast(io.BufferedReader, client.file).peek(1)[:1])  # the socket's file, opened "rb"
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        finally:
            sock.settimeout(old)

    def recent_headers(self, count: int) -> list[bytes]:
        """The header of the ``count`` most recent messages, fetched with BODY.PEEK: nothing is marked read."""
        try:
            uids = sorted(self.box.uids("ALL"), key=int)[-count:] if count > 0 else []
            if not uids:
                return []
            _, data = self.box.client.uid("FETCH", ",".join(uids), "(UID BODY.PEEK[HEADER])")
        except _NETWORK_ERRORS as exc:
            raise InboxError(f"IMAP connection lost: {exc}") from None
        return [item[1] for item in data if isinstance(item, tuple) and len(item) == 2]

    def present(self, uids: set[str]) -> list[str]:
        """Which of these recorded UIDs are still in the folder (a move to retry)."""
        if not self.settings.processed_folder or not uids:
            return []
        try:
            return sorted(uids & set(self.box.uids("ALL")), key=int)
        except _NETWORK_ERRORS as exc:
            raise InboxError(f"IMAP connection lost: {exc}") from None

    def move(self, uids: list[str]) -> None:
        """Move recorded messages to the processed folder (created when missing)."""
        target = self.settings.processed_folder
        if not target or not uids:
            return
        try:
            if not self.box.folder.exists(target):
                self.box.folder.create(target)
            self.box.move(uids, target)
        except _NETWORK_ERRORS as exc:
            raise InboxError(f"cannot move messages to {target!r}: {exc}") from None
