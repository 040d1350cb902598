"""DPoP key binding: ``dpop_jkt`` on ``authorization_codes`` and ``refresh_tokens`` (RFC 9449).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

Frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable with no default: codes and refresh tokens issued before the upgrade are not
    # bound to a key and keep working as they did.
    op.add_column("authorization_codes", sa.Column("dpop_jkt", sa.Text, nullable=True))
    op.add_column("refresh_tokens", sa.Column("dpop_jkt", sa.Text, nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN: PostgreSQL, and SQLite 3.35+ (plain, unindexed columns).
    op.drop_column("refresh_tokens", "dpop_jkt")
    op.drop_column("authorization_codes", "dpop_jkt")
