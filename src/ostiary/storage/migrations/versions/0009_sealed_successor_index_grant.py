"""The sealed-successor index names the grant too, so PostgreSQL's planner picks it.

0008 indexed ``(tenant_id, successor_hash)`` over the rows that keep a sealed successor.
SQLite uses it; PostgreSQL, planning with statistics from a young table, preferred the grant
index (which also matches the statement's ``grant_id``) and read every rotated token of the
grant again. With all three compared columns in the partial index, it is the cheapest path
for both planners.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_NAME = "ix_refresh_tokens_sealed"
_KEEPS_SEALED = "sealed_successor IS NOT NULL"


def _create(columns: list[str]) -> None:
    op.create_index(
        _NAME,
        "refresh_tokens",
        columns,
        sqlite_where=sa.text(_KEEPS_SEALED),
        postgresql_where=sa.text(_KEEPS_SEALED),
    )


def upgrade() -> None:
    op.drop_index(_NAME, table_name="refresh_tokens")
    _create(["tenant_id", "grant_id", "successor_hash"])


def downgrade() -> None:
    op.drop_index(_NAME, table_name="refresh_tokens")
    _create(["tenant_id", "successor_hash"])
