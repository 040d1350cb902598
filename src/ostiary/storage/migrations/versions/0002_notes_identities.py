"""Demo-server notes and usage counters; federation links and upstream tokens, keyed by tenant.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "notes",
        _text("tenant_id"),
        _text("subject"),
        _text("note_id"),
        _text("title"),
        _text("content"),
        _time("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "subject", "note_id", name="pk_notes"),
    )
    op.create_table(
        "api_usage",
        _text("tenant_id"),
        _text("subject"),
        _text("name"),
        sa.Column("count", sa.BigInteger, nullable=False),
        _time("last_used_at"),
        sa.PrimaryKeyConstraint("tenant_id", "subject", "name", name="pk_api_usage"),
    )
    op.create_table(
        "linked_identities",
        _text("tenant_id"),
        _text("provider"),
        _text("upstream_subject"),
        _text("subject"),
        _time("created_at"),
        _text("email", nullable=True),
        _text("display_name", nullable=True),
        sa.PrimaryKeyConstraint(
            "tenant_id", "provider", "upstream_subject", name="pk_linked_identities"
        ),
    )
    op.create_index("ix_linked_identities_subject", "linked_identities", ["tenant_id", "subject"])
    op.create_table(
        "upstream_tokens",
        _text("tenant_id"),
        _text("grant_id"),
        _text("provider"),
        _text("subject"),
        _text("access_token_enc"),
        _time("updated_at"),
        _text("refresh_token_enc", nullable=True),
        _time("expires_at", nullable=True),
        _text("scope", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "grant_id", "provider", name="pk_upstream_tokens"),
    )


def downgrade() -> None:
    for table in ("upstream_tokens", "linked_identities", "api_usage", "notes"):
        op.drop_table(table)
