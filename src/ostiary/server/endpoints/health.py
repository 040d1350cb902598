"""Liveness, and the stats the seeds' ``/oauth/stats`` endpoint showed (counts only, no ids).

``/stats`` is served only with ``server.stats_token`` set, and only to a caller that sends it
as a bearer credential; unset, the route does not exist (404).
"""

from __future__ import annotations

import hmac
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import Response

from ostiary import __version__
from ostiary.core.context import ServerContext
from ostiary.server.responses import NO_STORE, Endpoint, json_endpoint, json_response


def health_endpoint(ctx: ServerContext) -> Endpoint:
    @json_endpoint("health")
    async def health(request: Request) -> Response:
        ok = await ctx.storage.healthy()
        body = {"status": "ok" if ok else "degraded", "version": __version__}
        return json_response(body, 200 if ok else 503)

    return health


def stats_endpoint(ctx: ServerContext, token: str) -> Endpoint:
    """``GET /stats`` for a caller presenting ``Authorization: Bearer <server.stats_token>``.

    The counts say how many users, clients and live grants and tokens the deployment has:
    an operator's business, not the public's. The secret is compared in constant time.
    """
    expected = f"Bearer {token}".encode()

    @json_endpoint("stats")
    async def stats(request: Request) -> Response:
        presented = request.headers.get("authorization", "").encode("latin-1", "replace")
        if not hmac.compare_digest(presented, expected):
            ctx.audit("stats.refused", presented=bool(presented))
            return Response(
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="stats"', **NO_STORE},
            )
        counts = await ctx.storage.stats(ctx.tenant, ctx.clock())
        return json_response(asdict(counts))

    return stats
