"""Browser binding, login sessions and CSRF tokens for the interactive pages (RFC 9700 §4.7).

Two cookies, both ``HttpOnly`` and ``SameSite=Lax`` (``Secure`` and the ``__Host-`` prefix on
an https issuer):

* the *browser* cookie: a random value whose hash binds each pending authorization to the
  browser that started it, and whose HMAC over the interaction id is the CSRF token of its
  forms, so no server-side secret is needed and a form cannot be replayed from elsewhere;
* the *session* cookie: a random login session id, stored only as a hash.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core.context import ServerContext
from ostiary.core.models import BrowserSession
from ostiary.core.secrets import hash_secret, new_secret, secrets_equal

BROWSER_COOKIE = "ostiary_browser"
SESSION_COOKIE = "ostiary_session"
BROWSER_COOKIE_MAX_AGE = 365 * 86400


class CookieNames:
    def __init__(self, secure: bool) -> None:
        prefix = "__Host-" if secure else ""
        self.secure = secure
        self.browser = prefix + BROWSER_COOKIE
        self.session = prefix + SESSION_COOKIE


def cookie_names(ctx: ServerContext) -> CookieNames:
    return CookieNames(secure=ctx.issuer.startswith("https://"))


def browser_id(ctx: ServerContext, request: Request) -> str | None:
    value = request.cookies.get(cookie_names(ctx).browser)
    return value if value and len(value) <= 128 else None


def ensure_browser_id(ctx: ServerContext, request: Request, response: Response) -> str:
    """The browser cookie's value, setting a new one on ``response`` when absent."""
    value, is_new = browser_id_or_new(ctx, request)
    if is_new:
        set_browser_cookie(ctx, response, value)
    return value


def browser_id_or_new(ctx: ServerContext, request: Request) -> tuple[str, bool]:
    """The browser cookie's value, or a fresh one (True) to set with ``set_browser_cookie``.

    For pages that need the value (a CSRF token) before the response exists.
    """
    existing = browser_id(ctx, request)
    if existing is not None:
        return existing, False
    return new_secret(), True


def set_browser_cookie(ctx: ServerContext, response: Response, value: str) -> None:
    names = cookie_names(ctx)
    response.set_cookie(
        names.browser,
        value,
        max_age=BROWSER_COOKIE_MAX_AGE,
        path="/",
        secure=names.secure,
        httponly=True,
        samesite="lax",
    )


def csrf_token(browser: str, interaction_id: str) -> str:
    return hmac.new(browser.encode(), interaction_id.encode(), hashlib.sha256).hexdigest()


def csrf_ok(browser: str | None, interaction_id: str, presented: str | None) -> bool:
    if browser is None or presented is None:
        return False
    return secrets_equal(csrf_token(browser, interaction_id), presented)


async def current_session(ctx: ServerContext, request: Request) -> BrowserSession | None:
    raw = request.cookies.get(cookie_names(ctx).session)
    if not raw or len(raw) > 128:
        return None
    return await ctx.storage.get_session(ctx.tenant, hash_secret(raw), ctx.clock())


async def start_session(ctx: ServerContext, subject: str, response: Response) -> None:
    now = ctx.clock()
    raw = new_secret()
    ttl = ctx.settings.security.session_ttl
    await ctx.storage.save_session(
        BrowserSession(ctx.tenant, hash_secret(raw), subject, now, now + ttl)
    )
    names = cookie_names(ctx)
    response.set_cookie(
        names.session,
        raw,
        max_age=ttl,
        path="/",
        secure=names.secure,
        httponly=True,
        samesite="lax",
    )


async def end_session(ctx: ServerContext, request: Request, response: Response) -> None:
    names = cookie_names(ctx)
    raw = request.cookies.get(names.session)
    if raw:
        await ctx.storage.delete_session(ctx.tenant, hash_secret(raw))
    response.delete_cookie(names.session, path="/", secure=names.secure, httponly=True)


def page_csrf_token(browser: str, page: str) -> str:
    """The CSRF token of a form that belongs to no interaction (account, logout).

    The ``page:`` prefix keeps these apart from interaction ids, which never contain ``:``.
    """
    return csrf_token(browser, f"page:{page}")


def page_csrf_ok(browser: str | None, page: str, presented: str | None) -> bool:
    return csrf_ok(browser, f"page:{page}", presented)
