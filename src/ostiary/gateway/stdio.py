"""An MCP server reached over stdio, re-served by a low-level SDK server (MCP stdio transport).

One upstream process and one client session serve every HTTP caller: requests are forwarded
one to one (tools, resources, resource templates, prompts), results and errors come back
unchanged. MCP says stdio servers take credentials from their environment, not from OAuth, so
no token or identity is passed down; the OAuth layer in front decides who may call what.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TextIO

from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

__all__ = ["StdioUpstream"]


class StdioUpstream:
    """Run ``command`` and expose it as :attr:`server` (a low-level SDK ``Server``).

    Enter :meth:`running` for the lifetime of the app (it starts the process and the
    session, and stops them on exit).

    Args:
        command: The executable and its arguments.
        env: Extra environment for the process.
        errlog: Where the process's stderr goes.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        errlog: TextIO = sys.stderr,
    ) -> None:
        if not command:
            raise ValueError("a stdio upstream needs a command")
        self.parameters = StdioServerParameters(
            command=command[0], args=list(command[1:]), env=dict(env) if env else None
        )
        self.errlog = errlog
        self._session: ClientSession | None = None
        self.server: Server[Any] = Server(
            "ostiary-gateway",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[types.InitializeResult]:
        """Start the process, initialise the session, and stop both on exit."""
        async with (
            stdio_client(self.parameters, errlog=self.errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            result = await session.initialize()
            self._session = session
            try:
                yield result
            finally:
                self._session = None

    @property
    def session(self) -> ClientSession:
        if self._session is None:
            raise MCPError(code=types.INTERNAL_ERROR, message="the stdio upstream is not running")
        return self._session

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return await self.session.list_tools(params=params)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await self.session.call_tool(params.name, params.arguments)

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return await self.session.list_resources(params=params)

    async def _list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return await self.session.list_resource_templates(params=params)

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await self.session.read_resource(params.uri)

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return await self.session.list_prompts(params=params)

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        return await self.session.get_prompt(params.name, params.arguments)
