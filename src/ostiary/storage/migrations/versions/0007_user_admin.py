"""Operator console: an ``admin`` flag on ``users``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

Frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nobody is an administrator until an operator says so (`ostiary users admin grant`).
    op.add_column(
        "users",
        sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN: PostgreSQL, and SQLite 3.35+ (a plain, unindexed column).
    op.drop_column("users", "admin")
