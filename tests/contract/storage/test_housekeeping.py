"""Stats, purging of expired records and the health probe (RFC 7009 §2; RFC 9700 §4.14)."""

from __future__ import annotations

import time

from ostiary.core.models import ConsumeStatus, Stats
from ostiary.storage import Storage, TieredStorage

from .records import (
    NOW,
    access,
    client,
    code,
    grant,
    interaction,
    refresh,
    session,
    signing_key,
    user,
)


async def test_stats_counts_only_live_records_of_the_tenant(
    storage: Storage, tenant: str, other_tenant: str
) -> None:
    for who in (tenant, other_tenant):
        await storage.save_client(client(who, "c1"))
        await storage.save_user(user(who))
    await storage.save_client(client(tenant, "c2"))
    await storage.save_user(user(tenant, "user-2", username="bob"))
    await storage.save_grant(grant(tenant, "live"))
    await storage.save_grant(grant(tenant, "revoked", revoked_at=NOW - 1))
    await storage.save_grant(grant(tenant, "expired", expires_at=NOW))
    await storage.save_authorization_code(code(tenant, "live"))
    await storage.save_authorization_code(code(tenant, "consumed", consumed_at=NOW - 1))
    await storage.save_authorization_code(code(tenant, "expired", expires_at=NOW))
    await storage.save_access_token(access(tenant, "live"))
    await storage.save_access_token(access(tenant, "live-2"))
    await storage.save_access_token(access(tenant, "revoked", revoked_at=NOW - 1))
    await storage.save_access_token(access(tenant, "expired", expires_at=NOW))
    await storage.save_refresh_token(refresh(tenant, "live"))
    await storage.save_refresh_token(refresh(tenant, "rotated", rotated_at=NOW - 1))
    await storage.save_refresh_token(refresh(tenant, "revoked", revoked_at=NOW - 1))
    await storage.save_refresh_token(refresh(tenant, "idle", idle_expires_at=NOW))
    await storage.save_refresh_token(refresh(tenant, "expired", expires_at=NOW))

    assert await storage.stats(tenant, NOW) == Stats(
        clients=2,
        users=2,
        live_grants=1,
        live_authorization_codes=1,
        live_access_tokens=2,
        live_refresh_tokens=1,
    )


async def test_purge_expired_deletes_expired_records_of_every_kind(
    storage: Storage, tenant: str
) -> None:
    """Uses a negative clock unique to this run: on a shared PostgreSQL, nothing of anyone
    else's (real timestamps, or an earlier run's leftovers) is at or before it.

    Redis (tiered) expires codes, interactions, sessions, jtis and rate counters by itself,
    by the wall clock: those are checked in test_tiered_backend.py, not purged here.
    """
    native = isinstance(storage, TieredStorage)
    now = -(time.time_ns() // 1000)
    dead, live = now, now + 1
    await storage.save_refresh_token(refresh(tenant, "dead", expires_at=dead))
    await storage.save_refresh_token(refresh(tenant, "idle", expires_at=live, idle_expires_at=dead))
    await storage.save_refresh_token(refresh(tenant, "live", expires_at=live, idle_expires_at=live))
    await storage.save_access_token(access(tenant, "dead", expires_at=dead))
    await storage.save_access_token(access(tenant, "live", expires_at=live))
    await storage.save_grant(grant(tenant, "dead", expires_at=dead))
    await storage.save_grant(grant(tenant, "live", expires_at=live))
    await storage.save_signing_key(signing_key(tenant, "dead", expires_at=dead, created_at=1))
    await storage.save_signing_key(signing_key(tenant, "live", expires_at=live, created_at=2))
    await storage.save_signing_key(signing_key(tenant, "current", created_at=3))
    if not native:
        await _save_ephemeral(storage, tenant, now)

    assert await storage.purge_expired(now) == (5 if native else 10)

    assert [
        await storage.get_refresh_token(tenant, h) is None for h in ("dead", "idle", "live")
    ] == [
        True,
        True,
        False,
    ]
    assert await storage.get_access_token(tenant, "dead") is None
    assert await storage.get_access_token(tenant, "live") is not None
    assert await storage.get_grant(tenant, "dead") is None
    assert await storage.get_grant(tenant, "live") is not None
    assert [k.kid for k in await storage.list_signing_keys(tenant)] == ["current", "live"]
    if not native:
        await _check_ephemeral(storage, tenant, now)


async def _save_ephemeral(storage: Storage, tenant: str, now: int) -> None:
    before = now - 10**6  # a time when everything was still live, to see what is left
    dead, live = now, now + 1
    await storage.save_authorization_code(code(tenant, "dead", expires_at=dead))
    await storage.save_authorization_code(code(tenant, "live", expires_at=live))
    await storage.save_interaction(interaction(tenant, "dead", expires_at=dead))
    await storage.save_interaction(interaction(tenant, "live", expires_at=live))
    await storage.save_session(session(tenant, "dead", expires_at=dead))
    await storage.save_session(session(tenant, "live", expires_at=live))
    assert await storage.remember_jti(tenant, "dead", dead, before) is True
    assert await storage.remember_jti(tenant, "live", live, before) is True
    assert await storage.hit(tenant, "dead", 60, now - 120) == 1
    assert await storage.hit(tenant, "live", 60, now) == 1


async def _check_ephemeral(storage: Storage, tenant: str, now: int) -> None:
    before, live = now - 10**6, now + 1
    assert (await storage.consume_authorization_code(tenant, "dead", before)).status is (
        ConsumeStatus.NOT_FOUND
    )
    assert (await storage.consume_authorization_code(tenant, "live", before)).status is (
        ConsumeStatus.OK
    )
    assert await storage.get_interaction(tenant, "dead", before) is None
    assert await storage.get_interaction(tenant, "live", before) is not None
    assert await storage.get_session(tenant, "dead", before) is None
    assert await storage.get_session(tenant, "live", before) is not None
    assert await storage.remember_jti(tenant, "dead", live, before) is True
    assert await storage.remember_jti(tenant, "live", live, before) is False
    assert await storage.hit(tenant, "dead", 60, now - 120) == 1
    assert await storage.hit(tenant, "live", 60, now) == 2


async def test_purge_with_nothing_expired_deletes_nothing(storage: Storage, tenant: str) -> None:
    now = -(time.time_ns() // 1000)
    await storage.save_grant(grant(tenant, expires_at=now + 1))

    assert await storage.purge_expired(now) == 0
    assert await storage.get_grant(tenant, "grant-1") == grant(tenant, expires_at=now + 1)


async def test_healthy(storage: Storage) -> None:
    assert await storage.healthy() is True


async def test_stats_of_an_empty_tenant_are_zero(storage: Storage, tenant: str) -> None:
    assert await storage.stats(tenant, NOW) == Stats(0, 0, 0, 0, 0, 0)
