"""The SQLite engine runs on the event loop but never sleeps in SQLite (storage/engines.py).

Another connection (standing in for a second process: an admin command, a second server)
holds the write lock; our writes wait for it with asyncio.sleep, the loop keeps serving other
tasks meanwhile, and after the deadline the caller gets a StorageError, not a hang.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ostiary.errors import StorageError
from ostiary.storage import SqlStorage, engines

from .records import NOW, grant, refresh

TENANT = "t"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    storage = SqlStorage(f"sqlite:///{tmp_path}/busy.db")
    await storage.initialize()
    try:
        yield storage
    finally:
        await storage.close()


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def _ticks_while(work: asyncio.Future[object] | asyncio.Task[object]) -> int:
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


async def test_a_write_waits_for_another_writer_without_blocking_the_loop(
    store: SqlStorage, tmp_path: Path
) -> None:
    other = _hold_write_lock(tmp_path / "busy.db")
    save = asyncio.ensure_future(store.save_grant(grant(TENANT)))
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, other.execute, "COMMIT")
    started = time.monotonic()

    ticks = await _ticks_while(save)

    await save
    waited = time.monotonic() - started
    assert 0.28 <= waited < 5
    assert ticks >= 10  # the loop ran other tasks while the write waited
    assert await store.get_grant(TENANT, "grant-1") == grant(TENANT)
    other.close()


async def test_a_transaction_waits_for_another_writer_then_runs_whole(
    store: SqlStorage, tmp_path: Path
) -> None:
    await store.save_grant(grant(TENANT))
    await store.save_refresh_token(refresh(TENANT))
    other = _hold_write_lock(tmp_path / "busy.db")
    asyncio.get_running_loop().call_later(0.2, other.execute, "COMMIT")

    revoked = await store.revoke_grant(TENANT, "grant-1", NOW)

    assert revoked is True
    token = await store.get_refresh_token(TENANT, "r" * 64)
    assert token is not None
    assert token.revoked_at == NOW
    other.close()


async def test_reads_go_on_while_another_connection_holds_the_write_lock(
    store: SqlStorage, tmp_path: Path
) -> None:
    await store.save_grant(grant(TENANT))
    other = _hold_write_lock(tmp_path / "busy.db")
    try:
        started = time.monotonic()
        assert await store.get_grant(TENANT, "grant-1") == grant(TENANT)
        assert time.monotonic() - started < 0.2  # WAL: a reader never waits for a writer
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_a_write_gives_up_with_storage_error_after_the_deadline(
    store: SqlStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    other = _hold_write_lock(tmp_path / "busy.db")
    try:
        with pytest.raises(StorageError, match="storage backend failed: OperationalError"):
            await store.save_grant(grant(TENANT))
        with pytest.raises(StorageError, match="storage backend failed: OperationalError"):
            await store.revoke_grant(TENANT, "grant-1", NOW)
    finally:
        other.execute("ROLLBACK")
        other.close()
    # Nothing half-done is left behind, and the connection works again.
    assert await store.get_grant(TENANT, "grant-1") is None
    await store.save_grant(grant(TENANT))
    assert await store.get_grant(TENANT, "grant-1") == grant(TENANT)
