"""Operator-disabled clients: a ``disabled`` flag on ``clients``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing client stays enabled.
    op.add_column(
        "clients",
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN: PostgreSQL, and SQLite 3.35+ (a plain, unindexed column).
    op.drop_column("clients", "disabled")
