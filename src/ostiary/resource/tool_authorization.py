"""Per-tool authorization in an MCP server: securitySchemes, hiding, challenges (RFC 6750 §3.1).

The policy half of :func:`ostiary.resource.mcp_sdk.protect_mcp_app` (and of the FastMCP
adapter), run as server middleware once the bearer check has passed:

* :class:`ToolAuthorization` advertises each tool's ``securitySchemes`` in ``_meta``
  (``[{"type": "oauth2", "scopes": [...]}]``), optionally hides from ``tools/list`` the tools
  the caller's token cannot use, and refuses a ``tools/call`` the token does not cover;
* :func:`require_scopes`, called inside tool code, turns a missing scope into an error result
  carrying ``_meta["mcp/www_authenticate"]`` with the step-up challenge (MCP authorization,
  "Scope Challenge Handling").
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from ostiary.errors import InsufficientScopeError, OAuthError
from ostiary.resource.challenges import challenge_for_error
from ostiary.resource.middleware import current_principal
from ostiary.resource.scopes import ScopePolicy, ToolPolicy
from ostiary.resource.verifiers import Principal

__all__ = [
    "SECURITY_SCHEMES_META_KEY",
    "WWW_AUTHENTICATE_META_KEY",
    "ToolAuthorization",
    "require_scopes",
]

#: Tool-result ``_meta`` key carrying challenges (OpenAI Apps SDK convention).
WWW_AUTHENTICATE_META_KEY: Final = "mcp/www_authenticate"
SECURITY_SCHEMES_META_KEY: Final = "securitySchemes"


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
        >>> from mcp.server.mcpserver import MCPServer
        >>> mcp = MCPServer("notes")
        >>> @mcp.tool()
        ... def delete_note(note_id: str) -> str:
        ...     principal = require_scopes("notes:delete")
        ...     return f"{note_id} deleted for {principal.subject}"
        >>> delete_note("n1")  # called outside a request: no principal, so no scope
        Traceback (most recent call last):
        ...
        mcp.server.mcpserver.exceptions.ToolError: ...
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
