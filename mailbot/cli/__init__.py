"""Command line: thin click commands over the library; library errors become one clear line and an exit code.

Each module holds one family of commands and registers them on the root group of `base` when imported.
"""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from mailbot.cli import admin, campaign, corrections, mail, roster  # noqa: F401 - importing registers the commands
from mailbot.cli.base import cli
from mailbot.errors import MailbotError, one_line

__all__ = ["cli", "main"]


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        raise SystemExit(130) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except MailbotError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    except SQLAlchemyError as exc:  # a database that another process holds too long, say: one line, not a traceback
        click.echo(f"error: database error: {one_line(exc)}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
