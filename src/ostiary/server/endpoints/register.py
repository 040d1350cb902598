"""Dynamic client registration (RFC 7591 §3) and its management protocol (RFC 7592 §2).

Kept for MCP clients that predate Client ID Metadata Documents. Management calls authenticate
with the registration access token, compared by hash in constant time.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core.clients import forget_client
from ostiary.core.context import ServerContext
from ostiary.core.models import Client
from ostiary.core.registration import (
    apply_client_update,
    build_registered_client,
    build_registration_response,
)
from ostiary.core.secrets import matches_hash
from ostiary.errors import InvalidTokenError
from ostiary.server.http import rate_limit, read_json_object
from ostiary.server.responses import Endpoint, json_endpoint, json_response


def _client_uri(ctx: ServerContext, client_id: str) -> str:
    return f"{ctx.issuer}/register/{client_id}"


def registration_endpoint(ctx: ServerContext) -> Endpoint:
    settings = ctx.settings

    @json_endpoint("registration")
    async def register(request: Request) -> Response:
        await rate_limit(ctx, request, "register")
        metadata = await read_json_object(request, settings.server.max_body_bytes)
        client, issued = build_registered_client(
            metadata,
            tenant_id=ctx.tenant,
            now=ctx.clock(),
            supported_scopes=settings.scopes.supported,
            client_credentials_enabled=settings.features.client_credentials,
            jwt_bearer_enabled=bool(settings.enterprise.trusted_issuers),
            secret_ttl=settings.tokens.client_secret_ttl,
        )
        await ctx.storage.save_client(client)
        ctx.audit("client.registered", client_id=client.client_id, method="dcr")
        body = build_registration_response(
            client, issued, registration_client_uri=_client_uri(ctx, client.client_id)
        )
        return json_response(body, 201)

    return register


class RegistrationTokenError(InvalidTokenError):
    """A refused registration access token: 401 with a Bearer challenge (RFC 6750 §3).

    The registration access token is an OAuth 2.0 bearer token (RFC 7592 §1.2), so the 401
    must say so: a bare ``Bearer`` when none was sent (RFC 6750 §3.1), else ``invalid_token``.
    """

    def __init__(self, description: str, *, token_sent: bool) -> None:
        super().__init__(description)
        self.token_sent = token_sent

    def headers(self) -> dict[str, str]:
        challenge = 'Bearer error="invalid_token"' if self.token_sent else "Bearer"
        return {"WWW-Authenticate": challenge}


async def _authorized_client(ctx: ServerContext, request: Request) -> Client:
    """The client named in the path, if the bearer registration access token is its own."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    client_id = str(request.path_params["client_id"])
    # A NUL (from %00 in the path) is in no client id, and PostgreSQL text cannot hold it.
    client = None if "\x00" in client_id else await ctx.storage.get_client(ctx.tenant, client_id)
    if scheme.lower() != "bearer" or not token.strip():
        raise RegistrationTokenError("a registration access token is required", token_sent=False)
    if (
        client is None
        or client.disabled
        or not matches_hash(token.strip(), client.registration_access_token_hash)
    ):
        # RFC 7592 §2.1: an unknown client and a wrong token look the same. A client an
        # operator disabled is unknown here too: it can neither read nor undo that.
        raise RegistrationTokenError("the registration access token is invalid", token_sent=True)
    return client


def client_management_endpoint(ctx: ServerContext) -> Endpoint:
    settings = ctx.settings

    @json_endpoint("registration_management")
    async def manage(request: Request) -> Response:
        client = await _authorized_client(ctx, request)
        uri = _client_uri(ctx, client.client_id)
        if request.method == "GET":
            return json_response(
                build_registration_response(client, None, registration_client_uri=uri)
            )
        if request.method == "DELETE":
            await ctx.storage.delete_client(ctx.tenant, client.client_id)
            forget_client(ctx, client.client_id)
            ctx.audit("client.deleted", client_id=client.client_id)
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        metadata = await read_json_object(request, settings.server.max_body_bytes)
        updated = apply_client_update(
            client,
            metadata,
            now=ctx.clock(),
            supported_scopes=settings.scopes.supported,
            client_credentials_enabled=settings.features.client_credentials,
            jwt_bearer_enabled=bool(settings.enterprise.trusted_issuers),
        )
        await ctx.storage.save_client(updated)
        forget_client(ctx, client.client_id)
        ctx.audit("client.updated", client_id=client.client_id)
        return json_response(
            build_registration_response(updated, None, registration_client_uri=uri)
        )

    return manage
