"""Storage backends behind one protocol (``storage/base.py``), chosen by ``storage.url``.

``memory://`` → :class:`MemoryStorage` (tests, demos); ``sqlite:///…`` and
``postgresql://…`` (or ``postgres://…``) → :class:`SqlStorage`.
"""

from __future__ import annotations

from ostiary.errors import ConfigurationError
from ostiary.settings import Settings
from ostiary.storage.base import Storage
from ostiary.storage.memory import MemoryStorage
from ostiary.storage.sql import SqlStorage

__all__ = ["MemoryStorage", "SqlStorage", "Storage", "open_storage"]

_SQL_SCHEMES = ("sqlite:", "sqlite+aiosqlite:", "postgresql:", "postgresql+asyncpg:", "postgres:")


def open_storage(settings: Settings) -> Storage:
    """The backend ``settings.storage.url`` names, not yet initialised.

    Call ``await storage.initialize()`` before use and ``await storage.close()`` at shutdown.

    Raises:
        ConfigurationError: when the URL names no supported backend.
    """
    url = settings.storage.url
    if url == "memory://":
        return MemoryStorage()
    if url.startswith(_SQL_SCHEMES):
        return SqlStorage(url)
    raise ConfigurationError(
        f"storage.url {url!r} is not supported; use sqlite:///path/to/file.db, "
        "postgresql://user@host:port/db or memory://"
    )
