"""Per-process fixed-window request counters (the per-address rate limits; RFC 6585 §4).

The per-address limits on registration, token and login requests count one event per request.
Kept in the database that is a write transaction on every request; kept here it is a dict
update. The price: each process (and node) counts on its own, so N processes let an address
make up to N times the limit. ``security.rate_limit_scope = "storage"`` shares the counters
through the storage instead, and with Redis configured they are always in Redis. Per-account
login throttling always goes through the storage: it guards passwords, not capacity.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ProcessCounters"]

#: Buckets kept before expired windows are swept (an address per bucket: bounded memory).
_SWEEP_AT: Final = 50_000


class ProcessCounters:
    """``RateLimiter.hit`` in process memory (single event loop: no lock needed)."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    async def hit(self, tenant_id: str, bucket: str, window_seconds: int, now: int) -> int:
        """Count one event in the fixed window containing ``now``; return the count so far."""
        start = now - now % window_seconds
        key = (tenant_id, bucket)
        window, count = self._windows.get(key, (start, 0))
        count = count + 1 if window == start else 1
        if len(self._windows) >= _SWEEP_AT and key not in self._windows:
            self._windows = {k: v for k, v in self._windows.items() if v[0] + window_seconds > now}
        self._windows[key] = (start, count)
        return count
