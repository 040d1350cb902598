"""Authorization endpoint and the login/consent interaction (OAuth 2.1 §4.1.1-§4.1.2; RFC 9207).

``/authorize`` validates the request (errors before the redirect URI is trusted are shown, never
redirected), parks it as a server-side interaction bound to this browser, and sends the browser
to ``/interaction/{id}``. That page asks for a login, then for consent (skipped when a
remembered consent covers the request), and finally redirects to the client with ``code``,
``state`` and ``iss``. Each interaction completes once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ostiary.core import authorization as authz
from ostiary.core.context import ServerContext
from ostiary.core.models import Client, Interaction
from ostiary.core.secrets import hash_secret, new_secret, secrets_equal
from ostiary.core.users import authenticate_user
from ostiary.errors import InvalidRequestError, OAuthError
from ostiary.server import sessions
from ostiary.server.http import client_address, query_params, rate_limit, read_form
from ostiary.server.responses import Endpoint, unexpected
from ostiary.server.ui.render import Branding, render_page

INTERACTION_TTL_SECONDS = 600
#: Shape of the ids new_secret(16) makes; anything else is not looked up at all.
_INTERACTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Window of the per-account failed sign-in limit (security.login_failures_per_account).
LOGIN_WINDOW_SECONDS = 900


def page_context(ctx: ServerContext) -> dict[str, Any]:
    """What every page template needs: the deployment's branding."""
    return {"brand": Branding.from_settings(ctx.settings)}


_ERROR_HEADINGS = {
    "slow_down": "Too many requests",
    "server_error": "Something went wrong",
}


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


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def authorize_endpoint(ctx: ServerContext) -> Endpoint:
    async def authorize(request: Request) -> Response:
        try:
            if request.method == "POST":
                params = await read_form(request, ctx.settings.server.max_body_bytes)
            else:
                params = query_params(request)
            client, target = await authz.validate_client_and_redirect(ctx, params)
        except OAuthError as exc:
            ctx.audit("authorization.rejected", reason=exc.description)
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, "authorize"), 500)
        try:
            req = authz.validate_authorization_request(ctx, client, target, params)
        except OAuthError as exc:
            ctx.audit("authorization.error", client_id=client.client_id, error=exc.error)
            return _redirect(authz.error_redirect(ctx, target, exc))
        return await _start_interaction(ctx, request, client, req)

    return authorize


async def _start_interaction(
    ctx: ServerContext, request: Request, client: Client, req: authz.AuthorizationRequest
) -> Response:
    interaction_id = new_secret(16)
    response = _redirect(f"{ctx.issuer}/interaction/{interaction_id}")
    browser = sessions.ensure_browser_id(ctx, request, response)
    params = {
        "request": req.to_dict(),
        "browser": hash_secret(browser),
        "client_name": client.client_name or client.client_id,
        "application_type": client.application_type,
    }
    now = ctx.clock()
    await ctx.storage.save_interaction(
        Interaction(ctx.tenant, interaction_id, params, now + INTERACTION_TTL_SECONDS)
    )
    return response


async def _load_interaction(
    ctx: ServerContext, request: Request
) -> tuple[Interaction, authz.AuthorizationRequest, str]:
    """The interaction in the path, if it exists and belongs to this browser."""
    interaction_id = str(request.path_params["interaction_id"])
    found = None
    if _INTERACTION_ID.match(interaction_id):
        found = await ctx.storage.get_interaction(ctx.tenant, interaction_id, ctx.clock())
    browser = sessions.browser_id(ctx, request)
    if found is None:
        raise InvalidRequestError("This sign-in request expired or was already completed.")
    if browser is None or not secrets_equal(hash_secret(browser), str(found.params["browser"])):
        raise InvalidRequestError("This sign-in request was started in another browser.")
    return found, authz.AuthorizationRequest.from_dict(found.params["request"]), browser


def interaction_endpoint(ctx: ServerContext) -> Endpoint:
    async def interaction(request: Request) -> Response:
        try:
            found, req, browser = await _load_interaction(ctx, request)
            session = await sessions.current_session(ctx, request)
            if session is None:
                return _login_page(ctx, found, browser)
            if await authz.has_consent(ctx, session.subject, req):
                return await _finish(ctx, found, lambda: authz.approve(ctx, session.subject, req))
            return await _consent_page(ctx, found, req, browser, session.subject)
        except OAuthError as exc:
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, "interaction"), 500)

    return interaction


async def _finish(
    ctx: ServerContext, found: Interaction, complete: Callable[[], Awaitable[str]]
) -> Response:
    """Complete the interaction exactly once, then redirect to the client."""
    if not await ctx.storage.delete_interaction(ctx.tenant, found.interaction_id):
        raise InvalidRequestError("This sign-in request was already completed.")
    return _redirect(await complete())


def _login_page(
    ctx: ServerContext,
    found: Interaction,
    browser: str,
    *,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
) -> Response:
    return render_page(
        "login.html",
        status_code=status_code,
        action=f"{ctx.issuer}/interaction/{found.interaction_id}/login",
        csrf_token=sessions.csrf_token(browser, found.interaction_id),
        client_name=found.params["client_name"],
        error=error,
        username=username,
        providers=(),
        **page_context(ctx),
    )


async def _consent_page(
    ctx: ServerContext,
    found: Interaction,
    req: authz.AuthorizationRequest,
    browser: str,
    subject: str,
) -> Response:
    user = await ctx.storage.get_user(ctx.tenant, subject)
    descriptions = ctx.settings.scopes.descriptions
    redirect = urlsplit(req.redirect_uri)
    origin = f"{redirect.scheme}://{redirect.netloc}" if redirect.netloc else f"{redirect.scheme}:"
    warning = None
    if found.params.get("application_type") == "native" and redirect.hostname not in (
        "127.0.0.1",
        "::1",
        "localhost",
    ):
        warning = "This app is a native app but redirects to a remote host. Check the address."
    return render_page(
        "consent.html",
        form_targets=(origin,),
        action=f"{ctx.issuer}/interaction/{found.interaction_id}/consent",
        csrf_token=sessions.csrf_token(browser, found.interaction_id),
        client_name=found.params["client_name"],
        username=user.username if user else subject,
        resource=req.resource or "",
        redirect_host=redirect.hostname or redirect.scheme,
        warning=warning,
        scopes=[{"name": s, "description": descriptions.get(s, s)} for s in req.scopes],
        client_logo=found.params.get("client_logo"),
        client_host=found.params.get("client_host"),
        logout_url=f"{ctx.issuer}/logout",
        **page_context(ctx),
    )


def login_endpoint(ctx: ServerContext) -> Endpoint:
    async def login(request: Request) -> Response:
        try:
            await rate_limit(ctx, request, "login")
            found, _req, browser = await _load_interaction(ctx, request)
            form = await read_form(request, ctx.settings.server.max_body_bytes)
            if not sessions.csrf_ok(browser, found.interaction_id, form.get("csrf_token")):
                ctx.audit("csrf.rejected", page="login")
                raise InvalidRequestError(
                    "The form expired or did not come from this site. Reload it."
                )
            return await _check_login(ctx, request, found, browser, form.single)
        except OAuthError as exc:
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, "login"), 500)

    return login


async def _failures_so_far(ctx: ServerContext, account: str, now: int) -> int:
    """Failed sign-ins of ``account`` in the current window, not counting successes.

    The storage only offers ``hit`` (increment and read). Every attempt hits a probe bucket
    and the failures bucket once; a failed attempt hits the failures bucket once more. Both
    share one fixed window, so failures = failures bucket - probes.
    """
    probes = await ctx.storage.hit(ctx.tenant, f"login_probes:{account}", LOGIN_WINDOW_SECONDS, now)
    total = await ctx.storage.hit(
        ctx.tenant, f"login_failures:{account}", LOGIN_WINDOW_SECONDS, now
    )
    return total - probes


async def _check_login(
    ctx: ServerContext, request: Request, found: Interaction, browser: str, form: dict[str, str]
) -> Response:
    username = form.get("username", "")
    password = form.get("password", "")
    account = username.lower()[:64]
    now = ctx.clock()
    failures = await _failures_so_far(ctx, account, now)
    if failures >= ctx.settings.security.login_failures_per_account:
        ctx.audit("login.throttled", username=username[:64])
        return _login_page(
            ctx,
            found,
            browser,
            username=username,
            status_code=429,
            error="Too many failed sign-in attempts for this account. Try again in 15 minutes.",
        )
    user = await authenticate_user(ctx.storage, ctx.tenant, username, password)
    address = client_address(request, ctx.settings.server.trust_forwarded_for)
    if user is None:
        await ctx.storage.hit(ctx.tenant, f"login_failures:{account}", LOGIN_WINDOW_SECONDS, now)
        ctx.audit("login.failed", username=username[:64], address=address)
        return _login_page(
            ctx,
            found,
            browser,
            username=username,
            status_code=401,
            error="Wrong username or password.",
        )
    ctx.audit("login.succeeded", subject=user.user_id, address=address)
    response = _redirect(f"{ctx.issuer}/interaction/{found.interaction_id}")
    await sessions.start_session(ctx, user.user_id, response)
    return response


def consent_endpoint(ctx: ServerContext) -> Endpoint:
    async def consent(request: Request) -> Response:
        try:
            found, req, browser = await _load_interaction(ctx, request)
            form = await read_form(request, ctx.settings.server.max_body_bytes)
            if not sessions.csrf_ok(browser, found.interaction_id, form.get("csrf_token")):
                ctx.audit("csrf.rejected", page="consent")
                raise InvalidRequestError(
                    "The form expired or did not come from this site. Reload it."
                )
            session = await sessions.current_session(ctx, request)
            if session is None:
                return _login_page(ctx, found, browser)
            decision = form.get("decision")
            if decision == "approve":
                return await _finish(ctx, found, lambda: authz.approve(ctx, session.subject, req))
            if decision == "deny":
                return await _finish(ctx, found, lambda: authz.deny(ctx, session.subject, req))
            raise InvalidRequestError("Choose Approve or Deny.")
        except OAuthError as exc:
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, "consent"), 500)

    return consent


def logout_endpoint(ctx: ServerContext) -> Endpoint:
    async def logout(request: Request) -> Response:
        response = render_page(
            "message.html",
            heading="Signed out",
            message="You are signed out of this authorization server.",
            **page_context(ctx),
        )
        await sessions.end_session(ctx, request, response)
        return response

    return logout
