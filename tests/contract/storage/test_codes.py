"""Authorization codes are single-use, atomically (OAuth 2.1 §4.1.3; RFC 9700 §4.2.4)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

from ostiary.core.models import ConsumeResult, ConsumeStatus
from ostiary.storage import Storage

from .records import NOW, code


async def test_consume_fresh_code_is_ok_and_marks_it_consumed(
    storage: Storage, tenant: str
) -> None:
    saved = code(tenant)
    await storage.save_authorization_code(saved)

    result = await storage.consume_authorization_code(tenant, saved.code_hash, NOW)

    assert result == ConsumeResult(ConsumeStatus.OK, replace(saved, consumed_at=NOW))


async def test_consume_twice_is_replayed_with_the_record(storage: Storage, tenant: str) -> None:
    """OAuth 2.1 §4.1.3: a second use must be detectable so the grant can be revoked."""
    saved = code(tenant)
    await storage.save_authorization_code(saved)
    await storage.consume_authorization_code(tenant, saved.code_hash, NOW)

    result = await storage.consume_authorization_code(tenant, saved.code_hash, NOW + 5)

    assert result == ConsumeResult(ConsumeStatus.REPLAYED, replace(saved, consumed_at=NOW))
    assert result.record is not None
    assert result.record.grant_id == "grant-1"


async def test_consume_expired_code_is_expired_and_stays_unconsumed(
    storage: Storage, tenant: str
) -> None:
    saved = code(tenant, expires_at=NOW)
    await storage.save_authorization_code(saved)

    first = await storage.consume_authorization_code(tenant, saved.code_hash, NOW)
    again = await storage.consume_authorization_code(tenant, saved.code_hash, NOW + 1)

    assert first == ConsumeResult(ConsumeStatus.EXPIRED, saved)
    assert again == ConsumeResult(ConsumeStatus.EXPIRED, saved)


async def test_consume_one_second_before_expiry_is_ok(storage: Storage, tenant: str) -> None:
    saved = code(tenant, expires_at=NOW + 1)
    await storage.save_authorization_code(saved)

    result = await storage.consume_authorization_code(tenant, saved.code_hash, NOW)

    assert result.status is ConsumeStatus.OK


async def test_consumed_code_presented_after_expiry_is_still_replayed(
    storage: Storage, tenant: str
) -> None:
    saved = code(tenant, expires_at=NOW + 60)
    await storage.save_authorization_code(saved)
    await storage.consume_authorization_code(tenant, saved.code_hash, NOW)

    result = await storage.consume_authorization_code(tenant, saved.code_hash, NOW + 61)

    assert result == ConsumeResult(ConsumeStatus.REPLAYED, replace(saved, consumed_at=NOW))


async def test_consume_unknown_code_is_not_found(storage: Storage, tenant: str) -> None:
    result = await storage.consume_authorization_code(tenant, "0" * 64, NOW)

    assert result == ConsumeResult(ConsumeStatus.NOT_FOUND, None)


async def test_saving_a_code_keeps_every_field(storage: Storage, tenant: str) -> None:
    saved = code(tenant, resource=None, scopes=("a", "b", "c"))
    await storage.save_authorization_code(saved)

    result = await storage.consume_authorization_code(tenant, saved.code_hash, NOW)

    assert result.record == replace(saved, consumed_at=NOW)


async def test_twenty_concurrent_consumes_have_exactly_one_winner(
    storage: Storage, tenant: str
) -> None:
    saved = code(tenant)
    await storage.save_authorization_code(saved)

    results = await asyncio.gather(
        *(storage.consume_authorization_code(tenant, saved.code_hash, NOW) for _ in range(20))
    )

    assert Counter(r.status for r in results) == {
        ConsumeStatus.OK: 1,
        ConsumeStatus.REPLAYED: 19,
    }
    assert {r.record for r in results} == {replace(saved, consumed_at=NOW)}
