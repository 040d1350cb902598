"""TOTP second factor: a nullable ``totp_secret`` column on ``users``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable with no default: existing users keep working with no second factor enrolled.
    op.add_column("users", sa.Column("totp_secret", sa.Text, nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN: PostgreSQL, and SQLite 3.35+ (a plain, unindexed column).
    op.drop_column("users", "totp_secret")
