"""Protect an official ``mcp`` SDK server with ostiary (MCP authorization; RFC 9728; RFC 6750).

:func:`protect_mcp_app` takes an ``MCPServer`` (or low-level ``Server``, or any ASGI app) and
returns one Starlette app that serves:

* the RFC 9728 protected resource metadata at its well-known path(s);
* the streamable-HTTP MCP endpoint behind :class:`BearerAuthMiddleware`, with per-tool scope
  requirements enforced as HTTP 403 step-up challenges *before* the SDK sees the request.

For SDK servers it also installs a server middleware that

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
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from ostiary.errors import ConfigurationError, InsufficientScopeError, OAuthError
from ostiary.resource.challenges import challenge_for_error
from ostiary.resource.cors import OriginGuardMiddleware, default_allowed_hosts, mcp_cors
from ostiary.resource.metadata import (
    build_protected_resource_metadata,
    protected_resource_metadata_routes,
    protected_resource_metadata_url,
)
from ostiary.resource.middleware import BearerAuthMiddleware, current_principal
from ostiary.resource.scopes import (
    McpPublicAccess,
    McpToolScopeGuard,
    ResourcePolicy,
    ScopePolicy,
    ToolPolicy,
)
from ostiary.resource.verifiers import Principal, TokenVerifier

__all__ = [
    "WWW_AUTHENTICATE_META_KEY",
    "McpPrincipalUser",
    "ToolAuthorization",
    "protect_mcp_app",
    "require_scopes",
]

#: Tool-result ``_meta`` key carrying challenges (OpenAI Apps SDK convention).
WWW_AUTHENTICATE_META_KEY: Final = "mcp/www_authenticate"
SECURITY_SCHEMES_META_KEY: Final = "securitySchemes"


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


@dataclass
class _CallState:
    authorization: ToolAuthorization
    challenges: list[str] = field(default_factory=list)


_call_state: ContextVar[_CallState | None] = ContextVar("ostiary_tool_call", default=None)


def require_scopes(*scopes: str) -> Principal:
    """Inside a tool: demand ``scopes`` of the caller, or fail the call with a challenge.

    The failed result carries ``_meta["mcp/www_authenticate"]`` naming every scope in
    ``scopes`` plus the endpoint's, so the client can step up.

    Returns:
        The caller's principal.

    Raises:
        ToolError: The caller lacks a scope (or no principal is present).

    Example:
        >>> # @mcp.tool()
        >>> # def delete_note(note_id: str) -> str:
        >>> #     principal = require_scopes("notes:delete")
    """
    state = _call_state.get()
    principal = current_principal()
    policy = state.authorization.policy if state else ScopePolicy()
    endpoint = state.authorization.endpoint_scopes if state else ()
    needed = (*endpoint, *scopes)
    if principal is not None and not policy.missing(principal.scopes, needed):
        return principal
    error = InsufficientScopeError(required_scopes=tuple(dict.fromkeys(needed)))
    if state is not None:
        state.challenges.append(state.authorization.challenge(error))
    raise ToolError(error.description) from error


def _as_dict(result: HandlerResult) -> dict[str, Any]:
    if isinstance(result, BaseModel):
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dict(result or {})


@dataclass
class ToolAuthorization:
    """SDK server middleware: ``securitySchemes``, tool hiding and in-result challenges.

    Args:
        tools: Per-tool scopes.
        policy: Scope hierarchy.
        endpoint_scopes: Scopes the endpoint needs (part of every tool's requirement).
        resource_metadata_url: For challenges in tool results.
        hide_unauthorized_tools: Drop from ``tools/list`` what the caller cannot call.
        public_tools: Tools advertised as ``noauth`` as well.
    """

    tools: ToolPolicy
    policy: ScopePolicy
    endpoint_scopes: tuple[str, ...]
    resource_metadata_url: str | None
    hide_unauthorized_tools: bool = False
    public_tools: frozenset[str] = frozenset()
    _needed: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False, repr=False)

    def needed(self, tool: str) -> tuple[str, ...]:
        """Every scope ``tool`` needs, the endpoint's included."""
        scopes = self._needed.get(tool)
        if scopes is None:
            scopes = tuple(dict.fromkeys((*self.endpoint_scopes, *self.tools.scopes_for(tool))))
            if len(self._needed) < 4096:  # tool names come from clients: stay bounded
                self._needed[tool] = scopes
        return scopes

    def allows(self, principal: Principal, tool: str) -> bool:
        """True when ``principal`` may call ``tool`` (scope hierarchy included)."""
        needed = self.needed(tool)
        return principal.scope_set.issuperset(needed) or not self.policy.missing(
            principal.scope_set, needed
        )

    def challenge(self, error: OAuthError) -> str:
        """The ``WWW-Authenticate`` value for ``error``."""
        return challenge_for_error(error, resource_metadata=self.resource_metadata_url)

    def security_schemes(self, tool: str) -> list[dict[str, Any]]:
        """The ``securitySchemes`` list advertised for ``tool``."""
        schemes: list[dict[str, Any]] = []
        if tool in self.public_tools:
            schemes.append({"type": "noauth"})
        schemes.append({"type": "oauth2", "scopes": list(self.needed(tool))})
        return schemes

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """ServerMiddleware entry point."""
        if ctx.method == "tools/list":
            return self._decorate_listing(_as_dict(await call_next(ctx)))
        if ctx.method != "tools/call":
            return await call_next(ctx)
        name = (ctx.params or {}).get("name")
        principal = current_principal()
        if isinstance(name, str) and principal is not None and not self.allows(principal, name):
            # Reached only when the HTTP guard did not run (e.g. another transport).
            return self._error_result(InsufficientScopeError(required_scopes=self.needed(name)))
        state = _CallState(self)
        reset = _call_state.set(state)
        try:
            result = await call_next(ctx)
        finally:
            _call_state.reset(reset)
        if not state.challenges:
            return result
        body = _as_dict(result)
        meta = dict(body.get("_meta") or {})
        meta[WWW_AUTHENTICATE_META_KEY] = state.challenges
        body["_meta"] = meta
        return body

    def _decorate_listing(self, body: dict[str, Any]) -> dict[str, Any]:
        principal = current_principal()
        tools: list[dict[str, Any]] = []
        for tool in body.get("tools", []):
            name = str(tool.get("name"))
            if self.hide_unauthorized_tools and not self._usable(name, principal):
                continue
            meta = dict(tool.get("_meta") or {})
            meta[SECURITY_SCHEMES_META_KEY] = self.security_schemes(name)
            tools.append({**tool, "_meta": meta})
        return {**body, "tools": tools}

    def _usable(self, tool: str, principal: Principal | None) -> bool:
        if principal is None:
            return tool in self.public_tools
        return self.allows(principal, tool)

    def _error_result(self, error: OAuthError) -> dict[str, Any]:
        return {
            "content": [{"type": "text", "text": error.description}],
            "isError": True,
            "_meta": {WWW_AUTHENTICATE_META_KEY: [self.challenge(error)]},
        }


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
        public_tools: Tools callable without a token (advertised ``noauth``). A tokenless
            client may then initialize, list tools and call these; anything else still gets
            the 401 challenge.
        resource_scopes: Resource URI or template (``user://notes/{id}``) → scopes needed
            to read it (403 ``insufficient_scope`` when missing).
        prompt_scopes: Prompt name → scopes needed to get it.

    Returns:
        A Starlette app whose lifespan runs the SDK's session manager.

    Raises:
        ConfigurationError: The ``MCPServer`` has SDK auth configured, or the metadata is
            invalid (no issuer, bad ``resource``).

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
    metadata_url = protected_resource_metadata_url(resource)
    if _is_sdk_server(mcp_server_or_app):
        mcp_server_or_app.middleware.append(
            ToolAuthorization(
                tools,
                policy,
                required,
                metadata_url,
                hide_unauthorized_tools,
                public_tools=frozenset(public_tools),
            )
        )
    inner = _inner_app(
        mcp_server_or_app, urlsplit(resource).path or "/", resource, streamable_http_options or {}
    )
    resources = ResourcePolicy(dict(resource_scopes or {}))
    prompts = ToolPolicy(dict(prompt_scopes or {}))
    guards = (
        [
            McpToolScopeGuard(
                tools, policy, endpoint_scopes=required, prompts=prompts, resources=resources
            )
        ]
        if tools or resources or prompts
        else []
    )
    anonymous = McpPublicAccess(public_tools) if public_tools else None
    origins = _default_origins(resource, cors_origins)
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
    return Starlette(routes=routes, lifespan=_lifespan_of(inner))


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


def _default_origins(resource: str, cors_origins: Sequence[str]) -> list[str]:
    parts = urlsplit(resource)
    origins = [f"{parts.scheme}://{parts.netloc}", *cors_origins]
    if any(parts.netloc.startswith(host) for host in ("127.0.0.1", "localhost", "[::1]")):
        origins.extend(f"http://{host}:*" for host in ("127.0.0.1", "localhost", "[::1]"))
    return origins


def _lifespan_of(
    inner: ASGIApp,
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """Run the inner app's lifespan (the SDK's session manager) inside ours."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        router = getattr(inner, "router", None)
        context = getattr(router, "lifespan_context", None)
        if context is None:
            yield
            return
        async with context(inner):
            yield

    return lifespan
