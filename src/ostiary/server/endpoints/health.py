"""Liveness and the stats the seeds' ``/oauth/stats`` endpoint showed (counts only, no ids)."""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import Response

from ostiary import __version__
from ostiary.core.context import ServerContext
from ostiary.server.responses import Endpoint, json_endpoint, json_response


def health_endpoint(ctx: ServerContext) -> Endpoint:
    @json_endpoint("health")
    async def health(request: Request) -> Response:
        ok = await ctx.storage.healthy()
        body = {"status": "ok" if ok else "degraded", "version": __version__}
        return json_response(body, 200 if ok else 503)

    return health


def stats_endpoint(ctx: ServerContext) -> Endpoint:
    @json_endpoint("stats")
    async def stats(request: Request) -> Response:
        counts = await ctx.storage.stats(ctx.tenant, ctx.clock())
        return json_response(asdict(counts))

    return stats
