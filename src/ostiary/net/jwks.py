"""Client JWK sets for private_key_jwt, inline or fetched from jwks_uri (RFC 7591 §2; RFC 7523 §3).

:meth:`JwksLoader.load` is what :func:`ostiary.core.client_auth.authenticate_client` needs as
``load_jwks``: the client's inline ``jwks`` when registered, otherwise the document at its
``jwks_uri`` fetched through the SSRF guard and cached per its cache headers (clamped).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ostiary.core.models import Client
from ostiary.net.fetch import FetchError, SafeFetcher
from ostiary.ttl_cache import TtlCache


class JwksLoader:
    """Loads client key sets with a bounded cache.

    Args:
        fetcher: The SSRF-guarded fetcher.
        min_cache_seconds: Shortest time a fetched set is reused.
        max_cache_seconds: Longest time a fetched set is reused.
        max_entries: Cache size (least recently used evicted first).

    Example:
        >>> from ostiary.net.fetch import FetchPolicy
        >>> loader = JwksLoader(SafeFetcher(FetchPolicy()))
    """

    def __init__(
        self,
        fetcher: SafeFetcher,
        *,
        min_cache_seconds: int = 60,
        max_cache_seconds: int = 3600,
        max_entries: int = 1000,
    ) -> None:
        if not 0 <= min_cache_seconds <= max_cache_seconds or max_entries < 1:
            raise ValueError("need 0 <= min_cache_seconds <= max_cache_seconds, max_entries >= 1")
        self.fetcher = fetcher
        self.min_cache_seconds = min_cache_seconds
        self.max_cache_seconds = max_cache_seconds
        self.max_entries = max_entries
        self._cache: TtlCache[str, dict[str, Any]] = TtlCache(max_entries)

    async def load(self, client: Client, *, now: int) -> Mapping[str, Any]:
        """The client's JWK set.

        Args:
            client: A client registered with ``jwks`` or ``jwks_uri``.
            now: Current Unix time.

        Returns:
            A JWK set object (``{"keys": [...]}``).

        Raises:
            FetchError: The client has no keys, the fetch failed, or the body is not a JWK set.
        """
        if client.jwks is not None:
            return client.jwks
        if client.jwks_uri is None:
            raise FetchError("the client has no registered keys")
        cached = self._cache.get(client.jwks_uri, now)
        if cached is not None:
            return cached
        fetched = await self.fetcher.get_json(client.jwks_uri)
        data = fetched.data
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise FetchError("the jwks_uri document is not a JWK set")
        ttl = fetched.max_age if fetched.max_age is not None else self.min_cache_seconds
        ttl = min(max(ttl, self.min_cache_seconds), self.max_cache_seconds)
        jwks = cast("dict[str, Any]", data)
        self._cache.put(client.jwks_uri, jwks, deadline=now + ttl)
        return jwks

    def forget(self, jwks_uri: str) -> None:
        """Drop a cached set, e.g. to pick up a rotated key after an unknown ``kid``."""
        self._cache.pop(jwks_uri)


class IssuerJwksCache:
    """Trusted identity providers' key sets (ID-JAG signatures), cached, refetched on rotation.

    A set is reused per its cache headers (clamped); an ID-JAG naming a ``kid`` the cached set
    lacks asks for a fresh copy, granted at most once per ``refetch_seconds`` per URL so a
    stream of made-up ``kid`` values cannot turn this server into a fetch amplifier.

    Args:
        fetcher: The SSRF-guarded fetcher.
        refetch_seconds: Shortest time between two fetches of one URL.
        min_cache_seconds: Shortest time a fetched set is reused.
        max_cache_seconds: Longest time a fetched set is reused.
        max_entries: Cache size (least recently used evicted first); one per trusted issuer
            is enough.
    """

    def __init__(
        self,
        fetcher: SafeFetcher,
        *,
        refetch_seconds: int = 60,
        min_cache_seconds: int = 300,
        max_cache_seconds: int = 86400,
        max_entries: int = 100,
    ) -> None:
        self.fetcher = fetcher
        self.refetch_seconds = refetch_seconds
        self.min_cache_seconds = min_cache_seconds
        self.max_cache_seconds = max_cache_seconds
        #: jwks_uri -> (fresh until, fetched at, set); an entry is kept while it is fresh or
        #: still bars a refetch, and dropped once it is neither (it would be refetched anyway).
        self._cache: TtlCache[str, tuple[int, int, dict[str, Any]]] = TtlCache(max_entries)

    async def load(self, jwks_uri: str, *, now: int, refresh: bool = False) -> Mapping[str, Any]:
        """The set at ``jwks_uri``, fetched when stale or (rate-limited) when ``refresh``.

        Raises:
            FetchError: The fetch failed or the body is not a JWK set.
        """
        cached = self._cache.get(jwks_uri, now)
        if cached is not None:
            fresh_until, fetched_at, jwks = cached
            recent = now - fetched_at < self.refetch_seconds
            if (fresh_until > now and not refresh) or (refresh and recent):
                return jwks
        fetched = await self.fetcher.get_json(jwks_uri)
        data = fetched.data
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise FetchError("the jwks_uri document is not a JWK set")
        ttl = fetched.max_age if fetched.max_age is not None else self.min_cache_seconds
        ttl = min(max(ttl, self.min_cache_seconds), self.max_cache_seconds)
        jwks = cast("dict[str, Any]", data)
        deadline = now + max(ttl, self.refetch_seconds)
        self._cache.put(jwks_uri, (now + ttl, now, jwks), deadline=deadline)
        return jwks
