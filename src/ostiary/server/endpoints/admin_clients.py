"""The console's clients and grants pages: list, details, disable / enable, revoke a grant.

Clients come in three kinds: registered ones (RFC 7591, ``dcr``), pre-registered ones
(``ostiary clients add``, ``static``) and metadata-document clients (``cimd``), of which only
the operator's block entries are stored. Grants are listed by user or by client; revoking one
cascades to its codes, refresh tokens and access-token records (RFC 7009 §2.1).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ostiary.core import admin as ops
from ostiary.core.context import ServerContext
from ostiary.core.models import Client, Grant, User
from ostiary.errors import InvalidRequestError
from ostiary.server.admin_pages import Action, admin_page, when
from ostiary.server.pages import MAX_CLIENT_ID
from ostiary.server.responses import Endpoint

KINDS = {"dcr": "Registered", "static": "Pre-registered", "cimd": "Metadata document"}


def _kind(client: Client) -> str:
    if client.source == "cimd" and not client.redirect_uris:
        return "Metadata document (block entry)"
    return KINDS.get(client.source, client.source)


def clients_page(ctx: ServerContext) -> Endpoint:
    async def view(request: Request, admin: User) -> dict[str, Any]:
        clients = await ctx.storage.list_clients(ctx.tenant)
        rows = [
            {"client": c, "kind": _kind(c), "registered": when(c.client_id_issued_at)}
            for c in clients
        ]
        return {"rows": rows}

    return admin_page(ctx, "admin_clients.html", "clients", view)


async def _grant_rows(ctx: ServerContext, grants: list[Grant]) -> list[dict[str, Any]]:
    users = {u.user_id: u for u in await ctx.storage.list_users(ctx.tenant)}
    now = ctx.clock()
    rows = []
    for grant in grants:
        if grant.expires_at <= now:
            continue
        user = users.get(grant.subject)
        rows.append(
            {
                "grant": grant,
                "who": user.username if user else grant.subject,
                "created": when(grant.created_at),
                "last_used": when(grant.last_used_at),
                "expires": when(grant.expires_at),
            }
        )
    return rows


def client_page(ctx: ServerContext) -> Endpoint:
    async def view(request: Request, admin: User) -> dict[str, Any] | Response:
        client_id = request.query_params.get("id", "")[:MAX_CLIENT_ID]
        client = await ctx.storage.get_client(ctx.tenant, client_id) if client_id else None
        if client is None:
            raise InvalidRequestError("There is no such client.", status_code=404)
        grants = await ctx.storage.list_client_grants(ctx.tenant, client.client_id)
        return {
            "client": client,
            "kind": _kind(client),
            "registered": when(client.client_id_issued_at),
            "grants": await _grant_rows(ctx, grants),
            "back": "client?" + urlencode({"id": client.client_id}),
        }

    return admin_page(ctx, "admin_client.html", "clients", view)


def grants_page(ctx: ServerContext) -> Endpoint:
    async def view(request: Request, admin: User) -> dict[str, Any]:
        username = request.query_params.get("user", "")[:64].strip()
        client_id = request.query_params.get("client", "")[:MAX_CLIENT_ID].strip()
        grants: list[Grant] = []
        problem = None
        if username:
            user = await ctx.storage.get_user_by_username(ctx.tenant, username)
            if user is None:
                problem = f"There is no user {username}."
            else:
                grants = await ctx.storage.list_grants(ctx.tenant, user.user_id)
        if client_id:
            by_client = await ctx.storage.list_client_grants(ctx.tenant, client_id)
            grants = [g for g in grants if g.client_id == client_id] if username else by_client
        query = {k: v for k, v in (("user", username), ("client", client_id)) if v}
        return {
            "username": username,
            "client_id": client_id,
            "filtered": bool(query),
            "problem": problem,
            "grants": await _grant_rows(ctx, grants),
            "back": "grants?" + urlencode(query),
        }

    return admin_page(ctx, "admin_grants.html", "grants", view)


def _back(form: dict[str, str], done: str) -> str:
    """The page the form came from (one of the console's own), with the notice."""
    back = form.get("back", "")
    if not back.startswith(("grants?", "client?", "clients")) or "\\" in back or "//" in back:
        back = "clients"
    return f"{back}{'&' if '?' in back else '?'}done={done}"


def actions(ctx: ServerContext) -> dict[str, Action]:
    async def set_disabled(form: dict[str, str], admin: User, disabled: bool) -> str:
        client_id = form.get("client_id", "")
        if not client_id or len(client_id) > MAX_CLIENT_ID:
            raise InvalidRequestError("Choose a client.")
        if not await ops.set_client_disabled(ctx, client_id, disabled=disabled, by=admin.user_id):
            raise InvalidRequestError("There is no such client.", status_code=404)
        return _back(form, "client-disabled" if disabled else "client-enabled")

    async def disable(form: dict[str, str], admin: User) -> str:
        return await set_disabled(form, admin, True)

    async def enable(form: dict[str, str], admin: User) -> str:
        return await set_disabled(form, admin, False)

    async def revoke(form: dict[str, str], admin: User) -> str:
        grant_id = form.get("grant_id", "")
        grant = await ctx.storage.get_grant(ctx.tenant, grant_id[:128]) if grant_id else None
        if grant is None or grant.revoked_at is not None:
            raise InvalidRequestError("There is no such live grant.", status_code=404)
        await ops.revoke_grant(ctx, grant, by=admin.user_id)
        return _back(form, "grant-revoked")

    return {"clients/disable": disable, "clients/enable": enable, "grants/revoke": revoke}
