"""Initial storage schema (OAuth 2.1 §4; RFC 9700 §4.14): every table, keyed by tenant.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Frozen: later changes go in new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _json() -> sa.JSON:
    return sa.JSON(none_as_null=True)


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def _tokens() -> None:
    op.create_table(
        "authorization_codes",
        _text("tenant_id"),
        _text("code_hash"),
        _text("grant_id"),
        _text("client_id"),
        _text("subject"),
        _text("redirect_uri"),
        _text("code_challenge"),
        sa.Column("scopes", _json(), nullable=False),
        _text("resource", nullable=True),
        _time("expires_at"),
        _time("consumed_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "code_hash", name="pk_authorization_codes"),
    )
    op.create_index(
        "ix_authorization_codes_grant", "authorization_codes", ["tenant_id", "grant_id"]
    )
    op.create_table(
        "refresh_tokens",
        _text("tenant_id"),
        _text("token_hash"),
        _text("grant_id"),
        _text("client_id"),
        _text("subject"),
        sa.Column("scopes", _json(), nullable=False),
        _text("resource", nullable=True),
        _time("issued_at"),
        _time("expires_at"),
        _time("idle_expires_at"),
        _time("rotated_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "token_hash", name="pk_refresh_tokens"),
    )
    op.create_index("ix_refresh_tokens_grant", "refresh_tokens", ["tenant_id", "grant_id"])
    op.create_table(
        "access_tokens",
        _text("tenant_id"),
        _text("jti"),
        _text("grant_id"),
        _text("client_id"),
        _text("subject"),
        _time("expires_at"),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "jti", name="pk_access_tokens"),
    )
    op.create_index("ix_access_tokens_grant", "access_tokens", ["tenant_id", "grant_id"])


def _parties() -> None:
    op.create_table(
        "clients",
        _text("tenant_id"),
        _text("client_id"),
        sa.Column("redirect_uris", _json(), nullable=False),
        _text("token_endpoint_auth_method"),
        sa.Column("grant_types", _json(), nullable=False),
        sa.Column("response_types", _json(), nullable=False),
        _text("application_type"),
        _text("client_name", nullable=True),
        _text("client_uri", nullable=True),
        _text("logo_uri", nullable=True),
        _text("scope", nullable=True),
        sa.Column("jwks", _json(), nullable=True),
        _text("jwks_uri", nullable=True),
        _text("client_secret_hash", nullable=True),
        _time("client_secret_expires_at"),
        _text("registration_access_token_hash", nullable=True),
        _time("client_id_issued_at"),
        _text("source"),
        sa.Column("extra", _json(), nullable=False),
        _time("metadata_expires_at"),
        sa.PrimaryKeyConstraint("tenant_id", "client_id", name="pk_clients"),
    )
    op.create_table(
        "users",
        _text("tenant_id"),
        _text("user_id"),
        _text("username"),
        _text("password_hash"),
        _time("created_at"),
        sa.Column("disabled", sa.Boolean, nullable=False),
        _text("display_name", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name="pk_users"),
        sa.UniqueConstraint("tenant_id", "username", name="uq_users_username"),
    )
    op.create_table(
        "grants",
        _text("tenant_id"),
        _text("grant_id"),
        _text("client_id"),
        _text("subject"),
        sa.Column("scopes", _json(), nullable=False),
        _text("resource", nullable=True),
        _time("created_at"),
        _time("expires_at"),
        _time("revoked_at", nullable=True),
        _time("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "grant_id", name="pk_grants"),
    )
    op.create_index("ix_grants_subject", "grants", ["tenant_id", "subject"])
    op.create_index("ix_grants_client", "grants", ["tenant_id", "client_id"])
    op.create_table(
        "consents",
        _text("tenant_id"),
        _text("subject"),
        _text("client_id"),
        _text("resource"),
        sa.Column("scopes", _json(), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "subject", "client_id", "resource", name="pk_consents"
        ),
    )


def _server_state() -> None:
    op.create_table(
        "signing_keys",
        _text("tenant_id"),
        _text("kid"),
        _text("alg"),
        sa.Column("private_jwk", _json(), nullable=False),
        _time("created_at"),
        _time("retired_at", nullable=True),
        _time("expires_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "kid", name="pk_signing_keys"),
    )
    op.create_table(
        "interactions",
        _text("tenant_id"),
        _text("interaction_id"),
        sa.Column("params", _json(), nullable=False),
        _time("expires_at"),
        _text("subject", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "interaction_id", name="pk_interactions"),
    )
    op.create_table(
        "browser_sessions",
        _text("tenant_id"),
        _text("session_hash"),
        _text("subject"),
        _time("created_at"),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("tenant_id", "session_hash", name="pk_browser_sessions"),
    )
    op.create_table(
        "replay_cache",
        _text("tenant_id"),
        _text("key"),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_replay_cache"),
    )
    op.create_table(
        "rate_limits",
        _text("tenant_id"),
        _text("bucket"),
        _time("window_start"),
        sa.Column("count", sa.Integer, nullable=False),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("tenant_id", "bucket", name="pk_rate_limits"),
    )


def upgrade() -> None:
    _parties()
    _tokens()
    _server_state()


def downgrade() -> None:
    for table in (
        "rate_limits",
        "replay_cache",
        "browser_sessions",
        "interactions",
        "signing_keys",
        "access_tokens",
        "refresh_tokens",
        "authorization_codes",
        "consents",
        "grants",
        "users",
        "clients",
    ):
        op.drop_table(table)
