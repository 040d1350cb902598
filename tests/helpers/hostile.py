"""In-process MCP endpoints for hostile-body tests: protect_mcp_app and the HTTP gateway.

Both are served by a real ``MCPServer`` (stateless, JSON responses), driven through
``httpx.ASGITransport`` with their lifespans running; tokens are checked by a verifier that
knows two fixed tokens, since what is under test is the body handling, not the JWT checks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import httpx
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Message

from ostiary.errors import InvalidTokenError
from ostiary.gateway import app as gateway_app
from ostiary.gateway.app import create_gateway_app
from ostiary.gateway.proxy import HttpUpstreamProxy
from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.verifiers import Principal

BASE = "http://127.0.0.1:8765"
RESOURCE = f"{BASE}/mcp"
ISSUER = "http://127.0.0.1:8000"
READ_TOKEN = "read-token"
WRITE_TOKEN = "write-token"
SDK_OPTIONS: dict[str, Any] = {"stateless_http": True, "json_response": True}


class StaticVerifier:
    """Two known tokens: ``mcp:read`` and ``mcp:read mcp:write``."""

    async def verify(self, token: str) -> Principal:
        scopes = {READ_TOKEN: ("mcp:read",), WRITE_TOKEN: ("mcp:read", "mcp:write")}.get(token)
        if scopes is None:
            raise InvalidTokenError("The access token is invalid.")
        return Principal("alice", "client-1", scopes, (RESOURCE,), ISSUER)


def mcp_server() -> MCPServer:
    mcp = MCPServer("hostile")

    @mcp.tool()
    def echo(text: str) -> str:
        """Public."""
        return text

    @mcp.tool()
    def create_note(text: str) -> str:
        """Needs mcp:write."""
        return f"saved {text}"

    return mcp


def protected_app(*, mixed_auth: bool) -> Any:
    return protect_mcp_app(
        mcp_server(),
        resource=RESOURCE,
        issuer=ISSUER,
        verifier=StaticVerifier(),
        policy=ProtectionPolicy(
            required_scopes=["mcp:read"],
            tool_scopes={"create_note": ["mcp:write"]} if mixed_auth else {},
            public_tools=["echo"] if mixed_auth else (),
            mixed_auth=mixed_auth,
        ),
        streamable_http_options=SDK_OPTIONS,
    )


@contextlib.asynccontextmanager
async def held_open(
    context: contextlib.AbstractAsyncContextManager[Any],
) -> AsyncIterator[None]:
    """Hold ``context`` open in a task of its own.

    The SDK's lifespan is an anyio task group, which must be left by the task that entered
    it; a pytest-asyncio fixture sets up and tears down in different tasks.
    """
    entered = asyncio.Event()
    leave = asyncio.Event()

    async def hold() -> None:
        async with context:
            entered.set()
            await leave.wait()

    task = asyncio.create_task(hold())
    while not entered.is_set():
        if task.done():
            task.result()  # the context failed to enter: raise its error here
        await asyncio.sleep(0.005)
    try:
        yield
    finally:
        leave.set()
        await task


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and yield a client bound to it."""
    async with held_open(app.router.lifespan_context(app)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client


@contextlib.asynccontextmanager
async def serving_gateway() -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP-upstream gateway, its proxy talking in-process to an SDK server."""
    upstream = mcp_server().streamable_http_app(streamable_http_path="/mcp", **SDK_OPTIONS)
    upstream_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream))

    def proxy(url: str, **kwargs: Any) -> HttpUpstreamProxy:
        return HttpUpstreamProxy(url, client=upstream_http, **kwargs)

    with mock.patch.object(gateway_app, "HttpUpstreamProxy", proxy):
        app = create_gateway_app(
            resource=RESOURCE,
            issuer=ISSUER,
            verifier=StaticVerifier(),
            upstream_url="http://127.0.0.1:9000/mcp",
            policy=ProtectionPolicy(
                required_scopes=["mcp:read"],
                tool_scopes={"create_note": ["mcp:write"]},
                public_tools=["echo"],
                mixed_auth=True,
            ),
        )

    @contextlib.asynccontextmanager
    async def both() -> AsyncIterator[None]:
        async with upstream.router.lifespan_context(upstream), app.lifespan_context(None):
            yield

    async with upstream_http, held_open(both()):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client


async def disconnect_mid_body(
    app: ASGIApp,
    path: str,
    content_type: bytes,
    *,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    host: bytes = b"127.0.0.1:8000",
) -> list[Message]:
    """POST part of a body, then ``http.disconnect`` (what a server sends when the peer goes)."""
    parts: list[Message] = [{"type": "http.request", "body": b'{"jsonrpc": "2.', "more_body": True}]
    sent: list[Message] = []

    async def receive() -> Message:
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", host),
            (b"content-type", content_type),
            (b"content-length", b"200"),
            (b"accept", b"application/json, text/event-stream"),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return sent
