"""Reverse proxy to an HTTP MCP upstream, minus the client's token (MCP "Token Passthrough").

Pure ASGI, streaming both ways' bodies unbuffered on the response side (SSE streams pass
through as they come). Hop-by-hop headers (RFC 9110 §7.6.1), ``Host`` and ``Authorization``
are never forwarded: the upstream gets the identity ostiary verified instead, added by
:class:`~ostiary.resource.forwarding.IdentityHeadersMiddleware` in front of this app.
"""

from __future__ import annotations

from typing import Final

import httpx
from starlette.types import Receive, Scope, Send

__all__ = ["HttpUpstreamProxy"]

_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
#: Never sent upstream: the token stays here; Host and the body length are the proxy's own.
_NOT_FORWARDED: Final = _HOP_BY_HOP | {b"host", b"authorization", b"content-length", b"cookie"}
_NOT_RETURNED: Final = _HOP_BY_HOP | {b"content-length", b"set-cookie"}


class HttpUpstreamProxy:
    """Forward each request to ``upstream`` (one URL: the upstream MCP endpoint).

    Args:
        upstream: The upstream MCP endpoint, e.g. ``http://127.0.0.1:9000/mcp``.
        timeout: Seconds to wait for the upstream to connect and answer (streams excepted).
        max_body_bytes: Largest request body forwarded (413 beyond).
        client: An httpx client to use (tests, custom TLS); one is made and owned otherwise.
    """

    def __init__(
        self,
        upstream: str,
        *,
        timeout: float = 30.0,
        max_body_bytes: int = 4 * 1024 * 1024,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.upstream = upstream
        self.max_body_bytes = max_body_bytes
        self._owned = client is None
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, read=None), follow_redirects=False
        )

    async def aclose(self) -> None:
        """Close the client if this proxy made it."""
        if self._owned:
            await self.client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point (HTTP only)."""
        if scope["type"] != "http":
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _plain(send, 413, b"request body too large")
                return
        headers = [(k, v) for k, v in scope["headers"] if k not in _NOT_FORWARDED]
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"{self.upstream}?{query}" if query else self.upstream
        request = self.client.build_request(
            scope["method"], url, headers=headers, content=bytes(body)
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError:
            await _plain(send, 502, b"upstream MCP server unreachable")
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v) for k, v in response.headers.raw if k.lower() not in _NOT_RETURNED
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


async def _plain(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": text})
