"""Requests in flight per client address, bounded (RFC 6585 §4: 429 Too Many Requests).

A request that stays open (an event stream, a body sent one byte a minute) holds a socket, a
file descriptor and memory for as long as the client likes. Without a bound, one address
opening a thousand of them takes a server with the common 1024-descriptor limit offline for
everyone. :class:`PerAddressConcurrency` lets each address have at most ``limit`` requests
in flight (optionally only of some methods, e.g. ``GET`` streams) and answers the next one
at once with 429, ``Retry-After`` and the RFC 6749 ``slow_down`` error body; requests from
other addresses are unaffected, and the counter drops the moment a request ends.

The address is the TCP peer, or the first ``X-Forwarded-For`` entry when the server sits
behind a proxy that sets it (``trust_forwarded_for``).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from ostiary.errors import SlowDownError

__all__ = ["PerAddressConcurrency", "client_address"]

_HEADERS: Final = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


def client_address(scope: Scope, trust_forwarded_for: bool) -> str:
    """The request's client address: the TCP peer, or the first ``X-Forwarded-For`` entry
    behind a proxy that sets it; ``unknown`` when the server gives none."""
    if trust_forwarded_for:
        forwarded = next((v for k, v in scope["headers"] if k == b"x-forwarded-for"), b"")
        if forwarded:
            return str(forwarded.decode("latin-1")).split(",")[0].strip()
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class PerAddressConcurrency:
    """ASGI middleware: at most ``limit`` requests in flight per client address.

    Args:
        app: The app to protect.
        limit: Requests in flight per address; 0 turns the bound off.
        methods: Count only these methods (e.g. ``{"GET"}`` for event streams); None: all.
        trust_forwarded_for: Take the address from ``X-Forwarded-For`` (behind a proxy).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        methods: Collection[str] | None = None,
        trust_forwarded_for: bool = False,
    ) -> None:
        self.app = app
        self.limit = limit
        self.methods = frozenset(methods) if methods is not None else None
        self.trust_forwarded_for = trust_forwarded_for
        self._in_flight: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if (
            scope["type"] != "http"
            or self.limit <= 0
            or (self.methods is not None and scope["method"] not in self.methods)
        ):
            await self.app(scope, receive, send)
            return
        address = client_address(scope, self.trust_forwarded_for)
        count = self._in_flight.get(address, 0)
        if count >= self.limit:
            await self._refuse(send)
            return
        self._in_flight[address] = count + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self._in_flight[address] - 1
            if left:
                self._in_flight[address] = left
            else:
                del self._in_flight[address]

    async def _refuse(self, send: Send) -> None:
        error = SlowDownError(
            "Too many requests in flight from this address. Finish some, then retry.",
            retry_after_seconds=1,
        )
        body = json.dumps(error.to_dict(), separators=(",", ":")).encode()
        headers = [
            *_HEADERS,
            *((k.lower().encode(), v.encode()) for k, v in error.headers().items()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
