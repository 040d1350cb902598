"""Refresh-token rotation with reuse detection and a grace window (RFC 9700 §4.14.2)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

import pytest

from ostiary.core.models import RotateResult, RotateStatus
from ostiary.storage import Storage

from .records import NOW, refresh

OLD = "o" * 64


async def test_rotate_live_token_stores_new_and_marks_old_rotated(
    storage: Storage, tenant: str
) -> None:
    old = refresh(tenant, token_hash=OLD)
    new = refresh(tenant, token_hash="n" * 64, issued_at=NOW + 10)
    await storage.save_refresh_token(old)

    result = await storage.rotate_refresh_token(tenant, OLD, new, NOW + 10, 30)

    assert result == RotateResult(RotateStatus.OK, replace(old, rotated_at=NOW + 10))
    assert await storage.get_refresh_token(tenant, OLD) == replace(old, rotated_at=NOW + 10)
    assert await storage.get_refresh_token(tenant, new.token_hash) == new


async def test_rotated_token_within_grace_is_ok_and_keeps_first_rotation_time(
    storage: Storage, tenant: str
) -> None:
    """Concurrent refresh: a client that lost the race still gets a token."""
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    second = refresh(tenant, token_hash="2" * 64)
    await storage.save_refresh_token(old)
    await storage.rotate_refresh_token(tenant, OLD, first, NOW, 30)

    result = await storage.rotate_refresh_token(tenant, OLD, second, NOW + 30, 30)

    assert result == RotateResult(RotateStatus.OK, replace(old, rotated_at=NOW))
    assert await storage.get_refresh_token(tenant, second.token_hash) == second
    assert await storage.get_refresh_token(tenant, OLD) == replace(old, rotated_at=NOW)


async def test_rotated_token_after_grace_is_reused_and_new_is_not_stored(
    storage: Storage, tenant: str
) -> None:
    """RFC 9700 §4.14.2: reuse of a rotated token is reported (the caller revokes)."""
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    second = refresh(tenant, token_hash="2" * 64)
    await storage.save_refresh_token(old)
    await storage.rotate_refresh_token(tenant, OLD, first, NOW, 30)

    result = await storage.rotate_refresh_token(tenant, OLD, second, NOW + 31, 30)

    assert result == RotateResult(RotateStatus.REUSED, replace(old, rotated_at=NOW))
    assert await storage.get_refresh_token(tenant, second.token_hash) is None
    # The store reports; it does not revoke (the caller does, and audits).
    assert await storage.get_refresh_token(tenant, first.token_hash) == first


async def test_grace_zero_reports_reuse_even_in_the_same_second(
    storage: Storage, tenant: str
) -> None:
    old = refresh(tenant, token_hash=OLD)
    await storage.save_refresh_token(old)
    await storage.rotate_refresh_token(tenant, OLD, refresh(tenant, token_hash="1" * 64), NOW, 0)

    result = await storage.rotate_refresh_token(
        tenant, OLD, refresh(tenant, token_hash="2" * 64), NOW, 0
    )

    assert result == RotateResult(RotateStatus.REUSED, replace(old, rotated_at=NOW))
    assert await storage.get_refresh_token(tenant, "2" * 64) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("expires_at", NOW), ("idle_expires_at", NOW), ("expires_at", NOW - 1)],
)
async def test_rotate_expired_token_is_expired(
    storage: Storage, tenant: str, field: str, value: int
) -> None:
    """Absolute and idle expiry both end a refresh token; exactly at the instant counts."""
    old = refresh(tenant, token_hash=OLD, **{field: value})
    new = refresh(tenant, token_hash="n" * 64)
    await storage.save_refresh_token(old)

    result = await storage.rotate_refresh_token(tenant, OLD, new, NOW, 30)

    assert result == RotateResult(RotateStatus.EXPIRED, old)
    assert await storage.get_refresh_token(tenant, new.token_hash) is None
    assert await storage.get_refresh_token(tenant, OLD) == old


async def test_rotate_revoked_token_is_revoked(storage: Storage, tenant: str) -> None:
    old = refresh(tenant, token_hash=OLD)
    new = refresh(tenant, token_hash="n" * 64)
    await storage.save_refresh_token(old)
    assert await storage.revoke_refresh_token(tenant, OLD, NOW + 1) is True

    result = await storage.rotate_refresh_token(tenant, OLD, new, NOW + 2, 30)

    assert result == RotateResult(RotateStatus.REVOKED, replace(old, revoked_at=NOW + 1))
    assert await storage.get_refresh_token(tenant, new.token_hash) is None


async def test_rotate_unknown_token_is_not_found(storage: Storage, tenant: str) -> None:
    new = refresh(tenant, token_hash="n" * 64)

    result = await storage.rotate_refresh_token(tenant, OLD, new, NOW, 30)

    assert result == RotateResult(RotateStatus.NOT_FOUND, None)
    assert await storage.get_refresh_token(tenant, new.token_hash) is None


async def test_revoke_refresh_token_is_true_once(storage: Storage, tenant: str) -> None:
    await storage.save_refresh_token(refresh(tenant, token_hash=OLD))

    assert await storage.revoke_refresh_token(tenant, OLD, NOW + 1) is True
    assert await storage.revoke_refresh_token(tenant, OLD, NOW + 2) is False
    assert await storage.revoke_refresh_token(tenant, "x" * 64, NOW) is False
    stored = await storage.get_refresh_token(tenant, OLD)
    assert stored is not None
    assert stored.revoked_at == NOW + 1


async def test_get_unknown_refresh_token_is_none(storage: Storage, tenant: str) -> None:
    assert await storage.get_refresh_token(tenant, OLD) is None


async def test_twenty_concurrent_rotations_without_grace_have_one_winner(
    storage: Storage, tenant: str
) -> None:
    await storage.save_refresh_token(refresh(tenant, token_hash=OLD))
    news = [refresh(tenant, token_hash=f"{i:064d}") for i in range(20)]

    results = await asyncio.gather(
        *(storage.rotate_refresh_token(tenant, OLD, new, NOW, 0) for new in news)
    )

    assert Counter(r.status for r in results) == {RotateStatus.OK: 1, RotateStatus.REUSED: 19}
    stored = [await storage.get_refresh_token(tenant, new.token_hash) for new in news]
    winner = next(i for i, r in enumerate(results) if r.status is RotateStatus.OK)
    assert stored == [news[i] if i == winner else None for i in range(20)]


async def test_concurrent_rotations_within_grace_all_succeed(storage: Storage, tenant: str) -> None:
    await storage.save_refresh_token(refresh(tenant, token_hash=OLD))
    news = [refresh(tenant, token_hash=f"{i:064d}") for i in range(10)]

    results = await asyncio.gather(
        *(storage.rotate_refresh_token(tenant, OLD, new, NOW, 30) for new in news)
    )

    assert [r.status for r in results] == [RotateStatus.OK] * 10
    assert [await storage.get_refresh_token(tenant, new.token_hash) for new in news] == news
