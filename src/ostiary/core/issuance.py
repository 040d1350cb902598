"""Minting access and refresh tokens for a grant (RFC 9068; OAuth 2.1 §4.3; RFC 9700 §4.14).

Every issued access token is booked (jti, grant, expiry) so revocation and introspection can
see it and ``/stats`` can count it; refresh tokens are stored only as hashes and never outlive
their grant.
"""

from __future__ import annotations

from ostiary.core.context import ServerContext
from ostiary.core.keys import KeyRing
from ostiary.core.models import AccessTokenRecord, Client, Grant, RefreshToken
from ostiary.core.secrets import hash_secret, new_secret
from ostiary.core.tokens import AccessTokenClaims, mint_access_token

OFFLINE_ACCESS = "offline_access"


async def mint_access_token_for(
    ctx: ServerContext, grant: Grant, scopes: tuple[str, ...], *, jkt: str | None = None
) -> tuple[str, int, AccessTokenRecord]:
    """A signed JWT for ``grant`` and the record that books it, not yet stored.

    The token is good only once its record is stored.
    """
    now = ctx.clock()
    return mint_access_token_with(ctx, await ctx.keys.ring(now), grant, scopes, now, jkt=jkt)


def mint_access_token_with(
    ctx: ServerContext,
    ring: KeyRing,
    grant: Grant,
    scopes: tuple[str, ...],
    now: int,
    *,
    jkt: str | None = None,
) -> tuple[str, int, AccessTokenRecord]:
    """:func:`mint_access_token_for` with the key ring already loaded: no await, so a grant
    operation can mint inside its storage transaction (``CodePlan``, ``RotationPlan``)."""
    ttl = min(ctx.settings.tokens.access_token_ttl, max(grant.expires_at - now, 1))
    claims = AccessTokenClaims(
        issuer=ctx.issuer,
        subject=grant.subject,
        audience=grant.resource or ctx.settings.default_resource,
        client_id=grant.client_id,
        scopes=tuple(s for s in scopes if s != OFFLINE_ACCESS),
        jti=new_secret(16),
        issued_at=now,
        expires_at=now + ttl,
        jkt=jkt,
    )
    token = mint_access_token(ring, claims)
    record = AccessTokenRecord(
        tenant_id=ctx.tenant,
        jti=claims.jti,
        grant_id=grant.grant_id,
        client_id=grant.client_id,
        subject=grant.subject,
        expires_at=claims.expires_at,
    )
    return token, ttl, record


def wants_refresh_token(ctx: ServerContext, client: Client, scopes: tuple[str, ...]) -> bool:
    """Issue a refresh token only to clients registered for the grant, per the policy."""
    if "refresh_token" not in client.grant_types:
        return False
    if ctx.settings.tokens.issue_refresh_tokens == "offline_access":
        return OFFLINE_ACCESS in scopes
    return True


def new_refresh_token(
    ctx: ServerContext, grant: Grant, *, dpop_jkt: str | None = None, now: int | None = None
) -> tuple[str, RefreshToken]:
    """A fresh refresh token for ``grant``: (raw value for the client, hashed record).

    ``dpop_jkt`` binds it to a DPoP key (RFC 9449 §5.0, public clients).
    """
    now = ctx.clock() if now is None else now
    raw = new_secret()
    idle = now + ctx.settings.tokens.refresh_token_idle_ttl
    record = RefreshToken(
        tenant_id=ctx.tenant,
        token_hash=hash_secret(raw),
        grant_id=grant.grant_id,
        client_id=grant.client_id,
        subject=grant.subject,
        scopes=grant.scopes,
        resource=grant.resource,
        issued_at=now,
        expires_at=grant.expires_at,
        idle_expires_at=min(idle, grant.expires_at),
        dpop_jkt=dpop_jkt,
    )
    return raw, record
