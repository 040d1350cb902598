"""The operator console's dashboard at ``{issuer}/admin`` and the counts its charts read.

The shell around it (who may enter, the frame, forms) is :mod:`ostiary.server.admin_pages`.
The dashboard keeps the usual CSP (``frame-ancestors 'none'``), adding only ``script-src
'self'`` and ``connect-src 'self'`` for its charts script, which reads
``/admin/api/series`` (JSON, same origin).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core.context import ServerContext
from ostiary.core.models import User
from ostiary.errors import InvalidRequestError
from ostiary.server.activity import WINDOWS, Activity
from ostiary.server.admin_pages import View, admin_or_refusal, admin_page
from ostiary.server.responses import Endpoint, json_endpoint, json_response


def dashboard_page(ctx: ServerContext, activity: Activity) -> Endpoint:
    """``GET /admin``: storage counts, the charts, the latest events."""
    return admin_page(ctx, "admin_dashboard.html", "", dashboard_view(ctx, activity), scripts=True)


def dashboard_view(ctx: ServerContext, activity: Activity) -> View:
    async def dashboard(request: Request, admin: User) -> dict[str, Any]:
        stats = await ctx.storage.stats(ctx.tenant, ctx.clock())
        return {
            "stats": stats,
            "series_url": f"{ctx.issuer}/admin/api/series",
            "recent": [
                {**r, "at_iso": _iso(r["at"]), "at_text": _iso(r["at"])[11:16] + " UTC"}
                for r in activity.recent(limit=8)
            ],
        }

    return dashboard


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def series_endpoint(ctx: ServerContext, activity: Activity) -> Endpoint:
    """``GET /admin/api/series?window=hour|day``: the charts' counts as JSON."""

    @json_endpoint("admin.series")
    async def series(request: Request) -> Response:
        admin = await admin_or_refusal(ctx, request, api=True)
        if isinstance(admin, Response):
            return admin
        window = request.query_params.get("window", "hour")
        if window not in WINDOWS:
            raise InvalidRequestError("window must be hour or day")
        return json_response(activity.series("hour" if window == "hour" else "day"))

    return series
