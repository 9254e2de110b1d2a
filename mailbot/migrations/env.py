"""Alembic's environment: runs the revisions on the connection mailbot hands it (never a URL from a file), with
batch mode on SQLite so that a column can be altered or dropped there too."""

from __future__ import annotations

from alembic import context

from mailbot import store

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=store.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=False,
)
with context.begin_transaction():
    context.run_migrations()
