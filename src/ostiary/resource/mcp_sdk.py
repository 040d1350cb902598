"""Protect an official ``mcp`` SDK server with ostiary (MCP authorization; RFC 9728; RFC 6750).

:func:`protect_mcp_app` takes an ``MCPServer`` (or low-level ``Server``, or any ASGI app) and
returns one Starlette app that serves:

* the RFC 9728 protected resource metadata at its well-known path(s);
* the streamable-HTTP MCP endpoint behind :class:`BearerAuthMiddleware`, with per-tool scope
  requirements enforced as HTTP 403 step-up challenges *before* the SDK sees the request.

**Challenge at connect** is the default: every MCP request without a token, ``initialize``
and ``tools/list`` included, gets the 401 challenge (``resource_metadata`` and ``scope``).
Most MCP clients (Claude Code, Codex, ``mcp-remote``, CLIs built on the TypeScript SDK)
decide at connect time whether a server needs OAuth; a server that lets them connect without
a token is taken as one that needs none, and they never log in or keep their tokens.
**Mixed auth** (``ProtectionPolicy(mixed_auth=True)``) is the explicit mode for connectors
that call some tools without a token (ChatGPT-style ``securitySchemes`` with ``noauth``): a
tokenless client may initialize, list tools and call ``public_tools``; every other call gets
a per-tool challenge.

A stateless endpoint (the SDK's ``stateless_http``, the 2026-07-28 wire) answers ``GET`` and
``DELETE`` with 405 and ``Allow: POST`` whatever the credentials (MCP streamable HTTP: a
server that offers no stream "MUST" answer 405): a stream that can never carry a message is
never opened.

For SDK servers it also installs a server middleware
(:class:`~ostiary.resource.tool_authorization.ToolAuthorization`, re-exported here) that

* advertises each tool's ``securitySchemes`` in ``_meta`` (``[{"type": "oauth2", "scopes":
  [...]}]``), the way ChatGPT-style clients read them;
* optionally hides from ``tools/list`` the tools the caller's token cannot use;
* turns an authorization failure raised inside tool code (see :func:`require_scopes`) into an
  error result carrying ``_meta["mcp/www_authenticate"]`` with the challenge.

The authenticated principal reaches tool code through :func:`current_principal`, through
``ctx.request.user`` / ``ctx.request.state.principal``, and through the SDK's own
``get_access_token()`` (whose ``token`` is deliberately empty: MCP forbids passing the
client's token to anything else).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from ostiary.errors import ConfigurationError
from ostiary.resource.concurrency import PerAddressConcurrency
from ostiary.resource.cors import (
    OriginGuardMiddleware,
    default_allowed_hosts,
    default_allowed_origins,
    mcp_cors,
)
from ostiary.resource.metadata import (
    build_protected_resource_metadata,
    protected_resource_metadata_routes,
    protected_resource_metadata_url,
)
from ostiary.resource.middleware import BearerAuthMiddleware
from ostiary.resource.policy import (
    ProtectionPolicy,
    ServerNames,
    default_verifier,
    validate_names,
    validate_verifier,
)
from ostiary.resource.scopes import (
    McpPublicAccess,
    McpToolScopeGuard,
    ResourcePolicy,
    ScopePolicy,
    ToolPolicy,
)
from ostiary.resource.stateless import StatelessMethods
from ostiary.resource.tool_authorization import (
    SECURITY_SCHEMES_META_KEY,
    WWW_AUTHENTICATE_META_KEY,
    ToolAuthorization,
    require_scopes,
)
from ostiary.resource.verifiers import Principal, TokenVerifier

__all__ = [
    "SECURITY_SCHEMES_META_KEY",
    "WWW_AUTHENTICATE_META_KEY",
    "McpPrincipalUser",
    "ProtectionPolicy",
    "ToolAuthorization",
    "protect_asgi_app",
    "protect_mcp_app",
    "require_scopes",
    "tool_authorization",
]


class McpPrincipalUser(AuthenticatedUser):
    """The SDK's user type, so its session ownership and ``get_access_token()`` work.

    The SDK ``AccessToken`` is built on first use only: stateless requests never need it, and
    a pydantic model per request is measurable on the hot path.

    Attributes:
        principal: The ostiary principal.
    """

    def __init__(self, principal: Principal) -> None:  # super().__init__ would build it now
        self.principal = principal
        self.username = principal.client_id
        self.scopes = list(principal.scopes)

    @functools.cached_property
    def access_token(self) -> AccessToken:  # type: ignore[override]
        """The principal as the SDK's ``AccessToken`` (``token`` empty: no passthrough)."""
        principal = self.principal
        return AccessToken(
            token="",  # never exposed: no token passthrough (MCP security best practices)
            client_id=principal.client_id,
            scopes=list(principal.scopes),
            expires_at=principal.expires_at,
            resource=principal.audience[0] if principal.audience else None,
            subject=principal.subject,
            claims=dict(principal.claims),
        )

    @property
    def display_name(self) -> str:
        """The subject (the SDK's default is the client id)."""
        return self.principal.subject


def _is_sdk_server(obj: object) -> bool:
    return isinstance(obj, MCPServer | Server)


def _inner_app(
    server_or_app: Any, mcp_path: str, resource: str, options: Mapping[str, Any]
) -> ASGIApp:
    if not _is_sdk_server(server_or_app):
        return server_or_app  # type: ignore[no-any-return]
    kwargs: dict[str, Any] = {"streamable_http_path": mcp_path, **options}
    # The SDK turns on localhost-only Host checks for host=127.0.0.1; name the real host so a
    # public resource is not refused, and a loopback one keeps the DNS-rebinding guard.
    kwargs.setdefault("host", urlsplit(resource).hostname or "127.0.0.1")
    return server_or_app.streamable_http_app(**kwargs)  # type: ignore[no-any-return]


def protect_mcp_app(
    mcp_server_or_app: Any,
    *,
    resource: str,
    issuer: str | Sequence[str],
    verifier: TokenVerifier | None = None,
    policy: ProtectionPolicy | None = None,
    streamable_http_options: Mapping[str, Any] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Serve an MCP SDK server over streamable HTTP as an OAuth-protected resource.

    ``resource`` and ``issuer`` are enough: tokens are then RFC 9068 JWTs checked against
    the issuer's JWKS (found through its RFC 8414 metadata) with ``resource`` as audience.

    Args:
        mcp_server_or_app: An ``MCPServer``/``Server`` (its streamable-HTTP app is built at
            the path of ``resource``), or any ASGI app serving MCP (then no tool metadata,
            and the scope maps' names are not checked).
        resource: Canonical MCP endpoint URL, e.g. ``https://mcp.example.com/mcp``; the token
            audience and the PRM ``resource``.
        issuer: Authorization server issuer URL(s) for the PRM.
        verifier: Token verifier; default: a :class:`~ostiary.resource.verifiers.JWTVerifier`
            for ``issuer`` (there must be one) and ``resource``. One given must agree with
            both where it states them (its ``issuer`` and ``audience``).
        policy: Scopes, mixed auth, DPoP, CORS, stream bounds and PRM names (a
            :class:`~ostiary.resource.policy.ProtectionPolicy`); default: every request needs
            a valid token and nothing more.
        streamable_http_options: Passed to the SDK's ``streamable_http_app`` (an SDK server
            only); ``{"stateless_http": True}`` also makes the endpoint stateless.
        extra_routes: Further unprotected routes (health checks, ...), matched first.

    Returns:
        A Starlette app whose lifespan runs the SDK's session manager, after checking that
        every tool, prompt and resource the policy names exists on an ``MCPServer``.

    Raises:
        ConfigurationError: The ``MCPServer`` has SDK auth configured; the verifier's issuer
            or audience disagrees with ``issuer``/``resource``; no verifier and several
            issuers; ``policy.dpop`` is for another resource; the metadata is invalid (no
            issuer, bad ``resource``). At start-up (lifespan): a scope map names a tool,
            prompt or resource the server does not have.

    Example:
        >>> from mcp.server.mcpserver import MCPServer
        >>> from ostiary.resource.policy import ProtectionPolicy
        >>> mcp = MCPServer("demo")
        >>> @mcp.tool()
        ... def create_note(text: str) -> str:
        ...     return "saved"
        >>> app = protect_mcp_app(
        ...     mcp,
        ...     resource="https://mcp.example.com/mcp",
        ...     issuer="https://auth.example.com",
        ...     policy=ProtectionPolicy(
        ...         required_scopes=["mcp:read"], tool_scopes={"create_note": ["mcp:write"]}
        ...     ),
        ... )
        >>> [route.path for route in app.routes]  # doctest: +NORMALIZE_WHITESPACE
        ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource',
         '/mcp']
    """
    if isinstance(mcp_server_or_app, MCPServer) and mcp_server_or_app.settings.auth is not None:
        # Two bearer layers would disagree on challenges and audience rules.
        raise ConfigurationError("create the MCPServer without auth=; ostiary protects it")
    policy = policy or ProtectionPolicy()
    options = dict(streamable_http_options or {})
    sdk = _is_sdk_server(mcp_server_or_app)
    if sdk:
        metadata_url = protected_resource_metadata_url(resource)
        mcp_server_or_app.middleware.append(tool_authorization(policy, metadata_url))
    if policy.stateless is None:
        policy = replace(policy, stateless=sdk and bool(options.get("stateless_http", False)))
    inner = _inner_app(mcp_server_or_app, urlsplit(resource).path or "/", resource, options)
    return protect_asgi_app(
        inner,
        resource=resource,
        issuer=issuer,
        verifier=verifier,
        policy=policy,
        extra_routes=extra_routes,
        server_names=functools.partial(_sdk_names, mcp_server_or_app),
    )


def tool_authorization(policy: ProtectionPolicy, metadata_url: str) -> ToolAuthorization:
    """The tool-level decisions (``securitySchemes``, hiding, in-result challenges) for
    ``policy``; the SDK and FastMCP middlewares both run on it."""
    return ToolAuthorization(
        ToolPolicy(policy.tool_scopes),
        ScopePolicy(policy.scope_hierarchy),
        tuple(policy.required_scopes),
        metadata_url,
        policy.hide_unauthorized_tools,
        public_tools=frozenset(policy.public_tools),
    )


async def _sdk_names(server: Any) -> ServerNames | None:
    """What an ``MCPServer`` has (None for anything else: it cannot say)."""
    if not isinstance(server, MCPServer):
        return None
    resources = {str(r.uri) for r in server._resource_manager.list_resources()}
    templates = {t.uri_template for t in server._resource_manager.list_templates()}
    return ServerNames(
        tools=frozenset(t.name for t in server._tool_manager.list_tools()),
        prompts=frozenset(p.name for p in server._prompt_manager.list_prompts()),
        resources=frozenset(resources | templates),
    )


async def _no_names() -> ServerNames | None:
    return None


def protect_asgi_app(
    inner: ASGIApp,
    *,
    resource: str,
    issuer: str | Sequence[str],
    verifier: TokenVerifier | None = None,
    policy: ProtectionPolicy | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    server_names: Callable[[], Awaitable[ServerNames | None]] = _no_names,
) -> Starlette:
    """Put the resource-server layer in front of an ASGI app that serves MCP at the path of
    ``resource`` (what :func:`protect_mcp_app`, the FastMCP adapter and the gateway share).

    Args:
        inner: The MCP app (its routes are lifted into the returned app when they are plain
            Starlette routes; anything else is mounted whole).
        resource: See :func:`protect_mcp_app`.
        issuer: See :func:`protect_mcp_app`.
        verifier: See :func:`protect_mcp_app`.
        policy: See :func:`protect_mcp_app`; ``stateless`` None means False here.
        extra_routes: Further unprotected routes, matched first.
        server_names: Says what the server has, awaited when the app starts; None (the
            default): not checked.

    Raises:
        ConfigurationError: As :func:`protect_mcp_app`.
    """
    policy = policy or ProtectionPolicy()
    issuers = [issuer] if isinstance(issuer, str) else list(issuer)
    if verifier is None:
        verifier = default_verifier(resource, issuers)
    else:
        validate_verifier(verifier, resource, issuers)
    scope_policy = ScopePolicy(policy.scope_hierarchy)
    required = tuple(policy.required_scopes)
    document = build_protected_resource_metadata(
        resource,
        issuers,
        policy.declared_scopes(),
        resource_name=policy.resource_name,
        resource_documentation=policy.resource_documentation,
    )
    dpop_options = policy.dpop_options(resource)
    if dpop_options is not None and dpop_options.advertise:
        # RFC 9728 §2: the proof algorithms this resource accepts.
        document["dpop_signing_alg_values_supported"] = list(dpop_options.algorithms)
    metadata_url = protected_resource_metadata_url(resource)
    # Always installed, scopes or not: every POST body is read once by the one bounded JSON
    # reader (ostiary.jsonbody) before the MCP server parses it, so a hostile body gets a
    # JSON-RPC parse error here instead of a RecursionError there.
    guards = [
        McpToolScopeGuard(
            ToolPolicy(policy.tool_scopes),
            scope_policy,
            endpoint_scopes=required,
            prompts=ToolPolicy(policy.prompt_scopes),
            resources=ResourcePolicy(policy.resource_scopes),
        )
    ]
    anonymous = McpPublicAccess(policy.public_tools) if policy.mixed_auth else None
    cors_origins = policy.cors_origins
    origins = default_allowed_origins(resource, cors_origins)
    hosts = (
        default_allowed_hosts(resource) if policy.allowed_hosts is None else policy.allowed_hosts
    )

    def protect(app: ASGIApp) -> ASGIApp:
        """Bearer check (+ CORS, + Host/Origin guard) in front of one MCP app."""
        endpoint: ASGIApp = BearerAuthMiddleware(
            AuthContextMiddleware(app),
            verifier=verifier,
            resource_metadata_url=metadata_url,
            required_scopes=required,
            scope_policy=scope_policy,
            guards=guards,
            exempt_paths=policy.exempt_paths,
            user_factory=McpPrincipalUser,
            anonymous=anonymous,
            dpop=dpop_options,
        )
        if policy.stateless:
            endpoint = StatelessMethods(endpoint)
        else:  # event streams stay open: bound them per address (429 past the bound)
            endpoint = PerAddressConcurrency(
                endpoint, limit=policy.max_streams_per_address, methods=("GET",)
            )
        if cors_origins:
            endpoint = mcp_cors(endpoint, cors_origins)
        if policy.dns_rebinding_protection:
            endpoint = OriginGuardMiddleware(endpoint, allowed_hosts=hosts, allowed_origins=origins)
        return endpoint

    # Metadata first: a whole-app Mount("") would otherwise shadow the well-known routes.
    routes: list[BaseRoute] = [
        *protected_resource_metadata_routes(document, include_root=policy.include_root_metadata),
        *extra_routes,
        *_protected_routes(inner, protect),
    ]

    async def check() -> None:
        names = await server_names()
        if names is not None:
            validate_names(policy, names)

    return Starlette(routes=routes, lifespan=_lifespan_of(inner, check))


def _protected_routes(inner: ASGIApp, protect: Callable[[ASGIApp], ASGIApp]) -> list[BaseRoute]:
    """The inner app's routes, each behind ``protect``.

    An SDK app is a Starlette app with plain routes; lifting them into the outer app (instead
    of mounting the inner app whole) saves one router and two middleware layers per request.
    Anything else is mounted whole, still protected.
    """
    routes = getattr(inner, "routes", None)
    if isinstance(inner, Starlette) and routes and all(type(r) is Route for r in routes):
        return [
            Route(r.path, endpoint=protect(r.app), methods=r.methods and sorted(r.methods))
            for r in routes
        ]
    return [Mount("", app=protect(inner))]


def _lifespan_of(
    inner: ASGIApp, check: Callable[[], Awaitable[None]]
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """Run the inner app's lifespan (the SDK's session manager) inside ours, after
    ``check`` (a configuration that fails it never serves)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await check()
        router = getattr(inner, "router", None)
        context = getattr(router, "lifespan_context", None)
        if context is None:
            yield
            return
        async with context(inner):
            yield

    return lifespan
