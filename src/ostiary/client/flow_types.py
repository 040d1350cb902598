"""The records and step type the client flow's parts share (MCP authorization, client side).

:class:`~ostiary.client.flow.OAuthFlow` is one class assembled from the driver in
:mod:`ostiary.client.flow` and the steps mixed in from :mod:`ostiary.client.flow_discovery`
and :mod:`ostiary.client.flow_tokens`. What they all speak of (the discovered server, the
grant, a step) lives here, below all three, so none of them imports another.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from ostiary.client._http import HttpRequest, HttpResponse
from ostiary.client.discovery import AuthorizationServerMetadata, ProtectedResourceMetadata

__all__ = [
    "AssertionProvider",
    "Flow",
    "FlowItem",
    "Grant",
    "OriginalRequest",
    "ServerContext",
    "Step",
]

Grant = Literal["authorization_code", "client_credentials", "jwt_bearer"]


@dataclass(frozen=True)
class OriginalRequest:
    """Yielded by the flow: send the request being authenticated with these headers.

    A ``None`` value means "remove the header".
    """

    headers: dict[str, str | None]


@dataclass(frozen=True)
class ServerContext:
    """What discovery found for one MCP server."""

    server_url: str
    resource: str
    prm: ProtectedResourceMetadata
    metadata: AuthorizationServerMetadata

    @property
    def issuer(self) -> str:
        """The validated issuer of the selected authorization server."""
        return self.metadata.issuer


FlowItem = HttpRequest | OriginalRequest
AssertionProvider = Callable[[ServerContext], Awaitable[str]]
"""Returns an RFC 7523 assertion for the MCP server's authorization server."""
#: A flow step yields requests to send or sub-steps to run; ``flow.drive`` flattens them.
Step = AsyncGenerator["HttpRequest | OriginalRequest | Step", HttpResponse]
Flow = AsyncGenerator[FlowItem, HttpResponse]
