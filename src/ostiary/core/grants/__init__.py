"""Token endpoint dispatch (OAuth 2.1 §3.2; RFC 6749 §5): authenticate, check DPoP, run the grant.

The DPoP proof (RFC 9449 §5) is checked after client authentication and before the grant,
so a request with a bad proof spends no code and rotates no refresh token; each grant gets
the proof key's thumbprint (or None) to bind what it issues.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from ostiary.core import client_auth
from ostiary.core.clients import load_client
from ostiary.core.context import ServerContext
from ostiary.core.dpop_token import check_token_proof
from ostiary.core.grants import authorization_code, client_credentials, jwt_bearer, refresh_token
from ostiary.core.models import Client
from ostiary.core.requests import Params
from ostiary.core.tokens import TokenResponse
from ostiary.errors import (
    InvalidClientError,
    InvalidClientMetadataError,
    InvalidRequestError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)

#: Grant types short and plain enough to repeat in an error_description.
_ECHOABLE: Final = re.compile(r"^[A-Za-z0-9:._~/-]{1,100}$")

#: ``(ctx, client, params, jkt)``: ``jkt`` is the DPoP proof key's thumbprint, or None.
Handler = Callable[[ServerContext, Client, Params, str | None], Awaitable[TokenResponse]]

GRANTS: Final[Mapping[str, Handler]] = {
    authorization_code.GRANT_TYPE: authorization_code.handle,
    refresh_token.GRANT_TYPE: refresh_token.handle,
    client_credentials.GRANT_TYPE: client_credentials.handle,
    jwt_bearer.GRANT_TYPE: jwt_bearer.handle,
}


async def exchange(
    ctx: ServerContext,
    params: Params,
    authorization_header: str | None,
    dpop: Sequence[str] = (),
) -> TokenResponse:
    """Run one token request end to end; raises an OAuthError on any failure.

    ``dpop`` holds every ``DPoP`` header value the request carried.
    """
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise InvalidRequestError("grant_type is required")
    handler = GRANTS.get(grant_type)
    if handler is None or (grant_type == jwt_bearer.GRANT_TYPE and not jwt_bearer.is_enabled(ctx)):
        raise UnsupportedGrantTypeError(_unsupported(grant_type))
    client = await authenticate(ctx, params, authorization_header)
    if grant_type not in client.grant_types:
        raise UnauthorizedClientError(f"client is not registered for grant_type {grant_type}")
    jkt = await check_token_proof(ctx, client, dpop)
    return await handler(ctx, client, params, jkt)


def _unsupported(grant_type: str) -> str:
    """The description for an unknown grant type, naming it only when it is safe to echo.

    ``error_description`` is limited to RFC 6749 §5.2's charset; a client-chosen value with a
    quote, backslash, control or non-ASCII character would otherwise make the error itself
    fail (a 500).
    """
    if _ECHOABLE.match(grant_type):
        return f"grant_type '{grant_type}' is not supported"
    return "grant_type is not supported"


async def authenticate(
    ctx: ServerContext, params: Params, authorization_header: str | None
) -> Client:
    """Authenticate the calling client by whichever single method it used (OAuth 2.1 §2.4)."""
    presented = client_auth.parse_client_credentials(authorization_header, params.single)
    used_basic = presented.method == "client_secret_basic"
    client = None
    # A NUL can still arrive through the Basic header (percent-encoded); no client id has one.
    if presented.client_id is not None and "\x00" not in presented.client_id:
        try:
            client = await load_client(ctx, presented.client_id)
        except InvalidClientMetadataError as exc:
            raise InvalidClientError(
                exc.description, detail=exc.detail, used_basic=used_basic
            ) from None
    now = ctx.clock()

    async def remember(jti: str, expires_at: int) -> bool:
        key = f"client_assertion:{presented.client_id}:{jti}"
        return await ctx.storage.remember_jti(ctx.tenant, key, expires_at, now)

    async def load_jwks(found: Client) -> Mapping[str, Any]:
        if ctx.jwks is not None:
            return await ctx.jwks.load(found, now=now)
        return found.jwks or {"keys": []}

    try:
        return await client_auth.authenticate_client(
            presented,
            client,
            audiences=(ctx.issuer, f"{ctx.issuer}/token"),
            now=now,
            remember_jti=remember,
            load_jwks=load_jwks,
        )
    except InvalidClientError:
        ctx.audit("client.authentication_failed", client_id=presented.client_id)
        raise
