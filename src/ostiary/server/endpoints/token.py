"""Token, revocation and introspection endpoints (OAuth 2.1 §3.2; RFC 7009 §2; RFC 7662 §2).

Thin adapters: read a bounded form, rate-limit per address, call the core, render JSON with
``Cache-Control: no-store``. The token endpoint hands every ``DPoP`` header to the core
(RFC 9449 §5) and, when server nonces are on, sends the current one with each answer.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core import revocation
from ostiary.core.context import ServerContext
from ostiary.core.dpop_token import nonce_source
from ostiary.core.grants import authenticate, exchange
from ostiary.server.http import rate_limit, read_form
from ostiary.server.responses import Endpoint, json_endpoint, json_response


def token_endpoint(ctx: ServerContext) -> Endpoint:
    limit = ctx.settings.server.max_body_bytes

    @json_endpoint("token")
    async def token(request: Request) -> Response:
        await rate_limit(ctx, request, "token")
        params = await read_form(request, limit)
        dpop = request.headers.getlist("dpop")
        result = await exchange(ctx, params, request.headers.get("authorization"), dpop)
        nonces = nonce_source(ctx)
        # RFC 9449 §8.2: hand out the nonce on success too, so the next request has it.
        headers = {"DPoP-Nonce": nonces.current(ctx.clock())} if nonces is not None else None
        return json_response(result.to_dict(), headers=headers)

    return token


def revocation_endpoint(ctx: ServerContext) -> Endpoint:
    limit = ctx.settings.server.max_body_bytes

    @json_endpoint("revocation")
    async def revoke(request: Request) -> Response:
        await rate_limit(ctx, request, "token")
        params = await read_form(request, limit)
        client = await authenticate(ctx, params, request.headers.get("authorization"))
        await revocation.revoke(ctx, client, params.require("token"), params.get("token_type_hint"))
        return json_response({})

    return revoke


def introspection_endpoint(ctx: ServerContext) -> Endpoint:
    limit = ctx.settings.server.max_body_bytes

    @json_endpoint("introspection")
    async def introspect(request: Request) -> Response:
        params = await read_form(request, limit)
        client = await authenticate(ctx, params, request.headers.get("authorization"))
        return json_response(await revocation.introspect(ctx, client, params.require("token")))

    return introspect
