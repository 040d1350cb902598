"""Token, revocation and introspection endpoints (OAuth 2.1 §3.2; RFC 7009 §2; RFC 7662 §2).

Thin adapters: read a bounded form, rate-limit per address, call the core, render JSON with
``Cache-Control: no-store``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core import revocation
from ostiary.core.context import ServerContext
from ostiary.core.grants import authenticate, exchange
from ostiary.server.http import rate_limit, read_form
from ostiary.server.responses import Endpoint, json_endpoint, json_response


def token_endpoint(ctx: ServerContext) -> Endpoint:
    limit = ctx.settings.server.max_body_bytes

    @json_endpoint("token")
    async def token(request: Request) -> Response:
        await rate_limit(ctx, request, "token")
        params = await read_form(request, limit)
        result = await exchange(ctx, params, request.headers.get("authorization"))
        return json_response(result.to_dict())

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
