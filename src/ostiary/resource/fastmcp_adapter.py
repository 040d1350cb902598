"""Protect a FastMCP 4 server with ostiary (MCP authorization; RFC 9728; RFC 6750).

Same contract as :func:`ostiary.resource.mcp_sdk.protect_mcp_app` (the same
:class:`~ostiary.resource.policy.ProtectionPolicy`), for servers written with
FastMCP (an optional dependency: ``pip install fastmcp``). FastMCP's own auth providers stay
unused (``auth=None`` on the server): ostiary's middleware does the bearer check, audience
binding and per-tool 403s in front of FastMCP's HTTP app, and a FastMCP middleware adds
``securitySchemes``, hides tools the caller cannot use, and turns scope failures raised in
tool code (:func:`~ostiary.resource.mcp_sdk.require_scopes`) into error results carrying
``_meta["mcp/www_authenticate"]``. Inside tools, :func:`current_principal` and FastMCP's
``get_access_token()`` both work.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from fastmcp import FastMCP
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool, ToolResult
from mcp_types import CallToolRequestParams, ListToolsRequest, TextContent
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from ostiary.errors import InsufficientScopeError
from ostiary.resource.mcp_sdk import protect_asgi_app, tool_authorization
from ostiary.resource.metadata import protected_resource_metadata_url
from ostiary.resource.middleware import current_principal
from ostiary.resource.policy import ProtectionPolicy, ServerNames
from ostiary.resource.tool_authorization import (
    SECURITY_SCHEMES_META_KEY,
    WWW_AUTHENTICATE_META_KEY,
    ToolAuthorization,
    _call_state,
    _CallState,
)
from ostiary.resource.verifiers import TokenVerifier

__all__ = ["FastMCPToolAuthorization", "fastmcp_names", "protect_fastmcp_app"]


class FastMCPToolAuthorization(Middleware):
    """FastMCP middleware over :class:`ToolAuthorization`'s policy decisions."""

    def __init__(self, authorization: ToolAuthorization) -> None:
        self.authorization = authorization

    async def on_list_tools(
        self,
        context: MiddlewareContext[ListToolsRequest],
        call_next: CallNext[ListToolsRequest, Sequence[Tool]],
    ) -> Sequence[Tool]:
        """Add ``securitySchemes``; drop unusable tools when hiding is on."""
        auth = self.authorization
        principal = current_principal()
        result: list[Tool] = []
        for tool in await call_next(context):
            if auth.hide_unauthorized_tools and not auth._usable(tool.name, principal):
                continue
            meta = dict(tool.meta or {})
            meta[SECURITY_SCHEMES_META_KEY] = auth.security_schemes(tool.name)
            result.append(tool.model_copy(update={"meta": meta}))
        return result

    async def on_call_tool(
        self,
        context: MiddlewareContext[CallToolRequestParams],
        call_next: CallNext[CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        """Refuse under-scoped calls with an in-result challenge; attach tool-raised ones."""
        auth = self.authorization
        principal = current_principal()
        name = context.message.name
        if principal is not None and not auth.allows(principal, name):
            needed = auth.needed(name)
            return self._challenge_result(InsufficientScopeError(required_scopes=needed))
        state = _CallState(auth)
        reset = _call_state.set(state)
        try:
            return await call_next(context)
        except Exception as exc:
            if not state.challenges:
                raise
            return self._challenge_result(exc, state.challenges)
        finally:
            _call_state.reset(reset)

    def _challenge_result(
        self, error: Exception, challenges: list[str] | None = None
    ) -> ToolResult:
        if challenges is None and isinstance(error, InsufficientScopeError):
            challenges = [self.authorization.challenge(error)]
        text = getattr(error, "description", None) or str(error)
        return ToolResult(
            content=[TextContent(type="text", text=text)],
            meta={WWW_AUTHENTICATE_META_KEY: challenges or []},
            is_error=True,
        )


def protect_fastmcp_app(
    server: FastMCP,
    *,
    resource: str,
    issuer: str | Sequence[str],
    verifier: TokenVerifier | None = None,
    policy: ProtectionPolicy | None = None,
    http_app_options: Mapping[str, Any] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Serve a FastMCP server over streamable HTTP as an OAuth-protected resource.

    Args:
        server: The FastMCP server (create it without ``auth=``).
        resource: Canonical MCP endpoint URL (token audience, PRM ``resource``).
        issuer: Authorization server issuer URL(s).
        verifier: Token verifier; default: JWTs of ``issuer`` for ``resource`` (see
            :func:`~ostiary.resource.mcp_sdk.protect_mcp_app`).
        policy: Scopes, mixed auth, DPoP, CORS, ... (a
            :class:`~ostiary.resource.policy.ProtectionPolicy`).
        http_app_options: Passed to ``FastMCP.http_app``; ``{"stateless_http": True}``
            also makes the endpoint stateless.
        extra_routes: Further unprotected routes (health checks, ...), matched first.

    Returns:
        A Starlette app whose lifespan runs FastMCP's, after checking that every tool,
        prompt and resource the policy names exists on ``server``.

    Raises:
        ConfigurationError: As :func:`~ostiary.resource.mcp_sdk.protect_mcp_app`.

    Example:
        >>> from fastmcp import FastMCP
        >>> from ostiary.resource.policy import ProtectionPolicy
        >>> app = protect_fastmcp_app(
        ...     FastMCP("demo"),
        ...     resource="https://mcp.example.com/mcp",
        ...     issuer="https://auth.example.com",
        ...     policy=ProtectionPolicy(required_scopes=["mcp:read"]),
        ... )
        >>> app.routes[0].path
        '/.well-known/oauth-protected-resource/mcp'
    """
    policy = policy or ProtectionPolicy()
    authorization = tool_authorization(policy, protected_resource_metadata_url(resource))
    server.add_middleware(FastMCPToolAuthorization(authorization))
    # ostiary's OriginGuardMiddleware does the Host/Origin checks for the whole endpoint.
    http_options: dict[str, Any] = {"host_origin_protection": False, **(http_app_options or {})}
    inner = server.http_app(path=urlsplit(resource).path or "/", **http_options)
    if policy.stateless is None:
        policy = replace(policy, stateless=bool(http_options.get("stateless_http", False)))
    return protect_asgi_app(
        inner,
        resource=resource,
        issuer=issuer,
        verifier=verifier,
        policy=policy,
        extra_routes=extra_routes,
        server_names=functools.partial(fastmcp_names, server),
    )


async def fastmcp_names(server: FastMCP) -> ServerNames:
    """What a FastMCP server has: its tools, prompts, resources and resource templates
    (listed without running middleware, so no request context is needed)."""
    resources = {str(r.uri) for r in await server.list_resources(run_middleware=False)}
    templates = await server.list_resource_templates(run_middleware=False)
    return ServerNames(
        tools=frozenset(t.name for t in await server.list_tools(run_middleware=False)),
        prompts=frozenset(p.name for p in await server.list_prompts(run_middleware=False)),
        resources=frozenset(resources | {t.uri_template for t in templates}),
    )
