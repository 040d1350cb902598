"""Pending sign-ins and authorizations, kept server-side and bound to one browser (RFC 9700 §4.7).

An interaction holds a validated authorization request (or none, for a sign-in to the
connected-apps page) until login and consent finish; it completes exactly once. Also the page
helpers every interactive endpoint shares: branding context, the error page, 303 redirects.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ostiary.core import authorization as authz
from ostiary.core.context import ServerContext
from ostiary.core.models import BrowserSession, Interaction, User
from ostiary.core.secrets import hash_secret, new_secret, secrets_equal
from ostiary.errors import InvalidRequestError, OAuthError
from ostiary.server import sessions
from ostiary.server.ui.render import Branding, render_page

INTERACTION_TTL_SECONDS = 600
#: Shape of the ids new_secret(16) makes; anything else is not looked up at all.
INTERACTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FORM_EXPIRED = "The form expired or did not come from this site. Reload it."
_ERROR_HEADINGS = {
    "slow_down": "Too many requests",
    "server_error": "Something went wrong",
}


def page_context(ctx: ServerContext) -> dict[str, Any]:
    """What every page template needs: the deployment's branding."""
    return {"brand": Branding.from_settings(ctx.settings)}


def error_page(ctx: ServerContext, error: OAuthError, status_code: int | None = None) -> Response:
    """The error page, by default with the error's own status (413 for a large body, 429)."""
    if status_code is None:
        status_code = error.status_code if error.status_code != 500 else 400
    return render_page(
        "error.html",
        status_code=status_code,
        heading=_ERROR_HEADINGS.get(error.error, "This request cannot continue"),
        error=error.error,
        description=error.description,
        **page_context(ctx),
    )


def see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


#: Pages a sign-in without an authorization request may return to (``return_to``).
RETURN_PAGES = ("account", "admin")


async def start_account_interaction(
    ctx: ServerContext, request: Request, return_to: str = "account"
) -> Response:
    """Send a signed-out visitor of the connected-apps page (or the operator console, with
    ``return_to="admin"``) through the login interaction."""
    assert return_to in RETURN_PAGES
    return await park(ctx, request, {"client_name": None, "return_to": return_to})


async def park(ctx: ServerContext, request: Request, details: dict[str, Any]) -> Response:
    interaction_id = new_secret(16)
    response = see_other(f"{ctx.issuer}/interaction/{interaction_id}")
    browser = sessions.ensure_browser_id(ctx, request, response)
    params = {**details, "browser": hash_secret(browser)}
    now = ctx.clock()
    await ctx.storage.save_interaction(
        Interaction(ctx.tenant, interaction_id, params, now + INTERACTION_TTL_SECONDS)
    )
    return response


async def load_interaction(
    ctx: ServerContext, request: Request
) -> tuple[Interaction, authz.AuthorizationRequest, str]:
    """The interaction in the path, when it exists, belongs to this browser and authorizes."""
    found, req, browser = await load_any_interaction(ctx, request)
    if req is None:
        raise InvalidRequestError("There is nothing to authorize in this sign-in request.")
    return found, req, browser


async def load_any_interaction(
    ctx: ServerContext, request: Request
) -> tuple[Interaction, authz.AuthorizationRequest | None, str]:
    """The interaction in the path, if it exists and belongs to this browser.

    The request is None for a sign-in to the connected-apps page.
    """
    interaction_id = str(request.path_params["interaction_id"])
    found = None
    if INTERACTION_ID.match(interaction_id):
        found = await ctx.storage.get_interaction(ctx.tenant, interaction_id, ctx.clock())
    browser = sessions.browser_id(ctx, request)
    if found is None:
        raise InvalidRequestError("This sign-in request expired or was already completed.")
    if browser is None or not secrets_equal(hash_secret(browser), str(found.params["browser"])):
        raise InvalidRequestError("This sign-in request was started in another browser.")
    stored = found.params.get("request")
    req = authz.AuthorizationRequest.from_dict(stored) if stored else None
    return found, req, browser


async def signed_in_user(
    ctx: ServerContext, request: Request
) -> tuple[BrowserSession, User] | None:
    """The login session and its user, when both exist and the account is enabled."""
    session = await sessions.current_session(ctx, request)
    if session is None:
        return None
    user = await ctx.storage.get_user(ctx.tenant, session.subject)
    if user is None or user.disabled:
        return None
    return session, user


async def finish(
    ctx: ServerContext, found: Interaction, complete: Callable[[], Awaitable[str]]
) -> Response:
    """Complete the interaction exactly once, then redirect to the client."""
    if not await ctx.storage.delete_interaction(ctx.tenant, found.interaction_id):
        raise InvalidRequestError("This sign-in request was already completed.")
    return see_other(await complete())
