"""The ``storage`` fixture: the same tests on memory, SQLite (a tmp file) and PostgreSQL,
and on both SQL databases tiered with Redis (codes, replay cache, rate limits, interactions
and sessions in Redis; ``storage/tiered.py``).

PostgreSQL tests share one database with everything else that runs against it, so each test
works in its own random tenant: no truncation, no collisions. The schema is brought up to
date once per session. Redis tests use a key prefix of their own, deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from ostiary.storage import MemoryStorage, RedisEphemeralStore, SqlStorage, Storage, TieredStorage
from tests._services import postgres_url, redis_url

_initialized: set[str] = set()


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex}"


@pytest.fixture
def other_tenant() -> str:
    return f"t-{uuid.uuid4().hex}"


def sql_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'ostiary.db'}"
    return postgres_url()


async def open_sql(url: str) -> SqlStorage:
    store = SqlStorage(url)
    if url.startswith("sqlite") or url not in _initialized:
        await store.initialize()
        _initialized.add(url)
    return store


def redis_prefix() -> str:
    return f"ostiary-test:{uuid.uuid4().hex}:"


async def drop_prefix(url: str, prefix: str) -> None:
    """Delete every key a test wrote under its own prefix."""
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def open_tiered(sql: str, redis: str, prefix: str) -> TieredStorage:
    store = TieredStorage(await open_sql(sql), RedisEphemeralStore(redis, prefix=prefix))
    await store.ephemeral.initialize()
    return store


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("sqlite+redis", marks=pytest.mark.redis),
        pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """A ready backend; closed after the test."""
    store: Storage
    kind, _, cache = str(request.param).partition("+")
    prefix = redis_prefix()
    if cache:
        store = await open_tiered(sql_url(kind, tmp_path), redis_url(), prefix)
    elif kind == "memory":
        store = MemoryStorage()
        await store.initialize()
    else:
        store = await open_sql(sql_url(kind, tmp_path))
    try:
        yield store
    finally:
        await store.close()
        if cache:
            await drop_prefix(redis_url(), prefix)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("sqlite+redis", marks=pytest.mark.redis),
        pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
async def race_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str, str]]:
    """(SQL URL, Redis URL or '', Redis key prefix) for the cross-process race tests."""
    kind, _, cache = str(request.param).partition("+")
    prefix = redis_prefix()
    redis = redis_url() if cache else ""
    try:
        yield sql_url(kind, tmp_path), redis, prefix
    finally:
        if redis:
            await drop_prefix(redis, prefix)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a SQL backend (for the tests that open several SqlStorage objects)."""
    return sql_url(request.param, tmp_path)
