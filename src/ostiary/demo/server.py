"""The demo MCP server `ostiary serve` shows next to the authorization server (MCP tools/resources).

Built with the official ``mcp`` SDK (``MCPServer``), served stateless over streamable HTTP (MCP
2026-07-28 has no sessions) behind :func:`ostiary.resource.mcp_sdk.protect_mcp_app`. Its tools
are the ones the reference servers describe: ``echo``, ``get_time`` and ``public_search`` need
no scope beyond the endpoint's (and, in mixed auth, no token: advertised ``noauth``);
``get_user_info``, ``list_secure_notes`` and
``get_api_usage`` need the read scope, ``create_secure_note`` the write scope. Notes and usage
counters live in the same :class:`~ostiary.core.storage.Storage` as the authorization server,
per subject, so they survive restarts and are shared by every ``ostiary serve`` process.

Every ``tools/call`` is counted (``record_usage``) for the caller, anonymous callers of public
tools under :data:`ANONYMOUS`, before the tool runs: a call that fails still counts.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from ostiary.core.models import Note
from ostiary.core.storage import Storage
from ostiary.resource.middleware import current_principal
from ostiary.resource.verifiers import Principal

__all__ = [
    "ANONYMOUS",
    "PUBLIC_TOOLS",
    "Caller",
    "DemoScopes",
    "build_demo_server",
]

#: Usage-counter subject for tokenless calls of public tools.
ANONYMOUS: Final = "anonymous"
#: Tools callable without a token in mixed auth (advertised ``noauth``).
PUBLIC_TOOLS: Final = ("echo", "get_time", "public_search")
MAX_NOTE_CHARS: Final = 10_000
MAX_TITLE_CHARS: Final = 200
PREVIEW_CHARS: Final = 80

_CATALOGUE: Final = (
    ("OAuth 2.1", "The consolidated OAuth authorization framework (draft-ietf-oauth-v2-1)."),
    ("PKCE", "Proof Key for Code Exchange, RFC 7636: binds a code to the client that asked."),
    ("Resource indicators", "RFC 8707: a token names the one resource it is good for."),
    ("Protected resource metadata", "RFC 9728: how an MCP server names its authorization server."),
    ("JWT access tokens", "RFC 9068: self-contained access tokens a resource verifies locally."),
    ("Model Context Protocol", "An open protocol connecting AI applications to tools and data."),
)


@dataclass(frozen=True)
class DemoScopes:
    """Which scope guards which demo tool (configurable; the defaults are the AS's).

    Attributes:
        read: Needed by every protected tool and resource.
        write: Needed (with ``read``) by ``create_secure_note``.
    """

    read: str = "mcp:read"
    write: str = "mcp:write"

    def tool_scopes(self) -> dict[str, list[str]]:
        """Tool name → scopes for ``protect_mcp_app(tool_scopes=...)``."""
        return {
            "get_user_info": [self.read],
            "list_secure_notes": [self.read],
            "get_api_usage": [self.read],
            "create_secure_note": [self.read, self.write],
        }

    def resource_scopes(self) -> dict[str, list[str]]:
        """Resource URI/template → scopes for ``protect_mcp_app(resource_scopes=...)``."""
        return {"user://profile": [self.read], "user://notes/{note_id}": [self.read]}


@dataclass(frozen=True)
class Caller:
    """Who is calling: the verified principal, or a fixed local subject (stdio)."""

    subject: str
    client_id: str | None
    scopes: tuple[str, ...]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _note_dict(note: Note, *, preview: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "note_id": note.note_id,
        "title": note.title,
        "created_at": _iso(note.created_at),
        "uri": f"user://notes/{note.note_id}",
    }
    if preview:
        text = note.content
        data["preview"] = text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
    else:
        data["content"] = note.content
    return data


class _UsageCounter:
    """SDK server middleware: one ``record_usage`` per ``tools/call``, before the tool runs."""

    def __init__(
        self, storage: Storage, tenant: str, clock: Callable[[], int], local: Caller | None
    ) -> None:
        self.storage = storage
        self.tenant = tenant
        self.clock = clock
        self.local = local

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method == "tools/call":
            name = (ctx.params or {}).get("name")
            if isinstance(name, str) and len(name) <= 128:
                principal = current_principal()
                subject = (
                    principal.subject
                    if principal is not None
                    else (self.local.subject if self.local else ANONYMOUS)
                )
                await self.storage.record_usage(self.tenant, subject, name, self.clock())
        return await call_next(ctx)


class _DemoTools:
    """The tool and resource implementations, bound to one storage and tenant."""

    def __init__(
        self, storage: Storage, tenant: str, clock: Callable[[], int], local: Caller | None
    ) -> None:
        self.storage = storage
        self.tenant = tenant
        self.clock = clock
        self.local = local

    def caller(self) -> Caller:
        principal: Principal | None = current_principal()
        if principal is not None:
            return Caller(principal.subject, principal.client_id, principal.scopes)
        if self.local is not None:
            return self.local
        raise ToolError("This tool needs an access token.")

    def resource_caller(self) -> Caller:
        try:
            return self.caller()
        except ToolError as exc:
            raise ResourceError(str(exc)) from None

    async def echo(self, text: str) -> str:
        """Return the text unchanged."""
        return text

    async def get_time(self) -> dict[str, Any]:
        """The server's current time (UTC, ISO 8601, and seconds since the epoch)."""
        now = self.clock()
        return {"utc": _iso(now), "epoch": now}

    async def public_search(self, query: str, limit: int = 5) -> dict[str, Any]:
        """Search a small public catalogue of OAuth/MCP topics (no login needed)."""
        words = [w for w in query.lower().split() if w]
        hits = [
            {"title": title, "summary": summary}
            for title, summary in _CATALOGUE
            if all(w in f"{title} {summary}".lower() for w in words)
        ]
        return {"query": query, "results": hits[: max(0, min(limit, 50))]}

    async def get_user_info(self) -> dict[str, Any]:
        """Who the access token speaks for: subject, username, client and scopes."""
        who = self.caller()
        user = await self.storage.get_user(self.tenant, who.subject)
        return {
            "sub": who.subject,
            "username": user.username if user is not None else None,
            "client_id": who.client_id,
            "scopes": list(who.scopes),
        }

    async def create_secure_note(self, content: str, title: str = "Untitled") -> dict[str, Any]:
        """Save a note that only you can read."""
        who = self.caller()
        if not content or len(content) > MAX_NOTE_CHARS:
            raise ToolError(f"content must be 1 to {MAX_NOTE_CHARS} characters")
        if not title or len(title) > MAX_TITLE_CHARS:
            raise ToolError(f"title must be 1 to {MAX_TITLE_CHARS} characters")
        note = Note(
            tenant_id=self.tenant,
            note_id=f"note_{secrets.token_hex(8)}",
            subject=who.subject,
            title=title,
            content=content,
            created_at=self.clock(),
        )
        await self.storage.save_note(note)
        return _note_dict(note)

    async def list_secure_notes(self) -> dict[str, Any]:
        """Your notes, oldest first, with a preview of each."""
        who = self.caller()
        notes = await self.storage.list_notes(self.tenant, who.subject)
        return {"count": len(notes), "notes": [_note_dict(n, preview=True) for n in notes]}

    async def get_api_usage(self) -> dict[str, Any]:
        """How many times you called each tool (this call included)."""
        who = self.caller()
        usage = await self.storage.get_usage(self.tenant, who.subject)
        return {"sub": who.subject, "total_calls": sum(usage.values()), "calls": usage}

    async def profile(self) -> str:
        """Your profile: subject, username, account creation time, granted scopes."""
        who = self.resource_caller()
        user = await self.storage.get_user(self.tenant, who.subject)
        notes = await self.storage.list_notes(self.tenant, who.subject)
        return json.dumps(
            {
                "sub": who.subject,
                "username": user.username if user is not None else None,
                "created_at": _iso(user.created_at) if user is not None else None,
                "client_id": who.client_id,
                "scopes": list(who.scopes),
                "notes": len(notes),
            }
        )

    async def note(self, note_id: str) -> str:
        """One of your notes by id."""
        who = self.resource_caller()
        found = await self.storage.get_note(self.tenant, who.subject, note_id)
        if found is None:
            raise ResourceError(f"no note {note_id}")
        return json.dumps(_note_dict(found))


def build_demo_server(
    storage: Storage,
    tenant: str,
    *,
    clock: Callable[[], int],
    scopes: DemoScopes | None = None,
    local_subject: str | None = None,
    count_usage: bool = True,
) -> MCPServer:
    """The demo MCP server (unprotected; wrap it with ``protect_mcp_app``).

    Args:
        storage: Where notes, usage counters and users live (the AS's storage when combined).
        tenant: The storage tenant.
        clock: Seconds since the epoch.
        scopes: Scope names granted to the local subject (enforcement is the wrapper's job).
        local_subject: Subject to act as when no token was verified (stdio, where the MCP spec
            says to take credentials from the environment); None: such calls are refused.
        count_usage: Count every ``tools/call`` with ``record_usage``.

    Example:
        >>> from ostiary.storage.memory import MemoryStorage
        >>> mcp = build_demo_server(MemoryStorage(), "default", clock=lambda: 0)
        >>> sorted(tool.name for tool in mcp._tool_manager.list_tools())[:3]
        ['create_secure_note', 'echo', 'get_api_usage']
    """
    scopes = scopes or DemoScopes()
    local = Caller(local_subject, None, (scopes.read, scopes.write)) if local_subject else None
    mcp: MCPServer = MCPServer(
        "ostiary-demo",
        title="ostiary demo MCP server",
        instructions=(
            "Demo tools: echo, get_time and public_search need no login; get_user_info, "
            "create_secure_note, list_secure_notes and get_api_usage act for the signed-in user."
        ),
        version="1",
        # The SDK configures the root logger (rich) at this level: INFO would format a line
        # per stateless request ("Terminating session"), a measurable cost on the hot path.
        log_level="WARNING",
    )
    if count_usage:
        mcp.middleware.append(_UsageCounter(storage, tenant, clock, local))
    tools = _DemoTools(storage, tenant, clock, local)
    for tool in (
        tools.echo,
        tools.get_time,
        tools.public_search,
        tools.get_user_info,
        tools.create_secure_note,
        tools.list_secure_notes,
        tools.get_api_usage,
    ):
        mcp.tool()(tool)
    mcp.resource("user://profile", name="profile", mime_type="application/json")(tools.profile)
    mcp.resource("user://notes/{note_id}", name="note", mime_type="application/json")(tools.note)
    return mcp
