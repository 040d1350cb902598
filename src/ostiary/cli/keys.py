"""``ostiary keys``: the access-token signing keys (rotation keeps old keys published)."""

from __future__ import annotations

import typer
from rich.table import Table

from ostiary.cli._common import console, load, when, with_storage
from ostiary.core.context import ServerContext, system_clock
from ostiary.core.storage import Storage
from ostiary.storage_key import storage_cipher

keys_app = typer.Typer(no_args_is_help=True, help="Access-token signing keys.")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Start signing with a new key; old keys stay in JWKS until their tokens expire."""
    settings = load()

    async def work(storage: Storage) -> str:
        ctx = ServerContext.build(settings, storage, cipher=storage_cipher(settings))
        return (await ctx.keys.rotate(system_clock())).kid

    console.print(f"new signing key [bold]{with_storage(settings, work)}[/]")


@keys_app.command("list")
def keys_list() -> None:
    """List signing keys and their state."""
    settings = load()
    keys = with_storage(settings, lambda s: s.list_signing_keys(settings.storage.tenant))
    table = Table("kid", "alg", "created", "state", "published until")
    for k in keys:
        state = "active" if k.retired_at is None else "retired"
        table.add_row(k.kid, k.alg, when(k.created_at), state, when(k.expires_at))
    console.print(table)
