"""pytest fixtures running a real Dovecot IMAP server.

Load with ``pytest_plugins = ["tests.servers.fixtures"]`` in conftest.py (or
``from tests.servers.fixtures import *``).

* ``dovecot`` -- function scoped: a fresh, empty server for each test.
* ``dovecot_session`` -- session scoped: one shared server; tests using it
  should work in their own folders / users since state persists.
* ``oauth_server`` -- a started OAuth2 token + introspection endpoint
  (:class:`tests.servers.oauth.OAuthServer`).
* ``dovecot_oauth2`` -- like ``dovecot``, but also accepting XOAUTH2 and
  OAUTHBEARER bearer tokens that ``oauth_server`` knows.

Both yield a started :class:`tests.servers.dovecot.Dovecot`.  When a test
using them fails, the tail of the Dovecot log is added to the report.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.servers.dovecot import Dovecot, DovecotError
from tests.servers.oauth import OAuthServer, oauth_server

__all__ = [
    "dovecot",
    "dovecot_oauth2",
    "dovecot_session",
    "make_dovecot",
    "oauth_server",
    "pytest_runtest_makereport",
]


def _new_root() -> str:
    # Not pytest's tmp_path: that lives under a 0700 directory the
    # unprivileged Dovecot processes (dovecot, vmail) cannot traverse, and its
    # long names overflow unix socket paths.
    return tempfile.mkdtemp(prefix="dovecot-")


def _start(**kwargs) -> Dovecot:
    root = _new_root()
    server = Dovecot(root, **kwargs)
    try:
        server.start()
    except DovecotError as exc:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        # A missing/broken server is a failure, never a skip.
        pytest.fail(f"cannot start Dovecot for tests: {exc}", pytrace=False)
    return server


def _teardown(server: Dovecot) -> None:
    try:
        server.stop()
    finally:
        shutil.rmtree(server.root_dir, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A freshly started private Dovecot (empty mailbox) for one test."""
    server = _start()
    try:
        yield server
    finally:
        _teardown(server)


@pytest.fixture
def dovecot_oauth2(oauth_server: OAuthServer) -> Iterator[Dovecot]:
    """A fresh Dovecot that also takes OAuth2 bearer tokens (AUTHENTICATE
    XOAUTH2 / OAUTHBEARER), checked against ``oauth_server`` by RFC 7662
    introspection; password logins work as usual."""
    server = _start(oauth2_introspection_url=oauth_server.introspect_url)
    try:
        yield server
    finally:
        _teardown(server)


@pytest.fixture(scope="session")
def dovecot_session() -> Iterator[Dovecot]:
    """One Dovecot shared by the whole test session."""
    server = _start()
    try:
        yield server
    finally:
        _teardown(server)


@pytest.fixture
def make_dovecot() -> Iterator:
    """Factory for extra servers in one test: ``make_dovecot(user=..., ...)``
    takes Dovecot's keyword arguments and returns a started server."""
    servers: list[Dovecot] = []

    def factory(**kwargs) -> Dovecot:
        server = _start(**kwargs)
        servers.append(server)
        return server

    try:
        yield factory
    finally:
        for server in servers:
            _teardown(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {}) or {}
    for name, server in funcargs.items():
        if isinstance(server, Dovecot):
            text = server.log_text()
            if text:
                report.sections.append((f"dovecot log ({name})", "\n".join(text.splitlines()[-60:])))
