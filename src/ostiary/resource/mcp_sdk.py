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
**Mixed auth** (``mixed_auth=True``) is the explicit mode for connectors that call some tools
without a token (ChatGPT-style ``securitySchemes`` with ``noauth``): a tokenless client may
initialize, list tools and call ``public_tools``; every other call gets a per-tool challenge.

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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
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
from ostiary.resource.dpop import DPoPOptions
from ostiary.resource.metadata import (
    build_protected_resource_metadata,
    protected_resource_metadata_routes,
    protected_resource_metadata_url,
)
from ostiary.resource.middleware import BearerAuthMiddleware
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
    check_public_tools,
    require_scopes,
)
from ostiary.resource.verifiers import Principal, TokenVerifier

__all__ = [
    "SECURITY_SCHEMES_META_KEY",
    "WWW_AUTHENTICATE_META_KEY",
    "McpPrincipalUser",
    "ToolAuthorization",
    "protect_mcp_app",
    "require_scopes",
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
    verifier: TokenVerifier,
    tool_scopes: Mapping[str, Sequence[str]] | None = None,
    required_scopes: Sequence[str] = (),
    scopes_supported: Sequence[str] | None = None,
    scope_hierarchy: Mapping[str, Sequence[str]] | None = None,
    hide_unauthorized_tools: bool = False,
    resource_name: str | None = None,
    resource_documentation: str | None = None,
    include_root_metadata: bool = True,
    exempt_paths: Sequence[str] = (),
    streamable_http_options: Mapping[str, Any] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    cors_origins: Sequence[str] = (),
    allowed_hosts: Sequence[str] | None = None,
    dns_rebinding_protection: bool = True,
    public_tools: Sequence[str] = (),
    resource_scopes: Mapping[str, Sequence[str]] | None = None,
    prompt_scopes: Mapping[str, Sequence[str]] | None = None,
    mixed_auth: bool = False,
    stateless: bool | None = None,
    dpop: DPoPOptions | bool = True,
    max_streams_per_address: int = 8,
) -> Starlette:
    """Serve an MCP SDK server over streamable HTTP as an OAuth-protected resource.

    Args:
        mcp_server_or_app: An ``MCPServer``/``Server`` (its streamable-HTTP app is built at
            the path of ``resource``), or any ASGI app serving MCP (then no tool metadata).
        resource: Canonical MCP endpoint URL, e.g. ``https://mcp.example.com/mcp``; the token
            audience and the PRM ``resource``.
        issuer: Authorization server issuer URL(s) for the PRM.
        verifier: Token verifier bound to ``resource``.
        tool_scopes: Tool name → scopes it needs (403 ``insufficient_scope`` when missing).
        required_scopes: Scopes every request needs; also named in 401 challenges.
        scopes_supported: PRM ``scopes_supported``; default: required and tool scopes.
        scope_hierarchy: ``{"mcp:write": ["mcp:read"]}``: broader scope implies narrower.
        hide_unauthorized_tools: Hide from ``tools/list`` tools the caller cannot call.
        resource_name: PRM ``resource_name``.
        resource_documentation: PRM ``resource_documentation``.
        include_root_metadata: Also serve PRM at ``/.well-known/oauth-protected-resource``.
        exempt_paths: Paths served without a token.
        streamable_http_options: Passed to the SDK's ``streamable_http_app``.
        extra_routes: Further unprotected routes (health checks, ...), matched first.
        cors_origins: Browser origins allowed to call the MCP endpoint (CORS + Origin check).
        allowed_hosts: ``Host`` values accepted; default: the resource's host (and every
            loopback name for a loopback resource).
        dns_rebinding_protection: Check ``Host`` and ``Origin`` (403 on a foreign Origin).
        public_tools: Tools callable without a token (advertised ``noauth``); needs
            ``mixed_auth=True``.
        resource_scopes: Resource URI or template (``user://notes/{id}``) → scopes needed
            to read it (403 ``insufficient_scope`` when missing).
        prompt_scopes: Prompt name → scopes needed to get it.
        mixed_auth: Let a tokenless client initialize, list tools and call ``public_tools``
            (anything else gets the challenge). Choose it only for clients that handle a
            per-tool challenge after connecting without a token; the default challenges
            every tokenless request, which is what clients deciding at connect time need.
        stateless: The endpoint keeps no sessions, so ``GET``/``DELETE`` answer 405.
            Default: ``stateless_http`` in ``streamable_http_options`` for an SDK server;
            False for any other ASGI app.
        dpop: DPoP-bound tokens (``Authorization: DPoP`` + proof, RFC 9449 §7). True (the
            default) accepts them with an in-process replay cache and answers only DPoP
            requests with a ``DPoP`` challenge; a :class:`DPoPOptions` sets the replay cache
            (the storage, shared by every node), nonces and whether every 401 advertises
            ``DPoP``; False refuses the scheme. A DPoP-bound token sent as ``Bearer`` is
            refused either way.
        max_streams_per_address: Event streams (``GET``) one client address may hold open
            on a stateful endpoint; the next gets 429. 0: no bound.

    Returns:
        A Starlette app whose lifespan runs the SDK's session manager.

    Raises:
        ConfigurationError: The ``MCPServer`` has SDK auth configured, ``public_tools``
            without ``mixed_auth``, or the metadata is invalid (no issuer, bad ``resource``).

    Example:
        >>> from mcp.server.mcpserver import MCPServer
        >>> from ostiary.resource.verifiers import JWTVerifier
        >>> mcp = MCPServer("demo")
        >>> app = protect_mcp_app(
        ...     mcp,
        ...     resource="https://mcp.example.com/mcp",
        ...     issuer="https://auth.example.com",
        ...     verifier=JWTVerifier("https://auth.example.com", "https://mcp.example.com/mcp",
        ...                          "https://auth.example.com/.well-known/jwks.json"),
        ...     tool_scopes={"create_note": ["mcp:write"]},
        ... )
    """
    if isinstance(mcp_server_or_app, MCPServer) and mcp_server_or_app.settings.auth is not None:
        # Two bearer layers would disagree on challenges and audience rules.
        raise ConfigurationError("create the MCPServer without auth=; ostiary protects it")
    check_public_tools(public_tools, mixed_auth=mixed_auth)
    issuers = [issuer] if isinstance(issuer, str) else list(issuer)
    tools = ToolPolicy(dict(tool_scopes or {}))
    policy = ScopePolicy(dict(scope_hierarchy or {}))
    required = tuple(required_scopes)
    if scopes_supported is None:
        declared = [*(tool_scopes or {}).values(), *(resource_scopes or {}).values()]
        scopes_supported = [*required, *(s for v in declared for s in v)]
    document = build_protected_resource_metadata(
        resource,
        issuers,
        scopes_supported,
        resource_name=resource_name,
        resource_documentation=resource_documentation,
    )
    dpop_options = DPoPOptions(resource, advertise=False) if dpop is True else dpop or None
    if dpop_options is not None and dpop_options.advertise:
        # RFC 9728 §2: the proof algorithms this resource accepts.
        document["dpop_signing_alg_values_supported"] = list(dpop_options.algorithms)
    metadata_url = protected_resource_metadata_url(resource)
    if _is_sdk_server(mcp_server_or_app):
        mcp_server_or_app.middleware.append(
            ToolAuthorization(
                tools,
                policy,
                required,
                metadata_url,
                hide_unauthorized_tools,
                public_tools=frozenset(public_tools) if mixed_auth else frozenset(),
            )
        )
    if stateless is None:
        stateless = _sdk_stateless(mcp_server_or_app, streamable_http_options or {})
    inner = _inner_app(
        mcp_server_or_app, urlsplit(resource).path or "/", resource, streamable_http_options or {}
    )
    resources = ResourcePolicy(dict(resource_scopes or {}))
    prompts = ToolPolicy(dict(prompt_scopes or {}))
    # Always installed, scopes or not: every POST body is read once by the one bounded JSON
    # reader (ostiary.jsonbody) before the MCP server parses it, so a hostile body gets a
    # JSON-RPC parse error here instead of a RecursionError there.
    guards = [
        McpToolScopeGuard(
            tools, policy, endpoint_scopes=required, prompts=prompts, resources=resources
        )
    ]
    anonymous = McpPublicAccess(public_tools) if mixed_auth else None
    origins = default_allowed_origins(resource, cors_origins)
    hosts = default_allowed_hosts(resource) if allowed_hosts is None else allowed_hosts

    def protect(app: ASGIApp) -> ASGIApp:
        """Bearer check (+ CORS, + Host/Origin guard) in front of one MCP app."""
        endpoint: ASGIApp = BearerAuthMiddleware(
            AuthContextMiddleware(app),
            verifier=verifier,
            resource_metadata_url=metadata_url,
            required_scopes=required,
            scope_policy=policy,
            guards=guards,
            exempt_paths=exempt_paths,
            user_factory=McpPrincipalUser,
            anonymous=anonymous,
            dpop=dpop_options,
        )
        if stateless:
            endpoint = StatelessMethods(endpoint)
        else:  # event streams stay open: bound them per address (429 past the bound)
            endpoint = PerAddressConcurrency(
                endpoint, limit=max_streams_per_address, methods=("GET",)
            )
        if cors_origins:
            endpoint = mcp_cors(endpoint, cors_origins)
        if dns_rebinding_protection:
            endpoint = OriginGuardMiddleware(endpoint, allowed_hosts=hosts, allowed_origins=origins)
        return endpoint

    # Metadata first: a whole-app Mount("") would otherwise shadow the well-known routes.
    routes: list[BaseRoute] = [
        *protected_resource_metadata_routes(document, include_root=include_root_metadata),
        *extra_routes,
        *_protected_routes(inner, protect),
    ]
    named = _NamedScopes(mcp_server_or_app, dict(tool_scopes or {}), dict(prompt_scopes or {}))
    return Starlette(routes=routes, lifespan=_lifespan_of(inner, named.check))


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


def _sdk_stateless(server_or_app: Any, options: Mapping[str, Any]) -> bool:
    """Whether the SDK app built for ``server_or_app`` keeps no sessions."""
    return _is_sdk_server(server_or_app) and bool(options.get("stateless_http", False))


class _NamedScopes:
    """Scope maps must name tools and prompts the server has (checked when the app starts).

    A misspelt key would otherwise leave the real tool with only the endpoint's scopes: a
    tool meant for ``mcp:write`` callable with ``mcp:read``. Tools are usually registered
    after :func:`protect_mcp_app` is called, so the check waits for the lifespan. Only an
    ``MCPServer`` says what it has; other apps (a gateway's upstream) are not checked.
    """

    def __init__(
        self,
        server: Any,
        tool_scopes: Mapping[str, Sequence[str]],
        prompt_scopes: Mapping[str, Sequence[str]],
    ) -> None:
        self.server = server
        self.tool_scopes = tool_scopes
        self.prompt_scopes = prompt_scopes

    def check(self) -> None:
        """Raises: ConfigurationError: a scope map names a tool or prompt the server lacks."""
        if not isinstance(self.server, MCPServer):
            return
        tools = {t.name for t in self.server._tool_manager.list_tools()}
        prompts = {p.name for p in self.server._prompt_manager.list_prompts()}
        for kind, names, known in (
            ("tool_scopes", self.tool_scopes, tools),
            ("prompt_scopes", self.prompt_scopes, prompts),
        ):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ConfigurationError(
                    f"{kind} names {', '.join(map(repr, unknown))}, which the server does not "
                    f"have (it has: {', '.join(sorted(known)) or 'none'})"
                )


def _lifespan_of(
    inner: ASGIApp, check: Callable[[], None] = lambda: None
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """Run the inner app's lifespan (the SDK's session manager) inside ours, after
    ``check`` (a configuration that fails it never serves)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        check()
        router = getattr(inner, "router", None)
        context = getattr(router, "lifespan_context", None)
        if context is None:
            yield
            return
        async with context(inner):
            yield

    return lifespan
