"""The authorization server's endpoints, one module per URL group; this file only lists routes.

No module in this package imports another: pages two endpoints share are in
:mod:`ostiary.server.pages`, the console's shell in :mod:`ostiary.server.admin_pages`.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from ostiary.core.context import ServerContext
from ostiary.server.activity import Activity
from ostiary.server.admin_pages import admin_actions
from ostiary.server.endpoints import admin, admin_clients, admin_system, admin_users

__all__ = ["admin_routes"]


def admin_routes(ctx: ServerContext, activity: Activity) -> list[BaseRoute]:
    """Every URL of the operator console."""
    base = f"{ctx.settings.issuer_path}/admin"
    actions = {
        **admin_users.actions(ctx),
        **admin_clients.actions(ctx),
        **admin_system.actions(ctx),
    }
    return [
        Route(base, admin.dashboard_page(ctx, activity), methods=["GET"]),
        Route(f"{base}/api/series", admin.series_endpoint(ctx, activity), methods=["GET"]),
        Route(f"{base}/users", admin_users.users_page(ctx), methods=["GET"]),
        Route(f"{base}/clients", admin_clients.clients_page(ctx), methods=["GET"]),
        Route(f"{base}/client", admin_clients.client_page(ctx), methods=["GET"]),
        Route(f"{base}/grants", admin_clients.grants_page(ctx), methods=["GET"]),
        Route(f"{base}/keys", admin_system.keys_page(ctx), methods=["GET"]),
        Route(f"{base}/audit", admin_system.audit_page(ctx, activity), methods=["GET"]),
        Route(f"{base}/{{section}}/{{action}}", admin_actions(ctx, actions), methods=["POST"]),
    ]
