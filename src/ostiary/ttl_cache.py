"""A bounded map whose entries expire: the one TTL cache every layer uses.

Least recently used entries go first once ``max_entries`` is reached; an entry is gone once
its deadline passed. Keys and values are whatever the caller decides to keep: callers that
cache anything derived from a secret key it by a hash, never by the secret itself.

Users: verified tokens at the resource server (keyed by token hash), client records, client
and issuer JWK sets, client metadata documents, and the in-process DPoP ``jti`` replay cache
(through :meth:`TtlCache.add`, a check-and-set with no ``await`` in between, so atomic within
one event loop).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """LRU map from ``K`` to ``V`` with a per-entry deadline (same clock as ``now``).

    Example:
        >>> cache: TtlCache[str, int] = TtlCache(2)
        >>> cache.put("a", 1, deadline=10.0)
        >>> cache.get("a", now=5.0), cache.get("a", now=10.0)
        (1, None)
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K, now: float) -> V | None:
        """The value, or None when absent or expired (an expired entry is dropped)."""
        item = self._items.get(key)
        if item is None:
            return None
        if now >= item[1]:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V, deadline: float) -> None:
        """Keep ``value`` until ``deadline``; a cache of size 0 keeps nothing."""
        if self.max_entries <= 0:
            return
        self._items[key] = (value, deadline)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def add(self, key: K, value: V, deadline: float, now: float) -> bool:
        """Keep ``value`` unless ``key`` holds a live entry; True when it was kept.

        A replay cache's "first time seen" (RFC 9449 §11.1): the entry is refreshed only
        once its deadline passed. Past the bound the least recently *added or read* entry
        goes, live or not, as with :meth:`put`.

        Example:
            >>> seen: TtlCache[str, bool] = TtlCache(10)
            >>> seen.add("jti", True, deadline=60.0, now=0.0), seen.add("jti", True, 60.0, 1.0)
            (True, False)
        """
        item = self._items.get(key)
        if item is not None and now < item[1]:
            return False
        self.put(key, value, deadline)
        return True

    def pop_matching(self, predicate: Callable[[K], bool]) -> None:
        """Forget every key ``predicate`` accepts (e.g. every tenant's copy of one client)."""
        for key in [key for key in self._items if predicate(key)]:
            del self._items[key]

    def pop(self, key: K) -> None:
        """Forget ``key`` (after a local write, so this process never serves the old value)."""
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)
