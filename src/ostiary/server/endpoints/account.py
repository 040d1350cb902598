"""The signed-in user's connected apps: every client they authorized, and revocation (RFC 7009 §2).

``GET {issuer}/account`` lists the user's live grants grouped by client (scopes, resources,
when connected, when last used); a signed-out visitor goes through the login interaction
first. ``POST {issuer}/account/revoke`` (CSRF-protected) revokes every grant the user gave that
client, which cascades to its codes, refresh tokens and access-token records at once, and
forgets the remembered consent so the next authorization asks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core.clients import displayed_logo
from ostiary.core.context import ServerContext
from ostiary.core.models import Client, Grant, User
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
from ostiary.server.pages import MAX_CLIENT_ID, page_endpoint
from ostiary.server.responses import Endpoint
from ostiary.server.ui.render import render_page


@dataclass
class ConnectedApp:
    """One client as the connected-apps page shows it (all of the user's grants to it)."""

    client_id: str
    name: str
    host: str | None
    logo: str | None
    scopes: list[dict[str, str]] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    connected_at: int = 0
    last_used_at: int | None = None

    @property
    def connected(self) -> str:
        return _when(self.connected_at)

    @property
    def connected_iso(self) -> str:
        return _iso(self.connected_at)

    @property
    def last_used(self) -> str | None:
        return _when(self.last_used_at) if self.last_used_at else None

    @property
    def last_used_iso(self) -> str:
        return _iso(self.last_used_at or 0)


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y, %H:%M UTC")


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _https(url: str | None) -> str | None:
    return url if url and url.startswith("https://") and len(url) <= 2048 else None


def _new_app(client_id: str, client: Client | None) -> ConnectedApp:
    if client is None:
        return ConnectedApp(client_id, client_id, None, None)
    home = _https(client.client_uri)
    return ConnectedApp(
        client_id,
        client.client_name or client_id,
        urlsplit(home).hostname if home else None,
        displayed_logo(client),
    )


async def connected_apps(ctx: ServerContext, subject: str) -> list[ConnectedApp]:
    """The subject's live grants, one entry per client, most recently used first."""
    descriptions = ctx.settings.scopes.descriptions
    now = ctx.clock()
    apps: dict[str, ConnectedApp] = {}
    for grant in await ctx.storage.list_grants(ctx.tenant, subject):
        if grant.expires_at <= now:
            continue
        app = apps.get(grant.client_id)
        if app is None:
            client = await ctx.storage.get_client(ctx.tenant, grant.client_id)
            app = apps[grant.client_id] = _new_app(grant.client_id, client)
        _merge(app, grant, descriptions)
    return sorted(apps.values(), key=lambda a: a.last_used_at or a.connected_at, reverse=True)


def _merge(app: ConnectedApp, grant: Grant, descriptions: dict[str, str]) -> None:
    names = {s["name"] for s in app.scopes}
    app.scopes += [
        {"name": s, "description": descriptions.get(s, s)} for s in grant.scopes if s not in names
    ]
    if grant.resource and grant.resource not in app.resources:
        app.resources.append(grant.resource)
    if not app.connected_at or grant.created_at < app.connected_at:
        app.connected_at = grant.created_at
    if grant.last_used_at and (app.last_used_at or 0) < grant.last_used_at:
        app.last_used_at = grant.last_used_at


def account_endpoint(ctx: ServerContext) -> Endpoint:
    @page_endpoint(ctx, "account")
    async def account(request: Request) -> Response:
        signed_in = await signed_in_user(ctx, request)
        if signed_in is None:
            return await start_account_interaction(ctx, request)
        return await _account_page(ctx, request, signed_in[1])

    return account


async def _account_page(ctx: ServerContext, request: Request, user: User) -> Response:
    apps = await connected_apps(ctx, user.user_id)
    notice = None
    gone = request.query_params.get("disconnected")
    if gone:
        # Only a known client's name: the query must not put arbitrary text on the page.
        client = await ctx.storage.get_client(ctx.tenant, gone[:MAX_CLIENT_ID])
        if client is not None:
            name = client.client_name or client.client_id
            notice = f"{name} was disconnected and its tokens were revoked."
    browser, is_new = sessions.browser_id_or_new(ctx, request)
    response = render_page(
        "account.html",
        username=user.display_name or user.username,
        apps=apps,
        notice=notice,
        revoke_action=f"{ctx.issuer}/account/revoke",
        csrf_token=sessions.page_csrf_token(browser, "account"),
        logout_action=f"{ctx.issuer}/logout",
        logout_csrf_token=sessions.page_csrf_token(browser, "logout"),
        **page_context(ctx),
    )
    if is_new:
        sessions.set_browser_cookie(ctx, response, browser)
    return response


def revoke_endpoint(ctx: ServerContext) -> Endpoint:
    @page_endpoint(ctx, "account.revoke")
    async def revoke(request: Request) -> Response:
        form = await read_form(request, ctx.settings.server.max_body_bytes)
        browser = sessions.browser_id(ctx, request)
        if not sessions.page_csrf_ok(browser, "account", form.get("csrf_token")):
            ctx.audit("csrf.rejected", page="account")
            raise InvalidRequestError(FORM_EXPIRED)
        signed_in = await signed_in_user(ctx, request)
        if signed_in is None:
            raise InvalidRequestError("Your session ended. Sign in again.")
        client_id = form.get("client_id") or ""
        if not client_id or len(client_id) > MAX_CLIENT_ID:
            raise InvalidRequestError("Choose an app to disconnect.")
        await disconnect(ctx, signed_in[1].user_id, client_id)
        query = urlencode({"disconnected": client_id})
        return see_other(f"{ctx.issuer}/account?{query}")

    return revoke


async def disconnect(ctx: ServerContext, subject: str, client_id: str) -> int:
    """Revoke every live grant ``subject`` gave ``client_id`` and forget the consent.

    Only the subject's own grants are looked at, so a forged client_id touches nothing else.
    Returns how many grants were revoked.
    """
    now = ctx.clock()
    revoked = 0
    for grant in await ctx.storage.list_grants(ctx.tenant, subject):
        if grant.client_id == client_id and await ctx.storage.revoke_grant(
            ctx.tenant, grant.grant_id, now
        ):
            revoked += 1
    await ctx.storage.delete_consents(ctx.tenant, subject, client_id)
    ctx.audit("grant.revoked_by_user", subject=subject, client_id=client_id, grants=revoked)
    return revoked
