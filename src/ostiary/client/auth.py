"""OAuth for MCP clients as an httpx / httpx2 auth flow (MCP authorization; RFC 6750 §2.1).

:class:`OAuthClientAuth` plugs the transport-neutral :class:`~ostiary.client.flow.OAuthFlow`
into ``httpx.AsyncClient(auth=...)``. The official ``mcp`` SDK talks HTTP through the
``httpx2`` fork, whose ``Auth`` base class is a different class with the same generator
protocol; :meth:`OAuthClientAuth.for_httpx2` returns an adapter for it that shares the same
flow (tokens, registration, lock), so one login serves both clients.

Example:
    >>> from ostiary.client.callback import PasteCallback
    >>> config = ClientConfig(client_name="demo")
    >>> auth = OAuthClientAuth(config, callback=PasteCallback())
    >>> http = httpx.AsyncClient(auth=auth)  # the first 401 starts discovery and login
    >>> http.post("https://mcp.example.com/mcp", json={})  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Protocol

import httpx
import httpx2

from ostiary.client._http import HttpRequest, HttpResponse
from ostiary.client.authorization import AuthorizationCallback
from ostiary.client.flow import AssertionProvider, Grant, OAuthFlow, OriginalRequest
from ostiary.client.registration import ClientConfig
from ostiary.client.token_store import TokenStore

__all__ = ["OAuthClientAuth", "OAuthClientAuthHttpx2"]


class _AnyResponse(Protocol):
    status_code: int

    @property
    def headers(self) -> Any: ...

    @property
    def content(self) -> bytes: ...

    async def aread(self) -> bytes: ...


def _neutral(response: _AnyResponse, body: bytes) -> HttpResponse:
    headers = {name.lower(): value for name, value in response.headers.items()}
    challenges = tuple(response.headers.get_list("www-authenticate"))
    return HttpResponse(response.status_code, headers, body, challenges)


class OAuthClientAuth(httpx.Auth):
    """An ``httpx.Auth`` that authorizes requests to an OAuth-protected MCP server.

    Args:
        client: The client's own configuration (name, redirect URIs, credentials).
        callback: ``async (authorization_url) -> CallbackResult``: gets the user through
            the authorization page (browser + loopback, paste, or headless follow).
        store: Token and registration store; in memory by default.
        server_url: The MCP server URL; defaults to the first request's URL.
        grant: ``authorization_code``, ``client_credentials`` or ``jwt_bearer``.
        assertion_provider: The assertion source for ``jwt_bearer``.
        flow: An existing flow to share (then the other arguments are ignored).
    """

    requires_request_body = True

    def __init__(
        self,
        client: ClientConfig | None = None,
        *,
        callback: AuthorizationCallback | None = None,
        store: TokenStore | None = None,
        server_url: str | None = None,
        grant: Grant = "authorization_code",
        assertion_provider: AssertionProvider | None = None,
        flow: OAuthFlow | None = None,
    ) -> None:
        self.flow = flow or OAuthFlow(
            client,
            callback=callback,
            store=store,
            server_url=server_url,
            grant=grant,
            assertion_provider=assertion_provider,
        )

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Not supported: the flow awaits storage and the user; use ``httpx.AsyncClient``."""
        raise RuntimeError("OAuthClientAuth needs httpx.AsyncClient")
        yield request  # pragma: no cover - makes this a generator

    def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Drive :meth:`OAuthFlow.handle` with httpx requests and responses."""
        return _drive(self.flow, request, _to_httpx)

    def for_httpx2(self) -> OAuthClientAuthHttpx2:
        """The same flow as an ``httpx2.Auth``, for the ``mcp`` SDK's HTTP client."""
        return OAuthClientAuthHttpx2(self.flow)


class OAuthClientAuthHttpx2(httpx2.Auth):
    """:class:`OAuthClientAuth` for ``httpx2`` clients (the ``mcp`` SDK's transport).

    Example:
        >>> from mcp.client.streamable_http import streamable_http_client
        >>> auth = OAuthClientAuth(ClientConfig(client_name="demo"))
        >>> http = httpx2.AsyncClient(auth=auth.for_httpx2())
        >>> url = "https://mcp.example.com/mcp"
        >>> streamable_http_client(url, http_client=http)  # doctest: +SKIP
    """

    requires_request_body = True

    def __init__(self, flow: OAuthFlow) -> None:
        self.flow = flow

    def sync_auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        """Not supported: use ``httpx2.AsyncClient``."""
        raise RuntimeError("OAuthClientAuthHttpx2 needs httpx2.AsyncClient")
        yield request  # pragma: no cover - makes this a generator

    def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """Drive :meth:`OAuthFlow.handle` with httpx2 requests and responses."""
        return _drive(self.flow, request, _to_httpx2)


async def _drive(
    flow_source: OAuthFlow, request: Any, convert: Callable[[Any], Any]
) -> AsyncGenerator[Any, Any]:
    """The auth-flow generator for either HTTP library: ``convert`` builds its side requests.

    The original request is re-sent with the flow's headers; side requests (discovery,
    registration, token) are built by ``convert`` and their bodies read before the flow
    sees them.
    """
    flow = flow_source.handle(str(request.url), request.method)
    try:
        item = await flow.__anext__()
        while True:
            if isinstance(item, OriginalRequest):
                _set_headers(request.headers, item.headers)
                response = yield request
                neutral = _neutral(response, b"")
            else:
                side = yield convert(item)
                neutral = _neutral(side, await side.aread())
            item = await flow.asend(neutral)
    except StopAsyncIteration:
        return
    finally:
        await flow.aclose()


def _set_headers(headers: Any, values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value


def _to_httpx(item: HttpRequest) -> httpx.Request:
    return httpx.Request(item.method, item.url, headers=item.headers, content=item.body or None)


def _to_httpx2(item: HttpRequest) -> httpx2.Request:
    return httpx2.Request(item.method, item.url, headers=item.headers, content=item.body or None)
