"""Identity providers' key sets for ID-JAGs: cached, refetched on rotation at a bounded rate."""

from __future__ import annotations

from typing import Any, cast

import pytest

from ostiary.net.fetch import FetchedJson, FetchError, SafeFetcher
from ostiary.net.jwks import IssuerJwksCache

URI = "https://idp.example/jwks"


class Fetcher:
    def __init__(self, *bodies: object, max_age: int | None = None) -> None:
        self.bodies = list(bodies)
        self.max_age = max_age
        self.calls = 0

    async def get_json(self, url: str) -> FetchedJson:
        assert url == URI
        self.calls += 1
        return FetchedJson(self.bodies.pop(0), self.max_age)


def cache(fetcher: Fetcher) -> IssuerJwksCache:
    return IssuerJwksCache(cast("SafeFetcher", fetcher), refetch_seconds=60, min_cache_seconds=300)


async def test_a_set_is_reused_until_stale() -> None:
    fetcher = Fetcher({"keys": [1]}, {"keys": [2]})
    keys = cache(fetcher)
    assert await keys.load(URI, now=0) == {"keys": [1]}
    assert await keys.load(URI, now=299) == {"keys": [1]}
    assert await keys.load(URI, now=300) == {"keys": [2]}
    assert fetcher.calls == 2


async def test_a_refresh_within_the_interval_is_declined_then_granted() -> None:
    fetcher = Fetcher({"keys": [1]}, {"keys": [2]})
    keys = cache(fetcher)
    await keys.load(URI, now=0)
    assert await keys.load(URI, now=59, refresh=True) == {"keys": [1]}
    assert fetcher.calls == 1
    assert await keys.load(URI, now=60, refresh=True) == {"keys": [2]}
    assert fetcher.calls == 2


async def test_cache_headers_are_clamped() -> None:
    fetcher = Fetcher({"keys": []}, {"keys": []}, max_age=10**9)
    keys = IssuerJwksCache(cast("SafeFetcher", fetcher), max_cache_seconds=1000)
    await keys.load(URI, now=0)
    await keys.load(URI, now=999)
    await keys.load(URI, now=1000)
    assert fetcher.calls == 2


@pytest.mark.parametrize("body", [[], {"keys": "x"}, "text"])
async def test_a_document_that_is_not_a_jwk_set_is_refused(body: Any) -> None:
    with pytest.raises(FetchError):
        await cache(Fetcher(body)).load(URI, now=0)
