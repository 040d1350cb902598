"""``ostiary check-config``: validate the settings ``serve`` would use and print them."""

from __future__ import annotations

from typing import Annotated

import typer

from ostiary.cli._common import console
from ostiary.cli.serve import serving_settings
from ostiary.settings import Settings
from ostiary.storage_key import KEY_FILE_NAME


def check_config(
    host: Annotated[str | None, typer.Option(help="Bind address, as given to serve.")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port, as given to serve.")] = None,
    issuer: Annotated[str | None, typer.Option(help="Issuer URL, as given to serve.")] = None,
) -> None:
    """Validate the settings from the environment and print them (secrets hidden)."""
    settings, source = serving_settings(host, port, issuer)
    console.print_json(settings.model_dump_json())
    console.print(f"issuer {settings.issuer} ({source})", soft_wrap=True)
    for relaxed in settings.relaxed_checks():
        console.print(f"[yellow]DEV MODE:[/] {relaxed}")
    console.print(f"secrets at rest: sealed with {_key_source(settings)}")
    console.print("[green]configuration is valid[/]")


def _key_source(settings: Settings) -> str:
    """Where the storage encryption key comes from, without creating anything."""
    if settings.storage.encryption_key is not None:
        return "storage.encryption_key"
    if settings.storage.url.startswith("memory://"):
        return "a key made per process (memory:// storage keeps nothing)"
    path = settings.data_dir / KEY_FILE_NAME
    return f"the key file {path}" + ("" if path.exists() else " (created on first start)")
