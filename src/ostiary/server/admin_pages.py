"""The operator console's shell (``{issuer}/admin``): who may enter, the page frame, forms.

Only a signed-in user with ``admin`` set (``ostiary users admin grant``) gets in, and, unless
``security.admin_requires_totp`` is false, only one with an enrolled TOTP second factor (their
session then began with a code). A visitor who is not signed in goes through the same sign-in
interaction as the connected-apps page and comes back here; anyone else signed in gets 403.
Every form carries the page CSRF token bound to this browser (``sessions.page_csrf_token``),
checked before anything else (OWASP ASVS V4.2.2).

Each console page (``server/endpoints/admin*.py``) is a :data:`View` handed to
:func:`admin_page`, and each form a named :data:`Action` served by :func:`admin_actions`;
errors render through :func:`ostiary.server.pages.page_endpoint` like every other page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core.context import ServerContext
from ostiary.core.models import User
from ostiary.errors import InvalidRequestError
from ostiary.server import sessions
from ostiary.server.http import read_form
from ostiary.server.interactions import (
    FORM_EXPIRED,
    page_context,
    see_other,
    signed_in_user,
    start_account_interaction,
)
from ostiary.server.pages import page_endpoint
from ostiary.server.responses import Endpoint, json_response
from ostiary.server.ui.render import render_page

__all__ = [
    "NAV",
    "NOTICES",
    "Action",
    "View",
    "admin_actions",
    "admin_or_refusal",
    "admin_page",
    "render_admin",
    "when",
]

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

    @page_endpoint(ctx, f"admin.{section or 'dashboard'}")
    async def page(request: Request) -> Response:
        admin = await admin_or_refusal(ctx, request)
        if isinstance(admin, Response):
            return admin
        result = await view(request, admin)
        if isinstance(result, Response):
            return result
        return render_admin(
            ctx, request, admin, template, section=section, scripts=scripts, **result
        )

    return page


def admin_actions(ctx: ServerContext, actions: Mapping[str, Action]) -> Endpoint:
    """``POST /admin/{section}/{action}``: CSRF token, then the administrator, then the change.

    The token is checked first, as on every other form: a forged post learns nothing, not
    even whether the browser is signed in.
    """

    @page_endpoint(ctx, "admin.action")
    async def act(request: Request) -> Response:
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

    return act


def when(ts: int | None) -> str:
    """A time as the console shows it (UTC, to the minute)."""
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
