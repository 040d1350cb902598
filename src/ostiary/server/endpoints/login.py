"""Sign-in steps and sign-out for the interactive pages (OWASP ASVS V2; TOTP per RFC 6238).

The login form checks the throttle first (per account and per address, the same for unknown
accounts), then the password; a user with a TOTP secret gets a second step before the session
starts, with each code accepted once. Sign-out asks first and needs the page's CSRF token, so a
link on another site cannot end the session. Upstream identity providers plug buttons into the
login page through ``ctx.extra[LOGIN_PROVIDERS]`` (:mod:`ostiary.server.pages`, which renders
the login and code pages, since the authorization endpoint shows them too).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core import authorization as authz
from ostiary.core import totp
from ostiary.core.context import ServerContext
from ostiary.core.models import Interaction, User
from ostiary.core.users import LoginThrottle, authenticate_user, open_totp_secret
from ostiary.errors import (
    ConfigurationError,
    InvalidRequestError,
    TemporarilyUnavailableError,
)
from ostiary.server import sessions
from ostiary.server.http import client_address, rate_limit, read_form
from ostiary.server.interactions import (
    FORM_EXPIRED,
    INTERACTION_ID,
    load_any_interaction,
    page_context,
    see_other,
    signed_in_user,
)
from ostiary.server.pages import code_page, login_page, page_endpoint
from ostiary.server.responses import Endpoint
from ostiary.server.ui.render import render_page

log = logging.getLogger("ostiary.server")

WRONG_LOGIN = "Wrong username or password."
WRONG_CODE = "That code is not valid. Check the time on your device and try again."


async def _checked_form(
    ctx: ServerContext, request: Request, page: str
) -> tuple[Interaction, authz.AuthorizationRequest | None, str, dict[str, str]]:
    """Rate limit, interaction, CSRF: what every interaction form post passes first."""
    await rate_limit(ctx, request, "login")
    found, req, browser = await load_any_interaction(ctx, request)
    form = await read_form(request, ctx.settings.server.max_body_bytes)
    if not sessions.csrf_ok(browser, found.interaction_id, form.get("csrf_token")):
        ctx.audit("csrf.rejected", page=page)
        raise InvalidRequestError(FORM_EXPIRED)
    return found, req, browser, form.single


def login_endpoint(ctx: ServerContext) -> Endpoint:
    @page_endpoint(ctx, "login")
    async def login(request: Request) -> Response:
        found, _req, browser, form = await _checked_form(ctx, request, "login")
        return await _check_login(ctx, request, found, browser, form)

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
        return login_page(ctx, found, browser, username=username, status_code=429, error=throttled)
    user = await authenticate_user(ctx.storage, ctx.tenant, username, password, ctx.passwords)
    if user is None:
        await throttle.failed(username, address, now)
        ctx.audit("login.failed", username=username[:64], address=address)
        return login_page(
            ctx, found, browser, username=username, status_code=401, error=WRONG_LOGIN
        )
    response = see_other(f"{ctx.issuer}/interaction/{found.interaction_id}")
    if user.totp_secret:
        # The password is right; the session starts only after the second factor.
        params = {**found.params, "username": user.username}
        await ctx.storage.save_interaction(replace(found, params=params, subject=user.user_id))
        ctx.audit("login.second_factor_required", subject=user.user_id, address=address)
        return response
    ctx.audit("login.succeeded", subject=user.user_id, address=address)
    await sessions.start_session(ctx, user.user_id, response)
    return response


def code_endpoint(ctx: ServerContext) -> Endpoint:
    @page_endpoint(ctx, "code")
    async def code(request: Request) -> Response:
        found, _req, browser, form = await _checked_form(ctx, request, "code")
        if found.subject is None:
            raise InvalidRequestError("Sign in with your password first.")
        return await _check_code(ctx, request, found, browser, form.get("code", ""))

    return code


async def _check_code(
    ctx: ServerContext, request: Request, found: Interaction, browser: str, code: str
) -> Response:
    """Second step: the TOTP code, single use (RFC 6238 §5.2), under the same throttle."""
    now = ctx.clock()
    address = client_address(request, ctx.settings.server.trust_forwarded_for)
    user = await ctx.storage.get_user(ctx.tenant, str(found.subject))
    secret = _totp_secret(ctx, user) if user is not None and not user.disabled else None
    if user is None or not secret:
        raise InvalidRequestError("This sign-in request expired or was already completed.")
    throttle = _throttle(ctx)
    throttled = await throttle.check(user.username, address, now)
    if throttled is not None:
        ctx.audit("login.throttled", username=user.username, address=address)
        return code_page(ctx, found, browser, status_code=429, error=throttled)
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
        return code_page(ctx, found, browser, status_code=401, error=WRONG_CODE)
    ctx.audit("login.succeeded", subject=user.user_id, address=address, second_factor="totp")
    response = see_other(f"{ctx.issuer}/interaction/{found.interaction_id}")
    await sessions.start_session(ctx, user.user_id, response)
    return response


def _totp_secret(ctx: ServerContext, user: User) -> str | None:
    """The user's TOTP secret; a 503 page (and an error log naming the setting) when the
    storage encryption key cannot open it, since no code the user types could ever match."""
    try:
        return open_totp_secret(user, ctx.cipher)
    except ConfigurationError as exc:
        log.error("login: %s", exc)
        ctx.audit("login.second_factor_unavailable", subject=user.user_id)
        raise TemporarilyUnavailableError(
            "Sign-in with a one-time code is unavailable: this server cannot read its stored "
            "secrets. Tell the administrator.",
            detail=str(exc),
        ) from None


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

    @page_endpoint(ctx, "logout")
    async def logout(request: Request) -> Response:
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
            interaction=back if INTERACTION_ID.match(back) else "",
            username=signed_in[1].display_name or signed_in[1].username,
            **page_context(ctx),
        )
        if is_new:
            sessions.set_browser_cookie(ctx, response, browser)
        return response

    return logout


async def _logout(ctx: ServerContext, request: Request) -> Response:
    form = await read_form(request, ctx.settings.server.max_body_bytes)
    browser = sessions.browser_id(ctx, request)
    if not sessions.page_csrf_ok(browser, "logout", form.get("csrf_token")):
        ctx.audit("csrf.rejected", page="logout")
        raise InvalidRequestError(FORM_EXPIRED)
    back = form.get("interaction") or ""
    if INTERACTION_ID.match(back):
        # "Not you?" on the consent page: sign out, then sign in again to the same request.
        response = see_other(f"{ctx.issuer}/interaction/{back}")
    else:
        response = _signed_out(ctx)
    signed_in = await signed_in_user(ctx, request)
    ctx.audit("logout", subject=signed_in[0].subject if signed_in else None)
    await sessions.end_session(ctx, request, response)
    return response
