"""Builds the authorization server's core context the way the composition root does.

``ServerContext.build`` takes its cipher from the caller, since the core does no file I/O;
tests get theirs from ``storage_cipher``, as ``ostiary serve`` does (the key file in the
settings' data directory, or the per-process key of ``memory://`` storage).
"""

from __future__ import annotations

from ostiary.core.context import Clock, MetadataResolver, ServerContext, system_clock
from ostiary.core.storage import Storage
from ostiary.settings import Settings
from ostiary.storage_key import storage_cipher


def build_context(
    settings: Settings,
    storage: Storage,
    *,
    clock: Clock = system_clock,
    resolver: MetadataResolver | None = None,
) -> ServerContext:
    """``ServerContext.build`` with the storage cipher ``settings`` names."""
    return ServerContext.build(
        settings, storage, cipher=storage_cipher(settings), clock=clock, resolver=resolver
    )
