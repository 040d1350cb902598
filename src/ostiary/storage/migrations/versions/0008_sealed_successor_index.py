"""Refresh rotation: find the token that keeps a sealed successor by index, not by grant scan.

A rotation clears the sealed successor of the token the presented one replaced
(``FORGET_PREVIOUS``). Through ``ix_refresh_tokens_grant`` that read every rotated token of
the grant, and a grant keeps its rotated tokens until it expires (reuse detection needs
them), so each refresh cost more than the one before. This partial index holds only the rows
that still keep a sealed successor: at most one per grant.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_KEEPS_SEALED = "sealed_successor IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_refresh_tokens_sealed",
        "refresh_tokens",
        ["tenant_id", "successor_hash"],
        sqlite_where=sa.text(_KEEPS_SEALED),
        postgresql_where=sa.text(_KEEPS_SEALED),
    )


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_sealed", table_name="refresh_tokens")
