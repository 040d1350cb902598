"""OAuth in front of an MCP server that has none: ``ostiary gateway`` (MCP authorization).

The upstream is an HTTP MCP endpoint (reverse-proxied; the verified subject goes up in a
configurable header, the client's token never does) or a stdio command (re-served by an SDK
server; stdio takes no credentials). In front sits the whole resource-server layer of
:func:`~ostiary.resource.mcp_sdk.protect_mcp_app`: RFC 9728 metadata, bearer checks with
audience binding, per-tool scopes as 403 step-up challenges, public tools, CORS and the
Host/Origin guard. The authorization server is embedded (same port, same storage, keys read
in-process) or remote (``issuer``; JWTs verified against its JWKS).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ostiary.gateway.proxy import HttpUpstreamProxy
from ostiary.gateway.stdio import StdioUpstream
from ostiary.resource.forwarding import (
    DEFAULT_SUBJECT_HEADER,
    IdentityHeaders,
    IdentityHeadersMiddleware,
)
from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.verifiers import TokenVerifier

if TYPE_CHECKING:
    from ostiary.assembly.in_process import CombinedApp
    from ostiary.settings import Settings

__all__ = [
    "GatewayOptions",
    "create_embedded_gateway",
    "create_gateway_app",
    "create_remote_gateway",
]

_MCP_METHODS = ["GET", "POST", "DELETE"]


@dataclass(frozen=True)
class GatewayOptions:
    """What the gateway enforces and forwards.

    Attributes:
        required_scopes: Scopes every request needs (named in 401 challenges).
        tool_scopes: Tool name → scopes it needs (403 ``insufficient_scope`` when missing).
        public_tools: Tools callable without a token (needs ``mixed_auth``).
        mixed_auth: Let tokenless clients connect and call ``public_tools``; default: every
            tokenless request gets the 401 challenge.
        hide_unauthorized_tools: Hide from ``tools/list`` what the caller cannot call
            (stdio upstreams only: an HTTP upstream's answers are passed through untouched).
        subject_header: Header carrying the verified subject to an HTTP upstream.
        client_id_header: Header carrying the client id (None: not sent).
        scopes_header: Header carrying the granted scopes (None: not sent).
        cors_origins: Browser origins allowed to call the endpoint.
        upstream_env: Extra environment for a stdio upstream.
    """

    required_scopes: Sequence[str] = ("mcp:read",)
    tool_scopes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    public_tools: Sequence[str] = ()
    mixed_auth: bool = False
    hide_unauthorized_tools: bool = False
    subject_header: str = DEFAULT_SUBJECT_HEADER
    client_id_header: str | None = None
    scopes_header: str | None = "x-ostiary-scopes"
    cors_origins: Sequence[str] = ()
    upstream_env: Mapping[str, str] | None = None


class _WithLifespan:
    """An ASGI app whose lifespan also runs ``around`` (outside the app's own)."""

    def __init__(
        self,
        app: Starlette,
        around: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
    ) -> None:
        self.app = app
        self.around = around
        self.router = self  # CombinedApp reads app.router.lifespan_context
        self.routes = app.routes
        self.state = app.state

    @contextlib.asynccontextmanager
    async def lifespan_context(self, _: Any) -> AsyncIterator[None]:
        async with self.around(), self.app.router.lifespan_context(self.app):
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _serve_lifespan(self.lifespan_context(self.app), receive, send)
            return
        await self.app(scope, receive, send)


async def _serve_lifespan(
    context: contextlib.AbstractAsyncContextManager[None], receive: Receive, send: Send
) -> None:
    await receive()  # lifespan.startup
    started = False
    try:
        async with context:
            await send({"type": "lifespan.startup.complete"})
            started = True
            await receive()  # lifespan.shutdown
    except Exception as exc:
        failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
        await send({"type": failed, "message": repr(exc)})
        raise
    await send({"type": "lifespan.shutdown.complete"})


def create_gateway_app(
    *,
    resource: str,
    issuer: str,
    verifier: TokenVerifier,
    upstream_url: str | None = None,
    command: Sequence[str] | None = None,
    options: GatewayOptions | None = None,
) -> Any:
    """The protected gateway app for one upstream (``upstream_url`` xor ``command``).

    Args:
        resource: The gateway's canonical MCP URL (token audience); MCP is served at its path.
        issuer: The authorization server named in the PRM.
        verifier: Verifies bearer tokens for ``resource``.
        upstream_url: An HTTP MCP endpoint to reverse-proxy.
        command: A stdio MCP server to run and re-serve.
        options: Scopes, public tools, identity headers, CORS.

    Returns:
        An ASGI app (with ``routes``, ``router.lifespan_context`` and ``state``).

    Raises:
        ValueError: Neither or both upstreams given.

    Example:
        >>> # app = create_gateway_app(resource="https://gw.example.com/mcp",
        >>> #     issuer="https://auth.example.com", verifier=verifier,
        >>> #     upstream_url="http://127.0.0.1:9000/mcp")
    """
    if (upstream_url is None) == (command is None):
        raise ValueError("give exactly one upstream: an HTTP URL or a stdio command")
    options = options or GatewayOptions()
    common: dict[str, Any] = {
        "resource": resource,
        "issuer": issuer,
        "verifier": verifier,
        "required_scopes": list(options.required_scopes),
        "tool_scopes": {k: list(v) for k, v in options.tool_scopes.items()},
        "public_tools": list(options.public_tools),
        "mixed_auth": options.mixed_auth,
        "cors_origins": list(options.cors_origins),
        "resource_name": "ostiary gateway",
    }
    if command is not None:
        upstream = StdioUpstream(command, env=options.upstream_env)
        protected = protect_mcp_app(
            upstream.server,
            hide_unauthorized_tools=options.hide_unauthorized_tools,
            streamable_http_options={"stateless_http": True, "json_response": True},
            **common,
        )
        return _WithLifespan(protected, upstream.running)
    assert upstream_url is not None
    proxy = HttpUpstreamProxy(upstream_url)
    identity = IdentityHeaders(
        subject=options.subject_header,
        client_id=options.client_id_header,
        scopes=options.scopes_header,
    )
    forwarding: ASGIApp = IdentityHeadersMiddleware(proxy, identity)
    path = _path_of(resource)
    inner = Starlette(routes=[Route(path, endpoint=forwarding, methods=_MCP_METHODS)])
    protected = protect_mcp_app(inner, **common)

    @contextlib.asynccontextmanager
    async def closing() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await proxy.aclose()

    return _WithLifespan(protected, closing)


def _path_of(resource: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(resource).path or "/"


def create_embedded_gateway(
    settings: Settings,
    *,
    upstream_url: str | None = None,
    command: Sequence[str] | None = None,
    options: GatewayOptions | None = None,
) -> CombinedApp:
    """The gateway at ``{issuer}/mcp`` with the authorization server on the same port.

    Tokens are verified against the embedded AS's key ring in-process.
    """
    from ostiary.assembly.in_process import (
        CombinedApp,
        RevocationCheckingVerifier,
        local_jwt_verifier,
    )
    from ostiary.server.app import create_authorization_server

    authorization_server = create_authorization_server(settings)
    ctx = authorization_server.state.ctx
    resource = f"{settings.issuer}/mcp"
    options = options or GatewayOptions()
    if not options.cors_origins and settings.server.cors_origins:
        options = replace(options, cors_origins=settings.server.cors_origins)
    gateway = create_gateway_app(
        resource=resource,
        issuer=settings.issuer,
        verifier=RevocationCheckingVerifier(ctx, local_jwt_verifier(ctx, resource)),
        upstream_url=upstream_url,
        command=command,
        options=options,
    )
    return CombinedApp(authorization_server, gateway)


def create_remote_gateway(
    *,
    issuer: str,
    resource: str,
    upstream_url: str | None = None,
    command: Sequence[str] | None = None,
    options: GatewayOptions | None = None,
) -> Any:
    """The gateway alone, trusting a remote AS (JWTs checked against its JWKS, discovered
    from its RFC 8414 metadata)."""
    from ostiary.resource.verifiers import JWTVerifier

    return create_gateway_app(
        resource=resource,
        issuer=issuer,
        verifier=JWTVerifier(issuer, resource),
        upstream_url=upstream_url,
        command=command,
        options=options,
    )
