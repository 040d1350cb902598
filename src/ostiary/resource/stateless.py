"""405 for GET and DELETE on a stateless MCP endpoint (MCP streamable HTTP, "Listening for
Messages from the Server" and "Session Management"; RFC 9110 §15.5.6).

A streamable-HTTP server either answers ``GET`` with an event stream or with 405 Method Not
Allowed. A stateless server (the SDK's ``stateless_http``; MCP 2026-07-28 has no sessions)
has nothing to send on such a stream: the SDK would still open one, which never carries a
message and never ends. Clients that probe the MCP URL with ``GET`` (Codex CLI reads it during
discovery) then hang until their own timeout, and every open stream holds a connection.
``DELETE`` ends a session, and there is none.

:class:`StatelessMethods` answers both with 405 and ``Allow: POST`` before any credential is
looked at, with or without a token: nothing about the request needs the caller's identity.
"""

from __future__ import annotations

import json
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["StatelessMethods"]

_REFUSED: Final = frozenset({"GET", "HEAD", "DELETE"})
_BODY: Final = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32000,
            "message": "Method not allowed: this MCP endpoint is stateless; send each "
            "message with POST (no GET stream, no session to delete).",
        },
    },
    separators=(",", ":"),
).encode()


class StatelessMethods:
    """ASGI middleware: 405 with ``Allow: POST`` for GET, HEAD and DELETE.

    Args:
        app: The MCP endpoint (POST, and OPTIONS for CORS preflight, pass through).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http" or scope["method"] not in _REFUSED:
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        await send(
            {
                "type": "http.response.start",
                "status": 405,
                "headers": [
                    (b"allow", b"POST"),
                    (b"content-type", b"application/json"),
                    (b"cache-control", b"no-store"),
                    (b"content-length", str(len(_BODY)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if head else _BODY})
