"""Refresh-token rotation that never forks a grant (RFC 9700 §4.14.2; OAuth 2.1 §4.3.1).

Every sequence leaves a grant with exactly one live (unrotated, unrevoked) refresh token. The
immediately previous token presented again within the grace window is SUPERSEDED and comes
back with the successor already issued; anything else rotated is REUSED. ``sealed_successor``
is opaque to storage (the core seals the raw successor), so plain strings stand in for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from dataclasses import replace

import pytest

from ostiary.core.models import RefreshToken, RotateResult, RotateStatus
from ostiary.settings import MAX_REFRESH_GRACE_SECONDS
from ostiary.storage import Storage

from .records import NOW, access, grant, refresh

OLD = "o" * 64
GRACE = 30


def _sealed(token_hash: str) -> str:
    return f"v1.sealed-{token_hash[:8]}"


async def _rotate(
    storage: Storage, tenant: str, old: str, new: RefreshToken, now: int, grace: int = GRACE
) -> RotateResult:
    return await storage.rotate_refresh_token(
        tenant, old, new, now, grace, sealed_successor=_sealed(new.token_hash)
    )


async def _live(storage: Storage, tenant: str, now: int = NOW) -> int:
    """Live refresh tokens of the tenant; each test here holds one grant in its tenant."""
    return (await storage.stats(tenant, now)).live_refresh_tokens


def _rotated(
    token: RefreshToken, at: int, new: RefreshToken, *, sealed: bool = True
) -> RefreshToken:
    return replace(
        token,
        rotated_at=at,
        successor_hash=new.token_hash,
        sealed_successor=_sealed(new.token_hash) if sealed else None,
    )


async def test_rotate_live_token_stores_new_and_records_its_successor(
    storage: Storage, tenant: str
) -> None:
    old = refresh(tenant, token_hash=OLD)
    new = refresh(tenant, token_hash="n" * 64, issued_at=NOW + 10)
    await storage.save_refresh_token(old)

    result = await _rotate(storage, tenant, OLD, new, NOW + 10)

    assert result == RotateResult(RotateStatus.OK, _rotated(old, NOW + 10, new))
    assert await storage.get_refresh_token(tenant, OLD) == _rotated(old, NOW + 10, new)
    assert await storage.get_refresh_token(tenant, new.token_hash) == new
    assert await _live(storage, tenant) == 1


async def test_grace_zero_keeps_no_sealed_successor(storage: Storage, tenant: str) -> None:
    old = refresh(tenant, token_hash=OLD)
    new = refresh(tenant, token_hash="n" * 64)
    await storage.save_refresh_token(old)

    result = await _rotate(storage, tenant, OLD, new, NOW, grace=0)

    assert result == RotateResult(RotateStatus.OK, _rotated(old, NOW, new, sealed=False))
    assert await storage.get_refresh_token(tenant, OLD) == _rotated(old, NOW, new, sealed=False)


@pytest.mark.parametrize("later", [0, 1, GRACE])
async def test_previous_token_within_grace_is_superseded_by_the_same_successor(
    storage: Storage, tenant: str, later: int
) -> None:
    """A lost response or a concurrent refresh: the retry learns the successor, no new chain."""
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    second = refresh(tenant, token_hash="2" * 64)
    await storage.save_refresh_token(old)
    await _rotate(storage, tenant, OLD, first, NOW)

    result = await _rotate(storage, tenant, OLD, second, NOW + later)

    assert result == RotateResult(RotateStatus.SUPERSEDED, _rotated(old, NOW, first), first)
    assert result.old is not None
    assert result.old.successor_hash == first.token_hash
    assert await storage.get_refresh_token(tenant, second.token_hash) is None
    assert await storage.get_refresh_token(tenant, OLD) == _rotated(old, NOW, first)
    assert await storage.get_refresh_token(tenant, first.token_hash) == first
    assert await _live(storage, tenant, NOW + later) == 1


async def test_previous_token_after_grace_is_reused_and_new_is_not_stored(
    storage: Storage, tenant: str
) -> None:
    """RFC 9700 §4.14.2: reuse of a rotated token is reported (the caller revokes)."""
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    second = refresh(tenant, token_hash="2" * 64)
    await storage.save_grant(grant(tenant))
    await storage.save_refresh_token(old)
    await _rotate(storage, tenant, OLD, first, NOW)

    result = await _rotate(storage, tenant, OLD, second, NOW + GRACE + 1)

    assert result == RotateResult(RotateStatus.REUSED, _rotated(old, NOW, first))
    assert await storage.get_refresh_token(tenant, second.token_hash) is None
    # The store reports; it does not revoke (the caller does, and audits).
    assert await storage.get_refresh_token(tenant, first.token_hash) == first
    assert await _live(storage, tenant) == 1
    assert await storage.revoke_grant(tenant, "grant-1", NOW + GRACE + 1) is True
    assert await _live(storage, tenant) == 0
    assert await storage.get_refresh_token(tenant, OLD) == replace(
        _rotated(old, NOW, first), revoked_at=NOW + GRACE + 1, sealed_successor=None
    )


async def test_older_token_within_grace_is_reused(storage: Storage, tenant: str) -> None:
    """Two rotations old, even a second later: the client moved on, so this is theft."""
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    second = refresh(tenant, token_hash="2" * 64)
    third = refresh(tenant, token_hash="3" * 64)
    await storage.save_grant(grant(tenant))
    await storage.save_refresh_token(old)
    await _rotate(storage, tenant, OLD, first, NOW)
    await _rotate(storage, tenant, first.token_hash, second, NOW + 1)

    result = await _rotate(storage, tenant, OLD, third, NOW + 2)

    # Rotating ``first`` made ``OLD`` forget its sealed successor.
    assert result == RotateResult(RotateStatus.REUSED, _rotated(old, NOW, first, sealed=False))
    assert await storage.get_refresh_token(tenant, third.token_hash) is None
    assert await storage.get_refresh_token(tenant, first.token_hash) == _rotated(
        first, NOW + 1, second
    )
    assert await _live(storage, tenant) == 1
    await storage.revoke_grant(tenant, "grant-1", NOW + 2)
    assert await _live(storage, tenant) == 0


async def test_only_the_token_before_the_live_one_is_superseded(
    storage: Storage, tenant: str
) -> None:
    """The immediately previous token of the *live* one only: ``first`` after ``second``."""
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    second = refresh(tenant, token_hash="2" * 64)
    third = refresh(tenant, token_hash="3" * 64)
    await storage.save_refresh_token(old)
    await _rotate(storage, tenant, OLD, first, NOW)
    await _rotate(storage, tenant, first.token_hash, second, NOW + 1)

    again = await _rotate(storage, tenant, first.token_hash, third, NOW + 2)
    older = await _rotate(storage, tenant, OLD, third, NOW + 2)

    assert again == RotateResult(RotateStatus.SUPERSEDED, _rotated(first, NOW + 1, second), second)
    assert older.status is RotateStatus.REUSED
    assert await storage.get_refresh_token(tenant, third.token_hash) is None
    assert await _live(storage, tenant) == 1


async def test_rotated_token_without_a_sealed_successor_is_reused(
    storage: Storage, tenant: str
) -> None:
    """A token rotated before migration 0005 (or without a sealed value) cannot be answered
    with its successor, and a second chain is never an option."""
    await storage.save_refresh_token(refresh(tenant, token_hash=OLD, rotated_at=NOW))
    new = refresh(tenant, token_hash="n" * 64)

    result = await _rotate(storage, tenant, OLD, new, NOW + 1)

    assert result == RotateResult(RotateStatus.REUSED, refresh(tenant, OLD, rotated_at=NOW))
    assert await storage.get_refresh_token(tenant, new.token_hash) is None


async def test_previous_token_of_a_revoked_successor_is_reused(
    storage: Storage, tenant: str
) -> None:
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    await storage.save_refresh_token(old)
    await _rotate(storage, tenant, OLD, first, NOW)
    assert await storage.revoke_refresh_token(tenant, first.token_hash, NOW + 1) is True

    result = await _rotate(storage, tenant, OLD, refresh(tenant, "2" * 64), NOW + 2)

    assert result == RotateResult(RotateStatus.REUSED, _rotated(old, NOW, first))
    assert await _live(storage, tenant) == 0


async def test_previous_token_whose_successor_idled_out_is_expired(
    storage: Storage, tenant: str
) -> None:
    """An idle lifetime shorter than the grace window: the successor is dead, say so."""
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64, idle_expires_at=NOW + 10)
    await storage.save_refresh_token(old)
    await _rotate(storage, tenant, OLD, first, NOW)

    result = await _rotate(storage, tenant, OLD, refresh(tenant, "2" * 64), NOW + 10)

    assert result == RotateResult(RotateStatus.EXPIRED, _rotated(old, NOW, first))
    assert await storage.get_refresh_token(tenant, "2" * 64) is None


async def test_grace_zero_reports_reuse_even_in_the_same_second(
    storage: Storage, tenant: str
) -> None:
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    await storage.save_refresh_token(old)
    await _rotate(storage, tenant, OLD, first, NOW, grace=0)

    result = await _rotate(storage, tenant, OLD, refresh(tenant, "2" * 64), NOW, grace=0)

    assert result == RotateResult(RotateStatus.REUSED, _rotated(old, NOW, first, sealed=False))
    assert await storage.get_refresh_token(tenant, "2" * 64) is None


async def test_a_sealed_successor_kept_within_grace_is_not_answered_with_grace_zero(
    storage: Storage, tenant: str
) -> None:
    """The grace window is the caller's setting at presentation time: 0 is strict."""
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    await storage.save_refresh_token(old)
    await _rotate(storage, tenant, OLD, first, NOW)

    result = await _rotate(storage, tenant, OLD, refresh(tenant, "2" * 64), NOW, grace=0)

    assert result == RotateResult(RotateStatus.REUSED, _rotated(old, NOW, first))


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


async def test_concurrent_rotations_within_grace_have_one_winner_and_one_successor(
    storage: Storage, tenant: str
) -> None:
    """N clients racing with one token: one rotation, every loser learns that successor."""
    await storage.save_refresh_token(refresh(tenant, token_hash=OLD))
    news = [refresh(tenant, token_hash=f"{i:064d}") for i in range(20)]

    results = await asyncio.gather(*(_rotate(storage, tenant, OLD, new, NOW) for new in news))

    assert Counter(r.status for r in results) == {
        RotateStatus.OK: 1,
        RotateStatus.SUPERSEDED: 19,
    }
    winner = next(news[i] for i, r in enumerate(results) if r.status is RotateStatus.OK)
    assert {r.successor for r in results if r.status is RotateStatus.SUPERSEDED} == {winner}
    assert {r.old.successor_hash for r in results if r.old is not None} == {winner.token_hash}
    stored = [await storage.get_refresh_token(tenant, new.token_hash) for new in news]
    assert stored == [new if new is winner else None for new in news]
    assert await _live(storage, tenant) == 1


@pytest.mark.parametrize("seed", range(6))
async def test_every_sequence_leaves_exactly_one_live_token_per_grant(
    storage: Storage, tenant: str, seed: int
) -> None:
    """A client and a thief presenting tokens of one chain at random ages and times.

    After every step the grant holds exactly one live refresh token, until a reuse, which the
    caller answers by revoking the grant (as the refresh grant does): then none, and the
    sequence goes on with a new grant. Only the token before the live one may keep a sealed
    successor.
    """

    def pick(options: list[int], step: int, what: str) -> int:
        """A fixed pseudo-random choice, the same on every backend and every run."""
        digest = hashlib.sha256(f"{seed}/{step}/{what}".encode()).digest()
        return options[digest[0] % len(options)]

    async def start(grant_id: str) -> list[str]:
        await storage.save_grant(grant(tenant, grant_id))
        await storage.save_refresh_token(refresh(tenant, f"{grant_id}-0", grant_id=grant_id))
        return [f"{grant_id}-0"]

    grant_id, now, seen = "g0", NOW, Counter[RotateStatus]()
    chain = await start(grant_id)
    for step in range(40):
        now += pick([0, 0, 1, GRACE // 2, GRACE, GRACE + 1], step, "wait")
        presented = chain[-1 - min(pick([0, 0, 0, 1, 1, 1, 2, 3], step, "age"), len(chain) - 1)]
        new = refresh(tenant, f"{grant_id}-{step + 1}", grant_id=grant_id, issued_at=now)
        grace = pick([GRACE, GRACE, GRACE, 0], step, "grace")

        result = await _rotate(storage, tenant, presented, new, now, grace)

        seen[result.status] += 1
        if result.status is RotateStatus.OK:
            assert presented == chain[-1]
            chain.append(new.token_hash)
        elif result.status is RotateStatus.SUPERSEDED:
            assert (presented, grace) == (chain[-2], GRACE)
            assert result.successor is not None
            assert result.successor.token_hash == chain[-1]
        else:
            assert result.status is RotateStatus.REUSED
            assert presented != chain[-1]
        if result.status is not RotateStatus.OK:
            assert await storage.get_refresh_token(tenant, new.token_hash) is None
        stored = [await storage.get_refresh_token(tenant, h) for h in chain]
        sealed = [token.token_hash for token in stored if token and token.sealed_successor]
        assert sealed in ([], chain[-2:-1])
        assert await _live(storage, tenant, now) == 1
        if result.status is RotateStatus.REUSED:
            await storage.revoke_grant(tenant, grant_id, now)
            assert await _live(storage, tenant, now) == 0
            stored = [await storage.get_refresh_token(tenant, h) for h in chain]
            assert [t.sealed_successor for t in stored if t is not None] == [None] * len(chain)
            grant_id = f"g{step + 1}"
            chain = await start(grant_id)
    assert seen[RotateStatus.OK] > seen[RotateStatus.SUPERSEDED] > 0
    assert seen[RotateStatus.REUSED] > 0


async def test_revoking_a_token_forgets_its_sealed_successor(storage: Storage, tenant: str) -> None:
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    await storage.save_refresh_token(old)
    await _rotate(storage, tenant, OLD, first, NOW)

    assert await storage.revoke_refresh_token(tenant, OLD, NOW + 1) is True

    assert await storage.get_refresh_token(tenant, OLD) == replace(
        _rotated(old, NOW, first, sealed=False), revoked_at=NOW + 1
    )


async def test_purge_forgets_sealed_successors_past_the_longest_grace_window(
    storage: Storage, tenant: str
) -> None:
    """Cleared, not deleted, and not counted: the rotated rows stay for reuse detection.

    A negative clock unique to this run, so nobody else's rows on a shared PostgreSQL are
    at or before it (see test_housekeeping.py).
    """
    now = -(time.time_ns() // 1000)
    lasting = {"expires_at": now + 10 * MAX_REFRESH_GRACE_SECONDS}
    lasting["idle_expires_at"] = lasting["expires_at"]
    tokens = {name: refresh(tenant, name * 64, **lasting) for name in "abcd"}
    await storage.save_refresh_token(tokens["a"])
    await storage.save_refresh_token(tokens["c"])
    old_enough = now - MAX_REFRESH_GRACE_SECONDS
    await _rotate(storage, tenant, "a" * 64, tokens["b"], old_enough)
    await _rotate(storage, tenant, "c" * 64, tokens["d"], old_enough + 1)

    assert await storage.purge_expired(now) == 0

    assert await storage.get_refresh_token(tenant, "a" * 64) == _rotated(
        tokens["a"], old_enough, tokens["b"], sealed=False
    )
    assert await storage.get_refresh_token(tenant, "c" * 64) == _rotated(
        tokens["c"], old_enough + 1, tokens["d"]
    )


async def test_a_rotation_books_its_access_token_and_touches_the_grant(
    storage: Storage, tenant: str
) -> None:
    """One refresh, one transaction: OK and SUPERSEDED book the access token the caller
    answers with and mark the grant used; a refused rotation books nothing."""
    await storage.save_grant(grant(tenant))
    old = refresh(tenant, token_hash=OLD)
    first = refresh(tenant, token_hash="1" * 64)
    await storage.save_refresh_token(old)

    won = await storage.rotate_refresh_token(
        tenant, OLD, first, NOW + 5, GRACE, sealed_successor="s", access_token=access(tenant, "a")
    )
    touched = await storage.get_grant(tenant, "grant-1")
    retried = await storage.rotate_refresh_token(
        tenant,
        OLD,
        refresh(tenant, token_hash="2" * 64),
        NOW + 9,
        GRACE,
        sealed_successor="s",
        access_token=access(tenant, "b"),
    )
    retouched = await storage.get_grant(tenant, "grant-1")
    reused = await storage.rotate_refresh_token(
        tenant,
        OLD,
        refresh(tenant, token_hash="3" * 64),
        NOW + 9 + GRACE + 1,
        GRACE,
        access_token=access(tenant, "c"),
    )

    assert (won.status, retried.status, reused.status) == (
        RotateStatus.OK,
        RotateStatus.SUPERSEDED,
        RotateStatus.REUSED,
    )
    assert await storage.get_access_token(tenant, "a") == access(tenant, "a")
    assert await storage.get_access_token(tenant, "b") == access(tenant, "b")
    assert await storage.get_access_token(tenant, "c") is None
    assert touched is not None
    assert touched.last_used_at == NOW + 5
    assert retouched is not None
    assert retouched.last_used_at == NOW + 9
