"""Token revocation (RFC 7009 §2) and introspection (RFC 7662 §2) for authenticated clients.

Revocation always answers 200 for unknown or foreign tokens (RFC 7009 §2.2) so a caller learns
nothing; revoking a refresh token revokes its whole grant, access tokens included (§2.1).
Introspection says ``active: false`` for anything unknown, expired or revoked, and only tells
confidential clients anything at all.
"""

from __future__ import annotations

from typing import Any

from ostiary.core.clients import is_confidential
from ostiary.core.context import ServerContext
from ostiary.core.models import Client
from ostiary.core.secrets import hash_secret
from ostiary.core.tokens import decode_access_token
from ostiary.errors import InvalidClientError

INACTIVE: dict[str, Any] = {"active": False}


async def revoke(ctx: ServerContext, client: Client, token: str, hint: str | None) -> None:
    """Revoke ``token`` if it belongs to ``client``; silently ignore anything else.

    RFC 7009 §2.1: ``token_type_hint`` only decides which kind is looked up first; a token
    not found under the hinted type is still searched for under the other.
    """
    now = ctx.clock()
    order = (_revoke_access, _revoke_refresh)
    if hint != "access_token":
        order = (_revoke_refresh, _revoke_access)
    for attempt in order:
        if await attempt(ctx, client, token, now):
            return


async def _revoke_refresh(ctx: ServerContext, client: Client, token: str, now: int) -> bool:
    """Revoke the grant of a refresh token of ``client``; True if the token is known."""
    record = await ctx.storage.get_refresh_token(ctx.tenant, hash_secret(token))
    if record is None:
        return False
    if record.client_id == client.client_id:
        await ctx.storage.revoke_grant(ctx.tenant, record.grant_id, now)
        ctx.audit("token.revoked", kind="refresh_token", grant=record.grant_id)
    return True


async def _revoke_access(ctx: ServerContext, client: Client, token: str, now: int) -> bool:
    """Revoke one of our access tokens issued to ``client``; True if it is ours at all."""
    claims = decode_access_token(await ctx.keys.ring(now), token, issuer=ctx.issuer, now=now)
    if claims is None:
        return False
    if claims.get("client_id") == client.client_id:
        await ctx.storage.revoke_access_token(ctx.tenant, str(claims["jti"]), now)
        ctx.audit("token.revoked", kind="access_token", client_id=client.client_id)
    return True


async def introspect(ctx: ServerContext, client: Client, token: str) -> dict[str, Any]:
    """The RFC 7662 §2.2 response for ``token``."""
    if not is_confidential(client):
        raise InvalidClientError("introspection requires a confidential client")
    now = ctx.clock()
    claims = decode_access_token(await ctx.keys.ring(now), token, issuer=ctx.issuer, now=now)
    if claims is not None:
        return await _access_token_state(ctx, claims, now)
    record = await ctx.storage.get_refresh_token(ctx.tenant, hash_secret(token))
    if record is None or record.revoked_at is not None or record.rotated_at is not None:
        return INACTIVE
    if min(record.expires_at, record.idle_expires_at) <= now:
        return INACTIVE
    grant = await ctx.storage.get_grant(ctx.tenant, record.grant_id)
    if grant is None or grant.revoked_at is not None:
        return INACTIVE
    body: dict[str, Any] = {
        "active": True,
        "token_type": "refresh_token",
        "client_id": record.client_id,
        "sub": record.subject,
        "scope": " ".join(record.scopes),
        "exp": min(record.expires_at, record.idle_expires_at),
        "iat": record.issued_at,
        "iss": ctx.issuer,
    }
    if record.resource:
        body["aud"] = record.resource
    return body


async def _access_token_state(
    ctx: ServerContext, claims: dict[str, Any], now: int
) -> dict[str, Any]:
    booked = await ctx.storage.get_access_token(ctx.tenant, str(claims.get("jti")))
    if booked is None or booked.revoked_at is not None:
        return INACTIVE
    grant = await ctx.storage.get_grant(ctx.tenant, booked.grant_id)
    if grant is None or grant.revoked_at is not None:
        return INACTIVE
    # RFC 9449 §6.2: a DPoP-bound token is reported with its cnf (in the claims) as DPoP.
    kind = "DPoP" if isinstance(claims.get("cnf"), dict) else "Bearer"
    return {"active": True, "token_type": kind, **claims}
