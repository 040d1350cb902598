"""Grants and their revocation cascade (RFC 7009 §2.1; OAuth 2.1 §4.1.3)."""

from __future__ import annotations

import asyncio

from ostiary.storage import Storage

from .cascade import assert_live, assert_revoked, issue
from .records import NOW, access, grant, refresh


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


async def test_list_client_grants_is_live_grants_to_the_client_newest_first(
    storage: Storage, tenant: str, other_tenant: str
) -> None:
    await storage.save_grant(grant(tenant, "old", created_at=NOW - 10))
    await storage.save_grant(grant(tenant, "new", created_at=NOW + 10, subject="user-2"))
    await storage.save_grant(grant(tenant, "revoked", revoked_at=NOW + 1))
    await storage.save_grant(grant(tenant, "elsewhere", client_id="client-2"))
    await storage.save_grant(grant(other_tenant, "other-tenant"))

    listed = await storage.list_client_grants(tenant, "client-1")

    assert [g.grant_id for g in listed] == ["new", "old"]
    assert listed[1] == grant(tenant, "old", created_at=NOW - 10)
    assert await storage.list_client_grants(tenant, "unknown") == []


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
    """Tokens stored before their (already revoked) grant was must not outlive a revocation."""
    await storage.save_refresh_token(refresh(tenant, "stray"))
    await storage.save_grant(grant(tenant, revoked_at=NOW + 5))

    assert await storage.revoke_grant(tenant, "grant-1", NOW + 7) is False

    assert await storage.get_refresh_token(tenant, "stray") == refresh(
        tenant, "stray", revoked_at=NOW + 7
    )
    assert await storage.get_grant(tenant, "grant-1") == grant(tenant, revoked_at=NOW + 5)


async def test_token_saved_under_a_revoked_grant_is_stored_revoked(
    storage: Storage, tenant: str
) -> None:
    """A replayed code revokes the grant; a token issued from it afterwards must be dead."""
    await storage.save_grant(grant(tenant))
    await storage.revoke_grant(tenant, "grant-1", NOW + 5)

    await storage.save_refresh_token(refresh(tenant, "late-rt"))
    await storage.save_access_token(access(tenant, "late-at"))
    await storage.save_refresh_token(refresh(tenant, "own-rt", revoked_at=NOW + 9))

    assert await storage.get_refresh_token(tenant, "late-rt") == refresh(
        tenant, "late-rt", revoked_at=NOW + 5
    )
    assert await storage.get_access_token(tenant, "late-at") == access(
        tenant, "late-at", revoked_at=NOW + 5
    )
    assert await storage.get_refresh_token(tenant, "own-rt") == refresh(
        tenant, "own-rt", revoked_at=NOW + 9
    )


async def test_tokens_of_a_live_or_unknown_grant_are_stored_as_given(
    storage: Storage, tenant: str
) -> None:
    await storage.save_grant(grant(tenant))
    await storage.save_refresh_token(refresh(tenant, "a"))
    await storage.save_access_token(access(tenant, "b", grant_id="no-such-grant"))

    assert await storage.get_refresh_token(tenant, "a") == refresh(tenant, "a")
    assert await storage.get_access_token(tenant, "b") == access(
        tenant, "b", grant_id="no-such-grant"
    )


async def test_no_token_outlives_a_revocation_racing_with_issuance(
    storage: Storage, tenant: str
) -> None:
    """Rotations and new tokens racing a revoke_grant: afterwards, nothing of it is live."""
    await storage.save_grant(grant(tenant))
    await storage.save_refresh_token(refresh(tenant, "old"))
    issued = [refresh(tenant, f"rot-{i}") for i in range(5)]
    saved = [refresh(tenant, f"new-{i}") for i in range(5)]
    records = [access(tenant, f"at-{i}") for i in range(5)]

    await asyncio.gather(
        *(storage.rotate_refresh_token(tenant, "old", new, NOW, 30) for new in issued[:3]),
        *(storage.save_refresh_token(token) for token in saved[:3]),
        *(storage.save_access_token(record) for record in records[:3]),
        storage.revoke_grant(tenant, "grant-1", NOW + 1),
        *(storage.rotate_refresh_token(tenant, "old", new, NOW, 30) for new in issued[3:]),
        *(storage.save_refresh_token(token) for token in saved[3:]),
        *(storage.save_access_token(record) for record in records[3:]),
    )

    live = [
        token.token_hash
        for token in [await storage.get_refresh_token(tenant, t.token_hash) for t in issued + saved]
        if token is not None and token.revoked_at is None
    ]
    live += [
        record.jti
        for record in [await storage.get_access_token(tenant, r.jti) for r in records]
        if record is not None and record.revoked_at is None
    ]
    assert live == []
