"""Client ID Metadata Document resolution and caching (CIMD draft-00 §4, §6; MCP registration).

Fetches the document at a URL-shaped ``client_id`` through the :class:`SafeFetcher`, validates
it with :func:`ostiary.core.client_id_metadata.build_metadata_client` and keeps the result in
a bounded LRU cache for as long as the response's cache headers allow (MCP: "SHOULD cache
respecting HTTP cache headers"), clamped to ``[min_cache_seconds, max_cache_seconds]``. The
floor also applies to ``no-store`` answers: it bounds how often a client can make the server
fetch, which matters more here than freshness. Concurrent resolutions of the same URL share
one fetch. Every fetch failure has the same public description; the reason is private.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from ostiary.core.client_id_metadata import build_metadata_client, is_client_id_metadata_url
from ostiary.core.models import Client
from ostiary.errors import InvalidClientMetadataError
from ostiary.net.fetch import FetchError, SafeFetcher
from ostiary.ttl_cache import TtlCache

_CacheKey = tuple[str, str, tuple[str, ...]]

#: The one description of every fetch failure; why it failed is in the error's ``detail``.
METADATA_UNAVAILABLE: Final = "the client's metadata document could not be fetched"


class ClientMetadataResolver:
    """Resolves CIMD ``client_id`` URLs to :class:`Client` records.

    Args:
        fetcher: The SSRF-guarded fetcher.
        min_cache_seconds: Shortest time a document is cached, whatever its headers say.
        max_cache_seconds: Longest time a document is cached.
        max_entries: Cache size; the least recently used entry is evicted first.
        client_credentials_enabled: Whether documents may register the client_credentials
            grant (private_key_jwt clients only).
        max_fetches_per_minute: Budget of outbound fetches (cache misses) per minute, so a
            stream of new URL client_ids cannot turn this server into a request amplifier.

    Example:
        >>> from ostiary.net.fetch import FetchPolicy
        >>> resolver = ClientMetadataResolver(SafeFetcher(FetchPolicy()))
    """

    def __init__(
        self,
        fetcher: SafeFetcher,
        *,
        min_cache_seconds: int = 60,
        max_cache_seconds: int = 86400,
        max_entries: int = 1000,
        client_credentials_enabled: bool = False,
        max_fetches_per_minute: int = 120,
    ) -> None:
        if not 0 <= min_cache_seconds <= max_cache_seconds or max_entries < 1:
            raise ValueError("need 0 <= min_cache_seconds <= max_cache_seconds, max_entries >= 1")
        self.fetcher = fetcher
        self.min_cache_seconds = min_cache_seconds
        self.max_cache_seconds = max_cache_seconds
        self.max_entries = max_entries
        self.client_credentials_enabled = client_credentials_enabled
        self._cache: TtlCache[_CacheKey, Client] = TtlCache(max_entries)
        self._inflight: dict[_CacheKey, asyncio.Task[Client]] = {}
        self.max_fetches_per_minute = max_fetches_per_minute
        self._window: tuple[int, int] = (0, 0)  # (minute, fetches started in it)

    async def resolve(
        self, client_id: str, *, tenant_id: str, now: int, supported_scopes: Sequence[str]
    ) -> Client:
        """The client described by the document at ``client_id``.

        Args:
            client_id: A Client ID Metadata Document URL.
            tenant_id: Tenant the client is used in.
            now: Current Unix time.
            supported_scopes: Scopes the server knows.

        Returns:
            The validated client, from cache when still fresh.

        Raises:
            InvalidClientMetadataError: The URL is not a valid metadata URL, the document
                could not be fetched, or it is invalid.
        """
        if not is_client_id_metadata_url(client_id):
            raise InvalidClientMetadataError("client_id is not a valid client metadata URL")
        key: _CacheKey = (tenant_id, client_id, tuple(supported_scopes))
        cached = self._cache.get(key, now)
        if cached is not None:
            return cached
        task = self._inflight.get(key)
        if task is None:
            self._spend_fetch_budget(now)
            task = asyncio.ensure_future(self._load(key, now))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    def _spend_fetch_budget(self, now: int) -> None:
        minute, spent = self._window
        if now // 60 != minute:
            minute, spent = now // 60, 0
        if spent >= self.max_fetches_per_minute:
            raise InvalidClientMetadataError(
                "too many client metadata documents are being fetched; try again in a minute",
                detail=f"fetch budget of {self.max_fetches_per_minute}/min spent",
            )
        self._window = (minute, spent + 1)

    async def _load(self, key: _CacheKey, now: int) -> Client:
        tenant_id, client_id, supported_scopes = key
        try:
            fetched = await self.fetcher.get_json(client_id)
        except FetchError as exc:
            # Anyone can send any URL as client_id: the reason (the host resolves to a
            # private address, does not resolve, refused the connection...) would let an
            # anonymous caller map names and addresses through this server. It goes to the
            # audit log only (OAuthError.detail).
            why = exc.reason if exc.detail is None else f"{exc.reason} ({exc.detail})"
            raise InvalidClientMetadataError(
                METADATA_UNAVAILABLE, detail=f"fetching {client_id[:200]!r}: {why}"
            ) from None
        ttl = fetched.max_age if fetched.max_age is not None else self.min_cache_seconds
        ttl = min(max(ttl, self.min_cache_seconds), self.max_cache_seconds)
        client = build_metadata_client(
            client_id,
            fetched.data,
            tenant_id=tenant_id,
            now=now,
            expires_at=now + ttl,
            supported_scopes=supported_scopes,
            client_credentials_enabled=self.client_credentials_enabled,
        )
        self._store(key, client)
        return client

    def _store(self, key: _CacheKey, client: Client) -> None:
        self._cache.put(key, client, deadline=client.metadata_expires_at)

    def forget(self, client_id: str) -> None:
        """Drop every cached copy of ``client_id`` (e.g. after a client reports a change)."""
        self._cache.pop_matching(lambda key: key[1] == client_id)
