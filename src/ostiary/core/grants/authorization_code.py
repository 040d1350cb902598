"""The authorization_code grant at the token endpoint (OAuth 2.1 §4.1.3; RFC 7636 §4.6).

A code is single-use: the storage consumes it atomically, and a second presentation revokes
the whole grant with every token issued from it (OAuth 2.1 §4.1.2, RFC 9700 §4.5.3). The
redemption is one storage transaction: consume, read the grant, check and mint (the plan
below, which cannot await), book the tokens.
"""

from __future__ import annotations

from typing import Final

from ostiary.core import pkce
from ostiary.core.context import ServerContext
from ostiary.core.dpop_token import binds_refresh_token, require_key
from ostiary.core.issuance import mint_access_token_with, new_refresh_token, wants_refresh_token
from ostiary.core.models import AuthorizationCode, Client, ConsumeStatus, Grant, IssuedTokens
from ostiary.core.requests import Params
from ostiary.core.resource import validate_resource_for_grant
from ostiary.core.secrets import hash_secret, secrets_equal
from ostiary.core.tokens import TokenResponse, token_type
from ostiary.errors import InvalidGrantError

GRANT_TYPE: Final = "authorization_code"
PARAMETERS: Final = frozenset({"code", "redirect_uri", "code_verifier", "resource"})


async def handle(
    ctx: ServerContext, client: Client, params: Params, jkt: str | None = None
) -> TokenResponse:
    code = params.require("code")
    now = ctx.clock()
    # Loaded before the transaction: the plan runs inside it and must not await.
    ring = await ctx.keys.ring(now)
    answer: list[TokenResponse] = []

    def plan(record: AuthorizationCode, grant: Grant | None) -> IssuedTokens:
        """Check the code (the storage has consumed it) and mint what the grant gives."""
        _check_code(record, client, params)
        # RFC 9449 §10: a code issued for dpop_jkt is redeemed only with a proof of that key.
        require_key(record.dpop_jkt, jkt, "authorization code")
        if grant is None or grant.revoked_at is not None:
            raise InvalidGrantError("the grant behind this code was revoked")
        access, expires_in, booked = mint_access_token_with(
            ctx, ring, grant, record.scopes, now, jkt=jkt
        )
        refresh = refresh_record = None
        if wants_refresh_token(ctx, client, record.scopes):
            bound = binds_refresh_token(client, jkt)
            refresh, refresh_record = new_refresh_token(ctx, grant, dpop_jkt=bound, now=now)
        answer.append(
            TokenResponse(access, expires_in, record.scopes, refresh, token_type=token_type(jkt))
        )
        return IssuedTokens(booked, refresh_record)

    # One transaction: consume the code, read its grant, run the plan, book the tokens. A
    # refused plan leaves the code spent and the grant revoked (no half-used grant).
    result = await ctx.storage.redeem_authorization_code(ctx.tenant, hash_secret(code), now, plan)
    record = result.record
    if result.status is ConsumeStatus.REPLAYED and record is not None:
        # The storage revoked the grant, with every token issued from it, in that transaction.
        ctx.audit("authorization_code.replayed", client_id=client.client_id, grant=record.grant_id)
        raise InvalidGrantError(
            "authorization code was already used; tokens issued from it are revoked"
        )
    if result.status is ConsumeStatus.EXPIRED:
        raise InvalidGrantError("authorization code expired")
    if result.status is not ConsumeStatus.OK or record is None or not answer:
        raise InvalidGrantError("authorization code is invalid")
    response = answer[0]
    ctx.audit(
        "token.issued",
        grant_type=GRANT_TYPE,
        client_id=client.client_id,
        subject=record.subject,
        grant=record.grant_id,
        refresh=response.refresh_token is not None,
        dpop=jkt is not None,
    )
    return response


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
