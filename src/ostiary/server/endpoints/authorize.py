"""Authorization endpoint and the login/consent interaction (OAuth 2.1 §4.1.1-§4.1.2; RFC 9207).

``/authorize`` validates the request (errors before the redirect URI is trusted are shown, never
redirected), parks it as a server-side interaction bound to this browser, and sends the browser
to ``/interaction/{id}``. That page asks for a login (password, then a TOTP code when the user
enrolled one), then for consent (skipped when a remembered consent covers the request), and
finally redirects to the client with ``code``, ``state`` and ``iss``. Each interaction completes
once. The connected-apps page signs in through the same interaction, without a request.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ostiary.core import authorization as authz
from ostiary.core import totp
from ostiary.core.context import ServerContext
from ostiary.core.models import BrowserSession, Client, Interaction, User
from ostiary.core.secrets import hash_secret, new_secret, secrets_equal
from ostiary.core.users import LoginThrottle, authenticate_user, totp_secret_of
from ostiary.errors import InvalidRequestError, OAuthError
from ostiary.server import sessions
from ostiary.server.http import client_address, query_params, rate_limit, read_form
from ostiary.server.responses import Endpoint, unexpected
from ostiary.server.ui.render import Branding, render_page
from ostiary.settings import is_loopback_host

INTERACTION_TTL_SECONDS = 600
#: Shape of the ids new_secret(16) makes; anything else is not looked up at all.
_INTERACTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
WRONG_LOGIN = "Wrong username or password."
WRONG_CODE = "That code is not valid. Check the time on your device and try again."
FORM_EXPIRED = "The form expired or did not come from this site. Reload it."
#: ``ctx.extra`` key of a ``Callable[[str], Sequence[ProviderButton]]`` taking the interaction
#: id: upstream identity providers offered on the login page. Absent means none.
LOGIN_PROVIDERS = "login_providers"
_ERROR_HEADINGS = {
    "slow_down": "Too many requests",
    "server_error": "Something went wrong",
}


@dataclass(frozen=True, slots=True)
class ProviderButton:
    """One "Continue with …" button on the login page."""

    name: str
    label: str
    start_url: str


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


def _https_or_none(url: str | None) -> str | None:
    """Client-supplied URLs are shown only over https (no mixed content, no javascript:)."""
    return url if url and url.startswith("https://") and len(url) <= 2048 else None


async def _start_interaction(
    ctx: ServerContext, request: Request, client: Client | None, req: authz.AuthorizationRequest
) -> Response:
    client_uri = _https_or_none(client.client_uri) if client else None
    if client is not None and client.source == "cimd":
        # A metadata-document client is identified by its https URL: show that host.
        client_uri = client.client_id
    details = {
        "request": req.to_dict(),
        "client_name": (client.client_name or client.client_id) if client else req.client_id,
        "application_type": client.application_type if client else "web",
        "client_logo": _https_or_none(client.logo_uri) if client else None,
        "client_host": urlsplit(client_uri).hostname if client_uri else None,
    }
    return await _park(ctx, request, details)


async def start_account_interaction(ctx: ServerContext, request: Request) -> Response:
    """Send a signed-out visitor of the connected-apps page through the login interaction."""
    return await _park(ctx, request, {"client_name": None})


async def _park(ctx: ServerContext, request: Request, details: dict[str, Any]) -> Response:
    interaction_id = new_secret(16)
    response = _redirect(f"{ctx.issuer}/interaction/{interaction_id}")
    browser = sessions.ensure_browser_id(ctx, request, response)
    params = {**details, "browser": hash_secret(browser)}
    now = ctx.clock()
    await ctx.storage.save_interaction(
        Interaction(ctx.tenant, interaction_id, params, now + INTERACTION_TTL_SECONDS)
    )
    return response


async def _load_interaction(
    ctx: ServerContext, request: Request
) -> tuple[Interaction, authz.AuthorizationRequest, str]:
    """The interaction in the path, when it exists, belongs to this browser and authorizes."""
    found, req, browser = await _load_any_interaction(ctx, request)
    if req is None:
        raise InvalidRequestError("There is nothing to authorize in this sign-in request.")
    return found, req, browser


async def _load_any_interaction(
    ctx: ServerContext, request: Request
) -> tuple[Interaction, authz.AuthorizationRequest | None, str]:
    """The interaction in the path, if it exists and belongs to this browser.

    The request is None for a sign-in to the connected-apps page.
    """
    interaction_id = str(request.path_params["interaction_id"])
    found = None
    if _INTERACTION_ID.match(interaction_id):
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


def interaction_endpoint(ctx: ServerContext) -> Endpoint:
    async def interaction(request: Request) -> Response:
        try:
            found, req, browser = await _load_any_interaction(ctx, request)
            signed_in = await signed_in_user(ctx, request)
            if signed_in is None:
                if found.subject is not None:
                    return _code_page(ctx, found, browser)
                return _login_page(ctx, found, browser)
            session, user = signed_in
            if req is None:
                return await _finish(ctx, found, lambda: _account_url(ctx))
            if await authz.has_consent(ctx, session.subject, req):
                return await _finish(ctx, found, lambda: authz.approve(ctx, session.subject, req))
            return _consent_page(ctx, found, req, browser, user)
        except OAuthError as exc:
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, "interaction"), 500)

    return interaction


async def _account_url(ctx: ServerContext) -> str:
    return f"{ctx.issuer}/account"


async def _finish(
    ctx: ServerContext, found: Interaction, complete: Callable[[], Awaitable[str]]
) -> Response:
    """Complete the interaction exactly once, then redirect to the client."""
    if not await ctx.storage.delete_interaction(ctx.tenant, found.interaction_id):
        raise InvalidRequestError("This sign-in request was already completed.")
    return _redirect(await complete())


def _providers(ctx: ServerContext, interaction_id: str) -> Sequence[ProviderButton]:
    offer = ctx.extra.get(LOGIN_PROVIDERS)
    if not callable(offer):
        return ()
    found: Sequence[ProviderButton] = offer(interaction_id)
    return found


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
        providers=_providers(ctx, found.interaction_id),
        **page_context(ctx),
    )


def _code_page(
    ctx: ServerContext,
    found: Interaction,
    browser: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render_page(
        "login_code.html",
        status_code=status_code,
        action=f"{ctx.issuer}/interaction/{found.interaction_id}/code",
        csrf_token=sessions.csrf_token(browser, found.interaction_id),
        username=found.params.get("username", ""),
        error=error,
        **page_context(ctx),
    )


def native_redirect_warning(application_type: str, redirect_uri: str) -> str | None:
    """RFC 8252 §7.3/§8.4: a native app's redirect should stay on this device."""
    parts = urlsplit(redirect_uri)
    if application_type != "native" or parts.scheme not in ("http", "https"):
        return None
    if parts.hostname and is_loopback_host(parts.hostname):
        return None
    return (
        "This app says it runs on your device, but it will send your authorization to "
        f"{parts.hostname}, a remote server. Approve only if you expected that."
    )


def _consent_page(
    ctx: ServerContext,
    found: Interaction,
    req: authz.AuthorizationRequest,
    browser: str,
    user: User,
) -> Response:
    descriptions = ctx.settings.scopes.descriptions
    redirect = urlsplit(req.redirect_uri)
    origin = f"{redirect.scheme}://{redirect.netloc}" if redirect.netloc else f"{redirect.scheme}:"
    return render_page(
        "consent.html",
        form_targets=(origin,),
        action=f"{ctx.issuer}/interaction/{found.interaction_id}/consent",
        csrf_token=sessions.csrf_token(browser, found.interaction_id),
        client_name=found.params["client_name"],
        client_logo=found.params.get("client_logo"),
        client_host=found.params.get("client_host"),
        username=user.display_name or user.username,
        resource=req.resource or "",
        redirect_host=redirect.hostname or f"{redirect.scheme}:",
        redirect_local=bool(redirect.hostname and is_loopback_host(redirect.hostname)),
        warning=native_redirect_warning(
            str(found.params.get("application_type")), req.redirect_uri
        ),
        scopes=[{"name": s, "description": descriptions.get(s, s)} for s in req.scopes],
        logout_url=f"{ctx.issuer}/logout?interaction={found.interaction_id}",
        **page_context(ctx),
    )


async def _checked_form(
    ctx: ServerContext, request: Request, page: str
) -> tuple[Interaction, authz.AuthorizationRequest | None, str, dict[str, str]]:
    """Rate limit, interaction, CSRF: what every interaction form post passes first."""
    await rate_limit(ctx, request, "login")
    found, req, browser = await _load_any_interaction(ctx, request)
    form = await read_form(request, ctx.settings.server.max_body_bytes)
    if not sessions.csrf_ok(browser, found.interaction_id, form.get("csrf_token")):
        ctx.audit("csrf.rejected", page=page)
        raise InvalidRequestError(FORM_EXPIRED)
    return found, req, browser, form.single


def login_endpoint(ctx: ServerContext) -> Endpoint:
    async def login(request: Request) -> Response:
        try:
            found, _req, browser, form = await _checked_form(ctx, request, "login")
            return await _check_login(ctx, request, found, browser, form)
        except OAuthError as exc:
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, "login"), 500)

    return login


def _throttle(ctx: ServerContext) -> LoginThrottle:
    return LoginThrottle(ctx.storage, ctx.tenant, ctx.settings.security.login_failures_per_account)


async def _check_login(
    ctx: ServerContext, request: Request, found: Interaction, browser: str, form: dict[str, str]
) -> Response:
    username = form.get("username", "")
    password = form.get("password", "")
    now = ctx.clock()
    address = client_address(request, ctx.settings.server.trust_forwarded_for)
    throttle = _throttle(ctx)
    # Checked before the password, for existing and unknown accounts alike (no enumeration).
    throttled = await throttle.check(username, address, now)
    if throttled is not None:
        ctx.audit("login.throttled", username=username[:64], address=address)
        return _login_page(ctx, found, browser, username=username, status_code=429, error=throttled)
    user = await authenticate_user(ctx.storage, ctx.tenant, username, password)
    if user is None:
        await throttle.failed(username, address, now)
        ctx.audit("login.failed", username=username[:64], address=address)
        return _login_page(
            ctx, found, browser, username=username, status_code=401, error=WRONG_LOGIN
        )
    response = _redirect(f"{ctx.issuer}/interaction/{found.interaction_id}")
    if totp_secret_of(user) is not None:
        # The password is right; the session starts only after the second factor.
        params = {**found.params, "username": user.username}
        await ctx.storage.save_interaction(replace(found, params=params, subject=user.user_id))
        ctx.audit("login.second_factor_required", subject=user.user_id, address=address)
        return response
    ctx.audit("login.succeeded", subject=user.user_id, address=address)
    await sessions.start_session(ctx, user.user_id, response)
    return response


def code_endpoint(ctx: ServerContext) -> Endpoint:
    async def code(request: Request) -> Response:
        try:
            found, _req, browser, form = await _checked_form(ctx, request, "code")
            if found.subject is None:
                raise InvalidRequestError("Sign in with your password first.")
            return await _check_code(ctx, request, found, browser, form.get("code", ""))
        except OAuthError as exc:
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, "code"), 500)

    return code


async def _check_code(
    ctx: ServerContext, request: Request, found: Interaction, browser: str, code: str
) -> Response:
    """Second step: the TOTP code, single use (RFC 6238 §5.2), under the same throttle."""
    now = ctx.clock()
    address = client_address(request, ctx.settings.server.trust_forwarded_for)
    user = await ctx.storage.get_user(ctx.tenant, str(found.subject))
    secret = totp_secret_of(user) if user is not None and not user.disabled else None
    if user is None or secret is None:
        raise InvalidRequestError("This sign-in request expired or was already completed.")
    throttle = _throttle(ctx)
    throttled = await throttle.check(user.username, address, now)
    if throttled is not None:
        ctx.audit("login.throttled", username=user.username, address=address)
        return _code_page(ctx, found, browser, status_code=429, error=throttled)
    step = totp.verify(secret, code, now)
    fresh = step is not None and await ctx.storage.remember_jti(
        ctx.tenant,
        f"totp:{user.user_id}:{step}",
        (step + totp.DRIFT_STEPS + 2) * totp.STEP_SECONDS,
        now,
    )
    if not fresh:
        await throttle.failed(user.username, address, now)
        ctx.audit("login.second_factor_failed", subject=user.user_id, address=address)
        return _code_page(ctx, found, browser, status_code=401, error=WRONG_CODE)
    ctx.audit("login.succeeded", subject=user.user_id, address=address, second_factor="totp")
    response = _redirect(f"{ctx.issuer}/interaction/{found.interaction_id}")
    await sessions.start_session(ctx, user.user_id, response)
    return response


def consent_endpoint(ctx: ServerContext) -> Endpoint:
    async def consent(request: Request) -> Response:
        try:
            found, req, browser = await _load_any_interaction(ctx, request)
            form = await read_form(request, ctx.settings.server.max_body_bytes)
            if not sessions.csrf_ok(browser, found.interaction_id, form.get("csrf_token")):
                ctx.audit("csrf.rejected", page="consent")
                raise InvalidRequestError(FORM_EXPIRED)
            signed_in = await signed_in_user(ctx, request)
            if signed_in is None:
                return _login_page(ctx, found, browser)
            if req is None:
                raise InvalidRequestError("There is nothing to approve in this sign-in request.")
            subject = signed_in[0].subject
            decision = form.get("decision")
            if decision == "approve":
                return await _finish(ctx, found, lambda: authz.approve(ctx, subject, req))
            if decision == "deny":
                return await _finish(ctx, found, lambda: authz.deny(ctx, subject, req))
            raise InvalidRequestError("Choose Approve or Deny.")
        except OAuthError as exc:
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, "consent"), 500)

    return consent


def _signed_out(ctx: ServerContext) -> Response:
    return render_page(
        "message.html",
        heading="Signed out",
        message=f"You are signed out of {ctx.settings.ui.product_name}.",
        link_url=f"{ctx.issuer}/account",
        link_text="Sign in again",
        **page_context(ctx),
    )


def logout_endpoint(ctx: ServerContext) -> Endpoint:
    """GET asks, POST (with the CSRF token) signs out: a link elsewhere cannot log you out."""

    async def logout(request: Request) -> Response:
        try:
            if request.method == "POST":
                return await _logout(ctx, request)
            signed_in = await signed_in_user(ctx, request)
            if signed_in is None:
                response = _signed_out(ctx)
                await sessions.end_session(ctx, request, response)
                return response
            back = request.query_params.get("interaction", "")
            browser, is_new = sessions.browser_id_or_new(ctx, request)
            response = render_page(
                "logout.html",
                action=f"{ctx.issuer}/logout",
                csrf_token=sessions.page_csrf_token(browser, "logout"),
                interaction=back if _INTERACTION_ID.match(back) else "",
                username=signed_in[1].display_name or signed_in[1].username,
                **page_context(ctx),
            )
            if is_new:
                sessions.set_browser_cookie(ctx, response, browser)
            return response
        except OAuthError as exc:
            return error_page(ctx, exc)
        except Exception as exc:
            return error_page(ctx, unexpected(exc, "logout"), 500)

    return logout


async def _logout(ctx: ServerContext, request: Request) -> Response:
    form = await read_form(request, ctx.settings.server.max_body_bytes)
    browser = sessions.browser_id(ctx, request)
    if not sessions.page_csrf_ok(browser, "logout", form.get("csrf_token")):
        ctx.audit("csrf.rejected", page="logout")
        raise InvalidRequestError(FORM_EXPIRED)
    back = form.get("interaction") or ""
    if _INTERACTION_ID.match(back):
        # "Not you?" on the consent page: sign out, then sign in again to the same request.
        response = _redirect(f"{ctx.issuer}/interaction/{back}")
    else:
        response = _signed_out(ctx)
    signed_in = await signed_in_user(ctx, request)
    ctx.audit("logout", subject=signed_in[0].subject if signed_in else None)
    await sessions.end_session(ctx, request, response)
    return response
