"""The toolkit against ostiary's own authorization server: real tokens, JWKS, introspection.

The AS runs in-process (httpx.ASGITransport); the protected MCP SDK server runs on uvicorn and
is driven by the official SDK client with a token the AS issued (client_credentials).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer

from ostiary.errors import InvalidTokenError, TemporarilyUnavailableError
from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.middleware import require_principal
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.verifiers import (
    IntrospectionVerifier,
    JWTVerifier,
    fetch_authorization_server_metadata,
)
from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests.helpers.context import build_context

ISSUER = "http://127.0.0.1:8000"


@dataclass
class Issued:
    http: httpx.AsyncClient
    client_id: str
    client_secret: str

    async def token(self, resource: str, scope: str = "mcp:read") -> str:
        response = await self.http.post(
            "/token",
            data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
            auth=(self.client_id, self.client_secret),
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def revoke(self, token: str) -> None:
        response = await self.http.post(
            "/revoke", data={"token": token}, auth=(self.client_id, self.client_secret)
        )
        assert response.status_code == 200


@pytest.fixture
async def issued(settings_factory: Callable[..., Settings]) -> AsyncIterator[Issued]:
    # allow_any: the protected MCP server below listens on a port chosen at run time.
    settings = settings_factory(
        issuer=ISSUER, storage={"url": "memory://"}, resources={"allow_any": True}
    )
    ctx = build_context(settings, open_storage(settings))
    app = create_authorization_server(settings, context=ctx)
    await startup(ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        response = await http.post(
            "/register",
            json={
                "client_name": "machine",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_basic",
                "application_type": "web",
                "scope": "mcp:read mcp:write",
            },
        )
        assert response.status_code == 201, response.text
        body = response.json()
        yield Issued(http, body["client_id"], body["client_secret"])
    await ctx.storage.close()


RESOURCE = "http://127.0.0.1:8000/mcp"


async def test_metadata_discovery_finds_jwks_and_introspection(issued: Issued) -> None:
    metadata = await fetch_authorization_server_metadata(ISSUER, http_client=issued.http)
    assert metadata["jwks_uri"] == f"{ISSUER}/jwks"
    assert metadata["introspection_endpoint"] == f"{ISSUER}/introspect"


async def test_metadata_with_another_issuer_is_refused(issued: Issued) -> None:
    """RFC 8414 §3.3: metadata whose issuer differs (here by a trailing slash) is not used."""
    with pytest.raises(ValueError, match="metadata issuer"):
        await fetch_authorization_server_metadata(f"{ISSUER}/", http_client=issued.http)


async def test_jwt_verifier_accepts_an_ostiary_token(issued: Issued) -> None:
    verifier = await JWTVerifier.from_issuer(ISSUER, RESOURCE, http_client=issued.http)
    principal = await verifier.verify(await issued.token(RESOURCE))
    assert principal.subject == issued.client_id
    assert principal.client_id == issued.client_id
    assert principal.scopes == ("mcp:read",)
    assert principal.audience == (RESOURCE,)


async def test_token_for_another_resource_is_refused_by_both_verifiers(issued: Issued) -> None:
    other = await issued.token("http://127.0.0.1:8000/other")
    jwt_verifier = await JWTVerifier.from_issuer(ISSUER, RESOURCE, http_client=issued.http)
    introspection = await IntrospectionVerifier.from_issuer(
        ISSUER, issued.client_id, issued.client_secret, RESOURCE, http_client=issued.http
    )
    for verifier in (jwt_verifier, introspection):
        with pytest.raises(InvalidTokenError):
            await verifier.verify(other)


async def test_revocation_is_immediate_with_introspection(issued: Issued) -> None:
    verifier = await IntrospectionVerifier.from_issuer(
        ISSUER,
        issued.client_id,
        issued.client_secret,
        RESOURCE,
        http_client=issued.http,
        cache_ttl=0,
    )
    token = await issued.token(RESOURCE)
    assert (await verifier.verify(token)).client_id == issued.client_id
    await issued.revoke(token)
    with pytest.raises(InvalidTokenError):
        await verifier.verify(token)


async def test_sdk_client_calls_a_protected_tool_with_an_ostiary_token(issued: Issued) -> None:
    mcp = MCPServer("with-ostiary")

    @mcp.tool()
    def whoami() -> str:
        return require_principal().client_id

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    resource = f"http://127.0.0.1:{port}/mcp"
    app = protect_mcp_app(
        mcp,
        resource=resource,
        issuer=ISSUER,
        verifier=await JWTVerifier.from_issuer(ISSUER, resource, http_client=issued.http),
        policy=ProtectionPolicy(
            required_scopes=["mcp:read"],
        ),
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        token = await issued.token(resource)
        result: Any
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
            streamable_http_client(resource, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("whoami", {})
        assert result.content[0].text == issued.client_id
        async with httpx.AsyncClient() as plain:
            wrong = await plain.post(
                resource, headers={"Authorization": f"Bearer {await issued.token(RESOURCE)}"}
            )
        assert wrong.status_code == 401
    finally:
        server.should_exit = True
        await task


async def test_jwks_uri_is_discovered_lazily(issued: Issued) -> None:
    verifier = JWTVerifier(ISSUER, RESOURCE, http_client=issued.http)
    assert (await verifier.verify(await issued.token(RESOURCE))).client_id == issued.client_id
    assert verifier.jwks_uri == f"{ISSUER}/jwks"


async def test_lazy_discovery_refuses_an_issuer_mismatch(issued: Issued) -> None:
    verifier = JWTVerifier(f"{ISSUER}/", RESOURCE, http_client=issued.http)
    with pytest.raises(TemporarilyUnavailableError):
        await verifier.verify(await issued.token(RESOURCE))
