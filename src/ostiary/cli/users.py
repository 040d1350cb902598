"""``ostiary users``: local accounts, their TOTP second factor and operator-console access."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Annotated

import typer
from rich.table import Table

from ostiary.cli._common import console, fail, load, passwords, when, with_storage
from ostiary.core import totp
from ostiary.core.context import system_clock
from ostiary.core.models import User
from ostiary.core.storage import Storage
from ostiary.core.users import new_user, validate_password, with_totp_secret
from ostiary.settings import Settings
from ostiary.storage_key import storage_cipher

users_app = typer.Typer(no_args_is_help=True, help="Local user accounts.")
totp_app = typer.Typer(no_args_is_help=True, help="TOTP second factor of a local user.")
users_app.add_typer(totp_app, name="totp")
admin_app = typer.Typer(no_args_is_help=True, help="Operator console (/admin) access.")
users_app.add_typer(admin_app, name="admin")


def _read_password(password: str | None) -> str:
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=sys.stdin.isatty())
    try:
        validate_password(password)
    except ValueError as exc:
        raise fail(str(exc)) from None
    return password


async def _user(storage: Storage, settings: Settings, username: str) -> User:
    user = await storage.get_user_by_username(settings.storage.tenant, username)
    if user is None:
        raise ValueError(f"no user {username!r}")
    return user


async def _revoke_all(storage: Storage, settings: Settings, subject: str) -> int:
    """Revoke every live grant of ``subject`` (each cascades to its codes and tokens)."""
    tenant = settings.storage.tenant
    now = system_clock()
    revoked = 0
    for grant in await storage.list_grants(tenant, subject):
        if await storage.revoke_grant(tenant, grant.grant_id, now):
            revoked += 1
        await storage.delete_consents(tenant, subject, grant.client_id)
    return revoked


@users_app.command("add")
def users_add(
    username: str,
    password: Annotated[str | None, typer.Option(help="Password (prompted when absent).")] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown on the pages.")] = None,
) -> None:
    """Create a local user."""
    settings = load()
    secret = _read_password(password)

    async def work(storage: Storage) -> str:
        tenant = settings.storage.tenant
        if await storage.get_user_by_username(tenant, username) is not None:
            raise ValueError(f"user {username!r} already exists")
        user = await new_user(
            tenant, username, secret, system_clock(), display_name, hashing=passwords(settings)
        )
        await storage.save_user(user)
        return user.user_id

    user_id = with_storage(settings, work)
    console.print(f"created user [bold]{username}[/] (subject {user_id})")


@users_app.command("list")
def users_list() -> None:
    """List local users with their state and how many apps they connected."""
    settings = load()

    async def work(storage: Storage) -> list[tuple[User, int]]:
        tenant = settings.storage.tenant
        return [
            (user, len(await storage.list_grants(tenant, user.user_id)))
            for user in await storage.list_users(tenant)
        ]

    rows = with_storage(settings, work)
    table = Table("username", "name", "subject", "created", "status", "2FA", "admin", "grants")
    for user, grants in rows:
        table.add_row(
            user.username,
            user.display_name or "-",
            user.user_id,
            when(user.created_at),
            "[red]disabled[/]" if user.disabled else "[green]active[/]",
            "totp" if user.totp_secret else "-",
            "admin" if user.admin else "-",
            str(grants),
        )
    console.print(table)


def _set_disabled(username: str, disabled: bool) -> int:
    settings = load()

    async def work(storage: Storage) -> int:
        user = await _user(storage, settings, username)
        await storage.save_user(replace(user, disabled=disabled))
        return await _revoke_all(storage, settings, user.user_id) if disabled else 0

    return with_storage(settings, work)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Block sign-in and revoke every grant of the user at once (sessions end too)."""
    revoked = _set_disabled(username, True)
    console.print(f"disabled [bold]{username}[/]; revoked {revoked} grant(s)")


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Allow a disabled user to sign in again (revoked grants stay revoked)."""
    _set_disabled(username, False)
    console.print(f"enabled [bold]{username}[/]")


@users_app.command("revoke-grants")
def users_revoke_grants(username: str) -> None:
    """Revoke every app's access for the user: grants, codes, refresh and access tokens."""
    settings = load()

    async def work(storage: Storage) -> int:
        return await _revoke_all(
            storage, settings, (await _user(storage, settings, username)).user_id
        )

    revoked = with_storage(settings, work)
    console.print(f"revoked {revoked} grant(s) of [bold]{username}[/]")


@users_app.command("remove")
def users_remove(username: str) -> None:
    """Delete a user and revoke all of their grants."""
    settings = load()

    async def work(storage: Storage) -> None:
        user = await _user(storage, settings, username)
        await storage.delete_user(settings.storage.tenant, user.user_id)

    with_storage(settings, work)
    console.print(f"removed user [bold]{username}[/]")


@users_app.command("passwd")
def users_passwd(
    username: str,
    password: Annotated[str | None, typer.Option(help="New password (prompted).")] = None,
) -> None:
    """Reset a user's password (their existing grants are kept; see revoke-grants)."""
    settings = load()
    secret = _read_password(password)

    async def work(storage: Storage) -> None:
        user = await _user(storage, settings, username)
        password_hash = await passwords(settings).hash(secret)
        await storage.save_user(replace(user, password_hash=password_hash))

    with_storage(settings, work)
    console.print(f"password changed for [bold]{username}[/]")


@totp_app.command("enable")
def users_totp_enable(username: str) -> None:
    """Enrol a TOTP authenticator (RFC 6238); prints the otpauth:// URI to import."""
    settings = load()
    secret = totp.new_secret()

    async def work(storage: Storage) -> None:
        user = await _user(storage, settings, username)
        await storage.save_user(with_totp_secret(user, secret, storage_cipher(settings)))

    with_storage(settings, work)
    issuer = settings.ui.product_name
    console.print(f"TOTP enabled for [bold]{username}[/]. Add this to an authenticator app:")
    console.print(totp.provisioning_uri(secret, username, issuer), soft_wrap=True, highlight=False)


@totp_app.command("disable")
def users_totp_disable(username: str) -> None:
    """Remove the user's TOTP second factor."""
    settings = load()

    async def work(storage: Storage) -> None:
        user = await _user(storage, settings, username)
        await storage.save_user(replace(user, totp_secret=None))

    with_storage(settings, work)
    console.print(f"TOTP disabled for [bold]{username}[/]")


def _set_admin(username: str, admin: bool) -> User:
    settings = load()

    async def work(storage: Storage) -> User:
        user = await _user(storage, settings, username)
        await storage.save_user(replace(user, admin=admin))
        return user

    return with_storage(settings, work)


@admin_app.command("grant")
def users_admin_grant(username: str) -> None:
    """Let the user open the operator console at {issuer}/admin."""
    settings = load()
    user = _set_admin(username, True)
    console.print(f"[bold]{username}[/] is an administrator")
    if settings.security.admin_requires_totp and not user.totp_secret:
        console.print(
            f"they need a second factor first: ostiary users totp enable {username}",
            highlight=False,
        )


@admin_app.command("revoke")
def users_admin_revoke(username: str) -> None:
    """Take the operator console away from the user."""
    _set_admin(username, False)
    console.print(f"[bold]{username}[/] is no longer an administrator")
