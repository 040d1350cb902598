"""Scope requirements for endpoints and MCP tools (RFC 6750 §3.1; MCP "Scope Challenge Handling").

Three pieces:

* :class:`ScopePolicy` decides whether granted scopes satisfy needed ones, accounting for a
  configurable hierarchy (``mcp:write`` implies ``mcp:read``), because MCP requires servers to
  honour scope hierarchies when deciding sufficiency ("Step-Up Authorization Flow").
* :class:`ToolPolicy` maps tool names to the scopes each tool needs.
* :class:`McpToolScopeGuard` reads an MCP JSON-RPC POST *before* it reaches the MCP server and
  refuses a ``tools/call`` the token is not good for with HTTP 403 ``insufficient_scope``
  naming every scope the operation needs in a single challenge (no one-at-a-time step-up).
  Since MCP 2026-07-28 clients also send ``Mcp-Method``/``Mcp-Name`` headers; an RS may
  authorize from them only if they agree with the body, so a disagreement is refused here with
  400 (the MCP ``HeaderMismatch`` error) rather than trusted. The body is read by the one
  bounded JSON reader (:mod:`ostiary.jsonbody`); what it refuses is answered as a JSON-RPC
  parse error (400, -32700), as the MCP SDK would, before the MCP server sees it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from starlette.types import Message, Receive, Scope

from ostiary import jsonbody
from ostiary.errors import InsufficientScopeError, InvalidRequestError
from ostiary.resource.verifiers import Principal

__all__ = [
    "DEFAULT_PUBLIC_METHODS",
    "HEADER_MISMATCH_CODE",
    "PARSE_ERROR_CODE",
    "HeaderMismatchError",
    "JsonRpcParseError",
    "McpPublicAccess",
    "McpToolScopeGuard",
    "PayloadTooLargeError",
    "RequestGuard",
    "ResourcePolicy",
    "ScopePolicy",
    "ToolPolicy",
    "read_body",
]

#: JSON-RPC error code MCP uses for a routing header that disagrees with the body.
HEADER_MISMATCH_CODE: Final = -32020
#: JSON-RPC 2.0 §5.1 "Parse error": the body is not JSON (what the MCP SDK answers too).
PARSE_ERROR_CODE: Final = -32700
_DEFAULT_MAX_BODY_BYTES: Final = 4 * 1024 * 1024
_B64_SENTINEL: Final = re.compile(r"^=\?base64\?(?P<payload>[A-Za-z0-9+/=]*)\?=$")


@dataclass(frozen=True)
class ScopePolicy:
    """Scope sufficiency with an optional hierarchy.

    Args:
        implies: ``{"mcp:write": ("mcp:read",)}`` means a token with ``mcp:write`` also
            satisfies ``mcp:read``. Applied transitively.

    Example:
        >>> policy = ScopePolicy({"mcp:admin": ("mcp:write",), "mcp:write": ("mcp:read",)})
        >>> policy.missing(("mcp:admin",), ("mcp:read", "notes:delete"))
        ('notes:delete',)
    """

    implies: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def expand(self, granted: Iterable[str]) -> frozenset[str]:
        """Granted scopes plus everything they imply."""
        result = set(granted)
        pending = list(result)
        while pending:
            for implied in self.implies.get(pending.pop(), ()):
                if implied not in result:
                    result.add(implied)
                    pending.append(implied)
        return frozenset(result)

    def missing(self, granted: Iterable[str], needed: Iterable[str]) -> tuple[str, ...]:
        """Needed scopes not covered by ``granted`` (in ``needed`` order)."""
        needed = tuple(dict.fromkeys(needed))
        if not needed:
            return ()
        have = self.expand(granted)
        return tuple(s for s in needed if s not in have)

    def check(self, principal: Principal, needed: Sequence[str]) -> None:
        """Raise :class:`InsufficientScopeError` naming all of ``needed`` if any is missing.

        The challenge names every scope the operation needs, not only the missing ones, so
        a client that replaces rather than unions its scopes still ends up with enough.
        """
        if not needed or principal.scope_set.issuperset(needed):
            return  # the common case: granted literally, no hierarchy walk needed
        if self.missing(principal.scope_set, needed):
            raise InsufficientScopeError(
                required_scopes=tuple(dict.fromkeys(needed)),
                detail=f"granted {principal.scopes!r}, needed {tuple(needed)!r}",
            )


@dataclass(frozen=True)
class ToolPolicy:
    """Which scopes each MCP tool needs.

    Args:
        tools: Tool name → scopes it needs. A tool mapped to ``()`` needs only the endpoint's
            scopes.
        default: Scopes for tools not listed (None: only the endpoint's scopes).

    Example:
        >>> ToolPolicy({"create_note": ("mcp:write",)}).scopes_for("create_note")
        ('mcp:write',)
    """

    tools: Mapping[str, Sequence[str]] = field(default_factory=dict)
    default: Sequence[str] | None = None

    def scopes_for(self, tool: str) -> tuple[str, ...]:
        """Scopes ``tool`` needs beyond the endpoint's own."""
        scopes = self.tools.get(tool)
        if scopes is None:
            scopes = self.default or ()
        return tuple(scopes)

    def __bool__(self) -> bool:
        return bool(self.tools) or bool(self.default)


@dataclass(frozen=True)
class ResourcePolicy:
    """Which scopes reading an MCP resource needs, by URI or RFC 6570 level-1 template.

    Args:
        resources: URI or template (``user://notes/{note_id}``) → scopes. Exact URIs win over
            templates; templates are tried in the given order; ``{var}`` matches one path
            segment (no ``/``).

    Example:
        >>> ResourcePolicy({"user://notes/{note_id}": ("notes:read",)}).scopes_for(
        ...     "user://notes/42")
        ('notes:read',)
    """

    resources: Mapping[str, Sequence[str]] = field(default_factory=dict)
    _templates: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        templates = tuple(
            (re.compile(_template_pattern(uri)), tuple(scopes))
            for uri, scopes in self.resources.items()
            if "{" in uri
        )
        object.__setattr__(self, "_templates", templates)  # frozen: set once here

    def scopes_for(self, uri: str) -> tuple[str, ...]:
        """Scopes reading ``uri`` needs beyond the endpoint's own."""
        exact = self.resources.get(uri)
        if exact is not None and "{" not in uri:
            return tuple(exact)
        for pattern, scopes in self._templates:
            if pattern.fullmatch(uri):
                return scopes
        return ()

    def __bool__(self) -> bool:
        return bool(self.resources)


def _template_pattern(template: str) -> str:
    parts = re.split(r"\{[^{}/]+\}", template)
    return "[^/]+".join(re.escape(part) for part in parts)


#: JSON-RPC methods whose target is named by a param (and mirrored in ``Mcp-Name``).
_NAME_PARAMS: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


class HeaderMismatchError(InvalidRequestError):
    """``Mcp-Method``/``Mcp-Name`` disagree with the JSON-RPC body (MCP streamable HTTP)."""

    default_description = "The Mcp-Method or Mcp-Name header does not match the request body."

    def __init__(self, description: str | None = None, *, request_id: Any = None) -> None:
        super().__init__(description)
        self.request_id = request_id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-RPC error body, which is what an MCP client parses."""
        return {
            "jsonrpc": "2.0",
            "id": self.request_id,
            "error": {"code": HEADER_MISMATCH_CODE, "message": self.description},
        }


class JsonRpcParseError(InvalidRequestError):
    """The body is not JSON this guard accepts (JSON-RPC 2.0 §5.1, code -32700).

    Answered here, with the status and body shape the MCP SDK uses for its own parse errors
    (400, ``id`` null), so the server never sees a body the guard could not read: a
    document too deep for a recursive parser, an unpaired surrogate, or a repeated member
    name that two parsers might resolve differently (one authorizing, the other running).
    """

    default_description = jsonbody.NOT_JSON

    def to_dict(self) -> dict[str, Any]:
        """A JSON-RPC error body, which is what an MCP client parses."""
        return {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": PARSE_ERROR_CODE, "message": f"Parse error: {self.description}"},
        }


class PayloadTooLargeError(InvalidRequestError):
    """The request body is larger than the guard will buffer."""

    default_status_code = 413
    default_description = "The request body is too large."


class RequestGuard(Protocol):
    """A check run by the bearer middleware after the token verified, before the app.

    It may read the body; it returns the ``receive`` the app must use (replaying what was
    read) or raises an :class:`~ostiary.errors.OAuthError`.
    """

    async def __call__(self, scope: Scope, receive: Receive, principal: Principal) -> Receive:
        """Check the request; return the receive callable for the downstream app."""
        ...


def _decode_header_value(value: str) -> str | None:
    """MCP encodes non-ASCII header values as ``=?base64?…?=`` (streamable HTTP)."""
    match = _B64_SENTINEL.match(value)
    if match is None:
        return value
    try:
        return base64.b64decode(match.group("payload"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _headers(scope: Scope) -> tuple[str | None, str | None]:
    method = name = None
    for key, value in scope["headers"]:
        if key == b"mcp-method":
            method = value.decode("latin-1")
        elif key == b"mcp-name":
            name = value.decode("latin-1")
    return method, name


class McpToolScopeGuard:
    """Refuse an MCP call whose tool, prompt or resource needs scopes the token lacks (403).

    Covers ``tools/call`` (by tool name), ``prompts/get`` (by prompt name) and
    ``resources/read`` (by URI or template).

    Args:
        tools: Per-tool scope requirements.
        policy: Scope hierarchy.
        endpoint_scopes: Scopes the whole endpoint needs; named in every challenge too,
            since the challenge lists all scopes the operation needs.
        max_body_bytes: Largest body buffered for inspection (larger: 413).
        prompts: Per-prompt scope requirements.
        resources: Per-resource scope requirements.
    """

    def __init__(
        self,
        tools: ToolPolicy,
        policy: ScopePolicy | None = None,
        *,
        endpoint_scopes: Sequence[str] = (),
        max_body_bytes: int = _DEFAULT_MAX_BODY_BYTES,
        prompts: ToolPolicy | None = None,
        resources: ResourcePolicy | None = None,
    ) -> None:
        self.tools = tools
        self.policy = policy or ScopePolicy()
        self.endpoint_scopes = tuple(endpoint_scopes)
        self.max_body_bytes = max_body_bytes
        self.prompts = prompts or ToolPolicy()
        self.resources = resources or ResourcePolicy()

    async def __call__(self, scope: Scope, receive: Receive, principal: Principal) -> Receive:
        """See :class:`RequestGuard`."""
        if scope["method"] != "POST":
            return receive
        # Every POST body is read, whatever its Content-Type: an upstream that is lax about
        # media types must not become a way around the per-tool check.
        header_method, header_name = _headers(scope)
        body, replay = await read_body(receive, self.max_body_bytes)
        messages = _messages(body)
        needed: list[str] = []
        for message in messages:
            _check_headers(message, header_method, header_name, batched=len(messages) > 1)
            needed.extend(self._needed_for(message))
        if needed:
            self.policy.check(principal, [*self.endpoint_scopes, *needed])
        return replay

    def _needed_for(self, message: Mapping[str, Any]) -> tuple[str, ...]:
        method = message.get("method")
        target = _target(message)
        if target is None:
            return ()
        if method == "tools/call":
            return self.tools.scopes_for(target)
        if method == "prompts/get":
            return self.prompts.scopes_for(target)
        return self.resources.scopes_for(target)  # resources/read


def _check_headers(
    message: Mapping[str, Any], method: str | None, name: str | None, *, batched: bool
) -> None:
    if batched or (method is None and name is None):
        return
    request_id = message.get("id")
    if method is not None and method != message.get("method"):
        raise HeaderMismatchError(
            "Mcp-Method header does not match the request body's method",
            request_id=request_id,
        )
    body_name = _target(message)
    if body_name is not None and name is not None and _decode_header_value(name) != body_name:
        key = _NAME_PARAMS[str(message.get("method"))]
        raise HeaderMismatchError(
            f"Mcp-Name header does not match the request body's {key!r} parameter",
            request_id=request_id,
        )


def _target(message: Mapping[str, Any]) -> str | None:
    """The tool/prompt name or resource URI a message is about, when it names one."""
    key = _NAME_PARAMS.get(str(message.get("method")))
    params = message.get("params")
    value = params.get(key) if key is not None and isinstance(params, dict) else None
    return value if isinstance(value, str) else None


async def read_body(receive: Receive, max_bytes: int) -> tuple[bytes, Receive]:
    """Read the whole request body; return it and a ``receive`` that replays it.

    Raises:
        PayloadTooLargeError: The body is over ``max_bytes``.
        InvalidRequestError: The client went away mid-body.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise InvalidRequestError(detail="client disconnected while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(detail=f"body over {max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, _replaying(body, receive)


def _messages(body: bytes) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a body (a batch is a list), read by the one bounded reader.

    Raises:
        JsonRpcParseError: The body is not JSON within :mod:`ostiary.jsonbody`'s limits.
    """
    try:
        payload = jsonbody.loads(body)
    except InvalidRequestError as error:
        raise JsonRpcParseError(error.description, detail=error.detail) from None
    items = payload if isinstance(payload, list) else [payload]
    return [item for item in items if isinstance(item, dict)]


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


#: Methods that reveal nothing about a user and let a tokenless client reach public tools.
DEFAULT_PUBLIC_METHODS: Final = frozenset({"initialize", "ping", "tools/list", "server/discover"})


class McpPublicAccess:
    """Let tokenless MCP requests through when they only touch public tools.

    Used by :class:`~ostiary.resource.middleware.BearerAuthMiddleware` (``anonymous=``) when
    a request has no credentials, in mixed auth only. A POST passes when every JSON-RPC
    message in it is a notification, a response, one of ``public_methods``, or a
    ``tools/call`` of a public tool; DELETE (ending a session) passes as it runs no tool. GET
    does not: a server-to-client stream is only for an authenticated caller, and an anonymous
    one could be held open by anyone at no cost. Anything else gets the normal 401 challenge,
    so standard MCP clients start OAuth exactly when they need to.

    Args:
        public_tools: Tools callable without a token (advertised ``noauth``).
        public_methods: JSON-RPC methods allowed without a token.
        max_body_bytes: Largest body buffered for inspection.
    """

    def __init__(
        self,
        public_tools: Iterable[str],
        *,
        public_methods: Iterable[str] = DEFAULT_PUBLIC_METHODS,
        max_body_bytes: int = _DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.public_tools = frozenset(public_tools)
        self.public_methods = frozenset(public_methods)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive) -> tuple[bool, Receive]:
        """Decide whether this tokenless request may proceed; return the receive to use."""
        if scope["method"] == "DELETE":
            return True, receive
        if scope["method"] != "POST":
            return False, receive
        header_method, header_name = _headers(scope)
        body, replay = await read_body(receive, self.max_body_bytes)
        try:
            messages = _messages(body)
        except JsonRpcParseError:
            return False, replay  # not JSON: the tokenless caller gets the challenge
        if not messages:
            return False, replay
        for message in messages:
            _check_headers(message, header_method, header_name, batched=len(messages) > 1)
        return all(self._is_public(message) for message in messages), replay

    def _is_public(self, message: Mapping[str, Any]) -> bool:
        method = message.get("method")
        if not isinstance(method, str):
            return "id" in message  # a JSON-RPC response to a server request
        if method == "tools/call":
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            return name in self.public_tools
        return method in self.public_methods or method.startswith("notifications/")
