"""CORS for browser MCP clients and DNS-rebinding guards (Fetch; MCP streamable HTTP §Security).

Browser-based MCP clients call the MCP endpoint cross-origin, so the endpoint must answer
CORS preflights and expose ``WWW-Authenticate`` (or the client cannot read the challenge that
starts OAuth) and ``Mcp-Session-Id``. :func:`mcp_cors` configures Starlette's own
``CORSMiddleware`` for exactly that: listed origins only, no cookies (bearer tokens travel in
a header, so ``allow_credentials`` stays off).

MCP's transport rules add: "Servers MUST validate the Origin header on all incoming
connections to prevent DNS rebinding attacks", answering 403 when it is present and invalid.
:class:`OriginGuardMiddleware` does that, and also checks ``Host`` against an allow-list (a
rebinding attack arrives with the attacker's host name), answering 421 Misdirected Request.
Requests without ``Origin`` (non-browser clients) pass the Origin check.

Stack order, outermost first: ``OriginGuardMiddleware`` → ``mcp_cors`` →
``BearerAuthMiddleware`` → app, so a 401 challenge still carries CORS headers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ostiary.errors import InvalidRequestError
from ostiary.loopback import LOOPBACK_HOSTS, is_loopback_host

__all__ = [
    "MCP_EXPOSED_HEADERS",
    "MCP_REQUEST_HEADERS",
    "OriginGuardMiddleware",
    "default_allowed_hosts",
    "default_allowed_origins",
    "mcp_cors",
]

#: Request headers an MCP client sends (streamable HTTP, 2025-06-18 to 2026-07-28).
MCP_REQUEST_HEADERS: Final = (
    "authorization",
    "content-type",
    "accept",
    "last-event-id",
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
)
#: Response headers a browser client must be able to read.
MCP_EXPOSED_HEADERS: Final = ("www-authenticate", "mcp-session-id", "mcp-protocol-version")


def mcp_cors(app: ASGIApp, allowed_origins: Sequence[str], *, max_age: int = 600) -> ASGIApp:
    """Wrap ``app`` in Starlette's ``CORSMiddleware`` configured for an MCP endpoint.

    Args:
        app: The (protected) MCP app.
        allowed_origins: Exact browser origins, e.g. ``https://inspector.example``. ``*``
            is accepted but defeats the point; prefer a list.
        max_age: Seconds a browser may cache a preflight answer.

    Example:
        >>> from starlette.applications import Starlette
        >>> wrapped = mcp_cors(Starlette(), ["https://app.example"])
    """
    return CORSMiddleware(
        app,
        allow_origins=list(allowed_origins),
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=list(MCP_REQUEST_HEADERS),
        expose_headers=list(MCP_EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=max_age,
    )


def default_allowed_hosts(resource: str) -> tuple[str, ...]:
    """Host values to accept for ``resource``: its own, plus every loopback name if local.

    Example:
        >>> default_allowed_hosts("https://mcp.example.com/mcp")
        ('mcp.example.com',)
        >>> default_allowed_hosts("http://127.0.0.1:8000/mcp")
        ('127.0.0.1:8000', '127.0.0.1:*', 'localhost:*', '[::1]:*')
    """
    netloc = urlsplit(resource).netloc.lower()
    if _is_local(resource):
        return (netloc, *(f"{name}:*" for name in LOOPBACK_HOSTS))
    return (netloc,)


def default_allowed_origins(resource: str, extra: Sequence[str] = ()) -> list[str]:
    """Origins to accept for ``resource``: its own and ``extra``, plus loopback ones if local.

    A local server is opened from pages on any loopback spelling and port (an Inspector on
    ``http://localhost:6274`` calling ``http://127.0.0.1:8000/mcp``).

    Example:
        >>> default_allowed_origins("https://mcp.example.com/mcp", ["https://app.example"])
        ['https://mcp.example.com', 'https://app.example']
        >>> default_allowed_origins("http://localhost:8000/mcp")[1:]
        ['http://127.0.0.1:*', 'http://localhost:*', 'http://[::1]:*']
    """
    parts = urlsplit(resource)
    origins = [f"{parts.scheme}://{parts.netloc}", *extra]
    if _is_local(resource):
        origins.extend(f"http://{name}:*" for name in LOOPBACK_HOSTS)
    return origins


def _is_local(resource: str) -> bool:
    """Whether ``resource``'s host is loopback (:func:`ostiary.loopback.is_loopback_host`)."""
    return is_loopback_host(urlsplit(resource).hostname or "")


def _matches(value: str, patterns: Sequence[str]) -> bool:
    """Exact match, or ``prefix:*`` meaning that prefix with any (or no) port."""
    for pattern in patterns:
        if pattern == value or pattern == "*":
            return True
        if pattern.endswith(":*"):
            base = pattern[:-2]
            if value == base or (value.startswith(base + ":") and value[len(base) + 1 :].isdigit()):
                return True
    return False


class OriginGuardMiddleware:
    """Refuse requests whose ``Host`` or ``Origin`` is not allowed (DNS-rebinding defence).

    Args:
        app: The app to guard.
        allowed_hosts: ``Host`` values (``name``, ``name:port``, ``name:*``); None skips the
            Host check (e.g. behind a proxy that already pins it).
        allowed_origins: ``Origin`` values (``scheme://host[:port]``, ``scheme://host:*``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Sequence[str] | None,
        allowed_origins: Sequence[str],
    ) -> None:
        self.app = app
        self.allowed_hosts = tuple(h.lower() for h in allowed_hosts or ())
        self.check_hosts = allowed_hosts is not None
        self.allowed_origins = tuple(o.lower().rstrip("/") for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1").lower()
            elif key == b"origin":
                origin = value.decode("latin-1").lower()
        if self.check_hosts and (host is None or not _matches(host, self.allowed_hosts)):
            await _refuse(send, 421, "The Host header is not one this server answers to.")
            return
        if origin is not None and not _matches(origin, self.allowed_origins):
            # MCP streamable HTTP: an invalid Origin MUST get 403.
            await _refuse(send, 403, "The Origin is not allowed to call this server.")
            return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, description: str) -> None:
    error = InvalidRequestError(description, status_code=status)
    body = json.dumps(error.to_dict(), separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
