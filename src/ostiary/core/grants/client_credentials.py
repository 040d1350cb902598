"""The client_credentials grant for machine clients (OAuth 2.1 §4.2; MCP ext-auth SEP-1046).

Only confidential clients registered for the grant may use it. The client is its own subject,
tokens are bound to one resource like every other token, and no refresh token is issued.
"""

from __future__ import annotations

from typing import Final

from ostiary.core.clients import is_confidential, registered_scope_is_ceiling
from ostiary.core.context import ServerContext
from ostiary.core.issuance import mint_access_token_for
from ostiary.core.models import Client, Grant
from ostiary.core.requests import Params
from ostiary.core.resource import validate_resources
from ostiary.core.scopes import parse_scope, resolve_requested_scopes
from ostiary.core.secrets import new_secret
from ostiary.core.tokens import TokenResponse, token_type
from ostiary.errors import UnauthorizedClientError

GRANT_TYPE: Final = "client_credentials"
PARAMETERS: Final = frozenset({"scope", "resource"})


async def handle(
    ctx: ServerContext, client: Client, params: Params, jkt: str | None = None
) -> TokenResponse:
    if not ctx.settings.features.client_credentials or not is_confidential(client):
        raise UnauthorizedClientError("client_credentials needs a confidential client")
    settings = ctx.settings
    scopes = resolve_requested_scopes(
        parse_scope(params.get("scope")),
        client_scope=client.scope,
        registered_scope_is_ceiling=registered_scope_is_ceiling(client),
        supported=[s for s in settings.scopes.supported if s != "offline_access"],
        default=settings.scopes.default,
    )
    resource = validate_resources(params.all("resource"), allowed=settings.allowed_resources)
    now = ctx.clock()
    grant = Grant(
        tenant_id=ctx.tenant,
        grant_id=new_secret(16),
        client_id=client.client_id,
        subject=client.client_id,
        scopes=scopes,
        resource=resource or settings.default_resource,
        created_at=now,
        expires_at=now + settings.tokens.access_token_ttl,
    )
    access_token, expires_in, record = await mint_access_token_for(ctx, grant, scopes, jkt=jkt)
    await ctx.storage.open_grant(grant, access_token=record)  # one transaction
    ctx.audit(
        "token.issued",
        grant_type=GRANT_TYPE,
        client_id=client.client_id,
        grant=grant.grant_id,
        dpop=jkt is not None,
    )
    return TokenResponse(access_token, expires_in, scopes, token_type=token_type(jkt))
