"""Storage backends behind one protocol (``core/storage.py``), chosen by ``storage.url``.

``memory://`` → :class:`MemoryStorage` (tests, demos); ``sqlite:///…`` and
``postgresql://…`` (or ``postgres://…``) → :class:`SqlStorage`. With ``storage.redis_url``
set, the ephemeral records (codes, replay cache, rate limits, interactions, sessions) go to
Redis instead: :class:`TieredStorage` over the durable store and a
:class:`RedisEphemeralStore`.

The SQL and Redis backends load when first used (by :func:`open_storage`, or by importing
their names from here, PEP 562), so importing this package, or the core, pulls in neither
SQLAlchemy nor redis; ``tests/unit/test_import_rules.py`` keeps it so.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ostiary.core.storage import Storage
from ostiary.errors import ConfigurationError
from ostiary.settings import Settings
from ostiary.storage.memory import MemoryStorage
from ostiary.storage.purge import run_purge_loop

if TYPE_CHECKING:
    from ostiary.storage.redis import RedisEphemeralStore
    from ostiary.storage.sql import SqlStorage
    from ostiary.storage.tiered import TieredStorage

__all__ = [
    "MemoryStorage",
    "RedisEphemeralStore",
    "SqlStorage",
    "Storage",
    "TieredStorage",
    "open_storage",
    "run_purge_loop",
]

_SQL_SCHEMES = ("sqlite:", "sqlite+aiosqlite:", "postgresql:", "postgresql+asyncpg:", "postgres:")

#: The backends loaded on first use: exported name → the module defining it.
_LAZY = {
    "RedisEphemeralStore": "ostiary.storage.redis",
    "SqlStorage": "ostiary.storage.sql",
    "TieredStorage": "ostiary.storage.tiered",
}


def __getattr__(name: str) -> object:
    """``from ostiary.storage import SqlStorage`` imports the backend only then (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def open_storage(settings: Settings) -> Storage:
    """The backend ``settings.storage`` names, not yet initialised.

    Call ``await storage.initialize()`` before use and ``await storage.close()`` at shutdown.
    ``storage.pool_size`` sizes the SQL connection pool (and the Redis one, when used).

    Raises:
        ConfigurationError: when the URL names no supported backend.
    """
    config = settings.storage
    durable = _durable(config.url, config.pool_size)
    if config.redis_url is None:
        return durable
    if not config.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"storage.redis_url {config.redis_url!r} is not supported; "
            "use redis://host:port/db or rediss://host:port/db"
        )
    from ostiary.storage.redis import RedisEphemeralStore
    from ostiary.storage.tiered import TieredStorage

    redis = RedisEphemeralStore(config.redis_url, max_connections=config.pool_size * 2)
    return TieredStorage(durable, redis)


def _durable(url: str, pool_size: int) -> Storage:
    if url == "memory://":
        return MemoryStorage()
    if url.startswith(_SQL_SCHEMES):
        from ostiary.storage.sql import SqlStorage

        return SqlStorage(url, pool_size=pool_size)
    raise ConfigurationError(
        f"storage.url {url!r} is not supported; use sqlite:///path/to/file.db, "
        "postgresql://user@host:port/db or memory://"
    )
