"""The demo MCP server as an OAuth-protected resource (MCP authorization; RFC 9728; RFC 8707).

:func:`create_demo_app` wraps :func:`~ostiary.demo.server.build_demo_server` with
:func:`~ostiary.resource.mcp_sdk.protect_mcp_app`: PRM at the path-inserted well-known URL,
bearer checks with the given verifier (audience = the demo's resource URL), per-tool and
per-resource scopes enforced as HTTP 403 step-up challenges before the SDK runs. Every
tokenless request gets the 401 challenge unless ``mixed_auth`` is on; then the public tools
answer without a token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from starlette.applications import Starlette

from ostiary.core.storage import Storage
from ostiary.demo.server import PUBLIC_TOOLS, DemoScopes, build_demo_server
from ostiary.resource.dpop import DPoPOptions
from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.verifiers import TokenVerifier

__all__ = ["STREAMABLE_HTTP_OPTIONS", "create_demo_app"]

#: Stateless streamable HTTP with JSON responses: MCP 2026-07-28 removed sessions, and a plain
#: JSON answer per POST is what lets any number of processes serve the endpoint.
STREAMABLE_HTTP_OPTIONS: Final[dict[str, Any]] = {"stateless_http": True, "json_response": True}


def create_demo_app(
    storage: Storage,
    tenant: str,
    *,
    resource: str,
    issuer: str,
    verifier: TokenVerifier | None = None,
    clock: Callable[[], int],
    scopes: DemoScopes | None = None,
    hide_unauthorized_tools: bool = False,
    mixed_auth: bool = False,
    cors_origins: Sequence[str] = (),
    count_usage: bool = True,
    dpop: DPoPOptions | bool = True,
) -> Starlette:
    """The protected demo server: MCP at the path of ``resource``, PRM at its well-known URL.

    Args:
        storage: Notes, usage counters and users (initialised by whoever owns it).
        tenant: The storage tenant.
        resource: Canonical MCP endpoint URL (token audience, PRM ``resource``).
        issuer: The authorization server named in the PRM.
        verifier: Verifies bearer tokens for ``resource``; default: ``issuer``'s JWTs (see
            :func:`~ostiary.resource.mcp_sdk.protect_mcp_app`).
        clock: Seconds since the epoch.
        scopes: Read/write scope names (default ``mcp:read`` / ``mcp:write``).
        hide_unauthorized_tools: Drop from ``tools/list`` what the caller cannot call.
        mixed_auth: Tokenless clients may connect, list tools and call the public tools.
        cors_origins: Browser origins allowed to call the MCP endpoint.
        count_usage: Count each ``tools/call`` per subject.
        dpop: DPoP-bound tokens (RFC 9449), as in
            :class:`~ostiary.resource.policy.ProtectionPolicy`.

    Example:
        >>> from ostiary.storage.memory import MemoryStorage
        >>> app = create_demo_app(
        ...     MemoryStorage(),
        ...     "default",
        ...     resource="https://mcp.example.com/mcp",
        ...     issuer="https://auth.example.com",
        ...     clock=lambda: 0,
        ... )
        >>> app.routes[0].path
        '/.well-known/oauth-protected-resource/mcp'
    """
    scopes = scopes or DemoScopes()
    policy = ProtectionPolicy(
        required_scopes=[scopes.read],
        tool_scopes=scopes.tool_scopes(),
        resource_scopes=scopes.resource_scopes(),
        scopes_supported=[scopes.read, scopes.write],
        public_tools=PUBLIC_TOOLS if mixed_auth else (),
        mixed_auth=mixed_auth,
        hide_unauthorized_tools=hide_unauthorized_tools,
        resource_name="ostiary demo MCP server",
        cors_origins=cors_origins,
        dpop=dpop,
    )
    return protect_mcp_app(
        build_demo_server(storage, tenant, clock=clock, scopes=scopes, count_usage=count_usage),
        resource=resource,
        issuer=issuer,
        verifier=verifier,
        policy=policy,
        streamable_http_options=STREAMABLE_HTTP_OPTIONS,
    )
