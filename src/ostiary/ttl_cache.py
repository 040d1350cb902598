"""A bounded map whose entries expire: the one TTL cache every layer uses.

Least recently used entries go first once ``max_entries`` is reached; an entry is gone once
its deadline passed. Keys and values are whatever the caller decides to keep: callers that
cache anything derived from a secret key it by a hash, never by the secret itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
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

    def pop(self, key: K) -> None:
        """Forget ``key`` (after a local write, so this process never serves the old value)."""
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)
