"""Exceptions the library raises; the CLI turns each into a clear message and an exit code."""


class MailbotError(Exception):
    """Base class: an expected failure with a message fit for the operator."""

    exit_code = 1


class ConfigError(MailbotError):
    """The configuration file is missing, unreadable or invalid."""

    exit_code = 2


class RosterError(MailbotError):
    """The roster file cannot be read or has bad rows."""

    exit_code = 2


class InboxError(MailbotError):
    """The inbox (IMAP server or Maildir) cannot be reached or used."""


class StorageError(MailbotError):
    """The archive disk or the database cannot take a message now; it stays on the server for later."""


class AuthError(MailbotError):
    """Credentials were refused or could not be had (password, OAuth2 token): retrying soon will not help."""


class InboxAuthError(InboxError, AuthError):
    """The IMAP server refused the credentials."""


class AlreadyRunning(MailbotError):
    """Another `mailbot run` holds the data folder."""


class NotFound(MailbotError):
    """A message, institution or campaign named on the command line does not exist."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message; for a database error, the driver's own (without the SQL)."""
    inner = getattr(exc, "orig", None) or exc
    return (str(inner).splitlines() or [""])[0]


def one_line(exc: BaseException) -> str:
    """An unexpected exception as one log line: its type and the first line of its message."""
    inner = getattr(exc, "orig", None) or exc
    first = first_line(exc).strip()
    return f"{type(inner).__name__}: {first}" if first else type(inner).__name__
