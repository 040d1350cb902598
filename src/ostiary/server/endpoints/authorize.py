"""Authorization endpoint and the login/consent interaction (OAuth 2.1 §4.1.1-§4.1.2; RFC 9207).

``/authorize`` validates the request (errors before the redirect URI is trusted are shown, never
redirected), parks it as a server-side interaction bound to this browser, and sends the browser
to ``/interaction/{id}``. That page asks for a login (password, then a TOTP code when the user
enrolled one), then for consent (skipped when a remembered consent covers the request), and
finally redirects to the client with ``code``, ``state`` and ``iss``. Each interaction completes
once. The connected-apps page signs in through the same interaction, without a request.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core import authorization as authz
from ostiary.core.clients import displayed_logo
from ostiary.core.context import ServerContext
from ostiary.core.models import BrowserSession, Client, Interaction, User
from ostiary.errors import (
    ConsentRequiredError,
    InvalidRequestError,
    LoginRequiredError,
    OAuthError,
)
from ostiary.server import sessions
from ostiary.server.http import query_params, read_form
from ostiary.server.interactions import (
    FORM_EXPIRED,
    RETURN_PAGES,
    finish,
    load_any_interaction,
    park,
    see_other,
    signed_in_user,
)
from ostiary.server.pages import code_page, consent_context, login_page, page_endpoint
from ostiary.server.responses import Endpoint
from ostiary.server.ui.render import render_page

__all__ = ["authorize_endpoint", "consent_endpoint", "interaction_endpoint"]


def authorize_endpoint(ctx: ServerContext) -> Endpoint:
    @page_endpoint(ctx, "authorize")
    async def authorize(request: Request) -> Response:
        try:
            if request.method == "POST":
                params = await read_form(request, ctx.settings.server.max_body_bytes)
            else:
                params = query_params(request)
            client, target = await authz.validate_client_and_redirect(ctx, params)
        except OAuthError as exc:
            # Before the redirect URI is trusted: shown here, never redirected.
            ctx.audit("authorization.rejected", reason=exc.description)
            raise
        try:
            req = authz.validate_authorization_request(ctx, client, target, params)
        except OAuthError as exc:
            ctx.audit("authorization.error", client_id=client.client_id, error=exc.error)
            return see_other(authz.error_redirect(ctx, target, exc))
        return await _start_interaction(ctx, request, client, req)

    return authorize


def _target(req: authz.AuthorizationRequest) -> authz.RedirectTarget:
    return authz.RedirectTarget(req.redirect_uri, req.state)


def _https_or_none(url: str | None) -> str | None:
    """Client-supplied URLs are shown only over https (no mixed content, no javascript:)."""
    return url if url and url.startswith("https://") and len(url) <= 2048 else None


async def _start_interaction(
    ctx: ServerContext, request: Request, client: Client | None, req: authz.AuthorizationRequest
) -> Response:
    signed_in = await signed_in_user(ctx, request)
    # prompt=login: the session this browser has now does not count, here or later.
    stale = signed_in[0].session_hash if signed_in is not None and req.forces_login else None
    if req.forces_login:
        signed_in = None
    consented = signed_in is not None and await authz.has_consent(ctx, signed_in[0].subject, req)
    if signed_in is not None and consented:
        # Signed in and a remembered consent covers this request: no page to show, so no
        # interaction to park; redirect with the code at once.
        return see_other(await authz.approve(ctx, signed_in[0].subject, req, remembered=True))
    if req.silent:  # prompt=none: the page we would show is the error (OIDC Core §3.1.2.6)
        error = LoginRequiredError() if signed_in is None else ConsentRequiredError()
        ctx.audit("authorization.error", client_id=req.client_id, error=error.error)
        return see_other(authz.error_redirect(ctx, _target(req), error))
    client_uri = _https_or_none(client.client_uri) if client else None
    if client is not None and client.source == "cimd":
        # A metadata-document client is identified by its https URL: show that host.
        client_uri = client.client_id
    details = {
        "request": req.to_dict(),
        "stale_session": stale,
        "client_name": (client.client_name or client.client_id) if client else req.client_id,
        "application_type": client.application_type if client else "web",
        "client_logo": displayed_logo(client) if client else None,
        "client_host": urlsplit(client_uri).hostname if client_uri else None,
    }
    return await park(ctx, request, details)


def interaction_endpoint(ctx: ServerContext) -> Endpoint:
    @page_endpoint(ctx, "interaction")
    async def interaction(request: Request) -> Response:
        found, req, browser = await load_any_interaction(ctx, request)
        signed_in = await _signed_in_for(ctx, request, found)
        if signed_in is None:
            if found.subject is not None:
                return code_page(ctx, found, browser)
            return login_page(ctx, found, browser)
        session, user = signed_in
        if req is None:
            return await finish(ctx, found, lambda: _return_url(ctx, found))
        if await authz.has_consent(ctx, session.subject, req):
            return await finish(
                ctx, found, lambda: authz.approve(ctx, session.subject, req, remembered=True)
            )
        return _consent_page(ctx, found, req, browser, user)

    return interaction


async def _signed_in_for(
    ctx: ServerContext, request: Request, found: Interaction
) -> tuple[BrowserSession, User] | None:
    """The signed-in user, unless it is the session a ``prompt=login`` request set aside."""
    signed_in = await signed_in_user(ctx, request)
    stale = found.params.get("stale_session")
    if signed_in is not None and stale is not None and signed_in[0].session_hash == stale:
        return None
    return signed_in


async def _return_url(ctx: ServerContext, found: Interaction) -> str:
    """The page the sign-in was for: the connected-apps page unless it was the console."""
    page = found.params.get("return_to")
    return f"{ctx.issuer}/{page if page in RETURN_PAGES else 'account'}"


def _consent_page(
    ctx: ServerContext,
    found: Interaction,
    req: authz.AuthorizationRequest,
    browser: str,
    user: User,
) -> Response:
    origin, context = consent_context(ctx, found, req, browser)
    return render_page(
        "consent.html",
        form_targets=(origin,),
        action=f"{ctx.issuer}/interaction/{found.interaction_id}/consent",
        username=user.display_name or user.username,
        logout_url=f"{ctx.issuer}/logout?interaction={found.interaction_id}",
        **context,
    )


def consent_endpoint(ctx: ServerContext) -> Endpoint:
    @page_endpoint(ctx, "consent")
    async def consent(request: Request) -> Response:
        found, req, browser = await load_any_interaction(ctx, request)
        form = await read_form(request, ctx.settings.server.max_body_bytes)
        if not sessions.csrf_ok(browser, found.interaction_id, form.get("csrf_token")):
            ctx.audit("csrf.rejected", page="consent")
            raise InvalidRequestError(FORM_EXPIRED)
        signed_in = await _signed_in_for(ctx, request, found)
        if signed_in is None:
            return login_page(ctx, found, browser)
        if req is None:
            raise InvalidRequestError("There is nothing to approve in this sign-in request.")
        subject = signed_in[0].subject
        decision = form.get("decision")
        if decision == "approve":
            return await finish(ctx, found, lambda: authz.approve(ctx, subject, req))
        if decision == "deny":
            return await finish(ctx, found, lambda: authz.deny(ctx, subject, req))
        raise InvalidRequestError("Choose Approve or Deny.")

    return consent
