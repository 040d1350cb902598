"""The console's signing-keys page (list, rotate) and audit page (recent events, filtered).

Keys rotate as ``ostiary keys rotate`` does: the new key signs from now on, the old ones stay
in JWKS until the tokens they signed expire (no downtime for resource servers). The audit page
reads this process's ring of recent events (``server/activity.py``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ostiary.core import admin as ops
from ostiary.core.context import ServerContext
from ostiary.core.models import User
from ostiary.server.activity import RING_SIZE, Activity
from ostiary.server.admin_pages import Action, admin_page, when
from ostiary.server.pages import MAX_CLIENT_ID
from ostiary.server.responses import Endpoint

#: Fields shown in their own column on the audit page, not among the details.
_COLUMNS = ("event", "tenant", "ts", "at", "subject", "client_id")


def keys_page(ctx: ServerContext) -> Endpoint:
    async def view(request: Request, admin: User) -> dict[str, Any]:
        now = ctx.clock()
        keys = [
            {
                "key": k,
                "created": when(k.created_at),
                "state": "Signing" if k.retired_at is None else "Retired",
                "until": when(k.expires_at) if k.retired_at is not None else "-",
            }
            for k in await ctx.storage.list_signing_keys(ctx.tenant)
            if k.expires_at is None or k.expires_at > now
        ]
        return {"keys": keys}

    return admin_page(ctx, "admin_keys.html", "keys", view)


def audit_page(ctx: ServerContext, activity: Activity) -> Endpoint:
    async def view(request: Request, admin: User) -> dict[str, Any]:
        event = request.query_params.get("type", "")[:64]
        username = request.query_params.get("user", "")[:64].strip()
        client_id = request.query_params.get("client", "")[:MAX_CLIENT_ID].strip()
        subjects: tuple[str, ...] = ()
        if username:
            user = await ctx.storage.get_user_by_username(ctx.tenant, username)
            subjects = (username,) if user is None else (username, user.user_id)
        records = activity.recent(
            event=event or None, subjects=subjects, client_id=client_id or None
        )
        rows = [
            {
                "when": when(int(r.get("at", 0))),
                "event": r.get("event"),
                "subject": r.get("subject") or r.get("username") or "",
                "client_id": r.get("client_id") or "",
                "details": ", ".join(f"{k}={v}" for k, v in sorted(r.items()) if k not in _COLUMNS),
            }
            for r in records
        ]
        return {
            "rows": rows,
            "event": event,
            "username": username,
            "client_id": client_id,
            "event_names": activity.event_names(),
            "ring_size": RING_SIZE,
        }

    return admin_page(ctx, "admin_audit.html", "audit", view)


def actions(ctx: ServerContext) -> dict[str, Action]:
    async def rotate(form: dict[str, str], admin: User) -> str:
        await ops.rotate_keys(ctx, by=admin.user_id)
        return "keys?done=keys-rotated"

    return {"keys/rotate": rotate}
