"""The one TTL cache (ostiary.ttl_cache): expiry, LRU eviction, check-and-set, bulk forget."""

from __future__ import annotations

import asyncio

from ostiary.resource.dpop import BoundedReplayCache
from ostiary.ttl_cache import TtlCache


def test_add_keeps_a_value_only_when_no_live_entry_exists() -> None:
    seen: TtlCache[str, int] = TtlCache(10)
    assert seen.add("jti", 1, deadline=60, now=0)
    assert not seen.add("jti", 2, deadline=90, now=59)  # still live: refused, not refreshed
    assert seen.get("jti", now=59) == 1
    assert seen.add("jti", 3, deadline=120, now=60)  # expired at its deadline: kept again
    assert seen.get("jti", now=100) == 3


def test_add_evicts_least_recently_used_past_the_bound() -> None:
    seen: TtlCache[str, bool] = TtlCache(2)
    assert seen.add("a", True, deadline=100, now=0)
    assert seen.add("b", True, deadline=100, now=0)
    assert seen.add("c", True, deadline=100, now=0)  # "a" goes, although still live
    assert len(seen) == 2
    assert seen.add("a", True, deadline=100, now=1)
    assert not seen.add("c", True, deadline=100, now=1)


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(0)
    cache.put("a", 1, deadline=10)
    assert cache.add("a", 1, deadline=10, now=0)
    assert cache.add("a", 1, deadline=10, now=0)
    assert len(cache) == 0


def test_pop_matching_forgets_only_the_keys_it_accepts() -> None:
    cache: TtlCache[tuple[str, str], int] = TtlCache(10)
    for tenant in ("t1", "t2"):
        cache.put((tenant, "https://app.example/cimd"), 1, deadline=10)
    cache.put(("t1", "https://other.example/cimd"), 2, deadline=10)
    cache.pop_matching(lambda key: key[1] == "https://app.example/cimd")
    assert len(cache) == 1
    assert cache.get(("t1", "https://other.example/cimd"), now=0) == 2


def test_dpop_replay_cache_is_a_ttl_cache_add() -> None:
    """RFC 9449 §11.1: a proof's jti is accepted once while it may still be presented."""
    replay = BoundedReplayCache(max_entries=2)

    async def remember(key: str, now: int) -> bool:
        return await replay.remember_jti("default", key, expires_at=now + 300, now=now)

    async def scenario() -> list[bool]:
        return [
            await remember("one", 0),
            await remember("one", 10),  # replay
            await remember("two", 20),
            await remember("three", 30),  # past the bound: "one" goes
            await remember("one", 40),  # kept until 340
            await remember("one", 339),
            await remember("one", 340),  # expired: a new proof may reuse it
        ]

    assert asyncio.run(scenario()) == [True, False, True, True, True, False, True]
    assert replay.max_entries == 2
    assert len(replay) == 2
