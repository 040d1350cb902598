"""SQL backend: URLs, migrations, restarts and cross-process atomicity (RFC 9700 §4.14)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import fields, replace
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from ostiary.core.models import (
    Client,
    ConsumeStatus,
    RefreshToken,
    RotateResult,
    RotateStatus,
    User,
)
from ostiary.errors import ConfigurationError, StorageError
from ostiary.settings import Settings
from ostiary.storage import MemoryStorage, SqlStorage, open_storage
from ostiary.storage import statements as q
from ostiary.storage.schema import VERSION_TABLE, clients, metadata, refresh_tokens, users
from ostiary.storage.sql import MIGRATIONS_DIR, async_url
from tests._services import postgres_url

from .conftest import open_sql
from .race_worker import open_backend
from .records import NOW, client, code, refresh, user

WORKER = Path(__file__).with_name("race_worker.py")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///./.ostiary/ostiary.db", "sqlite+aiosqlite:///./.ostiary/ostiary.db"),
        ("sqlite:///rel/x.db", "sqlite+aiosqlite:///rel/x.db"),
        ("sqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
        ("sqlite+aiosqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
        ("postgresql://u@db:5433/ostiary", "postgresql+asyncpg://u@db:5433/ostiary"),
        ("postgres://u:p%40ss@db/ostiary", "postgresql+asyncpg://u:p%40ss@db/ostiary"),
        ("postgresql+asyncpg://u@db/x", "postgresql+asyncpg://u@db/x"),
    ],
)
def test_settings_urls_translate_to_async_drivers(url: str, expected: str) -> None:
    assert async_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "sqlite://",
            "storage.url 'sqlite://': in-memory SQLite is not supported; "
            "use memory:// or a file path such as sqlite:///./.ostiary/ostiary.db",
        ),
        (
            "mysql://u@db/x",
            "storage.url 'mysql://u@db/x': unsupported scheme; "
            "expected sqlite:/// or postgresql://",
        ),
        ("not a url", "storage.url 'not a url' is not a database URL"),
    ],
)
def test_unusable_urls_are_configuration_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        async_url(url)
    assert str(raised.value) == message


async def test_open_storage_picks_the_backend_from_the_url(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    memory = open_storage(settings_factory(storage={"url": "memory://"}))
    sqlite_store = open_storage(settings_factory(storage={"url": f"sqlite:///{tmp_path}/a.db"}))
    pg = open_storage(settings_factory(storage={"url": "postgres://u@127.0.0.1:1/x"}))
    try:
        assert type(memory) is MemoryStorage
        assert type(sqlite_store) is SqlStorage
        assert type(pg) is SqlStorage
        assert isinstance(pg, SqlStorage)
        assert pg.url == "postgresql+asyncpg://u@127.0.0.1:1/x"
    finally:
        await sqlite_store.close()
        await pg.close()


def test_open_storage_rejects_unknown_schemes(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        open_storage(settings_factory(storage={"url": "redis://127.0.0.1/0"}))
    assert str(raised.value) == (
        "storage.url 'redis://127.0.0.1/0' is not supported; use sqlite:///path/to/file.db, "
        "postgresql://user@host:port/db or memory://"
    )


async def test_sqlite_creates_the_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "ostiary.db"
    store = SqlStorage(f"sqlite:///{path}")
    await store.initialize()
    await store.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_initialize_twice_is_harmless_and_keeps_data(
    sql_backend_url: str, tenant: str
) -> None:
    store = await open_sql(sql_backend_url)
    try:
        await store.save_client(client(tenant))
        await store.initialize()
        await store.initialize()
        assert await store.get_client(tenant, "client-1") == client(tenant)
    finally:
        await store.close()


async def test_a_new_storage_on_the_same_database_sees_committed_data(
    sql_backend_url: str, tenant: str
) -> None:
    """A restart loses nothing committed, and a consumed code stays consumed."""
    first = await open_sql(sql_backend_url)
    await first.save_client(client(tenant))
    await first.save_authorization_code(code(tenant))
    assert (await first.consume_authorization_code(tenant, "c" * 64, NOW)).status is (
        ConsumeStatus.OK
    )
    await first.close()

    second = await open_sql(sql_backend_url)
    try:
        assert await second.get_client(tenant, "client-1") == client(tenant)
        replay = await second.consume_authorization_code(tenant, "c" * 64, NOW)
        assert replay.status is ConsumeStatus.REPLAYED
    finally:
        await second.close()


def _schema_drift(conn: Connection) -> tuple[list[object], str | None]:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return compare_metadata(context, metadata), context.get_current_revision()


async def test_migrations_create_exactly_the_declared_schema(sql_backend_url: str) -> None:
    store = await open_sql(sql_backend_url)
    await store.close()
    engine = create_async_engine(store.url)
    try:
        async with engine.connect() as conn:
            drift, revision = await conn.run_sync(_schema_drift)
    finally:
        await engine.dispose()

    assert drift == []
    assert revision == "0009"


async def test_a_rotation_finds_the_previous_sealed_successor_by_index(
    sql_backend_url: str,
) -> None:
    """A grant keeps every rotated token until it expires (reuse detection needs them); the
    rotation that clears the previous token's sealed successor must not read them all. On
    PostgreSQL, with the statistics of an almost empty table, the planner must still prefer
    the partial index to the grant index."""
    store = await open_sql(sql_backend_url)
    await store.close()
    values = {"k_tenant_id": "t", "k_grant_id": "g", "k_token_hash": "h"}
    engine = create_async_engine(store.url)
    try:
        async with engine.connect() as conn:
            forget = q.FORGET_PREVIOUS.compile(dialect=conn.dialect)
            assert forget.positiontup is not None
            explain = "EXPLAIN QUERY PLAN" if conn.dialect.name == "sqlite" else "EXPLAIN"
            rows = await conn.exec_driver_sql(
                f"{explain} {forget}", tuple(values[name] for name in forget.positiontup)
            )
            plan = " ".join(str(row[-1]) for row in rows)
    finally:
        await engine.dispose()

    assert "ix_refresh_tokens_sealed" in plan
    assert "ix_refresh_tokens_grant" not in plan


def _migrate(conn: Connection, direction: str, revision: str) -> list[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    getattr(command, direction)(config, revision)
    return sorted(inspect(conn).get_table_names())


def _downgrade_to_base(conn: Connection) -> list[str]:
    return _migrate(conn, "downgrade", "base")


async def test_migration_downgrades_cleanly_and_upgrades_again(tmp_path: Path, tenant: str) -> None:
    """SQLite only: never downgrade the shared PostgreSQL database."""
    store = await open_sql(f"sqlite:///{tmp_path / 'down.db'}")
    engine = create_async_engine(store.url)
    try:
        async with engine.begin() as conn:
            left = await conn.run_sync(_downgrade_to_base)
        await store.initialize()
        await store.save_client(client(tenant))
        assert await store.get_client(tenant, "client-1") == client(tenant)
    finally:
        await engine.dispose()
        await store.close()

    assert left == [VERSION_TABLE]


async def _upgrade_from_0001_keeps_data(url: str, tenant: str) -> None:
    """A database created by 0001 and holding data: initialize() brings it to head, the
    data stays, the new tables work; going back to 0001 drops exactly them."""
    store = SqlStorage(url)
    engine = create_async_engine(store.url)
    try:
        async with engine.begin() as conn:
            before = await conn.run_sync(_migrate, "upgrade", "0001")
            # This version's save_client writes `disabled` (0004) and save_refresh_token the
            # successor columns (0005): insert as 0001 would.
            await conn.execute(clients.insert().values(_columns_of_0001(client(tenant))))
            await conn.execute(refresh_tokens.insert().values(_columns_of_0004(refresh(tenant))))

        await store.initialize()

        assert await store.get_client(tenant, "client-1") == client(tenant)
        assert await store.get_refresh_token(tenant, "r" * 64) == refresh(tenant)
        assert await store.record_usage(tenant, "user-1", "echo", NOW) == 1
        async with engine.begin() as conn:
            at_head = await conn.run_sync(lambda c: inspect(c).get_table_names())
            after = await conn.run_sync(_migrate, "downgrade", "0001")
            kept = (
                await conn.execute(clients.select().with_only_columns(clients.c.client_id))
            ).all()
        assert [row.client_id for row in kept] == ["client-1"]
    finally:
        await engine.dispose()
        await store.close()

    new = {"notes", "api_usage", "linked_identities", "upstream_tokens"}
    assert new.isdisjoint(before)
    assert new <= set(at_head)
    assert after == before


async def test_a_0001_sqlite_database_upgrades_to_0002_keeping_its_data(
    tmp_path: Path, tenant: str
) -> None:
    await _upgrade_from_0001_keeps_data(f"sqlite:///{tmp_path / 'old.db'}", tenant)


@pytest.mark.postgres
async def test_a_0001_postgres_database_upgrades_to_0002_keeping_its_data(
    fresh_postgres_url: str, tenant: str
) -> None:
    await _upgrade_from_0001_keeps_data(fresh_postgres_url, tenant)


def _columns_of_0001(record: Client) -> dict[str, object]:
    return {f.name: getattr(record, f.name) for f in fields(record) if f.name != "disabled"}


def _columns_of_0004(record: RefreshToken) -> dict[str, object]:
    added = {"successor_hash", "sealed_successor", "dpop_jkt"}
    return {f.name: getattr(record, f.name) for f in fields(record) if f.name not in added}


def _refresh_columns(conn: Connection) -> list[str]:
    return [column["name"] for column in inspect(conn).get_columns("refresh_tokens")]


async def _upgrade_from_0004_keeps_refresh_tokens(url: str, tenant: str) -> None:
    """A database at 0004 holding a live and a rotated refresh token: initialize() adds
    ``successor_hash`` and ``sealed_successor`` (NULL for both). The token rotated before the
    upgrade has no sealed successor, so presenting it again, even within the window, is
    REUSED (never a second chain); the live one rotates and its retry gets the successor.
    Going back to 0004 drops exactly the two columns."""
    store = SqlStorage(url)
    engine = create_async_engine(store.url)
    live, rotated = refresh(tenant, "live"), refresh(tenant, "rotated", rotated_at=NOW)
    new = refresh(tenant, "new", issued_at=NOW + 1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "upgrade", "0004")
            before = await conn.run_sync(_refresh_columns)
            for old in (live, rotated):
                await conn.execute(refresh_tokens.insert().values(_columns_of_0004(old)))

        await store.initialize()

        assert await store.get_refresh_token(tenant, "live") == live
        reused = await store.rotate_refresh_token(tenant, "rotated", new, NOW + 1, 30)
        assert reused == RotateResult(RotateStatus.REUSED, rotated)
        ok = await store.rotate_refresh_token(
            tenant, "live", new, NOW + 1, 30, sealed_successor="v1.sealed"
        )
        assert ok.status is RotateStatus.OK
        again = await store.rotate_refresh_token(
            tenant, "live", refresh(tenant, "other"), NOW + 2, 30, sealed_successor="v1.other"
        )
        assert (again.status, again.successor) == (RotateStatus.SUPERSEDED, new)
        async with engine.begin() as conn:
            at_head = await conn.run_sync(_refresh_columns)
            await conn.run_sync(_migrate, "downgrade", "0004")
            after = await conn.run_sync(_refresh_columns)
    finally:
        await engine.dispose()
        await store.close()

    assert at_head == [*before, "successor_hash", "sealed_successor", "dpop_jkt"]
    assert after == before


async def test_a_0004_sqlite_database_upgrades_to_0005_keeping_its_refresh_tokens(
    tmp_path: Path, tenant: str
) -> None:
    await _upgrade_from_0004_keeps_refresh_tokens(f"sqlite:///{tmp_path / 'old.db'}", tenant)


@pytest.mark.postgres
async def test_a_0004_postgres_database_upgrades_to_0005_keeping_its_refresh_tokens(
    fresh_postgres_url: str, tenant: str
) -> None:
    await _upgrade_from_0004_keeps_refresh_tokens(fresh_postgres_url, tenant)


def _client_columns(conn: Connection) -> list[str]:
    return [column["name"] for column in inspect(conn).get_columns("clients")]


async def _upgrade_from_0003_keeps_clients(url: str, tenant: str) -> None:
    """A database at 0003 holding clients: initialize() adds ``clients.disabled`` (false for
    every one of them), a client can then be disabled; going back to 0003 drops the column."""
    store = SqlStorage(url)
    engine = create_async_engine(store.url)
    old_clients = [client(tenant), client(tenant, "client-2", client_name="Two")]
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "upgrade", "0003")
            before = await conn.run_sync(_client_columns)
            for old in old_clients:
                await conn.execute(clients.insert().values(_columns_of_0001(old)))

        await store.initialize()

        assert await store.list_clients(tenant) == old_clients
        assert [c.disabled for c in await store.list_clients(tenant)] == [False, False]
        await store.save_client(replace(old_clients[1], disabled=True))
        assert await store.get_client(tenant, "client-2") == replace(old_clients[1], disabled=True)
        async with engine.begin() as conn:
            at_head = await conn.run_sync(_client_columns)
            await conn.run_sync(_migrate, "downgrade", "0003")
            after = await conn.run_sync(_client_columns)
    finally:
        await engine.dispose()
        await store.close()

    assert "disabled" not in before
    assert at_head == [*before, "disabled"]
    assert after == before


async def test_a_0003_sqlite_database_upgrades_to_0004_keeping_its_clients_enabled(
    tmp_path: Path, tenant: str
) -> None:
    await _upgrade_from_0003_keeps_clients(f"sqlite:///{tmp_path / 'old.db'}", tenant)


@pytest.mark.postgres
async def test_a_0003_postgres_database_upgrades_to_0004_keeping_its_clients_enabled(
    fresh_postgres_url: str, tenant: str
) -> None:
    await _upgrade_from_0003_keeps_clients(fresh_postgres_url, tenant)


def _user_columns(conn: Connection) -> list[str]:
    return [column["name"] for column in inspect(conn).get_columns("users")]


async def _upgrade_from_0002_keeps_users(url: str, tenant: str) -> None:
    """A database at 0002 holding users: initialize() adds ``users.totp_secret`` (NULL for
    them) and ``users.admin`` (false), a secret can then be stored; going back to 0002 drops
    exactly those columns."""
    store = SqlStorage(url)
    engine = create_async_engine(store.url)
    old_users = [user(tenant), user(tenant, "user-2", username="bob", disabled=True)]
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "upgrade", "0002")
            before = await conn.run_sync(_user_columns)
            # This version's save_user writes totp_secret and admin (0003, 0007), which 0002
            # lacks: insert directly.
            for old in old_users:
                await conn.execute(
                    users.insert().values(
                        {c: v for c, v in _row(old).items() if c not in ("totp_secret", "admin")}
                    )
                )

        await store.initialize()

        assert await store.list_users(tenant) == old_users
        enrolled = replace(old_users[0], totp_secret="JBSWY3DPEHPK3PXP")
        await store.save_user(enrolled)
        assert await store.get_user_by_username(tenant, "alice") == enrolled
        async with engine.begin() as conn:
            at_head = await conn.run_sync(_user_columns)
            await conn.run_sync(_migrate, "downgrade", "0002")
            after = await conn.run_sync(_user_columns)
            kept = (await conn.execute(users.select().with_only_columns(users.c.username))).all()
    finally:
        await engine.dispose()
        await store.close()

    assert "totp_secret" not in before
    assert at_head == [*before, "totp_secret", "admin"]
    assert after == before
    assert sorted(row.username for row in kept) == ["alice", "bob"]


def _row(record: User) -> dict[str, object]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


async def test_a_0002_sqlite_database_upgrades_to_0003_keeping_its_users(
    tmp_path: Path, tenant: str
) -> None:
    await _upgrade_from_0002_keeps_users(f"sqlite:///{tmp_path / 'old.db'}", tenant)


@pytest.mark.postgres
async def test_a_0002_postgres_database_upgrades_to_0003_keeping_its_users(
    fresh_postgres_url: str, tenant: str
) -> None:
    await _upgrade_from_0002_keeps_users(fresh_postgres_url, tenant)


async def test_unreachable_database_is_a_storage_error_and_unhealthy() -> None:
    store = SqlStorage("postgresql://postgres@127.0.0.1:1/nothing")
    try:
        assert await store.healthy() is False
        with pytest.raises(StorageError, match=r"^storage backend failed: ConnectionRefusedError$"):
            await store.get_client("t", "c")
        with pytest.raises(StorageError, match=r"^schema migration failed: ConnectionRefusedError"):
            await store.initialize()
    finally:
        await store.close()


def _race(
    url: str,
    tenant: str,
    op: str,
    secret_hash: str,
    before_go: Callable[[], None] = lambda: None,
    redis: tuple[str, ...] = (),
) -> list[str]:
    """Start 4 processes, wait until each is connected, then release them together."""
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, tenant, op, secret_hash, str(NOW), *redis],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline() == "ready\n"
        before_go()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=60)[0].strip() for worker in workers]
        assert [worker.returncode for worker in workers] == [0] * 4
        return outputs
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()


def _seed_code(url: str, tenant: str, redis: tuple[str, ...] = ()) -> None:
    async def seed() -> None:
        store = open_backend(url, *redis)
        await store.save_authorization_code(code(tenant))
        await store.close()

    asyncio.run(seed())


def _redis_args(backend: tuple[str, str, str]) -> tuple[str, ...]:
    _, redis, prefix = backend
    return (redis, prefix) if redis else ()


@pytest.mark.slow
async def test_four_processes_racing_for_one_code_have_one_winner(
    race_backend: tuple[str, str, str], tenant: str
) -> None:
    """On SQLite the file is new: the processes also run initialize() on it at once."""
    url, redis = race_backend[0], _redis_args(race_backend)
    if url.startswith("sqlite"):
        assert not Path(url.removeprefix("sqlite:///")).exists()
        seed = lambda: _seed_code(url, tenant, redis)  # noqa: E731
    else:
        await asyncio.to_thread(_seed_code, url, tenant, redis)
        seed = lambda: None  # noqa: E731

    outcomes = await asyncio.to_thread(_race, url, tenant, "consume", "c" * 64, seed, redis)

    assert Counter(outcomes) == {"ok": 1, "replayed": 3}


@pytest.mark.slow
async def test_four_processes_rotating_one_token_without_grace_have_one_winner(
    race_backend: tuple[str, str, str], tenant: str
) -> None:
    url, redis = race_backend[0], _redis_args(race_backend)
    store = await open_sql(url)
    await store.save_refresh_token(refresh(tenant, "old"))
    try:
        outcomes = await asyncio.to_thread(_race, url, tenant, "rotate", "old", lambda: None, redis)
        statuses = Counter(line.split()[0] for line in outcomes)
        assert statuses == {"ok": 1, "reused": 3}
        stored = [await store.get_refresh_token(tenant, line.split()[1]) for line in outcomes]
        assert [s is not None for s in stored] == [line.startswith("ok") for line in outcomes]
    finally:
        await store.close()


@pytest.mark.slow
async def test_four_processes_rotating_one_token_within_grace_agree_on_one_successor(
    race_backend: tuple[str, str, str], tenant: str
) -> None:
    """One process rotates; the three others, in the same instant, get its successor."""
    url, redis = race_backend[0], _redis_args(race_backend)
    store = await open_sql(url)
    await store.save_refresh_token(refresh(tenant, "old"))
    try:
        outcomes = await asyncio.to_thread(
            _race, url, tenant, "rotate-grace", "old", lambda: None, redis
        )
        statuses = Counter(line.split()[0] for line in outcomes)
        assert statuses == {"ok": 1, "superseded": 3}
        [held] = {line.split()[1] for line in outcomes}
        winner = await store.get_refresh_token(tenant, held)
        assert winner is not None
        assert (winner.rotated_at, winner.revoked_at) == (None, None)
        old = await store.get_refresh_token(tenant, "old")
        assert old is not None
        assert (old.successor_hash, old.sealed_successor) == (held, f"v1.{held}")
        # No loser's own candidate was stored: the grant has one live token.
        assert (await store.stats(tenant, NOW)).live_refresh_tokens == 1
    finally:
        await store.close()


@pytest.fixture
async def fresh_postgres_url() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for this test only, dropped afterwards."""
    server = make_url(async_url(postgres_url()))
    name = f"ostiary_fresh_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except DBAPIError as exc:
        await admin.dispose()
        pytest.skip(f"cannot create a scratch database: {exc.orig}")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


@pytest.mark.postgres
@pytest.mark.slow
async def test_processes_migrating_a_fresh_postgres_database_together(
    fresh_postgres_url: str, tenant: str
) -> None:
    """The advisory lock serialises the first migration: every process starts cleanly."""
    outcomes = await asyncio.to_thread(
        _race,
        fresh_postgres_url,
        tenant,
        "consume",
        "c" * 64,
        lambda: _seed_code(fresh_postgres_url, tenant),
    )

    assert Counter(outcomes) == {"ok": 1, "replayed": 3}


@pytest.mark.slow
async def test_a_killed_process_loses_nothing_it_committed(
    sql_backend_url: str, tenant: str
) -> None:
    """kill -9 right after a code was consumed: after restart the code is still spent."""
    store = await open_sql(sql_backend_url)
    await store.save_authorization_code(code(tenant))
    await store.close()
    argv = [sys.executable, str(WORKER), sql_backend_url, tenant, "consume-and-hang"]
    with subprocess.Popen(
        [*argv, "c" * 64, str(NOW)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as worker:
        assert worker.stdout is not None
        assert worker.stdin is not None
        try:
            assert await asyncio.to_thread(worker.stdout.readline) == "ready\n"
            worker.stdin.write("go\n")
            worker.stdin.flush()
            assert await asyncio.to_thread(worker.stdout.readline) == "ok\n"
        finally:
            worker.kill()

    reopened = await open_sql(sql_backend_url)
    try:
        replay = await reopened.consume_authorization_code(tenant, "c" * 64, NOW)
    finally:
        await reopened.close()

    assert worker.returncode == -9
    assert replay.status is ConsumeStatus.REPLAYED
    assert replay.record is not None
    assert replay.record.consumed_at == NOW
