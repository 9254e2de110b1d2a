"""Issue 12: campaigns and their files in the database, dismissed messages, paper copies, institutions' contacts.

A data folder made by a development build before migrations may already hold some of these: what exists is left
as it is (the first release had none of them).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = sa.String(length=32)  # store.UTC: ISO text


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:  # long: one statement per new table, each only where it is missing
    tables = _tables()
    if "campaigns" not in tables:
        op.create_table(
            "campaigns",
            sa.Column("id", sa.String(length=64), nullable=False),
            sa.Column("title", sa.Text(), nullable=False),
            sa.Column("plan", sa.Text(), nullable=False),
            sa.Column("opens", UTC, nullable=True),
            sa.Column("deadline", UTC, nullable=False),
            sa.Column("groups", sa.Text(), nullable=False),
            sa.Column("keywords", sa.Text(), nullable=False),
            sa.Column("accept_late_days", sa.Integer(), nullable=False),
            sa.Column("paper", sa.String(length=16), nullable=False),
            sa.Column("contact", sa.Text(), nullable=False),
            sa.Column("chase", sa.JSON(), nullable=False),
            sa.Column("closed_at", UTC, nullable=True),
            sa.Column("source", sa.String(length=16), nullable=False),
            sa.Column("created_at", UTC, nullable=False),
            sa.Column("updated_at", UTC, nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if "campaign_files" not in tables:
        op.create_table(
            "campaign_files",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("campaign_id", sa.String(length=64), nullable=False),
            sa.Column("role", sa.String(length=16), nullable=False),
            sa.Column("name", sa.Text(), nullable=False),
            sa.Column("path", sa.Text(), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("size", sa.Integer(), nullable=False),
            sa.Column("added_at", UTC, nullable=False),
            sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_campaign_files_campaign_id", "campaign_files", ["campaign_id"])
    if "paper" not in tables:
        op.create_table(
            "paper",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("campaign_id", sa.String(length=64), nullable=False),
            sa.Column("institution_id", sa.Integer(), nullable=False),
            sa.Column("received_on", sa.Date(), nullable=False),
            sa.Column("actor", sa.Text(), nullable=False),
            sa.Column("at", UTC, nullable=False),
            sa.ForeignKeyConstraint(["institution_id"], ["institutions.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("campaign_id", "institution_id", name="paper_once"),
        )
        op.create_index("ix_paper_campaign_id", "paper", ["campaign_id"])
    if "dismissals" not in tables:
        op.create_table(
            "dismissals",
            sa.Column("message_pk", sa.Integer(), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("prior_state", sa.String(length=16), nullable=False),
            sa.Column("actor", sa.Text(), nullable=False),
            sa.Column("at", UTC, nullable=False),
            sa.ForeignKeyConstraint(["message_pk"], ["messages.id"]),
            sa.PrimaryKeyConstraint("message_pk"),
        )
    missing = [c for c in ("contact", "phone") if c not in _columns("institutions")]
    if missing:
        with op.batch_alter_table("institutions") as batch:
            for name in missing:
                batch.add_column(sa.Column(name, sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    raise NotImplementedError("mailbot's schema only moves forward: restore a backup to go back")
