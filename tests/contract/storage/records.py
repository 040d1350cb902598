"""Record factories for the storage contract suite; every field is set to a telling value."""

from __future__ import annotations

from typing import Any

from ostiary.core.models import (
    AccessTokenRecord,
    AuthorizationCode,
    BrowserSession,
    Client,
    Consent,
    Grant,
    Interaction,
    LinkedIdentity,
    Note,
    RefreshToken,
    SigningKey,
    UpstreamToken,
    User,
)

#: Far in the future, so a purge_expired(real time) run by anything else sharing the
#: PostgreSQL database never deletes these records in the middle of a test.
NOW = 4_000_000_000
HOUR = 3600


def client(tenant: str, client_id: str = "client-1", **kw: Any) -> Client:
    return Client(
        **{
            "tenant_id": tenant,
            "client_id": client_id,
            "redirect_uris": ("http://127.0.0.1/cb", "https://app.example/cb"),
            **kw,
        }
    )


def user(tenant: str, user_id: str = "user-1", username: str = "alice", **kw: Any) -> User:
    return User(
        **{
            "tenant_id": tenant,
            "user_id": user_id,
            "username": username,
            "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
            "created_at": NOW,
            **kw,
        }
    )


def grant(tenant: str, grant_id: str = "grant-1", **kw: Any) -> Grant:
    return Grant(
        **{
            "tenant_id": tenant,
            "grant_id": grant_id,
            "client_id": "client-1",
            "subject": "user-1",
            "scopes": ("mcp:read", "offline_access"),
            "resource": "https://mcp.example/mcp",
            "created_at": NOW,
            "expires_at": NOW + 30 * 24 * HOUR,
            **kw,
        }
    )


def code(tenant: str, code_hash: str = "c" * 64, **kw: Any) -> AuthorizationCode:
    return AuthorizationCode(
        **{
            "tenant_id": tenant,
            "code_hash": code_hash,
            "grant_id": "grant-1",
            "client_id": "client-1",
            "subject": "user-1",
            "redirect_uri": "http://127.0.0.1:53682/cb",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "scopes": ("mcp:read",),
            "resource": "https://mcp.example/mcp",
            "expires_at": NOW + 60,
            **kw,
        }
    )


def refresh(tenant: str, token_hash: str = "r" * 64, **kw: Any) -> RefreshToken:
    return RefreshToken(
        **{
            "tenant_id": tenant,
            "token_hash": token_hash,
            "grant_id": "grant-1",
            "client_id": "client-1",
            "subject": "user-1",
            "scopes": ("mcp:read", "offline_access"),
            "resource": "https://mcp.example/mcp",
            "issued_at": NOW,
            "expires_at": NOW + 30 * 24 * HOUR,
            "idle_expires_at": NOW + 7 * 24 * HOUR,
            **kw,
        }
    )


def access(tenant: str, jti: str = "jti-1", **kw: Any) -> AccessTokenRecord:
    return AccessTokenRecord(
        **{
            "tenant_id": tenant,
            "jti": jti,
            "grant_id": "grant-1",
            "client_id": "client-1",
            "subject": "user-1",
            "expires_at": NOW + 900,
            **kw,
        }
    )


def consent(tenant: str, resource: str | None = "https://mcp.example/mcp", **kw: Any) -> Consent:
    return Consent(
        **{
            "tenant_id": tenant,
            "subject": "user-1",
            "client_id": "client-1",
            "resource": resource,
            "scopes": ("mcp:read",),
            "created_at": NOW,
            **kw,
        }
    )


def signing_key(tenant: str, kid: str = "kid-1", **kw: Any) -> SigningKey:
    return SigningKey(
        **{
            "tenant_id": tenant,
            "kid": kid,
            "alg": "ES256",
            "private_jwk": {"kty": "EC", "crv": "P-256", "x": "x0", "y": "y0", "d": "d0"},
            "created_at": NOW,
            **kw,
        }
    )


def interaction(tenant: str, interaction_id: str = "ia-1", **kw: Any) -> Interaction:
    return Interaction(
        **{
            "tenant_id": tenant,
            "interaction_id": interaction_id,
            "params": {"client_id": "client-1", "scope": ["mcp:read"], "state": None},
            "expires_at": NOW + 600,
            **kw,
        }
    )


def session(tenant: str, session_hash: str = "s" * 64, **kw: Any) -> BrowserSession:
    return BrowserSession(
        **{
            "tenant_id": tenant,
            "session_hash": session_hash,
            "subject": "user-1",
            "created_at": NOW,
            "expires_at": NOW + 8 * HOUR,
            **kw,
        }
    )


def note(tenant: str, note_id: str = "note-1", subject: str = "user-1", **kw: Any) -> Note:
    return Note(
        **{
            "tenant_id": tenant,
            "note_id": note_id,
            "subject": subject,
            "title": "Groceries",
            "content": "oat milk\nlemons ü ✓",
            "created_at": NOW,
            **kw,
        }
    )


def linked(
    tenant: str, provider: str = "github", upstream_subject: str = "gh-42", **kw: Any
) -> LinkedIdentity:
    return LinkedIdentity(
        **{
            "tenant_id": tenant,
            "provider": provider,
            "upstream_subject": upstream_subject,
            "subject": "user-1",
            "created_at": NOW,
            "email": "alice@example.com",
            "display_name": "Alice",
            **kw,
        }
    )


def upstream(
    tenant: str, grant_id: str = "grant-1", provider: str = "github", **kw: Any
) -> UpstreamToken:
    return UpstreamToken(
        **{
            "tenant_id": tenant,
            "grant_id": grant_id,
            "provider": provider,
            "subject": "user-1",
            "access_token_enc": "v1.enc-access",
            "updated_at": NOW,
            "refresh_token_enc": "v1.enc-refresh",
            "expires_at": NOW + HOUR,
            "scope": "read:user repo",
            **kw,
        }
    )
