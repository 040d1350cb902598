"""Periodic deletion of expired records (``Storage.purge_expired``; RFC 9700 §4.14).

SQL and memory backends have no native expiry: expired codes, tokens, grants, sessions and
cache entries stay until purged. The application runs :func:`run_purge_loop` for its whole
lifetime (``storage.purge_interval_seconds``; 0 disables it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ostiary.core.storage import Storage
from ostiary.errors import StorageError

logger = logging.getLogger("ostiary.storage")

#: Unix seconds, as ``ostiary.core.context.Clock``.
Clock = Callable[[], int]


async def purge_once(storage: Storage, clock: Clock) -> int | None:
    """One purge; how many records went, or None when the backend failed (logged)."""
    try:
        removed = await storage.purge_expired(clock())
    except StorageError as exc:
        logger.warning("storage.purge_failed: %s", exc)
        return None
    logger.info("storage.purged: %d expired records removed", removed)
    return removed


async def run_purge_loop(storage: Storage, interval: float, clock: Clock) -> None:
    """Purge expired records every ``interval`` seconds until cancelled.

    The first purge runs at once (a restart catches up). A :class:`StorageError` (database
    down, lock timeout) is logged and the loop carries on; cancellation ends it. An
    ``interval`` of 0 or less returns at once: the periodic purge is disabled.

    Args:
        storage: The backend to purge.
        interval: Seconds between purges (``settings.storage.purge_interval_seconds``).
        clock: The application clock (Unix seconds), passed to ``purge_expired``.

    Example:
        >>> task = asyncio.create_task(run_purge_loop(storage, 600, system_clock))  # doctest: +SKIP
        >>> task.cancel()  # at shutdown  # doctest: +SKIP
    """
    if interval <= 0:
        return
    while True:
        await purge_once(storage, clock)
        await asyncio.sleep(interval)
