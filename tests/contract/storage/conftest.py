"""The ``storage`` fixture: the same tests on memory, SQLite (a tmp file) and PostgreSQL.

PostgreSQL tests share one database with everything else that runs against it, so each test
works in its own random tenant: no truncation, no collisions. The schema is brought up to
date once per session.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ostiary.storage import MemoryStorage, SqlStorage, Storage
from tests._services import postgres_url

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


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """A ready backend; closed after the test."""
    store: Storage
    if request.param == "memory":
        store = MemoryStorage()
        await store.initialize()
    else:
        store = await open_sql(sql_url(request.param, tmp_path))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a SQL backend (for the tests that open several SqlStorage objects)."""
    return sql_url(request.param, tmp_path)
