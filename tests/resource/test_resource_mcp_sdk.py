"""End to end: the official mcp SDK server behind protect_mcp_app, driven by the SDK client.

A real uvicorn on 127.0.0.1 serves the protected app; tokens are real ES256 JWTs checked against
a real JWKS; the client is ``mcp.client.streamable_http`` + ``ClientSession`` over httpx2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from starlette.responses import PlainTextResponse

from ostiary.errors import ConfigurationError
from ostiary.resource.mcp_sdk import protect_mcp_app, require_scopes
from ostiary.resource.middleware import current_principal
from ostiary.resource.policy import ProtectionPolicy
from ostiary.resource.verifiers import JWTVerifier
from tests.resource._rs_support import ISSUER, JWKS_URI, AuthorizationServerDouble, SigningKey, mint

KEY = SigningKey.generate("ES256", kid="sdk-1")
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}


def build_server() -> MCPServer:
    mcp = MCPServer("ostiary-test")

    @mcp.tool()
    def whoami() -> str:
        """Who the token speaks for, seen three ways."""
        principal = current_principal()
        sdk_token = get_access_token()
        assert principal is not None
        assert sdk_token is not None
        return f"{principal.subject}|{sdk_token.subject}|{sdk_token.client_id}|{sdk_token.token!r}"

    @mcp.tool()
    def create_note(text: str) -> str:
        """Needs mcp:write (declared in tool_scopes)."""
        return f"saved {text}"

    @mcp.tool()
    def purge() -> str:
        """Checks a finer scope itself."""
        require_scopes("notes:purge")
        return "purged"

    @mcp.resource("user://notes/{note_id}")
    def note(note_id: str) -> str:
        """A note; reading it needs notes:read."""
        principal = current_principal()
        assert principal is not None
        return f"note {note_id} of {principal.subject}"

    @mcp.tool()
    def public_search(query: str) -> str:
        """Works without a token."""
        principal = current_principal()
        return f"results for {query} as {principal.subject if principal else 'anonymous'}"

    return mcp


@dataclass
class Running:
    resource: str
    base: str

    @property
    def prm(self) -> str:
        return f"{self.base}/.well-known/oauth-protected-resource/mcp"


async def _serve(hide: bool, public: tuple[str, ...] = ()) -> AsyncIterator[Running]:
    auth_server = AuthorizationServerDouble(keys=[KEY])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    resource = f"{base}/mcp"
    async with auth_server.client() as jwks_http:
        app = protect_mcp_app(
            build_server(),
            resource=resource,
            issuer=ISSUER,
            verifier=JWTVerifier(ISSUER, resource, JWKS_URI, http_client=jwks_http),
            policy=ProtectionPolicy(
                tool_scopes={"create_note": ["mcp:write"]},
                required_scopes=["mcp:read"],
                scope_hierarchy={"mcp:write": ["mcp:read"]},
                hide_unauthorized_tools=hide,
                resource_name="ostiary test server",
                public_tools=public,
                mixed_auth=bool(public),
                resource_scopes={"user://notes/{note_id}": ["notes:read"]},
            ),
        )
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            yield Running(resource=resource, base=base)
        finally:
            server.should_exit = True
            await task


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async for value in _serve(hide=False):
        yield value


@pytest.fixture
async def running_hiding() -> AsyncIterator[Running]:
    async for value in _serve(hide=True):
        yield value


@pytest.fixture
async def running_public() -> AsyncIterator[Running]:
    async for value in _serve(hide=True, public=("public_search",)):
        yield value


async def raw_post(url: str, body: Any, token: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=json.dumps(body), headers=headers)


async def sdk_session_call(url: str, token: str | None, tool: str, args: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        if tool == "tools/list":
            return await session.list_tools()
        return await session.call_tool(tool, args)


async def test_no_token_is_401_with_exact_bare_challenge(running: Running) -> None:
    response = await raw_post(running.resource, INIT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="mcp:read", resource_metadata="{running.prm}"'
    )


@pytest.mark.parametrize("mode", ["connect", "mixed"])
async def test_a_tokenless_get_stream_is_challenged_on_a_stateful_endpoint(
    running: Running, running_public: Running, mode: str
) -> None:
    server = running if mode == "connect" else running_public
    async with httpx.AsyncClient() as client:
        response = await client.get(server.resource, headers={"Accept": "text/event-stream"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="mcp:read", resource_metadata="{server.prm}"'
    )


def test_public_tools_without_mixed_auth_are_a_configuration_error() -> None:
    resource = "https://mcp.example.com/mcp"
    with pytest.raises(ConfigurationError) as info:
        protect_mcp_app(
            build_server(),
            resource=resource,
            issuer=ISSUER,
            verifier=JWTVerifier(ISSUER, resource, JWKS_URI),
            policy=ProtectionPolicy(
                public_tools=["public_search"],
            ),
        )
    assert str(info.value) == (
        "public_tools are callable without a token only in mixed auth: pass "
        "mixed_auth=True (clients then connect without a token), or drop public_tools"
    )


async def test_wrong_audience_is_401_invalid_token(running: Running) -> None:
    token = mint(KEY, aud="https://elsewhere.example.com/mcp")
    response = await raw_post(running.resource, INIT, token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token was issued for '
        f'another resource.", scope="mcp:read", resource_metadata="{running.prm}"'
    )


async def test_expired_token_is_401(running: Running) -> None:
    now = int(time.time())
    token = mint(KEY, aud=running.resource, iat=now - 3600, exp=now - 600)
    response = await raw_post(running.resource, INIT, token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired.", '
        f'scope="mcp:read", resource_metadata="{running.prm}"'
    )


async def test_sdk_client_with_right_token_sees_its_subject(running: Running) -> None:
    token = mint(KEY, aud=running.resource, scope="mcp:read", sub="alice")
    result = await sdk_session_call(running.resource, token, "whoami", {})
    assert result.is_error is False
    assert result.content[0].text == "alice|alice|client-abc|''"


async def test_missing_tool_scope_is_403_before_the_server(running: Running) -> None:
    token = mint(KEY, aud=running.resource, scope="mcp:read")
    body = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "create_note", "arguments": {"text": "x"}},
    }
    response = await raw_post(running.resource, body, token)
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", error_description="The access token does not carry '
        f'the scope this request needs.", scope="mcp:read mcp:write", '
        f'resource_metadata="{running.prm}"'
    )
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "The access token does not carry the scope this request needs.",
    }


async def test_sdk_client_gets_an_error_for_missing_tool_scope(running: Running) -> None:
    token = mint(KEY, aud=running.resource, scope="mcp:read")
    with pytest.raises(BaseExceptionGroup) as info:
        await sdk_session_call(running.resource, token, "create_note", {"text": "x"})
    assert info.value.subgroup(MCPError) is not None


async def test_write_scope_calls_the_tool_through_the_hierarchy(running: Running) -> None:
    token = mint(KEY, aud=running.resource, scope="mcp:write")
    result = await sdk_session_call(running.resource, token, "create_note", {"text": "hi"})
    assert result.content[0].text == "saved hi"


async def test_tools_advertise_security_schemes(running: Running) -> None:
    token = mint(KEY, aud=running.resource, scope="mcp:read")
    listing = await sdk_session_call(running.resource, token, "tools/list", {})
    schemes = {tool.name: tool.meta["securitySchemes"] for tool in listing.tools}
    assert schemes == {
        "whoami": [{"type": "oauth2", "scopes": ["mcp:read"]}],
        "create_note": [{"type": "oauth2", "scopes": ["mcp:read", "mcp:write"]}],
        "purge": [{"type": "oauth2", "scopes": ["mcp:read"]}],
        "public_search": [{"type": "oauth2", "scopes": ["mcp:read"]}],
    }


async def test_unauthorized_tools_are_hidden_when_enabled(running_hiding: Running) -> None:
    url = running_hiding.resource
    reader = await sdk_session_call(url, mint(KEY, aud=url, scope="mcp:read"), "tools/list", {})
    writer = await sdk_session_call(url, mint(KEY, aud=url, scope="mcp:write"), "tools/list", {})
    assert [t.name for t in reader.tools] == ["whoami", "purge", "public_search"]
    assert [t.name for t in writer.tools] == ["whoami", "create_note", "purge", "public_search"]


async def test_scope_failure_inside_a_tool_carries_www_authenticate_meta(running: Running) -> None:
    token = mint(KEY, aud=running.resource, scope="mcp:read")
    result = await sdk_session_call(running.resource, token, "purge", {})
    assert result.is_error is True
    assert result.meta == {
        "mcp/www_authenticate": [
            'Bearer error="insufficient_scope", error_description="The access token does not '
            'carry the scope this request needs.", scope="mcp:read notes:purge", '
            f'resource_metadata="{running.prm}"'
        ]
    }


async def test_protected_resource_metadata_is_served(running: Running) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(running.prm)
    assert response.status_code == 200
    assert response.json() == {
        "resource": running.resource,
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp:read", "mcp:write", "notes:read"],
        "resource_name": "ostiary test server",
    }


async def test_public_tool_works_without_a_token(running_public: Running) -> None:
    url = running_public.resource
    listing = await sdk_session_call(url, None, "tools/list", {})
    assert [(t.name, t.meta["securitySchemes"]) for t in listing.tools] == [
        ("public_search", [{"type": "noauth"}, {"type": "oauth2", "scopes": ["mcp:read"]}])
    ]
    result = await sdk_session_call(url, None, "public_search", {"query": "q"})
    assert result.content[0].text == "results for q as anonymous"


async def test_public_tool_still_sees_a_token_when_sent(running_public: Running) -> None:
    url = running_public.resource
    token = mint(KEY, aud=url, scope="mcp:read", sub="bob")
    result = await sdk_session_call(url, token, "public_search", {"query": "q"})
    assert result.content[0].text == "results for q as bob"


async def test_protected_tool_without_token_still_gets_401(running_public: Running) -> None:
    body = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "whoami"}}
    response = await raw_post(running_public.resource, body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="mcp:read", resource_metadata="{running_public.prm}"'
    )


async def test_another_users_token_cannot_use_a_session(running: Running) -> None:
    """The SDK binds a session to its creator; our user object carries the subject for it."""
    alice = mint(KEY, aud=running.resource, scope="mcp:read", sub="alice")
    mallory = mint(KEY, aud=running.resource, scope="mcp:read", sub="mallory")
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as http:
        init = await http.post(
            running.resource,
            content=json.dumps(INIT),
            headers={**headers, "Authorization": f"Bearer {alice}"},
        )
        session = init.headers["mcp-session-id"]
        body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami"}}
        hijack = await http.post(
            running.resource,
            content=json.dumps(body),
            headers={
                **headers,
                "Authorization": f"Bearer {mallory}",
                "Mcp-Session-Id": session,
                "MCP-Protocol-Version": "2025-06-18",
            },
        )
        owner = await http.post(
            running.resource,
            content=json.dumps(body),
            headers={
                **headers,
                "Authorization": f"Bearer {alice}",
                "Mcp-Session-Id": session,
                "MCP-Protocol-Version": "2025-06-18",
            },
        )
    assert init.status_code == 200
    assert hijack.status_code == 404
    assert hijack.json()["error"]["message"] == "Session not found"
    assert owner.status_code == 200


def test_sdk_server_with_its_own_auth_is_refused() -> None:
    from mcp.server.auth.settings import AuthSettings

    class Verifier:
        async def verify_token(self, token: str) -> None:
            return None

    server = MCPServer(
        "double",
        token_verifier=Verifier(),
        auth=AuthSettings(
            issuer_url=ISSUER,
            resource_server_url="https://mcp.example.com/mcp",
            validate_token_resource=True,
        ),
    )
    with pytest.raises(ConfigurationError, match="without auth"):
        protect_mcp_app(
            server,
            resource="https://mcp.example.com/mcp",
            issuer=ISSUER,
            verifier=JWTVerifier(ISSUER, "https://mcp.example.com/mcp", JWKS_URI),
        )


async def test_resource_read_needs_its_scope(running: Running) -> None:
    async def read_note(scope: str) -> Any:
        token = mint(KEY, aud=running.resource, scope=scope, sub="dora")
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
            streamable_http_client(running.resource, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await session.read_resource("user://notes/7")

    result = await read_note("mcp:read notes:read")
    assert result.contents[0].text == "note 7 of dora"
    with pytest.raises(BaseExceptionGroup) as info:
        await read_note("mcp:read")
    assert info.value.subgroup(MCPError) is not None


async def test_metadata_is_public_when_a_plain_asgi_app_is_mounted_whole() -> None:
    """RFC 9728 §3: the PRM document stays reachable without a token in front of any app."""

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("tool output")(scope, receive, send)

    resource = "http://127.0.0.1:9/mcp"
    app = protect_mcp_app(
        plain,
        resource=resource,
        issuer="http://127.0.0.1:9",
        verifier=JWTVerifier("http://127.0.0.1:9", resource, "http://127.0.0.1:9/jwks"),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as http:
        document = await http.get("/.well-known/oauth-protected-resource/mcp")
        protected = await http.post("/mcp", json={})
    assert document.status_code == 200
    assert document.json()["resource"] == resource
    assert protected.status_code == 401


async def test_event_streams_per_address_are_bounded(running: Running) -> None:
    """A stateful endpoint holds at most 8 GET streams per address; the 9th gets 429 at once,
    while POSTs from that address and streams from another address still work."""
    token = mint(KEY, aud=running.resource, scope="mcp:read")
    auth = {"Authorization": f"Bearer {token}"}

    async def session(http: httpx.AsyncClient) -> str:
        response = await http.post(
            running.resource,
            json=INIT,
            headers={**auth, "Accept": "application/json, text/event-stream"},
        )
        assert response.status_code == 200, response.text
        return str(response.headers["mcp-session-id"])

    def stream_headers(session_id: str) -> dict[str, str]:
        return {
            **auth,
            "Accept": "text/event-stream",
            "Mcp-Session-Id": session_id,
            "MCP-Protocol-Version": "2025-06-18",
        }

    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        held = []
        for _ in range(8):
            sid = await session(http)
            held.append(
                await stack.enter_async_context(
                    http.stream("GET", running.resource, headers=stream_headers(sid))
                )
            )
        ninth = await http.get(running.resource, headers=stream_headers(await session(http)))
        post = await raw_post(running.resource, INIT, token)
        elsewhere = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2"), timeout=10
        )
        other = await stack.enter_async_context(elsewhere)
        sid = await session(other)
        other_stream = await stack.enter_async_context(
            other.stream("GET", running.resource, headers=stream_headers(sid))
        )
        assert [s.status_code for s in held] == [200] * 8
        assert ninth.status_code == 429
        assert ninth.headers["retry-after"] == "1"
        assert ninth.json()["error"] == "slow_down"
        assert post.status_code == 200
        assert other_stream.status_code == 200


@pytest.mark.parametrize(
    ("tool_scopes", "prompt_scopes", "message"),
    [
        (
            {"create_notes": ["mcp:write"]},
            {},
            "tool_scopes names 'create_notes', which the server does not have (its tools: "
            "create_note, public_search, purge, whoami)",
        ),
        ({}, {"summary": ["mcp:read"]}, "prompt_scopes names 'summary', which the server "),
    ],
    ids=["misspelt tool", "unknown prompt"],
)
async def test_a_scope_map_naming_nothing_stops_the_app_at_start(
    tool_scopes: dict[str, list[str]], prompt_scopes: dict[str, list[str]], message: str
) -> None:
    """A typo in a scope map would leave the real tool with the endpoint's scopes only."""
    resource = "https://mcp.example.com/mcp"
    app = protect_mcp_app(
        build_server(),
        resource=resource,
        issuer=ISSUER,
        verifier=JWTVerifier(ISSUER, resource, JWKS_URI),
        policy=ProtectionPolicy(
            tool_scopes=tool_scopes,
            prompt_scopes=prompt_scopes,
        ),
    )
    with pytest.raises(ConfigurationError) as info:
        async with app.router.lifespan_context(app):
            pass
    assert str(info.value).startswith(message)
