"""Issue 17: the stamped copies verified: what each PDF turned out to be, and the copies staff accepted by hand.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = sa.inspect(op.get_bind())
    if not tables.has_table("stamp_checks"):  # a development build may have made them already
        op.create_table(
            "stamp_checks",
            sa.Column("file_id", sa.Integer(), nullable=False),
            sa.Column("facts", sa.JSON(), nullable=False),
            sa.Column("checked_at", sa.String(length=32), nullable=False),
            sa.ForeignKeyConstraint(["file_id"], ["files.id"]),
            sa.PrimaryKeyConstraint("file_id"),
        )
    if not tables.has_table("stamp_accepted"):
        op.create_table(
            "stamp_accepted",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("campaign_id", sa.String(length=64), nullable=False),
            sa.Column("institution_id", sa.Integer(), nullable=False),
            sa.Column("actor", sa.Text(), nullable=False),
            sa.Column("at", sa.String(length=32), nullable=False),
            sa.ForeignKeyConstraint(["institution_id"], ["institutions.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("campaign_id", "institution_id", name="stamp_accepted_once"),
        )
        op.create_index("ix_stamp_accepted_campaign_id", "stamp_accepted", ["campaign_id"])


def downgrade() -> None:
    raise NotImplementedError("mailbot's schema only moves forward: restore a backup to go back")
