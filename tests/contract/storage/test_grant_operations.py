"""Code redemption and refresh as one storage operation each (OAuth 2.1 §4.1.3, §4.3.1).

``redeem_authorization_code`` and ``refresh_grant`` read the code or token with its grant,
hand both to the core's plan, and store what the plan issues, in one transaction. These
tests pin what the plan sees and what a refusal leaves behind, on every backend.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ostiary.core.models import (
    AuthorizationCode,
    ConsumeResult,
    ConsumeStatus,
    Grant,
    IssuedTokens,
    RefreshToken,
    RotateStatus,
)
from ostiary.errors import InvalidGrantError
from ostiary.storage import Storage

from .records import NOW, access, code, grant, refresh

GRACE = 30


class Recorder:
    """A plan that records what it was given and issues fixed records (or refuses)."""

    def __init__(self, issued: IssuedTokens | None = None, *, refuse: bool = False) -> None:
        self.issued = issued
        self.refuse = refuse
        self.seen: list[tuple[object, Grant | None]] = []

    def __call__(
        self, record: AuthorizationCode | RefreshToken, found: Grant | None
    ) -> IssuedTokens:
        self.seen.append((record, found))
        if self.refuse:
            raise InvalidGrantError("refused by the plan")
        assert self.issued is not None
        return self.issued


async def _grant_with_code(storage: Storage, tenant: str) -> tuple[Grant, AuthorizationCode]:
    saved_grant = grant(tenant)
    saved_code = code(tenant)
    await storage.save_grant(saved_grant)
    await storage.save_authorization_code(saved_code)
    return saved_grant, saved_code


async def test_redeem_hands_code_and_grant_to_the_plan_and_books_its_tokens(
    storage: Storage, tenant: str
) -> None:
    saved_grant, saved_code = await _grant_with_code(storage, tenant)
    booked, first_refresh = access(tenant), refresh(tenant)
    plan = Recorder(IssuedTokens(booked, first_refresh))

    result = await storage.redeem_authorization_code(tenant, saved_code.code_hash, NOW, plan)

    consumed = replace(saved_code, consumed_at=NOW)
    assert result == ConsumeResult(ConsumeStatus.OK, consumed)
    assert plan.seen == [(consumed, saved_grant)]
    assert await storage.get_access_token(tenant, booked.jti) == booked
    assert await storage.get_refresh_token(tenant, first_refresh.token_hash) == first_refresh
    again = await storage.consume_authorization_code(tenant, saved_code.code_hash, NOW + 1)
    assert again.status is ConsumeStatus.REPLAYED


async def test_redeem_without_refresh_token_books_only_the_access_token(
    storage: Storage, tenant: str
) -> None:
    _, saved_code = await _grant_with_code(storage, tenant)
    booked = access(tenant)

    plan = Recorder(IssuedTokens(booked))
    result = await storage.redeem_authorization_code(tenant, saved_code.code_hash, NOW, plan)

    assert result.status is ConsumeStatus.OK
    assert await storage.get_access_token(tenant, booked.jti) == booked
    assert (await storage.stats(tenant, NOW)).live_refresh_tokens == 0


async def test_a_refused_plan_leaves_the_code_spent_and_the_grant_revoked(
    storage: Storage, tenant: str
) -> None:
    """A code that fails PKCE or was sent by another client is still spent (OAuth 2.1
    §4.1.3), and nothing issued from its grant survives."""
    _, saved_code = await _grant_with_code(storage, tenant)
    earlier = access(tenant, jti="earlier")
    await storage.save_access_token(earlier)

    with pytest.raises(InvalidGrantError, match="refused by the plan"):
        await storage.redeem_authorization_code(
            tenant, saved_code.code_hash, NOW, Recorder(refuse=True)
        )

    after = await storage.consume_authorization_code(tenant, saved_code.code_hash, NOW + 1)
    assert after.status is ConsumeStatus.REPLAYED
    stored_grant = await storage.get_grant(tenant, saved_code.grant_id)
    assert stored_grant is not None
    assert stored_grant.revoked_at == NOW
    revoked = await storage.get_access_token(tenant, "earlier")
    assert revoked is not None
    assert revoked.revoked_at == NOW


async def test_redeeming_twice_revokes_the_grant_and_everything_issued_from_it(
    storage: Storage, tenant: str
) -> None:
    _, saved_code = await _grant_with_code(storage, tenant)
    booked, first_refresh = access(tenant), refresh(tenant)
    await storage.redeem_authorization_code(
        tenant, saved_code.code_hash, NOW, Recorder(IssuedTokens(booked, first_refresh))
    )
    second = Recorder(IssuedTokens(access(tenant, jti="second")))

    result = await storage.redeem_authorization_code(tenant, saved_code.code_hash, NOW + 5, second)

    assert result == ConsumeResult(ConsumeStatus.REPLAYED, replace(saved_code, consumed_at=NOW))
    assert second.seen == []
    stored_grant = await storage.get_grant(tenant, saved_code.grant_id)
    assert stored_grant is not None
    assert stored_grant.revoked_at == NOW + 5
    stored_access = await storage.get_access_token(tenant, booked.jti)
    assert stored_access is not None
    assert stored_access.revoked_at == NOW + 5
    stored_refresh = await storage.get_refresh_token(tenant, first_refresh.token_hash)
    assert stored_refresh is not None
    assert stored_refresh.revoked_at == NOW + 5
    assert await storage.get_access_token(tenant, "second") is None


async def test_redeeming_an_expired_or_unknown_code_calls_no_plan(
    storage: Storage, tenant: str
) -> None:
    await storage.save_grant(grant(tenant))
    stale = code(tenant, expires_at=NOW)
    await storage.save_authorization_code(stale)
    plan = Recorder(IssuedTokens(access(tenant)))

    expired = await storage.redeem_authorization_code(tenant, stale.code_hash, NOW, plan)
    unknown = await storage.redeem_authorization_code(tenant, "0" * 64, NOW, plan)

    assert expired == ConsumeResult(ConsumeStatus.EXPIRED, stale)
    assert unknown == ConsumeResult(ConsumeStatus.NOT_FOUND)
    assert plan.seen == []
    assert await storage.get_access_token(tenant, "jti-1") is None


async def test_a_code_whose_grant_is_gone_reaches_the_plan_with_no_grant(
    storage: Storage, tenant: str
) -> None:
    orphan = code(tenant, grant_id="no-such-grant")
    await storage.save_authorization_code(orphan)

    plan = Recorder(refuse=True)
    with pytest.raises(InvalidGrantError):
        await storage.redeem_authorization_code(tenant, orphan.code_hash, NOW, plan)

    assert plan.seen == [(replace(orphan, consumed_at=NOW), None)]


async def test_refresh_grant_hands_token_and_grant_to_the_plan_and_rotates(
    storage: Storage, tenant: str
) -> None:
    saved_grant = grant(tenant)
    await storage.save_grant(saved_grant)
    old = refresh(tenant)
    await storage.save_refresh_token(old)
    new = refresh(tenant, token_hash="n" * 64)
    booked = access(tenant)
    plan = Recorder(IssuedTokens(booked, new, "sealed"))

    result = await storage.refresh_grant(tenant, old.token_hash, NOW, GRACE, plan)

    assert result.status is RotateStatus.OK
    assert plan.seen == [(old, saved_grant)]
    rotated = await storage.get_refresh_token(tenant, old.token_hash)
    assert rotated == replace(
        old, rotated_at=NOW, successor_hash=new.token_hash, sealed_successor="sealed"
    )
    assert await storage.get_refresh_token(tenant, new.token_hash) == new
    assert await storage.get_access_token(tenant, booked.jti) == booked
    touched = await storage.get_grant(tenant, saved_grant.grant_id)
    assert touched is not None
    assert touched.last_used_at == NOW


async def test_a_refused_refresh_plan_changes_nothing(storage: Storage, tenant: str) -> None:
    saved_grant = grant(tenant)
    await storage.save_grant(saved_grant)
    old = refresh(tenant)
    await storage.save_refresh_token(old)

    with pytest.raises(InvalidGrantError, match="refused by the plan"):
        await storage.refresh_grant(tenant, old.token_hash, NOW, GRACE, Recorder(refuse=True))

    assert await storage.get_refresh_token(tenant, old.token_hash) == old
    assert await storage.get_grant(tenant, saved_grant.grant_id) == saved_grant
    again = Recorder(IssuedTokens(access(tenant), refresh(tenant, token_hash="n" * 64)))
    result = await storage.refresh_grant(tenant, old.token_hash, NOW + 1, GRACE, again)
    assert result.status is RotateStatus.OK


async def test_refresh_grant_of_an_unknown_token_calls_no_plan(
    storage: Storage, tenant: str
) -> None:
    plan = Recorder(refuse=True)

    result = await storage.refresh_grant(tenant, "0" * 64, NOW, GRACE, plan)

    assert result.status is RotateStatus.NOT_FOUND
    assert plan.seen == []


async def test_a_refresh_token_whose_grant_is_gone_reaches_the_plan_with_no_grant(
    storage: Storage, tenant: str
) -> None:
    orphan = refresh(tenant, grant_id="no-such-grant")
    await storage.save_refresh_token(orphan)
    plan = Recorder(refuse=True)

    with pytest.raises(InvalidGrantError):
        await storage.refresh_grant(tenant, orphan.token_hash, NOW, GRACE, plan)

    assert plan.seen == [(orphan, None)]
    assert await storage.get_refresh_token(tenant, orphan.token_hash) == orphan


async def test_open_grant_stores_the_grant_with_its_first_code(
    storage: Storage, tenant: str
) -> None:
    opened, first = grant(tenant), code(tenant)

    await storage.open_grant(opened, code=first)

    assert await storage.get_grant(tenant, opened.grant_id) == opened
    consumed = await storage.consume_authorization_code(tenant, first.code_hash, NOW)
    assert consumed == ConsumeResult(ConsumeStatus.OK, replace(first, consumed_at=NOW))


async def test_open_grant_stores_the_grant_with_its_access_token(
    storage: Storage, tenant: str
) -> None:
    opened, booked = grant(tenant), access(tenant)

    await storage.open_grant(opened, access_token=booked)

    assert await storage.get_grant(tenant, opened.grant_id) == opened
    assert await storage.get_access_token(tenant, booked.jti) == booked
    assert await storage.revoke_grant(tenant, opened.grant_id, NOW) is True
    revoked = await storage.get_access_token(tenant, booked.jti)
    assert revoked is not None
    assert revoked.revoked_at == NOW


async def test_a_second_refresh_forgets_the_first_tokens_sealed_successor(
    storage: Storage, tenant: str
) -> None:
    """Each won rotation writes four things (on PostgreSQL in one statement): the previous
    token forgets its sealed successor, the successor is stored, the grant is touched, the
    access token is booked."""
    await storage.save_grant(grant(tenant))
    first = refresh(tenant, token_hash="1" * 64)
    await storage.save_refresh_token(first)
    second = refresh(tenant, token_hash="2" * 64, issued_at=NOW + 1)
    third = refresh(tenant, token_hash="3" * 64, issued_at=NOW + 2)
    one, two = access(tenant, jti="one"), access(tenant, jti="two", expires_at=NOW + 902)

    await storage.refresh_grant(
        tenant, first.token_hash, NOW + 1, GRACE, Recorder(IssuedTokens(one, second, "s1"))
    )
    result = await storage.refresh_grant(
        tenant, second.token_hash, NOW + 2, GRACE, Recorder(IssuedTokens(two, third, "s2"))
    )

    assert result.status is RotateStatus.OK
    oldest = await storage.get_refresh_token(tenant, first.token_hash)
    assert oldest == replace(
        first, rotated_at=NOW + 1, successor_hash=second.token_hash, sealed_successor=None
    )
    previous = await storage.get_refresh_token(tenant, second.token_hash)
    assert previous == replace(
        second, rotated_at=NOW + 2, successor_hash=third.token_hash, sealed_successor="s2"
    )
    assert await storage.get_refresh_token(tenant, third.token_hash) == third
    assert await storage.get_access_token(tenant, "one") == one
    assert await storage.get_access_token(tenant, "two") == two
    touched = await storage.get_grant(tenant, "grant-1")
    assert touched is not None
    assert touched.last_used_at == NOW + 2
