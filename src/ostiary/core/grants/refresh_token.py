"""The refresh_token grant: rotation with reuse detection (OAuth 2.1 §4.3.1; RFC 9700 §4.14.2).

Every refresh rotates the token, and a grant never has two live refresh tokens. The
immediately previous token presented again within the configured grace window (two requests
racing, a response lost after the rotation committed) gets the *same* successor already
issued, plus a fresh access token: that successor is kept sealed with the storage key
(:mod:`ostiary.core.cipher`) on the old token's row, so the answer is the same after a restart
and on every node. Any older token, the previous one once its successor was itself rotated,
or the previous one after the window, is treated as stolen and the whole grant is revoked.
With a grace window of 0 every second presentation is reuse. Scopes may only narrow, and the
resource of the grant is kept (RFC 8707 §2.2).
"""

from __future__ import annotations

from typing import Final

from ostiary.core.cipher import DecryptionError, SecretCipher
from ostiary.core.context import ServerContext
from ostiary.core.dpop_token import require_key
from ostiary.core.issuance import mint_access_token_with, new_refresh_token
from ostiary.core.models import Client, Grant, IssuedTokens, RefreshToken, RotateStatus
from ostiary.core.requests import Params
from ostiary.core.resource import validate_resource_for_grant
from ostiary.core.scopes import narrow_scopes, parse_scope
from ostiary.core.secrets import hash_secret, secrets_equal
from ostiary.core.tokens import TokenResponse, token_type
from ostiary.errors import ConfigurationError, InvalidGrantError, TemporarilyUnavailableError

GRANT_TYPE: Final = "refresh_token"
PARAMETERS: Final = frozenset({"refresh_token", "scope", "resource"})

_FAILURES: Final = {
    RotateStatus.NOT_FOUND: "refresh token is invalid",
    RotateStatus.EXPIRED: "refresh token expired",
    RotateStatus.REVOKED: "refresh token was revoked",
}


async def handle(
    ctx: ServerContext, client: Client, params: Params, jkt: str | None = None
) -> TokenResponse:
    presented = hash_secret(params.require("refresh_token"))
    requested = parse_scope(params.get("scope"))
    resources = params.all("resource")
    now = ctx.clock()
    grace = ctx.settings.tokens.refresh_grace_seconds
    # Loaded before the transaction: the plan runs inside it and must not await.
    ring = await ctx.keys.ring(now)
    minted: list[tuple[str, int, tuple[str, ...], str]] = []

    def plan(current: RefreshToken, grant: Grant | None) -> IssuedTokens:
        """Check the presented token against its client, key and grant; mint its successor
        and the access token. Raising here changes nothing."""
        if not secrets_equal(current.client_id, client.client_id):
            # RFC 6749 §6: the token is bound to the client it was issued to.
            raise InvalidGrantError(
                "refresh token was issued to another client",
                detail=f"token of {current.client_id} presented by {client.client_id}",
            )
        # RFC 9449 §5.0: a public client's refresh token is bound to its DPoP key, so a
        # stolen one is useless without the private key.
        require_key(current.dpop_jkt, jkt, "refresh token")
        scopes = narrow_scopes(requested, current.scopes)
        validate_resource_for_grant(resources, current.resource)
        if grant is None or grant.revoked_at is not None:
            raise InvalidGrantError(_FAILURES[RotateStatus.REVOKED])
        raw, successor = new_refresh_token(ctx, grant, dpop_jkt=current.dpop_jkt, now=now)
        access, expires_in, booked = mint_access_token_with(ctx, ring, grant, scopes, now, jkt=jkt)
        sealed = seal_successor(ctx.cipher, presented, successor, raw) if grace > 0 else None
        minted.append((access, expires_in, scopes, raw))
        return IssuedTokens(booked, successor, sealed)

    # One transaction: read the token and its grant, run the plan, rotate, touch the grant
    # and book the access token.
    result = await ctx.storage.refresh_grant(ctx.tenant, presented, now, grace, plan)
    if result.status is RotateStatus.NOT_FOUND or not minted:
        raise InvalidGrantError(_FAILURES[RotateStatus.NOT_FOUND])
    access, expires_in, scopes, raw = minted[0]
    assert result.old is not None  # set for every status but NOT_FOUND
    old = result.old
    raw = await _answer(ctx, client, result.status, old, raw, now)
    ctx.audit(
        "token.refreshed",
        client_id=client.client_id,
        subject=old.subject,
        grant=old.grant_id,
        dpop=jkt is not None,
    )
    return TokenResponse(access, expires_in, scopes, raw, token_type=token_type(jkt))


async def _answer(
    ctx: ServerContext, client: Client, status: RotateStatus, old: RefreshToken, raw: str, now: int
) -> str:
    """The raw refresh token to answer with after the rotation said ``status``."""
    if status is RotateStatus.OK:
        return raw
    if status is RotateStatus.SUPERSEDED:
        ctx.audit("refresh_token.superseded", client_id=client.client_id, grant=old.grant_id)
        try:
            return open_successor(ctx.cipher, old)
        except ConfigurationError as exc:
            # Never a new chain instead: that would fork the grant. The client may retry
            # once every node shares the storage key.
            ctx.audit("refresh_token.successor_unavailable", grant=old.grant_id)
            raise TemporarilyUnavailableError(
                "the refresh token's successor cannot be read; try again later",
                detail=str(exc),
            ) from None
    if status is RotateStatus.REUSED:
        await ctx.storage.revoke_grant(ctx.tenant, old.grant_id, now)
        ctx.audit("refresh_token.reused", client_id=client.client_id, grant=old.grant_id)
        raise InvalidGrantError("refresh token was already used; the grant is revoked")
    raise InvalidGrantError(_FAILURES[status])


def _successor_associated(tenant_id: str, old_hash: str, successor_hash: str) -> str:
    # Binds the sealed value to the row it sits on and to the successor it must hash to: a
    # copy moved to another token, tenant or successor does not open.
    return f"ostiary-refresh-successor|{tenant_id}|{old_hash}|{successor_hash}"


def seal_successor(cipher: SecretCipher, old_hash: str, successor: RefreshToken, raw: str) -> str:
    """``raw`` (the successor of ``old_hash``) sealed for the old token's row."""
    associated = _successor_associated(successor.tenant_id, old_hash, successor.token_hash)
    return cipher.encrypt(raw, associated)


def open_successor(cipher: SecretCipher, old: RefreshToken) -> str:
    """The raw successor a rotated token's row keeps for its grace window.

    Raises:
        ConfigurationError: The storage encryption key is not the one that sealed it (a
            node configured with another key), or the row holds no sealed successor.
    """
    if old.sealed_successor is None or old.successor_hash is None:
        raise ConfigurationError("the rotated refresh token keeps no sealed successor")
    associated = _successor_associated(old.tenant_id, old.token_hash, old.successor_hash)
    try:
        raw = cipher.decrypt(old.sealed_successor, associated)
    except DecryptionError as exc:
        raise ConfigurationError(
            f"a refresh token's successor does not decrypt with {cipher.source}: every node "
            "must share one storage.encryption_key"
        ) from exc
    if not secrets_equal(hash_secret(raw), old.successor_hash):
        raise ConfigurationError("a refresh token's sealed successor does not match its hash")
    return raw
