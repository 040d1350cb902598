"""End to end: a FastMCP 4 server behind protect_fastmcp_app, driven by the official SDK client."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from ostiary.resource.mcp_sdk import require_scopes
from ostiary.resource.middleware import current_principal
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.verifiers import JWTVerifier
from tests.resource._rs_support import ISSUER, JWKS_URI, AuthorizationServerDouble, SigningKey, mint

pytest.importorskip("fastmcp")
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_access_token

from ostiary.resource.fastmcp_adapter import protect_fastmcp_app

KEY = SigningKey.generate("ES256", kid="fm-1")


def build_server() -> FastMCP:
    server = FastMCP("ostiary-fastmcp")

    @server.tool
    def whoami() -> str:
        principal = current_principal()
        token = get_access_token()
        assert principal is not None
        assert token is not None
        return f"{principal.subject}|{token.client_id}"

    @server.tool
    def create_note(text: str) -> str:
        return f"saved {text}"

    @server.tool
    def purge() -> str:
        require_scopes("notes:purge")
        return "purged"

    @server.tool
    def public_search(query: str) -> str:
        return f"results for {query}"

    return server


@pytest.fixture
async def resource() -> AsyncIterator[str]:
    auth_server = AuthorizationServerDouble(keys=[KEY])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    async with auth_server.client() as jwks:
        app = protect_fastmcp_app(
            build_server(),
            resource=url,
            issuer=ISSUER,
            verifier=JWTVerifier(ISSUER, url, JWKS_URI, http_client=jwks),
            policy=ProtectionPolicy(
                tool_scopes={"create_note": ["mcp:write"]},
                required_scopes=["mcp:read"],
                hide_unauthorized_tools=True,
                public_tools=["public_search"],
                mixed_auth=True,
            ),
        )
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            yield url
        finally:
            server.should_exit = True
            await task


async def call(url: str, token: str | None, tool: str, args: dict[str, Any] | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        if tool == "tools/list":
            return await session.list_tools()
        return await session.call_tool(tool, args or {})


def prm(url: str) -> str:
    return url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")


async def test_fastmcp_no_token_gets_exact_challenge(resource: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami"}}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            resource,
            content=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="mcp:read", resource_metadata="{prm(resource)}"'
    )


async def test_fastmcp_wrong_audience_is_refused(resource: str) -> None:
    token = mint(KEY, aud="https://elsewhere.example.com/mcp")
    async with httpx.AsyncClient() as http:
        response = await http.post(resource, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_fastmcp_tool_sees_principal(resource: str) -> None:
    result = await call(resource, mint(KEY, aud=resource, scope="mcp:read", sub="carol"), "whoami")
    assert result.content[0].text == "carol|client-abc"


async def test_fastmcp_missing_tool_scope_is_403(resource: str) -> None:
    token = mint(KEY, aud=resource, scope="mcp:read")
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "create_note", "arguments": {"text": "x"}},
    }
    async with httpx.AsyncClient() as http:
        response = await http.post(
            resource,
            content=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="The access token does not carry '
        f'the scope this request needs.", scope="mcp:read mcp:write", '
        f'resource_metadata="{prm(resource)}"'
    )


async def test_fastmcp_listing_hides_and_advertises(resource: str) -> None:
    listing = await call(resource, mint(KEY, aud=resource, scope="mcp:read"), "tools/list")
    assert {t.name: t.meta["securitySchemes"] for t in listing.tools} == {
        "whoami": [{"type": "oauth2", "scopes": ["mcp:read"]}],
        "purge": [{"type": "oauth2", "scopes": ["mcp:read"]}],
        "public_search": [{"type": "noauth"}, {"type": "oauth2", "scopes": ["mcp:read"]}],
    }


async def test_fastmcp_public_tool_without_token(resource: str) -> None:
    result = await call(resource, None, "public_search", {"query": "q"})
    assert result.content[0].text == "results for q"


async def test_fastmcp_in_tool_scope_failure_carries_challenge(resource: str) -> None:
    result = await call(resource, mint(KEY, aud=resource, scope="mcp:read"), "purge")
    assert result.is_error is True
    assert result.meta == {
        "mcp/www_authenticate": [
            'Bearer error="insufficient_scope", error_description="The access token does not '
            'carry the scope this request needs.", scope="mcp:read notes:purge", '
            f'resource_metadata="{prm(resource)}"'
        ]
    }
