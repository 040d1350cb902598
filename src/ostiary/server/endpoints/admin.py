"""The operator console at ``{issuer}/admin``: who may enter, the page frame, the dashboard.

Only a signed-in user with ``admin`` set (``ostiary users admin grant``) gets in, and, unless
``security.admin_requires_totp`` is false, only one with an enrolled TOTP second factor (their
session then began with a code). A visitor who is not signed in goes through the same sign-in
interaction as the connected-apps page and comes back here; anyone else signed in gets 403.
Every form carries the page CSRF token bound to this browser (``sessions.page_csrf_token``),
and the pages keep the usual CSP (``frame-ancestors 'none'``), adding only ``script-src
'self'`` and ``connect-src 'self'`` for the charts script on the dashboard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ostiary.core.context import ServerContext
from ostiary.core.models import User
from ostiary.errors import InvalidRequestError, OAuthError
from ostiary.server import sessions
from ostiary.server.activity import WINDOWS, Activity
from ostiary.server.http import read_form
from ostiary.server.interactions import (
    FORM_EXPIRED,
    error_page,
    page_context,
    see_other,
    signed_in_user,
    start_account_interaction,
)
from ostiary.server.responses import Endpoint, json_response, unexpected
from ostiary.server.ui.render import render_page

#: A page's view: the template context for the admin, or a response of its own.
View = Callable[[Request, User], Awaitable[dict[str, Any] | Response]]
#: A form action: does the change and returns where to go next, relative to ``/admin/``.
Action = Callable[[dict[str, str], User], Awaitable[str]]

NAV = (
    ("", "Dashboard"),
    ("users", "Users"),
    ("clients", "Clients"),
    ("grants", "Grants"),
    ("keys", "Signing keys"),
    ("audit", "Audit log"),
)
#: What ``?done=`` may say after an action (a key, so the query cannot put text on the page).
NOTICES = {
    "user-added": "User added.",
    "user-disabled": "User disabled; every grant they gave was revoked.",
    "user-enabled": "User enabled. Their revoked grants stay revoked.",
    "totp-reset": "Second factor removed. The user signs in with a password until they enroll.",
    "user-grants-revoked": "Every grant of the user was revoked.",
    "client-disabled": "Client disabled: it is refused everywhere. Its grants are kept.",
    "client-enabled": "Client enabled.",
    "grant-revoked": "Grant revoked with its tokens.",
    "keys-rotated": "A new signing key is active; the old one stays published until its "
    "tokens expire.",
}
NO_TOTP = (
    "An administrator needs a second factor to use the console. Ask an operator to run "
    "`ostiary users totp enable {username}` on the server, add the code to an authenticator "
    "app, then sign out and sign in again."
)


async def admin_or_refusal(
    ctx: ServerContext, request: Request, *, api: bool = False
) -> User | Response:
    """The signed-in administrator, or the response that refuses everyone else."""
    signed_in = await signed_in_user(ctx, request)
    if signed_in is None:
        if api:
            return json_response({"error": "login_required"}, 401)
        return await start_account_interaction(ctx, request, "admin")
    user = signed_in[1]
    reason = None
    if not user.admin:
        reason = "not_admin"
    elif ctx.settings.security.admin_requires_totp and not user.totp_secret:
        reason = "no_second_factor"
    if reason is None:
        return user
    ctx.audit("admin.refused", subject=user.user_id, reason=reason)
    if api:
        return json_response({"error": "forbidden"}, 403)
    name = user.display_name or user.username
    if reason == "not_admin":
        heading, message = (
            "Administrators only",
            f"You are signed in as {name}, who cannot use the operator console.",
        )
    else:
        heading, message = "Enroll a second factor", NO_TOTP.format(username=user.username)
    return render_page(
        "admin_refused.html",
        status_code=403,
        heading=heading,
        message=message,
        account_url=f"{ctx.issuer}/account",
        **page_context(ctx),
    )


def render_admin(
    ctx: ServerContext,
    request: Request,
    admin: User,
    template: str,
    *,
    section: str,
    scripts: bool = False,
    **context: Any,
) -> Response:
    """An admin page: the frame (navigation, notice, sign-out) around ``template``."""
    browser, is_new = sessions.browser_id_or_new(ctx, request)
    response = render_page(
        template,
        scripts=scripts,
        admin_base=f"{ctx.issuer}/admin",
        nav=[
            (f"{ctx.issuer}/admin/{path}".rstrip("/"), label, path == section)
            for path, label in NAV
        ],
        notice=NOTICES.get(request.query_params.get("done", "")),
        admin_name=admin.display_name or admin.username,
        csrf_token=sessions.page_csrf_token(browser, "admin"),
        logout_action=f"{ctx.issuer}/logout",
        logout_csrf_token=sessions.page_csrf_token(browser, "logout"),
        **context,
        **page_context(ctx),
    )
    if is_new:
        sessions.set_browser_cookie(ctx, response, browser)
    return response


def admin_page(
    ctx: ServerContext, template: str, section: str, view: View, *, scripts: bool = False
) -> Endpoint:
    """A GET page of the console: refusal, or ``view``'s context rendered in ``template``."""

    async def page(request: Request) -> Response:
        try:
            admin = await admin_or_refusal(ctx, request)
            if isinstance(admin, Response):
                return admin
            result = await view(request, admin)
            if isinstance(result, Response):
                return result
            return render_admin(
                ctx, request, admin, template, section=section, scripts=scripts, **result
            )
        except OAuthError as exc:
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, f"admin.{section or 'dashboard'}"), 500)

    return page


def admin_actions(ctx: ServerContext, actions: Mapping[str, Action]) -> Endpoint:
    """``POST /admin/{section}/{action}``: CSRF token, then the administrator, then the change.

    The token is checked first, as on every other form: a forged post learns nothing, not
    even whether the browser is signed in.
    """

    async def act(request: Request) -> Response:
        try:
            form = await read_form(request, ctx.settings.server.max_body_bytes)
            browser = sessions.browser_id(ctx, request)
            if not sessions.page_csrf_ok(browser, "admin", form.get("csrf_token")):
                ctx.audit("csrf.rejected", page="admin")
                raise InvalidRequestError(FORM_EXPIRED)
            admin = await admin_or_refusal(ctx, request)
            if isinstance(admin, Response):
                return admin
            path = f"{request.path_params['section']}/{request.path_params['action']}"
            action = actions.get(path)
            if action is None:
                raise InvalidRequestError("There is no such action.", status_code=404)
            return see_other(f"{ctx.issuer}/admin/{await action(form.single, admin)}")
        except OAuthError as exc:
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, "admin.action"), 500)

    return act


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

    async def series(request: Request) -> Response:
        try:
            admin = await admin_or_refusal(ctx, request, api=True)
            if isinstance(admin, Response):
                return admin
            window = request.query_params.get("window", "hour")
            if window not in WINDOWS:
                raise InvalidRequestError("window must be hour or day")
            return json_response(activity.series("hour" if window == "hour" else "day"))
        except OAuthError as exc:
            return json_response(exc.to_dict(), exc.status_code)
        except Exception as exc:
            error = unexpected(exc, "admin.series")
            return json_response(error.to_dict(), error.status_code)

    return series


def admin_routes(ctx: ServerContext, activity: Activity) -> list[BaseRoute]:
    """Every URL of the console."""
    from ostiary.server.endpoints import admin_clients, admin_system, admin_users

    base = f"{ctx.settings.issuer_path}/admin"
    dashboard = admin_page(
        ctx, "admin_dashboard.html", "", dashboard_view(ctx, activity), scripts=True
    )
    actions = {
        **admin_users.actions(ctx),
        **admin_clients.actions(ctx),
        **admin_system.actions(ctx),
    }
    return [
        Route(base, dashboard, methods=["GET"]),
        Route(f"{base}/api/series", series_endpoint(ctx, activity), methods=["GET"]),
        Route(f"{base}/users", admin_users.users_page(ctx), methods=["GET"]),
        Route(f"{base}/clients", admin_clients.clients_page(ctx), methods=["GET"]),
        Route(f"{base}/client", admin_clients.client_page(ctx), methods=["GET"]),
        Route(f"{base}/grants", admin_clients.grants_page(ctx), methods=["GET"]),
        Route(f"{base}/keys", admin_system.keys_page(ctx), methods=["GET"]),
        Route(f"{base}/audit", admin_system.audit_page(ctx, activity), methods=["GET"]),
        Route(f"{base}/{{section}}/{{action}}", admin_actions(ctx, actions), methods=["POST"]),
    ]
