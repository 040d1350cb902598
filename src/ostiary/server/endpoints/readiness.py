"""Readiness: can this process serve tokens right now? (``GET /ready``; liveness is ``/health``).

A load balancer or orchestrator sends traffic only to a node that answers 200 here. Each
check has its own time limit, and a failed one is named in the 503 body with a short reason
(the exception's class, never its message: the endpoint is unauthenticated):

* ``storage``: a round trip to the database (PostgreSQL or SQLite);
* ``redis``: a round trip to Redis, when ``storage.redis_url`` is set;
* ``signing_key``: the key ring loads and opens with the storage key, with an active key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core.context import ServerContext
from ostiary.server.responses import Endpoint, json_endpoint, json_response

__all__ = ["readiness_endpoint"]

#: Seconds each check may take before it counts as down.
CHECK_TIMEOUT_SECONDS: Final = 2.0


async def _check(probe: Callable[[], Awaitable[bool]]) -> str:
    try:
        ok = await asyncio.wait_for(probe(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"timed out after {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # a readiness probe reports, it never fails the request
        return f"unavailable ({type(exc).__name__})"
    return "ok" if ok else "unavailable"


def readiness_endpoint(ctx: ServerContext) -> Endpoint:
    storage: Any = ctx.storage
    durable = getattr(storage, "durable", storage)
    ephemeral = getattr(storage, "ephemeral", None)

    async def signing_key() -> bool:
        ring = await ctx.keys.ring(ctx.clock())
        return ring.active is not None

    probes: dict[str, Callable[[], Awaitable[bool]]] = {"storage": durable.healthy}
    if ephemeral is not None:
        probes["redis"] = ephemeral.healthy
    probes["signing_key"] = signing_key

    @json_endpoint("readiness")
    async def ready(request: Request) -> Response:
        results = await asyncio.gather(*(_check(probe) for probe in probes.values()))
        checks = dict(zip(probes, results, strict=True))
        down = {name: reason for name, reason in checks.items() if reason != "ok"}
        if down:
            reason = "; ".join(f"{name}: {why}" for name, why in down.items())
            body = {"status": "unavailable", "reason": reason, "checks": checks}
            return json_response(body, 503, headers={"Retry-After": "5"})
        return json_response({"status": "ready", "checks": checks})

    return ready
