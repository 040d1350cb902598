"""The official SDK's own OAuth client against ostiary's AS and an ostiary-protected MCP server.

Everything runs over real HTTP on 127.0.0.1: the SDK's ``ClientCredentialsOAuthProvider``
gets a 401, reads ``resource_metadata`` from our challenge, fetches the PRM, discovers the AS
from it, obtains a token, calls a tool, and on our 403 ``insufficient_scope`` steps up to the
union of scopes and retries (MCP "Step-Up Authorization Flow").
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import uvicorn
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp.types import ContentBlock, TextContent

from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.middleware import require_principal
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.verifiers import JWTVerifier
from ostiary.server.app import create_authorization_server
from ostiary.settings import Settings
from tests._services import TOOLS, unavailable
from tests.demo._support import MemoryTokenStorage


def _text(content: ContentBlock) -> str:
    assert isinstance(content, TextContent), content
    return content.text


def _socket() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


@asynccontextmanager
async def serving(app: Any, sock: socket.socket) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await task


def build_server() -> MCPServer:
    mcp = MCPServer("stepped-up")

    @mcp.tool()
    def whoami() -> str:
        return require_principal().subject

    @mcp.tool()
    def create_note(text: str) -> str:
        principal = require_principal()
        return f"{principal.subject} saved {text} with {' '.join(principal.scopes)}"

    return mcp


async def test_sdk_oauth_client_discovers_gets_token_and_steps_up(
    settings_factory: Callable[..., Settings],
) -> None:
    as_sock, as_port = _socket()
    rs_sock, rs_port = _socket()
    issuer = f"http://127.0.0.1:{as_port}"
    resource = f"http://127.0.0.1:{rs_port}/mcp"
    settings = settings_factory(
        issuer=issuer, storage={"url": "memory://"}, resources={"allowed": [resource]}
    )
    async with serving(create_authorization_server(settings), as_sock):
        async with httpx.AsyncClient(base_url=issuer) as http:
            registered = await http.post(
                "/register",
                json={
                    "client_name": "machine",
                    "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "application_type": "web",
                    "scope": "mcp:read mcp:write",
                },
            )
            assert registered.status_code == 201, registered.text
            client = registered.json()
            verifier = await JWTVerifier.from_issuer(issuer, resource)
        app = protect_mcp_app(
            build_server(),
            resource=resource,
            issuer=issuer,
            verifier=verifier,
            policy=ProtectionPolicy(
                required_scopes=["mcp:read"],
                tool_scopes={"create_note": ["mcp:write"]},
            ),
        )
        async with serving(app, rs_sock):
            storage = MemoryTokenStorage()
            provider = ClientCredentialsOAuthProvider(
                server_url=resource,
                storage=storage,
                client_id=client["client_id"],
                client_secret=client["client_secret"],
                issuer=issuer,
            )
            async with (
                httpx2.AsyncClient(auth=provider, timeout=30) as http2,
                streamable_http_client(resource, http_client=http2) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                first = await session.call_tool("whoami", {})
                second = await session.call_tool("create_note", {"text": "hi"})
    assert [_text(c) for c in first.content] == [client["client_id"]]
    assert [_text(c) for c in second.content] == [
        f"{client['client_id']} saved hi with mcp:read mcp:write"
    ]
    # First token from the 401's scope, then the union after the 403 (SEP-2350).
    assert storage.scopes_seen == ["mcp:read", "mcp:read mcp:write"]


async def test_ts_sdk_oauth_client_discovers_gets_token_and_steps_up(
    settings_factory: Callable[..., Settings],
) -> None:
    """The same flow with the official TypeScript SDK's ClientCredentialsProvider.

    SDK 1.32's provider sends no ``scope`` with client_credentials, so the AS grants the
    client's registered scopes at once and no step-up is needed (unlike the Python SDK).
    """
    node = shutil.which("node")
    sdk = TOOLS / "node_modules" / "@modelcontextprotocol" / "sdk"
    if node is None or not (sdk / "dist" / "esm" / "client" / "auth-extensions.js").exists():
        unavailable("node or @modelcontextprotocol/sdk missing (run `make tools`)")
    assert node is not None
    as_sock, as_port = _socket()
    rs_sock, rs_port = _socket()
    issuer = f"http://127.0.0.1:{as_port}"
    resource = f"http://127.0.0.1:{rs_port}/mcp"
    settings = settings_factory(
        issuer=issuer, storage={"url": "memory://"}, resources={"allowed": [resource]}
    )
    async with serving(create_authorization_server(settings), as_sock):
        async with httpx.AsyncClient(base_url=issuer) as http:
            client = (
                await http.post(
                    "/register",
                    json={
                        "client_name": "ts-machine",
                        "grant_types": ["client_credentials"],
                        "token_endpoint_auth_method": "client_secret_basic",
                        "application_type": "web",
                        "scope": "mcp:read mcp:write",
                    },
                )
            ).json()
        app = protect_mcp_app(
            build_server(),
            resource=resource,
            issuer=issuer,
            verifier=JWTVerifier(issuer, resource),
            policy=ProtectionPolicy(
                required_scopes=["mcp:read"],
                tool_scopes={"create_note": ["mcp:write"]},
            ),
        )
        async with serving(app, rs_sock):
            process = await asyncio.create_subprocess_exec(
                node,
                str(Path(__file__).with_name("ts_oauth_client.mjs")),
                str(sdk),
                resource,
                issuer,
                client["client_id"],
                client["client_secret"],
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    answer = json.loads(stdout.decode().strip().splitlines()[-1])
    assert answer == {
        "scopes": ["mcp:read mcp:write"],
        "whoami": client["client_id"],
        "create_note": f"{client['client_id']} saved hi with mcp:read mcp:write",
    }
