"""Prometheus metrics (the text exposition format) for operating ostiary.

What is counted, all from the places that already know it:

* every HTTP request, by route template (``/interaction/{interaction_id}``, never the raw path,
  so cardinality stays bounded), method and status, with a latency histogram per route;
* the security events of the audit log (``ostiary.audit``): tokens issued, refreshed and
  revoked, refresh-token reuse, logins succeeded / failed / throttled, rate-limit hits, CIMD
  and client events, each counted under its own event name, and the headline ones under
  friendlier names as well;
* every storage operation's latency, by operation (a thin proxy around the ``Storage``).

Where they are read: ``GET /metrics`` on the main port with ``Authorization: Bearer
<metrics.token>``, and/or a separate listener on ``metrics.bind`` (no authentication: bind it
to a private address). With ``ostiary serve --workers N`` each worker writes its samples to
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multi-process mode, set up by ``serve``) and
any worker, or the separate listener in the parent, answers with the sum over all of them.
"""

from __future__ import annotations

import hmac
import inspect
import os
import time
from collections.abc import Callable
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "Metrics",
    "MetricsMiddleware",
    "collecting_registry",
    "metrics_endpoint",
]

#: Audit events counted under their own metric too (event → (metric attribute, labels)).
_HEADLINE: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "token.issued": ("tokens", {"operation": "issued"}),
    "token.refreshed": ("tokens", {"operation": "refreshed"}),
    "token.revoked": ("tokens", {"operation": "revoked"}),
    "refresh_token.reused": ("reuse", {}),
    "authorization_code.replayed": ("reuse", {}),
    "login.succeeded": ("logins", {"outcome": "succeeded"}),
    "login.failed": ("logins", {"outcome": "failed"}),
    "login.second_factor_failed": ("logins", {"outcome": "failed"}),
    "login.throttled": ("throttled", {"kind": "login"}),
    "rate_limit.exceeded": ("throttled", {"kind": "rate_limit"}),
}
#: The same mapping, for the operator console's charts (``server/activity.py``).
HEADLINE_EVENTS: Final = _HEADLINE
_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when ``serve --workers`` set it up."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def collecting_registry(own: CollectorRegistry) -> CollectorRegistry:
    """What ``/metrics`` exposes: ``own``, or the sum of every worker's files."""
    directory = multiprocess_dir()
    if directory is None:
        return own
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


class Metrics:
    """One app's metrics, in a registry of its own (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "ostiary_http_requests", "HTTP requests answered.", ["route", "method", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "ostiary_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["route"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.events = Counter(
            "ostiary_audit_events", "Audit events, by event name.", ["event"], registry=r
        )
        self.tokens = Counter(
            "ostiary_tokens", "Tokens issued, refreshed, revoked.", ["operation"], registry=r
        )
        self.reuse = Counter(
            "ostiary_reuse_detections",
            "Replayed codes and reused refresh tokens (each revoked its grant).",
            registry=r,
        )
        self.logins = Counter("ostiary_logins", "Password logins.", ["outcome"], registry=r)
        self.throttled = Counter(
            "ostiary_throttled", "Requests refused by a limit.", ["kind"], registry=r
        )
        self.storage = Histogram(
            "ostiary_storage_operation_duration_seconds", "Time of one storage call.",
            ["operation"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip

    def audit_sink(self, event: str, fields: dict[str, Any]) -> None:
        """Subscribed to the audit log: count ``event`` (fields are never used as labels)."""
        self.events.labels(event).inc()
        headline = _HEADLINE.get(event)
        if headline is not None:
            metric = getattr(self, headline[0])
            (metric.labels(**headline[1]) if headline[1] else metric).inc()

    def instrument(self, storage: Any) -> Any:
        """A proxy of ``storage`` timing every coroutine method it exposes."""
        return _TimedStorage(storage, self.storage)


class _TimedStorage:
    """Forwards every attribute; coroutine methods are timed by name.

    A method is wrapped on first use and kept on the proxy, so later calls find it without
    ``__getattr__`` (storage calls are the hot path).
    """

    def __init__(self, inner: Any, histogram: Histogram) -> None:
        self._inner = inner
        self._histogram = histogram

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value) or name.startswith("_"):
            return value
        if inspect.iscoroutinefunction(value):
            value = _timed(value, self._histogram.labels(name).observe)
        setattr(self, name, value)
        return value


def _timed(method: Callable[..., Any], observe: Callable[[float], None]) -> Callable[..., Any]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            observe(time.perf_counter() - started)

    return timed


class StatusRecorder:
    """An ASGI ``send`` that notes the response status on its way (500 until one is sent:
    an exception escaping the app is answered 500 by the server)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class MetricsMiddleware:
    """Count and time every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        recorder = StatusRecorder(send)
        try:
            await self.app(scope, receive, recorder)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(route, scope["method"], str(recorder.status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def metrics_endpoint(metrics: Metrics, token: str) -> Callable[[Request], Any]:
    """``GET /metrics`` for a caller presenting ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    async def endpoint(request: Request) -> Response:
        presented = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(presented, expected):
            return Response(
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
            )
        body = generate_latest(collecting_registry(metrics.registry))
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return endpoint
