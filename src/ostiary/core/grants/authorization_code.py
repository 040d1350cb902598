"""The authorization_code grant at the token endpoint (OAuth 2.1 §4.1.3; RFC 7636 §4.6).

A code is single-use: the storage consumes it atomically, and a second presentation revokes
the whole grant with every token issued from it (OAuth 2.1 §4.1.2, RFC 9700 §4.5.3).
"""

from __future__ import annotations

from typing import Final

from ostiary.core import pkce
from ostiary.core.context import ServerContext
from ostiary.core.dpop_token import binds_refresh_token, require_key
from ostiary.core.issuance import issue_access_token, new_refresh_token, wants_refresh_token
from ostiary.core.models import AuthorizationCode, Client, ConsumeStatus
from ostiary.core.requests import Params
from ostiary.core.resource import validate_resource_for_grant
from ostiary.core.secrets import hash_secret, secrets_equal
from ostiary.core.tokens import TokenResponse, token_type
from ostiary.errors import InvalidGrantError, OAuthError

GRANT_TYPE: Final = "authorization_code"
PARAMETERS: Final = frozenset({"code", "redirect_uri", "code_verifier", "resource"})


async def handle(
    ctx: ServerContext, client: Client, params: Params, jkt: str | None = None
) -> TokenResponse:
    code = params.require("code")
    now = ctx.clock()
    result = await ctx.storage.consume_authorization_code(ctx.tenant, hash_secret(code), now)
    record = result.record
    if result.status is ConsumeStatus.REPLAYED and record is not None:
        await ctx.storage.revoke_grant(ctx.tenant, record.grant_id, now)
        ctx.audit("authorization_code.replayed", client_id=client.client_id, grant=record.grant_id)
        raise InvalidGrantError(
            "authorization code was already used; tokens issued from it are revoked"
        )
    if result.status is ConsumeStatus.EXPIRED:
        raise InvalidGrantError("authorization code expired")
    if result.status is not ConsumeStatus.OK or record is None:
        raise InvalidGrantError("authorization code is invalid")
    try:
        _check_code(record, client, params)
        # RFC 9449 §10: a code issued for dpop_jkt is redeemed only with a proof of that key.
        require_key(record.dpop_jkt, jkt, "authorization code")
    except OAuthError:
        # The code is spent either way; leave no half-used grant behind.
        await ctx.storage.revoke_grant(ctx.tenant, record.grant_id, now)
        raise
    return await _issue(ctx, client, record, jkt)


def _check_code(record: AuthorizationCode, client: Client, params: Params) -> None:
    if not secrets_equal(record.client_id, client.client_id):
        raise InvalidGrantError(
            "authorization code was issued to another client",
            detail=f"code of {record.client_id} presented by {client.client_id}",
        )
    redirect_uri = params.get("redirect_uri")
    # OAuth 2.1 §4.1.3: redirect_uri must match when the authorization request carried one;
    # when it did not, the parameter is OPTIONAL and, if sent, names the registered URI used.
    expected = record.redirect_uri or None
    if expected is None and redirect_uri is not None and redirect_uri in client.redirect_uris:
        expected = redirect_uri
    if redirect_uri != expected:
        raise InvalidGrantError("redirect_uri does not match the authorization request")
    pkce.verify_code_verifier(params.get("code_verifier"), record.code_challenge)
    validate_resource_for_grant(params.all("resource"), record.resource)


async def _issue(
    ctx: ServerContext, client: Client, record: AuthorizationCode, jkt: str | None
) -> TokenResponse:
    grant = await ctx.storage.get_grant(ctx.tenant, record.grant_id)
    if grant is None or grant.revoked_at is not None:
        raise InvalidGrantError("the grant behind this code was revoked")
    access_token, expires_in = await issue_access_token(ctx, grant, record.scopes, jkt=jkt)
    refresh = None
    if wants_refresh_token(ctx, client, record.scopes):
        bound = binds_refresh_token(client, jkt)
        refresh, refresh_record = new_refresh_token(ctx, grant, dpop_jkt=bound)
        await ctx.storage.save_refresh_token(refresh_record)
    ctx.audit(
        "token.issued",
        grant_type=GRANT_TYPE,
        client_id=client.client_id,
        subject=grant.subject,
        grant=grant.grant_id,
        refresh=refresh is not None,
        dpop=jkt is not None,
    )
    return TokenResponse(
        access_token, expires_in, record.scopes, refresh, token_type=token_type(jkt)
    )
