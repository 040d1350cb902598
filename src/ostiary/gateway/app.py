"""OAuth in front of an MCP server that has none: ``ostiary gateway`` (MCP authorization).

The upstream is an HTTP MCP endpoint (reverse-proxied; the verified subject goes up in a
configurable header, the client's token never does) or a stdio command (re-served by an SDK
server; stdio takes no credentials). In front sits the whole resource-server layer of
:func:`~ostiary.resource.mcp_sdk.protect_mcp_app`: RFC 9728 metadata, bearer checks with
audience binding, per-tool scopes as 403 step-up challenges, public tools, CORS and the
Host/Origin guard. The authorization server is remote (``issuer``; JWTs verified against
its JWKS) or embedded, assembled beside the gateway by :mod:`ostiary.assembly.gateway`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ostiary.errors import ConfigurationError
from ostiary.gateway.proxy import HttpUpstreamProxy
from ostiary.gateway.stdio import StdioUpstream
from ostiary.resource.forwarding import (
    DEFAULT_SUBJECT_HEADER,
    IdentityHeaders,
    IdentityHeadersMiddleware,
)
from ostiary.resource.mcp_sdk import protect_asgi_app, protect_mcp_app
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.verifiers import TokenVerifier

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_GATEWAY_POLICY",
    "GatewayOptions",
    "create_gateway_app",
    "create_remote_gateway",
]

_MCP_METHODS = ["GET", "POST", "DELETE"]


@dataclass(frozen=True)
class GatewayOptions:
    """What the gateway forwards upstream. Access rules (scopes, public tools, CORS, DPoP)
    are the :class:`~ostiary.resource.policy.ProtectionPolicy`, as for any protected app.

    Attributes:
        subject_header: Header carrying the verified subject to an HTTP upstream.
        client_id_header: Header carrying the client id (None: not sent).
        scopes_header: Header carrying the granted scopes (None: not sent).
        upstream_env: Extra environment for a stdio upstream.
    """

    subject_header: str = DEFAULT_SUBJECT_HEADER
    client_id_header: str | None = None
    scopes_header: str | None = "x-ostiary-scopes"
    upstream_env: Mapping[str, str] | None = None


#: The gateway's policy when none is given: every request needs ``mcp:read``.
DEFAULT_GATEWAY_POLICY: Final = ProtectionPolicy(required_scopes=("mcp:read",))


def _gateway_policy(policy: ProtectionPolicy | None, *, http_upstream: bool) -> ProtectionPolicy:
    """``policy`` (or the default) named for the PRM, checked against the upstream kind.

    Raises:
        ConfigurationError: ``hide_unauthorized_tools`` with an HTTP upstream, whose answers
            pass through untouched (nothing could be hidden).
    """
    policy = policy or DEFAULT_GATEWAY_POLICY
    if http_upstream and policy.hide_unauthorized_tools:
        raise ConfigurationError(
            "hide_unauthorized_tools needs a stdio upstream: an HTTP upstream's tools/list "
            "passes through the gateway untouched"
        )
    if policy.resource_name is None:
        policy = replace(policy, resource_name="ostiary gateway")
    return policy


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
    verifier: TokenVerifier | None = None,
    upstream_url: str | None = None,
    command: Sequence[str] | None = None,
    policy: ProtectionPolicy | None = None,
    options: GatewayOptions | None = None,
) -> Any:
    """The protected gateway app for one upstream (``upstream_url`` xor ``command``).

    Args:
        resource: The gateway's canonical MCP URL (token audience); MCP is served at its path.
        issuer: The authorization server named in the PRM.
        verifier: Verifies bearer tokens for ``resource``; default: ``issuer``'s JWTs,
            checked against its JWKS. One given must agree with ``issuer`` and ``resource``.
        upstream_url: An HTTP MCP endpoint to reverse-proxy.
        command: A stdio MCP server to run and re-serve.
        policy: Scopes, public tools, CORS, DPoP; default :data:`DEFAULT_GATEWAY_POLICY`.
        options: Identity headers and the stdio upstream's environment.

    Returns:
        An ASGI app (with ``routes``, ``router.lifespan_context`` and ``state``).

    Raises:
        ValueError: Neither or both upstreams given.
        ConfigurationError: The policy or verifier does not fit (see
            :func:`~ostiary.resource.mcp_sdk.protect_mcp_app`).

    Example:
        >>> app = create_gateway_app(
        ...     resource="https://gw.example.com/mcp",
        ...     issuer="https://auth.example.com",
        ...     upstream_url="http://127.0.0.1:9000/mcp",
        ...     policy=ProtectionPolicy(tool_scopes={"delete_file": ["files:write"]}),
        ... )
        >>> [route.path for route in app.routes][-1]
        '/mcp'
    """
    if (upstream_url is None) == (command is None):
        raise ValueError("give exactly one upstream: an HTTP URL or a stdio command")
    policy = _gateway_policy(policy, http_upstream=upstream_url is not None)
    options = options or GatewayOptions()
    if command is not None:
        upstream = StdioUpstream(command, env=options.upstream_env)
        protected = protect_mcp_app(
            upstream.server,
            resource=resource,
            issuer=issuer,
            verifier=verifier,
            policy=policy,
            streamable_http_options={"stateless_http": True, "json_response": True},
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
    protected = protect_asgi_app(
        inner, resource=resource, issuer=issuer, verifier=verifier, policy=policy
    )

    @contextlib.asynccontextmanager
    async def closing() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await proxy.aclose()

    return _WithLifespan(protected, closing)


def _path_of(resource: str) -> str:
    return urlsplit(resource).path or "/"


def create_remote_gateway(
    *,
    issuer: str,
    resource: str,
    upstream_url: str | None = None,
    command: Sequence[str] | None = None,
    policy: ProtectionPolicy | None = None,
    options: GatewayOptions | None = None,
) -> Any:
    """The gateway alone, trusting a remote AS (JWTs checked against its JWKS, discovered
    from its RFC 8414 metadata)."""
    return create_gateway_app(
        resource=resource,
        issuer=issuer,
        upstream_url=upstream_url,
        command=command,
        policy=policy,
        options=options,
    )
