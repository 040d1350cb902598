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

  The periodic purge, which may delete very many rows at once, runs on a worker thread with
  a second connection instead (:meth:`SqliteEngine.bulk`).

  SQLAlchemy compiles each statement once per set of parameter names; the engine then hands
  the SQL text and the processed values straight to ``sqlite3`` (SQLAlchemy's per-execution
  bookkeeping cost twice the statement itself). A statement that needs more than plain
  binds (a post-compiled ``IN`` list) takes SQLAlchemy's own execution path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import ClauseElement, Executable, TextClause, create_engine, event
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, StaticPool
from sqlalchemy.sql.compiler import Compiled, SQLCompiler

from ostiary.errors import StorageError

T = TypeVar("T")
Params = dict[str, Any]
Upgrade = Callable[[Connection], None]

#: How long a SQLite operation keeps retrying while another process holds the write lock.
SQLITE_BUSY_TIMEOUT_S = 10.0
#: Bytes the WAL file is truncated to after a checkpoint (PRAGMA journal_size_limit).
SQLITE_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
#: First and longest pause between those retries.
_BUSY_FIRST_PAUSE_S, _BUSY_MAX_PAUSE_S = 0.0005, 0.05
#: Key of the PostgreSQL advisory lock that serialises schema upgrades across processes.
MIGRATION_LOCK_KEY = 0x05717A27


class Rows(Protocol):
    """What an executed statement gives back (a ``CursorResult`` has all of it)."""

    @property
    def rowcount(self) -> int: ...

    def first(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...


class Runner(Protocol):
    """One open connection inside an operation: ``await runner.execute(statement, params)``."""

    async def execute(self, statement: Executable, parameters: Params | None = None) -> Rows: ...


class Engine(Protocol):
    """What SqlStorage needs from a database: statements, transactions, migrations."""

    async def run(self, statement: Executable, params: Params, take: Callable[[Rows], T]) -> T:
        """Run one statement on its own (autocommit) and return ``take(result)``."""
        ...

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Runner]:
        """A write transaction: committed when the block ends, rolled back on an error."""
        ...

    async def migrate(self, upgrade: Upgrade) -> None:
        """Run ``upgrade`` on a connection holding the cross-process migration lock."""
        ...

    async def bulk(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` (many rows: the purge) in one write transaction, off the event loop
        where the driver would otherwise block it."""
        ...

    async def close(self) -> None: ...


def _storage_error(exc: BaseException) -> StorageError:
    return StorageError(f"storage backend failed: {type(exc).__name__}")


# -- PostgreSQL ------------------------------------------------------------------------------


class PostgresEngine:
    """PostgreSQL through asyncpg: SQLAlchemy compiles, asyncpg executes.

    Each statement is compiled once (per set of parameter names) to asyncpg's ``$n`` SQL,
    like the SQLite engine's plans; asyncpg prepares it once per connection and caches it.
    Going through SQLAlchemy's async layer for every execution (greenlet hand-offs, result
    bookkeeping, its connection adapter) cost several times the round trip itself and made
    a PostgreSQL node CPU-bound long before its database. Migrations, the purge and any
    statement that needs more than plain binds still use SQLAlchemy's async engine.
    ``pool_size`` connections, and as many again under load, in each of the two pools.
    """

    def __init__(self, url: str, *, pool_size: int) -> None:
        self.engine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600
        )
        self._auto = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        parsed = make_url(url)
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool_size = pool_size
        self._pool: tuple[asyncio.AbstractEventLoop, Any] | None = None
        self._pool_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._plans: dict[tuple[Executable, tuple[str, ...]], _Plan | None] = {}

    async def _asyncpg_pool(self) -> Any:
        """The asyncpg pool of the running loop, made on first use."""
        import asyncpg

        loop = asyncio.get_running_loop()
        if self._pool is not None and self._pool[0] is loop:
            return self._pool[1]
        if self._pool_lock is None or self._pool_lock[0] is not loop:
            self._pool_lock = (loop, asyncio.Lock())
        async with self._pool_lock[1]:
            if self._pool is None or self._pool[0] is not loop:
                pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=2 * self._pool_size,
                    max_inactive_connection_lifetime=3600,
                    init=_json_codecs,
                )
                self._pool = (loop, pool)
        return self._pool[1]

    def _plan_for(self, statement: Executable, params: Params) -> _Plan | None:
        key = (statement, tuple(params))
        plan: _Plan | None = self._plans.get(key, _UNPLANNED)
        if plan is _UNPLANNED:
            plan = _plan(statement, params, self.engine.dialect)
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    async def _execute(self, conn: Any, statement: Executable, params: Params) -> Rows:
        """One statement on an asyncpg connection (or SQLAlchemy's path when unplanned)."""
        import asyncpg

        plan = self._plan_for(statement, params)
        if plan is None:
            async with self._auto.begin() as fallback:
                return cast(Rows, await fallback.execute(statement, params))
        try:
            values = plan.parameters(params)
        except (TypeError, ValueError) as exc:
            raise StatementError(str(exc), plan.sql, params, exc) from exc
        try:
            if plan.returns_rows:  # SELECT, RETURNING or text: rows come back
                records = await conn.fetch(plan.sql, *values)
                return plan.records(records)
            status: str = await conn.execute(plan.sql, *values)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(plan.sql, values, exc) from exc
        except asyncpg.PostgresError as exc:
            raise DBAPIError(plan.sql, values, exc) from exc
        return _Rows([], _status_count(status))

    async def run(self, statement: Executable, params: Params, take: Callable[[Rows], T]) -> T:
        try:
            pool = await self._asyncpg_pool()
            async with pool.acquire() as conn:
                return take(await self._execute(conn, statement, params))
        except (SQLAlchemyError, OSError) as exc:
            raise _storage_error(exc) from exc
        except Exception as exc:  # asyncpg's connection errors (InterfaceError, ...)
            if type(exc).__module__.startswith("asyncpg"):
                raise _storage_error(exc) from exc
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Runner]:
        try:
            pool = await self._asyncpg_pool()
            async with pool.acquire() as conn, conn.transaction():
                yield _AsyncpgRunner(self, conn)
        except (SQLAlchemyError, OSError) as exc:
            raise _storage_error(exc) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("asyncpg"):
                raise _storage_error(exc) from exc
            raise

    async def migrate(self, upgrade: Upgrade) -> None:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            await conn.run_sync(upgrade)
            await conn.commit()

    async def bulk(self, work: Callable[[Connection], T]) -> T:
        try:
            async with self.engine.begin() as conn:
                return await conn.run_sync(work)
        except (SQLAlchemyError, OSError) as exc:
            raise _storage_error(exc) from exc

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool[1], None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 10)
        self._plans.clear()
        await self.engine.dispose()


class _AsyncpgRunner:
    """An asyncpg connection inside a transaction, seen from an operation."""

    __slots__ = ("_conn", "_engine")

    def __init__(self, engine: PostgresEngine, conn: Any) -> None:
        self._engine = engine
        self._conn = conn

    async def execute(self, statement: Executable, parameters: Params | None = None) -> Rows:
        if self._engine._plan_for(statement, parameters or {}) is None:
            raise StatementError(
                "a statement inside a PostgreSQL transaction must compile to plain binds",
                str(statement),
                parameters,
                None,
            )
        return await self._engine._execute(self._conn, statement, parameters or {})


async def _json_codecs(conn: Any) -> None:
    """JSON columns: SQLAlchemy's bind processors send text; decode what comes back (as
    SQLAlchemy's asyncpg dialect sets up on its own connections)."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=str, decoder=json.loads, schema="pg_catalog", format="text"
        )


def _status_count(status: str) -> int:
    """Rows affected, from asyncpg's command tag ('UPDATE 3', 'INSERT 0 1', 'DELETE 0')."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


# -- SQLite ----------------------------------------------------------------------------------


def _bulk_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """The purge's own connection, on a worker thread: there, waiting for a lock is fine."""
    cursor = dbapi_connection.cursor()
    for pragma in (
        f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
        f"PRAGMA journal_size_limit={SQLITE_JOURNAL_SIZE_LIMIT}",
    ):
        cursor.execute(pragma)
    cursor.close()


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        # Once per process, while the connection opens: switching to WAL needs a moment of
        # exclusive access, so wait for another process's transaction here...
        f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}",
        "PRAGMA journal_mode=WAL",
        # NORMAL is durable across a process crash (kill -9) in WAL mode; only a power loss
        # can drop the last transactions, never corrupt the file.
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
        # A checkpoint truncates the WAL file back to this size instead of leaving it as
        # large as the biggest transaction ever made it (a purge once left 529 MB).
        f"PRAGMA journal_size_limit={SQLITE_JOURNAL_SIZE_LIMIT}",
        # ...and never afterwards: from now on SqliteEngine waits with asyncio.sleep.
        "PRAGMA busy_timeout=0",
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


class _Row(tuple[Any, ...]):
    """A result row: values by position, and ``_mapping`` by column name (as SQLAlchemy's)."""

    __slots__ = ()
    _names: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._names, self, strict=True))


@dataclass(slots=True)
class _Rows:
    rows: list[_Row]
    rowcount: int

    def first(self) -> _Row | None:
        return self.rows[0] if self.rows else None

    def all(self) -> list[_Row]:
        return self.rows


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled once: its SQL, how to bind it, how to read its rows."""

    compiled: Compiled
    sql: str
    binds: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    row: type[_Row]
    readers: tuple[Callable[[Any], Any] | None, ...]
    returns_rows: bool = True

    def parameters(self, params: Params) -> tuple[Any, ...]:
        values = self.compiled.construct_params(params)
        assert values is not None
        return tuple(
            value if bind is None else bind(value)
            for value, bind in ((values[name], bind) for name, bind in self.binds)
        )

    def records(self, fetched: Sequence[Any]) -> _Rows:
        """asyncpg records (by position) as rows, through the columns' result processors."""
        readers, row = self.readers, self.row
        if not row._names and fetched:  # text(): the names come from the records
            names = tuple(fetched[0].keys())
            row = type("Row", (_Row,), {"__slots__": (), "_names": names})
            return _Rows([row(values) for values in fetched], len(fetched))
        if any(reader is not None for reader in readers):
            return _Rows(
                [
                    row(v if r is None else r(v) for v, r in zip(values, readers, strict=True))
                    for values in fetched
                ],
                len(fetched),
            )
        return _Rows([row(values) for values in fetched], len(fetched))

    def rows(self, cursor: sqlite3.Cursor) -> _Rows:
        fetched = cursor.fetchall()
        readers, row = self.readers, self.row
        if any(reader is not None for reader in readers):
            fetched = [
                tuple(v if r is None else r(v) for v, r in zip(values, readers, strict=True))
                for values in fetched
            ]
        return _Rows([row(values) for values in fetched], cursor.rowcount)


def _plan(statement: Executable, params: Params, dialect: Dialect) -> _Plan | None:
    """Compile ``statement`` for ``dialect`` and these parameter names; None if it needs more
    than plain positional binds.

    Reads three attributes SQLAlchemy keeps for its own execution (``_bind_processors``,
    ``_result_columns``, ``_cached_result_processor``); pyproject pins SQLAlchemy below 2.2
    and the storage contract suite runs every statement through this path.
    """
    if not isinstance(statement, ClauseElement):
        return None
    compiled = statement.compile(dialect=dialect, column_keys=list(params))
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        return None
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None
    processors = compiled._bind_processors
    binds = tuple((name, _single(processors.get(name))) for name in compiled.positiontup)
    if any(bind is _UNPLANNED for _name, bind in binds):
        return None
    columns = compiled._result_columns
    readers = tuple(c.type._cached_result_processor(dialect, None) for c in columns)
    row = type("Row", (_Row,), {"__slots__": (), "_names": tuple(c.keyname for c in columns)})
    returns_rows = bool(columns) or bool(getattr(compiled, "effective_returning", None))
    if isinstance(statement, TextClause):
        returns_rows = True
    return _Plan(compiled, compiled.string, binds, row, readers, returns_rows)


def _single(processor: object) -> Callable[[Any], Any] | None:
    """A bind processor, or _UNPLANNED for SQLAlchemy's tuple-of-processors form."""
    if processor is None or callable(processor):
        return processor
    return _UNPLANNED  # type: ignore[no-any-return]


class _LoopRunner:
    """The SQLite connection seen from an operation: ``execute`` runs at once, on the loop."""

    __slots__ = ("_engine",)

    def __init__(self, engine: SqliteEngine) -> None:
        self._engine = engine

    async def execute(self, statement: Executable, parameters: Params | None = None) -> Rows:
        return self._engine.execute_now(statement, parameters or {})


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
        # A second connection, opened per bulk operation on a worker thread (see bulk()).
        self._bulk_engine = create_engine(
            self.engine.url, poolclass=NullPool, connect_args={"isolation_level": None}
        )
        event.listen(self._bulk_engine, "connect", _bulk_pragmas)
        self._conn: Connection | None = None
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._plans: dict[tuple[Executable, tuple[str, ...]], _Plan | None] = {}

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def _dbapi(self) -> sqlite3.Connection:
        raw = self._connection().connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw

    def execute_now(self, statement: Executable, params: Params) -> Rows:
        """Run one statement on the connection, in whatever transaction it is in."""
        key = (statement, tuple(params))
        plan: _Plan | None = self._plans.get(key, _UNPLANNED)
        if plan is _UNPLANNED:
            plan = _plan(statement, params, self.engine.dialect)
            if len(self._plans) >= _MAX_PLANS:  # statements built per call (rare operations)
                self._plans.clear()
            self._plans[key] = plan
        if plan is None:
            return cast(Rows, self._connection().execute(statement, params))
        try:
            values = plan.parameters(params)
        except (TypeError, ValueError) as exc:  # a value its column type cannot hold
            raise StatementError(str(exc), plan.sql, params, exc) from exc
        try:
            return plan.rows(self._dbapi().execute(plan.sql, values))
        except sqlite3.Error as exc:
            raise DBAPIError.instance(plan.sql, values, exc, sqlite3.Error) from exc

    def _finish(self, *, commit: bool) -> None:
        """End the transaction, SQLAlchemy's bookkeeping and the driver's alike."""
        conn = self._connection()
        if conn.in_transaction():
            conn.commit() if commit else conn.rollback()
        raw = self._dbapi()
        if raw.in_transaction:
            raw.commit() if commit else raw.rollback()

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
            try:
                return attempt(self._connection())
            except OperationalError as exc:
                self._finish(commit=False)
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
            except BaseException:
                self._finish(commit=False)
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _BUSY_MAX_PAUSE_S)

    async def run(self, statement: Executable, params: Params, take: Callable[[Rows], T]) -> T:
        def attempt(_conn: Connection) -> T:
            taken = take(self.execute_now(statement, params))
            self._finish(commit=True)  # only bookkeeping: SQLite committed the statement
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
                await self._retry(_begin_immediate)
                try:
                    yield _LoopRunner(self)
                except BaseException:
                    self._finish(commit=False)
                    raise
                self._finish(commit=True)
        except (SQLAlchemyError, OSError) as exc:
            raise _storage_error(exc) from exc

    async def migrate(self, upgrade: Upgrade) -> None:
        async with self._serialized():
            conn = await self._retry(_begin_immediate)
            try:
                upgrade(conn)
            except BaseException:
                self._finish(commit=False)
                raise
            self._finish(commit=True)

    async def bulk(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one ``BEGIN IMMEDIATE`` transaction on its own connection, in a worker
        thread: a purge of many rows holds SQLite's write lock meanwhile (writers on the loop
        wait for it with asyncio.sleep, as for another process), but never the event loop."""

        def in_thread() -> T:
            with self._bulk_engine.connect() as conn:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    done = work(conn)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
                return done

        try:
            return await asyncio.to_thread(in_thread)
        except (SQLAlchemyError, OSError) as exc:
            raise _storage_error(exc) from exc

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._plans.clear()
        self.engine.dispose()
        self._bulk_engine.dispose()


def _begin_immediate(conn: Connection) -> Connection:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    return conn


_UNPLANNED: Any = object()
#: Compiled statements kept per engine; the fixed statements number well under a hundred.
_MAX_PLANS = 512
