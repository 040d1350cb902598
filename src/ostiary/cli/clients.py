"""``ostiary clients``: pre-registered, dynamically registered and metadata-document clients."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.table import Table

from ostiary.cli._common import console, fail, load, when, with_storage
from ostiary.core.client_id_metadata import is_client_id_metadata_url
from ostiary.core.context import system_clock
from ostiary.core.models import Client
from ostiary.core.registration import build_registered_client
from ostiary.core.storage import Storage

clients_app = typer.Typer(no_args_is_help=True, help="Registered OAuth clients.")


@clients_app.command("add")
def clients_add(
    name: Annotated[str, typer.Option(help="Client name shown on the consent page.")],
    redirect_uri: Annotated[list[str] | None, typer.Option(help="Redirect URI (repeat).")] = None,
    auth_method: Annotated[str, typer.Option(help="Token endpoint auth method.")] = "none",
    grant_type: Annotated[list[str] | None, typer.Option(help="Grant type (repeat).")] = None,
    scope: Annotated[str | None, typer.Option(help="Allowed scopes.")] = None,
    application_type: Annotated[str, typer.Option(help="native or web.")] = "native",
    logo_uri: Annotated[str | None, typer.Option(help="https logo on the consent page.")] = None,
    client_uri: Annotated[str | None, typer.Option(help="https home page of the app.")] = None,
) -> None:
    """Pre-register a client; prints its client_id (and secret, once)."""
    settings = load()
    metadata: dict[str, Any] = {
        "client_name": name,
        "redirect_uris": redirect_uri or [],
        "token_endpoint_auth_method": auth_method,
        "application_type": application_type,
    }
    if grant_type:
        metadata["grant_types"] = grant_type
        metadata["response_types"] = ["code"] if "authorization_code" in grant_type else []
    if scope:
        metadata["scope"] = scope
    metadata.update({k: v for k, v in (("logo_uri", logo_uri), ("client_uri", client_uri)) if v})

    async def work(storage: Storage) -> dict[str, Any]:
        client, issued = build_registered_client(
            metadata,
            tenant_id=settings.storage.tenant,
            now=system_clock(),
            supported_scopes=settings.scopes.supported,
            client_credentials_enabled=settings.features.client_credentials,
            jwt_bearer_enabled=bool(settings.enterprise.trusted_issuers),
            secret_ttl=0,
        )
        await storage.save_client(replace(client, source="static"))
        return {"client_id": client.client_id, "client_secret": issued.client_secret}

    result = with_storage(settings, work)
    console.print_json(json.dumps({k: v for k, v in result.items() if v is not None}))


@clients_app.command("list")
def clients_list() -> None:
    """List registered clients (pre-registered, dynamically registered and cached CIMD)."""
    settings = load()
    clients = with_storage(settings, lambda s: s.list_clients(settings.storage.tenant))
    table = Table(
        "client_id", "name", "kind", "state", "type", "auth", "redirect URIs", "registered"
    )
    for c in clients:
        table.add_row(
            c.client_id,
            c.client_name or "-",
            c.source,
            "[red]disabled[/]" if c.disabled else "[green]enabled[/]",
            c.application_type,
            c.token_endpoint_auth_method,
            "\n".join(c.redirect_uris),
            when(c.client_id_issued_at),
        )
    console.print(table)


@clients_app.command("remove")
def clients_remove(client_id: str) -> None:
    """Delete a client and revoke every grant issued to it."""
    settings = load()
    found = with_storage(settings, lambda s: s.delete_client(settings.storage.tenant, client_id))
    if not found:
        raise fail(f"no client {client_id!r}")
    console.print(f"removed client [bold]{client_id}[/]")


@clients_app.command("disable")
def clients_disable(client_id: str) -> None:
    """Refuse a client everywhere (authorize, token, refresh, introspection); grants stay.

    Works for a metadata-document (URL) client_id too. Access tokens already issued live
    out their lifetime; ``clients remove`` also revokes the grants.
    """
    _set_client_disabled(client_id, disabled=True)
    console.print(f"disabled client [bold]{client_id}[/]")


@clients_app.command("enable")
def clients_enable(client_id: str) -> None:
    """Accept a disabled client again."""
    _set_client_disabled(client_id, disabled=False)
    console.print(f"enabled client [bold]{client_id}[/]")


def _set_client_disabled(client_id: str, *, disabled: bool) -> None:
    settings = load()
    tenant = settings.storage.tenant

    async def work(storage: Storage) -> bool:
        client = await storage.get_client(tenant, client_id)
        if client is None:
            if not (disabled and is_client_id_metadata_url(client_id)):
                return False
            # The resolver caches metadata-document clients in memory: store a block entry.
            client = Client(tenant, client_id, redirect_uris=(), source="cimd")
        await storage.save_client(replace(client, disabled=disabled))
        return True

    if not with_storage(settings, work):
        raise fail(f"no client {client_id!r}")
