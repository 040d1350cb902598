"""A request id on every response and log line (``X-Request-ID``).

An id the caller sent (a load balancer's, a client's) is kept when it is short and plain
(``[A-Za-z0-9._-]``, at most 64 characters), so one id follows the request through the proxy
into ostiary's logs; anything else is replaced by a fresh random one. The response carries it
back in ``X-Request-ID``, and every log record written while the request runs (audit events,
errors, the access log in JSON mode) carries it as ``request_id``.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ostiary._logging import request_id

__all__ = ["HEADER", "RequestIdMiddleware"]

HEADER: Final = "x-request-id"
_PLAIN: Final = re.compile(rb"[A-Za-z0-9._-]{1,64}")


class RequestIdMiddleware:
    """ASGI middleware: pick the request id, expose it to logging, echo it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = [v for k, v in scope["headers"] if k == HEADER.encode()]
        value = given[0] if len(given) == 1 and _PLAIN.fullmatch(given[0]) else None
        rid = value.decode() if value is not None else secrets.token_hex(8)

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != HEADER.encode()]
                message = {**message, "headers": [*headers, (HEADER.encode(), rid.encode())]}
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, tagged)
        finally:
            request_id.reset(token)
