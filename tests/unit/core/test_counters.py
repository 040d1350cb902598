"""Per-address request counters: in process by default, in storage when asked (core.counters)."""

from __future__ import annotations

from collections.abc import Callable

from ostiary.core.counters import ProcessCounters
from ostiary.settings import Settings
from ostiary.storage import open_storage
from ostiary.ttl_cache import TtlCache
from tests.helpers.context import build_context


async def test_counts_per_bucket_within_a_fixed_window() -> None:
    counters = ProcessCounters()
    counts = [await counters.hit("t", "token:1.2.3.4", 60, 120 + i) for i in range(3)]
    other = await counters.hit("t", "token:5.6.7.8", 60, 125)
    next_window = await counters.hit("t", "token:1.2.3.4", 60, 180)
    assert counts == [1, 2, 3]
    assert other == 1
    assert next_window == 1


def test_the_context_picks_the_counters_the_settings_name(
    settings_factory: Callable[..., Settings],
) -> None:
    default = settings_factory()
    shared = settings_factory(security={"rate_limit_scope": "storage"})
    redis = settings_factory(
        security={"rate_limit_scope": "process"},
        storage={"url": "memory://", "redis_url": "redis://127.0.0.1:6379/15"},
    )
    built = {
        name: build_context(s, open_storage(s))
        for name, s in (("default", default), ("shared", shared), ("redis", redis))
    }
    assert isinstance(built["default"].request_counters, ProcessCounters)
    assert built["shared"].request_counters is None  # the storage counts
    assert built["redis"].request_counters is None  # Redis counts, whatever the scope says


def test_ttl_cache_expires_and_evicts_least_recently_used() -> None:
    cache: TtlCache[str, int] = TtlCache(2)
    cache.put("a", 1, deadline=10)
    cache.put("b", 2, deadline=10)
    assert cache.get("a", now=5) == 1  # a is now the most recently used
    cache.put("c", 3, deadline=10)
    assert cache.get("b", now=5) is None  # evicted
    assert cache.get("a", now=10) is None  # expired
    assert cache.get("c", now=9) == 3
    cache.pop("c")
    assert len(cache) == 0
