"""The refresh_token grant: rotation with reuse detection (OAuth 2.1 §4.3; RFC 9700 §4.14.2).

Every refresh rotates the token. A rotated token presented again within the configured grace
window (two requests racing, a lost response) gets a fresh successor; presented later, it is
treated as stolen and the whole grant is revoked. Scopes may only narrow, and the resource of
the grant is kept (RFC 8707 §2.2).
"""

from __future__ import annotations

from typing import Final

from ostiary.core.context import ServerContext
from ostiary.core.issuance import issue_access_token, new_refresh_token
from ostiary.core.models import Client, RefreshToken, RotateStatus
from ostiary.core.requests import Params
from ostiary.core.resource import validate_resource_for_grant
from ostiary.core.scopes import narrow_scopes, parse_scope
from ostiary.core.secrets import hash_secret, secrets_equal
from ostiary.core.tokens import TokenResponse
from ostiary.errors import InvalidGrantError

GRANT_TYPE: Final = "refresh_token"
PARAMETERS: Final = frozenset({"refresh_token", "scope", "resource"})

_FAILURES: Final = {
    RotateStatus.NOT_FOUND: "refresh token is invalid",
    RotateStatus.EXPIRED: "refresh token expired",
    RotateStatus.REVOKED: "refresh token was revoked",
}


async def handle(ctx: ServerContext, client: Client, params: Params) -> TokenResponse:
    presented = hash_secret(params.require("refresh_token"))
    current = await ctx.storage.get_refresh_token(ctx.tenant, presented)
    if current is None:
        raise InvalidGrantError(_FAILURES[RotateStatus.NOT_FOUND])
    if not secrets_equal(current.client_id, client.client_id):
        # RFC 6749 §6: the token is bound to the client it was issued to.
        raise InvalidGrantError(
            "refresh token was issued to another client",
            detail=f"token of {current.client_id} presented by {client.client_id}",
        )
    scopes = narrow_scopes(parse_scope(params.get("scope")), current.scopes)
    validate_resource_for_grant(params.all("resource"), current.resource)
    grant = await ctx.storage.get_grant(ctx.tenant, current.grant_id)
    if grant is None or grant.revoked_at is not None:
        raise InvalidGrantError(_FAILURES[RotateStatus.REVOKED])

    raw, successor = new_refresh_token(ctx, grant)
    await _rotate(ctx, client, presented, successor)
    now = ctx.clock()
    await ctx.storage.touch_grant(ctx.tenant, grant.grant_id, now)
    access_token, expires_in = await issue_access_token(ctx, grant, scopes)
    ctx.audit(
        "token.refreshed", client_id=client.client_id, subject=grant.subject, grant=grant.grant_id
    )
    return TokenResponse(access_token, expires_in, scopes, raw)


async def _rotate(
    ctx: ServerContext, client: Client, presented: str, successor: RefreshToken
) -> None:
    now = ctx.clock()
    grace = ctx.settings.tokens.refresh_grace_seconds
    result = await ctx.storage.rotate_refresh_token(ctx.tenant, presented, successor, now, grace)
    if result.status is RotateStatus.OK:
        return
    if result.status is RotateStatus.REUSED:
        await ctx.storage.revoke_grant(ctx.tenant, successor.grant_id, now)
        ctx.audit("refresh_token.reused", client_id=client.client_id, grant=successor.grant_id)
        raise InvalidGrantError("refresh token was already used; the grant is revoked")
    raise InvalidGrantError(_FAILURES[result.status])
