"""Refresh tokens that never fork: ``successor_hash`` and ``sealed_successor`` on
``refresh_tokens`` (RFC 9700 §4.14.2).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable with no default: a token rotated before the upgrade has no sealed successor,
    # so presenting it again is reuse (the grant is revoked) rather than a second chain.
    op.add_column("refresh_tokens", sa.Column("successor_hash", sa.Text, nullable=True))
    op.add_column("refresh_tokens", sa.Column("sealed_successor", sa.Text, nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN: PostgreSQL, and SQLite 3.35+ (plain, unindexed columns).
    op.drop_column("refresh_tokens", "sealed_successor")
    op.drop_column("refresh_tokens", "successor_hash")
