"""Upstream-provider login endpoints: consent first, then upstream, then back (MCP confused deputy).

``GET /interaction/{id}/federation/{provider}`` (the login page's provider button) shows the
consent page for the MCP client *before* anything is sent upstream, unless a remembered
consent of the subject this browser last signed in as already covers the request. Approving
(``POST`` to the same URL, CSRF-checked) creates the single-use upstream state and redirects
to the provider. ``GET /federation/{provider}/callback`` validates the state, redeems the
code, links the identity, starts the browser session and completes the interaction without a
second prompt. Should the upstream account turn out to be a different subject than the
remembered one, whose consent does not cover the request, the browser is sent back to the
consent page, now signed in: consent is never inferred across subjects.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core import authorization as authz
from ostiary.core.context import ServerContext
from ostiary.core.models import Interaction
from ostiary.errors import InvalidRequestError
from ostiary.federation import login
from ostiary.federation.providers import Provider
from ostiary.federation.service import federation_of, login_providers
from ostiary.server import sessions
from ostiary.server.http import query_params, rate_limit, read_form
from ostiary.server.interactions import FORM_EXPIRED, load_any_interaction, see_other
from ostiary.server.pages import LOGIN_PROVIDERS, consent_context, page_endpoint
from ostiary.server.responses import Endpoint
from ostiary.server.ui.render import render_page

HINT_COOKIE = "ostiary_federated"


def offer_on_login_page(ctx: ServerContext) -> None:
    """Make the login page show a button per configured provider."""
    ctx.extra[LOGIN_PROVIDERS] = functools.partial(login_providers, ctx)


def _provider(ctx: ServerContext, request: Request) -> Provider:
    found = federation_of(ctx).provider(str(request.path_params["provider"]))
    if found is None:
        raise InvalidRequestError("This sign-in provider is not configured.", status_code=404)
    return found


def _hint_cookie(ctx: ServerContext) -> str:
    return ("__Host-" if ctx.issuer.startswith("https://") else "") + HINT_COOKIE


def start_endpoint(ctx: ServerContext) -> Endpoint:
    @page_endpoint(ctx, "federation.start")
    async def start(request: Request) -> Response:
        provider = _provider(ctx, request)
        found, req, browser = await load_any_interaction(ctx, request)
        session = await sessions.current_session(ctx, request)
        subject = session.subject if session is not None else None
        if subject is None:
            raw = request.cookies.get(_hint_cookie(ctx))
            subject = await login.remembered_subject(ctx, raw)
        if req is None or (subject is not None and await authz.has_consent(ctx, subject, req)):
            # No client (a sign-in to the connected-apps page), or a remembered consent.
            url = await login.begin(
                ctx,
                provider,
                interaction_id=found.interaction_id,
                browser=browser,
                remembered_subject=subject,
            )
            return see_other(url)
        return await _consent_page(ctx, found, req, browser, provider)

    return start


async def _consent_page(
    ctx: ServerContext,
    found: Interaction,
    req: authz.AuthorizationRequest,
    browser: str,
    provider: Provider,
) -> Response:
    client_origin, context = consent_context(ctx, found, req, browser)
    upstream = urlsplit(await provider.authorization_endpoint())
    return render_page(
        "consent.html",
        # Approve redirects upstream, deny to the client: both are form-action targets.
        form_targets=(client_origin, f"{upstream.scheme}://{upstream.netloc}"),
        action=f"{ctx.issuer}/interaction/{found.interaction_id}/federation/{provider.name}",
        upstream_provider=provider.label,
        **context,
    )


def decision_endpoint(ctx: ServerContext) -> Endpoint:
    @page_endpoint(ctx, "federation.consent")
    async def decide(request: Request) -> Response:
        await rate_limit(ctx, request, "login")
        provider = _provider(ctx, request)
        found, req, browser = await load_any_interaction(ctx, request)
        form = await read_form(request, ctx.settings.server.max_body_bytes)
        if not sessions.csrf_ok(browser, found.interaction_id, form.get("csrf_token")):
            ctx.audit("csrf.rejected", page="federation.consent")
            raise InvalidRequestError(FORM_EXPIRED)
        decision = form.get("decision")
        if req is None:
            raise InvalidRequestError("There is no app to approve here.")
        if decision == "approve":
            url = await login.begin(
                ctx,
                provider,
                interaction_id=found.interaction_id,
                browser=browser,
                remembered_subject=None,
            )
            return see_other(url)
        if decision == "deny":
            if not await ctx.storage.delete_interaction(ctx.tenant, found.interaction_id):
                raise InvalidRequestError("This sign-in request was already completed.")
            return see_other(await authz.deny(ctx, None, req))
        raise InvalidRequestError("Choose Approve or Deny.")

    return decide


def callback_endpoint(ctx: ServerContext) -> Endpoint:
    @page_endpoint(ctx, "federation.callback")
    async def callback(request: Request) -> Response:
        # Each callback costs a token request upstream: count it like a login attempt.
        await rate_limit(ctx, request, "login")
        provider = _provider(ctx, request)
        done = await login.complete(
            ctx,
            provider,
            browser=sessions.browser_id(ctx, request),
            query=query_params(request).single,
        )
        return await _continue(ctx, provider, done)

    return callback


async def _continue(ctx: ServerContext, provider: Provider, done: login.CompletedLogin) -> Response:
    """Finish the interaction the login belongs to, or send the browser back to consent."""
    interaction_id = done.pending.interaction_id
    found = await ctx.storage.get_interaction(ctx.tenant, interaction_id, ctx.clock())
    if found is None:
        raise InvalidRequestError("This sign-in request expired or was already completed.")
    stored = found.params.get("request")
    req = authz.AuthorizationRequest.from_dict(stored) if stored else None
    remembered = done.pending.remembered_subject
    if req is None:
        # A sign-in to the connected-apps page: no client, no grant, nothing to keep.
        if not await ctx.storage.delete_interaction(ctx.tenant, interaction_id):
            raise InvalidRequestError("This sign-in request was already completed.")
        response = see_other(f"{ctx.issuer}/account")
    elif remembered is not None and not (
        remembered == done.subject and await authz.has_consent(ctx, done.subject, req)
    ):
        ctx.audit("federation.consent_needed", provider=provider.name, subject=done.subject)
        # Back to this provider's consent page, now as the signed-in subject; approving it
        # runs the (usually silent) upstream login again, so upstream tokens are kept too.
        response = see_other(
            f"{ctx.issuer}/interaction/{interaction_id}/federation/{provider.name}"
        )
    else:
        if not await ctx.storage.delete_interaction(ctx.tenant, interaction_id):
            raise InvalidRequestError("This sign-in request was already completed.")
        url = await login.approve_and_keep(ctx, federation_of(ctx), provider, done, req)
        response = see_other(url)
    await sessions.start_session(ctx, done.subject, response)
    raw, max_age = await login.remember_browser(ctx, done.subject)
    response.set_cookie(
        _hint_cookie(ctx),
        raw,
        max_age=max_age,
        path="/",
        secure=ctx.issuer.startswith("https://"),
        httponly=True,
        samesite="lax",
    )
    return response
