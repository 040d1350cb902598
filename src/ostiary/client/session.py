"""An ``mcp`` SDK client session over streamable HTTP with OAuth (MCP transports: Streamable HTTP).

The official SDK's HTTP transport runs on ``httpx2``; :func:`open_mcp_client` wires an
:class:`~ostiary.client.auth.OAuthClientAuth` into it so every request carries the bearer
token and a ``401``/``403`` runs the authorization flow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from ostiary.client.auth import OAuthClientAuth

__all__ = ["open_mcp_client"]

DEFAULT_TIMEOUT_SECONDS = 30.0


@asynccontextmanager
async def open_mcp_client(
    url: str,
    auth: OAuthClientAuth,
    *,
    mode: str = "auto",
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    **client_options: Any,
) -> AsyncIterator[Client]:
    """Connect the ``mcp`` SDK client to ``url``, authorizing with ``auth``.

    Args:
        url: The MCP endpoint.
        auth: The OAuth auth flow (shared state: one login serves every request).
        mode: The SDK's protocol negotiation: ``auto``, ``legacy`` or a modern version.
        timeout_seconds: HTTP timeout per request.
        client_options: Further :class:`mcp.client.client.Client` options (callbacks).

    Yields:
        The connected :class:`mcp.client.client.Client`.

    Example:
        >>> async with open_mcp_client(url, auth) as client:  # doctest: +SKIP
        ...     tools = await client.list_tools()
    """
    async with httpx2.AsyncClient(auth=auth.for_httpx2(), timeout=timeout_seconds) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, raise_exceptions=True, **client_options) as client:
            yield client
