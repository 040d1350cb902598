"""What the operator console shows of this process's recent activity: audit events and rates.

Two bounded in-process structures, both fed by the audit log (``ctx.audit.subscribe``) the
way ``/metrics`` is, plus the HTTP answers of the authorization server's routes:

* a ring of the last :data:`RING_SIZE` audit events, for the console's audit page. Kept in
  memory, not stored: the token endpoint is the hot path and a storage write per event would
  double its writes, while the durable audit trail is the ``ostiary.audit`` log, which a
  deployment already ships somewhere. Per process: with ``--workers`` or several nodes, each
  shows its own (the complete record is the log).
* per-minute counts of the headline events (the same event → counter mapping as
  ``/metrics``: tokens issued and refreshed, logins and failures, reuse detections) and of
  error answers (4xx and 5xx) by route template, for the last day: at most
  :data:`DAY_MINUTES` buckets of a few counters each.

Times come from the server's clock (``ctx.clock``), so tests control them.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Final, Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from ostiary.server.metrics import HEADLINE_EVENTS, StatusRecorder

__all__ = ["DAY_MINUTES", "RING_SIZE", "Activity", "ActivityMiddleware", "Window"]

RING_SIZE: Final = 2000
DAY_MINUTES: Final = 1440
#: Largest number of endpoints charted as their own error line (the rest are summed).
MAX_ERROR_ROUTES: Final = 6
Window = Literal["hour", "day"]
#: (buckets, seconds per bucket) of each chart window.
WINDOWS: Final[dict[str, tuple[int, int]]] = {"hour": (60, 60), "day": (96, 900)}
#: The charted series, named after the /metrics counter and label they mirror.
CHARTED: Final = (
    "tokens:issued",
    "tokens:refreshed",
    "logins:succeeded",
    "logins:failed",
    "reuse",
)


def series_name(event: str) -> str | None:
    """``tokens:issued`` for ``token.issued``: the metric and label /metrics counts it under."""
    headline = HEADLINE_EVENTS.get(event)
    if headline is None:
        return None
    metric, labels = headline
    return ":".join((metric, *labels.values()))


class Activity:
    """Recent audit events and per-minute counts of one authorization-server process."""

    def __init__(self, clock: Callable[[], int], ring_size: int = RING_SIZE) -> None:
        self._clock = clock
        self._events: deque[dict[str, Any]] = deque(maxlen=ring_size)
        self._minutes: dict[int, Counter[str]] = {}

    # -- feeding -----------------------------------------------------------------------------

    def audit_sink(self, event: str, record: dict[str, Any]) -> None:
        """Subscribed to the audit log: keep the event, count it when it is charted."""
        self._events.append({**record, "at": self._clock()})
        name = series_name(event)
        if name is not None:
            self._count(name)

    def answered(self, route: str, status: int) -> None:
        """Count an error answer (status >= 400) of ``route`` (a route template)."""
        if status >= 400:
            self._count(f"errors:{route}")

    def _count(self, name: str) -> None:
        minute = self._clock() // 60
        bucket = self._minutes.get(minute)
        if bucket is None:
            bucket = self._minutes[minute] = Counter()
            for old in [m for m in self._minutes if m <= minute - DAY_MINUTES]:
                del self._minutes[old]
        bucket[name] += 1

    # -- reading -----------------------------------------------------------------------------

    def recent(
        self,
        *,
        event: str | None = None,
        subjects: tuple[str, ...] = (),
        client_id: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """The newest events first, filtered by event name (or ``prefix.``), subject
        (``subject`` or ``username`` field) and client."""
        found: list[dict[str, Any]] = []
        for record in reversed(self._events):
            if event and not _event_matches(str(record.get("event")), event):
                continue
            if subjects and not {record.get("subject"), record.get("username")} & set(subjects):
                continue
            if client_id and record.get("client_id") != client_id:
                continue
            found.append(record)
            if len(found) >= limit:
                break
        return found

    def event_names(self) -> list[str]:
        """Every event name in the ring, sorted (for the audit page's filter)."""
        return sorted({str(r.get("event")) for r in self._events})

    def series(self, window: Window) -> dict[str, Any]:
        """The charted counts over ``window``, oldest bucket first, ending with the current
        minute: ``{window, step, end, series: {name: [...]}, errors: {route: [...]}}``."""
        points, step = WINDOWS[window]
        now = self._clock()
        end_minute = now // 60
        per = step // 60
        first = end_minute - points * per + 1
        totals: dict[str, list[int]] = {}
        for minute in range(first, end_minute + 1):
            bucket = self._minutes.get(minute)
            if not bucket:
                continue
            index = (minute - first) // per
            for name, count in bucket.items():
                totals.setdefault(name, [0] * points)[index] += count
        errors = {
            k.removeprefix("errors:"): v for k, v in totals.items() if k.startswith("errors:")
        }
        return {
            "window": window,
            "step": step,
            "end": (end_minute + 1) * 60,
            "series": {name: totals.get(name, [0] * points) for name in CHARTED},
            "errors": _top_routes(errors, points),
        }


def _event_matches(name: str, wanted: str) -> bool:
    return name.startswith(wanted) if wanted.endswith(".") else name == wanted


def _top_routes(errors: dict[str, list[int]], points: int) -> dict[str, list[int]]:
    """The routes with the most errors, each its own line; the rest summed as ``other``."""
    ranked = sorted(errors.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    top = dict(ranked[:MAX_ERROR_ROUTES])
    rest = ranked[MAX_ERROR_ROUTES:]
    if rest:
        top["other"] = [sum(values[i] for _, values in rest) for i in range(points)]
    return top


class ActivityMiddleware:
    """Tell :class:`Activity` how each matched route answered (pure ASGI, one dict update)."""

    def __init__(self, app: ASGIApp, activity: Activity) -> None:
        self.app = app
        self.activity = activity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recorder = StatusRecorder(send)
        try:
            await self.app(scope, receive, recorder)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is not None:
                self.activity.answered(route, recorder.status)
