"""The periodic purge (``storage/purge.py``) and the storage settings that drive it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.pool import StaticPool

from ostiary.settings import Settings
from ostiary.storage import MemoryStorage, SqlStorage, open_storage, run_purge_loop
from ostiary.storage.engines import PostgresEngine, SqliteEngine
from ostiary.storage.purge import purge_once
from tests._services import postgres_url

from .records import NOW, code, grant, session


def _messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "ostiary.storage"]


async def _run_until_logged(
    task: asyncio.Task[None], caplog: pytest.LogCaptureFixture, n: int
) -> None:
    """Let the loop run until it logged ``n`` purges, check it is still running, cancel it."""

    async def logged() -> None:
        while len(_messages(caplog)) < n:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(logged(), timeout=10)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_purge_once_deletes_expired_records_and_logs_how_many(
    caplog: pytest.LogCaptureFixture, tenant: str
) -> None:
    storage = MemoryStorage()
    await storage.save_grant(grant(tenant, "dead", expires_at=NOW))
    await storage.save_authorization_code(code(tenant, "dead", expires_at=NOW - 1))
    await storage.save_session(session(tenant, "live", expires_at=NOW + 1))
    caplog.set_level(logging.INFO, logger="ostiary.storage")

    assert await purge_once(storage, lambda: NOW) == 2

    assert await storage.get_grant(tenant, "dead") is None
    assert await storage.get_session(tenant, "live", NOW) is not None
    assert _messages(caplog) == [(logging.INFO, "storage.purged: 2 expired records removed")]


async def test_the_loop_purges_at_once_then_every_interval_until_cancelled(
    caplog: pytest.LogCaptureFixture, tenant: str
) -> None:
    storage = MemoryStorage()
    ticks = iter(range(NOW, NOW + 1000))
    await storage.save_grant(grant(tenant, "first", expires_at=NOW))
    await storage.save_grant(grant(tenant, "later", expires_at=NOW + 2))
    caplog.set_level(logging.INFO, logger="ostiary.storage")

    task = asyncio.create_task(run_purge_loop(storage, 0.02, lambda: next(ticks)))
    await _run_until_logged(task, caplog, 3)

    assert _messages(caplog)[:3] == [
        (logging.INFO, "storage.purged: 1 expired records removed"),  # now=NOW
        (logging.INFO, "storage.purged: 0 expired records removed"),  # now=NOW+1
        (logging.INFO, "storage.purged: 1 expired records removed"),  # now=NOW+2
    ]
    assert await storage.get_grant(tenant, "later") is None


async def test_the_loop_survives_a_failing_backend(caplog: pytest.LogCaptureFixture) -> None:
    storage = SqlStorage("postgresql://postgres@127.0.0.1:1/nothing")
    caplog.set_level(logging.INFO, logger="ostiary.storage")
    try:
        task = asyncio.create_task(run_purge_loop(storage, 0.02, lambda: NOW))
        await _run_until_logged(task, caplog, 2)
    finally:
        await storage.close()

    assert set(_messages(caplog)) == {
        (logging.WARNING, "storage.purge_failed: storage backend failed: ConnectionRefusedError")
    }


async def test_an_interval_of_zero_disables_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ostiary.storage")

    await asyncio.wait_for(run_purge_loop(MemoryStorage(), 0, lambda: NOW), timeout=1)

    assert _messages(caplog) == []


def test_storage_settings_defaults(settings_factory: Callable[..., Settings]) -> None:
    storage = settings_factory().storage

    assert (storage.pool_size, storage.purge_interval_seconds) == (10, 600)


@pytest.mark.parametrize(
    ("field", "value"),
    [("pool_size", 0), ("pool_size", 201), ("purge_interval_seconds", -1)],
)
def test_storage_settings_bounds(
    settings_factory: Callable[..., Settings], field: str, value: int
) -> None:
    with pytest.raises(ValidationError) as raised:
        settings_factory(storage={field: value})
    assert [e["loc"] for e in raised.value.errors()] == [("storage", field)]


@pytest.mark.postgres
async def test_pool_size_reaches_the_postgres_engine(
    settings_factory: Callable[..., Settings],
) -> None:
    storage = open_storage(settings_factory(storage={"url": postgres_url(), "pool_size": 3}))
    try:
        assert isinstance(storage, SqlStorage)
        assert isinstance(storage._engine, PostgresEngine)
        assert storage._engine.engine.pool.size() == 3  # type: ignore[attr-defined]
    finally:
        await storage.close()


async def test_sqlite_keeps_one_connection_whatever_the_pool_size(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    storage = open_storage(
        settings_factory(storage={"url": f"sqlite:///{tmp_path}/p.db", "pool_size": 3})
    )
    try:
        assert isinstance(storage, SqlStorage)
        await storage.initialize()
        await asyncio.gather(*(storage.save_grant(grant("t", f"g{i}")) for i in range(20)))
        assert len(await storage.list_grants("t", "user-1")) == 20
        engine = storage._engine
        assert isinstance(engine, SqliteEngine)
        assert isinstance(engine.engine.pool, StaticPool)  # exactly one connection
    finally:
        await storage.close()
