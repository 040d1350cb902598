"""What an operator does to users, clients, grants and keys (the console and the CLI share it).

Each operation is one storage change plus what must follow it for the security invariants to
hold: disabling a user revokes every grant they gave (RFC 7009 §2.1 cascade, so refresh and
introspection fail at once); a client change is forgotten by this process's client cache; a
metadata-document client (an https ``client_id``, otherwise never stored) is blocked by a
stored entry that the resolver consults before any fetch. Every change is an audit event
naming the operator.
"""

from __future__ import annotations

from dataclasses import replace

from ostiary.core.client_id_metadata import is_client_id_metadata_url
from ostiary.core.clients import forget_client
from ostiary.core.context import ServerContext
from ostiary.core.models import Client, Grant, User

__all__ = [
    "reset_totp",
    "revoke_grant",
    "revoke_user_grants",
    "rotate_keys",
    "set_client_disabled",
    "set_user_disabled",
]


async def revoke_user_grants(ctx: ServerContext, subject: str) -> int:
    """Revoke every live grant of ``subject`` and forget their consents; how many went."""
    now = ctx.clock()
    revoked = 0
    for grant in await ctx.storage.list_grants(ctx.tenant, subject):
        if await ctx.storage.revoke_grant(ctx.tenant, grant.grant_id, now):
            revoked += 1
        await ctx.storage.delete_consents(ctx.tenant, subject, grant.client_id)
    return revoked


async def set_user_disabled(ctx: ServerContext, user: User, *, disabled: bool, by: str) -> int:
    """Disable (revoking every grant; sessions stop counting) or enable a user."""
    await ctx.storage.save_user(replace(user, disabled=disabled))
    revoked = await revoke_user_grants(ctx, user.user_id) if disabled else 0
    event = "admin.user_disabled" if disabled else "admin.user_enabled"
    ctx.audit(event, subject=user.user_id, by=by, grants=revoked)
    return revoked


async def reset_totp(ctx: ServerContext, user: User, *, by: str) -> None:
    """Remove the user's TOTP second factor (they enrol again with the CLI)."""
    await ctx.storage.save_user(replace(user, totp_secret=None))
    ctx.audit("admin.totp_reset", subject=user.user_id, by=by)


async def set_client_disabled(
    ctx: ServerContext, client_id: str, *, disabled: bool, by: str
) -> bool:
    """Refuse a client everywhere, or accept it again; False for an unknown client.

    Disabling an unknown metadata-document client stores a block entry for it.
    """
    client = await ctx.storage.get_client(ctx.tenant, client_id)
    if client is None:
        if not (disabled and is_client_id_metadata_url(client_id)):
            return False
        client = Client(ctx.tenant, client_id, redirect_uris=(), source="cimd")
    await ctx.storage.save_client(replace(client, disabled=disabled))
    forget_client(ctx, client_id)
    event = "admin.client_disabled" if disabled else "admin.client_enabled"
    ctx.audit(event, client_id=client_id, by=by)
    return True


async def revoke_grant(ctx: ServerContext, grant: Grant, *, by: str) -> bool:
    """Revoke one grant (cascading to its codes and tokens) and forget its consent."""
    revoked = await ctx.storage.revoke_grant(ctx.tenant, grant.grant_id, ctx.clock())
    await ctx.storage.delete_consents(ctx.tenant, grant.subject, grant.client_id)
    ctx.audit(
        "admin.grant_revoked",
        grant_id=grant.grant_id,
        subject=grant.subject,
        client_id=grant.client_id,
        by=by,
    )
    return revoked


async def rotate_keys(ctx: ServerContext, *, by: str) -> str:
    """Start signing with a new key; the old ones stay in JWKS until their tokens expire."""
    key = await ctx.keys.rotate(ctx.clock())
    ctx.audit("admin.keys_rotated", kid=key.kid, by=by)
    return key.kid
