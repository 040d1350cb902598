"""Pages more than one endpoint renders, and the one error rule for every page (RFC 6749 §4.1.2.1).

Interactive endpoints (authorize, login, consent, account, federation, the console) answer a
browser, so an error is a page, never JSON and never a redirect to an unvalidated target
(RFC 6749 §4.1.2.1; OAuth 2.1 §4.1.2.1). :func:`page_endpoint` says it once: an ``OAuthError``
renders ``error.html`` with its own status; anything else is logged with its traceback and
renders the generic 500 page (503 for a storage failure), as :func:`json_endpoint` does for
JSON.

The sign-in pages (password, then code) are rendered by the authorization endpoint too, when
it finds no session; the consent page by the federation endpoints too, before anything is
sent upstream. They live here so that no endpoint module imports another.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core import authorization as authz
from ostiary.core.context import ServerContext
from ostiary.core.models import Interaction
from ostiary.errors import OAuthError
from ostiary.loopback import is_loopback_host
from ostiary.server import sessions
from ostiary.server.interactions import error_page, page_context
from ostiary.server.responses import Endpoint, unexpected
from ostiary.server.ui.render import render_page

__all__ = [
    "LOGIN_PROVIDERS",
    "MAX_CLIENT_ID",
    "ProviderButton",
    "code_page",
    "consent_context",
    "login_page",
    "native_redirect_warning",
    "page_endpoint",
]

#: ``ctx.extra`` key of a ``Callable[[str], Sequence[ProviderButton]]`` taking the interaction
#: id: upstream identity providers offered on the login page. Absent means none.
LOGIN_PROVIDERS: Final = "login_providers"
#: Longest client_id a page's form or query may name (CIMD client ids are URLs).
MAX_CLIENT_ID: Final = 2048


def page_endpoint(ctx: ServerContext, name: str) -> Callable[[Endpoint], Endpoint]:
    """Wrap a page endpoint: an ``OAuthError`` is its error page, anything else the 500 page.

    Args:
        ctx: The server context (branding for the error page).
        name: Where an unexpected error is logged from, e.g. ``"account.revoke"``.

    Example:
        >>> def account_endpoint(ctx: ServerContext) -> Endpoint:
        ...     @page_endpoint(ctx, "account")
        ...     async def account(request: Request) -> Response: ...
        ...     return account
    """

    def wrap(fn: Endpoint) -> Endpoint:
        @functools.wraps(fn)
        async def run(request: Request) -> Response:
            try:
                return await fn(request)
            except OAuthError as exc:
                return error_page(ctx, exc)
            except Exception as exc:
                return error_page(ctx, unexpected(exc, name), 500)

        return run

    return wrap


@dataclass(frozen=True, slots=True)
class ProviderButton:
    """One "Continue with …" button on the login page."""

    name: str
    label: str
    start_url: str


def _providers(ctx: ServerContext, interaction_id: str) -> Sequence[ProviderButton]:
    offer = ctx.extra.get(LOGIN_PROVIDERS)
    if not callable(offer):
        return ()
    found: Sequence[ProviderButton] = offer(interaction_id)
    return found


def login_page(
    ctx: ServerContext,
    found: Interaction,
    browser: str,
    *,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
) -> Response:
    """The password step of the sign-in, with the upstream providers' buttons."""
    return render_page(
        "login.html",
        status_code=status_code,
        action=f"{ctx.issuer}/interaction/{found.interaction_id}/login",
        csrf_token=sessions.csrf_token(browser, found.interaction_id),
        client_name=found.params["client_name"],
        return_to=found.params.get("return_to"),
        error=error,
        username=username,
        providers=_providers(ctx, found.interaction_id),
        **page_context(ctx),
    )


def code_page(
    ctx: ServerContext,
    found: Interaction,
    browser: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The second step of the sign-in: the TOTP code (RFC 6238)."""
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


def consent_context(
    ctx: ServerContext, found: Interaction, req: authz.AuthorizationRequest, browser: str
) -> tuple[str, dict[str, Any]]:
    """What ``consent.html`` shows of the client and request, whoever asks for the decision;
    and the client's origin, where Deny sends the browser (a form-action target)."""
    descriptions = ctx.settings.scopes.descriptions
    redirect = urlsplit(req.redirect_uri)
    origin = f"{redirect.scheme}://{redirect.netloc}" if redirect.netloc else f"{redirect.scheme}:"
    return origin, {
        "csrf_token": sessions.csrf_token(browser, found.interaction_id),
        "client_name": found.params["client_name"],
        "client_logo": found.params.get("client_logo"),
        "client_host": found.params.get("client_host"),
        "resource": req.resource or "",
        "redirect_host": redirect.hostname or f"{redirect.scheme}:",
        "redirect_local": bool(redirect.hostname and is_loopback_host(redirect.hostname)),
        "warning": native_redirect_warning(
            str(found.params.get("application_type")), req.redirect_uri
        ),
        "scopes": [{"name": s, "description": descriptions.get(s, s)} for s in req.scopes],
        **page_context(ctx),
    }
