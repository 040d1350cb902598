"""How :class:`~ostiary.storage.sql.SqlStorage` reaches its database (SQLite, PostgreSQL).

Both engines run the same SQLAlchemy Core statements (``storage/statements.py``); they differ
only in how a statement gets to the database:

* **PostgreSQL** is a network server: the async engine (asyncpg) awaits every round trip.
  Single statements run in autocommit (one round trip instead of three); multi-statement
  operations use a READ COMMITTED transaction.
* **SQLite** is a library working on a local file. A statement against the page cache
  takes microseconds, far less than handing it to a worker thread and back (measured here:
  about 24 µs for a read and its commit on the event loop, about 680 µs through aiosqlite's
  thread). So the SQLite engine keeps **one** connection and runs statements on the event
  loop itself, in WAL mode (readers never block) with ``synchronous=NORMAL`` (a commit
  appends to the WAL without an fsync, and survives a process crash).

  The event loop must never sleep inside SQLite: the connection's ``busy_timeout`` is 0, and
  when another process holds the write lock (a second server, an admin command) the engine
  waits with ``asyncio.sleep`` and tries again, up to :data:`SQLITE_BUSY_TIMEOUT_S`. Every
  multi-statement operation begins with ``BEGIN IMMEDIATE`` (it takes the write lock first,
  so it cannot fail half-way on a lock upgrade). Within the process an ``asyncio.Lock``
  hands the one connection to one operation at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Executable, create_engine, event
from sqlalchemy.engine import Connection, CursorResult, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from ostiary.errors import StorageError

T = TypeVar("T")
Params = dict[str, Any]
Upgrade = Callable[[Connection], None]

#: How long a SQLite operation keeps retrying while another process holds the write lock.
SQLITE_BUSY_TIMEOUT_S = 10.0
#: First and longest pause between those retries.
_BUSY_FIRST_PAUSE_S, _BUSY_MAX_PAUSE_S = 0.0005, 0.05
#: Key of the PostgreSQL advisory lock that serialises schema upgrades across processes.
MIGRATION_LOCK_KEY = 0x05717A27


class Runner(Protocol):
    """One open connection inside an operation: ``await runner.execute(statement, params)``."""

    async def execute(
        self, statement: Executable, parameters: Params | None = None
    ) -> CursorResult[Any]: ...


class Engine(Protocol):
    """What SqlStorage needs from a database: statements, transactions, migrations."""

    async def run(self, statement: Executable, params: Params, take: Callable[[Any], T]) -> T:
        """Run one statement on its own (autocommit) and return ``take(result)``."""
        ...

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Runner]:
        """A write transaction: committed when the block ends, rolled back on an error."""
        ...

    async def migrate(self, upgrade: Upgrade) -> None:
        """Run ``upgrade`` on a connection holding the cross-process migration lock."""
        ...

    async def close(self) -> None: ...


def _storage_error(exc: BaseException) -> StorageError:
    return StorageError(f"storage backend failed: {type(exc).__name__}")


# -- PostgreSQL ------------------------------------------------------------------------------


class PostgresEngine:
    """asyncpg through SQLAlchemy's async engine, ``pool_size`` connections (and as many
    again under load)."""

    def __init__(self, url: str, *, pool_size: int) -> None:
        self.engine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600
        )
        self._auto = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def run(self, statement: Executable, params: Params, take: Callable[[Any], T]) -> T:
        try:
            async with self._auto.begin() as conn:
                return take(await conn.execute(statement, params))
        except (SQLAlchemyError, OSError) as exc:
            raise _storage_error(exc) from exc

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.begin() as conn:
                yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise _storage_error(exc) from exc

    async def migrate(self, upgrade: Upgrade) -> None:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            await conn.run_sync(upgrade)
            await conn.commit()

    async def close(self) -> None:
        await self.engine.dispose()


# -- SQLite ----------------------------------------------------------------------------------


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA busy_timeout=0",  # never block the event loop: SqliteEngine retries instead
        "PRAGMA journal_mode=WAL",
        # NORMAL is durable across a process crash (kill -9) in WAL mode; only a power loss
        # can drop the last transactions, never corrupt the file.
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
    ):
        cursor.execute(pragma)
    cursor.close()


def _busy(exc: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds a lock we need."""
    orig = getattr(exc, "orig", exc)
    if not isinstance(orig, sqlite3.OperationalError):
        return False
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(orig) or "busy" in str(orig)


class _LoopRunner:
    """The SQLite connection seen from an operation: ``execute`` runs at once, on the loop."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(
        self, statement: Executable, parameters: Params | None = None
    ) -> CursorResult[Any]:
        return self._conn.execute(statement, parameters)


class SqliteEngine:
    """One pysqlite connection used on the event loop (see the module docstring)."""

    def __init__(self, path: str) -> None:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the driver never opens a transaction by itself; this class
        # says BEGIN IMMEDIATE where it wants one and otherwise each statement commits alone.
        self.engine = create_engine(
            make_url("sqlite+pysqlite:///").set(database=path),
            poolclass=StaticPool,
            connect_args={"isolation_level": None, "check_same_thread": False},
        )
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self._conn: Connection | None = None
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def _serialized(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    async def _retry(self, attempt: Callable[[Connection], T]) -> T:
        """Run ``attempt`` until no other process holds the lock it needs (or time is up)."""
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        pause = _BUSY_FIRST_PAUSE_S
        while True:
            conn = self._connection()
            try:
                return attempt(conn)
            except OperationalError as exc:
                conn.rollback()
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
            except BaseException:
                conn.rollback()
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _BUSY_MAX_PAUSE_S)

    async def run(self, statement: Executable, params: Params, take: Callable[[Any], T]) -> T:
        def attempt(conn: Connection) -> T:
            taken = take(conn.execute(statement, params))
            conn.commit()  # ends SQLAlchemy's bookkeeping; SQLite committed the statement
            return taken

        try:
            async with self._serialized():
                return await self._retry(attempt)
        except (SQLAlchemyError, OSError) as exc:
            raise _storage_error(exc) from exc

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_LoopRunner]:
        try:
            async with self._serialized():
                conn = await self._retry(_begin_immediate)
                try:
                    yield _LoopRunner(conn)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
        except (SQLAlchemyError, OSError) as exc:
            raise _storage_error(exc) from exc

    async def migrate(self, upgrade: Upgrade) -> None:
        async with self._serialized():
            conn = await self._retry(_begin_immediate)
            try:
                upgrade(conn)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()


def _begin_immediate(conn: Connection) -> Connection:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    return conn
