"""Redis for the ephemeral records: routing, key layout, native TTLs, cross-store cascade."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from ostiary.core.models import ConsumeResult, ConsumeStatus
from ostiary.errors import ConfigurationError, StorageError
from ostiary.settings import Settings
from ostiary.storage import (
    MemoryStorage,
    RedisEphemeralStore,
    SqlStorage,
    TieredStorage,
    open_storage,
)
from ostiary.storage.engines import PostgresEngine
from ostiary.storage.redis import CODE_RETENTION_SECONDS, MIN_TTL_MS
from tests._services import postgres_url, redis_url

from .cascade import issue
from .conftest import drop_prefix, redis_prefix
from .records import NOW, code, grant, interaction, session

pytestmark = pytest.mark.redis

#: The wall clock the TTLs are computed from in these tests.
WALL = NOW - 1000


@pytest.fixture
async def tiered() -> AsyncIterator[TieredStorage]:
    """Memory durable store + Redis with a pinned wall clock, under a prefix of its own."""
    url, prefix = redis_url(), redis_prefix()
    store = TieredStorage(
        MemoryStorage(), RedisEphemeralStore(url, prefix=prefix, wall_clock=lambda: WALL)
    )
    await store.initialize()
    try:
        yield store
    finally:
        await store.close()
        await drop_prefix(url, prefix)


@pytest.fixture
async def raw() -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url(), decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def test_ephemeral_records_live_in_redis_only(
    tiered: TieredStorage, raw: Redis, tenant: str
) -> None:
    await tiered.save_authorization_code(code(tenant))
    await tiered.save_interaction(interaction(tenant))
    await tiered.save_session(session(tenant))
    assert await tiered.remember_jti(tenant, "jti-1", NOW + 60, NOW) is True
    assert await tiered.hit(tenant, "token:1.2.3.4", 60, NOW) == 1
    durable = tiered.durable
    key = tiered.ephemeral.key

    assert await durable.consume_authorization_code(tenant, "c" * 64, NOW) == ConsumeResult(
        ConsumeStatus.NOT_FOUND
    )
    assert await durable.get_interaction(tenant, "ia-1", NOW) is None
    assert await durable.get_session(tenant, "s" * 64, NOW) is None
    assert await durable.remember_jti(tenant, "jti-1", NOW + 60, NOW) is True
    assert await durable.hit(tenant, "token:1.2.3.4", 60, NOW) == 1
    prefix = f"{tiered.ephemeral.prefix}{{{tenant}}}"
    assert sorted(await raw.keys(f"{prefix}:*")) == [
        f"{prefix}:code:{'c' * 64}",
        f"{prefix}:codes:client_id:client-1",
        f"{prefix}:codes:grant_id:grant-1",
        f"{prefix}:codes:live",
        f"{prefix}:codes:subject:user-1",
        f"{prefix}:interaction:ia-1",
        f"{prefix}:jti:jti-1",
        f"{prefix}:rate:token:1.2.3.4",
        f"{prefix}:session:{'s' * 64}",
    ]
    assert key(tenant, "code", "x") == f"{prefix}:code:x"
    assert key(tenant, "code", "") == f"{prefix}:code:"  # an empty id is still an id
    assert key(tenant, "codes:live") == f"{prefix}:codes:live"
    assert await raw.hgetall(f"{prefix}:code:{'c' * 64}") == {
        "record": (
            f'{{"tenant_id":"{tenant}","code_hash":"{"c" * 64}","grant_id":"grant-1",'
            '"client_id":"client-1","subject":"user-1","redirect_uri":'
            '"http://127.0.0.1:53682/cb","code_challenge":'
            '"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","scopes":["mcp:read"],'
            '"resource":"https://mcp.example/mcp","expires_at":4000000060,"consumed_at":null,'
            '"dpop_jkt":null}'
        ),
        "expires_at": str(NOW + 60),
        "grant_id": "grant-1",
        "client_id": "client-1",
        "subject": "user-1",
    }


async def _pttl(raw: Redis, key: str) -> int:
    return int(await raw.pttl(key))


async def test_every_key_expires_natively_by_the_records_expiry(
    tiered: TieredStorage, raw: Redis, tenant: str
) -> None:
    """TTL = expiry - wall clock (codes: + the replay retention); a replay just after a
    code's expiry is still recognised."""
    await tiered.save_authorization_code(code(tenant, expires_at=NOW + 60))
    await tiered.save_interaction(interaction(tenant, expires_at=NOW + 600))
    await tiered.save_session(session(tenant, expires_at=NOW + 7200))
    await tiered.remember_jti(tenant, "jti-1", NOW + 300, NOW)
    window = NOW - NOW % 60
    await tiered.hit(tenant, "b", 60, NOW)
    k = tiered.ephemeral.key

    expected = {
        k(tenant, "code", "c" * 64): (NOW + 60 + CODE_RETENTION_SECONDS - WALL) * 1000,
        k(tenant, "codes:grant_id", "grant-1"): (NOW + 60 + CODE_RETENTION_SECONDS - WALL) * 1000,
        k(tenant, "codes:live"): (NOW + 60 + CODE_RETENTION_SECONDS - WALL) * 1000,
        k(tenant, "interaction", "ia-1"): (NOW + 600 - WALL) * 1000,
        k(tenant, "session", "s" * 64): (NOW + 7200 - WALL) * 1000,
        k(tenant, "jti", "jti-1"): (NOW + 300 - WALL) * 1000,
        k(tenant, "rate", "b"): (window + 60 - WALL) * 1000,
    }
    for key, ttl in expected.items():
        left = await _pttl(raw, key)
        assert ttl - 2000 < left <= ttl, key


async def test_a_record_saved_already_expired_lives_for_the_minimum_ttl(
    tiered: TieredStorage, raw: Redis, tenant: str
) -> None:
    await tiered.save_interaction(interaction(tenant, expires_at=WALL - 5))

    left = await _pttl(raw, tiered.ephemeral.key(tenant, "interaction", "ia-1"))

    assert MIN_TTL_MS - 2000 < left <= MIN_TTL_MS
    assert await tiered.get_interaction(tenant, "ia-1", WALL - 5) is None
    assert await tiered.get_interaction(tenant, "ia-1", WALL - 6) == interaction(
        tenant, expires_at=WALL - 5
    )


async def test_revoke_grant_consumes_the_grants_codes_in_redis_and_drops_its_index(
    tiered: TieredStorage, raw: Redis, tenant: str
) -> None:
    await issue(tiered, tenant, "grant-1")
    await tiered.save_authorization_code(code(tenant, "second", grant_id="grant-1"))
    await issue(tiered, tenant, "grant-2")

    assert await tiered.revoke_grant(tenant, "grant-1", NOW + 5) is True

    for code_hash in ("code-grant-1", "second"):
        replay = await tiered.consume_authorization_code(tenant, code_hash, NOW + 6)
        assert replay.status is ConsumeStatus.REPLAYED
        assert replay.record is not None
        assert replay.record.consumed_at == NOW + 5
    assert await raw.exists(tiered.ephemeral.key(tenant, "codes:grant_id", "grant-1")) == 0
    live = await tiered.consume_authorization_code(tenant, "code-grant-2", NOW)
    assert live.status is ConsumeStatus.OK
    assert (await tiered.stats(tenant, NOW)).live_authorization_codes == 0


async def test_deleting_a_client_or_user_consumes_their_codes_in_redis(
    tiered: TieredStorage, tenant: str
) -> None:
    await tiered.save_grant(grant(tenant, "g-a", client_id="client-a"))
    await tiered.save_grant(grant(tenant, "g-b", subject="user-b"))
    await tiered.save_authorization_code(code(tenant, "of-a", grant_id="g-a", client_id="client-a"))
    await tiered.save_authorization_code(code(tenant, "of-b", grant_id="g-b", subject="user-b"))
    await tiered.save_authorization_code(code(tenant, "other"))
    assert (await tiered.stats(tenant, NOW)).live_authorization_codes == 3

    await tiered.delete_client(tenant, "client-a")
    await tiered.delete_user(tenant, "user-b")

    statuses = [
        (await tiered.consume_authorization_code(tenant, h, NOW)).status
        for h in ("of-a", "of-b", "other")
    ]
    assert statuses == [ConsumeStatus.REPLAYED, ConsumeStatus.REPLAYED, ConsumeStatus.OK]


async def test_a_code_resaved_under_another_grant_is_not_retired_by_the_old_one(
    tiered: TieredStorage, tenant: str
) -> None:
    await tiered.save_authorization_code(code(tenant, grant_id="old"))
    await tiered.save_authorization_code(code(tenant, grant_id="new"))

    await tiered.revoke_grant(tenant, "old", NOW)

    assert (await tiered.consume_authorization_code(tenant, "c" * 64, NOW)).status is (
        ConsumeStatus.OK
    )


async def test_a_burst_larger_than_the_connection_pool_waits_instead_of_failing(
    tenant: str,
) -> None:
    url, prefix = redis_url(), redis_prefix()
    store = RedisEphemeralStore(url, prefix=prefix, max_connections=2)
    try:
        await store.save_authorization_code(code(tenant))
        results = await asyncio.gather(
            *(store.consume_authorization_code(tenant, "c" * 64, NOW) for _ in range(20))
        )
    finally:
        await store.close()
        await drop_prefix(url, prefix)

    assert Counter(r.status for r in results) == {
        ConsumeStatus.OK: 1,
        ConsumeStatus.REPLAYED: 19,
    }


async def test_tenants_whose_names_look_like_key_syntax_never_meet(tiered: TieredStorage) -> None:
    tenants = ["a", "a:code", "a}", "{a}", "a%7D", "a:codes:live"]
    for tenant in tenants:
        await tiered.save_interaction(interaction(tenant, params={"who": tenant}))

    found = [await tiered.get_interaction(t, "ia-1", NOW) for t in tenants]

    assert [i.params["who"] if i else None for i in found] == tenants
    assert len({tiered.ephemeral.key(t, "interaction", "ia-1") for t in tenants}) == len(tenants)


async def test_unreachable_redis_is_a_storage_error_and_unhealthy(tenant: str) -> None:
    store = TieredStorage(MemoryStorage(), RedisEphemeralStore("redis://127.0.0.1:1/0"))
    try:
        assert await store.healthy() is False
        with pytest.raises(StorageError, match=r"^storage backend failed: ConnectionError$"):
            await store.consume_authorization_code(tenant, "c" * 64, NOW)
        with pytest.raises(StorageError, match=r"^storage backend failed: ConnectionError$"):
            await store.initialize()
        await store.save_grant(grant(tenant))
        assert await store.get_grant(tenant, "grant-1") == grant(tenant)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_open_storage_tiers_with_redis_when_redis_url_is_set(
    settings_factory: Callable[..., Settings],
) -> None:
    url = redis_url()
    sql = open_storage(
        settings_factory(storage={"url": postgres_url(), "redis_url": url, "pool_size": 7})
    )
    memory = open_storage(settings_factory(storage={"url": "memory://", "redis_url": url}))
    try:
        assert isinstance(sql, TieredStorage)
        assert isinstance(sql.durable, SqlStorage)
        assert isinstance(sql.durable._engine, PostgresEngine)
        assert sql.durable._engine.engine.pool.size() == 7  # type: ignore[attr-defined]
        assert isinstance(memory, TieredStorage)
        assert type(memory.durable) is MemoryStorage
        assert await memory.healthy() is True
    finally:
        await sql.close()
        await memory.close()


def test_open_storage_rejects_a_redis_url_of_another_scheme(
    settings_factory: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        open_storage(settings_factory(storage={"url": "memory://", "redis_url": "http://x"}))
    assert str(raised.value) == (
        "storage.redis_url 'http://x' is not supported; "
        "use redis://host:port/db or rediss://host:port/db"
    )
