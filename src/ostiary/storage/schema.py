"""SQL table definitions of the storage protocol (SQLAlchemy Core; RFC 9700 §4.14, OAuth 2.1 §4).

One ``MetaData`` for SQLite and PostgreSQL. Every primary key and unique constraint starts
with ``tenant_id`` so every lookup is tenant-scoped by an index. Column names are the field
names of the records in ``core/models.py``; tuples and dicts are JSON. Secrets arrive hashed
(``*_hash`` columns). The migrations in ``storage/migrations`` create exactly this schema;
``tests/contract/storage/test_migrations.py`` checks they agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

metadata = MetaData()

#: Name of Alembic's version table; prefixed so it cannot clash with another application's.
VERSION_TABLE = "ostiary_alembic_version"


def _json() -> JSON:
    # none_as_null: a Python None is SQL NULL, not the JSON literal 'null'.
    return JSON(none_as_null=True)


def _time(name: str, *, nullable: bool = False) -> Column[int]:
    return Column(name, BigInteger, nullable=nullable)


clients = Table(
    "clients",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("redirect_uris", _json(), nullable=False),
    Column("token_endpoint_auth_method", Text, nullable=False),
    Column("grant_types", _json(), nullable=False),
    Column("response_types", _json(), nullable=False),
    Column("application_type", Text, nullable=False),
    Column("client_name", Text),
    Column("client_uri", Text),
    Column("logo_uri", Text),
    Column("scope", Text),
    Column("jwks", _json()),
    Column("jwks_uri", Text),
    Column("client_secret_hash", Text),
    _time("client_secret_expires_at"),
    Column("registration_access_token_hash", Text),
    _time("client_id_issued_at"),
    Column("source", Text, nullable=False),
    Column("extra", _json(), nullable=False),
    _time("metadata_expires_at"),
    Column("disabled", Boolean, nullable=False, server_default=false()),  # 0004
    PrimaryKeyConstraint("tenant_id", "client_id", name="pk_clients"),
)

users = Table(
    "users",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("username", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    _time("created_at"),
    Column("disabled", Boolean, nullable=False),
    Column("display_name", Text),
    Column("totp_secret", Text),  # 0003: RFC 6238 secret, stored as is (docs/storage-schema.md)
    Column("admin", Boolean, nullable=False, server_default=false()),  # 0007
    PrimaryKeyConstraint("tenant_id", "user_id", name="pk_users"),
    UniqueConstraint("tenant_id", "username", name="uq_users_username"),
)

grants = Table(
    "grants",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("grant_id", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("scopes", _json(), nullable=False),
    Column("resource", Text),
    _time("created_at"),
    _time("expires_at"),
    _time("revoked_at", nullable=True),
    _time("last_used_at", nullable=True),
    PrimaryKeyConstraint("tenant_id", "grant_id", name="pk_grants"),
    Index("ix_grants_subject", "tenant_id", "subject"),
    Index("ix_grants_client", "tenant_id", "client_id"),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("code_hash", Text, nullable=False),
    Column("grant_id", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("code_challenge", Text, nullable=False),
    Column("scopes", _json(), nullable=False),
    Column("resource", Text),
    _time("expires_at"),
    _time("consumed_at", nullable=True),
    Column("dpop_jkt", Text),  # 0006: RFC 9449 §10 key binding of the code
    PrimaryKeyConstraint("tenant_id", "code_hash", name="pk_authorization_codes"),
    Index("ix_authorization_codes_grant", "tenant_id", "grant_id"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("token_hash", Text, nullable=False),
    Column("grant_id", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("scopes", _json(), nullable=False),
    Column("resource", Text),
    _time("issued_at"),
    _time("expires_at"),
    _time("idle_expires_at"),
    _time("rotated_at", nullable=True),
    _time("revoked_at", nullable=True),
    Column("successor_hash", Text),  # 0005: the token that replaced this one
    Column("sealed_successor", Text),  # 0005: that token, sealed, for the grace window only
    Column("dpop_jkt", Text),  # 0006: RFC 9449 §5.0 key binding (public clients)
    PrimaryKeyConstraint("tenant_id", "token_hash", name="pk_refresh_tokens"),
    Index("ix_refresh_tokens_grant", "tenant_id", "grant_id"),
    # 0008: the rows that still keep a sealed successor (at most one per grant), for the
    # rotation that clears it (statements.FORGET_PREVIOUS).
    Index(
        "ix_refresh_tokens_sealed",
        "tenant_id",
        "grant_id",
        "successor_hash",
        sqlite_where=text("sealed_successor IS NOT NULL"),
        postgresql_where=text("sealed_successor IS NOT NULL"),
    ),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("jti", Text, nullable=False),
    Column("grant_id", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    _time("expires_at"),
    _time("revoked_at", nullable=True),
    PrimaryKeyConstraint("tenant_id", "jti", name="pk_access_tokens"),
    Index("ix_access_tokens_grant", "tenant_id", "grant_id"),
)

consents = Table(
    "consents",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    # A primary-key column cannot be NULL: "no resource" is stored as ''.
    Column("resource", Text, nullable=False),
    Column("scopes", _json(), nullable=False),
    _time("created_at"),
    PrimaryKeyConstraint("tenant_id", "subject", "client_id", "resource", name="pk_consents"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("kid", Text, nullable=False),
    Column("alg", Text, nullable=False),
    Column("private_jwk", _json(), nullable=False),
    _time("created_at"),
    _time("retired_at", nullable=True),
    _time("expires_at", nullable=True),
    PrimaryKeyConstraint("tenant_id", "kid", name="pk_signing_keys"),
)

interactions = Table(
    "interactions",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("interaction_id", Text, nullable=False),
    Column("params", _json(), nullable=False),
    _time("expires_at"),
    Column("subject", Text),
    PrimaryKeyConstraint("tenant_id", "interaction_id", name="pk_interactions"),
)

browser_sessions = Table(
    "browser_sessions",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("session_hash", Text, nullable=False),
    Column("subject", Text, nullable=False),
    _time("created_at"),
    _time("expires_at"),
    PrimaryKeyConstraint("tenant_id", "session_hash", name="pk_browser_sessions"),
)

replay_cache = Table(
    "replay_cache",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    _time("expires_at"),
    PrimaryKeyConstraint("tenant_id", "key", name="pk_replay_cache"),
)

rate_limits = Table(
    "rate_limits",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("bucket", Text, nullable=False),
    _time("window_start"),
    Column("count", Integer, nullable=False),
    _time("expires_at"),
    PrimaryKeyConstraint("tenant_id", "bucket", name="pk_rate_limits"),
)

# -- 0002: demo MCP server data and federation ----------------------------------------------

notes = Table(
    "notes",
    metadata,
    Column("tenant_id", Text, nullable=False),
    # The owner is part of the key: one subject can neither read nor overwrite another's note.
    Column("subject", Text, nullable=False),
    Column("note_id", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("content", Text, nullable=False),
    _time("created_at"),
    PrimaryKeyConstraint("tenant_id", "subject", "note_id", name="pk_notes"),
)

api_usage = Table(
    "api_usage",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("count", BigInteger, nullable=False),
    _time("last_used_at"),
    PrimaryKeyConstraint("tenant_id", "subject", "name", name="pk_api_usage"),
)

linked_identities = Table(
    "linked_identities",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("upstream_subject", Text, nullable=False),
    Column("subject", Text, nullable=False),
    _time("created_at"),
    Column("email", Text),
    Column("display_name", Text),
    PrimaryKeyConstraint("tenant_id", "provider", "upstream_subject", name="pk_linked_identities"),
    Index("ix_linked_identities_subject", "tenant_id", "subject"),
)

upstream_tokens = Table(
    "upstream_tokens",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("grant_id", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("access_token_enc", Text, nullable=False),
    _time("updated_at"),
    Column("refresh_token_enc", Text),
    _time("expires_at", nullable=True),
    Column("scope", Text),
    PrimaryKeyConstraint("tenant_id", "grant_id", "provider", name="pk_upstream_tokens"),
)
