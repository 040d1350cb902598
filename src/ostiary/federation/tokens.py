"""Upstream access tokens for tool code, refreshed when expired (RFC 6749 §6; MCP no passthrough).

A tool never forwards the MCP client's token upstream (token passthrough is forbidden); it
asks for the upstream provider's own token kept under the grant the client's token belongs
to. The grant is found through the access token's ``jti`` (its issuance record), so a
revoked grant, whose upstream tokens were deleted with it, yields nothing.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import replace

from ostiary.core.context import ServerContext
from ostiary.core.models import UpstreamToken
from ostiary.errors import ToolkitError
from ostiary.federation.cipher import TokenCipher, TokenDecryptionError, token_context
from ostiary.federation.http import UpstreamError
from ostiary.federation.providers import Provider
from ostiary.federation.service import federation_of
from ostiary.resource.principal import Principal

#: Refresh this long before the upstream token's expiry, so a tool call does not race it.
REFRESH_MARGIN_SECONDS = 30
#: One refresh at a time per (tenant, grant, provider) in this process; entries go away
#: with their last user.
_locks: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


class UpstreamTokenError(ToolkitError):
    """No usable upstream token for this principal and provider; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def upstream_access_token(ctx: ServerContext, principal: Principal, provider: str) -> str:
    """The upstream provider's access token for the user behind ``principal``.

    Args:
        ctx: The authorization server's context (same storage and settings).
        principal: The verified caller, e.g. ``current_principal()`` in a tool.
        provider: The provider's configured ``name``.

    Returns:
        A live upstream access token, refreshed first when it has expired.

    Raises:
        UpstreamTokenError: The token has no ``jti`` or is not one of ours, its grant is
            revoked, the user did not sign in with ``provider`` (or it does not keep
            tokens), or the refresh failed (the user must sign in again).

    Example:
        Inside a tool of a server combined with the authorization server (there is no
        standalone example: it needs the server's context and a federated sign-in)::

            token = await upstream_access_token(ctx, current_principal(), "github")
    """
    federation = federation_of(ctx)
    configured = federation.provider(provider)
    if configured is None or not configured.keep_tokens or federation.cipher is None:
        raise UpstreamTokenError(f"provider {provider!r} does not keep upstream tokens")
    if principal.token_id is None or (principal.issuer and principal.issuer != ctx.issuer):
        raise UpstreamTokenError("the access token is not one this server issued")
    record = await ctx.storage.get_access_token(ctx.tenant, principal.token_id)
    if record is None or record.revoked_at is not None or record.subject != principal.subject:
        raise UpstreamTokenError("the access token is unknown or revoked")
    key = (ctx.tenant, record.grant_id, provider)
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    async with lock:
        stored = await ctx.storage.get_upstream_token(ctx.tenant, record.grant_id, provider)
        if stored is None or stored.subject != principal.subject:
            raise UpstreamTokenError(f"no {provider} token for this authorization")
        if stored.expires_at is not None and stored.expires_at - REFRESH_MARGIN_SECONDS <= (
            ctx.clock()
        ):
            stored = await _refresh(ctx, federation.cipher, configured, stored)
        return _open(federation.cipher, ctx, stored, "access_token", stored.access_token_enc)


def _open(cipher: TokenCipher, ctx: ServerContext, token: UpstreamToken, field: str, v: str) -> str:
    try:
        return cipher.decrypt(v, token_context(ctx.tenant, token.grant_id, token.provider, field))
    except TokenDecryptionError:
        raise UpstreamTokenError("the stored upstream token does not decrypt") from None


async def _refresh(
    ctx: ServerContext, cipher: TokenCipher, provider: Provider, stored: UpstreamToken
) -> UpstreamToken:
    if stored.refresh_token_enc is None:
        raise UpstreamTokenError(f"the {provider.name} token expired; sign in again")
    refresh_token = _open(cipher, ctx, stored, "refresh_token", stored.refresh_token_enc)
    try:
        fresh = await provider.refresh(refresh_token)
    except UpstreamError as exc:
        ctx.audit("federation.refresh_failed", provider=provider.name, reason=exc.reason)
        if exc.error == "invalid_grant":
            # The upstream grant is gone: keeping the dead tokens helps nobody.
            await ctx.storage.delete_upstream_tokens(ctx.tenant, stored.grant_id)
        raise UpstreamTokenError(
            f"refreshing the {provider.name} token failed; sign in again"
        ) from None
    now = ctx.clock()

    def seal(value: str, field: str) -> str:
        return cipher.encrypt(
            value, token_context(ctx.tenant, stored.grant_id, provider.name, field)
        )

    updated = replace(
        stored,
        access_token_enc=seal(fresh.access_token, "access_token"),
        # RFC 6749 §6: the provider may rotate the refresh token; else keep the old one.
        refresh_token_enc=seal(fresh.refresh_token, "refresh_token")
        if fresh.refresh_token
        else stored.refresh_token_enc,
        expires_at=now + fresh.expires_in if fresh.expires_in else None,
        scope=fresh.scope or stored.scope,
        updated_at=now,
    )
    # A grant revoked while we refreshed must not get its tokens back.
    grant = await ctx.storage.get_grant(ctx.tenant, stored.grant_id)
    if grant is None or grant.revoked_at is not None:
        raise UpstreamTokenError("the authorization was revoked")
    await ctx.storage.save_upstream_token(updated)
    ctx.audit("federation.refreshed", provider=provider.name, subject=stored.subject)
    return updated
