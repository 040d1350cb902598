"""Grants and their revocation cascade (RFC 7009 §2.1; OAuth 2.1 §4.1.3)."""

from __future__ import annotations

from dataclasses import replace

from ostiary.storage import Storage

from .cascade import assert_live, assert_revoked, issue
from .records import NOW, grant


async def test_grant_round_trips(storage: Storage, tenant: str) -> None:
    saved = grant(tenant, resource=None, scopes=(), revoked_at=None, last_used_at=NOW + 1)
    await storage.save_grant(saved)

    assert await storage.get_grant(tenant, "grant-1") == saved


async def test_unknown_grant_is_none(storage: Storage, tenant: str) -> None:
    assert await storage.get_grant(tenant, "grant-1") is None


async def test_list_grants_is_live_grants_of_the_subject_newest_first(
    storage: Storage, tenant: str
) -> None:
    await storage.save_grant(grant(tenant, "old", created_at=NOW - 10))
    await storage.save_grant(grant(tenant, "new", created_at=NOW + 10))
    await storage.save_grant(grant(tenant, "mid", created_at=NOW))
    await storage.save_grant(grant(tenant, "revoked", created_at=NOW, revoked_at=NOW + 1))
    await storage.save_grant(grant(tenant, "other", subject="user-2"))

    listed = await storage.list_grants(tenant, "user-1")

    assert [g.grant_id for g in listed] == ["new", "mid", "old"]
    assert listed[0] == grant(tenant, "new", created_at=NOW + 10)


async def test_touch_grant_records_last_use(storage: Storage, tenant: str) -> None:
    await storage.save_grant(grant(tenant))

    await storage.touch_grant(tenant, "grant-1", NOW + 42)
    await storage.touch_grant(tenant, "unknown", NOW + 42)

    assert await storage.get_grant(tenant, "grant-1") == grant(tenant, last_used_at=NOW + 42)
    assert await storage.get_grant(tenant, "unknown") is None


async def test_revoke_grant_is_true_once(storage: Storage, tenant: str) -> None:
    await storage.save_grant(grant(tenant))

    assert await storage.revoke_grant(tenant, "grant-1", NOW + 5) is True
    assert await storage.revoke_grant(tenant, "grant-1", NOW + 9) is False
    assert await storage.revoke_grant(tenant, "unknown", NOW) is False

    assert await storage.get_grant(tenant, "grant-1") == grant(tenant, revoked_at=NOW + 5)
    assert await storage.list_grants(tenant, "user-1") == []


async def test_revoke_grant_cascades_to_codes_and_tokens_of_that_grant_only(
    storage: Storage, tenant: str
) -> None:
    await issue(storage, tenant, "grant-1")
    await issue(storage, tenant, "grant-2")

    assert await storage.revoke_grant(tenant, "grant-1", NOW + 5) is True

    await assert_revoked(storage, tenant, "grant-1")
    await assert_live(storage, tenant, "grant-2")


async def test_revoke_grant_stamps_the_cascade_with_its_time(storage: Storage, tenant: str) -> None:
    await issue(storage, tenant, "grant-1")
    await storage.revoke_grant(tenant, "grant-1", NOW + 5)

    token = await storage.get_refresh_token(tenant, "rt-grant-1")
    record = await storage.get_access_token(tenant, "at-grant-1")
    replayed = await storage.consume_authorization_code(tenant, "code-grant-1", NOW + 6)

    assert token is not None
    assert token.revoked_at == NOW + 5
    assert record is not None
    assert record.revoked_at == NOW + 5
    assert replayed.record is not None
    assert replayed.record.consumed_at == NOW + 5


async def test_revoke_grant_keeps_earlier_revocation_times(storage: Storage, tenant: str) -> None:
    await issue(storage, tenant, "grant-1")
    await storage.revoke_refresh_token(tenant, "rt-grant-1", NOW + 1)
    await storage.revoke_access_token(tenant, "at-grant-1", NOW + 2)

    await storage.revoke_grant(tenant, "grant-1", NOW + 5)

    token = await storage.get_refresh_token(tenant, "rt-grant-1")
    record = await storage.get_access_token(tenant, "at-grant-1")
    assert token is not None
    assert token.revoked_at == NOW + 1
    assert record is not None
    assert record.revoked_at == NOW + 2


async def test_revoking_an_already_revoked_grant_still_cascades(
    storage: Storage, tenant: str
) -> None:
    """A token saved after the grant was revoked must not outlive a second revocation."""
    await issue(storage, tenant, "grant-1")
    await storage.revoke_grant(tenant, "grant-1", NOW + 5)
    stray = await storage.get_refresh_token(tenant, "rt-grant-1")
    assert stray is not None
    await storage.save_refresh_token(replace(stray, token_hash="late", revoked_at=None))

    assert await storage.revoke_grant(tenant, "grant-1", NOW + 7) is False

    late = await storage.get_refresh_token(tenant, "late")
    assert late is not None
    assert late.revoked_at == NOW + 7
