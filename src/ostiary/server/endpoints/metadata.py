"""Discovery endpoints: RFC 8414 metadata, OpenID discovery and the JWKS (RFC 7517 §5)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core.context import ServerContext
from ostiary.core.metadata import build_metadata
from ostiary.server.responses import Endpoint, json_endpoint, json_response

PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}


def metadata_endpoint(ctx: ServerContext) -> Endpoint:
    document = build_metadata(ctx.settings)

    @json_endpoint("metadata")
    async def metadata(request: Request) -> Response:
        response = json_response(document)
        response.headers.update(PUBLIC_CACHE)
        del response.headers["pragma"]
        return response

    return metadata


def jwks_endpoint(ctx: ServerContext) -> Endpoint:
    @json_endpoint("jwks")
    async def jwks(request: Request) -> Response:
        ring = await ctx.keys.ring(ctx.clock())
        response = json_response(ring.jwks())
        response.headers["Cache-Control"] = "public, max-age=60"
        del response.headers["pragma"]
        return response

    return jwks
