"""Tokens the demo MCP server must refuse, over real HTTP against ``ostiary serve`` (issue 3).

A token minted by the same AS for another resource, an expired one, a revoked one (refused at
once by an introspecting resource server; by the JWT-verifying demo at expiry), and a pile of
malformed requests: none of them reaches tool code, which the per-user usage counters (written
by the SDK-side middleware in front of every tool) and the notes table prove afterwards.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ostiary.core.context import system_clock
from ostiary.core.storage import Storage
from ostiary.demo.app import create_demo_app
from ostiary.resource.verifiers import IntrospectionVerifier
from ostiary.storage import open_storage
from tests.demo._support import (
    PASSWORD,
    USERNAME,
    mcp_headers,
    obtain_token,
    resign,
    rpc,
    storage_settings,
)
from tests.e2e.server import RunningServer, running_server

pytestmark = pytest.mark.e2e

OTHER_RESOURCE = "https://other.example/mcp"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    # allow_any: the AS also mints tokens for resources other than its own demo server.
    with running_server(tmp_path / "srv", OSTIARY_RESOURCES__ALLOW_ANY="true") as running:
        running.add_user(USERNAME, PASSWORD)
        yield running


def storage_url(server: RunningServer) -> str:
    return server.env["OSTIARY_STORAGE__URL"]


async def open_server_storage(server: RunningServer) -> Storage:
    storage = open_storage(storage_settings(server.issuer, storage_url(server)))
    await storage.initialize()
    return storage


def call(tool: str, **arguments: Any) -> dict[str, Any]:
    return rpc("tools/call", {"name": tool, "arguments": arguments})


def metadata_url(server: RunningServer) -> str:
    return f"{server.issuer}/.well-known/oauth-protected-resource/mcp"


async def post_mcp(url: str, body: dict[str, Any], token: str | None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, json=body, headers=mcp_headers(token))


async def test_a_token_for_another_resource_is_refused(server: RunningServer) -> None:
    issued = await obtain_token(server.issuer, OTHER_RESOURCE)
    response = await post_mcp(f"{server.issuer}/mcp", call("get_user_info"), issued.access_token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", '
        'error_description="The access token was issued for another resource.", '
        f'scope="mcp:read", resource_metadata="{metadata_url(server)}"'
    )
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "The access token was issued for another resource.",
    }


async def test_an_expired_token_is_refused(server: RunningServer) -> None:
    issued = await obtain_token(server.issuer, f"{server.issuer}/mcp")
    good = await post_mcp(f"{server.issuer}/mcp", call("get_user_info"), issued.access_token)
    assert good.status_code == 200
    # The same claims signed with the server's own key, expired an hour ago.
    expired = await resign(
        issued.access_token, server.issuer, storage_url(server), exp=int(time.time()) - 3600
    )
    response = await post_mcp(f"{server.issuer}/mcp", call("get_user_info"), expired)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired.", '
        f'scope="mcp:read", resource_metadata="{metadata_url(server)}"'
    )


async def revoke(server: RunningServer, token: str, client_id: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.issuer}/revoke",
            data={"token": token, "token_type_hint": "access_token", "client_id": client_id},
        )
    assert response.status_code == 200, response.text


async def test_a_revoked_token_is_refused_at_once_by_the_combined_demo(
    server: RunningServer,
) -> None:
    """The combined demo verifies the JWT locally and then checks the AS's token book."""
    issued = await obtain_token(server.issuer, f"{server.issuer}/mcp")
    before = await post_mcp(f"{server.issuer}/mcp", call("get_user_info"), issued.access_token)
    assert before.status_code == 200
    assert before.json()["result"]["structuredContent"]["username"] == USERNAME
    await revoke(server, issued.access_token, issued.client_id)
    response = await post_mcp(f"{server.issuer}/mcp", call("get_user_info"), issued.access_token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="the access token was revoked", '
        f'scope="mcp:read", resource_metadata="{metadata_url(server)}"'
    )


@pytest.fixture
async def introspecting_demo(server: RunningServer) -> AsyncIterator[str]:
    """The demo MCP server on its own port, verifying every token by introspection (no cache)."""
    rs = server.add_client(
        "--name",
        "demo-rs",
        "--auth-method",
        "client_secret_basic",
        "--grant-type",
        "client_credentials",
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    resource = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    storage = await open_server_storage(server)
    verifier = IntrospectionVerifier(
        f"{server.issuer}/introspect",
        rs["client_id"],
        rs["client_secret"],
        resource,
        issuer=server.issuer,
        cache_ttl=0,
    )
    app = create_demo_app(
        storage,
        "default",
        resource=resource,
        issuer=server.issuer,
        verifier=verifier,
        clock=system_clock,
    )
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    while not uv.started:
        await asyncio.sleep(0.01)
    try:
        yield resource
    finally:
        uv.should_exit = True
        await task
        await storage.close()


async def test_a_revoked_token_is_refused_at_once_with_introspection(
    server: RunningServer, introspecting_demo: str
) -> None:
    issued = await obtain_token(server.issuer, introspecting_demo)
    before = await post_mcp(introspecting_demo, call("get_user_info"), issued.access_token)
    assert before.status_code == 200, before.text
    assert before.json()["result"]["structuredContent"]["username"] == USERNAME
    await revoke(server, issued.access_token, issued.client_id)
    after = await post_mcp(introspecting_demo, call("get_user_info"), issued.access_token)
    assert after.status_code == 401
    assert after.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_no_request_without_a_valid_token_reaches_tool_code(server: RunningServer) -> None:
    mcp = f"{server.issuer}/mcp"
    wrong_audience = await obtain_token(server.issuer, OTHER_RESOURCE)
    valid = await obtain_token(server.issuer, mcp)
    subject = (await post_mcp(mcp, call("get_user_info"), valid.access_token)).json()["result"][
        "structuredContent"
    ]["sub"]
    expired = await resign(valid.access_token, server.issuer, storage_url(server), exp=1)
    forged = valid.access_token[:-4] + (
        "AAAA" if not valid.access_token.endswith("AAAA") else "BBBB"
    )
    other_issuer = await resign(
        valid.access_token, server.issuer, storage_url(server), iss="https://evil.example"
    )
    attempts: list[tuple[dict[str, str], int]] = [
        (mcp_headers(), 401),
        (mcp_headers("garbage"), 401),
        (mcp_headers(wrong_audience.access_token), 401),
        (mcp_headers(expired), 401),
        (mcp_headers(forged), 401),
        (mcp_headers(other_issuer), 401),
        ({**mcp_headers(), "authorization": f"Basic {valid.access_token}"}, 401),
    ]
    async with httpx.AsyncClient(timeout=30) as http:
        for tool, arguments in (
            ("create_secure_note", {"content": "leak"}),
            ("get_user_info", {}),
            ("list_secure_notes", {}),
        ):
            for headers, status in attempts:
                response = await http.post(mcp, json=call(tool, **arguments), headers=headers)
                assert response.status_code == status, (tool, headers, response.text)
            # A token in the query string is refused outright (OAuth 2.1 §5.2).
            response = await http.post(
                f"{mcp}?access_token={valid.access_token}",
                json=call(tool, **arguments),
                headers=mcp_headers(),
            )
            assert response.status_code == 400
        # The valid token lacks mcp:write: 403 before the SDK.
        response = await http.post(
            mcp,
            json=call("create_secure_note", content="x"),
            headers=mcp_headers(valid.access_token),
        )
        assert response.status_code == 403
    storage = await open_server_storage(server)
    try:
        assert await storage.get_usage("default", subject) == {"get_user_info": 1}
        assert await storage.get_usage("default", "anonymous") == {}
        assert await storage.list_notes("default", subject) == []
    finally:
        await storage.close()
