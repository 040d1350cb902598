"""What every ``ostiary`` command shares: settings from the environment, one storage session
per command, the consoles, and one-line failures.

Every command builds Settings from the environment (``OSTIARY_…``, ``.env``) plus its flags and
talks to the same storage the server uses. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import typer
from rich.console import Console

from ostiary.core.passwords import PasswordHashing, password_hashing
from ostiary.core.storage import Storage
from ostiary.errors import ConfigurationError, OAuthError, StorageError
from ostiary.settings import Settings, load_settings
from ostiary.storage import open_storage

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error; the caller raises the returned Exit (status 1)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(1)


def load(**overrides: Any) -> Settings:
    """Settings from the environment plus the flags given (None: not given)."""
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigurationError as exc:
        raise fail(str(exc)) from None


def with_storage(settings: Settings, work: Callable[[Storage], Awaitable[T]]) -> T:
    """Run ``work`` on an initialized storage, closed afterwards; its errors fail the command."""

    async def run() -> T:
        storage = open_storage(settings)
        try:
            await storage.initialize()
            return await work(storage)
        finally:
            await storage.close()

    try:
        return asyncio.run(run())
    except (ConfigurationError, StorageError, OAuthError, ValueError) as exc:
        raise fail(str(exc)) from None


def passwords(settings: Settings) -> PasswordHashing:
    """The argon2 parameters the server hashes with (``security.password_hash``)."""
    return password_hashing(settings.security.password_hash)


def when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"
