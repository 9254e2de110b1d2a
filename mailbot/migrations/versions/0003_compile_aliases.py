"""Issue 13: the mappings staff accepted in the consolidation, kept across campaigns.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("compile_aliases"):  # a development build made it already
        return
    op.create_table(
        "compile_aliases",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("found", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("kind", "found"),
    )


def downgrade() -> None:
    raise NotImplementedError("mailbot's schema only moves forward: restore a backup to go back")
