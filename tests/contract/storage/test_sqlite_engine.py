"""The SQLite engine runs on the event loop but never sleeps in SQLite (storage/engines.py).

Another connection (standing in for a second process: an admin command, a second server)
holds the write lock; our writes wait for it with asyncio.sleep, the loop keeps serving other
tasks meanwhile, and after the deadline the caller gets a StorageError, not a hang. Statements
go to sqlite3 directly, compiled once; what needs more than plain binds takes SQLAlchemy's path.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, bindparam, literal, select

from ostiary.errors import StorageError
from ostiary.storage import SqlStorage, engines
from ostiary.storage import statements as q
from ostiary.storage.engines import SQLITE_BUSY_TIMEOUT_S, SQLITE_JOURNAL_SIZE_LIMIT
from ostiary.storage.schema import clients

from .records import NOW, client, grant, refresh, user

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


async def test_an_expanding_in_list_takes_sqlalchemys_own_path(store: SqlStorage) -> None:
    for client_id in ("a", "b", "c"):
        await store.save_client(client(TENANT, client_id))
    c = clients.c
    statement = select(c.client_id).where(
        c.tenant_id == TENANT, c.client_id.in_(bindparam("ids", expanding=True))
    )
    engine = store._engine
    assert isinstance(engine, engines.SqliteEngine)

    found = await engine.run(statement, {"ids": ["a", "c", "zz"]}, lambda rows: rows.all())

    assert sorted(row[0] for row in found) == ["a", "c"]
    assert engine._plans[(statement, ("ids",))] is None  # compiled, found unfit, remembered


async def test_statements_built_per_call_do_not_grow_the_plan_cache_without_bound(
    store: SqlStorage,
) -> None:
    engine = store._engine
    assert isinstance(engine, engines.SqliteEngine)
    for n in range(engines._MAX_PLANS + 100):
        statement = select(literal(n, BigInteger).label("n"))
        row = await engine.run(statement, {}, lambda rows: rows.first())
        assert row[0] == n
        assert row._mapping == {"n": n}
    assert len(engine._plans) <= engines._MAX_PLANS


async def test_rows_read_back_through_the_column_types(store: SqlStorage) -> None:
    """JSON comes back as lists and dicts, Boolean as bool, through the direct path."""
    await store.save_client(client(TENANT, jwks={"keys": []}, extra={"contacts": ["x"]}))
    await store.save_user(user(TENANT, disabled=True))

    stored_client = await store.get_client(TENANT, "client-1")
    stored_user = await store.get_user(TENANT, "user-1")

    assert stored_client is not None
    assert stored_client.redirect_uris == ("http://127.0.0.1/cb", "https://app.example/cb")
    assert stored_client.jwks == {"keys": []}
    assert stored_client.extra == {"contacts": ["x"]}
    assert stored_user is not None
    assert stored_user.disabled is True


async def test_the_purge_runs_off_the_event_loop(store: SqlStorage, tmp_path: Path) -> None:
    """Deleting many expired rows takes a while; the loop keeps running other tasks, and a
    write arriving meanwhile waits for the purge's lock, then succeeds."""
    rows = 150_000
    with sqlite3.connect(tmp_path / "busy.db") as raw:
        raw.executemany(
            "INSERT INTO access_tokens (tenant_id, jti, grant_id, client_id, subject, "
            "expires_at, revoked_at) VALUES (?, ?, 'g', 'c', 's', ?, NULL)",
            [(TENANT, f"jti-{n}", NOW - 1) for n in range(rows)],
        )
    purge = asyncio.ensure_future(store.purge_expired(NOW))

    ticks = await _ticks_while(purge)
    await store.save_grant(grant(TENANT))

    assert await purge == rows
    assert ticks >= 3  # 10 ms ticks: the loop was free while the rows went
    assert await store.get_grant(TENANT, "grant-1") == grant(TENANT)
    assert (await store.stats(TENANT, NOW)).live_access_tokens == 0


@pytest.mark.slow
async def test_a_backlog_purge_lets_writers_in_between_batches(
    store: SqlStorage, tmp_path: Path
) -> None:
    """Two million expired rows (a backlog after downtime): the purge deletes them in
    PURGE_BATCH-row transactions, so writes made meanwhile (what a refresh does) all succeed,
    each waiting for at most one batch, never for the whole purge; the WAL is truncated."""
    rows = 2_000_000
    with sqlite3.connect(tmp_path / "busy.db") as raw:
        raw.executemany(
            "INSERT INTO access_tokens (tenant_id, jti, grant_id, client_id, subject, "
            "expires_at, revoked_at) VALUES (?, ?, 'g', 'c', 's', ?, NULL)",
            ((TENANT, f"jti-{n}", NOW - 1) for n in range(rows)),
        )
    purge = asyncio.ensure_future(store.purge_expired(NOW))
    waits: list[float] = []
    writes = 0
    while not purge.done():
        started = time.perf_counter()
        await store.save_grant(replace(grant(TENANT), grant_id=f"grant-{writes}"))
        waits.append(time.perf_counter() - started)
        writes += 1
        await asyncio.sleep(0.005)
    removed = await purge
    assert removed == rows
    assert writes >= rows // q.PURGE_BATCH // 4  # writes went on all through the purge
    assert (await store.stats(TENANT, NOW)).live_grants == writes
    # No write waited anywhere near the 10 s after which a request gets 503.
    assert max(waits) < SQLITE_BUSY_TIMEOUT_S / 4, max(waits)
    wal = tmp_path / "busy.db-wal"
    assert not wal.exists() or wal.stat().st_size <= SQLITE_JOURNAL_SIZE_LIMIT
