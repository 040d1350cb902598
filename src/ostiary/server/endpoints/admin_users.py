"""The console's users page: list and search, add, disable / enable, reset TOTP, revoke grants.

Disabling a user revokes every grant they gave at once (as ``ostiary users disable`` does), so
their apps' refresh tokens and introspection fail immediately; their login session stops
counting on the next request (``signed_in_user`` refuses disabled accounts).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from ostiary.core import admin as ops
from ostiary.core.context import ServerContext
from ostiary.core.models import User
from ostiary.core.users import new_user, validate_password, validate_username
from ostiary.errors import InvalidRequestError
from ostiary.server.admin_pages import Action, admin_page
from ostiary.server.responses import Endpoint

#: Most users listed at once; a search narrows the rest.
MAX_LISTED = 200
MAX_QUERY = 64


def users_page(ctx: ServerContext) -> Endpoint:
    async def view(request: Request, admin: User) -> dict[str, Any]:
        query = request.query_params.get("q", "")[:MAX_QUERY].strip()
        users = await ctx.storage.list_users(ctx.tenant)
        if query:
            needle = query.casefold()
            users = [
                u
                for u in users
                if needle in u.username.casefold() or needle in (u.display_name or "").casefold()
            ]
        shown = users[:MAX_LISTED]
        rows = [
            {"user": u, "grants": len(await ctx.storage.list_grants(ctx.tenant, u.user_id))}
            for u in shown
        ]
        return {
            "query": query,
            "rows": rows,
            "total": len(users),
            "hidden": len(users) - len(shown),
            "self_id": admin.user_id,
        }

    return admin_page(ctx, "admin_users.html", "users", view)


async def _target(ctx: ServerContext, form: dict[str, str]) -> User:
    user_id = form.get("user_id", "")
    user = await ctx.storage.get_user(ctx.tenant, user_id[:128]) if user_id else None
    if user is None:
        raise InvalidRequestError("There is no such user.", status_code=404)
    return user


def _back(form: dict[str, str], done: str) -> str:
    query = form.get("q", "")[:MAX_QUERY]
    return "users?" + urlencode({"q": query, "done": done} if query else {"done": done})


def actions(ctx: ServerContext) -> dict[str, Action]:
    async def add(form: dict[str, str], admin: User) -> str:
        username = form.get("username", "").strip()
        password = form.get("password", "")
        try:
            validate_username(username)
            validate_password(password)
        except ValueError as exc:
            raise InvalidRequestError(str(exc).capitalize() + ".") from None
        if await ctx.storage.get_user_by_username(ctx.tenant, username) is not None:
            raise InvalidRequestError("That username is taken.", status_code=409)
        name = form.get("display_name", "").strip()[:128] or None
        user = await new_user(
            ctx.tenant, username, password, ctx.clock(), name, hashing=ctx.passwords
        )
        await ctx.storage.save_user(user)
        ctx.audit("admin.user_added", subject=user.user_id, by=admin.user_id)
        return _back({}, "user-added")

    async def disable(form: dict[str, str], admin: User) -> str:
        user = await _target(ctx, form)
        if user.user_id == admin.user_id:
            raise InvalidRequestError("You cannot disable your own account here.", status_code=409)
        await ops.set_user_disabled(ctx, user, disabled=True, by=admin.user_id)
        return _back(form, "user-disabled")

    async def enable(form: dict[str, str], admin: User) -> str:
        await ops.set_user_disabled(ctx, await _target(ctx, form), disabled=False, by=admin.user_id)
        return _back(form, "user-enabled")

    async def reset_totp(form: dict[str, str], admin: User) -> str:
        await ops.reset_totp(ctx, await _target(ctx, form), by=admin.user_id)
        return _back(form, "totp-reset")

    async def revoke_grants(form: dict[str, str], admin: User) -> str:
        user = await _target(ctx, form)
        revoked = await ops.revoke_user_grants(ctx, user.user_id)
        ctx.audit(
            "admin.user_grants_revoked", subject=user.user_id, by=admin.user_id, grants=revoked
        )
        return _back(form, "user-grants-revoked")

    return {
        "users/add": add,
        "users/disable": disable,
        "users/enable": enable,
        "users/reset-totp": reset_totp,
        "users/revoke-grants": revoke_grants,
    }
